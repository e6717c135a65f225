package conntrack

import (
	"sync"
	"sync/atomic"
	"time"

	"xvs/flow"
)

// Flags are the ct_state bits, with Open vSwitch's values (OVS_CS_F_*).
type Flags uint8

const (
	CSNew  Flags = 0x01 // first packets of a connection (no reply seen yet)
	CSEst  Flags = 0x02 // part of a connection that has seen a reply
	CSRel  Flags = 0x04 // related to a tracked connection (ICMP error)
	CSRpl  Flags = 0x08 // travels in the reply direction
	CSInv  Flags = 0x10 // cannot be tracked or violates the protocol
	CSTrk  Flags = 0x20 // went through the tracker (always set by Process)
	CSSNAT Flags = 0x40 // source rewritten by NAT
	CSDNAT Flags = 0x80 // destination rewritten by NAT
)

var flagNames = [8]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// String formats flags as OVS does for ct_state, e.g. "+trk+est+rpl".
func (f Flags) String() string {
	s := ""
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			s += "+" + n
		}
	}
	if s == "" {
		return "0"
	}
	return s
}

// Timeouts are the idle timeouts per protocol state. The zero value of a
// field means its default (Open vSwitch userspace conntrack defaults, see
// DefaultTimeouts).
type Timeouts struct {
	TCPFirstPacket time.Duration // after the first packet (30s)
	TCPOpening     time.Duration // handshake not complete on both sides (30s)
	TCPEstablished time.Duration // 24h
	TCPClosing     time.Duration // one side sent FIN (15min)
	TCPFinWait     time.Duration // both sides sent FIN (45s)
	TCPClosed      time.Duration // both FINs acked, or RST (30s)
	OtherFirst     time.Duration // UDP/other: one packet seen (60s)
	OtherMultiple  time.Duration // UDP/other: more packets, one direction (60s)
	OtherBidir     time.Duration // UDP/other: both directions (30s)
	ICMPFirst      time.Duration // echo request seen (60s)
	ICMPReply      time.Duration // echo reply seen (30s)
}

// DefaultTimeouts are Open vSwitch's userspace conntrack defaults
// (lib/conntrack-private.h CT_TIMEOUTS).
var DefaultTimeouts = Timeouts{
	TCPFirstPacket: 30 * time.Second,
	TCPOpening:     30 * time.Second,
	TCPEstablished: 24 * time.Hour,
	TCPClosing:     15 * time.Minute,
	TCPFinWait:     45 * time.Second,
	TCPClosed:      30 * time.Second,
	OtherFirst:     60 * time.Second,
	OtherMultiple:  60 * time.Second,
	OtherBidir:     30 * time.Second,
	ICMPFirst:      60 * time.Second,
	ICMPReply:      30 * time.Second,
}

// Config configures a Tracker. The zero value is usable.
type Config struct {
	// Limit is the most connections the table holds (default 65536).
	// When it is reached, commits of new connections fail: the packet
	// is still reported +new but is not tracked, and Stats.Full grows.
	Limit int
	// Shards is the number of lock shards, rounded up to a power of two
	// (default 64). More shards mean less contention between pollers.
	Shards int
	// ExpireBatch is the most entries one Expire call examines
	// (default 1024).
	ExpireBatch int
	// Timeouts override DefaultTimeouts field by field.
	Timeouts Timeouts
}

// Stats are the tracker's counters (all monotonic except Conns).
type Stats struct {
	Conns     int64  // connections in the table now
	Created   uint64 // connections committed
	Expired   uint64 // connections removed by Expire or on lookup
	Full      uint64 // commits refused because the table was full
	Frags     uint64 // IP fragments seen (reported +inv, not tracked)
	Invalid   uint64 // packets reported +inv (fragments included)
	NATFail   uint64 // commits refused because no NAT tuple was free
	Related   uint64 // ICMP errors matched to a connection
	Untracked uint64 // non-IP packets
}

// Tracker is a connection table. All methods are safe for concurrent use.
type Tracker struct {
	shards []shard
	mask   uint64
	limit  int64
	batch  int
	to     [numTimeouts]int64 // nanoseconds, indexed by timeout class

	count                                           atomic.Int64
	created, expired, full, frags, invalid, natFail atomic.Uint64
	related, untracked                              atomic.Uint64

	expMu   sync.Mutex // serialises Expire; protects cursor and scratch
	cursorS int
	cursorI int
	scratch []*conn
}

