package datapath

import (
	"testing"
	"time"

	"xvs/bond"
)

// bondBridge: br0 with host port h1 and a balance-slb bond of m1, m2.
func bondBridge(t *testing.T, mode bond.Mode) (*testBridge, *bond.Bond) {
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("h1", -1, ""))
	now := time.Now()
	cfg := bond.Config{Name: "bond0", Mode: mode, Members: []bond.Member{{OfPort: 2, Name: "m1", Up: true}, {OfPort: 3, Name: "m2", Up: true}}, RebalanceInterval: 0}
	b, err := bond.New(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	pc := PortConfig{Name: "bond0", Tag: -1, Bond: b, Interfaces: []InterfaceConfig{{Name: "m1", OfPortRequest: 2}, {Name: "m2", OfPortRequest: 3}}}
	tb.addPort("br0", pc)
	return tb, b
}

func TestBondSLBSpreadsAndFailsOver(t *testing.T) {
	tb, b := bondBridge(t, bond.ModeBalanceSLB)
	frames := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		frames = append(frames, buildFrame(frameSpec{src: [6]byte{0x02, 1, 0, 0, 0, byte(i)}, dst: mac(0xee), vid: -1}))
	}
	tb.send("h1", frames...)
	got := tb.sent()
	n1, n2 := len(got["m1"]), len(got["m2"])
	if n1+n2 != 64 || n1 == 0 || n2 == 0 {
		t.Fatalf("flooded unknown unicast over the bond: m1=%d m2=%d (want one copy each, both members used)", n1, n2)
	}
	// The same MAC always leaves on the same member.
	first := map[byte]string{}
	for m, fs := range got {
		for _, f := range fs {
			first[f[11]] = m
		}
	}
	tb.send("h1", frames...)
	for m, fs := range tb.sent() {
		for _, f := range fs {
			if first[f[11]] != m {
				t.Fatalf("MAC %x moved from %s to %s without a change", f[6:12], first[f[11]], m)
			}
		}
	}
	// m1 loses carrier: everything moves to m2 at once, with no cache flush.
	b.SetCarrier(2, false, time.Now())
	tb.send("h1", frames...)
	got = tb.sent()
	if len(got["m1"]) != 0 || len(got["m2"]) != 64 {
		t.Fatalf("after failover: m1=%d m2=%d", len(got["m1"]), len(got["m2"]))
	}
}

func TestBondAdmissibility(t *testing.T) {
	tb, b := bondBridge(t, bond.ModeBalanceSLB)
	active := b.Status().Active
	inactive := "m1"
	activeName := "m2"
	if active == 2 {
		inactive, activeName = "m2", "m1"
	}
	bc := buildFrame(frameSpec{src: mac(0x50), dst: bcast, vid: -1})
	tb.send(inactive, bc)
	if got := tb.sent(); len(got) != 0 {
		t.Fatalf("broadcast on the inactive member accepted: %s", describe(got))
	}
	tb.send(activeName, bc)
	if got := tb.sent(); len(got["h1"]) != 1 {
		t.Fatalf("broadcast on the active member: %s", describe(got))
	}
	// A frame whose source is learned on h1 coming back through the bond
	// is a loop: dropped on every member.
	tb.send("h1", buildFrame(frameSpec{src: mac(0x60), dst: bcast, vid: -1}))
	tb.sent()
	loop := buildFrame(frameSpec{src: mac(0x60), dst: mac(0x61), vid: -1})
	tb.send(activeName, loop)
	tb.send(inactive, loop)
	if got := tb.sent(); len(got) != 0 {
		t.Fatalf("looped frame accepted: %s", describe(got))
	}
	// Unicast from an unknown source is accepted on any member.
	tb.send(inactive, buildFrame(frameSpec{src: mac(0x70), dst: mac(0x60), vid: -1}))
	if got := tb.sent(); len(got["h1"]) != 1 {
		t.Fatalf("unicast on inactive member: %s", describe(got))
	}
}

func TestBondActiveBackup(t *testing.T) {
	tb, b := bondBridge(t, bond.ModeActiveBackup)
	for i := 0; i < 16; i++ {
		tb.send("h1", buildFrame(frameSpec{src: [6]byte{0x02, 2, 0, 0, 0, byte(i)}, dst: mac(0xee), vid: -1}))
	}
	got := tb.sent()
	act := b.Status().Active
	want := map[uint32]string{2: "m1", 3: "m2"}[act]
	if len(got[want]) != 16 || len(got) != 1 {
		t.Fatalf("active-backup used %s: %s", want, describe(got))
	}
	b.SetCarrier(act, false, time.Now())
	b.Run(time.Now())
	other := map[string]string{"m1": "m2", "m2": "m1"}[want]
	tb.send("h1", buildFrame(frameSpec{src: [6]byte{0x02, 2, 0, 0, 0, 1}, dst: mac(0xee), vid: -1}))
	if got := tb.sent(); len(got[other]) != 1 {
		t.Fatalf("after failover: %s", describe(got))
	}
}

// With the kernel tier, flows through an SLB bond are offloaded with their
// bucket; a member failure is a bucket-table update: the offloaded flows
// stay, and their frames move to the survivor.
func TestBondKernelTierFailover(t *testing.T) {
	tb := newTestBridge(t, "br0")
	tb.kernel = newFakeKernel(tb.dp.now)
	tb.dp.SetKernelTier(tb.kernel)
	tb.addPort("br0", port("h1", -1, ""))
	b, err := bond.New(bond.Config{Name: "bond0", Mode: bond.ModeBalanceSLB, Members: []bond.Member{{OfPort: 2, Name: "m1", Up: true}, {OfPort: 3, Name: "m2", Up: true}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tb.addPort("br0", PortConfig{Name: "bond0", Tag: -1, Bond: b, Interfaces: []InterfaceConfig{{Name: "m1", OfPortRequest: 2}, {Name: "m2", OfPortRequest: 3}}})
	// Learn the destination behind the bond, then send from 16 MACs.
	tb.send("m1", buildFrame(frameSpec{src: mac(0xee), dst: mac(0x01), vid: -1}))
	tb.sent()
	var frames [][]byte
	for i := 0; i < 16; i++ {
		frames = append(frames, buildFrame(frameSpec{src: [6]byte{0x02, 3, 0, 0, 0, byte(i)}, dst: mac(0xee), vid: -1}))
	}
	tb.send("h1", frames...) // userspace: installs and offloads
	tb.sent()
	if tb.dp.Offloaded() == 0 {
		t.Fatal("no bond flow offloaded")
	}
	hits := tb.kernel.hits
	tb.send("h1", frames...)
	got := tb.sent()
	if tb.kernel.hits-hits != 16 || len(got["m1"]) == 0 || len(got["m2"]) == 0 {
		t.Fatalf("kernel hits %d, m1=%d m2=%d", tb.kernel.hits-hits, len(got["m1"]), len(got["m2"]))
	}
	b.SetCarrier(2, false, time.Now())
	tb.dp.BondChanged("br0")
	off := tb.dp.Offloaded()
	tb.send("h1", frames...)
	got = tb.sent()
	if len(got["m1"]) != 0 || len(got["m2"]) != 16 {
		t.Fatalf("after failover: m1=%d m2=%d", len(got["m1"]), len(got["m2"]))
	}
	if off == 0 {
		t.Fatal("failover removed the offloaded flows (it should only update buckets)")
	}
}
