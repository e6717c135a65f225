package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrAddr reports an address outside the lab ranges.
var ErrAddr = errors.New("lab: address outside 198.18.0.0/15 and 2001:db8::/32")

var (
	labV4 = netip.MustParsePrefix("198.18.0.0/15")
	labV6 = netip.MustParsePrefix("2001:db8::/32")
)

// InLabRange reports whether addr is in 198.18.0.0/15 or 2001:db8::/32.
func InLabRange(addr netip.Addr) bool {
	addr = addr.Unmap()
	return labV4.Contains(addr) || labV6.Contains(addr)
}

// CheckPrefix returns an error wrapping ErrAddr unless the whole prefix is
// inside a lab range.
func CheckPrefix(p netip.Prefix) error {
	p = p.Masked()
	for _, r := range []netip.Prefix{labV4, labV6} {
		if r.Contains(p.Addr()) && p.Bits() >= r.Bits() {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrAddr, p)
}

// checkRootName enforces that links created in the root namespace carry
// the "xvs" prefix, so Cleanup can always find them.
func (n *NS) checkRootName(name string) error {
	if n.Name == "" {
		return checkName(name)
	}
	return nil
}

// Link returns the named link inside the namespace.
func (n *NS) Link(name string) (netlink.Link, error) {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("lab: link %s in %s: %w", name, n, err)
	}
	return l, nil
}

// Index returns the ifindex of the named link inside the namespace.
func (n *NS) Index(name string) (int, error) {
	l, err := n.Link(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// MAC returns the hardware address of the named link.
func (n *NS) MAC(name string) (net.HardwareAddr, error) {
	l, err := n.Link(name)
	if err != nil {
		return nil, err
	}
	return l.Attrs().HardwareAddr, nil
}

// Veth creates a veth pair with end name in n and end peerName in peer
// (peer may be n). Both ends start down.
func (n *NS) Veth(name string, peer *NS, peerName string) error {
	if err := n.checkRootName(name); err != nil {
		return err
	}
	if err := peer.checkRootName(peerName); err != nil {
		return err
	}
	v := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: name},
		PeerName:  peerName,
	}
	if peer.handle != n.handle {
		v.PeerNamespace = netlink.NsFd(peer.handle)
	}
	if err := n.nl.LinkAdd(v); err != nil {
		return fmt.Errorf("lab: veth %s/%s -- %s/%s: %w", n, name, peer, peerName, err)
	}
	return nil
}

// Bridge creates a Linux bridge (down, STP off) in the namespace.
func (n *NS) Bridge(name string) error {
	if err := n.checkRootName(name); err != nil {
		return err
	}
	if err := n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("lab: bridge %s in %s: %w", name, n, err)
	}
	return nil
}

// SetMaster enslaves link name to the bridge master (both in n).
func (n *NS) SetMaster(name, master string) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	m, err := n.Link(master)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("lab: %s master %s in %s: %w", name, master, n, err)
	}
	return nil
}

// DeleteLink removes the named link; a missing link is not an error.
func (n *NS) DeleteLink(name string) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("lab: link %s in %s: %w", name, n, err)
	}
	if err := n.nl.LinkDel(l); err != nil {
		return fmt.Errorf("lab: delete %s in %s: %w", name, n, err)
	}
	return nil
}

// SetUp brings the named link up.
func (n *NS) SetUp(name string) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("lab: %s up in %s: %w", name, n, err)
	}
	return nil
}

// SetDown takes the named link down.
func (n *NS) SetDown(name string) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetDown(l); err != nil {
		return fmt.Errorf("lab: %s down in %s: %w", name, n, err)
	}
	return nil
}

// SetMTU sets the MTU of the named link.
func (n *NS) SetMTU(name string, mtu int) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("lab: %s mtu %d in %s: %w", name, mtu, n, err)
	}
	return nil
}

// SetMAC sets the hardware address of the named link.
func (n *NS) SetMAC(name string, mac net.HardwareAddr) error {
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetHardwareAddr(l, mac); err != nil {
		return fmt.Errorf("lab: %s address %s in %s: %w", name, mac, n, err)
	}
	return nil
}

// AddAddr assigns an address in CIDR notation ("198.18.0.1/24",
// "2001:db8::1/64") to the named link. Addresses outside the lab ranges
// are refused with ErrAddr. IPv6 addresses skip duplicate address
// detection so they are usable at once.
func (n *NS) AddAddr(name, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w", cidr, err)
	}
	if err := CheckPrefix(p); err != nil {
		return err
	}
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.nl.AddrAdd(l, a); err != nil {
		return fmt.Errorf("lab: add %s to %s in %s: %w", cidr, name, n, err)
	}
	return nil
}

