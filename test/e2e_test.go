// Package test holds end-to-end tests of xvsd: it runs in a network
// namespace, is configured only through the real ovs-vsctl and inspected
// through the real ovs-appctl, while hosts in other namespaces send
// traffic through it over veth pairs.
package test

import (
	"context"
	"encoding/json"
	"strconv"
	"xvs/lab"

	"strings"
	"testing"
	"time"
)

// Two hosts on access ports of VLAN 10 reach each other; a third on VLAN
// 20 reaches neither; the MAC table and datapath listing show them.
func TestAccessPorts(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h1 := n.newHost("h1", "p1", "198.18.1.1/24")
	h2 := n.newHost("h2", "p2", "198.18.1.2/24")
	h3 := n.newHost("h3", "p3", "198.18.1.3/24")
	n.vsctl("add-port", "br0", "p1", "tag=10")
	n.vsctl("add-port", "br0", "p2", "tag=10")
	n.vsctl("add-port", "br0", "p3", "tag=20")

	h1.mustPing(t, h2.ip)
	h2.mustPing(t, h1.ip)
	h3.mustNotPing(t, h1.ip)

	show := n.appctl("dpif/show")
	t.Logf("dpif/show:\n%s", show)
	for _, p := range []string{"br0:", "p1 ", "p2 ", "p3 "} {
		if !strings.Contains(show, p) {
			t.Errorf("dpif/show lacks %q", p)
		}
	}
	fdb := n.appctl("fdb/show", "br0")
	t.Logf("fdb/show br0:\n%s", fdb)
	for _, h := range []*host{h1, h2} {
		if !fdbHas(fdb, h.mac.String(), "10") {
			t.Errorf("fdb/show br0 lacks %s on VLAN 10", h.mac)
		}
	}
	t.Logf("vsctl show:\n%s", n.vsctl("show"))

	// TCP at speed (checksums, segmentation, no stalls).
	if bps := iperf(t, h2, h1, 2); bps < 50e6 {
		t.Errorf("iperf3 h1 -> h2: %.1f Mbit/s, want at least 50", bps/1e6)
	}
}

// iperf runs an iperf3 TCP test from client to server for secs seconds and
// returns the received bits per second.
func iperf(t *testing.T, server, client *host, secs int) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+15)*time.Second)
	defer cancel()
	srv := server.ns.Command(ctx, "iperf3", "-s", "-1", "-B", server.ip, "-p", "5201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // until the server listens
		out, err = client.ns.Exec(ctx, "iperf3", "-J", "-c", server.ip, "-p", "5201", "-t", strconv.Itoa(secs))
		// iperf3 3.12 with -J exits 0 on "connection refused", with the
		// reason in the JSON "error" member: retry on either.
		if !strings.Contains(string(out), "unable to connect") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3: %v", err)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 output: %v: %s", err, out)
	}
	t.Logf("iperf3 %s -> %s: %.1f Mbit/s", client.name, server.name, res.End.SumReceived.BitsPerSecond/1e6)
	return res.End.SumReceived.BitsPerSecond
}

// fdbHas reports whether an fdb/show listing has mac on vlan.
func fdbHas(fdb, mac, vlan string) bool {
	for _, line := range strings.Split(fdb, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == vlan && strings.EqualFold(f[2], mac) {
			return true
		}
	}
	return false
}

