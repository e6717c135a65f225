package daemon

import (
	"errors"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"xvs/bond"
	"xvs/datapath"
)

// reconcile brings the running datapath in line with the database. It runs
// on the daemon's loop goroutine after every commit (and when a failed
// device may have appeared). Only differences are applied: ports whose
// configuration did not change are not touched, so their traffic never
// stops. Then cur_cfg is set to next_cfg so that `ovs-vsctl` returns.
func (d *Daemon) reconcile() {
	tables := d.snapshot()
	w := readConfig(tables)
	for _, p := range w.problems {
		d.log.Warn("configuration", "problem", p)
	}
	d.dp.SetCacheLimits(ocInt(w.otherConfig, "flow-limit", 0), time.Duration(ocInt(w.otherConfig, "max-idle", 0))*time.Millisecond)
	d.mu.Lock()
	d.apply(w)
	d.bridges = w.bridges
	d.mu.Unlock()
	d.writeBack(false)
	if w.haveOVS && w.nextCfg != w.curCfg {
		err := d.transact([]map[string]any{{"op": "update", "table": "Open_vSwitch", "where": whereUUID(w.ovsUUID),
			"row": map[string]any{"cur_cfg": w.nextCfg}}})
		if err != nil {
			d.log.Warn("setting cur_cfg", "err", err)
		}
	}
}

// apply performs the changes; caller holds d.mu.
func (d *Daemon) apply(w *wantConfig) {
	dp := d.dp
	// Which interface lives where, as wanted.
	type where struct {
		br *wantBridge
		p  *wantPort
		i  *wantIface
	}
	wantIf := map[string]where{}
	for _, wb := range w.bridges {
		for _, wp := range wb.ports {
			for _, wi := range wp.ifaces {
				wantIf[wi.name] = where{wb, wp, wi}
			}
		}
	}
	// The offload setting matters only through its effect on each port.
	for _, wh := range wantIf {
		if t := normalType(wh.i.typ); t == "system" || t == "afxdp" || t == "afxdp-nonpmd" {
			lt := ""
			if l, err := netlink.LinkByName(wh.i.name); err == nil {
				lt = l.Type()
			}
			on, _ := wantOffload(wh.i.offload, lt)
			wh.i.offloadOn = on
		}
	}
	// Devices to close: no longer wanted, or wanted differently.
	closing := map[string]*ifaceState{}
	for name, st := range d.ifaces {
		wh, ok := wantIf[name]
		if !ok || wh.i.deviceKey() != st.key || (st.err != "" && st.dev == nil) || st.vanished() {
			closing[name] = st
		}
	}
	// Remove bridges that are gone, and ports that are gone or lose a device.
	for name, old := range d.bridges {
		wb, ok := w.bridges[name]
		if !ok {
			if err := dp.DelBridge(name); err != nil {
				d.log.Warn("deleting bridge", "bridge", name, "err", err)
			}
			for pn := range old.ports {
				delete(d.bonds, pn)
			}
			continue
		}
		for pn, op := range old.ports {
			np, keep := wb.ports[pn]
			if keep {
				for _, oi := range op.ifaces {
					if _, c := closing[oi.name]; c {
						keep = false
					}
				}
				if keep && len(np.ifaces) < len(op.ifaces) {
					keep = true // SetPort drops the removed members in place
				}
			}
			if !keep {
				if np != nil {
					// Still wanted: only a device is reopened. Keep the
					// port and its MAC entries.
					if err := dp.SuspendPort(name, pn); err != nil && !errors.Is(err, datapath.ErrNotFound) {
						d.log.Warn("suspending port", "bridge", name, "port", pn, "err", err)
					}
				} else if err := dp.DelPort(name, pn); err != nil && !errors.Is(err, datapath.ErrNotFound) {
					d.log.Warn("deleting port", "bridge", name, "port", pn, "err", err)
				}
				delete(d.bonds, pn)
			}
		}
	}
	if len(closing) > 0 {
		dp.Quiesce()
		for name, st := range closing {
			st.close()
			delete(d.ifaces, name)
		}
	}
	// Bridges.
	have := map[string]bool{}
	for _, n := range dp.Bridges() {
		have[n] = true
	}
	for name, wb := range w.bridges {
		if !have[name] {
			if _, err := dp.AddBridge(name); err != nil {
				d.log.Warn("adding bridge", "bridge", name, "err", err)
				continue
			}
			d.log.Info("bridge added", "bridge", name)
		}
		size := ocInt(wb.otherConfig, "mac-table-size", datapath.DefaultMACTableSize)
		aging := ocInt(wb.otherConfig, "mac-aging-time", int(datapath.DefaultMACAgingTime/time.Second))
		_ = dp.SetMACLimits(name, size, time.Duration(aging)*time.Second)
		if old := d.bridges[name]; old == nil || !sameVLANs(old.floodVLANs, wb.floodVLANs) {
			_ = dp.SetFloodVLANs(name, wb.floodVLANs)
		}
	}
	// Devices to open.
	for name, wh := range wantIf {
		if st, ok := d.ifaces[name]; ok && st.dev != nil || ok && st.driver == "patch" {
			continue
		}
		st, err := d.openDevice(wh.i)
		if err != nil {
			st.err = err.Error()
			if prev, ok := d.ifaces[name]; !ok || prev.err != st.err {
				d.log.Warn("interface", "iface", name, "err", err)
			}
		} else if st.driver != "patch" {
			d.log.Info("interface opened", "iface", name, "driver", st.driver, "xdp-mode", st.mode, "fallback-reason", st.reason)
		}
		d.ifaces[name] = st
	}
	for name, wh := range wantIf {
		if st := d.ifaces[name]; st != nil {
			d.applyMTU(st, wh.i)
		}
	}
	// Ports.
	for bname, wb := range w.bridges {
		for pname, wp := range wb.ports {
			d.applyPort(bname, wb, pname, wp)
		}
	}
}

