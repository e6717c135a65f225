package bond

import (
	"sync"
	"sync/atomic"
	"time"
)

// fwd is how the fast path forwards through a bond.
type fwd uint8

const (
	fwdDrop fwd = iota // balance-tcp without LACP, or LACP configured without fallback
	fwdAB              // everything on the active member
	fwdSLB             // bucket table
)

// table is the immutable snapshot the fast path reads. A new table is
// built by the slow path and published with one atomic store; readers may
// keep using an old table for the rest of their batch.
type table struct {
	fwd       fwd
	basis     uint32
	active    uint32 // ofport of the active member, 0 if none
	allActive bool
	members   []uint32        // ofports of all members, for Admit
	bucket    [Buckets]uint32 // SLB: ofport per bucket, 0 if none
}

// counter is a per-bucket byte counter on its own cache line, so pollers
// accounting different buckets do not contend.
type counter struct {
	atomic.Uint64
	_ [56]byte
}

// member is the slow-path state of one member.
type member struct {
	Member
	carrier    bool      // link up (OVS "may_enable")
	enabled    bool      // may carry traffic
	delayArmed bool      // an up/down delay is running
	delayUntil time.Time // when it expires
}

// lacpStatus mirrors OVS's enum lacp_status, minus "negotiated".
type lacpStatus uint8

const (
	lacpOff lacpStatus = iota
	lacpConfigured
)

func (s lacpStatus) String() string {
	if s == lacpConfigured {
		return "configured"
	}
	return "off"
}

// Bond is one OVS-style bond. Select, Account and Admit are the fast path
// (lock-free, allocation-free, safe from any number of goroutines); all
// other methods are the slow path and serialise on an internal mutex.
type Bond struct {
	snap atomic.Pointer[table]
	tx   [Buckets]counter // bytes sent per bucket since the last rebalance

	mu       sync.Mutex // guards everything below
	cfg      Config     // normalized
	warnings []string
	lacp     lacpStatus
	members  []*member // in configuration order
	enabled  []int     // indices of enabled members, OVS enabled_members order (rotated by round robin)
	active   int       // index of the active member, -1 if none
	// activeMAC is the MAC written to Port.bond_active_slave (OVS
	// active_member_mac); zero when no member is active.
	activeMAC     [6]byte
	hasTable      bool
	bucket        [Buckets]int    // member index per bucket, -1 if none (valid if hasTable)
	load          [Buckets]uint64 // decayed per-bucket load (OVS tx_bytes)
	nextRebalance time.Time
	sendLearning  bool
	ev            Events // pending events, drained by Run
	lastNow       time.Time
	dirty         bool // the published table is stale
}

// New creates a bond from cfg at time now. Members with Member.Up set are
// enabled at once; the active member is chosen; SLB buckets are dealt to
// the enabled members. Warnings OVS would log about cfg are available
// from Warnings.
func New(cfg Config, now time.Time) (*Bond, error) {
	n, warns, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	b := &Bond{cfg: n, warnings: warns, active: -1, activeMAC: n.ActiveMAC, lastNow: now}
	b.lacp = lacpOff
	if n.LACP != LACPOff {
		b.lacp = lacpConfigured
	}
	for _, m := range n.Members {
		b.addMember(m)
	}
	b.resetTable(now)
	b.update(now)
	b.publish()
	return b, nil
}

func (b *Bond) addMember(m Member) {
	mm := &member{Member: m, carrier: m.Up}
	b.members = append(b.members, mm)
	if m.Up {
		b.setEnabled(len(b.members)-1, true)
	}
}

// Warnings returns the warnings produced by the last New or Reconfigure
// (default or unknown bond_mode, unsupported detect mode), in OVS's words.
func (b *Bond) Warnings() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.warnings...)
}

// Name returns the bond's name.
func (b *Bond) Name() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Name
}

