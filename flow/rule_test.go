package flow

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const sec = int64(1e9)

func mustFlow(t testing.TB, s string) *FlowMod {
	t.Helper()
	fm, err := ParseFlow(s, testPorts)
	if err != nil {
		t.Fatalf("ParseFlow(%q): %v", s, err)
	}
	return fm
}

func mustMod(t testing.TB, s string, mode ParseMode) *FlowMod {
	t.Helper()
	fm, err := ParseFlowMod(s, mode, testPorts)
	if err != nil {
		t.Fatalf("ParseFlowMod(%q): %v", s, err)
	}
	return fm
}

func mustAdd(t testing.TB, tb *Table, s string, now int64) *Rule {
	t.Helper()
	r, err := tb.Add(mustFlow(t, s), now)
	if err != nil {
		t.Fatalf("Add(%q): %v", s, err)
	}
	return r
}

// dump lists the rules as add-flow strings, in dump order.
func dump(tb *Table) string {
	var out []string
	for _, r := range tb.Rules(TableAll) {
		out = append(out, r.String())
	}
	return strings.Join(out, "\n")
}

func TestNewTableDefaultRule(t *testing.T) {
	tb := NewTableAt(0)
	got := tb.DumpFlows(nil, 5*sec+82e6)
	want := " cookie=0x0, duration=5.082s, table=0, n_packets=0, n_bytes=0, idle_age=5, priority=0 actions=NORMAL\n"
	if got != want {
		t.Errorf("default dump\n  %q, want\n  %q", got, want)
	}
	var k Key
	k.InPort = 9
	r, wc := tb.Lookup(&k)
	if r == nil || r.Priority != 0 || FormatActions(r.Actions()) != "NORMAL" {
		t.Fatalf("default lookup: %v", r)
	}
	if wc != (Key{}) {
		t.Errorf("catch-all rule should wildcard everything, got mask %+v", wc)
	}
	if NewEmptyTable().Len() != 0 || tb.Len() != 1 {
		t.Errorf("Len")
	}
}

