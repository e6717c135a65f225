package xdptier

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"xvs/lab"
)

// bed is one test topology: a node namespace running xvsd (bridge br0)
// and namespaces wired to its ports.
type bed struct {
	t    *testing.T
	l    *lab.Lab
	node *lab.NS
	x    *lab.Xvsd
}

// newBed builds a lab with the node namespace (xvsd is started by start).
func newBed(t *testing.T) *bed {
	t.Helper()
	l := lab.New(t)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	for _, tool := range []string{"ovs-vsctl", "ovs-appctl", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			lab.Unavailable(t, tool+" not installed")
		}
	}
	b := &bed{t: t, l: l}
	b.node = b.ns("node")
	return b
}

// ns creates a namespace in which links never speak IPv6 on their own.
func (b *bed) ns(name string) *lab.NS {
	b.t.Helper()
	ns, err := b.l.NS(name)
	if err != nil {
		lab.Unavailable(b.t, err.Error())
	}
	for _, k := range []string{"net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/all/disable_ipv6"} {
		b.must(ns.Sysctl(k, "1"))
	}
	return ns
}

func (b *bed) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// gro turns GRO on, which gives a veth NAPI: without it the kernel drops
// frames XDP_REDIRECTed into the veth's peer.
func (b *bed) gro(ns *lab.NS, ifname string) {
	b.t.Helper()
	if _, err := ns.Exec(context.Background(), "ethtool", "-K", ifname, "gro", "on"); err != nil {
		lab.Unavailable(b.t, err.Error())
	}
}

// host is a namespace whose eth0 is wired to a node port; tx is a raw
// socket for sending (captures use their own socket).
type host struct {
	name string
	ns   *lab.NS
	tx   *lab.Raw
}

// host creates namespace name with eth0 wired to the node's port (the
// port is not added to the bridge here).
func (b *bed) host(name, port string) *host {
	b.t.Helper()
	ns := b.ns(name)
	b.must(b.l.Wire(ns, "eth0", b.node, port))
	b.gro(ns, "eth0")
	tx, err := ns.OpenRaw("eth0")
	b.must(err)
	b.t.Cleanup(func() { tx.Close() })
	return &host{name: name, ns: ns, tx: tx}
}

// send transmits frames from h, failing the test on error.
func (h *host) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if err := h.tx.Send(f); err != nil {
			t.Fatal(err)
		}
	}
}

// start starts a fresh xvsd (new database) with the kernel tier on or off
// and creates br0 (netdev). Call stop before starting another one.
func (b *bed) start(offload bool) {
	b.t.Helper()
	dir := b.t.TempDir()
	x, err := lab.StartXvsd(b.node, xvsdBin, dir)
	b.must(err)
	b.x = x
	b.t.Cleanup(func() {
		x.Kill9()
		if b.t.Failed() || os.Getenv("XVS_E2E_LOG") != "" {
			l, _ := os.ReadFile(x.Log)
			o, _ := os.ReadFile(filepath.Join(x.Dir, "xvsd.out"))
			s := string(l) + string(o)
			if len(s) > 4000 {
				s = "..." + s[len(s)-4000:]
			}
			b.t.Logf("xvsd log (%s):\n%s", dir, s)
		}
	})
	b.vsctl("set", "Open_vSwitch", ".", "other_config:xdp-flow-offload="+strconv.FormatBool(offload))
	b.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
}

// stop stops xvsd cleanly (its XDP programs are detached).
func (b *bed) stop() {
	b.t.Helper()
	if b.x != nil {
		b.must(b.x.Stop())
		b.x = nil
	}
}

func (b *bed) vsctl(args ...string) string {
	b.t.Helper()
	out, err := b.x.Vsctl(args...)
	b.must(err)
	return out
}

func (b *bed) appctl(args ...string) string {
	b.t.Helper()
	out, err := b.x.Appctl(args...)
	b.must(err)
	return out
}

// checkTier fails unless every port reports xdp-flow-offload=want in its
// Interface status, and the ports run native XDP.
func (b *bed) checkTier(want bool, ports ...string) {
	b.t.Helper()
	for _, p := range ports {
		var st string
		ok := waitFor(5*time.Second, func() bool {
			out, err := b.x.Vsctl("get", "Interface", p, "status")
			st = out
			return err == nil && strings.Contains(out, "xdp-flow-offload="+strconv.Quote(strconv.FormatBool(want)))
		})
		if !ok {
			b.t.Fatalf("Interface %s status does not say xdp-flow-offload=%v: %s", p, want, st)
		}
	}
}

// ofport returns the OpenFlow port number of an interface.
func (b *bed) ofport(iface string) string {
	b.t.Helper()
	var n string
	waitFor(5*time.Second, func() bool {
		out, err := b.x.Vsctl("get", "Interface", iface, "ofport")
		n = strings.TrimSpace(out)
		return err == nil && n != "" && n != "[]" && n != "-1"
	})
	return n
}

