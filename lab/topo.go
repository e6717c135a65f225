package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Topologies built by Build (and the `xvs lab` command).
const (
	KindPair = "pair" // two hosts on access ports of one bridge
	KindSeed = "seed" // the node of seed-topology.md: br-ex, patch, br-phy, SLB bond
	KindBond = "bond" // N upstream hosts behind a 2-member balance-slb bond
)

// Kinds lists the topologies Build knows.
var Kinds = []string{KindSeed, KindPair, KindBond}

// TopoOptions configures a topology builder. The zero value of every field
// but Xvsd is useful.
type TopoOptions struct {
	// Xvsd is the xvsd binary to run in the node namespace (required).
	Xvsd string
	// Dir holds the daemon's database, sockets, pidfile and log; "" makes a
	// temporary directory.
	Dir string
	// Hosts is the number of upstream hosts of the bond topology (default 4,
	// at most 50).
	Hosts int
	// Log, when set, receives one line per step (ovs-vsctl commands as run).
	Log io.Writer
}

// Host is an endpoint of a topology: an address on a link in a namespace.
type Host struct {
	Name string `json:"name"` // e.g. "vm10"
	NS   string `json:"ns"`   // full namespace name
	Dev  string `json:"dev"`  // link carrying Addr inside NS
	Addr string `json:"addr"` // CIDR, e.g. "198.18.10.11/24"
	Port string `json:"port"` // OVS port the host hangs off ("" if none)
	Note string `json:"note"` // where it sits, for people
}

// IP returns the host's address without the prefix length.
func (h Host) IP() string { ip, _, _ := strings.Cut(h.Addr, "/"); return ip }

// Path is a representative traffic path of a topology: what a traffic test
// runs between two hosts.
type Path struct {
	Name     string `json:"name"`
	From     string `json:"from"` // Host names
	To       string `json:"to"`
	TCP      bool   `json:"tcp"`                // run an iperf3 TCP test
	UDP      bool   `json:"udp"`                // run a 64-byte UDP flood
	Isolated bool   `json:"isolated,omitempty"` // To must NOT be reachable
}

// Topo is a built topology: its namespaces, the xvsd running in the node
// namespace, its hosts and traffic paths. It is saved as JSON (Save) so
// another process can attach to it (LoadTopo) and tear it down (Teardown).
type Topo struct {
	Kind     string   `json:"kind"`
	Prefix   string   `json:"prefix"`
	Dir      string   `json:"dir"`      // xvsd directory
	NodeNS   string   `json:"node_ns"`  // namespace running xvsd
	Spaces   []string `json:"spaces"`   // every namespace, full names
	Bridges  []string `json:"bridges"`  // OVS bridges
	Bonds    []string `json:"bonds"`    // OVS bond ports
	Commands []string `json:"commands"` // ovs-vsctl commands run to configure it
	Hosts    []Host   `json:"hosts"`
	Paths    []Path   `json:"paths"`

	// Xvsd is the daemon. For a topology loaded from disk it can run
	// ovs-vsctl/ovs-appctl but not Stop; use Teardown.
	Xvsd *Xvsd `json:"-"`
	// Lab is set when the topology was built by this process.
	Lab *Lab `json:"-"`

	log    io.Writer
	spaces map[string]*NS // full name -> open handle
}

// Host returns the named host, or nil.
func (t *Topo) Host(name string) *Host {
	for i := range t.Hosts {
		if t.Hosts[i].Name == name {
			return &t.Hosts[i]
		}
	}
	return nil
}

// NS returns an open handle to the namespace with the given full name (one
// of Spaces), opening it if needed.
func (t *Topo) NS(full string) (*NS, error) {
	if ns := t.spaces[full]; ns != nil {
		return ns, nil
	}
	ns, err := OpenNS(full)
	if err != nil {
		return nil, err
	}
	if t.spaces == nil {
		t.spaces = map[string]*NS{}
	}
	t.spaces[full] = ns
	return ns, nil
}

// HostNS returns the namespace of the named host.
func (t *Topo) HostNS(name string) (*NS, error) {
	h := t.Host(name)
	if h == nil {
		return nil, fmt.Errorf("lab: topology %s has no host %q", t.Kind, name)
	}
	return t.NS(h.NS)
}

