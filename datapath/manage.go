package datapath

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"xvs/flow"
)

// Management operations used by the daemon's ovs-appctl commands. All of
// them take the slow-path lock; none is on the packet path.

func (dp *Datapath) bridge(name string) (*Bridge, error) {
	br := dp.bridges[name]
	if br == nil {
		return nil, fmt.Errorf("%s: unknown bridge", name)
	}
	return br, nil
}

// AddFlow adds a rule written in ovs-ofctl add-flow syntax.
func (dp *Datapath) AddFlow(bridge, text string) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return err
	}
	fm, err := flow.ParseFlow(text, br.LookupPort)
	if err != nil {
		return err
	}
	if _, err := br.table.Add(fm, dp.now().UnixNano()); err != nil {
		return err
	}
	dp.invalidateBridge(br)
	return nil
}

// ModFlows changes the actions of the rules a mod-flows string selects.
func (dp *Datapath) ModFlows(bridge, text string, strict bool) (int, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return 0, err
	}
	fm, err := flow.ParseFlowMod(text, flow.ModeModify, br.LookupPort)
	if err != nil {
		return 0, err
	}
	n, err := br.table.ModifyActions(fm, strict, dp.now().UnixNano())
	if err != nil {
		return 0, err
	}
	dp.invalidateBridge(br)
	return n, nil
}

// DelFlows removes the rules a del-flows string selects ("" = all).
func (dp *Datapath) DelFlows(bridge, text string, strict bool) (int, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return 0, err
	}
	fm, err := flow.ParseFlowMod(text, flow.ModeDelete, br.LookupPort)
	if err != nil {
		return 0, err
	}
	var removed []*flow.Rule
	if strict {
		removed = br.table.DeleteStrict(fm)
	} else {
		removed = br.table.Delete(fm)
	}
	dp.invalidateBridge(br)
	return len(removed), nil
}

// Rules returns the bridge's rules of every table in dump order.
func (dp *Datapath) Rules(bridge string) ([]*flow.Rule, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return nil, err
	}
	dp.pushStatsLocked()
	var out []*flow.Rule
	for t := 0; t < flow.MaxTables; t++ {
		out = append(out, br.table.Rules(uint8(t))...)
	}
	return out, nil
}

// pushStatsLocked credits pending megaflow statistics to rules.
func (dp *Datapath) pushStatsLocked() {
	dp.mfc.Each(func(mf *flow.Megaflow) {
		d, _ := mf.Aux.(*deps)
		if d == nil {
			return
		}
		dp.pullKernelStats(mf, d)
		pushRuleStats(mf, d)
	})
}

// Trace translates the packet described by match (ovs-ofctl match syntax,
// in_port given as an OpenFlow port name or number of bridge) without side
// effects and explains every step, like ovs-appctl ofproto/trace.
func (dp *Datapath) Trace(bridge, match string) (string, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return "", err
	}
	m, err := flow.ParseMatch(match, br.LookupPort)
	if err != nil {
		return "", err
	}
	k := m.Key
	in := br.ifaces[k.InPort]
	if in == nil {
		return "", fmt.Errorf("trace: in_port %d is not a port of bridge %s", k.InPort, bridge)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Flow: %s\n\n", match)
	if in.dpPort == 0 {
		// A patch end: translate from the bridge directly.
		x := &xlation{}
		c := &xctx{dp: dp, now: dp.now().UnixNano(), key: k, x: x, trace: &sb}
		c.bridgeInput(in, 0)
		fmt.Fprintf(&sb, "\nDatapath actions: %s\n", flow.FormatDPActions(x.actions, dp.portNameLocked))
		return sb.String(), nil
	}
	k.InPort = in.dpPort
	x := dp.translateTrace(&k, false, &sb)
	cached := "not cached"
	if mf := dp.mfc.Lookup(&k); mf != nil {
		cached = "cached as megaflow " + dp.formatMatch(&mf.Key, &mf.Mask)
		if d, _ := mf.Aux.(*deps); d != nil && d.kflow != nil {
			cached += " (offloaded: handled in the XDP tier)"
		}
	}
	tier := "no kernel tier"
	if dp.kernel != nil {
		probe := &flow.Megaflow{Key: flow.MaskKey(&k, &x.mask), Mask: x.mask, Actions: x.actions}
		if _, _, ok := dp.offloadable(probe); ok {
			tier = "eligible for the XDP tier (runs in the kernel once cached)"
		} else {
			tier = "not eligible for the XDP tier (handled by the userspace fast path)"
		}
	}
	fmt.Fprintf(&sb, "\nFinal flow: unchanged\nMegaflow: %s\nDatapath actions: %s\nCache: %s\nKernel tier: %s\n",
		dp.formatMatch(&k, &x.mask), flow.FormatDPActions(x.actions, dp.portNameLocked), cached, tier)
	return sb.String(), nil
}

