// Command xvsd is the xvs daemon: it serves the Open_vSwitch database
// (RFC 7047) and runs the userspace datapath it describes, managed with
// the real ovs-vsctl and ovs-appctl.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"xvs/daemon"
	"xvs/ovsdb"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var remotes multi
	db := flag.String("db", "/etc/openvswitch/conf.db", "database file (created with the schema when missing)")
	schema := flag.String("schema", "", "schema file to create the database with (default: built-in Open_vSwitch schema)")
	flag.Var(&remotes, "remote", "OVSDB listener punix:PATH or ptcp:PORT[:IP] (repeatable; default punix:/var/run/openvswitch/db.sock)")
	unixctl := flag.String("unixctl", "", "management socket for ovs-appctl (default /var/run/openvswitch/ovs-vswitchd.PID.ctl)")
	pidfile := flag.String("pidfile", "", "write the process id to this file (default /var/run/openvswitch/ovs-vswitchd.pid with the default --unixctl, so plain ovs-appctl finds xvsd)")
	logFile := flag.String("log-file", "", "log to this file instead of stderr (reopened on SIGHUP)")
	metrics := flag.String("metrics", "", "serve Prometheus metrics on [HOST]:PORT (loopback unless HOST is given; off by default)")
	verbose := flag.String("verbose", "info", "log level: debug, info, warn, error")
	pollers := flag.Int("pollers", 1, "number of fast-path poller threads")
	cpus := flag.String("cpus", "", "comma-separated CPUs to pin pollers to")
	flag.Parse()

	if len(remotes) == 0 {
		remotes = multi{"punix:/var/run/openvswitch/db.sock"}
	}
	if *unixctl == "" {
		// ovs-appctl without -t reads ovs-vswitchd.pid and connects to
		// ovs-vswitchd.PID.ctl: answer there, as ovs-vswitchd does.
		*unixctl = fmt.Sprintf("/var/run/openvswitch/ovs-vswitchd.%d.ctl", os.Getpid())
		if *pidfile == "" {
			*pidfile = "/var/run/openvswitch/ovs-vswitchd.pid"
		}
	}
	switch strings.ToLower(*verbose) {
	case "debug", "dbg":
		daemon.Level.Set(slog.LevelDebug)
	case "warn":
		daemon.Level.Set(slog.LevelWarn)
	case "error", "err":
		daemon.Level.Set(slog.LevelError)
	}
	logw := &reopener{path: *logFile}
	if err := logw.reopen(); err != nil {
		fmt.Fprintln(os.Stderr, "xvsd:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: daemon.Level}))
	slog.SetDefault(log)

	cfg := daemon.Config{DB: *db, Remotes: remotes, Unixctl: *unixctl, Pidfile: *pidfile, Log: log, Pollers: *pollers, Metrics: *metrics}
	if *cpus != "" {
		for _, c := range strings.Split(*cpus, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil {
				fmt.Fprintln(os.Stderr, "xvsd: bad --cpus:", err)
				os.Exit(1)
			}
			cfg.CPUs = append(cfg.CPUs, n)
		}
	}
	if *schema != "" {
		data, err := os.ReadFile(*schema)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xvsd:", err)
			os.Exit(1)
		}
		s, err := ovsdb.ParseSchema(data)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xvsd: schema:", err)
			os.Exit(1)
		}
		cfg.Schema = s
	}
	for _, r := range remotes {
		if p, ok := strings.CutPrefix(r, "punix:"); ok {
			_ = os.MkdirAll(dirOf(p), 0o755)
		}
	}
	_ = os.MkdirAll(dirOf(*unixctl), 0o755)
	_ = os.MkdirAll(dirOf(*db), 0o755)

	d, err := daemon.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xvsd:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := logw.reopen(); err != nil {
				log.Error("reopening log", "err", err)
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("xvsd", "err", err)
		os.Exit(1)
	}
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}
