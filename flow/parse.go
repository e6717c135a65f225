package flow

import (
	"encoding/binary"
	"math"
)

// IPv6 extension header and other protocol numbers seen by the parser.
//
// Key.NwProto is IPProtoFragment for a non-first IPv6 fragment (OVS
// convention: the real upper-layer protocol is unknown there).
const (
	IPProtoHopByHop = 0
	IPProtoIGMP     = 2
	IPProtoRouting  = 43
	IPProtoFragment = 44
	IPProtoESP      = 50
	IPProtoAH       = 51
	IPProtoNoNext   = 59
	IPProtoDstOpts  = 60
)

// Fixed header sizes used by the parser and the editors.
const (
	ethHdrLen     = 14
	vlanTagLen    = 4
	ipv4MinHdrLen = 20
	ipv6HdrLen    = 40
	arpEthIPv4Len = 28
	tcpMinHdrLen  = 20
	udpHdrLen     = 8
	sctpHdrLen    = 12
	icmpHdrLen    = 8 // OVS requires the full 8-byte ICMP/ICMPv6 header
	ndTargetLen   = 16
)

// ICMPv6 neighbour discovery.
const (
	icmp6NS        = 135
	icmp6NA        = 136
	ndOptSourceLLA = 1
	ndOptTargetLLA = 2
)

// IsVLANTPID reports whether an ethertype introduces an 802.1Q or 802.1ad
// tag (the two TPIDs Open vSwitch parses).
func IsVLANTPID(t uint16) bool { return t == EthTypeVLAN || t == EthTypeQinQ }

// maxVLANs is the number of tags Extract parses (OVS FLOW_MAX_VLAN_HEADERS).
const maxVLANs = len(Key{}.VLAN)

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// Extract parses the Ethernet frame into k and records header offsets in
// l. It never allocates, never panics and never retains frame.
//
// k is reset completely (only InPort is set from inPort) and l is reset to
// {L3: -1, L4: -1} before parsing, so no field survives from a previous
// call.
//
// The result is DropNone when every header Extract recognised was
// complete and well formed. Otherwise it names the first problem, and k
// still holds every field parsed before it, like Open vSwitch, which keeps
// switching such frames on their L2 fields:
//
//   - frame shorter than 14 bytes: DropTruncated, only InPort is set;
//   - a VLAN tag cut short: DropTruncated, DlType is that TPID (the MACs
//     and any complete outer tag are kept);
//   - bad IPv4 header (IHL < 5, total length shorter than the header):
//     DropMalformed; IPv4/IPv6 header or payload length beyond the frame:
//     DropTruncated. In both cases all L3/L4 fields stay zero while L2
//     fields, DlType and l.L3 are set. The IP version nibble is not
//     checked (the ethertype decides), exactly as OVS;
//   - IPv6 extension header chain cut short: DropTruncated with only the
//     IPv6 addresses set (OVS keeps no more);
//   - transport header (TCP 20 and its data offset, UDP 8, SCTP 12,
//     ICMP/IGMP/ICMPv6 8 bytes) cut short: DropTruncated (a TCP data
//     offset below 5: DropMalformed) with the L3 fields set, L4 fields
//     zero and l.L4 == -1.
//
// Whatever the result, l.L4 >= 0 guarantees the fixed transport header of
// k.NwProto lies within frame, and l.L3 >= 0 that frame has a complete
// Ethernet header (l.L3 is set for every Ethernet frame, even when the
// payload is unknown, as OVS's l3_ofs).
//
// An ARP/RARP that is not Ethernet/IPv4 or a truncated ARP body leaves the
// ARP fields zero (DropNone and DropTruncated respectively). Unknown
// ethertypes and IP protocols are not errors.
func Extract(frame []byte, inPort uint32, k *Key, l *Layout) DropReason {
	*k = Key{InPort: inPort}
	*l = Layout{L3: -1, L4: -1}
	if len(frame) < ethHdrLen {
		return DropTruncated
	}
	k.DlDst = [6]byte(frame[0:6])
	k.DlSrc = [6]byte(frame[6:12])

	// off is the offset of the current ethertype/TPID field.
	off := 12
	typ := be16(frame[off:])
	var reason DropReason
	n := 0
	for ; n < maxVLANs && IsVLANTPID(typ); n++ {
		// A tag is parsed only if it and the following ethertype are
		// present (OVS parse_vlan); otherwise the TPID is the ethertype.
		if len(frame)-off < vlanTagLen+2 {
			reason = DropTruncated
			break
		}
		k.VLAN[n] = VLANHdr{TPID: typ, TCI: be16(frame[off+2:]) | VLANCFI}
		off += vlanTagLen
		typ = be16(frame[off:])
	}
	l.VLANs = uint8(n)
	off += 2
	if typ < 0x0600 {
		// 802.3 length field. An LLC/SNAP header with the Ethernet OUI
		// carries an ethertype (RFC 1042), as OVS parse_ethertype.
		typ = EthTypeNone
		if s := frame[off:]; len(s) >= 8 && s[0] == 0xaa && s[1] == 0xaa &&
			s[2] == 0x03 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
			if t := be16(s[6:]); t >= 0x0600 {
				typ = t
				off += 8
			}
		}
	}
	k.DlType = typ
	l.L3 = int16(off) // off <= 12+4*maxVLANs+2+8
	if reason != DropNone {
		return reason
	}

	switch typ {
	case EthTypeIPv4:
		return extractIPv4(frame, off, k, l)
	case EthTypeIPv6:
		return extractIPv6(frame, off, k, l)
	case EthTypeARP, EthTypeRARP:
		return extractARP(frame[off:], k)
	}
	return DropNone
}

