package bench

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticReport has one frame size, two flow counts and five DUTs with
// round rates (Mpps = Delivered / 1e6 over a 1 s window); ovs at 1000
// flows failed.
func syntheticReport() *Report {
	mpps := map[string][2]float64{ // 1 flow, 1000 flows
		"afxdp":  {4, 3},
		"bridge": {1, 0.8},
		"ovs":    {2, 0},
		"xvs":    {3, 2.4},
		// xvs-xdp absent: no run at all
	}
	r := &Report{
		Machine: Machine{CPU: "Synthetic CPU @ 1 GHz", Cores: 2, Kernel: "6.1.0-test", OVS: "ovs-vswitchd (Open vSwitch) 3.1.0",
			LoadStart: [3]float64{1.5, 1, 0.5}, LoadEnd: [3]float64{2.25, 1, 0.5}},
		Settings: Settings{Duration: time.Second, Warmup: 500 * time.Millisecond, DUTCPU: 1,
			DUTs: []string{"afxdp", "bridge", "ovs", "xvs", "xvs-xdp"}, FrameSizes: []int{64}, Flows: []int{1, 1000}},
		Started:  time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC),
		Finished: time.Date(2026, 11, 23, 6, 1, 0, 0, time.UTC),
	}
	for i, f := range []int{1, 1000} {
		for _, d := range []string{"afxdp", "bridge", "ovs", "xvs"} {
			run := Run{DUT: d, FrameSize: 64, Flows: f, XDPMode: "native"}
			if d == "bridge" {
				run.XDPMode = "none"
			}
			v := mpps[d][i]
			if v == 0 {
				run.Err = "bench: DUT ovs did not forward | badly"
			} else {
				run.Result = Result{Name: d, Flows: f, Offered: 5e6, Delivered: uint64(v * 1e6), Seconds: 1, DUTCPU: time.Second, Load: 1.25}
			}
			r.Runs = append(r.Runs, run)
		}
	}
	return r
}

func TestReportRatios(t *testing.T) {
	r := syntheticReport()
	for _, c := range []struct {
		dut, ref string
		flows    int
		want     float64
		ok       bool
	}{
		{"xvs", "ovs", 1, 1.5, true},
		{"xvs", "bridge", 1000, 3, true},
		{"xvs", "afxdp", 1000, 0.8, true},
		{"xvs", "ovs", 1000, 0, false},       // ovs failed
		{"xvs-xdp", "ovs", 1, 0, false},      // never ran
		{"xvs", "xdp-redirect", 1, 0, false}, // not in the sweep
	} {
		got, ok := r.Ratio(c.dut, c.ref, 64, c.flows)
		if ok != c.ok || (ok && (got < c.want-1e-9 || got > c.want+1e-9)) {
			t.Errorf("Ratio(%s, %s, %d) = %v, %v; want %v, %v", c.dut, c.ref, c.flows, got, ok, c.want, c.ok)
		}
	}
	if n := r.Failures(); n != 1 {
		t.Errorf("Failures = %d, want 1", n)
	}
}

func TestReportMarkdown(t *testing.T) {
	md := syntheticReport().Markdown()
	for _, want := range []string{
		"| CPU | Synthetic CPU @ 1 GHz |",
		"| cores | 2 |",
		"| kernel | 6.1.0-test |",
		"| Open vSwitch | ovs-vswitchd (Open vSwitch) 3.1.0 |",
		"| load average at start (1/5/15 min) | 1.50 1.00 0.50 |",
		"| load average at end (1/5/15 min) | 2.25 1.00 0.50 |",
		"native (afxdp, ovs, xvs); none (bridge)",
		"**The machine was loaded**",
		"## 64-byte frames",
		"| DUT | 1 flow | 1000 flows |",
		"| afxdp | 4.000 Mpps, 20.0% loss | 3.000 Mpps, 40.0% loss |",
		"| ovs | 2.000 Mpps, 60.0% loss | failed |",
		"| xvs-xdp | | |",
		"| xvs / ovs | 1.50 | - |",
		"| xvs / bridge | 3.00 | 3.00 |",
		"| xvs / afxdp (userspace ceiling) | 0.75 | 0.80 |",
		"![throughput, 64-byte frames](throughput-64.svg)",
		"| ovs | 64 | 1000 | | | | | | native | | bench: DUT ovs did not forward \\| badly |",
		"| xvs | 64 | 1 | 3.000 | 5.000 | 40.0% | 333 | 0/0/0/0 | native | 1.25 | |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// No ratios for subjects or references that were not in the sweep.
	for _, bad := range []string{"xvs-xdp /", "xdp-redirect (kernel ceiling)"} {
		if strings.Contains(md, bad) {
			t.Errorf("report.md has %q", bad)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

// checkSVG parses an SVG document and returns its text contents.
func checkSVG(t *testing.T, b []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	var root string
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, b)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
				if e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("SVG namespace %q", e.Name.Space)
				}
			}
			inText = e.Name.Local == "text"
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return texts
}

func checkPNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	if got := img.Bounds().Size(); got != image.Pt(ChartWidth, ChartHeight) {
		t.Fatalf("PNG is %v, want %dx%d", got, ChartWidth, ChartHeight)
	}
	return img
}

// hasColor reports whether img has at least n pixels of colour c.
func hasColor(img image.Image, r, g, b uint8, n int) bool {
	count := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if uint8(pr>>8) == r && uint8(pg>>8) == g && uint8(pb>>8) == b {
				if count++; count >= n {
					return true
				}
			}
		}
	}
	return false
}

