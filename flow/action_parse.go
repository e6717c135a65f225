package flow

import (
	"net/netip"
	"strings"
)

// actionState tracks what is known about the packet while an action list
// is checked, for set_field prerequisites.
type actionState struct {
	tagged bool // the outermost VLAN tag is known to exist
	dlType uint16
	dlSet  bool
	proto  uint8
	prSet  bool
}

// ParseActions parses an ovs-ofctl action list ("strip_vlan,output:2")
// for a rule with match m (used to check set_field prerequisites; nil
// means a catch-all match). An empty string or "drop" is the empty list.
func ParseActions(s string, m *Match, ports PortLookup) ([]Action, error) {
	if m == nil {
		m = &Match{}
	}
	return parseActions(s, m, 0, ports)
}

// parseActions parses an action list for a rule of table tid with match m.
func parseActions(s string, m *Match, tid uint8, ports PortLookup) ([]Action, error) {
	st := actionState{
		tagged: m.Mask.VLAN[0].TCI&VLANCFI != 0 && m.Key.VLAN[0].TCI&VLANCFI != 0,
		dlType: m.Key.DlType, dlSet: m.Mask.DlType == 0xffff,
		proto: m.Key.NwProto, prSet: m.Mask.NwProto == 0xff,
	}
	var acts []Action
	drop := false
	for {
		item, rest, ok, err := nextKV(s)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		s = rest
		if item.key == "drop" && !item.hasVal {
			drop = true
			continue
		}
		if len(acts) > 0 && acts[len(acts)-1].Kind == ActGotoTable {
			return nil, perr(ErrFlowSyntax, "goto_table must be the last action")
		}
		a, err := parseAction(item, &st, ports)
		if err != nil {
			return nil, err
		}
		if a.Kind == ActGotoTable && tid != TableAll && a.Table <= tid {
			return nil, perr(ErrFlowValue, "goto_table: table %d is not after this rule's table %d", a.Table, tid)
		}
		acts = append(acts, a)
	}
	if drop && len(acts) > 0 {
		return nil, perr(ErrFlowSyntax, "\"drop\" cannot be combined with other actions")
	}
	return acts, nil
}

// portAction turns an output port into its action (reserved ports become
// their own kinds).
func portAction(name string, port uint32) (Action, error) {
	switch port {
	case PortNormal:
		return Action{Kind: ActNormal}, nil
	case PortFlood:
		return Action{Kind: ActFlood}, nil
	case PortAll:
		return Action{Kind: ActAll}, nil
	case PortInPort:
		return Action{Kind: ActInPort}, nil
	case PortLocal:
		return Action{Kind: ActLocal}, nil
	case PortController:
		return Action{Kind: ActController, Value: 0xffff}, nil
	case PortTable, PortNone:
		return Action{}, perr(ErrFlowValue, "%s: cannot output to %s", name, PortName(port))
	}
	return Action{Kind: ActOutput, Port: port}, nil
}

