package lb

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var (
	be1 = mustAP("10.0.0.5:8080")
	be2 = mustAP("10.0.0.6:8080")
	be3 = mustAP("10.0.0.7:8080")
)

func newSel(t testing.TB, affinity time.Duration, fields ...string) *Selector {
	t.Helper()
	s, err := NewSelector(&LoadBalancer{
		Name: "svc", VIP: mustAP("10.96.0.10:80"), Protocol: TCP,
		Backends:        []netip.AddrPort{be1, be2, be3},
		SelectionFields: fields, AffinityTimeout: affinity,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client returns the i-th test client address, 172.16.0.0/12 space.
func client(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 16 + byte(i>>16&0x0f), byte(i >> 8), byte(i)})
}

func flowOf(i int) Flow {
	return Flow{Src: client(i), Dst: netip.MustParseAddr("10.96.0.10"), SrcPort: uint16(10000 + i%50000), DstPort: 80}
}

func TestChooseDistribution(t *testing.T) {
	s := newSel(t, 0, FieldIPSrc)
	const n = 30000
	count := map[netip.AddrPort]int{}
	for i := range n {
		f := flowOf(i)
		b, ok := s.Choose(&f)
		if !ok {
			t.Fatal("no backend")
		}
		count[b]++
	}
	for _, b := range []netip.AddrPort{be1, be2, be3} {
		if c := count[b]; c < n/3*95/100 || c > n/3*105/100 {
			t.Errorf("backend %s got %d of %d flows, want %d +/- 5%%", b, c, n, n/3)
		}
	}
}

func TestChooseSelectionFields(t *testing.T) {
	// ip_src only: the source port must not matter.
	s := newSel(t, 0, FieldIPSrc)
	for i := range 200 {
		f := flowOf(i)
		want, _ := s.Choose(&f)
		f.SrcPort++
		f.Dst = netip.MustParseAddr("10.96.0.11")
		if got, _ := s.Choose(&f); got != want {
			t.Fatalf("client %d: ip_src selection changed with the port: %s -> %s", i, want, got)
		}
	}
	// Default (5-tuple): one client's connections spread over backends.
	s = newSel(t, 0)
	seen := map[netip.AddrPort]bool{}
	f := flowOf(1)
	for p := range 100 {
		f.SrcPort = uint16(20000 + p)
		b, _ := s.Choose(&f)
		seen[b] = true
	}
	if len(seen) != 3 {
		t.Errorf("5-tuple hash of one client over 100 ports used %d backends, want 3", len(seen))
	}
}

func TestChooseStableWhenBackendLeaves(t *testing.T) {
	s := newSel(t, 0, FieldIPSrc)
	const n = 10000
	before := make([]netip.AddrPort, n)
	for i := range n {
		f := flowOf(i)
		before[i], _ = s.Choose(&f)
	}
	if !s.SetOnline(be2, false) {
		t.Fatal("SetOnline(be2) = false")
	}
	if got := s.Online(); len(got) != 2 || got[0] != be1 || got[1] != be3 {
		t.Fatalf("Online() = %v", got)
	}
	moved := map[netip.AddrPort]int{}
	for i := range n {
		f := flowOf(i)
		b, _ := s.Choose(&f)
		switch {
		case b == be2:
			t.Fatalf("client %d chose offline backend", i)
		case before[i] != be2 && b != before[i]:
			t.Fatalf("client %d of %s moved to %s though its backend stayed online", i, before[i], b)
		case before[i] == be2:
			moved[b]++
		}
	}
	// The departed backend's clients spread over both survivors.
	if moved[be1] < n/9 || moved[be3] < n/9 {
		t.Errorf("be2's clients moved unevenly: %v", moved)
	}
	// When it returns, exactly its clients come back.
	s.SetOnline(be2, true)
	for i := range n {
		f := flowOf(i)
		if b, _ := s.Choose(&f); b != before[i] {
			t.Fatalf("client %d: %s after be2 returned, was %s", i, b, before[i])
		}
	}
	// Configuration order does not matter.
	s.SetBackends([]netip.AddrPort{be3, be1, be2})
	for i := range n {
		f := flowOf(i)
		if b, _ := s.Choose(&f); b != before[i] {
			t.Fatalf("client %d: %s after reordering, was %s", i, b, before[i])
		}
	}
	for _, b := range []netip.AddrPort{be1, be2, be3} {
		s.SetOnline(b, false)
	}
	f := flowOf(0)
	if _, ok := s.Choose(&f); ok {
		t.Error("Choose with no online backend returned ok")
	}
	if s.SetOnline(mustAP("10.0.0.99:1"), false) {
		t.Error("SetOnline of an unknown backend returned true")
	}
}

var be4 = mustAP("10.0.0.8:8080")

// hashMover returns a flow that the hash sends to be4 once be4 is added
// to {be1, be2, be3}, and its backend before that.
func hashMover(t *testing.T) (Flow, netip.AddrPort) {
	t.Helper()
	s3, s4 := newSel(t, 0, FieldIPSrc), newSel(t, 0, FieldIPSrc)
	s4.SetBackends([]netip.AddrPort{be1, be2, be3, be4})
	for i := range 1000 {
		f := flowOf(i)
		b3, _ := s3.Choose(&f)
		if b4, _ := s4.Choose(&f); b4 == be4 {
			return f, b3
		}
	}
	t.Fatal("no client hashes to be4")
	return Flow{}, netip.AddrPort{}
}

func TestAffinityCountsFromLastPacket(t *testing.T) {
	s := newSel(t, 3*time.Second, FieldIPSrc)
	f, first := hashMover(t)
	t0 := time.Unix(1_700_000_000, 0)
	if b, ok := s.Pick(&f, t0); !ok || b != first {
		t.Fatalf("Pick = %s %v, want %s", b, ok, first)
	}
	// From now on the hash prefers be4 for this client; only the pin
	// keeps it on first.
	s.SetBackends([]netip.AddrPort{be1, be2, be3, be4})
	if b, _ := s.Choose(&f); b != be4 {
		t.Fatalf("hash chooses %s, want be4", b)
	}
	now := t0
	for sec := 1; sec <= 30; sec++ { // 30 s > 10 timeouts, one packet a second
		now = t0.Add(time.Duration(sec) * time.Second)
		if sec%2 == 0 {
			if !s.Touch(f.Src, now) {
				t.Fatalf("t=%ds: Touch found no live pin", sec)
			}
			continue
		}
		f.SrcPort++ // a new connection of the same client
		if b, _ := s.Pick(&f, now); b != first {
			t.Fatalf("t=%ds: client moved from %s to %s while talking every second", sec, first, b)
		}
	}
	if b, last, ok := s.Affinity(f.Src); !ok || b != first || !last.Equal(now) {
		t.Fatalf("Affinity = %s %v %v, want %s %v", b, last, ok, first, now)
	}
	// Silence of exactly the timeout: still pinned (and refreshed).
	now = now.Add(3 * time.Second)
	if b, _ := s.Pick(&f, now); b != first {
		t.Fatalf("pin lost after exactly the timeout of silence")
	}
	// 4 s of silence: the pin has expired, a new choice is made.
	now = now.Add(4 * time.Second)
	if s.Touch(f.Src, now) {
		t.Fatal("Touch after 4 s of silence found a live pin")
	}
	if b, _ := s.Pick(&f, now); b != be4 {
		t.Fatalf("after 4 s of silence Pick = %s, want the hash's new choice be4", b)
	}
	if st := s.Stats(); st.Expired != 1 || st.Misses != 2 || st.Pins != 1 {
		t.Errorf("stats %+v, want 1 expired, 2 misses, 1 pin", st)
	}
}

func TestAffinityOfflineBackendDropsPins(t *testing.T) {
	s := newSel(t, time.Hour, FieldIPSrc)
	now := time.Unix(1_700_000_000, 0)
	const n = 3000
	before := make([]netip.AddrPort, n)
	for i := range n {
		f := flowOf(i)
		before[i], _ = s.Pick(&f, now)
	}
	s.SetOnline(be1, false)
	for i := range n {
		b, _, ok := s.Affinity(client(i))
		if before[i] == be1 && ok {
			t.Fatalf("client %d still pinned to offline be1", i)
		}
		if before[i] != be1 && (!ok || b != before[i]) {
			t.Fatalf("client %d lost its pin to %s", i, before[i])
		}
	}
	after := make([]netip.AddrPort, n)
	for i := range n {
		f := flowOf(i)
		after[i], _ = s.Pick(&f, now.Add(time.Second))
		if after[i] == be1 || (before[i] != be1 && after[i] != before[i]) {
			t.Fatalf("client %d: %s -> %s", i, before[i], after[i])
		}
	}
	// be1 returns: its former clients stay on their new, live pins.
	s.SetOnline(be1, true)
	for i := range n {
		f := flowOf(i)
		if b, _ := s.Pick(&f, now.Add(2*time.Second)); b != after[i] {
			t.Fatalf("client %d moved %s -> %s when be1 returned", i, after[i], b)
		}
	}
	// Expire sweeps silent pins only.
	f := flowOf(0)
	s.Pick(&f, now.Add(time.Hour+time.Minute))
	if got := s.Expire(now.Add(time.Hour + 3*time.Second)); got != n-1 {
		t.Errorf("Expire removed %d pins, want %d", got, n-1)
	}
	if st := s.Stats(); st.Pins != 1 {
		t.Errorf("%d pins left, want 1", st.Pins)
	}
}

func TestPickWithoutAffinityIsChoose(t *testing.T) {
	s := newSel(t, 0, FieldIPSrc)
	now := time.Unix(1, 0)
	for i := range 100 {
		f := flowOf(i)
		a, _ := s.Pick(&f, now)
		b, _ := s.Choose(&f)
		if a != b {
			t.Fatalf("client %d: Pick %s, Choose %s", i, a, b)
		}
	}
	if s.Touch(client(1), now) || s.Stats().Pins != 0 {
		t.Error("selector without affinity keeps pins")
	}
}

func TestSelectorAllocs(t *testing.T) {
	s := newSel(t, time.Minute, FieldIPSrc)
	now := time.Unix(1_700_000_000, 0)
	f := flowOf(42)
	s.Pick(&f, now) // pin
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		s.Pick(&f, now)
	}); n != 0 {
		t.Errorf("Pick (affinity hit) allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Touch(f.Src, now) }); n != 0 {
		t.Errorf("Touch allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Choose(&f) }); n != 0 {
		t.Errorf("Choose allocates %.1f times", n)
	}
	v6, err := NewSelector(&LoadBalancer{Name: "v6", VIP: mustAP("[fd00::10]:53"), Protocol: UDP,
		Backends: []netip.AddrPort{mustAP("[fd00::5]:53"), mustAP("[fd00::6]:53")}})
	if err != nil {
		t.Fatal(err)
	}
	g := Flow{Src: netip.MustParseAddr("fd00:1::1"), Dst: netip.MustParseAddr("fd00::10"), SrcPort: 1, DstPort: 53}
	if n := testing.AllocsPerRun(1000, func() { v6.Pick(&g, now) }); n != 0 {
		t.Errorf("Pick (IPv6, no affinity) allocates %.1f times", n)
	}
}

// TestSelectorConcurrent runs the fast path against the slow path; run
// with -race.
func TestSelectorConcurrent(t *testing.T) {
	s := newSel(t, time.Second, FieldIPSrc)
	base := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f := flowOf(w*1000 + i%500)
				now := base.Add(time.Duration(i) * time.Millisecond)
				b, ok := s.Pick(&f, now)
				if ok && b != be1 && b != be2 && b != be3 {
					panic(fmt.Sprintf("bogus backend %s", b))
				}
				s.Touch(f.Src, now)
			}
		})
	}
	end := time.Now().Add(200 * time.Millisecond)
	for i := 0; time.Now().Before(end); i++ {
		s.SetOnline([]netip.AddrPort{be1, be2, be3}[i%3], i%2 == 0)
		switch i % 100 {
		case 0:
			s.Expire(base.Add(time.Duration(i) * time.Millisecond))
		case 50:
			s.SetBackends([]netip.AddrPort{be3, be2, be1})
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
}

func BenchmarkPick(b *testing.B) {
	for _, aff := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("affinity=%v", aff), func(b *testing.B) {
			s := newSel(b, aff, FieldIPSrc)
			flows := make([]Flow, 1024)
			for i := range flows {
				flows[i] = flowOf(i)
			}
			now := time.Unix(1_700_000_000, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s.Pick(&flows[i&1023], now)
			}
		})
	}
}
