package flow

// Packet is one frame moving through the datapath.
//
// Buf is the whole buffer the frame lives in: headroom, the frame at
// Buf[Off:Off+Len], and tailroom. Headroom lets VLAN push grow the frame in
// place (ports leave at least Headroom bytes in front of received frames).
//
// Ownership: a Packet and its Buf belong to exactly one party at a time. A
// port's Recv hands packets to the caller; the caller gives each one back
// exactly once, either to a port's Send (which takes ownership, whether it
// transmits the frame or drops it) or to its Pool via Free. A Packet must
// not be touched after it has been handed on.
type Packet struct {
	Buf []byte
	Off int
	Len int

	// Pool is where the buffer returns when the packet is freed; nil for
	// packets that need no recycling (test buffers).
	Pool Pool
	// Handle is private to Pool (for AF_XDP: the UMEM address of the frame).
	Handle uint64

	// InPort is the ofport the frame arrived on (set by the datapath).
	InPort uint32
	// Hash is a flow hash of the key, filled by the datapath (0 = unset).
	Hash uint32
}

// Headroom is the space ports keep in front of a received frame so that up
// to two VLAN tags can be pushed without moving the payload.
const Headroom = 64

// Data returns the frame bytes (a view, valid while the packet is owned).
func (p *Packet) Data() []byte { return p.Buf[p.Off : p.Off+p.Len] }

// Free returns the packet to its pool. The packet must not be used after.
func (p *Packet) Free() {
	if p.Pool != nil {
		p.Pool.Free(p)
	}
}

// Pool recycles packet buffers. Implementations are not required to be safe
// for concurrent use unless they say so: each poller owns its pools.
type Pool interface {
	// Free takes back a packet previously handed out by this pool.
	Free(p *Packet)
}