// shard is one lock domain. mu protects m and list. A connection is in
// m under both its orig and its reply tuple (which may live in two
// different shards) and in the list of the shard of its orig tuple.
type shard struct {
	mu   sync.RWMutex
	m    map[Tuple]*conn
	list []*conn
	_    [8]byte // pads the shard to 64 bytes on 64-bit platforms
}

// timeout classes.
const (
	toTCPFirst = iota
	toTCPOpening
	toTCPEstablished
	toTCPClosing
	toTCPFinWait
	toTCPClosed
	toOtherFirst
	toOtherMultiple
	toOtherBidir
	toICMPFirst
	toICMPReply
	numTimeouts
)

// New returns an empty Tracker.
func New(cfg Config) *Tracker {
	if cfg.Limit <= 0 {
		cfg.Limit = 65536
	}
	n := 1
	for n < cfg.Shards || (cfg.Shards <= 0 && n < 64) {
		n <<= 1
	}
	if cfg.ExpireBatch <= 0 {
		cfg.ExpireBatch = 1024
	}
	t := &Tracker{
		shards:  make([]shard, n),
		mask:    uint64(n - 1),
		limit:   int64(cfg.Limit),
		batch:   cfg.ExpireBatch,
		scratch: make([]*conn, 0, cfg.ExpireBatch),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[Tuple]*conn)
	}
	d, o := DefaultTimeouts, cfg.Timeouts
	pick := func(v, def time.Duration) int64 {
		if v > 0 {
			return int64(v)
		}
		return int64(def)
	}
	t.to = [numTimeouts]int64{
		pick(o.TCPFirstPacket, d.TCPFirstPacket), pick(o.TCPOpening, d.TCPOpening),
		pick(o.TCPEstablished, d.TCPEstablished), pick(o.TCPClosing, d.TCPClosing),
		pick(o.TCPFinWait, d.TCPFinWait), pick(o.TCPClosed, d.TCPClosed),
		pick(o.OtherFirst, d.OtherFirst), pick(o.OtherMultiple, d.OtherMultiple),
		pick(o.OtherBidir, d.OtherBidir), pick(o.ICMPFirst, d.ICMPFirst),
		pick(o.ICMPReply, d.ICMPReply),
	}
	return t
}

// Stats returns a snapshot of the counters.
func (t *Tracker) Stats() Stats {
	return Stats{
		Conns: t.count.Load(), Created: t.created.Load(), Expired: t.expired.Load(),
		Full: t.full.Load(), Frags: t.frags.Load(), Invalid: t.invalid.Load(),
		NATFail: t.natFail.Load(), Related: t.related.Load(), Untracked: t.untracked.Load(),
	}
}

// Len returns the number of connections in the table.
func (t *Tracker) Len() int { return int(t.count.Load()) }

// conn is one tracked connection. orig, reply and nat are immutable after
// insertion; exp and dead are atomics; mu protects the rest.
type conn struct {
	orig, reply Tuple
	origRev     Tuple // orig.Reverse(): what replies become after NAT
	replyRev    Tuple // reply.Reverse(): what orig packets become after NAT
	natSrc      bool  // orig packets get their source rewritten (SNAT)
	natDst      bool  // orig packets get their destination rewritten (DNAT)
	exp         atomic.Int64
	dead        atomic.Bool
	idx         int // position in the orig shard's list (under that shard's lock)

	mu        sync.Mutex
	replySeen bool
	origMany  bool     // UDP/other: more than one orig packet
	tcp       [2]uint8 // TCP peer states [orig sender, reply sender]
	mark      uint32
	label     [16]byte
}

// State is the result of Process: the ct_state flags and, when the packet
// belongs to a committed connection, that connection's mark and label
// (ct_mark, ct_label). It refers to the connection so SetMark/SetLabel can
// update it; keeping a State does not keep the connection in the table.
type State struct {
	Flags Flags
	Zone  uint16
	Mark  uint32
	Label [16]byte
	c     *conn
}

// Committed reports whether the packet belongs to a connection in the
// table.
func (s *State) Committed() bool { return s.c != nil }

