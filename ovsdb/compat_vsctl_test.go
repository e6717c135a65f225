package ovsdb_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// vsctlStep is one ovs-vsctl invocation and what ovsdb-server 3.1 makes
// of it. out is compared after norm; an empty errHas means stderr must be
// empty.
type vsctlStep struct {
	args   []string
	code   int
	out    string
	errHas string
	norm   func(string) string
}

func step(code int, out string, args ...string) vsctlStep {
	return vsctlStep{args: args, code: code, out: out}
}

func fails(errHas string, code int, args ...string) vsctlStep {
	return vsctlStep{args: args, code: code, errHas: errHas}
}

// anyUUID hides every UUID: for outputs whose row identities do not
// matter.
func anyUUID(s string) string { return uuidRE.ReplaceAllString(s, "<uuid>") }

// sortedLines makes output order-insensitive where ovs-vsctl prints rows
// in hash order (which depends on the UUIDs each server chose).
func sortedLines(s string) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n") + "\n"
}

// canonJSON parses an ovs-vsctl --format=json table, hides UUIDs and
// sorts rows, so that two servers' answers compare equal.
func canonJSON(s string) string {
	var tbl struct {
		Data     [][]any  `json:"data"`
		Headings []string `json:"headings"`
	}
	if err := json.Unmarshal([]byte(uuidRE.ReplaceAllString(s, "U")), &tbl); err != nil {
		return "unparsable: " + err.Error() + ": " + s
	}
	rows := make([]string, 0, len(tbl.Data))
	for _, r := range tbl.Data {
		b, _ := json.Marshal(r)
		rows = append(rows, string(b))
	}
	sort.Strings(rows)
	return fmt.Sprintf("%v %v", tbl.Headings, rows)
}

