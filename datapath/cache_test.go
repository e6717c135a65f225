package datapath

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"xvs/flow"
)

// twin is the same topology built twice: one datapath runs with its caches,
// the other translates every packet from scratch (the slow reference). Both
// see the same packets and configuration changes; their outputs must be
// identical frame for frame.
type twin struct {
	t        *testing.T
	cached   *testBridge
	ref      *testBridge
	now      time.Time
	portsFor []string
}

func newTwin(t *testing.T, kernel bool) *twin {
	tw := &twin{t: t, now: time.Unix(5000, 0)}
	for i, tb := range []**testBridge{&tw.cached, &tw.ref} {
		*tb = newTestBridge(t, "br0")
		(*tb).dp.now = func() time.Time { return tw.now }
		if i == 0 && kernel {
			(*tb).kernel = newFakeKernel((*tb).dp.now)
			(*tb).dp.SetKernelTier((*tb).kernel)
		}
		if _, err := (*tb).dp.AddBridge("br1"); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			(*tb).p.uncached = true
		}
	}
	tw.each(func(tb *testBridge) {
		tb.addPort("br0", port("a10", 10, ""))
		tb.addPort("br0", port("a20", 20, ""))
		tb.addPort("br0", port("t", -1, ""))
		tb.addPort("br0", port("nu", 10, "native-untagged", 20, 30))
		tb.addPort("br0", PortConfig{Name: "pa", Tag: -1, Interfaces: []InterfaceConfig{{Name: "pa", Peer: "pb"}}})
		tb.addPort("br1", PortConfig{Name: "pb", Tag: -1, Interfaces: []InterfaceConfig{{Name: "pb", Peer: "pa"}}})
		tb.addPort("br1", port("u1", -1, ""))
		tb.addPort("br1", port("u2", 30, ""))
	})
	tw.portsFor = []string{"a10", "a20", "t", "nu", "u1", "u2"}
	return tw
}

func (tw *twin) each(fn func(tb *testBridge)) {
	fn(tw.cached)
	fn(tw.ref)
}

func (tw *twin) check(step int, what string) {
	a, b := tw.cached.sent(), tw.ref.sent()
	for _, p := range tw.portsFor {
		if len(a[p]) != len(b[p]) {
			tw.t.Fatalf("step %d (%s): port %s: cached sent %d frames, reference %d\ncached: %s\nref: %s\nflows:\n%s",
				step, what, p, len(a[p]), len(b[p]), describe(a), describe(b), tw.cached.dp.DumpDPFlows())
		}
		for i := range a[p] {
			if !bytes.Equal(a[p][i], b[p][i]) {
				tw.t.Fatalf("step %d (%s): port %s frame %d differs", step, what, p, i)
			}
		}
	}
}

func TestCacheMatchesReference(t *testing.T) {
	t.Run("userspace", func(t *testing.T) { testCacheMatchesReference(t, false) })
	// With the kernel tier on: offloaded flows bypass userspace entirely,
	// yet every delivered frame must be identical.
	t.Run("xdp-tier", func(t *testing.T) { testCacheMatchesReference(t, true) })
}

