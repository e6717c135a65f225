package flow

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Sentinel errors wrapped by every flow parse error (test with errors.Is).
var (
	ErrFlowSyntax   = errors.New("flow syntax error")             // unknown keyword, malformed text
	ErrFlowValue    = errors.New("invalid value")                 // a value out of range or malformed
	ErrPrerequisite = errors.New("prerequisite not met")          // a field or action needs a protocol match
	ErrUnknownPort  = errors.New("unknown port")                  // a port name the lookup does not know
	ErrNoActions    = errors.New("missing actions")               // add/mod without actions=
	ErrNotAllowed   = errors.New("not allowed in this operation") // e.g. idle_timeout in del-flows
)

// ParseError is the error type of the flow parser. Its text is the whole
// message; Unwrap returns one of the sentinels above.
type ParseError struct {
	Msg string
	Err error
}

func (e *ParseError) Error() string { return e.Msg }
func (e *ParseError) Unwrap() error { return e.Err }

func perr(sentinel error, format string, args ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// PortLookup maps a port name to its OpenFlow port number. It may be nil
// when only numbers and reserved names (LOCAL, IN_PORT...) are used.
type PortLookup func(name string) (uint32, bool)

// ParseMode says which ovs-ofctl command a flow string is written for.
type ParseMode uint8

const (
	// ModeAdd is add-flow/add-flows: actions required; priority,
	// cookie (no mask), idle_timeout, hard_timeout, reset_counts allowed.
	ModeAdd ParseMode = iota
	// ModeModify is mod-flows: actions required; the cookie may be a
	// filter (cookie=X/MASK) or a new value (cookie=X).
	ModeModify
	// ModeDelete is del-flows and dump-flows: no actions, no timeouts;
	// cookie needs a mask; out_port allowed; priority only matters to
	// strict operations.
	ModeDelete
)

// ParseFlow parses an add-flow string such as
// "priority=100,in_port=1,dl_vlan=10,actions=strip_vlan,output:2".
func ParseFlow(s string, ports PortLookup) (*FlowMod, error) {
	return ParseFlowMod(s, ModeAdd, ports)
}

// ParseMatch parses a bare match ("in_port=1,tcp,tp_dst=80"), for example
// a flow given to ofproto/trace. Only match fields are accepted.
func ParseMatch(s string, ports PortLookup) (Match, error) {
	p := flowParser{mode: ModeDelete, ports: ports, matchOnly: true}
	if i := findActions(s); i >= 0 {
		return Match{}, perr(ErrNotAllowed, "actions are not allowed in a match")
	}
	if err := p.parseMatch(s); err != nil {
		return Match{}, err
	}
	return p.fm.Match, nil
}

// ParseFlowMod parses a flow in ovs-ofctl syntax for the given command.
// Match fields and flow parameters come first, separated by commas or
// spaces; "actions=" starts the action list, which runs to the end.
// Fields printed by dump-flows (duration, n_packets, n_bytes, idle_age,
// hard_age) are accepted and ignored, so a dump line parses back.
func ParseFlowMod(s string, mode ParseMode, ports PortLookup) (*FlowMod, error) {
	p := flowParser{mode: mode, ports: ports}
	p.fm.Priority = DefaultPriority
	p.fm.OutPort = PortNone
	if mode == ModeAdd {
		p.fm.Table = 0
	} else {
		p.fm.Table = TableAll
	}
	matchStr, actStr := s, ""
	i := findActions(s)
	if i >= 0 {
		matchStr = s[:i]
		j := strings.IndexByte(s[i:], '=')
		actStr = s[i+j+1:]
	}
	switch {
	case mode == ModeDelete && i >= 0:
		return nil, perr(ErrNotAllowed, "actions are not allowed when deleting or dumping flows")
	case mode != ModeDelete && i < 0:
		return nil, perr(ErrNoActions, "must specify actions (e.g. \"actions=output:1\", or \"actions=drop\" to drop)")
	}
	if err := p.parseMatch(matchStr); err != nil {
		return nil, err
	}
	if mode != ModeDelete {
		acts, err := parseActions(actStr, &p.fm.Match, p.fm.Table, ports)
		if err != nil {
			return nil, err
		}
		p.fm.Actions = acts
	}
	return &p.fm, nil
}

// findActions returns the index of the "actions=" (or "action=") keyword,
// or -1.
func findActions(s string) int {
	off := 0
	for {
		i := strings.Index(s[off:], "action")
		if i < 0 {
			return -1
		}
		i += off
		rest := s[i+len("action"):]
		rest = strings.TrimPrefix(rest, "s")
		rest = strings.TrimLeft(rest, " \t")
		startOK := i == 0 || strings.IndexByte(", \t\r\n", s[i-1]) >= 0
		if startOK && strings.HasPrefix(rest, "=") {
			return i
		}
		off = i + 1
	}
}

// kv is one key[=:]value or key(value) item of a flow string.
type kv struct {
	key, val string
	hasVal   bool
	paren    bool // written as key(val)
}

func isSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// nextKV splits the first item off s. ok is false at the end of input.
func nextKV(s string) (item kv, rest string, ok bool, err error) {
	i := 0
	for i < len(s) && isSep(s[i]) {
		i++
	}
	if i == len(s) {
		return kv{}, "", false, nil
	}
	s = s[i:]
	k := 0
	for k < len(s) && !isSep(s[k]) && s[k] != '=' && s[k] != ':' && s[k] != '(' {
		k++
	}
	item.key = s[:k]
	if k == len(s) || isSep(s[k]) {
		if item.key == "" {
			return kv{}, "", false, perr(ErrFlowSyntax, "empty field name in %q", s)
		}
		return item, s[k:], true, nil
	}
	if s[k] == '(' {
		depth := 0
		for j := k; j < len(s); j++ {
			switch s[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					item.val, item.hasVal, item.paren = s[k+1:j], true, true
					if item.key == "" {
						return kv{}, "", false, perr(ErrFlowSyntax, "missing name before \"(\" in %q", s)
					}
					return item, s[j+1:], true, nil
				}
			}
		}
		return kv{}, "", false, perr(ErrFlowSyntax, "unbalanced parentheses in %q", s)
	}
	// '=' or ':' separator.
	if item.key == "" {
		return kv{}, "", false, perr(ErrFlowSyntax, "missing field name before %q", s[k:])
	}
	v := k + 1
	depth := 0
	j := v
	for ; j < len(s); j++ {
		c := s[j]
		if c == '(' {
			depth++
		} else if c == ')' {
			if depth == 0 {
				return kv{}, "", false, perr(ErrFlowSyntax, "unbalanced parentheses in %q", s)
			}
			depth--
		} else if depth == 0 && isSep(c) {
			break
		}
	}
	if depth != 0 {
		return kv{}, "", false, perr(ErrFlowSyntax, "unbalanced parentheses in %q", s)
	}
	item.val, item.hasVal = s[v:j], true
	return item, s[j:], true, nil
}

