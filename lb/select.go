package lb

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Flow carries the fields of a packet a Selector may hash. Fields that
// the load balancer does not select are ignored, so callers may leave
// them zero.
type Flow struct {
	EthSrc, EthDst   [6]byte
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// backendSet is an immutable snapshot of a selector's backends, replaced
// as a whole (RCU style) when a backend goes offline or online.
type backendSet struct {
	all    []netip.AddrPort       // configuration order
	seed   []uint64               // rendezvous weight seed of all[i]
	online []bool                 // online[i]: all[i] may be chosen
	live   []int32                // indices of the online backends
	index  map[netip.AddrPort]int // all[i] -> i
}

func (s *backendSet) isOnline(b netip.AddrPort) bool {
	i, ok := s.index[b]
	return ok && s.online[i]
}

// pin is a ClientIP affinity entry. backend never changes once the pin
// is published; last is the UnixNano time of the client's last packet.
type pin struct {
	backend netip.AddrPort
	last    atomic.Int64
}

const affinityShards = 64 // power of two

// shard protects its map; the pins in it are read under RLock and their
// last field is updated atomically, so the hit path takes only RLock.
type shard struct {
	mu   sync.RWMutex
	pins map[netip.Addr]*pin
	_    [64 - 32]byte // pad to a 64-byte cache line (RWMutex 24 + map 8)
}

// Selector chooses a backend of one load balancer for each flow. It is
// safe for concurrent use: Pick, Touch and Choose are the fast path
// (allocation-free on an affinity hit and without affinity), everything
// else is the slow path and serialises on one mutex the fast path never
// takes.
type Selector struct {
	mask    fieldMask
	timeout int64 // affinity timeout in ns, 0 = no affinity

	set atomic.Pointer[backendSet]

	mu     sync.Mutex // serialises SetOnline / SetBackends (writers of set)
	shards [affinityShards]shard

	hits, misses, expired atomic.Uint64
}

// NewSelector validates lb and returns its selector, with every backend
// online. Later changes to lb do not affect the selector.
func NewSelector(lb *LoadBalancer) (*Selector, error) {
	if err := lb.Validate(); err != nil {
		return nil, err
	}
	s := &Selector{
		mask:    lb.selectionMask(),
		timeout: int64(lb.AffinityTimeout),
	}
	for i := range s.shards {
		s.shards[i].pins = make(map[netip.Addr]*pin)
	}
	s.set.Store(newBackendSet(lb.Backends, nil))
	return s, nil
}

// newBackendSet builds a snapshot of backends; a backend is online unless
// old says it is offline.
func newBackendSet(backends []netip.AddrPort, old *backendSet) *backendSet {
	s := &backendSet{
		all:    slices.Clone(backends),
		seed:   make([]uint64, len(backends)),
		online: make([]bool, len(backends)),
		index:  make(map[netip.AddrPort]int, len(backends)),
	}
	for i, b := range backends {
		s.seed[i] = backendSeed(b)
		s.index[b] = i
		s.online[i] = true
		if old != nil {
			if j, ok := old.index[b]; ok {
				s.online[i] = old.online[j]
			}
		}
	}
	s.relive()
	return s
}

func (s *backendSet) relive() {
	s.live = s.live[:0]
	for i, on := range s.online {
		if on {
			s.live = append(s.live, int32(i))
		}
	}
}

// Choose returns the backend the hash of f selects among the online
// backends, ignoring affinity; ok is false when no backend is online.
// It never allocates.
func (s *Selector) Choose(f *Flow) (b netip.AddrPort, ok bool) {
	return s.choose(s.set.Load(), f)
}

// choose is rendezvous (highest-random-weight) hashing: every online
// backend gets the weight mix(flowHash ^ seed(backend)) and the heaviest
// wins. A backend's weight for a flow does not depend on the other
// backends, so when one goes offline only its flows move (each to the
// backend with its second-highest weight), and when it returns exactly
// those flows come back. Cost is O(online backends) per miss.
func (s *Selector) choose(set *backendSet, f *Flow) (netip.AddrPort, bool) {
	if len(set.live) == 0 {
		return netip.AddrPort{}, false
	}
	h := s.flowHash(f)
	best, bestW := -1, uint64(0)
	for _, i := range set.live {
		w := mix64(h ^ set.seed[i])
		// Ties (vanishingly rare) go to the smaller seed so the
		// result does not depend on configuration order.
		if best < 0 || w > bestW || (w == bestW && set.seed[i] < set.seed[best]) {
			best, bestW = int(i), w
		}
	}
	return set.all[best], true
}

// Pick returns the backend for flow f at time now, applying ClientIP
// affinity when the load balancer has an AffinityTimeout: if f.Src is
// pinned to a backend that is online and has heard from the client
// within the timeout, that backend is returned and the pin's timer
// restarts at now; otherwise a backend is chosen by hash (Choose) and
// f.Src is pinned to it. ok is false when no backend is online.
//
// Pick is the per-packet call: on an affinity hit it takes one shard
// read lock and performs no allocation; a miss allocates the new pin.
func (s *Selector) Pick(f *Flow, now time.Time) (b netip.AddrPort, ok bool) {
	set := s.set.Load()
	if s.timeout == 0 {
		return s.choose(set, f)
	}
	t := now.UnixNano()
	sh := s.shard(f.Src)
	sh.mu.RLock()
	p := sh.pins[f.Src]
	sh.mu.RUnlock()
	if p != nil && s.valid(set, p, t) {
		storeLatest(&p.last, t)
		s.hits.Add(1)
		return p.backend, true
	}
	return s.repin(set, sh, f, t)
}

// valid reports whether pin p may still be used at time t.
func (s *Selector) valid(set *backendSet, p *pin, t int64) bool {
	return t-p.last.Load() <= s.timeout && set.isOnline(p.backend)
}

// repin is Pick's miss path: choose a backend and pin the client to it,
// unless another goroutine pinned it meanwhile.
func (s *Selector) repin(set *backendSet, sh *shard, f *Flow, t int64) (netip.AddrPort, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p := sh.pins[f.Src]; p != nil {
		if s.valid(set, p, t) {
			storeLatest(&p.last, t)
			s.hits.Add(1)
			return p.backend, true
		}
		if t-p.last.Load() > s.timeout {
			s.expired.Add(1)
		}
		delete(sh.pins, f.Src)
	}
	s.misses.Add(1)
	b, ok := s.choose(set, f)
	if !ok {
		return b, false
	}
	p := &pin{backend: b}
	p.last.Store(t)
	sh.pins[f.Src] = p
	return b, true
}

// Touch records a packet from client at time now without selecting a
// backend (for packets of an established connection the datapath already
// forwards): the client's pin, if any, restarts its timer. It reports
// whether a live pin was found. Touch never allocates.
func (s *Selector) Touch(client netip.Addr, now time.Time) bool {
	if s.timeout == 0 {
		return false
	}
	t := now.UnixNano()
	sh := s.shard(client)
	sh.mu.RLock()
	p := sh.pins[client]
	sh.mu.RUnlock()
	if p == nil || !s.valid(s.set.Load(), p, t) {
		return false
	}
	storeLatest(&p.last, t)
	return true
}

// storeLatest sets v to t unless v already holds a later time, so that
// concurrent callers with slightly different clocks never move it back.
func storeLatest(v *atomic.Int64, t int64) {
	for {
		old := v.Load()
		if old >= t || v.CompareAndSwap(old, t) {
			return
		}
	}
}

// Affinity returns client's pin: its backend and the time of the
// client's last packet. ok is false when the client has no pin (an
// expired pin that has not been swept yet is still reported).
func (s *Selector) Affinity(client netip.Addr) (backend netip.AddrPort, last time.Time, ok bool) {
	sh := s.shard(client)
	sh.mu.RLock()
	p := sh.pins[client]
	sh.mu.RUnlock()
	if p == nil {
		return netip.AddrPort{}, time.Time{}, false
	}
	return p.backend, time.Unix(0, p.last.Load()), true
}

// Expire removes the pins that have been silent for longer than the
// affinity timeout at now, and those of backends that are not online,
// and returns how many it removed. Expired pins are never used by Pick;
// Expire only bounds memory, so the owner should call it periodically
// (every few seconds to minutes).
func (s *Selector) Expire(now time.Time) int {
	t := now.UnixNano()
	set := s.set.Load()
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c, p := range sh.pins {
			if !s.valid(set, p, t) {
				delete(sh.pins, c)
				n++
			}
		}
		sh.mu.Unlock()
	}
	s.expired.Add(uint64(n))
	return n
}