// vsctlScript is a session an operator could type, covering bridges,
// ports, bonds, patch ports, VLAN settings, map edits, the may-exist and
// if-exists forms, chained commands and client- and server-side errors.
var vsctlScript = []vsctlStep{
	step(0, "", "init"),
	step(0, "", "add-br", "br0"),
	fails("cannot create a bridge named br0 because a bridge named br0 already exists", 1, "add-br", "br0"),
	step(0, "", "--may-exist", "add-br", "br0"),
	step(0, "", "br-exists", "br0"),
	step(2, "", "br-exists", "nope"),
	step(0, "br0\n", "list-br"),
	step(0, "", "add-port", "br0", "p1"),
	fails("cannot create a port named p1 because a port named p1 already exists on bridge br0", 1, "add-port", "br0", "p1"),
	step(0, "", "--may-exist", "add-port", "br0", "p1"),
	step(0, "p1\n", "list-ports", "br0"),
	step(0, "br0\n", "port-to-br", "p1"),

	// 802.1Q settings.
	step(0, "", "set", "Port", "p1", "tag=10"),
	step(0, "10\n", "get", "Port", "p1", "tag"),
	step(0, "", "set", "Port", "p1", "trunks=10,20,30", "vlan_mode=trunk"),
	step(0, "[10, 20, 30]\ntrunk\n", "get", "Port", "p1", "trunks", "vlan_mode"),
	fails("constraint violation: bogus is not one of the allowed values", 1, "set", "Port", "p1", "vlan_mode=bogus"),
	fails("constraint violation: 5000 is not in the valid range 0 to 4095", 1, "set", "Port", "p1", "tag=5000"),
	step(0, "", "clear", "Port", "p1", "tag", "trunks"),
	step(0, "[]\n[]\n", "get", "Port", "p1", "tag", "trunks"),
	{args: []string{"--format=json", "--columns=name,tag,trunks,vlan_mode", "list", "Port", "p1"},
		out: `{"data":[["p1",["set",[]],["set",[]],"trunk"]],"headings":["name","tag","trunks","vlan_mode"]}` + "\n"},

	// Interface settings: MTU, patch type, options.
	step(0, "", "set", "Interface", "p1", "mtu_request=9000"),
	step(0, "9000\n", "get", "Interface", "p1", "mtu_request"),
	fails("-5 is less than minimum allowed value 1", 1, "set", "Interface", "p1", "mtu_request=-5"),
	step(0, "", "set", "Interface", "p1", "type=patch", "options:peer=p2"),
	{args: []string{"--format=json", "--columns=name,options", "find", "Interface", "type=patch"},
		out: `[name options] [["p1",["map",[["peer","p2"]]]]]`, norm: canonJSON},

	// Map edits.
	step(0, "", "set", "Bridge", "br0", "external_ids:a=1", "external_ids:b=2"),
	step(0, "{a=\"1\", b=\"2\"}\n", "get", "Bridge", "br0", "external_ids"),
	step(0, "", "set", "Bridge", "br0", "external_ids:a=3"),
	step(0, "\"3\"\n", "get", "Bridge", "br0", "external_ids:a"),
	step(0, "", "remove", "Bridge", "br0", "external_ids", "a"),
	step(0, "{b=\"2\"}\n", "get", "Bridge", "br0", "external_ids"),
	step(0, "", "add", "Bridge", "br0", "other_config", "k=v"),
	// ovs-vsctl add sends delete+insert, so it replaces the value.
	step(0, "", "add", "Bridge", "br0", "other_config", "k=w"),
	step(0, "", "remove", "Bridge", "br0", "other_config", "k=wrong"),
	step(0, "w\n", "get", "Bridge", "br0", "other_config:k"),
	step(0, "", "remove", "Bridge", "br0", "other_config", "k=w"),
	step(0, "{}\n", "get", "Bridge", "br0", "other_config"),
	fails(`Bridge does not contain a column whose name matches "nosuchcol"`, 1, "get", "Bridge", "br0", "nosuchcol"),
	fails(`no row "nobr" in table Bridge`, 1, "get", "Bridge", "nobr", "name"),

	// Deleting what is not there.
	step(0, "", "--if-exists", "del-port", "br0", "nope"),
	fails("no port named nope", 1, "del-port", "br0", "nope"),
	step(0, "", "--if-exists", "del-br", "nope"),
	fails("no bridge named nope", 1, "del-br", "nope"),

	// SLB bond.
	step(0, "", "add-bond", "br0", "bond0", "e1", "e2", "bond_mode=balance-slb"),
	step(0, "balance-slb\n", "get", "Port", "bond0", "bond_mode"),
	step(0, "e1\ne2\np1\n", "list-ifaces", "br0"),
	step(0, "bond0\np1\n", "list-ports", "br0"),
	step(0, "br0\n", "iface-to-br", "e2"),
	{args: []string{"--format=json", "--columns=name,ports", "list", "Bridge", "br0"},
		out: `[name ports] [["br0",["set",[["uuid","U"],["uuid","U"],["uuid","U"]]]]]`, norm: canonJSON},

	// Chained commands in one transaction, then garbage collection.
	step(0, "", "add-br", "br1", "--", "add-port", "br1", "p3", "--", "set", "Interface", "p3", "type=internal"),
	step(0, "p3\n", "list-ports", "br1"),
	step(0, "br0\nbr1\n", "list-br"),
	step(0, "", "del-br", "br1"),
	fails(`no row "p3" in table Port`, 1, "list", "Port", "p3"),
	fails(`no row "p3" in table Interface`, 1, "list", "Interface", "p3"),

	// Root rows survive losing their last reference; others do not.
	{args: []string{"--", "--id=@q", "create", "QoS", "type=linux-htb", "--", "set", "Port", "p1", "qos=@q"},
		out: "<uuid>\n", norm: anyUUID},
	step(0, "type                : linux-htb\n", "--columns=type", "list", "QoS"),
	step(0, "", "clear", "Port", "p1", "qos"),
	step(0, "type                : linux-htb\n", "--columns=type", "list", "QoS"),
	{args: []string{"--", "--id=@m", "create", "Mirror", "name=m0", "--", "set", "Bridge", "br0", "mirrors=@m"},
		out: "<uuid>\n", norm: anyUUID},
	step(0, "name                : m0\n", "--columns=name", "list", "Mirror"),
	step(0, "", "clear", "Bridge", "br0", "mirrors"),
	step(0, "", "--columns=name", "list", "Mirror"),

	{args: []string{"--columns=name", "find", "Interface"},
		out: "\n\n\nname                : br0\nname                : e1\nname                : e2\nname                : p1\n", norm: sortedLines},
	step(0, "0\n0\n", "get", "Open_vSwitch", ".", "next_cfg", "cur_cfg"),

	// Fail mode, controllers, managers (non-root rows collected when
	// unreferenced), fake bridges (a VLAN-tagged port), --all destroy.
	step(0, "", "set-fail-mode", "br0", "secure"),
	step(0, "secure\n", "get-fail-mode", "br0"),
	step(0, "", "del-fail-mode", "br0"),
	step(0, "", "get-fail-mode", "br0"),
	step(0, "", "set-controller", "br0", "tcp:127.0.0.1:6653", "tcp:127.0.0.1:6654"),
	step(0, "tcp:127.0.0.1:6653\ntcp:127.0.0.1:6654\n", "get-controller", "br0"),
	{args: []string{"--columns=target", "list", "Controller"},
		out: "\ntarget              : \"tcp:127.0.0.1:6653\"\ntarget              : \"tcp:127.0.0.1:6654\"\n", norm: sortedLines},
	step(0, "", "del-controller", "br0"),
	step(0, "", "list", "Controller"),
	step(0, "", "set-manager", "ptcp:6640"),
	step(0, "ptcp:6640\n", "get-manager"),
	step(0, "", "del-manager"),
	step(0, "", "list", "Manager"),
	step(0, "", "--all", "destroy", "QoS"),
	step(0, "", "list", "QoS"),
	step(0, "", "wait-until", "Bridge", "br0", "name=br0"),
	step(0, "", "br-set-external-id", "br0", "foo", "bar"),
	step(0, "b=2\nfoo=bar\n", "br-get-external-id", "br0"),
	step(0, "", "add-br", "fake0", "br0", "12"),
	step(0, "br0\nfake0\n", "list-br"),
	step(0, "12\n", "br-to-vlan", "fake0"),
	step(0, "br0\n", "br-to-parent", "fake0"),
	step(0, "12\ntrue\n", "get", "Port", "fake0", "tag", "fake_bridge"),
	step(0, "", "del-br", "fake0"),
	step(0, "br0\n", "list-br"),
	step(0, "", "del-br", "br0"),
	step(0, "", "list-br"),
	step(0, "", "list", "Interface"),
	step(0, "", "list", "Port"),
	step(0, "", "list", "Controller"),
}

