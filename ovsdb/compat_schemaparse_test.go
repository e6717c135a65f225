package ovsdb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// schemaCases are schemas that ovsdb-tool 3.1 accepts or rejects; our
// parser must agree on each.
var schemaCases = []struct {
	name  string
	json  string
	valid bool
}{
	{"map with limits, root, maxRows", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":"string","value":"integer","min":0,"max":"unlimited"}}},"isRoot":true,"maxRows":2}}}`, true},
	{"weak self reference", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"uuid","refTable":"T","refType":"weak"}}}}}}}`, true},
	{"ephemeral immutable", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":"string"},"ephemeral":true,"mutable":false}}}}}`, true},
	{"refTable missing", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"uuid","refTable":"Nope"}}}}}}}`, false},
	{"unknown atomic type", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":"strung"}}}}}`, false},
	{"reserved column name", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"_uuid":{"type":"string"}}}}}`, false},
	{"version not x.y.z", `{"name":"x","version":"1.0","tables":{"T":{"columns":{"c":{"type":"string"}}}}}`, false},
	{"min above max", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":"string","min":2,"max":1}}}}}}`, false},
	{"index on unknown column", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":"string"}},"indexes":[["d"]]}}}`, false},
	{"enum of wrong type", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"integer","enum":["set",["a"]]}}}}}}}`, false},
	{"minInteger above maxInteger", `{"name":"x","version":"1.0.0","tables":{"T":{"columns":{"c":{"type":{"key":{"type":"integer","minInteger":5,"maxInteger":1}}}}}}}`, false},
	{"no name", `{"version":"1.0.0","tables":{}}`, false},
}

func TestCompatSchemaParse(t *testing.T) {
	ovsSchema, err := os.ReadFile(refSchemaPath)
	if err != nil {
		requireTool(t, refSchemaPath)
	}
	ours, err := os.ReadFile(ourSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ovsdb-server", func(t *testing.T) {
		tool := requireTool(t, "ovsdb-tool")
		dir := t.TempDir()
		for i, c := range schemaCases {
			file := filepath.Join(dir, "s.json")
			os.WriteFile(file, []byte(c.json), 0o644)
			db := filepath.Join(dir, "db"+string(rune('a'+i)))
			out, err := exec.Command(tool, "create", db, file).CombinedOutput()
			if (err == nil) != c.valid {
				t.Errorf("%s: ovsdb-tool create: %v (%s), want valid=%v", c.name, err, out, c.valid)
			}
		}
	})
	t.Run("xvs", func(t *testing.T) {
		for _, s := range [][]byte{ours, ovsSchema} {
			if err := xvsParseSchema(t, s); err != nil {
				t.Errorf("ParseSchema of an OVS schema: %v", err)
			}
		}
		for _, c := range schemaCases {
			err := xvsParseSchema(t, []byte(c.json))
			if (err == nil) != c.valid {
				t.Errorf("%s: ParseSchema: %v, want valid=%v", c.name, err, c.valid)
			}
		}
		if err := xvsBuiltinSchemaIsOurs(t); err != nil {
			t.Error(err)
		}
	})
}
