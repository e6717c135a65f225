package bond

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(msec int) time.Time { return t0.Add(time.Duration(msec) * time.Millisecond) }

func members(names ...string) []Member {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{OfPort: uint32(i + 1), Name: n, MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, byte(i + 1)}, Up: true}
	}
	return ms
}

func mustNew(t testing.TB, cfg Config) *Bond {
	t.Helper()
	b, err := New(cfg, t0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func slbConfig(names ...string) Config {
	return Config{Name: "bond0", Mode: ModeBalanceSLB, Members: members(names...), RebalanceInterval: DefaultRebalanceInterval}
}

func macN(i int) [6]byte { return [6]byte{0x50, 0x54, 0, 0, byte(i >> 8), byte(i)} }

// bucketsOf returns the buckets the published table maps to ofport.
func bucketsOf(b *Bond, ofport uint32) []int {
	var out []int
	for i, p := range b.snap.Load().bucket {
		if p == ofport {
			out = append(out, i)
		}
	}
	return out
}

func TestSelectStableAndSpread(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	perMember := map[uint32]int{}
	for i := 0; i <= 0x64; i++ { // 101 MACs, as OVS's "balance-slb bonding" test
		m, bucket, ok := b.Select(macN(i), 0)
		if !ok {
			t.Fatalf("MAC %d: not forwarded", i)
		}
		if bucket != Bucket(macN(i), 0, 0) {
			t.Fatalf("MAC %d: bucket %d, want %d", i, bucket, Bucket(macN(i), 0, 0))
		}
		for range 3 {
			if m2, b2, _ := b.Select(macN(i), 0); m2 != m || b2 != bucket {
				t.Fatalf("MAC %d: Select not stable: %d/%d then %d/%d", i, m, bucket, m2, b2)
			}
		}
		perMember[m]++
	}
	for p := uint32(1); p <= 3; p++ {
		if perMember[p] <= 3 {
			t.Errorf("member %d got %d of 101 MACs, want > 3 (%v)", p, perMember[p], perMember)
		}
	}
	// VLAN is part of the hash: the same MAC on another VLAN uses another bucket.
	if _, b1, _ := b.Select(macN(1), 0); b1 != 144 {
		t.Errorf("bucket of 50:54:00:00:00:01 = %d, want 144", b1)
	}
	if _, b2, _ := b.Select(macN(1), 10); b2 != 60 {
		t.Errorf("bucket of 50:54:00:00:00:01 vlan 10 = %d, want 60", b2)
	}
}

func TestInitialDealIsRoundRobin(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	tb := b.snap.Load()
	for i, p := range tb.bucket {
		if want := uint32(i%3 + 1); p != want {
			t.Fatalf("bucket %d -> %d, want %d", i, p, want)
		}
	}
}

func TestFailoverMovesBucketsAtOnce(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	b.Run(t0)
	before := b.snap.Load().bucket
	onP2 := bucketsOf(b, 2)
	if len(onP2) == 0 {
		t.Fatal("p2 has no buckets")
	}
	b.SetCarrier(2, false, at(10))
	// No Run yet: the fast path must already avoid p2.
	if got := bucketsOf(b, 2); len(got) != 0 {
		t.Fatalf("after SetCarrier(down) p2 still owns %d buckets", len(got))
	}
	after := b.snap.Load().bucket
	for i := range after {
		if after[i] == 0 {
			t.Fatalf("bucket %d unassigned", i)
		}
		if before[i] != 2 && after[i] != before[i] {
			t.Errorf("bucket %d moved %d -> %d though its member did not fail", i, before[i], after[i])
		}
	}
	for i := 0; i < 1000; i++ {
		if m, _, ok := b.Select(macN(i), uint16(i%3)); !ok || m == 2 {
			t.Fatalf("MAC %d -> member %d ok=%v after p2 failed", i, m, ok)
		}
	}
	ev := b.Run(at(20))
	if fmt.Sprint(ev.Disabled) != "[2]" || ev.Moved.Len() != len(onP2) || !ev.SendLearning {
		t.Errorf("events: disabled %v moved %d (want %d) learning %v", ev.Disabled, ev.Moved.Len(), len(onP2), ev.SendLearning)
	}
	for _, i := range onP2 {
		if !ev.Moved.Has(uint8(i)) {
			t.Errorf("bucket %d not reported as moved", i)
		}
	}
	// Orphans are dealt round-robin over the survivors.
	n1, n3 := len(bucketsOf(b, 1)), len(bucketsOf(b, 3))
	if d := n1 - n3; d < -1 || d > 1 {
		t.Errorf("survivors own %d and %d buckets, want an even split", n1, n3)
	}
	// p2 comes back: nothing moves back (OVS), it is enabled though.
	b.SetCarrier(2, true, at(30))
	ev = b.Run(at(30))
	if fmt.Sprint(ev.Enabled) != "[2]" || ev.Moved.Len() != 0 {
		t.Errorf("p2 back: enabled %v moved %d", ev.Enabled, ev.Moved.Len())
	}
}

func TestAllMembersDown(t *testing.T) {
	cfg := slbConfig("p1", "p2")
	cfg.UpDelay = 5000
	b := mustNew(t, cfg)
	b.SetCarrier(1, false, at(0))
	b.SetCarrier(2, false, at(0))
	if _, _, ok := b.Select(macN(1), 0); ok {
		t.Fatal("Select forwards with every member down")
	}
	ev := b.Run(at(1))
	if !ev.ActiveChanged || ev.Active != 0 {
		t.Errorf("all down: active changed %v active %d", ev.ActiveChanged, ev.Active)
	}
	// No member enabled: the first to come up is enabled immediately,
	// skipping its updelay.
	b.SetCarrier(2, true, at(1000))
	if m, _, ok := b.Select(macN(1), 0); !ok || m != 2 {
		t.Fatalf("after p2 up: Select = %d, %v; want 2", m, ok)
	}
	ev = b.Run(at(1000))
	if !strings.Contains(strings.Join(ev.Log, "\n"), "skipping remaining 5000 ms updelay") {
		t.Errorf("log lacks the skipped updelay: %q", ev.Log)
	}
	// With p2 enabled, p1 waits for its updelay.
	b.SetCarrier(1, true, at(2000))
	b.Run(at(6999))
	if s := b.Status(); s.Members[0].Enabled {
		t.Error("p1 enabled before its updelay expired")
	}
	if !strings.Contains(b.Show(at(6999)), "member p1: disabled\n  updelay expires in 1 ms\n  may_enable: true\n") {
		t.Errorf("show:\n%s", b.Show(at(6999)))
	}
	ev = b.Run(at(7000))
	if fmt.Sprint(ev.Enabled) != "[1]" {
		t.Errorf("p1 not enabled at updelay expiry: %v", ev.Enabled)
	}
}

func TestDownDelayAndFlap(t *testing.T) {
	cfg := Config{Name: "ab", Members: members("a", "b"), DownDelay: 2000}
	b := mustNew(t, cfg)
	if w := b.Warnings(); len(w) != 1 || !strings.Contains(w[0], "Using the default bond_mode active-backup") {
		t.Errorf("warnings %q", w)
	}
	if m, _, _ := b.Select(macN(0), 0); m != 1 {
		t.Fatalf("active = %d, want 1", m)
	}
	b.Run(t0)
	b.SetCarrier(1, false, at(0))
	b.Run(at(0))
	if m, _, _ := b.Select(macN(0), 0); m != 1 {
		t.Fatal("member disabled before downdelay")
	}
	if s := b.Show(at(513)); !strings.Contains(s, "  downdelay expires in 1487 ms\n  may_enable: false\n") {
		t.Errorf("show:\n%s", s)
	}
	if next, ok := b.NextWake(at(1)); !ok || !next.Equal(at(2000)) {
		t.Errorf("NextWake = %v %v, want %v", next, ok, at(2000))
	}
	b.Run(at(1999))
	if m, _, _ := b.Select(macN(0), 0); m != 1 {
		t.Fatal("member disabled 1 ms early")
	}
	ev := b.Run(at(2000))
	if m, _, _ := b.Select(macN(0), 0); m != 2 {
		t.Fatalf("active = %d after downdelay, want 2", m)
	}
	if !ev.ActiveChanged || ev.Active != 2 || !ev.SendLearning || fmt.Sprint(ev.Disabled) != "[1]" {
		t.Errorf("events %+v", ev)
	}

	// Flap: b goes down and comes back within the delay: cancelled.
	b.SetCarrier(2, false, at(3000))
	b.SetCarrier(2, true, at(4000))
	ev = b.Run(at(4000))
	if !strings.Contains(strings.Join(ev.Log, "\n"), "member b: will not be disabled") {
		t.Errorf("log %q", ev.Log)
	}
	ev = b.Run(at(9000))
	if len(ev.Disabled) != 0 || !b.Status().Members[1].Enabled {
		t.Error("flapping member was disabled")
	}
	if _, ok := b.NextWake(at(9000)); ok {
		t.Error("NextWake scheduled with no timer running")
	}
}

func TestPrimaryPreemption(t *testing.T) {
	cfg := Config{Name: "ab0", Mode: ModeActiveBackup, Members: members("q1", "q2", "q3"), Primary: "q2", UpDelay: 1000}
	b := mustNew(t, cfg)
	if s := b.Status(); s.Active != 2 {
		t.Fatalf("active %d, want primary q2", s.Active)
	}
	b.SetCarrier(2, false, at(0))
	ev := b.Run(at(0))
	if !ev.ActiveChanged || ev.Active == 2 || ev.Active == 0 || !ev.SendLearning {
		t.Fatalf("failover events %+v", ev)
	}
	b.SetCarrier(2, true, at(100))
	b.Run(at(1099))
	if b.Status().Active == 2 {
		t.Fatal("primary pre-empted before its updelay")
	}
	ev = b.Run(at(1100))
	if !ev.ActiveChanged || ev.Active != 2 {
		t.Fatalf("primary did not pre-empt: %+v", ev)
	}
	// set-active-member is not permanent while the primary is enabled.
	if r, err := b.SetActiveMember("q3"); r != "done" || err != nil {
		t.Fatalf("SetActiveMember = %q, %v", r, err)
	}
	if r, _ := b.SetActiveMember("q3"); r != "no change" {
		t.Fatalf("second SetActiveMember = %q", r)
	}
	b.Run(at(1200))
	if b.Status().Active != 2 {
		t.Error("primary did not take over again")
	}
	// Naming a missing primary; then dropping the primary: no pre-emption.
	cfg.Primary = "zz"
	if err := b.Reconfigure(cfg, at(1300)); err != nil {
		t.Fatal(err)
	}
	if s := b.Show(at(1300)); !strings.Contains(s, "active-backup primary: zz (no such member)\n") {
		t.Errorf("show:\n%s", s)
	}
	cfg.Primary = ""
	b.Reconfigure(cfg, at(1400))
	b.SetActiveMember("q3")
	b.Run(at(1500))
	if b.Status().Active != 3 {
		t.Error("active member changed without a primary")
	}
}

func TestActiveMACSurvivesRestart(t *testing.T) {
	cfg := Config{Name: "ab", Mode: ModeActiveBackup, Members: members("a", "b", "c")}
	cfg.ActiveMAC = cfg.Members[1].MAC
	b := mustNew(t, cfg)
	if s := b.Status(); s.Active != 2 || s.ActiveMAC != cfg.Members[1].MAC {
		t.Errorf("active %d mac %x, want member 2", s.Active, s.ActiveMAC)
	}
}

// loadBuckets accounts bytes on buckets.
func loadBuckets(b *Bond, loads map[int]uint64) {
	for k, v := range loads {
		b.Account(uint8(k), v)
	}
}

func TestRebalanceSkewed(t *testing.T) {
	cfg := slbConfig("p1", "p2")
	cfg.RebalanceInterval = 1000
	b := mustNew(t, cfg)
	b.Run(t0)
	on1 := bucketsOf(b, 1)
	// p1 carries 400k, 300k, 200k and 100k bytes; p2 nothing.
	h := []int{on1[0], on1[1], on1[2], on1[3]}
	loadBuckets(b, map[int]uint64{h[0]: 400000, h[1]: 300000, h[2]: 200000, h[3]: 100000})
	if ev := b.Run(at(999)); ev.Moved.Len() != 0 {
		t.Fatal("rebalanced before the interval")
	}
	ev := b.Run(at(1000))
	// OVS's algorithm: ideal_delta 500k; take 400k, skip 300k and 200k,
	// take 100k -> exactly 500k each.
	if ev.Moved.Len() != 2 || !ev.Moved.Has(uint8(h[0])) || !ev.Moved.Has(uint8(h[3])) {
		t.Fatalf("moved %d buckets; want buckets %d and %d; log %q", ev.Moved.Len(), h[0], h[3], ev.Log)
	}
	tb := b.snap.Load()
	if tb.bucket[h[0]] != 2 || tb.bucket[h[3]] != 2 || tb.bucket[h[1]] != 1 || tb.bucket[h[2]] != 1 {
		t.Errorf("bucket owners after rebalance: %d %d %d %d", tb.bucket[h[0]], tb.bucket[h[1]], tb.bucket[h[2]], tb.bucket[h[3]])
	}
	if ev.SendLearning {
		t.Error("rebalance requested learning packets")
	}
	if !strings.Contains(strings.Join(ev.Log, "\n"), fmt.Sprintf("shift 390kB of load (with hash %d) from p1 to p2", h[0])) {
		t.Errorf("log %q", ev.Log)
	}
	// Loads decayed by half: 200k+50k on p2, 150k+100k on p1.
	s := b.Show(at(1000))
	if !strings.Contains(s, fmt.Sprintf("  hash %d: 195 kB load\n", h[0])) {
		t.Errorf("show lacks decayed load:\n%s", s)
	}
	// Balanced now: the next run moves nothing.
	if ev := b.Run(at(2000)); ev.Moved.Len() != 0 {
		t.Errorf("balanced bond rebalanced again: %q", ev.Log)
	}
}

func TestRebalanceStopRules(t *testing.T) {
	cfg := slbConfig("p1", "p2")
	cfg.RebalanceInterval = 1000
	for _, tc := range []struct {
		name   string
		p1, p2 []uint64
		moves  bool
	}{
		{"gap under 100000 bytes", []uint64{60000, 39999}, nil, false},
		{"gap under 3%", []uint64{10_000_000, 100_000, 100_000}, []uint64{10_000_000}, false},
		{"gap at 3%", []uint64{10_000_000, 200_000, 200_000}, []uint64{10_000_000}, true},
		{"single heavy bucket", []uint64{9_000_000}, []uint64{100}, false},
		{"improvement below 10%", []uint64{1_000_000, 900_000}, []uint64{1_000_000}, false},
		{"clear skew", []uint64{1_000_000, 900_000}, []uint64{100_000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustNew(t, cfg)
			b.Run(t0)
			on1, on2 := bucketsOf(b, 1), bucketsOf(b, 2)
			for i, v := range tc.p1 {
				b.Account(uint8(on1[i]), v)
			}
			for i, v := range tc.p2 {
				b.Account(uint8(on2[i]), v)
			}
			ev := b.Run(at(1000))
			if got := ev.Moved.Len() > 0; got != tc.moves {
				t.Errorf("moved %d buckets, want moves=%v; log %q", ev.Moved.Len(), tc.moves, ev.Log)
			}
		})
	}
}

// An exact fit to ideal_delta is taken (OVS compares with <=).
func TestRebalanceExactFit(t *testing.T) {
	cfg := slbConfig("p1", "p2")
	cfg.RebalanceInterval = 1000
	b := mustNew(t, cfg)
	b.Run(t0)
	on1 := bucketsOf(b, 1)
	loadBuckets(b, map[int]uint64{on1[0]: 500_000, on1[1]: 300_000, on1[2]: 200_000})
	ev := b.Run(at(1000))
	if ev.Moved.Len() != 1 || !ev.Moved.Has(uint8(on1[0])) {
		t.Errorf("moved %d buckets, want only bucket %d: %q", ev.Moved.Len(), on1[0], ev.Log)
	}
}

func TestRebalanceIntervals(t *testing.T) {
	// 0 never rebalances.
	cfg := slbConfig("p1", "p2")
	cfg.RebalanceInterval = 0
	b := mustNew(t, cfg)
	b.Run(t0)
	on1 := bucketsOf(b, 1)
	for i := 1; i < 100; i++ {
		loadBuckets(b, map[int]uint64{on1[0]: 5_000_000, on1[1]: 5_000_000, on1[2]: 5_000_000})
		if ev := b.Run(at(i * 10000)); ev.Moved.Len() != 0 {
			t.Fatal("interval 0 rebalanced")
		}
	}
	if s := b.Show(t0); strings.Contains(s, "next rebalance") {
		t.Errorf("interval 0 shows next rebalance:\n%s", s)
	}
	// 500 is raised to 1000.
	cfg.RebalanceInterval = 500
	b = mustNew(t, cfg)
	if s := b.Show(t0); !strings.Contains(s, "next rebalance: 1000 ms\n") {
		t.Errorf("interval 500:\n%s", s)
	}
	// Switching rebalancing on resets the table (OVS), off->on via Reconfigure.
	cfg.RebalanceInterval = 0
	b = mustNew(t, cfg)
	b.Migrate("0", "p2")
	b.Run(t0)
	cfg.RebalanceInterval = 10000
	b.Reconfigure(cfg, at(5))
	if ev := b.Run(at(5)); !ev.Reset {
		t.Error("enabling rebalancing did not reset the table")
	}
}

// TestRebalancePhase is OVS's "bond rebalance interval reconfiguration".
func TestRebalancePhase(t *testing.T) {
	cfg := slbConfig("p1", "p2")
	cfg.RebalanceInterval = 60000
	b := mustNew(t, cfg)
	next := func(now time.Time) string {
		for _, l := range strings.Split(b.Show(now), "\n") {
			if v, ok := strings.CutPrefix(l, "next rebalance: "); ok {
				return v
			}
		}
		return "missing"
	}
	steps := []struct {
		now      int
		interval int // 0: no reconfiguration
		want     string
	}{
		{0, 0, "60000 ms"},
		{50000, 0, "10000 ms"},
		{50000, 10000, "-40000 ms"},
		{50001, 0, "10000 ms"},
		{55001, 0, "5000 ms"},
		{55001, 60000, "55000 ms"},
	}
	for _, s := range steps {
		if s.interval != 0 {
			cfg.RebalanceInterval = s.interval
			if err := b.Reconfigure(cfg, at(s.now)); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Run(at(s.now))
		}
		if got := next(at(s.now)); got != s.want {
			t.Errorf("t=%d interval=%d: next rebalance %s, want %s", s.now, s.interval, got, s.want)
		}
	}
	if ev := b.Run(at(55001)); ev.Reset {
		t.Error("interval change reset the table")
	}
}

func TestAdmit(t *testing.T) {
	slb := mustNew(t, slbConfig("p1", "p2"))
	slb.SetActiveMember("p1")
	allCfg := slbConfig("p1", "p2")
	allCfg.AllMembersActive = true
	all := mustNew(t, allCfg)
	all.SetActiveMember("p1")
	ab := mustNew(t, Config{Name: "ab", Mode: ModeActiveBackup, Members: members("p1", "p2"), AllMembersActive: true})
	tcp := mustNew(t, Config{Name: "tcp", Mode: ModeBalanceTCP, Members: members("p1", "p2")})
	lacp := mustNew(t, Config{Name: "l", Mode: ModeBalanceSLB, LACP: LACPActive, Members: members("p1", "p2")})
	fb := mustNew(t, Config{Name: "fb", Mode: ModeBalanceSLB, LACP: LACPActive, LACPFallbackAB: true, Members: members("p1", "p2")})
	now := at(0)
	locked := Frame{SrcLearnedElsewhere: true, GratuitousARP: true, DstMulticast: true, GARPLockedUntil: now.Add(time.Second)}
	expired := locked
	expired.GARPLockedUntil = now
	for _, tc := range []struct {
		name   string
		b      *Bond
		in     uint32
		f      Frame
		v      Verdict
		reason Reason
	}{
		{"slb unicast on active", slb, 1, Frame{}, Accept, ReasonNone},
		{"slb unicast on other member", slb, 2, Frame{}, Accept, ReasonNone},
		{"slb not a member", slb, 9, Frame{}, Drop, ReasonNotMember},
		{"slb multicast on active", slb, 1, Frame{DstMulticast: true}, Accept, ReasonNone},
		{"slb multicast on other", slb, 2, Frame{DstMulticast: true}, Drop, ReasonNotActive},
		{"slb all-members-active multicast on other", all, 2, Frame{DstMulticast: true}, Accept, ReasonNone},
		{"slb moved MAC unicast", slb, 2, Frame{SrcLearnedElsewhere: true}, Drop, ReasonLooped},
		{"slb moved MAC broadcast on active", slb, 1, Frame{SrcLearnedElsewhere: true, DstMulticast: true}, Drop, ReasonLooped},
		{"slb GARP for moved MAC", slb, 1, Frame{SrcLearnedElsewhere: true, GratuitousARP: true, DstMulticast: true}, Accept, ReasonNone},
		{"slb GARP locked", slb, 1, locked, Drop, ReasonGARPLocked},
		{"slb GARP lock expired", slb, 1, expired, Accept, ReasonNone},
		{"slb GARP on non-active member", slb, 2, expired, Drop, ReasonNotActive},
		{"ab active", ab, 1, Frame{SrcLearnedElsewhere: true}, Accept, ReasonNone},
		{"ab backup unicast", ab, 2, Frame{}, Drop, ReasonBackup},
		{"ab backup multicast (all-members-active ignored)", ab, 2, Frame{DstMulticast: true}, Drop, ReasonNotActive},
		{"tcp without lacp", tcp, 1, Frame{}, Drop, ReasonNoLACP},
		{"lacp not negotiated", lacp, 1, Frame{}, Drop, ReasonNoLACP},
		{"lacp fallback-ab active", fb, 1, Frame{}, Accept, ReasonNone},
		{"lacp fallback-ab backup", fb, 2, Frame{}, Drop, ReasonBackup},
	} {
		v, r := tc.b.Admit(tc.in, tc.f, now)
		if v != tc.v || r != tc.reason {
			t.Errorf("%s: got %v/%q, want %v/%q", tc.name, v, r, tc.v, tc.reason)
		}
	}
	if ReasonNotActive.String() != "bonding refused admissibility, dropping" ||
		ReasonLooped.String() != "SLB bond thinks this packet looped back, dropping" {
		t.Error("reason texts differ from OVS's trace output")
	}
}

func TestNonForwardingModes(t *testing.T) {
	tcp := mustNew(t, Config{Name: "tcp", Mode: ModeBalanceTCP, Members: members("p1", "p2"), RebalanceInterval: 10000})
	if _, _, ok := tcp.Select(macN(1), 0); ok {
		t.Error("balance-tcp without LACP forwards")
	}
	if s := tcp.Status(); !strings.Contains(s.Note, "balance-tcp requires LACP") {
		t.Errorf("status note %q", s.Note)
	}
	if _, err := tcp.Migrate("1", "p1"); !errors.Is(err, ErrNotSLB) {
		t.Errorf("migrate on tcp: %v", err)
	}
	if ev := tcp.Run(t0); ev.SendLearning {
		t.Error("balance-tcp asks for learning packets")
	}
	lacp := mustNew(t, Config{Name: "l", Mode: ModeBalanceSLB, LACP: LACPActive, Members: members("p1", "p2")})
	if _, _, ok := lacp.Select(macN(1), 0); ok {
		t.Error("unnegotiated LACP forwards")
	}
	if s := lacp.Show(t0); !strings.Contains(s, "lacp_status: configured\n") {
		t.Errorf("show:\n%s", s)
	}
	fb := mustNew(t, Config{Name: "fb", Mode: ModeBalanceSLB, LACP: LACPActive, LACPFallbackAB: true, Members: members("p1", "p2")})
	if m, _, ok := fb.Select(macN(1), 0); !ok || m != fb.Status().Active {
		t.Error("lacp-fallback-ab does not behave as active-backup")
	}
}

func TestCommands(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	b.Run(t0)
	for _, tc := range []struct {
		hash, member string
		reply        string
		err          error
	}{
		{"7", "p3", "migrated", nil},
		{"263", "p2", "migrated", nil}, // 263 & 0xff == 7
		{"x1", "p1", "", ErrBadHash},
		{"-1", "p1", "", ErrBadHash},
		{"1", "zz", "", ErrNoSuchMember},
	} {
		r, err := b.Migrate(tc.hash, tc.member)
		if r != tc.reply || !errors.Is(err, tc.err) {
			t.Errorf("Migrate(%s, %s) = %q, %v", tc.hash, tc.member, r, err)
		}
	}
	if got := b.snap.Load().bucket[7]; got != 2 {
		t.Errorf("bucket 7 -> %d, want 2", got)
	}
	if ev := b.Run(t0); !ev.Moved.Has(7) {
		t.Error("migrate not reported as a move")
	}
	if r, err := b.DisableMember("p3"); r != "disabled" || err != nil {
		t.Fatalf("DisableMember = %q %v", r, err)
	}
	if len(bucketsOf(b, 3)) != 0 {
		t.Error("disabled member keeps buckets")
	}
	if _, err := b.Migrate("9", "p3"); !errors.Is(err, ErrMigrateDisabled) {
		t.Errorf("migrate to disabled: %v", err)
	}
	if _, err := b.SetActiveMember("p3"); !errors.Is(err, ErrActivateDisabled) || err.Error() != "cannot make disabled member active" {
		t.Errorf("SetActiveMember(disabled): %v", err)
	}
	// Not sticky: carrier is up, updelay 0, so the next Run re-enables it.
	ev := b.Run(at(1))
	if fmt.Sprint(ev.Enabled) != "[3]" || !b.Status().Members[2].Enabled {
		t.Errorf("disable-member was sticky: %+v", ev.Enabled)
	}
	if r, err := b.EnableMember("p3"); r != "enabled" || err != nil {
		t.Errorf("EnableMember = %q %v", r, err)
	}
	if _, err := b.EnableMember("zz"); !errors.Is(err, ErrNoSuchMember) {
		t.Errorf("EnableMember(zz): %v", err)
	}
	ab := mustNew(t, Config{Name: "ab", Mode: ModeActiveBackup, Members: members("a", "b")})
	if _, err := ab.Migrate("1", "a"); !errors.Is(err, ErrNotSLB) || err.Error() != "not an SLB bond" {
		t.Errorf("migrate on AB: %v", err)
	}
	if got := ab.List(); got != "ab\tactive-backup\t0\ta, b" {
		t.Errorf("List = %q", got)
	}
}

func TestReconfigureKeepsState(t *testing.T) {
	cfg := slbConfig("p1", "p2", "p3")
	b := mustNew(t, cfg)
	b.SetActiveMember("p3")
	b.Migrate("5", "p1")
	b.SetCarrier(2, false, at(0))
	b.Run(at(0))
	before := b.snap.Load().bucket
	cfg.UpDelay, cfg.AllMembersActive = 100, true
	cfg.Members[2].Up = false // only the initial state; ignored for existing members
	if err := b.Reconfigure(cfg, at(10)); err != nil {
		t.Fatal(err)
	}
	ev := b.Run(at(10))
	if ev.Reset || b.snap.Load().bucket != before || b.Status().Active != 3 || b.Status().Members[1].Enabled {
		t.Errorf("reconfigure lost state: reset %v active %d", ev.Reset, b.Status().Active)
	}
	if v, _ := b.Admit(1, Frame{DstMulticast: true}, at(10)); v != Accept {
		t.Error("all-members-active not applied by Reconfigure")
	}
	// Adding a member resets the table and deals to it.
	cfg.Members = append(cfg.Members, Member{OfPort: 7, Name: "p4", Up: true})
	b.Reconfigure(cfg, at(20))
	ev = b.Run(at(20))
	if !ev.Reset || len(bucketsOf(b, 7)) == 0 || len(bucketsOf(b, 2)) != 0 {
		t.Errorf("member add: reset %v p4 buckets %d", ev.Reset, len(bucketsOf(b, 7)))
	}
	// Removing the active member re-chooses.
	cfg.Members = cfg.Members[:2]
	b.Reconfigure(cfg, at(30))
	ev = b.Run(at(30))
	if !ev.ActiveChanged || ev.Active != 1 || !ev.SendLearning {
		t.Errorf("remove active: %+v", ev)
	}
	if err := b.Reconfigure(Config{Name: "bond0"}, at(40)); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config accepted: %v", err)
	}
	if _, err := New(Config{Name: "x", Members: []Member{{OfPort: 1, Name: "a"}, {OfPort: 1, Name: "b"}}}, t0); !errors.Is(err, ErrConfig) {
		t.Errorf("duplicate ofport accepted: %v", err)
	}
}
