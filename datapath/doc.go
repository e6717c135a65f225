// Package datapath is xvs's switch: bridges with numbered ports, the
// batch-shaped fast path that moves frames between devices, and the slow
// path that decides what to do with a flow the first time it is seen.
//
// # Model
//
// A Datapath holds bridges and one datapath port space shared by all of
// them. A Bridge (an OpenFlow switch) has ports ("bundles", the Port table
// of OVSDB) made of one interface, or of several for a bond; every
// interface has an OpenFlow port number (ofport) and, unless it is a patch
// port, a Device and a datapath port number. Each bridge has an
// OpenFlow-like rule table (package flow; OVS's default priority=0,NORMAL
// rule when nothing else is configured) and a MAC learning table.
//
// # Fast path
//
// Pollers receive batches of up to BatchSize frames from devices, extract
// flow keys, look them up in the poller's exact-match cache, then in the
// shared megaflow cache (package flow), and execute the cached datapath
// actions: VLAN push/pop/rewrite, header rewrites, and outputs queued into
// per-port transmit batches flushed once per input batch. Steady state
// allocates nothing and takes no lock per packet (a device's transmit lock
// is taken once per batch). Outputs through a bond carry the flow's SLB
// bucket; the member is looked up per packet in the bond's lock-free
// table, so a failover takes effect on the next packet without touching
// the caches.
//
// # Slow path
//
// A miss is translated under the datapath lock: the bridge's rules, NORMAL
// (VLAN admission and tagging exactly as OVS 3.1 does — checked against a
// truth table captured from it, MAC learning, flooding per VLAN, bond
// admissibility), bond output, and patch ports, which continue the
// translation in the peer bridge so the whole path is one megaflow. The
// megaflow mask is the union of every field a decision read. The
// translation records what it depended on: the bridges it crossed (their
// rule or port changes re-translate their flows and drop those whose
// result changed), and every MAC-table entry it read (a learned, moved,
// aged or flushed entry removes exactly the megaflows that read it).
//
// # Kernel tier
//
// With SetKernelTier, megaflows that depend only on L2 fields and do at
// most one VLAN operation and one output are also written to the XDP
// program's flow map (package xdp), so their frames stay in the kernel;
// the copy is deleted in the same critical section that removes the
// megaflow, and Revalidate folds the kernel's counters back.
//
// # Concurrency
//
// Datapath.mu protects bridges, ports, rule and MAC tables, and all writes
// to the megaflow cache. Pollers read an immutable snapshot of the ports
// (swapped atomically on every change) and the megaflow cache without
// locks; Quiesce waits until every running poller has moved past older
// snapshots, after which a removed device may be closed. A Poller is owned
// by one goroutine.
//
// # Buffers
//
// Packets follow flow.Packet's ownership rule: a Device's Recv hands them
// to the poller; every packet goes to exactly one Device.Send (which takes
// ownership) or back to its pool. A frame sent to several ports is copied
// for all but the last output.
package datapath
