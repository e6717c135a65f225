package datapath

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"xvs/flow"
)

// Poller runs the fast path for a set of datapath ports: receive a batch,
// extract keys, look them up in its exact-match cache, then the shared
// megaflow cache, upcall the misses, execute the actions and flush the
// output batches. A Poller is owned by one goroutine; nothing in it is
// shared, except the datapath's snapshot and megaflow cache it reads.
//
// Steady state (cache hits) allocates nothing and takes no locks.
type Poller struct {
	dp     *Datapath
	index  int
	count  int
	emc    flow.EMC
	keys   [BatchSize]flow.Key
	lays   [BatchSize]flow.Layout
	hashes [BatchSize]uint32
	mfs    [BatchSize]*flow.Megaflow
	rx     [BatchSize]*flow.Packet
	tx     []txBatch // indexed by datapath port
	dirty  []uint32  // ports with pending tx
	clones clonePool
	// transient holds actions for packets whose megaflow could not be
	// installed (flow limit); they are executed once and dropped.
	transient [BatchSize][]flow.DPAction

	Stats PollerStats

	// epoch counts Run's rounds; Quiesce waits for it to move.
	epoch atomic.Uint64

	// uncached makes every packet take the slow path and installs nothing:
	// the slow linear reference the caches are tested against.
	uncached bool
}

// PollerStats are a poller's counters; read them only from the poller's
// goroutine or after it stopped.
type PollerStats struct {
	Packets, Batches, Idle uint64
}

type txBatch struct {
	n     int
	bytes uint64
	pkts  [BatchSize]*flow.Packet // slots past n are stale, never read
}

// NewPoller returns a poller that serves the datapath ports p with
// p % count == index (count >= 1).
func (dp *Datapath) NewPoller(index, count int) *Poller {
	if count < 1 {
		count = 1
	}
	p := &Poller{dp: dp, index: index, count: count}
	p.emc.InsertInvProb = DefaultEMCInsertInvProb
	return p
}

// DefaultEMCInsertInvProb is OVS's default emc-insert-inv-prob.
const DefaultEMCInsertInvProb = 100

// Process runs one received batch from datapath port inPort through the
// pipeline. It takes ownership of every packet.
func (p *Poller) Process(inPort uint32, pkts []*flow.Packet) {
	s := p.dp.snap.Load()
	p.process(s, inPort, pkts)
	p.flush(s)
}

func (p *Poller) process(s *snapshot, inPort uint32, pkts []*flow.Packet) {
	dp := p.dp
	now := dp.now().UnixNano()
	misses, emcHits, megaHits := 0, 0, 0
	var rxBytes uint64
	keys, lays, hashes, mfs := &p.keys, &p.lays, &p.hashes, &p.mfs
	pkts = pkts[:min(len(pkts), BatchSize)]
	for i, pk := range pkts {
		pk.InPort = inPort
		rxBytes += uint64(pk.Len)
		k := &keys[i]
		if r := flow.Extract(pk.Buf[pk.Off:pk.Off+pk.Len], inPort, k, &lays[i]); r != flow.DropNone {
			// A bad L3/L4 header is counted, and the frame is still
			// switched on what was parsed (as OVS does); without a
			// complete Ethernet header it is dropped.
			dp.Counters.Parse[r].Add(1)
			if lays[i].L3 < 0 {
				pk.Free()
				pkts[i] = nil
				mfs[i] = nil
				continue
			}
		}
		h := flow.HashKey(k)
		hashes[i] = h
		if p.uncached {
			mfs[i] = nil
			misses++
			continue
		}
		mf := p.emc.Lookup(k, h)
		if mf == nil {
			mf = dp.mfc.Lookup(k)
			if mf != nil {
				p.emc.MaybeInsert(k, h, mf)
				megaHits++
			} else {
				misses++
			}
		} else {
			emcHits++
		}
		mfs[i] = mf
	}
	if int(inPort) < len(s.ports) && s.ports[inPort] != nil {
		s.ports[inPort].tapRX(pkts)
		st := &s.ports[inPort].stats
		st.rxPackets.Add(uint64(len(pkts)))
		st.rxBytes.Add(rxBytes)
	}
	if emcHits > 0 {
		dp.Counters.EMCHits.Add(uint64(emcHits))
	}
	if megaHits > 0 {
		dp.Counters.MegaHits.Add(uint64(megaHits))
	}
	if misses > 0 {
		p.upcall(pkts)
	}
	// Execute, accumulating megaflow statistics over runs of the same flow.
	var run *flow.Megaflow
	var runPkts, runBytes uint64
	for i, pk := range pkts {
		if pk == nil {
			continue
		}
		mf := mfs[i]
		if mf == nil {
			acts := p.transient[i]
			last, _ := flow.OutputInfo(acts)
			p.execute(s, pk, &keys[i], &lays[i], acts, last)
			continue
		}
		if mf != run {
			if run != nil {
				run.Hit(runPkts, runBytes, now)
			}
			run, runPkts, runBytes = mf, 0, 0
		}
		runPkts++
		runBytes += uint64(pk.Len)
		if mf.Single {
			p.enqueue(s, mf.Actions[0].Port, pk)
			continue
		}
		p.execute(s, pk, &keys[i], &lays[i], mf.Actions, mf.LastOut)
	}
	if run != nil {
		run.Hit(runPkts, runBytes, now)
	}
	p.Stats.Packets += uint64(len(pkts))
	p.Stats.Batches++
}

