package bench

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"testing"
)

var (
	flagReportOut      = flag.String("report.out", "", "run TestCompareReport, writing the report into this directory")
	flagReportDUTs     = flag.String("report.duts", strings.Join(CompareDUTs, ","), "DUTs for TestCompareReport")
	flagReportSizes    = flag.String("report.sizes", "64", "frame sizes (on the wire) for TestCompareReport")
	flagReportFlows    = flag.String("report.flows", "1,1000", "flow counts for TestCompareReport")
	flagReportDuration = flag.Duration("report.duration", 0, "measurement window per run (default 3s)")
)

func atois(t *testing.T, s string) []int {
	var v []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("bad number list %q: %v", s, err)
		}
		v = append(v, n)
	}
	return v
}

// TestCompareReport runs a Compare sweep and writes its report. It is the
// engine of bench/scripts/report.sh and runs only with -report.out.
func TestCompareReport(t *testing.T) {
	if *flagReportOut == "" {
		t.Skip("set -report.out=DIR (see bench/scripts/report.sh)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for netns, veth and XDP")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := Compare(ctx, CompareConfig{
		DUTs:       strings.Split(*flagReportDUTs, ","),
		FrameSizes: atois(t, *flagReportSizes),
		Flows:      atois(t, *flagReportFlows),
		Duration:   *flagReportDuration,
		OutDir:     *flagReportOut,
		Progress:   os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Failures(); n > 0 {
		t.Errorf("%d of %d runs failed (see %s/report.md)", n, len(rep.Runs), *flagReportOut)
	}
}
