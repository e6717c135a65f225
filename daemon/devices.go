package daemon

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"

	"xvs/datapath"
	"xvs/xdp"
)

// ifaceState is a running interface: its device and what to write back.
type ifaceState struct {
	name   string
	key    string // wantIface.deviceKey() it was opened with
	typ    string // normalised Interface type
	dev    datapath.Device
	driver string // afxdp, afpacket, tap, patch
	mode   string // XDP mode obtained (afxdp)
	reason string // why AF_PACKET was used
	err    string // Interface:error ("" = none)
	// offload says whether the in-kernel flow tier serves the port, and
	// why not when it does not.
	offload     bool
	offloadNote string
	ifindex     int // of the netdev when opened (0 for patch)
}

// errNoDevice marks a netdev that does not exist (yet): retried later.
var errNoDevice = errors.New("No such device")

// openDevice opens the device an Interface row asks for. umem is shared by
// every AF_XDP port (one poller), so forwarding between them moves frames
// without copying.
func (d *Daemon) openDevice(wi *wantIface) (*ifaceState, error) {
	st := &ifaceState{name: wi.name, key: wi.deviceKey(), typ: normalType(wi.typ)}
	switch st.typ {
	case "patch":
		if wi.options["peer"] == "" {
			return st, fmt.Errorf("%s: patch type requires valid 'peer' argument", wi.name)
		}
		if wi.options["peer"] == wi.name {
			return st, fmt.Errorf("%s: patch peer must not be self", wi.name)
		}
		st.driver = "patch"
		return st, nil
	case "internal":
		cfg := xdp.TapConfig{Name: wi.name, MTU: int(wi.mtuRequest)}
		if wi.mac != "" {
			if hw, err := net.ParseMAC(wi.mac); err == nil {
				cfg.MAC = hw
			}
		}
		tap, err := xdp.NewTap(cfg)
		if err != nil {
			return st, fmt.Errorf("could not add network device %s to ofproto (%w)", wi.name, err)
		}
		st.dev, st.driver = tap, "tap"
		if l, err := netlink.LinkByName(wi.name); err == nil {
			st.ifindex = l.Attrs().Index
		}
		return st, nil
	case "system", "afxdp", "afxdp-nonpmd":
		link, err := netlink.LinkByName(wi.name)
		if err != nil {
			return st, fmt.Errorf("could not open network device %s (%w)", wi.name, errNoDevice)
		}
		if wi.mtuRequest > 0 && int(wi.mtuRequest) != link.Attrs().MTU {
			if err := netlink.LinkSetMTU(link, int(wi.mtuRequest)); err != nil {
				return st, fmt.Errorf("%s: setting MTU %d: %w", wi.name, wi.mtuRequest, err)
			}
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			_ = netlink.LinkSetUp(link)
		}
		mode, err := xdp.ParseMode(wi.options["xdp-mode"])
		if err != nil {
			return st, fmt.Errorf("%s: %w", wi.name, err)
		}
		queues := 1
		if s := wi.options["n_rxq"]; s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 16 {
				return st, fmt.Errorf("%s: Too big 'n_rxq' (%s > 16)", wi.name, s)
			}
			queues = n
		}
		umem, err := d.sharedUMEM()
		if err != nil {
			return st, err
		}
		var off *xdp.Offload
		if st.offload, st.offloadNote = wantOffload(wi.offload, link.Type()); st.offload {
			if off, err = d.kernelTier(); err != nil {
				st.offload, st.offloadNote = false, err.Error()
			}
		}
		port, xerr := xdp.Open(wi.name, xdp.Config{Mode: mode, Queues: queues, UMEM: umem, Offload: off})
		if xerr != nil && off != nil {
			// The kernel refused the tier's program: keep the port on the
			// AF_XDP path and say why.
			st.offload, st.offloadNote = false, "xdp-flow-offload program refused: "+xerr.Error()
			port, xerr = xdp.Open(wi.name, xdp.Config{Mode: mode, Queues: queues, UMEM: umem})
		}
		if xerr == nil {
			st.dev, st.driver, st.mode, st.ifindex = port, "afxdp", port.Mode().String(), link.Attrs().Index
			return st, nil
		}
		st.offload = false
		if errors.Is(xerr, xdp.ErrMTU) || st.typ != "system" && wi.options["xdp-mode"] != "" {
			return st, fmt.Errorf("%s: %w", wi.name, xerr)
		}
		// AF_XDP refused (no XDP support, mode not offered...): fall back to
		// AF_PACKET so the port still works, and say why.
		afp, err := xdp.NewAFPacket(wi.name, xdp.AFPacketConfig{Reason: xerr.Error()})
		if err != nil {
			return st, fmt.Errorf("%s: AF_XDP failed (%v) and AF_PACKET fallback failed: %w", wi.name, xerr, err)
		}
		st.dev, st.driver, st.reason, st.ifindex = afp, "afpacket", xerr.Error(), link.Attrs().Index
		return st, nil
	}
	return st, fmt.Errorf("could not open network device %s (Address family not supported by protocol): type %q is not supported by xvs", wi.name, wi.typ)
}

