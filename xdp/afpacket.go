package xdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"xvs/datapath"
	"xvs/flow"
)

// AFPacketConfig configures NewAFPacket. Zero values pick defaults.
type AFPacketConfig struct {
	// Reason says why the port uses AF_PACKET instead of AF_XDP (for
	// Reason and diagnostics), e.g. the XDP attach error.
	Reason string
	// Pool receives frames; nil gives the device its own HeapPool of
	// DefaultPoolSize frames. Its FrameSize must hold the interface MTU
	// plus 18 bytes.
	Pool *HeapPool
	// BlockSize is the size of one RX ring block (a multiple of the page
	// size, default 64 KiB); a block must hold a maximum-size frame.
	BlockSize int
	// BlockCount is the number of RX ring blocks (default 64).
	BlockCount int
	// RetireTimeout is how long the kernel fills a block before handing
	// it over partially filled (default 2ms, at least 1ms). It bounds
	// the latency added at low packet rates.
	RetireTimeout time.Duration
}

const (
	afpTxBatch       = 64
	afpFrameSize     = 2048 // tp_frame_size; V3 frames are variable, this only fixes tp_frame_nr
	tpacket3HdrLen   = unix.SizeofTpacket3Hdr
	blockStatusOff   = 8  // tpacket_block_desc.hdr.bh1.block_status
	blockNumPktsOff  = 12 // ... num_pkts
	blockFirstPktOff = 16 // ... offset_to_first_pkt
)

// AFPacket is an AF_PACKET socket bound to one interface: a TPACKET_V3
// RX ring and sendmmsg TX. It implements datapath.Device. It puts the
// interface in promiscuous mode while open, and does not see frames
// leaving the interface (its own or the host's: PACKET_IGNORE_OUTGOING).
type AFPacket struct {
	name     string
	reason   string
	fd       int
	ifindex  int
	mtu      int
	maxFrame int
	pool     *HeapPool
	closed   atomic.Bool

	// RX ring state, owned by the poller.
	ring      []byte
	blockSize int
	blocks    int
	blk       int  // current block
	open      bool // the current block is ours and partly consumed
	pktLeft   uint32
	pktOff    int

	// TX scratch, owned by the poller; sized once.
	msgs [afpTxBatch]unix.Mmsghdr
	iovs [afpTxBatch]unix.Iovec
	held [afpTxBatch]*flow.Packet

	stats       counters
	kernelDrops atomic.Uint64
	err         lastErr
}

var _ datapath.Device = (*AFPacket)(nil)

// NewAFPacket opens an AF_PACKET device on interface ifname in the
// network namespace of the calling thread. The interface's current MTU
// sets the frame limit; an MTU whose frames do not fit the pool or a ring
// block fails with ErrFrameTooLarge.
func NewAFPacket(ifname string, cfg AFPacketConfig) (*AFPacket, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("xdp: af_packet %s: %w", ifname, err)
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = 1 << 16
	}
	if cfg.BlockCount == 0 {
		cfg.BlockCount = 64
	}
	if cfg.RetireTimeout == 0 {
		cfg.RetireTimeout = 2 * time.Millisecond
	}
	page := unix.Getpagesize()
	if cfg.BlockSize < page || cfg.BlockSize%page != 0 || cfg.BlockCount < 2 {
		return nil, fmt.Errorf("xdp: af_packet %s: block size %d must be a multiple of %d and count %d at least 2", ifname, cfg.BlockSize, page, cfg.BlockCount)
	}
	tov := max(1, int(cfg.RetireTimeout/time.Millisecond))
	maxFrame := ifi.MTU + ethVLANOverhead
	// A block holds its descriptor, the packet header with the MAC
	// offset padding and the frame.
	if maxFrame+256 > cfg.BlockSize {
		return nil, fmt.Errorf("xdp: af_packet %s: %w: MTU %d does not fit a %d-byte ring block", ifname, ErrFrameTooLarge, ifi.MTU, cfg.BlockSize)
	}
	pool, err := devicePool(cfg.Pool, ifi.MTU)
	if err != nil {
		return nil, fmt.Errorf("xdp: af_packet %s: %w", ifname, err)
	}
	a := &AFPacket{
		name: ifname, reason: cfg.Reason, ifindex: ifi.Index, mtu: ifi.MTU,
		maxFrame: maxFrame, pool: pool, blockSize: cfg.BlockSize, blocks: cfg.BlockCount,
		fd: -1,
	}
	if err := a.setup(cfg, tov); err != nil {
		a.release()
		return nil, fmt.Errorf("xdp: af_packet %s: %w", ifname, err)
	}
	for i := range a.msgs {
		a.msgs[i].Hdr.Iov = &a.iovs[i]
		a.msgs[i].Hdr.SetIovlen(1)
	}
	return a, nil
}

