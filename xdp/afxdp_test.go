package xdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"xvs/flow"
)

const testEtherType = 0x88b5 // IEEE local experimental

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// rawSock is an AF_PACKET socket bound to one interface and ethertype.
type rawSock struct {
	fd  int
	mac [6]byte
}

func openRaw(ns, ifname string) (*rawSock, error) {
	r := &rawSock{fd: -1}
	err := inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(testEtherType)))
		if err != nil {
			return err
		}
		r.fd = fd
		ifi, err := interfaceByName(ifname)
		if err != nil {
			return err
		}
		copy(r.mac[:], ifi.HardwareAddr)
		tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(testEtherType), Ifindex: ifi.Index})
	})
	if err != nil && r.fd >= 0 {
		unix.Close(r.fd)
	}
	return r, err
}

func (r *rawSock) Close() { unix.Close(r.fd) }

// testFrame builds frame seq of length size: dst, src, ethertype, seq, pattern.
func testFrame(dst, src [6]byte, seq uint32, size int) []byte {
	f := make([]byte, size)
	copy(f[0:], dst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < size; i++ {
		f[i] = byte(uint32(i)*7 + seq)
	}
	return f
}

// topo is h1:a0 <-> dut:dA, dut:dB <-> h2:b0.
type topo struct {
	h1, dut, h2 string
}

func newTopo(t *testing.T, mtu int) (*labT, topo) {
	l := newLab(t)
	tp := topo{h1: l.ns("h1"), dut: l.ns("dut"), h2: l.ns("h2")}
	l.veth(tp.h1, "a0", tp.dut, "dA", mtu)
	l.veth(tp.dut, "dB", tp.h2, "b0", mtu)
	return l, tp
}

// forwarder moves frames A->B and B->A until stop is closed. keep decides
// per received packet whether it is forwarded (else freed).
func forwarder(a, b *Port, stop <-chan struct{}, keep func() bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pkts := make([]*flow.Packet, 32)
		out := make([]*flow.Packet, 0, 32)
		fds := []unix.PollFd{{Fd: int32(a.Fd()), Events: unix.POLLIN}, {Fd: int32(b.Fd()), Events: unix.POLLIN}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			busy := false
			for _, d := range [2][2]*Port{{a, b}, {b, a}} {
				n, _ := d[0].Recv(pkts)
				if n == 0 {
					continue
				}
				busy = true
				out = out[:0]
				for _, p := range pkts[:n] {
					if keep == nil || keep() {
						out = append(out, p)
					} else {
						p.Free()
					}
				}
				d[1].Send(out)
			}
			if !busy {
				unix.Poll(fds, 1)
			}
		}
	}()
	return &wg
}

// xdpAttached reports the XDP attachment ip(8) shows for ifname in ns.
func xdpAttached(t *testing.T, ns, ifname string) string {
	out, err := exec.Command("ip", "-n", ns, "-d", "link", "show", "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show %s: %v: %s", ifname, err, out)
	}
	s := string(out)
	switch {
	case strings.Contains(s, "xdpgeneric"):
		return "generic"
	case strings.Contains(s, "prog/xdp"):
		return "native"
	}
	return ""
}

func openPair(t *testing.T, tp topo, mode Mode, u *UMEM) (a, b *Port) {
	t.Helper()
	err := inNS(tp.dut, func() error {
		var err error
		if a, err = Open("dA", Config{Mode: mode, UMEM: u}); err != nil {
			return err
		}
		if b, err = Open("dB", Config{Mode: mode, UMEM: u}); err != nil {
			a.Close()
			return err
		}
		return nil
	})
	need(t, err, "open AF_XDP ports in "+mode.String()+" mode")
	return a, b
}

