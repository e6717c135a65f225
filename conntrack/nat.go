package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"xvs/flow"
)

// NATKind says which side of a new connection NAT rewrites.
type NATKind uint8

const (
	// NATNone: plain ct(nat): translate packets of connections that
	// already have a translation, set none up on commit.
	NATNone NATKind = iota
	NATSrc          // nat(src=...): rewrite the source of orig packets
	NATDst          // nat(dst=...): rewrite the destination of orig packets
)

// NATSpec is the argument of OVS's nat(src=IP[-IP][:PORT[-PORT]]) or
// nat(dst=...). A zero AddrMax means AddrMin only; zero ports mean "keep
// the original port" (for src, a clash then falls back to 1024-65535, as
// OVS). ICMP echo identifiers are never translated.
type NATSpec struct {
	Kind             NATKind
	AddrMin, AddrMax netip.Addr
	PortMin, PortMax uint16
}

// ErrNATSyntax is returned (wrapped) by ParseNAT.
var ErrNATSyntax = errors.New("conntrack: bad nat syntax")

// ParseNAT parses "src=IP[-IP][:PORT[-PORT]]", "dst=..." or "" (plain
// nat). IPv6 addresses with ports are bracketed: "dst=[fd00::1]:80".
func ParseNAT(s string) (NATSpec, error) {
	var n NATSpec
	switch {
	case s == "":
		return n, nil
	case strings.HasPrefix(s, "src="):
		n.Kind = NATSrc
	case strings.HasPrefix(s, "dst="):
		n.Kind = NATDst
	default:
		return n, fmt.Errorf("%w: %q", ErrNATSyntax, s)
	}
	s = s[4:]
	var addrs, ports string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return n, fmt.Errorf("%w: %q", ErrNATSyntax, s)
		}
		addrs, ports = s[1:end], s[end+1:]
		if ports != "" {
			if ports[0] != ':' {
				return n, fmt.Errorf("%w: %q", ErrNATSyntax, s)
			}
			ports = ports[1:]
		}
	} else if strings.Count(s, ":") == 1 {
		addrs, ports, _ = strings.Cut(s, ":")
	} else {
		addrs = s
	}
	lo, hi, _ := strings.Cut(addrs, "-")
	var err error
	if n.AddrMin, err = netip.ParseAddr(lo); err != nil {
		return n, fmt.Errorf("%w: %w", ErrNATSyntax, err)
	}
	if hi != "" {
		if n.AddrMax, err = netip.ParseAddr(hi); err != nil {
			return n, fmt.Errorf("%w: %w", ErrNATSyntax, err)
		}
		if n.AddrMax.Is4() != n.AddrMin.Is4() || n.AddrMax.Less(n.AddrMin) {
			return n, fmt.Errorf("%w: bad address range %q", ErrNATSyntax, addrs)
		}
	}
	if ports != "" {
		plo, phi, _ := strings.Cut(ports, "-")
		a, err1 := strconv.ParseUint(plo, 10, 16)
		b := a
		var err2 error
		if phi != "" {
			b, err2 = strconv.ParseUint(phi, 10, 16)
		}
		if err1 != nil || err2 != nil || a == 0 || b < a {
			return n, fmt.Errorf("%w: bad port range %q", ErrNATSyntax, ports)
		}
		n.PortMin, n.PortMax = uint16(a), uint16(b)
	}
	return n, nil
}

// String formats the spec as in an OVS ct action, e.g.
// "src=10.0.0.1-10.0.0.9:1024-2047".
func (n NATSpec) String() string {
	var b strings.Builder
	switch n.Kind {
	case NATSrc:
		b.WriteString("src=")
	case NATDst:
		b.WriteString("dst=")
	default:
		return ""
	}
	v6 := n.AddrMin.Is6()
	if v6 && n.PortMin != 0 {
		b.WriteByte('[')
	}
	b.WriteString(n.AddrMin.String())
	if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
		b.WriteString("-" + n.AddrMax.String())
	}
	if v6 && n.PortMin != 0 {
		b.WriteByte(']')
	}
	if n.PortMin != 0 {
		fmt.Fprintf(&b, ":%d", n.PortMin)
		if n.PortMax > n.PortMin {
			fmt.Fprintf(&b, "-%d", n.PortMax)
		}
	}
	return b.String()
}

// maxNATTries bounds the tuples tried when committing with NAT.
const maxNATTries = 1 << 16