// Reconfigure applies a new configuration at time now, keeping state
// where OVS keeps it:
//   - members are matched by ofport; their carrier, enabled state and any
//     running up/down delay survive (a new delay value applies to the next
//     transition, as in OVS);
//   - the active member stays if it is still a member (in active-backup a
//     newly named primary that is enabled pre-empts it);
//   - the SLB table and load history are reset (all buckets re-dealt) only
//     when OVS resets them: mode, hash basis, lacp-fallback-ab or the member
//     set changed, or rebalancing was switched on or off;
//   - a change from one non-zero rebalance interval to another keeps the
//     phase: next rebalance = previous start + new interval (may already
//     be due).
//
// On error the bond is left unchanged.
func (b *Bond) Reconfigure(cfg Config, now time.Time) error {
	n, warns, err := cfg.normalized()
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastNow = now
	old := b.cfg
	b.warnings = warns
	reset := n.Mode != old.Mode || n.Basis != old.Basis || n.LACPFallbackAB != old.LACPFallbackAB ||
		(n.RebalanceInterval == 0) != (old.RebalanceInterval == 0) || n.LACP != old.LACP
	if !reset && n.RebalanceInterval != old.RebalanceInterval && !b.nextRebalance.IsZero() {
		start := b.nextRebalance.Add(-ms(old.RebalanceInterval))
		b.nextRebalance = start.Add(ms(n.RebalanceInterval))
	}

	// Member set: keep state by ofport.
	byPort := make(map[uint32]int, len(b.members))
	for i, m := range b.members {
		byPort[m.OfPort] = i
	}
	var activePort uint32
	if b.active >= 0 {
		activePort = b.members[b.active].OfPort
	}
	newMembers := make([]*member, 0, len(n.Members))
	kept := make(map[uint32]bool, len(n.Members))
	for _, m := range n.Members {
		if i, ok := byPort[m.OfPort]; ok {
			mm := b.members[i]
			mm.Name, mm.MAC = m.Name, m.MAC
			newMembers = append(newMembers, mm)
			kept[m.OfPort] = true
		} else {
			reset = true
			mm := &member{Member: m, carrier: m.Up, enabled: m.Up}
			newMembers = append(newMembers, mm)
			if m.Up {
				b.ev.Enabled = append(b.ev.Enabled, m.OfPort)
				b.logf("member %s: enabled", m.Name)
			}
		}
	}
	for _, m := range b.members {
		if !kept[m.OfPort] {
			reset = true
			if m.enabled {
				b.sendLearning = true
				b.ev.Disabled = append(b.ev.Disabled, m.OfPort)
			}
		}
	}
	// Rebuild the enabled list in its old order, then append new members.
	var enabledPorts []uint32
	for _, i := range b.enabled {
		if kept[b.members[i].OfPort] {
			enabledPorts = append(enabledPorts, b.members[i].OfPort)
		}
	}
	for _, m := range newMembers {
		if m.enabled && !containsPort(enabledPorts, m.OfPort) {
			enabledPorts = append(enabledPorts, m.OfPort)
		}
	}
	b.members = newMembers
	b.enabled = b.enabled[:0]
	b.active = -1
	for _, p := range enabledPorts {
		b.enabled = append(b.enabled, b.indexOf(p))
	}
	if activePort != 0 {
		if i := b.indexOf(activePort); i >= 0 {
			b.active = i
		} else {
			// OVS: unregistering the active member re-chooses and
			// sends learning packets.
			b.sendLearning = true
			b.ev.ActiveChanged = true
			b.activeMAC = [6]byte{}
		}
	}
	b.cfg = n
	newLACP := lacpOff
	if n.LACP != LACPOff {
		newLACP = lacpConfigured
	}
	b.lacp = newLACP

	if reset {
		b.resetTable(now)
	} else if b.hasTable {
		// Buckets pointed at members by index; indices may have moved.
		b.remapBuckets(byPort)
	}
	b.update(now)
	b.dirty = true // all-members-active and friends live in the table too
	b.publish()
	return nil
}

