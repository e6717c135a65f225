package datapath

import (
	"fmt"
	"strings"
	"time"

	"xvs/bond"

	"xvs/flow"
)

// Translation: the slow path. A packet that missed both caches is
// translated here from its flow key into datapath actions by running the
// bridge's OpenFlow table, NORMAL, bond output and patch ports — crossing
// into peer bridges inline, so one megaflow covers the whole path. The
// mask collects every key field a decision looked at; dependencies on MAC
// table entries are recorded so that exactly the affected megaflows die
// when an entry is learned, moves or expires.

const (
	maxDepth     = 64
	maxResubmits = 4096
)

type macWatch struct {
	br *Bridge
	k  macKey
}

type learnRef struct {
	br   *Bridge
	k    macKey
	port *Bundle
}

// deps is what a megaflow depends on (Megaflow.Aux).
type deps struct {
	key     flow.Key // the key it was translated from (for revalidation)
	bridges []*Bridge
	macs    []macWatch
	learns  []learnRef
	rules   []*flow.Rule // OpenFlow rules hit (credited with the megaflow's stats)
	// statistics already credited to rules and ports
	pushedPkts, pushedBytes uint64
	// kernel copy of the megaflow (nil: not offloaded) and its counters
	// already folded into the megaflow
	kflow               *L2Flow
	kernPkts, kernBytes uint64
}

