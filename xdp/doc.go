// Package xdp serves network interfaces through AF_XDP sockets, with xvs's
// own XDP program, for the userspace datapath.
//
// # Concepts
//
// A UMEM is an mmap'd area of equal frames (2048 or 4096 bytes, aligned
// chunks) registered with the kernel. A Socket is one AF_XDP socket bound
// to one rx queue of an interface, with four rings shared with the kernel:
// fill (frames given to the kernel to receive into), rx (received frames),
// tx (frames to send) and completion (sent frames coming back). A Port is
// an interface: the XDP program that redirects every rx queue to its
// socket through an XSKMAP (bpf_redirect_map keyed by rx_queue_index, with
// XDP_PASS when a queue has no socket), plus one Socket per queue (n_rxq).
//
// Several sockets of one poller share one UMEM (XDP_SHARED_UMEM); each
// has its own fill and completion rings. Forwarding a frame received on
// port A to port B then only moves its descriptor from A's rx ring to B's
// tx ring. Send copies only packets whose Pool is not the socket's UMEM
// (counted in SocketStats.Copies vs ZeroCopySends).
//
// A socket that shares a UMEM inherits the copy/zero-copy mode and the
// need_wakeup setting of the socket that registered it (the kernel refuses
// bind flags on sharing sockets), so ports of one poller must use the same
// mode; a mismatch is refused with ErrModeMismatch (and best-effort then
// settles on a mode that matches).
//
// # Frames and ownership
//
// The UMEM is the flow.Pool of its frames. Each frame is always in exactly
// one state: free (UMEM free list), fill (given to the kernel for rx: in a
// fill ring, in the kernel's buffer cache, or received and waiting in an
// rx ring), user (returned by Recv or Alloc: owned by the caller until it
// is passed to a Send or freed), or tx (in a tx ring or awaiting
// completion). UMEM.Accounting counts frames per state; the sum is always
// the UMEM size. Closing a socket returns its fill and tx frames to the
// free list; frames in user hands stay valid until freed (but their bytes
// only until the UMEM itself is closed).
//
// A received frame lands RxDataOffset (256) bytes into its UMEM frame, so
// packets have far more than flow.Headroom in front of them and VLAN tags
// are pushed in place. Interfaces whose MTU plus an Ethernet and VLAN
// header does not fit in FrameSize-RxDataOffset are refused (ErrMTU).
//
// # Concurrency
//
// A UMEM, and every socket and port using it, belongs to one poller
// goroutine: Recv, Send, Alloc, Free and Close are not safe for concurrent
// use. Stats and ExtStats may be called from any goroutine. Open and Close
// must run in the network namespace of the interface (Open resolves the
// interface and attaches the program in the caller's namespace); once open,
// a socket works from any thread.
//
// # Rings and memory ordering
//
// The ring layer is written on golang.org/x/sys/unix and sync/atomic. The
// kernel publishes a ring's producer index with a release store after it
// wrote the descriptors, and reads our consumer index with an acquire
// load before it reuses slots (net/xdp/xsk_queue.h). User space must pair
// with that: load the producer index with acquire semantics before
// reading descriptors, write descriptors before a release store of the
// producer index, and store the consumer index only after it has finished
// reading the slots it frees. Go's sync/atomic loads and stores are
// sequentially consistent, which is at least acquire/release, and they
// also stop the compiler from caching or reordering the index accesses.
// Plain loads and stores of the indices (as some Go AF_XDP libraries do,
// e.g. github.com/asavie/xdp v0.3.3) give no such guarantee: the compiler
// may hoist or merge them and weakly ordered CPUs (arm64) may reorder
// descriptor accesses around them, which shows up as stale or torn
// descriptors under load. That library also polls inside every call;
// here Recv and Send never block, and an idle poller sleeps in poll(2) on
// Fd so it does not starve the NAPI work that feeds it on the same core.
//
// Each side caches the other side's index and reloads it only when the
// cached value does not promise enough entries, so a batch costs one
// acquire load and one release store per ring.
//
// # Wakeups
//
// Sockets are bound with XDP_USE_NEED_WAKEUP. Send kicks the kernel with
// sendto(2) only when the tx ring carries XDP_RING_NEED_WAKEUP (in copy
// mode it always does: the kernel transmits inside sendto, up to a budget
// raised to MaxBatch with XDP_MAX_TX_SKB_BUDGET); Recv calls recvfrom(2)
// only when it found nothing and the fill ring asks for a wakeup
// (zero-copy drivers).
//
// # Modes
//
// Mode follows Open vSwitch's options:xdp-mode: best-effort tries
// native-with-zerocopy, native and generic in that order; Port.Mode
// reports what was obtained with the same strings OVS uses. veth has no
// zero-copy, so best-effort gives "native" there. The program is attached
// through a BPF link, so Close (or the death of the process) detaches it.
// The kernel releases a closed socket's queue from a work queue, so Open
// retries a bind that fails with EBUSY for up to a second.
//
// The package also builds the small lab programs used by bench/ (an XDP
// counting sink, an XDP_REDIRECT forwarder and a BPF_PROG_RUN traffic
// generator), so that only this package loads BPF.
package xdp