type flowParser struct {
	mode      ParseMode
	ports     PortLookup
	matchOnly bool
	fm        FlowMod
	fields    []string // match fields seen, for prerequisite checks
}

// protocols are the shorthand keywords (dl_type and nw_proto).
var protocols = []struct {
	name   string
	dlType uint16
	proto  uint8
}{
	{"ip", EthTypeIPv4, 0}, {"ipv4", EthTypeIPv4, 0}, {"ip4", EthTypeIPv4, 0},
	{"ipv6", EthTypeIPv6, 0}, {"ip6", EthTypeIPv6, 0},
	{"arp", EthTypeARP, 0}, {"rarp", EthTypeRARP, 0},
	{"icmp", EthTypeIPv4, IPProtoICMP}, {"tcp", EthTypeIPv4, IPProtoTCP},
	{"udp", EthTypeIPv4, IPProtoUDP}, {"sctp", EthTypeIPv4, IPProtoSCTP},
	{"icmp6", EthTypeIPv6, IPProtoICMPv6}, {"tcp6", EthTypeIPv6, IPProtoTCP},
	{"udp6", EthTypeIPv6, IPProtoUDP}, {"sctp6", EthTypeIPv6, IPProtoSCTP},
}

func (p *flowParser) parseMatch(s string) error {
	for {
		item, rest, ok, err := nextKV(s)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		s = rest
		if err := p.item(item); err != nil {
			return err
		}
	}
	return p.checkPrereqs()
}

