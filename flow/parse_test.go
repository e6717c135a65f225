package flow

import (
	"bytes"
	"testing"
)

type extractCase struct {
	name   string
	frame  []byte
	want   Key
	layout Layout
	reason DropReason
}

// l2 returns the key fields every Ethernet frame from hwB to hwA has.
func l2(dlType uint16, vlans ...VLANHdr) Key {
	k := Key{InPort: 7, DlType: dlType, DlSrc: hwB, DlDst: hwA}
	copy(k.VLAN[:], vlans)
	return k
}

func keyWith(k Key, f func(*Key)) Key { f(&k); return k }

func extractCases() []extractCase {
	udp := udp4(addr4A, addr4B, 1234, 53, []byte("query"))
	tcp := tcp4(addr4A, addr4B, 40000, 80, 0x012, nil) // SYN|ACK
	icmp := icmpMsg(8, 0, []byte("ping"))
	ns := icmp6(addr6A, addr6B, 135, 0, joinBytes(addr6C[:], []byte{1, 1, 2, 0, 0, 0, 0, 0x0a}))
	na := icmp6(addr6A, addr6B, 136, 0, joinBytes(addr6C[:], []byte{2, 1, 2, 0, 0, 0, 0, 0x0c}))
	badND := icmp6(addr6A, addr6B, 135, 0, joinBytes(addr6C[:], []byte{1, 1, 2, 0, 0, 0, 0, 0x0a, 1, 1, 2, 0, 0, 0, 0, 0x0b}))
	arp := func(op uint16, hrd uint16) []byte {
		b := appendBE16(nil, hrd)
		b = appendBE16(b, EthTypeIPv4)
		b = append(b, 6, 4)
		b = appendBE16(b, op)
		b = append(b, hwB[:]...)
		b = append(b, addr4A[:]...)
		b = append(b, hwC[:]...)
		return append(b, addr4B[:]...)
	}
	ipv4 := func(k Key, proto uint8) Key {
		k.NwSrc, k.NwDst = v4in16(addr4A), v4in16(addr4B)
		k.NwProto, k.NwTTL, k.NwTOS = proto, 64, 0xb8
		return k
	}
	ipv6 := func(k Key, proto uint8) Key {
		k.NwSrc, k.NwDst = addr6A, addr6B
		k.NwProto, k.NwTTL, k.NwTOS, k.IPv6Label = proto, 255, 0x2e, 0xbeef5
		return k
	}
	o4 := func(proto uint8) ip4Opts { return ip4Opts{tos: 0xb8, ttl: 64, proto: proto} }
	v6 := func(next uint8, payload []byte) []byte {
		return ipv6Pkt(addr6A, addr6B, 0x2e, 0xbeef5, 255, next, payload)
	}
	none := Layout{L3: -1, L4: -1}

	return []extractCase{
		{
			name:   "ipv4/udp",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udp)),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 1234, 53 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:   "ipv4/udp padded to 60 bytes",
			frame:  append(ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udpDgram(1, 2, nil))), make([]byte, 18)...),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 1, 2 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:  "dot1q/ipv4/tcp",
			frame: ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 5<<13 | 10}}, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoTCP), tcp)),
			want: keyWith(ipv4(l2(EthTypeIPv4, VLANHdr{EthTypeVLAN, 5<<13 | VLANCFI | 10}), IPProtoTCP), func(k *Key) {
				k.TpSrc, k.TpDst, k.TCPFlags = 40000, 80, 0x012
			}),
			layout: Layout{L3: 18, L4: 38, VLANs: 1},
		},
		{
			name:  "vid 0 tag keeps CFI marker",
			frame: ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 0}}, 0x88cc, []byte("lldp")),
			want:  l2(0x88cc, VLANHdr{EthTypeVLAN, VLANCFI}), layout: Layout{L3: 18, L4: -1, VLANs: 1},
		},
		{
			name:  "qinq/ipv4/icmp",
			frame: ethFrame(hwA, hwB, []wireTag{{EthTypeQinQ, 100}, {EthTypeVLAN, 3<<13 | 200}}, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoICMP), icmp)),
			want: keyWith(ipv4(l2(EthTypeIPv4, VLANHdr{EthTypeQinQ, VLANCFI | 100}, VLANHdr{EthTypeVLAN, 3<<13 | VLANCFI | 200}), IPProtoICMP), func(k *Key) {
				k.TpSrc, k.TpDst = 8, 0
			}),
			layout: Layout{L3: 22, L4: 42, VLANs: 2},
		},
		{
			name:   "third wireTag is not parsed",
			frame:  ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 1}, {EthTypeVLAN, 2}, {EthTypeVLAN, 3}}, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udp)),
			want:   l2(EthTypeVLAN, VLANHdr{EthTypeVLAN, VLANCFI | 1}, VLANHdr{EthTypeVLAN, VLANCFI | 2}),
			layout: Layout{L3: 22, L4: -1, VLANs: 2},
		},
		{
			name:   "truncated tag: TPID becomes the ethertype",
			frame:  ethFrame(hwA, hwB, nil, EthTypeVLAN, []byte{0, 5, 8}),
			want:   l2(EthTypeVLAN),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:  "arp request",
			frame: ethFrame(hwA, hwB, nil, EthTypeARP, arp(1, 1)),
			want: keyWith(l2(EthTypeARP), func(k *Key) {
				k.NwProto, k.NwSrc, k.NwDst, k.ArpSha, k.ArpTha = 1, v4in16(addr4A), v4in16(addr4B), hwB, hwC
			}),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:  "rarp reverse request",
			frame: ethFrame(hwA, hwB, nil, EthTypeRARP, arp(3, 1)),
			want: keyWith(l2(EthTypeRARP), func(k *Key) {
				k.NwProto, k.NwSrc, k.NwDst, k.ArpSha, k.ArpTha = 3, v4in16(addr4A), v4in16(addr4B), hwB, hwC
			}),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:  "arp opcode above 255 is not matched",
			frame: ethFrame(hwA, hwB, nil, EthTypeARP, arp(0x0101, 1)),
			want: keyWith(l2(EthTypeARP), func(k *Key) {
				k.NwSrc, k.NwDst, k.ArpSha, k.ArpTha = v4in16(addr4A), v4in16(addr4B), hwB, hwC
			}),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "arp for another hardware type",
			frame:  ethFrame(hwA, hwB, nil, EthTypeARP, arp(1, 6)),
			want:   l2(EthTypeARP),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "arp truncated",
			frame:  ethFrame(hwA, hwB, nil, EthTypeARP, arp(1, 1)[:27]),
			want:   l2(EthTypeARP),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv4 first fragment keeps ports",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{tos: 0xb8, ttl: 64, proto: IPProtoUDP, frag: 0x2000}, udp)),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst, k.NwFrag = 1234, 53, FragAny }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:   "ipv4 later fragment has no ports",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{tos: 0xb8, ttl: 64, proto: IPProtoUDP, frag: 0x0010}, udp)),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.NwFrag = FragAny | FragLater }),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "ipv4 DF is not a fragment",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{tos: 0xb8, ttl: 64, proto: IPProtoUDP, frag: 0x4000}, udp)),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 1234, 53 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name: "ipv4 options",
			frame: ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B,
				ip4Opts{tos: 0xb8, ttl: 64, proto: IPProtoTCP, options: []byte{0x94, 4, 0, 0, 1, 1, 1, 0}}, tcp)),
			want: keyWith(ipv4(l2(EthTypeIPv4), IPProtoTCP), func(k *Key) {
				k.TpSrc, k.TpDst, k.TCPFlags = 40000, 80, 0x012
			}),
			layout: Layout{L3: 14, L4: 42},
		},
		{
			name:   "ipv4 sctp",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoSCTP), sctpPkt(5000, 6000))),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoSCTP), func(k *Key) { k.TpSrc, k.TpDst = 5000, 6000 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:   "ipv4 unknown protocol",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(47), []byte{0, 0, 8, 0})),
			want:   ipv4(l2(EthTypeIPv4), 47),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:  "tcp flags keep 12 bits",
			frame: ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoTCP), tcp4(addr4A, addr4B, 1, 2, 0x1ff, nil))),
			want: keyWith(ipv4(l2(EthTypeIPv4), IPProtoTCP), func(k *Key) {
				k.TpSrc, k.TpDst, k.TCPFlags = 1, 2, 0x1ff
			}),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:   "ipv4 header cut",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udp)[:19]),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv4 total length beyond frame",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{proto: IPProtoUDP, totLenDelta: 1}, udp)),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv4 total length below header",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{proto: IPProtoUDP, totLenDelta: -len(udp) - 1}, udp)),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropMalformed,
		},
		{
			name:   "IPv6 packet with the IPv4 ethertype: IHL 0",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv6Pkt(addr6A, addr6B, 0, 0, 1, IPProtoUDP, udp)),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropMalformed,
		},
		{
			name:   "ipv4 IHL 4",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, joinBytes([]byte{0x44}, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udp)[1:])),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropMalformed,
		},
		{
			name:   "tcp header cut inside the datagram",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoTCP), tcp[:19])),
			want:   ipv4(l2(EthTypeIPv4), IPProtoTCP),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name: "tcp data offset below 5",
			frame: ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoTCP),
				joinBytes(tcp[:12], []byte{0x40}, tcp[13:]))),
			want:   ipv4(l2(EthTypeIPv4), IPProtoTCP),
			layout: Layout{L3: 14, L4: -1}, reason: DropMalformed,
		},
		{
			name: "tcp options beyond the datagram",
			frame: ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoTCP),
				joinBytes(tcp[:12], []byte{0x60}, tcp[13:]))),
			want:   ipv4(l2(EthTypeIPv4), IPProtoTCP),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "icmp header cut",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoICMP), icmp[:7])),
			want:   ipv4(l2(EthTypeIPv4), IPProtoICMP),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv6/tcp",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoTCP, tcp6(addr6A, addr6B, 22, 50000, 0x018, []byte("hi")))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoTCP), func(k *Key) { k.TpSrc, k.TpDst, k.TCPFlags = 22, 50000, 0x018 }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name: "ipv6 hbh+dstopts+routing/udp",
			frame: ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 42}}, EthTypeIPv6, v6(IPProtoHopByHop, joinBytes(
				extHdr(IPProtoDstOpts, 0, 0), extHdr(IPProtoRouting, 1, 0), extHdr(IPProtoUDP, 0, 0), udp6(addr6A, addr6B, 546, 547, nil)))),
			want:   keyWith(ipv6(l2(EthTypeIPv6, VLANHdr{EthTypeVLAN, VLANCFI | 42}), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 546, 547 }),
			layout: Layout{L3: 18, L4: 18 + 40 + 8 + 16 + 8, VLANs: 1},
		},
		{
			name:   "ipv6 AH/tcp",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoAH, joinBytes(ahHdr(IPProtoTCP, 4), tcpSeg(1, 2, 0x10, nil)))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoTCP), func(k *Key) { k.TpSrc, k.TpDst, k.TCPFlags = 1, 2, 0x10 }),
			layout: Layout{L3: 14, L4: 14 + 40 + 24},
		},
		{
			name:   "ipv6 first fragment",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoFragment, joinBytes(fragHdr(IPProtoUDP, 1), udpDgram(7, 8, nil)))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst, k.NwFrag = 7, 8, FragAny }),
			layout: Layout{L3: 14, L4: 62},
		},
		{
			name:   "ipv6 atomic fragment is not a fragment",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoFragment, joinBytes(fragHdr(IPProtoUDP, 0), udpDgram(7, 8, nil)))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 7, 8 }),
			layout: Layout{L3: 14, L4: 62},
		},
		{
			name:   "ipv6 later fragment: proto is fragment",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoFragment, joinBytes(fragHdr(IPProtoUDP, 8<<3|1), udpDgram(7, 8, nil)))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoFragment), func(k *Key) { k.NwFrag = FragAny | FragLater }),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "ipv6 esp ends the walk",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoESP, make([]byte, 24))),
			want:   ipv6(l2(EthTypeIPv6), IPProtoESP),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "ipv6 no next header",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoNoNext, nil)),
			want:   ipv6(l2(EthTypeIPv6), IPProtoNoNext),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "ipv6 extension header overruns payload: addresses only",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoHopByHop, extHdr(IPProtoUDP, 2, 0)[:16])),
			want:   keyWith(l2(EthTypeIPv6), func(k *Key) { k.NwSrc, k.NwDst = addr6A, addr6B }),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv6 payload length beyond frame",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoUDP, udpDgram(1, 2, nil))[:47]),
			want:   l2(EthTypeIPv6),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
		{
			name:   "ipv6 icmpv6 echo",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoICMPv6, icmp6(addr6A, addr6B, 128, 0, nil))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoICMPv6), func(k *Key) { k.TpSrc = 128 }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name:   "icmp (v4 number) in ipv6 is parsed, as OVS",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoICMP, icmpMsg(8, 0, nil))),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoICMP), func(k *Key) { k.TpSrc = 8 }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name:   "igmp v2 report",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o4(IPProtoIGMP), []byte{0x16, 0, 0xfa, 0x04, 239, 1, 2, 3})),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoIGMP), func(k *Key) { k.TpSrc = 0x16 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name: "ipv4 version nibble is not checked",
			frame: ethFrame(hwA, hwB, nil, EthTypeIPv4, joinBytes([]byte{0x55},
				ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), joinBytes(udpDgram(1, 2, nil), make([]byte, 4)))[1:])),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 1, 2 }),
			layout: Layout{L3: 14, L4: 34},
		},
		{
			name:   "neighbour solicitation with source LLA",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoICMPv6, ns)),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoICMPv6), func(k *Key) { k.TpSrc, k.ArpSha = 135, hwA }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name:   "neighbour advertisement with target LLA",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoICMPv6, na)),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoICMPv6), func(k *Key) { k.TpSrc, k.ArpTha = 136, hwC }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name:   "neighbour solicitation with duplicate LLA option",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv6, v6(IPProtoICMPv6, badND)),
			want:   keyWith(ipv6(l2(EthTypeIPv6), IPProtoICMPv6), func(k *Key) { k.TpSrc = 135 }),
			layout: Layout{L3: 14, L4: 54},
		},
		{
			name:   "802.2 LLC (STP)",
			frame:  ethFrame(hwA, hwB, nil, 38, joinBytes([]byte{0x42, 0x42, 0x03}, make([]byte, 35))),
			want:   l2(EthTypeNone),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "LLC/SNAP carrying IPv4",
			frame:  ethFrame(hwA, hwB, nil, 8+20+8, joinBytes([]byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, ipv4Pkt(addr4A, addr4B, o4(IPProtoUDP), udpDgram(9, 10, nil)))),
			want:   keyWith(ipv4(l2(EthTypeIPv4), IPProtoUDP), func(k *Key) { k.TpSrc, k.TpDst = 9, 10 }),
			layout: Layout{L3: 22, L4: 42},
		},
		{
			name:   "LLC/SNAP with another OUI",
			frame:  ethFrame(hwA, hwB, nil, 8+20, joinBytes([]byte{0xaa, 0xaa, 3, 0, 0, 0x0c, 0x20, 0}, make([]byte, 20))),
			want:   l2(EthTypeNone),
			layout: Layout{L3: 14, L4: -1},
		},
		{
			name:   "runt frame",
			frame:  hwA[:],
			want:   Key{InPort: 7},
			layout: none, reason: DropTruncated,
		},
		{
			name:   "bare ethernet header",
			frame:  ethFrame(hwA, hwB, nil, EthTypeIPv4, nil),
			want:   l2(EthTypeIPv4),
			layout: Layout{L3: 14, L4: -1}, reason: DropTruncated,
		},
	}
}

