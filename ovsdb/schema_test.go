package ovsdb

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchemaErrors(t *testing.T) {
	cases := map[string]string{
		`{"name":"x","tables":{}}x`:   "JSON",
		`[]`:                          "JSON",
		`{"name":"1bad","tables":{}}`: "identifier",
		`{"name":"x","version":"1.0","tables":{}}`:                                                                        "x.y.z",
		`{"name":"x","tables":{"T":{"columns":{}}}}`:                                                                      "at least one column",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":"int"}}}}}`:                                                    "unknown atomic type",
		`{"name":"x","tables":{"T":{"columns":{"_c":{"type":"integer"}}}}}`:                                               "invalid column name",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":"integer","min":2}}}}}}`:                                "min must be 0 or 1",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":"integer","max":0}}}}}}`:                                "max must be",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"uuid","refTable":"U"}}}}}}}`:                   "undefined table U",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"integer","minInteger":5,"maxInteger":1}}}}}}}`: "minInteger exceeds",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"string","minReal":1}}}}}}}`:                    "unknown member",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"string","enum":["set",[1]]}}}}}}}`:             "expected string",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":"integer"}},"indexes":[["d"]]}}}`:                              "unknown column d",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":"integer"}},"maxRows":0}}}`:                                    "maxRows",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":"integer","mutable":"no"}}}}}`:                                 "mutable must be a boolean",
		`{"name":"x","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"uuid","refType":"weak"}}}}}}}`:                 "refType without refTable",
	}
	for in, want := range cases {
		_, err := ParseSchema([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchema(%s): error %v, want one mentioning %q", in, err, want)
		}
	}
	s, err := ParseSchema([]byte(`{"name":"x","tables":{"A":{"columns":{"c":{"type":"integer"}}},"B":{"columns":{"c":{"type":"integer"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Tables["A"].IsRoot || !s.Tables["B"].IsRoot {
		t.Error("with no isRoot anywhere, every table must be a root")
	}
	b := BuiltinSchema()
	if b.Name != "Open_vSwitch" || b.Tables["Bridge"].IsRoot || !b.Tables["Open_vSwitch"].IsRoot {
		t.Errorf("builtin schema: %s, Bridge root %v", b.Name, b.Tables["Bridge"].IsRoot)
	}
	if c := b.Tables["Interface"].Columns["link_state"]; c == nil || !c.Ephemeral {
		t.Error("Interface.link_state should be ephemeral")
	}
}

func TestCancelBlockedWait(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	_, sock := serve(t, db)
	c := dial(t, "unix", sock)
	c.sendRaw(`{"id":"w1","method":"transact","params":["T",{"op":"wait","table":"Other","where":[],"columns":["name"],"until":"!=","rows":[]}]}`)
	// Other requests are served while the wait blocks.
	if r := c.call("echo", 1); r["error"] != nil {
		t.Fatal(r)
	}
	c.sendRaw(`{"id":null,"method":"cancel","params":["w1"]}`)
	r := c.waitFor(func(m map[string]any) bool { return m["id"] == "w1" })
	if errTag(r["result"].([]any)) != "canceled" {
		t.Fatalf("canceled wait: %v", r)
	}
	// A wait satisfied by another client's commit completes.
	c.sendRaw(`{"id":"w2","method":"transact","params":["T",{"op":"wait","table":"Other","where":[],"columns":["name"],"until":"==","rows":[{"name":"z"}],"timeout":5000}]}`)
	time.Sleep(20 * time.Millisecond)
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"z"}}]`)
	r = c.waitFor(func(m map[string]any) bool { return m["id"] == "w2" })
	if errTag(r["result"].([]any)) != "" {
		t.Fatalf("wait: %v", r)
	}
}

func TestCloseStopsWatchers(t *testing.T) {
	s := testSchema(t)
	db, _ := openDB(t, s)
	calls := make(chan struct{}, 10)
	db.Watch(func(*Update) { calls <- struct{}{} })
	tx(t, db, `[{"op":"insert","table":"Other","row":{}}]`)
	<-calls
	db.Close()
	if res := tx(t, db, `[{"op":"insert","table":"Other","row":{}}]`); errTag(res) == "" {
		t.Fatal("transaction after Close succeeded")
	}
}