// set merges a field (value v under mask m) into the match, refusing
// contradictions with fields set earlier.
func (p *flowParser) set(name string, v, m Key) error {
	cur := &p.fm.Match
	cm, ck, nm, nk := cur.Mask.Words(), cur.Key.Words(), m.Words(), v.Words()
	for i := range cm {
		if cm[i]&nm[i]&(ck[i]^nk[i]) != 0 {
			return perr(ErrFlowValue, "%s: contradicts an earlier field of the match", name)
		}
	}
	for i := range cm {
		ck[i] |= nk[i] & nm[i]
		cm[i] |= nm[i]
	}
	p.fields = append(p.fields, name)
	return nil
}

func (p *flowParser) item(it kv) error {
	name := it.key
	for _, pr := range protocols {
		if name == pr.name {
			if it.hasVal {
				return perr(ErrFlowSyntax, "%s takes no value (got %q)", name, it.val)
			}
			var v, m Key
			v.DlType, m.DlType = pr.dlType, 0xffff
			if pr.proto != 0 {
				v.NwProto, m.NwProto = pr.proto, 0xff
			}
			return p.set(name, v, m)
		}
	}
	if !it.hasVal {
		if name == "reset_counts" && !p.matchOnly && p.mode != ModeDelete {
			p.fm.ResetCounts = true
			return nil
		}
		if name == "check_overlap" && !p.matchOnly && p.mode == ModeAdd {
			p.fm.CheckOverlap = true
			return nil
		}
		if isMatchField(name) || isFlowParam(name) {
			return perr(ErrFlowSyntax, "field %s needs a value", name)
		}
		return perr(ErrFlowSyntax, "unknown field %q", name)
	}
	val := it.val
	if it.paren {
		return perr(ErrFlowSyntax, "%s: unexpected \"(\" (write %s=VALUE)", name, name)
	}
	if isFlowParam(name) {
		if p.matchOnly {
			return perr(ErrNotAllowed, "%s is not a match field", name)
		}
		return p.param(name, val)
	}
	var v, m Key
	switch name {
	case "in_port":
		port, err := parsePort(name, val, p.ports)
		if err != nil {
			return err
		}
		v.InPort, m.InPort = port, 0xffffffff
	case "dl_src", "eth_src", "dl_dst", "eth_dst", "arp_sha", "arp_tha":
		mac, mask, err := parseMACMasked(name, val)
		if err != nil {
			return err
		}
		switch name {
		case "dl_src", "eth_src":
			v.DlSrc, m.DlSrc = mac, mask
		case "dl_dst", "eth_dst":
			v.DlDst, m.DlDst = mac, mask
		case "arp_sha":
			v.ArpSha, m.ArpSha = mac, mask
		default:
			v.ArpTha, m.ArpTha = mac, mask
		}
	case "dl_vlan", "dl_vlan1":
		i := vlanIndex(name)
		n, err := parseNum(name, val, 0xffff)
		if err != nil {
			return err
		}
		switch {
		case n == 0xffff:
			// No tag at all: TCI (including the CFI bit) must be 0.
			v.VLAN[i].TCI, m.VLAN[i].TCI = 0, 0xffff
		case n > VLANVIDMask:
			return perr(ErrFlowValue, "%s: %d is not a valid VLAN ID (0..4095, or 0xffff for untagged)", name, n)
		default:
			v.VLAN[i].TCI, m.VLAN[i].TCI = uint16(n)|VLANCFI, VLANVIDMask|VLANCFI
		}
	case "dl_vlan_pcp", "dl_vlan_pcp1":
		i := vlanIndex(name)
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		if n > 7 {
			return perr(ErrFlowValue, "%s: %d is not a valid VLAN priority (0..7)", name, n)
		}
		v.VLAN[i].TCI, m.VLAN[i].TCI = uint16(n)<<13|VLANCFI, VLANPCPMask|VLANCFI
	case "vlan_tci", "vlan_tci1":
		i := vlanIndex(name)
		tci, mask, err := parseNumMasked(name, val, 0xffff)
		if err != nil {
			return err
		}
		// Like ovs-ofctl, vlan_tci replaces whatever dl_vlan/dl_vlan_pcp set.
		p.fm.Match.Key.VLAN[i].TCI, p.fm.Match.Mask.VLAN[i].TCI = 0, 0
		v.VLAN[i].TCI, m.VLAN[i].TCI = uint16(tci&mask), uint16(mask)
	case "nw_frag", "ip_frag":
		var fv, fm uint8
		switch val {
		case "no":
			fv, fm = 0, FragAny|FragLater
		case "yes":
			fv, fm = FragAny, FragAny
		case "first":
			fv, fm = FragAny, FragAny|FragLater
		case "later":
			fv, fm = FragAny|FragLater, FragAny|FragLater
		case "not_later":
			fv, fm = 0, FragLater
		default:
			return perr(ErrFlowValue, "%s: %q is not one of no, yes, first, later, not_later", name, val)
		}
		v.NwFrag, m.NwFrag = fv, fm
	case "ipv6_label":
		n, mask, err := parseNumMasked(name, val, 0xfffff)
		if err != nil {
			return err
		}
		v.IPv6Label, m.IPv6Label = uint32(n&mask), uint32(mask)
	case "tcp_flags":
		f, mask, err := parseTCPFlags(name, val)
		if err != nil {
			return err
		}
		v.TCPFlags, m.TCPFlags = f, mask
	case "dl_type", "eth_type":
		n, err := parseNum(name, val, 0xffff)
		if err != nil {
			return err
		}
		v.DlType, m.DlType = uint16(n), 0xffff
	case "nw_src", "nw_dst", "ip_src", "ip_dst", "arp_spa", "arp_tpa":
		a, mask, err := parseIPv4Masked(name, val)
		if err != nil {
			return err
		}
		if name == "nw_src" || name == "ip_src" || name == "arp_spa" {
			copy(v.NwSrc[:4], a[:])
			copy(m.NwSrc[:4], mask[:])
		} else {
			copy(v.NwDst[:4], a[:])
			copy(m.NwDst[:4], mask[:])
		}
	case "ipv6_src", "ipv6_dst":
		a, mask, err := parseIPv6Masked(name, val)
		if err != nil {
			return err
		}
		if name == "ipv6_src" {
			v.NwSrc, m.NwSrc = a, mask
		} else {
			v.NwDst, m.NwDst = a, mask
		}
	case "nw_proto", "ip_proto":
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		v.NwProto, m.NwProto = uint8(n), 0xff
	case "arp_op":
		n, err := parseNum(name, val, 0xffff)
		if err != nil {
			return err
		}
		if n > 0xff {
			return perr(ErrFlowValue, "arp_op: %d is out of range (only opcodes 0..255 can be matched)", n)
		}
		v.NwProto, m.NwProto = uint8(n), 0xff
	case "nw_tos":
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		if n&3 != 0 {
			return perr(ErrFlowValue, "nw_tos: %d has ECN bits set (use a multiple of 4, or ip_dscp=%d)", n, n>>2)
		}
		v.NwTOS, m.NwTOS = uint8(n), 0xfc
	case "ip_dscp":
		n, err := parseNum(name, val, 0x3f)
		if err != nil {
			return err
		}
		v.NwTOS, m.NwTOS = uint8(n)<<2, 0xfc
	case "nw_ecn", "ip_ecn":
		n, err := parseNum(name, val, 3)
		if err != nil {
			return err
		}
		v.NwTOS, m.NwTOS = uint8(n), 0x03
	case "nw_ttl":
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		v.NwTTL, m.NwTTL = uint8(n), 0xff
	case "tp_src", "tp_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "sctp_src", "sctp_dst":
		n, mask, err := parseNumMasked(name, val, 0xffff)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "_src") {
			v.TpSrc, m.TpSrc = uint16(n&mask), uint16(mask)
		} else {
			v.TpDst, m.TpDst = uint16(n&mask), uint16(mask)
		}
	case "icmp_type", "icmp_code", "icmpv6_type", "icmpv6_code":
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		if strings.HasSuffix(name, "_type") {
			v.TpSrc, m.TpSrc = uint16(n), 0xffff
		} else {
			v.TpDst, m.TpDst = uint16(n), 0xffff
		}
	default:
		return perr(ErrFlowSyntax, "unknown field %q", name)
	}
	return p.set(name, v, m)
}

