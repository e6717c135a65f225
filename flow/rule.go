package flow

// OpenFlow rule tables.
//
// A Rule is an OpenFlow-style flow entry: a Match (a Key value and a Key
// mask, bits set in the mask are the bits that matter), a priority, an
// action list and per-rule counters. Rules are written in ovs-ofctl syntax
// (ParseFlow, ParseFlowMod; see ofp_parse.go) and printed back in
// ovs-ofctl dump-flows style (FormatFlowStats, Match.String; ofp_print.go).
//
// A Table holds the rules of one bridge: up to MaxTables OpenFlow tables
// (table=0..254), each a set of rules ordered by priority. NewTable starts
// with Open vSwitch's default rule "priority=0,actions=NORMAL" in table 0.
// Among overlapping rules of equal priority the one added first wins, so
// lookups are deterministic (OpenFlow leaves that case undefined).
//
// Lookup and the megaflow mask. Each OpenFlow table is partitioned into
// subtables, one per distinct rule mask (tuple space search, as in OVS's
// classifier). A subtable is a hash map from masked key to the rules with
// that exact masked key. Lookup visits subtables in decreasing order of
// the highest priority they contain and stops as soon as the best rule
// found so far has a higher priority than any rule the next subtable holds.
// Every subtable it probes contributes its mask to the returned wildcard
// mask (the union). That union is sufficient for a megaflow: the sequence
// of probed subtables depends only on the table contents and on the
// outcome of earlier probes; the outcome of probing a subtable with mask M
// depends only on key&M. So two keys that agree on the union of the probed
// masks probe the same subtables, get the same answer from each and end
// with the same rule. Subtables that were skipped were skipped because of
// priorities alone, whatever the key, so their masks need not be included.
// Subtables whose highest priority equals the best rule's are still
// probed, because an older rule of equal priority wins. TestLookupReference
// checks both the answer (against a linear scan) and this mask property
// on random tables. The cost of a lookup is one masked-key hash probe per
// subtable visited, so it depends on the number of distinct masks, not on
// the number of rules (BenchmarkLookup100k: 100k rules in 4 subtables).
//
// Concurrency. A Table is not safe for concurrent use: the slow path owns
// it and serialises every call (Add, Delete*, Modify*, Lookup, Expire,
// Rules) under its own lock. Two things are safe from any goroutine
// without that lock: a Rule's counters (Credit, Stats, Used, Touch), which
// the fast path feeds from its cache statistics, and Rule.Actions, which
// is published atomically so a reader never sees a half-replaced list.
// Generation is atomic too; it is bumped by every change to the rules or
// their actions, and caches built from lookups compare it to find out that
// they are stale.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Table limits and well-known values.
const (
	// MaxTables is the number of OpenFlow tables per bridge (0..254).
	MaxTables = 255
	// TableAll selects every table in a delete/modify/dump request.
	TableAll = 0xff
	// DefaultPriority is OpenFlow's default rule priority (omitted when
	// printing, like ovs-ofctl does).
	DefaultPriority = 0x8000
)

// Errors of Table operations.
var (
	// ErrBadAction is returned by Add and ModifyActions for an action list
	// the parser could not have produced (unknown kind, value out of range).
	ErrBadAction = errors.New("invalid action")
	// ErrOverlap is returned by Add for a check_overlap flow that overlaps
	// an existing rule of the same priority.
	ErrOverlap = errors.New("flow overlaps an existing rule of the same priority")
)

// Overlaps reports whether some packet could match both m and o: on every
// bit both masks care about, the values agree.
func (m *Match) Overlaps(o *Match) bool {
	mm, mk, om, ok := m.Mask.Words(), m.Key.Words(), o.Mask.Words(), o.Key.Words()
	for i := range mm {
		if (mk[i]^ok[i])&mm[i]&om[i] != 0 {
			return false
		}
	}
	return true
}

// Match is a masked flow key. A key k matches when k&Mask == Key. Key is
// kept normalised (Key&Mask == Key) by everything in this package.
type Match struct {
	Key  Key
	Mask Key
}

// andKey returns k & m.
func andKey(k, m *Key) Key {
	var out Key
	o, a, b := out.Words(), k.Words(), m.Words()
	for i := range o {
		o[i] = a[i] & b[i]
	}
	return out
}

