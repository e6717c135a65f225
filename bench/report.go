package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a Compare sweep: what was measured, where, and
// under which load. It is plain data: results.json is its JSON encoding,
// and ReadReport followed by WriteFiles renders a stored sweep again.
type Report struct {
	Machine  Machine
	Settings Settings
	Started  time.Time
	Finished time.Time
	Runs     []Run
}

// Machine describes the host a report was measured on.
type Machine struct {
	CPU    string // model name from /proc/cpuinfo
	Cores  int
	Kernel string // uname -r
	OVS    string // first line of ovs-vswitchd --version
	Go     string
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages
	// when the sweep began and ended. The machine is shared: a load near
	// or above Cores means other work competed with the runs.
	LoadStart, LoadEnd [3]float64
}

// Settings are the sweep's parameters as run.
type Settings struct {
	Duration, Warmup time.Duration
	GenCPU, DUTCPU   int
	ThreadedNAPI     bool
	DUTs             []string
	FrameSizes       []int
	Flows            []int
}

// Run is one measurement of the sweep.
type Run struct {
	DUT       string
	FrameSize int // on the wire, with FCS (the frame is 4 bytes shorter)
	Flows     int
	// XDPMode is the XDP attachment seen on the DUT's ingress veth during
	// the window: "native", "generic", "none" (in-kernel DUTs without
	// XDP), or "" if it could not be read.
	XDPMode string
	Result  Result // zero when Err is set
	Err     string `json:",omitempty"`
}

// OK reports whether the run produced a measurement.
func (r Run) OK() bool { return r.Err == "" && r.Result.Seconds > 0 }

// MarshalJSON adds the derived rates to the stored counters, for readers
// of results.json that do not recompute them.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run // without this method
	d := struct {
		plain
		Mpps, OfferedMpps, Loss, NsPerFrame float64
	}{plain: plain(r)}
	if r.OK() {
		d.Mpps, d.OfferedMpps, d.Loss, d.NsPerFrame = r.Result.Mpps(), r.Result.OfferedMpps(), r.Result.Loss(), r.Result.NsPerFrame()
	}
	return json.Marshal(d)
}

// ReadReport loads a results.json written by WriteFiles.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return &r, nil
}

// Failures counts the runs that produced no measurement.
func (r *Report) Failures() int {
	n := 0
	for _, run := range r.Runs {
		if !run.OK() {
			n++
		}
	}
	return n
}

// Find returns the run of dut at that frame size and flow count.
func (r *Report) Find(dut string, frameSize, flows int) (Run, bool) {
	for _, run := range r.Runs {
		if run.DUT == dut && run.FrameSize == frameSize && run.Flows == flows {
			return run, true
		}
	}
	return Run{}, false
}

// Ratio is the delivered rate of dut over that of ref at the same frame
// size and flow count; ok is false unless both ran and ref delivered.
func (r *Report) Ratio(dut, ref string, frameSize, flows int) (ratio float64, ok bool) {
	a, okA := r.Find(dut, frameSize, flows)
	b, okB := r.Find(ref, frameSize, flows)
	if !okA || !okB || !a.OK() || !b.OK() || b.Result.Delivered == 0 {
		return 0, false
	}
	return a.Result.Mpps() / b.Result.Mpps(), true
}

// axes returns the DUTs, frame sizes and flow counts present in the runs,
// in Settings order first, then in order of appearance.
func (r *Report) axes() (duts []string, sizes, flows []int) {
	duts = slices.Clone(r.Settings.DUTs)
	sizes = slices.Clone(r.Settings.FrameSizes)
	flows = slices.Clone(r.Settings.Flows)
	for _, run := range r.Runs {
		if !slices.Contains(duts, run.DUT) {
			duts = append(duts, run.DUT)
		}
		if !slices.Contains(sizes, run.FrameSize) {
			sizes = append(sizes, run.FrameSize)
		}
		if !slices.Contains(flows, run.Flows) {
			flows = append(flows, run.Flows)
		}
	}
	return duts, sizes, flows
}

// xdpModes summarises the XDP attachments seen, per mode the DUTs.
func (r *Report) xdpModes() string {
	byMode := map[string][]string{}
	var modes []string
	for _, run := range r.Runs {
		m := run.XDPMode
		if m == "" {
			m = "unknown"
		}
		if !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
		if !slices.Contains(byMode[m], run.DUT) {
			byMode[m] = append(byMode[m], run.DUT)
		}
	}
	var parts []string
	for _, m := range modes {
		parts = append(parts, fmt.Sprintf("%s (%s)", m, strings.Join(byMode[m], ", ")))
	}
	parts = append(parts, "sink: native")
	return strings.Join(parts, "; ")
}

// The DUTs whose ratios the report gives, and the references.
var (
	reportSubjects   = []string{"xvs", "xvs-xdp"}
	reportReferences = []struct{ name, label string }{
		{"ovs", "ovs"},
		{"bridge", "bridge"},
		{"afxdp", "afxdp (userspace ceiling)"},
		{"xdp-redirect", "xdp-redirect (kernel ceiling)"},
	}
)

func flowsLabel(n int) string {
	if n == 1 {
		return "1 flow"
	}
	return fmt.Sprintf("%d flows", n)
}