// exchange sends every frame size 60..1518 from src to dst and checks that
// each arrives exactly once and intact.
func exchange(t *testing.T, src, dst *rawSock, dir string) {
	t.Helper()
	const first, last = 60, 1518
	want := make(map[uint32][]byte)
	got := make(map[uint32]int)
	buf := make([]byte, 4096)
	recvUntil := func(limit int, deadline time.Time) {
		for len(got) < limit && time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(dst.fd, buf, 0)
			if err != nil || n < 18 {
				continue
			}
			seq := binary.BigEndian.Uint32(buf[14:])
			w, ok := want[seq]
			if !ok {
				t.Errorf("%s: unexpected frame seq %d len %d", dir, seq, n)
				continue
			}
			got[seq]++
			if got[seq] > 1 {
				t.Errorf("%s: frame %d (len %d) received %d times", dir, seq, len(w), got[seq])
			}
			if !bytes.Equal(buf[:n], w) {
				t.Errorf("%s: frame %d corrupted: len %d want %d", dir, seq, n, len(w))
			}
		}
	}
	for size := first; size <= last; size++ {
		seq := uint32(size)
		f := testFrame(dst.mac, src.mac, seq, size)
		want[seq] = f
		if _, err := unix.Write(src.fd, f); err != nil {
			t.Fatalf("%s: send %d bytes: %v", dir, size, err)
		}
		if (size-first)%32 == 31 { // keep well inside veth's 256-entry XDP ring
			recvUntil(len(want), time.Now().Add(2*time.Second))
		}
	}
	recvUntil(len(want), time.Now().Add(2*time.Second))
	for seq := range want {
		if got[seq] != 1 {
			t.Errorf("%s: frame of %d bytes received %d times", dir, seq, got[seq])
		}
	}
}

