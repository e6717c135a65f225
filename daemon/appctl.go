package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"time"

	"xvs/bond"
	"xvs/datapath"
	"xvs/flow"
)

// Level is the daemon's log level, changed by vlog/set.
var Level = new(slog.LevelVar)

// registerCommands installs the ovs-appctl commands xvsd understands.
func (d *Daemon) registerCommands() {
	c := d.ctl
	c.Register("vlog/set", "[module[:destination[:level]]]", 0, 8, d.cmdVlogSet)
	c.Register("vlog/list", "", 0, 0, func([]string) (string, error) {
		return fmt.Sprintf("                 console    syslog    file\n                 -------    ------    ------\nxvsd             %-10s %-9s %s\n",
			strings.ToLower(Level.Level().String()), "off", strings.ToLower(Level.Level().String())), nil
	})
	c.Register("dpif/show", "", 0, 0, d.cmdDpifShow)
	c.Register("dpctl/dump-flows", "[dp] [filter=..]", 0, 3, func([]string) (string, error) { return d.dp.DumpDPFlows(), nil })
	c.Register("dpctl/del-flows", "[dp]", 0, 1, func([]string) (string, error) { d.dp.FlushCache(); return "", nil })
	c.Register("fdb/show", "bridge", 1, 1, func(a []string) (string, error) { return d.dp.FDBShow(a[0]) })
	c.Register("fdb/flush", "[bridge]", 0, 1, func(a []string) (string, error) {
		br := ""
		if len(a) > 0 {
			br = a[0]
		}
		if err := d.dp.FDBFlush(br); err != nil {
			return "", err
		}
		return "table successfully flushed\n", nil
	})
	c.Register("ofproto/trace", "bridge br_flow", 2, 2, func(a []string) (string, error) { return d.dp.Trace(a[0], a[1]) })
	c.Register("ofctl/add-flow", "bridge flow", 2, 2, func(a []string) (string, error) { return "", d.dp.AddFlow(a[0], a[1]) })
	c.Register("ofctl/mod-flows", "bridge flow", 2, 2, func(a []string) (string, error) {
		_, err := d.dp.ModFlows(a[0], a[1], false)
		return "", err
	})
	c.Register("ofctl/del-flows", "bridge [flow]", 1, 2, func(a []string) (string, error) {
		f := ""
		if len(a) > 1 {
			f = a[1]
		}
		_, err := d.dp.DelFlows(a[0], f, false)
		return "", err
	})
	c.Register("ofctl/dump-flows", "bridge [flow]", 1, 2, func(a []string) (string, error) {
		f := ""
		if len(a) > 1 {
			f = a[1]
		}
		return d.dp.DumpFlows(a[0], f)
	})
	c.Register("coverage/show", "", 0, 0, d.cmdCoverage)
	c.Register("xvs/capture", "iface [count] [seconds] [rx|tx|both]", 1, 4, d.cmdCapture)
	c.Register("memory/show", "", 0, 0, d.cmdMemory)
	c.Register("bond/list", "", 0, 0, d.cmdBondList)
	c.Register("bond/show", "[port]", 0, 1, d.cmdBondShow)
	c.Register("bond/hash", "mac [vlan] [basis]", 1, 3, func(a []string) (string, error) {
		s, err := bond.HashCommand(a...)
		if err != nil {
			return "", err
		}
		return s + "\n", nil
	})
	memberCmd := func(f func(b *bond.Bond, member string) (string, error)) func([]string) (string, error) {
		return func(a []string) (string, error) {
			bs, err := d.bond(a[0])
			if err != nil {
				return "", err
			}
			s, err := f(bs.b, a[1])
			if err != nil {
				return "", err
			}
			d.poke()
			return s + "\n", nil
		}
	}
	for _, alias := range []string{"member", "slave"} {
		c.Register("bond/set-active-"+alias, "port "+alias, 2, 2, memberCmd((*bond.Bond).SetActiveMember))
		c.Register("bond/enable-"+alias, "port "+alias, 2, 2, memberCmd((*bond.Bond).EnableMember))
		c.Register("bond/disable-"+alias, "port "+alias, 2, 2, memberCmd((*bond.Bond).DisableMember))
	}
	c.Register("bond/migrate", "port hash member", 3, 3, func(a []string) (string, error) {
		bs, err := d.bond(a[0])
		if err != nil {
			return "", err
		}
		s, err := bs.b.Migrate(a[1], a[2])
		if err != nil {
			return "", err
		}
		return s + "\n", nil
	})
}

func (d *Daemon) bond(port string) (*bondState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	bs := d.bonds[port]
	if bs == nil {
		return nil, errors.New("no such bond")
	}
	return bs, nil
}

