// Package bond implements Open vSwitch compatible bonding for the xvs
// datapath: balance-slb and active-backup (balance-tcp is accepted but,
// without LACP, forwards nothing, as in OVS), with OVS 3.1's hash, member
// state machine, rebalancing, admissibility rules, learning packets and
// unixctl texts (bond/show, bond/list, bond/hash, bond/migrate,
// bond/set-active-member, bond/enable-member, bond/disable-member).
//
// # Concepts
//
// A Bond has members, identified by OpenFlow port number (uint32, never
// 0) and interface name. A member is enabled when it may carry traffic;
// carrier changes (SetCarrier) enable or disable it after the configured
// updelay/downdelay, except that a member joining with carrier is enabled
// at once and, when no member is enabled, the member whose updelay
// expires soonest is enabled immediately. One enabled member is the
// active member: all traffic of an active-backup bond, and the only
// member accepting multicast/broadcast on a balance-slb bond (unless
// AllMembersActive). In active-backup, an enabled Primary pre-empts the
// active member; otherwise the active member is kept while it stays
// enabled, and a new one is chosen as OVS does: primary, then the member
// whose MAC was stored as the last active one (Config.ActiveMAC, from
// Port.bond_active_slave), then the first enabled member in
// configuration order.
//
// Balance-slb hashes (source MAC, VLAN, basis) with HashMAC, the same
// function as OVS's generic build, into 256 buckets, each mapped to an
// enabled member.
//
// # Bucket assignment (differs from OVS by design)
//
// OVS assigns a bucket lazily, round-robin over its enabled-member list,
// the first time a packet uses it, and re-assigns a failed member's
// buckets the same way when traffic next hits them. Here assignment is
// eager and deterministic: when the table is reset (creation, mode, basis,
// member set, rebalancing switched on/off) every bucket is dealt
// round-robin over the enabled members in bucket order; when a member is
// disabled, its buckets are dealt round-robin over the survivors at once,
// so the fast path never sees an unassigned or dead bucket and failover
// costs one atomic pointer store. As in OVS, a member that comes back
// gets no buckets back until rebalancing (or bond/migrate) moves load to
// it; the round-robin cursor is the rotating enabled list, as in OVS.
//
// # Rebalancing
//
// Account adds transmitted bytes per bucket. Every RebalanceInterval ms
// (default 10000, 0 = never, 1..999 = 1000) Run folds them into a decayed
// load and runs OVS's bond_rebalance(): most against least loaded member,
// stop when the gap is under 3% of the lighter one or under 100000 bytes,
// move buckets greedily toward the midpoint with a 10% (ideal_delta/10)
// threshold, then halve all loads. See (*Bond).rebalance. Changing a
// non-zero interval to another keeps the phase. No learning packets are
// requested on rebalance (as in OVS).
//
// # Concurrency
//
// The fast path (Select, Account, Admit) is lock-free and allocation-free:
// it reads an immutable table through an atomic.Pointer, and Account does
// one atomic add on a per-bucket counter. Everything else (New,
// Reconfigure, SetCarrier, Run, NextWake, the commands, Show, List,
// Status) is the slow path: methods serialise on one mutex the fast path
// never takes, build a new table and publish it with one atomic store
// (RCU style). A fast-path reader may use the previous table for the rest
// of its batch; after a publish, new lookups see the new mapping.
//
// # Driving a bond
//
// The datapath calls SetCarrier on link changes (or every MiimonInterval
// in miimon mode), and Run whenever NextWake says so or after a command.
// Run returns Events: members enabled/disabled, the active member (write
// its MAC, Status().ActiveMAC, to Port.bond_active_slave), the buckets
// that moved (cached forwarding decisions using them are stale), and
// SendLearning. On SendLearning the datapath feeds the MACs learned on
// its non-bond ports into an Announcer and, a few per tick, sends
// LearningPacket (an RARP like OVS's) on the member Select picks for each.
//
// Times are passed in explicitly (now); the package never reads the clock.
package bond
