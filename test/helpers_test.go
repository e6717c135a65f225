package test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"xvs/lab"
)

// xvsdBin is the xvsd binary built once by TestMain (or given by
// $XVSD_BIN); buildErr says why it could not be built.
var (
	xvsdBin  string
	buildErr error
)

func TestMain(m *testing.M) { lab.RunWithXvsd(m, &xvsdBin, &buildErr) }

// node is a namespace running xvsd, plus the lab it lives in.
type node struct {
	t   *testing.T
	lab *lab.Lab
	ns  *lab.NS
	x   *lab.Xvsd
}

// newNode builds a lab with a "node" namespace and starts xvsd in it. The
// process is killed and its log shown (on failure) before the lab goes.
func newNode(t *testing.T) *node {
	t.Helper()
	l := lab.New(t)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	for _, tool := range []string{"ovs-vsctl", "ovs-appctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			lab.Unavailable(t, tool+" not installed")
		}
	}
	ns, err := l.NS("node")
	if err != nil {
		lab.Unavailable(t, err.Error())
	}
	x, err := lab.StartXvsd(ns, xvsdBin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, lab: l, ns: ns, x: x}
	t.Cleanup(func() {
		if !x.Running() {
			t.Errorf("xvsd was not running at the end of the test (crashed, or stopped from outside)")
		}
		x.Kill9()
		if t.Failed() || os.Getenv("XVS_E2E_LOG") != "" {
			b, _ := os.ReadFile(x.Log)
			// Standard output and error hold panics and fatal errors.
			o, _ := os.ReadFile(filepath.Join(x.Dir, "xvsd.out"))
			s := string(b) + string(o)
			if len(s) > 6000 {
				s = "..." + s[len(s)-6000:]
			}
			t.Logf("xvsd log:\n%s", s)
		}
	})
	return n
}

// vsctl runs ovs-vsctl and fails the test on error.
func (n *node) vsctl(args ...string) string {
	n.t.Helper()
	out, err := n.x.Vsctl(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// appctl runs ovs-appctl and fails the test on error.
func (n *node) appctl(args ...string) string {
	n.t.Helper()
	out, err := n.x.Appctl(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// get reads one column of one row (ovs-vsctl get), unquoted.
func (n *node) get(table, record, column string) string {
	n.t.Helper()
	out, err := n.x.Vsctl("get", table, record, column)
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.Trim(strings.TrimSpace(out), `"`)
}

// addBridge adds a netdev bridge.
func (n *node) addBridge(name string) {
	n.t.Helper()
	n.vsctl("add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev")
}

// host is a namespace with one interface eth0 wired to a node port.
type host struct {
	name string
	ns   *lab.NS
	ip   string // without prefix length
	mac  net.HardwareAddr
}

// newHost creates namespace name with eth0 (address cidr, may be "") wired
// to the node-side veth end port (which is not added to any bridge).
func (n *node) newHost(name, port, cidr string) *host {
	n.t.Helper()
	ns, err := n.lab.NS(name)
	if err != nil {
		n.t.Fatal(err)
	}
	n.wire(ns, "eth0", port)
	if err := ns.Quiet("eth0"); err != nil {
		n.t.Fatal(err)
	}
	h := &host{name: name, ns: ns}
	if cidr != "" {
		if err := ns.AddAddr("eth0", cidr); err != nil {
			n.t.Fatal(err)
		}
		h.ip, _, _ = strings.Cut(cidr, "/")
	}
	if h.mac, err = ns.MAC("eth0"); err != nil {
		n.t.Fatal(err)
	}
	return h
}

// wire connects other/otherName to the node's port (veth, both ends up,
// TX checksum offload off on both).
func (n *node) wire(other *lab.NS, otherName, port string) {
	n.t.Helper()
	if err := n.lab.Wire(other, otherName, n.ns, port); err != nil {
		n.t.Fatal(err)
	}
	if err := n.ns.Quiet(port); err != nil {
		n.t.Fatal(err)
	}
}

// ping sends count pings from h to ip and reports whether all got answers.
func (h *host) ping(ip string, count int, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
	defer cancel()
	_, err := h.ns.Exec(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2",
		"-W", strconv.Itoa(int(wait/time.Second)), ip)
	return err
}

// mustPing fails the test unless h reaches ip (retrying for up to 5 s, as
// the first packets may wait for learning and ARP).
func (h *host) mustPing(t *testing.T, ip string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = h.ping(ip, 1, time.Second); err == nil {
			return
		}
	}
	t.Fatalf("%s cannot reach %s: %v", h.name, ip, err)
}

// mustNotPing fails the test if h reaches ip.
func (h *host) mustNotPing(t *testing.T, ip string) {
	t.Helper()
	if err := h.ping(ip, 2, time.Second); err == nil {
		t.Fatalf("%s reaches %s but must not", h.name, ip)
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// udpStream sends numbered UDP datagrams from one namespace to another at a
// fixed rate and records which sequence numbers arrived, so tests can tell
// exactly what was lost while they changed the switch.
type udpStream struct {
	send, recv int // sockets
	interval   time.Duration
	stop       chan struct{}
	wg         sync.WaitGroup

	mu       sync.Mutex
	sent     uint64
	got      map[uint64]bool
	last     int64 // highest sequence number received, -1 none
	dup      int
	sendErrs int
}

const streamPort = 7000

// startStream starts a stream from src to dst (dst.ip, UDP port streamPort
// +off) with one datagram every interval. Stop it with stop.
func startStream(t *testing.T, src, dst *host, off int, interval time.Duration) *udpStream {
	t.Helper()
	s := &udpStream{send: -1, recv: -1, interval: interval, stop: make(chan struct{}), got: map[uint64]bool{}, last: -1}
	port := streamPort + off
	err := dst.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.recv = fd
		var a [4]byte
		copy(a[:], net.ParseIP(dst.ip).To4())
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: a})
	})
	if err != nil {
		t.Fatalf("stream receiver in %s: %v", dst.name, err)
	}
	err = src.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.send = fd
		var a [4]byte
		copy(a[:], net.ParseIP(dst.ip).To4())
		return unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: a})
	})
	if err != nil {
		unix.Close(s.recv)
		t.Fatalf("stream sender in %s: %v", src.name, err)
	}
	s.wg.Add(2)
	go s.receive()
	go s.transmit()
	t.Cleanup(s.close)
	return s
}