// Build builds the topology kind (one of Kinds) in l.
func Build(kind string, l *Lab, o TopoOptions) (*Topo, error) {
	switch kind {
	case KindSeed:
		return Seed(l, o)
	case KindPair:
		return PairTopo(l, o)
	case KindBond:
		return BondTopo(l, o)
	}
	return nil, fmt.Errorf("lab: unknown topology %q (want one of %s)", kind, strings.Join(Kinds, ", "))
}

// builder carries the state of one Build: the first error stops every
// later step, so builders read as a straight list of steps.
type builder struct {
	t   *Topo
	l   *Lab
	o   TopoOptions
	err error
}

func newBuilder(kind string, l *Lab, o TopoOptions) (*builder, error) {
	if o.Xvsd == "" {
		return nil, errors.New("lab: TopoOptions.Xvsd (the xvsd binary) is required")
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", l.Prefix+"-xvsd-")
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		o.Dir = d
	}
	t := &Topo{Kind: kind, Prefix: l.Prefix, Dir: o.Dir, Lab: l, log: o.Log, spaces: map[string]*NS{}}
	return &builder{t: t, l: l, o: o}, nil
}

func (b *builder) logf(format string, args ...any) {
	if b.o.Log != nil {
		fmt.Fprintf(b.o.Log, format+"\n", args...)
	}
}

// ns creates the lab namespace Prefix-name.
func (b *builder) ns(name string) *NS {
	if b.err != nil {
		return nil
	}
	ns, err := b.l.NS(name)
	if err != nil {
		b.err = err
		return nil
	}
	b.t.Spaces = append(b.t.Spaces, ns.Name)
	b.t.spaces[ns.Name] = ns
	return ns
}

func (b *builder) do(fn func() error) {
	if b.err == nil {
		b.err = fn()
	}
}

// wire joins a/an to z/zn with a veth pair (up, TX checksum off).
func (b *builder) wire(a *NS, an string, z *NS, zn string) {
	b.do(func() error { return b.l.Wire(a, an, z, zn) })
}

// upstream makes the "upstream switch": a Linux bridge br0 in sw.
func (b *builder) upstream(sw *NS) {
	b.do(func() error { return sw.Bridge("br0") })
	b.do(func() error { return sw.SetUp("br0") })
}

// switchPort wires ns/dev to a new port of the upstream switch.
func (b *builder) switchPort(ns *NS, dev string, sw *NS, port string) {
	b.wire(ns, dev, sw, port)
	b.do(func() error { return sw.SetMaster(port, "br0") })
}

// host records a host and gives dev its address.
func (b *builder) host(h Host, ns *NS) {
	if b.err != nil {
		return
	}
	h.NS = ns.Name
	b.do(func() error { return ns.AddAddr(h.Dev, h.Addr) })
	b.t.Hosts = append(b.t.Hosts, h)
}

// vm creates namespace name with eth0 wired to node port `port`.
func (b *builder) vm(node *NS, name, port, addr, note string) {
	ns := b.ns(name)
	b.wire(ns, "eth0", node, port)
	b.host(Host{Name: name, Dev: "eth0", Addr: addr, Port: port, Note: note}, ns)
}

// xvsd starts the daemon in node.
func (b *builder) xvsd(node *NS) {
	b.do(func() error {
		x, err := StartXvsd(node, b.o.Xvsd, b.o.Dir)
		if err != nil {
			return err
		}
		b.t.Xvsd, b.t.NodeNS = x, node.Name
		b.logf("xvsd running in namespace %s (pid %d, files in %s)", node.Name, x.cmd.Process.Pid, b.o.Dir)
		return nil
	})
}

// vsctl runs one ovs-vsctl command given as a single line (arguments are
// separated by spaces; none of ours contains one).
func (b *builder) vsctl(line string) {
	b.do(func() error {
		b.logf("ovs-vsctl %s", line)
		b.t.Commands = append(b.t.Commands, "ovs-vsctl "+line)
		_, err := b.t.Xvsd.Vsctl(strings.Fields(line)...)
		return err
	})
}