func isMatchField(name string) bool {
	switch name {
	case "in_port", "dl_src", "eth_src", "dl_dst", "eth_dst", "arp_sha", "arp_tha",
		"dl_vlan", "dl_vlan_pcp", "vlan_tci", "dl_vlan1", "dl_vlan_pcp1", "vlan_tci1", "dl_type", "eth_type",
		"nw_frag", "ip_frag", "ipv6_label", "tcp_flags",
		"nw_src", "nw_dst", "ip_src", "ip_dst", "arp_spa", "arp_tpa", "ipv6_src", "ipv6_dst",
		"nw_proto", "ip_proto", "arp_op", "nw_tos", "ip_dscp", "nw_ecn", "ip_ecn", "nw_ttl",
		"tp_src", "tp_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "sctp_src", "sctp_dst",
		"icmp_type", "icmp_code", "icmpv6_type", "icmpv6_code":
		return true
	}
	return false
}

func isFlowParam(name string) bool {
	switch name {
	case "priority", "cookie", "table", "idle_timeout", "hard_timeout", "out_port",
		"duration", "n_packets", "n_bytes", "idle_age", "hard_age":
		return true
	}
	return false
}

// param handles the non-match keywords of a flow.
func (p *flowParser) param(name, val string) error {
	switch name {
	case "duration", "n_packets", "n_bytes", "idle_age", "hard_age":
		return nil // statistics from a dump-flows line
	case "priority":
		n, err := parseNum(name, val, 0xffff)
		if err != nil {
			return err
		}
		p.fm.Priority = uint16(n)
	case "table":
		n, err := parseNum(name, val, 0xff)
		if err != nil {
			return err
		}
		if n == TableAll {
			if p.mode == ModeAdd {
				return perr(ErrFlowValue, "table: 255 (all tables) cannot be used to add a flow; use 0..254")
			}
		}
		p.fm.Table = uint8(n)
	case "idle_timeout", "hard_timeout":
		if p.mode == ModeDelete {
			return perr(ErrNotAllowed, "%s is only valid when adding or modifying flows", name)
		}
		n, err := parseNum(name, val, 0xffff)
		if err != nil {
			return err
		}
		if name == "idle_timeout" {
			p.fm.IdleTimeout = uint16(n)
		} else {
			p.fm.HardTimeout = uint16(n)
		}
	case "out_port":
		if p.mode == ModeAdd {
			return perr(ErrNotAllowed, "out_port is only valid when deleting, modifying or dumping flows")
		}
		port, err := parsePort(name, val, p.ports)
		if err != nil {
			return err
		}
		p.fm.OutPort = port
	case "cookie":
		vs, ms, masked := strings.Cut(val, "/")
		c, err := parseU64(name, vs)
		if err != nil {
			return err
		}
		if masked {
			if p.mode == ModeAdd {
				return perr(ErrNotAllowed, "cookie: a mask (%s) cannot be used when adding a flow", val)
			}
			mask, err := parseU64(name, ms)
			if err != nil {
				return err
			}
			p.fm.Cookie, p.fm.CookieMask = c&mask, mask
			return nil
		}
		if p.mode == ModeDelete {
			return perr(ErrNotAllowed, "cookie: cannot set a cookie here; to match on one give a mask, e.g. cookie=%s/-1", vs)
		}
		p.fm.Cookie, p.fm.CookieSet = c, true
	}
	return nil
}

