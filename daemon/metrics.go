package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"xvs/flow"
)

// Prometheus metrics. Everything is read at scrape time from the counters
// the datapath keeps anyway, so metrics cost nothing on the packet path.

var (
	mPortPackets = prometheus.NewDesc("xvs_port_packets_total", "Packets received (rx) or sent (tx) by the datapath on an interface.", []string{"bridge", "port", "interface", "dir"}, nil)
	mPortBytes   = prometheus.NewDesc("xvs_port_bytes_total", "Bytes received (rx) or sent (tx) by the datapath on an interface.", []string{"bridge", "port", "interface", "dir"}, nil)
	mPortDrops   = prometheus.NewDesc("xvs_port_dropped_total", "Frames dropped by the device (rx: kernel ring full; tx: could not send).", []string{"bridge", "port", "interface", "dir"}, nil)
	mDrops       = prometheus.NewDesc("xvs_datapath_drops_total", "Frames the datapath dropped, by reason.", []string{"reason"}, nil)
	mCache       = prometheus.NewDesc("xvs_cache_lookups_total", "Packets by the cache level that decided them: emc, megaflow, or upcall (slow path).", []string{"level"}, nil)
	mUpcallSec   = prometheus.NewDesc("xvs_upcall_seconds_total", "Time spent translating upcalls (divide by the upcall count for the mean latency).", nil, nil)
	mMegaflows   = prometheus.NewDesc("xvs_megaflows", "Installed megaflows.", nil, nil)
	mMACs        = prometheus.NewDesc("xvs_mac_table_entries", "MAC learning table size.", []string{"bridge"}, nil)
	mBondMember  = prometheus.NewDesc("xvs_bond_member_enabled", "1 when a bond member is enabled.", []string{"bond", "member"}, nil)
	mBondActive  = prometheus.NewDesc("xvs_bond_member_active", "1 for the bond's active member.", []string{"bond", "member"}, nil)
	mBondLoad    = prometheus.NewDesc("xvs_bond_member_load_bytes", "Bytes per member summed over its SLB buckets (rebalancing's view, decayed).", []string{"bond", "member"}, nil)
	mOVSDBTxn    = prometheus.NewDesc("xvs_ovsdb_commits_total", "Committed OVSDB transactions seen by the daemon.", nil, nil)
	mOVSDBConns  = prometheus.NewDesc("xvs_ovsdb_clients", "Connected OVSDB (JSON-RPC) clients.", nil, nil)
)

type collector struct{ d *Daemon }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mPortPackets, mPortBytes, mPortDrops, mDrops, mCache, mUpcallSec, mMegaflows, mMACs, mBondMember, mBondActive, mBondLoad, mOVSDBTxn, mOVSDBConns} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	dp := d.dp
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	for _, i := range dp.Ifaces() {
		if i.DPPort == 0 {
			continue
		}
		st, ok := dp.PortStats(i.Name)
		if !ok {
			continue
		}
		counter(mPortPackets, st.RxPackets, i.Bridge, i.Port, i.Name, "rx")
		counter(mPortPackets, st.TxPackets, i.Bridge, i.Port, i.Name, "tx")
		counter(mPortBytes, st.RxBytes, i.Bridge, i.Port, i.Name, "rx")
		counter(mPortBytes, st.TxBytes, i.Bridge, i.Port, i.Name, "tx")
		d.mu.Lock()
		is := d.ifaces[i.Name]
		d.mu.Unlock()
		if is != nil && is.dev != nil {
			ds := is.dev.Stats()
			counter(mPortDrops, ds.RxDropped, i.Bridge, i.Port, i.Name, "rx")
			counter(mPortDrops, ds.TxDropped+st.TxDropped, i.Bridge, i.Port, i.Name, "tx")
		}
	}
	cs := &dp.Counters
	for r := flow.DropReason(1); r < flow.NumDropReasons; r++ {
		counter(mDrops, cs.Parse[r].Load(), "parse_"+r.String())
	}
	counter(mDrops, cs.NoPort.Load(), "no_port")
	counter(mCache, cs.EMCHits.Load(), "emc")
	counter(mCache, cs.MegaHits.Load(), "megaflow")
	counter(mCache, cs.Upcalls.Load(), "upcall")
	ch <- prometheus.MustNewConstMetric(mUpcallSec, prometheus.CounterValue, float64(cs.UpcallNanos.Load())/1e9)
	flows, _, _ := dp.CacheStats()
	gauge(mMegaflows, float64(flows))
	for _, br := range dp.Bridges() {
		gauge(mMACs, float64(len(dp.MACs(br))), br)
	}
	d.mu.Lock()
	bonds := make([]*bondState, 0, len(d.bonds))
	for _, bs := range d.bonds {
		bonds = append(bonds, bs)
	}
	d.mu.Unlock()
	for _, bs := range bonds {
		st := bs.b.Status()
		loads := bs.b.Loads()
		perMember := map[uint32]uint64{}
		for h := range loads {
			if m, ok := bs.b.Member(uint8(h)); ok {
				perMember[m] += loads[h]
			}
		}
		for _, m := range st.Members {
			gauge(mBondMember, b2f(m.Enabled), bs.port, m.Name)
			gauge(mBondActive, b2f(m.Active), bs.port, m.Name)
			gauge(mBondLoad, float64(perMember[m.OfPort]), bs.port, m.Name)
		}
	}
	counter(mOVSDBTxn, d.commits.Load())
	if d.srv != nil {
		gauge(mOVSDBConns, float64(d.srv.Clients()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics serves /metrics on addr until ctx ends. A bare port or an
// address without a host listens on loopback only.
func (d *Daemon) serveMetrics(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if _, perr := strconv.Atoi(addr); perr != nil {
			return fmt.Errorf("metrics address %q: want [HOST]:PORT", addr)
		}
		host, port = "", addr
	}
	if host == "" {
		host = "127.0.0.1"
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	d.metricsAddr = ln.Addr().String()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Warn("metrics server", "err", err)
		}
	}()
	d.log.Info("metrics", "addr", d.metricsAddr)
	return nil
}
