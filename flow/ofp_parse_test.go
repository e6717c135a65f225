package flow

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// testPorts knows two named ports, like a bridge with p1 and p2.
func testPorts(name string) (uint32, bool) {
	switch name {
	case "p1":
		return 1, true
	case "p2":
		return 2, true
	case "bond0":
		return 7, true
	}
	return 0, false
}

// ruleOf builds a Rule from a parsed FlowMod the way Table.Add does.
func ruleOf(t testing.TB, fm *FlowMod) *Rule {
	t.Helper()
	tb := NewEmptyTable()
	r, err := tb.Add(fm, 0)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return r
}

// TestParseFlowFields parses one flow per field/shorthand and checks the
// canonical (ovs-ofctl 3.1) printing of the rule.
func TestParseFlowFields(t *testing.T) {
	for _, c := range fieldCases {
		fm, err := ParseFlow(c.in, testPorts)
		if err != nil {
			t.Errorf("ParseFlow(%q): %v", c.in, err)
			continue
		}
		if got := ruleOf(t, fm).String(); got != c.want {
			t.Errorf("ParseFlow(%q) prints\n  %q, want\n  %q", c.in, got, c.want)
		}
	}
}

// fieldCases pairs flows with their canonical printing.
var fieldCases = []struct{ in, want string }{
	{"actions=NORMAL", "actions=NORMAL"},
	{"priority=0,actions=NORMAL", "priority=0 actions=NORMAL"},
	{"priority=32768,actions=NORMAL", "actions=NORMAL"},
	{"priority=65535 in_port=1 actions=drop", "priority=65535,in_port=1 actions=drop"},
	{"in_port=p2,actions=output:p1", "in_port=2 actions=output:1"},
	{"in_port=LOCAL,actions=IN_PORT", "in_port=LOCAL actions=IN_PORT"},
	{"in_port=0xfff8,actions=1", "in_port=IN_PORT actions=output:1"},
	{"dl_src=00:11:22:33:44:55,actions=1", "dl_src=00:11:22:33:44:55 actions=output:1"},
	{"dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=1", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=output:1"},
	{"dl_dst=0a:0B:c:d:e:f/ff:ff:ff:ff:ff:00,actions=1", "dl_dst=0a:0b:0c:0d:0e:00/ff:ff:ff:ff:ff:00 actions=output:1"},
	{"eth_src=00:00:00:00:00:01,eth_dst=00:00:00:00:00:02,actions=1", "dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02 actions=output:1"},
	{"dl_vlan=10,actions=1", "dl_vlan=10 actions=output:1"},
	{"dl_vlan=0,actions=1", "dl_vlan=0 actions=output:1"},
	{"dl_vlan=4095,actions=1", "dl_vlan=4095 actions=output:1"},
	{"dl_vlan=0xffff,actions=1", "vlan_tci=0x0000 actions=output:1"},
	{"dl_vlan_pcp=3,actions=1", "dl_vlan_pcp=3 actions=output:1"},
	{"dl_vlan=10,dl_vlan_pcp=5,actions=1", "dl_vlan=10,dl_vlan_pcp=5 actions=output:1"},
	{"vlan_tci=0x1005,actions=1", "dl_vlan=5,dl_vlan_pcp=0 actions=output:1"},
	{"vlan_tci=0x1000/0x1000,actions=1", "vlan_tci=0x1000/0x1000 actions=output:1"},
	{"vlan_tci=0/0x1000,actions=1", "vlan_tci=0x0000/0x1000 actions=output:1"},
	{"dl_vlan=5,vlan_tci=0x2000/0xe000,actions=1", "vlan_tci=0x2000/0xe000 actions=output:1"},
	{"dl_type=0x0800,actions=1", "ip actions=output:1"},
	{"dl_type=0x88cc,actions=1", "dl_type=0x88cc actions=output:1"},
	{"dl_type=0x800,nw_proto=6,actions=1", "tcp actions=output:1"},
	{"ip,actions=1", "ip actions=output:1"},
	{"ip4,actions=1", "ip actions=output:1"},
	{"ip6,actions=1", "ipv6 actions=output:1"},
	{"ipv4,actions=1", "ip actions=output:1"},
	{"ipv6,actions=1", "ipv6 actions=output:1"},
	{"arp,actions=1", "arp actions=output:1"},
	{"rarp,actions=1", "rarp actions=output:1"},
	{"tcp,actions=1", "tcp actions=output:1"},
	{"udp,actions=1", "udp actions=output:1"},
	{"sctp,actions=1", "sctp actions=output:1"},
	{"icmp,actions=1", "icmp actions=output:1"},
	{"tcp6,actions=1", "tcp6 actions=output:1"},
	{"udp6,actions=1", "udp6 actions=output:1"},
	{"sctp6,actions=1", "sctp6 actions=output:1"},
	{"icmp6,actions=1", "icmp6 actions=output:1"},
	{"ip,nw_proto=47,actions=1", "ip,nw_proto=47 actions=output:1"},
	{"ipv6,nw_proto=1,actions=1", "ipv6,nw_proto=1 actions=output:1"},
	{"ip,nw_src=198.18.0.1,actions=1", "ip,nw_src=198.18.0.1 actions=output:1"},
	{"ip,nw_src=198.18.7.1/16,nw_dst=198.19.0.0/255.255.0.0,actions=1", "ip,nw_src=198.18.0.0/16,nw_dst=198.19.0.0/16 actions=output:1"},
	{"ip,nw_dst=1.2.3.4/255.0.255.0,actions=1", "ip,nw_dst=1.0.3.0/255.0.255.0 actions=output:1"},
	{"ip,nw_src=0.0.0.0/0,actions=1", "ip actions=output:1"},
	{"ip,ip_src=198.18.0.1,ip_dst=198.18.0.2,actions=1", "ip,nw_src=198.18.0.1,nw_dst=198.18.0.2 actions=output:1"},
	{"arp,nw_src=198.18.0.1,actions=1", "arp,arp_spa=198.18.0.1 actions=output:1"},
	{"arp,arp_spa=198.18.0.1,arp_tpa=198.18.0.0/24,arp_op=2,actions=1", "arp,arp_spa=198.18.0.1,arp_tpa=198.18.0.0/24,arp_op=2 actions=output:1"},
	{"arp,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:00,actions=1", "arp,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:00 actions=output:1"},
	{"ipv6,ipv6_src=2001:db8::1,actions=1", "ipv6,ipv6_src=2001:db8::1 actions=output:1"},
	{"ipv6,ipv6_dst=2001:db8:1::5/48,actions=1", "ipv6,ipv6_dst=2001:db8:1::/48 actions=output:1"},
	{"ipv6,ipv6_src=2001:db8::/ffff::,actions=1", "ipv6,ipv6_src=2001::/16 actions=output:1"},
	{"ipv6,ipv6_src=2001:db8::1/ffff::ffff,actions=1", "ipv6,ipv6_src=2001::1/ffff::ffff actions=output:1"},
	{"ip,nw_tos=40,actions=1", "ip,nw_tos=40 actions=output:1"},
	{"ip,ip_dscp=10,actions=1", "ip,nw_tos=40 actions=output:1"},
	{"ip,nw_ecn=3,actions=1", "ip,nw_ecn=3 actions=output:1"},
	{"ip,nw_ttl=64,actions=1", "ip,nw_ttl=64 actions=output:1"},
	{"tcp,tp_src=80,tp_dst=0x1000/0xf000,actions=1", "tcp,tp_src=80,tp_dst=0x1000/0xf000 actions=output:1"},
	{"udp6,tp_dst=53,actions=1", "udp6,tp_dst=53 actions=output:1"},
	{"tcp,tcp_dst=443,actions=1", "tcp,tp_dst=443 actions=output:1"},
	{"udp,udp_src=67,actions=1", "udp,tp_src=67 actions=output:1"},
	{"sctp,sctp_dst=9,actions=1", "sctp,tp_dst=9 actions=output:1"},
	{"icmp,icmp_type=8,icmp_code=0,actions=1", "icmp,icmp_type=8,icmp_code=0 actions=output:1"},
	{"icmp6,icmp_type=135,actions=1", "icmp6,icmp_type=135 actions=output:1"},
	{"icmp6,icmpv6_type=136,icmpv6_code=0,actions=1", "icmp6,icmp_type=136,icmp_code=0 actions=output:1"},
	{"cookie=0x1234,actions=1", "cookie=0x1234, actions=output:1"},
	{"cookie=99,idle_timeout=10,hard_timeout=0x20,actions=1", "cookie=0x63, idle_timeout=10, hard_timeout=32, actions=output:1"},
	{"table=3,priority=5,actions=1", "table=3, priority=5 actions=output:1"},
	{"table=2,cookie=0x5,idle_timeout=10,hard_timeout=20,actions=drop", "cookie=0x5, table=2, idle_timeout=10, hard_timeout=20, actions=drop"},
	{"table=3,ip,actions=drop", "table=3, ip actions=drop"},
	{"tcp,nw_src=1.1.1.1,in_port=1,dl_vlan=3,dl_src=00:00:00:00:00:01,tp_dst=22,nw_tos=4,nw_ttl=9,priority=7,actions=1",
		"priority=7,tcp,in_port=1,dl_vlan=3,dl_src=00:00:00:00:00:01,nw_src=1.1.1.1,nw_tos=4,nw_ttl=9,tp_dst=22 actions=output:1"},
	{"tcp,tcp,nw_proto=6,actions=1", "tcp actions=output:1"},
	{"  ip ,  actions = 1", "ip actions=output:1"},
	{"in_port:1,action=2", "in_port=1 actions=output:2"},
}

// TestParseFlowKey checks the Key/mask encoding of fields, per the OVS
// conventions documented on Key.
func TestParseFlowKey(t *testing.T) {
	fm, err := ParseFlow("tcp,in_port=3,dl_vlan=10,dl_vlan_pcp=2,nw_src=198.18.0.0/15,tp_src=1000,ip_dscp=46,actions=drop", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := fm.Match
	if m.Key.InPort != 3 || m.Mask.InPort != 0xffffffff {
		t.Errorf("in_port: %#x/%#x", m.Key.InPort, m.Mask.InPort)
	}
	if m.Key.VLAN[0].TCI != 0x1000|2<<13|10 || m.Mask.VLAN[0].TCI != 0xffff || m.Mask.VLAN[0].TPID != 0 {
		t.Errorf("tci: %#x/%#x", m.Key.VLAN[0].TCI, m.Mask.VLAN[0].TCI)
	}
	if m.Key.DlType != EthTypeIPv4 || m.Key.NwProto != IPProtoTCP || m.Mask.NwProto != 0xff {
		t.Errorf("dl_type/nw_proto: %#x %d", m.Key.DlType, m.Key.NwProto)
	}
	if [4]byte(m.Key.NwSrc[:4]) != [4]byte{198, 18, 0, 0} || [4]byte(m.Mask.NwSrc[:4]) != [4]byte{255, 254, 0, 0} || m.Mask.NwSrc[4] != 0 {
		t.Errorf("nw_src: %v/%v", m.Key.NwSrc, m.Mask.NwSrc)
	}
	if m.Key.NwTOS != 46<<2 || m.Mask.NwTOS != 0xfc {
		t.Errorf("tos: %#x/%#x", m.Key.NwTOS, m.Mask.NwTOS)
	}
	if m.Key.TpSrc != 1000 || m.Mask.TpSrc != 0xffff || m.Mask.TpDst != 0 {
		t.Errorf("tp: %d/%#x", m.Key.TpSrc, m.Mask.TpSrc)
	}
	if fm.Priority != DefaultPriority || fm.Table != 0 || len(fm.Actions) != 0 {
		t.Errorf("params: %+v", fm)
	}

	// ICMP type/code live in TpSrc/TpDst, the ARP opcode in NwProto.
	fm, _ = ParseFlow("icmp,icmp_type=3,icmp_code=4,actions=drop", nil)
	if fm.Match.Key.TpSrc != 3 || fm.Match.Key.TpDst != 4 {
		t.Errorf("icmp: %+v", fm.Match.Key)
	}
	fm, _ = ParseFlow("arp,arp_op=2,actions=drop", nil)
	if fm.Match.Key.NwProto != 2 || fm.Match.Key.DlType != EthTypeARP {
		t.Errorf("arp_op: %+v", fm.Match.Key)
	}
	// Untagged: TCI 0 under a full mask (CFI must be clear).
	fm, _ = ParseFlow("dl_vlan=0xffff,actions=drop", nil)
	if fm.Match.Key.VLAN[0].TCI != 0 || fm.Match.Mask.VLAN[0].TCI != 0xffff {
		t.Errorf("untagged: %+v", fm.Match)
	}
}

func TestParseFlowErrors(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"in_port=1", "must specify actions", ErrNoActions},
		{"in_port=1,actions", "must specify actions", ErrNoActions},
		{"foo=1,actions=1", `unknown field "foo"`, ErrFlowSyntax},
		{"bogus,actions=1", `unknown field "bogus"`, ErrFlowSyntax},
		{"in_port,actions=1", "field in_port needs a value", ErrFlowSyntax},
		{"ip=1,actions=1", `ip takes no value (got "1")`, ErrFlowSyntax},
		{"dl_vlan=4096,actions=1", "dl_vlan: 4096 is not a valid VLAN ID (0..4095, or 0xffff for untagged)", ErrFlowValue},
		{"dl_vlan=70000,actions=1", "dl_vlan: 70000 is out of range (0..65535)", ErrFlowValue},
		{"dl_vlan=ten,actions=1", `dl_vlan: "ten" is not a number`, ErrFlowValue},
		{"dl_vlan=-1,actions=1", `dl_vlan: "-1" is not a number`, ErrFlowValue},
		{"dl_vlan_pcp=8,actions=1", "dl_vlan_pcp: 8 is not a valid VLAN priority (0..7)", ErrFlowValue},
		{"dl_vlan=0xffff,dl_vlan_pcp=1,actions=1", "dl_vlan_pcp: contradicts an earlier field of the match", ErrFlowValue},
		{"dl_src=zz,actions=1", `dl_src: "zz" is not a valid Ethernet address`, ErrFlowValue},
		{"dl_src=00:11:22:33:44,actions=1", `dl_src: "00:11:22:33:44" is not a valid Ethernet address`, ErrFlowValue},
		{"dl_src=00:11:22:33:44:555,actions=1", `dl_src: "00:11:22:33:44:555" is not a valid Ethernet address`, ErrFlowValue},
		{"dl_dst=00:11:22:33:44:55/ff,actions=1", `dl_dst: "ff" is not a valid Ethernet address`, ErrFlowValue},
		{"nw_src=1.2.3.4,actions=1", `nw_src: prerequisite not met: the match must also specify ip, arp or rarp (e.g. "ip,nw_src=...")`, ErrPrerequisite},
		{"ipv6,nw_src=1.2.3.4,actions=1", "nw_src: prerequisite not met", ErrPrerequisite},
		{"arp,ip_src=1.2.3.4,actions=1", "ip_src: prerequisite not met: the match must also specify ip (dl_type=0x0800)", ErrPrerequisite},
		{"ip,arp_op=1,actions=1", "arp_op: prerequisite not met: the match must also specify arp or rarp", ErrPrerequisite},
		{"ip,arp_sha=00:00:00:00:00:01,actions=1", "arp_sha: prerequisite not met", ErrPrerequisite},
		{"ip,ipv6_src=::1,actions=1", "ipv6_src: prerequisite not met: the match must also specify ipv6 (dl_type=0x86dd)", ErrPrerequisite},
		{"tp_src=80,actions=1", "tp_src: prerequisite not met: the match must also specify tcp, udp or sctp (or tcp6, udp6, sctp6)", ErrPrerequisite},
		{"ip,tp_dst=80,actions=1", "tp_dst: prerequisite not met", ErrPrerequisite},
		{"icmp,tp_dst=80,actions=1", "tp_dst: prerequisite not met", ErrPrerequisite},
		{"udp,tcp_dst=80,actions=1", "tcp_dst: prerequisite not met: the match must also specify tcp or tcp6", ErrPrerequisite},
		{"tcp,icmp_type=8,actions=1", "icmp_type: prerequisite not met: the match must also specify icmp or icmp6", ErrPrerequisite},
		{"nw_proto=6,actions=1", "nw_proto: prerequisite not met: the match must also specify ip or ipv6", ErrPrerequisite},
		{"arp,nw_tos=4,actions=1", "nw_tos: prerequisite not met", ErrPrerequisite},
		{"nw_ttl=4,actions=1", "nw_ttl: prerequisite not met", ErrPrerequisite},
		{"tcp,udp,actions=1", "udp: contradicts an earlier field of the match", ErrFlowValue},
		{"ip,arp,actions=1", "arp: contradicts an earlier field of the match", ErrFlowValue},
		{"in_port=1,in_port=2,actions=1", "in_port: contradicts an earlier field of the match", ErrFlowValue},
		{"ip,nw_src=1.2.3.4/33,actions=1", "nw_src: prefix length 33 is out of range (0..32)", ErrFlowValue},
		{"ip,nw_src=1.2.3,actions=1", `nw_src: "1.2.3" is not a valid IPv4 address`, ErrFlowValue},
		{"ip,nw_src=::1,actions=1", `nw_src: "::1" is not a valid IPv4 address`, ErrFlowValue},
		{"ip,nw_src=1.2.3.4/1.2.3,actions=1", `nw_src: "1.2.3" is not a valid IPv4 netmask or prefix length`, ErrFlowValue},
		{"ipv6,ipv6_src=2001:db8::/129,actions=1", "ipv6_src: prefix length 129 is out of range (0..128)", ErrFlowValue},
		{"ipv6,ipv6_dst=1.2.3.4,actions=1", `ipv6_dst: "1.2.3.4" is not a valid IPv6 address`, ErrFlowValue},
		{"ip,nw_tos=5,actions=1", "nw_tos: 5 has ECN bits set (use a multiple of 4, or ip_dscp=1)", ErrFlowValue},
		{"ip,ip_dscp=64,actions=1", "ip_dscp: 64 is out of range (0..63)", ErrFlowValue},
		{"ip,nw_ttl=300,actions=1", "nw_ttl: 300 is out of range (0..255)", ErrFlowValue},
		{"arp,arp_op=256,actions=1", "arp_op: 256 is out of range (only opcodes 0..255 can be matched)", ErrFlowValue},
		{"tcp,tp_src=65536,actions=1", "tp_src: 65536 is out of range (0..65535)", ErrFlowValue},
		{"icmp,icmp_type=256,actions=1", "icmp_type: 256 is out of range (0..255)", ErrFlowValue},
		{"priority=70000,actions=1", "priority: 70000 is out of range (0..65535)", ErrFlowValue},
		{"table=255,actions=1", "table: 255 (all tables) cannot be used to add a flow", ErrFlowValue},
		{"table=256,actions=1", "table: 256 is out of range (0..255)", ErrFlowValue},
		{"idle_timeout=x,actions=1", `idle_timeout: "x" is not a number`, ErrFlowValue},
		{"cookie=1/1,actions=1", "cookie: a mask (1/1) cannot be used when adding a flow", ErrNotAllowed},
		{"cookie=zz,actions=1", `cookie: "zz" is not a 64-bit number`, ErrFlowValue},
		{"out_port=1,actions=1", "out_port is only valid when deleting, modifying or dumping flows", ErrNotAllowed},
		{"in_port=p9,actions=1", `in_port: unknown port "p9"`, ErrUnknownPort},
		{"in_port=65280,actions=1", "in_port: 65280 is not a valid port number (1..65279 or a reserved port)", ErrFlowValue},
		{"in_port(1),actions=1", `in_port: unexpected "(" (write in_port=VALUE)`, ErrFlowSyntax},
		{"in_port=(1,actions=1", "unbalanced parentheses", ErrFlowSyntax},
		{"=1,actions=1", "missing field name", ErrFlowSyntax},
		{"vlan_tci=0x10000,actions=1", "vlan_tci: 65536 is out of range (0..65535)", ErrFlowValue},
		{"dl_type=,actions=1", "dl_type: missing value", ErrFlowValue},
		{"dl_vlan=1_0,actions=1", `dl_vlan: "1_0" is not a number`, ErrFlowValue},
	}
	for _, c := range cases {
		_, err := ParseFlow(c.in, testPorts)
		if err == nil {
			t.Errorf("ParseFlow(%q) succeeded, want error %q", c.in, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFlow(%q) error\n  %q, want it to contain\n  %q", c.in, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("ParseFlow(%q) error %q is not %v", c.in, err, c.err)
		}
	}
}

func TestParseFlowModModes(t *testing.T) {
	fm, err := ParseFlowMod("cookie=0x10/0xf0,out_port=p2,tcp,priority=5", ModeDelete, testPorts)
	if err != nil {
		t.Fatal(err)
	}
	if fm.Cookie != 0x10 || fm.CookieMask != 0xf0 || fm.CookieSet || fm.OutPort != 2 || fm.Table != TableAll || fm.Priority != 5 {
		t.Errorf("delete: %+v", fm)
	}
	fm, err = ParseFlowMod("", ModeDelete, nil)
	if err != nil || fm.Match != (Match{}) || fm.Table != TableAll || fm.OutPort != PortNone || fm.CookieMask != 0 {
		t.Errorf("empty delete: %+v %v", fm, err)
	}
	fm, err = ParseFlowMod("cookie=-1/-1", ModeDelete, nil)
	if err != nil || fm.Cookie != ^uint64(0) || fm.CookieMask != ^uint64(0) {
		t.Errorf("cookie -1: %+v %v", fm, err)
	}
	for _, c := range []struct {
		in   string
		mode ParseMode
		want string
	}{
		{"ip,actions=1", ModeDelete, "actions are not allowed when deleting or dumping flows"},
		{"cookie=5", ModeDelete, "cookie: cannot set a cookie here; to match on one give a mask, e.g. cookie=5/-1"},
		{"idle_timeout=5", ModeDelete, "idle_timeout is only valid when adding or modifying flows"},
		{"ip", ModeModify, "must specify actions"},
		{"reset_counts", ModeDelete, "unknown field \"reset_counts\""},
	} {
		_, err := ParseFlowMod(c.in, c.mode, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFlowMod(%q, %d) = %v, want %q", c.in, c.mode, err, c.want)
		}
	}
	fm, err = ParseFlowMod("cookie=0x5/-1,tcp,actions=2", ModeModify, nil)
	if err != nil || fm.CookieMask != ^uint64(0) || fm.Cookie != 5 || fm.CookieSet || fm.Table != TableAll {
		t.Errorf("modify filter: %+v %v", fm, err)
	}
	fm, err = ParseFlowMod("reset_counts,cookie=7,tcp,actions=2", ModeModify, nil)
	if err != nil || !fm.CookieSet || fm.Cookie != 7 || !fm.ResetCounts {
		t.Errorf("modify set: %+v %v", fm, err)
	}

	m, err := ParseMatch("in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,ip,nw_src=198.18.0.1", nil)
	if err != nil || m.String() != "ip,in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02,nw_src=198.18.0.1" {
		t.Errorf("ParseMatch: %q %v", m.String(), err)
	}
	if _, err := ParseMatch("priority=5,ip", nil); err == nil || err.Error() != "priority is not a match field" {
		t.Errorf("ParseMatch priority: %v", err)
	}
	if _, err := ParseMatch("ip,actions=1", nil); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("ParseMatch actions: %v", err)
	}
}

