package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"xvs/bond"
	"xvs/datapath"
	"xvs/ovsdb"
	"xvs/ovsdb/unixctl"
	"xvs/xdp"
)

// Version is xvs's version, reported in Open_vSwitch:ovs_version as the
// OVS release whose behaviour and schema xvs follows.
const (
	Version    = "0.1.0"
	OVSVersion = "3.1.0"
)

// Config is the daemon's configuration (from cmd/xvsd flags).
type Config struct {
	DB      string        // database file; created with Schema when missing
	Schema  *ovsdb.Schema // nil: the built-in Open_vSwitch schema
	Remotes []string      // punix:PATH, ptcp:PORT[:IP]
	Unixctl string        // management socket path
	Pidfile string
	Log     *slog.Logger
	// Pollers is the number of fast-path goroutines (default 1). Each is
	// locked to an OS thread; CPUs pins them (CPUs[i] for poller i).
	Pollers int
	CPUs    []int
	// Metrics, when set, serves Prometheus metrics on this address
	// (loopback unless a host is given).
	Metrics string
}

// Daemon runs the datapath from its database.
//
// Concurrency: one goroutine (loop) owns reconciliation and all maps
// below; the OVSDB server and unixctl handlers run on their own
// goroutines and reach the datapath through its own locking, or the loop
// through d.mu for the few maps appctl reads.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	db   *ovsdb.Database
	srv  *ovsdb.Server
	ctl  *unixctl.Server
	dp   *datapath.Datapath
	umem *xdp.UMEM
	// offload is the in-kernel flow tier shared by the AF_XDP ports
	// (created on first use).
	offload *xdp.Offload

	kick chan struct{}
	exit chan struct{}
	// link is poked by netlink link events (carrier changes), so bonds
	// fail over as soon as the kernel reports a member down.
	link chan struct{}

	mu      sync.Mutex // protects ifaces, bonds, bridges (read by appctl)
	ifaces  map[string]*ifaceState
	bonds   map[string]*bondState // by port name
	bridges map[string]*wantBridge
	cfgSeen int64

	written map[ovsdb.UUID]map[string]string // last write-back per row (JSON text per column)

	pidfile     *os.File      // held open: its fcntl lock marks us alive
	commits     atomic.Uint64 // OVSDB commits seen (metrics)
	metricsAddr string
}

// New opens the database and prepares the datapath; Run starts serving.
func New(cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Schema == nil {
		cfg.Schema = ovsdb.BuiltinSchema()
	}
	if cfg.Pollers <= 0 {
		cfg.Pollers = 1
	}
	db, err := ovsdb.Open(cfg.DB, cfg.Schema)
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", cfg.DB, err)
	}
	d := &Daemon{
		cfg: cfg, log: cfg.Log, db: db,
		dp:      datapath.New(datapath.Config{}),
		kick:    make(chan struct{}, 1),
		exit:    make(chan struct{}),
		link:    make(chan struct{}, 1),
		ifaces:  map[string]*ifaceState{},
		bonds:   map[string]*bondState{},
		bridges: map[string]*wantBridge{},
		written: map[ovsdb.UUID]map[string]string{},
	}
	return d, nil
}

// Datapath exposes the running datapath (tests, benchmarks).
func (d *Daemon) Datapath() *datapath.Datapath { return d.dp }

// Database exposes the database.
func (d *Daemon) Database() *ovsdb.Database { return d.db }

