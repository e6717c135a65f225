package xdp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"xvs/datapath"
	"xvs/flow"
)

// MaxBatch is the batch the socket is tuned for: the fill ring is
// refilled in steps of MaxBatch and one sendto(2) may transmit MaxBatch
// frames in copy mode. Recv and Send accept any batch size.
const MaxBatch = 64

// DefaultRingSize is the size of each of the four rings of a socket.
const DefaultRingSize = 2048

// vlanEthLen is the longest L2 header a frame of MTU-sized payload can
// carry after a VLAN push (Ethernet + one 802.1Q tag).
const vlanEthLen = 18

// ErrMTU is returned by Open when the interface MTU does not fit in an
// AF_XDP frame.
var ErrMTU = errors.New("xdp: MTU too large for AF_XDP frames")

// Bind retries while a just-closed socket still holds the queue.
const (
	bindRetries    = 50
	bindRetryDelay = 20 * time.Millisecond
)

// ErrModeMismatch is returned when a socket would share a UMEM bound in
// the other copy/zero-copy mode (sharing sockets inherit the mode).
var ErrModeMismatch = errors.New("xdp: mode mismatch")

// Config configures a Port. The zero value is a best-effort, one-queue port
// with a private UMEM.
type Config struct {
	// Mode is the XDP mode (options:xdp-mode).
	Mode Mode
	// Queues is the number of rx queues served, one socket each (n_rxq);
	// default 1. Queue i is bound to rx queue i.
	Queues int
	// RingSize is the size of the fill, completion, rx and tx rings (power
	// of two, default 2048).
	RingSize uint32
	// UMEM, when set, is shared by the port's sockets (XDP_SHARED_UMEM);
	// ports of one poller should share one so that forwarding between
	// them moves descriptors instead of copying. When nil the port gets a
	// private UMEM sized for its queues.
	UMEM *UMEM
	// FrameSize of the private UMEM (2048 or 4096; default 2048).
	FrameSize uint32
	// NoNeedWakeup disables XDP_USE_NEED_WAKEUP (then Send kicks after
	// every batch).
	NoNeedWakeup bool
	// Offload, when set, attaches the in-kernel flow tier's program
	// (see offload.go) instead of the plain XSK redirect, and registers
	// the port as a redirect target.
	Offload *Offload
}

// Port is one network interface served through AF_XDP: the XDP redirect
// program, its XSKMAP, and one Socket per rx queue.
//
// A Port implements datapath.Device: Recv polls its sockets round-robin,
// Send transmits on queue 0's socket. A poller that wants to serve queues
// separately uses Sockets instead. Like its sockets, a Port belongs to the
// poller goroutine that owns its UMEM; Stats may be called from anywhere.
type Port struct {
	name    string
	ifindex int
	offload *Offload // set when the kernel tier serves this port
	mode    Mode
	socks   []*Socket
	xsks    *ebpf.Map
	prog    *ebpf.Program
	link    link.Link
	private *UMEM
	rr      int

	closeOnce sync.Once
	closeErr  error
}

var _ datapath.Device = (*Port)(nil)
var _ datapath.Device = (*Socket)(nil)