var fdbLine = regexp.MustCompile(`^\s*(\S+)\s+(\d+)\s+([0-9a-f:]{17})\s`)

// fdb returns fdb/show of br0 as "mac/vlan" -> port.
func (b *bed) fdb() map[string]string {
	b.t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(b.appctl("fdb/show", "br0"), "\n") {
		if f := fdbLine.FindStringSubmatch(line); f != nil {
			m[f[3]+"/"+f[2]] = f[1]
		}
	}
	return m
}

// waitLearned waits until every "mac/vlan" key is in the MAC table (on
// the given ofport when want maps it to one; "" for any).
func (b *bed) waitLearned(d time.Duration, want map[string]string) {
	b.t.Helper()
	var got map[string]string
	ok := waitFor(d, func() bool {
		got = b.fdb()
		for k, p := range want {
			if gp, ok := got[k]; !ok || p != "" && gp != p {
				return false
			}
		}
		return true
	})
	if !ok {
		b.t.Fatalf("MAC table does not have %v after %v; it has %v", want, d, got)
	}
}

// offloadedFlows returns the dpctl/dump-flows lines marked offloaded:xdp.
func (b *bed) offloadedFlows() []string {
	b.t.Helper()
	var lines []string
	for _, l := range strings.Split(b.appctl("dpctl/dump-flows"), "\n") {
		if strings.Contains(l, "offloaded:xdp") {
			lines = append(lines, l)
		}
	}
	return lines
}

// userspaceFrames sums the coverage/show counters of frames the userspace
// datapath looked at (EMC hits, megaflow hits, upcalls).
func (b *bed) userspaceFrames() uint64 {
	b.t.Helper()
	var n uint64
	for _, l := range strings.Split(b.appctl("coverage/show"), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "total:" {
			continue
		}
		switch f[0] {
		case "datapath_emc_hit", "datapath_megaflow_hit", "datapath_upcall":
			v, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				b.t.Fatalf("coverage/show: %q: %v", l, err)
			}
			n += v
		}
	}
	return n
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Frames. Every test frame has a source MAC in testOUI, so captures ignore
// anything else a namespace might emit.

var testOUI = []byte{0x02, 0x58, 0x56}

// mac returns test MAC number i.
func mac(i byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x58, 0x56, 0x00, 0x00, i} }

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func ours(f []byte) bool { return len(f) >= 14 && bytes.Equal(f[6:9], testOUI) }

const (
	etherTest = 0x88b5 // IEEE local experimental
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherARP  = 0x0806
	etherVLAN = 0x8100
)

// ether builds a frame; tcis are the 802.1Q tags, outermost first. Short
// frames are padded to 60 bytes.
func ether(dst, src net.HardwareAddr, etype uint16, payload []byte, tcis ...uint16) []byte {
	f := make([]byte, 0, 18+len(payload)+len(tcis)*4)
	f = append(append(f, dst...), src...)
	for _, tci := range tcis {
		f = binary.BigEndian.AppendUint16(f, etherVLAN)
		f = binary.BigEndian.AppendUint16(f, tci)
	}
	f = binary.BigEndian.AppendUint16(f, etype)
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ipv4 builds an IPv4 header (with checksum) around payload; frag is the
// flags+fragment-offset field.
func ipv4(src, dst [4]byte, id, frag uint16, proto byte, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	binary.BigEndian.PutUint16(h[6:], frag)
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	binary.BigEndian.PutUint16(h[10:], csum(h))
	return append(h, payload...)
}

// udp builds a UDP header (checksum 0, allowed over IPv4) around payload.
func udp(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h, sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// ipv6 builds an IPv6 header around payload.
func ipv6(src, dst [16]byte, next byte, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0], h[6], h[7] = 0x60, next, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return append(h, payload...)
}

// arp builds an Ethernet/IPv4 ARP packet.
func arp(op uint16, sha net.HardwareAddr, spa [4]byte, tha net.HardwareAddr, tpa [4]byte) []byte {
	p := make([]byte, 8, 28)
	binary.BigEndian.PutUint16(p, 1)
	binary.BigEndian.PutUint16(p[2:], etherIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], op)
	p = append(append(p, sha...), spa[:]...)
	return append(append(p, tha...), tpa[:]...)
}

func v4(c, d byte) [4]byte { return [4]byte{198, 18, c, d} }

func v6(c, d byte) [16]byte {
	return [16]byte{0x20, 0x01, 0x0d, 0xb8, 14: c, 15: d}
}

// Captures.

// capture records every test frame arriving on one interface.
type capture struct {
	name string
	r    *lab.Raw
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	frames [][]byte
	err    error
}