// upcall translates the batch's misses under the slow-path lock.
func (p *Poller) upcall(pkts []*flow.Packet) {
	dp := p.dp
	start := time.Now()
	dp.mu.Lock()
	defer func() {
		dp.mu.Unlock()
		dp.Counters.UpcallNanos.Add(uint64(time.Since(start)))
	}()
	now := dp.now().UnixNano()
	for i, pk := range pkts {
		p.transient[i] = nil
		if pk == nil || p.mfs[i] != nil {
			continue
		}
		k := &p.keys[i]
		if p.uncached {
			if x := dp.translate(k, true); !x.drop {
				p.transient[i] = x.actions
			}
			continue
		}
		if mf := dp.mfc.Lookup(k); mf != nil { // installed by an earlier miss
			p.mfs[i] = mf
			p.emc.Insert(k, p.hashes[i], mf)
			continue
		}
		dp.Counters.Upcalls.Add(1)
		x := dp.translate(k, true)
		if x.drop {
			continue // transient nil actions: dropped
		}
		mf := dp.install(x, now)
		if mf == nil {
			dp.Counters.UpcallNoIns.Add(1)
			p.transient[i] = x.actions
			continue
		}
		p.mfs[i] = mf
		p.emc.Insert(k, p.hashes[i], mf)
	}
}

// install publishes a translation as a megaflow and registers its
// dependencies (caller holds mu). nil when the cache is full.
func (dp *Datapath) install(x *xlation, now int64) *flow.Megaflow {
	d := &x.deps
	mf := dp.mfc.Insert(&d.key, &x.mask, x.actions, d, now)
	if mf == nil {
		return nil
	}
	for _, br := range d.bridges {
		br.flows[mf] = struct{}{}
	}
	for _, w := range d.macs {
		w.br.macs.watch(w.k, mf)
	}
	dp.offload(mf, d)
	return mf
}

// execute applies actions to one packet, queueing outputs. Every output
// but the last gets a copy; the packet itself goes to the last output or
// back to its pool.
func (p *Poller) execute(s *snapshot, pk *flow.Packet, k *flow.Key, lay *flow.Layout, acts []flow.DPAction, last int) {
	if last < 0 {
		pk.Free()
		return
	}
	for j := 0; j <= last; j++ {
		a := &acts[j]
		switch a.Kind {
		case flow.DPOutput, flow.DPOutputBond:
			port := a.Port
			if a.Kind == flow.DPOutputBond {
				if int(a.Port) >= len(s.bonds) || s.bonds[a.Port] == nil {
					continue
				}
				b := s.bonds[a.Port]
				m, ok := b.member(a.Bucket)
				if !ok {
					continue // no member enabled
				}
				b.sel.Account(a.Bucket, uint64(pk.Len))
				port = m
			}
			if j == last {
				p.enqueue(s, port, pk)
				return
			}
			if c := p.clones.clone(pk); c != nil {
				p.dp.Counters.Clones.Add(1)
				p.enqueue(s, port, c)
			}
		default:
			applyEdit(pk, k, lay, a)
		}
	}
}