// Open attaches xvs's XDP program to ifname and binds one AF_XDP socket
// per queue. With ModeBestEffort it tries native-with-zerocopy, native and
// generic in turn; Mode reports what was obtained.
func Open(ifname string, cfg Config) (*Port, error) {
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.RingSize&(cfg.RingSize-1) != 0 {
		return nil, fmt.Errorf("xdp: ring size %d is not a power of two", cfg.RingSize)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("xdp: %s: %w", ifname, err)
	}
	umem := cfg.UMEM
	var private *UMEM
	if umem == nil {
		frames := uint32(cfg.Queues) * cfg.RingSize * 4
		private, err = NewUMEM(UMEMConfig{Frames: frames, FrameSize: cfg.FrameSize})
		if err != nil {
			return nil, err
		}
		umem = private
	}
	if max := umem.MaxFrameLen() - vlanEthLen; ifi.MTU > max {
		if private != nil {
			private.Close()
		}
		return nil, fmt.Errorf("%w: %s has MTU %d, frames of %d bytes allow at most %d",
			ErrMTU, ifname, ifi.MTU, umem.FrameSize(), max)
	}
	p := &Port{name: ifname, ifindex: ifi.Index, private: private}
	modes := []Mode{cfg.Mode}
	if cfg.Mode == ModeBestEffort {
		modes = []Mode{ModeNativeZeroCopy, ModeNative, ModeGeneric}
	}
	var errs []error
	for _, m := range modes {
		err := p.open(m, cfg, umem)
		if err == nil {
			p.mode = m
			if cfg.Offload != nil {
				if err := cfg.Offload.AddDevice(p.ifindex); err != nil {
					p.release()
					return nil, fmt.Errorf("xdp: %s: offload device map: %w", ifname, err)
				}
				p.offload = cfg.Offload
			}
			return p, nil
		}
		errs = append(errs, err)
	}
	p.release()
	return nil, fmt.Errorf("xdp: open %s (%s): %w", ifname, cfg.Mode, errors.Join(errs...))
}

// open tries one concrete mode; on failure it leaves nothing attached.
func (p *Port) open(m Mode, cfg Config, umem *UMEM) (err error) {
	if p.xsks == nil {
		if p.xsks, err = newXSKMap(cfg.Queues); err != nil {
			return err
		}
		if cfg.Offload != nil {
			p.prog, err = cfg.Offload.Program(p.xsks)
		} else {
			p.prog, err = newXSKProgram(p.xsks)
		}
		if err != nil {
			return err
		}
	}
	l, err := attach(p.prog, p.ifindex, m)
	if err != nil {
		return err
	}
	bind := uint16(unix.XDP_COPY)
	if m == ModeNativeZeroCopy {
		bind = unix.XDP_ZEROCOPY
	}
	if !cfg.NoNeedWakeup {
		bind |= unix.XDP_USE_NEED_WAKEUP
	}
	var socks []*Socket
	fail := func(e error) error {
		for _, s := range socks {
			s.Close()
		}
		l.Close()
		return e
	}
	for q := 0; q < cfg.Queues; q++ {
		s, err := newSocket(p.name, p.ifindex, q, umem, cfg.RingSize, bind)
		if err != nil {
			return fail(fmt.Errorf("%s mode: %w", m, err))
		}
		s.zeroCopy = m == ModeNativeZeroCopy
		socks = append(socks, s)
		if err := p.xsks.Put(uint32(q), uint32(s.fd)); err != nil {
			return fail(fmt.Errorf("xdp: XSKMAP[%d]: %w", q, err))
		}
	}
	p.link, p.socks = l, socks
	return nil
}

// Name returns the interface name.
func (p *Port) Name() string { return p.name }

// TxInFlight sums Socket.TxInFlight over the port's sockets.
func (p *Port) TxInFlight() int {
	n := 0
	for _, s := range p.socks {
		n += s.inflight
	}
	return n
}

// Mode returns the mode obtained (never ModeBestEffort); its String is
// what OVS reports as xdp-mode-in-use.
func (p *Port) Mode() Mode { return p.mode }

// Ifindex returns the interface index.
func (p *Port) Ifindex() int { return p.ifindex }

// Offloaded reports whether the in-kernel flow tier serves this port.
func (p *Port) Offloaded() bool { return p.offload != nil }

// Sockets returns the per-queue sockets (index = rx queue).
func (p *Port) Sockets() []*Socket { return p.socks }

// Fd returns queue 0's socket descriptor, for poll(2) (-1 once closed).
func (p *Port) Fd() int {
	if len(p.socks) == 0 {
		return -1
	}
	return p.socks[0].fd
}