func parseAction(it kv, st *actionState, ports PortLookup) (Action, error) {
	name := strings.ToLower(it.key)
	noVal := func() error {
		if it.hasVal {
			return perr(ErrFlowSyntax, "action %s takes no argument (got %q)", it.key, it.val)
		}
		return nil
	}
	needVal := func() error {
		if !it.hasVal || it.val == "" {
			return perr(ErrFlowSyntax, "action %s needs an argument", it.key)
		}
		return nil
	}
	switch name {
	case "output":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		port, err := parsePort("output", it.val, ports)
		if err != nil {
			return Action{}, err
		}
		return portAction("output", port)
	case "normal", "flood", "all", "in_port", "local":
		if err := noVal(); err != nil {
			return Action{}, err
		}
		port, _ := parsePort(name, name, nil)
		return portAction(name, port)
	case "controller":
		a := Action{Kind: ActController, Value: 0xffff}
		if it.hasVal {
			v := it.val
			if it.paren {
				// controller(max_len=N) is the only option understood.
				k, mv, ok := strings.Cut(v, "=")
				if !ok || k != "max_len" {
					return Action{}, perr(ErrFlowSyntax, "controller: unsupported option %q (only max_len=N)", v)
				}
				v = mv
			}
			n, err := parseNum("controller", v, 0xffff)
			if err != nil {
				return Action{}, err
			}
			a.Value = uint16(n)
		}
		return a, nil
	case "mod_vlan_vid":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, 0xffff)
		if err != nil {
			return Action{}, err
		}
		if n > VLANVIDMask {
			return Action{}, perr(ErrFlowValue, "mod_vlan_vid: %d is not a valid VLAN ID (0..4095)", n)
		}
		st.tagged = true
		return Action{Kind: ActModVLANVID, Value: uint16(n)}, nil
	case "mod_vlan_pcp":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, 0xff)
		if err != nil {
			return Action{}, err
		}
		if n > 7 {
			return Action{}, perr(ErrFlowValue, "mod_vlan_pcp: %d is not a valid VLAN priority (0..7)", n)
		}
		st.tagged = true
		return Action{Kind: ActModVLANPCP, Value: uint16(n)}, nil
	case "strip_vlan", "pop_vlan":
		if err := noVal(); err != nil {
			return Action{}, err
		}
		st.tagged = false // an inner tag may or may not exist
		return Action{Kind: ActStripVLAN}, nil
	case "push_vlan":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, 0xffff)
		if err != nil {
			return Action{}, err
		}
		if n != EthTypeVLAN && n != EthTypeQinQ {
			return Action{}, perr(ErrFlowValue, "push_vlan: %s is not a VLAN ethertype (0x8100 or 0x88a8)", it.val)
		}
		st.tagged = true
		return Action{Kind: ActPushVLAN, Value: uint16(n)}, nil
	case "mod_dl_src", "mod_dl_dst":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		mac, err := parseMAC(name, it.val)
		if err != nil {
			return Action{}, err
		}
		if name == "mod_dl_src" {
			return Action{Kind: ActSetDlSrc, MAC: mac}, nil
		}
		return Action{Kind: ActSetDlDst, MAC: mac}, nil
	case "mod_nw_src", "mod_nw_dst":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		a, err := netip.ParseAddr(it.val)
		if err != nil || !a.Is4() {
			return Action{}, perr(ErrFlowValue, "%s: %q is not a valid IPv4 address", name, it.val)
		}
		if name == "mod_nw_src" {
			return Action{Kind: ActSetNwSrc, Addr: a}, nil
		}
		return Action{Kind: ActSetNwDst, Addr: a}, nil
	case "mod_nw_tos":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, 0xff)
		if err != nil {
			return Action{}, err
		}
		if n&3 != 0 {
			return Action{}, perr(ErrFlowValue, "mod_nw_tos: %d is not a valid TOS (the two ECN bits must be 0)", n)
		}
		return Action{Kind: ActSetNwTOS, Value: uint16(n)}, nil
	case "mod_nw_ecn", "mod_nw_ttl":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		max := uint64(0xff)
		if name == "mod_nw_ecn" {
			max = 3
		}
		n, err := parseNum(name, it.val, max)
		if err != nil {
			return Action{}, err
		}
		if name == "mod_nw_ecn" {
			return Action{Kind: ActSetNwECN, Value: uint16(n)}, nil
		}
		return Action{Kind: ActSetNwTTL, Value: uint16(n)}, nil
	case "mod_tp_src", "mod_tp_dst":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, 0xffff)
		if err != nil {
			return Action{}, err
		}
		if name == "mod_tp_src" {
			return Action{Kind: ActSetTpSrc, Value: uint16(n)}, nil
		}
		return Action{Kind: ActSetTpDst, Value: uint16(n)}, nil
	case "set_field":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		if it.paren {
			return Action{}, perr(ErrFlowSyntax, "set_field: write set_field:VALUE->FIELD")
		}
		return parseSetField(it.val, st)
	case "goto_table":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		n, err := parseNum(name, it.val, MaxTables-1)
		if err != nil {
			return Action{}, err
		}
		return Action{Kind: ActGotoTable, Table: uint8(n)}, nil
	case "resubmit":
		if err := needVal(); err != nil {
			return Action{}, err
		}
		return parseResubmit(it, ports)
	}
	if it.hasVal {
		return Action{}, perr(ErrFlowSyntax, "unknown action %q", it.key)
	}
	// A bare port number or name means output to it.
	if _, ok := parseUint(it.key); ok {
		port, err := parsePort("output", it.key, ports)
		if err != nil {
			return Action{}, err
		}
		return portAction("output", port)
	}
	if ports != nil {
		if port, ok := ports(it.key); ok {
			return portAction("output", port)
		}
	}
	return Action{}, perr(ErrFlowSyntax, "unknown action %q", it.key)
}

