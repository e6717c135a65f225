package conntrack

import (
	"testing"

	"xvs/flow"
)

func mustNAT(t *testing.T, s string) *NATSpec {
	t.Helper()
	n, err := ParseNAT(s)
	if err != nil {
		t.Fatal(err)
	}
	if n.String() != s {
		t.Fatalf("round trip %q -> %q", s, n.String())
	}
	return &n
}

func checkAddrs(t *testing.T, fp *flow.Packet, src, dst string, sport, dport uint16) {
	t.Helper()
	s, d, sp, dp := decode(t, fp)
	if s != src || d != dst || sp != sport || dp != dport {
		t.Fatalf("packet %s:%d -> %s:%d, want %s:%d -> %s:%d", s, sp, d, dp, src, sport, dst, dport)
	}
}

func TestNATDst(t *testing.T) {
	for _, c := range []struct{ client, vip, backend, spec string }{
		{"198.18.0.1", "10.96.0.10", "10.244.1.5", "dst=10.244.1.5:8080"},
		{"fd00::1", "fd00:96::10", "fd00:244::5", "dst=[fd00:244::5]:8080"},
	} {
		r := &runner{t: t, tr: New(Config{}), now: sec}
		nat := mustNAT(t, c.spec)
		for _, proto := range []uint8{flow.IPProtoTCP, flow.IPProtoUDP} {
			syn := tcp(c.client, c.vip, 40000, 80, tcpSYN)
			synack := tcp(c.backend, c.client, 8080, 40000, tcpSYN|tcpACK)
			ack := tcp(c.client, c.vip, 40000, 80, tcpACK)
			if proto == flow.IPProtoUDP {
				syn.proto, synack.proto, ack.proto = proto, proto, proto
			}
			st, fp := r.do(syn, 0, true, nat)
			if st.Flags != CSTrk|CSNew|CSDNAT {
				t.Fatalf("first: %v", st.Flags)
			}
			checkAddrs(t, fp, c.client, c.backend, 40000, 8080)
			st, fp = r.do(synack, 0, false, &NATSpec{})
			if st.Flags != CSTrk|CSEst|CSRpl|CSSNAT {
				t.Fatalf("reply: %v", st.Flags)
			}
			checkAddrs(t, fp, c.vip, c.client, 80, 40000)
			st, fp = r.do(ack, 0, false, &NATSpec{})
			if st.Flags != CSTrk|CSEst|CSDNAT {
				t.Fatalf("ack: %v", st.Flags)
			}
			checkAddrs(t, fp, c.client, c.backend, 40000, 8080)
			// Without nat the packet is tracked but not rewritten.
			_, fp = r.do(ack, 0, false, nil)
			checkAddrs(t, fp, c.client, c.vip, 40000, 80)
		}
	}
}