func extractARP(a []byte, k *Key) DropReason {
	if len(a) < arpEthIPv4Len {
		return DropTruncated
	}
	if be16(a[0:]) != 1 || be16(a[2:]) != EthTypeIPv4 || a[4] != 6 || a[5] != 4 {
		return DropNone // ARP for another medium or protocol: no fields
	}
	// Only the low 8 bits of the opcode are matched; a larger opcode
	// leaves NwProto zero (OVS).
	if op := be16(a[6:]); op <= 0xff {
		k.NwProto = uint8(op)
	}
	k.ArpSha = [6]byte(a[8:14])
	*(*[4]byte)(k.NwSrc[:4]) = [4]byte(a[14:18])
	k.ArpTha = [6]byte(a[18:24])
	*(*[4]byte)(k.NwDst[:4]) = [4]byte(a[24:28])
	return DropNone
}

func extractIPv4(frame []byte, off int, k *Key, l *Layout) DropReason {
	ip := frame[off:]
	if len(ip) < ipv4MinHdrLen {
		return DropTruncated
	}
	// Like OVS, the version nibble is not checked: the ethertype decides.
	ihl := int(ip[0]&0x0f) * 4
	if ihl < ipv4MinHdrLen {
		return DropMalformed
	}
	if len(ip) < ihl {
		return DropTruncated
	}
	tot := int(be16(ip[2:]))
	if tot < ihl {
		return DropMalformed
	}
	if tot > len(ip) {
		return DropTruncated
	}
	k.NwTOS = ip[1]
	k.NwTTL = ip[8]
	k.NwProto = ip[9]
	*(*[4]byte)(k.NwSrc[:4]) = [4]byte(ip[12:16])
	*(*[4]byte)(k.NwDst[:4]) = [4]byte(ip[16:20])
	if fo := be16(ip[6:]); fo&0x3fff != 0 { // MF or a fragment offset
		k.NwFrag = FragAny
		if fo&0x1fff != 0 {
			k.NwFrag |= FragLater
			return DropNone // no transport header in later fragments
		}
	}
	// Ethernet padding after the datagram is never parsed.
	return extractL4(ip[ihl:tot], off+ihl, k, l)
}

func extractIPv6(frame []byte, off int, k *Key, l *Layout) DropReason {
	ip := frame[off:]
	if len(ip) < ipv6HdrLen {
		return DropTruncated
	}
	plen := int(be16(ip[4:]))
	if ipv6HdrLen+plen > len(ip) {
		return DropTruncated
	}
	// Like OVS, the version nibble is not checked, and a bad extension
	// header chain leaves only the addresses in the key.
	k.NwSrc = [16]byte(ip[8:24])
	k.NwDst = [16]byte(ip[24:40])
	vtf := be32(ip[0:])
	k.NwTTL = ip[7]
	k.NwTOS = uint8(vtf >> 20)
	k.IPv6Label = vtf & 0x000fffff

	proto := ip[6]
	p := ip[ipv6HdrLen : ipv6HdrLen+plen]
	l4 := off + ipv6HdrLen
	// Every extension header consumes at least 8 bytes of p, so the loop
	// ends after at most plen/8 rounds.
	for {
		if len(p) < 8 && isIPv6Ext(proto) {
			return badIPv6Ext(k)
		}
		var n int
		switch proto {
		case IPProtoHopByHop, IPProtoRouting, IPProtoDstOpts:
			n = (int(p[1]) + 1) * 8
		case IPProtoAH:
			n = (int(p[1]) + 2) * 4
		case IPProtoFragment:
			// Any non-zero offset/flags word marks a fragment (OVS);
			// only the first fragment carries the upper-layer header.
			if offlg := be16(p[2:]); offlg != 0 {
				k.NwFrag = FragAny
				if offlg&0xfff8 != 0 {
					k.NwFrag |= FragLater
					k.NwProto = IPProtoFragment
					return DropNone
				}
			}
			n = 8
		default:
			// Upper-layer protocol, ESP, no-next-header or unknown.
			k.NwProto = proto
			return extractL4(p, l4, k, l)
		}
		if len(p) < n {
			return badIPv6Ext(k)
		}
		proto = p[0]
		p = p[n:]
		l4 += n
	}
}

