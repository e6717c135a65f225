package flow

// Flow caches.
//
// The fast path never runs the rule table per packet. Two caches stand in
// front of the slow path (translation through rules, NORMAL, bonds and
// patch ports):
//
//   - EMC, the exact-match cache: one per poller, fixed size, no locks. It
//     maps a whole Key to the megaflow that covers it.
//   - MegaflowCache: wildcarded entries (masked key -> datapath actions)
//     built by the slow path from the fields the decision actually looked
//     at. Lookup is a tuple-space search: one subtable per distinct mask,
//     each a hash table of masked keys; subtables are visited in order of
//     hits (re-ranked by Rank). Entries never overlap, so the first hit wins.
//
// Concurrency: MegaflowCache lookups are lock-free and may run on any number
// of pollers at once. Insert, Remove and Rank must be serialised by the
// caller (the datapath's slow-path lock). Readers see a megaflow either
// fully built or not at all (atomic pointer publication); a removed
// megaflow is marked dead first, so an EMC entry that still points at it
// turns into a miss.

import (
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// Megaflow is one wildcarded cache entry.
type Megaflow struct {
	Key     Key // already masked
	Mask    Key
	Actions []DPAction

	// Aux is owned by the slow path (dependency bookkeeping); the fast
	// path never reads it.
	Aux any

	// LastOut is the index of the last output action (-1: the flow drops);
	// Single is set when the actions are exactly one plain output, the
	// common case the fast path short-cuts.
	LastOut int
	Single  bool

	hash    uint32
	sub     *subtable
	dead    atomic.Bool
	packets atomic.Uint64
	bytes   atomic.Uint64
	used    atomic.Int64 // unix nanoseconds of the last hit
	created int64
}

// Dead reports whether the megaflow was removed from its cache.
func (m *Megaflow) Dead() bool { return m.dead.Load() }

// Hit adds a batch of packets to the megaflow's counters.
func (m *Megaflow) Hit(packets, bytes uint64, now int64) {
	m.packets.Add(packets)
	m.bytes.Add(bytes)
	if m.used.Load() != now {
		m.used.Store(now)
	}
}

// Stats returns the megaflow's counters and the time of its last hit (zero
// when never hit).
func (m *Megaflow) Stats() (packets, bytes uint64, used time.Time) {
	u := m.used.Load()
	if u != 0 {
		used = time.Unix(0, u)
	}
	return m.packets.Load(), m.bytes.Load(), used
}

// Created is when the megaflow was installed.
func (m *Megaflow) Created() time.Time { return time.Unix(0, m.created) }

// Hash constants: distinct odd multipliers, one per key word, so the
// products are independent and the CPU can compute them in parallel.
var hashMul = [KeyWords]uint64{
	0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f, 0x165667b19e3779f9, 0xd6e8feb86659fd93,
	0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3, 0x589965cc75374cc3,
	0x1d8e4e27c47d124f, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb,
}

func finishHash(h uint64) uint32 {
	h ^= h >> 32
	h *= 0xff51afd7ed558ccd
	h ^= h >> 29
	return uint32(h)
}

// HashKey hashes all words of a key (allocation-free, branch-free).
func HashKey(k *Key) uint32 {
	w := k.Words()
	h := w[0]*hashMul[0] + w[1]*hashMul[1] + w[2]*hashMul[2] + w[3]*hashMul[3] +
		w[4]*hashMul[4] + w[5]*hashMul[5] + w[6]*hashMul[6] + w[7]*hashMul[7] +
		w[8]*hashMul[8] + w[9]*hashMul[9] + w[10]*hashMul[10]
	return finishHash(h)
}

// hashMasked hashes k & mask without materialising the masked key; it
// equals HashKey of the masked key.
func hashMasked(k, mask *Key) uint32 {
	w, m := k.Words(), mask.Words()
	h := (w[0]&m[0])*hashMul[0] + (w[1]&m[1])*hashMul[1] + (w[2]&m[2])*hashMul[2] +
		(w[3]&m[3])*hashMul[3] + (w[4]&m[4])*hashMul[4] + (w[5]&m[5])*hashMul[5] +
		(w[6]&m[6])*hashMul[6] + (w[7]&m[7])*hashMul[7] + (w[8]&m[8])*hashMul[8] +
		(w[9]&m[9])*hashMul[9] + (w[10]&m[10])*hashMul[10]
	return finishHash(h)
}

// equalKeys compares two keys word by word (inlined; no memequal call).
func equalKeys(a, b *Key) bool {
	x, y := a.Words(), b.Words()
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] &&
		x[5] == y[5] && x[6] == y[6] && x[7] == y[7] && x[8] == y[8] && x[9] == y[9] && x[10] == y[10]
}