func (p *Poller) enqueue(s *snapshot, port uint32, pk *flow.Packet) {
	if int(port) >= len(s.ports) || s.ports[port] == nil {
		p.dp.Counters.NoPort.Add(1)
		pk.Free()
		return
	}
	if int(port) >= len(p.tx) {
		p.growTx(len(s.ports))
	}
	b := &p.tx[port]
	if b.n == 0 {
		p.dirty = append(p.dirty, port)
	}
	b.pkts[b.n] = pk
	b.n++
	b.bytes += uint64(pk.Len)
	if b.n == BatchSize {
		p.sendBatch(s, port)
	}
}

func (p *Poller) growTx(n int) {
	nt := make([]txBatch, n)
	copy(nt, p.tx)
	p.tx = nt
}

func (p *Poller) sendBatch(s *snapshot, port uint32) {
	b := &p.tx[port]
	if b.n == 0 {
		return
	}
	dpp := s.ports[port]
	n, bytes := b.n, b.bytes
	dpp.tapTX(b.pkts[:n])
	dpp.txMu.Lock()
	sent := dpp.dev.Send(b.pkts[:n])
	dpp.txMu.Unlock()
	b.n, b.bytes = 0, 0
	dpp.stats.txPackets.Add(uint64(sent))
	dpp.stats.txBytes.Add(bytes)
	if sent < n {
		dpp.stats.txDropped.Add(uint64(n - sent))
	}
}

func (p *Poller) flush(s *snapshot) {
	for _, port := range p.dirty {
		if int(port) < len(s.ports) && s.ports[port] != nil {
			p.sendBatch(s, port)
		} else {
			b := &p.tx[port]
			for _, pk := range b.pkts[:b.n] {
				pk.Free()
			}
			b.n, b.bytes = 0, 0
		}
	}
	p.dirty = p.dirty[:0]
}

// PollOnce receives one batch from every port this poller serves and runs
// them through the pipeline. It returns the number of packets handled.
func (p *Poller) PollOnce() int {
	s := p.dp.snap.Load()
	total := 0
	for no := p.index; no < len(s.ports); no += p.count {
		dpp := s.ports[no]
		if dpp == nil || no == 0 {
			continue
		}
		n, _ := dpp.dev.Recv(p.rx[:])
		if n == 0 {
			continue
		}
		p.process(s, uint32(no), p.rx[:n])
		clear(p.rx[:n])
		total += n
	}
	p.flush(s)
	return total
}

// fder is implemented by devices that can be waited on with poll(2).
type fder interface{ Fd() int }

// Run polls until ctx is cancelled. When a round finds nothing it sleeps in
// poll(2) on the devices' descriptors (or briefly, for devices without one),
// so an idle node burns no CPU. With cpu >= 0 the goroutine is locked to
// its OS thread and pinned to that CPU.
func (p *Poller) Run(ctx context.Context, cpu int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		_ = unix.SchedSetaffinity(0, &set)
	}
	p.dp.running.Store(p, struct{}{})
	defer p.dp.running.Delete(p)
	var fds []unix.PollFd
	for ctx.Err() == nil {
		p.epoch.Add(1)
		if p.PollOnce() > 0 {
			continue
		}
		p.Stats.Idle++
		s := p.dp.snap.Load()
		fds = fds[:0]
		plain := false
		for no := p.index; no < len(s.ports); no += p.count {
			if dpp := s.ports[no]; dpp != nil && no != 0 {
				if f, ok := dpp.dev.(fder); ok && f.Fd() >= 0 {
					fds = append(fds, unix.PollFd{Fd: int32(f.Fd()), Events: unix.POLLIN})
				} else {
					plain = true
				}
			}
		}
		switch {
		case plain || len(fds) == 0:
			time.Sleep(200 * time.Microsecond)
		default:
			_, _ = unix.Poll(fds, 10)
		}
	}
}

// Quiesce waits until every running poller has started a new round, so no
// poller still uses a snapshot older than the call (an RCU grace period).
// Call it after removing a device from the datapath and before closing it.
func (dp *Datapath) Quiesce() {
	type seen struct {
		p *Poller
		e uint64
	}
	var ps []seen
	dp.running.Range(func(k, _ any) bool {
		p := k.(*Poller)
		ps = append(ps, seen{p, p.epoch.Load()})
		return true
	})
	deadline := time.Now().Add(2 * time.Second)
	for _, s := range ps {
		for s.p.epoch.Load() == s.e && time.Now().Before(deadline) {
			if _, ok := dp.running.Load(s.p); !ok {
				break
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
}
