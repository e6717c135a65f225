package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// floodPayload is the UDP payload of a flood datagram: 18 bytes make a
// 64-byte Ethernet frame over IPv4 (14 + 20 + 8 + 18, plus 4 of FCS on a
// wire).
const floodPayload = 18

// floodBatch is the number of datagrams per sendmmsg/recvmmsg call.
const floodBatch = 64

// floodPort is the UDP port a flood is sent to.
const floodPort = 5202

// mmsghdr is struct mmsghdr (msg_len follows msg_hdr, padded to the
// alignment of a pointer).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// mmsgs is a batch of single-buffer messages; it owns the buffers.
type mmsgs struct {
	hdrs []mmsghdr
	iovs []unix.Iovec
	bufs [][]byte
}

func newMmsgs(n, size int) *mmsgs {
	m := &mmsgs{hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), bufs: make([][]byte, n)}
	for i := range m.hdrs {
		m.bufs[i] = make([]byte, size)
		m.iovs[i].Base = &m.bufs[i][0]
		m.iovs[i].SetLen(size)
		m.hdrs[i].hdr.Iov = &m.iovs[i]
		m.hdrs[i].hdr.SetIovlen(1)
	}
	return m
}

func (m *mmsgs) call(trap uintptr, fd int, flags int) (int, error) {
	n, _, e := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(len(m.hdrs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// udpSocket opens a UDP socket inside ns for addr's family.
func udpSocket(ns *NS, addr netip.Addr) (int, unix.Sockaddr, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: floodPort, Addr: addr.As4()}
	if addr.Is6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: floodPort, Addr: addr.As16()}
	}
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, nil, fmt.Errorf("lab: udp socket in %s: %w", ns, err)
	}
	return fd, sa, nil
}

// UDPFlood sends 64-byte frames (UDP datagrams of 18 bytes, sendmmsg in
// batches of 64) from src to dstIP:5202 in dst for d, as fast as one
// thread can, and counts what a socket in dst receives. The result is in
// the same form as Iperf's UDP result.
func UDPFlood(ctx context.Context, src, dst *NS, dstIP string, d time.Duration) (IperfResult, error) {
	var r IperfResult
	addr, err := netip.ParseAddr(dstIP)
	if err != nil || !InLabRange(addr) {
		return r, fmt.Errorf("%w: flood to %q", ErrAddr, dstIP)
	}
	rfd, sa, err := udpSocket(dst, addr)
	if err != nil {
		return r, err
	}
	defer unix.Close(rfd)
	_ = unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return r, fmt.Errorf("lab: flood receiver: %w", err)
	}
	if err := unix.Bind(rfd, sa); err != nil {
		return r, fmt.Errorf("lab: flood receiver bind %s in %s: %w", dstIP, dst, err)
	}
	sfd, _, err := udpSocket(src, addr)
	if err != nil {
		return r, err
	}
	defer unix.Close(sfd)
	if err := unix.Connect(sfd, sa); err != nil {
		return r, fmt.Errorf("lab: flood sender connect %s from %s: %w", dstIP, src, err)
	}

	var (
		received atomic.Int64
		stop     atomic.Bool
		rdone    = make(chan error, 1)
	)
	go func() {
		m := newMmsgs(floodBatch, 2048)
		for !stop.Load() {
			n, err := m.call(unix.SYS_RECVMMSG, rfd, unix.MSG_WAITFORONE)
			switch {
			case err == nil:
				received.Add(int64(n))
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			default:
				rdone <- fmt.Errorf("lab: flood receiver: %w", err)
				return
			}
		}
		rdone <- nil
	}()

	m := newMmsgs(floodBatch, floodPayload)
	var sent int64
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ; i++ {
		if i%64 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
			break
		}
		n, err := m.call(unix.SYS_SENDMMSG, sfd, 0)
		switch {
		case err == nil:
			sent += int64(n)
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR),
			errors.Is(err, unix.ECONNREFUSED): // an ICMP error from an earlier datagram
		default:
			stop.Store(true)
			<-rdone
			return r, fmt.Errorf("lab: flood sender: %w", err)
		}
	}
	elapsed := time.Since(start)
	// Let frames in flight arrive, then stop the receiver.
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	if err := <-rdone; err != nil {
		return r, err
	}
	got := received.Load()
	r.Seconds = elapsed.Seconds()
	r.Packets = sent
	r.Lost = max(sent-got, 0)
	r.SentPPS = float64(sent) / r.Seconds
	r.ReceivedPPS = float64(min(got, sent)) / r.Seconds
	r.BitsPerSec = r.ReceivedPPS * 64 * 8
	return r, ctx.Err()
}
