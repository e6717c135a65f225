package ovsdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"unicode/utf8"
)

// AtomicType is one of the five RFC 7047 atomic types.
type AtomicType int

// The atomic types.
const (
	TypeInteger AtomicType = iota
	TypeReal
	TypeBoolean
	TypeString
	TypeUUID
)

var atomicNames = [...]string{"integer", "real", "boolean", "string", "uuid"}

func (t AtomicType) String() string { return atomicNames[t] }

// Unlimited is ColumnType.Max for "max": "unlimited".
const Unlimited = math.MaxInt

// BaseType is the type of a key or value atom, with its constraints.
type BaseType struct {
	Type       AtomicType
	Enum       Set // nil when unconstrained
	MinInteger int64
	MaxInteger int64
	MinReal    float64
	MaxReal    float64
	MinLength  int
	MaxLength  int
	RefTable   string
	RefWeak    bool // refType "weak"
}

// ColumnType is a column's type: a key type, an optional value type (maps)
// and the allowed number of elements.
type ColumnType struct {
	Key   BaseType
	Value *BaseType
	Min   int
	Max   int
}

// IsScalar reports whether values are bare atoms (exactly one, no map).
func (t *ColumnType) IsScalar() bool { return t.Min == 1 && t.Max == 1 && t.Value == nil }

// IsMap reports whether values are Maps.
func (t *ColumnType) IsMap() bool { return t.Value != nil }

// Column describes one column.
type Column struct {
	Name      string
	Type      ColumnType
	Ephemeral bool
	Mutable   bool
}

// Table describes one table.
type Table struct {
	Name    string
	Columns map[string]*Column
	// ColumnNames lists the columns in sorted order.
	ColumnNames []string
	MaxRows     int // 0 = unlimited
	IsRoot      bool
	Indexes     [][]string
	hasRefs     bool
}

// Schema is a parsed database schema.
type Schema struct {
	Name    string
	Version string
	Cksum   string
	Tables  map[string]*Table
	// TableNames lists the tables in sorted order.
	TableNames []string
	text       []byte // compact JSON as given
}

// JSON returns the schema as compact JSON text.
func (s *Schema) JSON() []byte { return s.text }

var (
	idRE      = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	versionRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
)

func schemaErr(format string, args ...any) error {
	return &Error{Tag: tagSyntax, Details: fmt.Sprintf(format, args...)}
}

// ParseSchema parses and validates an RFC 7047 database schema.
func ParseSchema(data []byte) (*Schema, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("ovsdb: parsing schema JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("ovsdb: parsing schema JSON: %w", err)
	}
	s, err := schemaFromJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("ovsdb: invalid schema: %w", err)
	}
	s.text = buf.Bytes()
	return s, nil
}

func checkMembers(what string, obj map[string]any, allowed ...string) error {
	for k := range obj {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return schemaErr("%s has unknown member %q", what, k)
		}
	}
	return nil
}