// checkPrereqs enforces Open vSwitch's field prerequisites.
func (p *flowParser) checkPrereqs() error {
	m := &p.fm.Match
	dlSet := m.Mask.DlType == 0xffff
	dl := m.Key.DlType
	protoSet := m.Mask.NwProto == 0xff
	proto := m.Key.NwProto
	ipv4 := dlSet && dl == EthTypeIPv4
	ipv6 := dlSet && dl == EthTypeIPv6
	arp := dlSet && (dl == EthTypeARP || dl == EthTypeRARP)
	l4 := func(protos ...uint8) bool {
		if !(ipv4 || ipv6) || !protoSet {
			return false
		}
		for _, x := range protos {
			if proto == x {
				return true
			}
		}
		return false
	}
	for _, f := range p.fields {
		var ok bool
		var need string
		switch f {
		case "nw_src", "nw_dst":
			ok, need = ipv4 || arp, "ip, arp or rarp (e.g. \"ip,"+f+"=...\")"
		case "ip_src", "ip_dst":
			ok, need = ipv4, "ip (dl_type=0x0800)"
		case "arp_spa", "arp_tpa", "arp_sha", "arp_tha", "arp_op":
			ok, need = arp, "arp or rarp"
		case "ipv6_src", "ipv6_dst", "ipv6_label":
			ok, need = ipv6, "ipv6 (dl_type=0x86dd)"
		case "nw_frag", "ip_frag":
			ok, need = ipv4 || ipv6, "ip or ipv6"
		case "tcp_flags":
			ok, need = l4(IPProtoTCP), "tcp or tcp6"
		case "nw_proto", "ip_proto", "nw_tos", "ip_dscp", "nw_ecn", "ip_ecn", "nw_ttl":
			ok, need = ipv4 || ipv6, "ip or ipv6"
		case "tp_src", "tp_dst":
			ok, need = l4(IPProtoTCP, IPProtoUDP, IPProtoSCTP), "tcp, udp or sctp (or tcp6, udp6, sctp6)"
		case "tcp_src", "tcp_dst":
			ok, need = l4(IPProtoTCP), "tcp or tcp6"
		case "udp_src", "udp_dst":
			ok, need = l4(IPProtoUDP), "udp or udp6"
		case "sctp_src", "sctp_dst":
			ok, need = l4(IPProtoSCTP), "sctp or sctp6"
		case "icmp_type", "icmp_code":
			ok, need = ipv4 && protoSet && proto == IPProtoICMP || ipv6 && protoSet && proto == IPProtoICMPv6, "icmp or icmp6"
		case "icmpv6_type", "icmpv6_code":
			ok, need = ipv6 && protoSet && proto == IPProtoICMPv6, "icmp6"
		default:
			ok = true
		}
		if !ok {
			return perr(ErrPrerequisite, "%s: prerequisite not met: the match must also specify %s", f, need)
		}
	}
	return nil
}