func TestFormatFlowStats(t *testing.T) {
	tb := NewEmptyTable()
	r := mustAdd(t, tb, "cookie=0x1234,idle_timeout=10,hard_timeout=20,priority=200,tcp,nw_src=198.18.0.0/16,tp_dst=80,actions=mod_nw_src:1.2.3.4,mod_tp_dst:8080,output:p2,output:1", 100*sec)
	r.Credit(3, 180, 101*sec)
	got := FormatFlowStats(r, 103*sec+500e6)
	want := " cookie=0x1234, duration=3.500s, table=0, n_packets=3, n_bytes=180, idle_timeout=10, hard_timeout=20, idle_age=2, priority=200,tcp,nw_src=198.18.0.0/16,tp_dst=80 actions=mod_nw_src:1.2.3.4,mod_tp_dst:8080,output:2,output:1"
	if got != want {
		t.Errorf("got\n  %q, want\n  %q", got, want)
	}
	// A dump line parses back into the same rule.
	fm, err := ParseFlow(got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back := ruleOf(t, fm).String(); back != r.String() {
		t.Errorf("dump line parses back as %q, want %q", back, r.String())
	}
	// After a modification hard_age differs from the duration.
	tb.ModifyActions(mustMod(t, "tcp,actions=drop", ModeModify), false, 105*sec)
	got = FormatFlowStats(r, 107*sec)
	want = " cookie=0x1234, duration=7s, table=0, n_packets=3, n_bytes=180, idle_timeout=10, hard_timeout=20, idle_age=6, hard_age=2, priority=200,tcp,nw_src=198.18.0.0/16,tp_dst=80 actions=drop"
	if got != want {
		t.Errorf("after mod-flows\n  %q, want\n  %q", got, want)
	}
	if s := formatDuration(12*sec + 300e6 + 999); s != "12.300" {
		t.Errorf("formatDuration = %q", s)
	}
}

func TestAddReplace(t *testing.T) {
	tb := NewEmptyTable()
	g0 := tb.Generation()
	r := mustAdd(t, tb, "cookie=0x5,priority=10,in_port=1,actions=output:2", 1*sec)
	if tb.Generation() == g0 {
		t.Error("Add did not bump the generation")
	}
	r.Credit(2, 100, 2*sec)
	g1 := tb.Generation()
	// Identical match and priority: replaced in place like ovs-ofctl 3.1
	// add-flow does: counters restart, the cookie becomes the new one (0),
	// duration restarts.
	r2 := mustAdd(t, tb, "priority=10,in_port=1,idle_timeout=5,actions=output:3", 3*sec)
	if r2 != r || tb.Len() != 1 {
		t.Fatalf("identical add did not replace: %d rules", tb.Len())
	}
	if p, b := r.Stats(); p != 0 || b != 0 {
		t.Errorf("counters after replace: %d %d", p, b)
	}
	if r.Cookie != 0 || r.IdleTimeout != 5 || r.Created() != 3*sec || FormatActions(r.Actions()) != "output:3" {
		t.Errorf("replaced rule: %s created %d", r, r.Created())
	}
	if tb.Generation() == g1 {
		t.Error("replace did not bump the generation")
	}
	// OpenFlow 1.3 semantics on request: counters kept.
	r.Credit(4, 200, 4*sec)
	fm := mustFlow(t, "cookie=0x9,priority=10,in_port=1,actions=output:3")
	fm.KeepCounts = true
	tb.Add(fm, 4*sec)
	if p, _ := r.Stats(); p != 4 || r.Cookie != 9 || r.IdleTimeout != 0 {
		t.Errorf("KeepCounts replace: %d %#x %d", p, r.Cookie, r.IdleTimeout)
	}
	// A different priority or a different match adds a rule.
	mustAdd(t, tb, "priority=11,in_port=1,actions=output:3", 5*sec)
	mustAdd(t, tb, "priority=10,in_port=2,actions=output:3", 5*sec)
	// Same match in another table is another rule.
	mustAdd(t, tb, "table=1,priority=10,in_port=1,actions=output:3", 5*sec)
	want := "priority=11,in_port=1 actions=output:3\n" +
		"cookie=0x9, priority=10,in_port=1 actions=output:3\n" +
		"priority=10,in_port=2 actions=output:3\n" +
		"table=1, priority=10,in_port=1 actions=output:3"
	if got := dump(tb); got != want {
		t.Errorf("dump\n%s\nwant\n%s", got, want)
	}
	if _, err := tb.Add(&FlowMod{Actions: []Action{{Kind: ActResubmit, Table: 255, Port: 1}}, Table: 0}, 0); err != nil {
		t.Errorf("resubmit to the current table refused: %v", err)
	}
}

func TestDelete(t *testing.T) {
	setup := func() *Table {
		tb := NewTableAt(0)
		for _, s := range []string{
			"cookie=0x11,priority=10,in_port=1,actions=output:2",
			"cookie=0x12,priority=20,in_port=1,ip,actions=output:2",
			"cookie=0x21,priority=20,in_port=1,tcp,tp_dst=80,actions=output:3",
			"cookie=0x22,priority=10,in_port=2,actions=NORMAL",
			"table=1,cookie=0x31,priority=10,in_port=1,actions=output:2",
		} {
			mustAdd(t, tb, s, 0)
		}
		return tb
	}
	cases := []struct {
		filter string
		strict bool
		want   []string // cookies removed
	}{
		{"", false, []string{"0x0", "0x11", "0x12", "0x21", "0x22", "0x31"}},
		{"table=0", false, []string{"0x0", "0x11", "0x12", "0x21", "0x22"}},
		{"table=1", false, []string{"0x31"}},
		{"in_port=1", false, []string{"0x11", "0x12", "0x21", "0x31"}},
		{"in_port=1,ip", false, []string{"0x12", "0x21"}},
		{"ip", false, []string{"0x12", "0x21"}},
		{"tcp,tp_dst=80", false, []string{"0x21"}},
		{"tcp,tp_dst=81", false, nil},
		{"cookie=0x20/0xf0", false, []string{"0x21", "0x22"}},
		{"cookie=0x11/-1", false, []string{"0x11"}},
		{"out_port=2", false, []string{"0x11", "0x12", "0x31"}},
		{"out_port=NORMAL", false, []string{"0x0", "0x22"}},
		{"in_port=1,priority=20", true, nil}, // strict: in_port=1 alone has priority 10
		{"in_port=1,priority=10", true, []string{"0x11", "0x31"}},
		{"table=0,in_port=1,priority=10", true, []string{"0x11"}},
		{"in_port=1", true, nil}, // default priority 32768
		{"priority=0", true, []string{"0x0"}},
		{"in_port=1,ip,priority=20,cookie=0x1/0xf", true, nil},
		{"in_port=1,ip,priority=20,cookie=0x2/0xf", true, []string{"0x12"}},
	}
	for _, c := range cases {
		tb := setup()
		g := tb.Generation()
		fm := mustMod(t, c.filter, ModeDelete)
		var rs []*Rule
		if c.strict {
			rs = tb.DeleteStrict(fm)
		} else {
			rs = tb.Delete(fm)
		}
		var got []string
		slices.SortFunc(rs, func(a, b *Rule) int { return cmp.Compare(a.Cookie, b.Cookie) })
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%#x", r.Cookie))
			if !r.Removed() {
				t.Errorf("%q: rule %s not marked removed", c.filter, r)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("delete %q strict=%v removed %v, want %v", c.filter, c.strict, got, c.want)
		}
		if tb.Len() != 6-len(c.want) || len(tb.Rules(TableAll)) != tb.Len() {
			t.Errorf("delete %q: %d rules left", c.filter, tb.Len())
		}
		if (len(c.want) > 0) != (tb.Generation() != g) {
			t.Errorf("delete %q: generation bump wrong", c.filter)
		}
		// Lookups never return deleted rules.
		for port := uint32(1); port <= 2; port++ {
			var k Key
			k.InPort, k.DlType, k.NwProto, k.TpDst = port, EthTypeIPv4, IPProtoTCP, 80
			var wc Key
			for tid := uint8(0); tid < 2; tid++ {
				if r := tb.LookupTable(tid, &k, &wc); r != nil && r.Removed() {
					t.Errorf("lookup returned a deleted rule")
				}
			}
		}
	}
}

func TestModifyActions(t *testing.T) {
	tb := NewTableAt(0)
	a := mustAdd(t, tb, "cookie=0x1,priority=10,in_port=1,actions=output:2", 0)
	b := mustAdd(t, tb, "cookie=0x2,priority=20,in_port=1,ip,actions=output:2", 0)
	a.Credit(1, 60, sec)
	g := tb.Generation()
	n, err := tb.ModifyActions(mustMod(t, "in_port=1,actions=output:4", ModeModify), false, 2*sec)
	if err != nil || n != 2 {
		t.Fatalf("loose modify: %d %v", n, err)
	}
	if FormatActions(a.Actions()) != "output:4" || FormatActions(b.Actions()) != "output:4" || tb.Generation() == g {
		t.Errorf("loose modify: %s / %s", a, b)
	}
	if p, _ := a.Stats(); p != 1 || a.Cookie != 1 {
		t.Errorf("modify lost counters or cookie: %d %#x", p, a.Cookie)
	}
	n, _ = tb.ModifyActions(mustMod(t, "priority=20,in_port=1,ip,cookie=0x7,actions=NORMAL", ModeModify), true, 3*sec)
	if n != 1 || FormatActions(b.Actions()) != "NORMAL" || FormatActions(a.Actions()) != "output:4" || b.Cookie != 7 {
		t.Errorf("strict modify: %d %s %s", n, a, b)
	}
	// Cookie filter that selects nothing: no add.
	n, _ = tb.ModifyActions(mustMod(t, "cookie=0x99/-1,in_port=3,actions=drop", ModeModify), false, 3*sec)
	if n != 0 || tb.Len() != 3 {
		t.Errorf("cookie-filtered modify added a flow: %d %d", n, tb.Len())
	}
	// Nothing selected, no cookie filter: the flow is added.
	n, _ = tb.ModifyActions(mustMod(t, "in_port=3,actions=drop", ModeModify), false, 3*sec)
	if n != 1 || tb.Len() != 4 {
		t.Errorf("modify-as-add: %d %d", n, tb.Len())
	}
	var k Key
	k.InPort = 3
	if r, _ := tb.Lookup(&k); r == nil || len(r.Actions()) != 0 || r.Priority != DefaultPriority {
		t.Errorf("added rule not found: %v", r)
	}
	// reset_counts
	tb.ModifyActions(mustMod(t, "reset_counts,in_port=1,actions=output:5", ModeModify), false, 4*sec)
	if p, _ := a.Stats(); p != 0 {
		t.Errorf("reset_counts kept %d packets", p)
	}
	// Readers holding the old slice keep a consistent list.
	old := a.Actions()
	tb.ModifyActions(mustMod(t, "in_port=1,actions=output:6,output:7", ModeModify), false, 5*sec)
	if FormatActions(old) != "output:5" || FormatActions(a.Actions()) != "output:6,output:7" {
		t.Errorf("action publication: %s %s", FormatActions(old), FormatActions(a.Actions()))
	}
}

func TestExpire(t *testing.T) {
	tb := NewTableAt(0)
	idle := mustAdd(t, tb, "idle_timeout=10,in_port=1,actions=drop", 0)
	hard := mustAdd(t, tb, "hard_timeout=30,in_port=2,actions=drop", 0)
	both := mustAdd(t, tb, "idle_timeout=5,hard_timeout=8,in_port=3,actions=drop", 0)
	if rs := tb.Expire(4 * sec); rs != nil {
		t.Fatalf("early expiry: %v", rs)
	}
	idle.Credit(1, 64, 6*sec) // idle counts from the last hit
	both.Touch(4 * sec)
	g := tb.Generation()
	rs := tb.Expire(9 * sec) // both: hard 8 s passed although used at 4 s
	if len(rs) != 1 || rs[0] != both || tb.Generation() == g {
		t.Fatalf("expire at 9s: %v", rs)
	}
	if rs := tb.Expire(15 * sec); len(rs) != 0 {
		t.Fatalf("idle rule expired 9 s after its last hit: %v", rs)
	}
	idle.Touch(3 * sec) // an older timestamp does not move Used back
	if idle.Used() != 6*sec {
		t.Errorf("Used went back to %d", idle.Used())
	}
	rs = tb.Expire(16 * sec)
	if len(rs) != 1 || rs[0] != idle {
		t.Fatalf("expire at 16s: %v", rs)
	}
	hard.Credit(5, 5, 29*sec) // hits do not defer the hard timeout
	rs = tb.Expire(30 * sec)
	if len(rs) != 1 || rs[0] != hard || tb.Len() != 1 {
		t.Fatalf("expire at 30s: %v, %d left", rs, tb.Len())
	}
	// Modifying restarts the hard timeout.
	h2 := mustAdd(t, tb, "hard_timeout=10,in_port=4,actions=drop", 100*sec)
	tb.ModifyActions(mustMod(t, "in_port=4,actions=output:1", ModeModify), false, 105*sec)
	if rs := tb.Expire(112 * sec); len(rs) != 0 {
		t.Errorf("hard timeout not restarted by modify")
	}
	if rs := tb.Expire(115 * sec); len(rs) != 1 || rs[0] != h2 {
		t.Errorf("hard timeout after modify: %v", rs)
	}
	// Replacing an identical rule without timeouts stops tracking it.
	mustAdd(t, tb, "idle_timeout=1,in_port=5,actions=drop", 200*sec)
	mustAdd(t, tb, "in_port=5,actions=drop", 200*sec)
	if rs := tb.Expire(300 * sec); len(rs) != 0 {
		t.Errorf("permanent replacement expired: %v", rs)
	}
}

// refLookup is the brute-force reference: highest priority, then oldest.
func refLookup(rules []*Rule, tid uint8, k *Key) *Rule {
	var best *Rule
	for _, r := range rules {
		if r.Removed() || r.Table != tid || !r.Match.Matches(k) {
			continue
		}
		if best == nil || r.better(best) {
			best = r
		}
	}
	return best
}

// randomRule draws a rule from a small universe of values so that rules
// overlap a lot and priorities tie.
func randomRule(rng *rand.Rand, tid uint8) *FlowMod {
	var parts []string
	pick := func(p float64) bool { return rng.Float64() < p }
	if pick(0.5) {
		parts = append(parts, fmt.Sprintf("in_port=%d", 1+rng.IntN(3)))
	}
	if pick(0.3) {
		if pick(0.2) {
			parts = append(parts, "dl_vlan=0xffff")
		} else {
			parts = append(parts, fmt.Sprintf("dl_vlan=%d", rng.IntN(3)))
		}
	}
	if pick(0.2) {
		parts = append(parts, fmt.Sprintf("dl_dst=00:00:00:00:00:%02x/ff:ff:ff:ff:ff:%s", rng.IntN(4), []string{"ff", "fe"}[rng.IntN(2)]))
	}
	switch rng.IntN(5) {
	case 0:
	case 1:
		parts = append(parts, "arp")
		if pick(0.5) {
			parts = append(parts, fmt.Sprintf("arp_op=%d", 1+rng.IntN(2)))
		}
	default:
		proto := []string{"ip", "tcp", "udp"}[rng.IntN(3)]
		parts = append(parts, proto)
		if pick(0.6) {
			plen := []int{8, 16, 24, 32}[rng.IntN(4)]
			parts = append(parts, fmt.Sprintf("nw_src=10.%d.%d.%d/%d", rng.IntN(2), rng.IntN(2), rng.IntN(2), plen))
		}
		if proto != "ip" && pick(0.5) {
			if pick(0.3) {
				parts = append(parts, fmt.Sprintf("tp_dst=0x%x/0xfff0", 16*rng.IntN(3)))
			} else {
				parts = append(parts, fmt.Sprintf("tp_dst=%d", rng.IntN(3)))
			}
		}
	}
	parts = append(parts, fmt.Sprintf("table=%d,priority=%d,actions=output:%d", tid, rng.IntN(6)*10, 1+rng.IntN(100)))
	fm, err := ParseFlow(strings.Join(parts, ","), nil)
	if err != nil {
		panic(err)
	}
	return fm
}

func randomKey(rng *rand.Rand) Key {
	var k Key
	k.InPort = uint32(1 + rng.IntN(3))
	switch rng.IntN(3) {
	case 0:
	case 1:
		k.VLAN[0] = VLANHdr{TPID: EthTypeVLAN, TCI: VLANCFI | uint16(rng.IntN(3)) | uint16(rng.IntN(8))<<13}
	default:
		k.VLAN[0] = VLANHdr{TPID: EthTypeVLAN, TCI: VLANCFI}
	}
	k.DlDst = [6]byte{0, 0, 0, 0, 0, byte(rng.IntN(4))}
	k.DlSrc = [6]byte{2, 0, 0, 0, 0, byte(rng.IntN(256))}
	switch rng.IntN(4) {
	case 0:
		k.DlType = EthTypeARP
		k.NwProto = uint8(1 + rng.IntN(2))
		k.NwSrc[0] = 10
	case 1:
		k.DlType = EthTypeIPv6
		k.NwProto = IPProtoTCP
	default:
		k.DlType = EthTypeIPv4
		k.NwProto = []uint8{IPProtoTCP, IPProtoUDP, IPProtoICMP}[rng.IntN(3)]
		k.NwSrc[0], k.NwSrc[1], k.NwSrc[2], k.NwSrc[3] = 10, byte(rng.IntN(2)), byte(rng.IntN(2)), byte(rng.IntN(2))
		k.NwTTL = 64
		if k.NwProto != IPProtoICMP {
			k.TpSrc = uint16(rng.IntN(65536))
			k.TpDst = uint16(rng.IntN(3)) + 16*uint16(rng.IntN(3))
		}
	}
	return k
}

// TestLookupReference compares Lookup with a linear scan on random tables,
// before and after random deletions, and checks the megaflow mask
// property: any key agreeing with k on the returned mask gets the same
// rule.
func TestLookupReference(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		tb := NewEmptyTable()
		var rules []*Rule
		n := 5 + rng.IntN(150)
		for i := 0; i < n; i++ {
			tid := uint8(rng.IntN(2))
			r, err := tb.Add(randomRule(rng, tid), int64(i))
			if err != nil {
				t.Fatal(err)
			}
			rules = append(rules, r)
		}
		check := func(phase string) {
			for i := 0; i < 400; i++ {
				k := randomKey(rng)
				tid := uint8(rng.IntN(2))
				var wc Key
				got := tb.LookupTable(tid, &k, &wc)
				want := refLookup(rules, tid, &k)
				if got != want {
					t.Fatalf("seed %d %s: lookup %+v in table %d = %v, want %v", seed, phase, k, tid, got, want)
				}
				if got != nil && !got.Match.Matches(&k) {
					t.Fatalf("returned rule does not match")
				}
				if got != nil {
					// The rule's own mask is always part of the decision.
					m := andKey(&got.Match.Mask, &wc)
					if m != got.Match.Mask {
						t.Fatalf("seed %d: mask %+v does not include the rule's mask", seed, wc)
					}
				}
				for j := 0; j < 10; j++ {
					// Agree on wc, anything elsewhere.
					o := randomKey(rng)
					k2w, kw, ow, mw := new(Key), k.Words(), o.Words(), wc.Words()
					w2 := k2w.Words()
					for x := range w2 {
						w2[x] = kw[x]&mw[x] | ow[x]&^mw[x]
					}
					w2[KeyWords-1] &= 0x0000ffff_ffffffff // keep padding zero
					if r2 := refLookup(rules, tid, k2w); r2 != got {
						t.Fatalf("seed %d %s: mask property broken: key %+v and %+v agree on mask %+v but get %v and %v",
							seed, phase, k, *k2w, wc, got, r2)
					}
				}
			}
		}
		check("full")
		for i := 0; i < len(rules)/2; i++ {
			r := rules[rng.IntN(len(rules))]
			if r.Removed() {
				continue
			}
			fm := &FlowMod{Match: r.Match, Priority: r.Priority, Table: r.Table, OutPort: PortNone}
			if rs := tb.DeleteStrict(fm); len(rs) != 1 || rs[0] != r {
				t.Fatalf("DeleteStrict removed %v, want %v", rs, r)
			}
		}
		check("after deletes")
		// A loose bulk delete (many rules of many subtables at once).
		tb.Delete(mustMod(t, fmt.Sprintf("in_port=%d", 1+rng.IntN(3)), ModeDelete))
		check("after bulk delete")
	}
}