func TestNATSrcPortRange(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	nat := mustNAT(t, "src=203.0.113.1-203.0.113.2:1024-1025")
	seen := map[string]bool{}
	for _, client := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		st, fp := r.do(pkt{src: client, dst: "198.51.100.7", sport: 5555, dport: 53, proto: flow.IPProtoUDP}, 0, true, nat)
		if st.Flags != CSTrk|CSNew|CSSNAT {
			t.Fatalf("%v", st.Flags)
		}
		s, _, sp, _ := decode(t, fp)
		if s != "203.0.113.1" && s != "203.0.113.2" || sp < 1024 || sp > 1025 || seen[s+":"+string(rune(sp))] {
			t.Fatalf("bad translation %s:%d", s, sp)
		}
		seen[s+":"+string(rune(sp))] = true
		// The reply to the translated tuple goes back to the client.
		st, fp = r.do(pkt{src: "198.51.100.7", dst: s, sport: 53, dport: sp, proto: flow.IPProtoUDP}, 0, false, &NATSpec{})
		if st.Flags != CSTrk|CSEst|CSRpl|CSDNAT {
			t.Fatalf("reply %v", st.Flags)
		}
		checkAddrs(t, fp, "198.51.100.7", client, 53, 5555)
	}
	// Four tuples exhausted: the fifth client cannot be committed.
	st, _ := r.do(pkt{src: "10.0.0.5", dst: "198.51.100.7", sport: 5555, dport: 53, proto: flow.IPProtoUDP}, 0, true, nat)
	if st.Committed() || r.tr.Stats().NATFail != 1 {
		t.Fatalf("exhaustion: %v %+v", st.Flags, r.tr.Stats())
	}
	// SNAT without ports keeps the port, falls back to another on clash.
	r2 := &runner{t: t, tr: New(Config{}), now: sec}
	one := mustNAT(t, "src=203.0.113.9")
	_, fp := r2.do(tcp("10.0.0.1", "198.51.100.7", 4000, 80, tcpSYN), 0, true, one)
	checkAddrs(t, fp, "203.0.113.9", "198.51.100.7", 4000, 80)
	_, fp = r2.do(tcp("10.0.0.2", "198.51.100.7", 4000, 80, tcpSYN), 0, true, one)
	if _, _, sp, _ := decode(t, fp); sp == 4000 || sp < 1024 {
		t.Fatalf("clash kept port %d", sp)
	}
	want := "tcp,orig=(src=10.0.0.1,dst=198.51.100.7,sport=4000,dport=80),reply=(src=198.51.100.7,dst=203.0.113.9,sport=80,dport=4000),protoinfo=(state_orig=SYN_SENT,state_reply=CLOSED)"
	if d := r2.tr.Dump(); d[0] != want {
		t.Fatalf("dump %q", d[0])
	}
}

