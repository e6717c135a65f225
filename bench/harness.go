// Package bench measures forwarding throughput of xvs and of reference
// datapaths in a network-namespace lab: a generator namespace sends 64-byte
// UDP frames over veth into a device under test (DUT) namespace, which
// forwards them over a second veth into a sink namespace where an XDP
// program counts and drops them.
//
// The generator is an XDP program run with BPF_PROG_RUN in live-frame
// mode (XDP_TX out of the generator veth); the sink is an XDP program
// counting into a per-CPU map. Both live in package xdp. DUTs are
// pluggable (type DUT): the bare AF_XDP forwarder of package xdp, the
// Linux bridge, in-kernel XDP_REDIRECT and Open vSwitch 3.1's userspace
// datapath with afxdp ports are provided.
//
// CPU placement on a two-core machine: the DUT's goroutine or processes
// run on DUTCPU; the generator and the sink's NAPI thread (SCHED_FIFO, so
// the sink never limits a run) on GenCPU. The DUT's veth NAPI stays in
// softirq by default, where its ingress work runs inline with the
// generator on GenCPU; Config.ThreadedNAPI pins it to DUTCPU instead. All
// benchmark threads run at nice -20. Runs are bounded in time (Duration,
// default 3 s, after a warm-up). Besides Mpps and loss, Result reports
// where frames were dropped and the DUT's CPU time per delivered frame.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"xvs/xdp"
)

// DUT forwards frames from ifA to ifB (and may forward ifB to ifA) until
// ctx is done, then cleans up and returns. It is called on a locked OS
// thread inside the DUT namespace, pinned to the DUT core; NetNS(ctx)
// names that namespace. A DUT that returns early fails the run.
type DUT func(ctx context.Context, ifA, ifB string) error

// Config is one measurement. The zero value is usable.
type Config struct {
	Flows    int           // distinct UDP flows (source ports), default 1
	FrameLen int           // frame length without FCS, default 60 (64 on the wire)
	Duration time.Duration // measurement window, default 3 s
	Warmup   time.Duration // after traffic flows, default 500 ms
	GenCPU   int           // default 0
	DUTCPU   int           // default 1
	// ThreadedNAPI makes the DUT's veth NAPIs threaded and pins them to
	// DUTCPU, so that all of the DUT's receive work runs on the DUT core.
	// By default they stay in softirq, which runs on the core that
	// scheduled them: the DUT's ingress NAPI (its XDP program, the AF_XDP
	// rx copy, and all the work of in-kernel DUTs) then runs on the
	// generator's core, inline with the generator. That default is how
	// the reference numbers were taken; threaded mode suffers from
	// cross-core wakeup latency on veth's 256-entry ring (see
	// bench/scripts/compare.sh).
	ThreadedNAPI bool
	// NAPIFIFO (with ThreadedNAPI) runs the DUT's NAPI threads at
	// SCHED_FIFO priority, as softirq work of a NIC interrupt bound to the
	// DUT core would run; otherwise they compete with the DUT's threads as
	// ordinary threads.
	NAPIFIFO bool
	// Ready bounds the wait for the DUT to start forwarding (default 20 s).
	Ready time.Duration
	// During, if set, runs during the measurement window (profiling).
	During func(ctx context.Context)
}

func (c *Config) defaults() {
	if c.Flows <= 0 {
		c.Flows = 1
	}
	if c.FrameLen < 60 {
		c.FrameLen = 60
	}
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = 500 * time.Millisecond
	}
	if c.GenCPU == 0 && c.DUTCPU == 0 {
		c.DUTCPU = 1
	}
	if c.Ready <= 0 {
		c.Ready = 20 * time.Second
	}
}

// Result is the outcome of one run.
type Result struct {
	Name      string
	Flows     int
	Offered   uint64  // frames the generator transmitted in the window
	Delivered uint64  // frames the sink counted in the window
	Seconds   float64 // window length
	// Drops says where offered frames were lost in the window: DUTRing:
	// the DUT's ingress veth ring was full (generator xdp_xmit errors);
	// DUTIn: dropped by the DUT's ingress NAPI (e.g. AF_XDP rx ring full
	// or fill ring empty); DUTOut: tx drops of the DUT's egress veth;
	// SinkIn: the sink's ring was full.
	Drops struct{ DUTRing, DUTIn, DUTOut, SinkIn uint64 }
	// DUTCPU is the CPU time the DUT consumed in the window (its threads,
	// processes and veth NAPI threads; softirq work is not seen), so
	// NsPerFrame is the DUT's cost per delivered frame even when other
	// work shares the machine.
	DUTCPU time.Duration
	// Load is the 1-minute load average when the window opened: other
	// work on the machine makes the numbers meaningless.
	Load float64
}