func (s *udpStream) transmit() {
	defer s.wg.Done()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	var b [64]byte
	for seq := uint64(0); ; seq++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint64(b[:], seq)
		_, err := unix.Write(s.send, b[:])
		s.mu.Lock()
		s.sent = seq + 1
		if err != nil {
			s.sendErrs++
		}
		s.mu.Unlock()
	}
}

func (s *udpStream) receive() {
	defer s.wg.Done()
	var b [128]byte
	for {
		n, err := unix.Read(s.recv, b[:])
		if n >= 8 && err == nil {
			seq := binary.BigEndian.Uint64(b[:8])
			s.mu.Lock()
			if s.got[seq] {
				s.dup++
			}
			s.got[seq] = true
			if int64(seq) > s.last {
				s.last = int64(seq)
			}
			s.mu.Unlock()
			continue
		}
		select {
		case <-s.stop:
			return
		default:
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// received reports how many distinct datagrams arrived so far.
func (s *udpStream) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

// lastArrival returns the highest sequence number received, -1 if none.
func (s *udpStream) lastArrival() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// mark returns the next sequence number to be sent.
func (s *udpStream) mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// lost returns the sequence numbers in [from, to) that never arrived, and
// the number of duplicates seen overall.
func (s *udpStream) lost(from, to uint64) (missing []uint64, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := from; q < to; q++ {
		if !s.got[q] {
			missing = append(missing, q)
		}
	}
	return missing, s.dup
}

// waitArrived waits until datagram seq arrived or d passed.
func (s *udpStream) waitArrived(seq uint64, d time.Duration) bool {
	return waitFor(d, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.got[seq]
	})
}

// halt stops sending; after a grace period for frames in flight, the
// receiver stops too. It returns the number of datagrams sent.
func (s *udpStream) halt() uint64 {
	select {
	case <-s.stop:
		return s.mark()
	default:
	}
	// Stop the sender first (by closing stop after waiting for in-flight).
	close(s.stop)
	s.wg.Wait()
	return s.mark()
}

func (s *udpStream) close() {
	s.halt()
	if s.send >= 0 {
		unix.Close(s.send)
		s.send = -1
	}
	if s.recv >= 0 {
		unix.Close(s.recv)
		s.recv = -1
	}
}

// Ethernet frame helpers for raw-frame tests.

var bcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// etherFrame builds an untagged (vid < 0) or 802.1Q-tagged frame of
// ethertype 0x88b5 (local experimental) whose payload starts with marker.
func etherFrame(dst, src net.HardwareAddr, vid int, marker string) []byte {
	f := make([]byte, 0, 64)
	f = append(f, dst...)
	f = append(f, src...)
	if vid >= 0 {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, uint16(vid))
	}
	f = binary.BigEndian.AppendUint16(f, 0x88b5)
	f = append(f, marker...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// frameVID returns the VID of the outer 802.1Q tag of frame, or -1.
func frameVID(f []byte) int {
	if len(f) >= 18 && binary.BigEndian.Uint16(f[12:14]) == 0x8100 {
		return int(binary.BigEndian.Uint16(f[14:16]) & 0xfff)
	}
	return -1
}

// hasMarker reports whether the frame (tagged or not) is an 0x88b5 frame
// whose payload starts with marker.
func hasMarker(f []byte, marker string) bool {
	off := 12
	for off+2 <= len(f) && binary.BigEndian.Uint16(f[off:off+2]) == 0x8100 {
		off += 4
	}
	if off+2 > len(f) || binary.BigEndian.Uint16(f[off:off+2]) != 0x88b5 {
		return false
	}
	return strings.HasPrefix(string(f[off+2:]), marker)
}

// openRaw opens a raw socket closed at the end of the test.
func openRaw(t *testing.T, ns *lab.NS, ifname string) *lab.Raw {
	t.Helper()
	r, err := ns.OpenRaw(ifname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// expectFrame waits for a frame carrying marker on r and returns it; nil
// when none arrived within d.
func expectFrame(r *lab.Raw, marker string, d time.Duration) []byte {
	buf := make([]byte, 2048)
	n, err := r.RecvMatch(buf, d, func(f []byte) bool { return hasMarker(f, marker) })
	if err != nil {
		return nil
	}
	return buf[:n]
}
