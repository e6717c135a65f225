package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// CompareDUTs names the DUTs Compare knows, in the order reports list
// them: the userspace ceiling, the kernel references, Open vSwitch, then
// xvs without and with its in-kernel flow tier.
var CompareDUTs = []string{"afxdp", "bridge", "xdp-redirect", "ovs", "xvs", "xvs-xdp"}

// BondDUTs are the DUTs whose output side is a balance-slb bond (see
// bond_dut.go); Compare accepts them by name.
var BondDUTs = []string{"ovs-bond", "xvs-bond", "xvs-xdp-bond"}

// ErrUnknownDUT is returned (wrapped) by Compare for a DUT name that is
// not in CompareDUTs.
var ErrUnknownDUT = errors.New("bench: unknown DUT")

// compareDUT maps a name from CompareDUTs to its DUT, configured as the
// comparison runs it.
func compareDUT(name string) (DUT, error) {
	switch name {
	case "afxdp":
		return AFXDP(AFXDPConfig{}), nil
	case "bridge":
		return Bridge, nil
	case "xdp-redirect":
		return XDPRedirect, nil
	case "ovs":
		return OVS(OVSConfig{PortFlows: true}), nil
	case "xvs":
		return XVS(XVSConfig{}), nil
	case "xvs-xdp":
		return XVS(XVSConfig{Offload: true}), nil
	case "ovs-bond":
		return OVS(OVSConfig{Bond: true}), nil
	case "xvs-bond":
		return XVS(XVSConfig{Bond: true}), nil
	case "xvs-xdp-bond":
		return XVS(XVSConfig{Bond: true, Offload: true}), nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownDUT, name, strings.Join(CompareDUTs, ", "))
}

// CompareConfig is a comparison sweep. The zero value runs every DUT with
// 64-byte frames and 1 and 1000 flows for 3 s each, writing nothing.
type CompareConfig struct {
	DUTs       []string      // names from CompareDUTs; default all of them
	FrameSizes []int         // wire sizes with FCS, 64..1518; default {64}
	Flows      []int         // UDP flow counts; default {1, 1000}
	Duration   time.Duration // measurement window per run; default 3 s
	Warmup     time.Duration // per run, after traffic flows; default 500 ms
	// ThreadedNAPI is Config.ThreadedNAPI for every run.
	ThreadedNAPI bool
	// OutDir, if set, receives results.json, report.md and the charts
	// (see Report.WriteFiles); it is created if needed.
	OutDir string
	// Progress, if set, receives a progress bar line per run and its
	// outcome.
	Progress io.Writer
}

func (c *CompareConfig) defaults() error {
	if len(c.DUTs) == 0 {
		c.DUTs = CompareDUTs
	}
	if len(c.FrameSizes) == 0 {
		c.FrameSizes = []int{64}
	}
	if len(c.Flows) == 0 {
		c.Flows = []int{1, 1000}
	}
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = 500 * time.Millisecond
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	for _, name := range c.DUTs {
		if _, err := compareDUT(name); err != nil {
			return err
		}
	}
	for _, s := range c.FrameSizes {
		// veth's 1500-byte MTU bounds frames at 1514 bytes (1518 on the
		// wire); the IPv4/UDP frame needs 60.
		if s < 64 || s > 1518 {
			return fmt.Errorf("bench: frame size %d outside 64..1518", s)
		}
	}
	for _, f := range c.Flows {
		if f < 1 || f > 1000000 {
			return fmt.Errorf("bench: flow count %d outside 1..1000000", f)
		}
	}
	return nil
}

// Compare builds one topology and measures every combination of frame
// size, flow count and DUT in sequence: frame sizes outermost, then flow
// counts, then DUTs, so that the runs a table row compares are taken
// close together in time (and load). A run that fails is recorded in the
// report with its error and the sweep goes on. The error result is
// reserved for a bad configuration, a lab that cannot be built, ctx
// ending (the report then holds the runs done so far) and failure to
// write OutDir; the report is returned whenever it holds anything.
func Compare(ctx context.Context, cfg CompareConfig) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{
		Machine: Facts(),
		Settings: Settings{
			Duration: cfg.Duration, Warmup: cfg.Warmup,
			GenCPU: 0, DUTCPU: 1, ThreadedNAPI: cfg.ThreadedNAPI,
			DUTs: cfg.DUTs, FrameSizes: cfg.FrameSizes, Flows: cfg.Flows,
		},
		Started: time.Now().UTC(),
	}
	tp, err := NewTopology()
	if err != nil {
		return nil, fmt.Errorf("bench: lab: %w", err)
	}
	defer tp.Close()

	total := len(cfg.FrameSizes) * len(cfg.Flows) * len(cfg.DUTs)
	n := 0
	var ctxErr error
