package bondtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"xvs/bench"
	"xvs/lab"
)

// Daemons a scenario runs against: xvsd, and Open vSwitch 3.1 itself to
// show that the expectation is OVS's behaviour, not ours.
const (
	implXVS = "xvs"
	implOVS = "ovs"
)

// forEachImpl runs f as a subtest per daemon; the OVS subtest is skipped
// when Open vSwitch is not installed.
func forEachImpl(t *testing.T, f func(t *testing.T, impl string)) {
	for _, impl := range []string{implXVS, implOVS} {
		t.Run(impl, func(t *testing.T) {
			if impl == implOVS {
				if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
					t.Skip("Open vSwitch not installed: nothing to compare with")
				}
			}
			f(t, impl)
		})
	}
}

// testEtherType marks the tests' own frames (IEEE local experimental), so
// captures ignore everything else.
const testEtherType = 0x88b5

const etherTypeRARP = 0x8035

var (
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	upMAC     = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x01, 0x00}
)

// vmMAC returns the source MAC of simulated VM i (1-based).
func vmMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, byte(i >> 8), byte(i)}
}

func vmMACs(n int) []net.HardwareAddr {
	m := make([]net.HardwareAddr, n)
	for i := range m {
		m[i] = vmMAC(i + 1)
	}
	return m
}

// testFrame builds a 60-byte frame of testEtherType carrying tag and seq.
func testFrame(dst, src net.HardwareAddr, tag, seq uint32) []byte {
	f := make([]byte, 60)
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	copy(f[14:], "XVSB")
	binary.BigEndian.PutUint32(f[18:], tag)
	binary.BigEndian.PutUint32(f[22:], seq)
	return f
}

