package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned by Raw.Recv when no frame arrived in time.
var ErrTimeout = errors.New("lab: receive timed out")

// Raw is an AF_PACKET socket bound to one interface inside a namespace,
// for tests that inject frames and check what appears on the wire. It
// does not see frames it sent itself. Not safe for concurrent use.
type Raw struct {
	fd      int
	ifindex int
	name    string
	oob     []byte
}

// htons converts a host-order short to network byte order.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// OpenRaw opens a raw socket on interface ifname inside n.
func (n *NS) OpenRaw(ifname string) (*Raw, error) {
	idx, err := n.Index(ifname)
	if err != nil {
		return nil, err
	}
	r := &Raw{fd: -1, ifindex: idx, name: ifname, oob: make([]byte, 128)}
	err = n.Do(func() error {
		// Protocol 0: nothing is queued until bind picks the interface.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("lab: packet socket: %w", err)
		}
		r.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (*Raw, error) {
		unix.Close(r.fd)
		return nil, fmt.Errorf("lab: raw socket on %s in %s: %s: %w", ifname, n, what, err)
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("PACKET_AUXDATA", err)
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}); err != nil {
		return fail("bind", err)
	}
	return r, nil
}

// Fd returns the socket descriptor.
func (r *Raw) Fd() int { return r.fd }

// Send transmits one whole Ethernet frame (including any VLAN tag).
func (r *Raw) Send(frame []byte) error {
	if len(frame) < 14 {
		return fmt.Errorf("lab: send on %s: frame of %d bytes is shorter than an Ethernet header", r.name, len(frame))
	}
	sa := &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6, Protocol: htons(binary.BigEndian.Uint16(frame[12:14]))}
	copy(sa.Addr[:], frame[:6])
	for {
		err := unix.Sendto(r.fd, frame, 0, sa)
		if err == unix.EAGAIN || err == unix.ENOBUFS {
			if perr := r.wait(unix.POLLOUT, 100*time.Millisecond); perr != nil && !errors.Is(perr, ErrTimeout) {
				return perr
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("lab: send on %s: %w", r.name, err)
		}
		return nil
	}
}

func (r *Raw) wait(events int16, d time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: events}}
	ms := int(d / time.Millisecond)
	if ms <= 0 && d > 0 {
		ms = 1
	}
	for {
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("lab: poll %s: %w", r.name, err)
		}
		if n == 0 {
			return ErrTimeout
		}
		return nil
	}
}

// Recv waits up to timeout for one frame and copies it into buf,
// returning its length. A VLAN tag the kernel moved into packet metadata
// is put back after the MAC addresses, so buf holds the frame as it was
// on the wire. Frames longer than buf are truncated to len(buf) and the
// full length is returned with an error.
func (r *Raw) Recv(buf []byte, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, oobn, _, _, err := unix.Recvmsg(r.fd, buf, r.oob, unix.MSG_TRUNC)
		if err == unix.EAGAIN || err == unix.EINTR {
			left := time.Until(deadline)
			if left <= 0 {
				return 0, ErrTimeout
			}
			if err := r.wait(unix.POLLIN, left); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("lab: receive on %s: %w", r.name, err)
		}
		if aux, ok := parseAux(r.oob[:oobn]); ok && aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			tpid := uint16(0x8100)
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
				tpid = aux.Vlan_tpid
			}
			n = insertTag(buf, n, tpid, aux.Vlan_tci)
		}
		if n > len(buf) {
			return n, fmt.Errorf("lab: receive on %s: frame of %d bytes truncated to %d", r.name, n, len(buf))
		}
		return n, nil
	}
}

// RecvMatch is Recv that discards frames for which match returns false
// (kernel chatter, unrelated traffic) until a matching one arrives or the
// timeout expires.
func (r *Raw) RecvMatch(buf []byte, timeout time.Duration, match func(frame []byte) bool) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := r.Recv(buf, time.Until(deadline))
		if err != nil {
			return n, err
		}
		if match(buf[:n]) {
			return n, nil
		}
	}
}

// Drain discards every frame queued on the socket and returns how many.
func (r *Raw) Drain() int {
	var b [64]byte
	c := 0
	for {
		_, _, err := unix.Recvfrom(r.fd, b[:], unix.MSG_TRUNC)
		if err != nil {
			return c
		}
		c++
	}
}

// Close closes the socket.
func (r *Raw) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

func parseAux(oob []byte) (unix.TpacketAuxdata, bool) {
	var aux unix.TpacketAuxdata
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return aux, false
		}
		if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && l-unix.CmsgLen(0) >= int(unsafe.Sizeof(aux)) {
			aux = *(*unix.TpacketAuxdata)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return aux, true
		}
		sp := unix.CmsgSpace(l - unix.CmsgLen(0))
		if sp > len(oob) {
			break
		}
		oob = oob[sp:]
	}
	return aux, false
}

// insertTag puts a 4-byte 802.1Q tag after the MAC addresses of the n-byte
// frame in buf, keeping what fits, and returns the new length.
func insertTag(buf []byte, n int, tpid, tci uint16) int {
	if n < 12 || len(buf) < 16 {
		return n
	}
	end := min(n, len(buf)-4)
	copy(buf[16:end+4], buf[12:end])
	binary.BigEndian.PutUint16(buf[12:], tpid)
	binary.BigEndian.PutUint16(buf[14:], tci)
	return n + 4
}
