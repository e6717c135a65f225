package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"xvs/lab"
)

// stateRoot holds one directory per lab topology: topo.json (lab.Topo)
// and xvsd/ (database, sockets, pidfile, log).
const stateRoot = "/run/xvs-lab/topo"

func stateDir(kind string) string { return filepath.Join(stateRoot, kind) }
func topoFile(kind string) string { return filepath.Join(stateDir(kind), "topo.json") }
func xvsdDir(kind string) string  { return filepath.Join(stateDir(kind), "xvsd") }
func prefixOf(kind string) string { return lab.NamePrefix + kind } // "xvsseed"
func knownKind(kind string) bool  { return slices.Contains(lab.Kinds, kind) }
func kindList() string            { return strings.Join(lab.Kinds, ", ") }
func badKind(kind string) error   { return fmt.Errorf("unknown topology %q (want %s)", kind, kindList()) }
func section(title string)        { fmt.Printf("\n==> %s\n", title) }
func needRoot() error {
	if ok, why := lab.Available(); !ok {
		return fmt.Errorf("lab commands need root and network namespaces: %s (try sudo)", why)
	}
	return nil
}

// parse parses flags placed before or after positional arguments and
// returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

type labFlags struct {
	xvsd     string
	hosts    int
	dur      time.Duration
	pings    int
	noIperf  bool
	iperfUDP bool
}

func runLab(ctx context.Context, verb string, args []string) error {
	var f labFlags
	fs := flag.NewFlagSet("xvs lab "+verb, flag.ContinueOnError)
	fs.StringVar(&f.xvsd, "xvsd", "", "xvsd binary (default: build ./cmd/xvsd)")
	fs.IntVar(&f.hosts, "hosts", 0, "upstream hosts of the bond topology (default 4)")
	fs.DurationVar(&f.dur, "time", 3*time.Second, "duration of each iperf3 run")
	fs.IntVar(&f.pings, "pings", 5, "echo requests per path")
	fs.BoolVar(&f.noIperf, "no-iperf", false, "ping only")
	fs.BoolVar(&f.iperfUDP, "iperf-udp", false, "UDP flood with iperf3 -u -l 18 -b 0 instead of the built-in sender")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if verb == "status" && len(pos) == 0 {
		return statusAll()
	}
	if len(pos) != 1 {
		return errUsage
	}
	kind := pos[0]
	if !knownKind(kind) {
		return badKind(kind)
	}
	if err := needRoot(); err != nil {
		return err
	}
	// One xvs at a time per lab: changes must not race, and concurrent
	// traffic runs would share iperf3 ports and spoil each other's numbers.
	if verb != "status" {
		unlock, err := lock(kind)
		if err != nil {
			return err
		}
		defer unlock()
	}
	switch verb {
	case "up":
		_, _, err := up(ctx, kind, f)
		return err
	case "down":
		return down(kind)
	case "status":
		return status(kind, true)
	case "traffic":
		return traffic(ctx, kind, f)
	case "demo":
		return demo(ctx, kind, f)
	}
	return errUsage
}

// lock takes the topology's lock file, waiting for other xvs processes.
func lock(kind string) (func(), error) {
	if err := os.MkdirAll(stateRoot, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(stateRoot, kind+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Printf("another xvs is using lab %s; waiting\n", kind)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
	}
	return func() { f.Close() }, nil
}

// health reports why a saved lab is not usable ("" when it is).
func health(t *lab.Topo) string {
	if _, ok := t.XvsdPid(); !ok {
		return "xvsd is not running"
	}
	for _, ns := range t.Spaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			return "namespace " + ns + " is missing"
		}
	}
	if _, err := t.Xvsd.Vsctl("show"); err != nil {
		return "ovs-vsctl cannot talk to xvsd: " + err.Error()
	}
	return ""
}

