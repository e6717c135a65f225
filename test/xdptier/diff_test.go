package xdptier

import (
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Differential topology: br0 with
//
//	p1 access VLAN 10   h1: a1 (198.18.10.1)
//	p2 access VLAN 10   h2: a2 (198.18.10.2)
//	p3 trunk 10,20      h3: t10 tagged 10 (198.18.10.3), t20 tagged 20 (198.18.20.3)
//	p4 access VLAN 20   h4: a4 (198.18.20.4)
//	p5 native-untagged  h5: n20 untagged = VLAN 20 (198.18.20.5), n10 tagged 10 (198.18.10.5)
//	   tag 20, trunks 10,20
var (
	a1, a2, t10, t20, a4, n20, n10 = mac(0x11), mac(0x12), mac(0x31), mac(0x32), mac(0x14), mac(0x51), mac(0x52)
	unknown                        = mac(0xee) // never sends
	mcast                          = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x42}
)

var diffPorts = [][]string{
	{"p1", "tag=10"},
	{"p2", "tag=10"},
	{"p3", "trunks=10,20"},
	{"p4", "tag=20"},
	{"p5", "tag=20", "trunks=10,20", "vlan_mode=native-untagged"},
}

// station is one source of the differential traffic: a MAC on a host,
// with the tags it sends with.
type station struct {
	host string
	mac  net.HardwareAddr
	ip   byte // last byte of its IPv4/IPv6 address
	vlan byte // its VLAN (third byte of the address)
	tcis []uint16
}

var stations = map[string]station{
	"a1":  {"h1", a1, 1, 10, nil},
	"a2":  {"h2", a2, 2, 10, nil},
	"t10": {"h3", t10, 3, 10, []uint16{10}},
	"t20": {"h3", t20, 3, 20, []uint16{20}},
	"a4":  {"h4", a4, 4, 20, nil},
	"n20": {"h5", n20, 5, 20, nil},
	"n10": {"h5", n10, 5, 10, []uint16{10}},
}

// diffFlow is one flow of the differential traffic. bulk flows are those
// the kernel tier can take (unicast to a learned MAC, IPv4 unfragmented
// or another non-IP ethertype, one VLAN operation at most): they are sent
// many times; the others (flooding, fragments, IPv6, ARP, double tags)
// fewer times.
type diffFlow struct {
	name string
	from string // station
	bulk bool
	// frame builds the frame of round r.
	frame func(r int) []byte
}

func payload(flow string, r int) []byte {
	p := make([]byte, 0, 32)
	p = append(p, "XVSD"...)
	p = binary.BigEndian.AppendUint32(p, uint32(r))
	return append(p, flow...)
}

// udp4Flow is unicast IPv4/UDP from station s to station d's MAC; tcis
// override s's tags when given.
func udp4Flow(name, s, d string, bulk bool, frag uint16, tcis ...uint16) diffFlow {
	src, dst := stations[s], stations[d]
	if tcis == nil {
		tcis = src.tcis
	}
	return diffFlow{name: name, from: s, bulk: bulk, frame: func(r int) []byte {
		ip := ipv4(v4(src.vlan, src.ip), v4(dst.vlan, dst.ip), uint16(r), frag, 17, udp(5000, 6000, payload(name, r)))
		return ether(dst.mac, src.mac, etherIPv4, ip, tcis...)
	}}
}

func rawFlow(name, s string, dst net.HardwareAddr, bulk bool, tcis ...uint16) diffFlow {
	src := stations[s]
	if tcis == nil {
		tcis = src.tcis
	}
	return diffFlow{name: name, from: s, bulk: bulk, frame: func(r int) []byte {
		return ether(dst, src.mac, etherTest, payload(name, r), tcis...)
	}}
}