func TestParseActions(t *testing.T) {
	mac := [6]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55}
	cases := []struct {
		match, acts string
		want        []Action
		print       string
	}{
		{"", "output:2", []Action{{Kind: ActOutput, Port: 2}}, "output:2"},
		{"", "2,p1,output:p2,output:bond0", []Action{{Kind: ActOutput, Port: 2}, {Kind: ActOutput, Port: 1}, {Kind: ActOutput, Port: 2}, {Kind: ActOutput, Port: 7}}, "output:2,output:1,output:2,output:7"},
		{"", "NORMAL,FLOOD,ALL,IN_PORT,LOCAL,CONTROLLER", []Action{{Kind: ActNormal}, {Kind: ActFlood}, {Kind: ActAll}, {Kind: ActInPort}, {Kind: ActLocal}, {Kind: ActController, Value: 65535}}, "NORMAL,FLOOD,ALL,IN_PORT,LOCAL,CONTROLLER:65535"},
		{"", "normal,output:flood,output:LOCAL,output:in_port,output:65532", []Action{{Kind: ActNormal}, {Kind: ActFlood}, {Kind: ActLocal}, {Kind: ActInPort}, {Kind: ActAll}}, "NORMAL,FLOOD,LOCAL,IN_PORT,ALL"},
		{"", "controller:100,controller(max_len=64),output:controller", []Action{{Kind: ActController, Value: 100}, {Kind: ActController, Value: 64}, {Kind: ActController, Value: 65535}}, "CONTROLLER:100,CONTROLLER:64,CONTROLLER:65535"},
		{"", "drop", nil, "drop"},
		{"", "", nil, "drop"},
		{"", "mod_vlan_vid:10,mod_vlan_pcp:7", []Action{{Kind: ActModVLANVID, Value: 10}, {Kind: ActModVLANPCP, Value: 7}}, "mod_vlan_vid:10,mod_vlan_pcp:7"},
		{"", "strip_vlan,pop_vlan", []Action{{Kind: ActStripVLAN}, {Kind: ActStripVLAN}}, "strip_vlan,strip_vlan"},
		{"", "push_vlan:0x8100,push_vlan:0x88a8", []Action{{Kind: ActPushVLAN, Value: 0x8100}, {Kind: ActPushVLAN, Value: 0x88a8}}, "push_vlan:0x8100,push_vlan:0x88a8"},
		{"", "mod_dl_src:00:11:22:33:44:55,mod_dl_dst:00:11:22:33:44:55", []Action{{Kind: ActSetDlSrc, MAC: mac}, {Kind: ActSetDlDst, MAC: mac}}, "mod_dl_src:00:11:22:33:44:55,mod_dl_dst:00:11:22:33:44:55"},
		{"", "mod_nw_src:198.18.0.1,mod_nw_dst:198.18.0.2,mod_nw_tos:184", []Action{{Kind: ActSetNwSrc, Addr: netip.MustParseAddr("198.18.0.1")}, {Kind: ActSetNwDst, Addr: netip.MustParseAddr("198.18.0.2")}, {Kind: ActSetNwTOS, Value: 184}}, "mod_nw_src:198.18.0.1,mod_nw_dst:198.18.0.2,mod_nw_tos:184"},
		{"", "mod_tp_src:80,mod_tp_dst:0x1f90", []Action{{Kind: ActSetTpSrc, Value: 80}, {Kind: ActSetTpDst, Value: 8080}}, "mod_tp_src:80,mod_tp_dst:8080"},
		{"", "resubmit:3,resubmit(,2),resubmit(p1,4),resubmit(in_port,1),resubmit:LOCAL", []Action{{Kind: ActResubmit, Port: 3, Table: TableAll}, {Kind: ActResubmit, Port: PortInPort, Table: 2}, {Kind: ActResubmit, Port: 1, Table: 4}, {Kind: ActResubmit, Port: PortInPort, Table: 1}, {Kind: ActResubmit, Port: PortLocal, Table: TableAll}}, "resubmit:3,resubmit(,2),resubmit(1,4),resubmit(,1),resubmit:LOCAL"},
		{"", "resubmit(5,)", []Action{{Kind: ActResubmit, Port: 5, Table: TableAll}}, "resubmit:5"},
		// set_field forms of the mod_* rewrites normalise to them.
		{"", "set_field:00:11:22:33:44:55->eth_src,set_field:00:11:22:33:44:55->dl_dst", []Action{{Kind: ActSetDlSrc, MAC: mac}, {Kind: ActSetDlDst, MAC: mac}}, "mod_dl_src:00:11:22:33:44:55,mod_dl_dst:00:11:22:33:44:55"},
		{"tcp", "set_field:1.2.3.4->ip_src,set_field:1.2.3.5->nw_dst,set_field:46->ip_dscp,set_field:8->nw_tos,set_field:80->tcp_src,set_field:81->tp_dst", []Action{{Kind: ActSetNwSrc, Addr: netip.MustParseAddr("1.2.3.4")}, {Kind: ActSetNwDst, Addr: netip.MustParseAddr("1.2.3.5")}, {Kind: ActSetNwTOS, Value: 184}, {Kind: ActSetNwTOS, Value: 8}, {Kind: ActSetTpSrc, Value: 80}, {Kind: ActSetTpDst, Value: 81}}, "mod_nw_src:1.2.3.4,mod_nw_dst:1.2.3.5,mod_nw_tos:184,mod_nw_tos:8,mod_tp_src:80,mod_tp_dst:81"},
		{"udp6", "set_field:53->udp_dst,set_field:2001:db8::1->ipv6_src,set_field:2001:db8::2->ipv6_dst", []Action{{Kind: ActSetTpDst, Value: 53}, {Kind: ActSetIPv6Src, Addr: netip.MustParseAddr("2001:db8::1")}, {Kind: ActSetIPv6Dst, Addr: netip.MustParseAddr("2001:db8::2")}}, "mod_tp_dst:53,set_field:2001:db8::1->ipv6_src,set_field:2001:db8::2->ipv6_dst"},
		{"dl_vlan=5", "set_field:7->vlan_vid,set_field:4103->vlan_vid,set_field:2->vlan_pcp", []Action{{Kind: ActSetVLANVID, Value: 7}, {Kind: ActSetVLANVID, Value: 7}, {Kind: ActSetVLANPCP, Value: 2}}, "set_field:4103->vlan_vid,set_field:4103->vlan_vid,set_field:2->vlan_pcp"},
		{"", "push_vlan:0x8100,set_field:7->vlan_vid", []Action{{Kind: ActPushVLAN, Value: 0x8100}, {Kind: ActSetVLANVID, Value: 7}}, "push_vlan:0x8100,set_field:4103->vlan_vid"},
		{"", "mod_vlan_vid:3,set_field:7->vlan_pcp", []Action{{Kind: ActModVLANVID, Value: 3}, {Kind: ActSetVLANPCP, Value: 7}}, "mod_vlan_vid:3,set_field:7->vlan_pcp"},
		{"", "mod_nw_ttl:5,mod_nw_ecn:3", []Action{{Kind: ActSetNwTTL, Value: 5}, {Kind: ActSetNwECN, Value: 3}}, "mod_nw_ttl:5,mod_nw_ecn:3"},
		{"ipv6", "set_field:9->nw_ttl,set_field:1->ip_ecn,set_field:2->nw_ecn", []Action{{Kind: ActSetNwTTL, Value: 9}, {Kind: ActSetNwECN, Value: 1}, {Kind: ActSetNwECN, Value: 2}}, "mod_nw_ttl:9,mod_nw_ecn:1,mod_nw_ecn:2"},
		{"", "output:1,goto_table:3", []Action{{Kind: ActOutput, Port: 1}, {Kind: ActGotoTable, Table: 3}}, "output:1,goto_table:3"},
		// mod_* rewrites need no protocol match (OpenFlow 1.0 semantics).
		{"arp", "mod_nw_src:1.2.3.4,mod_tp_src:1", []Action{{Kind: ActSetNwSrc, Addr: netip.MustParseAddr("1.2.3.4")}, {Kind: ActSetTpSrc, Value: 1}}, "mod_nw_src:1.2.3.4,mod_tp_src:1"},
	}
	for _, c := range cases {
		m, err := ParseMatch(c.match, testPorts)
		if err != nil {
			t.Fatal(err)
		}
		acts, err := ParseActions(c.acts, &m, testPorts)
		if err != nil {
			t.Errorf("ParseActions(%q): %v", c.acts, err)
			continue
		}
		if len(acts) != len(c.want) {
			t.Errorf("ParseActions(%q) = %+v, want %+v", c.acts, acts, c.want)
			continue
		}
		for i := range acts {
			if acts[i] != c.want[i] {
				t.Errorf("ParseActions(%q)[%d] = %+v, want %+v", c.acts, i, acts[i], c.want[i])
			}
		}
		if got := FormatActions(acts); got != c.print {
			t.Errorf("FormatActions(%q) = %q, want %q", c.acts, got, c.print)
		}
	}
}

