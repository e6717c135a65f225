package datapath

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"xvs/bond"
	"xvs/flow"
)

// Config holds datapath-wide settings.
type Config struct {
	// FlowLimit bounds the megaflow cache (OVS other_config:flow-limit).
	FlowLimit int
	// MaxIdle expires idle megaflows (OVS other_config:max-idle, 10 s).
	MaxIdle time.Duration
}

// Datapath is a set of bridges sharing one datapath port space and one
// megaflow cache, so a flow crossing patch ports is one cache entry.
//
// Concurrency: mu is the slow-path lock. It protects bridges, ports, rule
// tables, MAC tables and all writes to the megaflow cache. Pollers read the
// current port snapshot (snap) and the megaflow cache without locks, and
// take mu only for upcalls.
type Datapath struct {
	mu      sync.Mutex
	cfg     Config
	bridges map[string]*Bridge
	ports   map[uint32]*Interface // by datapath port (non-patch interfaces)
	nextDP  uint32
	bonds   []*Bundle // by bond index (nil holes)
	mfc     *flow.MegaflowCache
	snap    atomic.Pointer[snapshot]
	now     func() time.Time
	// kernel is the in-kernel flow tier (nil: off); bondTier caches the
	// bucket tables written to it.
	kernel   KernelTier
	bondTier map[int]*[256]uint32
	// running holds the pollers inside Run (for Quiesce).
	running sync.Map
	// slowClones supplies buffers for frames the slow path transmits.
	slowClones clonePool

	Counters Counters
}

// Counters are datapath-wide drop and cache counters (coverage/show).
type Counters struct {
	Parse         [flow.NumDropReasons]atomic.Uint64
	EMCHits       atomic.Uint64
	MegaHits      atomic.Uint64
	Upcalls       atomic.Uint64
	UpcallNoIns   atomic.Uint64 // upcalls whose megaflow could not be installed (limit)
	UpcallNanos   atomic.Uint64 // time spent translating upcalls
	OffloadErrors atomic.Uint64 // megaflows the kernel tier refused
	NoPort        atomic.Uint64 // frames for a removed port
	Clones        atomic.Uint64
}

// snapshot is the immutable view of ports the fast path uses.
type snapshot struct {
	ports []*dpPort    // indexed by datapath port number
	bonds []*bondPorts // indexed by bond index
}

type dpPort struct {
	no   uint32
	name string
	dev  Device
	// txMu serialises Send: several pollers (and the slow path) may
	// output to one device. It is taken once per batch, never per packet.
	txMu  sync.Mutex
	stats portStats
	tap   atomic.Pointer[tap] // packet capture, nil when none
}

type portStats struct {
	rxPackets, rxBytes, txPackets, txBytes, txDropped atomic.Uint64
	// traffic the kernel tier forwarded for this port (never seen by the
	// pollers), folded in by the revalidator
	kRxPackets, kRxBytes, kTxPackets, kTxBytes atomic.Uint64
}

type bondPorts struct {
	sel     *bond.Bond
	ofports []uint32
	dpPorts []uint32
}

func (b *bondPorts) member(bucket uint8) (uint32, bool) {
	of, ok := b.sel.Member(bucket)
	if !ok {
		return 0, false
	}
	for i, o := range b.ofports {
		if o == of {
			return b.dpPorts[i], true
		}
	}
	return 0, false
}

// New returns an empty datapath.
func New(cfg Config) *Datapath {
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 10 * time.Second
	}
	dp := &Datapath{
		cfg: cfg, bridges: map[string]*Bridge{}, ports: map[uint32]*Interface{},
		nextDP: 1, mfc: flow.NewMegaflowCache(cfg.FlowLimit), now: time.Now,
	}
	dp.snap.Store(&snapshot{})
	return dp
}

// Errors returned by configuration calls.
var (
	ErrExist    = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)

