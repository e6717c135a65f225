package ovsdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// rowData is a committed row. cols is immutable once committed; refs (the
// number of strong references to the row from committed rows) changes only
// under Database.mu held for writing.
type rowData struct {
	cols    Row
	version UUID
	refs    int
}

// tableData is a committed table.
type tableData struct {
	t    *Table
	rows map[UUID]*rowData
	idx  []map[string]UUID // one per t.Indexes: key -> row
}

// change is one row touched by a transaction.
type change struct {
	td   *tableData
	uuid UUID
	old  *rowData // committed row; nil when inserted by this transaction
	new  Row      // nil when deleted
	// cols lists the changed columns of a modified row (after finish).
	cols []string
}

// lockOwner answers "assert" operations.
type lockOwner interface {
	ownsLock(name string) bool
}

// txn is a transaction in progress. It runs with Database.txMu held, so the
// committed state it reads cannot change under it.
type txn struct {
	db       *Database
	owner    lockOwner
	changes  map[*tableData]map[UUID]*change
	order    []*change
	syms     map[string]UUID
	created  map[string]bool
	comments []string
	delta    map[UUID]int
	noRetry  bool // a wait that is not satisfied fails now
	deltaTbl map[UUID]*tableData
}

var errWaitRetry = errors.New("wait not satisfied yet")

type waitRetry struct{ deadline time.Time }

func (w *waitRetry) Error() string { return errWaitRetry.Error() }

func (tx *txn) lookup(name string) (UUID, bool) {
	if u, ok := tx.syms[name]; ok {
		return u, true
	}
	// A forward reference: the insert naming it may come later.
	u := NewUUID()
	tx.syms[name] = u
	return u, true
}

func (tx *txn) get(td *tableData, id UUID) Row {
	if m := tx.changes[td]; m != nil {
		if ch := m[id]; ch != nil {
			return ch.new
		}
	}
	if r := td.rows[id]; r != nil {
		return r.cols
	}
	return nil
}

func (tx *txn) addChange(ch *change) {
	m := tx.changes[ch.td]
	if m == nil {
		m = map[UUID]*change{}
		tx.changes[ch.td] = m
	}
	m[ch.uuid] = ch
	tx.order = append(tx.order, ch)
}

// writable returns a private copy of the row for modification.
func (tx *txn) writable(td *tableData, id UUID) Row {
	if m := tx.changes[td]; m != nil {
		if ch := m[id]; ch != nil {
			return ch.new
		}
	}
	old := td.rows[id]
	if old == nil {
		return nil
	}
	nr := make(Row, len(old.cols))
	for k, v := range old.cols {
		nr[k] = v
	}
	tx.addChange(&change{td: td, uuid: id, old: old, new: nr})
	return nr
}

func (tx *txn) deleteRow(td *tableData, id UUID) {
	if m := tx.changes[td]; m != nil {
		if ch := m[id]; ch != nil {
			ch.new = nil
			return
		}
	}
	tx.addChange(&change{td: td, uuid: id, old: td.rows[id]})
}

// each calls fn for every row visible to the transaction.
func (tx *txn) each(td *tableData, fn func(id UUID, r Row) bool) {
	m := tx.changes[td]
	for id, r := range td.rows {
		if m != nil {
			if _, ok := m[id]; ok {
				continue
			}
		}
		if !fn(id, r.cols) {
			return
		}
	}
	for _, ch := range tx.order {
		if ch.td == td && ch.new != nil && m[ch.uuid] == ch {
			if !fn(ch.uuid, ch.new) {
				return
			}
		}
	}
}

func (tx *txn) version(td *tableData, id UUID) UUID {
	if r := td.rows[id]; r != nil {
		return r.version
	}
	return ZeroUUID
}

