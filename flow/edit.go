package flow

import (
	"encoding/binary"
	"errors"
)

// Errors returned by the in-place edits. They are preallocated sentinels:
// returning them does not allocate; compare with errors.Is.
var (
	// ErrNoHeadroom: the packet has fewer than 4 bytes in front of the
	// frame, so a VLAN tag cannot be pushed in place.
	ErrNoHeadroom = errors.New("flow: no headroom in front of the frame")
	// ErrNoVLAN: the frame has no (complete) outer VLAN tag.
	ErrNoVLAN = errors.New("flow: frame has no VLAN tag")
	// ErrNoHeader: the frame lacks the header the edit rewrites (per the
	// Key and Layout given), or that header is too short.
	ErrNoHeader = errors.New("flow: frame lacks the header to edit")
	// ErrFragment: the SCTP checksum of a fragment cannot be fixed (it
	// covers bytes that are not in this frame).
	ErrFragment = errors.New("flow: cannot fix the checksum of a fragment")
)

// Edits rewrite a Packet's frame in place. Conventions shared by all:
//
//   - k and l are what Extract produced for this frame (and l as updated
//     by later VLAN edits). k is read only (DlType, NwProto, NwFrag): the
//     edits never update it, so after an edit k still describes the frame
//     as received; callers that keep matching on k update it themselves.
//   - l is updated by edits that move headers (PushVLAN, PopVLAN), so a
//     chain of edits can keep using it without re-parsing.
//   - Offsets are bounds-checked against p.Len: a Key/Layout that does not
//     fit the frame yields an error, never a panic or a write outside the
//     frame.
//   - Checksums are patched incrementally (see csum.go): IPv4 header
//     checksum, and TCP/UDP/ICMPv6 checksums whose pseudo-header or
//     covered field changed. A UDP checksum of zero ("none") stays zero.
//   - Nothing allocates.

// PushVLAN inserts a new outermost VLAN tag (tpid, tci) after the MAC
// addresses, growing the frame into its headroom (p.Off decreases by 4,
// p.Len grows by 4; the payload does not move).
//
// tci uses the Key convention: the VLANCFI "present" bit is cleared on the
// wire, as Open vSwitch does, so PushVLAN(p, l, k.VLAN[0].TPID,
// k.VLAN[0].TCI) restores a tag Extract read. If l is not nil its offsets
// move by 4 and l.VLANs grows by one (it may then exceed 2: it counts the
// tags in front of l.L3).
func PushVLAN(p *Packet, l *Layout, tpid, tci uint16) error {
	if p.Len < ethHdrLen {
		return ErrNoHeader
	}
	if p.Off < vlanTagLen {
		return ErrNoHeadroom
	}
	b := p.Buf[p.Off-vlanTagLen : p.Off+ethHdrLen]
	copy(b[0:12], b[vlanTagLen:12+vlanTagLen])
	binary.BigEndian.PutUint16(b[12:], tpid)
	binary.BigEndian.PutUint16(b[14:], tci&^VLANCFI)
	p.Off -= vlanTagLen
	p.Len += vlanTagLen
	if l != nil {
		if l.VLANs < 255 {
			l.VLANs++
		}
		l.shift(vlanTagLen)
	}
	return nil
}

// PopVLAN removes the outermost VLAN tag (TPID 0x8100 or 0x88a8 right
// after the MACs), shrinking the frame from the front (p.Off grows by 4,
// p.Len shrinks by 4). If l is not nil its offsets move back by 4 and
// l.VLANs drops by one.
func PopVLAN(p *Packet, l *Layout) error {
	if p.Len < ethHdrLen+vlanTagLen {
		return ErrNoVLAN
	}
	d := p.Data()
	if !IsVLANTPID(be16(d[12:])) {
		return ErrNoVLAN
	}
	copy(d[vlanTagLen:12+vlanTagLen], d[0:12])
	p.Off += vlanTagLen
	p.Len -= vlanTagLen
	if l != nil {
		if l.VLANs > 0 {
			l.VLANs--
		}
		l.shift(-vlanTagLen)
	}
	return nil
}

