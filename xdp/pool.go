package xdp

import (
	"fmt"
	"sync/atomic"

	"xvs/flow"
)

// HeapPool is a fixed set of packets with Go-heap buffers, each
// flow.Headroom bytes of headroom followed by room for a frame of
// FrameSize bytes. All memory is allocated by NewHeapPool; Get and Free
// never allocate.
//
// The bound is the point: a device that runs out of buffers stops
// receiving (frames wait in the kernel) instead of growing without limit,
// and the datapath's flood clones are limited the same way.
//
// A HeapPool is safe for concurrent use, lock-free: a packet received by
// one poller may be freed by whichever goroutine sends it. The free list
// is a bounded multi-producer multi-consumer queue of packet indices
// (Vyukov's), one compare-and-swap per Get or Free.
type HeapPool struct {
	all       []flow.Packet
	inUse     []atomic.Uint32 // by Handle: detects double and foreign frees
	cells     []poolCell
	mask      uint64
	frameSize int

	_   [64]byte // keep the producer and consumer counters apart
	enq atomic.Uint64
	_   [56]byte
	deq atomic.Uint64
	_   [56]byte

	used     atomic.Int64
	badFrees atomic.Uint64
}

// poolCell is one slot of the free queue: seq tells whether it holds a
// value for the consumer at position pos (seq == pos+1) or is free for the
// producer at pos (seq == pos).
type poolCell struct {
	seq atomic.Uint64
	idx uint64
}

var _ flow.Pool = (*HeapPool)(nil)

// NewHeapPool allocates count packets, each with a buffer of
// flow.Headroom+frameSize bytes.
func NewHeapPool(count, frameSize int) (*HeapPool, error) {
	if count <= 0 || count > 1<<24 || frameSize < 14 {
		return nil, fmt.Errorf("xdp: heap pool of %d frames of %d bytes: need 0 < count <= 2^24 and frame size >= 14", count, frameSize)
	}
	bufSize := flow.Headroom + frameSize
	slab := make([]byte, count*bufSize)
	size := 1
	for size < count {
		size <<= 1
	}
	p := &HeapPool{
		all:       make([]flow.Packet, count),
		inUse:     make([]atomic.Uint32, count),
		cells:     make([]poolCell, size),
		mask:      uint64(size - 1),
		frameSize: frameSize,
	}
	for i := range p.all {
		pk := &p.all[i]
		pk.Buf = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		pk.Pool = p
		pk.Handle = uint64(i)
		pk.Off = flow.Headroom
	}
	for i := range p.cells {
		if i < count {
			p.cells[i].idx = uint64(i)
			p.cells[i].seq.Store(uint64(i) + 1)
		} else {
			p.cells[i].seq.Store(uint64(i))
		}
	}
	p.enq.Store(uint64(count))
	return p, nil
}

// push puts idx on the free queue; the queue has room for every packet,
// so it cannot be full.
func (p *HeapPool) push(idx uint64) {
	pos := p.enq.Load()
	for {
		c := &p.cells[pos&p.mask]
		switch d := int64(c.seq.Load() - pos); {
		case d == 0:
			if p.enq.CompareAndSwap(pos, pos+1) {
				c.idx = idx
				c.seq.Store(pos + 1)
				return
			}
			pos = p.enq.Load()
		default:
			// d < 0 would mean full (impossible: at most count
			// entries); d > 0: another producer moved on.
			pos = p.enq.Load()
		}
	}
}

// pop takes an index off the free queue.
func (p *HeapPool) pop() (uint64, bool) {
	pos := p.deq.Load()
	for {
		c := &p.cells[pos&p.mask]
		switch d := int64(c.seq.Load() - (pos + 1)); {
		case d == 0:
			if p.deq.CompareAndSwap(pos, pos+1) {
				idx := c.idx
				c.seq.Store(pos + p.mask + 1)
				return idx, true
			}
			pos = p.deq.Load()
		case d < 0:
			return 0, false // empty
		default:
			pos = p.deq.Load()
		}
	}
}

// FrameSize is the largest frame a packet of the pool holds (with its
// headroom intact).
func (p *HeapPool) FrameSize() int { return p.frameSize }

// Cap is the number of packets in the pool.
func (p *HeapPool) Cap() int { return len(p.all) }

// InUse is the number of packets handed out and not yet freed.
func (p *HeapPool) InUse() int { return int(p.used.Load()) }

// BadFrees counts Free calls for packets that were not in use (double
// frees) or not from this pool; such calls are otherwise ignored.
func (p *HeapPool) BadFrees() uint64 { return p.badFrees.Load() }

// Get hands out a packet with Off = flow.Headroom, Len = 0 and the other
// fields reset, or nil when all packets are in use. The caller owns it
// until it passes it on (see flow.Packet).
func (p *HeapPool) Get() *flow.Packet {
	idx, ok := p.pop()
	if !ok {
		return nil
	}
	pk := &p.all[idx]
	p.inUse[idx].Store(1)
	p.used.Add(1)
	pk.Off = flow.Headroom
	pk.Len = 0
	pk.InPort = 0
	pk.Hash = 0
	return pk
}

// Free takes back a packet handed out by Get; it may be called from any
// goroutine. Freeing a packet twice or a packet of another pool is
// counted in BadFrees and otherwise ignored.
func (p *HeapPool) Free(pk *flow.Packet) {
	h := pk.Handle
	if pk.Pool != flow.Pool(p) || h >= uint64(len(p.all)) || &p.all[h] != pk || !p.inUse[h].CompareAndSwap(1, 0) {
		p.badFrees.Add(1)
		return
	}
	p.used.Add(-1)
	p.push(h)
}

// Copy returns a new packet of the pool holding a copy of src's frame
// (at Off = flow.Headroom) and its InPort and Hash, or nil when the pool
// is empty or the frame does not fit. src is not modified; the caller owns
// the copy.
func (p *HeapPool) Copy(src *flow.Packet) *flow.Packet {
	if src.Len > p.frameSize {
		return nil
	}
	pk := p.Get()
	if pk == nil {
		return nil
	}
	pk.Len = copy(pk.Buf[flow.Headroom:], src.Data())
	pk.InPort = src.InPort
	pk.Hash = src.Hash
	return pk
}
