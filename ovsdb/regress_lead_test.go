package ovsdb

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// Regression (found by xvsd's write-back): updating a plain column of an
// Interface row referenced by a Port must not garbage-collect it, neither
// right after the insert nor after the database is reopened.
func TestRegressUpdateReferencedRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf.db")
	db, err := Open(path, BuiltinSchema())
	if err != nil {
		t.Fatal(err)
	}
	mustTx := func(db *Database, ops string) json.RawMessage {
		t.Helper()
		res, err := db.Transact(json.RawMessage(ops))
		if err != nil {
			t.Fatalf("%v: %s", err, res)
		}
		return res
	}
	mustTx(db, `[{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","br"]}},
		{"op":"insert","table":"Bridge","uuid-name":"br","row":{"name":"br0","ports":["named-uuid","p"]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"p0","interfaces":["named-uuid","i"]}},
		{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"p0"}}]`)
	update := `[{"op":"update","table":"Interface","where":[["name","==","p0"]],"row":{"ofport":1,"mtu":1500,"status":["map",[["driver_name","afxdp"]]]}},
		{"op":"update","table":"Bridge","where":[["name","==","br0"]],"row":{"datapath_id":"0000000000000001"}}]`
	mustTx(db, update)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, BuiltinSchema())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustTx(db, update)
	mustTx(db, `[{"op":"mutate","table":"Interface","where":[["name","==","p0"]],"mutations":[["external_ids","insert",["map",[["a","b"]]]]]}]`)
	var n int
	db.Read(func(tx *ReadTx) { n = len(tx.Rows("Interface")) })
	if n != 1 {
		t.Fatalf("%d Interface rows, want 1", n)
	}
}

// The shape of `ovs-vsctl add-br brx -- set interface brx type=patch
// options:peer=zz`: inserts, then a mutate of a row inserted in the same
// transaction. A later update of that row must not find it unreferenced.
func TestRegressMutateInsertedRowRefcount(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "conf.db"), BuiltinSchema())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Transact(json.RawMessage(`[{"op":"insert","table":"Open_vSwitch","uuid-name":"ovs","row":{}}]`))
	if err != nil {
		t.Fatal(err, string(res))
	}
	var ins []map[string][]string
	_ = json.Unmarshal(res, &ins)
	ovs := ins[0]["uuid"][1]
	ops := `[{"uuid-name":"p","row":{"name":"brx","interfaces":["named-uuid","i"]},"op":"insert","table":"Port"},
		{"uuid-name":"i","row":{"name":"brx","type":"patch"},"op":"insert","table":"Interface"},
		{"mutations":[["options","insert",["map",[["peer","zz"]]]]],"where":[["_uuid","==",["named-uuid","i"]]],"op":"mutate","table":"Interface"},
		{"uuid-name":"b","row":{"name":"brx","ports":["named-uuid","p"]},"op":"insert","table":"Bridge"},
		{"where":[["_uuid","==",["uuid","` + ovs + `"]]],"row":{"bridges":["named-uuid","b"]},"op":"update","table":"Open_vSwitch"}]`
	if res, err := db.Transact(json.RawMessage(ops)); err != nil {
		t.Fatal(err, string(res))
	}
	upd := `[{"op":"update","table":"Interface","where":[["name","==","brx"]],"row":{"mtu":1500}}]`
	if res, err := db.Transact(json.RawMessage(upd)); err != nil {
		t.Fatalf("update after add-br: %v %s", err, res)
	}
}
