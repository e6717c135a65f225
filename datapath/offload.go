package datapath

import (
	"time"

	"xvs/flow"
)

// The in-kernel tier. Megaflows whose decision depends only on L2 fields
// (the mask NORMAL produces: in_port, MACs, ethertype, VLAN headers, IPv4
// fragment bits) and whose actions are at most one VLAN operation and one
// output to a port the kernel can redirect to, get a second home in a BPF
// map that the ports' XDP program reads: their frames never leave the
// kernel. Userspace stays in charge: the copy is written when the megaflow
// is installed and deleted when it is invalidated (under the same lock),
// and the revalidator folds the kernel's counters and last-hit times back
// into the megaflow, so statistics, rule counters, MAC ageing and idle
// expiry behave exactly as without the tier.

// L2Flow is the key of an offloaded flow.
type L2Flow struct {
	InIfindex uint32
	TCI       uint16 // outer VLAN TCI with flow.VLANCFI; 0 untagged
	EthType   uint16 // host order
	Dst, Src  [6]byte
}

// L2Action is what the kernel does with a flow's frames.
type L2Action struct {
	OutIfindex uint32
	VLANOp     uint8 // 0 none, 1 push, 2 pop, 3 set (xdp.OffloadVLAN*)
	TCI        uint16
	// Bond (bond index + 1) and Bucket replace OutIfindex for output
	// through a bond: the kernel maps the bucket to the member
	// (SetBondMember), so a failover updates only that table.
	Bond   uint16
	Bucket uint8
}

// KernelTier stores offloaded flows (package xdp implements it through an
// adapter; tests use a fake).
type KernelTier interface {
	Put(f L2Flow, a L2Action) error
	Delete(f L2Flow) error
	// Stats returns the counters since Put and the last hit (zero if none).
	Stats(f L2Flow) (packets, bytes uint64, used time.Time, err error)
	// SetBondMember maps a bond's bucket to a member (ifindex 0: none).
	SetBondMember(bond int, bucket uint8, ifindex uint32) error
}

// Ifindexer is implemented by devices the kernel tier can send to and
// receive from (AF_XDP ports whose XDP program runs the tier).
type Ifindexer interface {
	Ifindex() int
	Offloaded() bool
}

// SetKernelTier turns the tier on (k != nil) or off. Turning it off (or
// replacing it) removes every offloaded flow first.
func (dp *Datapath) SetKernelTier(k KernelTier) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.kernel != nil {
		dp.mfc.Each(func(mf *flow.Megaflow) {
			if d, _ := mf.Aux.(*deps); d != nil && d.kflow != nil {
				_ = dp.kernel.Delete(*d.kflow)
				d.kflow = nil
			}
		})
	}
	dp.kernel = k
}

// Offloaded counts the megaflows that have a kernel copy.
func (dp *Datapath) Offloaded() int {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	n := 0
	dp.mfc.Each(func(mf *flow.Megaflow) {
		if d, _ := mf.Aux.(*deps); d != nil && d.kflow != nil {
			n++
		}
	})
	return n
}

var l2Mask = func() flow.Key {
	var m flow.Key
	m.InPort = ^uint32(0)
	m.DlType = 0xffff
	m.VLAN = [2]flow.VLANHdr{{TPID: 0xffff, TCI: 0xffff}, {TPID: 0xffff, TCI: 0xffff}}
	m.DlSrc = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	m.DlDst = m.DlSrc
	m.NwFrag = 0xff
	return m
}()

// offloadable returns the kernel form of a megaflow, if it has one.
func (dp *Datapath) offloadable(mf *flow.Megaflow) (L2Flow, L2Action, bool) {
	var f L2Flow
	var a L2Action
	k, m := &mf.Key, &mf.Mask
	mw, lw := m.Words(), l2Mask.Words()
	for i := range mw {
		if mw[i]&^lw[i] != 0 {
			return f, a, false // the decision looked beyond L2
		}
	}
	if m.DlSrc != l2Mask.DlSrc || m.DlDst != l2Mask.DlDst || m.DlType != 0xffff {
		return f, a, false
	}
	if k.VLAN[1].TCI != 0 || k.DlType == flow.EthTypeIPv6 || k.NwFrag != 0 ||
		k.DlType == flow.EthTypeVLAN || k.DlType == flow.EthTypeQinQ {
		return f, a, false
	}
	if k.VLAN[0].Present() && k.VLAN[0].TPID != flow.EthTypeVLAN {
		return f, a, false // the kernel key has no TPID: 802.1Q only
	}
	in, ok := dp.kernelPort(k.InPort)
	if !ok {
		return f, a, false
	}
	f = L2Flow{InIfindex: uint32(in), TCI: k.VLAN[0].TCI, EthType: k.DlType, Dst: k.DlDst, Src: k.DlSrc}
	acts := mf.Actions
	if len(acts) == 2 {
		switch v := acts[0]; v.Kind {
		case flow.DPPushVLAN:
			if v.TPID != flow.EthTypeVLAN || k.VLAN[0].Present() {
				return f, a, false
			}
			a.VLANOp, a.TCI = 1, v.TCI&^flow.VLANCFI
		case flow.DPPopVLAN:
			if !k.VLAN[0].Present() {
				return f, a, false
			}
			a.VLANOp = 2
		case flow.DPSetVLAN:
			a.VLANOp, a.TCI = 3, v.TCI&^flow.VLANCFI
		default:
			return f, a, false
		}
		acts = acts[1:]
	}
	if len(acts) != 1 {
		return f, a, false
	}
	switch o := acts[0]; o.Kind {
	case flow.DPOutput:
		if o.Port == k.InPort {
			return f, a, false
		}
		out, ok := dp.kernelPort(o.Port)
		if !ok {
			return f, a, false
		}
		a.OutIfindex = uint32(out)
		return f, a, true
	case flow.DPOutputBond:
		if int(o.Port) >= len(dp.bonds) || dp.bonds[o.Port] == nil || o.Port >= maxKernelBonds {
			return f, a, false
		}
		for _, m := range dp.bonds[o.Port].ifaces {
			if _, ok := dp.kernelPort(m.dpPort); !ok || m.dpPort == k.InPort {
				return f, a, false
			}
		}
		a.Bond, a.Bucket = uint16(o.Port)+1, o.Bucket
		return f, a, true
	}
	return f, a, false
}

