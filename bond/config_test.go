package bond

import (
	"strings"
	"testing"
	"time"
)

func TestParseOtherConfig(t *testing.T) {
	c := Config{Name: "bond0", Mode: ModeBalanceSLB, Members: members("a", "b")}
	if w := c.ParseOtherConfig(map[string]string{}); len(w) != 0 || c.RebalanceInterval != DefaultRebalanceInterval {
		t.Errorf("defaults: interval %d warnings %q", c.RebalanceInterval, w)
	}
	w := c.ParseOtherConfig(map[string]string{
		"bond-rebalance-interval": "0", "bond-hash-basis": "7", "bond-detect-mode": "miimon",
		"bond-miimon-interval": "-5", "all-members-active": "true", "bond-primary": "b",
	})
	if len(w) != 0 || c.RebalanceInterval != 0 || c.Basis != 7 || !c.AllMembersActive || c.Primary != "b" {
		t.Errorf("parsed %+v warnings %q", c, w)
	}
	if w := c.ParseOtherConfig(map[string]string{"bond-hash-basis": "x"}); len(w) != 1 {
		t.Errorf("bad basis not warned: %q", w)
	}
}

func TestNormalize(t *testing.T) {
	b := mustNew(t, Config{Name: "b", Mode: "weird", Members: members("a", "b"), DetectMode: DetectMiimon,
		MiimonInterval: -1, UpDelay: -3, DownDelay: -1, Primary: "b", AllMembersActive: true, RebalanceInterval: 1})
	if w := b.Warnings(); len(w) != 1 || !strings.Contains(w[0], "unknown bond_mode weird, defaulting to active-backup") {
		t.Errorf("warnings %q", w)
	}
	s := b.Show(t0)
	for _, want := range []string{"bond_mode: active-backup\n", "updelay: 0 ms\n", "downdelay: 0 ms\n", "active-backup primary: b\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("show lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "all members active") || strings.Contains(s, "next rebalance") {
		t.Errorf("SLB-only lines in an AB bond:\n%s", s)
	}
	if b.MiimonInterval() != 200*time.Millisecond {
		t.Errorf("miimon interval %v", b.MiimonInterval())
	}
	b.Run(t0)
	if next, ok := b.NextWake(t0); !ok || !next.Equal(at(200)) {
		t.Errorf("miimon NextWake = %v %v", next, ok)
	}
	slb := mustNew(t, Config{Name: "s", Mode: ModeBalanceSLB, Members: members("a", "b"), Primary: "b", DetectMode: "bfd"})
	if s := slb.Show(t0); !strings.Contains(s, "active-backup primary: <none>\n") {
		t.Errorf("SLB honours bond-primary:\n%s", s)
	}
	if w := slb.Warnings(); len(w) != 1 || !strings.Contains(w[0], "unsupported bond-detect-mode bfd") {
		t.Errorf("warnings %q", w)
	}
	if slb.SetCarrier(99, false, t0) {
		t.Error("SetCarrier accepted a foreign ofport")
	}
}

func TestModeChange(t *testing.T) {
	cfg := slbConfig("a", "b")
	b := mustNew(t, cfg)
	b.SetActiveMember("b")
	b.Run(t0)
	cfg.Mode = ModeActiveBackup
	if err := b.Reconfigure(cfg, at(1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if m, bucket, ok := b.Select(macN(i), 0); !ok || m != 2 || bucket != 0 {
			t.Fatalf("AB after mode change: %d %d %v", m, bucket, ok)
		}
	}
	cfg.Mode = ModeBalanceSLB
	cfg.Basis = 7
	b.Reconfigure(cfg, at(2))
	if ev := b.Run(at(2)); !ev.Reset {
		t.Error("SLB table not reset")
	}
	seen := map[uint32]bool{}
	for i := 0; i < 64; i++ {
		m, bucket, _ := b.Select(macN(i), 0)
		seen[m] = true
		if bucket != Bucket(macN(i), 0, 7) {
			t.Fatal("basis not used")
		}
	}
	if len(seen) != 2 {
		t.Errorf("members used: %v", seen)
	}
}