func TestParseActionErrors(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"actions=bogus", `unknown action "bogus"`, ErrFlowSyntax},
		{"actions=bogus:1", `unknown action "bogus"`, ErrFlowSyntax},
		{"actions=p9", `unknown action "p9"`, ErrFlowSyntax},
		{"actions=output:p9", `output: unknown port "p9"`, ErrUnknownPort},
		{"actions=output:65280", "output: 65280 is not a valid port number (1..65279 or a reserved port)", ErrFlowValue},
		{"actions=output:NONE", "output: cannot output to NONE", ErrFlowValue},
		{"actions=output", "action output needs an argument", ErrFlowSyntax},
		{"actions=output:", "action output needs an argument", ErrFlowSyntax},
		{"actions=drop,1", `"drop" cannot be combined with other actions`, ErrFlowSyntax},
		{"actions=1,drop", `"drop" cannot be combined with other actions`, ErrFlowSyntax},
		{"actions=NORMAL:1", `action NORMAL takes no argument (got "1")`, ErrFlowSyntax},
		{"actions=strip_vlan:1", `action strip_vlan takes no argument (got "1")`, ErrFlowSyntax},
		{"actions=mod_vlan_vid:4096", "mod_vlan_vid: 4096 is not a valid VLAN ID (0..4095)", ErrFlowValue},
		{"actions=mod_vlan_vid", "action mod_vlan_vid needs an argument", ErrFlowSyntax},
		{"actions=mod_vlan_pcp:8", "mod_vlan_pcp: 8 is not a valid VLAN priority (0..7)", ErrFlowValue},
		{"actions=push_vlan:0x800", "push_vlan: 0x800 is not a VLAN ethertype (0x8100 or 0x88a8)", ErrFlowValue},
		{"actions=mod_dl_src:00:11", `mod_dl_src: "00:11" is not a valid Ethernet address`, ErrFlowValue},
		{"actions=mod_nw_src:1.2.3.256", `mod_nw_src: "1.2.3.256" is not a valid IPv4 address`, ErrFlowValue},
		{"actions=mod_nw_dst:2001:db8::1", `mod_nw_dst: "2001:db8::1" is not a valid IPv4 address`, ErrFlowValue},
		{"actions=mod_nw_tos:5", "mod_nw_tos: 5 is not a valid TOS (the two ECN bits must be 0)", ErrFlowValue},
		{"actions=mod_tp_dst:65536", "mod_tp_dst: 65536 is out of range (0..65535)", ErrFlowValue},
		{"actions=goto_table:2,output:1", "goto_table must be the last action", ErrFlowSyntax},
		{"table=3,actions=goto_table:3", "goto_table: table 3 is not after this rule's table 3", ErrFlowValue},
		{"actions=goto_table:255", "goto_table: 255 is out of range (0..254)", ErrFlowValue},
		{"actions=mod_nw_ecn:4", "mod_nw_ecn: 4 is out of range (0..3)", ErrFlowValue},
		{"actions=mod_nw_ttl:256", "mod_nw_ttl: 256 is out of range (0..255)", ErrFlowValue},
		{"arp,actions=set_field:1->nw_ttl", "set_field: nw_ttl lacks its prerequisites: the match must specify ip or ipv6", ErrPrerequisite},
		{"actions=set_field:1.2.3.4->ip_src", "set_field: ip_src lacks its prerequisites: the match must specify ip", ErrPrerequisite},
		{"ipv6,actions=set_field:1.2.3.4->nw_src", "set_field: nw_src lacks its prerequisites", ErrPrerequisite},
		{"ip,actions=set_field:80->tcp_src", "set_field: tcp_src lacks its prerequisites: the match must specify tcp or tcp6", ErrPrerequisite},
		{"udp,actions=set_field:80->tp_src,set_field:80->tcp_src", "set_field: tcp_src lacks its prerequisites", ErrPrerequisite},
		{"actions=set_field:5->vlan_vid", "set_field: vlan_vid lacks its prerequisites: the packet must have a VLAN tag", ErrPrerequisite},
		{"dl_vlan=5,actions=strip_vlan,set_field:5->vlan_pcp", "set_field: vlan_pcp lacks its prerequisites", ErrPrerequisite},
		{"vlan_tci=0/0x1000,actions=set_field:5->vlan_vid", "set_field: vlan_vid lacks its prerequisites", ErrPrerequisite},
		{"actions=set_field:3->ip_dscp", "set_field: ip_dscp lacks its prerequisites: the match must specify ip or ipv6", ErrPrerequisite},
		{"ip,actions=set_field:2001:db8::1->ipv6_src", "set_field: ipv6_src lacks its prerequisites: the match must specify ipv6", ErrPrerequisite},
		{"dl_vlan=1,actions=set_field:8192->vlan_vid", "set_field vlan_vid: 8192 is out of range (0..8191)", ErrFlowValue},
		{"dl_vlan=1,actions=set_field:8->vlan_pcp", "set_field vlan_pcp: 8 is out of range (0..7)", ErrFlowValue},
		{"ip,actions=set_field:64->ip_dscp", "set_field ip_dscp: 64 is out of range (0..63)", ErrFlowValue},
		{"ip,actions=set_field:5->nw_tos", "set_field nw_tos: 5 is not a valid TOS", ErrFlowValue},
		{"ip,actions=set_field:1.2.3.4/8->ip_src", "set_field: masked values (1.2.3.4/8) are not supported", ErrFlowValue},
		{"actions=set_field:1->in_port", `set_field: unknown or unsupported field "in_port"`, ErrFlowSyntax},
		{"actions=set_field:1", `set_field: "1": write set_field:VALUE->FIELD`, ErrFlowSyntax},
		{"actions=set_field:zz->eth_src", `set_field eth_src: "zz" is not a valid Ethernet address`, ErrFlowValue},
		{"actions=resubmit(,)", "resubmit: at least one of the port and the table must be given", ErrFlowSyntax},
		{"actions=resubmit(1)", "resubmit: write resubmit(PORT,TABLE) or resubmit:PORT", ErrFlowSyntax},
		{"actions=resubmit(,255)", "resubmit: 255 is out of range (0..254)", ErrFlowValue},
		{"actions=resubmit:NORMAL", "resubmit: cannot resubmit as if from NORMAL", ErrFlowValue},
		{"actions=resubmit:p7", `resubmit: unknown port "p7"`, ErrUnknownPort},
		{"actions=controller(userdata=1)", `controller: unsupported option "userdata=1" (only max_len=N)`, ErrFlowSyntax},
		{"actions=output:(1", "unbalanced parentheses", ErrFlowSyntax},
		{"actions=output:1)", "unbalanced parentheses", ErrFlowSyntax},
	}
	for _, c := range cases {
		_, err := ParseFlow(c.in, testPorts)
		if err == nil {
			t.Errorf("ParseFlow(%q) succeeded, want error %q", c.in, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFlow(%q) error\n  %q, want it to contain\n  %q", c.in, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("ParseFlow(%q) error %q is not %v", c.in, err, c.err)
		}
	}
}

