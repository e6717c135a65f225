package ovsdb

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTransactErrors(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	o := tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"o1"},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r1","need":["named-uuid","o"]}}]`)
	if errTag(o) != "" {
		t.Fatalf("setup: %v", o)
	}
	cases := []struct {
		name, ops, tag string
		n              int // expected len(results)
	}{
		{"unknown table", `[{"op":"select","table":"Nope","where":[]}]`, "syntax error", 1},
		{"unknown op", `[{"op":"select","table":"Kid","where":[]},{"op":"bogus"},{"op":"comment","comment":"x"}]`, "syntax error", 3},
		{"wrong type", `[{"op":"insert","table":"Kid","row":{"name":5}}]`, "syntax error", 1},
		{"enum", `[{"op":"update","table":"Root","where":[],"row":{"state":"sideways"}}]`, "constraint violation", 1},
		{"int range", `[{"op":"insert","table":"Kid","row":{"n":101}}]`, "constraint violation", 1},
		{"real range", `[{"op":"insert","table":"Kid","row":{"r":1.75}}]`, "constraint violation", 1},
		{"string length", `[{"op":"insert","table":"Kid","row":{"s":"toolong"}}]`, "constraint violation", 1},
		{"immutable", `[{"op":"update","table":"Root","where":[],"row":{"name":"x"}}]`, "constraint violation", 1},
		{"immutable mutate", `[{"op":"mutate","table":"Root","where":[],"mutations":[["name","insert","x"]]}]`, "constraint violation", 1},
		{"dangling strong", `[{"op":"update","table":"Root","where":[],"row":{"kids":["uuid","11111111-1111-1111-1111-111111111111"]}}]`, "referential integrity violation", 2},
		{"undefined named-uuid", `[{"op":"update","table":"Root","where":[],"row":{"kids":["named-uuid","nobody"]}}]`, "referential integrity violation", 2},
		{"duplicate uuid-name", `[{"op":"insert","table":"Other","row":{},"uuid-name":"a"},{"op":"insert","table":"Other","row":{},"uuid-name":"a"}]`, "duplicate uuid-name", 2},
		{"abort", `[{"op":"insert","table":"Other","row":{}},{"op":"abort"},{"op":"comment","comment":"c"}]`, "aborted", 3},
		{"wait timeout", `[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[],"timeout":0}]`, "timed out", 1},
		{"maxRows", `[{"op":"insert","table":"Root","row":{"name":"r2","need":["uuid","` + uuidOf(t, db, "Other") + `"]}},{"op":"insert","table":"Root","row":{"name":"r3","need":["uuid","` + uuidOf(t, db, "Other") + `"]}}]`, "constraint violation", 3},
		{"index", `[{"op":"insert","table":"Kid","row":{"name":"k"},"uuid-name":"a"},{"op":"insert","table":"Kid","row":{"name":"k"},"uuid-name":"b"},
			{"op":"mutate","table":"Root","where":[],"mutations":[["kids","insert",["set",[["named-uuid","a"],["named-uuid","b"]]]]]}]`, "constraint violation", 4},
		{"divide by zero", `[{"op":"mutate","table":"Root","where":[],"mutations":[["cfg","/=",0]]}]`, "domain error", 1},
		{"overflow", `[{"op":"update","table":"Root","where":[],"row":{"cfg":9223372036854775807}},{"op":"mutate","table":"Root","where":[],"mutations":[["cfg","+=",1]]}]`, "range error", 2},
		{"assert without lock", `[{"op":"assert","lock":"l"}]`, "not owner", 1},
		{"min after weak removal", `[{"op":"delete","table":"Other","where":[]}]`, "constraint violation", 2},
		{"bad where column", `[{"op":"select","table":"Kid","where":[["nope","==",1]]}]`, "unknown column", 1},
		{"bad row column", `[{"op":"insert","table":"Kid","row":{"nope":1}}]`, "unknown column", 1},
		{"bad columns", `[{"op":"select","table":"Kid","where":[],"columns":["nope"]}]`, "syntax error", 1},
		{"relational on string", `[{"op":"select","table":"Kid","where":[["name","<","a"]]}]`, "syntax error", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := tx(t, db, c.ops)
			if got := errTag(res); got != c.tag {
				t.Fatalf("error tag %q, want %q; results %v", got, c.tag, res)
			}
			if len(res) != c.n {
				t.Fatalf("%d results, want %d: %v", len(res), c.n, res)
			}
			// After the failing op, only nulls.
			seen := false
			for _, r := range res {
				if seen && r != nil && !strings.Contains(jsonText(r), "error") {
					t.Fatalf("non-null result after the error: %v", res)
				}
				if m, ok := r.(map[string]any); ok && m["error"] != nil {
					seen = true
				}
			}
		})
	}
	// Nothing above committed.
	db.Read(func(rt *ReadTx) {
		if n := len(rt.Rows("Root")); n != 1 {
			t.Errorf("Root has %d rows, want 1", n)
		}
		if n := len(rt.Rows("Kid")); n != 0 {
			t.Errorf("Kid has %d rows, want 0", n)
		}
		if n := len(rt.Rows("Other")); n != 1 {
			t.Errorf("Other has %d rows, want 1", n)
		}
	})
}