func diffFlows() []diffFlow {
	const prio5 = 5 << 13 // priority tag: VID 0, PCP 5
	mf := uint16(0x2000)  // IPv4 more-fragments flag
	fl := []diffFlow{
		// Kernel-tier candidates.
		udp4Flow("a1-a2", "a1", "a2", true, 0),                   // access -> access
		rawFlow("a2-a1", "a2", a1, true),                         // non-IP
		udp4Flow("a1-t10", "a1", "t10", true, 0),                 // push 10
		udp4Flow("t10-a1", "t10", "a1", true, 0),                 // pop
		udp4Flow("t20p3-a4", "t20", "a4", true, 0, 3<<13|20),     // pop, PCP 3
		rawFlow("a4-t20", "a4", t20, true),                       // push 20
		udp4Flow("a1prio-t10", "a1", "t10", true, 0, prio5),      // rewrite VID 0 -> 10
		rawFlow("a1prio-a2", "a1", a2, true, prio5),              // priority tag to access
		udp4Flow("t10p3-n10", "t10", "n10", true, 0, 3<<13|10),   // tagged stays tagged
		udp4Flow("n20-a4", "n20", "a4", true, 0),                 // native -> access
		rawFlow("a4-n20", "a4", n20, true),                       // access -> native untagged
		udp4Flow("n10-a2", "n10", "a2", true, 0),                 // pop on a native port
		udp4Flow("a2-n10", "a2", "n10", true, 0),                 // push 10 to a native port
		rawFlow("t20-n20", "t20", n20, true),                     // pop to native VLAN
		udp4Flow("n20-t20", "n20", "t20", true, 0),               // push native VLAN
		udp4Flow("a1-a2-df", "a1", "a2", true, 0x4000),           // DF set: not a fragment
		udp4Flow("t10dei-a1", "t10", "a1", true, 0, 0x1000|10),   // DEI set, pop
		udp4Flow("t10dei-n10", "t10", "n10", true, 0, 0x1000|10), // DEI set, no VLAN change
		adFlow("t10ad-a1", "t10", "a1"),                          // 802.1ad tag, pop
		adFlow("t10ad-n10", "t10", "n10"),                        // 802.1ad tag kept
		bigFlow("a1-t10-big", "a1", "t10"),                       // full-size frame + push
		bigFlow("t10-a1-big", "t10", "a1"),                       // full-size frame, pop
		// Userspace only.
		rawFlow("a1-bcast", "a1", broadcast, false),        // flood VLAN 10
		udp4Flow("a4-unknown", "a4", "a4", false, 0),       // placeholder, fixed below
		rawFlow("t10-unknown", "t10", unknown, false),      // flood VLAN 10 from a trunk
		rawFlow("n20-mcast", "n20", mcast, false),          // multicast flood VLAN 20
		udp4Flow("a1-a2-frag1", "a1", "a2", false, mf),     // first fragment
		udp4Flow("a1-a2-frag2", "a1", "a2", false, 100),    // last fragment
		udp4Flow("a1-t10-frag", "a1", "t10", false, mf|50), // middle fragment, push
		udp4Flow("t20-a4-frag", "t20", "a4", false, 200),   // fragment, pop
		rawFlow("t10-qinq-a1", "t10", a1, false, 10, 30),   // double tagged
		{name: "a2-a1-v6", from: "a2", frame: v6Frame("a2-a1-v6", "a2", "a1")},
		{name: "a4-t20-v6", from: "a4", frame: v6Frame("a4-t20-v6", "a4", "t20")},
		{name: "a2-arp-req", from: "a2", frame: func(r int) []byte {
			return ether(broadcast, a2, etherARP, arp(1, a2, v4(10, 2), make(net.HardwareAddr, 6), v4(10, byte(1+r%2))))
		}},
		{name: "a1-arp-rep", from: "a1", frame: func(r int) []byte {
			return ether(a2, a1, etherARP, arp(2, a1, v4(10, 1), a2, v4(10, 2)))
		}},
		{name: "t10-arp-rep", from: "t10", frame: func(r int) []byte {
			return ether(a1, t10, etherARP, arp(2, t10, v4(10, 3), a1, v4(10, 1)), 10)
		}},
	}
	// Unknown unicast IPv4 from an access port (flooded in VLAN 20).
	for i := range fl {
		if fl[i].name == "a4-unknown" {
			fl[i].frame = func(r int) []byte {
				ip := ipv4(v4(20, 4), v4(20, 99), uint16(r), 0, 17, udp(5000, 6000, payload("a4-unknown", r)))
				return ether(unknown, a4, etherIPv4, ip)
			}
		}
	}
	return fl
}

// adFlow is unicast IPv4 from a trunk station with an 802.1ad (0x88a8)
// tag instead of 802.1Q: same MACs, TCI and ethertype as the station's
// 802.1Q flow of the same direction.
func adFlow(name, s, d string) diffFlow {
	src, dst := stations[s], stations[d]
	return diffFlow{name: name, from: s, bulk: true, frame: func(r int) []byte {
		ip := ipv4(v4(src.vlan, src.ip), v4(dst.vlan, dst.ip), uint16(r), 0, 17, udp(5000, 6000, payload(name, r)))
		f := ether(dst.mac, src.mac, etherIPv4, ip, src.tcis...)
		binary.BigEndian.PutUint16(f[12:], 0x88a8)
		return f
	}}
}

// bigFlow is unicast IPv4 filling a 1500-byte MTU.
func bigFlow(name, s, d string) diffFlow {
	src, dst := stations[s], stations[d]
	return diffFlow{name: name, from: s, bulk: true, frame: func(r int) []byte {
		p := make([]byte, 1500-28)
		copy(p, payload(name, r))
		ip := ipv4(v4(src.vlan, src.ip), v4(dst.vlan, dst.ip), uint16(r), 0, 17, udp(5000, 6000, p))
		return ether(dst.mac, src.mac, etherIPv4, ip, src.tcis...)
	}}
}