// internalUp waits for the internal port dev (a TAP xvsd creates) to
// appear in node and brings it up.
func (b *builder) internalUp(node *NS, dev string) {
	b.do(func() error {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := node.Link(dev); err == nil {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("internal port %s did not appear: %w", dev, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return node.SetUp(dev)
	})
}

func (b *builder) finish() (*Topo, error) {
	if b.err != nil {
		if b.t.Xvsd != nil {
			b.t.Xvsd.Kill9()
		}
		return nil, fmt.Errorf("lab: building %s topology: %w", b.t.Kind, b.err)
	}
	return b.t, nil
}

// Seed builds the node of seed-topology.md section 1, configured with the
// same ovs-vsctl commands:
//
//	vm0 (untagged) ──┐
//	vm10, vm10b (tag 10), vm20 (tag 20) ─ br-ex ─ patch ─ br-phy ─ ovs-bond ═ enp2s0, enp3s0
//	br-ex internal port: 198.18.0.1/24                   (balance-slb)   │        │
//	                                               upstream switch (Linux bridge br0) ─ upstream host
//
// Namespaces: node (xvsd, br-ex IP, management NIC enp1s0), sw (the
// upstream switch), up (the upstream host, 198.18.0.100/24 behind the switch
// and 198.19.0.100/24 on the management link), vm0 (198.18.0.10/24),
// vm10 and vm10b (198.18.10.11 and .12, VLAN 10) and vm20 (198.18.10.20,
// VLAN 20: same subnet as VLAN 10 on purpose, to show isolation).
//
// allow-extra-patch-ports is an NMState policy (keep patch ports NMState
// did not create); it has no OVSDB column, so nothing is written for it.
func Seed(l *Lab, o TopoOptions) (*Topo, error) {
	b, err := newBuilder(KindSeed, l, o)
	if err != nil {
		return nil, err
	}
	node, sw, up := b.ns("node"), b.ns("sw"), b.ns("up")
	// The internal ports br-ex and br-phy (and enp1s0) share the node
	// namespace: without this, br-phy answers ARP for br-ex's address and
	// the upstream host sends to br-phy's MAC ("ARP flux").
	b.do(func() error { return node.Sysctl("net/ipv4/conf/all/arp_ignore", "1") })
	b.do(func() error { return node.Sysctl("net/ipv4/conf/all/arp_announce", "2") })
	b.upstream(sw)
	b.switchPort(node, "enp2s0", sw, "enp2s0-peer")
	b.switchPort(node, "enp3s0", sw, "enp3s0-peer")
	b.switchPort(up, "eth0", sw, "up0")
	b.host(Host{Name: "upstream", Dev: "eth0", Addr: "198.18.0.100/24", Note: "behind the upstream switch"}, up)
	// The management NIC keeps its own IP, outside OVS.
	b.wire(node, "enp1s0", up, "eth1")
	b.do(func() error { return node.AddAddr("enp1s0", "198.19.0.1/24") })
	b.do(func() error { return up.AddAddr("eth1", "198.19.0.100/24") })

	b.vm(node, "vm0", "vm0", "198.18.0.10/24", "br-ex, untagged")
	b.vm(node, "vm10", "vm10", "198.18.10.11/24", "br-ex, VLAN 10")
	b.vm(node, "vm10b", "vm10b", "198.18.10.12/24", "br-ex, VLAN 10")
	b.vm(node, "vm20", "vm20", "198.18.10.20/24", "br-ex, VLAN 20")

	b.xvsd(node)
	b.vsctl("add-br br-ex -- set Bridge br-ex datapath_type=netdev")
	b.vsctl("add-br br-phy -- set Bridge br-phy datapath_type=netdev")
	b.vsctl("add-port br-ex patch-ex-to-phy -- set Interface patch-ex-to-phy type=patch options:peer=patch-phy-to-ex" +
		" -- set Port patch-ex-to-phy external_ids:bridge-uplink=patch-ex-to-phy")
	b.vsctl("add-port br-phy patch-phy-to-ex -- set Interface patch-phy-to-ex type=patch options:peer=patch-ex-to-phy")
	b.vsctl("add-bond br-phy ovs-bond enp2s0 enp3s0 bond_mode=balance-slb")
	b.vsctl("set Interface enp2s0 mtu_request=1500 -- set Interface enp3s0 mtu_request=1500")
	b.vsctl("set Open_vSwitch . external_ids:ovn-bridge-mappings=localnet-network:br-ex")
	b.vsctl("set Interface br-ex mtu_request=1500")
	b.vsctl("add-port br-ex vm0")
	b.vsctl("add-port br-ex vm10 tag=10")
	b.vsctl("add-port br-ex vm10b tag=10")
	b.vsctl("add-port br-ex vm20 tag=20")
	b.internalUp(node, "br-ex")
	b.host(Host{Name: "br-ex", Dev: "br-ex", Addr: "198.18.0.1/24", Port: "br-ex", Note: "node IP on the br-ex internal port"}, node)
	b.t.Bridges, b.t.Bonds = []string{"br-ex", "br-phy"}, []string{"ovs-bond"}
	b.t.Paths = []Path{
		{Name: "vm0 -> upstream (br-ex, patch, br-phy, bond)", From: "vm0", To: "upstream", TCP: true, UDP: true},
		{Name: "vm10 -> vm10b (VLAN 10 on br-ex)", From: "vm10", To: "vm10b", TCP: true, UDP: true},
		{Name: "upstream -> br-ex IP (bond, internal port)", From: "upstream", To: "br-ex", TCP: true},
		{Name: "vm10 -> vm20 (VLAN 20, must be isolated)", From: "vm10", To: "vm20", Isolated: true},
	}
	return b.finish()
}

// PairTopo builds two hosts h1 (198.18.0.1/24) and h2 (198.18.0.2/24) on
// access ports (VLAN 10) of one bridge br0 in the node namespace.
func PairTopo(l *Lab, o TopoOptions) (*Topo, error) {
	b, err := newBuilder(KindPair, l, o)
	if err != nil {
		return nil, err
	}
	node := b.ns("node")
	b.vm(node, "h1", "h1", "198.18.0.1/24", "br0, VLAN 10")
	b.vm(node, "h2", "h2", "198.18.0.2/24", "br0, VLAN 10")
	b.xvsd(node)
	b.vsctl("add-br br0 -- set Bridge br0 datapath_type=netdev")
	b.vsctl("add-port br0 h1 tag=10")
	b.vsctl("add-port br0 h2 tag=10")
	b.t.Bridges = []string{"br0"}
	b.t.Paths = []Path{{Name: "h1 -> h2 (access ports, VLAN 10)", From: "h1", To: "h2", TCP: true, UDP: true}}
	return b.finish()
}

// BondTopo builds Hosts (default 4) upstream hosts h1..hN (198.18.0.101...,
// distinct MACs 02:00:5e:00:00:NN) on the upstream switch, a Linux bridge
// joined to the node by enp2s0 and enp3s0, which xvsd bonds (balance-slb)
// on bridge br0; the node side's local host (namespace "local",
// 198.18.0.1/24) sits on port local0 of br0.
func BondTopo(l *Lab, o TopoOptions) (*Topo, error) {
	n := o.Hosts
	if n <= 0 {
		n = 4
	}
	if n > 50 {
		return nil, fmt.Errorf("lab: bond topology with %d hosts (at most 50)", n)
	}
	b, err := newBuilder(KindBond, l, o)
	if err != nil {
		return nil, err
	}
	node, sw := b.ns("node"), b.ns("sw")
	b.upstream(sw)
	b.switchPort(node, "enp2s0", sw, "enp2s0-peer")
	b.switchPort(node, "enp3s0", sw, "enp3s0-peer")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		h := b.ns(name)
		b.switchPort(h, "eth0", sw, "p"+name)
		mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, byte(i)}
		b.do(func() error { return h.SetMAC("eth0", mac) })
		b.host(Host{Name: name, Dev: "eth0", Addr: fmt.Sprintf("198.18.0.%d/24", 100+i), Note: "upstream, MAC " + mac.String()}, h)
	}
	b.vm(node, "local", "local0", "198.18.0.1/24", "br0 local port")
	b.xvsd(node)
	b.vsctl("add-br br0 -- set Bridge br0 datapath_type=netdev")
	b.vsctl("add-bond br0 ovs-bond enp2s0 enp3s0 bond_mode=balance-slb")
	b.vsctl("add-port br0 local0")
	b.t.Bridges, b.t.Bonds = []string{"br0"}, []string{"ovs-bond"}
	b.t.Paths = []Path{{Name: "local -> h1 (bond)", From: "local", To: "h1", TCP: true, UDP: true}}
	for i := 2; i <= n; i++ {
		b.t.Paths = append(b.t.Paths, Path{Name: fmt.Sprintf("local -> h%d (bond)", i), From: "local", To: fmt.Sprintf("h%d", i)})
	}
	return b.finish()
}

// Exec runs a command in the named host's namespace.
func (t *Topo) Exec(ctx context.Context, host string, name string, args ...string) ([]byte, error) {
	ns, err := t.HostNS(host)
	if err != nil {
		return nil, err
	}
	return ns.Exec(ctx, name, args...)
}
