package xdp

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"xvs/flow"
)

// Frame sizes a UMEM may use. Chunks are aligned (no
// XDP_UMEM_UNALIGNED_CHUNK_FLAG), so the frame of any address inside the
// UMEM is addr &^ (FrameSize-1).
const (
	FrameSize2K = 2048
	FrameSize4K = 4096
)

// RxDataOffset is where the kernel puts a received frame inside its UMEM
// frame in copy mode and in zero-copy drivers: XDP_PACKET_HEADROOM (256)
// bytes after the frame start plus the UMEM headroom (which xvs sets to 0).
// It is far more than flow.Headroom, so VLAN pushes happen in place.
const RxDataOffset = unix.XDP_PACKET_HEADROOM

// Frame states (UMEM.state).
const (
	stFree uint8 = iota // on the UMEM free list
	stUser              // handed out (Recv/Alloc), not yet freed or sent
	stFill              // given to the kernel for RX: fill ring, kernel cache or rx ring
	stTx                // in a tx ring or awaiting completion
)

// UMEMConfig sizes a UMEM. The zero value is usable.
type UMEMConfig struct {
	// Frames is the number of frames (default 8192).
	Frames uint32
	// FrameSize is 2048 (default) or 4096.
	FrameSize uint32
}

// UMEM is a packet buffer area shared with the kernel by one or more
// AF_XDP sockets (XDP_SHARED_UMEM). It is also the flow.Pool of every
// frame it hands out: Free puts a frame back on the free list, from which
// the sockets refill their fill rings.
//
// Concurrency: a UMEM and all sockets sharing it belong to one poller
// goroutine. Recv, Send, Alloc and Free must not be called concurrently.
// Accounting and socket Stats may be called from any goroutine (Accounting
// is exact only when the poller is quiescent).
type UMEM struct {
	mem       []byte
	frameSize uint32
	shift     uint
	frames    uint32

	free  []uint64      // stack of free frame addresses
	pkts  []flow.Packet // one Packet per frame, reused
	state []uint8       // per frame: stFree/stUser/stFill/stTx
	owner []uint8       // per frame: socket slot for stFill/stTx

	mu    sync.Mutex // protects regFd, regFlags, sockets, closed (control path only)
	regFd int        // socket the UMEM is registered on (-1: none yet)
	// regFlags are the bind flags of the registering socket; sockets that
	// share the UMEM inherit them (copy/zero-copy, need_wakeup).
	regFlags uint16
	sockets  [maxSockets]*Socket
	nsock    int
	closed   bool

	badFree atomic.Uint64
}

const maxSockets = 255

// ErrNoFrames is returned by Alloc when every frame is in use.
var ErrNoFrames = errors.New("xdp: no free UMEM frame")

// NewUMEM maps a UMEM. It is registered with the kernel by the first socket
// opened on it.
func NewUMEM(cfg UMEMConfig) (*UMEM, error) {
	if cfg.Frames == 0 {
		cfg.Frames = 8192
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = FrameSize2K
	}
	if cfg.FrameSize != FrameSize2K && cfg.FrameSize != FrameSize4K {
		return nil, fmt.Errorf("xdp: frame size %d: must be 2048 or 4096", cfg.FrameSize)
	}
	size := int(cfg.Frames) * int(cfg.FrameSize)
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xdp: mmap UMEM of %d bytes: %w", size, err)
	}
	u := &UMEM{
		mem:       mem,
		frameSize: cfg.FrameSize,
		frames:    cfg.Frames,
		free:      make([]uint64, 0, cfg.Frames),
		pkts:      make([]flow.Packet, cfg.Frames),
		state:     make([]uint8, cfg.Frames),
		owner:     make([]uint8, cfg.Frames),
		regFd:     -1,
	}
	for u.frameSize>>u.shift != 1 {
		u.shift++
	}
	for i := cfg.Frames; i > 0; i-- {
		base := uint64(i-1) << u.shift
		p := &u.pkts[i-1]
		p.Buf = mem[base : base+uint64(u.frameSize) : base+uint64(u.frameSize)]
		p.Pool = u
		p.Handle = base
		u.free = append(u.free, base)
	}
	return u, nil
}

// FrameSize returns the size of each frame.
func (u *UMEM) FrameSize() int { return int(u.frameSize) }

// Frames returns the number of frames.
func (u *UMEM) Frames() int { return int(u.frames) }

// MaxFrameLen is the longest frame the kernel can receive into this UMEM.
func (u *UMEM) MaxFrameLen() int { return int(u.frameSize) - RxDataOffset }

// Alloc hands out a free frame as a packet with Off = RxDataOffset and Len 0
// (for generators and tests). The caller owns it until it is freed or sent.
func (u *UMEM) Alloc() (*flow.Packet, error) {
	n := len(u.free)
	if n == 0 {
		return nil, ErrNoFrames
	}
	addr := u.free[n-1]
	u.free = u.free[:n-1]
	idx := addr >> u.shift
	u.state[idx] = stUser
	p := &u.pkts[idx]
	p.Off, p.Len, p.InPort, p.Hash = RxDataOffset, 0, 0, 0
	return p, nil
}