func uuidOf(t testing.TB, db *Database, table string) string {
	var s string
	db.Read(func(rt *ReadTx) {
		for id := range rt.Rows(table) {
			s = id.String()
		}
	})
	return s
}

func TestGarbageCollection(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"],"kids":["named-uuid","k"]}},
		{"op":"insert","table":"Kid","row":{"name":"k1","toys":["named-uuid","t"]},"uuid-name":"k"},
		{"op":"insert","table":"Toy","row":{"name":"t1"},"uuid-name":"t"},
		{"op":"insert","table":"Kid","row":{"name":"orphan"}},
		{"op":"insert","table":"Toy","row":{"name":"orphan toy"}}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	count := func() (kids, toys int) {
		db.Read(func(rt *ReadTx) { kids, toys = len(rt.Rows("Kid")), len(rt.Rows("Toy")) })
		return
	}
	if k, ty := count(); k != 1 || ty != 1 {
		t.Fatalf("after insert: %d kids %d toys, want 1 1 (orphans collected)", k, ty)
	}
	// Removing the reference collects the Kid and, transitively, its Toy.
	res = tx(t, db, `[{"op":"update","table":"Root","where":[],"row":{"kids":["set",[]]}}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	if k, ty := count(); k != 0 || ty != 0 {
		t.Fatalf("after unlinking: %d kids %d toys, want 0 0", k, ty)
	}
	// Deleting a referenced row directly is an integrity violation.
	res = tx(t, db, `[{"op":"insert","table":"Kid","row":{"name":"k2"},"uuid-name":"k"},
		{"op":"mutate","table":"Root","where":[],"mutations":[["kids","insert",["set",[["named-uuid","k"]]]]]}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	// Modifying a referenced non-root row is fine.
	if res := tx(t, db, `[{"op":"update","table":"Kid","where":[],"row":{"n":5}}]`); errTag(res) != "" {
		t.Fatalf("update of referenced row: %v", res)
	}
	res = tx(t, db, `[{"op":"delete","table":"Kid","where":[]}]`)
	if errTag(res) != "referential integrity violation" || len(res) != 2 {
		t.Fatalf("delete of referenced row: %v", res)
	}
}

func TestWeakReferences(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"a"},"uuid-name":"a"},
		{"op":"insert","table":"Other","row":{"name":"b"},"uuid-name":"b"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","a"],
		  "fav":["set",[["named-uuid","a"],["named-uuid","b"],["uuid","22222222-2222-2222-2222-222222222222"]]]}}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	favs := func() int {
		var n int
		db.Read(func(rt *ReadTx) {
			for _, r := range rt.Rows("Root") {
				n = len(r["fav"].(Set))
			}
		})
		return n
	}
	if n := favs(); n != 2 {
		t.Fatalf("dangling weak ref kept: %d favs, want 2", n)
	}
	if res := tx(t, db, `[{"op":"delete","table":"Other","where":[["name","==","b"]]}]`); errTag(res) != "" {
		t.Fatal(res)
	}
	if n := favs(); n != 1 {
		t.Fatalf("weak ref to deleted row kept: %d favs, want 1", n)
	}
}

func TestMutateMaps(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"],"tags":["map",[["a","1"],["b","2"]]]}}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	steps := []struct{ muts, want string }{
		{`[["tags","insert",["map",[["a","9"],["c","3"]]]]]`, `["map",[["a","1"],["b","2"],["c","3"]]]`},   // insert never overwrites
		{`[["tags","delete",["map",[["a","9"],["b","2"]]]]]`, `["map",[["a","1"],["c","3"]]]`},             // delete needs the exact value
		{`[["tags","delete",["set",["a"]]]]`, `["map",[["c","3"]]]`},                                       // delete by key
		{`[["tags","delete",["set",["c"]]],["tags","insert",["map",[["c","4"]]]]]`, `["map",[["c","4"]]]`}, // vsctl set
		{`[["cfg","+=",5],["cfg","*=",3],["cfg","-=",1],["cfg","%=",4]]`, `["map",[["c","4"]]]`},
	}
	for _, s := range steps {
		res := tx(t, db, `[{"op":"mutate","table":"Root","where":[],"mutations":`+s.muts+`}]`)
		if errTag(res) != "" {
			t.Fatalf("%s: %v", s.muts, res)
		}
		var got any
		db.Read(func(rt *ReadTx) {
			for _, r := range rt.Rows("Root") {
				got = datumJSON(r["tags"])
			}
		})
		if jsonText(got) != jsonText(mustJSON(t, s.want)) {
			t.Fatalf("after %s: tags %s, want %s", s.muts, jsonText(got), s.want)
		}
	}
	res = tx(t, db, `[{"op":"select","table":"Root","where":[["cfg","==",2]],"columns":["cfg"]}]`)
	if jsonText(res) != `[{"rows":[{"cfg":2}]}]` {
		t.Fatalf("arithmetic: %v", res)
	}
}