// Sysctl writes value to /proc/sys/<key> (key with slashes, e.g.
// "net/ipv6/conf/a/disable_ipv6") inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.Clean("/"+key))
	return n.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("lab: sysctl %s in %s: %w", key, n, err)
		}
		return nil
	})
}

// Quiet stops the kernel from sending unsolicited IPv6 traffic (router
// solicitations, MLD reports) on the named link by disabling IPv6 on it,
// so raw-frame tests see only their own frames.
func (n *NS) Quiet(name string) error {
	return n.Sysctl("net/ipv6/conf/"+name+"/disable_ipv6", "1")
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data set.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtool(fd int, name string, v *ethtoolValue) error {
	var ifr ifreqData
	if len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("lab: interface name %q too long", name)
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(v)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if e != 0 {
		return e
	}
	return nil
}

// SetTxChecksum turns TX checksum offload of the named link on or off
// (ETHTOOL_STXCSUM, like `ethtool -K name tx off`). Lab veth ends need it
// off: with it on, frames forwarded by a userspace datapath carry partial
// checksums and the receiving stack drops them.
func (n *NS) SetTxChecksum(name string, on bool) error {
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("lab: ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		v := ethtoolValue{cmd: unix.ETHTOOL_STXCSUM}
		if on {
			v.data = 1
		}
		if err := ethtool(fd, name, &v); err != nil {
			return fmt.Errorf("lab: %s tx checksum %v in %s: %w", name, on, n, err)
		}
		return nil
	})
}

// TxChecksum reports whether TX checksum offload is on (ETHTOOL_GTXCSUM).
func (n *NS) TxChecksum(name string) (bool, error) {
	var on bool
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("lab: ethtool socket: %w", err)
		}
		defer unix.Close(fd)
		v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
		if err := ethtool(fd, name, &v); err != nil {
			return fmt.Errorf("lab: %s get tx checksum in %s: %w", name, n, err)
		}
		on = v.data != 0
		return nil
	})
	return on, err
}

// AddNeigh adds a permanent neighbour (ARP/NDP) entry ip -> mac on the
// named link, so tests need not answer address resolution. ip must be in
// a lab range.
func (n *NS) AddNeigh(name, ip string, mac net.HardwareAddr) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("lab: neighbour %q: %w", ip, err)
	}
	if !InLabRange(a) {
		return fmt.Errorf("%w: %s", ErrAddr, a)
	}
	idx, err := n.Index(name)
	if err != nil {
		return err
	}
	fam := netlink.FAMILY_V4
	if a.Is6() {
		fam = netlink.FAMILY_V6
	}
	nb := &netlink.Neigh{LinkIndex: idx, Family: fam, State: netlink.NUD_PERMANENT, IP: a.AsSlice(), HardwareAddr: mac}
	if err := n.nl.NeighSet(nb); err != nil {
		return fmt.Errorf("lab: neighbour %s %s on %s in %s: %w", ip, mac, name, n, err)
	}
	return nil
}

// AddRoute adds a route to dst (CIDR) via gateway gw (or directly on the
// link when gw is "") out of the named link. Both must be in lab ranges.
func (n *NS) AddRoute(name, dst, gw string) error {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return fmt.Errorf("lab: route %q: %w", dst, err)
	}
	if err := CheckPrefix(p); err != nil {
		return err
	}
	idx, err := n.Index(name)
	if err != nil {
		return err
	}
	p = p.Masked()
	r := &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if gw != "" {
		g, err := netip.ParseAddr(gw)
		if err != nil {
			return fmt.Errorf("lab: gateway %q: %w", gw, err)
		}
		if !InLabRange(g) {
			return fmt.Errorf("%w: %s", ErrAddr, g)
		}
		r.Gw = g.AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := n.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("lab: route %s via %q dev %s in %s: %w", dst, gw, name, n, err)
	}
	return nil
}

// Move moves the named link from n into the namespace to. Links moved
// into the root namespace must carry the "xvs" prefix.
func (n *NS) Move(name string, to *NS) error {
	if err := to.checkRootName(name); err != nil {
		return err
	}
	l, err := n.Link(name)
	if err != nil {
		return err
	}
	if err := n.nl.LinkSetNsFd(l, int(to.handle)); err != nil {
		return fmt.Errorf("lab: move %s from %s to %s: %w", name, n, to, err)
	}
	return nil
}