func schemaFromJSON(raw map[string]any) (*Schema, error) {
	if err := checkMembers("schema", raw, "name", "version", "cksum", "tables"); err != nil {
		return nil, err
	}
	s := &Schema{Tables: map[string]*Table{}}
	name, ok := raw["name"].(string)
	if !ok || !idRE.MatchString(name) {
		return nil, schemaErr("schema name must be an identifier")
	}
	s.Name = name
	if v, ok := raw["version"]; ok {
		vs, ok := v.(string)
		if !ok || !versionRE.MatchString(vs) {
			return nil, schemaErr("schema version %v must be x.y.z", v)
		}
		s.Version = vs
	}
	if v, ok := raw["cksum"]; ok {
		cs, ok := v.(string)
		if !ok {
			return nil, schemaErr("schema cksum must be a string")
		}
		s.Cksum = cs
	}
	tables, ok := raw["tables"].(map[string]any)
	if !ok {
		return nil, schemaErr("schema must have a tables object")
	}
	for tname, tv := range tables {
		if !idRE.MatchString(tname) || tname[0] == '_' {
			return nil, schemaErr("invalid table name %q", tname)
		}
		tobj, ok := tv.(map[string]any)
		if !ok {
			return nil, schemaErr("table %s must be an object", tname)
		}
		t, err := tableFromJSON(tname, tobj)
		if err != nil {
			return nil, err
		}
		s.Tables[tname] = t
		s.TableNames = append(s.TableNames, tname)
	}
	sort.Strings(s.TableNames)
	// RFC 7047: when no table is marked isRoot, every table is a root.
	anyRoot := false
	for _, t := range s.Tables {
		anyRoot = anyRoot || t.IsRoot
	}
	if !anyRoot {
		for _, t := range s.Tables {
			t.IsRoot = true
		}
	}
	// Cross-table checks: refTable names.
	for _, t := range s.Tables {
		for _, c := range t.Columns {
			for _, bt := range []*BaseType{&c.Type.Key, c.Type.Value} {
				if bt == nil || bt.RefTable == "" {
					continue
				}
				if _, ok := s.Tables[bt.RefTable]; !ok {
					return nil, schemaErr("column %s.%s refers to undefined table %s", t.Name, c.Name, bt.RefTable)
				}
				t.hasRefs = true
			}
		}
	}
	return s, nil
}

func tableFromJSON(name string, obj map[string]any) (*Table, error) {
	if err := checkMembers("table "+name, obj, "columns", "maxRows", "isRoot", "indexes"); err != nil {
		return nil, err
	}
	t := &Table{Name: name, Columns: map[string]*Column{}, IsRoot: false}
	cols, ok := obj["columns"].(map[string]any)
	if !ok || len(cols) == 0 {
		return nil, schemaErr("table %s must have at least one column", name)
	}
	for cname, cv := range cols {
		if !idRE.MatchString(cname) || cname[0] == '_' {
			return nil, schemaErr("table %s: invalid column name %q", name, cname)
		}
		cobj, ok := cv.(map[string]any)
		if !ok {
			return nil, schemaErr("column %s.%s must be an object", name, cname)
		}
		c, err := columnFromJSON(name, cname, cobj)
		if err != nil {
			return nil, err
		}
		t.Columns[cname] = c
		t.ColumnNames = append(t.ColumnNames, cname)
	}
	sort.Strings(t.ColumnNames)
	if v, ok := obj["maxRows"]; ok {
		n, err := jsonInt(v)
		if err != nil || n < 1 {
			return nil, schemaErr("table %s: maxRows must be a positive integer", name)
		}
		t.MaxRows = int(n)
	}
	if v, ok := obj["isRoot"]; ok {
		b, ok := v.(bool)
		if !ok {
			return nil, schemaErr("table %s: isRoot must be a boolean", name)
		}
		t.IsRoot = b
	}
	if v, ok := obj["indexes"]; ok {
		arr, ok := v.([]any)
		if !ok {
			return nil, schemaErr("table %s: indexes must be an array", name)
		}
		for _, iv := range arr {
			ia, ok := iv.([]any)
			if !ok || len(ia) == 0 {
				return nil, schemaErr("table %s: each index must be a non-empty array of column names", name)
			}
			var idx []string
			for _, cv := range ia {
				cn, ok := cv.(string)
				if !ok {
					return nil, schemaErr("table %s: index column names must be strings", name)
				}
				c, ok := t.Columns[cn]
				if !ok {
					return nil, schemaErr("table %s: index refers to unknown column %s", name, cn)
				}
				if c.Ephemeral {
					return nil, schemaErr("table %s: ephemeral column %s may not be indexed", name, cn)
				}
				idx = append(idx, cn)
			}
			t.Indexes = append(t.Indexes, idx)
		}
	}
	return t, nil
}