// orKey sets dst |= src.
func orKey(dst, src *Key) {
	d, s := dst.Words(), src.Words()
	for i := range d {
		d[i] |= s[i]
	}
}

// Normalize clears the bits of m.Key that the mask ignores.
func (m *Match) Normalize() { m.Key = andKey(&m.Key, &m.Mask) }

// Matches reports whether key k is matched by m.
func (m *Match) Matches(k *Key) bool {
	kw, mw, vw := k.Words(), m.Mask.Words(), m.Key.Words()
	for i := range kw {
		if kw[i]&mw[i] != vw[i] {
			return false
		}
	}
	return true
}

// Covers reports whether m is looser than or equal to o: every bit m
// matches on, o matches on too, with the same value. This is the relation
// ovs-ofctl del-flows and mod-flows (non-strict) use to select rules.
func (m *Match) Covers(o *Match) bool {
	mm, mk, om, ok := m.Mask.Words(), m.Key.Words(), o.Mask.Words(), o.Key.Words()
	for i := range mm {
		if mm[i]&^om[i] != 0 || (mk[i]^ok[i])&mm[i] != 0 {
			return false
		}
	}
	return true
}

// FlowMod is a parsed flow modification (ovs-ofctl add-flow, mod-flows,
// del-flows syntax). Which fields are used depends on the operation.
type FlowMod struct {
	Match    Match
	Priority uint16
	// Table is the OpenFlow table; TableAll (the default for del-flows,
	// mod-flows and dumps) means every table. Add treats TableAll as 0.
	Table uint8
	// Cookie is the cookie to set (add/modify) or, with CookieMask, the
	// cookie to select (delete/modify/dump: rule.Cookie&CookieMask ==
	// Cookie&CookieMask).
	Cookie     uint64
	CookieMask uint64
	// CookieSet says the cookie was given explicitly (cookie=X); only
	// then does ModifyActions change the cookie of the rules it selects.
	CookieSet   bool
	IdleTimeout uint16 // seconds, 0 = none
	HardTimeout uint16 // seconds, 0 = none
	// ResetCounts zeroes the counters of the rules ModifyActions changes
	// (reset_counts flag); by default mod-flows keeps them.
	ResetCounts bool
	// KeepCounts makes an Add that replaces an identical rule keep its
	// counters (OpenFlow 1.3+ semantics). By default they restart from
	// zero, as with ovs-ofctl's default OpenFlow 1.0 add-flow.
	KeepCounts bool
	// CheckOverlap makes Add fail with ErrOverlap if a rule of the same
	// table and priority (other than an identical one) could match the
	// same packet (check_overlap flag).
	CheckOverlap bool
	// OutPort restricts delete/modify/dump to rules that output to this
	// port (out_port=); PortNone (the default) means any.
	OutPort uint32
	Actions []Action
}

// Rule is one flow entry of a Table.
//
// Match, Priority and Table never change once the rule is in a table. The
// other exported fields are owned by the slow path lock. Counters and the
// action list may be read from any goroutine.
type Rule struct {
	Match       Match
	Priority    uint16
	Table       uint8
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16

	actions  atomic.Pointer[[]Action]
	packets  atomic.Uint64
	bytes    atomic.Uint64
	used     atomic.Int64 // unix ns of the last hit (or of creation)
	created  int64        // unix ns, reset when an add replaces the rule
	modified int64        // unix ns of the last change of actions
	seq      uint64       // insertion order, ties between equal priorities
	sub      *ruleSubtable
	removed  atomic.Bool
}

// Actions returns the rule's current action list (nil or empty = drop).
// The slice must not be modified; it stays valid after the rule's actions
// are replaced (a new slice is published instead).
func (r *Rule) Actions() []Action {
	if p := r.actions.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Rule) setActions(a []Action) {
	c := slices.Clone(a)
	r.actions.Store(&c)
}

// Credit adds packets and bytes matched by this rule (for example a
// megaflow's statistics delta) and marks the rule used at now (unix ns).
// Safe for concurrent use; allocation-free.
func (r *Rule) Credit(packets, bytes uint64, now int64) {
	if packets == 0 && bytes == 0 {
		return
	}
	r.packets.Add(packets)
	r.bytes.Add(bytes)
	r.Touch(now)
}

