package xdp

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memRing builds a ring over ordinary memory, with the same layout the
// kernel reports through XDP_MMAP_OFFSETS, so the index arithmetic can be
// tested without a socket.
func memRing(size uint32, descSize uintptr) *ring {
	mem := make([]byte, 64+int(size)*int(descSize))
	base := unsafe.Pointer(&mem[0])
	return &ring{
		prod:  (*uint32)(base),
		cons:  (*uint32)(unsafe.Add(base, 4)),
		flags: (*uint32)(unsafe.Add(base, 8)),
		descs: unsafe.Add(base, 64),
		mask:  size - 1,
		size:  size,
	}
}

// TestRingSPSC runs a producer and a consumer goroutine over one ring (the
// consumer plays the kernel) across many index wrap-arounds, including
// the uint32 overflow, and checks every value arrives once and in order.
func TestRingSPSC(t *testing.T) {
	const total = 200000
	p := memRing(64, 8)
	c := *p // the other side: same shared words, own caches
	start := uint32(1<<32 - 1000)
	*p.prod, *p.cons = start, start
	p.cachedProd, p.cachedCons = start, start
	c.cachedProd, c.cachedCons = start, start
	var wg sync.WaitGroup
	wg.Add(1)
	var bad atomic.Int64
	go func() {
		defer wg.Done()
		next := uint64(0)
		for next < total {
			n := c.consAvail(16)
			for i := uint32(0); i < n; i++ {
				if v := *c.addr(c.cachedCons + i); v != next {
					bad.Add(1)
				}
				next++
			}
			if n > 0 {
				c.consRelease(n)
			}
		}
	}()
	v := uint64(0)
	for v < total {
		n := min(p.prodFree(8), uint32(total-v), 13)
		for i := uint32(0); i < n; i++ {
			*p.addr(p.cachedProd + i) = v
			v++
		}
		if n > 0 {
			p.prodSubmit(n)
		}
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d values out of order or corrupted", bad.Load())
	}
	if p.pending() != 0 {
		t.Fatalf("ring not empty: %d", p.pending())
	}
}

func TestRingFullAndDesc(t *testing.T) {
	r := memRing(8, unsafe.Sizeof(unix.XDPDesc{}))
	if got := r.prodFree(1); got != 8 {
		t.Fatalf("empty ring free = %d", got)
	}
	for i := uint32(0); i < 8; i++ {
		*r.desc(r.cachedProd + i) = unix.XDPDesc{Addr: uint64(i) << 11, Len: 60 + i}
	}
	r.prodSubmit(8)
	if got := r.prodFree(1); got != 0 {
		t.Fatalf("full ring free = %d", got)
	}
	atomic.StoreUint32(r.cons, 3) // the consumer frees 3 slots
	if got := r.prodFree(1); got != 3 {
		t.Fatalf("free after consumer moved = %d, want 3", got)
	}
	if d := r.desc(11); d.Addr != 3<<11 || d.Len != 63 {
		t.Fatalf("slot 11 aliases slot 3: %+v", *d)
	}
	atomic.StoreUint32(r.flags, unix.XDP_RING_NEED_WAKEUP)
	if !r.needWakeup() {
		t.Fatal("need_wakeup flag not seen")
	}
}

func TestUMEMAllocFree(t *testing.T) {
	u, err := NewUMEM(UMEMConfig{Frames: 16, FrameSize: FrameSize2K})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := NewUMEM(UMEMConfig{FrameSize: 3000}); err == nil {
		t.Fatal("frame size 3000 accepted")
	}
	var ps []*packetRef
	for i := 0; i < 16; i++ {
		p, err := u.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if p.Off != RxDataOffset || len(p.Buf) != 2048 || p.Handle%2048 != 0 || !u.owns(p) {
			t.Fatalf("bad frame %d: off %d len %d handle %d", i, p.Off, len(p.Buf), p.Handle)
		}
		p.Len = 60
		if i%2 == 0 {
			p.Free() // the next Alloc may hand this frame out again
		} else {
			ps = append(ps, &packetRef{p.Handle})
		}
	}
	a := u.Accounting()
	if a.Free != 8 || a.User != 8 || a.Sum() != 16 {
		t.Fatalf("accounting %v", a)
	}
	if err := u.checkFreeList(); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, r := range ps {
		if seen[r.h] {
			t.Fatalf("frame %d handed out twice", r.h)
		}
		seen[r.h] = true
	}
	allocs := testing.AllocsPerRun(100, func() {
		p, err := u.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		p.Free()
	})
	if allocs != 0 {
		t.Fatalf("Alloc+Free allocate %.1f times", allocs)
	}
}

type packetRef struct{ h uint64 }

func ExampleParseMode() {
	m, err := ParseMode("native-with-zerocopy")
	fmt.Println(m, err)
	_, err = ParseMode("turbo")
	fmt.Println(err)
	// Output:
	// native-with-zerocopy <nil>
	// xdp: unknown xdp-mode "turbo"
}
