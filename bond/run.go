package bond

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// BucketSet is a set of SLB buckets.
type BucketSet [Buckets / 64]uint64

// Add inserts bucket i.
func (s *BucketSet) Add(i uint8) { s[i>>6] |= 1 << (i & 63) }

// Has reports whether bucket i is in the set.
func (s *BucketSet) Has(i uint8) bool { return s[i>>6]&(1<<(i&63)) != 0 }

// Len returns the number of buckets in the set.
func (s *BucketSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

func (s *BucketSet) fill() {
	for i := range s {
		s[i] = ^uint64(0)
	}
}

// Events tells the datapath what changed since the previous Run.
type Events struct {
	Enabled  []uint32 // members (ofports) that became enabled, in order
	Disabled []uint32 // members that became disabled or left the bond
	// ActiveChanged is set when the active member changed; Active is the
	// active member now (0 if none). The datapath writes the new MAC (see
	// Status) to Port.bond_active_slave.
	ActiveChanged bool
	Active        uint32
	// Moved holds the SLB buckets whose member changed (failover,
	// rebalancing, migrate, reset). Cached forwarding decisions that used
	// these buckets are stale. Reset is set when the bond was reset (at
	// creation, or when mode, basis, LACP, the member set or rebalancing
	// on/off changed): every cached decision through the bond is stale
	// and, for SLB, Moved holds all buckets.
	Moved BucketSet
	Reset bool
	// SendLearning asks the datapath to send a learning packet (see
	// LearningPacket and Announcer) for every MAC learned on a non-bond
	// port of the bridge, each on the member Select returns for it. Set
	// after failover, member disable and active-member changes, only for
	// balance-slb and active-backup bonds without LACP, as in OVS. OVS
	// sends none after rebalancing.
	SendLearning bool
	// Log holds OVS-style INFO log lines ("member p1: disabled",
	// "bond bond0: active member is now p2", shifted load ...).
	Log []string
}

// Changed reports whether forwarding through the bond changed, so that
// cached decisions must be revalidated.
func (e *Events) Changed() bool {
	return e.Reset || len(e.Enabled) > 0 || len(e.Disabled) > 0 || e.ActiveChanged || e.Moved.Len() > 0
}

// maxLog bounds Events.Log when Run is not called for a long time.
const maxLog = 256

func (b *Bond) logf(format string, args ...any) {
	if len(b.ev.Log) < maxLog {
		b.ev.Log = append(b.ev.Log, fmt.Sprintf(format, args...))
	}
}

// setEnabled enables or disables member i, cancelling its delay (OVS
// bond_enable_member).
func (b *Bond) setEnabled(i int, en bool) {
	m := b.members[i]
	m.delayArmed = false
	if m.enabled == en {
		return
	}
	m.enabled = en
	b.dirty = true
	if en {
		b.enabled = append(b.enabled, i)
		b.ev.Enabled = append(b.ev.Enabled, m.OfPort)
	} else {
		b.sendLearning = true
		b.enabled = slices.DeleteFunc(b.enabled, func(j int) bool { return j == i })
		b.ev.Disabled = append(b.ev.Disabled, m.OfPort)
	}
	b.logf("member %s: %s", m.Name, enabledText(en))
}

func enabledText(en bool) string {
	if en {
		return "enabled"
	}
	return "disabled"
}

// linkStatus applies the carrier of member i with up/down delays (OVS
// bond_link_status_update).
func (b *Bond) linkStatus(i int, now time.Time) {
	m := b.members[i]
	up := m.carrier
	if (up == m.enabled) == m.delayArmed {
		b.logf("member %s: link state %s", m.Name, upText(up))
		if up == m.enabled {
			m.delayArmed = false
			b.logf("member %s: will not be %s", m.Name, enabledText(!up))
		} else {
			delay := b.cfg.DownDelay
			if up {
				delay = b.cfg.UpDelay
			}
			m.delayArmed = true
			m.delayUntil = now.Add(ms(delay))
			if delay > 0 {
				b.logf("member %s: will be %s if it stays %s for %d ms", m.Name, enabledText(up), upText(up), delay)
			}
		}
	}
	if m.delayArmed && !now.Before(m.delayUntil) {
		b.setEnabled(i, up)
	}
}

func upText(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// chooseMember picks the preferred active member (OVS bond_choose_member):
// the enabled primary, else the enabled member with the remembered active
// MAC, else the first enabled member in configuration order, else the
// member whose updelay expires soonest.
func (b *Bond) chooseMember() int {
	for i, m := range b.members {
		if b.cfg.Primary != "" && m.Name == b.cfg.Primary && m.enabled {
			return i
		}
	}
	if b.activeMAC != ([6]byte{}) {
		for i, m := range b.members {
			if m.MAC == b.activeMAC && m.enabled {
				return i
			}
		}
	}
	for i, m := range b.members {
		if m.enabled {
			return i
		}
	}
	best := -1
	for i, m := range b.members {
		if m.delayArmed && m.carrier && (best < 0 || m.delayUntil.Before(b.members[best].delayUntil)) {
			best = i
		}
	}
	return best
}

// chooseActive re-chooses the active member (OVS bond_choose_active_member).
func (b *Bond) chooseActive(now time.Time) {
	old := b.active
	b.active = b.chooseMember()
	if b.active >= 0 {
		m := b.members[b.active]
		if m.enabled {
			b.logf("bond %s: active member is now %s", b.cfg.Name, m.Name)
		} else {
			b.logf("bond %s: active member is now %s, skipping remaining %d ms updelay (since no member was enabled)",
				b.cfg.Name, m.Name, m.delayUntil.Sub(now).Milliseconds())
			b.setEnabled(b.active, true)
		}
		b.sendLearning = true
		if b.active != old {
			b.activeChanged()
		}
	} else if old >= 0 {
		b.activeChanged()
		b.logf("bond %s: all members disabled", b.cfg.Name)
	}
}

func (b *Bond) activeChanged() {
	b.dirty = true
	b.ev.ActiveChanged = true
	if b.active >= 0 {
		b.activeMAC = b.members[b.active].MAC
	} else {
		b.activeMAC = [6]byte{}
	}
}

// update is the non-rebalancing part of OVS bond_run: link states and
// delays, active member, then the eager failover of orphaned buckets.
func (b *Bond) update(now time.Time) {
	primary := -1
	for i, m := range b.members {
		b.linkStatus(i, now)
		if b.effectiveFwd() == fwdAB && b.cfg.Primary != "" && m.Name == b.cfg.Primary && m.enabled {
			primary = i
		}
	}
	b.settle(now, primary)
}

// settle re-chooses the active member when needed and moves buckets off
// disabled members.
func (b *Bond) settle(now time.Time, primary int) {
	if b.active < 0 || !b.members[b.active].enabled || (primary >= 0 && b.active != primary) {
		b.chooseActive(now)
	}
	b.fillBuckets()
}

// flushEvents completes and returns the pending events.
func (b *Bond) flushEvents() Events {
	ev := b.ev
	b.ev = Events{}
	if b.active >= 0 {
		ev.Active = b.members[b.active].OfPort
	}
	ev.SendLearning = b.sendLearning && b.maySendLearning()
	b.sendLearning = false
	return ev
}

// maySendLearning mirrors OVS may_send_learning_packets with LACP never
// negotiated.
func (b *Bond) maySendLearning() bool {
	ok := (b.lacp == lacpOff && (b.cfg.Mode == ModeBalanceSLB || b.cfg.Mode == ModeActiveBackup)) ||
		(b.cfg.LACPFallbackAB && b.lacp == lacpConfigured)
	return ok && b.active >= 0
}

// SetCarrier records the link state of member ofport (carrier, or the
// miimon result) at time now and applies it at once: with a zero delay a
// failed member is disabled and its buckets are moved to the surviving
// members before SetCarrier returns, so the fast path stops using it
// immediately. The resulting events are returned by the next Run. It
// returns false if ofport is not a member.
func (b *Bond) SetCarrier(ofport uint32, up bool, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.indexOf(ofport)
	if i < 0 {
		return false
	}
	b.lastNow = now
	b.members[i].carrier = up
	b.update(now)
	b.publish()
	return true
}

// Run performs the bond's periodic work at time now (OVS bond_run and
// bond_rebalance): expires up/down delays, enables and disables members,
// re-chooses the active member (a primary pre-empts in active-backup),
// moves buckets off disabled members, rebalances when the interval has
// passed, publishes the new fast-path table and returns everything that
// changed since the previous Run (including changes made by SetCarrier,
// Reconfigure and the commands).
func (b *Bond) Run(now time.Time) Events {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastNow = now
	b.update(now)
	if b.balanced() && b.hasTable && !now.Before(b.nextRebalance) {
		b.rebalance(now)
	}
	b.publish()
	return b.flushEvents()
}

// NextWake returns when Run should be called next: the earliest up/down
// delay expiry, the next rebalance, the next miimon poll (miimon mode;
// the caller polls the links and calls SetCarrier), or now if events are
// pending. ok is false when nothing is scheduled.
func (b *Bond) NextWake(now time.Time) (t time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	consider := func(c time.Time) {
		if !ok || c.Before(t) {
			t, ok = c, true
		}
	}
	if b.ev.Changed() || b.ev.Reset || len(b.ev.Log) > 0 || b.sendLearning {
		consider(now)
	}
	for _, m := range b.members {
		if m.delayArmed {
			consider(m.delayUntil)
		}
	}
	if b.balanced() && b.hasTable {
		consider(b.nextRebalance)
	}
	if b.cfg.DetectMode == DetectMiimon {
		consider(now.Add(ms(b.cfg.MiimonInterval)))
	}
	return t, ok
}

// MiimonInterval returns the link polling interval in miimon mode, 0 in
// carrier mode.
func (b *Bond) MiimonInterval() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ms(b.cfg.MiimonInterval)
}

// rebalance is OVS's bond_rebalance():
//
//  1. fold the bytes accounted since the last run into each bucket's load;
//  2. give every enabled member the list of its loaded buckets, heaviest
//     first, and its total load;
//  3. repeatedly take the most (from) and least (to) loaded members; stop
//     when from-to is below to/32 (~3%) or below 100000 bytes;
//  4. pick buckets to move from 'from' (which must carry at least two
//     loaded buckets): ideal_delta = (from+to)/2 - to, threshold =
//     ideal_delta/10; take buckets greedily, heaviest first, while the sum
//     stays <= ideal_delta, stopping once within threshold of it; if none
//     fits take the lightest; accept only if the lighter side grows by at
//     least threshold, else drop 'from' from consideration;
//  5. move the chosen buckets to 'to' and re-sort;
//  6. halve every bucket's load (exponential decay).
//
// Ties are broken by bucket number and configuration order, so the result
// is deterministic.
func (b *Bond) rebalance(now time.Time) {
	b.nextRebalance = now.Add(ms(b.cfg.RebalanceInterval))
	for i := range b.load {
		b.load[i] += b.tx[i].Swap(0)
	}

	type bal struct {
		idx     int
		tx      uint64
		entries []int // bucket numbers, heaviest first
	}
	order := make([]int, Buckets)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(b.load[y], b.load[x]) })

	bals := make([]*bal, 0, len(b.members))
	byIdx := make(map[int]*bal, len(b.members))
	for i, m := range b.members {
		if m.enabled {
			bl := &bal{idx: i}
			bals = append(bals, bl)
			byIdx[i] = bl
		}
	}
	for _, e := range order {
		if b.load[e] == 0 {
			break
		}
		if bl := byIdx[b.bucket[e]]; bl != nil {
			bl.tx += b.load[e]
			bl.entries = append(bl.entries, e)
		}
	}
	sortBals := func() {
		slices.SortStableFunc(bals, func(x, y *bal) int { return cmp.Compare(y.tx, x.tx) })
	}
	sortBals()

	for len(bals) >= 2 {
		from, to := bals[0], bals[len(bals)-1]
		overload := from.tx - to.tx
		if overload < to.tx>>5 || overload < 100000 {
			break
		}
		moves := b.chooseMigrations(from.entries, from.tx, to.tx)
		if len(moves) == 0 {
			bals = bals[1:]
			continue
		}
		for _, e := range moves {
			delta := b.load[e]
			fm, tm := b.members[from.idx], b.members[to.idx]
			b.logf("bond %s: shift %dkB of load (with hash %d) from %s to %s (now carrying %dkB and %dkB load, respectively)",
				b.cfg.Name, delta/1024, e, fm.Name, tm.Name, (from.tx-delta)/1024, (to.tx+delta)/1024)
			from.tx -= delta
			to.tx += delta
			b.bucket[e] = to.idx
			b.ev.Moved.Add(uint8(e))
			b.dirty = true
			from.entries = slices.DeleteFunc(from.entries, func(x int) bool { return x == e })
		}
		sortBals()
	}

	for i := range b.load {
		b.load[i] /= 2
	}
}

// chooseMigrations is OVS's choose_entries_to_migrate(); entries are the
// 'from' member's loaded buckets, heaviest first.
func (b *Bond) chooseMigrations(entries []int, fromTx, toTx uint64) []int {
	if len(entries) <= 1 {
		return nil
	}
	ideal := (fromTx + toTx) / 2
	idealDelta := ideal - toTx
	threshold := idealDelta / 10
	var delta uint64
	var out []int
	for _, e := range entries {
		if delta+b.load[e] <= idealDelta {
			out = append(out, e)
			delta += b.load[e]
		}
		if idealDelta-delta < threshold {
			break
		}
	}
	if len(out) == 0 {
		closest := entries[len(entries)-1]
		delta = b.load[closest]
		out = append(out, closest)
	}
	newLow := min(fromTx-delta, toTx+delta)
	if newLow > toTx && newLow-toTx >= threshold {
		return out
	}
	return nil
}
