package xdptier

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Bond failover under traffic. Topology:
//
//	h1: eth0 ── p1 ┐ node: xvsd, br0           ┌ sm1 ┐ sw: Linux bridge br0
//	               └ bond0 (balance-slb) { m1, m2 } └ sm2 ┘     └ sup ── up: eth0
//
// h1 streams to the upstream host through the kernel tier (the offloaded
// flow names the bond bucket; the kernel maps it to a member). Then the
// member carrying the stream goes away — its link taken down (acknowledged
// when bond/show reports it disabled), then, once back, removed from the
// bond with ovs-vsctl — and nothing may leave on it afterwards while the
// stream continues on the other member.

var upMAC = mac(0x0a)

// newBondBed builds the topology, starts xvsd with the tier on, and
// returns once h1 (m1) and the upstream host (upMAC) are learned, with
// captures on sm1, sm2 (keyed by the member they face) and up.
func newBondBed(t *testing.T) (*bed, *host, map[string]*capture) {
	b := newBed(t)
	h1 := b.host("h1", "p1")
	sw, up := b.ns("sw"), b.ns("up")
	b.must(sw.Bridge("br0"))
	b.must(sw.SetUp("br0"))
	for _, w := range [][2]string{{"m1", "sm1"}, {"m2", "sm2"}} {
		b.must(b.l.Wire(b.node, w[0], sw, w[1]))
		b.must(sw.SetMaster(w[1], "br0"))
		b.gro(sw, w[1]) // the members' peers: redirect targets
	}
	b.must(b.l.Wire(up, "eth0", sw, "sup"))
	b.must(sw.SetMaster("sup", "br0"))
	upTx, err := up.OpenRaw("eth0")
	b.must(err)
	t.Cleanup(func() { upTx.Close() })

	b.start(true)
	b.vsctl("add-port", "br0", "p1")
	b.vsctl("add-bond", "br0", "bond0", "m1", "m2", "bond_mode=balance-slb")
	b.checkTier(true, "p1", "m1", "m2")
	for _, m := range []string{"m1", "m2"} {
		waitMember(t, b, m, true)
	}
	caps := map[string]*capture{
		"m1": startCapture(t, "sm1", sw, "sm1"),
		"m2": startCapture(t, "sm2", sw, "sm2"),
		"up": startCapture(t, "up", up, "eth0"),
	}
	b.must(upTx.Send(ether(broadcast, upMAC, etherTest, []byte("hello"))))
	h1.send(t, ether(broadcast, m1, etherTest, []byte("hello")))
	b.waitLearned(5*time.Second, map[string]string{upMAC.String() + "/0": "", m1.String() + "/0": b.ofport("p1")})
	return b, h1, caps
}

