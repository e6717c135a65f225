package xdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is the user side of one single-producer/single-consumer AF_XDP ring
// shared with the kernel through mmap.
//
// Memory ordering: the producer and consumer indices live in the shared
// mapping and are read and written only with sync/atomic. An atomic store
// in Go is a release (and more), an atomic load an acquire, which gives the
// pairing the kernel expects (smp_load_acquire/smp_store_release in
// net/xdp/xsk_queue.h): descriptors are written before the producer index
// is published, and read only after the producer index that covers them
// has been loaded; a slot is reused only after the consumer index that
// frees it has been loaded.
//
// Indices are free-running uint32 counters; slot = index & mask.
type ring struct {
	prod  *uint32
	cons  *uint32
	flags *uint32
	descs unsafe.Pointer // []unix.XDPDesc (rx/tx) or []uint64 (fill/completion)
	mask  uint32
	size  uint32

	// cached copies of the index owned by the other side (to avoid an atomic
	// load per operation) and of our own index.
	cachedProd uint32
	cachedCons uint32

	mem []byte // the whole mapping, for munmap
}

// mapRing mmaps one ring of fd.
func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, size uint32, descSize uintptr) (*ring, error) {
	length := int(off.Desc) + int(size)*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xdp: mmap ring (pgoff %#x): %w", pgoff, err)
	}
	base := unsafe.Pointer(&mem[0])
	r := &ring{
		prod:  (*uint32)(unsafe.Add(base, off.Producer)),
		cons:  (*uint32)(unsafe.Add(base, off.Consumer)),
		flags: (*uint32)(unsafe.Add(base, off.Flags)),
		descs: unsafe.Add(base, off.Desc),
		mask:  size - 1,
		size:  size,
		mem:   mem,
	}
	return r, nil
}

func (r *ring) unmap() {
	if r != nil && r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// needWakeup reports whether the kernel asked to be kicked for this ring
// (XDP_USE_NEED_WAKEUP).
func (r *ring) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// --- producer side (fill, tx) ---

// prodFree returns how many slots the producer may fill, refreshing the
// cached consumer index when fewer than want are known to be free.
func (r *ring) prodFree(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free >= want {
		return free
	}
	r.cachedCons = atomic.LoadUint32(r.cons)
	return r.size - (r.cachedProd - r.cachedCons)
}

// prodSubmit publishes n slots written after cachedProd.
func (r *ring) prodSubmit(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.prod, r.cachedProd)
}

// --- consumer side (rx, completion) ---

// consAvail returns how many entries can be consumed, refreshing the cached
// producer index when fewer than want are known.
func (r *ring) consAvail(want uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail >= want {
		return avail
	}
	r.cachedProd = atomic.LoadUint32(r.prod)
	return r.cachedProd - r.cachedCons
}

// consRelease gives n consumed slots back to the producer.
func (r *ring) consRelease(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.cons, r.cachedCons)
}

// pending reports the entries currently in the ring as the two indices
// say (for accounting; racy by nature but each index is read atomically).
func (r *ring) pending() uint32 {
	return atomic.LoadUint32(r.prod) - atomic.LoadUint32(r.cons)
}

// addr returns the address slot i of a fill or completion ring.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

// desc returns descriptor slot i of an rx or tx ring.
func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}