func sameMACDeps(a, b []macWatch) bool {
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

type xlation struct {
	actions []flow.DPAction
	mask    flow.Key
	deps    deps
	drop    bool // the input port is unknown: nothing may be cached
}

type xctx struct {
	dp          *Datapath
	sideEffects bool
	now         int64
	key         flow.Key // the packet as modified so far
	x           *xlation
	depth       int
	curTable    uint8
	resubmits   int
	trace       *strings.Builder
}

func (c *xctx) tracef(format string, args ...any) {
	if c.trace != nil {
		fmt.Fprintf(c.trace, "%s"+format+"\n", append([]any{strings.Repeat("    ", c.depth)}, args...)...)
	}
}

// translate computes the datapath actions for key (caller holds dp.mu).
// With sideEffects, NORMAL learns MAC addresses.
func (dp *Datapath) translate(key *flow.Key, sideEffects bool) *xlation {
	return dp.translateTrace(key, sideEffects, nil)
}

func (dp *Datapath) translateTrace(key *flow.Key, sideEffects bool, tr *strings.Builder) *xlation {
	x := &xlation{}
	x.deps.key = *key
	c := &xctx{dp: dp, sideEffects: sideEffects, now: dp.now().UnixNano(), key: *key, x: x, trace: tr}
	// Every megaflow matches in_port, the ethertype, the VLAN headers and
	// (for IP) the fragment bits exactly, as OVS's do.
	m := &x.mask
	m.InPort = ^uint32(0)
	m.DlType = 0xffff
	m.VLAN = [2]flow.VLANHdr{{TPID: 0xffff, TCI: 0xffff}, {TPID: 0xffff, TCI: 0xffff}}
	if key.IsIPv4() || key.IsIPv6() {
		m.NwFrag = 0xff
	}
	in := dp.ports[key.InPort]
	if in == nil {
		x.drop = true
		c.tracef("unknown datapath port %d, dropping", key.InPort)
		return x
	}
	c.bridgeInput(in, 0)
	return x
}

// bridgeInput runs table (tableID) of in's bridge for the current packet
// arriving on in.
func (c *xctx) bridgeInput(in *Interface, tableID uint8) {
	br := in.bundle.bridge
	c.noteBridge(br)
	lk := c.key
	lk.InPort = in.ofport
	rule := br.table.LookupTable(tableID, &lk, &c.x.mask)
	c.x.mask.InPort = ^uint32(0)
	if rule == nil {
		c.tracef("bridge %s table %d: no match, dropping", br.name, tableID)
		return
	}
	c.tracef("bridge %s table %d: priority %d, actions=%s", br.name, tableID, rule.Priority, flow.FormatActions(rule.Actions()))
	c.curTable = tableID
	c.x.deps.rules = append(c.x.deps.rules, rule)
	c.doActions(br, in, rule.Actions())
}

func (c *xctx) noteBridge(br *Bridge) {
	for _, b := range c.x.deps.bridges {
		if b == br {
			return
		}
	}
	c.x.deps.bridges = append(c.x.deps.bridges, br)
}

func orMask(dst, src *flow.Key) {
	d, s := dst.Words(), src.Words()
	for i := range d {
		d[i] |= s[i]
	}
}

func (c *xctx) emit(a flow.DPAction) { c.x.actions = append(c.x.actions, a) }

func (c *xctx) doActions(br *Bridge, in *Interface, acts []flow.Action) {
	for _, a := range acts {
		switch a.Kind {
		case flow.ActOutput:
			if a.Port == in.ofport {
				c.tracef("output to input port %d skipped", a.Port)
				continue
			}
			if out := br.ifaces[a.Port]; out != nil {
				c.outputIface(out)
			} else {
				c.tracef("output:%d: no such port", a.Port)
			}
		case flow.ActInPort:
			c.outputIface(in)
		case flow.ActLocal:
			if out := br.ifaces[flow.PortLocal]; out != nil && out != in {
				c.outputIface(out)
			}
		case flow.ActNormal:
			c.normal(br, in)
		case flow.ActFlood, flow.ActAll:
			for _, out := range br.Interfaces() {
				if out != in {
					c.outputIface(out)
				}
			}
		case flow.ActController:
			c.tracef("controller: no controller connected, dropping this copy")
		case flow.ActModVLANVID, flow.ActSetVLANVID:
			vid := a.Value & flow.VLANVIDMask
			if c.key.VLAN[0].Present() {
				c.setVLAN(c.key.VLAN[0].TCI&^(flow.VLANVIDMask|flow.VLANCFI) | vid)
			} else if a.Kind == flow.ActModVLANVID {
				c.pushVLAN(flow.EthTypeVLAN, vid)
			}
		case flow.ActModVLANPCP, flow.ActSetVLANPCP:
			pcp := (a.Value & 7) << 13
			if c.key.VLAN[0].Present() {
				c.setVLAN(c.key.VLAN[0].TCI&^(flow.VLANPCPMask|flow.VLANCFI) | pcp)
			} else if a.Kind == flow.ActModVLANPCP {
				c.pushVLAN(flow.EthTypeVLAN, pcp)
			}
		case flow.ActStripVLAN:
			if c.key.VLAN[0].Present() {
				c.popVLAN()
			}
		case flow.ActPushVLAN:
			c.pushVLAN(a.Value, c.key.VLAN[0].TCI&^flow.VLANCFI)
		case flow.ActSetDlSrc:
			c.key.DlSrc = a.MAC
			c.emit(flow.DPAction{Kind: flow.DPSetEthSrc, MAC: a.MAC})
		case flow.ActSetDlDst:
			c.key.DlDst = a.MAC
			c.emit(flow.DPAction{Kind: flow.DPSetEthDst, MAC: a.MAC})
		case flow.ActSetNwSrc, flow.ActSetNwDst, flow.ActSetIPv6Src, flow.ActSetIPv6Dst:
			c.setNw(a)
		case flow.ActSetNwTOS:
			if c.key.IsIPv4() || c.key.IsIPv6() {
				c.key.NwTOS = c.key.NwTOS&0x03 | uint8(a.Value)&^0x03
				c.emit(flow.DPAction{Kind: flow.DPSetTOS, Value: uint32(c.key.NwTOS)})
			}
		case flow.ActSetTpSrc, flow.ActSetTpDst:
			p := c.key.NwProto
			if (c.key.IsIPv4() || c.key.IsIPv6()) && (p == flow.IPProtoTCP || p == flow.IPProtoUDP || p == flow.IPProtoSCTP) && c.key.NwFrag&flow.FragLater == 0 {
				c.x.mask.NwProto = 0xff
				if a.Kind == flow.ActSetTpSrc {
					c.key.TpSrc = a.Value
					c.emit(flow.DPAction{Kind: flow.DPSetTPSrc, Value: uint32(a.Value)})
				} else {
					c.key.TpDst = a.Value
					c.emit(flow.DPAction{Kind: flow.DPSetTPDst, Value: uint32(a.Value)})
				}
			}
		case flow.ActSetNwECN:
			if c.key.IsIPv4() || c.key.IsIPv6() {
				c.key.NwTOS = c.key.NwTOS&^0x03 | uint8(a.Value)&0x03
				c.emit(flow.DPAction{Kind: flow.DPSetTOS, Value: uint32(c.key.NwTOS)})
			}
		case flow.ActSetNwTTL:
			if c.key.IsIPv4() || c.key.IsIPv6() {
				c.key.NwTTL = uint8(a.Value)
				c.emit(flow.DPAction{Kind: flow.DPSetTTL, Value: uint32(a.Value & 0xff)})
			}
		case flow.ActResubmit:
			c.resubmit(br, in, a)
		case flow.ActGotoTable:
			c.resubmit(br, in, flow.Action{Kind: flow.ActResubmit, Port: flow.PortInPort, Table: a.Table})
		}
	}
}

func (c *xctx) setNw(a flow.Action) {
	src := a.Kind == flow.ActSetNwSrc || a.Kind == flow.ActSetIPv6Src
	switch {
	case c.key.IsIPv4() && a.Addr.Is4():
		b := a.Addr.As4()
		kind := flow.DPSetIPv4Dst
		if src {
			kind = flow.DPSetIPv4Src
			copy(c.key.NwSrc[:4], b[:])
		} else {
			copy(c.key.NwDst[:4], b[:])
		}
		c.emit(flow.DPAction{Kind: kind, Addr: a.Addr})
	case c.key.IsIPv6() && a.Addr.Is6():
		b := a.Addr.As16()
		kind := flow.DPSetIPv6Dst
		if src {
			kind = flow.DPSetIPv6Src
			c.key.NwSrc = b
		} else {
			c.key.NwDst = b
		}
		c.emit(flow.DPAction{Kind: kind, Addr: a.Addr})
	}
}

func (c *xctx) resubmit(br *Bridge, in *Interface, a flow.Action) {
	c.resubmits++
	if c.resubmits > maxResubmits || c.depth >= maxDepth {
		c.tracef("over %d resubmit actions, dropping", maxResubmits)
		return
	}
	newIn := in
	if a.Port != flow.PortInPort {
		if i := br.ifaces[a.Port]; i != nil {
			newIn = i
		} else {
			// Resubmitting as a port that does not exist still runs the
			// table, with that in_port.
			newIn = &Interface{name: fmt.Sprint(a.Port), ofport: a.Port, bundle: in.bundle}
		}
	}
	c.depth++
	table := a.Table
	if table == flow.TableAll {
		table = c.curTable
	}
	saved := c.curTable
	c.tracef("resubmit(%d,%d)", newIn.ofport, table)
	c.bridgeInput(newIn, table)
	c.curTable = saved
	c.depth--
}

func (c *xctx) pushVLAN(tpid, tci uint16) {
	c.key.VLAN[1] = c.key.VLAN[0]
	c.key.VLAN[0] = flow.VLANHdr{TPID: tpid, TCI: tci | flow.VLANCFI}
	c.emit(flow.DPAction{Kind: flow.DPPushVLAN, TPID: tpid, TCI: tci &^ flow.VLANCFI})
}

func (c *xctx) popVLAN() {
	c.key.VLAN[0] = c.key.VLAN[1]
	c.key.VLAN[1] = flow.VLANHdr{}
	c.emit(flow.DPAction{Kind: flow.DPPopVLAN})
}

func (c *xctx) setVLAN(tci uint16) {
	c.key.VLAN[0].TCI = tci | flow.VLANCFI
	c.emit(flow.DPAction{Kind: flow.DPSetVLAN, TCI: tci &^ flow.VLANCFI})
}

// outputIface sends the current packet to one OpenFlow port; a patch port
// continues the translation in the peer bridge.
func (c *xctx) outputIface(out *Interface) {
	if out.peer != "" {
		peer := out.peerIf
		if peer == nil {
			c.tracef("patch port %s: peer %s not connected, dropping", out.name, out.peer)
			return
		}
		if c.depth >= maxDepth {
			c.tracef("patch recursion too deep, dropping")
			return
		}
		c.tracef("output to patch port %s -> bridge %s port %s", out.name, peer.bundle.bridge.name, peer.name)
		saved := c.key.InPort
		c.depth++
		c.bridgeInput(peer, 0)
		c.depth--
		c.key.InPort = saved
		return
	}
	c.tracef("output:%s", out.name)
	c.emit(flow.DPAction{Kind: flow.DPOutput, Port: out.dpPort})
}

var reservedMcast = [5]byte{0x01, 0x80, 0xc2, 0x00, 0x00}

func isGratuitousARP(k *flow.Key) bool {
	if k.DlType != flow.EthTypeARP || k.DlDst != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		return false
	}
	return k.NwProto == 2 || (k.NwProto == 1 && k.NwSrc == k.NwDst)
}

