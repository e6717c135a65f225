package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// newPacket copies frame into a buffer with Headroom bytes in front and
// some tailroom, as ports hand frames to the datapath.
func newPacket(frame []byte) *Packet {
	buf := make([]byte, Headroom+len(frame)+64)
	copy(buf[Headroom:], frame)
	return &Packet{Buf: buf, Off: Headroom, Len: len(frame)}
}

func mustExtract(t testing.TB, frame []byte) (Key, Layout) {
	t.Helper()
	var k Key
	var l Layout
	if r := Extract(frame, 1, &k, &l); r != DropNone {
		t.Fatalf("Extract: %v", r)
	}
	return k, l
}

// sctpWithCRC returns an SCTP packet with a correct CRC32c (computed here
// with the standard library, little-endian on the wire).
func sctpWithCRC(sp, dp uint16) []byte {
	s := sctpPkt(sp, dp)
	binary.LittleEndian.PutUint32(s[8:], crc32.Checksum(s, crc32.MakeTable(crc32.Castagnoli)))
	return s
}

type editCase struct {
	name string
	in   []byte
	edit func(p *Packet, k *Key, l *Layout) error
	want []byte // nil: want err
	err  error
}

func editCases() []editCase {
	o := func(proto uint8) ip4Opts { return ip4Opts{ttl: 64, proto: proto} }
	e4 := func(src, dst [4]byte, o ip4Opts, l4 []byte) []byte {
		return ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(src, dst, o, l4))
	}
	e6 := func(src, dst [16]byte, next uint8, l4 []byte) []byte {
		return ethFrame(hwA, hwB, nil, EthTypeIPv6, ipv6Pkt(src, dst, 0, 7, 64, next, l4))
	}
	tcpAB := e4(addr4A, addr4B, o(IPProtoTCP), tcp4(addr4A, addr4B, 1000, 80, 0x18, []byte("payload!")))
	udpAB := e4(addr4A, addr4B, o(IPProtoUDP), udp4(addr4A, addr4B, 1000, 53, []byte("odd")))
	noCsum := func(b []byte) []byte { b = bytes.Clone(b); b[14+20+6], b[14+20+7] = 0, 0; return b }
	rh := joinBytes(extHdr(IPProtoTCP, 2, 1)) // routing header, 1 segment left
	tcp6rh := func(dst [16]byte) []byte {
		// The pseudo-header uses the final destination (addr6B), whatever
		// the IPv6 destination field says.
		return e6(addr6A, dst, IPProtoRouting, joinBytes(rh, tcp6(addr6A, addr6B, 5, 6, 0x2, nil)))
	}
	sctpAB := e4(addr4A, addr4B, o(IPProtoSCTP), sctpWithCRC(7, 8))
	badSCTP := bytes.Clone(sctpAB)
	badSCTP[14+20+8] ^= 0x55
	badSCTPWant := e4(addr4A, addr4B, o(IPProtoSCTP), sctpWithCRC(9, 8))
	badSCTPWant[14+20+8] ^= 0x55
	return []editCase{
		{"ipv4 src tcp", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4Src(p, k, l, addr4C) },
			e4(addr4C, addr4B, o(IPProtoTCP), tcp4(addr4C, addr4B, 1000, 80, 0x18, []byte("payload!"))), nil},
		{"ipv4 dst udp", udpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4Dst(p, k, l, addr4C) },
			e4(addr4A, addr4C, o(IPProtoUDP), udp4(addr4A, addr4C, 1000, 53, []byte("odd"))), nil},
		{"ipv4 src udp without checksum", noCsum(udpAB),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4Src(p, k, l, addr4C) },
			noCsum(e4(addr4C, addr4B, o(IPProtoUDP), udp4(addr4C, addr4B, 1000, 53, []byte("odd")))), nil},
		{"ipv4 later fragment: header only", e4(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoTCP, frag: 100}, []byte("fragment")),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4Dst(p, k, l, addr4C) },
			e4(addr4A, addr4C, ip4Opts{ttl: 64, proto: IPProtoTCP, frag: 100}, []byte("fragment")), nil},
		{"ipv4 tos", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4TOS(p, k, l, 0xb9) },
			e4(addr4A, addr4B, ip4Opts{tos: 0xb9, ttl: 64, proto: IPProtoTCP}, tcp4(addr4A, addr4B, 1000, 80, 0x18, []byte("payload!"))), nil},
		{"ipv4 ttl", udpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4TTL(p, k, l, 1) },
			e4(addr4A, addr4B, ip4Opts{ttl: 1, proto: IPProtoUDP}, udp4(addr4A, addr4B, 1000, 53, []byte("odd"))), nil},
		{"tcp src port", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 65535) },
			e4(addr4A, addr4B, o(IPProtoTCP), tcp4(addr4A, addr4B, 65535, 80, 0x18, []byte("payload!"))), nil},
		{"udp dst port", udpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetL4Dst(p, k, l, 5353) },
			e4(addr4A, addr4B, o(IPProtoUDP), udp4(addr4A, addr4B, 1000, 5353, []byte("odd"))), nil},
		{"udp port without checksum", noCsum(udpAB),
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 1) },
			noCsum(e4(addr4A, addr4B, o(IPProtoUDP), udp4(addr4A, addr4B, 1, 53, []byte("odd")))), nil},
		{"sctp src port", sctpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 9) },
			e4(addr4A, addr4B, o(IPProtoSCTP), sctpWithCRC(9, 8)), nil},
		{"sctp keeps a bad checksum bad", badSCTP,
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 9) },
			badSCTPWant, nil},
		{"ipv6 src tcp", e6(addr6A, addr6B, IPProtoTCP, tcp6(addr6A, addr6B, 1, 2, 0x10, []byte("x"))),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv6Src(p, k, l, addr6C) },
			e6(addr6C, addr6B, IPProtoTCP, tcp6(addr6C, addr6B, 1, 2, 0x10, []byte("x"))), nil},
		{"ipv6 dst udp", e6(addr6A, addr6B, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, []byte("xyz"))),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv6Dst(p, k, l, addr6C) },
			e6(addr6A, addr6C, IPProtoUDP, udp6(addr6A, addr6C, 1, 2, []byte("xyz"))), nil},
		{"ipv6 dst icmpv6", e6(addr6A, addr6B, IPProtoICMPv6, icmp6(addr6A, addr6B, 128, 0, []byte("ping"))),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv6Dst(p, k, l, addr6C) },
			e6(addr6A, addr6C, IPProtoICMPv6, icmp6(addr6A, addr6C, 128, 0, []byte("ping"))), nil},
		{"ipv6 dst with routing header: L4 checksum kept", tcp6rh(addr6C),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv6Dst(p, k, l, addr6A) },
			tcp6rh(addr6A), nil},
		{"ipv6 udp port", e6(addr6A, addr6B, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, nil)),
			func(p *Packet, k *Key, l *Layout) error { return SetL4Dst(p, k, l, 443) },
			e6(addr6A, addr6B, IPProtoUDP, udp6(addr6A, addr6B, 1, 443, nil)), nil},
		{"ipv6 tclass, label, hop limit", e6(addr6A, addr6B, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, nil)),
			func(p *Packet, k *Key, l *Layout) error {
				return errors.Join(SetIPv6TClass(p, k, l, 0xa5), SetIPv6Label(p, k, l, 0xfedcba), SetIPv6HopLimit(p, k, l, 3))
			},
			ethFrame(hwA, hwB, nil, EthTypeIPv6, ipv6Pkt(addr6A, addr6B, 0xa5, 0xedcba, 3, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, nil))), nil},
		{"eth src+dst", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return errors.Join(SetEthSrc(p, hwC), SetEthDst(p, hwB)) },
			ethFrame(hwB, hwC, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o(IPProtoTCP), tcp4(addr4A, addr4B, 1000, 80, 0x18, []byte("payload!")))), nil},
		{"push vlan", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return PushVLAN(p, l, EthTypeVLAN, VLANCFI|3<<13|100) },
			ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 3<<13 | 100}}, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, o(IPProtoTCP), tcp4(addr4A, addr4B, 1000, 80, 0x18, []byte("payload!")))), nil},
		{"push qinq then set outer tci", ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 10}}, 0x88b5, []byte("x")),
			func(p *Packet, k *Key, l *Layout) error {
				return errors.Join(PushVLAN(p, l, EthTypeQinQ, 20), SetVLANTCI(p, 7<<13|21))
			},
			ethFrame(hwA, hwB, []wireTag{{EthTypeQinQ, 7<<13 | 21}, {EthTypeVLAN, 10}}, 0x88b5, []byte("x")), nil},
		{"pop vlan", ethFrame(hwA, hwB, []wireTag{{EthTypeQinQ, 20}, {EthTypeVLAN, 10}}, 0x88b5, []byte("x")),
			func(p *Packet, k *Key, l *Layout) error { return PopVLAN(p, l) },
			ethFrame(hwA, hwB, []wireTag{{EthTypeVLAN, 10}}, 0x88b5, []byte("x")), nil},
		{"pop untagged", tcpAB, func(p *Packet, k *Key, l *Layout) error { return PopVLAN(p, l) }, nil, ErrNoVLAN},
		{"set tci untagged", tcpAB, func(p *Packet, k *Key, l *Layout) error { return SetVLANTCI(p, 1) }, nil, ErrNoVLAN},
		{"push without headroom", tcpAB,
			func(p *Packet, k *Key, l *Layout) error {
				p.Buf, p.Off = p.Buf[p.Off-3:], 3
				return PushVLAN(p, l, EthTypeVLAN, 1)
			}, nil, ErrNoHeadroom},
		{"port on icmp", e4(addr4A, addr4B, o(IPProtoICMP), icmpMsg(8, 0, nil)),
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 1) }, nil, ErrNoHeader},
		{"port on later fragment", e4(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoTCP, frag: 100}, make([]byte, 20)),
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 1) }, nil, ErrNoHeader},
		{"sctp first fragment", e4(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoSCTP, frag: 0x2000}, sctpWithCRC(1, 2)),
			func(p *Packet, k *Key, l *Layout) error { return SetL4Src(p, k, l, 1) }, nil, ErrFragment},
		{"ipv4 edit on ipv6", e6(addr6A, addr6B, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, nil)),
			func(p *Packet, k *Key, l *Layout) error { return SetIPv4TTL(p, k, l, 1) }, nil, ErrNoHeader},
		{"ipv6 edit on ipv4", tcpAB,
			func(p *Packet, k *Key, l *Layout) error { return SetIPv6Src(p, k, l, addr6A) }, nil, ErrNoHeader},
		{"layout beyond the frame", tcpAB,
			func(p *Packet, k *Key, l *Layout) error {
				l.L3, l.L4 = int16(p.Len-10), int16(p.Len-2)
				return errors.Join(SetIPv4Src(p, k, l, addr4C), SetL4Dst(p, k, l, 1))
			}, nil, ErrNoHeader},
	}
}

