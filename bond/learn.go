package bond

import "encoding/binary"

// Learning packet sizes: an Ethernet header plus an ARP body (RARP), with
// an 802.1Q tag when the VLAN is not 0. Like OVS's compose_rarp() the
// frame is not padded to 60 bytes; NICs pad short frames on transmit.
const (
	LearningPacketLen       = 14 + 28
	LearningPacketLenTagged = LearningPacketLen + 4
)

// LearningPacket writes into buf the learning packet OVS sends for mac on
// vlan after a failover: an RARP "reverse request" (ethertype 0x8035,
// opcode 3) from mac to the broadcast address, with sender and target
// hardware address mac and both IPv4 addresses 0, and an 802.1Q tag
// (TPID 0x8100, PCP 0) carrying vlan when vlan != 0. It returns the frame
// length, or 0 if buf is too short. It does not allocate; buf stays owned
// by the caller.
func LearningPacket(buf []byte, mac [6]byte, vlan uint16) int {
	n := LearningPacketLen
	if vlan != 0 {
		n = LearningPacketLenTagged
	}
	if len(buf) < n {
		return 0
	}
	buf = buf[:n]
	for i := 0; i < 6; i++ {
		buf[i] = 0xff
	}
	copy(buf[6:12], mac[:])
	off := 12
	if vlan != 0 {
		binary.BigEndian.PutUint16(buf[12:], 0x8100)
		binary.BigEndian.PutUint16(buf[14:], vlan&0x0fff)
		off = 16
	}
	binary.BigEndian.PutUint16(buf[off:], 0x8035)
	a := buf[off+2:]
	binary.BigEndian.PutUint16(a[0:], 1)      // hardware type: Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // protocol type: IPv4
	a[4], a[5] = 6, 4                         // address lengths
	binary.BigEndian.PutUint16(a[6:], 3)      // RARP reverse request
	copy(a[8:14], mac[:])                     // sender hardware address
	clear(a[14:18])                           // sender IP 0
	copy(a[18:24], mac[:])                    // target hardware address
	clear(a[24:28])                           // target IP 0
	return n
}

// Learned is one MAC-table entry to announce.
type Learned struct {
	MAC  [6]byte
	VLAN uint16
}

// Announcer spreads learning packets over time. On Events.SendLearning
// the datapath calls Start with the MACs learned on non-bond ports (up to
// the MAC table size, 8192 by default) and then, once per tick of its run
// loop, Next to get at most PerTick entries; for each it calls Select to
// find the member and LearningPacket to build the frame. A new Start
// replaces the pending work: the newest failover decides where every MAC
// must be announced.
//
// An Announcer is owned by one goroutine (the datapath's slow loop); its
// buffer is allocated once, at NewAnnouncer, and reused.
type Announcer struct {
	perTick int
	queue   []Learned
	next    int
	dropped int
}

// NewAnnouncer returns an Announcer releasing at most perTick entries per
// Next call and holding at most capacity entries (extra ones given to
// Start are counted by Dropped).
func NewAnnouncer(perTick, capacity int) *Announcer {
	perTick = max(perTick, 1)
	return &Announcer{perTick: perTick, queue: make([]Learned, 0, max(capacity, 0))}
}

// Start replaces the pending announcements with entries (copied).
func (a *Announcer) Start(entries []Learned) {
	n := min(len(entries), cap(a.queue))
	a.dropped += len(entries) - n
	a.queue = append(a.queue[:0], entries[:n]...)
	a.next = 0
}

// Next copies up to min(PerTick, len(dst)) pending entries into dst and
// returns how many it copied; 0 when nothing is pending. It does not
// allocate.
func (a *Announcer) Next(dst []Learned) int {
	n := copy(dst[:min(len(dst), a.perTick)], a.queue[a.next:])
	a.next += n
	if a.next == len(a.queue) {
		a.queue = a.queue[:0]
		a.next = 0
	}
	return n
}

// Pending returns the number of entries not yet released by Next.
func (a *Announcer) Pending() int { return len(a.queue) - a.next }

// Dropped returns how many entries Start had to drop for lack of capacity.
func (a *Announcer) Dropped() int { return a.dropped }