// execute runs ops and returns one result per op (plus a commit error).
// The returned changes are committed by the caller.
func (tx *txn) execute(ops []any) (results []any, ok bool, err error) {
	results = make([]any, len(ops))
	for i, opv := range ops {
		res, err := tx.op(opv)
		if err != nil {
			var wr *waitRetry
			if errors.As(err, &wr) {
				return nil, false, err
			}
			e := asError(err)
			if e.Tag == tagSyntax && e.Syntax == "" {
				e.Syntax = jsonText(opv)
			}
			results[i] = e.object()
			return results, false, nil
		}
		results[i] = res
	}
	if err := tx.finish(); err != nil {
		results = append(results, asError(err).object())
		return results, false, nil
	}
	return results, true, nil
}

func (tx *txn) table(op map[string]any) (*tableData, error) {
	name, ok := op["table"].(string)
	if !ok {
		return nil, errorf(tagSyntax, "Required 'table' member is missing.")
	}
	td := tx.db.tables[name]
	if td == nil {
		return nil, errorf(tagSyntax, "No table named %s.", name)
	}
	return td, nil
}

func (tx *txn) op(opv any) (any, error) {
	op, ok := opv.(map[string]any)
	if !ok {
		return nil, errorf(tagSyntax, "Operation must be a JSON object.")
	}
	name, _ := op["op"].(string)
	switch name {
	case "insert":
		return tx.opInsert(op)
	case "select":
		return tx.opSelect(op)
	case "update":
		return tx.opUpdate(op)
	case "mutate":
		return tx.opMutate(op)
	case "delete":
		return tx.opDelete(op)
	case "wait":
		return tx.opWait(op)
	case "commit":
		if _, ok := op["durable"].(bool); !ok {
			return nil, errorf(tagSyntax, "commit requires a boolean \"durable\" member")
		}
		return map[string]any{}, nil
	case "abort":
		return nil, errorf(tagAborted, "aborted by request")
	case "comment":
		c, ok := op["comment"].(string)
		if !ok {
			return nil, errorf(tagSyntax, "comment requires a string \"comment\" member")
		}
		tx.comments = append(tx.comments, c)
		return map[string]any{}, nil
	case "assert":
		l, ok := op["lock"].(string)
		if !ok {
			return nil, errorf(tagSyntax, "assert requires a string \"lock\" member")
		}
		if tx.owner == nil || !tx.owner.ownsLock(l) {
			return nil, errorf(tagNotOwner, "Asserted lock %s not held.", l)
		}
		return map[string]any{}, nil
	case "":
		return nil, errorf(tagSyntax, "Required 'op' member is missing.")
	}
	return nil, errorf(tagSyntax, "No operation \"%s\"", name)
}

// parseRow parses the "row" member of insert/update.
func (tx *txn) parseRow(td *tableData, v any, update bool) (Row, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(tagSyntax, "\"row\" must be a JSON object")
	}
	r := make(Row, len(obj))
	for cname, cv := range obj {
		c := td.t.Columns[cname]
		if c == nil {
			if cname == "_uuid" || cname == "_version" {
				return nil, errorf(tagConstraint, "Cannot update immutable column %s in table %s.", cname, td.t.Name)
			}
			return nil, &Error{Tag: tagUnknownCol, Details: fmt.Sprintf("No column %s in table %s.", cname, td.t.Name), Syntax: jsonText(v)}
		}
		if update && !c.Mutable {
			return nil, errorf(tagConstraint, "Cannot update immutable column %s in table %s.", cname, td.t.Name)
		}
		val, err := parseDatum(&c.Type, cv, tx)
		if err != nil {
			return nil, err
		}
		r[cname] = val
	}
	return r, nil
}

