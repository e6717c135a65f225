package bond

import (
	"os"
	"strings"
	"testing"
)

func readGolden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The golden files are bond/show replies of the real OVS 3.1.0 with dummy
// ports (member MACs as OVS assigned them).
func TestShowMatchesOVS31(t *testing.T) {
	p1 := Member{OfPort: 1, Name: "p1", MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, 0x0f}, Up: true}
	p2 := Member{OfPort: 2, Name: "p2", MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, 0x0e}, Up: true}
	// OVS picked p2 as the active member (hash-map order); we get there
	// through the stored active MAC, as after a restart.
	b := mustNew(t, Config{Name: "bond0", Mode: ModeBalanceSLB, Members: []Member{p1, p2},
		RebalanceInterval: DefaultRebalanceInterval, ActiveMAC: p2.MAC})
	want := readGolden(t, "ovs31-show-slb.txt")
	if got := b.Show(at(10000 - 8976)); got != want {
		t.Errorf("SLB show differs from OVS 3.1:\n got:\n%s\nwant:\n%s", got, want)
	}

	q := []Member{
		{OfPort: 1, Name: "q1", MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, 0x13}, Up: true},
		{OfPort: 2, Name: "q2", MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, 0x12}, Up: true},
		{OfPort: 3, Name: "q3", MAC: [6]byte{0xaa, 0x55, 0xaa, 0x55, 0, 0x11}, Up: true},
	}
	// Port order differs from the name order on purpose: Show sorts.
	ab := mustNew(t, Config{Name: "ab0", Members: []Member{q[2], q[0], q[1]}, Primary: "q2", UpDelay: 5000, DownDelay: 2000})
	ab.SetCarrier(2, false, at(0))
	if got, want := ab.Show(at(513)), readGolden(t, "ovs31-show-ab-downdelay.txt"); got != want {
		t.Errorf("AB show differs from OVS 3.1:\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestShowLoads(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2"))
	b.Account(4, 2048) // bucket 4 is dealt to p1
	b.Account(5, 1023) // below 1 kB: not shown
	s := b.Show(t0)
	if !strings.Contains(s, "member p1: enabled\n  active member\n  may_enable: true\n  hash 4: 2 kB load\n\nmember p2") {
		t.Errorf("show:\n%s", s)
	}
	if strings.Contains(s, "hash 5:") {
		t.Errorf("bucket under 1 kB shown:\n%s", s)
	}
}
