// Package lb models OVN-style load balancers for xvs: a VIP:port mapped
// to backend IP:port, chosen per flow by a hash of selected fields, with
// optional ClientIP session affinity and health checking of backends.
// It is self-contained: compiling a LoadBalancer into conntrack/NAT/group
// rules, and the OVSDB Load_Balancer table, live elsewhere.
//
// # Model
//
// A LoadBalancer is one entry of OVN's Load_Balancer.vips plus the row's
// protocol (tcp or udp), selection_fields, options:affinity_timeout and
// health check (Load_Balancer_Health_Check: interval 5 s, timeout 20 s,
// success_count 3, failure_count 3 by default, DefaultHealthCheck). The
// health check's Source is the checker address probes come from (OVN's
// per-subnet ip_port_mappings source). Validate reports the first problem
// as an error wrapping ErrInvalid and naming the load balancer and the
// offending value. ParseVIP and FormatVIP convert the
// "VIP:port=backend:port,backend:port" string OVN uses ("[v6]:port" for
// IPv6); port-less VIPs and sctp are not supported.
//
// # Selection
//
// A Selector picks a backend among the online ones with rendezvous
// (highest-random-weight) hashing: each backend's weight for a flow is
// mix(hash(selected fields) ^ seed(backend IP:port)) and the heaviest
// wins. Weights do not depend on the other backends or on configuration
// order, so when a backend goes offline only the flows it had move (each
// to its second choice) and when it returns exactly those come back. The
// cost is O(online backends) per choice, which suits the tens of
// backends of a service. With no SelectionFields the 5-tuple is hashed;
// selection_fields=ip_src hashes the client address only.
//
// ClientIP affinity (AffinityTimeout > 0) pins a client address to the
// backend first chosen for it. Every Pick or Touch from the client
// restarts the pin's timer, so the timeout counts from the client's LAST
// packet: a client that keeps talking never moves, not even when the
// hash would now choose differently (a backend was added or returned).
// A pin is used while now - last <= AffinityTimeout and its backend is
// online; after longer silence, or once its backend is offline, the next
// Pick chooses by hash and pins again. SetOnline(b, false) also drops b's
// pins at once; Expire sweeps silent pins and must be called now and
// then by the owner to bound memory (expired pins are never used).
//
// # Health checking
//
// A Checker probes every backend in its own goroutine from Run until its
// context is cancelled; see Checker for the interval/timeout/
// success_count/failure_count rules and NetProber for the probes. In
// short: TCP succeeds on a completed connect; UDP, as in OVN, fails only
// on an ICMP error (connection refused) and counts a reply or silence
// until the timeout as success. Backends start online (OVN uses a
// backend whose monitor has no status yet). State changes go to
// CheckerOptions.OnChange; Selector.Observe applies them, so an offline
// backend leaves the VIP's set and returns when online again. Status
// returns a snapshot.
//
// # Concurrency
//
// Selector: Pick, Touch, Choose and Affinity are the fast path, safe
// from any number of goroutines. The backend set is an immutable
// snapshot swapped atomically (RCU style) by SetOnline/SetBackends,
// which serialise on a mutex the fast path never takes. The affinity
// table is split into 64 shards, each a map guarded by an RWMutex; a hit
// takes one shard read lock and updates the pin's timestamp atomically
// (never backwards), a miss takes the shard's write lock and allocates
// the pin. Choose, Touch and an affinity-hit Pick do not allocate
// (asserted with testing.AllocsPerRun). Times are passed in (now); the
// selector never reads the clock.
//
// Checker: one goroutine per backend while Run runs; Status and record
// share one mutex; OnChange runs on the backend's goroutine outside it.
package lb