func (tx *txn) opInsert(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	var id UUID
	var name string
	if v, ok := op["uuid-name"]; ok {
		s, ok := v.(string)
		if !ok || !idRE.MatchString(s) {
			return nil, errorf(tagSyntax, "\"uuid-name\" must be an identifier")
		}
		name = s
		if tx.created[name] {
			return nil, &Error{Tag: tagDupName, Details: "This \"uuid-name\" appeared on an earlier \"insert\" operation.", Syntax: jsonText(v)}
		}
	}
	if v, ok := op["uuid"]; ok {
		s, _ := v.(string)
		u, err := ParseUUID(s)
		if err != nil {
			return nil, errorf(tagSyntax, "\"uuid\" must be a UUID string")
		}
		id = u
		if name != "" {
			if prev, ok := tx.syms[name]; ok && prev != id {
				return nil, errorf(tagSyntax, "uuid-name %s was referenced before this insert chose uuid %s", name, s)
			}
		}
	} else if name != "" {
		id, _ = tx.lookup(name)
	} else {
		id = NewUUID()
	}
	if name != "" {
		tx.syms[name] = id
		tx.created[name] = true
	}
	if tx.get(td, id) != nil || td.rows[id] != nil {
		return nil, errorf(tagDupUUID, "This UUID would duplicate a UUID already present within the table or deleted within the same transaction.")
	}
	if m := tx.changes[td]; m != nil && m[id] != nil {
		return nil, errorf(tagDupUUID, "This UUID would duplicate a UUID already present within the table or deleted within the same transaction.")
	}
	rv, ok := op["row"]
	if !ok {
		rv = map[string]any{}
	}
	r, err := tx.parseRow(td, rv, false)
	if err != nil {
		return nil, err
	}
	for _, cname := range td.t.ColumnNames {
		if _, ok := r[cname]; !ok {
			r[cname] = defaultValue(&td.t.Columns[cname].Type)
		}
	}
	tx.addChange(&change{td: td, uuid: id, new: r})
	return map[string]any{"uuid": atomJSON(id)}, nil
}

// condition is one parsed where clause.
type condition struct {
	col   string // "_uuid", "_version" or a column name
	ct    *ColumnType
	fn    string
	value any
}

func uuidColumnType() *ColumnType {
	return &ColumnType{Key: BaseType{Type: TypeUUID, MaxInteger: math.MaxInt64, MaxLength: math.MaxInt}, Min: 1, Max: 1}
}