// startCapture opens a raw socket on ns/ifname (with a large receive
// buffer, so a burst is not lost in the socket) and records test frames
// until end.
func startCapture(t *testing.T, name string, ns *lab.NS, ifname string) *capture {
	t.Helper()
	r, err := ns.OpenRaw(ifname)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(r.Fd(), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
		r.Close()
		t.Fatal(err)
	}
	c := &capture{name: name, r: r, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	t.Cleanup(func() { c.end() })
	return c
}

func (c *capture) run() {
	defer close(c.done)
	buf := make([]byte, 4096)
	for {
		n, err := c.r.Recv(buf, 20*time.Millisecond)
		if errors.Is(err, lab.ErrTimeout) {
			select {
			case <-c.stop:
				return
			default:
				continue
			}
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		if ours(buf[:n]) {
			c.mu.Lock()
			c.frames = append(c.frames, bytes.Clone(buf[:n]))
			c.mu.Unlock()
		}
	}
}

// snapshot returns the frames captured so far.
func (c *capture) snapshot() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// end stops the capture (once the socket is drained) and returns what it
// recorded and any receive error.
func (c *capture) end() ([][]byte, error) {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.r.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// Streams: numbered frames sent at a steady rate from one host.

const streamMagic = "XVST"

// stream sends frames dst <- src of etherTest carrying (id, seq) from a
// host at a fixed pace until halt.
type stream struct {
	id   uint32
	next atomic.Uint64 // sequence number of the next frame
	stop chan struct{}
	done chan struct{}
	errs atomic.Uint64
}

// startStream starts stream id dst <- src from h, tagged with tcis, one
// frame every interval (plus the send time); t.Cleanup halts it.
func startStream(t *testing.T, h *host, id uint32, dst, src net.HardwareAddr, every time.Duration, tcis ...uint16) *stream {
	s := &stream{id: id, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		p := make([]byte, 16)
		copy(p, streamMagic)
		binary.BigEndian.PutUint32(p[4:], id)
		for seq := uint64(0); ; seq++ {
			select {
			case <-s.stop:
				return
			default:
			}
			binary.BigEndian.PutUint64(p[8:], seq)
			if err := h.tx.Send(ether(dst, src, etherTest, p, tcis...)); err != nil {
				s.errs.Add(1)
			}
			s.next.Store(seq + 1)
			time.Sleep(every)
		}
	}()
	t.Cleanup(s.halt)
	return s
}

// mark returns the sequence number of the next frame to be sent: every
// frame numbered mark or more leaves the host after mark returned.
func (s *stream) mark() uint64 { return s.next.Load() }

// halt stops the sender (idempotent).
func (s *stream) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// streamSeq returns the (id, seq) of a stream frame, tagged or not.
func streamSeq(f []byte) (id uint32, seq uint64, tcis []uint16, ok bool) {
	off := 12
	for off+4 <= len(f) && binary.BigEndian.Uint16(f[off:]) == etherVLAN {
		tcis = append(tcis, binary.BigEndian.Uint16(f[off+2:]))
		off += 4
	}
	if off+2+16 > len(f) || binary.BigEndian.Uint16(f[off:]) != etherTest || string(f[off+2:off+6]) != streamMagic {
		return 0, 0, nil, false
	}
	p := f[off+2:]
	return binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint64(p[8:]), tcis, true
}

// arrivals returns, per sequence number, the frames of stream id in
// frames (with their tags).
func arrivals(frames [][]byte, id uint32) map[uint64][][]uint16 {
	m := map[uint64][][]uint16{}
	for _, f := range frames {
		if fid, seq, tcis, ok := streamSeq(f); ok && fid == id {
			m[seq] = append(m[seq], tcis)
		}
	}
	return m
}

// describe summarises a frame for failure messages.
func describe(f []byte) string {
	if len(f) < 14 {
		return fmt.Sprintf("runt %x", f)
	}
	s := fmt.Sprintf("%s>%s", net.HardwareAddr(f[6:12]), net.HardwareAddr(f[0:6]))
	off := 12
	for off+4 <= len(f) && binary.BigEndian.Uint16(f[off:]) == etherVLAN {
		tci := binary.BigEndian.Uint16(f[off+2:])
		s += fmt.Sprintf(" vlan(vid=%d,pcp=%d)", tci&0xfff, tci>>13)
		off += 4
	}
	if off+2 <= len(f) {
		s += fmt.Sprintf(" type=0x%04x", binary.BigEndian.Uint16(f[off:]))
	}
	if i := bytes.Index(f, []byte("XVSD")); i >= 0 && i+8 <= len(f) {
		name, _, _ := strings.Cut(string(f[i+8:]), "\x00")
		return s + fmt.Sprintf(" flow %s round %d", name, binary.BigEndian.Uint32(f[i+4:]))
	}
	end := min(len(f), off+2+24)
	return s + fmt.Sprintf(" %x", f[off+2:end])
}