func (dp *Datapath) portNameLocked(no uint32) string {
	if i := dp.ports[no]; i != nil {
		return i.name
	}
	return fmt.Sprint(no)
}

// formatMatch prints a megaflow match (masked key) in dpctl style.
func (dp *Datapath) formatMatch(k, m *flow.Key) string {
	var parts []string
	add := func(s string, a ...any) { parts = append(parts, fmt.Sprintf(s, a...)) }
	add("in_port(%s)", dp.portNameLocked(k.InPort))
	if m.DlSrc != ([6]byte{}) || m.DlDst != ([6]byte{}) {
		add("eth(src=%s,dst=%s)", macStr(k.DlSrc), macStr(k.DlDst))
	}
	for i := 0; i < 2; i++ {
		if k.VLAN[i].Present() {
			add("vlan(vid=%d,pcp=%d)", k.VLAN[i].VID(), k.VLAN[i].PCP())
		}
	}
	add("eth_type(0x%04x)", k.DlType)
	if m.NwSrc != ([16]byte{}) || m.NwDst != ([16]byte{}) || m.NwProto != 0 {
		if k.IsIPv4() || k.DlType == flow.EthTypeARP {
			add("nw(src=%d.%d.%d.%d,dst=%d.%d.%d.%d,proto=%d)", k.NwSrc[0], k.NwSrc[1], k.NwSrc[2], k.NwSrc[3],
				k.NwDst[0], k.NwDst[1], k.NwDst[2], k.NwDst[3], k.NwProto)
		} else {
			add("nw(proto=%d)", k.NwProto)
		}
	}
	if m.TpSrc != 0 || m.TpDst != 0 {
		add("tp(src=%d,dst=%d)", k.TpSrc, k.TpDst)
	}
	if m.NwFrag != 0 {
		frag := "no"
		if k.NwFrag&flow.FragLater != 0 {
			frag = "later"
		} else if k.NwFrag&flow.FragAny != 0 {
			frag = "first"
		}
		add("frag=%s", frag)
	}
	return strings.Join(parts, ",")
}

// DumpDPFlows lists the megaflows like ovs-appctl dpctl/dump-flows.
func (dp *Datapath) DumpDPFlows() string {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	now := dp.now()
	var lines []string
	dp.mfc.Each(func(mf *flow.Megaflow) {
		d, _ := mf.Aux.(*deps)
		offloaded := "no"
		if d != nil && d.kflow != nil {
			dp.pullKernelStats(mf, d)
			offloaded = "xdp"
		}
		pk, by, used := mf.Stats()
		u := "never"
		if pk > 0 {
			u = fmt.Sprintf("%.3fs", now.Sub(used).Seconds())
		}
		lines = append(lines, fmt.Sprintf("%s, packets:%d, bytes:%d, used:%s, offloaded:%s, actions:%s",
			dp.formatMatch(&mf.Key, &mf.Mask), pk, by, u, offloaded, flow.FormatDPActions(mf.Actions, dp.portNameLocked)))
	})
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// FDBShow prints a bridge's MAC table like ovs-appctl fdb/show.
func (dp *Datapath) FDBShow(bridge string) (string, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return "", err
	}
	return br.macs.show(dp.now().UnixNano(), func(b *Bundle) string {
		if len(b.ifaces) == 0 {
			return "?"
		}
		return flow.PortName(b.ifaces[0].ofport)
	}), nil
}

// FDBFlush clears the MAC table of one bridge, or of all when bridge is "".
func (dp *Datapath) FDBFlush(bridge string) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if bridge == "" {
		for _, br := range dp.bridges {
			br.macs.flush()
		}
		return nil
	}
	br, err := dp.bridge(bridge)
	if err != nil {
		return err
	}
	br.macs.flush()
	return nil
}

// SetMACLimits configures a bridge's MAC table (other_config:mac-table-size
// and mac-aging-time).
func (dp *Datapath) SetMACLimits(bridge string, size int, aging time.Duration) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return err
	}
	br.macs.SetLimits(size, aging)
	return nil
}

// SetFloodVLANs sets the VLANs on which the bridge does not learn.
func (dp *Datapath) SetFloodVLANs(bridge string, vlans []uint16) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return err
	}
	br.floodVLANs = map[uint16]bool{}
	for _, v := range vlans {
		br.floodVLANs[v] = true
	}
	br.macs.flush()
	dp.invalidateBridge(br)
	return nil
}

