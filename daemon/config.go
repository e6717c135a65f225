package daemon

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"xvs/ovsdb"
)

// The desired configuration, read from one consistent database snapshot.
// Reconciliation compares it with what runs and changes only what differs.

type wantIface struct {
	uuid          ovsdb.UUID
	name          string
	typ           string // "", system, afxdp, internal, patch
	options       map[string]string
	otherConfig   map[string]string
	mtuRequest    int64
	ofportRequest int64
	ofportHint    int64 // the ofport written back last time (kept across restarts)
	mac           string
	// offload is Open_vSwitch other_config:xdp-flow-offload ("" = default);
	// offloadOn is what it means for this interface (set by apply).
	offload   string
	offloadOn bool
}

type wantPort struct {
	uuid        ovsdb.UUID
	name        string
	tag         int // -1 none
	trunks      []uint16
	vlanMode    string
	bondMode    string
	updelay     int64
	downdelay   int64
	lacp        string
	otherConfig map[string]string
	activeSlave string
	ifaces      []*wantIface
}

type wantBridge struct {
	uuid         ovsdb.UUID
	name         string
	datapathType string
	otherConfig  map[string]string
	floodVLANs   []uint16
	ports        map[string]*wantPort
}

type wantConfig struct {
	ovsUUID     ovsdb.UUID
	haveOVS     bool
	nextCfg     int64
	curCfg      int64
	otherConfig map[string]string
	bridges     map[string]*wantBridge
	// problems found while reading (duplicate names...), logged.
	problems []string
}

func readConfig(tables map[string]map[ovsdb.UUID]ovsdb.Row) *wantConfig {
	w := &wantConfig{bridges: map[string]*wantBridge{}}
	for u, r := range tables["Open_vSwitch"] {
		w.ovsUUID, w.haveOVS = u, true
		w.nextCfg, _ = colInt(r, "next_cfg")
		w.curCfg, _ = colInt(r, "cur_cfg")
		w.otherConfig = colMap(r, "other_config")
		for _, bu := range colUUIDs(r, "bridges") {
			br := tables["Bridge"][bu]
			if br == nil {
				continue
			}
			wb := &wantBridge{uuid: bu, name: colStr(br, "name"), datapathType: colStr(br, "datapath_type"),
				otherConfig: colMap(br, "other_config"), ports: map[string]*wantPort{}}
			for _, v := range colInts(br, "flood_vlans") {
				wb.floodVLANs = append(wb.floodVLANs, uint16(v))
			}
			if _, dup := w.bridges[wb.name]; dup {
				w.problems = append(w.problems, fmt.Sprintf("bridge %s specified twice", wb.name))
				continue
			}
			w.bridges[wb.name] = wb
			for _, pu := range colUUIDs(br, "ports") {
				pr := tables["Port"][pu]
				if pr == nil {
					continue
				}
				wp := &wantPort{uuid: pu, name: colStr(pr, "name"), tag: -1, vlanMode: colStr(pr, "vlan_mode"),
					bondMode: colStr(pr, "bond_mode"), lacp: colStr(pr, "lacp"), otherConfig: colMap(pr, "other_config"),
					activeSlave: colStr(pr, "bond_active_slave")}
				if t, ok := colInt(pr, "tag"); ok {
					wp.tag = int(t)
				}
				for _, v := range colInts(pr, "trunks") {
					wp.trunks = append(wp.trunks, uint16(v))
				}
				wp.updelay, _ = colInt(pr, "bond_updelay")
				wp.downdelay, _ = colInt(pr, "bond_downdelay")
				if _, dup := wb.ports[wp.name]; dup {
					w.problems = append(w.problems, fmt.Sprintf("bridge %s: port %s specified twice", wb.name, wp.name))
					continue
				}
				for _, iu := range colUUIDs(pr, "interfaces") {
					ir := tables["Interface"][iu]
					if ir == nil {
						continue
					}
					wi := &wantIface{uuid: iu, name: colStr(ir, "name"), typ: colStr(ir, "type"),
						options: colMap(ir, "options"), otherConfig: colMap(ir, "other_config"), mac: colStr(ir, "mac")}
					wi.mtuRequest, _ = colInt(ir, "mtu_request")
					wi.offload = w.otherConfig["xdp-flow-offload"]
					wi.ofportRequest, _ = colInt(ir, "ofport_request")
					wi.ofportHint, _ = colInt(ir, "ofport")
					wp.ifaces = append(wp.ifaces, wi)
				}
				sort.Slice(wp.ifaces, func(i, j int) bool { return wp.ifaces[i].name < wp.ifaces[j].name })
				if len(wp.ifaces) == 0 {
					w.problems = append(w.problems, fmt.Sprintf("bridge %s: port %s has no interfaces, dropping", wb.name, wp.name))
					continue
				}
				wb.ports[wp.name] = wp
			}
		}
	}
	return w
}

// ocInt reads an integer other_config key with a default.
func ocInt(m map[string]string, key string, def int) int {
	if s, ok := m[key]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n
		}
	}
	return def
}

// deviceKey identifies what a device was opened with: a change of any part
// reopens it.
func (wi *wantIface) deviceKey() string {
	keys := make([]string, 0, len(wi.options))
	for k := range wi.options {
		if wi.typ == "patch" && k == "peer" {
			continue // patch peers are rewired, not reopened
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(normalType(wi.typ))
	for _, k := range keys {
		fmt.Fprintf(&sb, ",%s=%s", k, wi.options[k])
	}
	// mtu_request is applied in place (see applyMTU): changing it must not
	// recreate a TAP device and lose its addresses.
	fmt.Fprintf(&sb, ",mac=%s,offload=%t", wi.mac, wi.offloadOn)
	return sb.String()
}

func normalType(t string) string {
	if t == "" {
		return "system"
	}
	return t
}