// Recv receives from the port's queues round-robin (see Socket.Recv).
func (p *Port) Recv(pkts []*flow.Packet) (int, error) {
	switch len(p.socks) {
	case 0:
		return 0, net.ErrClosed
	case 1:
		return p.socks[0].Recv(pkts)
	}
	total := 0
	for i := 0; i < len(p.socks) && total < len(pkts); i++ {
		s := p.socks[(p.rr+i)%len(p.socks)]
		n, err := s.Recv(pkts[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	p.rr++
	return total, nil
}

// Send transmits on queue 0's socket (see Socket.Send). After Close it
// frees the packets.
func (p *Port) Send(pkts []*flow.Packet) int {
	if len(p.socks) == 0 {
		for _, pk := range pkts {
			pk.Free()
		}
		return 0
	}
	return p.socks[0].Send(pkts)
}

// Stats sums the counters of all queues.
func (p *Port) Stats() datapath.DeviceStats {
	var t datapath.DeviceStats
	for _, s := range p.socks {
		st := s.Stats()
		t.RxPackets += st.RxPackets
		t.RxBytes += st.RxBytes
		t.RxDropped += st.RxDropped
		t.RxErrors += st.RxErrors
		t.TxPackets += st.TxPackets
		t.TxBytes += st.TxBytes
		t.TxDropped += st.TxDropped
		t.TxErrors += st.TxErrors
	}
	return t
}

// Close detaches the XDP program and closes the sockets (and the private
// UMEM). Must not run concurrently with Recv/Send.
func (p *Port) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.release() })
	return p.closeErr
}