// PortStats returns the datapath's counters for one interface by name,
// including what the kernel tier forwarded for it.
func (dp *Datapath) PortStats(name string) (DeviceStats, bool) {
	dp.mu.Lock()
	i := dp.findIface(name)
	dp.mu.Unlock()
	if i == nil || i.dpPort == 0 {
		return DeviceStats{}, false
	}
	s := dp.snap.Load()
	if int(i.dpPort) >= len(s.ports) || s.ports[i.dpPort] == nil {
		return DeviceStats{}, false
	}
	st := &s.ports[i.dpPort].stats
	return DeviceStats{
		RxPackets: st.rxPackets.Load(), RxBytes: st.rxBytes.Load(),
		TxPackets: st.txPackets.Load(), TxBytes: st.txBytes.Load(), TxDropped: st.txDropped.Load(),
	}, true
}

// Iface describes one interface for dpif/show and write-back.
type Iface struct {
	Bridge, Port, Name string
	OfPort, DPPort     uint32
	Patch              string // peer name for patch interfaces
}

// Ifaces lists every interface of every bridge.
func (dp *Datapath) Ifaces() []Iface {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	var out []Iface
	for _, br := range dp.bridges {
		for _, i := range br.ifaces {
			out = append(out, Iface{Bridge: br.name, Port: i.bundle.name, Name: i.name, OfPort: i.ofport, DPPort: i.dpPort, Patch: i.peer})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Bridge != out[b].Bridge {
			return out[a].Bridge < out[b].Bridge
		}
		return out[a].OfPort < out[b].OfPort
	})
	return out
}

// CacheStats reports the megaflow cache's size and subtables.
func (dp *Datapath) CacheStats() (flows, subtables, limit int) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.mfc.Len(), dp.mfc.Subtables(), dp.mfc.Limit()
}

// Transmit sends frames out of an interface from the slow path (learning
// packets after a bond failover, for example). The frames are copied.
func (dp *Datapath) Transmit(iface string, frames ...[]byte) error {
	dp.mu.Lock()
	i := dp.findIface(iface)
	dp.mu.Unlock()
	if i == nil || i.dpPort == 0 {
		return fmt.Errorf("transmit: no device for interface %s", iface)
	}
	s := dp.snap.Load()
	if int(i.dpPort) >= len(s.ports) || s.ports[i.dpPort] == nil {
		return fmt.Errorf("transmit: interface %s not published", iface)
	}
	dpp := s.ports[i.dpPort]
	pkts := make([]*flow.Packet, 0, len(frames))
	for _, f := range frames {
		pkts = append(pkts, dp.slowClones.clone(&flow.Packet{Buf: f, Len: len(f)}))
	}
	var bytes uint64
	for _, f := range frames {
		bytes += uint64(len(f))
	}
	dpp.txMu.Lock()
	sent := dpp.dev.Send(pkts)
	dpp.txMu.Unlock()
	dpp.stats.txPackets.Add(uint64(sent))
	dpp.stats.txBytes.Add(bytes)
	return nil
}

// DumpFlows prints a bridge's rules like ovs-ofctl dump-flows; filter is a
// dump-flows match ("" for all).
func (dp *Datapath) DumpFlows(bridge, filter string) (string, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br, err := dp.bridge(bridge)
	if err != nil {
		return "", err
	}
	fm, err := flow.ParseFlowMod(filter, flow.ModeDelete, br.LookupPort)
	if err != nil {
		return "", err
	}
	dp.pushStatsLocked()
	return br.table.DumpFlows(fm, dp.now().UnixNano()), nil
}

// BondChanged re-translates the megaflows of the bridge that holds a bond
// whose state changed (member enabled/disabled, active member): ingress
// decisions (active-backup accepts only on the active member, multicast
// only on the active member) depend on it. Egress needs nothing: bond
// outputs resolve their member per packet. The kernel tier's bucket table
// is refreshed too.
func (dp *Datapath) BondChanged(bridge string) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if br := dp.bridges[bridge]; br != nil {
		dp.invalidateBridge(br)
	}
	dp.syncBondTier()
}

// KernelPortStats returns what the kernel tier forwarded for an interface
// (frames no device counter saw).
func (dp *Datapath) KernelPortStats(name string) (rxPackets, rxBytes, txPackets, txBytes uint64) {
	dp.mu.Lock()
	i := dp.findIface(name)
	dp.mu.Unlock()
	if i == nil || i.dpPort == 0 {
		return
	}
	s := dp.snap.Load()
	if int(i.dpPort) >= len(s.ports) || s.ports[i.dpPort] == nil {
		return
	}
	st := &s.ports[i.dpPort].stats
	return st.kRxPackets.Load(), st.kRxBytes.Load(), st.kTxPackets.Load(), st.kTxBytes.Load()
}