// commitNAT chooses c.reply (with translation if nat asks for one) and
// inserts c. It returns false (counting NATFail) when no candidate tuple
// is free.
func (t *Tracker) commitNAT(c *conn, nat *NATSpec) bool {
	o := &c.orig
	if nat == nil || nat.Kind == NATNone {
		c.reply = o.Reverse()
		if t.insert(c) {
			return true
		}
		t.natFail.Add(1)
		return false
	}
	if !nat.AddrMin.IsValid() || nat.AddrMin.Is4() == o.IPv6 {
		t.natFail.Add(1)
		return false
	}
	base := nat.AddrMin.As16()
	if !o.IPv6 {
		a := nat.AddrMin.As4()
		base = [16]byte{}
		copy(base[:], a[:])
	}
	nAddr := uint64(1)
	if nat.AddrMax.IsValid() {
		nAddr = addrDiff(nat.AddrMin, nat.AddrMax) + 1
	}
	// Port candidates: [pmin, pmin+nPort).
	origPort := o.SrcPort
	if nat.Kind == NATDst {
		origPort = o.DstPort
	}
	ports := hasPorts(o.Proto)
	pmin, nPort := origPort, uint64(1)
	if ports && nat.PortMin != 0 {
		pmin, nPort = nat.PortMin, uint64(nat.PortMax)-uint64(nat.PortMin)+1
	}
	h := o.hash()
	tries := 0
	try := func(addr [16]byte, port uint16) bool {
		tries++
		r := Tuple{Zone: o.Zone, Proto: o.Proto, IPv6: o.IPv6}
		if nat.Kind == NATSrc {
			r.Src, r.Dst, r.SrcPort, r.DstPort = o.Dst, addr, o.DstPort, port
		} else {
			r.Src, r.Dst, r.SrcPort, r.DstPort = addr, o.Src, port, o.SrcPort
		}
		c.reply = r
		c.natSrc = r.Dst != o.Src || r.DstPort != o.SrcPort
		c.natDst = r.Src != o.Dst || r.SrcPort != o.DstPort
		return t.insert(c)
	}
	for ai := uint64(0); ai < nAddr && tries < maxNATTries; ai++ {
		addr := addrAdd(base, o.IPv6, (h+ai)%nAddr)
		for pi := uint64(0); pi < nPort && tries < maxNATTries; pi++ {
			p := pmin
			if nPort > 1 {
				p = uint16(uint64(pmin) + (h>>16+pi)%nPort)
			}
			if try(addr, p) {
				return true
			}
		}
	}
	if ports && nat.Kind == NATSrc && nat.PortMin == 0 {
		// Source port clash without a configured range: ephemeral ports.
		addr := addrAdd(base, o.IPv6, h%nAddr)
		const lo, n = 1024, 65536 - 1024
		for pi := uint64(0); pi < n && tries < maxNATTries; pi++ {
			if try(addr, uint16(lo+(h>>16+pi)%n)) {
				return true
			}
		}
	}
	t.natFail.Add(1)
	return false
}

// addrDiff returns hi-lo for addresses of one family (low 64 bits for
// IPv6; ranges beyond that are clamped).
func addrDiff(lo, hi netip.Addr) uint64 {
	a, b := lo.As16(), hi.As16()
	if binary.BigEndian.Uint64(a[:8]) != binary.BigEndian.Uint64(b[:8]) {
		return 1<<64 - 2
	}
	return binary.BigEndian.Uint64(b[8:]) - binary.BigEndian.Uint64(a[8:])
}

func addrAdd(a [16]byte, v6 bool, off uint64) [16]byte {
	if !v6 {
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(off))
		return a
	}
	binary.BigEndian.PutUint64(a[8:], binary.BigEndian.Uint64(a[8:])+off)
	return a
}

// target returns what a packet of c travelling in direction reply must
// look like after translation: the reverse of the other direction's tuple.
func (c *conn) target(reply bool) *Tuple {
	if reply {
		return &c.origRev
	}
	return &c.replyRev
}

// natFlags returns the SNAT/DNAT bits for a packet of c in direction reply.
func (c *conn) natFlags(reply bool) Flags {
	var f Flags
	s, d := c.natSrc, c.natDst
	if reply {
		s, d = d, s
	}
	if s {
		f |= CSSNAT
	}
	if d {
		f |= CSDNAT
	}
	return f
}

// applyNAT rewrites a packet of c so it matches the translated direction,
// updating k. It returns the SNAT/DNAT flags.
func applyNAT(k *flow.Key, pkt *flow.Packet, l *flow.Layout, c *conn, reply bool) Flags {
	if !c.natSrc && !c.natDst {
		return 0
	}
	to := c.target(reply)
	if k.NwSrc != to.Src {
		setAddr(pkt, k, l, true, to.Src)
		k.NwSrc = to.Src
	}
	if k.NwDst != to.Dst {
		setAddr(pkt, k, l, false, to.Dst)
		k.NwDst = to.Dst
	}
	if hasPorts(k.NwProto) {
		if k.TpSrc != to.SrcPort && flow.SetL4Src(pkt, k, l, to.SrcPort) == nil {
			k.TpSrc = to.SrcPort
		}
		if k.TpDst != to.DstPort && flow.SetL4Dst(pkt, k, l, to.DstPort) == nil {
			k.TpDst = to.DstPort
		}
	}
	return c.natFlags(reply)
}

func setAddr(pkt *flow.Packet, k *flow.Key, l *flow.Layout, src bool, a [16]byte) {
	switch {
	case k.DlType == flow.EthTypeIPv4 && src:
		_ = flow.SetIPv4Src(pkt, k, l, [4]byte(a[:4]))
	case k.DlType == flow.EthTypeIPv4:
		_ = flow.SetIPv4Dst(pkt, k, l, [4]byte(a[:4]))
	case src:
		_ = flow.SetIPv6Src(pkt, k, l, a)
	default:
		_ = flow.SetIPv6Dst(pkt, k, l, a)
	}
}