sweep:
	for _, size := range cfg.FrameSizes {
		for _, flows := range cfg.Flows {
			for _, name := range cfg.DUTs {
				if ctxErr = ctx.Err(); ctxErr != nil {
					break sweep
				}
				n++
				fmt.Fprintf(cfg.Progress, "%s %d/%d %s %dB %s: ", progressBar(n-1, total, 20), n, total, name, size, flowsLabel(flows))
				run := compareRun(ctx, tp, name, size, flows, cfg)
				rep.Runs = append(rep.Runs, run)
				if run.Err != "" {
					fmt.Fprintf(cfg.Progress, "error: %s\n", run.Err)
				} else {
					fmt.Fprintf(cfg.Progress, "%.3f Mpps, loss %.1f%%, load %.1f\n", run.Result.Mpps(), 100*run.Result.Loss(), run.Result.Load)
				}
			}
		}
	}
	fmt.Fprintf(cfg.Progress, "%s %d/%d done\n", progressBar(n, total, 20), n, total)
	rep.Finished = time.Now().UTC()
	rep.Machine.LoadEnd = loadAvg()
	if cfg.OutDir != "" {
		if err := rep.WriteFiles(cfg.OutDir); err != nil {
			return rep, err
		}
	}
	return rep, ctxErr
}

// compareRun measures one combination and notes the XDP mode attached to
// the DUT's ingress veth during the window.
func compareRun(ctx context.Context, tp *Topology, name string, size, flows int, cfg CompareConfig) Run {
	run := Run{DUT: name, FrameSize: size, Flows: flows}
	dut, err := compareDUT(name)
	if err != nil {
		run.Err = err.Error()
		return run
	}
	var mu sync.Mutex // guards mode, written by the During goroutine
	mode := ""
	rc := Config{
		Flows: flows, FrameLen: size - 4, Duration: cfg.Duration, Warmup: cfg.Warmup,
		ThreadedNAPI: cfg.ThreadedNAPI,
		During: func(context.Context) {
			m := attachedXDP(tp.DUT, tp.InIf)
			mu.Lock()
			mode = m
			mu.Unlock()
		},
	}
	res, err := tp.Run(ctx, name, dut, rc)
	mu.Lock()
	run.XDPMode = mode
	mu.Unlock()
	if err != nil {
		run.Err = err.Error()
		return run
	}
	run.Result = res
	return run
}

// attachedXDP reports which XDP attachment ip-link shows on ifname in
// namespace ns: "native", "generic", "offload", "none", or "" if unknown.
func attachedXDP(ns, ifname string) string {
	out, err := exec.Command("ip", "-n", ns, "link", "show", "dev", ifname).Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		switch f {
		case "xdp", "xdpdrv":
			return "native"
		case "xdpgeneric":
			return "generic"
		case "xdpoffload":
			return "offload"
		case "xdpmulti":
			return "multi"
		}
	}
	return "none"
}

// progressBar draws done out of total as [####......].
func progressBar(done, total, width int) string {
	k := 0
	if total > 0 {
		k = done * width / total
	}
	return "[" + strings.Repeat("#", k) + strings.Repeat(".", width-k) + "]"
}

// Facts collects the machine description of a report, with the load
// average now as LoadStart.
func Facts() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		model, cpus := parseCPUInfo(f)
		f.Close()
		m.CPU = model
		if cpus > 0 {
			m.Cores = cpus
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := exec.Command("ovs-vswitchd", "--version").Output(); err == nil {
		m.OVS, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	} else {
		m.OVS = "not available: " + err.Error()
	}
	return m
}

// parseCPUInfo returns the first model name and the number of processors
// listed in /proc/cpuinfo text.
func parseCPUInfo(r io.Reader) (model string, cpus int) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			cpus++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return model, cpus
}

// loadAvg reads the 1, 5 and 15 minute load averages.
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, f := range bytes.Fields(b) {
		if i == 3 {
			break
		}
		l[i], _ = strconv.ParseFloat(string(f), 64)
	}
	return l
}