// badIPv6Ext clears what OVS does not keep for an IPv6 packet whose
// extension header chain is cut short: all but the addresses.
func badIPv6Ext(k *Key) DropReason {
	k.NwTTL, k.NwTOS, k.IPv6Label, k.NwFrag = 0, 0, 0, 0
	return DropTruncated
}

// isIPv6Ext reports whether proto is an IPv6 extension header Extract
// walks over.
func isIPv6Ext(proto uint8) bool {
	switch proto {
	case IPProtoHopByHop, IPProtoRouting, IPProtoDstOpts, IPProtoAH, IPProtoFragment:
		return true
	}
	return false
}

// extractL4 parses the transport header p found at offset off of the
// frame, for k.NwProto. As in OVS, ICMP, IGMP and ICMPv6 are recognised
// whatever the IP version.
func extractL4(p []byte, off int, k *Key, l *Layout) DropReason {
	switch k.NwProto {
	case IPProtoTCP:
		if len(p) < tcpMinHdrLen {
			return DropTruncated
		}
		// The data offset must cover the fixed header and fit (OVS).
		if hl := int(p[12]>>4) * 4; hl < tcpMinHdrLen {
			return DropMalformed
		} else if hl > len(p) {
			return DropTruncated
		}
		k.TpSrc = be16(p[0:])
		k.TpDst = be16(p[2:])
		k.TCPFlags = be16(p[12:]) & 0x0fff
	case IPProtoUDP:
		if len(p) < udpHdrLen {
			return DropTruncated
		}
		k.TpSrc = be16(p[0:])
		k.TpDst = be16(p[2:])
	case IPProtoSCTP:
		if len(p) < sctpHdrLen {
			return DropTruncated
		}
		k.TpSrc = be16(p[0:])
		k.TpDst = be16(p[2:])
	case IPProtoICMP, IPProtoIGMP:
		if len(p) < icmpHdrLen { // IGMP's header is 8 bytes too
			return DropTruncated
		}
		k.TpSrc = uint16(p[0])
		k.TpDst = uint16(p[1])
	case IPProtoICMPv6:
		if len(p) < icmpHdrLen {
			return DropTruncated
		}
		k.TpSrc = uint16(p[0])
		k.TpDst = uint16(p[1])
		if p[1] == 0 && (p[0] == icmp6NS || p[0] == icmp6NA) {
			extractND(p[icmpHdrLen:], k)
		}
	default:
		return DropNone
	}
	if off > math.MaxInt16 {
		// Only reachable through huge IPv6 extension chains: the
		// offset does not fit the Layout, so report the header as absent.
		k.TpSrc, k.TpDst, k.TCPFlags = 0, 0, 0
		k.ArpSha, k.ArpTha = [6]byte{}, [6]byte{}
		return DropMalformed
	}
	l.L4 = int16(off)
	return DropNone
}

// extractND fills ArpSha/ArpTha from the source/target link-layer address
// options of a neighbour solicitation/advertisement (OVS does the same;
// the ND target itself has no field in Key). As OVS's parse_icmpv6, an
// option with a zero or overrunning length ends the walk (addresses found
// so far are kept) and a second source or target address option clears
// both; neither is a drop reason.
func extractND(p []byte, k *Key) {
	if len(p) < ndTargetLen {
		return
	}
	p = p[ndTargetLen:]
	for len(p) >= 8 {
		n := int(p[1]) * 8
		if n == 0 || n > len(p) {
			return // OVS stops at a bad option length, keeping what it found
		}
		if n == 8 {
			switch p[0] {
			case ndOptSourceLLA:
				if k.ArpSha != ([6]byte{}) {
					goto invalid
				}
				copy(k.ArpSha[:], p[2:8])
			case ndOptTargetLLA:
				if k.ArpTha != ([6]byte{}) {
					goto invalid
				}
				copy(k.ArpTha[:], p[2:8])
			}
		}
		p = p[n:]
	}
	return
invalid:
	k.ArpSha, k.ArpTha = [6]byte{}, [6]byte{}
}

// ExtractBatch runs Extract on every packet of a batch, with each
// packet's InPort, writing keys[i], layouts[i] and reasons[i]. The three
// slices must be at least len(pkts) long (callers size them once, with the
// batch). It returns how many packets were not fully parsed.
func ExtractBatch(pkts []*Packet, keys []Key, layouts []Layout, reasons []DropReason) int {
	keys, layouts, reasons = keys[:len(pkts)], layouts[:len(pkts)], reasons[:len(pkts)]
	bad := 0
	for i, p := range pkts {
		r := Extract(p.Data(), p.InPort, &keys[i], &layouts[i])
		reasons[i] = r
		if r != DropNone {
			bad++
		}
	}
	return bad
}