// AddBridge creates a bridge with OVS's default rule (priority=0,NORMAL).
func (dp *Datapath) AddBridge(name string) (*Bridge, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if _, ok := dp.bridges[name]; ok {
		return nil, fmt.Errorf("bridge %s: %w", name, ErrExist)
	}
	br := &Bridge{
		name: name, dp: dp, bundles: map[string]*Bundle{}, ifaces: map[uint32]*Interface{},
		byName: map[string]*Interface{}, table: flow.NewTableAt(dp.now().UnixNano()), floodVLANs: map[uint16]bool{},
		flows: map[*flow.Megaflow]struct{}{}, reserved: map[string]uint32{},
	}
	br.macs = newMACTable(dp.killFlows)
	dp.bridges[name] = br
	return br, nil
}

// Bridge returns a bridge by name.
func (dp *Datapath) Bridge(name string) *Bridge {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return dp.bridges[name]
}

// Bridges lists bridge names, sorted.
func (dp *Datapath) Bridges() []string {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	names := make([]string, 0, len(dp.bridges))
	for n := range dp.bridges {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DelBridge removes a bridge and its ports. Devices are not closed: they
// belong to the caller.
func (dp *Datapath) DelBridge(name string) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[name]
	if br == nil {
		return fmt.Errorf("bridge %s: %w", name, ErrNotFound)
	}
	for _, b := range br.bundles {
		dp.delBundle(b)
	}
	dp.invalidateBridge(br)
	delete(dp.bridges, name)
	dp.publish()
	return nil
}

// SetPort adds a port to a bridge or reconfigures it in place. Interfaces
// that keep their name keep their ofport and datapath port, so traffic on
// them (and on every other port) continues.
func (dp *Datapath) SetPort(bridge string, pc PortConfig) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil {
		return fmt.Errorf("bridge %s: %w", bridge, ErrNotFound)
	}
	if len(pc.Interfaces) == 0 {
		return fmt.Errorf("port %s: no interfaces", pc.Name)
	}
	if len(pc.Interfaces) > 1 && pc.Bond == nil {
		return fmt.Errorf("port %s: %d interfaces but no bond", pc.Name, len(pc.Interfaces))
	}
	for _, ic := range pc.Interfaces {
		if other := dp.findIface(ic.Name); other != nil && (other.bundle.bridge != br || other.bundle.name != pc.Name) {
			return fmt.Errorf("interface %s already on port %s of bridge %s", ic.Name, other.bundle.name, other.bundle.bridge.name)
		}
		if ic.Device == nil && ic.Peer == "" {
			return fmt.Errorf("interface %s: no device and no patch peer", ic.Name)
		}
	}
	mode := VLANTrunk
	if pc.ModeSet {
		mode = pc.Mode
	} else if pc.Tag >= 0 {
		mode = VLANAccess
	}
	if pc.Tag > 4095 {
		return fmt.Errorf("port %s: tag %d out of range 0..4095", pc.Name, pc.Tag)
	}
	var trunks *[64]uint64
	if len(pc.Trunks) > 0 && mode != VLANAccess {
		trunks = new([64]uint64)
		for _, v := range pc.Trunks {
			if v > 4095 {
				return fmt.Errorf("port %s: trunk %d out of range 0..4095", pc.Name, v)
			}
			trunks[v/64] |= 1 << (v % 64)
		}
	}
	tag := uint16(0)
	if pc.Tag >= 0 {
		tag = uint16(pc.Tag)
	}

	b := br.bundles[pc.Name]
	if b == nil {
		b = &Bundle{name: pc.Name, bridge: br}
		br.bundles[pc.Name] = b
	} else if b.mode != mode || b.tag != tag || !sameTrunks(b.trunks, trunks) {
		br.macs.flushPort(b) // OVS flushes a port's MACs when its VLANs change
	}
	b.mode, b.tag, b.trunks, b.prioTags = mode, tag, trunks, pc.PriorityTags

	// Interfaces: keep, add, remove.
	want := map[string]InterfaceConfig{}
	for _, ic := range pc.Interfaces {
		want[ic.Name] = ic
	}
	kept := b.ifaces[:0:0]
	for _, i := range b.ifaces {
		ic, ok := want[i.name]
		if ok && ic.Device == i.dev && ic.Peer == i.peer && (ic.OfPortRequest == 0 || ic.OfPortRequest == i.ofport) {
			kept = append(kept, i)
			delete(want, i.name)
			continue
		}
		dp.delIface(i)
	}
	b.ifaces = kept
	for _, ic := range pc.Interfaces {
		if _, ok := want[ic.Name]; !ok {
			continue
		}
		req := ic.OfPortRequest
		if req == 0 && ic.Name == br.name {
			req = flow.PortLocal // the bridge's own internal port is LOCAL, as in OVS
		}
		if req == 0 && ic.OfPortHint != 0 && br.portFree(ic.OfPortHint, ic.Name) {
			req = ic.OfPortHint
		}
		var of uint32
		if r, ok := br.reserved[ic.Name]; ok && (req == 0 || req == r) {
			of = r
			delete(br.reserved, ic.Name)
		} else {
			var err error
			if of, err = br.nextOfPort(req); err != nil {
				return err
			}
		}
		i := &Interface{name: ic.Name, ofport: of, bundle: b, dev: ic.Device, peer: ic.Peer}
		if ic.Device != nil {
			i.dpPort = dp.nextDP
			dp.nextDP++
			dp.ports[i.dpPort] = i
		}
		br.ifaces[of] = i
		br.byName[i.name] = i
		b.ifaces = append(b.ifaces, i)
	}
	sort.Slice(b.ifaces, func(x, y int) bool { return b.ifaces[x].ofport < b.ifaces[y].ofport })

	// Bond.
	if len(b.ifaces) > 1 {
		if b.bond == nil {
			b.bondIx = dp.allocBond(b)
		}
		b.bond = pc.Bond
	} else if b.bond != nil {
		dp.bonds[b.bondIx] = nil
		b.bond = nil
	}
	dp.resolvePatches()
	dp.invalidateBridge(br)
	dp.publish()
	return nil
}