func TestBondFailover(t *testing.T) {
	b, h1, caps := newBondBed(t)

	// carrier waits until the stream is offloaded and returns the member
	// whose switch port sees it.
	carrier := func(s *stream) string {
		t.Helper()
		key := fmt.Sprintf("eth(src=%s,dst=%s)", m1, upMAC)
		if !waitFor(3*time.Second, func() bool {
			for _, f := range b.offloadedFlows() {
				if strings.Contains(f, key) {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("stream %s through the bond never offloaded:\n%s", key, b.appctl("dpctl/dump-flows"))
		}
		from := s.mark()
		time.Sleep(300 * time.Millisecond)
		for _, m := range []string{"m1", "m2"} {
			for seq := range arrivals(caps[m].snapshot(), s.id) {
				if seq >= from {
					return m
				}
			}
		}
		t.Fatalf("the stream leaves on neither member")
		return ""
	}
	// check verifies what happened to the frames numbered mark or later.
	check := func(s *stream, mark uint64, old, new string) {
		t.Helper()
		time.Sleep(runAfter)
		s.halt()
		end := s.mark()
		time.Sleep(200 * time.Millisecond)
		t.Logf("stream %d: %d frames, %s gone before frame %d", s.id, end, old, mark)
		var late []uint64
		for seq := range arrivals(caps[old].snapshot(), s.id) {
			if seq >= mark {
				late = append(late, seq)
			}
		}
		if len(late) > 0 {
			t.Errorf("%s (disabled) carried %d frames sent after its removal was acknowledged (first #%d, mark #%d)",
				old, len(late), minOf(late), mark)
		}
		for _, where := range []string{new, "up"} {
			got := arrivals(caps[where].snapshot(), s.id)
			n := 0
			for seq := mark; seq < end; seq++ {
				if _, ok := got[seq]; ok {
					n++
				}
			}
			if total := end - mark; total == 0 || uint64(n)*100 < total*95 {
				t.Errorf("%s received %d of the %d frames sent after the failover", where, n, total)
			}
		}
	}

	// 1: the carrying member's link goes down.
	s := startStream(t, h1, 10, upMAC, m1, streamEvery)
	old := carrier(s)
	if _, err := b.node.Exec(context.Background(), "ip", "link", "set", old, "down"); err != nil {
		t.Fatal(err)
	}
	waitMember(t, b, old, false)
	mark := s.mark()
	check(s, mark, old, otherMember(old))
	if _, err := b.node.Exec(context.Background(), "ip", "link", "set", old, "up"); err != nil {
		t.Fatal(err)
	}
	waitMember(t, b, old, true)

	// 2: the carrying member is removed from the bond with ovs-vsctl
	// (its link stays up, so a frame still sent on it would be seen on the
	// switch); ovs-vsctl returning is the acknowledgement.
	s = startStream(t, h1, 11, upMAC, m1, streamEvery)
	old = carrier(s)
	b.vsctl("--id=@i", "get", "Interface", old, "--", "remove", "Port", "bond0", "interfaces", "@i")
	mark = s.mark()
	check(s, mark, old, otherMember(old))
}

func otherMember(m string) string {
	if m == "m1" {
		return "m2"
	}
	return "m1"
}

var memberState = regexp.MustCompile(`(?m)^member (\S+): (enabled|disabled)$`)

// waitMember waits until bond/show reports member m enabled or disabled.
func waitMember(t *testing.T, b *bed, m string, enabled bool) {
	t.Helper()
	want := "disabled"
	if enabled {
		want = "enabled"
	}
	var out string
	if !waitFor(10*time.Second, func() bool {
		o, err := b.x.Appctl("bond/show", "bond0")
		out = o
		for _, sm := range memberState.FindAllStringSubmatch(o, -1) {
			if err == nil && sm[1] == m && sm[2] == want {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("bond/show does not report %s %s:\n%s", m, want, out)
	}
}

// TestBondMemberStats: frames the kernel tier sends through the bond
// count in the tx statistics of the member that carried them.
func TestBondMemberStats(t *testing.T) {
	b, h1, caps := newBondBed(t)
	base := b.ifStats("m1").TxPackets + b.ifStats("m2").TxPackets
	s := startStream(t, h1, 12, upMAC, m1, streamEvery)
	key := fmt.Sprintf("eth(src=%s,dst=%s)", m1, upMAC)
	if !waitFor(3*time.Second, func() bool {
		for _, f := range b.offloadedFlows() {
			if strings.Contains(f, key) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("stream %s through the bond never offloaded:\n%s", key, b.appctl("dpctl/dump-flows"))
	}
	time.Sleep(time.Second)
	s.halt()
	time.Sleep(200 * time.Millisecond)
	// Everything the members sent reached the switch: captures count it.
	var sent uint64
	for _, m := range []string{"m1", "m2"} {
		sent += uint64(len(caps[m].snapshot()))
	}
	var got uint64
	waitFor(12*time.Second, func() bool {
		got = b.ifStats("m1").TxPackets + b.ifStats("m2").TxPackets - base
		return got >= sent
	})
	t.Logf("members sent %d test frames; their tx_packets grew by %d", sent, got)
	if got < sent {
		t.Errorf("bond members' tx_packets grew by %d, but they sent %d frames (the stream went through the kernel tier): kernel-forwarded bond output is not counted", got, sent)
	}
}