func parseConditions(t *Table, v any, sym symbols) ([]condition, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errorf(tagSyntax, "\"where\" must be an array of conditions")
	}
	conds := make([]condition, 0, len(arr))
	for _, cv := range arr {
		c, err := parseCondition(t, cv, sym)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func parseCondition(t *Table, cv any, sym symbols) (condition, error) {
	if b, ok := cv.(bool); ok {
		return condition{fn: "bool", value: b}, nil
	}
	c3, ok := cv.([]any)
	if !ok || len(c3) != 3 {
		return condition{}, &Error{Tag: tagSyntax, Details: "Parse error in condition.", Syntax: jsonText(cv)}
	}
	col, _ := c3[0].(string)
	fn, _ := c3[1].(string)
	var ct *ColumnType
	switch col {
	case "_uuid", "_version":
		ct = uuidColumnType()
	default:
		c := t.Columns[col]
		if c == nil {
			return condition{}, &Error{Tag: tagUnknownCol, Details: fmt.Sprintf("No column %s in table %s.", col, t.Name), Syntax: jsonText(cv)}
		}
		ct = &c.Type
	}
	switch fn {
	case "<", "<=", ">", ">=":
		if !ct.IsScalar() || (ct.Key.Type != TypeInteger && ct.Key.Type != TypeReal) {
			return condition{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("Type mismatch: \"%s\" operator may not be applied to column %s of type %s.", fn, col, ct.Key.Type), Syntax: jsonText(cv)}
		}
	case "==", "!=", "includes", "excludes":
	default:
		return condition{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("Unknown function %q.", fn), Syntax: jsonText(cv)}
	}
	// Values compared against sets and maps may have any size; atom
	// constraints (enum, ranges) do not apply to the operand.
	rct := relaxed(ct)
	val, err := parseDatum(rct, c3[2], sym)
	if err != nil {
		return condition{}, err
	}
	return condition{col: col, ct: ct, fn: fn, value: val}, nil
}

// relaxed returns ct with size and atom constraints removed (except scalars).
func relaxed(ct *ColumnType) *ColumnType {
	r := &ColumnType{Key: plainBase(ct.Key), Min: 0, Max: Unlimited}
	if ct.Value != nil {
		v := plainBase(*ct.Value)
		r.Value = &v
	}
	if ct.IsScalar() {
		r.Min, r.Max = 1, 1
	}
	return r
}

func plainBase(b BaseType) BaseType {
	return BaseType{Type: b.Type, MinInteger: math.MinInt64, MaxInteger: math.MaxInt64,
		MinReal: -math.MaxFloat64, MaxReal: math.MaxFloat64, MaxLength: math.MaxInt, RefTable: b.RefTable, RefWeak: b.RefWeak}
}

func (c *condition) eval(id, version UUID, r Row) bool {
	if c.fn == "bool" {
		return c.value.(bool)
	}
	var v any
	switch c.col {
	case "_uuid":
		v = id
	case "_version":
		v = version
	default:
		v = r[c.col]
	}
	switch c.fn {
	case "==":
		return valueEqual(v, c.value)
	case "!=":
		return !valueEqual(v, c.value)
	case "<":
		return compareAtoms(v, c.value) < 0
	case "<=":
		return compareAtoms(v, c.value) <= 0
	case ">":
		return compareAtoms(v, c.value) > 0
	case ">=":
		return compareAtoms(v, c.value) >= 0
	case "includes":
		return includes(v, c.value)
	case "excludes":
		return excludes(v, c.value)
	}
	return false
}

func includes(v, sub any) bool {
	switch x := v.(type) {
	case Set:
		s, _ := sub.(Set)
		for _, a := range s {
			if !x.Contains(a) {
				return false
			}
		}
		return true
	case Map:
		m, _ := sub.(Map)
		for k, val := range m {
			w, ok := x[k]
			if !ok || compareAtoms(w, val) != 0 {
				return false
			}
		}
		return true
	}
	return valueEqual(v, sub)
}

func excludes(v, sub any) bool {
	switch x := v.(type) {
	case Set:
		s, _ := sub.(Set)
		for _, a := range s {
			if x.Contains(a) {
				return false
			}
		}
		return true
	case Map:
		m, _ := sub.(Map)
		for k, val := range m {
			if w, ok := x[k]; ok && compareAtoms(w, val) == 0 {
				return false
			}
		}
		return true
	}
	return !valueEqual(v, sub)
}

// matching returns the uuids of rows satisfying all conds.
func (tx *txn) matching(td *tableData, conds []condition) []UUID {
	// Fast path: a _uuid equality picks one row.
	for _, c := range conds {
		if c.col == "_uuid" && c.fn == "==" {
			id := c.value.(UUID)
			r := tx.get(td, id)
			if r == nil {
				return nil
			}
			for i := range conds {
				if !conds[i].eval(id, tx.version(td, id), r) {
					return nil
				}
			}
			return []UUID{id}
		}
	}
	var out []UUID
	tx.each(td, func(id UUID, r Row) bool {
		for i := range conds {
			if !conds[i].eval(id, tx.version(td, id), r) {
				return true
			}
		}
		out = append(out, id)
		return true
	})
	return out
}

func (tx *txn) where(td *tableData, op map[string]any) ([]UUID, error) {
	wv, ok := op["where"]
	if !ok {
		return nil, errorf(tagSyntax, "Required 'where' member is missing.")
	}
	conds, err := parseConditions(td.t, wv, tx)
	if err != nil {
		return nil, err
	}
	return tx.matching(td, conds), nil
}

func parseColumns(t *Table, v any, def []string) ([]string, error) {
	if v == nil {
		return def, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errorf(tagSyntax, "\"columns\" must be an array of column names")
	}
	cols := make([]string, 0, len(arr))
	for _, cv := range arr {
		s, _ := cv.(string)
		if t.Columns[s] == nil && s != "_uuid" && s != "_version" {
			return nil, &Error{Tag: tagSyntax, Details: fmt.Sprintf("%s is not a valid column name", s), Syntax: jsonText(v)}
		}
		cols = append(cols, s)
	}
	return cols, nil
}

func allColumns(t *Table) []string {
	return append([]string{"_uuid", "_version"}, t.ColumnNames...)
}

func (tx *txn) rowJSON(td *tableData, id UUID, r Row, cols []string) map[string]any {
	out := make(map[string]any, len(cols))
	for _, c := range cols {
		switch c {
		case "_uuid":
			out[c] = atomJSON(id)
		case "_version":
			out[c] = atomJSON(tx.version(td, id))
		default:
			out[c] = datumJSON(r[c])
		}
	}
	return out
}

func (tx *txn) opSelect(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	cols, err := parseColumns(td.t, op["columns"], allColumns(td.t))
	if err != nil {
		return nil, err
	}
	ids, err := tx.where(td, op)
	if err != nil {
		return nil, err
	}
	rows := make([]any, 0, len(ids))
	for _, id := range ids {
		rows = append(rows, tx.rowJSON(td, id, tx.get(td, id), cols))
	}
	return map[string]any{"rows": rows}, nil
}

func (tx *txn) opUpdate(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	rv, ok := op["row"]
	if !ok {
		return nil, errorf(tagSyntax, "Required 'row' member is missing.")
	}
	r, err := tx.parseRow(td, rv, true)
	if err != nil {
		return nil, err
	}
	ids, err := tx.where(td, op)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w := tx.writable(td, id)
		for k, v := range r {
			w[k] = v
		}
	}
	return map[string]any{"count": len(ids)}, nil
}

