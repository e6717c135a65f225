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
// A HeapPool is owned by one goroutine (the poller), as flow.Pool allows:
// Get and Free must not be called concurrently. InUse, Cap and BadFrees
// may be read from any goroutine.
type HeapPool struct {
	free      []*flow.Packet // stack of free packets
	all       []flow.Packet
	inUse     []bool // by Handle: detects double and foreign frees
	frameSize int

	used     atomic.Int64
	badFrees atomic.Uint64
}

var _ flow.Pool = (*HeapPool)(nil)

// NewHeapPool allocates count packets, each with a buffer of
// flow.Headroom+frameSize bytes.
func NewHeapPool(count, frameSize int) (*HeapPool, error) {
	if count <= 0 || frameSize < 14 {
		return nil, fmt.Errorf("xdp: heap pool of %d frames of %d bytes: need count > 0 and frame size >= 14", count, frameSize)
	}
	bufSize := flow.Headroom + frameSize
	slab := make([]byte, count*bufSize)
	p := &HeapPool{
		free:      make([]*flow.Packet, count),
		all:       make([]flow.Packet, count),
		inUse:     make([]bool, count),
		frameSize: frameSize,
	}
	for i := range p.all {
		pk := &p.all[i]
		pk.Buf = slab[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		pk.Pool = p
		pk.Handle = uint64(i)
		pk.Off = flow.Headroom
		p.free[count-1-i] = pk // Get hands out index 0 first
	}
	return p, nil
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
	n := len(p.free)
	if n == 0 {
		return nil
	}
	pk := p.free[n-1]
	p.free = p.free[:n-1]
	p.inUse[pk.Handle] = true
	p.used.Add(1)
	pk.Off = flow.Headroom
	pk.Len = 0
	pk.InPort = 0
	pk.Hash = 0
	return pk
}

// Free takes back a packet handed out by Get. Freeing a packet twice or a
// packet of another pool is counted in BadFrees and otherwise ignored.
func (p *HeapPool) Free(pk *flow.Packet) {
	h := pk.Handle
	if pk.Pool != flow.Pool(p) || h >= uint64(len(p.all)) || &p.all[h] != pk || !p.inUse[h] {
		p.badFrees.Add(1)
		return
	}
	p.inUse[h] = false
	p.used.Add(-1)
	p.free = append(p.free, pk)
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