func v6Frame(name, s, d string) func(int) []byte {
	src, dst := stations[s], stations[d]
	return func(r int) []byte {
		ip := ipv6(v6(src.vlan, src.ip), v6(dst.vlan, dst.ip), 17, udp(5000, 6000, payload(name, r)))
		return ether(dst.mac, src.mac, etherIPv6, ip, src.tcis...)
	}
}

const (
	bulkRounds  = 150
	otherRounds = 15
)

// runResult is what one run of the differential traffic produced.
type runResult struct {
	captured  map[string][][]byte // receiving host -> frames
	stats     map[string]ifStats  // port -> Interface statistics
	userspace uint64              // frames userspace looked at (coverage)
	offloaded []string            // dpctl/dump-flows lines offloaded:xdp
}

func TestDifferentialOffload(t *testing.T) {
	b := newBed(t)
	hosts := map[string]*host{}
	for i := 1; i <= 5; i++ {
		h := fmt.Sprintf("h%d", i)
		hosts[h] = b.host(h, fmt.Sprintf("p%d", i))
	}
	flows := diffFlows()
	var bulkFrames uint64
	for _, f := range flows {
		if f.bulk {
			bulkFrames += bulkRounds - 1 // the first round makes the megaflow
		}
	}

	run := func(offload bool) runResult {
		b.start(offload)
		defer b.stop()
		var names []string
		for _, p := range diffPorts {
			b.vsctl(append([]string{"add-port", "br0", p[0], "--", "set", "Port", p[0]}, p[1:]...)...)
			names = append(names, p[0])
		}
		b.checkTier(offload, names...)
		caps := map[string]*capture{}
		for name, h := range hosts {
			caps[name] = startCapture(t, name, h.ns, "eth0")
		}
		sent := map[string][]int{} // host -> lengths of the frames it sent
		// Learning: every station says hello (broadcast) and the MAC table
		// must know them all before the traffic starts.
		want := map[string]string{}
		for _, name := range sortedKeys(stations) {
			s := stations[name]
			f := ether(broadcast, s.mac, etherTest, payload("hello-"+name, 0), s.tcis...)
			hosts[s.host].send(t, f)
			sent[s.host] = append(sent[s.host], len(f))
			want[fmt.Sprintf("%s/%d", s.mac, s.vlan)] = ""
		}
		b.waitLearned(5*time.Second, want)
		before := b.userspaceFrames()

		for r := range bulkRounds {
			for _, f := range flows {
				if f.bulk || r < otherRounds {
					h, fr := stations[f.from].host, f.frame(r)
					hosts[h].send(t, fr)
					sent[h] = append(sent[h], len(fr))
				}
			}
			if r == 0 {
				time.Sleep(200 * time.Millisecond) // megaflows (and kernel copies) in place
			} else {
				time.Sleep(time.Millisecond)
			}
		}
		time.Sleep(500 * time.Millisecond)
		res := runResult{captured: map[string][][]byte{}, userspace: b.userspaceFrames() - before, offloaded: b.offloadedFlows()}
		for name, c := range caps {
			frames, err := c.end()
			if err != nil {
				t.Fatalf("capture on %s: %v", name, err)
			}
			res.captured[name] = frames
		}
		res.stats = b.checkStats(offload, sent, res.captured)
		return res
	}

	off := run(false)
	on := run(true)

	total := 0
	for _, h := range sortedKeys(off.captured) {
		total += len(off.captured[h])
		t.Logf("%s received %d frames without the tier, %d with it", h, len(off.captured[h]), len(on.captured[h]))
		if len(off.captured[h]) == 0 {
			t.Errorf("%s received nothing: the traffic does not exercise it", h)
		}
		if d := multisetDiff(off.captured[h], on.captured[h]); d != "" {
			t.Errorf("%s: captures differ between xdp-flow-offload=false and =true:\n%s", h, d)
		}
	}
	t.Logf("userspace looked at %d frames without the tier, %d with it; %d bulk frames after the first round; %d delivered",
		off.userspace, on.userspace, bulkFrames, total)

	for _, p := range sortedKeys(off.stats) {
		if off.stats[p] != on.stats[p] {
			t.Errorf("Interface %s statistics differ: without the tier %+v, with it %+v", p, off.stats[p], on.stats[p])
		}
	}

	// The VLAN operations really happened (checked on the capture of the
	// run without the tier, which the other must equal).
	expectFrame(t, off.captured["h3"], "a1-t10", []uint16{10})             // push
	expectFrame(t, off.captured["h1"], "t10-a1", nil)                      // pop
	expectFrame(t, off.captured["h3"], "a1prio-t10", []uint16{5<<13 | 10}) // rewrite
	expectFrame(t, off.captured["h4"], "t20p3-a4", nil)                    // pop of a PCP tag

	// The tier took the bulk traffic.
	if len(off.offloaded) != 0 {
		t.Errorf("offloaded flows with xdp-flow-offload=false:\n%s", strings.Join(off.offloaded, "\n"))
	}
	if len(on.offloaded) < 12 {
		t.Errorf("only %d megaflows offloaded:xdp with xdp-flow-offload=true (want most of the 16 bulk flows):\n%s",
			len(on.offloaded), strings.Join(on.offloaded, "\n"))
	}
	if on.userspace+bulkFrames*8/10 > off.userspace {
		t.Errorf("with the tier userspace still looked at %d frames (without: %d): the kernel took fewer than 80%% of the %d bulk frames",
			on.userspace, off.userspace, bulkFrames)
	}
}

