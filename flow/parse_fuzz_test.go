package flow

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzExtract checks that Extract never panics, keeps its invariants, and
// agrees with gopacket's layers (an independent decoder) on every field
// both decode. The seed corpus is the table of TestExtract plus
// testdata/fuzz/FuzzExtract.
func FuzzExtract(f *testing.F) {
	for _, tc := range extractCases() {
		f.Add(tc.frame)
	}
	for _, bf := range benchFrames() {
		f.Add(bf.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		var k, k2 Key
		var l, l2 Layout
		r := Extract(frame, 3, &k, &l)
		if !bytes.Equal(orig, frame) {
			t.Fatal("Extract modified the frame")
		}
		if r >= NumDropReasons || r == DropVLANDepth {
			t.Fatalf("unexpected reason %v", r)
		}
		if k.InPort != 3 || k.Words()[KeyWords-1]>>32 != 0 {
			t.Fatalf("bad in_port or padding: %+v", k)
		}
		checkLayoutInvariant(t, frame, &k, &l)
		// Deterministic and stateless.
		k2 = Key{TpSrc: 0xffff, NwTTL: 9}
		if r2 := Extract(frame, 3, &k2, &l2); r2 != r || k2 != k || l2 != l {
			t.Fatalf("second Extract differs: %v %+v %+v", r2, k2, l2)
		}
		oracle(t, frame, &k, &l, r)
	})
}

// cleanLayers decodes frame with gopacket and returns the layers that
// decoded without error. gopacket adds some layers (IPv4) to the packet
// even when their decoding fails, so the layer in front of a
// DecodeFailure is decoded again, alone, from its predecessor's payload.
func cleanLayers(frame []byte) []gopacket.Layer {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	ls := pkt.Layers()
	n := len(ls)
	if n == 0 {
		return nil
	}
	if _, ok := ls[n-1].(*gopacket.DecodeFailure); !ok {
		return ls
	}
	n--
	if n == 0 {
		return nil
	}
	data := frame
	if n > 1 {
		data = ls[n-2].LayerPayload()
	}
	dl, ok := ls[n-1].(gopacket.DecodingLayer)
	if !ok {
		return ls[:n-1]
	}
	fresh := reflect.New(reflect.TypeOf(dl).Elem()).Interface().(gopacket.DecodingLayer)
	if fresh.DecodeFromBytes(data, gopacket.NilDecodeFeedback) != nil {
		return ls[:n-1]
	}
	return ls[:n]
}

// oracle compares k with gopacket's decoding of frame, layer by layer,
// as far as both decoders agree on what the bytes are.
func oracle(t testing.TB, frame []byte, k *Key, l *Layout, r DropReason) {
	t.Helper()
	ls := cleanLayers(frame)
	if len(ls) == 0 {
		return
	}
	eth, ok := ls[0].(*layers.Ethernet)
	if !ok {
		if len(frame) >= 14 {
			t.Fatalf("gopacket failed on a %d-byte Ethernet frame", len(frame))
		}
		if r != DropTruncated {
			t.Fatalf("runt frame: reason %v", r)
		}
		return
	}
	if !bytes.Equal(k.DlDst[:], eth.DstMAC) || !bytes.Equal(k.DlSrc[:], eth.SrcMAC) {
		t.Fatalf("MACs %x %x, gopacket %v %v", k.DlDst, k.DlSrc, eth.DstMAC, eth.SrcMAC)
	}
	typ := uint16(eth.EthernetType)
	if eth.EthernetType == layers.EthernetTypeLLC {
		typ = eth.Length // < 0x600
	}
	i := 1
	for n := 0; i < len(ls); n++ {
		d, ok := ls[i].(*layers.Dot1Q)
		if !ok {
			break
		}
		if n == len(k.VLAN) {
			// Third tag: the TPID is the ethertype, nothing further.
			if k.DlType != typ || l.VLANs != 2 || l.L4 != -1 || k.NwProto != 0 {
				t.Fatalf("third tag: DlType %#x want %#x, layout %+v", k.DlType, typ, l)
			}
			return
		}
		tci := uint16(d.Priority)<<13 | d.VLANIdentifier | VLANCFI
		if k.VLAN[n] != (VLANHdr{TPID: typ, TCI: tci}) {
			t.Fatalf("tag %d: %+v, gopacket tpid %#x tci %#x", n, k.VLAN[n], typ, tci)
		}
		typ = uint16(d.Type)
		i++
	}
	if typ < 0x600 {
		// 802.3 frame: OVS semantics (EthTypeNone unless Ethernet SNAP).
		if k.DlType == EthTypeNone {
			return
		}
		s := frame[l.L3-8 : l.L3]
		if !bytes.Equal(s[:6], []byte{0xaa, 0xaa, 3, 0, 0, 0}) || binary.BigEndian.Uint16(s[6:]) != k.DlType {
			t.Fatalf("802.3 frame with DlType %#x", k.DlType)
		}
		return
	}
	if k.DlType != typ {
		t.Fatalf("DlType %#x, gopacket %#x", k.DlType, typ)
	}
	if i >= len(ls) || (typ != EthTypeIPv4 && typ != EthTypeIPv6 && typ != EthTypeARP) {
		return // gopacket decodes more (e.g. 0xffff as raw IP); we do not
	}
	switch h := ls[i].(type) {
	case *layers.IPv4:
		oracleIPv4(t, h, ls[i+1:], k, l, r)
	case *layers.IPv6:
		oracleIPv6(t, h, ls[i+1:], k, l, r)
	case *layers.ARP:
		if h.AddrType != layers.LinkTypeEthernet || h.Protocol != layers.EthernetTypeIPv4 ||
			h.HwAddressSize != 6 || h.ProtAddressSize != 4 {
			if k.NwProto != 0 || k.NwSrc != ([16]byte{}) || k.ArpSha != ([6]byte{}) {
				t.Fatalf("foreign ARP filled fields: %+v", k)
			}
			return
		}
		op := uint8(0)
		if h.Operation <= 0xff {
			op = uint8(h.Operation)
		}
		if r != DropNone || k.NwProto != op || !bytes.Equal(k.NwSrc[:4], h.SourceProtAddress) ||
			!bytes.Equal(k.NwDst[:4], h.DstProtAddress) || !bytes.Equal(k.ArpSha[:], h.SourceHwAddress) ||
			!bytes.Equal(k.ArpTha[:], h.DstHwAddress) {
			t.Fatalf("ARP key %+v (reason %v), gopacket %+v", k, r, h)
		}
	}
}

