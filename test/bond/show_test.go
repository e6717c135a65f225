package bondtest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestAppctlMatchesOVS drives xvsd and Open vSwitch 3.1 through the same
// ovs-vsctl commands and link events and compares what ovs-appctl bond/*
// prints, step by step. Only what legitimately differs is masked: the
// active member's MAC (veth MACs are random) and which member is active
// when the choice is free (OVS takes the first in hash-map order), and the
// millisecond counts of timers.
func TestAppctlMatchesOVS(t *testing.T) {
	got := map[string][]step{}
	forEachImpl(t, func(t *testing.T, impl string) {
		got[impl] = appctlScript(t, impl)
	})
	x, o := got[implXVS], got[implOVS]
	if len(x) == 0 || len(o) == 0 {
		t.Skip("need both runs to compare")
	}
	for i := range o {
		if i >= len(x) {
			t.Errorf("xvs run stopped before step %q", o[i].what)
			break
		}
		if x[i].out != o[i].out {
			t.Errorf("step %q differs:\n--- ovs\n%s\n--- xvs\n%s", o[i].what, o[i].out, x[i].out)
		}
	}
}

type step struct{ what, out string }

var (
	activeMACLine = regexp.MustCompile(`(?m)^active member mac: .*\n`)
	activeLine    = regexp.MustCompile(`(?m)^  active member\n`)
	timerLine     = regexp.MustCompile(`(expires in|next rebalance:) -?\d+ ms`)
)

func normalizeShow(s string, maskActive bool) string {
	s = activeMACLine.ReplaceAllString(s, "")
	if maskActive {
		s = activeLine.ReplaceAllString(s, "")
	}
	return timerLine.ReplaceAllString(s, "$1 N ms")
}

func appctlScript(t *testing.T, impl string) []step {
	b := newBondLab(t, impl, slbArgs...)
	var steps []step
	rec := func(what, out string) { steps = append(steps, step{what, out}) }
	show := func(what string, maskActive bool) {
		st := b.show()
		if st.nActive != 1 {
			t.Errorf("%s: %d members marked active:\n%s", what, st.nActive, st.text)
		}
		rec(what, normalizeShow(st.text, maskActive))
	}
	appErr := func(args ...string) {
		out, err := b.d.Appctl(args...)
		first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		rec(strings.Join(args, " "), fmt.Sprintf("%s (error: %t)", first, err != nil))
	}

	show("balance-slb, rebalancing off", true)
	list := b.appctl("bond/list")
	rec("bond/list", normalizeList(list))
	for _, args := range [][]string{
		{"bond/hash", "50:54:00:00:00:01"}, {"bond/hash", "50:54:00:00:00:01", "10"},
		{"bond/hash", "50:54:00:00:00:01", "0", "7"},
	} {
		rec(strings.Join(args, " "), b.appctl(args...))
	}
	appErr("bond/show", "nope")
	appErr("bond/migrate", "bond0", "300", "m1")
	appErr("bond/migrate", "bond0", "1", "m3")
	appErr("bond/hash", "zz")
	appErr("bond/set-active-member", "bond0", "m9")

	b.vsctl("set", "Port", "bond0", "bond_downdelay=2000", "bond_updelay=1000", "other_config:bond-hash-basis=7")
	show("delays and basis set", true)
	// m1 loses carrier: it stays enabled while the downdelay runs.
	setLink(t, b.sw, "sm1", false)
	b.waitShow("downdelay expires in", true, 2*time.Second)
	show("m1 down, downdelay running", true)
	setLink(t, b.sw, "sm1", true)
	b.waitShow("downdelay expires in", false, 2*time.Second)
	show("m1 back within the downdelay", true)

	b.vsctl("set", "Port", "bond0", "other_config:bond-rebalance-interval=10000")
	show("rebalancing every 10 s", true)

	b.vsctl("set", "Port", "bond0", "bond_mode=active-backup", "other_config:bond-primary=m2")
	time.Sleep(200 * time.Millisecond)
	show("active-backup, primary m2", false)
	appErr("bond/migrate", "bond0", "1", "m1")
	b.vsctl("set", "Port", "bond0", "other_config:bond-primary=m7")
	show("active-backup, primary m7 (missing)", false)
	return steps
}

// normalizeList sorts the member list of each bond/list row (its order is
// OVS's hash-map order) and masks the recirculation id (OVS allocates one
// even for balance-slb; xvs never recirculates and prints 0).
func normalizeList(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if i == 0 || len(f) != 4 {
			continue
		}
		ms := strings.Split(f[3], ", ")
		sort.Strings(ms)
		f[2], f[3] = "ID", strings.Join(ms, ", ")
		lines[i] = strings.Join(f, "\t")
	}
	return strings.Join(lines, "\n")
}

// waitShow waits until bond/show contains (or no longer contains) s.
func (b *bondLab) waitShow(s string, present bool, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := b.appctl("bond/show", "bond0")
		if strings.Contains(out, s) == present {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("bond/show still %s %q after %v:\n%s", map[bool]string{true: "lacks", false: "has"}[present], s, timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
