package conntrack

import (
	"testing"

	"xvs/flow"
)

// established sets up an established TCP connection (optionally DNATed)
// and returns a ready orig-direction packet with a function restoring it.
func established(t testing.TB, tr *Tracker, nat *NATSpec) (fp *flow.Packet, k *flow.Key, l *flow.Layout, reset func()) {
	mk := func(p pkt) (*flow.Packet, *flow.Key, *flow.Layout) { return build(t, p) }
	fp, k, l = mk(tcp("198.18.0.1", "10.96.0.10", 40000, 80, tcpSYN))
	tr.Process(k, fp, l, 0, true, nat, sec)
	back := "10.96.0.10"
	if nat != nil {
		back = "10.244.1.5"
	}
	fp, k, l = mk(tcp(back, "198.18.0.1", 80, 40000, tcpSYN|tcpACK))
	if st := tr.Process(k, fp, l, 0, false, nat, sec); st.Flags&CSEst == 0 {
		t.Fatalf("not established: %v", st.Flags)
	}
	fp, k, l = mk(tcp("198.18.0.1", "10.96.0.10", 40000, 80, tcpACK|tcpPSH))
	orig := append([]byte(nil), fp.Buf...)
	k0, l0 := *k, *l
	reset = func() { copy(fp.Buf, orig); *k, *l = k0, l0 }
	return
}

func TestProcessAllocs(t *testing.T) {
	for _, nat := range []*NATSpec{nil, {Kind: NATDst, AddrMin: mustNAT(t, "dst=10.244.1.5").AddrMin}} {
		tr := New(Config{})
		fp, k, l, reset := established(t, tr, nat)
		n := testing.AllocsPerRun(1000, func() {
			reset()
			if st := tr.Process(k, fp, l, 0, true, nat, 2*sec); st.Flags&CSEst == 0 {
				t.Fatal(st.Flags)
			}
		})
		if n != 0 {
			t.Fatalf("nat=%v: %v allocs per established Process", nat != nil, n)
		}
	}
	tr := New(Config{})
	n := testing.AllocsPerRun(100, func() { tr.Expire(sec) })
	if n != 0 {
		t.Fatalf("Expire allocates %v", n)
	}
}

func BenchmarkProcessEstablished(b *testing.B) {
	for _, c := range []struct {
		name string
		nat  *NATSpec
	}{{"plain", nil}, {"dnat", &NATSpec{Kind: NATDst}}} {
		b.Run(c.name, func(b *testing.B) {
			tr := New(Config{})
			nat := c.nat
			if nat != nil {
				n, _ := ParseNAT("dst=10.244.1.5")
				nat = &n
			}
			fp, k, l, reset := established(b, tr, nat)
			b.ReportAllocs()
			b.SetBytes(int64(fp.Len))
			for b.Loop() {
				reset()
				tr.Process(k, fp, l, 0, false, nat, 2*sec)
			}
		})
	}
}

func BenchmarkProcessParallel(b *testing.B) {
	tr := New(Config{})
	fp, k, l, _ := established(b, tr, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		kk, ll := *k, *l
		p := *fp
		for pb.Next() {
			tr.Process(&kk, &p, &ll, 0, false, nil, 2*sec)
		}
	})
}