// Touch records a hit at now (unix ns) without counting packets. The idle
// timeout runs from the latest Touch (or from creation).
func (r *Rule) Touch(now int64) {
	for {
		u := r.used.Load()
		if now <= u || r.used.CompareAndSwap(u, now) {
			return
		}
	}
}

// Stats returns the rule's packet and byte counters.
func (r *Rule) Stats() (packets, bytes uint64) { return r.packets.Load(), r.bytes.Load() }

// Used returns the time of the last hit in unix ns (creation time if the
// rule was never hit).
func (r *Rule) Used() int64 { return r.used.Load() }

// Created returns when the rule was added (unix ns).
func (r *Rule) Created() int64 { return r.created }

// Modified returns when the rule's actions last changed (unix ns).
func (r *Rule) Modified() int64 { return r.modified }

// Removed reports whether the rule has left its table (deleted or
// expired). Safe for concurrent use.
func (r *Rule) Removed() bool { return r.removed.Load() }

// better reports whether a wins over b in a lookup.
func (a *Rule) better(b *Rule) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.seq < b.seq
}

// outputsTo reports whether the rule's actions send to port (used by
// out_port filters).
func (r *Rule) outputsTo(port uint32) bool {
	for _, a := range r.Actions() {
		if p, ok := a.OutputPort(); ok && p == port {
			return true
		}
	}
	return false
}

// ruleSubtable holds the rules of one OpenFlow table sharing one mask.
type ruleSubtable struct {
	mask   Key
	rules  map[Key][]*Rule // masked key -> rules, best first
	byPrio map[uint16]int  // number of rules per priority
	maxPri int             // highest priority present, -1 when empty
	n      int
	dirty  bool // maxPri needs recomputing (see remove)
}

func (st *ruleSubtable) insert(r *Rule) {
	list := st.rules[r.Match.Key]
	i, _ := slices.BinarySearchFunc(list, r, func(e, t *Rule) int {
		if e.better(t) {
			return -1
		}
		return 1
	})
	st.rules[r.Match.Key] = slices.Insert(list, i, r)
	st.byPrio[r.Priority]++
	if int(r.Priority) > st.maxPri {
		st.maxPri = int(r.Priority)
	}
	st.n++
	r.sub = st
}

// remove takes r out of the subtable. If r carried the highest priority,
// maxPri is left stale (too high, which only costs an extra probe) and
// the subtable is marked dirty; fix recomputes it once per batch.
func (st *ruleSubtable) remove(r *Rule) {
	list := st.rules[r.Match.Key]
	i := slices.Index(list, r)
	if i < 0 {
		return
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(st.rules, r.Match.Key)
	} else {
		st.rules[r.Match.Key] = list
	}
	st.n--
	if st.byPrio[r.Priority]--; st.byPrio[r.Priority] == 0 {
		delete(st.byPrio, r.Priority)
		if int(r.Priority) == st.maxPri {
			st.dirty = true
		}
	}
	r.sub = nil
}

func (st *ruleSubtable) fix() {
	if !st.dirty {
		return
	}
	st.dirty = false
	st.maxPri = -1
	for p := range st.byPrio {
		st.maxPri = max(st.maxPri, int(p))
	}
}

// find returns the rule with exactly this (normalised) match and priority.
func (st *ruleSubtable) find(m *Match, prio uint16) *Rule {
	for _, r := range st.rules[m.Key] {
		if r.Priority == prio {
			return r
		}
	}
	return nil
}

// ofTable is one OpenFlow table.
type ofTable struct {
	subs   []*ruleSubtable // by maxPri, highest first
	byMask map[Key]*ruleSubtable
	n      int
}

// raise restores the order after st's maxPri grew (or st was appended).
func (ot *ofTable) raise(st *ruleSubtable) {
	i := slices.Index(ot.subs, st)
	for i > 0 && ot.subs[i-1].maxPri < st.maxPri {
		ot.subs[i-1], ot.subs[i] = ot.subs[i], ot.subs[i-1]
		i--
	}
}

func (ot *ofTable) resort() {
	slices.SortStableFunc(ot.subs, func(a, b *ruleSubtable) int { return cmp.Compare(b.maxPri, a.maxPri) })
}

// Table is the OpenFlow rule set of one bridge. See the overview at the
// top of rule.go for the lookup algorithm and the locking rules.
type Table struct {
	tables [MaxTables]*ofTable
	gen    atomic.Uint64
	seq    uint64
	n      int
	timed  map[*Rule]struct{} // rules with an idle or hard timeout
}

