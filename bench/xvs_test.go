package bench

import (
	"context"
	"testing"
	"time"

	"xvs/datapath"
)

// TestXVSForwards runs the xvs datapath as the DUT for a second: it must
// deliver traffic, through the caches (no upcall per packet), with 1000
// flows.
func TestXVSForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("lab run")
	}
	tp := labOrSkip(t)
	var emc, mega, up uint64
	dut := XVS(XVSConfig{Stats: func(dp *datapath.Datapath) {
		emc, mega, up = dp.Counters.EMCHits.Load(), dp.Counters.MegaHits.Load(), dp.Counters.Upcalls.Load()
	}})
	res, err := tp.Run(context.Background(), "xvs", dut, Config{Duration: time.Second, Flows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	t.Logf("emc hits %d, megaflow hits %d, upcalls %d", emc, mega, up)
	if res.Delivered == 0 || res.Mpps() < 0.01 {
		t.Fatalf("xvs delivered nothing: %v", res)
	}
	if up > 10000 || emc+mega < res.Delivered/2 {
		t.Fatalf("traffic did not run from the caches: %d upcalls, %d hits for %d frames", up, emc+mega, res.Delivered)
	}
}

// TestXVSOffloadForwards: with the kernel tier, established flows are
// forwarded by the XDP program: the sink receives far more frames than the
// userspace caches saw.
func TestXVSOffloadForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("lab run")
	}
	tp := labOrSkip(t)
	var hits, offloaded int
	dut := XVS(XVSConfig{Offload: true, Stats: func(dp *datapath.Datapath) {
		hits = int(dp.Counters.EMCHits.Load() + dp.Counters.MegaHits.Load() + dp.Counters.Upcalls.Load())
		offloaded = dp.Offloaded()
	}})
	res, err := tp.Run(context.Background(), "xvs-xdp", dut, Config{Duration: time.Second, Flows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	t.Logf("userspace saw %d frames, %d megaflows offloaded", hits, offloaded)
	if res.Delivered == 0 {
		t.Fatalf("nothing delivered: %v", res)
	}
	if offloaded == 0 || uint64(hits) > res.Delivered/2 {
		t.Fatalf("traffic did not stay in the kernel: userspace saw %d of %d delivered", hits, res.Delivered)
	}
}