// Orig returns the connection's original-direction tuple (ct_nw_src,
// ct_tp_dst... in OVS), if the packet belongs to a committed connection.
func (s *State) Orig() (Tuple, bool) {
	if s.c == nil {
		return Tuple{}, false
	}
	return s.c.orig, true
}

// SetMark sets the bits of mask in the connection's mark to value
// (ct(commit,exec(set_field:value/mask->ct_mark))) and updates s.Mark. It
// returns false when the packet has no committed connection.
func (s *State) SetMark(value, mask uint32) bool {
	c := s.c
	if c == nil {
		return false
	}
	c.mu.Lock()
	c.mark = c.mark&^mask | value&mask
	s.Mark = c.mark
	c.mu.Unlock()
	return true
}

// SetLabel sets the bits of mask in the connection's 128-bit label
// (network byte order, as ct_label) and updates s.Label.
func (s *State) SetLabel(value, mask [16]byte) bool {
	c := s.c
	if c == nil {
		return false
	}
	c.mu.Lock()
	for i := range c.label {
		c.label[i] = c.label[i]&^mask[i] | value[i]&mask[i]
	}
	s.Label = c.label
	c.mu.Unlock()
	return true
}

func (t *Tracker) shardOf(tp *Tuple) *shard { return &t.shards[tp.hash()&t.mask] }

// lookup finds the connection whose orig or reply tuple is tp. An expired
// connection is removed and not returned.
func (t *Tracker) lookup(tp *Tuple, now int64) (c *conn, reply bool) {
	s := t.shardOf(tp)
	s.mu.RLock()
	c = s.m[*tp]
	s.mu.RUnlock()
	if c == nil {
		return nil, false
	}
	if now >= c.exp.Load() {
		if t.remove(c) {
			t.expired.Add(1)
		}
		return nil, false
	}
	return c, *tp != c.orig
}

// lock2 locks the shards of a and b in address order (once if equal).
func (t *Tracker) lock2(a, b *Tuple) (sa, sb *shard) {
	ia, ib := a.hash()&t.mask, b.hash()&t.mask
	sa, sb = &t.shards[ia], &t.shards[ib]
	switch {
	case ia == ib:
		sa.mu.Lock()
	case ia < ib:
		sa.mu.Lock()
		sb.mu.Lock()
	default:
		sb.mu.Lock()
		sa.mu.Lock()
	}
	return sa, sb
}

func unlock2(sa, sb *shard) {
	sa.mu.Unlock()
	if sb != sa {
		sb.mu.Unlock()
	}
}

// insert adds c under both tuples unless either is taken.
func (t *Tracker) insert(c *conn) bool {
	c.origRev, c.replyRev = c.orig.Reverse(), c.reply.Reverse()
	sa, sb := t.lock2(&c.orig, &c.reply)
	defer unlock2(sa, sb)
	if sa.m[c.orig] != nil || sb.m[c.reply] != nil {
		return false
	}
	sa.m[c.orig] = c
	sb.m[c.reply] = c
	c.idx = len(sa.list)
	sa.list = append(sa.list, c)
	return true
}

// remove takes c out of the table; false if it was already gone.
func (t *Tracker) remove(c *conn) bool {
	sa, sb := t.lock2(&c.orig, &c.reply)
	defer unlock2(sa, sb)
	if c.dead.Load() {
		return false
	}
	c.dead.Store(true)
	delete(sa.m, c.orig)
	delete(sb.m, c.reply)
	last := len(sa.list) - 1
	sa.list[c.idx] = sa.list[last]
	sa.list[c.idx].idx = c.idx
	sa.list[last] = nil
	sa.list = sa.list[:last]
	t.count.Add(-1)
	return true
}