func (tx *txn) opDelete(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	ids, err := tx.where(td, op)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		tx.deleteRow(td, id)
	}
	return map[string]any{"count": len(ids)}, nil
}

type mutation struct {
	col   *Column
	op    string
	value any
}

func (tx *txn) opMutate(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	mv, ok := op["mutations"].([]any)
	if !ok {
		return nil, errorf(tagSyntax, "Required 'mutations' member is missing or not an array.")
	}
	muts := make([]mutation, 0, len(mv))
	for _, m := range mv {
		mu, err := parseMutation(td.t, m, tx)
		if err != nil {
			return nil, err
		}
		muts = append(muts, mu)
	}
	ids, err := tx.where(td, op)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w := tx.writable(td, id)
		for _, m := range muts {
			nv, err := applyMutation(&m.col.Type, w[m.col.Name], m.op, m.value)
			if err != nil {
				return nil, err
			}
			w[m.col.Name] = nv
		}
	}
	return map[string]any{"count": len(ids)}, nil
}

func parseMutation(t *Table, m any, sym symbols) (mutation, error) {
	arr, ok := m.([]any)
	if !ok || len(arr) != 3 {
		return mutation{}, &Error{Tag: tagSyntax, Details: "Parse error in mutation.", Syntax: jsonText(m)}
	}
	cname, _ := arr[0].(string)
	mop, _ := arr[1].(string)
	c := t.Columns[cname]
	if c == nil {
		if cname == "_uuid" || cname == "_version" {
			return mutation{}, errorf(tagConstraint, "Cannot mutate read-only column %s in table %s.", cname, t.Name)
		}
		return mutation{}, &Error{Tag: tagUnknownCol, Details: fmt.Sprintf("No column %s in table %s.", cname, t.Name), Syntax: jsonText(m)}
	}
	if !c.Mutable {
		return mutation{}, errorf(tagConstraint, "Cannot mutate immutable column %s in table %s.", cname, t.Name)
	}
	ct := &c.Type
	var val any
	var err error
	switch mop {
	case "+=", "-=", "*=", "/=", "%=":
		if ct.IsMap() || (ct.Key.Type != TypeInteger && ct.Key.Type != TypeReal) || (mop == "%=" && ct.Key.Type != TypeInteger) {
			return mutation{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("Type mismatch: \"%s\" operator may not be applied to column %s.", mop, cname), Syntax: jsonText(m)}
		}
		bt := plainBase(ct.Key)
		val, err = parseAtom(&bt, arr[2], sym)
	case "insert":
		if ct.IsScalar() {
			return mutation{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("\"insert\" mutator may not be applied to scalar column %s.", cname), Syntax: jsonText(m)}
		}
		val, err = parseDatum(relaxed(ct), arr[2], sym)
	case "delete":
		if ct.IsScalar() {
			return mutation{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("\"delete\" mutator may not be applied to scalar column %s.", cname), Syntax: jsonText(m)}
		}
		r := relaxed(ct)
		if ct.IsMap() {
			// Either a map (delete matching pairs) or a set of keys.
			if a, ok := arr[2].([]any); ok && len(a) == 2 && a[0] == "map" {
				val, err = parseDatum(r, arr[2], sym)
			} else {
				val, err = parseDatum(&ColumnType{Key: r.Key, Min: 0, Max: Unlimited}, arr[2], sym)
			}
		} else {
			val, err = parseDatum(r, arr[2], sym)
		}
	default:
		return mutation{}, &Error{Tag: tagSyntax, Details: fmt.Sprintf("Unknown mutator %q.", mop), Syntax: jsonText(m)}
	}
	if err != nil {
		return mutation{}, err
	}
	return mutation{col: c, op: mop, value: val}, nil
}