// vlogStampRE matches the timestamp OVS puts on warnings it logs to
// stderr.
var vlogStampRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

func TestCompatVsctlScript(t *testing.T) {
	transcripts := crossCheck{}
	forEachServer(t, func(t *testing.T, sock string) {
		var log strings.Builder
		for i, s := range vsctlScript {
			r := vsctl(t, sock, s.args...)
			what := fmt.Sprintf("step %d: ovs-vsctl %s", i, strings.Join(s.args, " "))
			if r.code != s.code {
				t.Errorf("%s: exit %d, want %d (stderr %q)", what, r.code, s.code, r.stderr)
			}
			out := r.stdout
			if s.norm != nil {
				out = s.norm(out)
			}
			fmt.Fprintf(&log, "%s\nexit %d\n%s%s", what, r.code, normUUIDs(out), vlogStampRE.ReplaceAllString(r.stderr, "<time>"))
			if out != s.out {
				t.Errorf("%s: stdout\n%q\nwant\n%q", what, out, s.out)
			}
			if s.errHas == "" && r.stderr != "" {
				t.Errorf("%s: unexpected stderr %q", what, r.stderr)
			}
			if s.errHas != "" && !strings.Contains(r.stderr, s.errHas) {
				t.Errorf("%s: stderr %q, want it to contain %q", what, r.stderr, s.errHas)
			}
		}
		transcripts[t.Name()[strings.LastIndex(t.Name(), "/")+1:]] = log.String()
	})
	transcripts.compare(t)
}

