package xdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"xvs/datapath"
	"xvs/flow"
	"xvs/lab"
)

// pollDevice is the part of a device a test loop needs.
type pollDevice interface {
	datapath.Device
	Fd() int
}

// devRecvMatch polls d until a frame for which match is true arrives and
// returns a copy of it; other frames are freed.
func devRecvMatch(t *testing.T, d pollDevice, timeout time.Duration, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var batch [datapath.BatchSize]*flow.Packet
	for time.Now().Before(deadline) {
		n, err := d.Recv(batch[:])
		if err != nil {
			t.Fatalf("%s recv: %v", d.Name(), err)
		}
		var found []byte
		for _, p := range batch[:n] {
			if found == nil && match(p.Data()) {
				found = append([]byte(nil), p.Data()...)
			}
			p.Free()
		}
		if found != nil {
			return found
		}
		if n == 0 {
			fds := []unix.PollFd{{Fd: int32(d.Fd()), Events: unix.POLLIN}}
			unix.Poll(fds, 10)
		}
	}
	t.Fatalf("%s: no matching frame within %v", d.Name(), timeout)
	return nil
}

// sendFrame sends a copy of frame through d, from a packet of pool.
func sendFrame(t *testing.T, d datapath.Device, pool *HeapPool, frame []byte) int {
	t.Helper()
	p := pool.Get()
	if p == nil {
		t.Fatal("pool empty")
	}
	p.Len = copy(p.Buf[p.Off:], frame)
	return d.Send([]*flow.Packet{p})
}

func ipChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// udp4Frame builds an Ethernet/IPv4/UDP frame (UDP checksum 0).
func udp4Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	f := append(append([]byte{}, dstMAC...), srcMAC...)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8] = 64
	ip[9] = 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	f = append(f, ip...)
	f = binary.BigEndian.AppendUint16(f, src.Port())
	f = binary.BigEndian.AppendUint16(f, dst.Port())
	f = binary.BigEndian.AppendUint16(f, uint16(8+len(payload)))
	f = binary.BigEndian.AppendUint16(f, 0)
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// arpFrame builds an ARP packet (op 1 request, 2 reply).
func arpFrame(op uint16, dstMAC, srcMAC net.HardwareAddr, sip, tip netip.Addr, tha net.HardwareAddr) []byte {
	f := append(append([]byte{}, dstMAC...), srcMAC...)
	f = binary.BigEndian.AppendUint16(f, 0x0806)
	f = append(f, 0, 1, 8, 0, 6, 4)
	f = binary.BigEndian.AppendUint16(f, op)
	f = append(f, srcMAC...)
	f = append(f, sip.AsSlice()...)
	f = append(f, tha...)
	f = append(f, tip.AsSlice()...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// TestTapHostStack: the host stack in a namespace talks UDP through the
// TAP to a test loop that answers ARP and UDP on the other side.
func TestTapHostStack(t *testing.T) {
	l := lab.New(t)
	h, err := l.NS("h")
	if err != nil {
		t.Fatal(err)
	}
	hostMAC := net.HardwareAddr{2, 0, 0, 0, 1, 1}
	peerMAC := net.HardwareAddr{2, 0, 0, 0, 1, 2}
	hostIP := netip.MustParseAddr("198.18.1.1")
	peerIP := netip.MustParseAddr("198.18.1.2")
	var tap *Tap
	if err := h.Do(func() (err error) {
		tap, err = NewTap(TapConfig{Name: "xt0", MAC: hostMAC, MTU: 1400})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	lk, err := h.Link("xt0")
	if err != nil {
		t.Fatal(err)
	}
	if a := lk.Attrs(); a.MTU != 1400 || !bytes.Equal(a.HardwareAddr, hostMAC) || a.Flags&net.FlagUp == 0 || a.Index != tap.Ifindex() {
		t.Fatalf("tap link: mtu %d mac %s flags %v", a.MTU, a.HardwareAddr, a.Flags)
	}
	if err := h.Quiet("xt0"); err != nil {
		t.Fatal(err)
	}
	if err := h.AddAddr("xt0", "198.18.1.1/24"); err != nil {
		t.Fatal(err)
	}
	var conn *net.UDPConn
	if err := h.Do(func() (err error) {
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(hostIP, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hostPort := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	peer := netip.AddrPortFrom(peerIP, 9999)
	if _, err := conn.WriteToUDPAddrPort([]byte("ping"), peer); err != nil {
		t.Fatal(err)
	}

	// The host resolves the peer first.
	req := devRecvMatch(t, tap, 3*time.Second, func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 &&
			binary.BigEndian.Uint16(f[20:]) == 1 && bytes.Equal(f[38:42], peerIP.AsSlice())
	})
	if !bytes.Equal(req[6:12], hostMAC) || !bytes.Equal(req[28:32], hostIP.AsSlice()) {
		t.Fatalf("ARP request from wrong sender: % x", req)
	}
	if n := sendFrame(t, tap, tap.Pool(), arpFrame(2, hostMAC, peerMAC, peerIP, hostIP, hostMAC)); n != 1 {
		t.Fatalf("ARP reply not sent: %d, %v", n, tap.LastError())
	}
	udp := devRecvMatch(t, tap, 3*time.Second, func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 &&
			binary.BigEndian.Uint16(f[36:]) == 9999
	})
	if !bytes.Equal(udp[:6], peerMAC) || !bytes.Equal(udp[30:34], peerIP.AsSlice()) || string(udp[42:46]) != "ping" {
		t.Fatalf("UDP frame: % x", udp)
	}
	if n := sendFrame(t, tap, tap.Pool(), udp4Frame(hostMAC, peerMAC, peer, hostPort, []byte("pong"))); n != 1 {
		t.Fatalf("UDP reply not sent: %v", tap.LastError())
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "pong" || from != peer {
		t.Fatalf("host got %q from %v: %v", buf[:n], from, err)
	}
	st := tap.Stats()
	if st.RxPackets < 2 || st.TxPackets != 2 || st.TxErrors != 0 || st.RxErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if tap.Pool().InUse() != 0 {
		t.Fatalf("leaked %d packets", tap.Pool().InUse())
	}

	// Oversized frame: tx error, clear error, freed.
	big, _ := NewHeapPool(1, 2000)
	p := big.Get()
	p.Len = tap.MaxFrame() + 1
	if tap.Send([]*flow.Packet{p}) != 0 || !errors.Is(tap.LastError(), ErrFrameTooLarge) ||
		tap.Stats().TxErrors != 1 || big.InUse() != 0 {
		t.Fatalf("oversized send: err %v stats %+v in use %d", tap.LastError(), tap.Stats(), big.InUse())
	}

	// Steady state allocates nothing: a frame to the host (dropped by
	// it) and an empty receive.
	frame := udp4Frame(net.HardwareAddr{2, 0, 0, 0, 9, 9}, peerMAC, peer, hostPort, []byte("x"))
	var batch [datapath.BatchSize]*flow.Packet
	pkts := make([]*flow.Packet, 1)
	allocs := testing.AllocsPerRun(200, func() {
		p := tap.Pool().Get()
		p.Len = copy(p.Buf[p.Off:], frame)
		pkts[0] = p
		tap.Send(pkts)
		n, _ := tap.Recv(batch[:])
		for _, p := range batch[:n] {
			p.Free()
		}
	})
	if allocs != 0 {
		t.Errorf("tap Send/Recv allocate %v per run", allocs)
	}

	// Close removes the interface.
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Link("xt0"); err == nil {
		t.Fatal("tap interface survived Close")
	}
	if tap.Fd() != -1 {
		t.Fatal("Fd after Close")
	}
	if _, err := tap.Recv(batch[:]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
}

func TestTapConfig(t *testing.T) {
	if _, err := NewTap(TapConfig{}); err == nil {
		t.Fatal("tap without a name")
	}
	if _, err := NewTap(TapConfig{Name: "xvs-name-too-long"}); err == nil {
		t.Fatal("tap with a long name")
	}
	small, _ := NewHeapPool(4, 1000)
	if _, err := NewTap(TapConfig{Name: "xvsbad0", Pool: small}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("MTU 1500 with 1000-byte frames: %v", err)
	}
	if _, err := NewTap(TapConfig{Name: "xvsbad0", MTU: 9000, Pool: small}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("MTU 9000 with 1000-byte frames: %v", err)
	}
}

// BenchmarkTapSend writes 64-byte frames into a TAP whose host stack
// drops them (foreign destination MAC), in batches of 32.
func BenchmarkTapSend(b *testing.B) {
	l := lab.New(b)
	h, err := l.NS("h")
	if err != nil {
		b.Fatal(err)
	}
	var tap *Tap
	if err := h.Do(func() (err error) {
		tap, err = NewTap(TapConfig{Name: "xt0"})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer tap.Close()
	frame := make([]byte, 64)
	copy(frame, []byte{2, 0, 0, 0, 9, 9, 2, 0, 0, 0, 9, 8, 0x88, 0xb5})
	batch := make([]*flow.Packet, datapath.BatchSize)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		for i := range batch {
			p := tap.Pool().Get()
			p.Len = copy(p.Buf[p.Off:], frame)
			batch[i] = p
		}
		frames += tap.Send(batch)
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds()/1e6, "Mpps")
}
