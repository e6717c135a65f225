package conntrack

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"xvs/flow"
)

const sec = int64(time.Second)

type runner struct {
	t   *testing.T
	tr  *Tracker
	now int64
}

func (r *runner) do(p pkt, zone uint16, commit bool, nat *NATSpec) (State, *flow.Packet) {
	r.t.Helper()
	fp, k, l := build(r.t, p)
	st := r.tr.Process(k, fp, l, zone, commit, nat, r.now)
	if st.Flags&CSTrk == 0 {
		r.t.Fatalf("no trk: %v", st.Flags)
	}
	verifyCsum(r.t, fp, l)
	return st, fp
}

func (r *runner) want(p pkt, zone uint16, commit bool, nat *NATSpec, want Flags) State {
	r.t.Helper()
	st, _ := r.do(p, zone, commit, nat)
	if st.Flags != want {
		r.t.Fatalf("%+v: got %v, want %v", p, st.Flags, want)
	}
	return st
}

func tcp(src, dst string, sport, dport uint16, flags uint16) pkt {
	return pkt{src: src, dst: dst, sport: sport, dport: dport, proto: flow.IPProtoTCP, flags: flags}
}

func TestTCPHandshakeTeardown(t *testing.T) {
	for _, fam := range [][2]string{{"198.18.0.1", "198.18.0.2"}, {"fd00::1", "fd00::2"}} {
		a, b := fam[0], fam[1]
		r := &runner{t: t, tr: New(Config{}), now: 1000 * sec}
		trk := CSTrk
		r.want(tcp(a, b, 1234, 80, tcpSYN), 0, true, nil, trk|CSNew)
		r.want(tcp(a, b, 1234, 80, tcpSYN), 0, true, nil, trk|CSNew) // retransmission
		r.want(tcp(b, a, 80, 1234, tcpSYN|tcpACK), 0, true, nil, trk|CSEst|CSRpl)
		r.want(tcp(a, b, 1234, 80, tcpACK), 0, true, nil, trk|CSEst)
		d := r.tr.Dump()
		proto := "tcp"
		if strings.Contains(a, ":") {
			proto = "tcp6"
		}
		want := fmt.Sprintf("%s,orig=(src=%s,dst=%s,sport=1234,dport=80),reply=(src=%s,dst=%s,sport=80,dport=1234),protoinfo=(state=ESTABLISHED)", proto, a, b, b, a)
		if len(d) != 1 || d[0] != want {
			t.Fatalf("dump %q\nwant %q", d, want)
		}
		r.want(tcp(a, b, 1234, 80, tcpACK|tcpPSH), 0, false, nil, trk|CSEst)
		r.want(tcp(a, b, 1234, 80, tcpFIN|tcpACK), 0, false, nil, trk|CSEst)
		if d := r.tr.Dump(); !strings.HasSuffix(d[0], "protoinfo=(state_orig=CLOSING,state_reply=ESTABLISHED)") {
			t.Fatalf("after FIN: %q", d)
		}
		r.want(tcp(b, a, 80, 1234, tcpACK), 0, false, nil, trk|CSEst|CSRpl)
		r.want(tcp(b, a, 80, 1234, tcpFIN|tcpACK), 0, false, nil, trk|CSEst|CSRpl)
		r.want(tcp(a, b, 1234, 80, tcpACK), 0, false, nil, trk|CSEst)
		if d := r.tr.Dump(); !strings.HasSuffix(d[0], "protoinfo=(state=FIN_WAIT_2)") {
			t.Fatalf("after close: %q", d)
		}
		// Closed: 30s timeout, then a SYN reopens a fresh connection.
		r.now += 29 * sec
		if r.tr.Expire(r.now) != 0 || r.tr.Len() != 1 {
			t.Fatal("expired too early")
		}
		r.want(tcp(a, b, 1234, 80, tcpSYN), 0, true, nil, trk|CSNew)
		if d := r.tr.Dump(); len(d) != 1 || !strings.HasSuffix(d[0], "state_orig=SYN_SENT,state_reply=CLOSED)") {
			t.Fatalf("after reopen: %q", d)
		}
		// RST: both TIME_WAIT.
		r.want(tcp(b, a, 80, 1234, tcpRST|tcpACK), 0, false, nil, trk|CSEst|CSRpl)
		if d := r.tr.Dump(); !strings.HasSuffix(d[0], "protoinfo=(state=TIME_WAIT)") {
			t.Fatalf("after rst: %q", d)
		}
		if s := r.tr.Stats(); s.Created != 2 || s.Conns != 1 {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestTCPTimeoutsFollowState(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: 0}
	a, b := "10.0.0.1", "10.0.0.2"
	r.want(tcp(a, b, 1, 2, tcpSYN), 0, true, nil, CSTrk|CSNew)
	r.want(tcp(b, a, 2, 1, tcpSYN|tcpACK), 0, false, nil, CSTrk|CSEst|CSRpl)
	r.want(tcp(a, b, 1, 2, tcpACK), 0, false, nil, CSTrk|CSEst)
	r.now = int64(23 * time.Hour)
	if r.tr.Expire(r.now) != 0 {
		t.Fatal("established expired before 24h")
	}
	r.now = int64(24*time.Hour) + sec
	if n := r.tr.Expire(r.now); n != 1 {
		t.Fatalf("established not expired after 24h: %d", n)
	}
	// A half-open connection goes after 30s.
	r.want(tcp(a, b, 5, 6, tcpSYN), 0, true, nil, CSTrk|CSNew)
	r.now += 31 * sec
	// The lookup itself sees the deadline: the SYN is new again.
	r.want(tcp(a, b, 5, 6, tcpSYN), 0, false, nil, CSTrk|CSNew)
	if r.tr.Len() != 0 || r.tr.Stats().Expired != 2 {
		t.Fatalf("len %d stats %+v", r.tr.Len(), r.tr.Stats())
	}
}

func TestTCPInvalid(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	a, b := "10.0.0.1", "10.0.0.2"
	inv := CSTrk | CSInv
	for _, f := range []uint16{0, tcpSYN | tcpFIN, tcpSYN | tcpRST, tcpFIN, tcpPSH, tcpURG, tcpSYN | tcpACK} {
		r.want(tcp(a, b, 1, 2, f), 0, true, nil, inv)
	}
	if r.tr.Len() != 0 {
		t.Fatal("invalid packet committed")
	}
	// Mid-stream pickup (ACK only) is allowed, as OVS.
	r.want(tcp(a, b, 1, 2, tcpACK), 0, true, nil, CSTrk|CSNew)
	r.want(tcp(b, a, 2, 1, tcpACK), 0, true, nil, CSTrk|CSEst|CSRpl)
	// Illegal flags on an existing connection: inv, state untouched.
	r.want(tcp(a, b, 1, 2, tcpSYN|tcpFIN), 0, false, nil, inv)
	if d := r.tr.Dump(); !strings.HasSuffix(d[0], "protoinfo=(state=ESTABLISHED)") {
		t.Fatalf("%q", d)
	}
	// Without commit nothing is stored.
	r.want(tcp(a, b, 7, 8, tcpSYN), 0, false, nil, CSTrk|CSNew)
	r.want(tcp(b, a, 8, 7, tcpSYN|tcpACK), 0, false, nil, inv)
	if r.tr.Len() != 1 {
		t.Fatal(r.tr.Dump())
	}
}

func TestUDPAndICMP(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	a, b := "10.0.0.1", "10.0.0.2"
	udp := func(s, d string, sp, dp uint16) pkt {
		return pkt{src: s, dst: d, sport: sp, dport: dp, proto: flow.IPProtoUDP}
	}
	r.want(udp(a, b, 5000, 53), 0, true, nil, CSTrk|CSNew)
	r.want(udp(a, b, 5000, 53), 0, true, nil, CSTrk|CSNew)
	r.want(udp(b, a, 53, 5000), 0, true, nil, CSTrk|CSEst|CSRpl)
	r.want(udp(a, b, 5000, 53), 0, true, nil, CSTrk|CSEst)
	// Bidirectional UDP: 30s.
	r.now += 31 * sec
	r.want(udp(a, b, 5000, 53), 0, false, nil, CSTrk|CSNew)

	for _, v6 := range []bool{false, true} {
		a, b, proto, req, rep := "10.0.0.1", "10.0.0.2", uint8(flow.IPProtoICMP), uint8(icmp4Echo), uint8(icmp4EchoReply)
		if v6 {
			a, b, proto, req, rep = "fd00::1", "fd00::2", flow.IPProtoICMPv6, icmp6EchoRequest, icmp6EchoReply
		}
		ping := pkt{src: a, dst: b, proto: proto, icmpType: req, id: 77}
		pong := pkt{src: b, dst: a, proto: proto, icmpType: rep, id: 77}
		r.want(pong, 0, true, nil, CSTrk|CSInv) // reply without request
		r.want(ping, 0, true, nil, CSTrk|CSNew)
		r.want(pong, 0, true, nil, CSTrk|CSEst|CSRpl)
		r.want(ping, 0, true, nil, CSTrk|CSEst)
		other := pong
		other.id = 78
		r.want(other, 0, true, nil, CSTrk|CSInv)
	}
	d := r.tr.Dump()
	want := []string{
		"icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=77,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=77,type=0,code=0)",
		"icmpv6,orig=(src=fd00::1,dst=fd00::2,id=77,type=128,code=0),reply=(src=fd00::2,dst=fd00::1,id=77,type=129,code=0)",
	}
	if strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Fatalf("dump\n%s\nwant\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
}

func TestZonesIsolateMarkLabelFlush(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	a, b := "198.18.0.1", "198.18.0.2"
	st := r.want(tcp(a, b, 1234, 80, tcpSYN), 1, true, nil, CSTrk|CSNew)
	if !st.SetMark(0x5, 0xff) || st.Mark != 5 {
		t.Fatal("SetMark")
	}
	var lbl, mask [16]byte
	lbl[15], mask[15] = 0xab, 0xff
	st.SetLabel(lbl, mask)
	// Other zone: unrelated.
	r.want(tcp(b, a, 80, 1234, tcpSYN|tcpACK), 2, true, nil, CSTrk|CSInv)
	st = r.want(tcp(b, a, 80, 1234, tcpSYN|tcpACK), 1, true, nil, CSTrk|CSEst|CSRpl)
	if st.Mark != 5 || st.Label != lbl || st.Zone != 1 {
		t.Fatalf("state %+v", st)
	}
	if o, ok := st.Orig(); !ok || o.SrcAddr().String() != a || o.DstPort != 80 {
		t.Fatalf("orig %+v", o)
	}
	r.want(tcp(a, b, 1234, 80, tcpSYN), 2, true, nil, CSTrk|CSNew)
	want := "tcp,orig=(src=198.18.0.1,dst=198.18.0.2,sport=1234,dport=80),reply=(src=198.18.0.2,dst=198.18.0.1,sport=80,dport=1234),zone=1,mark=5,labels=0xab,protoinfo=(state_orig=ESTABLISHED,state_reply=SYN_SENT)"
	if d := r.tr.DumpZone(1); len(d) != 1 || d[0] != want {
		t.Fatalf("dump %q\nwant %q", d, want)
	}
	if len(r.tr.Dump()) != 2 {
		t.Fatal(r.tr.Dump())
	}
	if n := r.tr.Flush(1); n != 1 || r.tr.Len() != 1 || len(r.tr.DumpZone(2)) != 1 {
		t.Fatalf("flush zone 1: %d, %q", n, r.tr.Dump())
	}
	// Uncommitted: no mark.
	st = r.want(tcp(a, b, 9, 80, tcpSYN), 1, false, nil, CSTrk|CSNew)
	if st.SetMark(1, 1) || st.Committed() {
		t.Fatal("mark on uncommitted")
	}
	if r.tr.FlushAll() != 1 || r.tr.Len() != 0 {
		t.Fatal("flush all")
	}
}

func TestLimitFull(t *testing.T) {
	r := &runner{t: t, tr: New(Config{Limit: 3}), now: sec}
	for i := range 5 {
		st := r.want(tcp("10.0.0.1", "10.0.0.2", uint16(100+i), 80, tcpSYN), 0, true, nil, CSTrk|CSNew)
		if st.Committed() != (i < 3) {
			t.Fatalf("conn %d committed=%v", i, st.Committed())
		}
	}
	if s := r.tr.Stats(); s.Full != 2 || s.Conns != 3 {
		t.Fatalf("stats %+v", s)
	}
	r.tr.Flush(0)
	r.want(tcp("10.0.0.1", "10.0.0.2", 200, 80, tcpSYN), 0, true, nil, CSTrk|CSNew)
	if r.tr.Len() != 1 {
		t.Fatal("not committed after flush")
	}
}

func TestExpireIncremental(t *testing.T) {
	tr := New(Config{ExpireBatch: 10, Shards: 4, Limit: 1000})
	r := &runner{t: t, tr: tr, now: sec}
	for i := range 100 {
		r.want(pkt{src: "10.0.0.1", dst: "10.0.0.2", sport: uint16(1000 + i), dport: 53, proto: flow.IPProtoUDP}, 0, true, nil, CSTrk|CSNew)
	}
	later := r.now + 61*sec
	total, calls := 0, 0
	for tr.Len() > 0 && calls < 100 {
		n := tr.Expire(later)
		if n > 10 {
			t.Fatalf("Expire removed %d > batch", n)
		}
		total += n
		calls++
	}
	if total != 100 || calls < 10 {
		t.Fatalf("removed %d in %d calls", total, calls)
	}
	if s := tr.Stats(); s.Expired != 100 || s.Conns != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentsInvalid(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	p := pkt{src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, proto: flow.IPProtoUDP, frag: true}
	r.want(p, 0, true, nil, CSTrk|CSInv)
	if s := r.tr.Stats(); s.Frags != 1 || s.Invalid != 1 || s.Conns != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Non-IP frames are trk+inv, untracked.
	var k flow.Key
	var l flow.Layout
	k.DlType = flow.EthTypeARP
	l.L3, l.L4 = 14, -1
	if st := r.tr.Process(&k, &flow.Packet{}, &l, 0, true, nil, 0); st.Flags != CSTrk|CSInv {
		t.Fatal(st.Flags)
	}
}

func TestConcurrent(t *testing.T) {
	tr := New(Config{Shards: 8, Limit: 100000})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runner{t: t, tr: tr, now: sec}
			for i := range 200 {
				a := fmt.Sprintf("10.%d.0.1", g)
				fp, k, l := build(t, tcp(a, "10.9.9.9", uint16(i+1), 80, tcpSYN))
				tr.Process(k, fp, l, 0, true, nil, r.now)
				fp, k, l = build(t, tcp("10.9.9.9", a, 80, uint16(i+1), tcpSYN|tcpACK))
				if st := tr.Process(k, fp, l, 0, true, nil, r.now); st.Flags != CSTrk|CSEst|CSRpl {
					t.Errorf("got %v", st.Flags)
					return
				}
				if i%50 == 0 {
					tr.Expire(r.now)
				}
			}
		}()
	}
	wg.Wait()
	if tr.Len() != 800 {
		t.Fatal(tr.Len())
	}
}

func TestFlagsString(t *testing.T) {
	if s := (CSTrk | CSEst | CSRpl).String(); s != "+est+rpl+trk" {
		t.Fatal(s)
	}
}

func TestOtherProtocol(t *testing.T) {
	r := &runner{t: t, tr: New(Config{}), now: sec}
	p := pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: 47, payload: []byte{0, 0, 0x08, 0}}
	r.want(p, 0, true, nil, CSTrk|CSNew)
	q := pkt{src: "10.0.0.2", dst: "10.0.0.1", proto: 47, payload: []byte{0, 0, 0x08, 0}}
	r.want(q, 0, true, nil, CSTrk|CSEst|CSRpl)
	if d := r.tr.Dump(); len(d) != 1 || d[0] != "47,orig=(src=10.0.0.1,dst=10.0.0.2),reply=(src=10.0.0.2,dst=10.0.0.1)" {
		t.Fatalf("%q", d)
	}
}