// Run serves until ctx is cancelled or `ovs-appctl exit` is called, then
// shuts down cleanly: XDP programs detached, TAP devices removed, the
// database closed.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.initRoot(); err != nil {
		return err
	}
	d.srv = ovsdb.NewServer(d.db)
	for _, r := range d.cfg.Remotes {
		if err := d.srv.Listen(r); err != nil {
			d.shutdown()
			return fmt.Errorf("listening on %s: %w", r, err)
		}
	}
	d.ctl = unixctl.New()
	d.ctl.SetVersion(fmt.Sprintf("xvsd (xvs) %s, Open vSwitch %s compatible", Version, OVSVersion))
	d.ctl.OnExit(func() {
		select {
		case <-d.exit:
		default:
			close(d.exit)
		}
	})
	d.registerCommands()
	if d.cfg.Unixctl != "" {
		if err := d.ctl.Listen(d.cfg.Unixctl); err != nil {
			d.shutdown()
			return fmt.Errorf("unixctl %s: %w", d.cfg.Unixctl, err)
		}
	}
	if d.cfg.Pidfile != "" {
		if err := d.writePidfile(); err != nil {
			d.log.Warn("writing pidfile", "path", d.cfg.Pidfile, "err", err)
		}
	}
	if d.cfg.Metrics != "" {
		if err := d.serveMetrics(ctx, d.cfg.Metrics); err != nil {
			d.shutdown()
			return fmt.Errorf("metrics: %w", err)
		}
	}
	cancelWatch := d.db.Watch(func(*ovsdb.Update) { d.commits.Add(1); d.poke() })
	defer cancelWatch()

	var wg sync.WaitGroup
	for i := 0; i < d.cfg.Pollers; i++ {
		p := d.dp.NewPoller(i, d.cfg.Pollers)
		cpu := -1
		if i < len(d.cfg.CPUs) {
			cpu = d.cfg.CPUs[i]
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx, cpu) }()
	}
	d.log.Info("xvsd started", "db", d.cfg.DB, "remotes", d.cfg.Remotes, "unixctl", d.cfg.Unixctl)
	d.reconcile()
	d.poke()

	d.watchLinks(ctx)
	fast := time.NewTicker(100 * time.Millisecond)
	reval := time.NewTicker(500 * time.Millisecond)
	stats := time.NewTicker(5 * time.Second)
	retry := time.NewTicker(2 * time.Second)
	defer fast.Stop()
	defer reval.Stop()
	defer stats.Stop()
	defer retry.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-d.exit:
			break loop
		case <-d.kick:
			d.reconcile()
		case <-d.link:
			d.runBonds()
		case <-fast.C:
			d.runBonds()
		case <-reval.C:
			d.dp.Revalidate()
		case <-retry.C:
			if d.hasRetryable() {
				d.reconcile()
			}
		case <-stats.C:
			d.writeBack(true)
		}
	}
	cancel()
	wg.Wait()
	d.shutdown()
	return err
}

func (d *Daemon) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Daemon) shutdown() {
	if d.ctl != nil {
		_ = d.ctl.Close()
	}
	if d.srv != nil {
		_ = d.srv.Close()
	}
	d.mu.Lock()
	for _, st := range d.ifaces {
		st.close()
	}
	d.ifaces = map[string]*ifaceState{}
	d.mu.Unlock()
	if d.cfg.Pidfile != "" && d.pidfile != nil {
		_ = os.Remove(d.cfg.Pidfile)
		d.pidfile.Close()
	}
	if err := d.db.Close(); err != nil {
		d.log.Warn("closing database", "err", err)
	}
	d.log.Info("xvsd stopped")
}

// initRoot makes sure the Open_vSwitch row exists (as `ovs-vsctl init`
// would) and records the versions and capabilities clients read.
func (d *Daemon) initRoot() error {
	tables := d.snapshot()
	ops := []map[string]any{}
	row := map[string]any{
		"ovs_version":    OVSVersion,
		"db_version":     d.cfg.Schema.Version,
		"datapath_types": ovsSet("netdev", "system"),
		"iface_types":    ovsSet("afxdp", "afxdp-nonpmd", "internal", "patch", "system"),
	}
	if len(tables["Open_vSwitch"]) == 0 {
		ops = append(ops, map[string]any{"op": "insert", "table": "Open_vSwitch", "row": row})
	} else {
		ops = append(ops, map[string]any{"op": "update", "table": "Open_vSwitch", "where": []any{}, "row": row})
	}
	return d.transact(ops)
}

var errDBFailed = errors.New("database transaction failed")

// bondState is a running bond.
type bondState struct {
	b      *bond.Bond
	bridge string
	port   string
	// members by ofport, for carrier polling and learning packets
	members map[uint32]string
	carrier map[uint32]bool
	ann     *bond.Announcer
}

// MetricsAddr is the address the metrics server listens on ("" when off).
func (d *Daemon) MetricsAddr() string { return d.metricsAddr }

// watchLinks subscribes to netlink link notifications (RTM_NEWLINK) and
// pokes the loop on every one: carrier changes reach the bonds in about a
// millisecond instead of at the next 100 ms poll, which remains as a
// safety net.
func (d *Daemon) watchLinks(ctx context.Context) {
	ch := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { d.log.Debug("netlink link events", "err", err) },
	})
	if err != nil {
		d.log.Warn("netlink link events unavailable; polling carrier every 100 ms", "err", err)
		return
	}
	go func() {
		<-ctx.Done()
		close(done)
	}()
	go func() {
		for range ch {
			select {
			case d.link <- struct{}{}:
			default:
			}
		}
	}()
}

// writePidfile writes the pid and keeps an fcntl write lock on the file for
// the daemon's lifetime: ovs-appctl (like every OVS tool) trusts a pidfile
// only while its owner holds that lock.
func (d *Daemon) writePidfile() error {
	f, err := os.OpenFile(d.cfg.Pidfile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		return fmt.Errorf("%s is locked by another process: %w", d.cfg.Pidfile, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return err
	}
	d.pidfile = f // closed (lock released) at shutdown
	return nil
}
