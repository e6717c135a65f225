package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"xvs/bench"
)

// runBench implements `xvs bench compare` (measure every DUT on one netns
// topology and write results.json, report.md and charts) and `xvs bench
// report` (re-render a stored results.json).
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "compare":
		fs := flag.NewFlagSet("compare", flag.ContinueOnError)
		duts := fs.String("duts", strings.Join(bench.CompareDUTs, ","), "datapaths to measure")
		sizes := fs.String("sizes", "64,512,1518", "frame sizes on the wire (bytes, with FCS)")
		flows := fs.String("flows", "1,1000", "UDP flow counts (1..1000000; source and destination ports vary)")
		dur := fs.Duration("duration", 3*time.Second, "measurement window per run")
		out := fs.String("out", "xvs-bench", "directory for results.json, report.md and the charts")
		if err := fs.Parse(args[1:]); err != nil {
			return errUsage
		}
		cfg := bench.CompareConfig{DUTs: splitList(*duts), Duration: *dur, OutDir: *out, Progress: os.Stderr}
		var err error
		if cfg.FrameSizes, err = ints(*sizes); err != nil {
			return err
		}
		if cfg.Flows, err = ints(*flows); err != nil {
			return err
		}
		rep, err := bench.Compare(ctx, cfg)
		if rep != nil {
			fmt.Print(rep.Markdown())
			fmt.Printf("\nwritten to %s/ (results.json, report.md, throughput-*.svg/png)\n", *out)
		}
		if err != nil {
			return err
		}
		if n := rep.Failures(); n > 0 {
			return fmt.Errorf("%d runs failed (see report.md)", n)
		}
		return nil
	case "report":
		if len(args) < 2 {
			return errUsage
		}
		fs := flag.NewFlagSet("report", flag.ContinueOnError)
		out := fs.String("out", ".", "output directory")
		if err := fs.Parse(args[2:]); err != nil {
			return errUsage
		}
		rep, err := bench.ReadReport(args[1])
		if err != nil {
			return err
		}
		fmt.Print(rep.Markdown())
		return rep.WriteFiles(*out)
	}
	return errUsage
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}