// dropPins removes every pin to backend b.
func (s *Selector) dropPins(b netip.AddrPort) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for c, p := range sh.pins {
			if p.backend == b {
				delete(sh.pins, c)
			}
		}
		sh.mu.Unlock()
	}
}

// SetOnline marks backend b online or offline and reports whether b is
// one of the selector's backends. An offline backend is never chosen and
// its pins are dropped, so its clients are re-hashed over the remaining
// backends on their next packet; when it comes back online it is chosen
// again for the flows that hash to it and have no live pin elsewhere.
func (s *Selector) SetOnline(b netip.AddrPort, online bool) bool {
	s.mu.Lock()
	old := s.set.Load()
	i, ok := old.index[b]
	if !ok || old.online[i] == online {
		s.mu.Unlock()
		return ok
	}
	n := &backendSet{
		all:    old.all,
		seed:   old.seed,
		online: slices.Clone(old.online),
		index:  old.index,
	}
	n.online[i] = online
	n.relive()
	s.set.Store(n)
	s.mu.Unlock()
	if !online {
		// Pick already ignores pins to offline backends; dropping
		// them here just frees the memory early.
		s.dropPins(b)
	}
	return true
}

// Observe applies a health checker Event: it is a ready-made
// CheckerOptions.OnChange for a checker that feeds this selector.
func (s *Selector) Observe(e Event) { s.SetOnline(e.Backend, e.To == Online) }