// Process tracks one packet, as OVS's ct(zone=zone[,commit][,nat]) action.
//
// k and l are what flow.Extract produced for the frame in pkt. The result
// always has Trk set. Process never retains k, l or pkt.
//
//   - Packets of a connection in the table (in zone) are +est once a reply
//     has been seen (+new before), +rpl in the reply direction, and
//     refresh the connection's timeout.
//   - A packet that could start a connection (TCP without SYN+ACK and
//     with a legal flag combination, UDP, ICMP echo request, other IP
//     protocols) is +new; with commit it is added to the table, unless
//     the table is full (Stats.Full).
//   - ICMP errors whose embedded header belongs to a connection are +rel.
//   - Everything else is +inv: non-IP frames, IP fragments (no
//     reassembly), truncated transport headers, illegal TCP flag
//     combinations, ICMP that is neither echo nor a related error.
//
// nat, when not nil, asks for NAT as ct(nat...): on commit of a new
// connection nat selects the translation (a zero NATSpec commits none);
// packets of a connection that has a translation are rewritten in place
// (orig packets forward, replies reversed), with checksums patched, and k
// is updated to describe the rewritten packet (NwSrc/NwDst, and
// TpSrc/TpDst for TCP/UDP/SCTP). Without nat, packets are not rewritten.
//
// now is a monotonic time in nanoseconds (e.g. time.Now().UnixNano() or a
// clock read once per batch).
//
// In steady state (the packet's connection exists) Process does not
// allocate. Committing a connection allocates it.
func (t *Tracker) Process(k *flow.Key, pkt *flow.Packet, l *flow.Layout, zone uint16, commit bool, nat *NATSpec, now int64) State {
	st := State{Flags: CSTrk, Zone: zone}
	if k.DlType != flow.EthTypeIPv4 && k.DlType != flow.EthTypeIPv6 || l.L3 < 0 {
		t.untracked.Add(1)
		t.invalid.Add(1)
		st.Flags |= CSInv
		return st
	}
	if k.NwFrag&flow.FragAny != 0 {
		t.frags.Add(1)
		t.invalid.Add(1)
		st.Flags |= CSInv
		return st
	}
	var tp Tuple
	var inner int
	switch extract(k, pkt, l, zone, &tp, &inner) {
	case kindInvalid:
		t.invalid.Add(1)
		st.Flags |= CSInv
		return st
	case kindICMPErr:
		c, reply := t.lookup(&tp, now)
		if c == nil {
			t.invalid.Add(1)
			st.Flags |= CSInv
			return st
		}
		t.related.Add(1)
		st.Flags |= CSRel
		if reply {
			st.Flags |= CSRpl
		}
		t.fill(&st, c)
		if nat != nil && (c.natSrc || c.natDst) {
			st.Flags |= natRelated(k, pkt, l, c, reply, inner)
		}
		return st
	}

	c, reply := t.lookup(&tp, now)
	if c != nil {
		c.mu.Lock()
		res, to := t.update(c, k, pkt, l, reply)
		if res == updValid {
			c.exp.Store(now + t.to[to])
			c.mu.Unlock()
			if reply {
				st.Flags |= CSRpl | CSEst
			} else if c.replySeen {
				st.Flags |= CSEst
			} else {
				st.Flags |= CSNew
			}
			t.fill(&st, c)
			if nat != nil {
				st.Flags |= applyNAT(k, pkt, l, c, reply)
			}
			return st
		}
		c.mu.Unlock()
		if res == updInvalid {
			t.invalid.Add(1)
			st.Flags |= CSInv
			return st
		}
		// updReopen: a new connection replaces a closed one.
		t.remove(c)
	}

	if !validNew(k, pkt, l) {
		t.invalid.Add(1)
		st.Flags |= CSInv
		return st
	}
	st.Flags |= CSNew
	if !commit {
		return st
	}
	if t.count.Add(1) > t.limit {
		t.count.Add(-1)
		t.full.Add(1)
		return st
	}
	c = &conn{orig: tp}
	c.exp.Store(now + t.initState(c, k))
	if !t.commitNAT(c, nat) {
		t.count.Add(-1)
		return st
	}
	t.created.Add(1)
	t.fill(&st, c)
	if nat != nil {
		st.Flags |= applyNAT(k, pkt, l, c, false)
	}
	return st
}

func (t *Tracker) fill(st *State, c *conn) {
	c.mu.Lock()
	st.Mark, st.Label = c.mark, c.label
	c.mu.Unlock()
	st.c = c
}

// initState sets the protocol state of a new connection from its first
// packet and returns its timeout.
func (t *Tracker) initState(c *conn, k *flow.Key) int64 {
	switch {
	case c.orig.Proto == flow.IPProtoTCP:
		if k.TCPFlags&tcpSYN != 0 {
			c.tcp[0] = TCPSynSent
		} else {
			c.tcp[0] = TCPEstablished // picked up mid-stream
		}
		if k.TCPFlags&tcpFIN != 0 {
			c.tcp[0] = TCPClosing
		}
		return t.to[toTCPFirst]
	case isICMP(c.orig.Proto):
		return t.to[toICMPFirst]
	}
	return t.to[toOtherFirst]
}