// parseUint parses decimal or 0x-prefixed hexadecimal.
func parseUint(s string) (uint64, bool) {
	base := 10
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s, base = s[2:], 16
	}
	if s == "" || s[0] == '+' || s[0] == '-' || strings.IndexByte(s, '_') >= 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}

func parseNum(name, s string, max uint64) (uint64, error) {
	n, ok := parseUint(s)
	if !ok {
		if s == "" {
			return 0, perr(ErrFlowValue, "%s: missing value", name)
		}
		return 0, perr(ErrFlowValue, "%s: %q is not a number", name, s)
	}
	if n > max {
		return 0, perr(ErrFlowValue, "%s: %d is out of range (0..%d)", name, n, max)
	}
	return n, nil
}

func parseNumMasked(name, s string, max uint64) (v, m uint64, err error) {
	vs, ms, masked := strings.Cut(s, "/")
	if v, err = parseNum(name, vs, max); err != nil {
		return 0, 0, err
	}
	m = max
	if masked {
		if m, err = parseNum(name, ms, max); err != nil {
			return 0, 0, err
		}
	}
	return v, m, nil
}

func parseU64(name, s string) (uint64, error) {
	if s == "-1" {
		return ^uint64(0), nil
	}
	n, ok := parseUint(s)
	if !ok {
		return 0, perr(ErrFlowValue, "%s: %q is not a 64-bit number", name, s)
	}
	return n, nil
}

