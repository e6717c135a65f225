package test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Interface columns xvsd writes back: error and ofport -1 for a device
// that does not exist, then ofport, link/admin state, MTU, MAC, ifindex
// and the AF_XDP status once the device appears.
func TestInterfaceWriteBack(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h1 := n.newHost("h1", "p1", "198.18.5.1/24")
	n.vsctl("add-port", "br0", "p1")

	// The device p2 does not exist yet: ovs-vsctl must still return (the
	// transaction is applied, as far as it can be).
	done := make(chan error, 1)
	go func() { _, err := n.x.Vsctl("add-port", "br0", "p2"); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ovs-vsctl add-port of a missing device did not return within 10 s (cur_cfg not advanced?)")
	}
	if !waitFor(2*time.Second, func() bool { return n.get("Interface", "p2", "error") != "[]" }) {
		t.Errorf("Interface p2 error not set for a missing device")
	}
	t.Logf("error for a missing device: %s", n.get("Interface", "p2", "error"))
	if of := n.get("Interface", "p2", "ofport"); of != "-1" {
		t.Errorf("missing device has ofport %s, want -1", of)
	}
	// p1 is fine meanwhile.
	if n.get("Interface", "p1", "error") != "[]" {
		t.Errorf("p1 has error %s", n.get("Interface", "p1", "error"))
	}

	// The device appears: it is picked up without another ovs-vsctl.
	h2 := n.newHost("h2", "p2", "198.18.5.2/24")
	if !waitFor(5*time.Second, func() bool { return n.get("Interface", "p2", "error") == "[]" }) {
		t.Fatalf("p2 still in error 5 s after its device appeared: %s", n.get("Interface", "p2", "error"))
	}
	h1.mustPing(t, h2.ip)

	for _, name := range []string{"p1", "p2"} {
		of, _ := strconv.Atoi(n.get("Interface", name, "ofport"))
		if of <= 0 || of >= 65280 {
			t.Errorf("%s ofport %d", name, of)
		}
		for col, want := range map[string]string{"link_state": "up", "admin_state": "up", "mtu": "1500"} {
			if got := n.get("Interface", name, col); got != want {
				t.Errorf("%s %s = %q, want %q", name, col, got, want)
			}
		}
		mac, _ := n.ns.MAC(name)
		if got := n.get("Interface", name, "mac_in_use"); got != mac.String() {
			t.Errorf("%s mac_in_use = %q, want %s", name, got, mac)
		}
		idx, _ := n.ns.Index(name)
		if got := n.get("Interface", name, "ifindex"); got != strconv.Itoa(idx) {
			t.Errorf("%s ifindex = %q, want %d", name, got, idx)
		}
		status := n.get("Interface", name, "status")
		mode := n.get("Interface", name, "status:xdp-mode")
		if mode != "native" && mode != "generic" && mode != "native-with-zerocopy" {
			// AF_PACKET fallback must say why.
			if !strings.Contains(status, "afxdp-fallback-reason") {
				t.Errorf("%s status has neither xdp-mode nor a fallback reason: %s", name, status)
			}
		}
		t.Logf("%s status %s", name, status)
	}
	// Internal port.
	if got := n.get("Interface", "br0", "ofport"); got != "65534" {
		t.Errorf("internal port ofport %s, want 65534", got)
	}
	if got := n.get("Interface", "br0", "type"); got != "internal" {
		t.Errorf("internal port type %q", got)
	}

	// ofport_request is honoured.
	n.newHost("h3", "p3", "")
	n.vsctl("add-port", "br0", "p3", "--", "set", "Interface", "p3", "ofport_request=77")
	if got := n.get("Interface", "p3", "ofport"); got != "77" {
		t.Errorf("ofport_request=77 gave ofport %s", got)
	}

	// The peer goes down: link_state follows (OVS reports it at once; we
	// allow the 5 s statistics period).
	if err := h2.ns.SetDown("eth0"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if !waitFor(6*time.Second, func() bool { return n.get("Interface", "p2", "link_state") == "down" }) {
		t.Errorf("p2 link_state still %q 6 s after its peer went down", n.get("Interface", "p2", "link_state"))
	} else {
		t.Logf("link_state down after %v", time.Since(t0).Round(time.Millisecond))
	}
	if err := h2.ns.SetUp("eth0"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(6*time.Second, func() bool { return n.get("Interface", "p2", "link_state") == "up" }) {
		t.Errorf("p2 link_state not back up")
	}

	// The device vanishes while in the bridge: the error comes back.
	if err := n.ns.DeleteLink("p2"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(6*time.Second, func() bool { return n.get("Interface", "p2", "error") != "[]" }) {
		t.Errorf("no error after p2's device was deleted (ofport %s)", n.get("Interface", "p2", "ofport"))
	}
	if out := n.appctl("dpif/show"); strings.Contains(out, " p2 ") {
		t.Errorf("dpif/show still lists the deleted p2:\n%s", out)
	}
	// The device comes back (a VM restarted): picked up again, without
	// another ovs-vsctl, and it forwards.
	h2.ns.Delete()
	h2b := n.newHost("h2b", "p2", "198.18.5.2/24")
	if !waitFor(6*time.Second, func() bool {
		idx, _ := n.ns.Index("p2")
		return n.get("Interface", "p2", "error") == "[]" && n.get("Interface", "p2", "ifindex") == strconv.Itoa(idx)
	}) {
		t.Errorf("recreated p2 not picked up: error %s, ifindex %s", n.get("Interface", "p2", "error"), n.get("Interface", "p2", "ifindex"))
	}
	if err := h2b.ping(h1.ip, 1, 3*time.Second); err != nil {
		t.Errorf("recreated p2 does not forward: %v", err)
	}
	// Removing the row removes the port.
	n.vsctl("del-port", "br0", "p2")
	if out := n.vsctl("list-ports", "br0"); strings.Contains(out, "p2") {
		t.Errorf("list-ports after del-port: %s", out)
	}
}

// ofproto/trace explains forwarding decisions with the datapath actions:
// flooding with a VLAN push to a trunk, then unicast after learning.
func TestTrace(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h1 := n.newHost("h1", "p1", "198.18.6.1/24")
	h2 := n.newHost("h2", "p2", "198.18.6.2/24")
	n.newHost("tr", "ptr", "")
	n.vsctl("add-port", "br0", "p1", "tag=10")
	n.vsctl("add-port", "br0", "p2", "tag=10")
	n.vsctl("add-port", "br0", "ptr", "trunks=10")

	flood := "in_port=p1,dl_src=02:00:5e:00:01:01,dl_dst=ff:ff:ff:ff:ff:ff"
	out := n.appctl("ofproto/trace", "br0", flood)
	t.Logf("trace:\n%s", out)
	acts := datapathActions(out)
	if !strings.Contains(acts, "p2") || !strings.Contains(acts, "push_vlan(vid=10") || !strings.Contains(acts, "ptr") {
		t.Errorf("flood from VLAN 10: datapath actions %q, want p2 and push_vlan(vid=10),ptr", acts)
	}
	if strings.Contains(acts, "p1") {
		t.Errorf("flood sent back out its input port: %q", acts)
	}
	// By OpenFlow port number, too.
	of := n.get("Interface", "p1", "ofport")
	if out2 := n.appctl("ofproto/trace", "br0", strings.Replace(flood, "in_port=p1", "in_port="+of, 1)); datapathActions(out2) != acts {
		t.Errorf("trace by in_port=%s gives %q, by name %q", of, datapathActions(out2), acts)
	}

	h1.mustPing(t, h2.ip)
	uni := "in_port=p1,dl_src=" + h1.mac.String() + ",dl_dst=" + h2.mac.String() + ",dl_type=0x0800,nw_src=198.18.6.1,nw_dst=198.18.6.2"
	out = n.appctl("ofproto/trace", "br0", uni)
	if acts := datapathActions(out); acts != "p2" {
		t.Errorf("unicast to learned MAC: datapath actions %q, want p2\n%s", acts, out)
	}
	// Wrong VLAN in from a trunk: VLAN 20 is not in trunks=10.
	out = n.appctl("ofproto/trace", "br0", "in_port=ptr,dl_vlan=20,dl_src=02:00:5e:00:01:02,dl_dst=ff:ff:ff:ff:ff:ff")
	if acts := datapathActions(out); acts != "drop" {
		t.Errorf("VLAN 20 on trunks=10: datapath actions %q, want drop\n%s", acts, out)
	}
	if _, err := n.x.Appctl("ofproto/trace", "nosuchbr", flood); err == nil {
		t.Errorf("trace on a missing bridge did not fail")
	}
	// Other commands the issue lists respond.
	for _, cmd := range [][]string{{"version"}, {"list-commands"}, {"coverage/show"}, {"memory/show"},
		{"dpctl/dump-flows"}, {"fdb/flush"}, {"ofctl/dump-flows", "br0"}, {"vlog/set", "dbg"}, {"vlog/set", "info"}} {
		if _, err := n.x.Appctl(cmd...); err != nil {
			t.Errorf("%v", err)
		}
	}
	if fdb := n.appctl("fdb/show", "br0"); fdbHas(fdb, h1.mac.String(), "10") {
		t.Errorf("fdb/flush left entries:\n%s", fdb)
	}
}

// datapathActions returns what follows "Datapath actions: " in a trace.
func datapathActions(trace string) string {
	for _, line := range strings.Split(trace, "\n") {
		if a, ok := strings.CutPrefix(line, "Datapath actions: "); ok {
			return strings.TrimSpace(a)
		}
	}
	return ""
}