func sameVLANs(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// applyPort configures one port (caller holds d.mu).
func (d *Daemon) applyPort(bname string, wb *wantBridge, pname string, wp *wantPort) {
	dp := d.dp
	pc := datapath.PortConfig{Name: pname, Tag: wp.tag, Trunks: wp.trunks}
	if wp.vlanMode != "" {
		m, err := datapath.ParseVLANMode(wp.vlanMode)
		if err != nil {
			d.log.Warn("port", "port", pname, "err", err)
		} else {
			pc.Mode, pc.ModeSet = m, true
		}
	}
	if pt, err := datapath.ParsePriorityTags(wp.otherConfig["priority-tags"]); err == nil {
		pc.PriorityTags = pt
	}
	for _, wi := range wp.ifaces {
		st := d.ifaces[wi.name]
		if st == nil || (st.dev == nil && st.driver != "patch") {
			continue // not usable (error written back)
		}
		ic := datapath.InterfaceConfig{Name: wi.name, Device: st.dev}
		if wi.ofportRequest > 0 {
			ic.OfPortRequest = uint32(wi.ofportRequest)
		} else if wi.ofportHint > 0 && wi.ofportHint < 0xff00 {
			ic.OfPortHint = uint32(wi.ofportHint)
		}
		if st.driver == "patch" {
			ic.Peer = wi.options["peer"]
		}
		pc.Interfaces = append(pc.Interfaces, ic)
	}
	if len(pc.Interfaces) == 0 {
		if err := dp.DelPort(bname, pname); err != nil && !errors.Is(err, datapath.ErrNotFound) {
			d.log.Warn("deleting port", "port", pname, "err", err)
		}
		delete(d.bonds, pname)
		return
	}
	if len(pc.Interfaces) > 1 {
		b, err := d.configureBond(bname, wb, wp, pc.Interfaces)
		if err != nil {
			d.log.Warn("bond", "port", pname, "err", err)
			return
		}
		pc.Bond = b
	} else {
		delete(d.bonds, pname)
	}
	if err := dp.SetPort(bname, pc); err != nil {
		d.log.Warn("configuring port", "bridge", bname, "port", pname, "err", err)
	}
}

// configureBond creates or reconfigures the bond of a port with two or more
// usable interfaces.
func (d *Daemon) configureBond(bname string, wb *wantBridge, wp *wantPort, ics []datapath.InterfaceConfig) (*bond.Bond, error) {
	now := time.Now()
	cfg := bond.Config{Name: wp.name, Mode: bond.Mode(wp.bondMode), UpDelay: int(wp.updelay), DownDelay: int(wp.downdelay), LACP: wp.lacp}
	for _, warn := range cfg.ParseOtherConfig(wp.otherConfig) {
		d.log.Warn("bond", "port", wp.name, "warning", warn)
	}
	members := map[uint32]string{}
	for _, ic := range ics {
		req := ic.OfPortRequest
		if req == 0 {
			req = d.dp.FreeOfPort(bname, ic.Name, ic.OfPortHint)
		}
		of, err := d.dp.ReserveOfPort(bname, ic.Name, req)
		if err != nil {
			return nil, err
		}
		m := bond.Member{OfPort: of, Name: ic.Name, Up: linkUp(ic.Name)}
		if link, err := netlink.LinkByName(ic.Name); err == nil {
			copy(m.MAC[:], link.Attrs().HardwareAddr)
		}
		cfg.Members = append(cfg.Members, m)
		members[of] = ic.Name
	}
	if wp.activeSlave != "" {
		if hw, err := net.ParseMAC(wp.activeSlave); err == nil {
			copy(cfg.ActiveMAC[:], hw)
		}
	}
	bs := d.bonds[wp.name]
	if bs != nil && bs.bridge == bname {
		if err := bs.b.Reconfigure(cfg, now); err != nil {
			return nil, err
		}
	} else {
		b, err := bond.New(cfg, now)
		if err != nil {
			return nil, err
		}
		for _, w := range b.Warnings() {
			d.log.Warn("bond", "port", wp.name, "warning", w)
		}
		bs = &bondState{b: b, bridge: bname, port: wp.name, carrier: map[uint32]bool{}, ann: bond.NewAnnouncer(256, 65536)}
		d.bonds[wp.name] = bs
	}
	bs.members = members
	// Carrier changes are the bond's business: feed them through
	// SetCarrier (runBonds does the same), never just overwrite what the
	// poller compares against, or a change seen here would be lost.
	for of, name := range members {
		up := linkUp(name)
		if prev, ok := bs.carrier[of]; ok && prev != up {
			bs.b.SetCarrier(of, up, now)
		}
		bs.carrier[of] = up
	}
	for of := range bs.carrier {
		if _, ok := members[of]; !ok {
			delete(bs.carrier, of)
		}
	}
	return bs.b, nil
}

// linkUp reports whether a netdev has carrier (operationally up).
func linkUp(name string) bool {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false
	}
	a := link.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown || a.RawFlags&0x40 != 0 // IFF_RUNNING
}

// hasRetryable reports whether an interface failed in a way that may fix
// itself (its device may appear later).
func (d *Daemon) hasRetryable() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.ifaces {
		if st.dev == nil && st.driver != "patch" && st.err != "" || st.vanished() {
			return true
		}
	}
	return false
}