func TestEdits(t *testing.T) {
	for _, tc := range editCases() {
		t.Run(tc.name, func(t *testing.T) {
			k, l := mustExtract(t, tc.in)
			kIn := k
			p := newPacket(tc.in)
			err := tc.edit(p, &k, &l)
			if k != kIn {
				t.Error("edit modified the key")
			}
			if tc.want == nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Data(); !bytes.Equal(got, tc.want) {
				t.Fatalf("frame\n got  %x\n want %x", got, tc.want)
			}
			// The Layout kept up with the edits: it equals a fresh parse.
			var k2 Key
			var l2 Layout
			Extract(p.Data(), 1, &k2, &l2)
			if l2 != l {
				t.Errorf("layout after edit %+v, re-parsed %+v", l, l2)
			}
		})
	}
}

func TestPushPopLayout(t *testing.T) {
	frame := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 1, proto: IPProtoUDP}, udp4(addr4A, addr4B, 1, 2, nil)))
	k, l := mustExtract(t, frame)
	p := newPacket(frame)
	for i := 1; i <= 3; i++ {
		if err := PushVLAN(p, &l, EthTypeVLAN, uint16(i)); err != nil {
			t.Fatal(err)
		}
		if l.VLANs != uint8(i) || int(l.L3) != 14+4*i || int(l.L4) != 34+4*i || p.Off != Headroom-4*i {
			t.Fatalf("after %d pushes: layout %+v off %d", i, l, p.Off)
		}
	}
	// The L3/L4 edits still work through the shifted layout.
	if err := SetL4Dst(p, &k, &l, 99); err != nil {
		t.Fatal(err)
	}
	for i := 3; i >= 1; i-- {
		if err := PopVLAN(p, &l); err != nil {
			t.Fatal(err)
		}
	}
	if err := PopVLAN(p, &l); !errors.Is(err, ErrNoVLAN) {
		t.Fatalf("pop on untagged: %v", err)
	}
	want := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 1, proto: IPProtoUDP}, udp4(addr4A, addr4B, 1, 99, nil)))
	if !bytes.Equal(p.Data(), want) || p.Off != Headroom || l != (Layout{L3: 14, L4: 34}) {
		t.Fatalf("after pops: %x off %d layout %+v", p.Data(), p.Off, l)
	}
	// A nil Layout is allowed for the VLAN edits.
	if PushVLAN(p, nil, EthTypeVLAN, 5) != nil || PopVLAN(p, nil) != nil || !bytes.Equal(p.Data(), want) {
		t.Fatal("push/pop with nil layout")
	}
}