// NewTable returns a table holding Open vSwitch's default rule:
// table=0, priority=0, actions=NORMAL.
func NewTable() *Table { return NewTableAt(time.Now().UnixNano()) }

// NewTableAt is NewTable with the default rule created at now (unix ns),
// for callers with their own clock.
func NewTableAt(now int64) *Table {
	t := NewEmptyTable()
	t.Add(&FlowMod{Priority: 0, Actions: []Action{{Kind: ActNormal}}}, now)
	return t
}

// NewEmptyTable returns a table with no rules at all (every lookup
// misses).
func NewEmptyTable() *Table {
	return &Table{timed: make(map[*Rule]struct{})}
}

// Generation returns a counter bumped by every change to the rules.
// Safe for concurrent use.
func (t *Table) Generation() uint64 { return t.gen.Load() }

// Len returns the number of rules in all tables.
func (t *Table) Len() int { return t.n }

func (t *Table) changed() { t.gen.Add(1) }

// Add installs a rule like ovs-ofctl add-flow (OFPFC_ADD). If a rule with
// the identical match and priority exists in the table, it is replaced in
// place, as Open vSwitch 3.1 does for ovs-ofctl add-flow: new actions,
// timeouts and cookie (0 when none was given), the duration restarts and
// the counters restart from zero (unless fm.KeepCounts). The *Rule stays
// the same object, so holders of it (caches) keep crediting it; the
// generation changes. now is the time in unix ns. It returns the
// installed rule.
func (t *Table) Add(fm *FlowMod, now int64) (*Rule, error) {
	tid := fm.Table
	if tid == TableAll {
		tid = 0
	}
	if err := checkActions(fm.Actions, tid); err != nil {
		return nil, err
	}
	m := fm.Match
	m.Normalize()
	if fm.CheckOverlap {
		var clash *Rule
		t.each(tid, func(r *Rule) {
			if clash == nil && r.Priority == fm.Priority && r.Match != m && r.Match.Overlaps(&m) {
				clash = r
			}
		})
		if clash != nil {
			return nil, fmt.Errorf("table %d, priority %d, %q: %w", tid, fm.Priority, clash.Match.String(), ErrOverlap)
		}
	}
	ot := t.tables[tid]
	if ot == nil {
		ot = &ofTable{byMask: make(map[Key]*ruleSubtable)}
		t.tables[tid] = ot
	}
	st := ot.byMask[m.Mask]
	if st != nil {
		if r := st.find(&m, fm.Priority); r != nil {
			r.setActions(fm.Actions)
			r.IdleTimeout, r.HardTimeout = fm.IdleTimeout, fm.HardTimeout
			r.Cookie = fm.Cookie
			if !fm.KeepCounts {
				r.packets.Store(0)
				r.bytes.Store(0)
			}
			r.created, r.modified = now, now
			r.used.Store(now)
			t.track(r)
			t.changed()
			return r, nil
		}
	} else {
		st = &ruleSubtable{mask: m.Mask, rules: make(map[Key][]*Rule), byPrio: make(map[uint16]int), maxPri: -1}
		ot.byMask[m.Mask] = st
		ot.subs = append(ot.subs, st)
	}
	t.seq++
	r := &Rule{
		Match: m, Priority: fm.Priority, Table: tid, Cookie: fm.Cookie,
		IdleTimeout: fm.IdleTimeout, HardTimeout: fm.HardTimeout,
		created: now, modified: now, seq: t.seq,
	}
	r.used.Store(now)
	r.setActions(fm.Actions)
	oldMax := st.maxPri
	st.insert(r)
	ot.n++
	t.n++
	if st.maxPri != oldMax || len(ot.subs) > 0 && ot.subs[len(ot.subs)-1] == st {
		ot.raise(st)
	}
	t.track(r)
	t.changed()
	return r, nil
}