func (a *AFPacket) setup(cfg AFPacketConfig, tov int) error {
	// Protocol 0: nothing is queued before bind picks the interface.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	a.fd = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("PACKET_VERSION: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.BlockCount),
		Frame_size:     afpFrameSize,
		Frame_nr:       uint32(cfg.BlockSize / afpFrameSize * cfg.BlockCount),
		Retire_blk_tov: uint32(tov),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	ring, err := unix.Mmap(fd, 0, cfg.BlockSize*cfg.BlockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap RX ring: %w", err)
	}
	a.ring = ring
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 1<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: be16(unix.ETH_P_ALL), Ifindex: a.ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	// A switch port sees every frame: promiscuous while the socket is
	// open (the kernel drops the membership when it closes).
	mreq := unix.PacketMreq{Ifindex: int32(a.ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fmt.Errorf("promiscuous mode: %w", err)
	}
	return nil
}

// be16 converts a host-order short to network byte order.
func be16(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// Name returns the interface name.
func (a *AFPacket) Name() string { return a.name }

// Reason returns why the port uses AF_PACKET (as given in the config).
func (a *AFPacket) Reason() string { return a.reason }

// Fd returns the socket (readable when the RX ring has a block ready), or
// -1 once the device is closed.
func (a *AFPacket) Fd() int {
	if a.closed.Load() {
		return -1
	}
	return a.fd
}

// Ifindex returns the interface index.
func (a *AFPacket) Ifindex() int { return a.ifindex }

// MTU returns the interface MTU seen at creation.
func (a *AFPacket) MTU() int { return a.mtu }

// MaxFrame is the longest frame Send accepts (MTU + 18).
func (a *AFPacket) MaxFrame() int { return a.maxFrame }

// Pool returns the pool received packets come from.
func (a *AFPacket) Pool() *HeapPool { return a.pool }

func (a *AFPacket) blockStatus(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&a.ring[b*a.blockSize+blockStatusOff]))
}

// Recv copies frames out of the RX ring into pool packets until the ring
// has no ready block, pkts is full or the pool is empty, handing each
// block back to the kernel as soon as it is consumed. It never blocks.
// A VLAN tag the kernel stripped into metadata is re-inserted after the
// MAC addresses; frames the ring truncated, or that no longer fit a
// buffer with their tag, are dropped as rx errors.
func (a *AFPacket) Recv(pkts []*flow.Packet) (int, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	n := 0
	for n < len(pkts) {
		base := a.blk * a.blockSize
		if !a.open {
			if atomic.LoadUint32(a.blockStatus(a.blk))&unix.TP_STATUS_USER == 0 {
				break
			}
			a.open = true
			a.pktLeft = binary.NativeEndian.Uint32(a.ring[base+blockNumPktsOff:])
			a.pktOff = int(binary.NativeEndian.Uint32(a.ring[base+blockFirstPktOff:]))
		}
		if a.pktLeft == 0 {
			a.releaseBlock()
			continue
		}
		p := a.pool.Get()
		if p == nil {
			break
		}
		if a.readFrame(base+a.pktOff, p) {
			pkts[n] = p
			n++
			a.stats.rxPackets.Add(1)
			a.stats.rxBytes.Add(uint64(p.Len))
		} else {
			p.Free()
			a.stats.rxErrors.Add(1)
		}
		next := int(binary.NativeEndian.Uint32(a.ring[base+a.pktOff:]))
		a.pktOff += next
		a.pktLeft--
		if a.pktLeft == 0 || next == 0 {
			a.releaseBlock()
		}
	}
	return n, nil
}

func (a *AFPacket) releaseBlock() {
	atomic.StoreUint32(a.blockStatus(a.blk), unix.TP_STATUS_KERNEL)
	a.open = false
	a.pktLeft = 0
	a.blk++
	if a.blk == a.blocks {
		a.blk = 0
	}
}