func arith(op string, a, b any) (any, error) {
	switch x := a.(type) {
	case int64:
		y := b.(int64)
		switch op {
		case "+=":
			r := x + y
			if (r > x) != (y > 0) {
				return nil, errorf(tagRange, "Result of \"+=\" operation is out of range.")
			}
			return r, nil
		case "-=":
			r := x - y
			if (r < x) != (y > 0) {
				return nil, errorf(tagRange, "Result of \"-=\" operation is out of range.")
			}
			return r, nil
		case "*=":
			if x != 0 && y != 0 {
				r := x * y
				if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
					return nil, errorf(tagRange, "Result of \"*=\" operation is out of range.")
				}
				return r, nil
			}
			return int64(0), nil
		case "/=", "%=":
			if y == 0 {
				return nil, errorf(tagDomain, "Division by zero.")
			}
			if x == math.MinInt64 && y == -1 {
				if op == "%=" {
					return int64(0), nil
				}
				return nil, errorf(tagRange, "Result of \"/=\" operation is out of range.")
			}
			if op == "/=" {
				return x / y, nil
			}
			return x % y, nil
		}
	case float64:
		y := b.(float64)
		var r float64
		switch op {
		case "+=":
			r = x + y
		case "-=":
			r = x - y
		case "*=":
			r = x * y
		case "/=":
			if y == 0 {
				return nil, errorf(tagDomain, "Division by zero.")
			}
			r = x / y
		}
		if math.IsInf(r, 0) || math.IsNaN(r) {
			return nil, errorf(tagRange, "Result of \"%s\" operation is out of range.", op)
		}
		return r, nil
	}
	return nil, errorf(tagSyntax, "bad arithmetic operand")
}