func testCacheMatchesReference(t *testing.T, kernel bool) {
	tw := newTwin(t, kernel)
	rng := rand.New(rand.NewPCG(1, 2))
	macs := 12
	flows := []string{
		"priority=200,in_port=t,dl_vlan=30,actions=drop",
		"priority=150,udp,tp_src=7,actions=NORMAL,mod_nw_src:198.18.9.9,output:t",
		"priority=120,in_port=a20,dl_src=02:00:00:00:00:03,actions=mod_vlan_vid:30,output:t",
		"priority=110,ip,nw_dst=198.18.0.5,actions=strip_vlan,NORMAL",
		"priority=100,arp,actions=FLOOD",
		"priority=90,dl_dst=02:00:00:00:00:07,actions=mod_dl_dst:02:00:00:00:00:08,resubmit(,0)",
	}
	for step := 0; step < 8000; step++ {
		switch r := rng.IntN(1000); {
		case r < 970: // traffic
			pi := rng.IntN(len(tw.portsFor))
			in := tw.portsFor[pi]
			// Hosts mostly stay behind their port; now and then one moves.
			src := byte(pi*2 + rng.IntN(2))
			if rng.IntN(20) == 0 {
				src = byte(rng.IntN(macs))
			}
			spec := frameSpec{src: mac(src), dst: mac(byte(rng.IntN(8))), vid: -1,
				sport: uint16(5 + rng.IntN(3)), size: 60 + rng.IntN(200)}
			switch rng.IntN(10) {
			case 0:
				spec.dst = bcast
			case 1:
				spec.vid = []int{0, 10, 20, 30, 40}[rng.IntN(5)]
				spec.pcp = rng.IntN(8)
			case 2:
				spec.arp = true
			}
			f := buildFrame(spec)
			n := 1 + rng.IntN(6)
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = f
			}
			tw.each(func(tb *testBridge) { tb.send(in, frames...) })
			tw.check(step, fmt.Sprintf("frame from %s %+v", in, spec))
		case r < 975:
			fl := flows[rng.IntN(len(flows))]
			tw.each(func(tb *testBridge) {
				if err := tb.dp.AddFlow("br0", fl); err != nil {
					t.Fatal(err)
				}
			})
		case r < 977:
			tw.each(func(tb *testBridge) {
				if _, err := tb.dp.DelFlows("br0", "priority=1/0", false); err != nil {
					// fall back: delete everything but the default rule
					_, _ = tb.dp.DelFlows("br0", "", false)
					_ = tb.dp.AddFlow("br0", "priority=0,actions=NORMAL")
				}
			})
		case r < 980: // retag a port
			tag := []int{10, 20, 30}[rng.IntN(3)]
			tw.each(func(tb *testBridge) {
				pc := port("a20", tag, "")
				pc.Interfaces[0].Device = tb.dev("a20")
				if err := tb.dp.SetPort("br0", pc); err != nil {
					t.Fatal(err)
				}
			})
		case r < 990:
			tw.now = tw.now.Add(time.Duration(rng.IntN(12)) * time.Second)
			tw.each(func(tb *testBridge) { tb.dp.Revalidate() })
		case r < 993:
			tw.each(func(tb *testBridge) { _ = tb.dp.FDBFlush("br1") })
		default:
			tw.now = tw.now.Add(time.Second)
		}
	}
	flows0, _, _ := tw.cached.dp.CacheStats()
	c := &tw.cached.dp.Counters
	t.Logf("megaflows %d, emc hits %d, megaflow hits %d, upcalls %d", flows0, c.EMCHits.Load(), c.MegaHits.Load(), c.Upcalls.Load())
	if k := tw.cached.kernel; k != nil {
		t.Logf("kernel tier: %d hits, %d flows written, %d deleted", k.hits, k.puts, k.dels)
		if k.hits == 0 || k.dels == 0 {
			t.Fatal("the kernel tier was never used or never invalidated")
		}
		return
	}
	if hits := c.EMCHits.Load() + c.MegaHits.Load(); hits < c.Upcalls.Load() {
		t.Fatal("the caches were never hit: the test proves nothing")
	}
}

func TestBatchAllocatesNothing(t *testing.T) {
	tb := newTestBridge(t, "br0")
	tb.addPort("br0", port("p1", 10, ""))
	sink := &sinkDevice{name: "p2"}
	if err := tb.dp.SetPort("br0", PortConfig{Name: "p2", Tag: -1, Interfaces: []InterfaceConfig{{Name: "p2", Device: sink}}}); err != nil {
		t.Fatal(err)
	}
	in := tb.dp.ports[1]
	f := buildFrame(frameSpec{src: mac(1), dst: mac(2), vid: -1})
	tb.send("p1", f)
	tb.dp.mu.Lock()
	tb.dp.bridges["br0"].macs.learn(mac(2), 10, tb.dp.bridges["br0"].bundles["p2"], tb.dp.now().UnixNano(), false)
	tb.dp.mu.Unlock()
	pool := &fixedPool{}
	batch := make([]*flow.Packet, BatchSize)
	for i := range batch {
		buf := make([]byte, 2048)
		batch[i] = &flow.Packet{Buf: buf, Pool: pool}
	}
	run := func() {
		for _, p := range batch {
			p.Off = flow.Headroom
			p.Len = copy(p.Buf[p.Off:], f)
		}
		tb.p.Process(in.dpPort, batch)
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
	if sink.packets == 0 {
		t.Fatal("nothing reached the sink")
	}
}

// sinkDevice counts and frees what it is sent.
type sinkDevice struct {
	name    string
	packets uint64
}

func (d *sinkDevice) Name() string                       { return d.name }
func (d *sinkDevice) Recv(p []*flow.Packet) (int, error) { return 0, nil }
func (d *sinkDevice) Send(p []*flow.Packet) int {
	for _, pk := range p {
		d.packets++
		pk.Free()
	}
	return len(p)
}
func (d *sinkDevice) Stats() DeviceStats { return DeviceStats{TxPackets: d.packets} }
func (d *sinkDevice) Close() error       { return nil }

type fixedPool struct{ freed int }

func (p *fixedPool) Free(*flow.Packet) { p.freed++ }