// expectFrame fails unless frames hold round 1 of flow with exactly the
// given tags.
func expectFrame(t *testing.T, frames [][]byte, flow string, tcis []uint16) {
	t.Helper()
	want := payload(flow, 1)
	for _, f := range frames {
		off := 12
		var got []uint16
		for off+4 <= len(f) && binary.BigEndian.Uint16(f[off:]) == etherVLAN {
			got = append(got, binary.BigEndian.Uint16(f[off+2:]))
			off += 4
		}
		if !containsBytes(f, want) {
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tcis) {
			t.Errorf("%s arrived with tags %#x, want %#x: %s", flow, got, tcis, describe(f))
		}
		return
	}
	t.Errorf("%s (round 1) never arrived", flow)
}

func containsBytes(f, p []byte) bool { return strings.Contains(string(f), string(p)) }

// multisetDiff describes how two captures differ as multisets ("" when
// they hold the same frames, in any order).
func multisetDiff(a, b [][]byte) string {
	count := map[string]int{}
	for _, f := range a {
		count[string(f)]++
	}
	for _, f := range b {
		count[string(f)]--
	}
	var lines []string
	for f, n := range count {
		switch {
		case n > 0:
			lines = append(lines, fmt.Sprintf("  only without the tier (x%d): %s", n, describe([]byte(f))))
		case n < 0:
			lines = append(lines, fmt.Sprintf("  only with the tier (x%d): %s", -n, describe([]byte(f))))
		}
	}
	sort.Strings(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("  ... %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// ifStats is the part of Interface statistics the traffic determines.
type ifStats struct{ RxPackets, RxBytes, TxPackets, TxBytes uint64 }

func (b *bed) ifStats(port string) ifStats {
	b.t.Helper()
	out := strings.Trim(strings.TrimSpace(b.vsctl("get", "Interface", port, "statistics")), "{}")
	var st ifStats
	for _, kv := range strings.Split(out, ", ") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "rx_packets":
			st.RxPackets = n
		case "rx_bytes":
			st.RxBytes = n
		case "tx_packets":
			st.TxPackets = n
		case "tx_bytes":
			st.TxBytes = n
		}
	}
	return st
}

// checkStats waits until the Interface statistics of every port (pN
// serves hN) count what its host sent and received, which must happen
// whether the kernel tier forwarded the frames or not, and returns them.
func (b *bed) checkStats(offload bool, sent map[string][]int, got map[string][][]byte) map[string]ifStats {
	b.t.Helper()
	want := map[string]ifStats{}
	for h, lens := range sent {
		w := want["p"+h[1:]]
		for _, l := range lens {
			w.RxPackets++
			w.RxBytes += uint64(l)
		}
		want["p"+h[1:]] = w
	}
	for h, frames := range got {
		w := want["p"+h[1:]]
		for _, f := range frames {
			w.TxPackets++
			w.TxBytes += uint64(len(f))
		}
		want["p"+h[1:]] = w
	}
	have := map[string]ifStats{}
	// Statistics are written back every 5 s, after the revalidator folded
	// the kernel's counters in.
	waitFor(12*time.Second, func() bool {
		for p := range want {
			have[p] = b.ifStats(p)
		}
		for p, w := range want {
			if have[p].RxPackets != w.RxPackets || have[p].TxPackets != w.TxPackets {
				return false
			}
		}
		return true
	})
	for _, p := range sortedKeys(want) {
		if have[p] != want[p] {
			b.t.Errorf("xdp-flow-offload=%v: Interface %s statistics %+v, but its host sent and received %+v", offload, p, have[p], want[p])
		}
	}
	return have
}