// maxKernelBonds matches xdp.MaxBonds.
const maxKernelBonds = 64

// syncBondTier writes every bond's bucket -> member table into the kernel
// tier where it changed (caller holds mu).
func (dp *Datapath) syncBondTier() {
	if dp.kernel == nil {
		return
	}
	s := dp.snap.Load()
	for ix, b := range dp.bonds {
		if b == nil || ix >= maxKernelBonds || ix >= len(s.bonds) || s.bonds[ix] == nil {
			continue
		}
		if dp.bondTier == nil {
			dp.bondTier = map[int]*[256]uint32{}
		}
		cur := dp.bondTier[ix]
		if cur == nil {
			cur = &[256]uint32{}
			for i := range cur {
				cur[i] = ^uint32(0) // unknown: write everything once
			}
			dp.bondTier[ix] = cur
		}
		for bucket := 0; bucket < 256; bucket++ {
			var ifx uint32
			if m, ok := s.bonds[ix].member(uint8(bucket)); ok {
				if x, ok := dp.kernelPort(m); ok {
					ifx = uint32(x)
				}
			}
			if cur[bucket] != ifx {
				if err := dp.kernel.SetBondMember(ix, uint8(bucket), ifx); err == nil {
					cur[bucket] = ifx
				}
			}
		}
	}
}

func (dp *Datapath) kernelPort(no uint32) (int, bool) {
	i := dp.ports[no]
	if i == nil {
		return 0, false
	}
	x, ok := i.dev.(Ifindexer)
	if !ok || !x.Offloaded() {
		return 0, false
	}
	return x.Ifindex(), true
}

// offload writes a new megaflow's kernel copy (caller holds mu).
func (dp *Datapath) offload(mf *flow.Megaflow, d *deps) {
	if dp.kernel == nil {
		return
	}
	f, a, ok := dp.offloadable(mf)
	if !ok {
		return
	}
	if a.Bond != 0 {
		dp.syncBondTier()
	}
	if err := dp.kernel.Put(f, a); err != nil {
		dp.Counters.OffloadErrors.Add(1)
		return
	}
	d.kflow = &f
}

// pullKernelStats folds a megaflow's kernel counters into it (caller holds
// mu).
func (dp *Datapath) pullKernelStats(mf *flow.Megaflow, d *deps) {
	if dp.kernel == nil || d.kflow == nil {
		return
	}
	pk, by, used, err := dp.kernel.Stats(*d.kflow)
	if err != nil {
		return
	}
	if dpk := pk - d.kernPkts; pk > d.kernPkts {
		dby := by - d.kernBytes
		mf.Hit(dpk, dby, used.UnixNano())
		d.kernPkts, d.kernBytes = pk, by
		// Per-port counters: the kernel's frames never passed a poller.
		s := dp.snap.Load()
		if in := mf.Key.InPort; int(in) < len(s.ports) && s.ports[in] != nil {
			s.ports[in].stats.kRxPackets.Add(dpk)
			s.ports[in].stats.kRxBytes.Add(dby)
		}
		// Bytes leave with the VLAN operation applied.
		txBy := dby
		switch mf.Actions[0].Kind {
		case flow.DPPushVLAN:
			txBy += 4 * dpk
		case flow.DPPopVLAN:
			txBy -= 4 * dpk
		}
		o := mf.Actions[len(mf.Actions)-1]
		out, ok := o.Port, o.Kind == flow.DPOutput
		if o.Kind == flow.DPOutputBond && int(o.Port) < len(s.bonds) && s.bonds[o.Port] != nil {
			// The member is chosen per frame in the kernel; credit the
			// one the bucket maps to now.
			out, ok = s.bonds[o.Port].member(o.Bucket)
		}
		if ok && int(out) < len(s.ports) && s.ports[out] != nil {
			s.ports[out].stats.kTxPackets.Add(dpk)
			s.ports[out].stats.kTxBytes.Add(txBy)
		}
	}
}