// normal implements the NORMAL action: VLAN admission, bond admissibility,
// MAC learning, then unicast to the learned port or flood within the VLAN.
func (c *xctx) normal(br *Bridge, in *Interface) {
	m := &c.x.mask
	m.DlSrc = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	m.DlDst = m.DlSrc
	k := &c.key
	inB := in.bundle
	if [5]byte(k.DlDst[:5]) == reservedMcast && k.DlDst[5]&0xf0 == 0 {
		c.tracef("drop reserved multicast (BPDU)")
		return
	}
	tagged := k.VLAN[0].Present()
	vid := k.VLAN[0].VID()
	var vlan uint16
	switch inB.mode {
	case VLANAccess:
		if tagged && vid != 0 {
			c.tracef("disallowed VLAN VID for this input port, dropping")
			return
		}
		vlan = inB.tag
	case VLANTrunk:
		if !inB.trunksVLAN(vid) {
			c.tracef("disallowed VLAN VID for this input port, dropping")
			return
		}
		vlan = vid
	default: // native-tagged, native-untagged
		if vid != 0 {
			if !inB.trunksVLAN(vid) {
				c.tracef("disallowed VLAN VID for this input port, dropping")
				return
			}
			vlan = vid
		} else {
			vlan = inB.tag
		}
	}
	var pcp uint16
	if tagged {
		pcp = k.VLAN[0].TCI & flow.VLANPCPMask
	}
	// hasTag: the frame carries a VLAN header inside the bridge (it came
	// tagged, or an access/native port gave it one). It decides whether a
	// VLAN-0 frame may leave with a VID-0 priority tag.
	hasTag := tagged || inB.mode != VLANTrunk
	garp := isGratuitousARP(k)
	if k.DlType == flow.EthTypeARP {
		m.NwProto, m.NwSrc, m.NwDst = 0xff, allOnes16, allOnes16
	}
	srcKey := macKey{k.DlSrc, vlan}
	c.x.deps.macs = append(c.x.deps.macs, macWatch{br, srcKey})
	if inB.bond != nil {
		e := br.macs.entries[srcKey]
		f := bond.Frame{DstMulticast: k.DlDst[0]&1 != 0, SrcLearnedElsewhere: e != nil && e.port != inB, GratuitousARP: garp}
		if e != nil && e.garpLock != 0 {
			f.GARPLockedUntil = time.Unix(0, e.garpLock)
		}
		if v, why := inB.bond.Admit(in.ofport, f, c.dp.now()); v != bond.Accept {
			c.tracef("%s", why)
			return
		}
	}
	if !br.floodVLANs[vlan] && k.DlSrc[0]&1 == 0 {
		if c.sideEffects {
			br.macs.learn(k.DlSrc, vlan, inB, c.now, garp)
		}
		c.x.deps.learns = append(c.x.deps.learns, learnRef{br, srcKey, inB})
	}
	if k.DlDst[0]&1 == 0 {
		dstKey := macKey{k.DlDst, vlan}
		c.x.deps.macs = append(c.x.deps.macs, macWatch{br, dstKey})
		if e := br.macs.entries[dstKey]; e != nil {
			if e.port == inB {
				c.tracef("learned port is input port, dropping")
				return
			}
			if len(e.port.ifaces) == 0 {
				c.tracef("learned port %s has no interface (being reconfigured), dropping", e.port.name)
				return
			}
			c.tracef("forwarding to learned port %s", e.port.name)
			c.outputBundle(e.port, vlan, pcp, hasTag)
			return
		}
	}
	c.tracef("no learned MAC for destination, flooding")
	for _, name := range br.Ports() {
		b := br.bundles[name]
		if b == inB || !b.includesVLAN(vlan) || len(b.ifaces) == 0 {
			continue
		}
		c.outputBundle(b, vlan, pcp, hasTag)
	}
}

