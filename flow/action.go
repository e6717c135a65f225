package flow

import (
	"net/netip"
	"strconv"
	"strings"
)

// OpenFlow port numbers (OpenFlow 1.0 numbering, as Open vSwitch uses
// internally). Ports 1..PortMax-1 are bridge ports; the rest are reserved.
const (
	PortMax        = 0xff00
	PortInPort     = 0xfff8 // IN_PORT: the port the packet came in on
	PortTable      = 0xfff9 // TABLE (packet-out only)
	PortNormal     = 0xfffa // NORMAL: L2 learning switch
	PortFlood      = 0xfffb // FLOOD: all ports except the input (and no-flood ports)
	PortAll        = 0xfffc // ALL: all ports except the input
	PortController = 0xfffd // CONTROLLER
	PortLocal      = 0xfffe // LOCAL: the bridge's internal port
	PortNone       = 0xffff // NONE/ANY: no port
)

var reservedPorts = [...]struct {
	name string
	port uint32
}{
	{"IN_PORT", PortInPort}, {"TABLE", PortTable}, {"NORMAL", PortNormal},
	{"FLOOD", PortFlood}, {"ALL", PortAll}, {"CONTROLLER", PortController},
	{"LOCAL", PortLocal}, {"NONE", PortNone}, {"ANY", PortNone},
}

// PortName returns the ovs-ofctl spelling of an OpenFlow port: the
// reserved name (LOCAL, IN_PORT, ...) or the decimal number.
func PortName(p uint32) string {
	for _, rp := range reservedPorts {
		if rp.port == p {
			return rp.name
		}
	}
	return strconv.FormatUint(uint64(p), 10)
}

// ActionKind is the kind of an OpenFlow action.
type ActionKind uint8

// Action kinds. The comment says which Action fields each one uses.
//
// The mod_* rewrites follow OpenFlow 1.0 semantics as Open vSwitch
// implements them: a rewrite of a header the packet does not have is
// skipped (mod_nw_src on an ARP frame, mod_tp_src on ICMP), except
// mod_vlan_vid/mod_vlan_pcp, which push an 802.1Q tag (VID 0, PCP 0) onto
// an untagged packet first. The set_field forms of VLAN rewrites
// (ActSetVLANVID, ActSetVLANPCP) never push; the parser only accepts them
// where the packet is known to be tagged.
const (
	ActOutput     ActionKind = iota + 1 // Port (a bridge port, < PortMax)
	ActNormal                           // NORMAL
	ActFlood                            // FLOOD
	ActAll                              // ALL
	ActInPort                           // IN_PORT
	ActLocal                            // LOCAL
	ActController                       // Value: max_len (treated as a counted drop)
	ActModVLANVID                       // Value: VID; pushes a tag if none
	ActModVLANPCP                       // Value: PCP; pushes a tag if none
	ActSetVLANVID                       // Value: VID; only rewrites an existing tag
	ActSetVLANPCP                       // Value: PCP; only rewrites an existing tag
	ActStripVLAN                        // pop the outermost tag (strip_vlan, pop_vlan)
	ActPushVLAN                         // Value: TPID (0x8100 or 0x88a8); new tag copies VID/PCP of the old outer tag, or 0
	ActSetDlSrc                         // MAC
	ActSetDlDst                         // MAC
	ActSetNwSrc                         // Addr (IPv4)
	ActSetNwDst                         // Addr (IPv4)
	ActSetIPv6Src                       // Addr (IPv6)
	ActSetIPv6Dst                       // Addr (IPv6)
	ActSetNwTOS                         // Value: the DSCP bits of the TOS byte (multiple of 4); ECN kept
	ActSetNwECN                         // Value: the two ECN bits (0..3); DSCP kept
	ActSetNwTTL                         // Value: IPv4 TTL / IPv6 hop limit
	ActSetTpSrc                         // Value: TCP/UDP/SCTP source port
	ActSetTpDst                         // Value: TCP/UDP/SCTP destination port
	ActResubmit                         // Port (PortInPort: the packet's in_port), Table (TableAll: the current table)
	ActGotoTable                        // Table: continue in that (later) table; always the last action
)

// Resubmit semantics (as in Open vSwitch): look the packet up again in
// Table (the current table for TableAll) as if it had arrived on Port
// (unchanged for PortInPort), run the actions of the rule found, then
// continue with the actions after the resubmit. The translator bounds
// the recursion depth (OVS: 64) and ORs every lookup's mask into the
// megaflow mask. goto_table (ActGotoTable) is the OpenFlow 1.1+
// instruction: after the rule's other actions, look the packet up in
// Table (always a later table) with the same in_port; the parser only
// accepts it as the last action, so it behaves like a final
// resubmit(,Table).

// Action is one OpenFlow action. Only the fields named by its Kind are
// meaningful; the others are zero, so Actions compare with ==.
type Action struct {
	Kind  ActionKind
	Table uint8
	Value uint16
	Port  uint32
	MAC   [6]byte
	Addr  netip.Addr
}