// remapBuckets fixes bucket member indices after b.members was rebuilt
// with the same member set (order may differ).
func (b *Bond) remapBuckets(oldIndex map[uint32]int) {
	oldToNew := make(map[int]int, len(oldIndex))
	for port, oi := range oldIndex {
		oldToNew[oi] = b.indexOf(port)
	}
	for i, mi := range b.bucket {
		if mi >= 0 {
			b.bucket[i] = oldToNew[mi]
		}
	}
}

func containsPort(ps []uint32, p uint32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func (b *Bond) indexOf(ofport uint32) int {
	for i, m := range b.members {
		if m.OfPort == ofport {
			return i
		}
	}
	return -1
}

func (b *Bond) lookupName(name string) int {
	for i, m := range b.members {
		if m.Name == name {
			return i
		}
	}
	return -1
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// effectiveFwd is how traffic is forwarded given mode and LACP status.
func (b *Bond) effectiveFwd() fwd {
	if b.lacp == lacpConfigured {
		if !b.cfg.LACPFallbackAB {
			return fwdDrop
		}
		return fwdAB
	}
	switch b.cfg.Mode {
	case ModeBalanceSLB:
		return fwdSLB
	case ModeBalanceTCP:
		return fwdDrop // balance-tcp needs negotiated LACP
	}
	return fwdAB
}

// balanced reports whether rebalancing runs (OVS bond_is_balanced).
func (b *Bond) balanced() bool {
	return b.cfg.RebalanceInterval != 0 && b.cfg.Mode == ModeBalanceSLB && b.effectiveFwd() == fwdSLB
}

// resetTable clears the bucket table and load history and deals every
// bucket round-robin over the enabled members (OVS bond_entry_reset, with
// the lazy first-use assignment replaced by an eager one).
func (b *Bond) resetTable(now time.Time) {
	for i := range b.tx {
		b.tx[i].Store(0)
	}
	b.load = [Buckets]uint64{}
	b.hasTable = b.effectiveFwd() == fwdSLB
	for i := range b.bucket {
		b.bucket[i] = -1
	}
	b.nextRebalance = now.Add(ms(b.cfg.RebalanceInterval))
	b.ev.Reset = true
	if b.hasTable {
		b.fillBuckets()
		b.ev.Moved.fill()
	}
	b.dirty = true
}

// nextEnabled returns the next enabled member in round-robin order and
// rotates the list (OVS get_enabled_member), or -1.
func (b *Bond) nextEnabled() int {
	if len(b.enabled) == 0 {
		return -1
	}
	i := b.enabled[0]
	copy(b.enabled, b.enabled[1:])
	b.enabled[len(b.enabled)-1] = i
	return i
}

// fillBuckets assigns every bucket that has no enabled member to the next
// enabled member, in bucket order. This is the eager equivalent of OVS's
// choose_output_member() re-assignment, so the fast path never meets an
// unassigned or disabled bucket.
func (b *Bond) fillBuckets() {
	if !b.hasTable {
		return
	}
	for i, mi := range b.bucket {
		if mi >= 0 && b.members[mi].enabled {
			continue
		}
		ni := b.nextEnabled()
		if ni != mi {
			b.bucket[i] = ni
			b.ev.Moved.Add(uint8(i))
			b.dirty = true
		}
	}
}

// publish builds and stores a new fast-path table if anything changed.
func (b *Bond) publish() {
	if !b.dirty && b.snap.Load() != nil {
		return
	}
	b.dirty = false
	t := &table{
		fwd:       b.effectiveFwd(),
		basis:     b.cfg.Basis,
		allActive: b.cfg.AllMembersActive,
		members:   make([]uint32, len(b.members)),
	}
	for i, m := range b.members {
		t.members[i] = m.OfPort
	}
	if b.active >= 0 {
		t.active = b.members[b.active].OfPort
	}
	if b.hasTable {
		for i, mi := range b.bucket {
			if mi >= 0 {
				t.bucket[i] = b.members[mi].OfPort
			}
		}
	}
	b.snap.Store(t)
}