// frameTag returns the tag of a test frame (ok false for other frames).
func frameTag(f []byte) (tag, seq uint32, ok bool) {
	if len(f) < 26 || binary.BigEndian.Uint16(f[12:]) != testEtherType || string(f[14:18]) != "XVSB" {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(f[18:]), binary.BigEndian.Uint32(f[22:]), true
}

func srcMAC(f []byte) string { return net.HardwareAddr(f[6:12]).String() }

// bondLab is one node running a daemon (xvsd or OVS) with br0 =
// {vms, bond0 = {m1, m2}}, the upstream switch and its host.
type bondLab struct {
	t                 *testing.T
	impl              string
	node, sw, vms, up *lab.NS
	d                 bench.Switch
	vmsRaw, upRaw     *lab.Raw
}

// members of bond0 and the switch port each is wired to.
var swPort = map[string]string{"m1": "sm1", "m2": "sm2"}

func other(m string) string {
	if m == "m1" {
		return "m2"
	}
	return "m1"
}

// newBondLab builds the topology, starts impl in the node namespace and
// configures it with ovs-vsctl: bond0 with bondArgs (e.g.
// "bond_mode=balance-slb"). It returns when both members are enabled.
func newBondLab(t *testing.T, impl string, bondArgs ...string) *bondLab {
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
	b := &bondLab{t: t, impl: impl}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	spaces := map[string]**lab.NS{"node": &b.node, "sw": &b.sw, "vms": &b.vms, "up": &b.up}
	for name, p := range spaces {
		ns, err := l.NS(name)
		if err != nil {
			lab.Unavailable(t, err.Error())
		}
		// Links created later inherit this: no IPv6 chatter on the wire.
		must(ns.Sysctl("net/ipv6/conf/default/disable_ipv6", "1"))
		must(ns.Sysctl("net/ipv6/conf/all/disable_ipv6", "1"))
		*p = ns
	}
	must(b.sw.Bridge("br0"))
	must(b.sw.SetUp("br0"))
	for _, w := range []struct {
		a        *lab.NS
		an       string
		z        *lab.NS
		zn       string
		toBridge bool
	}{
		{b.node, "m1", b.sw, "sm1", true},
		{b.node, "m2", b.sw, "sm2", true},
		{b.up, "eth0", b.sw, "sup", true},
		{b.vms, "eth0", b.node, "vms", false},
	} {
		must(l.Wire(w.a, w.an, w.z, w.zn))
		if w.toBridge {
			must(b.sw.SetMaster(w.zn, "br0"))
		}
	}
	must(b.up.SetMAC("eth0", upMAC))

	dir := t.TempDir()
	switch impl {
	case implXVS:
		x, err := lab.StartXvsd(b.node, xvsdBin, dir)
		must(err)
		b.d = x
		t.Cleanup(func() {
			x.Kill9()
			if t.Failed() {
				logTail(t, "xvsd log", x.Log)
				logTail(t, "xvsd output", filepath.Join(x.Dir, "xvsd.out"))
			}
		})
	case implOVS:
		o, err := bench.StartOVS(b.node.Name, dir)
		must(err)
		b.d = o
		t.Cleanup(func() {
			start := time.Now()
			if err := o.Stop(); err != nil {
				t.Error(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Logf("stopping Open vSwitch took %v", d.Round(time.Millisecond))
			}
			if t.Failed() {
				logTail(t, "ovs-vswitchd log", filepath.Join(o.Dir, "ovs-vswitchd.log"))
			}
		})
	}
	b.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
	b.vsctl("add-port", "br0", "vms")
	b.vsctl(append([]string{"add-bond", "br0", "bond0", "m1", "m2"}, bondArgs...)...)
	b.waitEnabled("m1", true, 10*time.Second)
	b.waitEnabled("m2", true, 10*time.Second)

	var err error
	b.vmsRaw, err = b.vms.OpenRaw("eth0")
	must(err)
	b.upRaw, err = b.up.OpenRaw("eth0")
	must(err)
	t.Cleanup(func() { b.vmsRaw.Close(); b.upRaw.Close() })
	return b
}

func logTail(t *testing.T, what, path string) {
	bs, _ := os.ReadFile(path)
	s := string(bs)
	if len(s) > 5000 {
		s = "..." + s[len(s)-5000:]
	}
	t.Logf("%s:\n%s", what, s)
}

func (b *bondLab) vsctl(args ...string) string {
	b.t.Helper()
	out, err := b.d.Vsctl(args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

func (b *bondLab) appctl(args ...string) string {
	b.t.Helper()
	out, err := b.d.Appctl(args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// bondState is what bond/show says about bond0.
type bondState struct {
	mode    string
	enabled map[string]bool
	active  string // member with the "active member" line
	nActive int    // how many members have it
	text    string
}

var memberLine = regexp.MustCompile(`^member (\S+): (enabled|disabled)$`)

func parseBondShow(out string) bondState {
	s := bondState{enabled: map[string]bool{}, text: out}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		if m := memberLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			s.enabled[cur] = m[2] == "enabled"
			continue
		}
		if v, ok := strings.CutPrefix(line, "bond_mode: "); ok {
			s.mode = v
		}
		if cur != "" && strings.TrimSpace(line) == "active member" {
			s.active = cur
			s.nActive++
		}
	}
	return s
}

func (b *bondLab) show() bondState {
	b.t.Helper()
	return parseBondShow(b.appctl("bond/show", "bond0"))
}

// waitEnabled waits until bond/show reports member m enabled (or
// disabled) and returns how long that took.
func (b *bondLab) waitEnabled(m string, want bool, timeout time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	for {
		out, err := b.d.Appctl("bond/show", "bond0")
		if err == nil {
			if st := parseBondShow(out); st.enabled[m] == want {
				if _, ok := st.enabled[m]; ok {
					return time.Since(start)
				}
			}
		}
		if time.Since(start) > timeout {
			b.t.Fatalf("member %s not %s after %v; bond/show:\n%s (err %v)", m, enabledWord(want), timeout, out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func enabledWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

// waitActive waits until bond/show names m the active member.
func (b *bondLab) waitActive(m string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := b.show()
		if st.active == m && st.nActive == 1 {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("active member is not %s after %v:\n%s", m, timeout, st.text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// capture collects frames received on one interface that match a filter.
type capture struct {
	raw    *lab.Raw
	match  func([]byte) bool
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	frames [][]byte
	err    error
}

// startCapture opens a raw socket on ns/ifname and collects matching
// frames until stop. The socket does not see frames sent from it.
func startCapture(t *testing.T, ns *lab.NS, ifname string, match func([]byte) bool) *capture {
	t.Helper()
	raw, err := ns.OpenRaw(ifname)
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{raw: raw, match: match, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 2048)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			n, err := raw.Recv(buf, 20*time.Millisecond)
			if errors.Is(err, lab.ErrTimeout) {
				continue
			}
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			if c.match(buf[:n]) {
				c.mu.Lock()
				c.frames = append(c.frames, bytes.Clone(buf[:n]))
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.end() })
	return c
}

// waitFor waits until at least n frames were captured or timeout passed.
func (c *capture) waitFor(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		got := len(c.frames)
		c.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// end stops the capture (idempotent) and returns the frames.
func (c *capture) end() [][]byte {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
	c.raw.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

func isTag(tag uint32) func([]byte) bool {
	return func(f []byte) bool { t, _, ok := frameTag(f); return ok && t == tag }
}

func isRARP(f []byte) bool {
	return len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == etherTypeRARP
}

// settle is how long a test waits for frames in flight after sending.
const settle = 300 * time.Millisecond

// sendVMs sends rounds frames from every MAC (round-robin over the MACs)
// from the vms namespace to the upstream host, tagged tag.
func (b *bondLab) sendVMs(macs []net.HardwareAddr, rounds int, tag uint32) {
	b.t.Helper()
	seq := uint32(0)
	for r := 0; r < rounds; r++ {
		for _, m := range macs {
			if err := b.vmsRaw.Send(testFrame(upMAC, m, tag, seq)); err != nil {
				b.t.Fatal(err)
			}
			seq++
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// placement maps source MAC -> member -> frames seen on that member.
type placement map[string]map[string]int

// locate sends rounds frames per MAC from the vms namespace and reports on
// which member (seen from the switch side) each MAC's frames left. Only
// members in up are captured (a member whose link is down shows nothing).
func (b *bondLab) locate(macs []net.HardwareAddr, rounds int, tag uint32, up ...string) placement {
	b.t.Helper()
	if len(up) == 0 {
		up = []string{"m1", "m2"}
	}
	caps := map[string]*capture{}
	for _, m := range up {
		caps[m] = startCapture(b.t, b.sw, swPort[m], isTag(tag))
	}
	b.sendVMs(macs, rounds, tag)
	time.Sleep(settle)
	p := placement{}
	for m, c := range caps {
		for _, f := range c.end() {
			s := srcMAC(f)
			if p[s] == nil {
				p[s] = map[string]int{}
			}
			p[s][m]++
		}
	}
	return p
}

// perMember returns, per member, the sorted MACs that used it.
func (p placement) perMember() map[string][]string {
	r := map[string][]string{}
	for mac, ms := range p {
		for m := range ms {
			r[m] = append(r[m], mac)
		}
	}
	for _, l := range r {
		sort.Strings(l)
	}
	return r
}

// split returns MACs seen on more than one member.
func (p placement) split() []string {
	var r []string
	for mac, ms := range p {
		if len(ms) > 1 {
			r = append(r, mac)
		}
	}
	sort.Strings(r)
	return r
}

// fdb returns the upstream Linux bridge's learned MAC -> port entries.
func (b *bondLab) fdb() map[string]string {
	b.t.Helper()
	out, err := b.sw.Exec(context.Background(), "bridge", "fdb", "show", "br", "br0")
	if err != nil {
		b.t.Fatal(err)
	}
	r := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "dev" && !strings.Contains(line, "permanent") {
			r[f[0]] = f[2]
		}
	}
	return r
}

// setLink sets ns/ifname up or down with ip(8), like an operator would.
func setLink(t *testing.T, ns *lab.NS, ifname string, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if _, err := ns.Exec(context.Background(), "ip", "link", "set", ifname, state); err != nil {
		t.Fatal(err)
	}
}
