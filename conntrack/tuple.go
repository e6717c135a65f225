package conntrack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"xvs/flow"
)

// Tuple is one direction of a connection as it appears on the wire: the
// table key. IPv4 addresses use the first 4 bytes of Src/Dst (like
// flow.Key). For ICMP/ICMPv6 echo, SrcPort and DstPort both hold the echo
// identifier. Protocols other than TCP, UDP, SCTP and ICMP are tracked by
// addresses only (ports zero). Tuple is comparable and allocation-free.
type Tuple struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Zone             uint16
	Proto            uint8
	IPv6             bool
}

// Reverse returns the tuple of the opposite direction.
func (t Tuple) Reverse() Tuple {
	t.Src, t.Dst = t.Dst, t.Src
	t.SrcPort, t.DstPort = t.DstPort, t.SrcPort
	return t
}

func (t *Tuple) hash() uint64 {
	const m = 0x9e3779b97f4a7c15
	h := uint64(t.Zone)<<40 ^ uint64(t.Proto)<<32 ^ uint64(t.SrcPort)<<16 ^ uint64(t.DstPort)
	for _, w := range [4]uint64{
		binary.LittleEndian.Uint64(t.Src[0:]), binary.LittleEndian.Uint64(t.Src[8:]),
		binary.LittleEndian.Uint64(t.Dst[0:]), binary.LittleEndian.Uint64(t.Dst[8:]),
	} {
		h = (h ^ w) * m
		h ^= h >> 29
	}
	return h ^ h>>32
}