// TestFormatKey checks the ofproto/trace "Flow:" form against lines
// printed by Open vSwitch 3.1 and that ParseMatch reads them back.
func TestFormatKey(t *testing.T) {
	lines := []string{
		"icmp,in_port=1,vlan_tci=0x0000,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,icmp_type=8,icmp_code=0",
		"arp,in_port=1,dl_vlan=10,dl_vlan_pcp=0,vlan_tci1=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,arp_spa=0.0.0.0,arp_tpa=0.0.0.0,arp_op=1,arp_sha=00:00:00:00:00:00,arp_tha=00:00:00:00:00:00",
		"in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,dl_type=0x88cc",
		"tcp6,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,ipv6_src=::,ipv6_dst=::,ipv6_label=0x00000,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=0,tp_dst=0,tcp_flags=0",
		"tcp,in_port=2,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=198.18.0.1,nw_dst=0.0.0.0,nw_tos=4,nw_ecn=0,nw_ttl=3,nw_frag=no,tp_src=0,tp_dst=80,tcp_flags=syn|ack",
		"tcp,in_port=3,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=0.0.0.0,nw_dst=0.0.0.0,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=later",
		"rarp,in_port=LOCAL,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,arp_spa=0.0.0.0,arp_tpa=0.0.0.0,arp_op=3,arp_sha=00:00:00:00:00:00,arp_tha=00:00:00:00:00:00",
	}
	for _, l := range lines {
		m, err := ParseMatch(l, nil)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", l, err)
			continue
		}
		if got := FormatKey(&m.Key); got != l {
			t.Errorf("FormatKey\n  %q, want\n  %q", got, l)
		}
	}
	// A hand-built key: 802.1ad outer + 802.1Q inner tag, UDP/IPv6.
	var k Key
	k.InPort = 4
	k.VLAN = [2]VLANHdr{{TPID: EthTypeQinQ, TCI: VLANCFI | 100}, {TPID: EthTypeVLAN, TCI: VLANCFI | 3<<13 | 20}}
	k.DlType, k.NwProto, k.NwTTL, k.IPv6Label = EthTypeIPv6, IPProtoUDP, 255, 0x12345
	k.NwSrc = netip.MustParseAddr("2001:db8::1").As16()
	k.TpSrc, k.TpDst = 53, 5353
	want := "udp6,in_port=4,dl_vlan=100,dl_vlan_pcp=0,dl_vlan1=20,dl_vlan_pcp1=3,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,ipv6_src=2001:db8::1,ipv6_dst=::,ipv6_label=0x12345,nw_tos=0,nw_ecn=0,nw_ttl=255,nw_frag=no,tp_src=53,tp_dst=5353"
	if got := FormatKey(&k); got != want {
		t.Errorf("FormatKey\n  %q, want\n  %q", got, want)
	}
	m, err := ParseMatch(want, nil)
	k.VLAN[0].TPID, k.VLAN[1].TPID = 0, 0 // TPIDs are not part of a match
	if err != nil || m.Key != k {
		t.Errorf("ParseMatch(FormatKey(k)) = %+v, %v; want %+v", m.Key, err, k)
	}
}