// checkActions validates hand-built action lists for a rule of table tid
// (TableAll: not known yet).
func checkActions(acts []Action, tid uint8) error {
	for i, a := range acts {
		bad := ""
		switch a.Kind {
		case ActOutput:
			if a.Port >= PortMax {
				bad = "output port out of range (use the reserved-port kinds)"
			}
		case ActModVLANVID, ActSetVLANVID:
			if a.Value > VLANVIDMask {
				bad = "VLAN ID above 4095"
			}
		case ActModVLANPCP, ActSetVLANPCP:
			if a.Value > 7 {
				bad = "VLAN priority above 7"
			}
		case ActPushVLAN:
			if a.Value != EthTypeVLAN && a.Value != EthTypeQinQ {
				bad = "TPID is not 0x8100 or 0x88a8"
			}
		case ActSetNwTOS:
			if a.Value&^0xfc != 0 {
				bad = "TOS value with ECN bits"
			}
		case ActSetNwECN:
			if a.Value > 3 {
				bad = "ECN value above 3"
			}
		case ActSetNwTTL:
			if a.Value > 0xff {
				bad = "TTL above 255"
			}
		case ActSetNwSrc, ActSetNwDst:
			if !a.Addr.Is4() {
				bad = "not an IPv4 address"
			}
		case ActSetIPv6Src, ActSetIPv6Dst:
			if !a.Addr.Is6() {
				bad = "not an IPv6 address"
			}
		case ActResubmit:
			if a.Port != PortInPort && a.Port != PortLocal && a.Port >= PortMax {
				bad = "resubmit port out of range"
			}
		case ActGotoTable:
			if a.Table >= MaxTables || i != len(acts)-1 {
				bad = "goto_table must be last and name a table 0..254"
			} else if tid != TableAll && a.Table <= tid {
				bad = "goto_table must name a later table"
			}
		case ActNormal, ActFlood, ActAll, ActInPort, ActLocal, ActController,
			ActStripVLAN, ActSetDlSrc, ActSetDlDst, ActSetTpSrc, ActSetTpDst:
		default:
			bad = "unknown kind"
		}
		if bad != "" {
			return fmt.Errorf("action %d (%v): %s: %w", i, a, bad, ErrBadAction)
		}
	}
	return nil
}

func (t *Table) track(r *Rule) {
	if r.IdleTimeout != 0 || r.HardTimeout != 0 {
		t.timed[r] = struct{}{}
	} else {
		delete(t.timed, r)
	}
}

// removeAll takes rules out of their tables, then restores the subtable
// invariants (maxPri, order, no empty subtables) once per touched table.
func (t *Table) removeAll(rs []*Rule) {
	var touched [MaxTables]bool
	for _, r := range rs {
		r.sub.remove(r)
		t.tables[r.Table].n--
		t.n--
		delete(t.timed, r)
		r.removed.Store(true)
		touched[r.Table] = true
	}
	for tid, ok := range touched {
		if !ok {
			continue
		}
		ot := t.tables[tid]
		ot.subs = slices.DeleteFunc(ot.subs, func(st *ruleSubtable) bool {
			if st.n == 0 {
				delete(ot.byMask, st.mask)
				return true
			}
			st.fix()
			return false
		})
		ot.resort()
	}
}

// selects reports whether rule r is chosen by a delete/modify/dump
// request: strict requires the identical match and priority, loose only
// requires fm's match to cover the rule's.
func (fm *FlowMod) selects(r *Rule, strict bool) bool {
	if fm.Table != TableAll && fm.Table != r.Table {
		return false
	}
	if (r.Cookie^fm.Cookie)&fm.CookieMask != 0 {
		return false
	}
	if strict {
		if r.Priority != fm.Priority || r.Match.Mask != fm.Match.Mask {
			return false
		}
		k := andKey(&fm.Match.Key, &fm.Match.Mask)
		if k != r.Match.Key {
			return false
		}
	} else if !fm.Match.Covers(&r.Match) {
		return false
	}
	if fm.OutPort != PortNone && !r.outputsTo(fm.OutPort) {
		return false
	}
	return true
}

// Select returns the rules a request selects (loose or strict), in dump
// order (table, then priority from high to low, then age).
func (t *Table) Select(fm *FlowMod, strict bool) []*Rule {
	var out []*Rule
	t.each(fm.Table, func(r *Rule) {
		if fm.selects(r, strict) {
			out = append(out, r)
		}
	})
	sortRules(out)
	return out
}

func (t *Table) each(tid uint8, fn func(r *Rule)) {
	for i, ot := range t.tables {
		if ot == nil || (tid != TableAll && int(tid) != i) {
			continue
		}
		for _, st := range ot.subs {
			for _, list := range st.rules {
				for _, r := range list {
					fn(r)
				}
			}
		}
	}
}