func (t *Tuple) addr(b [16]byte) netip.Addr {
	if t.IPv6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// SrcAddr and DstAddr return the addresses as netip.Addr.
func (t Tuple) SrcAddr() netip.Addr { return t.addr(t.Src) }

// DstAddr returns the destination address (see SrcAddr).
func (t Tuple) DstAddr() netip.Addr { return t.addr(t.Dst) }

func isICMP(proto uint8) bool { return proto == flow.IPProtoICMP || proto == flow.IPProtoICMPv6 }

func hasPorts(proto uint8) bool {
	return proto == flow.IPProtoTCP || proto == flow.IPProtoUDP || proto == flow.IPProtoSCTP
}

// format writes "src=..,dst=..,sport=..,dport=.." (or id/type/code for
// ICMP) as ovs-appctl dpctl/dump-conntrack.
func (t *Tuple) format(b *strings.Builder, icmpType, icmpCode uint8) {
	fmt.Fprintf(b, "src=%s,dst=%s", t.SrcAddr(), t.DstAddr())
	switch {
	case hasPorts(t.Proto):
		fmt.Fprintf(b, ",sport=%d,dport=%d", t.SrcPort, t.DstPort)
	case isICMP(t.Proto):
		fmt.Fprintf(b, ",id=%d,type=%d,code=%d", t.SrcPort, icmpType, icmpCode)
	}
}

// ICMP types the tracker understands.
const (
	icmp4EchoReply   = 0
	icmp4Unreach     = 3
	icmp4SrcQuench   = 4
	icmp4Redirect    = 5
	icmp4Echo        = 8
	icmp4TimeExceed  = 11
	icmp4ParamProb   = 12
	icmp6Unreach     = 1
	icmp6TooBig      = 2
	icmp6TimeExceed  = 3
	icmp6ParamProb   = 4
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// pktKind classifies a packet for the tracker.
type pktKind uint8

const (
	kindInvalid pktKind = iota // cannot be tracked: inv
	kindNormal                 // tuple is the packet's own
	kindICMPErr                // tuple is the reversed embedded tuple of an ICMP error
)

// extract fills tp from the key and, for ICMP, from the frame (echo id,
// embedded header of errors). inner receives the frame offset of the
// embedded IP header for ICMP errors.
func extract(k *flow.Key, pkt *flow.Packet, l *flow.Layout, zone uint16, tp *Tuple, inner *int) pktKind {
	*tp = Tuple{Zone: zone, Proto: k.NwProto, IPv6: k.DlType == flow.EthTypeIPv6}
	tp.Src, tp.Dst = k.NwSrc, k.NwDst
	switch k.NwProto {
	case flow.IPProtoTCP, flow.IPProtoUDP, flow.IPProtoSCTP:
		if l.L4 < 0 {
			return kindInvalid
		}
		tp.SrcPort, tp.DstPort = k.TpSrc, k.TpDst
		return kindNormal
	case flow.IPProtoICMP, flow.IPProtoICMPv6:
		if l.L4 < 0 || int(l.L4)+8 > pkt.Len {
			return kindInvalid
		}
		v6 := k.NwProto == flow.IPProtoICMPv6
		if v6 != tp.IPv6 {
			return kindInvalid // ICMP in IPv6 or ICMPv6 in IPv4
		}
		d := pkt.Data()[l.L4:]
		typ := d[0]
		if isEcho(typ, v6) {
			id := binary.BigEndian.Uint16(d[4:])
			tp.SrcPort, tp.DstPort = id, id
			return kindNormal
		}
		if isICMPError(typ, v6) {
			*inner = int(l.L4) + 8
			if !innerTuple(pkt.Data(), *inner, v6, zone, tp) {
				return kindInvalid
			}
			*tp = tp.Reverse()
			return kindICMPErr
		}
		return kindInvalid
	}
	if k.NwProto == 0 || k.NwProto == flow.IPProtoFragment {
		// Zero: flow.Extract could not parse the IP header (its L3
		// fields stay zero). Fragment: a non-first IPv6 fragment.
		return kindInvalid
	}
	return kindNormal // other protocols: addresses only
}

func isEcho(typ uint8, v6 bool) bool {
	if v6 {
		return typ == icmp6EchoRequest || typ == icmp6EchoReply
	}
	return typ == icmp4Echo || typ == icmp4EchoReply
}

func isEchoRequest(typ uint8, v6 bool) bool {
	if v6 {
		return typ == icmp6EchoRequest
	}
	return typ == icmp4Echo
}

func isICMPError(typ uint8, v6 bool) bool {
	if v6 {
		return typ >= icmp6Unreach && typ <= icmp6ParamProb
	}
	switch typ {
	case icmp4Unreach, icmp4SrcQuench, icmp4Redirect, icmp4TimeExceed, icmp4ParamProb:
		return true
	}
	return false
}

// innerTuple parses the IP header embedded in an ICMP error at frame
// offset off, plus the first 8 bytes of its transport header, into tp.
// It fails on truncation, version mismatch, fragments with an offset,
// IPv6 extension headers and embedded ICMP that is not an echo.
func innerTuple(d []byte, off int, v6 bool, zone uint16, tp *Tuple) bool {
	var l4 int
	var proto uint8
	*tp = Tuple{Zone: zone, IPv6: v6}
	if !v6 {
		if off+20 > len(d) {
			return false
		}
		ip := d[off:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[0]>>4 != 4 || ihl < 20 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return false
		}
		proto = ip[9]
		copy(tp.Src[:4], ip[12:16])
		copy(tp.Dst[:4], ip[16:20])
		l4 = off + ihl
	} else {
		if off+40 > len(d) {
			return false
		}
		ip := d[off:]
		if ip[0]>>4 != 6 {
			return false
		}
		proto = ip[6]
		tp.Src = [16]byte(ip[8:24])
		tp.Dst = [16]byte(ip[24:40])
		l4 = off + 40
	}
	tp.Proto = proto
	if l4+8 > len(d) {
		return false
	}
	h := d[l4:]
	switch proto {
	case flow.IPProtoTCP, flow.IPProtoUDP, flow.IPProtoSCTP:
		tp.SrcPort = binary.BigEndian.Uint16(h[0:])
		tp.DstPort = binary.BigEndian.Uint16(h[2:])
	case flow.IPProtoICMP, flow.IPProtoICMPv6:
		if (proto == flow.IPProtoICMPv6) != v6 || !isEchoRequest(h[0], v6) {
			return false
		}
		id := binary.BigEndian.Uint16(h[4:])
		tp.SrcPort, tp.DstPort = id, id
	case 0, 43, 44, 60, 51: // IPv6 extension headers: not followed
		if v6 {
			return false
		}
	}
	return true
}
