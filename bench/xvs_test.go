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