// SetVLANTCI rewrites the TCI of the outermost VLAN tag. tci uses the Key
// convention (VLANCFI is cleared on the wire); to change only the VID or
// PCP, combine with the old value from the Key, e.g.
// k.VLAN[0].TCI&^VLANVIDMask | vid.
func SetVLANTCI(p *Packet, tci uint16) error {
	if p.Len < ethHdrLen+vlanTagLen {
		return ErrNoVLAN
	}
	d := p.Data()
	if !IsVLANTPID(be16(d[12:])) {
		return ErrNoVLAN
	}
	binary.BigEndian.PutUint16(d[14:], tci&^VLANCFI)
	return nil
}

// shift moves the present offsets of l by delta bytes.
func (l *Layout) shift(delta int16) {
	if l.L3 >= 0 {
		l.L3 = max(l.L3+delta, -1)
	}
	if l.L4 >= 0 {
		l.L4 = max(l.L4+delta, -1)
	}
}

// SetEthSrc rewrites the Ethernet source address.
func SetEthSrc(p *Packet, mac [6]byte) error {
	if p.Len < ethHdrLen {
		return ErrNoHeader
	}
	copy(p.Data()[6:12], mac[:])
	return nil
}

// SetEthDst rewrites the Ethernet destination address.
func SetEthDst(p *Packet, mac [6]byte) error {
	if p.Len < ethHdrLen {
		return ErrNoHeader
	}
	copy(p.Data()[0:6], mac[:])
	return nil
}

// ipv4Hdr returns the frame from the IPv4 header on, or nil if k/l do not
// describe a complete IPv4 header within p.
func ipv4Hdr(p *Packet, k *Key, l *Layout) []byte {
	if k.DlType != EthTypeIPv4 || l.L3 < 0 {
		return nil
	}
	d := p.Data()
	if int(l.L3)+ipv4MinHdrLen > len(d) {
		return nil
	}
	ip := d[l.L3:]
	if int(ip[0]&0x0f)*4 < ipv4MinHdrLen {
		return nil
	}
	return ip
}

// ipv6Hdr is ipv4Hdr for IPv6.
func ipv6Hdr(p *Packet, k *Key, l *Layout) []byte {
	if k.DlType != EthTypeIPv6 || l.L3 < 0 {
		return nil
	}
	d := p.Data()
	if int(l.L3)+ipv6HdrLen > len(d) {
		return nil
	}
	return d[l.L3:]
}

// l4Hdr returns the frame from the transport header on if at least n of
// its bytes are present, else nil.
func l4Hdr(p *Packet, l *Layout, n int) []byte {
	if l.L4 < 0 || int(l.L4)+n > p.Len {
		return nil
	}
	return p.Data()[l.L4:]
}

// SetIPv4Src rewrites the IPv4 source address, patching the IPv4 header
// checksum and the TCP/UDP checksum (pseudo-header) when this frame
// carries the transport header (not for non-first fragments).
func SetIPv4Src(p *Packet, k *Key, l *Layout, addr [4]byte) error {
	return setIPv4Addr(p, k, l, 12, addr)
}

// SetIPv4Dst rewrites the IPv4 destination address (see SetIPv4Src).
func SetIPv4Dst(p *Packet, k *Key, l *Layout, addr [4]byte) error {
	return setIPv4Addr(p, k, l, 16, addr)
}

func setIPv4Addr(p *Packet, k *Key, l *Layout, at int, addr [4]byte) error {
	ip := ipv4Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	old := ip[at : at+4]
	delta := csumDelta(old, addr[:])
	switch k.NwProto {
	case IPProtoTCP:
		if th := l4Hdr(p, l, tcpMinHdrLen); th != nil {
			l4CsumApply(th[16:18], false, delta)
		}
	case IPProtoUDP:
		if uh := l4Hdr(p, l, udpHdrLen); uh != nil {
			l4CsumApply(uh[6:8], true, delta)
		}
	}
	binary.BigEndian.PutUint16(ip[10:], csumApply(be16(ip[10:]), delta))
	copy(old, addr[:])
	return nil
}

