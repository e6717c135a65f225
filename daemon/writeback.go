package daemon

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"

	"xvs/datapath"
	"xvs/ovsdb"
)

// writeBack writes the state OVS's clients read: Interface ofport, error,
// status, ifindex, mac_in_use, mtu, admin/link state (and statistics when
// withStats), Port bond_active_slave, Bridge datapath_id. Only columns whose
// value changed since the last write are sent, so an idle switch writes
// nothing.
func (d *Daemon) writeBack(withStats bool) {
	tables := d.snapshot()
	d.mu.Lock()
	ifaces := d.dp.Ifaces()
	byName := map[string]datapath.Iface{}
	for _, i := range ifaces {
		byName[i.Name] = i
	}
	var ops []map[string]any
	add := func(table string, u ovsdb.UUID, row map[string]any) {
		if len(row) == 0 {
			return
		}
		prev := d.written[u]
		if prev == nil {
			prev = map[string]string{}
			d.written[u] = prev
		}
		out := map[string]any{}
		for col, v := range row {
			js, _ := json.Marshal(v)
			if prev[col] != string(js) {
				out[col] = v
				prev[col] = string(js)
			}
		}
		if len(out) > 0 {
			ops = append(ops, map[string]any{"op": "update", "table": table, "where": whereUUID(u), "row": out})
		}
	}
	for u, r := range tables["Interface"] {
		name := colStr(r, "name")
		st := d.ifaces[name]
		row := map[string]any{}
		di, inDP := byName[name]
		switch {
		case st == nil:
			continue // not (yet) part of a bridge
		case st.err != "":
			row["error"] = st.err
			row["ofport"] = int64(-1)
		case inDP:
			row["error"] = ovsSet()
			row["ofport"] = int64(di.OfPort)
		}
		status := map[string]string{}
		if st.driver != "" {
			status["driver_name"] = st.driver
		}
		if st.mode != "" {
			status["xdp-mode"] = st.mode
		}
		if st.reason != "" {
			status["afxdp-fallback-reason"] = st.reason
		}
		if st.driver == "afxdp" {
			status["xdp-flow-offload"] = strconv.FormatBool(st.offload)
			if st.offloadNote != "" {
				status["xdp-flow-offload-reason"] = st.offloadNote
			}
		}
		if st.driver == "patch" {
			status = map[string]string{}
		}
		row["status"] = ovsMap(status)
		if st.driver != "patch" && st.dev != nil {
			if link, err := netlink.LinkByName(name); err == nil {
				a := link.Attrs()
				row["ifindex"] = int64(a.Index)
				row["mac_in_use"] = a.HardwareAddr.String()
				row["mtu"] = int64(a.MTU)
				row["admin_state"] = upDown(a.Flags&net.FlagUp != 0)
				row["link_state"] = upDown(linkUp(name))
			}
		}
		if withStats && st.dev != nil {
			ds := st.dev.Stats()
			if st.offload {
				// Frames the kernel tier forwarded never reached the
				// socket: add them (OVS counts offloaded traffic too).
				rp, rb, tp, tb := d.dp.KernelPortStats(name)
				ds.RxPackets += rp
				ds.RxBytes += rb
				ds.TxPackets += tp
				ds.TxBytes += tb
			}
			row["statistics"] = ovsIntMap(map[string]uint64{
				"rx_packets": ds.RxPackets, "rx_bytes": ds.RxBytes, "rx_dropped": ds.RxDropped, "rx_errors": ds.RxErrors,
				"tx_packets": ds.TxPackets, "tx_bytes": ds.TxBytes, "tx_dropped": ds.TxDropped, "tx_errors": ds.TxErrors,
			})
		}
		add("Interface", u, row)
	}
	for u, r := range tables["Port"] {
		bs := d.bonds[colStr(r, "name")]
		if bs == nil {
			continue
		}
		s := bs.b.Status()
		mac := ""
		if s.Active != 0 {
			mac = net.HardwareAddr(s.ActiveMAC[:]).String()
		}
		add("Port", u, map[string]any{"bond_active_slave": optStr(mac)})
	}
	for u, r := range tables["Bridge"] {
		name := colStr(r, "name")
		if _, ok := d.bridges[name]; !ok {
			continue
		}
		add("Bridge", u, map[string]any{"datapath_id": datapathID(name)})
	}
	d.mu.Unlock()
	if err := d.transact(ops); err != nil {
		// A row may have been deleted meanwhile: forget the cache so the
		// next round writes again.
		d.mu.Lock()
		d.written = map[ovsdb.UUID]map[string]string{}
		d.mu.Unlock()
		d.log.Debug("write-back", "err", err, "ops", fmt.Sprint(ops))
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func ovsIntMap(m map[string]uint64) []any {
	pairs := []any{}
	for _, k := range []string{"rx_bytes", "rx_dropped", "rx_errors", "rx_packets", "tx_bytes", "tx_dropped", "tx_errors", "tx_packets"} {
		pairs = append(pairs, []any{k, int64(m[k])})
	}
	return []any{"map", pairs}
}

// datapathID derives a stable 64-bit datapath ID from the bridge name (OVS
// derives it from the bridge's MAC; ours has none before the internal port
// exists), printed as 16 hex digits like OVS's.
func datapathID(name string) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	return fmt.Sprintf("%016x", h.Sum64()&0x0000ffffffffffff|0x0000020000000000)
}
