package test

import (
	"fmt"
	"testing"
	"time"
)

// addNeighs gives every host a permanent neighbour entry for every other,
// so timing measurements see the switch, not ARP.
func addNeighs(t *testing.T, hosts ...*host) {
	t.Helper()
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				if err := a.ns.AddNeigh("eth0", b.ip, b.mac); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// Ports are added, retagged and removed while two streams run between two
// other hosts: the change takes effect within 1 s and the streams lose
// nothing.
func TestReconfigUnderTraffic(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h1 := n.newHost("h1", "p1", "198.18.2.1/24")
	h2 := n.newHost("h2", "p2", "198.18.2.2/24")
	h3 := n.newHost("h3", "p3", "198.18.2.3/24")
	h4 := n.newHost("h4", "p4", "198.18.2.4/24")
	addNeighs(t, h1, h2, h3, h4)
	n.vsctl("add-port", "br0", "p1", "tag=10")
	n.vsctl("add-port", "br0", "p2", "tag=10")
	h1.mustPing(t, h2.ip)
	h2.mustPing(t, h1.ip)

	const every = time.Millisecond
	a := startStream(t, h1, h2, 0, every)
	b := startStream(t, h2, h1, 1, every)
	if !waitFor(2*time.Second, func() bool { return a.received() > 100 && b.received() > 100 }) {
		t.Fatalf("streams do not flow: %d, %d received", a.received(), b.received())
	}
	startA, startB := a.mark(), b.mark()

	// h3 probes h1 every 10 ms on its own port.
	probe := startStream(t, h3, h1, 2, 10*time.Millisecond)

	// applied measures how long after the command the probe's arrival
	// state becomes want, and fails beyond 1 s.
	applied := func(what string, want bool, cmd ...string) {
		t.Helper()
		t0 := time.Now()
		n.vsctl(cmd...)
		mark := probe.mark()
		ok := waitFor(time.Second-time.Since(t0), func() bool {
			if want {
				return probe.received() > 0 && probe.lastArrival() >= int64(mark)
			}
			// Stopped: nothing sent after now arrives (checked below).
			return true
		})
		if want {
			if !ok {
				late := waitFor(5*time.Second, func() bool { return probe.lastArrival() >= int64(mark) })
				t.Errorf("%s: not applied within 1 s of `ovs-vsctl %v` (applied after %v: %v)", what, cmd, time.Since(t0).Round(time.Millisecond), late)
			} else {
				t.Logf("%s: applied %v after the command started", what, time.Since(t0).Round(time.Millisecond))
			}
			return
		}
		// Wait until 1 s after the command, then nothing sent later may arrive.
		time.Sleep(time.Second - time.Since(t0))
		m := probe.mark()
		time.Sleep(300 * time.Millisecond)
		if last := probe.lastArrival(); last >= int64(m) {
			t.Errorf("%s: probe %d sent more than 1 s after `ovs-vsctl %v` still arrived", what, last, cmd)
		}
	}

	applied("add on VLAN 20 (isolated)", false, "add-port", "br0", "p3", "tag=20")
	if probe.received() > 0 {
		t.Errorf("h3 on VLAN 20 reached h1 on VLAN 10 (%d probes)", probe.received())
	}
	applied("retag 20 -> 10", true, "set", "Port", "p3", "tag=10")
	applied("retag 10 -> 30", false, "set", "Port", "p3", "tag=30")
	applied("retag 30 -> 10", true, "set", "Port", "p3", "tag=10")
	applied("remove", false, "del-port", "br0", "p3")
	applied("add again on VLAN 10", true, "add-port", "br0", "p3", "tag=10")
	applied("trunk without 10", false, "set", "Port", "p3", "trunks=20", "--", "clear", "Port", "p3", "tag")
	// (An untagged frame on a trunk port is VLAN 0, which is not in
	// trunks=20: dropped.)

	// More churn on another port while the streams run.
	for i := 0; i < 3; i++ {
		n.vsctl("add-port", "br0", "p4", fmt.Sprintf("tag=%d", 10+i))
		n.vsctl("set", "Port", "p4", "tag=10")
		h4.mustPing(t, h1.ip)
		n.vsctl("del-port", "br0", "p4")
	}
	n.vsctl("set", "Bridge", "br0", "other_config:mac-aging-time=300")
	// A whole bridge comes and goes (with a port moved onto it and back).
	n.vsctl("add-br", "br9", "--", "set", "Bridge", "br9", "datapath_type=netdev")
	n.vsctl("del-port", "br0", "p3", "--", "add-port", "br9", "p3")
	if err := h3.ping(h1.ip, 1, time.Second); err == nil {
		t.Errorf("h3 on br9 reaches h1 on br0")
	}
	n.vsctl("del-br", "br9")
	n.vsctl("add-port", "br0", "p3", "tag=10")
	h3.mustPing(t, h1.ip)

	endA, endB := a.halt(), b.halt()
	for _, s := range []struct {
		name       string
		st         *udpStream
		start, end uint64
	}{{"h1->h2", a, startA, endA}, {"h2->h1", b, startB, endB}} {
		missing, dups := s.st.lost(s.start, s.end)
		t.Logf("%s: %d datagrams during reconfiguration, %d lost, %d duplicated", s.name, s.end-s.start, len(missing), dups)
		if len(missing) > 0 {
			show := missing
			if len(show) > 20 {
				show = show[:20]
			}
			t.Errorf("%s lost %d of %d datagrams while other ports changed (first: %v)", s.name, len(missing), s.end-s.start, show)
		}
		if dups > 0 {
			t.Errorf("%s: %d duplicated datagrams", s.name, dups)
		}
	}
}