func sameTrunks(a, b *[64]uint64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (dp *Datapath) allocBond(b *Bundle) uint32 {
	for i, x := range dp.bonds {
		if x == nil {
			dp.bonds[i] = b
			return uint32(i)
		}
	}
	dp.bonds = append(dp.bonds, b)
	return uint32(len(dp.bonds) - 1)
}

func (dp *Datapath) findIface(name string) *Interface {
	for _, br := range dp.bridges {
		if i := br.byName[name]; i != nil {
			return i
		}
	}
	return nil
}

// DelPort removes a port. Its MAC entries are flushed in every bridge, as
// OVS does (a VM that moved behind a patch port must be relearned).
func (dp *Datapath) DelPort(bridge, port string) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil {
		return fmt.Errorf("bridge %s: %w", bridge, ErrNotFound)
	}
	b := br.bundles[port]
	if b == nil {
		return fmt.Errorf("port %s on bridge %s: %w", port, bridge, ErrNotFound)
	}
	dp.delBundle(b)
	dp.resolvePatches()
	dp.invalidateBridge(br)
	dp.publish()
	return nil
}

func (dp *Datapath) delBundle(b *Bundle) {
	for _, i := range b.ifaces {
		dp.delIface(i)
	}
	b.ifaces = nil
	if b.bond != nil {
		dp.bonds[b.bondIx] = nil
	}
	for _, br := range dp.bridges {
		br.macs.flushPort(b)
	}
	delete(b.bridge.bundles, b.name)
}

func (dp *Datapath) delIface(i *Interface) {
	br := i.bundle.bridge
	delete(br.ifaces, i.ofport)
	delete(br.byName, i.name)
	if i.dpPort != 0 {
		delete(dp.ports, i.dpPort)
	}
	if i.peerIf != nil {
		i.peerIf.peerIf = nil
	}
}

// resolvePatches links patch interfaces whose peers name each other.
func (dp *Datapath) resolvePatches() {
	for _, br := range dp.bridges {
		for _, i := range br.ifaces {
			if i.peer == "" {
				continue
			}
			p := dp.findIface(i.peer)
			if p != nil && p.peer == i.name {
				i.peerIf = p
			} else {
				i.peerIf = nil
			}
		}
	}
}