func TestThroughputCharts(t *testing.T) {
	r := syntheticReport()
	var svg, pngb bytes.Buffer
	if err := r.ThroughputSVG(&svg, 64); err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(checkSVG(t, svg.Bytes()), "|")
	for _, want := range []string{"Throughput, 64-byte frames", "Mpps delivered", "DUT", "afxdp", "xvs-xdp", "1 flow", "1000 flows", "4.00", "n/a"} {
		if !strings.Contains(texts, want) {
			t.Errorf("SVG text lacks %q: %s", want, texts)
		}
	}
	// 7 measured bars in the two series colours.
	if n := strings.Count(svg.String(), `fill="#4477aa"`); n != 4+1 { // 4 bars + legend swatch
		t.Errorf("%d elements in the 1-flow colour, want 5", n)
	}
	if n := strings.Count(svg.String(), `fill="#ee6677"`); n != 3+1 {
		t.Errorf("%d elements in the 1000-flow colour, want 4", n)
	}
	if err := r.ThroughputPNG(&pngb, 64); err != nil {
		t.Fatal(err)
	}
	img := checkPNG(t, pngb.Bytes())
	if !hasColor(img, 0x44, 0x77, 0xaa, 1000) || !hasColor(img, 0xee, 0x66, 0x77, 1000) {
		t.Error("PNG lacks the bars of both series")
	}
	if !hasColor(img, 0x20, 0x20, 0x20, 500) {
		t.Error("PNG lacks axes and text")
	}
}

func TestChartsEmpty(t *testing.T) {
	// A report with no runs (a sweep cancelled at once) still renders.
	r := &Report{}
	var svg, pngb bytes.Buffer
	if err := r.ThroughputSVG(&svg, 64); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg.Bytes())
	if err := r.ThroughputPNG(&pngb, 64); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, pngb.Bytes())
}

func TestWriteFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := syntheticReport()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"results.json", "report.md", "throughput-64.svg", "throughput-64.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if !strings.Contains(string(js), `"Mpps": 3`) || !strings.Contains(string(js), `"FrameSize": 64`) {
		t.Errorf("results.json lacks derived or run fields:\n%s", js)
	}
	back, err := ReadReport(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Markdown() != r.Markdown() {
		t.Errorf("report from results.json renders differently:\n%s\n---\n%s", back.Markdown(), r.Markdown())
	}
}

func TestTimeline(t *testing.T) {
	// 1 s at 10 kpps in 10 ms buckets, with 50 ms lost after a link
	// failure at 400 ms.
	var s []Sample
	for i := range 100 {
		pps := 10000.0
		if i >= 40 && i < 45 {
			pps = 0
		}
		s = append(s, Sample{T: time.Duration(i) * 10 * time.Millisecond, PPS: pps})
	}
	tl := Timeline{Title: "Bond failover", Samples: s, Marks: []Mark{{T: 400 * time.Millisecond, Label: "link down"}}}
	if got := tl.Outage(0.5); got != 50*time.Millisecond {
		t.Errorf("Outage = %v, want 50ms", got)
	}
	var svg, pngb bytes.Buffer
	if err := tl.SVG(&svg); err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(checkSVG(t, svg.Bytes()), "|")
	for _, want := range []string{"Bond failover (outage ~50ms)", "time (ms)", "received kpps", "link down", "400"} {
		if !strings.Contains(texts, want) {
			t.Errorf("timeline SVG text lacks %q: %s", want, texts)
		}
	}
	if err := tl.PNG(&pngb); err != nil {
		t.Fatal(err)
	}
	img := checkPNG(t, pngb.Bytes())
	if !hasColor(img, 0xcc, 0x33, 0x11, 50) {
		t.Error("PNG lacks the event mark")
	}
	dir := t.TempDir()
	if err := WriteFailoverChart(dir, "failover", "Bond failover", s); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"failover.svg", "failover.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ max, top, step float64 }{
		{3.7, 4, 1}, {0.42, 0.5, 0.1}, {12, 15, 5}, {0, 1, 0.2}, {1, 1, 0.2},
	} {
		top, step := niceScale(c.max, 5)
		if top != c.top || step != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.max, top, step, c.top, c.step)
		}
	}
	if got := tickLabel(0.30000000000000004, 0.1); got != "0.3" {
		t.Errorf("tickLabel = %q", got)
	}
}

func TestProgressBar(t *testing.T) {
	if got := progressBar(12, 36, 10); got != "[###.......]" {
		t.Errorf("progressBar = %q", got)
	}
	if got := progressBar(36, 36, 10); got != "[##########]" {
		t.Errorf("progressBar = %q", got)
	}
}

func TestParseCPUInfo(t *testing.T) {
	in := "processor\t: 0\nmodel name\t: Example CPU\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: Example CPU\n"
	model, n := parseCPUInfo(strings.NewReader(in))
	if model != "Example CPU" || n != 2 {
		t.Errorf("parseCPUInfo = %q, %d", model, n)
	}
}

func TestCompareConfigValidation(t *testing.T) {
	for _, cfg := range []CompareConfig{
		{DUTs: []string{"nosuch"}},
		{FrameSizes: []int{9000}},
		{Flows: []int{0}},
	} {
		if err := cfg.defaults(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	var cfg CompareConfig
	if err := cfg.defaults(); err != nil || len(cfg.DUTs) != len(CompareDUTs) {
		t.Errorf("zero config: %v, %+v", err, cfg)
	}
}