// up builds the lab, or leaves a healthy one as it is; a broken or
// half-built one is torn down and rebuilt.
func up(ctx context.Context, kind string, f labFlags) (t *lab.Topo, built bool, err error) {
	if t, err := lab.LoadTopo(topoFile(kind)); err == nil {
		why := health(t)
		if why == "" {
			fmt.Printf("lab %s is already up (xvs lab down %s removes it)\n", kind, kind)
			printHosts(t)
			return t, false, nil
		}
		fmt.Printf("lab %s is broken (%s): rebuilding\n", kind, why)
		t.Close()
	}
	if err := teardown(kind); err != nil {
		return nil, false, err
	}
	bin, err := findXvsd(f.xvsd)
	if err != nil {
		return nil, false, err
	}
	l, err := lab.Start(prefixOf(kind))
	if err != nil {
		return nil, false, err
	}
	fmt.Printf("building lab %s (namespaces %s-*, xvsd %s)\n", kind, l.Prefix, bin)
	start := time.Now()
	t, err = lab.Build(kind, l, lab.TopoOptions{Xvsd: bin, Dir: xvsdDir(kind), Hosts: f.hosts, Log: prefixWriter("  ")})
	if err == nil {
		err = t.Save(topoFile(kind))
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		printTail(filepath.Join(xvsdDir(kind), "xvsd.out"), filepath.Join(xvsdDir(kind), "xvsd.log"))
		if terr := teardown(kind); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, false, err
	}
	fmt.Printf("lab %s is up (%.1f s)\n", kind, time.Since(start).Seconds())
	printHosts(t)
	return t, true, nil
}

// teardown removes the lab whatever state it is in.
func teardown(kind string) error {
	err := lab.Teardown(prefixOf(kind), xvsdDir(kind))
	if err == nil {
		err = os.RemoveAll(stateDir(kind))
	}
	return err
}

func down(kind string) error {
	_, statErr := os.Stat(stateDir(kind))
	if err := teardown(kind); err != nil {
		return err
	}
	if statErr != nil {
		fmt.Printf("lab %s was not up; cleaned any leftovers\n", kind)
	} else {
		fmt.Printf("lab %s is down\n", kind)
	}
	return nil
}

func printHosts(t *lab.Topo) {
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNAMESPACE\tADDRESS\tWHERE")
	for _, h := range t.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, h.NS, h.Addr, h.Note)
	}
	tw.Flush()
	if len(t.Paths) > 0 {
		p := t.Paths[0]
		if from, to := t.Host(p.From), t.Host(p.To); from != nil && to != nil {
			fmt.Printf("try: sudo ip netns exec %s ping %s    (xvs appctl --lab %s fdb/show %s)\n", from.NS, to.IP(), t.Kind, t.Bridges[0])
		}
	}
}

func loadUp(kind string) (*lab.Topo, error) {
	t, err := lab.LoadTopo(topoFile(kind))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("lab %s is not up (run: xvs lab up %s)", kind, kind)
		}
		return nil, err
	}
	if why := health(t); why != "" {
		t.Close()
		return nil, fmt.Errorf("lab %s is broken: %s (run: xvs lab up %s)", kind, why, kind)
	}
	return t, nil
}

func status(kind string, verbose bool) error {
	t, err := lab.LoadTopo(topoFile(kind))
	if err != nil {
		if leftovers(kind) {
			fmt.Printf("%s: BROKEN: leftovers of an interrupted build (xvs lab down %s removes them)\n", kind, kind)
		} else {
			fmt.Printf("%s: down\n", kind)
		}
		return nil
	}
	defer t.Close()
	pid, _ := t.XvsdPid()
	if why := health(t); why != "" {
		fmt.Printf("%s: BROKEN: %s (xvs lab up %s rebuilds, xvs lab down %s removes)\n", kind, why, kind, kind)
		return nil
	}
	fmt.Printf("%s: up, xvsd pid %d in %s, %d namespaces %s-*, files in %s\n", kind, pid, t.NodeNS, len(t.Spaces), t.Prefix, t.Dir)
	if verbose {
		printHosts(t)
		out, _ := t.Xvsd.Vsctl("show")
		fmt.Print(out)
	}
	return nil
}

// leftovers reports whether namespaces or a state directory of the lab
// exist.
func leftovers(kind string) bool {
	if _, err := os.Stat(stateDir(kind)); err == nil {
		return true
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefixOf(kind)+"-") {
			return true
		}
	}
	return false
}

func statusAll() error {
	for _, k := range lab.Kinds {
		if err := status(k, false); err != nil {
			return err
		}
	}
	return nil
}

