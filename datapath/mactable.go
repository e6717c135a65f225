package datapath

import (
	"container/list"
	"fmt"
	"sort"
	"time"

	"xvs/flow"
)

// MAC learning defaults (Open vSwitch's).
const (
	DefaultMACTableSize = 8192
	DefaultMACAgingTime = 300 * time.Second
	MinMACTableSize     = 10
	MaxMACTableSize     = 1000000
	MinMACAgingTime     = 15 * time.Second
	MaxMACAgingTime     = 3600 * time.Second
	garpLockTime        = 5 * time.Second
)

type macKey struct {
	mac  [6]byte
	vlan uint16
}

type macEntry struct {
	key      macKey
	port     *Bundle
	used     int64 // unix ns of the last time the source was seen
	static   bool
	garpLock int64 // unix ns until which GARPs from bonds cannot move it
	lru      *list.Element
}

// MACTable is a bridge's MAC learning table keyed by (MAC, VLAN). It is
// owned by the slow path (the datapath lock); the fast path never reads it.
//
// Every change of where a (MAC, VLAN) lives — learned, moved, expired,
// evicted, flushed — invalidates exactly the megaflows that depended on it
// (see watch), instead of revalidating the whole cache as OVS does.
type MACTable struct {
	max     int
	aging   time.Duration
	entries map[macKey]*macEntry
	lru     *list.List // front = least recently used
	perPort map[*Bundle]int

	// watchers: megaflows whose translation read this (MAC, VLAN).
	watchers map[macKey]map[*flow.Megaflow]struct{}
	onChange func(mfs map[*flow.Megaflow]struct{})

	Learned, Moved, Expired, Evicted uint64
}

func newMACTable(onChange func(map[*flow.Megaflow]struct{})) *MACTable {
	return &MACTable{
		max: DefaultMACTableSize, aging: DefaultMACAgingTime,
		entries: map[macKey]*macEntry{}, lru: list.New(), perPort: map[*Bundle]int{},
		watchers: map[macKey]map[*flow.Megaflow]struct{}{}, onChange: onChange,
	}
}

// SetLimits sets the size and ageing time, clamped to OVS's ranges.
func (t *MACTable) SetLimits(size int, aging time.Duration) {
	if size <= 0 {
		size = DefaultMACTableSize
	}
	if aging <= 0 {
		aging = DefaultMACAgingTime
	}
	t.max = min(max(size, MinMACTableSize), MaxMACTableSize)
	t.aging = min(max(aging, MinMACAgingTime), MaxMACAgingTime)
	for len(t.entries) > t.max {
		t.evictFairly()
	}
}

// Len is the number of entries.
func (t *MACTable) Len() int { return len(t.entries) }

func (t *MACTable) lookup(mac [6]byte, vlan uint16) *macEntry {
	return t.entries[macKey{mac, vlan}]
}

// watch records that mf's translation depended on (mac, vlan).
func (t *MACTable) watch(k macKey, mf *flow.Megaflow) {
	w := t.watchers[k]
	if w == nil {
		w = map[*flow.Megaflow]struct{}{}
		t.watchers[k] = w
	}
	w[mf] = struct{}{}
}

func (t *MACTable) unwatch(k macKey, mf *flow.Megaflow) {
	if w := t.watchers[k]; w != nil {
		delete(w, mf)
		if len(w) == 0 {
			delete(t.watchers, k)
		}
	}
}

func (t *MACTable) changed(k macKey) {
	if w := t.watchers[k]; w != nil {
		delete(t.watchers, k)
		t.onChange(w)
	}
}

// learn records that mac on vlan was seen on port. It reports whether the
// table changed (new entry or move). garp marks a gratuitous ARP: from a
// non-bond port it locks the entry for 5 s against GARPs arriving on bonds.
func (t *MACTable) learn(mac [6]byte, vlan uint16, port *Bundle, now int64, garp bool) bool {
	if mac[0]&1 != 0 {
		return false // never learn multicast sources
	}
	k := macKey{mac, vlan}
	e := t.entries[k]
	if e != nil {
		if e.static {
			return false
		}
		if e.port == port {
			e.used = now
			t.lru.MoveToBack(e.lru)
			if garp && !port.isBond() {
				e.garpLock = now + int64(garpLockTime)
			}
			return false
		}
		if garp && port.isBond() && now < e.garpLock {
			return false // locked: our own GARP reflected by the upstream switch
		}
		t.perPort[e.port]--
		e.port = port
		t.perPort[port]++
		e.used = now
		t.lru.MoveToBack(e.lru)
		if garp && !port.isBond() {
			e.garpLock = now + int64(garpLockTime)
		}
		t.Moved++
		t.changed(k)
		return true
	}
	for len(t.entries) >= t.max {
		t.evictFairly()
	}
	e = &macEntry{key: k, port: port, used: now}
	if garp && !port.isBond() {
		e.garpLock = now + int64(garpLockTime)
	}
	e.lru = t.lru.PushBack(e)
	t.entries[k] = e
	t.perPort[port]++
	t.Learned++
	t.changed(k)
	return true
}

