package datapath

import (
	"sync"

	"xvs/flow"
)

// cloneBufSize fits the largest frame AF_XDP can carry (4 KiB frames) plus
// headroom; larger frames (TAP/AF_PACKET jumbo) get a one-off buffer.
const (
	cloneBufSize  = 4096
	maxFreeClones = 1024
)

// clonePool supplies copies of packets when one packet leaves by several
// ports (flooding, multiple outputs). Copies are freed by whichever device
// sends them, possibly on another goroutine, hence the mutex; the free list
// is bounded so a burst of floods cannot pin memory forever.
type clonePool struct {
	mu   sync.Mutex
	free []*flow.Packet
}

// Free implements flow.Pool.
func (c *clonePool) Free(p *flow.Packet) {
	c.mu.Lock()
	if len(c.free) < maxFreeClones && cap(p.Buf) == cloneBufSize {
		c.free = append(c.free, p)
	}
	c.mu.Unlock()
}

// clone copies pk into a fresh packet with the same headroom.
func (c *clonePool) clone(pk *flow.Packet) *flow.Packet {
	size := flow.Headroom + pk.Len
	var np *flow.Packet
	if size <= cloneBufSize {
		c.mu.Lock()
		if n := len(c.free); n > 0 {
			np = c.free[n-1]
			c.free = c.free[:n-1]
		}
		c.mu.Unlock()
		if np == nil {
			np = &flow.Packet{Buf: make([]byte, cloneBufSize), Pool: c}
		}
	} else {
		np = &flow.Packet{Buf: make([]byte, size)}
	}
	np.Off = flow.Headroom
	np.Len = pk.Len
	np.InPort = pk.InPort
	np.Hash = pk.Hash
	copy(np.Buf[np.Off:], pk.Data())
	return np
}