// natRelated translates an ICMP error related to c: the outer addresses
// that carry a translated address, the embedded header (addresses, ports,
// its IPv4 checksum, its UDP/TCP checksum when present) and the ICMP
// checksum (recomputed in full). inner is the frame offset of the
// embedded IP header; reply the direction the error travels.
func natRelated(k *flow.Key, pkt *flow.Packet, l *flow.Layout, c *conn, reply bool, inner int) Flags {
	from, to := &c.orig, &c.replyRev
	if reply {
		from, to = &c.reply, &c.origRev
	}
	var f Flags
	if k.NwSrc == from.Src && from.Src != to.Src {
		setAddr(pkt, k, l, true, to.Src)
		k.NwSrc = to.Src
		f |= CSSNAT
	}
	if k.NwDst == from.Dst && from.Dst != to.Dst {
		setAddr(pkt, k, l, false, to.Dst)
		k.NwDst = to.Dst
		f |= CSDNAT
	}
	d := pkt.Data()
	end := ipEnd(d, k, l)
	// The embedded packet travelled the other way: it becomes to reversed.
	want := Tuple{Src: to.Dst, Dst: to.Src, SrcPort: to.DstPort, DstPort: to.SrcPort}
	var l4 int
	var pseudo uint32 // one's complement delta of the inner addresses
	if !c.orig.IPv6 {
		ip := d[inner:]
		l4 = inner + int(ip[0]&0x0f)*4
		pseudo = csumDelta(ip[12:20], append4(want.Src, want.Dst))
		c16 := binary.BigEndian.Uint16(ip[10:])
		binary.BigEndian.PutUint16(ip[10:], csumApply(c16, pseudo))
		copy(ip[12:16], want.Src[:4])
		copy(ip[16:20], want.Dst[:4])
	} else {
		ip := d[inner:]
		l4 = inner + 40
		pseudo = csumDelta(ip[8:40], append16(want.Src, want.Dst))
		copy(ip[8:24], want.Src[:])
		copy(ip[24:40], want.Dst[:])
	}
	if hasPorts(c.orig.Proto) && l4+8 <= end {
		h := d[l4:end]
		var pb [4]byte
		binary.BigEndian.PutUint16(pb[0:], want.SrcPort)
		binary.BigEndian.PutUint16(pb[2:], want.DstPort)
		delta := pseudo + csumDelta(h[0:4], pb[:])
		switch c.orig.Proto {
		case flow.IPProtoUDP:
			if v := binary.BigEndian.Uint16(h[6:]); v != 0 {
				v = csumApply(v, delta)
				if v == 0 {
					v = 0xffff
				}
				binary.BigEndian.PutUint16(h[6:], v)
			}
		case flow.IPProtoTCP:
			if len(h) >= 18 {
				binary.BigEndian.PutUint16(h[16:], csumApply(binary.BigEndian.Uint16(h[16:]), delta))
			}
		}
		copy(h[0:4], pb[:])
	}
	// ICMP checksum over the whole message (pseudo-header for ICMPv6).
	if end < int(l.L4)+8 {
		return f
	}
	msg := d[l.L4:end]
	msg[2], msg[3] = 0, 0
	var s uint32
	if c.orig.IPv6 {
		ip := d[l.L3:]
		s = sum16(ip[8:40], 0)
		s += uint32(len(msg)) + flow.IPProtoICMPv6
	}
	binary.BigEndian.PutUint16(msg[2:], ^fold(sum16(msg, s)))
	return f
}

// ipEnd returns the frame offset where the IP datagram ends.
func ipEnd(d []byte, k *flow.Key, l *flow.Layout) int {
	end := len(d)
	if k.DlType == flow.EthTypeIPv4 {
		end = int(l.L3) + int(binary.BigEndian.Uint16(d[l.L3+2:]))
	} else if int(l.L3)+40 <= len(d) {
		end = int(l.L3) + 40 + int(binary.BigEndian.Uint16(d[l.L3+4:]))
	}
	return min(end, len(d))
}

func append4(a, b [16]byte) []byte {
	var x [8]byte
	copy(x[:4], a[:4])
	copy(x[4:], b[:4])
	return x[:]
}

func append16(a, b [16]byte) []byte {
	var x [32]byte
	copy(x[:16], a[:])
	copy(x[16:], b[:])
	return x[:]
}

// sum16 adds b as big-endian 16-bit words (odd tail padded) to s.
func sum16(b []byte, s uint32) uint32 {
	n := len(b) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
		if s >= 1<<31 {
			s = s&0xffff + s>>16
		}
	}
	if len(b)&1 != 0 {
		s += uint32(b[n]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// csumDelta is the one's complement difference of old becoming new (even
// lengths, at most 32 bytes).
func csumDelta(old, new []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(old); i += 2 {
		s += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	return s
}

func csumApply(c uint16, delta uint32) uint16 { return ^fold(uint32(^c) + delta) }