// touch refreshes an entry that megaflow hits kept alive.
func (t *MACTable) touch(mac [6]byte, vlan uint16, port *Bundle, now int64) {
	if e := t.entries[macKey{mac, vlan}]; e != nil && e.port == port && e.used < now {
		e.used = now
		t.lru.MoveToBack(e.lru)
	}
}

func (t *MACTable) remove(e *macEntry) {
	delete(t.entries, e.key)
	t.lru.Remove(e.lru)
	t.perPort[e.port]--
	if t.perPort[e.port] <= 0 {
		delete(t.perPort, e.port)
	}
	t.changed(e.key)
}

// evictFairly removes the least recently used entry of the port that owns
// the most entries (OVS's defence against MAC flooding from one port).
func (t *MACTable) evictFairly() {
	var worst *Bundle
	n := -1
	for p, c := range t.perPort {
		if c > n || (c == n && p.name < worst.name) {
			worst, n = p, c
		}
	}
	for el := t.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*macEntry)
		if e.port == worst && !e.static {
			t.remove(e)
			t.Evicted++
			return
		}
	}
	// Only static entries left for that port: evict the global LRU.
	for el := t.lru.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*macEntry); !e.static {
			t.remove(e)
			t.Evicted++
			return
		}
	}
}

// expire removes entries idle longer than the ageing time.
func (t *MACTable) expire(now int64) {
	for el := t.lru.Front(); el != nil; {
		e := el.Value.(*macEntry)
		next := el.Next()
		if !e.static && now-e.used > int64(t.aging) {
			t.remove(e)
			t.Expired++
		} else if !e.static {
			break // LRU order: the rest is younger
		}
		el = next
	}
}

// flushPort removes every entry learned on port (port deleted or its VLAN
// configuration changed).
func (t *MACTable) flushPort(port *Bundle) {
	for el := t.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*macEntry); e.port == port {
			t.remove(e)
		}
		el = next
	}
}

// flush removes every dynamic entry.
func (t *MACTable) flush() {
	for el := t.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*macEntry); !e.static {
			t.remove(e)
		}
		el = next
	}
}

// addStatic installs a static entry (fdb/add).
func (t *MACTable) addStatic(mac [6]byte, vlan uint16, port *Bundle) {
	k := macKey{mac, vlan}
	if e := t.entries[k]; e != nil {
		t.remove(e)
	}
	for len(t.entries) >= t.max {
		t.evictFairly()
	}
	e := &macEntry{key: k, port: port, static: true}
	e.lru = t.lru.PushBack(e)
	t.entries[k] = e
	t.perPort[port]++
	t.changed(k)
}

// delStatic removes an entry (fdb/del); it reports whether one existed.
func (t *MACTable) del(mac [6]byte, vlan uint16) bool {
	if e := t.entries[macKey{mac, vlan}]; e != nil {
		t.remove(e)
		return true
	}
	return false
}

// show formats the table like ovs-appctl fdb/show.
func (t *MACTable) show(now int64, ofport func(*Bundle) string) string {
	type row struct {
		port string
		vlan uint16
		mac  [6]byte
		age  string
	}
	rows := make([]row, 0, len(t.entries))
	for _, e := range t.entries {
		age := "static"
		if !e.static {
			age = fmt.Sprint((now - e.used) / int64(time.Second))
		}
		rows = append(rows, row{ofport(e.port), e.key.vlan, e.key.mac, age})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].port != rows[j].port {
			return rows[i].port < rows[j].port
		}
		if rows[i].vlan != rows[j].vlan {
			return rows[i].vlan < rows[j].vlan
		}
		return string(rows[i].mac[:]) < string(rows[j].mac[:])
	})
	s := " port  VLAN  MAC                Age\n"
	for _, r := range rows {
		s += fmt.Sprintf("%5s  %4d  %s  %3s\n", r.port, r.vlan, macStr(r.mac), r.age)
	}
	return s
}

func macStr(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