// parsePort parses a port number, a reserved name or a bridge port name.
func parsePort(name, s string, ports PortLookup) (uint32, error) {
	if s == "" {
		return 0, perr(ErrFlowValue, "%s: missing port", name)
	}
	if n, ok := parseUint(s); ok {
		if n >= PortMax && !isReservedPort(n) {
			return 0, perr(ErrFlowValue, "%s: %d is not a valid port number (1..%d or a reserved port)", name, n, PortMax-1)
		}
		return uint32(n), nil
	}
	for _, rp := range reservedPorts {
		if strings.EqualFold(s, rp.name) {
			return rp.port, nil
		}
	}
	if ports != nil {
		if n, ok := ports(s); ok {
			return n, nil
		}
	}
	return 0, perr(ErrUnknownPort, "%s: unknown port %q", name, s)
}

func isReservedPort(n uint64) bool { return n >= PortInPort && n <= PortNone }

func parseMAC(name, s string) ([6]byte, error) {
	var mac [6]byte
	rest := s
	for i := range 6 {
		var part string
		if i < 5 {
			var ok bool
			part, rest, ok = strings.Cut(rest, ":")
			if !ok {
				return mac, perr(ErrFlowValue, "%s: %q is not a valid Ethernet address", name, s)
			}
		} else {
			part = rest
		}
		if len(part) < 1 || len(part) > 2 {
			return mac, perr(ErrFlowValue, "%s: %q is not a valid Ethernet address", name, s)
		}
		n, err := strconv.ParseUint(part, 16, 8)
		if err != nil {
			return mac, perr(ErrFlowValue, "%s: %q is not a valid Ethernet address", name, s)
		}
		mac[i] = byte(n)
	}
	return mac, nil
}

func parseMACMasked(name, s string) (v, m [6]byte, err error) {
	vs, ms, masked := strings.Cut(s, "/")
	if v, err = parseMAC(name, vs); err != nil {
		return
	}
	m = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if masked {
		if m, err = parseMAC(name, ms); err != nil {
			return
		}
	}
	for i := range v {
		v[i] &= m[i]
	}
	return v, m, nil
}

