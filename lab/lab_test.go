package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestCheckPrefix(t *testing.T) {
	for _, c := range []struct {
		p  string
		ok bool
	}{
		{"198.18.0.1/24", true},
		{"198.19.255.1/32", true},
		{"198.18.0.0/15", true},
		{"198.16.0.0/14", false},
		{"198.20.0.1/24", false},
		{"10.0.0.1/8", false},
		{"2001:db8::1/64", true},
		{"2001:db8::/32", true},
		{"2001:db8::/31", false},
		{"2001:db9::1/64", false},
		{"fe80::1/64", false},
	} {
		err := CheckPrefix(netip.MustParsePrefix(c.p))
		if (err == nil) != c.ok {
			t.Errorf("CheckPrefix(%s) = %v, want ok=%v", c.p, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrAddr) {
			t.Errorf("CheckPrefix(%s) error %v does not wrap ErrAddr", c.p, err)
		}
	}
	// AddAddr refuses before touching any namespace.
	var n NS
	if err := n.AddAddr("x", "192.0.2.1/24"); !errors.Is(err, ErrAddr) {
		t.Errorf("AddAddr outside the lab range: %v, want ErrAddr", err)
	}
}

func TestNames(t *testing.T) {
	if _, err := NewNS("foo"); !errors.Is(err, ErrName) {
		t.Errorf("NewNS(foo) = %v, want ErrName", err)
	}
	if err := Cleanup("abc"); !errors.Is(err, ErrName) {
		t.Errorf("Cleanup(abc) = %v, want ErrName", err)
	}
	root := &NS{}
	if err := root.Bridge("br0"); !errors.Is(err, ErrName) {
		t.Errorf("root bridge without prefix = %v, want ErrName", err)
	}
	p := RandomPrefix()
	if !strings.HasPrefix(p, "xvs") || len(p) != 7 {
		t.Errorf("RandomPrefix() = %q", p)
	}
}

func TestInsertTag(t *testing.T) {
	frame := make([]byte, 64)
	for i := range frame {
		frame[i] = byte(i)
	}
	buf := make([]byte, 128)
	copy(buf, frame[:60])
	n := insertTag(buf, 60, 0x8100, 0x2064)
	if n != 64 {
		t.Fatalf("n = %d, want 64", n)
	}
	if !bytes.Equal(buf[:12], frame[:12]) || binary.BigEndian.Uint16(buf[12:]) != 0x8100 ||
		binary.BigEndian.Uint16(buf[14:]) != 0x2064 || !bytes.Equal(buf[16:64], frame[12:60]) {
		t.Fatalf("tag inserted wrongly: % x", buf[:64])
	}
	// Truncation: keep what fits.
	small := make([]byte, 20)
	copy(small, frame)
	if n := insertTag(small, 20, 0x88a8, 5); n != 24 || small[19] != 15 || small[12] != 0x88 {
		t.Fatalf("truncated insert: n=%d % x", n, small)
	}
}

func udpExchange(t *testing.T, from, to *NS, dst string) {
	t.Helper()
	var conn *net.UDPConn
	if err := to.Do(func() (err error) {
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(dst), 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := conn.LocalAddr().(*net.UDPAddr)
	if err := from.Do(func() error {
		c, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello lab"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 64)
	n, _, err := conn.ReadFromUDP(b)
	if err != nil || string(b[:n]) != "hello lab" {
		t.Fatalf("udp to %s: %q, %v", dst, b[:n], err)
	}
}

func TestTopology(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	sw, err := l.NS("sw")
	if err != nil {
		t.Fatal(err)
	}
	// a -- [br0 in sw] -- b
	if err := sw.Bridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := sw.SetUp("br0"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		ns         *NS
		port, addr string
		addr6      string
	}{{a, "pa", "198.18.0.1/24", "2001:db8::1/64"}, {b, "pb", "198.18.0.2/24", "2001:db8::2/64"}} {
		if err := l.Wire(h.ns, "eth0", sw, h.port); err != nil {
			t.Fatal(err)
		}
		if err := sw.SetMaster(h.port, "br0"); err != nil {
			t.Fatal(err)
		}
		if err := h.ns.AddAddr("eth0", h.addr); err != nil {
			t.Fatal(err)
		}
		if err := h.ns.AddAddr("eth0", h.addr6); err != nil {
			t.Fatal(err)
		}
		if err := h.ns.SetMTU("eth0", 1400); err != nil {
			t.Fatal(err)
		}
		on, err := h.ns.TxChecksum("eth0")
		if err != nil || on {
			t.Fatalf("tx checksum after Wire: on=%v err=%v", on, err)
		}
	}
	lk, err := a.Link("eth0")
	if err != nil || lk.Attrs().MTU != 1400 {
		t.Fatalf("MTU: %v %v", lk, err)
	}
	udpExchange(t, a, b, "198.18.0.2")
	udpExchange(t, b, a, "2001:db8::1")

	// Exec runs inside the namespace.
	out, err := b.Exec(context.Background(), "ip", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(string(out), "198.18.0.2/24") {
		t.Fatalf("Exec: %s %v", out, err)
	}
	// Down stops traffic being possible to configure; check flags.
	if err := a.SetDown("eth0"); err != nil {
		t.Fatal(err)
	}
	lk, _ = a.Link("eth0")
	if lk.Attrs().Flags&net.FlagUp != 0 {
		t.Fatal("eth0 still up after SetDown")
	}
}

func TestDoRestoresThread(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Veth("x0", a, "x1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		err := a.Do(func() error {
			// The package-level netlink handle works in the current
			// thread's namespace.
			_, err := netlink.LinkByName("x0")
			return err
		})
		if err != nil {
			t.Fatalf("inside: %v", err)
		}
	}
	wantErr := errors.New("boom")
	if err := a.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("Do error = %v", err)
	}
	if err := a.Do(func() error { panic("p") }); err == nil {
		t.Fatal("panic not reported")
	}
	// Every runtime thread must be back in the root namespace: sample
	// many locked goroutines.
	for i := 0; i < 50; i++ {
		done := make(chan error)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			h, err := netns.Get()
			if err != nil {
				done <- err
				return
			}
			defer h.Close()
			if !h.Equal(rootNS) {
				done <- errors.New("thread left in a lab namespace")
				return
			}
			done <- nil
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRawVLAN(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wire(a, "v0", b, "v1"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		ns   *NS
		name string
	}{{a, "v0"}, {b, "v1"}} {
		if err := e.ns.Quiet(e.name); err != nil {
			t.Fatal(err)
		}
	}
	ra, err := a.OpenRaw("v0")
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := b.OpenRaw("v1")
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	mk := func(size int, tags ...uint16) []byte {
		f := make([]byte, 0, size)
		f = append(f, 0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1)
		for _, tci := range tags {
			f = binary.BigEndian.AppendUint16(f, 0x8100)
			f = binary.BigEndian.AppendUint16(f, tci)
		}
		f = binary.BigEndian.AppendUint16(f, 0x88b5) // local experimental
		for len(f) < size {
			f = append(f, byte(len(f)))
		}
		return f
	}
	isTest := func(f []byte) bool { return len(f) >= 6 && bytes.Equal(f[:6], []byte{2, 0, 0, 0, 0, 2}) }
	buf := make([]byte, 2048)
	for _, f := range [][]byte{mk(60), mk(64, 100), mk(1518, 4095), mk(68, 7|5<<13)} {
		if err := ra.Send(f); err != nil {
			t.Fatal(err)
		}
		n, err := rb.RecvMatch(buf, 2*time.Second, isTest)
		if err != nil {
			t.Fatalf("frame of %d: %v", len(f), err)
		}
		if !bytes.Equal(buf[:n], f) {
			t.Fatalf("frame of %d changed on the wire:\n got % x\nwant % x", len(f), buf[:n], f)
		}
	}
	// Our own sends are not seen; nothing further arrives.
	if n, err := ra.RecvMatch(buf, 100*time.Millisecond, isTest); !errors.Is(err, ErrTimeout) {
		t.Fatalf("unexpected frame on sender: %d %v", n, err)
	}
}

func TestCleanupAfterCrash(t *testing.T) {
	Require(t)
	// A child process that dies: its pid is then free.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	prefix := RandomPrefix()
	t.Cleanup(func() { Cleanup(prefix) })
	// Leave things behind as a crashed process would.
	ns, err := NewNS(prefix + "-left")
	if err != nil {
		t.Fatal(err)
	}
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Veth(prefix+"r0", ns, "in0"); err != nil {
		t.Fatal(err)
	}
	if err := root.Bridge(prefix + "br"); err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, prefix), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A live lab must survive CleanupStale.
	live, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.NS("keep"); err != nil {
		t.Fatal(err)
	}

	cleaned, err := CleanupStale()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range cleaned {
		found = found || p == prefix
		if p == live.Prefix {
			t.Fatal("CleanupStale removed a live lab")
		}
	}
	if !found {
		t.Fatalf("CleanupStale cleaned %v, want %s", cleaned, prefix)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, prefix+"-left")); !os.IsNotExist(err) {
		t.Fatalf("namespace survived: %v", err)
	}
	for _, name := range []string{prefix + "r0", prefix + "br"} {
		if _, err := root.nl.LinkByName(name); err == nil {
			t.Fatalf("link %s survived", name)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live.Prefix+"-keep")); err != nil {
		t.Fatalf("live lab namespace gone: %v", err)
	}
	// Idempotent.
	if err := Cleanup(prefix); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live.Prefix+"-keep")); !os.IsNotExist(err) {
		t.Fatalf("namespace survived Close: %v", err)
	}
}

func TestDoGoexit(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	err = a.Do(func() error {
		runtime.Goexit()
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "exited its goroutine") {
		t.Fatalf("Goexit in Do: %v", err)
	}
}

func TestNeighRoute(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wire(a, "e0", b, "e1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		ns        *NS
		dev, addr string
	}{{a, "e0", "198.18.2.1/24"}, {b, "e1", "198.18.2.2/24"}} {
		if err := s.ns.AddAddr(s.dev, s.addr); err != nil {
			t.Fatal(err)
		}
	}
	macB, err := b.MAC("e1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeigh("e0", "198.18.2.2", macB); err != nil {
		t.Fatal(err)
	}
	if err := a.AddNeigh("e0", "10.1.1.1", macB); !errors.Is(err, ErrAddr) {
		t.Fatalf("neighbour outside lab range: %v", err)
	}
	if err := b.AddAddr("lo", "198.19.9.9/32"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddRoute("e0", "198.19.9.0/24", "198.18.2.2"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddRoute("e0", "0.0.0.0/0", "198.18.2.2"); !errors.Is(err, ErrAddr) {
		t.Fatalf("default route: %v", err)
	}
	out, err := a.Exec(context.Background(), "ip", "neigh", "show", "dev", "e0")
	if err != nil || !strings.Contains(string(out), "PERMANENT") {
		t.Fatalf("neigh: %s %v", out, err)
	}
	udpExchange(t, a, b, "198.19.9.9")
}

func TestMove(t *testing.T) {
	l := New(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := l.Name("m0"), l.Name("m1")
	if err := l.Root().Veth(r0, l.Root(), r1); err != nil {
		t.Fatal(err)
	}
	if err := l.Root().Move(r1, a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Link(r1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Root().Link(r1); err == nil {
		t.Fatal("link still in the root namespace")
	}
	if err := a.Veth("q0", a, "q1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Move("q0", l.Root()); !errors.Is(err, ErrName) {
		t.Fatalf("unprefixed link into root: %v", err)
	}
	// Close removes the root end too.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	root, _ := Root()
	defer root.Close()
	if _, err := root.Link(r0); err == nil {
		t.Fatal("root veth end survived Close")
	}
}
