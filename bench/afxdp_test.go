package bench

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkForward measures each DUT with 1 and 1,000 flows of 64-byte
// frames. Every sub-benchmark is one time-bounded run (-bench.duration,
// 3 s by default) whatever b.N is; use -benchtime=1x. ns/op is reported
// as nanoseconds per delivered frame.
func BenchmarkForward(b *testing.B) {
	tp := labOrSkip(b)
	reg := duts()
	for _, name := range []string{"afxdp", "bridge", "xdp-redirect", "ovs"} {
		for _, flows := range []int{1, 1000} {
			b.Run(fmt.Sprintf("dut=%s/flows=%d", name, flows), func(b *testing.B) {
				var res Result
				var err error
				for range b.N {
					res, err = tp.Run(context.Background(), name, reg[name], Config{Flows: flows, Duration: *flagDuration})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(res.Mpps(), "Mpps")
				b.ReportMetric(res.OfferedMpps(), "offered-Mpps")
				b.ReportMetric(100*res.Loss(), "loss%")
				b.ReportMetric(res.NsPerFrame(), "dut-cpu-ns/frame")
				if res.Delivered > 0 {
					b.ReportMetric(1e9*res.Seconds/float64(res.Delivered), "ns/op")
				}
			})
		}
	}
}