func fmtLoad(l [3]float64) string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// Markdown renders the report: machine facts and load, then per frame
// size a table of DUT x flows (Mpps and loss), the ratios of xvs and
// xvs-xdp to the references, and the chart; last every run in detail.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	duts, sizes, flows := r.axes()
	fmt.Fprintf(&b, "# xvs throughput comparison\n\n")
	fmt.Fprintf(&b, "Measured %s to %s; each run: %v window after %v warm-up; UDP frames from an XDP generator through the DUT into an XDP counting sink over veth.\n\n",
		r.Started.Format("2006-01-02 15:04:05 MST"), r.Finished.Format("15:04:05 MST"), r.Settings.Duration, r.Settings.Warmup)
	napi := "softirq (DUT ingress work runs on the generator core)"
	if r.Settings.ThreadedNAPI {
		napi = fmt.Sprintf("threaded, pinned to CPU %d", r.Settings.DUTCPU)
	}
	b.WriteString("| machine | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"CPU", m.CPU},
		{"cores", fmt.Sprint(m.Cores)},
		{"kernel", m.Kernel},
		{"Open vSwitch", m.OVS},
		{"Go", m.Go},
		{"XDP mode (DUT ingress)", r.xdpModes()},
		{"placement", fmt.Sprintf("generator + sink CPU %d, DUT CPU %d, DUT veth NAPI %s", r.Settings.GenCPU, r.Settings.DUTCPU, napi)},
		{"load average at start (1/5/15 min)", fmtLoad(m.LoadStart)},
		{"load average at end (1/5/15 min)", fmtLoad(m.LoadEnd)},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], mdCell(kv[1]))
	}
	if m.Cores > 0 && (m.LoadStart[0] >= float64(m.Cores)/2 || m.LoadEnd[0] >= float64(m.Cores)/2) {
		fmt.Fprintf(&b, "\n**The machine was loaded** (load average %.2f at start, %.2f at end, on %d cores): other work competed with the runs, so absolute numbers are low and noisy. Compare DUTs within one table (measured back to back) rather than across reports; each run's own load is in the last table.\n",
			m.LoadStart[0], m.LoadEnd[0], m.Cores)
	}

	for _, size := range sizes {
		fmt.Fprintf(&b, "\n## %d-byte frames\n\n", size)
		b.WriteString("Delivered Mpps and loss (share of offered frames not delivered).\n\n| DUT |")
		for _, f := range flows {
			fmt.Fprintf(&b, " %s |", flowsLabel(f))
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(flows)) + "\n")
		for _, d := range duts {
			fmt.Fprintf(&b, "| %s |", d)
			for _, f := range flows {
				run, ok := r.Find(d, size, f)
				switch {
				case !ok:
					b.WriteString(" |")
				case !run.OK():
					b.WriteString(" failed |")
				default:
					fmt.Fprintf(&b, " %.3f Mpps, %.1f%% loss |", run.Result.Mpps(), 100*run.Result.Loss())
				}
			}
			b.WriteString("\n")
		}

		ran := func(dut string) bool {
			return slices.ContainsFunc(r.Runs, func(run Run) bool { return run.DUT == dut && run.FrameSize == size })
		}
		var rows []string
		for _, s := range reportSubjects {
			if !ran(s) {
				continue
			}
			for _, ref := range reportReferences {
				if !ran(ref.name) {
					continue
				}
				row := fmt.Sprintf("| %s / %s |", s, ref.label)
				for _, f := range flows {
					if x, ok := r.Ratio(s, ref.name, size, f); ok {
						row += fmt.Sprintf(" %.2f |", x)
					} else {
						row += " - |"
					}
				}
				rows = append(rows, row)
			}
		}
		if len(rows) > 0 {
			b.WriteString("\nRatios of delivered rates at equal flow count.\n\n| ratio |")
			for _, f := range flows {
				fmt.Fprintf(&b, " %s |", flowsLabel(f))
			}
			b.WriteString("\n|---|" + strings.Repeat("---:|", len(flows)) + "\n")
			b.WriteString(strings.Join(rows, "\n") + "\n")
		}
		fmt.Fprintf(&b, "\n![throughput, %d-byte frames](%s)\n", size, chartName(size, "svg"))
	}

	b.WriteString("\n## Runs\n\nDrops: DUT ingress ring full / DUT ingress NAPI / DUT egress / sink ring full. DUT ns/frame is the DUT's threads' CPU time per delivered frame (softirq work not included).\n\n")
	b.WriteString("| DUT | frame | flows | Mpps | offered Mpps | loss | DUT ns/frame | drops | XDP | load | error |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|\n")
	for _, run := range r.Runs {
		if !run.OK() {
			fmt.Fprintf(&b, "| %s | %d | %d | | | | | | %s | | %s |\n", run.DUT, run.FrameSize, run.Flows, run.XDPMode, mdCell(run.Err))
			continue
		}
		res := run.Result
		fmt.Fprintf(&b, "| %s | %d | %d | %.3f | %.3f | %.1f%% | %.0f | %d/%d/%d/%d | %s | %.2f | |\n",
			run.DUT, run.FrameSize, run.Flows, res.Mpps(), res.OfferedMpps(), 100*res.Loss(), res.NsPerFrame(),
			res.Drops.DUTRing, res.Drops.DUTIn, res.Drops.DUTOut, res.Drops.SinkIn, run.XDPMode, res.Load)
	}
	return b.String()
}

// chartName is the file name of the throughput chart of a frame size.
func chartName(frameSize int, ext string) string {
	return fmt.Sprintf("throughput-%d.%s", frameSize, ext)
}

// WriteFiles writes results.json, report.md and, per frame size,
// throughput-<size>.svg and .png into dir, creating it if needed.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.json": append(js, '\n'),
		"report.md":    []byte(r.Markdown()),
	}
	_, sizes, _ := r.axes()
	for _, size := range sizes {
		for ext, render := range map[string]func(io.Writer, int) error{"svg": r.ThroughputSVG, "png": r.ThroughputPNG} {
			var buf bytes.Buffer
			if err := render(&buf, size); err != nil {
				return err
			}
			files[chartName(size, ext)] = buf.Bytes()
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
