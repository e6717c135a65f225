package ovsdb_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"xvs/ovsdb"
)

// Open a database file, commit a transaction through the in-process API
// and read the result back.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	db, err := ovsdb.Open(filepath.Join(dir, "conf.db"), ovsdb.BuiltinSchema())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	_, err = db.Transact(json.RawMessage(`[
		{"op": "insert", "table": "Open_vSwitch", "row": {"bridges": ["named-uuid", "br"]}},
		{"op": "insert", "table": "Bridge", "uuid-name": "br",
		 "row": {"name": "br0", "external_ids": ["map", [["owner", "example"]]]}},
		{"op": "insert", "table": "Bridge", "row": {"name": "unreferenced"}}]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	db.Read(func(tx *ovsdb.ReadTx) {
		for _, br := range tx.Rows("Bridge") {
			// Scalars are Go atoms, maps are ovsdb.Map, sets ovsdb.Set.
			fmt.Println(br["name"].(string), br["external_ids"].(ovsdb.Map)["owner"], len(br["ports"].(ovsdb.Set)))
		}
	})
	// The unreferenced Bridge was garbage collected at commit.

	// A failing transaction reports the RFC 7047 error.
	_, err = db.Transact(json.RawMessage(`[{"op": "update", "table": "Bridge", "where": [], "row": {"fail_mode": "bogus"}}]`))
	fmt.Println(err)
	// Output:
	// br0 example 0
	// constraint violation: bogus is not one of the allowed values ([secure, standalone])
}