// TestBulkDeleteDistinctPriorities: deleting many rules that share a mask
// but have distinct priorities must not be quadratic.
func TestBulkDeleteDistinctPriorities(t *testing.T) {
	tb := NewEmptyTable()
	for i := 0; i < 60000; i++ {
		var fm FlowMod
		fm.Match.Key.InPort, fm.Match.Mask.InPort = uint32(i), 0xffffffff
		fm.Priority = uint16(i)
		tb.Add(&fm, 0)
	}
	half := mustMod(t, "", ModeDelete)
	half.CookieMask = 0 // everything
	rs := tb.Delete(half)
	if len(rs) != 60000 || tb.Len() != 0 {
		t.Fatalf("deleted %d, %d left", len(rs), tb.Len())
	}
	var k Key
	if r, _ := tb.Lookup(&k); r != nil {
		t.Errorf("lookup in an empty table found %v", r)
	}
	// The table is usable afterwards.
	mustAdd(t, tb, "priority=5,in_port=3,actions=drop", 0)
	k.InPort = 3
	if r, wc := tb.Lookup(&k); r == nil || wc.InPort != 0xffffffff {
		t.Errorf("lookup after re-add: %v", r)
	}
}

func TestLookupAllocs(t *testing.T) {
	tb := NewTableAt(0)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 200; i++ {
		tb.Add(randomRule(rng, 0), 0)
	}
	keys := make([]Key, 64)
	for i := range keys {
		keys[i] = randomKey(rng)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		var wc Key
		tb.LookupTable(0, &keys[i%len(keys)], &wc)
		i++
	})
	if allocs != 0 {
		t.Errorf("LookupTable allocates %.1f times per call", allocs)
	}
	r, _ := tb.Lookup(&keys[0])
	allocs = testing.AllocsPerRun(1000, func() { r.Credit(1, 64, int64(i)); i++ })
	if allocs != 0 {
		t.Errorf("Credit allocates %.1f times per call", allocs)
	}
}

