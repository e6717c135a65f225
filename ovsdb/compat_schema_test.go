package ovsdb_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// refSchemaPath is where Debian's openvswitch-common installs the schema
// that OVS 3.1 itself uses.
const refSchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// ourSchemaPath is the schema xvs embeds, relative to this package.
const ourSchemaPath = "vswitch.ovsschema"

// rawSchema is just enough of RFC 7047 §3.2 to compare two schemas
// without trusting any parser of ours.
type rawSchema struct {
	Name    string              `json:"name"`
	Version string              `json:"version"`
	Cksum   string              `json:"cksum"`
	Tables  map[string]rawTable `json:"tables"`
}

type rawTable struct {
	Columns map[string]rawColumn `json:"columns"`
	MaxRows *int                 `json:"maxRows"`
	IsRoot  bool                 `json:"isRoot"`
	Indexes [][]string           `json:"indexes"`
}

type rawColumn struct {
	Type      json.RawMessage `json:"type"`
	Ephemeral bool            `json:"ephemeral"`
	Mutable   *bool           `json:"mutable"`
}

func loadRawSchema(t *testing.T, path string) rawSchema {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	var s rawSchema
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// canonType rewrites a column type into one spelling: key and value
// always objects, min/max always present, refType explicit when refTable
// is set, enums always a sorted list. Two columns are equivalent when
// their canonical forms are equal.
func canonType(raw json.RawMessage) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var obj map[string]any
	switch x := v.(type) {
	case string:
		obj = map[string]any{"key": x}
	case map[string]any:
		obj = x
	default:
		return nil, fmt.Errorf("type is %T", v)
	}
	out := map[string]any{"min": float64(1), "max": float64(1)}
	for k, val := range obj {
		out[k] = val
	}
	for _, k := range []string{"key", "value"} {
		b, ok := out[k]
		if !ok {
			continue
		}
		base, err := canonBase(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = base
	}
	return out, nil
}

func canonBase(v any) (map[string]any, error) {
	switch x := v.(type) {
	case string:
		return map[string]any{"type": x}, nil
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			out[k] = val
		}
		if _, ok := out["refTable"]; ok {
			if _, ok := out["refType"]; !ok {
				out["refType"] = "strong"
			}
		}
		if e, ok := out["enum"]; ok {
			out["enum"] = canonEnum(e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("base type is %T", v)
}

// canonEnum turns either a single atom or ["set", [atoms...]] into a
// sorted list of atoms printed with %v.
func canonEnum(e any) []string {
	var atoms []any
	if arr, ok := e.([]any); ok && len(arr) == 2 && arr[0] == "set" {
		atoms, _ = arr[1].([]any)
	} else {
		atoms = []any{e}
	}
	out := make([]string, 0, len(atoms))
	for _, a := range atoms {
		out = append(out, fmt.Sprint(a))
	}
	sort.Strings(out)
	return out
}

func TestCompatSchemaMatchesOVS(t *testing.T) {
	if _, err := os.Stat(refSchemaPath); err != nil {
		requireTool(t, refSchemaPath)
	}
	ref := loadRawSchema(t, refSchemaPath)
	ours := loadRawSchema(t, ourSchemaPath)

	if ours.Name != ref.Name {
		t.Errorf("name = %q, want %q", ours.Name, ref.Name)
	}
	if ours.Version != ref.Version {
		t.Errorf("version = %q, want %q", ours.Version, ref.Version)
	}
	for _, d := range diffSchemas(ours, ref) {
		t.Error(d)
	}
}

// diffSchemas lists how ours differs from ref in tables, columns,
// column types and table and column flags.
func diffSchemas(ours, ref rawSchema) []string {
	var diffs []string
	errf := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	for name := range ours.Tables {
		if _, ok := ref.Tables[name]; !ok {
			errf("table %s is not in the OVS schema", name)
		}
	}
	for name, rt := range ref.Tables {
		ot, ok := ours.Tables[name]
		if !ok {
			errf("table %s missing", name)
			continue
		}
		if ot.IsRoot != rt.IsRoot {
			errf("%s: isRoot = %v, want %v", name, ot.IsRoot, rt.IsRoot)
		}
		if !reflect.DeepEqual(ot.MaxRows, rt.MaxRows) {
			errf("%s: maxRows differs", name)
		}
		if !reflect.DeepEqual(ot.Indexes, rt.Indexes) {
			errf("%s: indexes = %v, want %v", name, ot.Indexes, rt.Indexes)
		}
		for col := range ot.Columns {
			if _, ok := rt.Columns[col]; !ok {
				errf("%s.%s is not in the OVS schema", name, col)
			}
		}
		for col, rc := range rt.Columns {
			oc, ok := ot.Columns[col]
			if !ok {
				errf("%s.%s missing", name, col)
				continue
			}
			if oc.Ephemeral != rc.Ephemeral {
				errf("%s.%s: ephemeral = %v, want %v", name, col, oc.Ephemeral, rc.Ephemeral)
			}
			if !reflect.DeepEqual(oc.Mutable, rc.Mutable) {
				errf("%s.%s: mutable differs", name, col)
			}
			rtype, err := canonType(rc.Type)
			if err != nil {
				errf("reference %s.%s: %v", name, col, err)
			}
			otype, err := canonType(oc.Type)
			if err != nil {
				errf("%s.%s: %v", name, col, err)
				continue
			}
			if !reflect.DeepEqual(otype, rtype) {
				errf("%s.%s: type %v, want %v", name, col, otype, rtype)
			}
		}
	}
	return diffs
}

// TestCompatSchemaCksum checks the cksum field the way OVS's build does:
// POSIX cksum(1) of the file without its cksum line.
func TestCompatSchemaCksum(t *testing.T) {
	data, err := os.ReadFile(ourSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	var field string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.Contains(line, `"cksum":`) {
			field = line
			continue
		}
		kept = append(kept, line)
	}
	if field == "" {
		t.Fatal("no cksum line")
	}
	body := []byte(strings.Join(kept, ""))
	want := fmt.Sprintf("%d %d", posixCksum(body), len(body))
	s := loadRawSchema(t, ourSchemaPath)
	if s.Cksum != want {
		t.Errorf("cksum = %q, content has %q", s.Cksum, want)
	}
}

// posixCksum is the CRC of cksum(1): CRC-32 with polynomial 0x04C11DB7,
// MSB first, the length appended little-endian in as few bytes as
// needed, and the result inverted.
func posixCksum(data []byte) uint32 {
	var crc uint32
	feed := func(b byte) {
		crc ^= uint32(b) << 24
		for i := 0; i < 8; i++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	for _, b := range data {
		feed(b)
	}
	for n := len(data); n > 0; n >>= 8 {
		feed(byte(n))
	}
	return ^crc
}

func TestCompatSchemaOvsdbToolCreate(t *testing.T) {
	tool := requireTool(t, "ovsdb-tool")
	dir := t.TempDir()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command(tool, "create", db, ourSchemaPath).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"db-name", "Open_vSwitch"},
		{"db-version", loadRawSchema(t, refSchemaPath).Version},
		{"db-cksum", loadRawSchema(t, ourSchemaPath).Cksum},
	} {
		out, err := exec.Command(tool, tc.cmd, db).CombinedOutput()
		if err != nil {
			t.Fatalf("ovsdb-tool %s: %v\n%s", tc.cmd, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("ovsdb-tool %s = %q, want %q", tc.cmd, got, tc.want)
		}
	}
}

// TestCompatSchemaDiffDetects shows the comparison above is not vacuous:
// three deliberate changes to a copy of our schema give three findings,
// and spelling changes that do not alter meaning give none.
func TestCompatSchemaDiffDetects(t *testing.T) {
	ours := loadRawSchema(t, ourSchemaPath)
	if d := diffSchemas(ours, ours); len(d) != 0 {
		t.Fatalf("schema differs from itself: %v", d)
	}
	mutated := loadRawSchema(t, ourSchemaPath)
	port := mutated.Tables["Port"]
	port.Columns["tag"] = rawColumn{Type: json.RawMessage(`{"key":{"type":"integer","minInteger":0,"maxInteger":4094},"min":0,"max":1}`)}
	delete(port.Columns, "trunks")
	port.IsRoot = true
	mutated.Tables["Port"] = port
	// Same meaning, other spelling: explicit min/max 1 and refType strong.
	iface := mutated.Tables["Interface"]
	iface.Columns["name"] = rawColumn{Type: json.RawMessage(`{"key":{"type":"string"},"min":1,"max":1}`), Mutable: iface.Columns["name"].Mutable}
	mutated.Tables["Interface"] = iface
	br := mutated.Tables["Bridge"]
	br.Columns["ports"] = rawColumn{Type: json.RawMessage(`{"key":{"type":"uuid","refTable":"Port","refType":"strong"},"min":0,"max":"unlimited"}`)}
	mutated.Tables["Bridge"] = br

	d := diffSchemas(mutated, ours)
	if len(d) != 3 {
		t.Errorf("got %d findings, want 3 (tag type, trunks missing, isRoot):\n%s", len(d), strings.Join(d, "\n"))
	}
}