var allOnes16 = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// outputBundle sends the packet of internal VLAN vlan out of port b, tagged
// as b's VLAN mode requires. A frame that leaves on VLAN 0 keeps a VID-0
// "priority tag" as Open vSwitch 3.1 does (captured in
// testdata/ovs-vlan-truth.json): on ports that strip the VLAN by mode only
// when other_config:priority-tags allows it and the PCP is nonzero; on
// trunks whenever the PCP is nonzero, and with priority-tags=always also
// for PCP 0 when the frame had a tag inside the bridge.
func (c *xctx) outputBundle(b *Bundle, vlan, pcp uint16, hasTag bool) {
	wire := vlan
	strips := false
	switch b.mode {
	case VLANAccess:
		wire, strips = 0, true
	case VLANNativeUntagged:
		if vlan == b.tag {
			wire, strips = 0, true
		}
	}
	tag := wire != 0
	if !tag {
		if strips {
			tag = pcp != 0 && b.prioTags != PriorityTagsNever
		} else {
			tag = pcp != 0 || (b.prioTags == PriorityTagsAlways && hasTag)
		}
	}
	cur := c.key.VLAN[0]
	if !tag {
		if cur.Present() {
			c.popVLAN()
		}
	} else {
		want := pcp | wire
		if !cur.Present() {
			c.pushVLAN(flow.EthTypeVLAN, want)
		} else if cur.TCI&^flow.VLANCFI != want {
			c.setVLAN(want)
		}
	}
	if b.bond != nil {
		bucket := b.bond.BucketOf(c.key.DlSrc, wire)
		c.tracef("output to bond %s (hash %d)", b.name, bucket)
		c.emit(flow.DPAction{Kind: flow.DPOutputBond, Port: b.bondIx, Bucket: bucket})
		return
	}
	c.outputIface(b.ifaces[0])
}
