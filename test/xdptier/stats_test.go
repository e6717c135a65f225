package xdptier

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Statistics of traffic the kernel tier forwarded must read as if
// userspace had forwarded it: per megaflow (dpctl/dump-flows) and per
// interface (Interface statistics).

// statsBed is br0 = {p1 access VLAN 10 (h1, a1), p3 trunk (h3, t10)}
// with both MACs learned and the tier on.
func statsBed(t *testing.T) (*bed, *host, *host, map[string]*capture) {
	b := newBed(t)
	h1, h3 := b.host("h1", "p1"), b.host("h3", "p3")
	b.start(true)
	b.vsctl("add-port", "br0", "p1", "tag=10")
	b.vsctl("add-port", "br0", "p3")
	b.checkTier(true, "p1", "p3")
	caps := map[string]*capture{"h1": startCapture(t, "h1", h1.ns, "eth0"), "h3": startCapture(t, "h3", h3.ns, "eth0")}
	h1.send(t, ether(broadcast, a1, etherTest, []byte("hello")))
	h3.send(t, ether(broadcast, t10, etherTest, []byte("hello"), 10))
	b.waitLearned(5*time.Second, map[string]string{a1.String() + "/10": b.ofport("p1"), t10.String() + "/10": b.ofport("p3")})
	return b, h1, h3, caps
}

var flowPackets = regexp.MustCompile(`packets:(\d+), bytes:(\d+),.*offloaded:(\w+)`)

// megaflowStats returns packets and bytes of the dpctl/dump-flows lines
// containing every one of parts.
func (b *bed) megaflowStats(parts ...string) (lines []string, packets, bytes uint64) {
	b.t.Helper()
next:
	for _, l := range strings.Split(b.appctl("dpctl/dump-flows"), "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		if m := flowPackets.FindStringSubmatch(l); m != nil {
			pk, _ := strconv.ParseUint(m[1], 10, 64)
			by, _ := strconv.ParseUint(m[2], 10, 64)
			packets += pk
			bytes += by
			lines = append(lines, l)
		}
	}
	return lines, packets, bytes
}

// TestOffloadTPIDs sends the same flow (MACs, VID, ethertype) from a trunk
// once with 802.1Q and once with 802.1ad tags. Userspace keeps them apart
// (the megaflows match the TPID), so when both frames of a pair miss the
// kernel together, two megaflows are installed; the kernel tier must not
// merge them: per flow the megaflows together may count only the frames
// that were sent. (Whether both megaflows form depends on timing, so
// several source MACs try.)
func TestOffloadTPIDs(t *testing.T) {
	b, _, h3, caps := statsBed(t)
	const n, srcs = 100, 8
	for r := range n {
		for i := range srcs {
			for _, tpid := range []uint16{0x8100, 0x88a8} {
				f := ether(a1, mac(0x60+byte(i)), etherTest, payload(fmt.Sprintf("tpid-%x", tpid), r), 10)
				binary.BigEndian.PutUint16(f[12:], tpid)
				h3.send(t, f)
			}
		}
		if r == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(1500 * time.Millisecond) // revalidator: kernel counters folded in
	got := 0
	for _, f := range caps["h1"].snapshot() {
		if containsBytes(f, []byte("tpid-")) {
			got++
		}
	}
	if got != 2*n*srcs {
		t.Errorf("h1 received %d frames, want %d", got, 2*n*srcs)
	}
	pairs, bad := 0, []string{}
	for i := range srcs {
		key := fmt.Sprintf("eth(src=%s,dst=%s)", mac(0x60+byte(i)), a1)
		lines, pk, _ := b.megaflowStats("in_port(p3)", key)
		if len(lines) == 2 {
			pairs++
		}
		if pk != 2*n {
			bad = append(bad, fmt.Sprintf("the %d megaflow(s) of %s count %d packets, but %d were sent (%d with each TPID):\n%s",
				len(lines), key, pk, 2*n, n, strings.Join(lines, "\n")))
		}
	}
	t.Logf("%d of %d flows got a megaflow per TPID", pairs, srcs)
	if len(bad) > 0 {
		t.Errorf("%d of %d flows miscounted: the kernel tier's key has no TPID, so one kernel entry serves both megaflows and its counters are folded into each; first:\n%s",
			len(bad), srcs, bad[0])
	}
}

// TestOffloadTxBytesVLAN checks Interface statistics of ports the kernel
// tier pushes and pops tags for: tx_bytes are the bytes that left, i.e.
// 4 more than received for a push and 4 fewer for a pop.
func TestOffloadTxBytesVLAN(t *testing.T) {
	b, h1, h3, caps := statsBed(t)
	base := map[string]ifStats{"p1": b.ifStats("p1"), "p3": b.ifStats("p3")}
	const n = 200
	for r := range n {
		h1.send(t, ether(t10, a1, etherTest, payload("push", r)))    // push 10 to p3
		h3.send(t, ether(a1, t10, etherTest, payload("pop", r), 10)) // pop to p1
		if r == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if f := b.offloadedFlows(); len(f) < 2 {
		t.Fatalf("push and pop flows not both offloaded:\n%s", b.appctl("dpctl/dump-flows"))
	}
	want := map[string]ifStats{}
	for p, h := range map[string]string{"p1": "h1", "p3": "h3"} {
		w := base[p]
		for _, f := range caps[h].snapshot() {
			w.TxPackets++
			w.TxBytes += uint64(len(f))
		}
		want[p] = w
	}
	got := map[string]ifStats{}
	waitFor(12*time.Second, func() bool {
		for p := range want {
			got[p] = b.ifStats(p)
		}
		return got["p1"].TxPackets == want["p1"].TxPackets && got["p3"].TxPackets == want["p3"].TxPackets
	})
	for _, p := range []string{"p1", "p3"} {
		if got[p].TxPackets != want[p].TxPackets || got[p].TxBytes != want[p].TxBytes {
			t.Errorf("Interface %s: tx_packets %d tx_bytes %d, but its host received %d frames of %d bytes (difference %+d bytes)",
				p, got[p].TxPackets, got[p].TxBytes, want[p].TxPackets, want[p].TxBytes, int64(got[p].TxBytes)-int64(want[p].TxBytes))
		}
	}
}