// Mpps is the delivered rate in millions of frames per second.
func (r Result) Mpps() float64 { return float64(r.Delivered) / r.Seconds / 1e6 }

// NsPerFrame is the DUT's CPU time per delivered frame.
func (r Result) NsPerFrame() float64 {
	if r.Delivered == 0 {
		return 0
	}
	return float64(r.DUTCPU.Nanoseconds()) / float64(r.Delivered)
}

// OfferedMpps is the generator's rate.
func (r Result) OfferedMpps() float64 { return float64(r.Offered) / r.Seconds / 1e6 }

// Loss is the fraction of offered frames not delivered.
func (r Result) Loss() float64 {
	if r.Offered == 0 || r.Delivered >= r.Offered {
		return 0
	}
	return 1 - float64(r.Delivered)/float64(r.Offered)
}

func (r Result) String() string {
	return fmt.Sprintf("%-14s flows=%-5d %6.3f Mpps  offered %6.3f Mpps  loss %5.1f%%  DUT cpu %.2fs = %.0f ns/frame (drops: dut-ring %d, dut-in %d, dut-out %d, sink-in %d; load %.1f)",
		r.Name, r.Flows, r.Mpps(), r.OfferedMpps(), 100*r.Loss(), r.DUTCPU.Seconds(), r.NsPerFrame(),
		r.Drops.DUTRing, r.Drops.DUTIn, r.Drops.DUTOut, r.Drops.SinkIn, r.Load)
}

// UDPFrame builds the benchmark frame: Ethernet gen->sink, IPv4
// 198.18.0.1 -> 198.18.1.2, UDP 1024 -> 9 with a zero checksum, padded to
// length n.
func (t *Topology) UDPFrame(n int) []byte {
	f := make([]byte, n)
	copy(f[0:], t.SinkMAC[:])
	copy(f[6:], t.GenMAC[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(n-14))
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:], GenIP[:])
	copy(ip[16:], SinkIP[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 1024)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(n-34))
	return f
}

// Run measures dut on the topology. The sink and generator are set up and
// torn down around the DUT.
func (t *Topology) Run(ctx context.Context, name string, dut DUT, cfg Config) (res Result, err error) {
	cfg.defaults()
	res = Result{Name: name, Flows: cfg.Flows}
	defer boostAutogroup(BenchNice)()

	var sink *xdp.Sink
	if err := Do(t.Sink, -1, func() error {
		var err error
		sink, err = xdp.AttachSink(t.SinkIndex, xdp.ModeNative)
		return err
	}); err != nil {
		return res, fmt.Errorf("bench: sink: %w", err)
	}
	defer sink.Close()
	// veth refuses threaded NAPI until it has a NAPI (XDP or GRO): the
	// sink's exists now, the DUT's once it runs (see pin).
	if err := SetThreadedNAPI(t.Sink, t.SinkIf, true); err != nil {
		return res, fmt.Errorf("bench: threaded NAPI on the sink: %w", err)
	}
	gen, err := xdp.NewGenerator(cfg.Flows, 1024)
	if err != nil {
		return res, err
	}
	defer gen.Close()

	// The generator transmits with ndo_xdp_xmit, which veth accepts only
	// when the peer has NAPI: an XDP program (AF_XDP DUTs) or GRO. GRO on
	// the DUT's ingress gives every DUT a NAPI there.
	if err := nsRun(t.DUT, "ethtool", "-K", t.InIf, "gro", "on"); err != nil {
		return res, fmt.Errorf("bench: GRO on the DUT ingress: %w", err)
	}
	defer nsRun(t.DUT, "ethtool", "-K", t.InIf, "gro", "off")

	dctx, cancelDUT := context.WithCancel(context.WithValue(ctx, nsKey{}, t.DUT))
	defer cancelDUT()
	dutErr := make(chan error, 1)
	go func() {
		dutErr <- Do(t.DUT, cfg.DUTCPU, func() error { return dut(dctx, t.InIf, t.OutIf) })
	}()

	var sent atomic.Uint64
	var genStop atomic.Bool
	var genWG sync.WaitGroup
	genErr := make(chan error, 1)
	genWG.Add(1)
	go func() {
		defer genWG.Done()
		frame := t.UDPFrame(cfg.FrameLen)
		const chunk = 1 << 16
		genErr <- Do(t.Gen, cfg.GenCPU, func() error {
			for !genStop.Load() {
				if err := gen.Run(frame, t.GenIndex, chunk); err != nil {
					return err
				}
				sent.Add(chunk)
			}
			return nil
		})
	}()
	stopGen := func() error {
		genStop.Store(true)
		genWG.Wait()
		return <-genErr
	}
	defer func() {
		if genStop.Load() {
			return
		}
		if gerr := stopGen(); gerr != nil && err == nil {
			err = gerr
		}
	}()

	count := func() uint64 {
		p, _, _ := sink.Count()
		return p
	}
	// Wait until the DUT forwards.
	deadline := time.Now().Add(cfg.Ready)
	last := count()
	for {
		select {
		case err := <-dutErr:
			return res, fmt.Errorf("bench: DUT %s stopped before the measurement: %w", name, err)
		case err := <-genErr:
			genErr <- err // for stopGen
			return res, fmt.Errorf("bench: generator stopped: %w", err)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		c := count()
		if c-last > 1000 {
			break
		}
		last = c
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: DUT %s did not forward within %v (sink saw %d frames, generator sent %d)",
				name, cfg.Ready, c, sent.Load())
		}
	}
	t.pin(cfg)
	time.Sleep(cfg.Warmup)
	t.pin(cfg) // NAPI threads created late (e.g. by OVS reconfiguring)

	var mctx context.Context
	var mcancel context.CancelFunc = func() {}
	if cfg.During != nil {
		mctx, mcancel = context.WithTimeout(ctx, cfg.Duration)
		go cfg.During(mctx)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &res.Load)
	}
	c0 := t.dropCounters()
	cpu0 := t.dutCPUTime()
	s0, d0, t0 := sent.Load(), count(), time.Now()
	select {
	case err := <-dutErr:
		mcancel()
		return res, fmt.Errorf("bench: DUT %s stopped during the measurement: %w", name, err)
	case <-time.After(cfg.Duration):
	}
	s1, d1, t1 := sent.Load(), count(), time.Now()
	cpu1 := t.dutCPUTime()
	c1 := t.dropCounters()
	res.DUTCPU = time.Duration(cpu1 - cpu0)
	mcancel()
	res.Drops.DUTRing, res.Drops.DUTIn = c1[0]-c0[0], c1[1]-c0[1]
	res.Drops.DUTOut, res.Drops.SinkIn = c1[2]-c0[2], c1[3]-c0[3]
	res.Offered, res.Delivered, res.Seconds = s1-s0, d1-d0, t1.Sub(t0).Seconds()

	if err := stopGen(); err != nil {
		return res, err
	}
	cancelDUT()
	select {
	case err := <-dutErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			return res, fmt.Errorf("bench: DUT %s: %w", name, err)
		}
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("bench: DUT %s did not stop", name)
	}
	return res, nil
}