// seedTopology is the node of /work/shared/seed-topology.md, in the
// ovs-vsctl commands the lab uses.
var seedTopology = [][]string{
	{"init"},
	{"add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev"},
	{"add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev"},
	{"add-port", "br-ex", "patch-ex-to-phy", "--", "set", "Interface", "patch-ex-to-phy", "type=patch",
		"options:peer=patch-phy-to-ex", "--", "set", "Port", "patch-ex-to-phy", "external_ids:bridge-uplink=patch-ex-to-phy"},
	{"add-port", "br-phy", "patch-phy-to-ex", "--", "set", "Interface", "patch-phy-to-ex", "type=patch",
		"options:peer=patch-ex-to-phy"},
	{"add-bond", "br-phy", "ovs-bond", "enp2s0", "enp3s0", "bond_mode=balance-slb"},
	{"set", "Interface", "enp2s0", "mtu_request=1500", "--", "set", "Interface", "enp3s0", "mtu_request=1500"},
	{"set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=localnet-network:br-ex"},
	{"set", "Bridge", "br-ex", "other_config:allow-extra-patch-ports=true"},
	{"set", "Interface", "br-ex", "mtu_request=1400"},
	{"add-port", "br-ex", "vm1", "tag=10"},
}

// wantSeedShow is `ovs-vsctl show` for the seed topology with sibling
// blocks sorted (ovs-vsctl prints them in UUID hash order).
const wantSeedShow = `<uuid>
    Bridge br-ex
        Port br-ex
            Interface br-ex
                type: internal
        Port patch-ex-to-phy
            Interface patch-ex-to-phy
                type: patch
                options: {peer=patch-phy-to-ex}
        Port vm1
            Interface vm1
            tag: 10
        datapath_type: netdev
    Bridge br-phy
        Port ovs-bond
            Interface enp2s0
            Interface enp3s0
        Port patch-phy-to-ex
            Interface patch-phy-to-ex
                type: patch
                options: {peer=patch-ex-to-phy}
        Port br-phy
            Interface br-phy
                type: internal
        datapath_type: netdev
`

// sortShow sorts each level of an indented `ovs-vsctl show` tree by its
// first line, keeping children with their parents, and hides UUIDs.
func sortShow(s string) string {
	type node struct {
		line string
		kids []*node
	}
	root := &node{}
	stack := []*node{root}
	depth := []int{-1}
	for _, l := range strings.Split(strings.TrimRight(anyUUID(s), "\n"), "\n") {
		ind := len(l) - len(strings.TrimLeft(l, " "))
		for ind <= depth[len(depth)-1] {
			stack, depth = stack[:len(stack)-1], depth[:len(depth)-1]
		}
		n := &node{line: l}
		parent := stack[len(stack)-1]
		parent.kids = append(parent.kids, n)
		stack, depth = append(stack, n), append(depth, ind)
	}
	var b strings.Builder
	var walk func(*node)
	walk = func(n *node) {
		sort.SliceStable(n.kids, func(i, j int) bool { return sortKey(n.kids[i].line) < sortKey(n.kids[j].line) })
		for _, k := range n.kids {
			b.WriteString(k.line + "\n")
			walk(k)
		}
	}
	walk(root)
	return b.String()
}

// sortKey orders Bridge, Port and Interface blocks by name but leaves
// attribute lines ("type:", "tag:") in the order ovs-vsctl prints them,
// after the blocks, as ovs-vsctl does for a bridge's own attributes.
func sortKey(line string) string {
	t := strings.TrimSpace(line)
	for _, p := range []string{"Bridge ", "Port ", "Interface "} {
		if strings.HasPrefix(t, p) {
			// A bridge's internal port sorts last, as OVS tends to print
			// it only by hash; any fixed order does here.
			return "0" + t
		}
	}
	return "1"
}

