package datapath

import "xvs/flow"

// applyEdit performs one non-output datapath action on a packet in place.
// k is the key the packet was received with (read only); lay tracks header
// offsets across VLAN pushes and pops. Edits that do not apply (no such
// header) leave the packet unchanged: translation only emits them when the
// key says the header exists.
func applyEdit(pk *flow.Packet, k *flow.Key, lay *flow.Layout, a *flow.DPAction) {
	switch a.Kind {
	case flow.DPPushVLAN:
		_ = flow.PushVLAN(pk, lay, a.TPID, a.TCI)
	case flow.DPPopVLAN:
		_ = flow.PopVLAN(pk, lay)
	case flow.DPSetVLAN:
		_ = flow.SetVLANTCI(pk, a.TCI)
	case flow.DPSetEthSrc:
		_ = flow.SetEthSrc(pk, a.MAC)
	case flow.DPSetEthDst:
		_ = flow.SetEthDst(pk, a.MAC)
	case flow.DPSetIPv4Src:
		_ = flow.SetIPv4Src(pk, k, lay, a.Addr.As4())
	case flow.DPSetIPv4Dst:
		_ = flow.SetIPv4Dst(pk, k, lay, a.Addr.As4())
	case flow.DPSetIPv6Src:
		_ = flow.SetIPv6Src(pk, k, lay, a.Addr.As16())
	case flow.DPSetIPv6Dst:
		_ = flow.SetIPv6Dst(pk, k, lay, a.Addr.As16())
	case flow.DPSetTOS:
		if k.IsIPv4() {
			_ = flow.SetIPv4TOS(pk, k, lay, uint8(a.Value))
		} else if k.IsIPv6() {
			_ = flow.SetIPv6TClass(pk, k, lay, uint8(a.Value))
		}
	case flow.DPSetTTL:
		if k.IsIPv4() {
			_ = flow.SetIPv4TTL(pk, k, lay, uint8(a.Value))
		} else if k.IsIPv6() {
			_ = flow.SetIPv6HopLimit(pk, k, lay, uint8(a.Value))
		}
	case flow.DPSetTPSrc:
		_ = flow.SetL4Src(pk, k, lay, uint16(a.Value))
	case flow.DPSetTPDst:
		_ = flow.SetL4Dst(pk, k, lay, uint16(a.Value))
	}
}