// publish builds a new fast-path snapshot (caller holds mu).
func (dp *Datapath) publish() {
	old := dp.snap.Load()
	s := &snapshot{ports: make([]*dpPort, dp.nextDP)}
	for no, i := range dp.ports {
		var p *dpPort
		if int(no) < len(old.ports) && old.ports[no] != nil && old.ports[no].dev == i.dev {
			p = old.ports[no] // keep counters
		} else {
			p = &dpPort{no: no, name: i.name, dev: i.dev}
		}
		s.ports[no] = p
	}
	s.bonds = make([]*bondPorts, len(dp.bonds))
	for ix, b := range dp.bonds {
		if b == nil {
			continue
		}
		bp := &bondPorts{sel: b.bond}
		for _, i := range b.ifaces {
			bp.ofports = append(bp.ofports, i.ofport)
			bp.dpPorts = append(bp.dpPorts, i.dpPort)
		}
		s.bonds[ix] = bp
	}
	dp.snap.Store(s)
}

// killFlows removes megaflows whose dependencies changed (caller holds mu).
func (dp *Datapath) killFlows(mfs map[*flow.Megaflow]struct{}) {
	for mf := range mfs {
		dp.removeFlow(mf)
	}
}

func (dp *Datapath) removeFlow(mf *flow.Megaflow) {
	if mf.Dead() {
		return
	}
	d, _ := mf.Aux.(*deps)
	if d != nil && d.kflow != nil && dp.kernel != nil {
		// Kernel copy first: once this returns no frame takes the old path.
		dp.pullKernelStats(mf, d)
		_ = dp.kernel.Delete(*d.kflow)
		d.kflow = nil
	}
	dp.mfc.Remove(mf)
	if d != nil {
		pushRuleStats(mf, d)
		for _, br := range d.bridges {
			delete(br.flows, mf)
		}
		for _, w := range d.macs {
			w.br.macs.unwatch(w.k, mf)
		}
	}
}

// invalidateBridge revalidates every megaflow that crossed br: each is
// translated again (without side effects) and removed when its actions or
// mask changed. Caller holds mu.
func (dp *Datapath) invalidateBridge(br *Bridge) {
	for mf := range br.flows {
		d, _ := mf.Aux.(*deps)
		if d == nil {
			dp.removeFlow(mf)
			continue
		}
		x := dp.translate(&d.key, false)
		if x.drop || x.mask != mf.Mask || !flow.EqualDPActions(x.actions, mf.Actions) || !sameMACDeps(x.deps.macs, d.macs) {
			dp.removeFlow(mf)
		}
	}
}

// FlushCache removes every megaflow.
func (dp *Datapath) FlushCache() {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.mfc.Each(dp.removeFlow)
}

// Revalidate is the periodic housekeeping the daemon runs about twice a
// second: it refreshes MAC entries kept alive by megaflow hits, ages the MAC
// tables and megaflows, expires rules, and re-ranks cache subtables.
func (dp *Datapath) Revalidate() {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	now := dp.now().UnixNano()
	dp.mfc.Each(func(mf *flow.Megaflow) {
		d, _ := mf.Aux.(*deps)
		if d == nil {
			return
		}
		dp.pullKernelStats(mf, d)
		pushRuleStats(mf, d)
		_, _, used := mf.Stats()
		if used.IsZero() {
			return
		}
		u := used.UnixNano()
		for _, l := range d.learns {
			l.br.macs.touch(l.k.mac, l.k.vlan, l.port, u)
		}
	})
	for _, br := range dp.bridges {
		br.macs.expire(now)
		if removed := br.table.Expire(now); len(removed) > 0 {
			dp.invalidateBridge(br)
		}
	}
	for _, mf := range dp.idleFlows(now) {
		dp.removeFlow(mf)
	}
	dp.syncBondTier()
	dp.mfc.Rank()
}