func TestParseNATErrors(t *testing.T) {
	for _, s := range []string{"foo=1.2.3.4", "src=1.2.3", "src=1.2.3.4-1.2.3.1", "dst=1.2.3.4:0", "dst=1.2.3.4:9-8", "src=[::1", "src=1.2.3.4-::1"} {
		if _, err := ParseNAT(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

func TestICMPRelated(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	a, b, router := "10.0.0.1", "192.0.2.9", "10.0.0.254"
	u, fp := r.do(pkt{src: a, dst: b, sport: 3333, dport: 53, proto: flow.IPProtoUDP}, 0, true, nil)
	if u.Flags != CSTrk|CSNew {
		t.Fatal(u.Flags)
	}
	_, l := buildLayout(t, fp)
	inner := embedded(fp, l, false)
	unreach := pkt{src: router, dst: a, proto: flow.IPProtoICMP, icmpType: icmp4Unreach, icmpCode: 1, payload: inner}
	st := r.want(unreach, 0, false, nil, CSTrk|CSRel|CSRpl)
	if !st.Committed() {
		t.Fatal("related without conn")
	}
	// An error about an untracked flow is invalid.
	_, fp2 := r.do(pkt{src: a, dst: b, sport: 3334, dport: 53, proto: flow.IPProtoUDP}, 0, false, nil)
	_, l2 := buildLayout(t, fp2)
	r.want(pkt{src: router, dst: a, proto: flow.IPProtoICMP, icmpType: icmp4Unreach, payload: embedded(fp2, l2, false)}, 0, false, nil, CSTrk|CSInv)
	// Truncated embedded header: invalid, no panic.
	r.want(pkt{src: router, dst: a, proto: flow.IPProtoICMP, icmpType: icmp4Unreach, payload: inner[:20]}, 0, false, nil, CSTrk|CSInv)
	if r.tr.Stats().Related != 1 {
		t.Fatal(r.tr.Stats())
	}
}

func buildLayout(t *testing.T, fp *flow.Packet) (*flow.Key, *flow.Layout) {
	var k flow.Key
	var l flow.Layout
	if flow.Extract(fp.Data(), 1, &k, &l) != flow.DropNone {
		t.Fatal("extract")
	}
	return &k, &l
}

func TestICMPRelatedNAT(t *testing.T) {
	for _, proto := range []uint8{flow.IPProtoUDP, flow.IPProtoTCP} {
		r := &runner{t: t, tr: New(Config{}), now: sec}
		client, vip, backend, router := "198.18.0.1", "10.96.0.10", "10.244.1.5", "10.244.1.1"
		nat := mustNAT(t, "dst=10.244.1.5:8080")
		p := pkt{src: client, dst: vip, sport: 40000, dport: 80, proto: proto, flags: tcpSYN}
		_, fp := r.do(p, 0, true, nat) // now client -> backend:8080
		_, l := buildLayout(t, fp)
		inner := append(embedded(fp, l, false), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		if proto == flow.IPProtoTCP {
			inner = append([]byte(nil), fp.Data()[l.L3:]...) // whole datagram (Linux quotes up to 576 bytes)
		}
		// Router near the backend reports the translated packet.
		st, efp := r.do(pkt{src: router, dst: client, proto: flow.IPProtoICMP, icmpType: icmp4Unreach, icmpCode: 3, payload: inner}, 0, false, &NATSpec{})
		if st.Flags&(CSRel|CSRpl) != CSRel|CSRpl {
			t.Fatal(st.Flags)
		}
		// The embedded header is back to the client's view: client -> vip:80.
		ek, el := buildLayout(t, efp)
		var tp Tuple
		if !innerTuple(efp.Data(), int(el.L4)+8, false, 0, &tp) {
			t.Fatal("inner")
		}
		if tp.SrcAddr().String() != client || tp.DstAddr().String() != vip || tp.SrcPort != 40000 || tp.DstPort != 80 {
			t.Fatalf("inner %+v", tp)
		}
		if ek.NwSrc != [16]byte{10, 244, 1, 1} {
			t.Fatal("router address rewritten")
		}
		if proto == flow.IPProtoTCP {
			// The quoted TCP segment is complete: its checksum must hold too.
			in := efp.Data()[el.L4+8:]
			ifp := &flow.Packet{Buf: append(make([]byte, 14), in...), Len: 14 + len(in)}
			verifyCsum(t, ifp, &flow.Layout{L3: 14})
		}
		// An error from the backend itself appears to come from the VIP.
		st, efp = r.do(pkt{src: backend, dst: client, proto: flow.IPProtoICMP, icmpType: icmp4Unreach, icmpCode: 3, payload: inner}, 0, false, &NATSpec{})
		if st.Flags != CSTrk|CSRel|CSRpl|CSSNAT {
			t.Fatal(st.Flags)
		}
		ek, _ = buildLayout(t, efp)
		if ek.NwSrc != [16]byte{10, 96, 0, 10} {
			t.Fatalf("outer src %v", ek.NwSrc[:4])
		}
	}
}

func TestICMPv6RelatedNAT(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	client, vip, router := "fd00::1", "fd00:96::10", "fd00:244::1"
	nat := mustNAT(t, "dst=[fd00:244::5]:8080")
	_, fp := r.do(pkt{src: client, dst: vip, sport: 40000, dport: 80, proto: flow.IPProtoUDP}, 0, true, nat)
	_, l := buildLayout(t, fp)
	inner := append([]byte(nil), fp.Data()[l.L3:]...)
	st, efp := r.do(pkt{src: router, dst: client, proto: flow.IPProtoICMPv6, icmpType: icmp6Unreach, payload: inner}, 0, false, &NATSpec{})
	if st.Flags != CSTrk|CSRel|CSRpl {
		t.Fatal(st.Flags)
	}
	_, el := buildLayout(t, efp)
	var tp Tuple
	if !innerTuple(efp.Data(), int(el.L4)+8, true, 0, &tp) {
		t.Fatal("inner")
	}
	if tp.SrcAddr().String() != client || tp.DstAddr().String() != vip || tp.DstPort != 80 {
		t.Fatalf("inner %+v", tp)
	}
	// The quoted UDP datagram is complete: its checksum must hold.
	in := efp.Data()[el.L4+8:]
	ifp := &flow.Packet{Buf: append(make([]byte, 14), in...), Len: 14 + len(in)}
	verifyCsum(t, ifp, &flow.Layout{L3: 14})
}