func columnFromJSON(tname, cname string, obj map[string]any) (*Column, error) {
	if err := checkMembers("column "+tname+"."+cname, obj, "type", "ephemeral", "mutable"); err != nil {
		return nil, err
	}
	c := &Column{Name: cname, Mutable: true}
	tv, ok := obj["type"]
	if !ok {
		return nil, schemaErr("column %s.%s has no type", tname, cname)
	}
	ct, err := columnTypeFromJSON(tv)
	if err != nil {
		return nil, schemaErr("column %s.%s: %v", tname, cname, err)
	}
	c.Type = *ct
	for _, f := range []struct {
		key string
		dst *bool
	}{{"ephemeral", &c.Ephemeral}, {"mutable", &c.Mutable}} {
		if v, ok := obj[f.key]; ok {
			b, ok := v.(bool)
			if !ok {
				return nil, schemaErr("column %s.%s: %s must be a boolean", tname, cname, f.key)
			}
			*f.dst = b
		}
	}
	return c, nil
}

func jsonInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("expected integer")
	}
	i, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("expected integer")
	}
	return i, nil
}

func jsonReal(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("expected real")
	}
	f, err := n.Float64()
	if err != nil {
		return 0, fmt.Errorf("expected real")
	}
	return f, nil
}

func columnTypeFromJSON(v any) (*ColumnType, error) {
	ct := &ColumnType{Min: 1, Max: 1}
	if s, ok := v.(string); ok {
		bt, err := baseTypeFromJSON(s)
		if err != nil {
			return nil, err
		}
		ct.Key = *bt
		return ct, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("type must be a string or an object")
	}
	if err := checkMembers("type", obj, "key", "value", "min", "max"); err != nil {
		return nil, err
	}
	kv, ok := obj["key"]
	if !ok {
		return nil, fmt.Errorf("type has no key")
	}
	bt, err := baseTypeFromJSON(kv)
	if err != nil {
		return nil, err
	}
	ct.Key = *bt
	if vv, ok := obj["value"]; ok {
		vt, err := baseTypeFromJSON(vv)
		if err != nil {
			return nil, err
		}
		ct.Value = vt
	}
	if mv, ok := obj["min"]; ok {
		n, err := jsonInt(mv)
		if err != nil || n < 0 || n > 1 {
			return nil, fmt.Errorf("min must be 0 or 1")
		}
		ct.Min = int(n)
	}
	if mv, ok := obj["max"]; ok {
		if s, ok := mv.(string); ok && s == "unlimited" {
			ct.Max = Unlimited
		} else {
			n, err := jsonInt(mv)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("max must be a positive integer or \"unlimited\"")
			}
			ct.Max = int(n)
		}
	}
	if ct.Max < ct.Min {
		return nil, fmt.Errorf("max is less than min")
	}
	return ct, nil
}