func (d *Daemon) sharedUMEM() (*xdp.UMEM, error) {
	if d.umem != nil {
		return d.umem, nil
	}
	u, err := xdp.NewUMEM(xdp.UMEMConfig{Frames: 65536})
	if err != nil {
		return nil, err
	}
	d.umem = u
	return u, nil
}

func (st *ifaceState) close() {
	if st.dev != nil {
		_ = st.dev.Close()
		st.dev = nil
	}
}

// wantOffload decides whether a port gets the in-kernel flow tier from
// Open_vSwitch other_config:xdp-flow-offload. The default is on, except on
// veth: the kernel can redirect into a veth only when its peer runs XDP or
// has GRO enabled, which a lab host usually does not, so there the tier is
// opt-in.
func wantOffload(setting, linkType string) (bool, string) {
	switch setting {
	case "true":
		return true, ""
	case "false":
		return false, "disabled by other_config:xdp-flow-offload=false"
	}
	if linkType == "veth" {
		return false, "off by default on veth (set other_config:xdp-flow-offload=true when peers run XDP or GRO)"
	}
	return true, ""
}

// kernelTier returns the datapath's in-kernel flow tier, creating it and
// plugging it into the datapath on first use.
func (d *Daemon) kernelTier() (*xdp.Offload, error) {
	if d.offload != nil {
		return d.offload, nil
	}
	o, err := xdp.NewOffload(200000)
	if err != nil {
		return nil, fmt.Errorf("xdp-flow-offload unavailable: %w", err)
	}
	d.offload = o
	d.dp.SetKernelTier(o.Tier())
	return o, nil
}

// vanished reports whether the netdev behind a running interface was
// deleted (or deleted and created again: a new ifindex).
func (st *ifaceState) vanished() bool {
	if st.dev == nil || st.ifindex == 0 {
		return false
	}
	l, err := netlink.LinkByName(st.name)
	return err != nil || l.Attrs().Index != st.ifindex
}

// applyMTU sets mtu_request on a running netdev in place.
func (d *Daemon) applyMTU(st *ifaceState, wi *wantIface) {
	if wi.mtuRequest <= 0 || st.dev == nil || st.ifindex == 0 {
		return
	}
	l, err := netlink.LinkByName(wi.name)
	if err != nil || l.Attrs().MTU == int(wi.mtuRequest) {
		return
	}
	if err := netlink.LinkSetMTU(l, int(wi.mtuRequest)); err != nil {
		st.err = fmt.Sprintf("%s: setting MTU %d: %v", wi.name, wi.mtuRequest, err)
		d.log.Warn("interface", "iface", wi.name, "err", st.err)
		return
	}
	d.log.Info("interface MTU", "iface", wi.name, "mtu", wi.mtuRequest)
}