// MaskKey returns k & mask.
func MaskKey(k, mask *Key) Key {
	var out Key
	o, w, m := out.Words(), k.Words(), mask.Words()
	for i := 0; i < KeyWords; i++ {
		o[i] = w[i] & m[i]
	}
	return out
}

func maskedEqual(k, mask, masked *Key) bool {
	w, m, v := k.Words(), mask.Words(), masked.Words()
	for i := 0; i < KeyWords; i++ {
		if w[i]&m[i] != v[i] {
			return false
		}
	}
	return true
}

// tombstone marks a deleted slot in a subtable's open-addressing table.
var tombstone = &Megaflow{}

type slots struct {
	mask uint32 // len(s)-1
	s    []atomic.Pointer[Megaflow]
}

type subtable struct {
	mask  Key
	tbl   atomic.Pointer[slots]
	n     int // live entries (slow path only)
	tombs int // tombstones (slow path only)
	hits  atomic.Uint64
}

func newSubtable(mask *Key) *subtable {
	st := &subtable{mask: *mask}
	st.tbl.Store(newSlots(16))
	return st
}

func newSlots(n int) *slots {
	return &slots{mask: uint32(n - 1), s: make([]atomic.Pointer[Megaflow], n)}
}

func (st *subtable) lookup(k *Key) *Megaflow {
	h := hashMasked(k, &st.mask)
	t := st.tbl.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		m := t.s[i].Load()
		if m == nil {
			return nil
		}
		if m != tombstone && m.hash == h && maskedEqual(k, &st.mask, &m.Key) {
			return m
		}
	}
}

// insert adds m (slow path). The table grows before it is half full, so a
// probe always meets an empty slot.
func (st *subtable) insert(m *Megaflow) {
	t := st.tbl.Load()
	if (st.n+st.tombs+1)*2 > len(t.s) {
		size := len(t.s)
		for (st.n+1)*4 > size {
			size *= 2
		}
		nt := newSlots(size)
		for i := range t.s {
			if e := t.s[i].Load(); e != nil && e != tombstone {
				nt.place(e)
			}
		}
		st.tbl.Store(nt)
		st.tombs = 0
		t = nt
	}
	t.place(m)
	st.n++
}

func (t *slots) place(m *Megaflow) {
	for i := m.hash & t.mask; ; i = (i + 1) & t.mask {
		if e := t.s[i].Load(); e == nil || e == tombstone {
			t.s[i].Store(m)
			return
		}
	}
}

func (st *subtable) remove(m *Megaflow) bool {
	t := st.tbl.Load()
	for i := m.hash & t.mask; ; i = (i + 1) & t.mask {
		e := t.s[i].Load()
		if e == nil {
			return false
		}
		if e == m {
			t.s[i].Store(tombstone)
			st.n--
			st.tombs++
			return true
		}
	}
}

// MegaflowCache is the wildcarded flow cache (see the file comment).
type MegaflowCache struct {
	subs   atomic.Pointer[[]*subtable] // ranked, immutable slice
	byMask map[Key]*subtable           // slow path only
	all    map[*Megaflow]struct{}      // slow path only
	limit  int
}