func baseTypeFromJSON(v any) (*BaseType, error) {
	bt := &BaseType{MinInteger: math.MinInt64, MaxInteger: math.MaxInt64,
		MinReal: -math.MaxFloat64, MaxReal: math.MaxFloat64, MaxLength: math.MaxInt}
	var obj map[string]any
	switch x := v.(type) {
	case string:
		obj = map[string]any{"type": x}
	case map[string]any:
		obj = x
	default:
		return nil, fmt.Errorf("atomic type must be a string or an object")
	}
	ts, _ := obj["type"].(string)
	found := false
	for i, n := range atomicNames {
		if n == ts {
			bt.Type = AtomicType(i)
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("unknown atomic type %v", obj["type"])
	}
	allowed := []string{"type", "enum"}
	switch bt.Type {
	case TypeInteger:
		allowed = append(allowed, "minInteger", "maxInteger")
	case TypeReal:
		allowed = append(allowed, "minReal", "maxReal")
	case TypeString:
		allowed = append(allowed, "minLength", "maxLength")
	case TypeUUID:
		allowed = append(allowed, "refTable", "refType")
	}
	if err := checkMembers(ts+" type", obj, allowed...); err != nil {
		return nil, err
	}
	var err error
	if x, ok := obj["minInteger"]; ok {
		if bt.MinInteger, err = jsonInt(x); err != nil {
			return nil, fmt.Errorf("minInteger: %w", err)
		}
	}
	if x, ok := obj["maxInteger"]; ok {
		if bt.MaxInteger, err = jsonInt(x); err != nil {
			return nil, fmt.Errorf("maxInteger: %w", err)
		}
	}
	if bt.MinInteger > bt.MaxInteger {
		return nil, fmt.Errorf("minInteger exceeds maxInteger")
	}
	if x, ok := obj["minReal"]; ok {
		if bt.MinReal, err = jsonReal(x); err != nil {
			return nil, fmt.Errorf("minReal: %w", err)
		}
	}
	if x, ok := obj["maxReal"]; ok {
		if bt.MaxReal, err = jsonReal(x); err != nil {
			return nil, fmt.Errorf("maxReal: %w", err)
		}
	}
	if bt.MinReal > bt.MaxReal {
		return nil, fmt.Errorf("minReal exceeds maxReal")
	}
	if x, ok := obj["minLength"]; ok {
		n, err := jsonInt(x)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("minLength must be a non-negative integer")
		}
		bt.MinLength = int(n)
	}
	if x, ok := obj["maxLength"]; ok {
		n, err := jsonInt(x)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("maxLength must be a non-negative integer")
		}
		bt.MaxLength = int(n)
	}
	if bt.MinLength > bt.MaxLength {
		return nil, fmt.Errorf("minLength exceeds maxLength")
	}
	if x, ok := obj["refTable"]; ok {
		s, ok := x.(string)
		if !ok || !idRE.MatchString(s) {
			return nil, fmt.Errorf("refTable must be a table name")
		}
		bt.RefTable = s
	}
	if x, ok := obj["refType"]; ok {
		s, _ := x.(string)
		switch s {
		case "strong":
		case "weak":
			bt.RefWeak = true
		default:
			return nil, fmt.Errorf("refType must be \"strong\" or \"weak\"")
		}
		if bt.RefTable == "" {
			return nil, fmt.Errorf("refType without refTable")
		}
	}
	if x, ok := obj["enum"]; ok {
		plain := *bt
		ct := &ColumnType{Key: plain, Min: 0, Max: Unlimited}
		d, err := parseDatum(ct, x, nil)
		if err != nil {
			return nil, fmt.Errorf("enum: %w", err)
		}
		bt.Enum = d.(Set)
	}
	return bt, nil
}

// symbols resolves named-uuid references inside a transaction.
type symbols interface {
	lookup(name string) (UUID, bool)
}

// parseAtom parses one atom of type bt; constraints are checked too.
func parseAtom(bt *BaseType, v any, sym symbols) (any, error) {
	var a any
	switch bt.Type {
	case TypeInteger:
		n, ok := v.(json.Number)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected integer", Syntax: jsonText(v)}
		}
		i, err := n.Int64()
		if err != nil {
			return nil, &Error{Tag: tagSyntax, Details: "expected integer", Syntax: jsonText(v)}
		}
		a = i
	case TypeReal:
		n, ok := v.(json.Number)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected real", Syntax: jsonText(v)}
		}
		f, err := n.Float64()
		if err != nil {
			return nil, &Error{Tag: tagSyntax, Details: "expected real", Syntax: jsonText(v)}
		}
		a = f
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected boolean", Syntax: jsonText(v)}
		}
		a = b
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected string", Syntax: jsonText(v)}
		}
		a = s
	case TypeUUID:
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 {
			return nil, &Error{Tag: tagSyntax, Details: "expected [\"uuid\", <id>]", Syntax: jsonText(v)}
		}
		kind, _ := arr[0].(string)
		s, ok := arr[1].(string)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected uuid string", Syntax: jsonText(v)}
		}
		switch {
		case kind == "uuid":
			u, err := ParseUUID(s)
			if err != nil {
				return nil, &Error{Tag: tagSyntax, Details: err.Error(), Syntax: jsonText(v)}
			}
			a = u
		case kind == "named-uuid" && sym != nil:
			u, ok := sym.lookup(s)
			if !ok {
				return nil, &Error{Tag: tagSyntax, Details: fmt.Sprintf("unknown uuid-name %q", s), Syntax: jsonText(v)}
			}
			a = u
		default:
			return nil, &Error{Tag: tagSyntax, Details: "expected [\"uuid\", <id>]", Syntax: jsonText(v)}
		}
	}
	if err := checkAtom(bt, a); err != nil {
		return nil, err
	}
	return a, nil
}