// SetIPv4TOS rewrites the whole IPv4 TOS byte (DSCP and ECN) and patches
// the header checksum. To change only the DSCP (OpenFlow nw_tos/ip_dscp),
// keep the ECN bits: k.NwTOS&0x03 | dscp<<2.
func SetIPv4TOS(p *Packet, k *Key, l *Layout, tos uint8) error {
	ip := ipv4Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	old := be16(ip[0:])
	binary.BigEndian.PutUint16(ip[10:], csumReplace16(be16(ip[10:]), old, old&0xff00|uint16(tos)))
	ip[1] = tos
	return nil
}

// SetIPv4TTL rewrites the IPv4 TTL and patches the header checksum.
func SetIPv4TTL(p *Packet, k *Key, l *Layout, ttl uint8) error {
	ip := ipv4Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	old := be16(ip[8:])
	binary.BigEndian.PutUint16(ip[10:], csumReplace16(be16(ip[10:]), old, uint16(ttl)<<8|old&0x00ff))
	ip[8] = ttl
	return nil
}

// SetIPv6Src rewrites the IPv6 source address, patching the TCP, UDP or
// ICMPv6 checksum (pseudo-header) when this frame carries the transport
// header.
func SetIPv6Src(p *Packet, k *Key, l *Layout, addr [16]byte) error {
	return setIPv6Addr(p, k, l, 8, addr)
}

// SetIPv6Dst rewrites the IPv6 destination address like SetIPv6Src. When
// a routing header with segments left is present the pseudo-header holds
// the final destination, not this field, so no transport checksum changes
// (as Open vSwitch).
func SetIPv6Dst(p *Packet, k *Key, l *Layout, addr [16]byte) error {
	return setIPv6Addr(p, k, l, 24, addr)
}

func setIPv6Addr(p *Packet, k *Key, l *Layout, at int, addr [16]byte) error {
	ip := ipv6Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	old := ip[at : at+16]
	fix := true
	if at == 24 && l.L4 > l.L3+ipv6HdrLen {
		fix = !ipv6RoutingPending(ip, int(l.L4-l.L3))
	}
	if fix {
		delta := csumDelta(old, addr[:])
		switch k.NwProto {
		case IPProtoTCP:
			if th := l4Hdr(p, l, tcpMinHdrLen); th != nil {
				l4CsumApply(th[16:18], false, delta)
			}
		case IPProtoUDP:
			if uh := l4Hdr(p, l, udpHdrLen); uh != nil {
				l4CsumApply(uh[6:8], true, delta)
			}
		case IPProtoICMPv6:
			if ih := l4Hdr(p, l, icmpHdrLen); ih != nil {
				l4CsumApply(ih[2:4], false, delta)
			}
		}
	}
	copy(old, addr[:])
	return nil
}

// ipv6RoutingPending reports whether the extension headers between the
// fixed header and offset end (relative to ip) include a routing header
// with segments left.
func ipv6RoutingPending(ip []byte, end int) bool {
	if end > len(ip) {
		end = len(ip)
	}
	proto := ip[6]
	p := ip[ipv6HdrLen:end]
	for len(p) >= 8 {
		var n int
		switch proto {
		case IPProtoRouting:
			if p[3] != 0 {
				return true
			}
			n = (int(p[1]) + 1) * 8
		case IPProtoHopByHop, IPProtoDstOpts:
			n = (int(p[1]) + 1) * 8
		case IPProtoAH:
			n = (int(p[1]) + 2) * 4
		case IPProtoFragment:
			n = 8
		default:
			return false
		}
		if n > len(p) {
			return false
		}
		proto = p[0]
		p = p[n:]
	}
	return false
}