func TestSelectConditions(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"],"kids":["set",[["named-uuid","a"],["named-uuid","b"]]]}},
		{"op":"insert","table":"Kid","row":{"name":"a","n":1,"ns":["set",[1,2,3]]},"uuid-name":"a"},
		{"op":"insert","table":"Kid","row":{"name":"b","n":7,"ns":["set",[3,4]]},"uuid-name":"b"}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	for where, want := range map[string]string{
		`[["n","<",5]]`:                     "a",
		`[["n",">=",1],["n","<=",7]]`:       "a,b",
		`[["ns","includes",["set",[3]]]]`:   "a,b",
		`[["ns","includes",["set",[1,3]]]]`: "a",
		`[["ns","excludes",["set",[1]]]]`:   "b",
		`[["ns","==",["set",[3,4]]]]`:       "b",
		`[["name","!=","a"]]`:               "b",
		`[["n","==",2]]`:                    "",
	} {
		res := tx(t, db, `[{"op":"select","table":"Kid","where":`+where+`,"columns":["name"]}]`)
		var names []string
		for _, r := range res[0].(map[string]any)["rows"].([]any) {
			names = append(names, r.(map[string]any)["name"].(string))
		}
		sortStrings(names)
		if got := strings.Join(names, ","); got != want {
			t.Errorf("where %s: got %q want %q", where, got, want)
		}
	}
}

func TestInsertWithUUIDAndForwardRef(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	const u = "01234567-89ab-cdef-0123-456789abcdef"
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{},"uuid-name":"o","uuid":"`+u+`"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","p"],"fav":["named-uuid","o"]}},
		{"op":"insert","table":"Other","row":{},"uuid-name":"p"}]`)
	if errTag(res) != "" {
		t.Fatal(res)
	}
	if got := jsonText(res[0]); got != `{"uuid":["uuid","`+u+`"]}` {
		t.Fatalf("insert with uuid: %s", got)
	}
	res = tx(t, db, `[{"op":"insert","table":"Other","row":{},"uuid":"`+u+`"}]`)
	if errTag(res) != "duplicate uuid" {
		t.Fatalf("duplicate uuid: %v", res)
	}
}

func TestWaitBlocksUntilSatisfied(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	done := make(chan []any)
	go func() {
		done <- tx(t, db, `[{"op":"wait","table":"Other","where":[],"columns":["name"],"until":"==","rows":[{"name":"x"}],"timeout":5000}]`)
	}()
	select {
	case r := <-done:
		t.Fatalf("wait returned early: %v", r)
	default:
	}
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"x"}}]`)
	if r := <-done; errTag(r) != "" {
		t.Fatalf("wait: %v", r)
	}
	r := tx(t, db, `[{"op":"wait","table":"Other","where":[],"columns":["name"],"until":"!=","rows":[{"name":"x"}],"timeout":50}]`)
	if errTag(r) != "timed out" {
		t.Fatalf("wait: %v", r)
	}
}

func TestWatchAndRead(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	got := make(chan *Update, 10)
	cancel := db.Watch(func(u *Update) { got <- u })
	defer cancel()
	res := tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"w"}}]`)
	u := <-got
	var id UUID
	for k, rc := range u.Tables["Other"] {
		id = k
		if rc.Old != nil || rc.New["name"] != "w" {
			t.Fatalf("watch insert: %+v", rc)
		}
	}
	if jsonText(res[0]) != `{"uuid":["uuid","`+id.String()+`"]}` {
		t.Fatalf("uuid mismatch %v vs %s", res, id)
	}
	tx(t, db, `[{"op":"delete","table":"Other","where":[]}]`)
	u = <-got
	if rc := u.Tables["Other"][id]; rc.New != nil || rc.Old["name"] != "w" {
		t.Fatalf("watch delete: %+v", rc)
	}
	db.Read(func(rt *ReadTx) {
		if _, ok := rt.Get("Other", id); ok {
			t.Fatal("deleted row still readable")
		}
	})
	var raw json.RawMessage
	if _, err := db.Transact(json.RawMessage(`{}`)); err == nil {
		t.Fatal("Transact accepted a non-array")
	}
	_ = raw
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