// pin sets the DUT's veth NAPIs threaded or not (Config.ThreadedNAPI)
// and places NAPI threads: the DUT's on DUTCPU, the sink's (SCHED_FIFO)
// and generator's on GenCPU.
func (t *Topology) pin(cfg Config) {
	// Fails only if the DUT has no NAPI on that end.
	SetThreadedNAPI(t.DUT, t.InIf, cfg.ThreadedNAPI)
	SetThreadedNAPI(t.DUT, t.OutIf, cfg.ThreadedNAPI)
	// The DUT's NAPI threads run at real-time priority on the DUT core, as
	// softirq work of a NIC whose interrupt is bound to that core would:
	// they preempt the DUT's user threads whenever frames arrive.
	var fifo uint32
	if cfg.NAPIFIFO {
		fifo = 40
	}
	PinNAPI(t.InIf, cfg.DUTCPU, fifo)
	PinNAPI(t.OutIf, cfg.DUTCPU, fifo)
	// The sink shares the generator's core; real-time priority makes sure
	// it drains its ring before the generator runs again, so the sink is
	// never what limits a measurement.
	PinNAPI(t.SinkIf, cfg.GenCPU, 50)
	PinNAPI(t.GenIf, cfg.GenCPU, 0)
}

// dropCounters reads the counters behind Result.Drops, in its order.
func (t *Topology) dropCounters() [4]uint64 {
	var c [4]uint64
	c[0] = ethtoolStat(t.Gen, t.GenIf, "tx_queue_0_xdp_xmit_errors")
	c[1] = ethtoolStat(t.DUT, t.InIf, "rx_queue_0_drops")
	out, _ := exec.Command("ip", "netns", "exec", t.DUT, "cat", "/sys/class/net/"+t.OutIf+"/statistics/tx_dropped").Output()
	fmt.Sscan(string(out), &c[2])
	c[3] = ethtoolStat(t.Sink, t.SinkIf, "rx_queue_0_drops")
	return c
}

func ethtoolStat(ns, ifname, name string) uint64 {
	out, err := exec.Command("ip", "netns", "exec", ns, "ethtool", "-S", ifname).Output()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == name {
			var n uint64
			fmt.Sscan(strings.TrimSpace(v), &n)
			return n
		}
	}
	return 0
}
