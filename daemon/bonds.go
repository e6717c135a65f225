package daemon

import (
	"time"

	"xvs/bond"
)

// runBonds polls member carrier, runs every bond's state machine
// (up/down delays, active member, rebalancing) and sends the learning
// packets a failover asks for, a bounded number per tick so that thousands
// of MACs never stall anything. Called every 100 ms from the loop.
func (d *Daemon) runBonds() {
	now := time.Now()
	d.mu.Lock()
	bonds := make([]*bondState, 0, len(d.bonds))
	for _, bs := range d.bonds {
		bonds = append(bonds, bs)
	}
	d.mu.Unlock()
	changed := false
	for _, bs := range bonds {
		for of, name := range bs.members {
			up := linkUp(name)
			if up != bs.carrier[of] {
				bs.carrier[of] = up
				bs.b.SetCarrier(of, up, now)
				d.log.Info("bond member link", "bond", bs.port, "member", name, "up", up)
			}
		}
		ev := bs.b.Run(now)
		for _, l := range ev.Log {
			d.log.Info("bond", "bond", bs.port, "event", l)
		}
		if ev.Changed() {
			changed = true
			d.dp.BondChanged(bs.bridge)
		}
		if ev.SendLearning {
			var ls []bond.Learned
			for _, e := range d.dp.MACs(bs.bridge) {
				if !e.IsBond && e.Port != bs.port {
					ls = append(ls, bond.Learned{MAC: e.MAC, VLAN: e.VLAN})
				}
			}
			bs.ann.Start(ls)
		}
		d.sendLearning(bs)
	}
	if changed {
		d.writeBack(false)
	}
}

var learnBuf [64]byte

func (d *Daemon) sendLearning(bs *bondState) {
	if bs.ann.Pending() == 0 {
		return
	}
	batch := make([]bond.Learned, 256)
	n := bs.ann.Next(batch)
	perMember := map[string][][]byte{}
	for _, l := range batch[:n] {
		m, _, ok := bs.b.Select(l.MAC, l.VLAN)
		if !ok {
			continue
		}
		name := bs.members[m]
		ln := bond.LearningPacket(learnBuf[:], l.MAC, l.VLAN)
		perMember[name] = append(perMember[name], append([]byte(nil), learnBuf[:ln]...))
	}
	for name, frames := range perMember {
		if err := d.dp.Transmit(name, frames...); err != nil {
			d.log.Debug("learning packets", "member", name, "err", err)
		}
	}
}