func TestEditAllocs(t *testing.T) {
	frame := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoTCP}, tcp4(addr4A, addr4B, 1, 2, 0x10, nil)))
	frame6 := ethFrame(hwA, hwB, nil, EthTypeIPv6, ipv6Pkt(addr6A, addr6B, 0, 0, 64, IPProtoUDP, udp6(addr6A, addr6B, 1, 2, nil)))
	sctp := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoSCTP}, sctpWithCRC(1, 2)))
	k, l := mustExtract(t, frame)
	k6, l6 := mustExtract(t, frame6)
	ks, ls := mustExtract(t, sctp)
	p, p6, ps := newPacket(frame), newPacket(frame6), newPacket(sctp)
	for name, f := range map[string]func(){
		"push+pop":    func() { _ = PushVLAN(p, &l, EthTypeVLAN, 10); _ = PopVLAN(p, &l) },
		"set tci":     func() { _ = PushVLAN(p, &l, EthTypeVLAN, 10); _ = SetVLANTCI(p, 11); _ = PopVLAN(p, &l) },
		"ipv4 src":    func() { _ = SetIPv4Src(p, &k, &l, addr4C) },
		"ipv4 ttl":    func() { _ = SetIPv4TTL(p, &k, &l, 9) },
		"l4 dst":      func() { _ = SetL4Dst(p, &k, &l, 8080) },
		"ipv6 dst":    func() { _ = SetIPv6Dst(p6, &k6, &l6, addr6C) },
		"sctp port":   func() { _ = SetL4Src(ps, &ks, &ls, 3) },
		"eth src":     func() { _ = SetEthSrc(p, hwC) },
		"error value": func() { _ = PopVLAN(p, &l) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs", name, n)
		}
	}
}

func BenchmarkEdit(b *testing.B) {
	frame := ethFrame(hwA, hwB, nil, EthTypeIPv4, ipv4Pkt(addr4A, addr4B, ip4Opts{ttl: 64, proto: IPProtoUDP}, udp4(addr4A, addr4B, 1, 2, make([]byte, 22))))
	k, l := mustExtract(b, frame)
	p := newPacket(frame)
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"push+pop", func() { _ = PushVLAN(p, &l, EthTypeVLAN, 10); _ = PopVLAN(p, &l) }},
		{"ipv4-src", func() { _ = SetIPv4Src(p, &k, &l, addr4C) }},
		{"l4-dst", func() { _ = SetL4Dst(p, &k, &l, 8080) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.f()
			}
		})
	}
}
