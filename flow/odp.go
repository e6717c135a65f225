package flow

import (
	"fmt"
	"net/netip"
	"strings"
)

// DPActionKind is the kind of one datapath action: the compiled, per-packet
// form of a translation (OpenFlow rules + NORMAL + bonds + patch ports),
// what Open vSwitch calls ODP actions.
type DPActionKind uint8

const (
	DPOutput     DPActionKind = iota + 1 // transmit on datapath port Port
	DPOutputBond                         // transmit on the member bond Port picks for bucket Bucket
	DPPushVLAN                           // push a tag: TPID, TCI
	DPPopVLAN                            // remove the outermost tag
	DPSetVLAN                            // rewrite the outermost tag's TCI (VID and PCP) to TCI
	DPSetEthSrc                          // MAC
	DPSetEthDst                          // MAC
	DPSetIPv4Src                         // Addr (checksums fixed)
	DPSetIPv4Dst                         // Addr
	DPSetIPv6Src                         // Addr
	DPSetIPv6Dst                         // Addr
	DPSetTOS                             // Value (whole TOS byte)
	DPSetTTL                             // Value
	DPSetTPSrc                           // Value (L4 source port; checksums fixed)
	DPSetTPDst                           // Value
	DPDrop                               // explicit drop with a reason (Value: a DropCause)
)

// DPAction is one datapath action. Only the fields its Kind names are used.
type DPAction struct {
	Kind   DPActionKind
	Bucket uint8  // DPOutputBond
	TPID   uint16 // DPPushVLAN
	TCI    uint16 // DPPushVLAN, DPSetVLAN (CFI bit ignored)
	Port   uint32 // DPOutput: datapath port; DPOutputBond: bond index
	Value  uint32
	MAC    [6]byte
	Addr   netip.Addr
}

// Equal reports whether two action lists are identical.
func EqualDPActions(a, b []DPAction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FormatDPActions prints actions in a dpctl/dump-flows like syntax. portName
// maps a datapath port to a name (nil prints numbers).
func FormatDPActions(acts []DPAction, portName func(uint32) string) string {
	if len(acts) == 0 {
		return "drop"
	}
	var sb strings.Builder
	for i, a := range acts {
		if i > 0 {
			sb.WriteByte(',')
		}
		switch a.Kind {
		case DPOutput:
			if portName != nil {
				sb.WriteString(portName(a.Port))
			} else {
				fmt.Fprintf(&sb, "%d", a.Port)
			}
		case DPOutputBond:
			fmt.Fprintf(&sb, "bond(%d,hash=%d)", a.Port, a.Bucket)
		case DPPushVLAN:
			fmt.Fprintf(&sb, "push_vlan(vid=%d,pcp=%d", a.TCI&VLANVIDMask, a.TCI>>13)
			if a.TPID != EthTypeVLAN {
				fmt.Fprintf(&sb, ",tpid=0x%04x", a.TPID)
			}
			sb.WriteByte(')')
		case DPPopVLAN:
			sb.WriteString("pop_vlan")
		case DPSetVLAN:
			fmt.Fprintf(&sb, "set_vlan(vid=%d,pcp=%d)", a.TCI&VLANVIDMask, a.TCI>>13)
		case DPSetEthSrc:
			fmt.Fprintf(&sb, "set(eth(src=%s))", macString(a.MAC))
		case DPSetEthDst:
			fmt.Fprintf(&sb, "set(eth(dst=%s))", macString(a.MAC))
		case DPSetIPv4Src:
			fmt.Fprintf(&sb, "set(ipv4(src=%s))", a.Addr)
		case DPSetIPv4Dst:
			fmt.Fprintf(&sb, "set(ipv4(dst=%s))", a.Addr)
		case DPSetIPv6Src:
			fmt.Fprintf(&sb, "set(ipv6(src=%s))", a.Addr)
		case DPSetIPv6Dst:
			fmt.Fprintf(&sb, "set(ipv6(dst=%s))", a.Addr)
		case DPSetTOS:
			fmt.Fprintf(&sb, "set(ip(tos=0x%x))", a.Value)
		case DPSetTTL:
			fmt.Fprintf(&sb, "set(ip(ttl=%d))", a.Value)
		case DPSetTPSrc:
			fmt.Fprintf(&sb, "set(l4(src=%d))", a.Value)
		case DPSetTPDst:
			fmt.Fprintf(&sb, "set(l4(dst=%d))", a.Value)
		case DPDrop:
			sb.WriteString("drop")
		default:
			fmt.Fprintf(&sb, "unknown(%d)", a.Kind)
		}
	}
	return sb.String()
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