// update result.
const (
	updValid = iota
	updInvalid
	updReopen
)

// update advances c's protocol state for a packet of its own (c.mu held)
// and returns the result and the timeout class.
func (t *Tracker) update(c *conn, k *flow.Key, pkt *flow.Packet, l *flow.Layout, reply bool) (int, int) {
	switch c.orig.Proto {
	case flow.IPProtoTCP:
		return tcpUpdate(c, k.TCPFlags, reply)
	case flow.IPProtoICMP, flow.IPProtoICMPv6:
		typ := pkt.Data()[l.L4]
		if reply {
			if isEchoRequest(typ, c.orig.IPv6) {
				return updInvalid, 0
			}
			c.replySeen = true
		} else if !isEchoRequest(typ, c.orig.IPv6) {
			return updInvalid, 0
		}
		if c.replySeen {
			return updValid, toICMPReply
		}
		return updValid, toICMPFirst
	}
	if reply {
		c.replySeen = true
	} else {
		c.origMany = true
	}
	switch {
	case c.replySeen:
		return updValid, toOtherBidir
	case c.origMany:
		return updValid, toOtherMultiple
	}
	return updValid, toOtherFirst
}

// validNew reports whether a packet may create a connection.
func validNew(k *flow.Key, pkt *flow.Packet, l *flow.Layout) bool {
	switch k.NwProto {
	case flow.IPProtoTCP:
		f := k.TCPFlags
		return !tcpInvalidFlags(f) && f&(tcpSYN|tcpACK) != tcpSYN|tcpACK
	case flow.IPProtoICMP, flow.IPProtoICMPv6:
		return isEchoRequest(pkt.Data()[l.L4], k.NwProto == flow.IPProtoICMPv6)
	}
	return true
}

// Expire removes connections idle past their timeout, examining at most
// Config.ExpireBatch entries per call and resuming where the previous
// call stopped; call it periodically (e.g. every second) from one
// housekeeping goroutine. It returns the number removed. A full sweep of
// n entries takes n/ExpireBatch calls; packets never see an expired
// connection meanwhile (lookups check the deadline themselves).
func (t *Tracker) Expire(now int64) int {
	t.expMu.Lock()
	defer t.expMu.Unlock()
	budget := t.batch
	t.scratch = t.scratch[:0]
	for tries := 0; budget > 0 && tries < len(t.shards); tries++ {
		s := &t.shards[t.cursorS]
		s.mu.RLock()
		for t.cursorI < len(s.list) && budget > 0 {
			c := s.list[t.cursorI]
			if now >= c.exp.Load() {
				t.scratch = append(t.scratch, c)
			}
			t.cursorI++
			budget--
		}
		done := t.cursorI >= len(s.list)
		s.mu.RUnlock()
		if !done {
			break
		}
		t.cursorS = (t.cursorS + 1) & int(t.mask)
		t.cursorI = 0
	}
	n := 0
	for i, c := range t.scratch {
		// Re-check: a packet may have refreshed it since the scan.
		if now >= c.exp.Load() && t.remove(c) {
			n++
		}
		t.scratch[i] = nil
	}
	t.expired.Add(uint64(n))
	return n
}

// Flush removes every connection of zone.
func (t *Tracker) Flush(zone uint16) int {
	return t.flush(func(c *conn) bool { return c.orig.Zone == zone })
}

// FlushAll removes every connection.
func (t *Tracker) FlushAll() int { return t.flush(func(*conn) bool { return true }) }

func (t *Tracker) flush(match func(*conn) bool) int {
	var victims []*conn
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, c := range s.list {
			if match(c) {
				victims = append(victims, c)
			}
		}
		s.mu.RUnlock()
	}
	n := 0
	for _, c := range victims {
		if t.remove(c) {
			n++
		}
	}
	return n
}

// conns returns a snapshot of all connections.
func (t *Tracker) conns() []*conn {
	var out []*conn
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		out = append(out, s.list...)
		s.mu.RUnlock()
	}
	return out
}
