package test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// hasXDP reports whether a link in the node namespace has an XDP program
// attached (ip link shows "prog/xdp" / "xdpgeneric" / "xdp").
func (n *node) hasXDP(name string) bool {
	n.t.Helper()
	l, err := n.ns.Link(name)
	if err != nil {
		n.t.Fatal(err)
	}
	x := l.Attrs().Xdp
	return x != nil && (x.Attached || x.ProgId != 0)
}

// Many ports in one transaction get distinct ofports; removing ports and
// stopping xvsd leaves no XDP program on the devices and no TAP device
// behind, so the kernel stack works on them again.
func TestManyPortsAndCleanup(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	const count = 16
	args := []string{}
	for i := 0; i < count; i++ {
		a, b := fmt.Sprintf("m%d", i), fmt.Sprintf("m%dp", i)
		if err := n.ns.Veth(a, n.ns, b); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{a, b} {
			if err := n.ns.SetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, "--", "add-port", "br0", a, fmt.Sprintf("tag=%d", 100+i))
	}
	n.vsctl(args[1:]...)
	seen := map[string]string{}
	of := n.ofports()
	for i := 0; i < count; i++ {
		name := fmt.Sprintf("m%d", i)
		o := of[name]
		if o == "" || o == "-1" {
			t.Errorf("%s ofport %q (error %s)", name, o, n.get("Interface", name, "error"))
			continue
		}
		if prev, dup := seen[o]; dup {
			t.Errorf("%s and %s share ofport %s", prev, name, o)
		}
		seen[o] = name
		if !n.hasXDP(name) && n.get("Interface", name, "status:driver_name") == "afxdp" {
			t.Errorf("%s is an AF_XDP port without an XDP program", name)
		}
	}
	show := n.appctl("dpif/show")
	if c := strings.Count(show, "(afxdp") + strings.Count(show, "(afpacket"); c != count {
		t.Errorf("dpif/show lists %d ports, want %d:\n%s", c, count, show)
	}

	// Half are removed: their XDP programs go.
	args = args[:0]
	for i := 0; i < count/2; i++ {
		args = append(args, "--", "del-port", "br0", fmt.Sprintf("m%d", i))
	}
	n.vsctl(args[1:]...)
	for i := 0; i < count/2; i++ {
		name := fmt.Sprintf("m%d", i)
		if !waitFor(time.Second, func() bool { return !n.hasXDP(name) }) {
			t.Errorf("%s still has an XDP program after del-port", name)
		}
	}
	// del-br removes the rest and the internal port.
	n.vsctl("del-br", "br0")
	for i := count / 2; i < count; i++ {
		name := fmt.Sprintf("m%d", i)
		if !waitFor(time.Second, func() bool { return !n.hasXDP(name) }) {
			t.Errorf("%s still has an XDP program after del-br", name)
		}
	}
	if !waitFor(time.Second, func() bool { _, err := n.ns.Link("br0"); return err != nil }) {
		t.Errorf("internal port br0 still exists after del-br")
	}

	// A clean stop detaches everything too.
	n.addBridge("br1")
	n.vsctl("add-port", "br1", "m0")
	if !n.hasXDP("m0") && n.get("Interface", "m0", "status:driver_name") == "afxdp" {
		t.Errorf("m0 re-added without XDP program")
	}
	if err := n.x.Stop(); err != nil {
		t.Fatal(err)
	}
	if n.hasXDP("m0") {
		t.Errorf("m0 keeps an XDP program after xvsd stopped (SIGTERM)")
	}
	if _, err := n.ns.Link("br1"); err == nil {
		t.Errorf("internal port br1 still exists after xvsd stopped")
	}
	if err := n.x.Start(); err != nil {
		t.Fatal(err)
	}
}
