package xdptier

import (
	"context"
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

// TestInvalidationFDBFlush flushes the MAC table while h1 streams to m2
// through the kernel: once fdb/flush returned, m2 is unknown and the
// stream must flood (reach h3, and the trunk h4 tagged 10).
func TestInvalidationFDBFlush(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(4)
	b.appctl("fdb/flush", "br0")
	mark := s.mark()
	b.check(s, mark, nil, []string{"h2", "h3", "h4"}, nil)
}

// TestMACAgeingOffloaded: with traffic only in the kernel tier, the MAC
// entries of both ends stay alive (the revalidator folds the kernel's
// hits back into MAC learning), so nothing floods after the ageing time.
func TestMACAgeingOffloaded(t *testing.T) {
	b := newInvalBed(t)
	b.vsctl("set", "Bridge", "br0", "other_config:mac-aging-time=15")
	fwd := b.streamOffloaded(5)
	back := startStream(t, b.h["h2"], 6, m1, m2, streamEvery)
	key := fmt.Sprintf("eth(src=%s,dst=%s)", m2, m1)
	if !waitFor(3*time.Second, func() bool {
		for _, f := range b.offloadedFlows() {
			if strings.Contains(f, key) {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("reverse stream never offloaded:\n%s", b.appctl("dpctl/dump-flows"))
	}
	before := b.userspaceFrames()
	start := fwd.mark()
	time.Sleep(22 * time.Second)
	fdb := b.fdb()
	for _, k := range []string{m1.String() + "/10", m2.String() + "/10"} {
		if _, ok := fdb[k]; !ok {
			t.Errorf("%s aged out of the MAC table while the kernel forwarded its frames; fdb/show:\n%s", k, b.appctl("fdb/show", "br0"))
		}
	}
	if _, ok := fdb[m4.String()+"/10"]; ok {
		t.Errorf("%s (silent for 22 s) did not age out: mac-aging-time=15 not in effect, the test proves nothing", m4)
	}
	for _, h := range []string{"h3", "h4"} {
		if n := len(arrivals(b.caps[h].snapshot(), fwd.id)) + len(arrivals(b.caps[h].snapshot(), back.id)); n > 0 {
			t.Errorf("%s received %d stream frames: the streams flooded", h, n)
		}
	}
	sent := fwd.mark() - start
	after := b.userspaceFrames()
	t.Logf("%d frames each way in 22 s; userspace looked at %d frames", sent, after-before)
	if after-before > sent/2 {
		t.Errorf("userspace looked at %d frames while %d went each way: the streams left the kernel tier", after-before, sent)
	}
	b.check(fwd, fwd.mark(), []string{"h3", "h4"}, []string{"h2"}, []uint16{})
}

// TestInvalidationDelPort removes the destination's port while h1 streams
// to it: m2 is forgotten with the port, so once ovs-vsctl returned the
// stream floods to h3 and h4 (a kernel flow left pointing at the removed
// port would drop it instead).
func TestInvalidationDelPort(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(7)
	b.vsctl("del-port", "br0", "p2")
	mark := s.mark()
	b.check(s, mark, []string{"h2"}, []string{"h3", "h4"}, nil)
}

// TestOffloadToggle turns other_config:xdp-flow-offload off and on again
// under traffic: off, no flow stays in the kernel and the stream goes on
// through userspace; on again, it returns to the kernel. The tier is an
// implementation detail of forwarding: switching it must not make the
// switch forget its MAC table (which would flood every unicast stream
// until its destination speaks again).
func TestOffloadToggle(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(8)
	b.vsctl("set", "Open_vSwitch", ".", "other_config:xdp-flow-offload=false")
	mark := s.mark()
	b.checkTier(false, "p1", "p2", "p3", "p4")
	if f := b.offloadedFlows(); len(f) > 0 {
		t.Errorf("flows still offloaded:xdp after xdp-flow-offload=false:\n%s", strings.Join(f, "\n"))
	}
	b.checkMACsKept("xdp-flow-offload true -> false")
	before := b.userspaceFrames()
	b.check(s, mark, nil, []string{"h2"}, []uint16{})
	if got := b.userspaceFrames() - before; got < 100 {
		t.Errorf("userspace looked at only %d frames of the stream with the tier off", got)
	}
	// Whatever happened to the MAC table, m2 speaks again before the
	// tier comes back, so what follows does not depend on it.
	b.h["h2"].send(t, ether(broadcast, m2, etherTest, []byte("hello")))
	b.vsctl("set", "Open_vSwitch", ".", "other_config:xdp-flow-offload=true")
	b.checkTier(true, "p1", "p2", "p3", "p4")
	b.h["h2"].send(t, ether(broadcast, m2, etherTest, []byte("hello")))
	b.waitLearned(2*time.Second, map[string]string{m2.String() + "/10": b.ofport("p2")})
	b.streamOffloaded(9)
}

// TestOffloadSettingNoChange sets other_config:xdp-flow-offload from its
// default to the value the default already means on veth ("false"): the
// ports keep working exactly as before, and the MAC table must survive.
func TestOffloadSettingNoChange(t *testing.T) {
	b := newInvalBed(t)
	// Default (unset) first: on veth that is off.
	b.vsctl("remove", "Open_vSwitch", ".", "other_config", "xdp-flow-offload")
	b.checkTier(false, "p1", "p2", "p3", "p4")
	b.h["h1"].send(t, ether(broadcast, m1, etherTest, []byte("hello")))
	b.h["h2"].send(t, ether(broadcast, m2, etherTest, []byte("hello")))
	b.waitLearned(2*time.Second, map[string]string{m1.String() + "/10": b.ofport("p1"), m2.String() + "/10": b.ofport("p2")})
	b.vsctl("set", "Open_vSwitch", ".", "other_config:xdp-flow-offload=false")
	b.checkTier(false, "p1", "p2", "p3", "p4")
	b.checkMACsKept("xdp-flow-offload unset -> false (no change on veth)")
}

// checkMACsKept fails unless m1 and m2 are still learned on p1 and p2.
func (b *invalBed) checkMACsKept(change string) {
	b.t.Helper()
	fdb := b.fdb()
	for k, p := range map[string]string{m1.String() + "/10": b.ofport("p1"), m2.String() + "/10": b.ofport("p2")} {
		if fdb[k] != p {
			b.t.Errorf("after %s the MAC table lost %s (was on port %s); fdb/show:\n%s", change, k, p, b.appctl("fdb/show", "br0"))
		}
	}
}

// TestKill9DetachesTier kills xvsd while the kernel tier forwards a
// stream: the programs go with the process (BPF links), so nothing stays
// attached to the ports and nothing is forwarded any more.
func TestKill9DetachesTier(t *testing.T) {
	b := newInvalBed(t)
	s := b.streamOffloaded(10)
	b.x.Kill9()
	time.Sleep(100 * time.Millisecond)
	mark := s.mark()
	for i := 1; i <= 4; i++ {
		p := fmt.Sprintf("p%d", i)
		var out []byte
		if !waitFor(2*time.Second, func() bool {
			out, _ = b.node.Exec(context.Background(), "ip", "-d", "link", "show", "dev", p)
			return !strings.Contains(string(out), "prog/xdp")
		}) {
			t.Errorf("%s still has an XDP program after xvsd was killed:\n%s", p, out)
		}
	}
	time.Sleep(300 * time.Millisecond)
	s.halt()
	for seq := range arrivals(b.caps["h2"].snapshot(), s.id) {
		if seq >= mark {
			t.Errorf("h2 still receives the stream after xvsd was killed (#%d, killed before #%d)", seq, mark)
			break
		}
	}
}
