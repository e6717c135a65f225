package flow

// Test-side frame builders and a reference checksum. They are written
// independently of parse.go/csum.go (plain appends and a byte loop) so
// that tests compare the package against something it does not share code
// with.

import "encoding/binary"

var (
	hwA    = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	hwB    = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	hwC    = [6]byte{0x02, 0, 0, 0, 0, 0x0c}
	addr4A = [4]byte{198, 18, 0, 1}
	addr4B = [4]byte{198, 18, 0, 2}
	addr4C = [4]byte{198, 19, 7, 9}
	addr6A = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	addr6B = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	addr6C = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 14: 0xab, 15: 0xcd}
)

// wireTag is a VLAN tag as it appears on the wire.
type wireTag struct{ tpid, tci uint16 }

func appendBE16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

// ethFrame builds dst, src, the tags, the ethertype and the payload.
func ethFrame(dst, src [6]byte, tags []wireTag, typ uint16, payload []byte) []byte {
	b := append([]byte{}, dst[:]...)
	b = append(b, src[:]...)
	for _, t := range tags {
		b = appendBE16(b, t.tpid)
		b = appendBE16(b, t.tci)
	}
	b = appendBE16(b, typ)
	return append(b, payload...)
}

// refCsum is the Internet checksum of the concatenation of parts, by the
// book (RFC 1071), with a 64-bit accumulator.
func refCsum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(all[i])<<8 | uint64(all[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

type ip4Opts struct {
	tos, ttl, proto uint8
	frag            uint16 // flags+offset word
	options         []byte // multiple of 4
	totLenDelta     int    // added to the correct total length
}

// ipv4Pkt builds an IPv4 datagram with a correct header checksum.
func ipv4Pkt(src, dst [4]byte, o ip4Opts, payload []byte) []byte {
	ihl := 20 + len(o.options)
	h := make([]byte, 20, ihl+len(payload))
	h[0] = 0x40 | byte(ihl/4)
	h[1] = o.tos
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+len(payload)+o.totLenDelta))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], o.frag)
	h[8] = o.ttl
	h[9] = o.proto
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	h = append(h, o.options...)
	binary.BigEndian.PutUint16(h[10:], refCsum(h))
	return append(h, payload...)
}

// ipv6Pkt builds an IPv6 packet; payload includes any extension headers.
func ipv6Pkt(src, dst [16]byte, tc uint8, label uint32, hl, next uint8, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	binary.BigEndian.PutUint32(h, 6<<28|uint32(tc)<<20|label&0xfffff)
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = hl
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return append(h, payload...)
}

// extHdr builds a generic IPv6 extension header (HBH, routing, dst opts)
// of 8*(hlen+1) bytes; b3 is byte 3 (segments left for routing).
func extHdr(next, hlen, b3 uint8) []byte {
	h := make([]byte, 8*(int(hlen)+1))
	h[0], h[1], h[3] = next, hlen, b3
	if b3 == 0 && hlen == 0 {
		h[2] = 1 // PadN option
	}
	return h
}

func fragHdr(next uint8, offlg uint16) []byte {
	h := []byte{next, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	binary.BigEndian.PutUint16(h[2:], offlg)
	return h
}

// ahHdr builds an AH header of (plen+2)*4 bytes.
func ahHdr(next, plen uint8) []byte {
	h := make([]byte, (int(plen)+2)*4)
	h[0], h[1] = next, plen
	return h
}

func tcpSeg(sp, dp, flags uint16, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(h[0:], sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	binary.BigEndian.PutUint32(h[4:], 1000)
	binary.BigEndian.PutUint16(h[12:], 5<<12|flags)
	binary.BigEndian.PutUint16(h[14:], 65535)
	return append(h, payload...)
}

func udpDgram(sp, dp uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func sctpPkt(sp, dp uint16) []byte {
	h := make([]byte, 12, 28)
	binary.BigEndian.PutUint16(h[0:], sp)
	binary.BigEndian.PutUint16(h[2:], dp)
	binary.BigEndian.PutUint32(h[4:], 0xcafe)
	// one DATA chunk header with 4 bytes of payload
	return append(h, 0, 3, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'x', 'v', 's', '!')
}

func icmpMsg(typ, code uint8, rest []byte) []byte {
	return append([]byte{typ, code, 0, 0, 0, 1, 0, 2}, rest...)
}

// pseudo4/pseudo6 are the TCP/UDP pseudo-headers.
func pseudo4(src, dst [4]byte, proto uint8, n int) []byte {
	b := append(append([]byte{}, src[:]...), dst[:]...)
	b = append(b, 0, proto)
	return appendBE16(b, uint16(n))
}

func pseudo6(src, dst [16]byte, next uint8, n int) []byte {
	b := append(append([]byte{}, src[:]...), dst[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return append(b, 0, 0, 0, next)
}

// withCsum sets the checksum at off of seg to the reference checksum
// over pseudo+seg (0 becomes 0xffff for UDP).
func withCsum(pseudo, seg []byte, off int, udp bool) []byte {
	seg[off], seg[off+1] = 0, 0
	c := refCsum(pseudo, seg)
	if udp && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return seg
}

func tcp4(src, dst [4]byte, sp, dp, flags uint16, payload []byte) []byte {
	s := tcpSeg(sp, dp, flags, payload)
	return withCsum(pseudo4(src, dst, IPProtoTCP, len(s)), s, 16, false)
}

func udp4(src, dst [4]byte, sp, dp uint16, payload []byte) []byte {
	s := udpDgram(sp, dp, payload)
	return withCsum(pseudo4(src, dst, IPProtoUDP, len(s)), s, 6, true)
}

func tcp6(src, dst [16]byte, sp, dp, flags uint16, payload []byte) []byte {
	s := tcpSeg(sp, dp, flags, payload)
	return withCsum(pseudo6(src, dst, IPProtoTCP, len(s)), s, 16, false)
}

func udp6(src, dst [16]byte, sp, dp uint16, payload []byte) []byte {
	s := udpDgram(sp, dp, payload)
	return withCsum(pseudo6(src, dst, IPProtoUDP, len(s)), s, 6, true)
}

func icmp6(src, dst [16]byte, typ, code uint8, rest []byte) []byte {
	s := icmpMsg(typ, code, rest)
	return withCsum(pseudo6(src, dst, IPProtoICMPv6, len(s)), s, 2, false)
}

func v4in16(a [4]byte) (r [16]byte) { copy(r[:], a[:]); return r }

func joinBytes(bs ...[]byte) []byte {
	var r []byte
	for _, b := range bs {
		r = append(r, b...)
	}
	return r
}
