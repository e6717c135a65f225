package conntrack

import (
	"encoding/binary"
	"testing"

	"xvs/flow"
)

// tcpFrame builds an Ethernet/IPv4/TCP frame from fuzz parameters without
// any validation: arbitrary flags, data offset, IP total length and
// truncation point.
func tcpFrame(flags, sport, dport uint16, doff uint8, totalAdj int8, cut uint16, payload []byte) []byte {
	b := make([]byte, 14+20+20, 14+20+20+len(payload))
	binary.BigEndian.PutUint16(b[12:], flow.EthTypeIPv4)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, flow.IPProtoTCP
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	th := ip[20:]
	binary.BigEndian.PutUint16(th[0:], sport)
	binary.BigEndian.PutUint16(th[2:], dport)
	th[12] = doff << 4
	binary.BigEndian.PutUint16(th[12:], binary.BigEndian.Uint16(th[12:])|flags&0x0fff)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-14+int(totalAdj)))
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	binary.BigEndian.PutUint16(ip[10:], ^fold(s))
	if int(cut) < len(b) {
		b = b[:cut]
	}
	return b
}

// refValidNew is an independent statement of which TCP flag sets may
// open a connection (OVS semantics): FIN, PSH and URG need ACK; SYN
// excludes FIN, RST and ACK (a SYN+ACK never opens); without SYN, ACK or
// RST must be present.
func refValidNew(f uint16) bool {
	has := func(b uint16) bool { return f&b != 0 }
	if !has(tcpACK) && (has(tcpFIN) || has(tcpPSH) || has(tcpURG)) {
		return false
	}
	if has(tcpSYN) {
		return !has(tcpFIN) && !has(tcpRST) && !has(tcpACK)
	}
	return has(tcpACK) || has(tcpRST)
}

// FuzzProcessTCP feeds malformed TCP to a fresh tracker. Process must not
// panic, must classify the first packet as exactly +trk+new or +trk+inv
// (new iff the header is complete and the flags may open a connection),
// and a repeat of the packet must get the same class.
func FuzzProcessTCP(f *testing.F) {
	f.Add(uint16(tcpSYN), uint16(1234), uint16(80), uint8(5), int8(0), uint16(1500), []byte("x"))
	f.Add(uint16(tcpSYN|tcpFIN), uint16(1), uint16(2), uint8(5), int8(0), uint16(1500), []byte{})
	f.Add(uint16(0xfff), uint16(0), uint16(0), uint8(15), int8(0), uint16(1500), []byte{})
	f.Add(uint16(tcpACK), uint16(5), uint16(6), uint8(4), int8(0), uint16(1500), []byte{})
	f.Add(uint16(tcpSYN), uint16(5), uint16(6), uint8(5), int8(-30), uint16(40), []byte{1, 2})
	f.Fuzz(func(t *testing.T, flags, sport, dport uint16, doff uint8, totalAdj int8, cut uint16, payload []byte) {
		frame := tcpFrame(flags, sport, dport, doff&15, totalAdj, cut, payload)
		buf := make([]byte, flow.Headroom+len(frame))
		copy(buf[flow.Headroom:], frame)
		fp := &flow.Packet{Buf: buf, Off: flow.Headroom, Len: len(frame)}
		var k flow.Key
		var l flow.Layout
		flow.Extract(fp.Data(), 1, &k, &l)
		complete := k.NwProto == flow.IPProtoTCP && l.L4 >= 0 && k.NwFrag == 0
		want := CSTrk | CSInv
		if complete && refValidNew(k.TCPFlags) {
			want = CSTrk | CSNew
		}
		tr := New(Config{Limit: 4, Shards: 1})
		nat := &NATSpec{Kind: NATDst, AddrMin: mustNAT(t, "dst=10.9.9.9:8080").AddrMin, PortMin: 8080, PortMax: 8080}
		k0, l0 := k, l
		st := tr.Process(&k, fp, &l, 0, true, nat, 1)
		if st.Flags&^CSDNAT != want {
			t.Fatalf("flags %#x (complete=%v): got %v, want %v", k.TCPFlags, complete, st.Flags, want)
		}
		if st.Committed() != (want&CSNew != 0) {
			t.Fatalf("committed=%v for %v", st.Committed(), st.Flags)
		}
		// The same packet again (as received) gets the same class.
		copy(fp.Buf[flow.Headroom:], frame)
		k, l = k0, l0
		st2 := tr.Process(&k, fp, &l, 0, true, nat, 2)
		if st2.Flags&(CSNew|CSInv) != want&(CSNew|CSInv) {
			t.Fatalf("repeat: %v then %v", st.Flags, st2.Flags)
		}
		_ = tr.Dump()
		tr.Expire(1 << 62)
		if tr.Len() != 0 {
			t.Fatal("not expired")
		}
	})
}

// FuzzProcessFrame feeds arbitrary frames (any protocol, ICMP errors with
// garbage embedded headers) through Process with commit and NAT, in both
// directions: it must never panic and always set +trk.
func FuzzProcessFrame(f *testing.F) {
	f.Add(tcpFrame(tcpSYN, 1, 2, 5, 0, 1500, nil))
	icmp := make([]byte, 14+20+8+28)
	binary.BigEndian.PutUint16(icmp[12:], flow.EthTypeIPv4)
	icmp[14], icmp[14+9], icmp[14+20], icmp[14+28] = 0x45, flow.IPProtoICMP, icmp4Unreach, 0x45
	binary.BigEndian.PutUint16(icmp[16:], uint16(len(icmp)-14))
	icmp[14+28+9] = flow.IPProtoUDP
	f.Add(icmp)
	f.Fuzz(func(t *testing.T, frame []byte) {
		tr := New(Config{Limit: 8, Shards: 2})
		nat, _ := ParseNAT("src=10.1.1.1-10.1.1.3:1000-1001")
		for i := range 3 {
			buf := append(make([]byte, flow.Headroom), frame...)
			fp := &flow.Packet{Buf: buf, Off: flow.Headroom, Len: len(frame)}
			var k flow.Key
			var l flow.Layout
			flow.Extract(fp.Data(), 1, &k, &l)
			if i == 1 {
				// Pretend it comes back: swap addresses and ports.
				k.NwSrc, k.NwDst, k.TpSrc, k.TpDst = k.NwDst, k.NwSrc, k.TpDst, k.TpSrc
			}
			if st := tr.Process(&k, fp, &l, uint16(i), true, &nat, int64(i)); st.Flags&CSTrk == 0 {
				t.Fatal("no trk")
			}
		}
		_ = tr.Dump()
	})
}