// readFrame copies the frame whose tpacket3_hdr is at ring offset h into
// p, re-inserting a stripped VLAN tag. It reports false for a frame that
// must be dropped.
func (a *AFPacket) readFrame(h int, p *flow.Packet) bool {
	hdr := (*unix.Tpacket3Hdr)(unsafe.Pointer(&a.ring[h]))
	snap, wire := int(hdr.Snaplen), int(hdr.Len)
	mac := h + int(hdr.Mac)
	if snap < wire || snap < 14 || mac+snap > (h/a.blockSize+1)*a.blockSize {
		return false
	}
	src := a.ring[mac : mac+snap]
	dst := p.Buf[flow.Headroom:]
	p.Off = flow.Headroom
	if hdr.Status&unix.TP_STATUS_VLAN_VALID != 0 {
		if snap+4 > len(dst) {
			return false
		}
		tpid := uint16(0x8100)
		if hdr.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && hdr.Hv1.Vlan_tpid != 0 {
			tpid = hdr.Hv1.Vlan_tpid
		}
		copy(dst[:12], src[:12])
		binary.BigEndian.PutUint16(dst[12:], tpid)
		binary.BigEndian.PutUint16(dst[14:], uint16(hdr.Hv1.Vlan_tci))
		copy(dst[16:], src[12:])
		p.Len = snap + 4
		return true
	}
	if snap > len(dst) {
		return false
	}
	p.Len = copy(dst, src)
	return true
}

// Send transmits the frames with sendmmsg and frees them. Frames longer
// than MaxFrame (or shorter than an Ethernet header) are dropped as tx
// errors and recorded for LastError; when the socket buffer is full the
// rest of the batch is dropped and counted as tx drops.
func (a *AFPacket) Send(pkts []*flow.Packet) int {
	sent := 0
	for len(pkts) > 0 {
		k := 0
		for len(pkts) > 0 && k < afpTxBatch {
			p := pkts[0]
			pkts = pkts[1:]
			if p.Len > a.maxFrame || p.Len < 14 || a.closed.Load() {
				if a.closed.Load() {
					a.stats.txDropped.Add(1)
				} else {
					a.stats.txErrors.Add(1)
					a.err.set(ErrFrameTooLarge)
				}
				p.Free()
				continue
			}
			a.iovs[k].Base = &p.Buf[p.Off]
			a.iovs[k].SetLen(p.Len)
			a.held[k] = p
			k++
		}
		sent += a.sendBatch(k)
	}
	return sent
}

// sendBatch sends msgs[:k] and frees held[:k].
func (a *AFPacket) sendBatch(k int) int {
	sent := 0
	for i := 0; i < k; {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(a.fd), uintptr(unsafe.Pointer(&a.msgs[i])), uintptr(k-i), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			for j := i; j < i+int(r); j++ {
				a.stats.txPackets.Add(1)
				a.stats.txBytes.Add(uint64(a.msgs[j].Len))
			}
			sent += int(r)
			i += int(r)
		case unix.EINTR:
		case unix.EAGAIN, unix.ENOBUFS:
			a.stats.txDropped.Add(uint64(k - i))
			i = k
		default:
			// The first remaining frame failed: count it and go on.
			a.stats.txErrors.Add(1)
			a.err.set(e)
			i++
		}
	}
	for j := 0; j < k; j++ {
		a.held[j].Free()
		a.held[j] = nil
		a.iovs[j].Base = nil
	}
	return sent
}

// Stats returns the device counters; RxDropped is the kernel's count of
// frames lost because the ring was full.
func (a *AFPacket) Stats() datapath.DeviceStats {
	if !a.closed.Load() {
		// Reading PACKET_STATISTICS resets it, so accumulate.
		if st, err := unix.GetsockoptTpacketStatsV3(a.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			a.kernelDrops.Add(uint64(st.Drops))
		}
	}
	s := a.stats.snapshot()
	s.RxDropped += a.kernelDrops.Load()
	return s
}

// LastError returns the most recent per-frame TX error (ErrFrameTooLarge
// or an errno), or nil.
func (a *AFPacket) LastError() error { return a.err.get() }

// Close unmaps the ring and closes the socket. Packets it handed out may
// still be freed afterwards (they live in the pool, not the ring).
func (a *AFPacket) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	return a.release()
}

func (a *AFPacket) release() error {
	var err error
	if a.ring != nil {
		err = unix.Munmap(a.ring)
		a.ring = nil
	}
	if a.fd >= 0 {
		// a.fd stays as it was: Stats may read it concurrently.
		if cerr := unix.Close(a.fd); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("xdp: af_packet %s close: %w", a.name, err)
	}
	return nil
}