func traffic(ctx context.Context, kind string, f labFlags) error {
	t, err := loadUp(kind)
	if err != nil {
		return err
	}
	defer t.Close()
	res, terr := t.Traffic(ctx, lab.TrafficOptions{Pings: f.pings, Duration: f.dur, NoIperf: f.noIperf, IperfUDP: f.iperfUDP, Log: os.Stdout})
	section("summary: lab " + kind)
	lab.WriteSummary(os.Stdout, res)
	counters(t)
	if terr != nil {
		return terr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Println("\nPASS: every path behaved as expected")
	return nil
}

// counters prints the daemon's view: datapath counters and bonds.
func counters(t *lab.Topo) {
	show := func(args ...string) {
		section("ovs-appctl " + strings.Join(args, " "))
		out, err := t.Xvsd.Appctl(args...)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(out)
	}
	show("dpif/show")
	section("interface counters (ovs-vsctl list Interface: statistics)")
	if st, err := t.InterfaceStats(); err != nil {
		fmt.Println(err)
	} else {
		lab.WriteIfaceStats(os.Stdout, st)
	}
	show("coverage/show")
	if len(t.Bonds) > 0 {
		show("bond/show")
	}
}

func demo(ctx context.Context, kind string, f labFlags) error {
	section("xvs lab up " + kind)
	t, built, err := up(ctx, kind, f)
	if err != nil {
		return err
	}
	if t.Xvsd != nil {
		section("ovs-vsctl show")
		out, _ := t.Xvsd.Vsctl("show")
		fmt.Print(out)
	}
	t.Release() // the lab stays up for traffic
	var terr error
	if ctx.Err() == nil {
		section("xvs lab traffic " + kind)
		terr = traffic(ctx, kind, f)
	}
	if !built {
		fmt.Printf("\nlab %s was up before this demo: leaving it up (xvs lab down %s)\n", kind, kind)
		return terr
	}
	section("xvs lab down " + kind)
	if err := down(kind); err != nil {
		return errors.Join(terr, err)
	}
	if terr == nil {
		terr = ctx.Err()
	}
	return terr
}

// prefixWriter indents each write (one line per write) on stdout.
type prefixWriter string

func (p prefixWriter) Write(b []byte) (int, error) {
	fmt.Print(string(p) + string(b))
	return len(b), nil
}

// labTarget resolves --lab: the named lab, or the only one that is up.
func labTarget(name string) (*lab.Topo, error) {
	if name != "" {
		if !knownKind(name) {
			return nil, badKind(name)
		}
		return lab.LoadTopo(topoFile(name))
	}
	var found []string
	for _, k := range lab.Kinds {
		if _, err := os.Stat(topoFile(k)); err == nil {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return lab.LoadTopo(topoFile(found[0]))
	}
	return nil, fmt.Errorf("several labs are up (%s): pick one with --lab", strings.Join(found, ", "))
}

// passthrough runs prog with args, wired to the terminal.
func passthrough(prog string, args ...string) error {
	cmd := exec.Command(prog, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		return err
	}
	return nil
}

// leadingFlags takes --lab NAME / --lab=NAME (and --db for show) off the
// front of args, leaving the rest for the wrapped tool untouched.
func leadingFlags(args []string, names ...string) (map[string]string, []string, error) {
	got := map[string]string{}
	for len(args) > 0 {
		a := args[0]
		matched := false
		for _, n := range names {
			if v, ok := strings.CutPrefix(a, "--"+n+"="); ok {
				got[n], args, matched = v, args[1:], true
			} else if a == "--"+n {
				if len(args) < 2 {
					return nil, nil, fmt.Errorf("--%s needs a value", n)
				}
				got[n], args, matched = args[1], args[2:], true
			}
			if matched {
				break
			}
		}
		if !matched {
			break
		}
	}
	return got, args, nil
}

func runShow(args []string) error {
	fl, rest, err := leadingFlags(args, "lab", "db")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errUsage
	}
	db := fl["db"]
	if db == "" {
		t, err := labTarget(fl["lab"])
		if err != nil {
			return err
		}
		if t != nil {
			db = "unix:" + t.Xvsd.Sock
		}
	}
	if db == "" {
		return passthrough("ovs-vsctl", "show")
	}
	return passthrough("ovs-vsctl", "--db="+db, "show")
}

func runVsctl(args []string) error {
	fl, rest, err := leadingFlags(args, "lab")
	if err != nil {
		return err
	}
	t, err := labTarget(fl["lab"])
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("no lab is up (xvs lab up seed), or call ovs-vsctl directly")
	}
	return passthrough("ovs-vsctl", append([]string{"--db=unix:" + t.Xvsd.Sock}, rest...)...)
}

func runAppctl(args []string) error {
	fl, rest, err := leadingFlags(args, "lab")
	if err != nil {
		return err
	}
	t, err := labTarget(fl["lab"])
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("no lab is up (xvs lab up seed), or call ovs-appctl -t SOCKET directly")
	}
	if len(rest) == 0 {
		rest = []string{"list-commands"}
	}
	return passthrough("ovs-appctl", append([]string{"-t", t.Xvsd.Ctl}, rest...)...)
}

// printTail shows the end of the daemon's output and log (before teardown
// removes them).
func printTail(paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Printf("--- last lines of %s:\n%s\n", p, strings.Join(lines, "\n"))
	}
}