// checkAtom checks an atom against the constraints of bt.
func checkAtom(bt *BaseType, a any) error {
	if bt.Enum != nil && !bt.Enum.Contains(a) {
		return errorf(tagConstraint, "%s is not one of the allowed values (%s)", atomText(a), enumText(bt.Enum))
	}
	switch x := a.(type) {
	case int64:
		if x < bt.MinInteger || x > bt.MaxInteger {
			return errorf(tagConstraint, "%d is not in the valid range %d to %d (inclusive)", x, bt.MinInteger, bt.MaxInteger)
		}
	case float64:
		if x < bt.MinReal || x > bt.MaxReal {
			return errorf(tagConstraint, "%g is not in the valid range %g to %g (inclusive)", x, bt.MinReal, bt.MaxReal)
		}
	case string:
		if bt.MinLength > 0 || bt.MaxLength < math.MaxInt {
			n := utf8.RuneCountInString(x)
			if n < bt.MinLength || n > bt.MaxLength {
				return errorf(tagConstraint, "\"%s\" length %d is not in the valid range %d to %d (inclusive)", x, n, bt.MinLength, bt.MaxLength)
			}
		}
		if !utf8.ValidString(x) {
			return errorf(tagConstraint, "string is not valid UTF-8")
		}
	}
	return nil
}

func atomText(a any) string {
	switch x := a.(type) {
	case string:
		return x
	case UUID:
		return x.String()
	}
	return fmt.Sprint(a)
}

func enumText(s Set) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, a := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(atomText(a))
	}
	b.WriteByte(']')
	return b.String()
}

func jsonText(v any) string {
	b, err := marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// marshal encodes v as compact JSON without HTML escaping (ovsdb-server
// sends "<" as is).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil // drop Encode's newline
}

// parseDatum parses a column value of type ct from its JSON form.
func parseDatum(ct *ColumnType, v any, sym symbols) (any, error) {
	if ct.IsMap() {
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 || arr[0] != "map" {
			return nil, &Error{Tag: tagSyntax, Details: "expected [\"map\", [...]]", Syntax: jsonText(v)}
		}
		pairs, ok := arr[1].([]any)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected [\"map\", [...]]", Syntax: jsonText(v)}
		}
		m := make(Map, len(pairs))
		for _, pv := range pairs {
			p, ok := pv.([]any)
			if !ok || len(p) != 2 {
				return nil, &Error{Tag: tagSyntax, Details: "map pair must be [key, value]", Syntax: jsonText(pv)}
			}
			k, err := parseAtom(&ct.Key, p[0], sym)
			if err != nil {
				return nil, err
			}
			val, err := parseAtom(ct.Value, p[1], sym)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k]; dup {
				return nil, &Error{Tag: tagSyntax, Details: "map contains duplicate key", Syntax: jsonText(v)}
			}
			m[k] = val
		}
		if len(m) < ct.Min || len(m) > ct.Max {
			return nil, errorf(tagConstraint, "map must have %d to %s members but %d are present", ct.Min, maxText(ct.Max), len(m))
		}
		return m, nil
	}
	var elems []any
	if arr, ok := v.([]any); ok && len(arr) == 2 && arr[0] == "set" {
		inner, ok := arr[1].([]any)
		if !ok {
			return nil, &Error{Tag: tagSyntax, Details: "expected [\"set\", [...]]", Syntax: jsonText(v)}
		}
		elems = make([]any, 0, len(inner))
		for _, ev := range inner {
			a, err := parseAtom(&ct.Key, ev, sym)
			if err != nil {
				return nil, err
			}
			elems = append(elems, a)
		}
	} else {
		a, err := parseAtom(&ct.Key, v, sym)
		if err != nil {
			return nil, err
		}
		if ct.IsScalar() {
			return a, nil
		}
		elems = []any{a}
	}
	s, dup := newSet(elems)
	if dup {
		return nil, &Error{Tag: tagSyntax, Details: "set contains duplicate value", Syntax: jsonText(v)}
	}
	if len(s) < ct.Min || len(s) > ct.Max {
		return nil, errorf(tagConstraint, "set must have %d to %s members but %d are present", ct.Min, maxText(ct.Max), len(s))
	}
	if ct.IsScalar() {
		return s[0], nil
	}
	return s, nil
}

