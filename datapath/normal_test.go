package datapath

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNormalLearningAndFlood(t *testing.T) {
	tb := newTestBridge(t, "br0")
	for _, n := range []string{"p1", "p2", "p3"} {
		tb.addPort("br0", port(n, -1, ""))
	}
	// Unknown destination: flooded to every other port.
	f1 := buildFrame(frameSpec{src: mac(1), dst: mac(2), vid: -1})
	tb.send("p1", f1)
	got := tb.sent()
	if len(got["p2"]) != 1 || len(got["p3"]) != 1 || len(got["p1"]) != 0 {
		t.Fatalf("flood: got %s", describe(got))
	}
	if !bytes.Equal(got["p2"][0], f1) {
		t.Fatalf("flooded frame altered")
	}
	// Reply from p2: mac(1) is known on p1, so unicast only.
	tb.send("p2", buildFrame(frameSpec{src: mac(2), dst: mac(1), vid: -1}))
	got = tb.sent()
	if len(got["p1"]) != 1 || len(got["p3"]) != 0 {
		t.Fatalf("unicast: got %s", describe(got))
	}
	// Now mac(2) is known too: p1 -> p2 unicast although a megaflow that
	// flooded exists for this key: learning mac(2) must have killed it.
	tb.send("p1", f1)
	got = tb.sent()
	if len(got["p2"]) != 1 || len(got["p3"]) != 0 {
		t.Fatalf("after learning: got %s", describe(got))
	}
	out, _ := tb.dp.FDBShow("br0")
	if !strings.Contains(out, "02:00:00:00:00:01") || !strings.Contains(out, "02:00:00:00:00:02") {
		t.Fatalf("fdb/show:\n%s", out)
	}
}

func TestNormalMACMoveInvalidates(t *testing.T) {
	tb := newTestBridge(t, "br0")
	for _, n := range []string{"p1", "p2", "p3"} {
		tb.addPort("br0", port(n, -1, ""))
	}
	tb.send("p1", buildFrame(frameSpec{src: mac(1), dst: bcast, vid: -1}))
	tb.send("p2", buildFrame(frameSpec{src: mac(2), dst: bcast, vid: -1}))
	tb.sent()
	toOne := buildFrame(frameSpec{src: mac(2), dst: mac(1), vid: -1})
	tb.send("p2", toOne, toOne)
	if got := tb.sent(); len(got["p1"]) != 2 {
		t.Fatalf("before move: %s", describe(got))
	}
	// mac(1) moves to p3.
	tb.send("p3", buildFrame(frameSpec{src: mac(1), dst: bcast, vid: -1}))
	tb.sent()
	tb.send("p2", toOne)
	if got := tb.sent(); len(got["p3"]) != 1 || len(got["p1"]) != 0 {
		t.Fatalf("after move: %s", describe(got))
	}
}

