package datapath

import (
	"fmt"
	"sort"

	"xvs/bond"
	"xvs/flow"
)

// VLANMode is a Port's vlan_mode, as in the Open_vSwitch schema.
type VLANMode uint8

const (
	VLANTrunk VLANMode = iota
	VLANAccess
	VLANNativeTagged
	VLANNativeUntagged
)

var vlanModeNames = [...]string{"trunk", "access", "native-tagged", "native-untagged"}

func (m VLANMode) String() string { return vlanModeNames[m] }

// ParseVLANMode parses a vlan_mode column value. The empty string is
// resolved by EffectiveVLANMode.
func ParseVLANMode(s string) (VLANMode, error) {
	for i, n := range vlanModeNames {
		if n == s {
			return VLANMode(i), nil
		}
	}
	return 0, fmt.Errorf("unsupported vlan_mode %q (want trunk, access, native-tagged or native-untagged)", s)
}

// PriorityTags is a Port's other_config:priority-tags: whether a frame
// leaving untagged but carrying a priority keeps it in a VID-0 tag.
type PriorityTags uint8

const (
	PriorityTagsNever     PriorityTags = iota // default
	PriorityTagsIfNonzero                     // also "true" (legacy)
	PriorityTagsAlways
)

// ParsePriorityTags parses other_config:priority-tags ("" = never).
func ParsePriorityTags(s string) (PriorityTags, error) {
	switch s {
	case "", "never", "false":
		return PriorityTagsNever, nil
	case "if-nonzero", "true":
		return PriorityTagsIfNonzero, nil
	case "always":
		return PriorityTagsAlways, nil
	}
	return 0, fmt.Errorf("unknown priority-tags %q (want never, if-nonzero or always)", s)
}

// InterfaceConfig describes one interface of a port.
type InterfaceConfig struct {
	Name string
	// OfPortRequest asks for a specific OpenFlow port number (0 = any).
	OfPortRequest uint32
	// OfPortHint is the number to reuse if it is free (the one the
	// interface had before a restart); unlike a request it never fails.
	OfPortHint uint32
	// Device carries the frames; nil for patch interfaces.
	Device Device
	// Peer names the peer interface of a patch interface ("" otherwise).
	Peer string
}

// PortConfig describes a bridge port (a "bundle": one interface, or several
// for a bond).
type PortConfig struct {
	Name       string
	Interfaces []InterfaceConfig
	// VLAN configuration. Mode is used only when ModeSet; otherwise it is
	// derived as OVS does (tag set -> access, else trunk).
	Mode    VLANMode
	ModeSet bool
	Tag     int // -1 = none
	Trunks  []uint16
	// PriorityTags controls VID-0 priority tags on output.
	PriorityTags PriorityTags
	// Bond, when the port has two or more interfaces.
	Bond *bond.Bond
}

// Bundle is a bridge port as NORMAL sees it: one or more interfaces that
// share VLAN configuration and MAC learning (a bond is one bundle).
type Bundle struct {
	name     string
	bridge   *Bridge
	ifaces   []*Interface
	mode     VLANMode
	tag      uint16 // native/access VLAN
	trunks   *[4096 / 64]uint64
	prioTags PriorityTags
	bond     *bond.Bond
	bondIx   uint32
}

// Name is the port name.
func (b *Bundle) Name() string { return b.name }

func (b *Bundle) isBond() bool { return b.bond != nil }

// trunksVLAN reports whether the port carries vlan on a trunk.
func (b *Bundle) trunksVLAN(vlan uint16) bool {
	if b.mode == VLANNativeTagged || b.mode == VLANNativeUntagged {
		if vlan == b.tag {
			return true
		}
		if vlan == 0 {
			return false
		}
	}
	if b.trunks == nil {
		return true
	}
	return b.trunks[vlan/64]&(1<<(vlan%64)) != 0
}

// includesVLAN reports whether the port may output frames of internal VLAN
// vlan (OVS's xbundle_includes_vlan).
func (b *Bundle) includesVLAN(vlan uint16) bool {
	if b.mode == VLANAccess {
		return vlan == b.tag
	}
	return b.trunksVLAN(vlan)
}

// Interface is an OpenFlow port: one device (or a patch end) of a bridge.
type Interface struct {
	name   string
	ofport uint32
	dpPort uint32 // 0 for patch interfaces
	bundle *Bundle
	dev    Device
	peer   string     // patch peer name
	peerIf *Interface // resolved patch peer (nil while unresolved)
}

// Name is the interface name.
func (i *Interface) Name() string { return i.name }

// OfPort is the OpenFlow port number.
func (i *Interface) OfPort() uint32 { return i.ofport }

// DPPort is the datapath port number (0 for a patch interface).
func (i *Interface) DPPort() uint32 { return i.dpPort }

// Bridge is one OpenFlow switch: ports, a rule table and a MAC table.
// Bridges are owned by their Datapath and only changed under its lock.
type Bridge struct {
	name    string
	dp      *Datapath
	bundles map[string]*Bundle
	ifaces  map[uint32]*Interface // by ofport
	byName  map[string]*Interface
	table   *flow.Table
	macs    *MACTable
	// floodVLANs disables learning on these VLANs (Bridge flood_vlans).
	floodVLANs map[uint16]bool
	// megaflows that traversed this bridge (revalidated when it changes).
	flows map[*flow.Megaflow]struct{}
	// reserved ofports for interfaces about to be added (ReserveOfPort).
	reserved map[string]uint32
}

// Name is the bridge name.
func (br *Bridge) Name() string { return br.name }

// Table returns the bridge's OpenFlow table. Callers must hold the
// datapath lock (use Datapath methods to change rules).
func (br *Bridge) Table() *flow.Table { return br.table }

func (br *Bridge) nextOfPort(req uint32) (uint32, error) {
	if req != 0 {
		if _, taken := br.ifaces[req]; taken {
			return 0, fmt.Errorf("ofport %d already in use on bridge %s", req, br.name)
		}
		if req >= flow.PortMax && req != flow.PortLocal {
			return 0, fmt.Errorf("ofport_request %d out of range 1..65279", req)
		}
		return req, nil
	}
	for p := uint32(1); p < flow.PortMax; p++ {
		if _, taken := br.ifaces[p]; !taken && !br.isReserved(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("bridge %s: out of OpenFlow port numbers", br.name)
}

// Ports lists the bridge's port names, sorted.
func (br *Bridge) Ports() []string {
	names := make([]string, 0, len(br.bundles))
	for n := range br.bundles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Interfaces returns the bridge's interfaces sorted by ofport.
func (br *Bridge) Interfaces() []*Interface {
	out := make([]*Interface, 0, len(br.ifaces))
	for _, i := range br.ifaces {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ofport < out[b].ofport })
	return out
}

// LookupPort maps an interface name to its ofport (for flow parsing).
func (br *Bridge) LookupPort(name string) (uint32, bool) {
	if i := br.byName[name]; i != nil {
		return i.ofport, true
	}
	return 0, false
}

func (br *Bridge) isReserved(p uint32) bool {
	for _, r := range br.reserved {
		if r == p {
			return true
		}
	}
	return false
}

// portFree reports whether ofport p may be given to iface.
func (br *Bridge) portFree(p uint32, iface string) bool {
	if p == 0 || p >= flow.PortMax {
		return false
	}
	if i := br.ifaces[p]; i != nil && i.name != iface {
		return false
	}
	for name, r := range br.reserved {
		if r == p && name != iface {
			return false
		}
	}
	return true
}