func (d *Daemon) cmdVlogSet(args []string) (string, error) {
	for _, a := range args {
		parts := strings.Split(a, ":")
		lvl := parts[len(parts)-1]
		switch strings.ToLower(lvl) {
		case "dbg", "debug":
			Level.Set(slog.LevelDebug)
		case "info":
			Level.Set(slog.LevelInfo)
		case "warn":
			Level.Set(slog.LevelWarn)
		case "err", "emer":
			Level.Set(slog.LevelError)
		case "off":
			Level.Set(slog.LevelError + 4)
		case "any", "console", "syslog", "file", "xvsd":
		default:
			return "", fmt.Errorf("unknown log level or module %q", lvl)
		}
	}
	return "", nil
}

func (d *Daemon) cmdDpifShow([]string) (string, error) {
	c := &d.dp.Counters
	hits := c.EMCHits.Load() + c.MegaHits.Load()
	var sb strings.Builder
	fmt.Fprintf(&sb, "netdev@xvs-netdev: hit:%d missed:%d\n", hits, c.Upcalls.Load())
	d.mu.Lock()
	defer d.mu.Unlock()
	byBridge := map[string][]datapath.Iface{}
	for _, i := range d.dp.Ifaces() {
		byBridge[i.Bridge] = append(byBridge[i.Bridge], i)
	}
	names := make([]string, 0, len(byBridge))
	for n := range byBridge {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, br := range names {
		fmt.Fprintf(&sb, "  %s:\n", br)
		for _, i := range byBridge[br] {
			of := flow.PortName(i.OfPort)
			if i.OfPort == flow.PortLocal {
				of = "65534"
			}
			if i.Patch != "" {
				fmt.Fprintf(&sb, "    %s %s/none: (patch: peer=%s)\n", i.Name, of, i.Patch)
				continue
			}
			kind := "system"
			if st := d.ifaces[i.Name]; st != nil {
				kind = st.driver
				if st.mode != "" {
					kind += ": xdp-mode=" + st.mode
				}
			}
			fmt.Fprintf(&sb, "    %s %s/%d: (%s)\n", i.Name, of, i.DPPort, kind)
		}
	}
	return sb.String(), nil
}

func (d *Daemon) cmdCoverage([]string) (string, error) {
	c := &d.dp.Counters
	flows, subs, limit := d.dp.CacheStats()
	var sb strings.Builder
	fmt.Fprintf(&sb, "Event coverage (totals since start):\n")
	row := func(name string, v uint64) { fmt.Fprintf(&sb, "%-28s total: %d\n", name, v) }
	row("datapath_emc_hit", c.EMCHits.Load())
	row("datapath_megaflow_hit", c.MegaHits.Load())
	row("datapath_upcall", c.Upcalls.Load())
	row("datapath_upcall_not_installed", c.UpcallNoIns.Load())
	row("datapath_clone", c.Clones.Load())
	row("datapath_drop_no_port", c.NoPort.Load())
	for r := flow.DropReason(1); r < flow.NumDropReasons; r++ {
		row("datapath_drop_parse_"+r.String(), c.Parse[r].Load())
	}
	fmt.Fprintf(&sb, "megaflows: %d in %d subtables (limit %d)\n", flows, subs, limit)
	return sb.String(), nil
}

func (d *Daemon) cmdMemory([]string) (string, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	flows, _, _ := d.dp.CacheStats()
	d.mu.Lock()
	ports := len(d.ifaces)
	d.mu.Unlock()
	macs := 0
	for _, br := range d.dp.Bridges() {
		macs += len(d.dp.MACs(br))
	}
	return fmt.Sprintf("handlers:0 idl-cells:%d megaflows:%d ofconns:0 ports:%d mac_entries:%d heap_bytes:%d\n",
		0, flows, ports, macs, ms.HeapAlloc), nil
}

func (d *Daemon) cmdBondList([]string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.bonds))
	for n := range d.bonds {
		names = append(names, n)
	}
	sort.Strings(names)
	s := strings.TrimSuffix(bond.ListHeader, "\n") + "\n"
	for _, n := range names {
		s += d.bonds[n].b.List()
	}
	return s, nil
}

func (d *Daemon) cmdBondShow(a []string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(a) == 1 {
		bs := d.bonds[a[0]]
		if bs == nil {
			return "", errors.New("no such bond")
		}
		return bs.b.Show(timeNow()), nil
	}
	names := make([]string, 0, len(d.bonds))
	for n := range d.bonds {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += d.bonds[n].b.Show(timeNow())
	}
	return s, nil
}

var timeNow = time.Now