func TestExtract(t *testing.T) {
	for _, tc := range extractCases() {
		t.Run(tc.name, func(t *testing.T) {
			// Start from a dirty key/layout: nothing may survive.
			k := Key{DlType: 1, TpSrc: 2, NwFrag: 3, IPv6Label: 4, ArpSha: hwC}
			l := Layout{L3: 99, L4: 99, VLANs: 9}
			orig := bytes.Clone(tc.frame)
			r := Extract(tc.frame, 7, &k, &l)
			if r != tc.reason {
				t.Errorf("reason = %v, want %v", r, tc.reason)
			}
			if k != tc.want {
				t.Errorf("key\n got  %+v\n want %+v", k, tc.want)
			}
			if l != tc.layout {
				t.Errorf("layout = %+v, want %+v", l, tc.layout)
			}
			if !bytes.Equal(orig, tc.frame) {
				t.Error("Extract modified the frame")
			}
			checkLayoutInvariant(t, tc.frame, &k, &l)
		})
	}
}

// checkLayoutInvariant checks what edits rely on: offsets within the frame
// and a complete fixed transport header when L4 >= 0.
func checkLayoutInvariant(t *testing.T, frame []byte, k *Key, l *Layout) {
	t.Helper()
	if len(frame) >= 14 && (l.L3 < 14 || int(l.L3) > len(frame)) {
		t.Fatalf("L3 %d outside frame of %d", l.L3, len(frame))
	}
	if l.L4 < 0 {
		return
	}
	need := map[uint8]int{IPProtoTCP: 20, IPProtoUDP: 8, IPProtoSCTP: 12, IPProtoICMP: 8, IPProtoIGMP: 8, IPProtoICMPv6: 8}[k.NwProto]
	if need == 0 || l.L4 <= l.L3 || int(l.L4)+need > len(frame) {
		t.Fatalf("L4 %d (proto %d) invalid in frame of %d", l.L4, k.NwProto, len(frame))
	}
}