func (p *Port) release() error {
	var errs []error
	if p.offload != nil {
		if err := p.offload.RemoveDevice(p.ifindex); err != nil {
			errs = append(errs, err)
		}
		p.offload = nil
	}
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("xdp: detach from %s: %w", p.name, err))
		}
		p.link = nil
	}
	for _, s := range p.socks {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.socks = nil
	if p.prog != nil {
		p.prog.Close()
	}
	if p.xsks != nil {
		p.xsks.Close()
	}
	if p.private != nil {
		if err := p.private.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Socket is one AF_XDP socket bound to one rx queue of an interface.
//
// Ownership: frames handed out by Recv belong to the caller until given to
// a Send (of any socket) or freed through their Pool (the UMEM). Send takes
// every packet it is given; a packet of this socket's UMEM is transmitted
// without copying, any other packet is copied into a free frame and freed.
type Socket struct {
	fd       int
	ifname   string
	ifindex  int
	queue    int
	umem     *UMEM
	slot     int
	zeroCopy bool
	wakeup   bool

	fill, comp, rx, tx *ring

	// inflight counts frames submitted to the tx ring and not yet
	// completed (owned by the poller goroutine).
	inflight int

	mask uint64 // ^(frameSize-1)

	rxPackets, rxBytes            atomic.Uint64
	txPackets, txBytes, txDropped atomic.Uint64
	txErrors, copies, zcSends     atomic.Uint64
	txKicks, rxKicks, kickErrors  atomic.Uint64
	closed                        bool
}

func setsockopt(fd, name int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(name), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, name int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(name), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func newSocket(ifname string, ifindex, queue int, u *UMEM, ringSize uint32, bindFlags uint16) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xdp: socket: %w", err)
	}
	s := &Socket{fd: fd, ifname: ifname, ifindex: ifindex, queue: queue, umem: u,
		mask: ^uint64(u.frameSize - 1), wakeup: bindFlags&unix.XDP_USE_NEED_WAKEUP != 0, slot: -1}
	fail := func(what string, err error) (*Socket, error) {
		s.Close()
		return nil, fmt.Errorf("xdp: %s queue %d: %s: %w", ifname, queue, what, err)
	}
	slot, shareFd, inherited, err := u.attach(s)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.slot = slot
	if shareFd >= 0 {
		const modeFlags = unix.XDP_COPY | unix.XDP_ZEROCOPY
		if inherited&modeFlags != bindFlags&modeFlags {
			return fail("share UMEM", fmt.Errorf("%w: UMEM is bound in the other copy/zero-copy mode", ErrModeMismatch))
		}
		s.wakeup = inherited&unix.XDP_USE_NEED_WAKEUP != 0
	}
	if shareFd < 0 {
		reg := unix.XDPUmemReg{
			Addr: uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
			Len:  uint64(len(u.mem)),
			Size: u.frameSize,
		}
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return fail("register UMEM", err)
		}
	}
	size := int32(ringSize)
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := setsockopt(fd, opt, unsafe.Pointer(&size), 4); err != nil {
			return fail(fmt.Sprintf("ring size option %d", opt), err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return fail("XDP_MMAP_OFFSETS", err)
	}
	const descSize = unsafe.Sizeof(unix.XDPDesc{})
	if s.fill, err = mapRing(fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, ringSize, 8); err != nil {
		return fail("fill ring", err)
	}
	if s.comp, err = mapRing(fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, ringSize, 8); err != nil {
		return fail("completion ring", err)
	}
	if s.rx, err = mapRing(fd, off.Rx, unix.XDP_PGOFF_RX_RING, ringSize, descSize); err != nil {
		return fail("rx ring", err)
	}
	if s.tx, err = mapRing(fd, off.Tx, unix.XDP_PGOFF_TX_RING, ringSize, descSize); err != nil {
		return fail("tx ring", err)
	}
	// Let one sendto(2) in copy mode drain a whole batch (the default
	// budget is 32 descriptors); older kernels lack the option.
	budget := int32(MaxBatch)
	_ = setsockopt(fd, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&budget), 4)

	sa := &unix.SockaddrXDP{Flags: bindFlags, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if shareFd >= 0 {
		// A socket sharing a UMEM may not pass its own flags: it inherits
		// copy/zero-copy and need_wakeup from the socket that registered
		// the UMEM (the kernel answers EINVAL otherwise).
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(shareFd)
	}
	// The kernel releases a closed socket's hold on its queue from a work
	// queue, so a queue closed a moment ago may still be busy.
	for try := 0; ; try++ {
		err := unix.Bind(fd, sa)
		if err == nil {
			break
		}
		if err != unix.EBUSY || try == bindRetries {
			return fail("bind", err)
		}
		time.Sleep(bindRetryDelay)
	}
	if shareFd < 0 {
		u.registered(fd, bindFlags)
	}
	s.refill()
	return s, nil
}

// Name returns the interface name.
func (s *Socket) Name() string { return s.ifname }

// Queue returns the rx queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// Fd returns the socket descriptor, for poll(2) by an idle poller (POLLIN:
// rx ring not empty).
func (s *Socket) Fd() int { return s.fd }

// UMEM returns the UMEM the socket's frames live in.
func (s *Socket) UMEM() *UMEM { return s.umem }

// TxInFlight returns how many frames were sent and are not yet completed.
//
// The kernel does not wake poll(2) when transmissions complete, and in
// copy mode a frame completes only when the receiver of the skb frees it.
// A poller whose sockets have frames in flight should therefore sleep
// only briefly: until it reclaims them (in Recv or Send), those frames
// cannot refill any fill ring, and a receive path starved of frames
// raises no POLLIN either.
func (s *Socket) TxInFlight() int { return s.inflight }

// ZeroCopy reports whether the socket is bound with XDP_ZEROCOPY.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// reclaim moves completed tx frames to the UMEM free list.
func (s *Socket) reclaim() {
	n := s.comp.consAvail(s.comp.size)
	if n == 0 {
		return
	}
	u := s.umem
	idx := s.comp.cachedCons
	for i := uint32(0); i < n; i++ {
		base := *s.comp.addr(idx + i) & s.mask
		fi := base >> u.shift
		if fi < uint64(u.frames) && u.state[fi] == stTx {
			u.state[fi] = stFree
			u.free = append(u.free, base)
		}
	}
	s.comp.consRelease(n)
	s.inflight -= int(n)
}

// refill gives free frames to the kernel through the fill ring, in batches.
func (s *Socket) refill() {
	u := s.umem
	free := s.fill.prodFree(MaxBatch)
	if free < MaxBatch && free < s.fill.size {
		return
	}
	n := min(free, uint32(len(u.free)))
	if n == 0 {
		return
	}
	idx := s.fill.cachedProd
	top := len(u.free)
	slot := uint8(s.slot)
	for i := uint32(0); i < n; i++ {
		base := u.free[top-1-int(i)]
		fi := base >> u.shift
		u.state[fi] = stFill
		u.owner[fi] = slot
		*s.fill.addr(idx + i) = base
	}
	u.free = u.free[:top-int(n)]
	s.fill.prodSubmit(n)
}

// Recv fills pkts[:n] with up to len(pkts) received frames, never
// blocking. Each packet is a UMEM frame: Buf is the whole frame, the data
// starts at Off (RxDataOffset in copy mode). The caller owns the packets
// (see Socket). Before looking at the rx ring Recv reclaims completed tx
// frames and refills the fill ring, so a poller that only receives on a
// socket still keeps its transmissions flowing.
func (s *Socket) Recv(pkts []*flow.Packet) (int, error) {
	if s.closed {
		return 0, net.ErrClosed
	}
	s.reclaim()
	s.refill()
	want := uint32(len(pkts))
	n := min(s.rx.consAvail(want), want)
	if n == 0 {
		if s.wakeup && s.fill.needWakeup() {
			s.rxKicks.Add(1)
			unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		return 0, nil
	}
	u := s.umem
	idx := s.rx.cachedCons
	var bytes uint64
	for i := uint32(0); i < n; i++ {
		d := s.rx.desc(idx + i)
		base := d.Addr & s.mask
		fi := base >> u.shift
		p := &u.pkts[fi]
		p.Off = int(d.Addr - base)
		p.Len = int(d.Len)
		p.InPort, p.Hash = 0, 0
		u.state[fi] = stUser
		pkts[i] = p
		bytes += uint64(d.Len)
	}
	s.rx.consRelease(n)
	s.rxPackets.Add(uint64(n))
	s.rxBytes.Add(bytes)
	return int(n), nil
}

// Send transmits pkts, taking ownership of every one (see Socket). Frames
// that do not fit in the tx ring, do not fit in a frame, or find no free
// frame to be copied into are freed and counted as tx drops. It kicks the
// kernel (sendto) when the tx ring asks for it.
func (s *Socket) Send(pkts []*flow.Packet) int {
	if s.closed {
		for _, p := range pkts {
			p.Free()
		}
		s.txDropped.Add(uint64(len(pkts)))
		return 0
	}
	s.reclaim()
	want := uint32(len(pkts))
	free := s.tx.prodFree(want)
	if free < want {
		s.kick()
		s.reclaim()
		free = s.tx.prodFree(want)
	}
	u := s.umem
	idx := s.tx.cachedProd
	var n, dropped, errs, copies uint32
	var bytes uint64
	slot := uint8(s.slot)
	maxLen := u.frameSize - RxDataOffset
	for _, p := range pkts {
		if n == free {
			p.Free()
			dropped++
			continue
		}
		var addr uint64
		length := uint32(p.Len)
		if u.owns(p) {
			fi := p.Handle >> u.shift
			if u.state[fi] != stUser || p.Off < 0 || p.Len <= 0 || p.Off+p.Len > int(u.frameSize) {
				p.Free()
				errs++
				continue
			}
			addr = p.Handle + uint64(p.Off)
			u.state[fi] = stTx
			u.owner[fi] = slot
		} else {
			nf := len(u.free)
			if nf == 0 || p.Len <= 0 || uint32(p.Len) > maxLen {
				if nf == 0 {
					dropped++
				} else {
					errs++
				}
				p.Free()
				continue
			}
			base := u.free[nf-1]
			u.free = u.free[:nf-1]
			copy(u.mem[base+RxDataOffset:base+uint64(u.frameSize)], p.Data())
			fi := base >> u.shift
			u.state[fi] = stTx
			u.owner[fi] = slot
			addr = base + RxDataOffset
			copies++
			p.Free() // p is not touched after this
		}
		d := s.tx.desc(idx + n)
		d.Addr = addr
		d.Len = length
		d.Options = 0
		bytes += uint64(length)
		n++
	}
	if n > 0 {
		s.tx.prodSubmit(n)
		s.inflight += int(n)
		s.txPackets.Add(uint64(n))
		s.txBytes.Add(bytes)
		s.zcSends.Add(uint64(n - copies))
		if copies > 0 {
			s.copies.Add(uint64(copies))
		}
		if !s.wakeup || s.tx.needWakeup() {
			s.kick()
		}
	}
	if dropped > 0 {
		s.txDropped.Add(uint64(dropped))
	}
	if errs > 0 {
		s.txErrors.Add(uint64(errs))
	}
	return int(n)
}

// kick asks the kernel to process the tx ring. In copy mode the kernel
// transmits synchronously inside sendto, up to its per-call budget, and
// answers EAGAIN when it stopped early (budget, completion ring full);
// kick then reclaims completions and tries again a few times.
func (s *Socket) kick() {
	for try := 0; try < 4; try++ {
		s.txKicks.Add(1)
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
			s.reclaim()
			if s.tx.pending() == 0 {
				return
			}
		default:
			// ENETDOWN, ENXIO...: the link is gone or down; frames stay in
			// the ring until it comes back or the socket closes.
			s.kickErrors.Add(1)
			return
		}
	}
}

// SocketStats are a socket's counters, including the kernel's
// XDP_STATISTICS.
type SocketStats struct {
	datapath.DeviceStats
	Copies, ZeroCopySends uint64 // Send: frames copied in vs. moved by descriptor
	TxKicks, RxKicks      uint64 // sendto / recvfrom wakeups
	KickErrors            uint64 // sendto failures other than EAGAIN/EBUSY/ENOBUFS
	Kernel                unix.XDPStatistics
}

// ExtStats returns all counters of the socket.
func (s *Socket) ExtStats() SocketStats {
	var st SocketStats
	st.RxPackets = s.rxPackets.Load()
	st.RxBytes = s.rxBytes.Load()
	st.TxPackets = s.txPackets.Load()
	st.TxBytes = s.txBytes.Load()
	st.TxDropped = s.txDropped.Load()
	st.TxErrors = s.txErrors.Load() + s.kickErrors.Load()
	st.Copies = s.copies.Load()
	st.ZeroCopySends = s.zcSends.Load()
	st.TxKicks = s.txKicks.Load()
	st.RxKicks = s.rxKicks.Load()
	st.KickErrors = s.kickErrors.Load()
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st.Kernel), unsafe.Sizeof(st.Kernel)); err == nil {
		st.RxDropped = st.Kernel.Rx_dropped + st.Kernel.Rx_ring_full
		st.RxErrors = st.Kernel.Rx_invalid_descs
		st.TxErrors += st.Kernel.Tx_invalid_descs
	}
	return st
}

// Stats returns the device counters. RxDropped is the kernel's rx_dropped
// plus rx_ring_full; invalid descriptors count as errors.
func (s *Socket) Stats() datapath.DeviceStats { return s.ExtStats().DeviceStats }

// Close closes the socket and returns every frame it had given to the
// kernel to the UMEM free list. Frames handed out by Recv stay valid
// until freed. Must not run concurrently with Recv/Send on the UMEM.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if e := unix.Close(s.fd); e != nil {
		err = fmt.Errorf("xdp: close socket of %s queue %d: %w", s.ifname, s.queue, e)
	}
	for _, r := range []*ring{s.fill, s.comp, s.rx, s.tx} {
		r.unmap()
	}
	if s.slot >= 0 {
		s.umem.detach(s.slot, s.fd)
	}
	return err
}