func TestCompatVsctlSeedTopology(t *testing.T) {
	shows := crossCheck{}
	forEachServer(t, func(t *testing.T, sock string) {
		for _, args := range seedTopology {
			mustVsctl(t, sock, args...)
		}
		raw := mustVsctl(t, sock, "show")
		got := sortShow(raw)
		if got != sortShow(wantSeedShow) {
			t.Errorf("show (sorted):\n%s\nwant:\n%s\nraw:\n%s", got, sortShow(wantSeedShow), raw)
		}
		shows[t.Name()[strings.LastIndex(t.Name(), "/")+1:]] = got

		checks := []struct {
			args []string
			want string
		}{
			{[]string{"get", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings"}, "\"localnet-network:br-ex\"\n"},
			{[]string{"get", "Port", "patch-ex-to-phy", "external_ids:bridge-uplink"}, "patch-ex-to-phy\n"},
			{[]string{"get", "Port", "ovs-bond", "bond_mode"}, "balance-slb\n"},
			{[]string{"get", "Interface", "enp2s0", "mtu_request"}, "1500\n"},
			{[]string{"get", "Interface", "enp3s0", "mtu_request"}, "1500\n"},
			{[]string{"get", "Interface", "br-ex", "mtu_request"}, "1400\n"},
			{[]string{"get", "Bridge", "br-ex", "other_config:allow-extra-patch-ports"}, "\"true\"\n"},
			{[]string{"list-ports", "br-phy"}, "ovs-bond\npatch-phy-to-ex\n"},
			{[]string{"list-ifaces", "br-phy"}, "enp2s0\nenp3s0\npatch-phy-to-ex\n"},
			{[]string{"get", "Port", "vm1", "tag"}, "10\n"},
		}
		for _, c := range checks {
			if got := mustVsctl(t, sock, c.args...); got != c.want {
				t.Errorf("ovs-vsctl %s = %q, want %q", strings.Join(c.args, " "), got, c.want)
			}
		}

		// The raw JSON of the three core tables, keyed by name, must
		// describe the same references on both servers.
		var tables []string
		for _, tbl := range []string{"Bridge", "Port", "Interface"} {
			out := mustVsctl(t, sock, "--format=json", "list", tbl)
			tables = append(tables, resolveNames(t, sock, out))
		}
		shows[t.Name()[strings.LastIndex(t.Name(), "/")+1:]] += strings.Join(tables, "\n")
	})
	shows.compare(t)
}

// canonCell renders one --format=json cell with UUIDs replaced by the
// names they denote and set elements sorted (ovs-vsctl prints them in
// UUID order, which differs between servers).
func canonCell(v any, names map[string]string) string {
	b, _ := json.Marshal(v)
	s := uuidRE.ReplaceAllStringFunc(string(b), func(u string) string {
		if n, ok := names[u]; ok {
			return n
		}
		return "<unknown>"
	})
	var set []any
	if json.Unmarshal([]byte(s), &set) != nil || len(set) != 2 || set[0] != "set" {
		return s
	}
	elems, _ := set[1].([]any)
	strs := make([]string, len(elems))
	for i, e := range elems {
		b, _ := json.Marshal(e)
		strs[i] = string(b)
	}
	sort.Strings(strs)
	return "set" + fmt.Sprint(strs)
}

// resolveNames turns a --format=json listing into sorted rows in which
// each UUID is replaced by the name of the Bridge, Port or Interface it
// denotes, so rows compare across servers. Columns the two servers may
// legitimately fill differently are dropped.
func resolveNames(t *testing.T, sock, listing string) string {
	t.Helper()
	names := map[string]string{}
	for _, tbl := range []string{"Bridge", "Port", "Interface", "Open_vSwitch"} {
		cols := "--columns=_uuid,name"
		if tbl == "Open_vSwitch" {
			cols = "--columns=_uuid"
		}
		out := mustVsctl(t, sock, "--format=json", cols, "list", tbl)
		var l struct{ Data [][]any }
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("list %s: %v", tbl, err)
		}
		for _, r := range l.Data {
			u := r[0].([]any)[1].(string)
			names[u] = tbl
			if len(r) > 1 {
				names[u] = tbl + ":" + r[1].(string)
			}
		}
	}
	var l struct {
		Data     [][]any
		Headings []string
	}
	if err := json.Unmarshal([]byte(listing), &l); err != nil {
		t.Fatalf("listing: %v", err)
	}
	var rows []string
	for _, r := range l.Data {
		var cells []string
		for i, h := range l.Headings {
			if h == "_uuid" {
				continue
			}
			cell := canonCell(r[i], names)
			cells = append(cells, h+"="+cell)
		}
		rows = append(rows, strings.Join(cells, " "))
	}
	sort.Strings(rows)
	return strings.Join(rows, "\n")
}