// Free implements flow.Pool: the frame returns to the free list. Freeing a
// packet that is not an outstanding frame of this UMEM is ignored and
// counted (Accounting.BadFrees).
func (u *UMEM) Free(p *flow.Packet) {
	idx := p.Handle >> u.shift
	if idx >= uint64(u.frames) || &u.pkts[idx] != p || u.state[idx] != stUser {
		u.badFree.Add(1)
		return
	}
	u.state[idx] = stFree
	u.free = append(u.free, p.Handle)
}

// owns reports whether p is a frame of this UMEM.
func (u *UMEM) owns(p *flow.Packet) bool {
	if p.Pool != flow.Pool(u) {
		return false
	}
	idx := p.Handle >> u.shift
	return idx < uint64(u.frames) && &u.pkts[idx] == p
}

// Accounting says where every frame of a UMEM is.
type Accounting struct {
	Total int // frames in the UMEM
	Free  int // on the free list
	Fill  int // given to the kernel for RX and not yet received (fill ring or kernel cache)
	RX    int // received by the kernel, waiting in rx rings
	TX    int // in tx rings or awaiting completion
	User  int // handed out by Recv/Alloc and not yet sent or freed
	// BadFrees counts Free calls for packets that were not outstanding.
	BadFrees uint64
}

// Sum is Free+Fill+RX+TX+User; it equals Total when every frame is accounted for.
func (a Accounting) Sum() int { return a.Free + a.Fill + a.RX + a.TX + a.User }

func (a Accounting) String() string {
	return fmt.Sprintf("total=%d free=%d fill=%d rx=%d tx=%d user=%d badfree=%d",
		a.Total, a.Free, a.Fill, a.RX, a.TX, a.User, a.BadFrees)
}

// Accounting counts frames by state. It walks the per-frame state table
// (O(frames)); call it when the poller is quiescent for exact numbers.
func (u *UMEM) Accounting() Accounting {
	a := Accounting{Total: int(u.frames), BadFrees: u.badFree.Load()}
	var fill int
	for _, s := range u.state {
		switch s {
		case stFree:
			a.Free++
		case stUser:
			a.User++
		case stFill:
			fill++
		case stTx:
			a.TX++
		}
	}
	u.mu.Lock()
	for _, s := range u.sockets[:u.nsock] {
		if s != nil && s.rx != nil {
			a.RX += int(s.rx.pending())
		}
	}
	u.mu.Unlock()
	a.Fill = fill - a.RX
	return a
}

// attach registers s with the UMEM and returns its slot, the fd to share
// (-1 when s is the first socket and must register the UMEM itself) and
// the bind flags the sharing socket inherits.
func (u *UMEM) attach(s *Socket) (slot int, shareFd int, flags uint16, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, 0, 0, errors.New("xdp: UMEM is closed")
	}
	slot = -1
	for i := 0; i < u.nsock; i++ {
		if u.sockets[i] == nil {
			slot = i
			break
		}
	}
	if slot < 0 {
		if u.nsock == maxSockets {
			return 0, 0, 0, fmt.Errorf("xdp: more than %d sockets on one UMEM", maxSockets)
		}
		slot = u.nsock
		u.nsock++
	}
	u.sockets[slot] = s
	return slot, u.regFd, u.regFlags, nil
}

// registered records the fd the UMEM was registered on and its bind flags.
func (u *UMEM) registered(fd int, flags uint16) {
	u.mu.Lock()
	u.regFd, u.regFlags = fd, flags
	u.mu.Unlock()
}

// detach forgets the socket in slot and reclaims every frame that socket
// had given to the kernel (its fill and tx rings are gone with it).
func (u *UMEM) detach(slot int, fd int) {
	u.mu.Lock()
	u.sockets[slot] = nil
	if u.regFd == fd {
		// The kernel keeps the UMEM alive while other sockets use it, but a
		// new socket can no longer share through a closed fd: pick a
		// remaining socket as the sharing anchor.
		u.regFd = -1
		for _, s := range u.sockets[:u.nsock] {
			if s != nil {
				u.regFd = s.fd
				break
			}
		}
	}
	u.mu.Unlock()
	for i, st := range u.state {
		if (st == stFill || st == stTx) && int(u.owner[i]) == slot {
			u.state[i] = stFree
			u.free = append(u.free, uint64(i)<<u.shift)
		}
	}
}

// Close unmaps the UMEM. All sockets using it must be closed first.
func (u *UMEM) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	for _, s := range u.sockets[:u.nsock] {
		if s != nil {
			return fmt.Errorf("xdp: UMEM still used by socket on %s queue %d", s.ifname, s.queue)
		}
	}
	u.closed = true
	return unix.Munmap(u.mem)
}

// checkFreeList verifies that the free list holds exactly the frames in
// state free, each once (for tests; O(frames)).
func (u *UMEM) checkFreeList() error {
	seen := make([]bool, u.frames)
	for _, addr := range u.free {
		fi := addr >> u.shift
		if addr&uint64(u.frameSize-1) != 0 || fi >= uint64(u.frames) {
			return fmt.Errorf("xdp: bad address %#x on the free list", addr)
		}
		if seen[fi] {
			return fmt.Errorf("xdp: frame %d twice on the free list", fi)
		}
		seen[fi] = true
		if u.state[fi] != stFree {
			return fmt.Errorf("xdp: frame %d on the free list in state %d", fi, u.state[fi])
		}
	}
	for fi, st := range u.state {
		if st == stFree && !seen[fi] {
			return fmt.Errorf("xdp: free frame %d missing from the free list", fi)
		}
	}
	return nil
}