// SetIPv6TClass rewrites the IPv6 traffic class (Key.NwTOS). IPv6 has no
// header checksum and the pseudo-header does not cover it.
func SetIPv6TClass(p *Packet, k *Key, l *Layout, tc uint8) error {
	ip := ipv6Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	ip[0] = ip[0]&0xf0 | tc>>4
	ip[1] = tc<<4 | ip[1]&0x0f
	return nil
}

// SetIPv6Label rewrites the 20-bit IPv6 flow label (higher bits of label
// are ignored).
func SetIPv6Label(p *Packet, k *Key, l *Layout, label uint32) error {
	ip := ipv6Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	v := be32(ip)&0xfff00000 | label&0x000fffff
	binary.BigEndian.PutUint32(ip, v)
	return nil
}

// SetIPv6HopLimit rewrites the IPv6 hop limit (Key.NwTTL).
func SetIPv6HopLimit(p *Packet, k *Key, l *Layout, hl uint8) error {
	ip := ipv6Hdr(p, k, l)
	if ip == nil {
		return ErrNoHeader
	}
	ip[7] = hl
	return nil
}

// SetL4Src rewrites the TCP, UDP or SCTP source port and fixes the
// transport checksum (incrementally for TCP/UDP; for SCTP the CRC32c is
// recomputed over the packet and any error it had is preserved, as OVS).
// It fails with ErrNoHeader when the frame carries no such header (other
// protocols, non-first fragments) and with ErrFragment for SCTP in a first
// fragment.
func SetL4Src(p *Packet, k *Key, l *Layout, port uint16) error {
	return setL4Port(p, k, l, 0, port)
}

// SetL4Dst rewrites the TCP, UDP or SCTP destination port (see SetL4Src).
func SetL4Dst(p *Packet, k *Key, l *Layout, port uint16) error {
	return setL4Port(p, k, l, 2, port)
}

func setL4Port(p *Packet, k *Key, l *Layout, at int, port uint16) error {
	if k.DlType != EthTypeIPv4 && k.DlType != EthTypeIPv6 {
		return ErrNoHeader
	}
	switch k.NwProto {
	case IPProtoTCP:
		th := l4Hdr(p, l, tcpMinHdrLen)
		if th == nil {
			return ErrNoHeader
		}
		old := be16(th[at:])
		binary.BigEndian.PutUint16(th[16:], csumReplace16(be16(th[16:]), old, port))
		binary.BigEndian.PutUint16(th[at:], port)
	case IPProtoUDP:
		uh := l4Hdr(p, l, udpHdrLen)
		if uh == nil {
			return ErrNoHeader
		}
		if c := be16(uh[6:]); c != 0 {
			c = csumReplace16(c, be16(uh[at:]), port)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(uh[6:], c)
		}
		binary.BigEndian.PutUint16(uh[at:], port)
	case IPProtoSCTP:
		sh := l4Hdr(p, l, sctpHdrLen)
		if sh == nil {
			return ErrNoHeader
		}
		if k.NwFrag&FragAny != 0 {
			return ErrFragment
		}
		end := ipPayloadEnd(p, k, l)
		if end < int(l.L4)+sctpHdrLen {
			return ErrNoHeader
		}
		sh = sh[:end-int(l.L4)]
		field := binary.LittleEndian.Uint32(sh[8:])
		before := sctpCRC(sh)
		binary.BigEndian.PutUint16(sh[at:], port)
		after := sctpCRC(sh)
		binary.LittleEndian.PutUint32(sh[8:], field^before^after)
	default:
		return ErrNoHeader
	}
	return nil
}

// ipPayloadEnd returns the frame offset where the IP datagram ends
// (before any Ethernet padding), clamped to the frame.
func ipPayloadEnd(p *Packet, k *Key, l *Layout) int {
	d := p.Data()
	end := len(d)
	if k.DlType == EthTypeIPv4 {
		if ip := ipv4Hdr(p, k, l); ip != nil {
			end = int(l.L3) + int(be16(ip[2:]))
		}
	} else if ip := ipv6Hdr(p, k, l); ip != nil {
		end = int(l.L3) + ipv6HdrLen + int(be16(ip[4:]))
	}
	return min(end, len(d))
}
