package test

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Cached forwarding follows changes at once: a MAC that moves to another
// port is delivered there (the megaflow to the old port dies), and an
// OpenFlow drop rule added with ovs-appctl ofctl/add-flow stops traffic
// already cached, and counts what it dropped.
func TestCacheFollowsChanges(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	a := n.newHost("a", "pa", "")
	b := n.newHost("b", "pb", "")
	c := n.newHost("c", "pc", "")
	for _, p := range []string{"pa", "pb", "pc"} {
		n.vsctl("add-port", "br0", p, "tag=10")
	}
	ra, rb, rc := openRaw(t, a.ns, "eth0"), openRaw(t, b.ns, "eth0"), openRaw(t, c.ns, "eth0")
	x := []byte{0x02, 0x00, 0x5e, 0x50, 0x00, 0x01} // the moving MAC
	y := []byte{0x02, 0x00, 0x5e, 0x50, 0x00, 0x02} // b's sender MAC

	// X is learned on pa; b's unicast to X goes to a only (and is cached).
	if err := ra.Send(etherFrame(bcast, x, -1, "learn-a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 20; i++ {
		if err := rb.Send(etherFrame(x, y, -1, "to-x-1")); err != nil {
			t.Fatal(err)
		}
	}
	if expectFrame(ra, "to-x-1", time.Second) == nil {
		t.Fatalf("unicast to X (learned on pa) did not reach a")
	}
	if expectFrame(rc, "to-x-1", 200*time.Millisecond) != nil {
		t.Errorf("unicast to a learned MAC flooded to c")
	}

	// X moves to pc.
	ra.Drain()
	rc.Drain()
	if err := rc.Send(etherFrame(bcast, x, -1, "learn-c")); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	var arrived bool
	for !arrived && time.Since(moved) < time.Second {
		if err := rb.Send(etherFrame(x, y, -1, "to-x-2")); err != nil {
			t.Fatal(err)
		}
		arrived = expectFrame(rc, "to-x-2", 20*time.Millisecond) != nil
	}
	if !arrived {
		t.Errorf("after X moved to pc, unicast to X did not reach c within 1 s")
	} else {
		t.Logf("MAC move followed after %v", time.Since(moved).Round(time.Millisecond))
		// From now on nothing more goes to a.
		ra.Drain()
		if err := rb.Send(etherFrame(x, y, -1, "to-x-3")); err != nil {
			t.Fatal(err)
		}
		if expectFrame(ra, "to-x-3", 200*time.Millisecond) != nil {
			t.Errorf("unicast to X still sent to its old port pa")
		}
	}

	// A drop rule for traffic from pb, above NORMAL.
	rc.Drain()
	n.appctl("ofctl/add-flow", "br0", "priority=100,in_port=pb,actions=drop")
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		if err := rb.Send(etherFrame(x, y, -1, "dropped")); err != nil {
			t.Fatal(err)
		}
	}
	if expectFrame(rc, "dropped", 300*time.Millisecond) != nil {
		t.Errorf("frames from pb still forwarded after a drop rule was added (%v)", time.Since(t0).Round(time.Millisecond))
	}
	dump := n.appctl("ofctl/dump-flows", "br0")
	t.Logf("dump-flows:\n%s", dump)
	m := regexp.MustCompile(`n_packets=(\d+).*priority=100,in_port=("?pb"?|\d+) actions=drop`).FindStringSubmatch(dump)
	if m == nil {
		t.Errorf("dump-flows lacks the drop rule")
	} else if np, _ := strconv.Atoi(m[1]); np < 1 {
		t.Errorf("drop rule counted n_packets=%d, want >= 1", np)
	}
	// Every flow's age counts from when it was added (the bridge's default
	// NORMAL flow from the bridge's creation), not from 1970.
	for _, d := range regexp.MustCompile(`duration=([0-9.]+)s`).FindAllStringSubmatch(dump, -1) {
		if sec, _ := strconv.ParseFloat(d[1], 64); sec > 600 {
			t.Errorf("dump-flows: duration=%ss for a flow of a bridge created seconds ago", d[1])
		}
	}
	n.appctl("ofctl/del-flows", "br0", "in_port=pb")
	var back bool
	for i := 0; i < 10 && !back; i++ {
		if err := rb.Send(etherFrame(x, y, -1, "undropped")); err != nil {
			t.Fatal(err)
		}
		back = expectFrame(rc, "undropped", 100*time.Millisecond) != nil
	}
	if !back {
		t.Errorf("frames from pb not forwarded after the drop rule was deleted")
	}
}