func TestExtractPaddingIsZero(t *testing.T) {
	for _, tc := range extractCases() {
		var k Key
		var l Layout
		Extract(tc.frame, 1, &k, &l)
		if w := k.Words(); w[KeyWords-1]>>32 != 0 {
			t.Errorf("%s: padding not zero: %#x", tc.name, w[KeyWords-1])
		}
	}
}

func TestDropReasonString(t *testing.T) {
	if DropTruncated.String() != "truncated" || DropMalformed.String() != "malformed" || DropReason(200).String() != "unknown" {
		t.Fatal("unexpected drop reason names")
	}
}

func TestExtractAllocs(t *testing.T) {
	var k Key
	var l Layout
	for _, tc := range extractCases() {
		frame := tc.frame
		if n := testing.AllocsPerRun(100, func() { Extract(frame, 1, &k, &l) }); n != 0 {
			t.Errorf("%s: %v allocs per Extract", tc.name, n)
		}
	}
}

func benchFrames() []struct {
	name  string
	frame []byte
} {
	udp := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoUDP}, udp4(addr4A, addr4B, 1, 2, make([]byte, 22))))
	tcp := ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 10}}, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoTCP}, tcp4(addr4A, addr4B, 1, 2, 0x10, make([]byte, 64))))
	v6 := ethFrame(hwA, hwB, nil, EthTypeIPv6, ipv6Pkt(addr6A, addr6B, 0, 1, 64, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, make([]byte, 32))))
	return []struct {
		name  string
		frame []byte
	}{{"udp64", udp}, {"vlan-tcp", tcp}, {"ipv6-udp", v6}}
}

