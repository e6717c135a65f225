package xdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"xvs/datapath"
	"xvs/flow"
	"xvs/lab"
)

// afpTopo is  [ns a] a0 -- pa [ns dp] pb -- b0 [ns b]  with AF_PACKET
// devices on pa and pb and raw sockets on a0 and b0.
type afpTopo struct {
	a, b   *lab.NS
	dp     *lab.NS
	pa, pb *AFPacket
	ra, rb *lab.Raw
}

func newAFPTopo(t *testing.T) *afpTopo {
	l := lab.New(t)
	var tp afpTopo
	spaces := map[string]*lab.NS{}
	for _, n := range []string{"a", "b", "dp"} {
		ns, err := l.NS(n)
		if err != nil {
			t.Fatal(err)
		}
		spaces[n] = ns
	}
	tp.a, tp.b, tp.dp = spaces["a"], spaces["b"], spaces["dp"]
	for _, w := range [][3]string{{"a", "a0", "pa"}, {"b", "b0", "pb"}} {
		host := spaces[w[0]]
		if err := l.Wire(host, w[1], tp.dp, w[2]); err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct {
			ns   *lab.NS
			name string
		}{{host, w[1]}, {tp.dp, w[2]}} {
			if err := e.ns.Quiet(e.name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tp.dp.Do(func() (err error) {
		if tp.pa, err = NewAFPacket("pa", AFPacketConfig{Reason: "test: no XDP", RetireTimeout: time.Millisecond}); err != nil {
			return err
		}
		tp.pb, err = NewAFPacket("pb", AFPacketConfig{Reason: "test: no XDP"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.pa.Close(); tp.pb.Close() })
	var err error
	if tp.ra, err = spaces["a"].OpenRaw("a0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.ra.Close() })
	if tp.rb, err = spaces["b"].OpenRaw("b0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.rb.Close() })
	return &tp
}

const afpTestType = 0x88b5

// afpFrame builds a test frame of size bytes (tags included) carrying
// seq, with the given VLAN TCIs.
func afpFrame(size int, seq uint32, tcis ...uint16) []byte {
	f := []byte{0x02, 0, 0, 0, 0xb, 0, 0x02, 0, 0, 0, 0xa, 0}
	for _, tci := range tcis {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, tci)
	}
	f = binary.BigEndian.AppendUint16(f, afpTestType)
	f = binary.BigEndian.AppendUint32(f, seq)
	for len(f) < size {
		f = append(f, byte(len(f)*7+int(seq)))
	}
	return f
}

// afpSeq returns the sequence number of a test frame, or false.
func afpSeq(f []byte) (uint32, bool) {
	off := 12
	for len(f) >= off+2 && binary.BigEndian.Uint16(f[off:]) == 0x8100 {
		off += 4
	}
	if len(f) < off+6 || binary.BigEndian.Uint16(f[off:]) != afpTestType {
		return 0, false
	}
	return binary.BigEndian.Uint32(f[off+2:]), true
}

// forward moves frames from src to dst until want test frames went
// through or the timeout expires, and returns how many test frames it
// forwarded.
func forward(t *testing.T, src, dst *AFPacket, want int, timeout time.Duration) int {
	t.Helper()
	var batch [datapath.BatchSize]*flow.Packet
	got := 0
	deadline := time.Now().Add(timeout)
	for got < want && time.Now().Before(deadline) {
		n, err := src.Recv(batch[:])
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range batch[:n] {
			if _, ok := afpSeq(p.Data()); ok {
				got++
			}
		}
		if sent := dst.Send(batch[:n]); sent != n {
			t.Fatalf("%s sent %d of %d: %v", dst.Name(), sent, n, dst.LastError())
		}
		if n == 0 {
			unix.Poll([]unix.PollFd{{Fd: int32(src.Fd()), Events: unix.POLLIN}}, 5)
		}
	}
	return got
}

func TestAFPacketForward(t *testing.T) {
	tp := newAFPTopo(t)
	if tp.pa.Reason() != "test: no XDP" || tp.pa.MTU() != 1500 || tp.pa.MaxFrame() != 1518 {
		t.Fatalf("reason %q mtu %d max %d", tp.pa.Reason(), tp.pa.MTU(), tp.pa.MaxFrame())
	}
	if lk, err := tp.dp.Link("pa"); err != nil || lk.Attrs().Promisc == 0 {
		t.Fatalf("pa not promiscuous while open: %v", err)
	}
	type frame struct {
		size int
		tcis []uint16
	}
	var frames []frame
	for _, s := range []int{60, 61, 64, 100, 128, 256, 511, 512, 1000, 1024, 1280, 1500, 1513, 1514} {
		frames = append(frames, frame{size: s})
	}
	for _, s := range []int{64, 65, 200, 1024, 1517, 1518} {
		frames = append(frames, frame{size: s, tcis: []uint16{uint16(s) & 0xfff}})
	}
	frames = append(frames, frame{size: 64, tcis: []uint16{0}}, frame{size: 80, tcis: []uint16{5<<13 | 1<<12 | 4094}})

	buf := make([]byte, 2048)
	dirs := []struct {
		name     string
		in, out  *lab.Raw
		from, to *AFPacket
	}{{"a->b", tp.ra, tp.rb, tp.pa, tp.pb}, {"b->a", tp.rb, tp.ra, tp.pb, tp.pa}}
	seq := uint32(0)
	for _, d := range dirs {
		sent := map[uint32][]byte{}
		for _, fr := range frames {
			seq++
			f := afpFrame(fr.size, seq, fr.tcis...)
			sent[seq] = f
			if err := d.in.Send(f); err != nil {
				t.Fatal(err)
			}
		}
		if got := forward(t, d.from, d.to, len(frames), 3*time.Second); got != len(frames) {
			t.Fatalf("%s: forwarded %d of %d frames", d.name, got, len(frames))
		}
		for range frames {
			n, err := d.out.RecvMatch(buf, 2*time.Second, func(f []byte) bool { _, ok := afpSeq(f); return ok })
			if err != nil {
				t.Fatalf("%s: %v (still missing %d)", d.name, err, len(sent))
			}
			s, _ := afpSeq(buf[:n])
			want, ok := sent[s]
			if !ok {
				t.Fatalf("%s: frame %d delivered twice or unknown", d.name, s)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("%s: frame %d (%d bytes) changed:\n got % x\nwant % x", d.name, s, len(want), buf[:n], want)
			}
			delete(sent, s)
		}
		// Exactly once: nothing more arrives, and the sending device
		// does not see its own transmissions.
		if n, err := d.out.RecvMatch(buf, 50*time.Millisecond, func(f []byte) bool { _, ok := afpSeq(f); return ok }); !errors.Is(err, lab.ErrTimeout) {
			t.Fatalf("%s: extra frame (%d bytes): %v", d.name, n, err)
		}
		if got := forward(t, d.to, d.from, 1, 30*time.Millisecond); got != 0 {
			t.Fatalf("%s: %s received %d of its own frames", d.name, d.to.Name(), got)
		}
	}
	// Frames other sockets send out of pa are not received by pa.
	other, err := tp.dp.OpenRaw("pa")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Send(afpFrame(100, 999)); err != nil {
		t.Fatal(err)
	}
	if n, err := tp.ra.RecvMatch(buf, 2*time.Second, func(f []byte) bool { _, ok := afpSeq(f); return ok }); err != nil || n != 100 {
		t.Fatalf("frame sent by another socket: %d %v", n, err)
	}
	if got := forward(t, tp.pa, tp.pb, 1, 30*time.Millisecond); got != 0 {
		t.Fatal("pa received an outgoing frame")
	}
	for _, dev := range []*AFPacket{tp.pa, tp.pb} {
		st := dev.Stats()
		if st.RxPackets != uint64(len(frames)) || st.TxPackets != uint64(len(frames)) ||
			st.RxDropped+st.RxErrors+st.TxDropped+st.TxErrors != 0 {
			t.Errorf("%s stats %+v", dev.Name(), st)
		}
		if dev.Pool().InUse() != 0 {
			t.Errorf("%s leaked %d packets", dev.Name(), dev.Pool().InUse())
		}
	}
}

func TestAFPacketMTU(t *testing.T) {
	tp := newAFPTopo(t)
	big, _ := NewHeapPool(2, 4000)
	p := big.Get()
	p.Len = copy(p.Buf[p.Off:], afpFrame(1519, 1, 7))
	q := big.Get()
	p2 := tp.pa.Pool().Get()
	p2.Len = 10 // runt
	q.Len = copy(q.Buf[q.Off:], afpFrame(1518, 2, 7))
	if sent := tp.pa.Send([]*flow.Packet{p, p2, q}); sent != 1 {
		t.Fatalf("sent %d, want only the 1518-byte frame", sent)
	}
	if st := tp.pa.Stats(); st.TxErrors != 2 || st.TxPackets != 1 || !errors.Is(tp.pa.LastError(), ErrFrameTooLarge) {
		t.Fatalf("stats %+v, last error %v", st, tp.pa.LastError())
	}
	if big.InUse() != 0 || tp.pa.Pool().InUse() != 0 {
		t.Fatal("Send did not free every packet")
	}
	buf := make([]byte, 2048)
	n, err := tp.ra.RecvMatch(buf, 2*time.Second, func(f []byte) bool { _, ok := afpSeq(f); return ok })
	if s, _ := afpSeq(buf[:n]); err != nil || s != 2 || n != 1518 {
		t.Fatalf("on the wire: seq %d len %d err %v", s, n, err)
	}

	// Configuration: the interface MTU must fit the pool and the ring.
	small, _ := NewHeapPool(4, 1000)
	err = tp.dp.Do(func() error {
		_, err := NewAFPacket("pa", AFPacketConfig{Pool: small})
		return err
	})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("MTU 1500 with a 1000-byte pool: %v", err)
	}
	if err := tp.dp.SetMTU("pb", 9000); err != nil {
		t.Fatal(err)
	}
	err = tp.dp.Do(func() error {
		_, err := NewAFPacket("pb", AFPacketConfig{BlockSize: 8192})
		return err
	})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("MTU 9000 with 8 KiB blocks: %v", err)
	}
	err = tp.dp.Do(func() error {
		_, err := NewAFPacket("nonexistent", AFPacketConfig{})
		return err
	})
	if err == nil {
		t.Fatal("AF_PACKET on a missing interface")
	}
}

// TestAFPacketJumbo forwards 9000-MTU frames (a ring block holds them).
func TestAFPacketJumbo(t *testing.T) {
	tp := newAFPTopo(t)
	tp.pa.Close()
	tp.pb.Close()
	for _, e := range []struct {
		ns  *lab.NS
		ifn string
	}{{tp.a, "a0"}, {tp.b, "b0"}, {tp.dp, "pa"}, {tp.dp, "pb"}} {
		if err := e.ns.SetMTU(e.ifn, 9000); err != nil {
			t.Fatal(err)
		}
	}
	var a, b *AFPacket
	if err := tp.dp.Do(func() (err error) {
		if a, err = NewAFPacket("pa", AFPacketConfig{}); err != nil {
			return err
		}
		b, err = NewAFPacket("pb", AFPacketConfig{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if a.MaxFrame() != 9018 || a.Pool().FrameSize() < 9018 {
		t.Fatalf("max frame %d", a.MaxFrame())
	}
	frames := [][]byte{afpFrame(9014, 1), afpFrame(9018, 2, 100), afpFrame(60, 3)}
	for _, f := range frames {
		if err := tp.ra.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	if got := forward(t, a, b, len(frames), 3*time.Second); got != len(frames) {
		t.Fatalf("forwarded %d of %d", got, len(frames))
	}
	buf := make([]byte, 10000)
	for _, want := range frames {
		n, err := tp.rb.RecvMatch(buf, 2*time.Second, func(f []byte) bool { _, ok := afpSeq(f); return ok })
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("jumbo frame of %d: got %d bytes, %v", len(want), n, err)
		}
	}
}

// TestAFPacketAllocs: steady-state Recv and Send allocate nothing.
func TestAFPacketAllocs(t *testing.T) {
	tp := newAFPTopo(t)
	const runs = 100
	const per = 4
	// Queue enough frames in pa's ring for every run (plus the warm-up).
	for i := 0; i < (runs+1)*per; i++ {
		if err := tp.ra.Send(afpFrame(128, uint32(i), 10)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the ring retire its blocks
	batch := make([]*flow.Packet, per)
	total := 0
	allocs := testing.AllocsPerRun(runs, func() {
		n, _ := tp.pa.Recv(batch)
		total += n
		tp.pb.Send(batch[:n])
	})
	if allocs != 0 {
		t.Errorf("AF_PACKET Recv/Send allocate %v per run", allocs)
	}
	if total != (runs+1)*per {
		t.Errorf("forwarded %d of %d frames during the allocation run", total, (runs+1)*per)
	}
	if st := tp.pb.Stats(); st.TxPackets != uint64(total) {
		t.Errorf("pb stats %+v", st)
	}
}

// TestAFPacketRingFull: frames lost to a full ring are counted as rx
// drops, and the device keeps working afterwards.
func TestAFPacketRingFull(t *testing.T) {
	tp := newAFPTopo(t)
	tp.pa.Close()
	if tp.pa.Fd() != -1 {
		t.Fatal("Fd after Close")
	}
	if lk, err := tp.dp.Link("pa"); err != nil || lk.Attrs().Promisc != 0 {
		t.Fatalf("pa still promiscuous after Close: %v", err)
	}
	var small *AFPacket
	if err := tp.dp.Do(func() (err error) {
		small, err = NewAFPacket("pa", AFPacketConfig{BlockSize: 4096, BlockCount: 2, RetireTimeout: time.Millisecond})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	const sent = 50
	for i := 0; i < sent; i++ {
		if err := tp.ra.Send(afpFrame(1000, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	var batch [datapath.BatchSize]*flow.Packet
	got := 0
	for {
		n, err := small.Recv(batch[:])
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		for _, p := range batch[:n] {
			if s, ok := afpSeq(p.Data()); !ok || len(p.Data()) != 1000 {
				t.Fatalf("bad frame %d of %d bytes", s, len(p.Data()))
			}
			p.Free()
		}
		got += n
	}
	st := small.Stats()
	if got == 0 || got >= sent || st.RxPackets != uint64(got) || st.RxDropped != uint64(sent-got) {
		t.Fatalf("received %d of %d, stats %+v", got, sent, st)
	}
	if err := tp.ra.Send(afpFrame(60, 1000)); err != nil {
		t.Fatal(err)
	}
	if f := devRecvMatch(t, small, 2*time.Second, func(f []byte) bool { s, ok := afpSeq(f); return ok && s == 1000 }); len(f) != 60 {
		t.Fatalf("after overflow: %d bytes", len(f))
	}
}