// TestForwardAllSizes forwards every frame size 60-1518 in both directions
// between two veth ports, in each XDP mode veth offers, and checks that
// the program is detached on Close.
//
// With a shared UMEM frames move by descriptor; with a private UMEM per
// port ("copy") Send must copy every frame.
func TestForwardAllSizes(t *testing.T) {
	for _, c := range []struct {
		mode   Mode
		shared bool
	}{{ModeNative, true}, {ModeGeneric, true}, {ModeNative, false}} {
		mode := c.mode
		name := mode.String()
		if !c.shared {
			name += "/copy"
		}
		t.Run(name, func(t *testing.T) {
			_, tp := newTopo(t, 1504) // 1518-byte untagged frames
			var u *UMEM
			if c.shared {
				var err error
				if u, err = NewUMEM(UMEMConfig{}); err != nil {
					t.Fatal(err)
				}
			}
			a, b := openPair(t, tp, mode, u)
			if a.Mode() != mode || b.Mode() != mode {
				t.Fatalf("mode in use %s/%s, want %s", a.Mode(), b.Mode(), mode)
			}
			if got := xdpAttached(t, tp.dut, "dA"); got != mode.String() {
				t.Fatalf("ip link shows XDP %q on dA, want %q", got, mode)
			}
			ra, err := openRaw(tp.h1, "a0")
			need(t, err, "raw socket")
			defer ra.Close()
			rb, err := openRaw(tp.h2, "b0")
			need(t, err, "raw socket")
			defer rb.Close()

			stop := make(chan struct{})
			wg := forwarder(a, b, stop, nil)
			exchange(t, ra, rb, "a0->b0")
			exchange(t, rb, ra, "b0->a0")
			close(stop)
			wg.Wait()

			sa, sb := a.Sockets()[0].ExtStats(), b.Sockets()[0].ExtStats()
			t.Logf("dA: %+v", sa)
			t.Logf("dB: %+v", sb)
			copies, moved := sa.Copies+sb.Copies, sa.ZeroCopySends+sb.ZeroCopySends
			if c.shared && (copies != 0 || moved < 2*1459) {
				t.Errorf("shared UMEM: %d copies, %d descriptor moves; want 0 and >= %d", copies, moved, 2*1459)
			}
			if !c.shared && (moved != 0 || copies < 2*1459) {
				t.Errorf("private UMEMs: %d copies, %d descriptor moves; want >= %d and 0", copies, moved, 2*1459)
			}
			if err := a.Close(); err != nil {
				t.Error(err)
			}
			if err := b.Close(); err != nil {
				t.Error(err)
			}
			for _, ifn := range []string{"dA", "dB"} {
				if got := xdpAttached(t, tp.dut, ifn); got != "" {
					t.Errorf("%s still has %s XDP after Close", ifn, got)
				}
			}
			if u == nil {
				return
			}
			acc := u.Accounting()
			if acc.Free != acc.Total || acc.BadFrees != 0 {
				t.Errorf("after close: %v", acc)
			}
			if err := u.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestModes checks mode selection on veth: no zero-copy, best-effort falls
// back to native.
func TestModes(t *testing.T) {
	_, tp := newTopo(t, 1500)
	err := inNS(tp.dut, func() error {
		_, err := Open("dA", Config{Mode: ModeNativeZeroCopy})
		if err == nil {
			return errors.New("native-with-zerocopy succeeded on veth (no zero-copy support expected)")
		}
		t.Logf("native-with-zerocopy on veth: %v", err)
		p, err := Open("dA", Config{})
		if err != nil {
			return err
		}
		defer p.Close()
		if p.Mode() != ModeNative {
			return fmt.Errorf("best-effort on veth got %s, want native", p.Mode())
		}
		if got := xdpAttached(t, tp.dut, "dA"); got != "native" {
			return fmt.Errorf("ip link shows %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := xdpAttached(t, tp.dut, "dA"); got != "" {
		t.Errorf("XDP left on dA after Close: %s", got)
	}

	// Sockets sharing a UMEM inherit its copy mode: a zero-copy request is
	// refused, best-effort settles on native.
	u, err := NewUMEM(UMEMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	err = inNS(tp.dut, func() error {
		a, err := Open("dA", Config{Mode: ModeGeneric, UMEM: u})
		if err != nil {
			return err
		}
		defer a.Close()
		if _, err := Open("dB", Config{Mode: ModeNativeZeroCopy, UMEM: u}); !errors.Is(err, ErrModeMismatch) {
			return fmt.Errorf("zero-copy socket on a copy-mode UMEM: want ErrModeMismatch, got %v", err)
		}
		b, err := Open("dB", Config{UMEM: u})
		if err != nil {
			return err
		}
		defer b.Close()
		if b.Mode() != ModeNative {
			return fmt.Errorf("best-effort on a shared copy-mode UMEM got %s", b.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMTUTooLarge checks the clear error for MTUs AF_XDP frames cannot hold.
func TestMTUTooLarge(t *testing.T) {
	_, tp := newTopo(t, 3000)
	err := inNS(tp.dut, func() error {
		p, err := Open("dA", Config{Mode: ModeGeneric})
		if err == nil {
			p.Close()
			return errors.New("Open succeeded with MTU 3000 and 2048-byte frames")
		}
		if !errors.Is(err, ErrMTU) {
			return fmt.Errorf("want ErrMTU, got %w", err)
		}
		t.Log(err)
		p, err = Open("dA", Config{Mode: ModeGeneric, FrameSize: FrameSize4K})
		if err != nil {
			return fmt.Errorf("4096-byte frames, MTU 3000: %w", err)
		}
		return p.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFrameAccounting floods both ports, drops a third of the frames in
// the forwarder, flaps the links, and checks that every frame of the UMEM
// is accounted for throughout and is back on the free list after Close.
func TestFrameAccounting(t *testing.T) {
	_, tp := newTopo(t, 1500)
	u, err := NewUMEM(UMEMConfig{Frames: 4096})
	if err != nil {
		t.Fatal(err)
	}
	var a, b *Port
	err = inNS(tp.dut, func() error {
		var err error
		if a, err = Open("dA", Config{Mode: ModeNative, UMEM: u, RingSize: 1024}); err != nil {
			return err
		}
		b, err = Open("dB", Config{Mode: ModeNative, UMEM: u, RingSize: 1024})
		return err
	})
	need(t, err, "open ports")
	ra, err := openRaw(tp.h1, "a0")
	need(t, err, "raw socket")
	defer ra.Close()
	rb, err := openRaw(tp.h2, "b0")
	need(t, err, "raw socket")
	defer rb.Close()

	i := 0
	stop := make(chan struct{})
	wg := forwarder(a, b, stop, func() bool { i++; return i%3 != 0 })
	flood := func(r, peer *rawSock, n int) {
		for k := 0; k < n; k++ {
			unix.Write(r.fd, testFrame(peer.mac, r.mac, uint32(k), 60+k%1400))
		}
	}
	var fl sync.WaitGroup
	fl.Add(2)
	go func() { defer fl.Done(); flood(ra, rb, 30000) }()
	go func() { defer fl.Done(); flood(rb, ra, 30000) }()
	for k := 0; k < 3; k++ { // link flaps under load: the far end, then the port itself
		time.Sleep(30 * time.Millisecond)
		run("ip", "-n", tp.h2, "link", "set", "b0", "down")
		time.Sleep(30 * time.Millisecond)
		run("ip", "-n", tp.h2, "link", "set", "b0", "up")
		time.Sleep(30 * time.Millisecond)
		run("ip", "-n", tp.dut, "link", "set", "dA", "down")
		time.Sleep(30 * time.Millisecond)
		run("ip", "-n", tp.dut, "link", "set", "dA", "up")
	}
	fl.Wait()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Hold a few frames as a user would, then drain completions.
	held := make([]*flow.Packet, 0, 8)
	for k := 0; k < 8; k++ {
		p, err := u.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	for k := 0; k < 50; k++ {
		a.Sockets()[0].reclaim()
		b.Sockets()[0].reclaim()
		time.Sleep(time.Millisecond)
	}
	acc := u.Accounting()
	t.Logf("after traffic: %v", acc)
	sa, sb := a.Sockets()[0].ExtStats(), b.Sockets()[0].ExtStats()
	t.Logf("dA: %+v", sa)
	t.Logf("dB: %+v", sb)
	if acc.Sum() != acc.Total || acc.User != len(held) || acc.BadFrees != 0 {
		t.Errorf("frames not accounted for: %v (want user=%d)", acc, len(held))
	}
	if acc.TX != 0 {
		t.Errorf("%d frames still awaiting tx completion", acc.TX)
	}
	if err := u.checkFreeList(); err != nil {
		t.Error(err)
	}
	if sa.RxPackets+sb.RxPackets == 0 {
		t.Fatal("no traffic reached the ports")
	}
	// Double free is refused and counted.
	held[0].Free()
	held[0].Free()
	if got := u.Accounting().BadFrees; got != 1 {
		t.Errorf("BadFrees = %d after a double free, want 1", got)
	}
	if err := a.Close(); err != nil {
		t.Error(err)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
	for _, p := range held[1:] { // frames outlive their sockets
		p.Free()
	}
	acc = u.Accounting()
	if acc.Free != acc.Total {
		t.Errorf("after close: %v", acc)
	}
	if err := u.checkFreeList(); err != nil {
		t.Error(err)
	}
	if err := u.Close(); err != nil {
		t.Error(err)
	}
}

// TestRecvSendAllocs asserts the forwarding hot path does not allocate.
func TestRecvSendAllocs(t *testing.T) {
	_, tp := newTopo(t, 1500)
	u, err := NewUMEM(UMEMConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a, b := openPair(t, tp, ModeNative, u)
	defer a.Close()
	defer b.Close()
	ra, err := openRaw(tp.h1, "a0")
	need(t, err, "raw socket")
	defer ra.Close()
	rb, err := openRaw(tp.h2, "b0")
	need(t, err, "raw socket")
	defer rb.Close()
	f := testFrame(rb.mac, ra.mac, 1, 64)
	pkts := make([]*flow.Packet, 32)
	got := 0
	fds := []unix.PollFd{{Fd: int32(a.Fd()), Events: unix.POLLIN}}
	allocs := testing.AllocsPerRun(200, func() {
		unix.Write(ra.fd, f)
		for k := 0; k < 20; k++ {
			n, _ := a.Recv(pkts)
			if n > 0 {
				got += n
				b.Send(pkts[:n])
				break
			}
			unix.Poll(fds, 50)
		}
		b.Recv(pkts[:0])
	})
	if allocs != 0 {
		t.Errorf("Recv+Send allocate %.1f times per frame", allocs)
	}
	if got < 190 {
		t.Errorf("only %d of 201 frames forwarded", got)
	}
}

// TestMultiQueue serves two rx queues per port (n_rxq=2) and checks that
// IPv4/UDP flows spread by the sender's queue hash are all forwarded,
// through both sockets.
func TestMultiQueue(t *testing.T) {
	l := newLab(t)
	tp := topo{h1: l.ns("h1"), dut: l.ns("dut"), h2: l.ns("h2")}
	for _, p := range [][4]string{{tp.h1, "a0", tp.dut, "dA"}, {tp.dut, "dB", tp.h2, "b0"}} {
		need(t, run("ip", "link", "add", p[1], "netns", p[0], "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
			"peer", "name", p[3], "netns", p[2], "numtxqueues", "2", "numrxqueues", "2"), "veth")
		for _, e := range [][2]string{{p[0], p[1]}, {p[2], p[3]}} {
			need(t, run("ip", "-n", e[0], "link", "set", e[1], "up"), "up")
			run("ip", "netns", "exec", e[0], "sysctl", "-qw", "net.ipv6.conf."+e[1]+".disable_ipv6=1")
		}
	}
	u, err := NewUMEM(UMEMConfig{Frames: 16384})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var a, b *Port
	err = inNS(tp.dut, func() error {
		var err error
		if a, err = Open("dA", Config{Mode: ModeNative, Queues: 2, UMEM: u, RingSize: 1024}); err != nil {
			return err
		}
		b, err = Open("dB", Config{Mode: ModeNative, Queues: 2, UMEM: u, RingSize: 1024})
		return err
	})
	need(t, err, "open 2-queue ports")
	defer a.Close()
	defer b.Close()
	if len(a.Sockets()) != 2 || a.Sockets()[1].Queue() != 1 {
		t.Fatalf("want 2 sockets, got %d", len(a.Sockets()))
	}
	var ra *rawSock
	err = inNS(tp.h1, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifi, err := interfaceByName("a0")
		if err != nil {
			return err
		}
		ra = &rawSock{fd: fd}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index})
	})
	need(t, err, "raw socket")
	defer ra.Close()
	stop := make(chan struct{})
	wg := forwarder(a, b, stop, nil)
	const flows = 64
	for i := 0; i < flows; i++ {
		f := make([]byte, 60)
		copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17})
		copy(f[26:], []byte{198, 18, 0, 1, 198, 18, 1, 2})
		binary.BigEndian.PutUint16(f[34:], uint16(1000+i*7919))
		binary.BigEndian.PutUint16(f[36:], 9)
		binary.BigEndian.PutUint16(f[38:], 26)
		if _, err := unix.Write(ra.fd, f); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && b.Stats().TxPackets < flows {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	q0, q1 := a.Sockets()[0].Stats().RxPackets, a.Sockets()[1].Stats().RxPackets
	t.Logf("rx queue 0: %d frames, queue 1: %d frames", q0, q1)
	if q0+q1 != flows || b.Stats().TxPackets != flows {
		t.Errorf("received %d+%d, sent %d; want %d", q0, q1, b.Stats().TxPackets, flows)
	}
	if q0 == 0 || q1 == 0 {
		t.Errorf("one queue got nothing (%d/%d): the sender hash did not spread the flows", q0, q1)
	}
}