func maxText(n int) string {
	if n == Unlimited {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// atomJSON returns the JSON form of an atom.
func atomJSON(a any) any {
	if u, ok := a.(UUID); ok {
		return []any{"uuid", u.String()}
	}
	return a
}

// datumJSON returns the JSON form of a column value.
func datumJSON(v any) any {
	switch x := v.(type) {
	case Set:
		if len(x) == 1 {
			return atomJSON(x[0])
		}
		out := make([]any, len(x))
		for i, a := range x {
			out[i] = atomJSON(a)
		}
		return []any{"set", out}
	case Map:
		out := make([]any, 0, len(x))
		for _, k := range x.sortedKeys() {
			out = append(out, []any{atomJSON(k), atomJSON(x[k])})
		}
		return []any{"map", out}
	}
	return atomJSON(v)
}

// defaultAtom returns the default atom of type t.
func defaultAtom(t AtomicType) any {
	switch t {
	case TypeInteger:
		return int64(0)
	case TypeReal:
		return float64(0)
	case TypeBoolean:
		return false
	case TypeString:
		return ""
	}
	return ZeroUUID
}

// defaultValue returns the default value of a column of type ct.
func defaultValue(ct *ColumnType) any {
	switch {
	case ct.IsMap():
		return Map{}
	case ct.IsScalar():
		return defaultAtom(ct.Key.Type)
	}
	if ct.Min == 1 {
		return Set{defaultAtom(ct.Key.Type)}
	}
	return Set{}
}

// isDefault reports whether v is the default value for ct.
func isDefault(ct *ColumnType, v any) bool {
	switch x := v.(type) {
	case Map:
		return len(x) == 0
	case Set:
		if ct.Min == 0 {
			return len(x) == 0
		}
	}
	return valueEqual(v, defaultValue(ct))
}

// checkDatum checks element count and atom constraints of a value.
func checkDatum(ct *ColumnType, v any) error {
	switch x := v.(type) {
	case Set:
		if len(x) < ct.Min || len(x) > ct.Max {
			return errorf(tagConstraint, "set must have %d to %s members but %d are present", ct.Min, maxText(ct.Max), len(x))
		}
		for _, a := range x {
			if err := checkAtom(&ct.Key, a); err != nil {
				return err
			}
		}
	case Map:
		if len(x) < ct.Min || len(x) > ct.Max {
			return errorf(tagConstraint, "map must have %d to %s members but %d are present", ct.Min, maxText(ct.Max), len(x))
		}
		for k, val := range x {
			if err := checkAtom(&ct.Key, k); err != nil {
				return err
			}
			if err := checkAtom(ct.Value, val); err != nil {
				return err
			}
		}
	default:
		return checkAtom(&ct.Key, v)
	}
	return nil
}