// Frames from access ports leave trunk ports with the access port's VLAN
// tag on the wire; tagged frames from a trunk reach only the access ports
// of their VLAN, untagged; VLANs outside a trunk's set are dropped; a
// native-untagged trunk sends its native VLAN untagged.
func TestTrunkTagsOnWire(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h1 := n.newHost("h1", "p1", "")
	h2 := n.newHost("h2", "p2", "")
	tr := n.newHost("tr", "ptr", "")    // trunks 10,20
	tr2 := n.newHost("tr2", "ptr2", "") // trunk 10 only
	nat := n.newHost("nat", "pnat", "") // native-untagged 10, trunks 10,20
	nt := n.newHost("nt", "pnt", "")    // native-tagged 20, trunks 10,20
	n.vsctl("add-port", "br0", "p1", "tag=10")
	n.vsctl("add-port", "br0", "p2", "tag=20")
	n.vsctl("add-port", "br0", "ptr", "trunks=10,20")
	n.vsctl("add-port", "br0", "ptr2", "trunks=10")
	n.vsctl("add-port", "br0", "pnat", "tag=10", "trunks=10,20", "vlan_mode=native-untagged")
	n.vsctl("add-port", "br0", "pnt", "tag=20", "trunks=10,20", "vlan_mode=native-tagged")

	r1, r2 := openRaw(t, h1.ns, "eth0"), openRaw(t, h2.ns, "eth0")
	rtr, rtr2, rnat := openRaw(t, tr.ns, "eth0"), openRaw(t, tr2.ns, "eth0"), openRaw(t, nat.ns, "eth0")
	all := map[string]*rawEnd{"h1": {r1}, "h2": {r2}, "tr": {rtr}, "tr2": {rtr2}, "nat": {rnat}, "nt": {openRaw(t, nt.ns, "eth0")}}

	// check sends frame from one end and wants VID want[end] at each end
	// (-1 untagged, absent: must not arrive).
	check := func(what string, from *rawEnd, frame []byte, marker string, want map[string]int) {
		t.Helper()
		for _, e := range all {
			e.r.Drain()
		}
		// Resend a few times: the first frames of a new port can race its
		// installation; one copy arriving is enough.
		for i := 0; i < 3; i++ {
			if err := from.r.Send(frame); err != nil {
				t.Fatal(err)
			}
		}
		for name, e := range all {
			if e == from {
				continue
			}
			wait := 2 * time.Second
			vid, ok := want[name]
			if !ok {
				wait = 300 * time.Millisecond
			}
			f := expectFrame(e.r, marker, wait)
			switch {
			case ok && f == nil:
				t.Errorf("%s: nothing arrived at %s\nfdb/show br0:\n%s", what, name, n.appctl("fdb/show", "br0"))
			case !ok && f != nil:
				t.Errorf("%s: frame leaked to %s (vid %d)", what, name, frameVID(f))
			case ok && frameVID(f) != vid:
				t.Errorf("%s: at %s vid %d, want %d", what, name, frameVID(f), vid)
			}
		}
	}
	src := func(i byte) []byte { return []byte{0x02, 0x00, 0x5e, 0x00, 0x00, i} }
	check("untagged from access VLAN 10", all["h1"], etherFrame(bcast, src(1), -1, "a10"), "a10",
		map[string]int{"tr": 10, "tr2": 10, "nat": -1, "nt": 10})
	check("untagged from access VLAN 20", all["h2"], etherFrame(bcast, src(2), -1, "a20"), "a20",
		map[string]int{"tr": 20, "nat": 20, "nt": 20})
	check("VLAN 20 from trunk", all["tr"], etherFrame(bcast, src(3), 20, "t20"), "t20",
		map[string]int{"h2": -1, "nat": 20, "nt": 20})
	check("VLAN 10 from trunk", all["tr"], etherFrame(bcast, src(4), 10, "t10"), "t10",
		map[string]int{"h1": -1, "tr2": 10, "nat": -1, "nt": 10})
	check("untagged from native-tagged trunk (its VLAN 20)", all["nt"], etherFrame(bcast, src(9), -1, "nt20"), "nt20",
		map[string]int{"h2": -1, "tr": 20, "nat": 20})
	check("VLAN 30 from trunk (not trunked)", all["tr"], etherFrame(bcast, src(5), 30, "t30"), "t30",
		map[string]int{})
	check("untagged from native-untagged trunk", all["nat"], etherFrame(bcast, src(6), -1, "n10"), "n10",
		map[string]int{"h1": -1, "tr": 10, "tr2": 10, "nt": 10})
	check("VLAN 20 into access port VLAN 10 (dropped)", all["h1"], etherFrame(bcast, src(7), 20, "x20"), "x20",
		map[string]int{})

	// Unicast after learning: a frame to h1's learned MAC goes only to h1.
	check("unicast to learned MAC on VLAN 10", all["tr"], etherFrame(src(1), src(8), 10, "u10"), "u10",
		map[string]int{"h1": -1})
}