func sortRules(rs []*Rule) {
	slices.SortFunc(rs, func(a, b *Rule) int {
		if c := cmp.Compare(a.Table, b.Table); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

// Rules returns every rule of table tid (TableAll: all tables) in dump
// order.
func (t *Table) Rules(tid uint8) []*Rule {
	return t.Select(&FlowMod{Table: tid, OutPort: PortNone}, false)
}

// Delete removes every rule fm selects loosely (ovs-ofctl del-flows: the
// request's match is looser than or equal to the rule's, cookie under
// mask, optional out_port, table or all tables). It returns the removed
// rules.
func (t *Table) Delete(fm *FlowMod) []*Rule { return t.del(fm, false) }

// DeleteStrict removes the rule with exactly fm's match and priority
// (ovs-ofctl del-flows --strict), subject to the same cookie, table and
// out_port filters.
func (t *Table) DeleteStrict(fm *FlowMod) []*Rule { return t.del(fm, true) }

func (t *Table) del(fm *FlowMod, strict bool) []*Rule {
	rs := t.Select(fm, strict)
	if len(rs) > 0 {
		t.removeAll(rs)
		t.changed()
	}
	return rs
}

// ModifyActions replaces the actions (and, if fm.CookieSet, the cookie) of
// every rule fm selects (loosely, or strictly when strict is true), like
// ovs-ofctl mod-flows. Counters are kept unless fm.ResetCounts. If nothing
// is selected and the request does not filter on the cookie, the flow is
// added instead, as Open vSwitch does. It returns the number of rules
// modified or added.
func (t *Table) ModifyActions(fm *FlowMod, strict bool, now int64) (int, error) {
	if err := checkActions(fm.Actions, TableAll); err != nil {
		return 0, err
	}
	rs := t.Select(fm, strict)
	for _, r := range rs {
		if err := checkActions(fm.Actions, r.Table); err != nil {
			return 0, err
		}
	}
	if len(rs) == 0 {
		if fm.CookieMask != 0 {
			return 0, nil
		}
		add := *fm
		if _, err := t.Add(&add, now); err != nil {
			return 0, err
		}
		return 1, nil
	}
	for _, r := range rs {
		r.setActions(fm.Actions)
		if fm.CookieSet {
			r.Cookie = fm.Cookie
		}
		if fm.ResetCounts {
			r.packets.Store(0)
			r.bytes.Store(0)
		}
		r.modified = now
	}
	t.changed()
	return len(rs), nil
}

// Lookup finds the rule of table 0 that key matches and returns it with
// the wildcard mask of the decision (see LookupTable).
func (t *Table) Lookup(key *Key) (*Rule, Key) {
	var wc Key
	r := t.LookupTable(0, key, &wc)
	return r, wc
}

// LookupTable returns the highest-priority rule of table tid matching key
// (the oldest one among equal priorities), or nil. It ORs into *wc the
// masks of every subtable it consulted: the set of key bits the answer
// depends on. Callers chaining tables (resubmit) pass the same wc to
// every lookup. Allocation-free.
func (t *Table) LookupTable(tid uint8, key *Key, wc *Key) *Rule {
	if int(tid) >= MaxTables {
		return nil
	}
	ot := t.tables[tid]
	if ot == nil {
		return nil
	}
	var best *Rule
	kw := key.Words()
	for _, st := range ot.subs {
		if best != nil && int(best.Priority) > st.maxPri {
			break
		}
		orKey(wc, &st.mask)
		var mk Key
		mw, sw := mk.Words(), st.mask.Words()
		for i := range mw {
			mw[i] = kw[i] & sw[i]
		}
		if list := st.rules[mk]; len(list) > 0 {
			if best == nil || list[0].better(best) {
				best = list[0]
			}
		}
	}
	return best
}

// Expire removes rules whose idle timeout (counted from the last hit) or
// hard timeout (counted from the last change) has passed at now (unix
// ns), and returns them.
func (t *Table) Expire(now int64) []*Rule {
	var out []*Rule
	for r := range t.timed {
		if r.IdleTimeout != 0 && now-r.Used() >= int64(r.IdleTimeout)*1e9 ||
			r.HardTimeout != 0 && now-r.modified >= int64(r.HardTimeout)*1e9 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil
	}
	sortRules(out)
	t.removeAll(out)
	t.changed()
	return out
}