func TestMACAgeingKeptAliveByCacheHits(t *testing.T) {
	tb := newTestBridge(t, "br0")
	now := time.Unix(1000, 0)
	tb.dp.now = func() time.Time { return now }
	tb.addPort("br0", port("p1", -1, ""))
	tb.addPort("br0", port("p2", -1, ""))
	if err := tb.dp.SetMACLimits("br0", 0, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	f := buildFrame(frameSpec{src: mac(1), dst: mac(2), vid: -1})
	tb.send("p1", f)
	// Hits keep flowing through the cache (no upcalls) for 20 s of fake time.
	for i := 0; i < 20; i++ {
		now = now.Add(time.Second)
		tb.send("p1", f)
		tb.dp.Revalidate()
	}
	tb.sent()
	fdb, _ := tb.dp.FDBShow("br0")
	if !strings.Contains(fdb, "02:00:00:00:00:01") {
		t.Fatalf("entry aged out although traffic kept flowing:\n%s", fdb)
	}
	now = now.Add(20 * time.Second)
	tb.dp.Revalidate()
	fdb, _ = tb.dp.FDBShow("br0")
	if strings.Contains(fdb, "02:00:00:00:00:01") {
		t.Fatalf("idle entry did not age out:\n%s", fdb)
	}
}

// TestVLANModes checks ingress admission and egress tagging for every mode
// against the rules of OVS's xlate (ovs-facts section 2.2/2.3).
func TestVLANModes(t *testing.T) {
	type out struct{ vid, pcp int }
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("a10", 10, ""))                      // access 10
	tb.addPort("br0", port("a11", 11, ""))                      // access 11
	tb.addPort("br0", port("tall", -1, ""))                     // trunk, all VLANs
	tb.addPort("br0", port("t1011", -1, "trunk", 10, 11))       // trunk 10,11
	tb.addPort("br0", port("nt10", 10, "native-tagged"))        // native-tagged 10
	tb.addPort("br0", port("nu10", 10, "native-untagged"))      // native-untagged 10
	tb.addPort("br0", port("nu10t", 10, "native-untagged", 11)) // native-untagged 10, trunks 11(+10)
	cases := []struct {
		in       string
		vid, pcp int
		want     map[string]out // nil map => dropped
	}{
		// untagged into access 10: internal VLAN 10
		{"a10", -1, 0, map[string]out{"tall": {10, 0}, "t1011": {10, 0}, "nt10": {10, 0}, "nu10": {-1, 0}, "nu10t": {-1, 0}}},
		// priority-tagged into access keeps its PCP on tagged egress
		{"a10", 0, 5, map[string]out{"tall": {10, 5}, "t1011": {10, 5}, "nt10": {10, 5}, "nu10": {-1, 0}, "nu10t": {-1, 0}}},
		// tagged frames into an access port are dropped, even with its own VID
		{"a10", 10, 0, nil},
		{"a10", 11, 0, nil},
		// trunk (all): VLAN 11 goes to access 11 untagged and trunks tagged
		{"tall", 11, 3, map[string]out{"a11": {-1, 0}, "t1011": {11, 3}, "nu10t": {11, 3}, "nt10": {11, 3}, "nu10": {11, 3}}},
		// trunk: untagged is VLAN 0, only to trunks carrying 0
		{"tall", -1, 0, map[string]out{}},
		// trunk 10,11 refuses VLAN 12
		{"t1011", 12, 0, nil},
		// native-tagged untagged -> native VLAN, emitted tagged on trunks
		{"nt10", -1, 0, map[string]out{"a10": {-1, 0}, "tall": {10, 0}, "t1011": {10, 0}, "nu10": {-1, 0}, "nu10t": {-1, 0}}},
		// native-untagged with trunks 11: VLAN 12 refused
		{"nu10t", 12, 0, nil},
		{"nu10t", 11, 0, map[string]out{"a11": {-1, 0}, "tall": {11, 0}, "t1011": {11, 0}, "nt10": {11, 0}, "nu10": {11, 0}}},
	}
	for _, c := range cases {
		src := mac(byte(0x40 + len(c.in)))
		tb.dp.FDBFlush("")
		tb.send(c.in, buildFrame(frameSpec{src: src, dst: bcast, vid: c.vid, pcp: c.pcp}))
		got := tb.sent()
		if c.want == nil {
			if len(got) != 0 {
				t.Errorf("in=%s vid=%d: want drop, got %s", c.in, c.vid, describe(got))
			}
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("in=%s vid=%d pcp=%d: want %v, got %s", c.in, c.vid, c.pcp, c.want, describe(got))
			continue
		}
		for p, w := range c.want {
			fs := got[p]
			if len(fs) != 1 {
				t.Errorf("in=%s vid=%d: port %s got %d frames", c.in, c.vid, p, len(fs))
				continue
			}
			vid, pcp := frameVLAN(fs[0])
			if vid != w.vid || (vid >= 0 && pcp != w.pcp) {
				t.Errorf("in=%s vid=%d pcp=%d: port %s got vid=%d pcp=%d, want vid=%d pcp=%d", c.in, c.vid, c.pcp, p, vid, pcp, w.vid, w.pcp)
			}
		}
	}
}

// TestPatchSingleMegaflow: br-ex (VM on VLAN 10) -> patch -> br-phy uplink.
// The whole path is one megaflow and the frame leaves tagged.
func TestPatchSingleMegaflow(t *testing.T) {
	tb := newTestBridge(t, "br-ex")
	if _, err := tb.dp.AddBridge("br-phy"); err != nil {
		t.Fatal(err)
	}
	tb.addPort("br-ex", port("vm1", 10, ""))
	tb.addPort("br-ex", PortConfig{Name: "patch-ex-to-phy", Tag: -1, Interfaces: []InterfaceConfig{{Name: "patch-ex-to-phy", Peer: "patch-phy-to-ex"}}})
	tb.addPort("br-phy", PortConfig{Name: "patch-phy-to-ex", Tag: -1, Interfaces: []InterfaceConfig{{Name: "patch-phy-to-ex", Peer: "patch-ex-to-phy"}}})
	tb.addPort("br-phy", port("uplink", -1, ""))
	f := buildFrame(frameSpec{src: mac(1), dst: mac(9), vid: -1})
	tb.send("vm1", f, f, f)
	got := tb.sent()
	if len(got["uplink"]) != 3 {
		t.Fatalf("got %s", describe(got))
	}
	if vid, _ := frameVLAN(got["uplink"][0]); vid != 10 {
		t.Fatalf("uplink frame vid %d, want 10", vid)
	}
	if flows, _, _ := tb.dp.CacheStats(); flows != 1 {
		t.Fatalf("%d megaflows, want 1:\n%s", flows, tb.dp.DumpDPFlows())
	}
	// Reply from the uplink reaches the VM untagged, through both bridges.
	tb.send("uplink", buildFrame(frameSpec{src: mac(9), dst: mac(1), vid: 10}))
	got = tb.sent()
	if len(got["vm1"]) != 1 {
		t.Fatalf("reply: %s", describe(got))
	}
	if vid, _ := frameVLAN(got["vm1"][0]); vid != -1 {
		t.Fatalf("vm got tagged frame")
	}
	// MAC learned in both bridges.
	for _, br := range []string{"br-ex", "br-phy"} {
		fdb, _ := tb.dp.FDBShow(br)
		if !strings.Contains(fdb, "02:00:00:00:00:01") {
			t.Fatalf("%s did not learn the VM:\n%s", br, fdb)
		}
	}
	// Deleting the VM port flushes its MAC everywhere it was learned on it.
	if err := tb.dp.DelPort("br-ex", "vm1"); err != nil {
		t.Fatal(err)
	}
	fdb, _ := tb.dp.FDBShow("br-ex")
	if strings.Contains(fdb, "02:00:00:00:00:01") {
		t.Fatalf("vm MAC survived port deletion:\n%s", fdb)
	}
}