// SetBackends replaces the backend list, keeping the online state of the
// backends that stay (new ones start online) and the pins to them. The
// backends are not validated again; callers validate the new
// LoadBalancer first.
func (s *Selector) SetBackends(backends []netip.AddrPort) {
	s.mu.Lock()
	old := s.set.Load()
	n := newBackendSet(backends, old)
	s.set.Store(n)
	s.mu.Unlock()
	for _, b := range old.all {
		if _, ok := n.index[b]; !ok {
			s.dropPins(b)
		}
	}
}

// Backends returns the configured backends and, for each, whether it is
// online.
func (s *Selector) Backends() (backends []netip.AddrPort, online []bool) {
	set := s.set.Load()
	return slices.Clone(set.all), slices.Clone(set.online)
}

// Online returns the backends that may currently be chosen, in
// configuration order.
func (s *Selector) Online() []netip.AddrPort {
	set := s.set.Load()
	out := make([]netip.AddrPort, len(set.live))
	for k, i := range set.live {
		out[k] = set.all[i]
	}
	return out
}

// SelectorStats are a selector's counters since creation.
type SelectorStats struct {
	Pins    int    // current affinity entries (including expired unswept ones)
	Hits    uint64 // Picks answered by a live pin
	Misses  uint64 // Picks that chose by hash and pinned
	Expired uint64 // pins found or swept after their timeout
}

// Stats returns the selector's counters.
func (s *Selector) Stats() SelectorStats {
	st := SelectorStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Expired: s.expired.Load()}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		st.Pins += len(sh.pins)
		sh.mu.RUnlock()
	}
	return st
}

func (s *Selector) shard(a netip.Addr) *shard {
	return &s.shards[addrHash(a)&(affinityShards-1)]
}

// flowHash hashes the selected fields of f.
func (s *Selector) flowHash(f *Flow) uint64 {
	h := uint64(0x6c62272e07bb0142)
	if s.mask&maskEthSrc != 0 {
		h = mix64(h ^ macWord(f.EthSrc))
	}
	if s.mask&maskEthDst != 0 {
		h = mix64(h ^ macWord(f.EthDst) ^ 0x1000000000000)
	}
	if s.mask&maskIPSrc != 0 {
		h = mix64(h ^ addrHash(f.Src))
	}
	if s.mask&maskIPDst != 0 {
		h = mix64(h ^ addrHash(f.Dst) ^ 0x5bd1e995)
	}
	if s.mask&(maskTPSrc|maskTPDst) != 0 {
		var ports uint64
		if s.mask&maskTPSrc != 0 {
			ports |= uint64(f.SrcPort) << 16
		}
		if s.mask&maskTPDst != 0 {
			ports |= uint64(f.DstPort)
		}
		h = mix64(h ^ ports ^ 0x2000000000000)
	}
	return h
}

func macWord(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 |
		uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// addrHash hashes an address (IPv4 as its IPv4-mapped form).
func addrHash(a netip.Addr) uint64 {
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	return mix64(hi ^ mix64(lo^0x9e3779b97f4a7c15))
}

// backendSeed is a backend's rendezvous seed: a function of its address
// and port only, so every xvs instance ranks backends identically.
func backendSeed(b netip.AddrPort) uint64 {
	return mix64(addrHash(b.Addr()) ^ uint64(b.Port())<<32 ^ 0xc2b2ae3d27d4eb4f)
}

// mix64 is the SplitMix64 finaliser, a bijective avalanche mix.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