// build100k installs 100k rules in a few subtables: exact in_port+nw_dst
// host routes, /24 routes, and per-port MAC rules.
func build100k(tb testing.TB) *Table {
	t := NewTableAt(0)
	for i := 0; i < 100000; i++ {
		var fm FlowMod
		fm.Table, fm.OutPort = 0, PortNone
		m := &fm.Match
		switch i % 3 {
		case 0:
			m.Key.InPort, m.Mask.InPort = uint32(1+i%16), 0xffffffff
			m.Key.DlType, m.Mask.DlType = EthTypeIPv4, 0xffff
			m.Key.NwDst = [16]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
			m.Mask.NwDst = [16]byte{255, 255, 255, 255}
			fm.Priority = 300
		case 1:
			m.Key.DlType, m.Mask.DlType = EthTypeIPv4, 0xffff
			j := i / 3
			m.Key.NwDst = [16]byte{11, byte(j >> 8), byte(j)}
			m.Mask.NwDst = [16]byte{255, 255, 255}
			fm.Priority = 200
		default:
			m.Key.InPort, m.Mask.InPort = uint32(1+i%16), 0xffffffff
			m.Key.DlDst = [6]byte{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
			m.Mask.DlDst = [6]byte{255, 255, 255, 255, 255, 255}
			fm.Priority = 100
		}
		fm.Actions = []Action{{Kind: ActOutput, Port: uint32(i%16 + 1)}}
		if _, err := t.Add(&fm, 0); err != nil {
			tb.Fatal(err)
		}
	}
	return t
}

func TestLookup100k(t *testing.T) {
	tb := build100k(t)
	if tb.Len() != 100001 {
		t.Fatalf("Len = %d", tb.Len())
	}
	var k Key
	k.InPort = 1 + 3%16
	k.DlType = EthTypeIPv4
	k.NwDst = [16]byte{10, 0, 0, 3}
	r, wc := tb.Lookup(&k)
	if r == nil || r.Priority != 300 {
		t.Fatalf("host route not found: %v", r)
	}
	// Only the first subtable was needed: its mask is the whole answer.
	if wc != r.Match.Mask {
		t.Errorf("mask %+v, want the host-route mask", wc)
	}
	k.NwDst = [16]byte{11, 0, 4, 9} // j=4: i=13
	if r, _ = tb.Lookup(&k); r == nil || r.Priority != 200 {
		t.Fatalf("/24 route not found: %v", r)
	}
	k.NwDst = [16]byte{12, 0, 0, 1}
	if r, wc = tb.Lookup(&k); r == nil || r.Priority != 0 {
		t.Fatalf("miss should hit the default rule: %v", r)
	}
	// Deleting by in_port removes a third of two subtables.
	// Deleting by in_port removes every 16th rule of two subtables.
	want := 0
	for i := 0; i < 100000; i++ {
		if i%3 != 1 && i%16 == 0 {
			want++
		}
	}
	if n := len(tb.Delete(mustMod(t, "in_port=1", ModeDelete))); n != want {
		t.Errorf("deleted %d, want %d", n, want)
	}
}

func BenchmarkLookup100k(b *testing.B) {
	tb := build100k(b)
	keys := make([]Key, 1024)
	for i := range keys {
		k := &keys[i]
		k.InPort = uint32(1 + i%16)
		k.DlType = EthTypeIPv4
		switch i % 3 {
		case 0:
			k.NwDst = [16]byte{10, 0, byte(i >> 8), byte(i)}
		case 1:
			k.NwDst = [16]byte{11, 0, byte(i >> 8), 7}
		default:
			k.DlType = EthTypeARP
			k.DlDst = [6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var wc Key
		tb.LookupTable(0, &keys[i%len(keys)], &wc)
	}
}

func BenchmarkAdd(b *testing.B) {
	b.ReportAllocs()
	tb := NewTableAt(0)
	var fm FlowMod
	fm.Match.Mask.InPort = 0xffffffff
	fm.Match.Mask.DlType = 0xffff
	fm.Match.Mask.NwDst = [16]byte{255, 255, 255, 255}
	fm.Match.Key.DlType = EthTypeIPv4
	fm.Actions = []Action{{Kind: ActNormal}}
	for i := 0; b.Loop(); i++ {
		fm.Match.Key.NwDst = [16]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		fm.Match.Key.InPort = uint32(i >> 24)
		tb.Add(&fm, 0)
	}
}

// TestConcurrentFastPath exercises what the fast path may do without the
// slow-path lock (counters, actions, Removed, Generation) while the slow
// path changes the table; run with -race.
func TestConcurrentFastPath(t *testing.T) {
	tb := NewTableAt(0)
	r := mustAdd(t, tb, "priority=10,in_port=1,actions=output:2", 0)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				r.Credit(1, 60, i)
				_ = len(r.Actions())
				_ = r.Removed()
				_ = tb.Generation()
				r.Stats()
			}
		}()
	}
	for i := 0; i < 300; i++ {
		tb.ModifyActions(mustMod(t, fmt.Sprintf("in_port=1,actions=output:%d", 2+i%5), ModeModify), false, int64(i))
		mustAdd(t, tb, fmt.Sprintf("priority=5,in_port=%d,actions=drop", i), 0)
		tb.Expire(int64(i))
	}
	// On a busy machine the readers may not have run yet: give them time
	// to record something before stopping them.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if p, _ := r.Stats(); p > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(done)
	wg.Wait()
	if p, _ := r.Stats(); p == 0 {
		t.Error("no credits recorded")
	}
}