func oracleIPv4(t testing.TB, ip *layers.IPv4, rest []gopacket.Layer, k *Key, l *Layout, r DropReason) {
	t.Helper()
	zeroL3 := k.NwSrc == [16]byte{} && k.NwDst == [16]byte{} && k.NwProto == 0 && k.NwTTL == 0 && l.L4 == -1
	switch {
	case binary.BigEndian.Uint16(ip.Contents[2:]) == 0:
		// gopacket's TSO special case; OVS (and we) call it malformed.
		if r != DropMalformed || !zeroL3 {
			t.Fatalf("IPv4 length 0: reason %v key %+v", r, k)
		}
		return
	case int(ip.Length) > len(ip.Contents)+len(ip.Payload):
		if r != DropTruncated || !zeroL3 {
			t.Fatalf("truncated IPv4: reason %v key %+v", r, k)
		}
		return
	}
	frag := uint8(0)
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		frag = FragAny
		if ip.FragOffset != 0 {
			frag |= FragLater
		}
	}
	if !bytes.Equal(k.NwSrc[:4], ip.SrcIP) || !bytes.Equal(k.NwDst[:4], ip.DstIP) ||
		[12]byte(k.NwSrc[4:]) != [12]byte{} || [12]byte(k.NwDst[4:]) != [12]byte{} ||
		k.NwProto != uint8(ip.Protocol) || k.NwTOS != ip.TOS || k.NwTTL != ip.TTL || k.NwFrag != frag {
		t.Fatalf("IPv4 key %+v, gopacket %+v", k, ip)
	}
	if int(l.L3)+int(ip.IHL)*4 != int(l.L4) && l.L4 != -1 {
		t.Fatalf("L4 %d != L3 %d + IHL %d", l.L4, l.L3, ip.IHL)
	}
	if frag&FragLater != 0 || len(rest) == 0 {
		return
	}
	if frag == 0 {
		oracleL4(t, rest[0], uint8(ip.Protocol), len(ip.Payload), false, k, l, r)
	}
}

func oracleIPv6(t testing.TB, ip *layers.IPv6, rest []gopacket.Layer, k *Key, l *Layout, r DropReason) {
	t.Helper()
	if ip.Length == 0 {
		return // jumbogram: not supported by OVS either
	}
	if int(ip.Length) > len(ip.Payload)+hbhLen(ip) {
		if r != DropTruncated || k.NwSrc != ([16]byte{}) {
			t.Fatalf("truncated IPv6: reason %v key %+v", r, k)
		}
		return
	}
	if !bytes.Equal(k.NwSrc[:], ip.SrcIP) || !bytes.Equal(k.NwDst[:], ip.DstIP) {
		t.Fatalf("IPv6 addresses %+v, gopacket %+v", k, ip)
	}
	if r == DropTruncated && k.NwProto == 0 {
		// Extension header chain cut short: OVS keeps only addresses.
		if k.NwTOS != 0 || k.IPv6Label != 0 || k.NwTTL != 0 || l.L4 != -1 {
			t.Fatalf("IPv6 with a bad extension chain kept %+v", k)
		}
		return
	}
	if k.NwTOS != ip.TrafficClass || k.IPv6Label != ip.FlowLabel || k.NwTTL != ip.HopLimit {
		t.Fatalf("IPv6 key %+v, gopacket %+v", k, ip)
	}
	next := ip.NextHeader
	if ip.HopByHop != nil {
		next = ip.HopByHop.NextHeader
	}
	for _, layer := range rest {
		switch h := layer.(type) {
		case *layers.IPv6HopByHop:
			next = h.NextHeader
		case *layers.IPv6Routing:
			next = h.NextHeader
		case *layers.IPv6Destination:
			next = h.NextHeader
		case *layers.IPSecAH:
			next = h.NextHeader
		case *layers.IPv6Fragment:
			if h.FragmentOffset != 0 {
				if k.NwProto != IPProtoFragment || k.NwFrag != FragAny|FragLater || r != DropNone {
					t.Fatalf("later IPv6 fragment: %+v %v", k, r)
				}
				return
			}
			if h.MoreFragments {
				if k.NwFrag != FragAny {
					t.Fatalf("first IPv6 fragment: %+v", k)
				}
				return
			}
			next = h.NextHeader
		case *layers.IPSecESP:
			if k.NwProto != IPProtoESP || l.L4 != -1 {
				t.Fatalf("ESP: %+v", k)
			}
			return
		default:
			oracleL4(t, layer, uint8(next), len(layer.LayerContents())+len(layer.LayerPayload()), true, k, l, r)
			return
		}
	}
}