func parseIPv4Masked(name, s string) (v, m [4]byte, err error) {
	as, ms, masked := strings.Cut(s, "/")
	a, perr1 := netip.ParseAddr(as)
	if perr1 != nil || !a.Is4() {
		return v, m, perr(ErrFlowValue, "%s: %q is not a valid IPv4 address", name, as)
	}
	v = a.As4()
	m = [4]byte{0xff, 0xff, 0xff, 0xff}
	if masked {
		if n, ok := parseUint(ms); ok && !strings.HasPrefix(ms, "0x") {
			if n > 32 {
				return v, m, perr(ErrFlowValue, "%s: prefix length %d is out of range (0..32)", name, n)
			}
			bits := uint32(0)
			if n > 0 {
				bits = ^uint32(0) << (32 - n)
			}
			m = [4]byte{byte(bits >> 24), byte(bits >> 16), byte(bits >> 8), byte(bits)}
		} else {
			ma, e := netip.ParseAddr(ms)
			if e != nil || !ma.Is4() {
				return v, m, perr(ErrFlowValue, "%s: %q is not a valid IPv4 netmask or prefix length", name, ms)
			}
			m = ma.As4()
		}
	}
	for i := range v {
		v[i] &= m[i]
	}
	return v, m, nil
}

func parseIPv6Masked(name, s string) (v, m [16]byte, err error) {
	as, ms, masked := strings.Cut(s, "/")
	a, e := netip.ParseAddr(as)
	if e != nil || !a.Is6() || a.Zone() != "" {
		return v, m, perr(ErrFlowValue, "%s: %q is not a valid IPv6 address", name, as)
	}
	v = a.As16()
	for i := range m {
		m[i] = 0xff
	}
	if masked {
		if n, ok := parseUint(ms); ok && !strings.HasPrefix(ms, "0x") {
			if n > 128 {
				return v, m, perr(ErrFlowValue, "%s: prefix length %d is out of range (0..128)", name, n)
			}
			m = [16]byte{}
			for i := 0; i < int(n); i++ {
				m[i/8] |= 0x80 >> (i % 8)
			}
		} else {
			ma, e := netip.ParseAddr(ms)
			if e != nil || !ma.Is6() || ma.Zone() != "" {
				return v, m, perr(ErrFlowValue, "%s: %q is not a valid IPv6 netmask or prefix length", name, ms)
			}
			m = ma.As16()
		}
	}
	for i := range v {
		v[i] &= m[i]
	}
	return v, m, nil
}

func vlanIndex(name string) int {
	if strings.HasSuffix(name, "1") {
		return 1
	}
	return 0
}

// tcpFlagNames are the names ovs-ofctl uses for TCP flag bits, from bit 0.
var tcpFlagNames = [12]string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns", "[200]", "[400]", "[800]"}

// tcpFlagsMask covers the 12 bits of the TCP flags field.
const tcpFlagsMask = 0x0fff

func tcpFlagBit(s string) (uint16, bool) {
	for i, n := range tcpFlagNames {
		if s == n {
			return 1 << i, true
		}
	}
	return 0, false
}

// parseTCPFlags accepts a number (with an optional /mask), flag names
// joined by "|" (all flags matched), or "+flag-flag..." (only the named
// flags matched), as ovs-ofctl prints them.
func parseTCPFlags(name, s string) (v, m uint16, err error) {
	orig := s
	bad := func() (uint16, uint16, error) {
		return 0, 0, perr(ErrFlowValue, "%s: %q is not a valid TCP flags value (a number, fin|syn|..., or +syn-ack...)", name, orig)
	}
	if s == "" {
		return bad()
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, mk, err := parseNumMasked(name, s, tcpFlagsMask)
		if err != nil {
			return 0, 0, err
		}
		return uint16(n & mk), uint16(mk), nil
	}
	if s[0] == '+' || s[0] == '-' {
		for s != "" {
			sign := s[0]
			if sign != '+' && sign != '-' {
				return bad()
			}
			j := 1
			for j < len(s) && s[j] != '+' && s[j] != '-' {
				j++
			}
			bit, ok := tcpFlagBit(s[1:j])
			if !ok || m&bit != 0 {
				return bad()
			}
			m |= bit
			if sign == '+' {
				v |= bit
			}
			s = s[j:]
		}
		return v, m, nil
	}
	for f := range strings.SplitSeq(s, "|") {
		bit, ok := tcpFlagBit(f)
		if !ok {
			return bad()
		}
		v |= bit
	}
	return v, tcpFlagsMask, nil
}