func TestAddRejectsBadActions(t *testing.T) {
	tb := NewEmptyTable()
	for _, a := range []Action{
		{},
		{Kind: 200},
		{Kind: ActOutput, Port: PortNormal},
		{Kind: ActModVLANVID, Value: 4096},
		{Kind: ActSetVLANPCP, Value: 8},
		{Kind: ActPushVLAN, Value: 0x0800},
		{Kind: ActSetNwTOS, Value: 5},
		{Kind: ActSetNwSrc},
		{Kind: ActSetIPv6Dst, Addr: netip.MustParseAddr("1.2.3.4")},
		{Kind: ActResubmit, Port: PortFlood, Table: TableAll},
		{Kind: ActGotoTable, Table: 0},
	} {
		_, err := tb.Add(&FlowMod{Actions: []Action{{Kind: ActNormal}, a}}, 0)
		if !errors.Is(err, ErrBadAction) {
			t.Errorf("Add with %+v: %v, want ErrBadAction", a, err)
		}
		if _, err := tb.ModifyActions(&FlowMod{Table: TableAll, OutPort: PortNone, Actions: []Action{a}}, false, 0); !errors.Is(err, ErrBadAction) {
			t.Errorf("ModifyActions with %+v: %v", a, err)
		}
	}
	if tb.Len() != 0 {
		t.Errorf("bad adds left %d rules", tb.Len())
	}
	// goto_table must go forward, also when modifying rules of later tables.
	mustAdd(t, tb, "table=4,in_port=9,actions=drop", 0)
	if _, err := tb.ModifyActions(mustMod(t, "in_port=9,actions=goto_table:2", ModeModify), false, 0); !errors.Is(err, ErrBadAction) {
		t.Errorf("backward goto_table via modify: %v", err)
	}
	if _, err := tb.Add(&FlowMod{Table: 4, Actions: []Action{{Kind: ActGotoTable, Table: 4}}}, 0); !errors.Is(err, ErrBadAction) {
		t.Errorf("goto_table to the same table: %v", err)
	}
	tb.Delete(mustMod(t, "table=4", ModeDelete))
	_, err := tb.Add(&FlowMod{Actions: []Action{{Kind: ActOutput, Port: 3}, {Kind: ActResubmit, Port: PortInPort, Table: 4}}}, 0)
	if err != nil {
		t.Errorf("valid hand-built actions refused: %v", err)
	}
}

