package xdp

// Non-AF_XDP devices (this file, afpacket.go, pool.go).
//
// Besides AF_XDP sockets the package has two kernel-socket devices, both
// datapath.Device implementations with an Fd for poll(2):
//
//   - Tap: an OVS-style "internal" port. NewTap creates a TAP interface
//     (IFF_TAP|IFF_NO_PI, non-blocking) through which the host stack uses
//     the bridge's address. The interface exists while the Tap is open and
//     disappears on Close.
//   - AFPacket: the fallback when XDP cannot attach to an interface. RX is a
//     TPACKET_V3 ring (frames are copied out of a block, then the block is
//     handed back to the kernel), TX is sendmmsg. VLAN tags that the kernel
//     moved into packet metadata are put back into the frame, so the
//     datapath sees tagged frames exactly as on the wire (as OVS does).
//
// Buffers: both devices receive into a HeapPool (their own, or one shared
// by the poller) at Off = flow.Headroom. A HeapPool is bounded, allocated
// once and lock-free safe for concurrent Get/Free, so a packet may be
// freed by any goroutine. Received packets belong to the
// caller; Send takes ownership of every packet and frees it (to its own
// pool, whichever that is) once the kernel has copied it, so no buffer is
// held across calls.
//
// MTU: a device's frame limit is MTU + 18 (Ethernet header plus one VLAN
// tag). Configuring an MTU whose frames do not fit the pool fails with
// ErrFrameTooLarge; sending a longer frame drops it, counts a TX error and
// records ErrFrameTooLarge for LastError.
//
// Concurrency: Recv, Send and Close are called by one goroutine at a time
// (the poller); Stats, LastError and Name may be called from anywhere.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"xvs/datapath"
	"xvs/flow"
)

// ErrFrameTooLarge reports a frame, or an MTU, beyond a device's frame
// limit (MTU plus Ethernet header plus one VLAN tag) or its buffers.
var ErrFrameTooLarge = errors.New("xdp: frame larger than the device limit")

// ErrClosed is returned by Recv on a closed device.
var ErrClosed = errors.New("xdp: device closed")

const (
	// ethVLANOverhead is what a frame adds to the MTU: Ethernet header
	// and one 802.1Q tag.
	ethVLANOverhead = 14 + 4
	// DefaultMTU is used when a config leaves MTU zero.
	DefaultMTU = 1500
	// DefaultPoolSize is the size of a device's own HeapPool.
	DefaultPoolSize = 512
)

// counters are a device's statistics, updated by the poller and read
// from anywhere.
type counters struct {
	rxPackets, rxBytes, rxDropped, rxErrors atomic.Uint64
	txPackets, txBytes, txDropped, txErrors atomic.Uint64
}

func (c *counters) snapshot() datapath.DeviceStats {
	return datapath.DeviceStats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		RxDropped: c.rxDropped.Load(), RxErrors: c.rxErrors.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		TxDropped: c.txDropped.Load(), TxErrors: c.txErrors.Load(),
	}
}

// lastErr keeps the most recent per-packet error for diagnostics. It is
// written only on error paths.
type lastErr struct {
	mu  sync.Mutex
	err error
}

func (l *lastErr) set(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *lastErr) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// devicePool returns the pool to receive into: the given one, checked
// against the MTU, or a new one sized for it.
func devicePool(p *HeapPool, mtu int) (*HeapPool, error) {
	need := mtu + ethVLANOverhead
	if p == nil {
		return NewHeapPool(DefaultPoolSize, need)
	}
	if p.FrameSize() < need {
		return nil, fmt.Errorf("%w: MTU %d needs %d-byte frames, pool has %d", ErrFrameTooLarge, mtu, need, p.FrameSize())
	}
	return p, nil
}

// TapConfig configures NewTap. The zero value of each optional field is
// a sensible default.
type TapConfig struct {
	// Name is the interface name (at most 15 bytes; required).
	Name string
	// MAC is the hardware address; nil keeps the kernel's random one.
	MAC net.HardwareAddr
	// MTU of the interface; 0 means DefaultMTU.
	MTU int
	// Pool receives frames; nil gives the Tap its own HeapPool of
	// DefaultPoolSize frames. Its FrameSize must hold MTU+18 bytes.
	Pool *HeapPool
}

// Tap is a TAP interface used as an internal port. It implements
// datapath.Device.
type Tap struct {
	name     string
	fd       int
	ifindex  int
	pool     *HeapPool
	maxFrame int
	closed   atomic.Bool

	stats counters
	err   lastErr
}

var _ datapath.Device = (*Tap)(nil)

