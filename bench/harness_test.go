package bench

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"xvs/xdp"
)

var (
	flagDuration = flag.Duration("bench.duration", 3*time.Second, "measurement window per run")
	flagDUTs     = flag.String("bench.duts", "afxdp,bridge,xdp-redirect,ovs", "DUTs for TestCompare, in order")
	flagFlows    = flag.String("bench.flows", "1,1000", "flow counts for TestCompare")
	flagProfile  = flag.String("bench.cpuprofile", "", "write a pprof CPU profile of the afxdp run (1 flow) here")
	flagSpin     = flag.Int("bench.afxdp.spin", 0, "empty polling rounds of the afxdp forwarder before it sleeps in poll(2)")
	flagBatch    = flag.Int("bench.afxdp.batch", 32, "Recv/Send batch of the afxdp forwarder")
	flagFIFO     = flag.Bool("bench.napififo", false, "with -bench.threaded: run the DUT's NAPI threads at SCHED_FIFO priority (like softirq of a NIC bound to the DUT core)")
	flagThreaded = flag.Bool("bench.threaded", false, "threaded NAPI for the DUT's veths, pinned to the DUT core (default: softirq, DUT ingress runs on the generator core)")
	flagPerf     = flag.String("bench.perf", "", "record `perf record -C <DUT cpu> -g` of the afxdp run (1 flow) into this file")
)

// duts is the registry of DUTs the harness knows.
func duts() map[string]DUT {
	return map[string]DUT{
		"afxdp":        AFXDP(AFXDPConfig{Spin: *flagSpin, Batch: *flagBatch}),
		"bridge":       Bridge,
		"xdp-redirect": XDPRedirect,
		"ovs":          OVS(OVSConfig{PortFlows: true}),
	}
}

// labOrSkip builds the topology, skipping without root (failing on CI).
func labOrSkip(tb testing.TB) *Topology {
	tb.Helper()
	var err error
	var t *Topology
	if os.Geteuid() != 0 {
		err = fmt.Errorf("not root")
	} else {
		t, err = NewTopology()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("benchmark lab: %v", err)
		}
		tb.Skipf("needs root, netns, veth and XDP: %v", err)
	}
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Error(err)
		}
	})
	return t
}

func TestUDPFrame(t *testing.T) {
	tp := &Topology{GenMAC: [6]byte{2, 0, 0, 0, 0, 1}, SinkMAC: [6]byte{2, 0, 0, 0, 0, 2}}
	f := tp.UDPFrame(60)
	if len(f) != 60 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		t.Fatalf("bad frame %x", f)
	}
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(f[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("IPv4 header checksum does not verify: %#x", sum)
	}
	if binary.BigEndian.Uint16(f[16:]) != 46 || binary.BigEndian.Uint16(f[38:]) != 26 {
		t.Fatalf("lengths: ip %d udp %d", binary.BigEndian.Uint16(f[16:]), binary.BigEndian.Uint16(f[38:]))
	}
}

// TestHarnessForwards is a short end-to-end check of the harness itself:
// the bare AF_XDP forwarder must deliver most of a modest offered load,
// and 1000 flows must really use 1000 source ports... (checked through
// the generator's behaviour on the sink count only: the sink counts
// every frame).
func TestHarnessForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("lab run")
	}
	tp := labOrSkip(t)
	var st [2]xdp.SocketStats
	var acc xdp.Accounting
	dut := AFXDP(AFXDPConfig{Stats: func(a, b xdp.SocketStats, u xdp.Accounting) { st[0], st[1], acc = a, b, u }})
	res, err := tp.Run(context.Background(), "afxdp", dut, Config{Duration: time.Second, Flows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	t.Logf("A: %+v", st[0])
	t.Logf("B: %+v", st[1])
	t.Logf("UMEM: %v", acc)
	if res.Delivered == 0 || res.Mpps() < 0.01 {
		t.Fatalf("forwarder delivered nothing: %v", res)
	}
	if st[1].Copies != 0 || st[1].ZeroCopySends == 0 {
		t.Errorf("forwarder copied frames: %+v", st[1])
	}
	if acc.Sum() != acc.Total || acc.User != 0 {
		t.Errorf("UMEM frames not accounted for: %v", acc)
	}
}

// TestCompare runs every DUT one after another on one topology and prints
// Mpps, loss and ratios. It is the engine of bench/scripts/compare.sh and
// runs only with XVS_BENCH_COMPARE=1.
func TestCompare(t *testing.T) {
	if os.Getenv("XVS_BENCH_COMPARE") != "1" {
		t.Skip("set XVS_BENCH_COMPARE=1 (see bench/scripts/compare.sh)")
	}
	tp := labOrSkip(t)
	reg := duts()
	var results []Result
	for _, fl := range strings.Split(*flagFlows, ",") {
		var flows int
		fmt.Sscan(fl, &flows)
		for _, name := range strings.Split(*flagDUTs, ",") {
			dut, ok := reg[name]
			if !ok {
				t.Fatalf("unknown DUT %q", name)
			}
			cfg := Config{Flows: flows, Duration: *flagDuration, ThreadedNAPI: *flagThreaded, NAPIFIFO: *flagFIFO}
			if name == "afxdp" && flows == 1 {
				cfg.During = profiler(t)
			}
			res, err := tp.Run(context.Background(), name, dut, cfg)
			if err != nil {
				t.Errorf("%s flows=%d: %v", name, flows, err)
				continue
			}
			results = append(results, res)
			t.Log(res)
		}
	}
	fmt.Println(Table(results))
}

// Table formats results with ratios to OVS and to the Linux bridge of the
// same flow count.
func Table(rs []Result) string {
	ref := func(name string, flows int) float64 {
		for _, r := range rs {
			if r.Name == name && r.Flows == flows {
				return r.Mpps()
			}
		}
		return 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %6s %9s %9s %7s %9s %8s %8s %6s\n", "DUT", "flows", "Mpps", "offered", "loss%", "ns/frame", "x OVS", "x bridge", "load")
	for _, r := range rs {
		ratio := func(d float64) string {
			if d == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", r.Mpps()/d)
		}
		fmt.Fprintf(&b, "%-14s %6d %9.3f %9.3f %7.1f %9.0f %8s %8s %6.1f\n", r.Name, r.Flows, r.Mpps(), r.OfferedMpps(),
			100*r.Loss(), r.NsPerFrame(), ratio(ref("ovs", r.Flows)), ratio(ref("bridge", r.Flows)), r.Load)
	}
	return b.String()
}

// profiler returns the During hook recording pprof and/or perf profiles.
func profiler(t *testing.T) func(ctx context.Context) {
	if *flagProfile == "" && *flagPerf == "" {
		return nil
	}
	return func(ctx context.Context) {
		var perf *exec.Cmd
		if *flagPerf != "" {
			perf = exec.Command("perf", "record", "-q", "-g", "-C", "1", "-o", *flagPerf)
			if err := perf.Start(); err != nil {
				t.Logf("perf: %v", err)
				perf = nil
			}
		}
		if *flagProfile != "" {
			f, err := os.Create(*flagProfile)
			if err == nil {
				pprof.StartCPUProfile(f)
			}
			<-ctx.Done()
			if err == nil {
				pprof.StopCPUProfile()
				f.Close()
			}
		} else {
			<-ctx.Done()
		}
		if perf != nil {
			perf.Process.Signal(os.Interrupt)
			perf.Wait()
		}
	}
}
