package test

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// ofports returns name=ofport for every Interface row.
func (n *node) ofports() map[string]string {
	n.t.Helper()
	out := n.vsctl("--format=csv", "--no-headings", "--columns=name,ofport", "list", "Interface")
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, of, ok := strings.Cut(line, ",")
		if ok {
			m[strings.Trim(name, `"`)] = of
		}
	}
	return m
}

// configDump lists the configuration columns of every table (not the
// state xvsd writes back), sorted, for before/after comparisons.
func (n *node) configDump() string {
	n.t.Helper()
	var parts []string
	for _, q := range []struct{ table, cols string }{
		{"Open_vSwitch", "bridges,external_ids,other_config"},
		{"Bridge", "name,ports,datapath_type,other_config,external_ids,fail_mode"},
		{"Port", "name,interfaces,tag,trunks,vlan_mode,bond_mode,other_config,external_ids"},
		{"Interface", "name,type,options,mtu_request,ofport_request,external_ids"},
	} {
		out := n.vsctl("--format=csv", "--no-headings", "--columns="+q.cols, "list", q.table)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		parts = append(parts, q.table+":\n"+strings.Join(lines, "\n"))
	}
	return strings.Join(parts, "\n")
}

// xvsd is killed with SIGKILL under traffic and restarted on the same
// database: traffic resumes within a few seconds, the configuration is
// intact, ofports are stable, and ovs-vsctl still completes.
func TestKill9Restart(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	n.addBridge("br1")
	h1 := n.newHost("h1", "p1", "198.18.4.1/24")
	h2 := n.newHost("h2", "p2", "198.18.4.2/24")
	h3 := n.newHost("h3", "p3", "198.18.4.3/24")
	addNeighs(t, h1, h2, h3)
	// A port added first and removed later leaves a hole in the ofport
	// numbers: OVS keeps the survivors' numbers across restarts (they are
	// read back from Interface:ofport), so OpenFlow rules stay valid.
	if err := n.ns.Veth("pgone", n.ns, "pgone-p"); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"pgone", "pgone-p"} {
		if err := n.ns.SetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	n.vsctl("add-port", "br0", "pgone")
	n.vsctl("add-port", "br0", "p1", "tag=10")
	n.vsctl("add-port", "br0", "p2", "tag=10", "--", "set", "Interface", "p2", "ofport_request=42")
	// h3 sits on br1, reached through a patch pair and a trunk-less VLAN.
	n.vsctl("add-port", "br0", "patch-01", "--", "set", "Interface", "patch-01", "type=patch", "options:peer=patch-10")
	n.vsctl("add-port", "br1", "patch-10", "--", "set", "Interface", "patch-10", "type=patch", "options:peer=patch-01")
	n.vsctl("add-port", "br1", "p3", "tag=10", "--", "set", "Port", "p3", "external_ids:owner=test")
	n.vsctl("set", "Bridge", "br0", "other_config:mac-aging-time=120", "external_ids:purpose=e2e")
	n.vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=localnet-network:br0")
	n.vsctl("del-port", "br0", "pgone")
	h1.mustPing(t, h2.ip)
	h1.mustPing(t, h3.ip)

	beforeShow := n.vsctl("show")
	beforeCfg := n.configDump()
	beforeOf := n.ofports()
	if beforeOf["p2"] != "42" {
		t.Errorf("ofport_request=42 gave ofport %s", beforeOf["p2"])
	}

	a := startStream(t, h1, h2, 0, time.Millisecond)
	c := startStream(t, h1, h3, 1, time.Millisecond)
	if !waitFor(2*time.Second, func() bool { return a.received() > 50 && c.received() > 50 }) {
		t.Fatalf("streams do not flow before the kill: %d, %d", a.received(), c.received())
	}

	n.x.Kill9()
	killedAt := time.Now()
	time.Sleep(200 * time.Millisecond)
	if err := n.x.Start(); err != nil {
		t.Fatalf("restart on the same database: %v", err)
	}
	mA, mC := a.mark(), c.mark()
	for _, s := range []struct {
		name string
		st   *udpStream
		mark uint64
	}{{"h1->h2 (same bridge)", a, mA}, {"h1->h3 (through patch)", c, mC}} {
		if !waitFor(5*time.Second, func() bool { return s.st.lastArrival() >= int64(s.mark) }) {
			t.Errorf("%s: traffic did not resume within 5 s of the restart", s.name)
		} else {
			t.Logf("%s: traffic resumed %v after the kill", s.name, time.Since(killedAt).Round(time.Millisecond))
		}
	}
	a.halt()
	c.halt()

	if got := n.configDump(); got != beforeCfg {
		t.Errorf("configuration changed across kill -9:\nbefore:\n%s\nafter:\n%s", beforeCfg, got)
	}
	// ovs-vsctl show includes written-back state; it must be re-established.
	var afterShow string
	waitFor(3*time.Second, func() bool { afterShow = n.vsctl("show"); return afterShow == beforeShow })
	if afterShow != beforeShow {
		t.Errorf("ovs-vsctl show differs after restart:\nbefore:\n%s\nafter:\n%s", beforeShow, afterShow)
	}
	if got := n.ofports(); !equalMaps(got, beforeOf) {
		t.Errorf("ofports changed across restart: before %v, after %v", beforeOf, got)
	}
	// The daemon still completes transactions (cur_cfg follows next_cfg).
	n.vsctl("set", "Port", "p1", "tag=11")
	if next, cur := n.get("Open_vSwitch", ".", "next_cfg"), n.get("Open_vSwitch", ".", "cur_cfg"); next != cur {
		t.Errorf("after restart next_cfg %s != cur_cfg %s", next, cur)
	}
	h1.mustNotPing(t, h2.ip)
	n.vsctl("set", "Port", "p1", "tag=10")
	h1.mustPing(t, h2.ip)
	h1.mustPing(t, h3.ip)

	// A clean stop and start too.
	if err := n.x.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.x.Start(); err != nil {
		t.Fatal(err)
	}
	h1.mustPing(t, h2.ip)
	if got := n.configDump(); got != beforeCfg {
		t.Errorf("configuration changed across SIGTERM restart:\nbefore:\n%s\nafter:\n%s", beforeCfg, got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
