package xdptier

import (
	"context"
	"strings"
	"testing"

	"github.com/vishvananda/netlink/nl"

	"xvs/lab"
	"xvs/xdp"
)

// TestOffloadProgramNativeVeth loads the offload program through xdp.Open
// on a real veth in native (driver) mode — the kernel verifier checks it
// against the driver's context — and detaches it: nothing may stay
// attached to the interface.
func TestOffloadProgramNativeVeth(t *testing.T) {
	l := lab.New(t)
	ns, err := l.NS("veri")
	if err != nil {
		lab.Unavailable(t, err.Error())
	}
	if err := l.Wire(ns, "a", ns, "b"); err != nil {
		t.Fatal(err)
	}
	show := func() string {
		t.Helper()
		out, err := ns.Exec(context.Background(), "ip", "-d", "link", "show", "dev", "a")
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if s := show(); strings.Contains(s, "xdp") {
		t.Fatalf("a fresh veth already has XDP:\n%s", s)
	}

	off, err := xdp.NewOffload(1024)
	if err != nil {
		lab.Unavailable(t, "BPF maps: "+err.Error())
	}
	defer off.Close()
	var p *xdp.Port
	err = ns.Do(func() error {
		var err error
		p, err = xdp.Open("a", xdp.Config{Mode: xdp.ModeNative, Offload: off})
		return err
	})
	if err != nil {
		t.Fatalf("native attach of the offload program refused: %v", err)
	}
	if p.Mode() != xdp.ModeNative || !p.Offloaded() {
		p.Close()
		t.Fatalf("port mode %s, offloaded %v; want native, true", p.Mode(), p.Offloaded())
	}
	// ip(8) prints the mode in the flags: "xdp" (driver), "xdpgeneric",
	// "xdpoffload"; netlink says the same in the attach mode.
	s := show()
	if !strings.Contains(s, " xdp ") || !strings.Contains(s, "prog/xdp") {
		p.Close()
		t.Fatalf("after Open, ip -d link show does not list a native XDP program:\n%s", s)
	}
	if !strings.Contains(s, "name xvs_offload") {
		t.Errorf("the attached program is not xvs_offload:\n%s", s)
	}
	if lk, err := ns.Link("a"); err != nil {
		t.Error(err)
	} else if x := lk.Attrs().Xdp; x == nil || !x.Attached || x.AttachMode != nl.XDP_ATTACHED_DRV {
		t.Errorf("netlink does not report a driver-mode program on a: %+v", x)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s := show(); strings.Contains(s, "xdp") {
		t.Fatalf("XDP still attached after Close:\n%s", s)
	}
	lk, err := ns.Link("a")
	if err != nil {
		t.Fatal(err)
	}
	if x := lk.Attrs().Xdp; x != nil && (x.Attached || x.ProgId != 0) {
		t.Fatalf("netlink still reports an XDP program on a: %+v", *x)
	}
}