// NewMegaflowCache returns an empty cache holding at most limit megaflows
// (OVS's flow-limit; 200000 when limit <= 0).
func NewMegaflowCache(limit int) *MegaflowCache {
	if limit <= 0 {
		limit = 200000
	}
	c := &MegaflowCache{byMask: map[Key]*subtable{}, all: map[*Megaflow]struct{}{}, limit: limit}
	empty := []*subtable{}
	c.subs.Store(&empty)
	return c
}

// Lookup finds the megaflow covering k, or nil. Lock-free, allocation-free.
func (c *MegaflowCache) Lookup(k *Key) *Megaflow {
	for _, st := range *c.subs.Load() {
		if m := st.lookup(k); m != nil {
			st.hits.Add(1)
			return m
		}
	}
	return nil
}

// Len is the number of installed megaflows (slow path).
func (c *MegaflowCache) Len() int { return len(c.all) }

// Limit is the maximum number of megaflows.
func (c *MegaflowCache) Limit() int { return c.limit }

// SetLimit changes the maximum; existing entries stay until they expire.
func (c *MegaflowCache) SetLimit(n int) {
	if n > 0 {
		c.limit = n
	}
}

// Subtables is the number of distinct masks (slow path).
func (c *MegaflowCache) Subtables() int { return len(c.byMask) }

// Insert builds and publishes a megaflow for key/mask with the given actions
// (slow path). It returns nil when the cache is full. The caller must have
// checked that no installed megaflow covers key (entries must not overlap).
func (c *MegaflowCache) Insert(key, mask *Key, actions []DPAction, aux any, now int64) *Megaflow {
	if len(c.all) >= c.limit {
		return nil
	}
	m := &Megaflow{Key: MaskKey(key, mask), Mask: *mask, Actions: actions, Aux: aux, created: now}
	m.LastOut, m.Single = OutputInfo(actions)
	m.hash = hashMasked(&m.Key, mask)
	st := c.byMask[*mask]
	if st == nil {
		st = newSubtable(mask)
		c.byMask[*mask] = st
		old := *c.subs.Load()
		ns := make([]*subtable, len(old)+1)
		copy(ns, old)
		ns[len(old)] = st
		c.subs.Store(&ns)
	}
	m.sub = st
	m.used.Store(now)
	st.insert(m)
	c.all[m] = struct{}{}
	return m
}

// Remove deletes a megaflow (slow path). It is marked dead before it leaves
// the table, so exact-match caches that still point at it miss.
func (c *MegaflowCache) Remove(m *Megaflow) {
	if _, ok := c.all[m]; !ok {
		return
	}
	m.dead.Store(true)
	delete(c.all, m)
	st := m.sub
	st.remove(m)
	if st.n == 0 {
		delete(c.byMask, st.mask)
		old := *c.subs.Load()
		ns := make([]*subtable, 0, len(old))
		for _, s := range old {
			if s != st {
				ns = append(ns, s)
			}
		}
		c.subs.Store(&ns)
	}
}

// Each calls fn for every megaflow (slow path). fn may call Remove.
func (c *MegaflowCache) Each(fn func(m *Megaflow)) {
	ms := make([]*Megaflow, 0, len(c.all))
	for m := range c.all {
		ms = append(ms, m)
	}
	for _, m := range ms {
		fn(m)
	}
}

// Flush removes every megaflow (slow path).
func (c *MegaflowCache) Flush() {
	c.Each(c.Remove)
}

// Rank re-orders subtables by hits since the previous call, most hit first
// (slow path; call about once a second, like OVS's dpcls optimisation).
func (c *MegaflowCache) Rank() {
	old := *c.subs.Load()
	ns := make([]*subtable, len(old))
	copy(ns, old)
	hits := make(map[*subtable]uint64, len(ns))
	for _, st := range ns {
		hits[st] = st.hits.Swap(0)
	}
	sort.SliceStable(ns, func(i, j int) bool { return hits[ns[i]] > hits[ns[j]] })
	c.subs.Store(&ns)
}

