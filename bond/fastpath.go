package bond

import "time"

// Select returns the member a frame with source MAC srcMAC on VLAN vid
// (the VLAN as it will appear on the bond's wire, 0 for an access bond)
// leaves on, and the SLB bucket to pass to Account. ok is false when the
// frame must be dropped: no member is enabled, or the mode cannot forward
// (balance-tcp without LACP, LACP configured but not negotiated without
// lacp-fallback-ab). In active-backup mode the bucket is always 0 and the
// member is the active one.
//
// Select is lock-free and allocation-free; it may be called concurrently
// with itself and with every other method.
func (b *Bond) Select(srcMAC [6]byte, vid uint16) (member uint32, bucket uint8, ok bool) {
	t := b.snap.Load()
	switch t.fwd {
	case fwdSLB:
		bucket = Bucket(srcMAC, vid, t.basis)
		member = t.bucket[bucket]
		return member, bucket, member != 0
	case fwdAB:
		return t.active, 0, t.active != 0
	}
	return 0, 0, false
}

// Account adds bytes transmitted through bucket to its load counter, the
// input of rebalancing. Call it with the bucket returned by Select, from
// any goroutine (one atomic add; no lock, no allocation). Like OVS, only
// loads of SLB bonds with rebalancing enabled are ever used.
func (b *Bond) Account(bucket uint8, bytes uint64) {
	b.tx[bucket].Add(bytes)
}

// Verdict is the result of Admit.
type Verdict uint8

// Verdicts.
const (
	Drop Verdict = iota
	Accept
)

func (v Verdict) String() string {
	if v == Accept {
		return "accept"
	}
	return "drop"
}

// Reason says why Admit dropped a frame; it indexes drop counters.
type Reason uint8

// Drop reasons. ReasonNone goes with Accept.
const (
	ReasonNone       Reason = iota
	ReasonNotMember         // in_port is not a member of this bond
	ReasonNoLACP            // balance-tcp without LACP, or LACP not negotiated
	ReasonNotActive         // multicast/broadcast on a member that is not the active one
	ReasonBackup            // active-backup: frame on a backup member
	ReasonLooped            // SLB: source MAC learned on another port
	ReasonGARPLocked        // SLB: gratuitous ARP for a MAC whose entry is GARP-locked
	NumReasons
)

var reasonText = [NumReasons]string{
	ReasonNone:       "",
	ReasonNotMember:  "not a bond member, dropping",
	ReasonNoLACP:     "bond requires LACP negotiation, dropping",
	ReasonNotActive:  "bonding refused admissibility, dropping",
	ReasonBackup:     "bonding refused admissibility, dropping",
	ReasonLooped:     "SLB bond thinks this packet looped back, dropping",
	ReasonGARPLocked: "SLB bond thinks this packet looped back, dropping",
}

// String returns the text OVS's ofproto/trace prints for the drop.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonText[r]
	}
	return "unknown"
}

// GARPLockTime is how long a gratuitous ARP learned on a non-bond port
// locks the MAC-table entry (OVS MAC_GRAT_ARP_LOCK_TIME): until it
// expires, gratuitous ARPs for that MAC arriving on a bond are dropped
// and must not move the entry.
const GARPLockTime = 5 * time.Second

// Frame is what Admit needs to know about a received frame; the datapath
// fills it from the parsed headers and one MAC-table lookup of
// (source MAC, VLAN).
type Frame struct {
	// DstMulticast: the destination MAC has the group bit set
	// (multicast or broadcast).
	DstMulticast bool
	// SrcLearnedElsewhere: the source MAC is in the MAC table on a port
	// other than this bond (OVS "learned on a different bundle").
	SrcLearnedElsewhere bool
	// GratuitousARP: ARP to the broadcast address that is a reply, or a
	// request with sender IP == target IP.
	GratuitousARP bool
	// GARPLockedUntil is the GARP lock expiry of the source MAC's entry
	// (the time a GARP for it was learned on a non-bond port plus
	// GARPLockTime); zero when the entry is not locked.
	GARPLockedUntil time.Time
}

// Admit decides whether a frame received on bond member inMember may
// enter the bridge, with OVS's rules (LACP off):
//  1. frames on ports that are not members are dropped;
//  2. balance-tcp (or LACP configured but not negotiated, without
//     lacp-fallback-ab) drops everything;
//  3. multicast/broadcast is accepted only on the active member, unless
//     all-members-active is set (balance-slb only);
//  4. active-backup accepts only frames on the active member;
//  5. balance-slb drops frames whose source MAC was learned on another
//     port (they looped back through the upstream switch), except a
//     gratuitous ARP whose entry is not GARP-locked at now (the host
//     moved; the caller then moves the MAC entry to the bond).
//
// Admit is lock-free and allocation-free.
func (b *Bond) Admit(inMember uint32, f Frame, now time.Time) (Verdict, Reason) {
	t := b.snap.Load()
	isMember := false
	for _, p := range t.members {
		if p == inMember {
			isMember = true
			break
		}
	}
	if !isMember {
		return Drop, ReasonNotMember
	}
	if t.fwd == fwdDrop {
		return Drop, ReasonNoLACP
	}
	if f.DstMulticast && inMember != t.active && !t.allActive {
		return Drop, ReasonNotActive
	}
	if t.fwd == fwdAB {
		if inMember != t.active {
			return Drop, ReasonBackup
		}
		return Accept, ReasonNone
	}
	if f.SrcLearnedElsewhere {
		if !f.GratuitousARP {
			return Drop, ReasonLooped
		}
		if now.Before(f.GARPLockedUntil) {
			return Drop, ReasonGARPLocked
		}
	}
	return Accept, ReasonNone
}

// Member returns the member that carries a bucket Select (or Bucket)
// computed earlier: the datapath caches the bucket of each flow in its
// megaflow actions and resolves the member per packet, so a failover takes
// effect on the next packet without touching the caches. In active-backup
// mode every bucket maps to the active member. Lock-free, allocation-free.
func (b *Bond) Member(bucket uint8) (member uint32, ok bool) {
	t := b.snap.Load()
	switch t.fwd {
	case fwdSLB:
		member = t.bucket[bucket]
		return member, member != 0
	case fwdAB:
		return t.active, t.active != 0
	}
	return 0, false
}

// BucketOf is the SLB bucket of a source MAC on the bond's wire VLAN with
// the bond's current hash basis (0 for modes that do not hash).
func (b *Bond) BucketOf(srcMAC [6]byte, vid uint16) uint8 {
	t := b.snap.Load()
	if t.fwd != fwdSLB {
		return 0
	}
	return Bucket(srcMAC, vid, t.basis)
}