func BenchmarkExtract(b *testing.B) {
	for _, bf := range benchFrames() {
		b.Run(bf.name, func(b *testing.B) {
			var k Key
			var l Layout
			b.ReportAllocs()
			b.SetBytes(int64(len(bf.frame)))
			for b.Loop() {
				Extract(bf.frame, 1, &k, &l)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}

func TestExtractBatch(t *testing.T) {
	cases := extractCases()
	pkts := make([]*Packet, len(cases))
	for i, tc := range cases {
		pkts[i] = newPacket(tc.frame)
		pkts[i].InPort = 7
	}
	keys := make([]Key, len(pkts))
	layouts := make([]Layout, len(pkts))
	reasons := make([]DropReason, len(pkts))
	bad := ExtractBatch(pkts, keys, layouts, reasons)
	wantBad := 0
	for i, tc := range cases {
		if keys[i] != tc.want || layouts[i] != tc.layout || reasons[i] != tc.reason {
			t.Errorf("%s: batch result differs from the table", tc.name)
		}
		if tc.reason != DropNone {
			wantBad++
		}
	}
	if bad != wantBad {
		t.Errorf("bad = %d, want %d", bad, wantBad)
	}
	if n := testing.AllocsPerRun(50, func() { ExtractBatch(pkts, keys, layouts, reasons) }); n != 0 {
		t.Errorf("%v allocs per ExtractBatch", n)
	}
}