// Expire removes megaflows idle for longer than maxIdle and returns how many
// it removed (slow path).
func (c *MegaflowCache) Expire(now int64, maxIdle time.Duration) int {
	n := 0
	for m := range c.all {
		if now-m.used.Load() > int64(maxIdle) {
			c.Remove(m)
			n++
		}
	}
	return n
}

// EMCEntries is the number of entries of an exact-match cache (as OVS's EMC).
const EMCEntries = 8192

type emcEntry struct {
	hash uint32
	mf   *Megaflow
	key  Key
}

// EMC is the per-poller exact-match cache. It is not safe for concurrent
// use: each poller owns one. Each key may live in one of two slots (indexed
// by two parts of its hash); insertion replaces a dead entry, else the
// second candidate.
type EMC struct {
	e            [EMCEntries]emcEntry
	Hits, Misses uint64
	// InsertInvProb: a megaflow hit is copied into the EMC once in this
	// many times (OVS's emc-insert-inv-prob, default 100): with many flows
	// unconditional insertion only thrashes the cache. 0 or 1 = always.
	InsertInvProb uint32
	rnd           uint32
}

// MaybeInsert caches k -> mf with probability 1/InsertInvProb.
func (c *EMC) MaybeInsert(k *Key, hash uint32, mf *Megaflow) {
	if c.InsertInvProb > 1 {
		c.rnd = c.rnd*1664525 + 1013904223
		if c.rnd%c.InsertInvProb != 0 {
			return
		}
	}
	c.Insert(k, hash, mf)
}

const emcMask = EMCEntries - 1

// Lookup returns the live megaflow cached for k (hash = HashKey(k)), or nil.
func (c *EMC) Lookup(k *Key, hash uint32) *Megaflow {
	x := k.Words()
	e := &c.e[hash&emcMask]
	y := e.key.Words()
	if e.hash != hash || e.mf == nil || x[0] != y[0] || x[1] != y[1] || x[2] != y[2] || x[3] != y[3] ||
		x[4] != y[4] || x[5] != y[5] || x[6] != y[6] || x[7] != y[7] || x[8] != y[8] || x[9] != y[9] || x[10] != y[10] {
		e = &c.e[(hash>>13)&emcMask]
		if e.hash != hash || e.mf == nil || !equalKeys(&e.key, k) {
			c.Misses++
			return nil
		}
	}
	if e.mf.dead.Load() {
		c.Misses++
		return nil
	}
	c.Hits++
	return e.mf
}

// Insert caches k -> mf.
func (c *EMC) Insert(k *Key, hash uint32, mf *Megaflow) {
	a, b := &c.e[hash&emcMask], &c.e[(hash>>13)&emcMask]
	var e *emcEntry
	switch {
	case a.mf == nil || a.mf.dead.Load() || (a.hash == hash && equalKeys(&a.key, k)):
		e = a
	case b.mf == nil || b.mf.dead.Load() || (b.hash == hash && equalKeys(&b.key, k)):
		e = b
	case bits.OnesCount32(hash)&1 == 0:
		e = a
	default:
		e = b
	}
	e.hash, e.key, e.mf = hash, *k, mf
}

// Clear empties the cache.
func (c *EMC) Clear() {
	for i := range c.e {
		c.e[i].mf = nil
	}
}

// OutputInfo returns the index of the last output action of acts (-1 when
// there is none) and whether acts is a single plain output.
func OutputInfo(acts []DPAction) (last int, single bool) {
	last = -1
	for j := len(acts) - 1; j >= 0; j-- {
		if k := acts[j].Kind; k == DPOutput || k == DPOutputBond {
			last = j
			break
		}
	}
	return last, len(acts) == 1 && acts[0].Kind == DPOutput
}
