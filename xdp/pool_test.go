package xdp

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"xvs/flow"
)

func TestHeapPool(t *testing.T) {
	if _, err := NewHeapPool(0, 1500); err == nil {
		t.Fatal("NewHeapPool(0) succeeded")
	}
	p, err := NewHeapPool(4, 1518)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cap() != 4 || p.FrameSize() != 1518 || p.InUse() != 0 {
		t.Fatalf("cap %d frame %d in use %d", p.Cap(), p.FrameSize(), p.InUse())
	}
	var got []*flow.Packet
	seen := map[*byte]bool{}
	for {
		pk := p.Get()
		if pk == nil {
			break
		}
		if pk.Off != flow.Headroom || pk.Len != 0 || len(pk.Buf) != flow.Headroom+1518 || pk.Pool != flow.Pool(p) {
			t.Fatalf("fresh packet: off %d len %d buf %d", pk.Off, pk.Len, len(pk.Buf))
		}
		if seen[&pk.Buf[0]] {
			t.Fatal("buffer handed out twice")
		}
		seen[&pk.Buf[0]] = true
		got = append(got, pk)
	}
	if len(got) != 4 || p.InUse() != 4 {
		t.Fatalf("got %d packets, in use %d", len(got), p.InUse())
	}
	// Buffers do not overlap: writing the whole of one leaves the others.
	for i, pk := range got {
		for j := range pk.Buf {
			pk.Buf[j] = byte(i)
		}
	}
	for i, pk := range got {
		if bytes.Count(pk.Buf, []byte{byte(i)}) != len(pk.Buf) {
			t.Fatalf("buffer %d overwritten", i)
		}
	}
	got[1].InPort, got[1].Hash, got[1].Off, got[1].Len = 7, 9, 10, 20
	got[1].Free()
	if p.InUse() != 3 {
		t.Fatalf("in use %d after free", p.InUse())
	}
	got[1].Free() // double free
	if p.BadFrees() != 1 || p.InUse() != 3 {
		t.Fatalf("double free: bad %d in use %d", p.BadFrees(), p.InUse())
	}
	other, _ := NewHeapPool(1, 100)
	p.Free(other.Get()) // foreign
	if p.BadFrees() != 2 {
		t.Fatalf("foreign free not counted: %d", p.BadFrees())
	}
	pk := p.Get()
	if pk != got[1] || pk.InPort != 0 || pk.Hash != 0 || pk.Off != flow.Headroom || pk.Len != 0 {
		t.Fatalf("recycled packet not reset: %+v", pk)
	}
	if p.Get() != nil {
		t.Fatal("Get beyond capacity")
	}
	for _, pk := range got {
		pk.Free()
	}
	if p.InUse() != 0 || p.BadFrees() != 2 {
		t.Fatalf("in use %d bad %d", p.InUse(), p.BadFrees())
	}
}

func TestHeapPoolCopy(t *testing.T) {
	p, _ := NewHeapPool(2, 100)
	src := &flow.Packet{Buf: make([]byte, 300), Off: 5, Len: 100, InPort: 3, Hash: 42}
	for i := range src.Buf {
		src.Buf[i] = byte(i)
	}
	c := p.Copy(src)
	if c == nil || c.Off != flow.Headroom || !bytes.Equal(c.Data(), src.Data()) || c.InPort != 3 || c.Hash != 42 {
		t.Fatalf("copy: %+v", c)
	}
	src.Len = 101
	if p.Copy(src) != nil {
		t.Fatal("copy of an oversized frame")
	}
	src.Len = 10
	if p.Copy(src) == nil || p.Copy(src) != nil {
		t.Fatal("copy did not respect the pool bound")
	}
}

func TestHeapPoolAllocs(t *testing.T) {
	p, _ := NewHeapPool(64, 1518)
	src := &flow.Packet{Buf: make([]byte, 200), Len: 200}
	var batch [32]*flow.Packet
	allocs := testing.AllocsPerRun(100, func() {
		for i := range batch {
			batch[i] = p.Copy(src)
		}
		for _, pk := range batch {
			pk.Free()
		}
	})
	if allocs != 0 {
		t.Fatalf("Get/Copy/Free allocate: %v per run", allocs)
	}
	if p.InUse() != 0 {
		t.Fatalf("in use %d", p.InUse())
	}
}

func TestDevicePoolMTU(t *testing.T) {
	small, _ := NewHeapPool(1, 1000)
	if _, err := devicePool(small, 1500); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("pool too small for MTU: %v", err)
	}
	p, err := devicePool(nil, 9000)
	if err != nil || p.FrameSize() != 9018 || p.Cap() != DefaultPoolSize {
		t.Fatalf("default pool: %v %v", p, err)
	}
}

// TestHeapPoolConcurrent: packets received on one goroutine and freed on
// others are never handed out twice and never lost.
func TestHeapPoolConcurrent(t *testing.T) {
	const count = 64
	p, _ := NewHeapPool(count, 64)
	var owned [count]atomic.Int32
	const workers = 4
	const iters = 20000
	var wg sync.WaitGroup
	ch := make(chan *flow.Packet, 16)
	errc := make(chan string, workers+1)
	take := func(pk *flow.Packet) bool {
		if !owned[pk.Handle].CompareAndSwap(0, 1) {
			errc <- "packet handed out twice"
			return false
		}
		return true
	}
	give := func(pk *flow.Packet) {
		owned[pk.Handle].Store(0)
		pk.Free()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				pk := p.Get()
				if pk == nil {
					runtime.Gosched()
					continue
				}
				if !take(pk) {
					return
				}
				if i%2 == 0 {
					give(pk)
				} else {
					ch <- pk // freed by the consumer goroutine
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for pk := range ch {
			give(pk)
		}
		close(done)
	}()
	wg.Wait()
	close(ch)
	<-done
	close(errc)
	for e := range errc {
		t.Fatal(e)
	}
	if p.InUse() != 0 || p.BadFrees() != 0 {
		t.Fatalf("in use %d, bad frees %d", p.InUse(), p.BadFrees())
	}
	// Every packet is back: count of Gets until empty.
	n := 0
	for p.Get() != nil {
		n++
	}
	if n != count {
		t.Fatalf("%d packets left of %d", n, count)
	}
}

func BenchmarkHeapPoolGetFree(b *testing.B) {
	p, _ := NewHeapPool(256, 1518)
	var batch [32]*flow.Packet
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = p.Get()
		}
		for _, pk := range batch {
			pk.Free()
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds()/1e6, "Mops")
}