func TestParseExtraFields(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"tcp,tcp_flags=+syn-ack,actions=1", "tcp,tcp_flags=+syn-ack actions=output:1"},
		{"tcp,tcp_flags=-ack+syn,actions=1", "tcp,tcp_flags=+syn-ack actions=output:1"},
		{"tcp6,tcp_flags=fin|rst,actions=1", "tcp6,tcp_flags=fin|rst actions=output:1"},
		{"tcp,tcp_flags=0x12/0x12,actions=1", "tcp,tcp_flags=+syn+ack actions=output:1"},
		{"tcp,tcp_flags=0x200,actions=1", "tcp,tcp_flags=[200] actions=output:1"},
		{"ip,nw_frag=no,actions=1", "ip,nw_frag=no actions=output:1"},
		{"ip,nw_frag=yes,actions=1", "ip,nw_frag=yes actions=output:1"},
		{"ipv6,nw_frag=first,actions=1", "ipv6,nw_frag=first actions=output:1"},
		{"ip,nw_frag=later,actions=1", "ip,nw_frag=later actions=output:1"},
		{"ip,nw_frag=not_later,actions=1", "ip,nw_frag=not_later actions=output:1"},
		{"ipv6,ipv6_label=0x12345,actions=1", "ipv6,ipv6_label=0x12345 actions=output:1"},
		{"ipv6,ipv6_label=0x5/0xf,actions=1", "ipv6,ipv6_label=0x00005/0x0000f actions=output:1"},
		{"dl_vlan=1,dl_vlan1=2,dl_vlan_pcp1=3,actions=1", "dl_vlan=1,dl_vlan1=2,dl_vlan_pcp1=3 actions=output:1"},
		{"vlan_tci1=0x0000,actions=1", "vlan_tci1=0x0000 actions=output:1"},
	} {
		fm, err := ParseFlow(c.in, nil)
		if err != nil {
			t.Errorf("ParseFlow(%q): %v", c.in, err)
			continue
		}
		if got := ruleOf(t, fm).String(); got != c.want {
			t.Errorf("ParseFlow(%q) prints %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"tcp,tcp_flags=syn|bogus,actions=1", `tcp_flags: "syn|bogus" is not a valid TCP flags value`},
		{"tcp,tcp_flags=+syn+syn,actions=1", `tcp_flags: "+syn+syn" is not a valid TCP flags value`},
		{"tcp,tcp_flags=0x1000,actions=1", "tcp_flags: 4096 is out of range (0..4095)"},
		{"udp,tcp_flags=0,actions=1", "tcp_flags: prerequisite not met: the match must also specify tcp or tcp6"},
		{"ip,nw_frag=maybe,actions=1", `nw_frag: "maybe" is not one of no, yes, first, later, not_later`},
		{"arp,nw_frag=no,actions=1", "nw_frag: prerequisite not met"},
		{"ip,ipv6_label=1,actions=1", "ipv6_label: prerequisite not met"},
		{"ipv6,ipv6_label=0x100000,actions=1", "ipv6_label: 1048576 is out of range (0..1048575)"},
		{"dl_vlan1=4096,actions=1", "dl_vlan1: 4096 is not a valid VLAN ID"},
	} {
		_, err := ParseFlow(c.in, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFlow(%q) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestFormatTraceRule(t *testing.T) {
	tb := NewTableAt(0)
	r := mustAdd(t, tb, "table=3,cookie=0x5,priority=100,in_port=1,dl_vlan=10,actions=strip_vlan,output:2", 0)
	def := tb.Rules(0)[0]
	for _, c := range []struct {
		tid  uint8
		r    *Rule
		want string
	}{
		{0, def, " 0. priority 0"},
		{3, r, " 3. in_port=1,dl_vlan=10, priority 100, cookie 0x5"},
		{12, nil, "12. No match."},
	} {
		if got := FormatTraceRule(c.tid, c.r); got != c.want {
			t.Errorf("FormatTraceRule = %q, want %q", got, c.want)
		}
	}
}