func (dp *Datapath) idleFlows(now int64) []*flow.Megaflow {
	var out []*flow.Megaflow
	dp.mfc.Each(func(mf *flow.Megaflow) {
		_, _, used := mf.Stats()
		last := mf.Created().UnixNano()
		if !used.IsZero() {
			last = used.UnixNano()
		}
		if now-last > int64(dp.cfg.MaxIdle) {
			out = append(out, mf)
		}
	})
	return out
}

// ReserveOfPort returns the OpenFlow port an interface has on a bridge, or
// the one it will get when SetPort adds it (so a bond can be configured
// with its members' port numbers before the port exists).
func (dp *Datapath) ReserveOfPort(bridge, iface string, request uint32) (uint32, error) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil {
		return 0, fmt.Errorf("bridge %s: %w", bridge, ErrNotFound)
	}
	if i := br.byName[iface]; i != nil && (request == 0 || request == i.ofport) {
		return i.ofport, nil
	}
	if r, ok := br.reserved[iface]; ok && (request == 0 || request == r) {
		return r, nil
	}
	if request == 0 && iface == br.name {
		request = flow.PortLocal
	}
	of, err := br.nextOfPort(request)
	if err != nil {
		return 0, err
	}
	br.reserved[iface] = of
	return of, nil
}

// MACEntry is one learned address (for bond learning packets and fdb/show).
type MACEntry struct {
	MAC    [6]byte
	VLAN   uint16
	Port   string
	IsBond bool
	Static bool
}

// MACs lists a bridge's MAC table.
func (dp *Datapath) MACs(bridge string) []MACEntry {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil {
		return nil
	}
	out := make([]MACEntry, 0, len(br.macs.entries))
	for _, e := range br.macs.entries {
		out = append(out, MACEntry{MAC: e.key.mac, VLAN: e.key.vlan, Port: e.port.name, IsBond: e.port.isBond(), Static: e.static})
	}
	return out
}

// FreeOfPort returns hint when that OpenFlow port is free on the bridge (or
// already the interface's), else 0.
func (dp *Datapath) FreeOfPort(bridge, iface string, hint uint32) uint32 {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil || hint == 0 || !br.portFree(hint, iface) {
		return 0
	}
	return hint
}

// SetCacheLimits changes the megaflow limit (other_config:flow-limit) and
// idle time (other_config:max-idle); zero keeps a value.
func (dp *Datapath) SetCacheLimits(flowLimit int, maxIdle time.Duration) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if flowLimit > 0 {
		dp.mfc.SetLimit(flowLimit)
	}
	if maxIdle > 0 {
		dp.cfg.MaxIdle = maxIdle
	}
}

// SuspendPort detaches a port's interfaces from the datapath but keeps the
// port, its VLAN configuration and its MAC entries, so that a device being
// reopened (an XDP setting changed, for example) does not cost the MAC
// table. SetPort brings the interfaces back.
func (dp *Datapath) SuspendPort(bridge, port string) error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	br := dp.bridges[bridge]
	if br == nil {
		return fmt.Errorf("bridge %s: %w", bridge, ErrNotFound)
	}
	b := br.bundles[port]
	if b == nil {
		return fmt.Errorf("port %s on bridge %s: %w", port, bridge, ErrNotFound)
	}
	for _, i := range b.ifaces {
		dp.delIface(i)
	}
	b.ifaces = nil
	if b.bond != nil {
		dp.bonds[b.bondIx] = nil
		b.bond = nil
	}
	dp.resolvePatches()
	dp.invalidateBridge(br)
	dp.publish()
	return nil
}

// pushRuleStats credits the OpenFlow rules a megaflow was translated
// through with the packets and bytes it gained since the last push (caller
// holds mu).
func pushRuleStats(mf *flow.Megaflow, d *deps) {
	pk, by, used := mf.Stats()
	if pk <= d.pushedPkts {
		return
	}
	for _, r := range d.rules {
		r.Credit(pk-d.pushedPkts, by-d.pushedBytes, used.UnixNano())
	}
	d.pushedPkts, d.pushedBytes = pk, by
}
