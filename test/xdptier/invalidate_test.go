package xdptier

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Invalidation under traffic: a stream h1 -> m2 runs through the kernel
// tier while the switch changes under it. Once the change is acknowledged
// (the MAC table shows the move plus a 50 ms settle, or ovs-vsctl
// returned), no frame sent afterwards may reach the old destination, and
// the new destination must get the stream.

const (
	streamEvery = 250 * time.Microsecond
	runAfter    = time.Second // stream time after the change
)

var m1, m2, m4 = mac(0x01), mac(0x02), mac(0x04)

// invalBed is br0 = {p1, p2, p3 access VLAN 10, p4 trunk} with hosts
// h1..h4, the tier on, h1 (m1), h2 (m2) and h4 (m4, VLAN 10) learned.
type invalBed struct {
	*bed
	h    map[string]*host
	caps map[string]*capture
}

func newInvalBed(t *testing.T) *invalBed {
	b := &invalBed{bed: newBed(t), h: map[string]*host{}, caps: map[string]*capture{}}
	for i := 1; i <= 4; i++ {
		n := fmt.Sprintf("h%d", i)
		b.h[n] = b.host(n, fmt.Sprintf("p%d", i))
	}
	b.start(true)
	for i := 1; i <= 3; i++ {
		b.vsctl("add-port", "br0", fmt.Sprintf("p%d", i), "tag=10")
	}
	b.vsctl("add-port", "br0", "p4")
	b.checkTier(true, "p1", "p2", "p3", "p4")
	for n, h := range b.h {
		b.caps[n] = startCapture(t, n, h.ns, "eth0")
	}
	b.h["h1"].send(t, ether(broadcast, m1, etherTest, []byte("hello")))
	b.h["h2"].send(t, ether(broadcast, m2, etherTest, []byte("hello")))
	b.h["h4"].send(t, ether(broadcast, m4, etherTest, []byte("hello"), 10))
	b.waitLearned(5*time.Second, map[string]string{
		m1.String() + "/10": b.ofport("p1"), m2.String() + "/10": b.ofport("p2"), m4.String() + "/10": b.ofport("p4")})
	return b
}

// streamOffloaded starts stream id h1 m1 -> m2 and waits until its
// megaflow is in the kernel tier and h2 gets it.
func (b *invalBed) streamOffloaded(id uint32) *stream {
	b.t.Helper()
	s := startStream(b.t, b.h["h1"], id, m2, m1, streamEvery)
	key := fmt.Sprintf("eth(src=%s,dst=%s)", m1, m2)
	var flows []string
	ok := waitFor(3*time.Second, func() bool {
		flows = b.offloadedFlows()
		for _, f := range flows {
			if strings.Contains(f, key) {
				return true
			}
		}
		return false
	})
	if !ok {
		b.t.Fatalf("stream %s never offloaded; offloaded flows:\n%s\nall flows:\n%s", key, strings.Join(flows, "\n"), b.appctl("dpctl/dump-flows"))
	}
	if !waitFor(2*time.Second, func() bool { return len(arrivals(b.caps["h2"].snapshot(), id)) > 100 }) {
		b.t.Fatalf("h2 does not receive the offloaded stream")
	}
	return s
}

// check halts s and verifies that nothing numbered mark or later reached
// any of old, and that each of new got at least 95% of those frames (with
// the tags want, when not nil).
func (b *invalBed) check(s *stream, mark uint64, old, new []string, want []uint16) {
	b.t.Helper()
	time.Sleep(runAfter)
	s.halt()
	end := s.mark()
	time.Sleep(200 * time.Millisecond)
	if n := s.errs.Load(); n > 0 {
		b.t.Errorf("stream %d: %d send errors", s.id, n)
	}
	b.t.Logf("stream %d: %d frames, change acknowledged before frame %d", s.id, end, mark)
	for _, h := range old {
		var late []uint64
		for seq := range arrivals(b.caps[h].snapshot(), s.id) {
			if seq >= mark {
				late = append(late, seq)
			}
		}
		if len(late) > 0 {
			b.t.Errorf("%s (old destination) received %d frames sent after the change was acknowledged (e.g. #%d; acknowledged before #%d)",
				h, len(late), minOf(late), mark)
		}
	}
	for _, h := range new {
		got := arrivals(b.caps[h].snapshot(), s.id)
		n, badTag := 0, 0
		for seq := mark; seq < end; seq++ {
			if tags, ok := got[seq]; ok {
				n++
				if want != nil && fmt.Sprint(tags[0]) != fmt.Sprint(want) {
					badTag++
				}
			}
		}
		if total := end - mark; total == 0 || uint64(n)*100 < total*95 {
			b.t.Errorf("%s (new destination) received %d of the %d frames sent after the change", h, n, total)
		}
		if badTag > 0 {
			b.t.Errorf("%s received %d frames with the wrong tags (want %#x)", h, badTag, want)
		}
	}
}

func minOf(s []uint64) uint64 {
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

// TestInvalidationMACMove moves m2 from p2 to p3 while h1 streams to it.
func TestInvalidationMACMove(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(1)
	b.h["h3"].send(t, ether(broadcast, m2, etherTest, []byte("moved")))
	b.waitLearned(2*time.Second, map[string]string{m2.String() + "/10": b.ofport("p3")})
	time.Sleep(50 * time.Millisecond)
	mark := s.mark()
	b.check(s, mark, []string{"h2"}, []string{"h3"}, []uint16{})
}

// TestInvalidationRetag moves the destination's port to another VLAN
// (p2 tag 10 -> 20) while h1 streams to it: m2 becomes unknown in VLAN
// 10, so the stream floods to p3 and, tagged 10, to the trunk p4.
func TestInvalidationRetag(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(2)
	b.vsctl("set", "Port", "p2", "tag=20")
	mark := s.mark()
	b.check(s, mark, []string{"h2"}, []string{"h3", "h4"}, nil)
	got := arrivals(b.caps["h4"].snapshot(), s.id)
	for seq, tags := range got {
		if seq >= mark && (len(tags[0]) != 1 || tags[0][0]&0xfff != 10) {
			t.Errorf("h4 received #%d with tags %#x, want VLAN 10", seq, tags[0])
			break
		}
	}
}

// TestInvalidationRetagSource moves the source port to another VLAN
// (p1 tag 10 -> 20): its frames now belong to VLAN 20, where m2 is
// unknown, so they flood to the trunk tagged 20 and never reach h2.
func TestInvalidationRetagSource(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(3)
	b.vsctl("set", "Port", "p1", "tag=20")
	mark := s.mark()
	b.check(s, mark, []string{"h2", "h3"}, []string{"h4"}, []uint16{20})
}