func applyMutation(ct *ColumnType, cur any, op string, val any) (any, error) {
	switch op {
	case "+=", "-=", "*=", "/=", "%=":
		if ct.Key.Type == TypeReal {
			if i, ok := val.(int64); ok {
				val = float64(i)
			}
		}
		if s, ok := cur.(Set); ok {
			out := make([]any, 0, len(s))
			for _, a := range s {
				r, err := arith(op, a, val)
				if err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			ns, dup := newSet(out)
			if dup {
				return nil, errorf(tagConstraint, "Result of \"%s\" operation contains duplicate values.", op)
			}
			if err := checkDatum(ct, ns); err != nil {
				return nil, err
			}
			return ns, nil
		}
		r, err := arith(op, cur, val)
		if err != nil {
			return nil, err
		}
		if err := checkAtom(&ct.Key, r); err != nil {
			return nil, err
		}
		return r, nil
	case "insert":
		var out any
		switch x := cur.(type) {
		case Set:
			out = mergeSets(x, val.(Set))
		case Map:
			add := val.(Map)
			m := make(Map, len(x)+len(add))
			for k, v := range x {
				m[k] = v
			}
			for k, v := range add {
				if _, ok := m[k]; !ok {
					m[k] = v
				}
			}
			out = m
		}
		if err := checkDatum(ct, out); err != nil {
			return nil, err
		}
		return out, nil
	case "delete":
		var out any
		switch x := cur.(type) {
		case Set:
			del := val.(Set)
			s := make(Set, 0, len(x))
			for _, a := range x {
				if !del.Contains(a) {
					s = append(s, a)
				}
			}
			out = s
		case Map:
			m := make(Map, len(x))
			for k, v := range x {
				m[k] = v
			}
			switch d := val.(type) {
			case Map:
				for k, v := range d {
					if w, ok := m[k]; ok && compareAtoms(v, w) == 0 {
						delete(m, k)
					}
				}
			case Set:
				for _, k := range d {
					delete(m, k)
				}
			}
			out = m
		}
		if err := checkDatum(ct, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, errorf(tagSyntax, "Unknown mutator %q.", op)
}

func (tx *txn) opWait(op map[string]any) (any, error) {
	td, err := tx.table(op)
	if err != nil {
		return nil, err
	}
	timeout := int64(-1)
	if v, ok := op["timeout"]; ok {
		n, err := jsonInt(v)
		if err != nil || n < 0 {
			return nil, errorf(tagSyntax, "\"timeout\" must be a non-negative integer")
		}
		timeout = n
	}
	until, _ := op["until"].(string)
	if until != "==" && until != "!=" {
		return nil, errorf(tagSyntax, "\"until\" must be \"==\" or \"!=\"")
	}
	cols, err := parseColumns(td.t, op["columns"], td.t.ColumnNames)
	if err != nil {
		return nil, err
	}
	rowsv, ok := op["rows"].([]any)
	if !ok {
		return nil, errorf(tagSyntax, "Required 'rows' member is missing or not an array.")
	}
	want := make([]string, 0, len(rowsv))
	for _, rv := range rowsv {
		obj, ok := rv.(map[string]any)
		if !ok {
			return nil, errorf(tagSyntax, "\"rows\" must hold row objects")
		}
		r := Row{}
		for k, v := range obj {
			c := td.t.Columns[k]
			var ct *ColumnType
			switch {
			case c != nil:
				ct = &c.Type
			case k == "_uuid" || k == "_version":
				ct = uuidColumnType()
			default:
				return nil, errorf(tagSyntax, "No column %s in table %s.", k, td.t.Name)
			}
			d, err := parseDatum(ct, v, tx)
			if err != nil {
				return nil, err
			}
			r[k] = d
		}
		want = append(want, projKey(r, cols, UUID{}, UUID{}))
	}
	ids, err := tx.where(td, op)
	if err != nil {
		return nil, err
	}
	got := make([]string, 0, len(ids))
	for _, id := range ids {
		got = append(got, projKey(tx.get(td, id), cols, id, tx.version(td, id)))
	}
	sort.Strings(want)
	sort.Strings(got)
	equal := strings.Join(want, "\x00") == strings.Join(got, "\x00")
	if equal == (until == "==") {
		return map[string]any{}, nil
	}
	if timeout < 0 && !tx.noRetry {
		// No timeout: wait for as long as it takes.
		return nil, &waitRetry{deadline: time.Now().Add(100 * 365 * 24 * time.Hour)}
	}
	if timeout > 0 && !tx.noRetry {
		return nil, &waitRetry{deadline: time.Now().Add(time.Duration(timeout) * time.Millisecond)}
	}
	return nil, errorf(tagTimedOut, "\"where\" clause test failed")
}

// projKey is a comparable text form of the given columns of a row.
func projKey(r Row, cols []string, id, version UUID) string {
	var b strings.Builder
	for _, c := range cols {
		var v any
		switch c {
		case "_uuid":
			v = id
		case "_version":
			v = version
		default:
			v = r[c]
		}
		j, _ := json.Marshal(datumJSON(v))
		b.Write(j)
		b.WriteByte(0)
	}
	return b.String()
}

// mergeSets returns the union of two sorted sets in linear time.
func mergeSets(a, b Set) Set {
	out := make(Set, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareAtoms(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