// hbhLen is the size of the hop-by-hop header gopacket folded into ip.
func hbhLen(ip *layers.IPv6) int {
	if ip.HopByHop == nil {
		return 0
	}
	return ip.HopByHop.ActualLength
}

// oracleL4 compares the transport fields. n is the size of the transport
// header plus payload as gopacket saw it.
func oracleL4(t testing.TB, layer gopacket.Layer, proto uint8, n int, v6 bool, k *Key, l *Layout, r DropReason) {
	t.Helper()
	var sp, dp, flags uint16
	switch h := layer.(type) {
	case *layers.TCP:
		sp, dp = uint16(h.SrcPort), uint16(h.DstPort)
		for i, b := range []bool{h.FIN, h.SYN, h.RST, h.PSH, h.ACK, h.URG, h.ECE, h.CWR, h.NS} {
			if b {
				flags |= 1 << i
			}
		}
		if k.TCPFlags&0x1ff != flags {
			t.Fatalf("TCP flags %#x, gopacket %#x", k.TCPFlags, flags)
		}
	case *layers.UDP:
		sp, dp = uint16(h.SrcPort), uint16(h.DstPort)
	case *layers.SCTP:
		sp, dp = uint16(h.SrcPort), uint16(h.DstPort)
	case *layers.ICMPv4:
		sp, dp = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
	case *layers.ICMPv6:
		if n < icmpHdrLen {
			if r != DropTruncated || l.L4 != -1 {
				t.Fatalf("short ICMPv6 (%d bytes): reason %v layout %+v", n, r, l)
			}
			return
		}
		sp, dp = uint16(h.TypeCode.Type()), uint16(h.TypeCode.Code())
	default:
		return
	}
	if k.NwProto != proto || k.TpSrc != sp || k.TpDst != dp || l.L4 < 0 || r != DropNone {
		t.Fatalf("L4 %T: key proto %d ports %d/%d layout %+v reason %v; gopacket proto %d %d/%d",
			layer, k.NwProto, k.TpSrc, k.TpDst, l, r, proto, sp, dp)
	}
}

// fakeTB records a failure instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

type fakeFatal struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	panic(fakeFatal{})
}

// oracleFails runs the oracle with a fake TB and reports whether it
// failed.
func oracleFails(frame []byte, k *Key, l *Layout, r DropReason) (failed bool) {
	ft := &fakeTB{}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fakeFatal); !ok {
				panic(v)
			}
		}
		failed = ft.failed
	}()
	oracle(ft, frame, k, l, r)
	return false
}

// TestOracle makes sure the oracle is not vacuous: it accepts every table
// case and rejects each one with a corrupted key field.
func TestOracle(t *testing.T) {
	corrupt := []struct {
		name string
		f    func(*Key)
	}{
		{"dl_src", func(k *Key) { k.DlSrc[5] ^= 1 }},
		{"dl_type", func(k *Key) { k.DlType ^= 0x100 }},
		{"vlan", func(k *Key) { k.VLAN[0].TCI ^= 1 }},
		{"nw_src", func(k *Key) { k.NwSrc[3] ^= 1 }},
		{"nw_proto", func(k *Key) { k.NwProto ^= 0x80 }},
		{"tp_dst", func(k *Key) { k.TpDst ^= 1 }},
		{"arp_sha", func(k *Key) { k.ArpSha[0] ^= 1 }},
		{"ttl", func(k *Key) { k.NwTTL ^= 1 }},
	}
	caught := map[string]int{}
	for _, tc := range extractCases() {
		var k Key
		var l Layout
		r := Extract(tc.frame, 3, &k, &l)
		if oracleFails(tc.frame, &k, &l, r) {
			t.Errorf("%s: oracle rejects Extract's key", tc.name)
		}
		for _, c := range corrupt {
			bad := k
			c.f(&bad)
			if bad != k && oracleFails(tc.frame, &bad, &l, r) {
				caught[c.name]++
			}
		}
	}
	for _, c := range corrupt {
		if caught[c.name] == 0 {
			t.Errorf("oracle never caught a corrupted %s", c.name)
		}
	}
	t.Logf("corruptions caught: %v", caught)
}