func TestCheckOverlap(t *testing.T) {
	tb := NewTableAt(0)
	mustAdd(t, tb, "priority=10,in_port=1,ip,actions=drop", 0)
	for _, c := range []struct {
		flow string
		ok   bool
	}{
		{"check_overlap,priority=10,tcp,actions=drop", false},             // in_port=1,tcp matches both
		{"check_overlap,priority=10,in_port=2,ip,actions=drop", true},     // disjoint in_port
		{"check_overlap,priority=10,in_port=1,arp,actions=drop", true},    // disjoint dl_type
		{"check_overlap,priority=11,in_port=1,actions=drop", true},        // other priority
		{"check_overlap,priority=10,in_port=1,ip,actions=output:3", true}, // identical: replaces
		{"check_overlap,table=1,priority=10,ip,actions=drop", true},       // other table
	} {
		_, err := tb.Add(mustFlow(t, c.flow), 0)
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrOverlap) {
			t.Errorf("%s: %v", c.flow, err)
		}
	}
	if _, err := ParseFlowMod("check_overlap,ip", ModeDelete, nil); err == nil {
		t.Error("check_overlap accepted in del-flows")
	}
}

func TestAggregate(t *testing.T) {
	tb := NewTableAt(0)
	a := mustAdd(t, tb, "in_port=1,actions=output:2", 0)
	b := mustAdd(t, tb, "table=2,in_port=2,actions=output:1", 0)
	a.Credit(2, 212, 1)
	b.Credit(1, 60, 1)
	if got := FormatAggregate(tb.Aggregate(nil)); got != "packet_count=3 byte_count=272 flow_count=3" {
		t.Errorf("all: %s", got)
	}
	if got := FormatAggregate(tb.Aggregate(mustMod(t, "table=2", ModeDelete))); got != "packet_count=1 byte_count=60 flow_count=1" {
		t.Errorf("table=2: %s", got)
	}
}