// ifreqFlags is struct ifreq with ifr_flags.
type ifreqFlags struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// NewTap creates the TAP interface cfg.Name in the network namespace of
// the calling thread, sets its MAC and MTU and brings it up. The interface
// is removed by Close.
func NewTap(cfg TapConfig) (*Tap, error) {
	if cfg.Name == "" || len(cfg.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("xdp: tap name %q: need 1-15 bytes", cfg.Name)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 68 {
		return nil, fmt.Errorf("xdp: tap %s: MTU %d below 68", cfg.Name, cfg.MTU)
	}
	pool, err := devicePool(cfg.Pool, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("xdp: tap %s: %w", cfg.Name, err)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xdp: tap %s: open /dev/net/tun: %w", cfg.Name, err)
	}
	var ifr ifreqFlags
	copy(ifr.name[:], cfg.Name)
	ifr.flags = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("xdp: tap %s: TUNSETIFF: %w", cfg.Name, e)
	}
	t := &Tap{name: cfg.Name, fd: fd, pool: pool, maxFrame: cfg.MTU + ethVLANOverhead}
	if err := t.configure(cfg); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xdp: tap %s: %w", cfg.Name, err)
	}
	return t, nil
}

func (t *Tap) configure(cfg TapConfig) error {
	l, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return err
	}
	t.ifindex = l.Attrs().Index
	if cfg.MAC != nil {
		if err := netlink.LinkSetHardwareAddr(l, cfg.MAC); err != nil {
			return fmt.Errorf("set MAC %s: %w", cfg.MAC, err)
		}
	}
	if err := netlink.LinkSetMTU(l, cfg.MTU); err != nil {
		return fmt.Errorf("set MTU %d: %w", cfg.MTU, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// Name returns the interface name.
func (t *Tap) Name() string { return t.name }

// Fd returns the TAP file descriptor (readable when Recv has frames), or
// -1 once the device is closed.
func (t *Tap) Fd() int {
	if t.closed.Load() {
		return -1
	}
	return t.fd
}

// Ifindex returns the interface index.
func (t *Tap) Ifindex() int { return t.ifindex }

// Pool returns the pool received packets come from.
func (t *Tap) Pool() *HeapPool { return t.pool }

// MaxFrame is the longest frame Send accepts (MTU + 18).
func (t *Tap) MaxFrame() int { return t.maxFrame }

// Recv reads frames the host stack sent into the TAP until it has none
// left, pkts is full or the pool is empty. It never blocks. Frames that
// did not fit a buffer are dropped and counted as rx errors.
func (t *Tap) Recv(pkts []*flow.Packet) (int, error) {
	if t.closed.Load() {
		return 0, ErrClosed
	}
	n := 0
	for n < len(pkts) {
		p := t.pool.Get()
		if p == nil {
			break // backpressure: frames wait in the kernel queue
		}
		buf := p.Buf[flow.Headroom:]
		r, err := unix.Read(t.fd, buf)
		if err != nil {
			p.Free()
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			t.stats.rxErrors.Add(1)
			return n, fmt.Errorf("xdp: tap %s read: %w", t.name, err)
		}
		if r > len(buf) || r < 14 {
			p.Free()
			t.stats.rxErrors.Add(1)
			continue
		}
		p.Off = flow.Headroom
		p.Len = r
		pkts[n] = p
		n++
		t.stats.rxPackets.Add(1)
		t.stats.rxBytes.Add(uint64(r))
	}
	return n, nil
}

// Send writes each frame into the TAP (to the host stack) and frees it.
// Frames longer than MaxFrame are dropped as tx errors (ErrFrameTooLarge);
// frames the kernel refuses (queue full, interface down) are tx drops.
func (t *Tap) Send(pkts []*flow.Packet) int {
	sent := 0
	for _, p := range pkts {
		switch {
		case t.closed.Load():
			t.stats.txDropped.Add(1)
		case p.Len > t.maxFrame:
			t.stats.txErrors.Add(1)
			t.err.set(ErrFrameTooLarge)
		default:
			_, err := unix.Write(t.fd, p.Data())
			switch err {
			case nil:
				sent++
				t.stats.txPackets.Add(1)
				t.stats.txBytes.Add(uint64(p.Len))
			case unix.EAGAIN, unix.EIO, unix.ENOBUFS, unix.ENOMEM:
				t.stats.txDropped.Add(1)
			default:
				t.stats.txErrors.Add(1)
				t.err.set(err)
			}
		}
		p.Free()
	}
	return sent
}

// Stats returns the device counters.
func (t *Tap) Stats() datapath.DeviceStats { return t.stats.snapshot() }

// LastError returns the most recent per-frame TX error (ErrFrameTooLarge
// or an errno), or nil.
func (t *Tap) LastError() error { return t.err.get() }

// Close closes the TAP, which removes the interface. Packets it handed
// out may still be freed afterwards.
func (t *Tap) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	if err := unix.Close(t.fd); err != nil {
		return fmt.Errorf("xdp: tap %s close: %w", t.name, os.NewSyscallError("close", err))
	}
	return nil
}
