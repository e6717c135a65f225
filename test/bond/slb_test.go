package bondtest

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var slbArgs = []string{"bond_mode=balance-slb", "other_config:bond-rebalance-interval=0"}

// TestSLBSpread: with many source MACs both members carry traffic, and the
// frames of one (MAC, VLAN) never split across members.
func TestSLBSpread(t *testing.T) {
	forEachImpl(t, func(t *testing.T, impl string) {
		b := newBondLab(t, impl, slbArgs...)
		macs := vmMACs(64)
		p := b.locate(macs, 5, 1)
		per := p.perMember()
		t.Logf("%s: m1 carried %d MACs, m2 %d", impl, len(per["m1"]), len(per["m2"]))
		if s := p.split(); len(s) > 0 {
			t.Errorf("MACs split across members: %v", s)
		}
		if len(p) != len(macs) {
			t.Errorf("frames of %d of %d MACs seen upstream", len(p), len(macs))
		}
		for _, m := range []string{"m1", "m2"} {
			// Round-robin bucket assignment gives ~32 each; 8 is far
			// from any fair spread yet proves both members are used.
			if len(per[m]) < 8 {
				t.Errorf("member %s carried %d of %d MACs", m, len(per[m]), len(macs))
			}
		}
		// Stable while nothing changes: a second burst lands where the
		// first did.
		p2 := b.locate(macs, 3, 2)
		moved := 0
		for mac, ms := range p2 {
			for m := range ms {
				if p[mac][m] == 0 {
					moved++
				}
			}
		}
		if moved > 0 || len(p2.split()) > 0 {
			t.Errorf("second burst: %d MACs changed member, %d split (rebalancing is off)", moved, len(p2.split()))
		}
		// Interface statistics (refreshed every 5 s by OVS) count
		// what each member transmitted.
		deadline := time.Now().Add(8 * time.Second)
		for {
			tx1, tx2 := b.txStat("m1"), b.txStat("m2")
			if tx1 >= uint64(len(per["m1"])*8) && tx2 >= uint64(len(per["m2"])*8) {
				t.Logf("%s: statistics:tx_packets m1=%d m2=%d", impl, tx1, tx2)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("Interface statistics tx_packets m1=%d m2=%d; want at least 8 per MAC carried (%d, %d)",
					tx1, tx2, len(per["m1"]), len(per["m2"]))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}

// txStat reads Interface statistics:tx_packets of a member (0 if unset).
func (b *bondLab) txStat(m string) uint64 {
	out, err := b.d.Vsctl("--if-exists", "get", "Interface", m, "statistics:tx_packets")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.Trim(strings.TrimSpace(out), `"`), 10, 64)
	return n
}

// TestSLBFailover: a member's link going down (on the node or on the
// switch side) moves its MACs to the survivor at once; the survivor
// announces every VM MAC with a RARP so that the upstream Linux bridge
// learns the new location before any data arrives.
func TestSLBFailover(t *testing.T) {
	for _, side := range []string{"switch", "node"} {
		t.Run(side+"-side", func(t *testing.T) {
			forEachImpl(t, func(t *testing.T, impl string) {
				b := newBondLab(t, impl, slbArgs...)
				macs := vmMACs(32)
				before := b.locate(macs, 3, 1).perMember()
				victim := "m1"
				if len(before["m1"]) == 0 {
					victim = "m2"
				}
				survivor := other(victim)
				if len(before[victim]) == 0 {
					t.Fatalf("no MAC used either member: %v", before)
				}
				fdb := b.fdb()
				for _, mac := range before[victim] {
					if fdb[mac] != swPort[victim] {
						t.Errorf("before failover the switch has %s on %q, want %s", mac, fdb[mac], swPort[victim])
					}
				}

				rarps := startCapture(t, b.sw, swPort[survivor], isRARP)
				ns, ifname := b.sw, swPort[victim]
				if side == "node" {
					ns, ifname = b.node, victim
				}
				setLink(t, ns, ifname, false)
				took := b.waitEnabled(victim, false, 3*time.Second)
				t.Logf("%s: %s reported disabled %v after its link went down on the %s side", impl, victim, took.Round(time.Millisecond), side)
				rarps.waitFor(len(macs), 2*time.Second)
				got := map[string]int{}
				for _, f := range rarps.end() {
					if !checkRARP(t, f) {
						continue
					}
					got[srcMAC(f)]++
				}
				for _, mac := range macs {
					if got[mac.String()] == 0 {
						t.Errorf("no RARP for %s on %s after failover", mac, survivor)
					}
				}
				// The upstream switch learned the moved MACs from the
				// RARPs alone (no data has been sent since).
				fdb = b.fdb()
				for _, mac := range before[victim] {
					if fdb[mac] != swPort[survivor] {
						t.Errorf("after failover the switch has %s on %q, want %s", mac, fdb[mac], swPort[survivor])
					}
				}
				st := b.show()
				if st.enabled[victim] || !st.enabled[survivor] || st.active != survivor {
					t.Errorf("bond/show after failover: want %s disabled, %s enabled and active:\n%s", victim, survivor, st.text)
				}
				after := b.locate(macs, 3, 2, survivor)
				if len(after) != len(macs) {
					t.Errorf("after failover frames of %d of %d MACs reached the survivor %s", len(after), len(macs), survivor)
				}

				// Back up: enabled again, and still no MAC splits.
				setLink(t, ns, ifname, true)
				b.waitEnabled(victim, true, 3*time.Second)
				back := b.locate(macs, 3, 3)
				if s := back.split(); len(s) > 0 {
					t.Errorf("after recovery MACs split across members: %v", s)
				}
				if len(back) != len(macs) {
					t.Errorf("after recovery frames of %d of %d MACs seen upstream", len(back), len(macs))
				}
			})
		})
	}
}

// checkRARP checks an OVS learning packet: broadcast RARP "reverse
// request" (op 3) with sender and target hardware address = source MAC
// and zero protocol addresses.
func checkRARP(t *testing.T, f []byte) bool {
	t.Helper()
	if len(f) < 42 {
		t.Errorf("short RARP frame % x", f)
		return false
	}
	src := net.HardwareAddr(f[6:12])
	a := f[14:]
	ok := net.HardwareAddr(f[:6]).String() == broadcast.String() &&
		binary.BigEndian.Uint16(a[0:]) == 1 && binary.BigEndian.Uint16(a[2:]) == 0x0800 &&
		a[4] == 6 && a[5] == 4 && binary.BigEndian.Uint16(a[6:]) == 3 &&
		net.HardwareAddr(a[8:14]).String() == src.String() && net.HardwareAddr(a[18:24]).String() == src.String() &&
		binary.BigEndian.Uint32(a[14:]) == 0 && binary.BigEndian.Uint32(a[24:]) == 0
	if !ok {
		t.Errorf("malformed learning packet % x", f[:42])
	}
	return ok
}

// TestSLBNoDuplicatesNoLoops: the upstream switch floods a broadcast to
// both members; the VMs get exactly one copy and nothing goes back up. A
// frame from upstream claiming a VM's MAC (a loop) is dropped.
func TestSLBNoDuplicatesNoLoops(t *testing.T) {
	forEachImpl(t, func(t *testing.T, impl string) {
		b := newBondLab(t, impl, slbArgs...)
		macs := vmMACs(8)
		b.locate(macs, 2, 1) // the bridge learns the VM MACs on port vms

		const bcTag, loopTag = 10, 11
		atVMs := startCapture(t, b.vms, "eth0", func(f []byte) bool { _, _, ok := frameTag(f); return ok })
		backUp := map[string]*capture{
			"sm1": startCapture(t, b.sw, "sm1", isTag(bcTag)),
			"sm2": startCapture(t, b.sw, "sm2", isTag(bcTag)),
			"up":  startCapture(t, b.up, "eth0", isTag(bcTag)),
		}
		const n = 5
		for i := uint32(0); i < n; i++ {
			if err := b.upRaw.Send(testFrame(broadcast, upMAC, bcTag, i)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A frame from upstream whose source is a VM's MAC: looped.
		for i := uint32(0); i < n; i++ {
			if err := b.upRaw.Send(testFrame(macs[1], macs[0], loopTag, i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(settle)
		copies := map[uint32]int{}
		looped := 0
		for _, f := range atVMs.end() {
			tag, seq, _ := frameTag(f)
			switch tag {
			case bcTag:
				copies[seq]++
			case loopTag:
				looped++
			}
		}
		for i := uint32(0); i < n; i++ {
			if copies[i] != 1 {
				t.Errorf("broadcast %d reached the VMs %d times, want exactly once", i, copies[i])
			}
		}
		if looped > 0 {
			t.Errorf("%d looped frames (source MAC learned on port vms) arrived from the bond and were forwarded", looped)
		}
		for where, c := range backUp {
			if fs := c.end(); len(fs) > 0 {
				t.Errorf("%d copies of the upstream broadcast came back up (seen on %s)", len(fs), where)
			}
		}
	})
}

// TestActiveBackup: one member carries everything; bond/set-active-member
// moves it (with RARPs), bond/disable-member and bond/enable-member answer
// like OVS and are not sticky while the carrier is up.
func TestActiveBackup(t *testing.T) {
	forEachImpl(t, func(t *testing.T, impl string) {
		b := newBondLab(t, impl, "bond_mode=active-backup")
		st := b.show()
		if st.mode != "active-backup" || st.nActive != 1 {
			t.Fatalf("bond/show: want active-backup with one active member:\n%s", st.text)
		}
		act := st.active
		macs := vmMACs(32)
		per := b.locate(macs, 3, 1).perMember()
		if len(per[act]) != len(macs) || len(per[other(act)]) != 0 {
			t.Errorf("active member %s carried %d MACs, backup %d; want all %d on the active one",
				act, len(per[act]), len(per[other(act)]), len(macs))
		}

		next := other(act)
		rarps := startCapture(t, b.sw, swPort[next], isRARP)
		if out := b.appctl("bond/set-active-member", "bond0", next); out != "done" {
			t.Errorf("bond/set-active-member bond0 %s = %q, want done", next, out)
		}
		if out := b.appctl("bond/set-active-member", "bond0", next); out != "no change" {
			t.Errorf("second bond/set-active-member = %q, want \"no change\"", out)
		}
		b.waitActive(next, time.Second)
		rarps.waitFor(len(macs), 2*time.Second)
		announced := map[string]bool{}
		for _, f := range rarps.end() {
			if checkRARP(t, f) {
				announced[srcMAC(f)] = true
			}
		}
		for _, m := range macs {
			if !announced[m.String()] {
				t.Errorf("no RARP for %s on the new active member %s", m, next)
			}
		}
		per = b.locate(macs, 3, 2).perMember()
		if len(per[next]) != len(macs) || len(per[act]) != 0 {
			t.Errorf("after set-active-member: %s carried %d MACs, %s %d; want all on %s", next, len(per[next]), act, len(per[act]), next)
		}

		if out := b.appctl("bond/enable-member", "bond0", act); out != "enabled" {
			t.Errorf("bond/enable-member = %q, want enabled", out)
		}

		// The active member loses carrier: the backup takes over and
		// announces the VMs; a member without carrier cannot be made
		// active.
		rarps = startCapture(t, b.sw, swPort[act], isRARP)
		setLink(t, b.sw, swPort[next], false)
		b.waitEnabled(next, false, 3*time.Second)
		b.waitActive(act, time.Second)
		rarps.waitFor(len(macs), 2*time.Second)
		if n := len(rarps.end()); n < len(macs) {
			// Real OVS sends its learning packets through the same
			// AF_XDP TX ring as the traffic and, on this loaded 2-core
			// machine, sometimes loses a few; the expectation is checked
			// strictly for xvs and only reported for the reference.
			if b.impl == "ovs" {
				t.Logf("reference: %d RARPs on %s after the active member failed (of %d)", n, act, len(macs))
			} else {
				t.Errorf("%d RARPs on %s after the active member failed, want one per VM MAC (%d)", n, act, len(macs))
			}
		}
		per = b.locate(macs, 2, 3, act).perMember()
		if len(per[act]) != len(macs) {
			t.Errorf("after failover %s carried %d of %d MACs", act, len(per[act]), len(macs))
		}
		out, err := b.d.Appctl("bond/set-active-member", "bond0", next)
		if err == nil || !strings.Contains(out, "cannot make disabled member active") {
			t.Errorf("set-active-member to a member without carrier: %q, %v", out, err)
		}
		if out, err := b.d.Appctl("bond/set-active-member", "bond0", "nope"); err == nil || !strings.Contains(out, "no such member") {
			t.Errorf("set-active-member to an unknown member: %q, %v", out, err)
		}
	})
}

// TestDisableMemberNotSticky: bond/disable-member replies "disabled", but
// while the member's carrier is up OVS re-enables it on its next run, before
// it would choose another active member: disabling the active member of an
// active-backup bond therefore leaves it active and traffic where it was.
func TestDisableMemberNotSticky(t *testing.T) {
	forEachImpl(t, func(t *testing.T, impl string) {
		b := newBondLab(t, impl, "bond_mode=active-backup")
		act := b.show().active
		if out := b.appctl("bond/disable-member", "bond0", act); out != "disabled" {
			t.Errorf("bond/disable-member = %q, want disabled", out)
		}
		b.waitEnabled(act, true, 2*time.Second)
		time.Sleep(200 * time.Millisecond)
		if st := b.show(); st.active != act {
			t.Errorf("after bond/disable-member %s (carrier up) the active member moved to %s; OVS keeps %s active:\n%s",
				act, st.active, act, st.text)
		}
		macs := vmMACs(8)
		per := b.locate(macs, 2, 1).perMember()
		if len(per[act]) != len(macs) {
			t.Errorf("after disable-member of %s: it carried %d of %d MACs (other member %d)", act, len(per[act]), len(macs), len(per[other(act)]))
		}
	})
}

// TestSLBFailoverUnderTraffic cuts the member carrying a continuous stream
// (~5,000 frames/s from one VM MAC) several times, alternating members,
// and requires the stream to reappear on the survivor within a second
// each time (OVS: tens of milliseconds).
func TestSLBFailoverUnderTraffic(t *testing.T) {
	forEachImpl(t, func(t *testing.T, impl string) {
		b := newBondLab(t, impl, slbArgs...)
		const tag = 20
		mac := vmMAC(1)
		var stop atomic.Bool
		done := make(chan error, 1)
		go func() {
			seq := uint32(0)
			for !stop.Load() {
				for i := 0; i < 5; i++ {
					if err := b.vmsRaw.Send(testFrame(upMAC, mac, tag, seq)); err != nil {
						done <- err
						return
					}
					seq++
				}
				time.Sleep(time.Millisecond)
			}
			done <- nil
		}()
		defer func() {
			stop.Store(true)
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()
		caps := map[string]*capture{}
		count := func(m string) int {
			c := caps[m]
			c.mu.Lock()
			defer c.mu.Unlock()
			return len(c.frames)
		}
		for _, m := range []string{"m1", "m2"} {
			caps[m] = startCapture(t, b.sw, swPort[m], isTag(tag))
		}
		for round := 0; round < 6; round++ {
			time.Sleep(300 * time.Millisecond)
			a1, a2 := count("m1"), count("m2")
			time.Sleep(100 * time.Millisecond)
			victim := "m1"
			if count("m2")-a2 > count("m1")-a1 {
				victim = "m2"
			}
			survivor := other(victim)
			before := count(survivor)
			t0 := time.Now()
			setLink(t, b.sw, swPort[victim], false)
			for count(survivor)-before < 100 {
				if time.Since(t0) > 2*time.Second {
					t.Errorf("round %d: %s went down; after %v only %d stream frames on %s; bond/show:\n%s",
						round, victim, time.Since(t0).Round(time.Millisecond), count(survivor)-before, survivor, b.show().text)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s round %d: %s down, stream on %s after %v", impl, round, victim, survivor, time.Since(t0).Round(time.Millisecond))
			setLink(t, b.sw, swPort[victim], true)
			b.waitEnabled(victim, true, 3*time.Second)
			// The capture socket on the victim's port was bound to a
			// link that went down: reopen it.
			caps[victim].end()
			caps[victim] = startCapture(t, b.sw, swPort[victim], isTag(tag))
		}
	})
}