// OutputPort returns the OpenFlow port an output-type action sends to
// (reserved ports for NORMAL, FLOOD, ...), for out_port filters.
func (a Action) OutputPort() (uint32, bool) {
	switch a.Kind {
	case ActOutput:
		return a.Port, true
	case ActNormal:
		return PortNormal, true
	case ActFlood:
		return PortFlood, true
	case ActAll:
		return PortAll, true
	case ActInPort:
		return PortInPort, true
	case ActLocal:
		return PortLocal, true
	case ActController:
		return PortController, true
	}
	return 0, false
}

// String formats one action as ovs-ofctl 3.1 dump-flows prints it.
func (a Action) String() string {
	var b strings.Builder
	a.appendTo(&b)
	return b.String()
}

func (a Action) appendTo(b *strings.Builder) {
	u := func(v uint64) { b.WriteString(strconv.FormatUint(v, 10)) }
	switch a.Kind {
	case ActOutput:
		b.WriteString("output:")
		u(uint64(a.Port))
	case ActNormal:
		b.WriteString("NORMAL")
	case ActFlood:
		b.WriteString("FLOOD")
	case ActAll:
		b.WriteString("ALL")
	case ActInPort:
		b.WriteString("IN_PORT")
	case ActLocal:
		b.WriteString("LOCAL")
	case ActController:
		b.WriteString("CONTROLLER:")
		u(uint64(a.Value))
	case ActModVLANVID:
		b.WriteString("mod_vlan_vid:")
		u(uint64(a.Value))
	case ActModVLANPCP:
		b.WriteString("mod_vlan_pcp:")
		u(uint64(a.Value))
	case ActSetVLANVID:
		b.WriteString("set_field:")
		u(uint64(a.Value | VLANCFI))
		b.WriteString("->vlan_vid")
	case ActSetVLANPCP:
		b.WriteString("set_field:")
		u(uint64(a.Value))
		b.WriteString("->vlan_pcp")
	case ActStripVLAN:
		b.WriteString("strip_vlan")
	case ActPushVLAN:
		b.WriteString("push_vlan:0x")
		b.WriteString(strconv.FormatUint(uint64(a.Value), 16))
	case ActSetDlSrc:
		b.WriteString("mod_dl_src:")
		b.WriteString(formatMAC(a.MAC))
	case ActSetDlDst:
		b.WriteString("mod_dl_dst:")
		b.WriteString(formatMAC(a.MAC))
	case ActSetNwSrc:
		b.WriteString("mod_nw_src:")
		b.WriteString(a.Addr.String())
	case ActSetNwDst:
		b.WriteString("mod_nw_dst:")
		b.WriteString(a.Addr.String())
	case ActSetIPv6Src:
		b.WriteString("set_field:")
		b.WriteString(a.Addr.String())
		b.WriteString("->ipv6_src")
	case ActSetIPv6Dst:
		b.WriteString("set_field:")
		b.WriteString(a.Addr.String())
		b.WriteString("->ipv6_dst")
	case ActSetNwTOS:
		b.WriteString("mod_nw_tos:")
		u(uint64(a.Value))
	case ActSetNwECN:
		b.WriteString("mod_nw_ecn:")
		u(uint64(a.Value))
	case ActSetNwTTL:
		b.WriteString("mod_nw_ttl:")
		u(uint64(a.Value))
	case ActSetTpSrc:
		b.WriteString("mod_tp_src:")
		u(uint64(a.Value))
	case ActSetTpDst:
		b.WriteString("mod_tp_dst:")
		u(uint64(a.Value))
	case ActGotoTable:
		b.WriteString("goto_table:")
		u(uint64(a.Table))
	case ActResubmit:
		if a.Port != PortInPort && a.Table == TableAll {
			b.WriteString("resubmit:")
			b.WriteString(PortName(a.Port))
			return
		}
		b.WriteString("resubmit(")
		if a.Port != PortInPort {
			b.WriteString(PortName(a.Port))
		}
		b.WriteByte(',')
		if a.Table != TableAll {
			u(uint64(a.Table))
		}
		b.WriteByte(')')
	default:
		b.WriteString("<unknown action ")
		u(uint64(a.Kind))
		b.WriteByte('>')
	}
}

// FormatActions prints an action list as ovs-ofctl does ("drop" when
// empty).
func FormatActions(acts []Action) string {
	if len(acts) == 0 {
		return "drop"
	}
	var b strings.Builder
	for i, a := range acts {
		if i > 0 {
			b.WriteByte(',')
		}
		a.appendTo(&b)
	}
	return b.String()
}

func formatMAC(m [6]byte) string {
	const hexd = "0123456789abcdef"
	var buf [17]byte
	for i, c := range m {
		if i > 0 {
			buf[i*3-1] = ':'
		}
		buf[i*3] = hexd[c>>4]
		buf[i*3+1] = hexd[c&15]
	}
	return string(buf[:])
}
