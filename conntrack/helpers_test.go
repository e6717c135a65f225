package conntrack

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"xvs/flow"
)

// pkt is a test packet description.
type pkt struct {
	src, dst     string
	sport, dport uint16
	proto        uint8  // flow.IPProto*
	flags        uint16 // TCP flags
	icmpType     uint8
	icmpCode     uint8
	id           uint16 // ICMP echo id
	payload      []byte // L4 payload (ICMP errors: embedded datagram)
	frag         bool   // set MF (first fragment)
}

// build serialises p with gopacket (checksums computed by gopacket) and
// extracts it.
func build(t testing.TB, p pkt) (*flow.Packet, *flow.Key, *flow.Layout) {
	t.Helper()
	src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ls []gopacket.SerializableLayer
	var netl gopacket.NetworkLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocol(p.proto),
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: 7}
		if p.frag {
			ip.Flags = layers.IPv4MoreFragments
		}
		ls, netl = append(ls, eth, ip), ip
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(p.proto),
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ls, netl = append(ls, eth, ip), ip
	}
	switch p.proto {
	case flow.IPProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport),
			Seq: 1000, Ack: 2000, Window: 8192,
			FIN: p.flags&tcpFIN != 0, SYN: p.flags&tcpSYN != 0, RST: p.flags&tcpRST != 0,
			PSH: p.flags&tcpPSH != 0, ACK: p.flags&tcpACK != 0, URG: p.flags&tcpURG != 0}
		tcp.SetNetworkLayerForChecksum(netl)
		ls = append(ls, tcp)
	case flow.IPProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		udp.SetNetworkLayerForChecksum(netl)
		ls = append(ls, udp)
	case flow.IPProtoICMP:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, p.icmpCode), Id: p.id, Seq: 1})
	case flow.IPProtoICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(p.icmpType, p.icmpCode)}
		ic.SetNetworkLayerForChecksum(netl)
		ls = append(ls, ic)
		if p.icmpType == icmp6EchoRequest || p.icmpType == icmp6EchoReply {
			ls = append(ls, &layers.ICMPv6Echo{Identifier: p.id, SeqNumber: 1})
		} else {
			ls = append(ls, gopacket.Payload([]byte{0, 0, 0, 0})) // unused/MTU word
		}
	}
	pl := p.payload
	if pl == nil {
		pl = []byte("hello conntrack")
	}
	ls = append(ls, gopacket.Payload(pl))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	b := make([]byte, flow.Headroom+len(frame)+64)
	copy(b[flow.Headroom:], frame)
	fp := &flow.Packet{Buf: b, Off: flow.Headroom, Len: len(frame)}
	var k flow.Key
	var l flow.Layout
	if r := flow.Extract(fp.Data(), 1, &k, &l); r != flow.DropNone {
		t.Fatalf("extract: %v", r)
	}
	verifyCsum(t, fp, &l)
	return fp, &k, &l
}

// embedded returns the first 28 (IPv4) or 48 (IPv6) bytes of the
// datagram in fp, as an ICMP error carries it.
func embedded(fp *flow.Packet, l *flow.Layout, v6 bool) []byte {
	n := 28
	if v6 {
		n = 48
	}
	return append([]byte(nil), fp.Data()[l.L3:int(l.L3)+n]...)
}

func csum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// verifyCsum recomputes every checksum of the frame in full (IPv4 header,
// TCP/UDP/ICMPv6 with pseudo-header, ICMPv4; for ICMP errors the embedded
// IPv4 header too) and fails the test on a mismatch.
func verifyCsum(t testing.TB, fp *flow.Packet, l *flow.Layout) {
	t.Helper()
	d := fp.Data()
	ip := d[l.L3:]
	var pseudo uint32
	var proto uint8
	var l4 []byte
	if ip[0]>>4 == 4 {
		hl := int(ip[0]&15) * 4
		if c := csum(ip[:hl], 0); c != 0xffff {
			t.Fatalf("bad IPv4 header checksum (sum %#x)", c)
		}
		proto = ip[9]
		tl := int(binary.BigEndian.Uint16(ip[2:]))
		l4 = ip[hl:tl]
		pseudo = uint32(csum(ip[12:20], 0)) + uint32(proto) + uint32(len(l4))
	} else {
		proto = ip[6]
		l4 = ip[40 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
		pseudo = uint32(csum(ip[8:40], 0)) + uint32(proto) + uint32(len(l4))
	}
	switch proto {
	case flow.IPProtoTCP, flow.IPProtoICMPv6:
		if c := csum(l4, pseudo); c != 0xffff {
			t.Fatalf("bad proto %d checksum (sum %#x)", proto, c)
		}
	case flow.IPProtoUDP:
		if binary.BigEndian.Uint16(l4[6:]) != 0 {
			if c := csum(l4, pseudo); c != 0xffff {
				t.Fatalf("bad UDP checksum (sum %#x)", c)
			}
		}
	case flow.IPProtoICMP:
		if c := csum(l4, 0); c != 0xffff {
			t.Fatalf("bad ICMP checksum (sum %#x)", c)
		}
		if isICMPError(l4[0], false) && len(l4) >= 28 {
			in := l4[8:]
			if c := csum(in[:int(in[0]&15)*4], 0); c != 0xffff {
				t.Fatalf("bad embedded IPv4 checksum (sum %#x)", c)
			}
		}
	}
}

// decode returns the frame's addresses and ports as gopacket sees them.
func decode(t testing.TB, fp *flow.Packet) (src, dst string, sport, dport uint16) {
	t.Helper()
	p := gopacket.NewPacket(fp.Data(), layers.LayerTypeEthernet, gopacket.Default)
	if n := p.NetworkLayer(); n != nil {
		f := n.NetworkFlow()
		src, dst = f.Src().String(), f.Dst().String()
	}
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		sport, dport = uint16(l4.SrcPort), uint16(l4.DstPort)
	case *layers.UDP:
		sport, dport = uint16(l4.SrcPort), uint16(l4.DstPort)
	}
	return
}
