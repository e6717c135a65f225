// Package conntrack is xvs's connection tracker: the engine behind Open
// vSwitch's ct() action (ct_state, ct_zone, ct_mark, ct_label, nat). It
// is self-contained; the datapath calls Tracker.Process for each packet a
// ct action sees and recirculates with the returned State.
//
// # Connections and tuples
//
// A connection is keyed by its zone and its original-direction Tuple
// (addresses, ports or ICMP echo id, IP protocol). It is stored in the
// table under two tuples: orig, as its first packet looked, and reply, as
// reply packets look on the wire (orig reversed, then NAT applied). A
// packet matching orig is in the original direction, one matching reply
// is +rpl. Tracked protocols: TCP, UDP, SCTP (ports only, no state),
// ICMP/ICMPv6 echo (the id on both sides; only echo requests open), and
// any other IP protocol by addresses; IPv4 and IPv6.
//
// # ct_state
//
// Process always sets +trk. Packets of a connection are +new until a
// reply has been seen, then +est (Linux semantics: a retransmitted SYN is
// still +new). ICMP/ICMPv6 errors (dest unreachable, time exceeded,
// parameter problem, redirect, source quench, packet too big) whose
// embedded header belongs to a connection are +rel (and +rpl when they
// travel in the reply direction); they do not refresh it. +inv covers
// non-IP frames, IP fragments, truncated transport headers, illegal TCP
// flag combinations (SYN with FIN or RST; no SYN, ACK or RST; FIN, PSH or
// URG without ACK), a SYN+ACK without a connection, ICMP that is neither
// an echo nor a related error, and echo requests/replies in the wrong
// direction. +snat/+dnat report which address NAT rewrote.
//
// Fragments are not reassembled: each IP fragment is +inv and counted in
// Stats.Frags (the OpenFlow pipeline can steer them, e.g. frag=later).
//
// # TCP
//
// Each side of a TCP connection has a peer state (OVS numbering and
// names): CLOSED -> SYN_SENT (its SYN) -> ESTABLISHED (its SYN acked, or
// first seen mid-stream without SYN) -> CLOSING (its FIN) -> FIN_WAIT_2
// (its FIN acked); a RST puts both sides in TIME_WAIT. Sequence numbers
// and windows are not checked. A pure SYN in the original direction after
// both sides closed replaces the connection by a new one. As OVS, any
// valid non-SYN+ACK segment may open a connection (mid-stream pickup).
//
// # Timeouts
//
// Idle timeouts are Open vSwitch userspace defaults (DefaultTimeouts,
// overridable in Config.Timeouts): TCP first packet 30s, opening 30s,
// established 24h, closing (one FIN) 15min, fin-wait (both FINs) 45s,
// closed (FINs acked or RST) 30s; UDP and other protocols first 60s,
// multiple (one direction) 60s, bidirectional 30s; ICMP first 60s, reply
// 30s. Every valid packet restarts the timeout of its current state.
//
// # NAT
//
// A NATSpec given with commit to the first packet of a connection chooses
// a translation (nat(src=...)/nat(dst=...), address and port ranges; the
// first free reply tuple is taken, starting at a hash of the tuple). Any
// later Process call with a non-nil NATSpec (ct(nat)) rewrites packets of
// a translated connection in place: orig packets forward, replies
// reversed, related ICMP errors in their outer addresses and embedded
// header. Checksums are fixed with flow's in-place edits (IPv4 header,
// TCP/UDP pseudo-header and ports); for ICMP errors the embedded IPv4 and
// TCP/UDP checksums are patched and the ICMP checksum recomputed. The
// flow.Key is updated to describe the rewritten packet. ICMP echo ids are
// not translated.
//
// # Limits, expiry, flush
//
// Config.Limit bounds the table: when it is full, commits fail silently
// (the packet is +new but untracked) and Stats.Full counts them. Expire
// removes timed-out connections, examining at most Config.ExpireBatch
// entries per call (it resumes where the last call stopped), and lookups
// never return an expired connection. Flush(zone) and FlushAll empty the
// table; Dump lists it as ovs-appctl dpctl/dump-conntrack.
//
// # Concurrency and allocation
//
// A Tracker is safe for any number of pollers. The table is split into
// shards (Config.Shards), each a map plus a list guarded by an RWMutex:
// lookups take one shard's read lock; inserting or removing a connection
// write-locks the shards of its two tuples, in index order. Each
// connection has a mutex for its mutable state (TCP states, mark, label,
// reply seen); its tuples and NAT are immutable once inserted and its
// deadline is atomic. Counters are atomics. Expire is serialised by its
// own mutex; call it from one housekeeping goroutine.
//
// Process on a packet of an existing connection, NAT included, does not
// allocate; committing a connection allocates it. Process never retains
// the packet, key or layout. A State refers to its connection (for
// SetMark/SetLabel, which OVS allows in a ct(commit) action) but does not
// keep it in the table.
package conntrack