func TestRulesOverrideNormal(t *testing.T) {
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("p1", -1, ""))
	tb.addPort("br0", port("p2", -1, ""))
	tb.addPort("br0", port("p3", -1, ""))
	f := buildFrame(frameSpec{src: mac(1), dst: bcast, vid: -1})
	tb.send("p1", f)
	if got := tb.sent(); len(got) != 2 {
		t.Fatalf("default NORMAL: %s", describe(got))
	}
	if err := tb.dp.AddFlow("br0", "priority=100,in_port=p1,actions=mod_vlan_vid:42,output:p3"); err != nil {
		t.Fatal(err)
	}
	tb.send("p1", f)
	got := tb.sent()
	if len(got) != 1 || len(got["p3"]) != 1 {
		t.Fatalf("after add-flow: %s", describe(got))
	}
	if vid, _ := frameVLAN(got["p3"][0]); vid != 42 {
		t.Fatalf("vid %d", vid)
	}
	rules, _ := tb.dp.Rules("br0")
	var n uint64
	for _, r := range rules {
		if r.Priority == 100 {
			n, _ = r.Stats()
		}
	}
	if n != 1 {
		t.Fatalf("rule counter %d, want 1", n)
	}
	if _, err := tb.dp.DelFlows("br0", "in_port=p1", false); err != nil {
		t.Fatal(err)
	}
	tb.send("p1", f)
	if got := tb.sent(); len(got) != 0 {
		// del-flows without a match removed only in_port=p1 rules; the
		// default NORMAL rule has no in_port match so is kept... but a
		// loose in_port=p1 selection does not cover it.
		if len(got) != 2 {
			t.Fatalf("after del-flows: %s", describe(got))
		}
	}
}

func TestTrace(t *testing.T) {
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("p1", 10, ""))
	tb.addPort("br0", port("p2", -1, ""))
	out, err := tb.dp.Trace("br0", "in_port=p1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no learned MAC for destination, flooding", "Datapath actions: push_vlan(vid=10,pcp=0),p2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("trace lacks %q:\n%s", want, out)
		}
	}
	// Trace has no side effects.
	if fdb, _ := tb.dp.FDBShow("br0"); strings.Contains(fdb, "02:00:00:00:00:01") {
		t.Fatal("trace learned a MAC")
	}
}

// TestVLANUnicastBothTiers: learned unicast between ports of every VLAN
// mode, repeated so the second round runs from the caches — and, with the
// kernel tier, from the (fake) XDP program. Tags on egress must be the
// same every round and in both modes.
func TestVLANUnicastBothTiers(t *testing.T) {
	for _, kernel := range []bool{false, true} {
		tb := newTestBridge(t, "br0")
		if kernel {
			tb.kernel = newFakeKernel(tb.dp.now)
			tb.dp.SetKernelTier(tb.kernel)
		}
		tb.addPort("br0", port("a10", 10, ""))
		tb.addPort("br0", port("t", -1, ""))
		tb.addPort("br0", port("nu10", 10, "native-untagged", 20))
		tb.addPort("br0", port("nt20", 20, "native-tagged"))
		hosts := map[string]struct {
			mac [6]byte
			vid int // as the host sends/receives on its port for VLAN 10
		}{"a10": {mac(0xa1), -1}, "t": {mac(0xb1), 10}, "nu10": {mac(0xc1), -1}, "nt20": {mac(0xd1), 10}}
		for name, h := range hosts {
			tb.send(name, buildFrame(frameSpec{src: h.mac, dst: bcast, vid: h.vid}))
		}
		tb.sent()
		for round := 0; round < 3; round++ {
			for from, hf := range hosts {
				for to, ht := range hosts {
					if from == to {
						continue
					}
					tb.send(from, buildFrame(frameSpec{src: hf.mac, dst: ht.mac, vid: hf.vid, sport: 7}))
					got := tb.sent()
					if len(got) != 1 || len(got[to]) != 1 {
						t.Fatalf("kernel=%v round %d %s->%s: %s", kernel, round, from, to, describe(got))
					}
					if vid, _ := frameVLAN(got[to][0]); vid != ht.vid {
						t.Fatalf("kernel=%v round %d %s->%s: vid %d, want %d", kernel, round, from, to, vid, ht.vid)
					}
				}
			}
		}
		if kernel && tb.kernel.hits == 0 {
			t.Fatal("the kernel tier handled nothing")
		}
	}
}