type rawEnd struct{ r *lab.Raw }

// seed is the node of /work/shared/seed-topology.md: br-ex (internal port
// with the node IP, VMs) patched to br-phy, whose balance-slb bond
// enp2s0/enp3s0 leads to an upstream switch (a Linux bridge in namespace
// "sw") with an upstream host behind it.
type seed struct {
	*node
	sw             *lab.NS
	up             *host // upstream host behind the switch
	vm10a, vm10b   *host // access VLAN 10
	vm20           *host // access VLAN 20 (same subnet as VLAN 10: isolation is by VLAN only)
	vmu            *host // untagged, same subnet as the node IP
	s2, s3         *lab.Raw
	r10a, r20, rvu *lab.Raw
}

const nodeIP = "198.18.0.1"

func newSeed(t *testing.T) *seed {
	t.Helper()
	n := newNode(t)
	s := &seed{node: n}
	sw, err := n.lab.NS("sw")
	if err != nil {
		t.Fatal(err)
	}
	s.sw = sw
	if err := sw.Bridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := sw.SetUp("br0"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ node, sw string }{{"enp2s0", "s2"}, {"enp3s0", "s3"}} {
		n.wire(sw, m.sw, m.node)
		if err := sw.SetMaster(m.sw, "br0"); err != nil {
			t.Fatal(err)
		}
		if err := sw.Quiet(m.sw); err != nil {
			t.Fatal(err)
		}
	}
	upNS, err := n.lab.NS("up")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.lab.Wire(upNS, "eth0", sw, "sup"); err != nil {
		t.Fatal(err)
	}
	if err := sw.SetMaster("sup", "br0"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		ns   *lab.NS
		name string
	}{{sw, "sup"}, {sw, "br0"}, {upNS, "eth0"}} {
		if err := q.ns.Quiet(q.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := upNS.AddAddr("eth0", "198.18.0.100/24"); err != nil {
		t.Fatal(err)
	}
	upMAC, _ := upNS.MAC("eth0")
	s.up = &host{name: "up", ns: upNS, ip: "198.18.0.100", mac: upMAC}

	s.vm10a = n.newHost("vm10a", "vm10a", "198.18.10.1/24")
	s.vm10b = n.newHost("vm10b", "vm10b", "198.18.10.2/24")
	s.vm20 = n.newHost("vm20", "vm20", "198.18.10.3/24")
	s.vmu = n.newHost("vmu", "vmu", "198.18.0.50/24")

	// The configuration of the seed document, verbatim.
	n.vsctl("add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev")
	n.vsctl("add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev")
	n.vsctl("add-port", "br-ex", "patch-ex-to-phy", "--", "set", "Interface", "patch-ex-to-phy", "type=patch",
		"options:peer=patch-phy-to-ex", "--", "set", "Port", "patch-ex-to-phy", "external_ids:bridge-uplink=patch-ex-to-phy")
	n.vsctl("add-port", "br-phy", "patch-phy-to-ex", "--", "set", "Interface", "patch-phy-to-ex", "type=patch",
		"options:peer=patch-ex-to-phy")
	n.vsctl("add-bond", "br-phy", "ovs-bond", "enp2s0", "enp3s0", "bond_mode=balance-slb")
	n.vsctl("set", "Interface", "enp2s0", "mtu_request=1500", "--", "set", "Interface", "enp3s0", "mtu_request=1500")
	n.vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=localnet-network:br-ex")
	n.vsctl("add-port", "br-ex", "vm10a", "tag=10")
	n.vsctl("add-port", "br-ex", "vm10b", "tag=10")
	n.vsctl("add-port", "br-ex", "vm20", "tag=20")
	n.vsctl("add-port", "br-ex", "vmu")
	n.vsctl("set", "Interface", "br-ex", "mtu_request=1500")

	// The node IP goes on the internal port once it exists.
	if !waitFor(5*time.Second, func() bool { _, err := n.ns.Link("br-ex"); return err == nil }) {
		t.Fatalf("internal port br-ex did not appear in the node namespace")
	}
	if err := n.ns.SetUp("br-ex"); err != nil {
		t.Fatal(err)
	}
	if err := n.ns.AddAddr("br-ex", nodeIP+"/24"); err != nil {
		t.Fatal(err)
	}
	s.s2, s.s3 = openRaw(t, sw, "s2"), openRaw(t, sw, "s3")
	s.r10a, s.r20, s.rvu = openRaw(t, s.vm10a.ns, "eth0"), openRaw(t, s.vm20.ns, "eth0"), openRaw(t, s.vmu.ns, "eth0")
	return s
}

// TestSeedTopology runs the seed document's configuration unchanged and
// checks what its users check.
func TestSeedTopology(t *testing.T) {
	s := newSeed(t)

	t.Run("NodeIPReachable", func(t *testing.T) {
		s.up.mustPing(t, nodeIP)
		out, err := s.up.ns.Exec(ctx5s(t), "ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", nodeIP)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "DUP!") {
			t.Errorf("duplicate replies (a loop through the bond?):\n%s", out)
		}
	})
	t.Run("UntaggedVMToUpstream", func(t *testing.T) {
		s.vmu.mustPing(t, s.up.ip)
		s.up.mustPing(t, s.vmu.ip)
		s.vmu.mustPing(t, nodeIP)
	})
	t.Run("TCPThroughPatchAndBond", func(t *testing.T) {
		s.vmu.mustPing(t, s.up.ip)
		if bps := iperf(t, s.up, s.vmu, 2); bps < 50e6 {
			t.Errorf("iperf3 vmu -> up: %.1f Mbit/s, want at least 50", bps/1e6)
		}
	})
	t.Run("VLANIsolation", func(t *testing.T) {
		s.vm10a.mustPing(t, s.vm10b.ip)
		s.vm20.mustNotPing(t, s.vm10a.ip)
	})
	t.Run("TagsOnSwitchSide", func(t *testing.T) {
		for _, c := range []struct {
			from   *lab.Raw
			marker string
			vid    int
		}{{s.r10a, "v10", 10}, {s.r20, "v20", 20}, {s.rvu, "vu", -1}} {
			s.s2.Drain()
			s.s3.Drain()
			src := []byte{0x02, 0x00, 0x5e, 0x10, 0x00, byte(c.vid + 1)}
			if err := c.from.Send(etherFrame(bcast, src, -1, c.marker)); err != nil {
				t.Fatal(err)
			}
			f2 := expectFrame(s.s2, c.marker, time.Second)
			f3 := expectFrame(s.s3, c.marker, 300*time.Millisecond)
			switch {
			case f2 == nil && f3 == nil:
				t.Errorf("%s: nothing reached the switch", c.marker)
			case f2 != nil && f3 != nil:
				t.Errorf("%s: sent on both bond members (SLB sends each MAC on one member)", c.marker)
			default:
				f := f2
				if f == nil {
					f = f3
				}
				if got := frameVID(f); got != c.vid {
					t.Errorf("%s: vid on the wire %d, want %d", c.marker, got, c.vid)
				}
			}
		}
	})
	t.Run("FromEitherMember", func(t *testing.T) {
		// Unicast to a VM's MAC arriving on either member reaches it, with
		// the VLAN tag removed; the VLAN 20 VM never sees VLAN 10 frames.
		for i, m := range []*lab.Raw{s.s2, s.s3} {
			s.r10a.Drain()
			s.r20.Drain()
			marker := []string{"m2", "m3"}[i]
			src := []byte{0x02, 0x00, 0x5e, 0x20, 0x00, byte(i)}
			if err := m.Send(etherFrame(s.vm10a.mac, src, 10, marker)); err != nil {
				t.Fatal(err)
			}
			f := expectFrame(s.r10a, marker, 2*time.Second)
			if f == nil {
				t.Errorf("frame for vm10a on VLAN 10 via member %d did not arrive", i)
			} else if frameVID(f) != -1 {
				t.Errorf("vm10a got a tagged frame (vid %d)", frameVID(f))
			}
			if f := expectFrame(s.r20, marker, 200*time.Millisecond); f != nil {
				t.Errorf("VLAN 10 frame leaked to vm20")
			}
		}
	})
	t.Run("UpstreamBroadcastNotEchoed", func(t *testing.T) {
		// The switch floods a broadcast to both members: the VM gets one
		// copy, and nothing comes back to the switch through the other.
		s.rvu.Drain()
		s.s2.Drain()
		s.s3.Drain()
		src := []byte{0x02, 0x00, 0x5e, 0x30, 0x00, 0x01}
		upRaw := openRaw(t, s.up.ns, "eth0")
		if err := upRaw.Send(etherFrame(bcast, src, -1, "ub")); err != nil {
			t.Fatal(err)
		}
		if f := expectFrame(s.rvu, "ub", 2*time.Second); f == nil {
			t.Fatalf("upstream broadcast did not reach the untagged VM")
		}
		if f := expectFrame(s.rvu, "ub", 300*time.Millisecond); f != nil {
			t.Errorf("upstream broadcast delivered twice to the untagged VM")
		}
		for i, r := range []*lab.Raw{s.s2, s.s3} {
			if f := expectFrame(r, "ub", 100*time.Millisecond); f != nil {
				t.Errorf("upstream broadcast echoed back to the switch on member %d", i)
			}
		}
	})
	t.Run("Show", func(t *testing.T) {
		show := s.vsctl("show")
		for _, want := range []string{
			"Bridge br-ex", "Bridge br-phy", "datapath_type: netdev",
			"Port patch-ex-to-phy", "type: patch", "options: {peer=patch-phy-to-ex}", "options: {peer=patch-ex-to-phy}",
			"Port ovs-bond", "Interface enp2s0", "Interface enp3s0",
			"Port vm10a\n            tag: 10", "Port vm20\n            tag: 20", "type: internal",
		} {
			if !strings.Contains(show, want) {
				t.Errorf("ovs-vsctl show lacks %q:\n%s", want, show)
			}
		}
		if got := s.get("Open_vSwitch", ".", "external_ids:ovn-bridge-mappings"); got != "localnet-network:br-ex" {
			t.Errorf("ovn-bridge-mappings = %q", got)
		}
		if got := s.get("Port", "patch-ex-to-phy", "external_ids:bridge-uplink"); got != "patch-ex-to-phy" {
			t.Errorf("bridge-uplink = %q", got)
		}
		if got := s.get("Port", "ovs-bond", "bond_mode"); got != "balance-slb" {
			t.Errorf("bond_mode = %q", got)
		}
		for _, m := range []string{"enp2s0", "enp3s0"} {
			if got := s.get("Interface", m, "mtu"); got != "1500" {
				t.Errorf("%s mtu = %q", m, got)
			}
			if got := s.get("Interface", m, "link_state"); got != "up" {
				t.Errorf("%s link_state = %q", m, got)
			}
		}
	})
	t.Run("Appctl", func(t *testing.T) {
		dpif := s.appctl("dpif/show")
		for _, want := range []string{"br-ex:", "br-phy:", "patch-ex-to-phy", "patch-phy-to-ex", "enp2s0", "enp3s0", "vm10a", "vmu"} {
			if !strings.Contains(dpif, want) {
				t.Errorf("dpif/show lacks %q:\n%s", want, dpif)
			}
		}
		s.vm10a.mustPing(t, s.vm10b.ip)
		s.vmu.mustPing(t, nodeIP)
		fdb := s.appctl("fdb/show", "br-ex")
		if !fdbHas(fdb, s.vm10a.mac.String(), "10") || !fdbHas(fdb, s.vmu.mac.String(), "0") {
			t.Errorf("fdb/show br-ex lacks the VMs:\n%s", fdb)
		}
		bond := s.appctl("bond/show", "ovs-bond")
		for _, want := range []string{"bond_mode: balance-slb", "enp2s0", "enp3s0"} {
			if !strings.Contains(bond, want) {
				t.Errorf("bond/show ovs-bond lacks %q:\n%s", want, bond)
			}
		}
		for _, m := range []string{"enp2s0", "enp3s0"} {
			if !strings.Contains(bond, "member "+m+": enabled") {
				t.Errorf("bond member %s not enabled:\n%s", m, bond)
			}
		}
		if list := s.appctl("bond/list"); !strings.Contains(list, "ovs-bond") {
			t.Errorf("bond/list lacks ovs-bond:\n%s", list)
		}
		t.Logf("bond/show:\n%s", bond)

		// A broadcast from a VLAN 10 VM crosses the patch inline and leaves
		// through exactly one bond member, tagged 10.
		tr := s.appctl("ofproto/trace", "br-ex", "in_port=vm10a,dl_src=02:00:5e:40:00:01,dl_dst=ff:ff:ff:ff:ff:ff")
		acts := datapathActions(tr)
		if !strings.Contains(acts, "push_vlan(vid=10") || !strings.Contains(acts, "vm10b") ||
			!oneMember(acts) || strings.Contains(acts, "vm20") {
			t.Errorf("trace of a VLAN 10 broadcast on br-ex: actions %q, want vm10b and one bond member with vid 10\n%s", acts, tr)
		}
		// From the patch end of br-phy: out one member only.
		tr = s.appctl("ofproto/trace", "br-phy", "in_port=patch-phy-to-ex,dl_src=02:00:5e:40:00:02,dl_dst=ff:ff:ff:ff:ff:ff")
		acts = datapathActions(tr)
		if !oneMember(acts) {
			t.Errorf("trace from patch-phy-to-ex: actions %q, want exactly one bond member\n%s", acts, tr)
		}
		if flows := s.appctl("dpctl/dump-flows"); !strings.Contains(flows, "packets:") {
			t.Errorf("dpctl/dump-flows shows no megaflows after traffic:\n%s", flows)
		}
	})
	t.Run("IPv6NodeAddress", func(t *testing.T) {
		// Neighbour discovery is multicast: the switch floods it to both
		// members and the bond must pass exactly one copy.
		if err := s.up.ns.Sysctl("net/ipv6/conf/eth0/disable_ipv6", "0"); err != nil {
			t.Fatal(err)
		}
		if err := s.up.ns.AddAddr("eth0", "2001:db8:18::100/64"); err != nil {
			t.Fatal(err)
		}
		if err := s.ns.AddAddr("br-ex", "2001:db8:18::1/64"); err != nil {
			t.Fatal(err)
		}
		s.up.mustPing(t, "2001:db8:18::1")
		out, err := s.up.ns.Exec(ctx5s(t), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "2001:db8:18::1")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "DUP!") {
			t.Errorf("duplicate IPv6 replies:\n%s", out)
		}
	})
	t.Run("MemberFailover", func(t *testing.T) {
		// Streams both ways between the untagged VM and the upstream host;
		// the member carrying the VM's MAC loses carrier. Traffic moves to
		// the survivor and the switch relearns the VM's MAC (learning
		// packets), within 2 s.
		addNeighs(t, s.vmu, s.up)
		out := startStream(t, s.vmu, s.up, 10, 2*time.Millisecond)
		in := startStream(t, s.up, s.vmu, 11, 2*time.Millisecond)
		if !waitFor(3*time.Second, func() bool { return out.received() > 50 && in.received() > 50 }) {
			t.Fatalf("streams do not flow: %d out, %d in", out.received(), in.received())
		}
		// Which member carries the VM's frames?
		s.s2.Drain()
		s.s3.Drain()
		isVM := func(f []byte) bool { return len(f) > 12 && string(f[6:12]) == string(s.vmu.mac) }
		buf := make([]byte, 2048)
		used, other := "s2", "s3"
		if _, err := s.s2.RecvMatch(buf, 500*time.Millisecond, isVM); err != nil {
			used, other = "s3", "s2"
			if _, err := s.s3.RecvMatch(buf, 500*time.Millisecond, isVM); err != nil {
				t.Fatalf("the VM's frames appear on neither member")
			}
		}
		member := map[string]string{"s2": "enp2s0", "s3": "enp3s0"}
		if err := s.sw.SetDown(used); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.sw.SetUp(used) })
		t0 := time.Now()
		mOut, mIn := out.mark(), in.mark()
		time.Sleep(2 * time.Second)
		after := out.mark()
		if !waitFor(time.Second, func() bool { return out.lastArrival() >= int64(after) }) {
			t.Errorf("VM -> upstream did not recover within 2 s of %s losing carrier", member[used])
		}
		afterIn := in.mark()
		if !waitFor(time.Second, func() bool { return in.lastArrival() >= int64(afterIn) }) {
			t.Errorf("upstream -> VM did not recover within 2 s of %s losing carrier (switch did not relearn?)", member[used])
		}
		lo, _ := out.lost(mOut, after)
		li, _ := in.lost(mIn, afterIn)
		t.Logf("failover of %s: lost %d out, %d in (2 ms apart); %v", member[used], len(lo), len(li), time.Since(t0).Round(time.Millisecond))
		bond := s.appctl("bond/show", "ovs-bond")
		if !strings.Contains(bond, "member "+member[used]+": disabled") || !strings.Contains(bond, "member "+member[other]+": enabled") {
			t.Errorf("bond/show after %s lost carrier:\n%s", member[used], bond)
		}
		if got := s.get("Interface", member[used], "link_state"); got != "down" {
			waitFor(6*time.Second, func() bool { return s.get("Interface", member[used], "link_state") == "down" })
			if got = s.get("Interface", member[used], "link_state"); got != "down" {
				t.Errorf("%s link_state %q after losing carrier", member[used], got)
			}
		}
		out.halt()
		in.halt()
		if err := s.sw.SetUp(used); err != nil {
			t.Fatal(err)
		}
		if !waitFor(3*time.Second, func() bool {
			return strings.Contains(s.appctl("bond/show", "ovs-bond"), "member "+member[used]+": enabled")
		}) {
			t.Errorf("%s not re-enabled after carrier returned", member[used])
		}
	})
	t.Run("InternalMTUKeepsIP", func(t *testing.T) {
		// "MTU set by hand" on br-ex after the node IP is configured: the
		// internal device must keep its address (OVS changes the MTU of
		// the existing device, it does not recreate it).
		s.vsctl("set", "Interface", "br-ex", "mtu_request=1400")
		if !waitFor(2*time.Second, func() bool { return s.get("Interface", "br-ex", "mtu") == "1400" }) {
			t.Errorf("Interface br-ex mtu = %s, want 1400", s.get("Interface", "br-ex", "mtu"))
		}
		out, err := s.ns.Exec(ctx5s(t), "ip", "-4", "-o", "addr", "show", "dev", "br-ex")
		if err != nil || !strings.Contains(string(out), nodeIP+"/24") {
			t.Errorf("br-ex lost the node IP after mtu_request changed (device recreated?): %v %s", err, out)
		}
		if err := s.up.ping(nodeIP, 1, 2*time.Second); err != nil {
			t.Errorf("node IP unreachable after mtu_request changed: %v", err)
		}
	})
	t.Run("Kill9Restart", func(t *testing.T) {
		// The whole seed node survives kill -9: the bond forwards again,
		// both members enabled, and the configuration is unchanged.
		addNeighs(t, s.vmu, s.up)
		st := startStream(t, s.vmu, s.up, 20, 2*time.Millisecond)
		if !waitFor(3*time.Second, func() bool { return st.received() > 20 }) {
			t.Fatalf("stream does not flow before the kill")
		}
		before := s.configDump()
		s.x.Kill9()
		killed := time.Now()
		if err := s.x.Start(); err != nil {
			t.Fatal(err)
		}
		m := st.mark()
		if !waitFor(5*time.Second, func() bool { return st.lastArrival() >= int64(m) }) {
			t.Errorf("VM -> upstream through the bond did not resume within 5 s of the restart")
		} else {
			t.Logf("resumed %v after the kill", time.Since(killed).Round(time.Millisecond))
		}
		st.halt()
		if got := s.configDump(); got != before {
			t.Errorf("configuration changed across kill -9:\nbefore:\n%s\nafter:\n%s", before, got)
		}
		bond := s.appctl("bond/show", "ovs-bond")
		for _, m := range []string{"enp2s0", "enp3s0"} {
			if !strings.Contains(bond, "member "+m+": enabled") {
				t.Errorf("after restart bond member %s not enabled:\n%s", m, bond)
			}
		}
		s.vm10a.mustPing(t, s.vm10b.ip)
	})
}

