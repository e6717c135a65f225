package ovsdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-org/libovsdb/client"
	"github.com/ovn-org/libovsdb/model"
	libovsdb "github.com/ovn-org/libovsdb/ovsdb"
)

// Models of the columns this test uses; libovsdb maps them by tag and
// validates them against the schema the server hands out.
type lbRoot struct {
	UUID    string   `ovsdb:"_uuid"`
	Bridges []string `ovsdb:"bridges"`
	NextCfg int      `ovsdb:"next_cfg"`
}

type lbBridge struct {
	UUID         string            `ovsdb:"_uuid"`
	Name         string            `ovsdb:"name"`
	Ports        []string          `ovsdb:"ports"`
	DatapathType string            `ovsdb:"datapath_type"`
	ExternalIDs  map[string]string `ovsdb:"external_ids"`
}

type lbPort struct {
	UUID       string   `ovsdb:"_uuid"`
	Name       string   `ovsdb:"name"`
	Interfaces []string `ovsdb:"interfaces"`
	Tag        *int     `ovsdb:"tag"`
	Trunks     []int    `ovsdb:"trunks"`
	VLANMode   *string  `ovsdb:"vlan_mode"`
}

type lbInterface struct {
	UUID       string            `ovsdb:"_uuid"`
	Name       string            `ovsdb:"name"`
	Type       string            `ovsdb:"type"`
	Options    map[string]string `ovsdb:"options"`
	MTURequest *int              `ovsdb:"mtu_request"`
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientLibovsdb(t *testing.T) {
	dbModel, err := model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		"Open_vSwitch": &lbRoot{},
		"Bridge":       &lbBridge{},
		"Port":         &lbPort{},
		"Interface":    &lbInterface{},
	})
	if err != nil {
		t.Fatal(err)
	}
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "add-br", "br-pre")

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		quiet := logr.Discard()
		c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint("unix:"+sock), client.WithLogger(&quiet))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer c.Close()
		if _, err := c.MonitorAll(ctx); err != nil {
			t.Fatalf("monitor all: %v", err)
		}

		var roots []lbRoot
		if err := c.List(ctx, &roots); err != nil || len(roots) != 1 {
			t.Fatalf("Open_vSwitch rows %v: %v", roots, err)
		}
		root := roots[0]
		pre := &lbBridge{Name: "br-pre"}
		if err := c.Get(ctx, pre); err != nil {
			t.Fatalf("initial cache lacks br-pre: %v", err)
		}
		if len(pre.Ports) != 1 {
			t.Errorf("br-pre ports %v", pre.Ports)
		}

		// One transaction: interface, port and bridge by named UUID,
		// attached to the root row by a mutate.
		mtu, tag, mode := 9000, 10, "access"
		iface := &lbInterface{UUID: "iface", Name: "p-lib", Type: "internal", MTURequest: &mtu,
			Options: map[string]string{"k": "v"}}
		port := &lbPort{UUID: "port", Name: "p-lib", Interfaces: []string{"iface"}, Tag: &tag, VLANMode: &mode}
		br := &lbBridge{UUID: "bridge", Name: "br-lib", Ports: []string{"port"}, DatapathType: "netdev",
			ExternalIDs: map[string]string{"owner": "libovsdb"}}
		ops, err := c.Create(iface, port, br)
		if err != nil {
			t.Fatal(err)
		}
		mut, err := c.Where(&root).Mutate(&root, model.Mutation{
			Field: &root.Bridges, Mutator: libovsdb.MutateOperationInsert, Value: []string{"bridge"}})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, mut...)
		res, err := c.Transact(ctx, ops...)
		if err != nil {
			t.Fatalf("transact: %v", err)
		}
		if _, err := libovsdb.CheckOperationResults(res, ops); err != nil {
			t.Fatalf("transact results %v: %v", res, err)
		}

		got := &lbBridge{Name: "br-lib"}
		eventually(t, "br-lib in the cache", func() bool {
			return c.Get(ctx, got) == nil && len(got.Ports) == 1
		})
		if got.UUID != res[2].UUID.GoUUID || got.DatapathType != "netdev" || got.ExternalIDs["owner"] != "libovsdb" {
			t.Errorf("cached bridge %+v, inserted as %s", got, res[2].UUID.GoUUID)
		}
		gotPort := &lbPort{UUID: got.Ports[0]}
		if err := c.Get(ctx, gotPort); err != nil {
			t.Fatalf("port %s not cached: %v", got.Ports[0], err)
		}
		if gotPort.Name != "p-lib" || gotPort.Tag == nil || *gotPort.Tag != 10 || len(gotPort.Interfaces) != 1 {
			t.Errorf("cached port %+v", gotPort)
		}
		gotIface := &lbInterface{UUID: gotPort.Interfaces[0]}
		if err := c.Get(ctx, gotIface); err != nil || gotIface.MTURequest == nil || *gotIface.MTURequest != 9000 || gotIface.Options["k"] != "v" {
			t.Errorf("cached interface %+v: %v", gotIface, err)
		}

		// An update through libovsdb, read back with ovs-vsctl.
		gotPort.Trunks = []int{20, 30}
		trunk := "trunk"
		gotPort.VLANMode = &trunk
		upd, err := c.Where(gotPort).Update(gotPort, &gotPort.Trunks, &gotPort.VLANMode)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := c.Transact(ctx, upd...); err != nil {
			t.Fatalf("update: %v", err)
		} else if _, err := libovsdb.CheckOperationResults(res, upd); err != nil {
			t.Fatalf("update results: %v", err)
		}
		if out := mustVsctl(t, sock, "get", "Port", "p-lib", "trunks", "vlan_mode"); out != "[20, 30]\ntrunk\n" {
			t.Errorf("ovs-vsctl sees trunks/vlan_mode %q", out)
		}

		// A change by another client, seen in the cache; then deletion
		// by ovs-vsctl and garbage collection, seen in the cache.
		mustVsctl(t, sock, "set", "Bridge", "br-lib", "external_ids:owner=vsctl")
		eventually(t, "external_ids change", func() bool {
			b := &lbBridge{Name: "br-lib"}
			return c.Get(ctx, b) == nil && b.ExternalIDs["owner"] == "vsctl"
		})
		mustVsctl(t, sock, "del-br", "br-lib")
		eventually(t, "br-lib, its port and interface gone from the cache", func() bool {
			var ports []lbPort
			var ifaces []lbInterface
			var bridges []lbBridge
			c.List(ctx, &ports)
			c.List(ctx, &ifaces)
			c.List(ctx, &bridges)
			return len(ports) == 1 && len(ifaces) == 1 && len(bridges) == 1
		})
	})
}