func parseResubmit(it kv, ports PortLookup) (Action, error) {
	a := Action{Kind: ActResubmit, Port: PortInPort, Table: TableAll}
	ps, ts := it.val, ""
	if it.paren {
		var ok bool
		ps, ts, ok = strings.Cut(it.val, ",")
		if !ok {
			return Action{}, perr(ErrFlowSyntax, "resubmit: write resubmit(PORT,TABLE) or resubmit:PORT")
		}
		ps, ts = strings.TrimSpace(ps), strings.TrimSpace(ts)
		if ps == "" && ts == "" {
			return Action{}, perr(ErrFlowSyntax, "resubmit: at least one of the port and the table must be given")
		}
	}
	if ps != "" {
		port, err := parsePort("resubmit", ps, ports)
		if err != nil {
			return Action{}, err
		}
		if port != PortInPort && port >= PortMax && port != PortLocal {
			return Action{}, perr(ErrFlowValue, "resubmit: cannot resubmit as if from %s", PortName(port))
		}
		a.Port = port
	}
	if ts != "" {
		n, err := parseNum("resubmit", ts, MaxTables-1)
		if err != nil {
			return Action{}, err
		}
		a.Table = uint8(n)
	}
	return a, nil
}

func parseSetField(v string, st *actionState) (Action, error) {
	vs, field, ok := strings.Cut(v, "->")
	if !ok || vs == "" || field == "" {
		return Action{}, perr(ErrFlowSyntax, "set_field: %q: write set_field:VALUE->FIELD", v)
	}
	if strings.Contains(vs, "/") {
		return Action{}, perr(ErrFlowValue, "set_field: masked values (%s) are not supported", vs)
	}
	ipv4 := st.dlSet && st.dlType == EthTypeIPv4
	ipv6 := st.dlSet && st.dlType == EthTypeIPv6
	l4 := func(protos ...uint8) bool {
		if !(ipv4 || ipv6) || !st.prSet {
			return false
		}
		for _, p := range protos {
			if st.proto == p {
				return true
			}
		}
		return false
	}
	prereq := func(ok bool, need string) error {
		if !ok {
			return perr(ErrPrerequisite, "set_field: %s lacks its prerequisites: %s", field, need)
		}
		return nil
	}
	name := "set_field " + field
	switch field {
	case "vlan_vid":
		n, err := parseNum(name, vs, 0x1fff)
		if err != nil {
			return Action{}, err
		}
		if err := prereq(st.tagged, "the packet must have a VLAN tag (match dl_vlan=N or vlan_tci=0x1000/0x1000, or push_vlan first)"); err != nil {
			return Action{}, err
		}
		return Action{Kind: ActSetVLANVID, Value: uint16(n) & VLANVIDMask}, nil
	case "vlan_pcp":
		n, err := parseNum(name, vs, 7)
		if err != nil {
			return Action{}, err
		}
		if err := prereq(st.tagged, "the packet must have a VLAN tag (match dl_vlan=N or vlan_tci=0x1000/0x1000, or push_vlan first)"); err != nil {
			return Action{}, err
		}
		return Action{Kind: ActSetVLANPCP, Value: uint16(n)}, nil
	case "eth_src", "dl_src", "eth_dst", "dl_dst":
		mac, err := parseMAC(name, vs)
		if err != nil {
			return Action{}, err
		}
		if strings.HasSuffix(field, "src") {
			return Action{Kind: ActSetDlSrc, MAC: mac}, nil
		}
		return Action{Kind: ActSetDlDst, MAC: mac}, nil
	case "ip_src", "nw_src", "ip_dst", "nw_dst":
		a, err := netip.ParseAddr(vs)
		if err != nil || !a.Is4() {
			return Action{}, perr(ErrFlowValue, "%s: %q is not a valid IPv4 address", name, vs)
		}
		if err := prereq(ipv4, "the match must specify ip"); err != nil {
			return Action{}, err
		}
		if strings.HasSuffix(field, "src") {
			return Action{Kind: ActSetNwSrc, Addr: a}, nil
		}
		return Action{Kind: ActSetNwDst, Addr: a}, nil
	case "ipv6_src", "ipv6_dst":
		a, err := netip.ParseAddr(vs)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Action{}, perr(ErrFlowValue, "%s: %q is not a valid IPv6 address", name, vs)
		}
		if err := prereq(ipv6, "the match must specify ipv6"); err != nil {
			return Action{}, err
		}
		if field == "ipv6_src" {
			return Action{Kind: ActSetIPv6Src, Addr: a}, nil
		}
		return Action{Kind: ActSetIPv6Dst, Addr: a}, nil
	case "ip_dscp", "nw_tos":
		var tos uint64
		if field == "ip_dscp" {
			n, err := parseNum(name, vs, 0x3f)
			if err != nil {
				return Action{}, err
			}
			tos = n << 2
		} else {
			n, err := parseNum(name, vs, 0xff)
			if err != nil {
				return Action{}, err
			}
			if n&3 != 0 {
				return Action{}, perr(ErrFlowValue, "%s: %d is not a valid TOS (the two ECN bits must be 0)", name, n)
			}
			tos = n
		}
		if err := prereq(ipv4 || ipv6, "the match must specify ip or ipv6"); err != nil {
			return Action{}, err
		}
		return Action{Kind: ActSetNwTOS, Value: uint16(tos)}, nil
	case "ip_ecn", "nw_ecn", "nw_ttl":
		max := uint64(0xff)
		if field != "nw_ttl" {
			max = 3
		}
		n, err := parseNum(name, vs, max)
		if err != nil {
			return Action{}, err
		}
		if err := prereq(ipv4 || ipv6, "the match must specify ip or ipv6"); err != nil {
			return Action{}, err
		}
		if field == "nw_ttl" {
			return Action{Kind: ActSetNwTTL, Value: uint16(n)}, nil
		}
		return Action{Kind: ActSetNwECN, Value: uint16(n)}, nil
	case "tp_src", "tp_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "sctp_src", "sctp_dst":
		n, err := parseNum(name, vs, 0xffff)
		if err != nil {
			return Action{}, err
		}
		var ok bool
		var need string
		switch field[:strings.IndexByte(field, '_')] {
		case "tcp":
			ok, need = l4(IPProtoTCP), "the match must specify tcp or tcp6"
		case "udp":
			ok, need = l4(IPProtoUDP), "the match must specify udp or udp6"
		case "sctp":
			ok, need = l4(IPProtoSCTP), "the match must specify sctp or sctp6"
		default:
			ok, need = l4(IPProtoTCP, IPProtoUDP, IPProtoSCTP), "the match must specify tcp, udp or sctp"
		}
		if err := prereq(ok, need); err != nil {
			return Action{}, err
		}
		if strings.HasSuffix(field, "_src") {
			return Action{Kind: ActSetTpSrc, Value: uint16(n)}, nil
		}
		return Action{Kind: ActSetTpDst, Value: uint16(n)}, nil
	}
	return Action{}, perr(ErrFlowSyntax, "set_field: unknown or unsupported field %q", field)
}