// oneMember reports whether datapath actions send to exactly one bond
// member: by name, or through a bond(...) action that picks one by hash.
func oneMember(acts string) bool {
	n := strings.Count(acts, "enp2s0") + strings.Count(acts, "enp3s0") + strings.Count(acts, "bond(")
	return n == 1
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Internal ports with a tag serve as the node's VLAN interfaces (this
// machine has no 8021q module): the node reaches hosts of that VLAN
// through them and no other. MTU requests apply to system ports too.
func TestInternalPortVLAN(t *testing.T) {
	n := newNode(t)
	n.addBridge("br0")
	h10 := n.newHost("h10", "p10", "198.18.7.1/24")
	h20 := n.newHost("h20", "p20", "198.18.7.2/24")
	n.vsctl("add-port", "br0", "p10", "tag=10")
	n.vsctl("add-port", "br0", "p20", "tag=20")
	n.vsctl("add-port", "br0", "int10", "tag=10", "--", "set", "Interface", "int10", "type=internal")
	if !waitFor(5*time.Second, func() bool { _, err := n.ns.Link("int10"); return err == nil }) {
		t.Fatalf("internal port int10 did not appear")
	}
	if err := n.ns.SetUp("int10"); err != nil {
		t.Fatal(err)
	}
	if err := n.ns.AddAddr("int10", "198.18.7.254/24"); err != nil {
		t.Fatal(err)
	}
	h10.mustPing(t, "198.18.7.254")
	h20.mustNotPing(t, "198.18.7.254")
	if got := n.get("Interface", "int10", "ofport"); got == "-1" || got == "65534" {
		t.Errorf("int10 ofport %s", got)
	}
	if got := n.get("Interface", "int10", "status:driver_name"); got != "tap" {
		t.Logf("int10 driver_name %q", got)
	}

	// A fake bridge (ovs-vsctl's VLAN bridge) is the same thing spelled
	// differently: an internal port tagged 20 on br0.
	n.vsctl("add-br", "br20", "br0", "20")
	if out := n.vsctl("br-to-vlan", "br20"); strings.TrimSpace(out) != "20" {
		t.Errorf("br-to-vlan br20 = %q", out)
	}
	if !waitFor(5*time.Second, func() bool { _, err := n.ns.Link("br20"); return err == nil }) {
		t.Fatalf("fake bridge br20 has no internal device")
	}
	if err := n.ns.SetUp("br20"); err != nil {
		t.Fatal(err)
	}
	if err := n.ns.AddAddr("br20", "198.18.8.254/24"); err != nil {
		t.Fatal(err)
	}
	if err := h20.ns.AddAddr("eth0", "198.18.8.2/24"); err != nil {
		t.Fatal(err)
	}
	h20.mustPing(t, "198.18.8.254")

	// mtu_request on a system port: the device and the column follow,
	// and the port still forwards.
	n.vsctl("set", "Interface", "p10", "mtu_request=1400")
	if !waitFor(2*time.Second, func() bool { return n.get("Interface", "p10", "mtu") == "1400" }) {
		t.Errorf("p10 mtu column %s, want 1400", n.get("Interface", "p10", "mtu"))
	}
	if l, err := n.ns.Link("p10"); err != nil || l.Attrs().MTU != 1400 {
		t.Errorf("p10 device MTU not 1400 (%v)", err)
	}
	h10.mustPing(t, "198.18.7.254")
}
