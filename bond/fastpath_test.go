package bond

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestFastPathAllocs(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	ab := mustNew(t, Config{Name: "ab", Mode: ModeActiveBackup, Members: members("a", "b")})
	mac := macN(7)
	var sink uint32
	f := Frame{DstMulticast: true, SrcLearnedElsewhere: true, GratuitousARP: true}
	for name, fn := range map[string]func(){
		"Select SLB": func() { m, _, _ := b.Select(mac, 10); sink += m },
		"Select AB":  func() { m, _, _ := ab.Select(mac, 10); sink += m },
		"Account":    func() { b.Account(9, 1500) },
		"Admit SLB":  func() { v, _ := b.Admit(2, f, t0); sink += uint32(v) },
		"Admit AB":   func() { v, _ := ab.Admit(2, f, t0); sink += uint32(v) },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", name, n)
		}
	}
	_ = sink
}

// TestConcurrentFailover runs Select/Account/Admit on several goroutines
// while the slow path flaps members; run it with -race. No Select may
// return a member outside the bond, and with one member always up every
// frame must be forwarded.
func TestConcurrentFailover(t *testing.T) {
	b := mustNew(t, slbConfig("p1", "p2", "p3"))
	var stop atomic.Bool
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				m, bucket, ok := b.Select(macN(i&1023), uint16(g))
				if !ok || m < 1 || m > 3 {
					bad.Add(1)
				}
				b.Account(bucket, 100)
				b.Admit(m, Frame{}, t0)
			}
		}(g)
	}
	for i := 0; i < 2000; i++ {
		p := uint32(i%2 + 2) // p1 stays up
		b.SetCarrier(p, i%4 < 2, at(i))
		if i%100 == 0 {
			b.Run(at(i * 100))
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d selections returned no or a foreign member", n)
	}
}

func BenchmarkSelect(b *testing.B) {
	bd := mustNew(b, slbConfig("p1", "p2", "p3"))
	macs := make([][6]byte, 1024)
	for i := range macs {
		macs[i] = macN(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink uint32
	for i := 0; i < b.N; i++ {
		m, bucket, _ := bd.Select(macs[i&1023], 10)
		bd.Account(bucket, 64)
		sink += m
	}
	_ = sink
}

func BenchmarkAdmit(b *testing.B) {
	bd := mustNew(b, slbConfig("p1", "p2", "p3"))
	b.ReportAllocs()
	f := Frame{DstMulticast: true}
	for i := 0; i < b.N; i++ {
		bd.Admit(uint32(i%3+1), f, t0)
	}
}
