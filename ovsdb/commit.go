package ovsdb

import (
	"strings"
)

// forEachRef calls fn for every reference held by row r of table t, strong
// or weak as selected.
func forEachRef(t *Table, r Row, weak bool, fn func(c *Column, refTable string, id UUID)) {
	if !t.hasRefs {
		return
	}
	for _, cname := range t.ColumnNames {
		c := t.Columns[cname]
		kref := c.Type.Key.RefTable != "" && c.Type.Key.RefWeak == weak
		vref := c.Type.Value != nil && c.Type.Value.RefTable != "" && c.Type.Value.RefWeak == weak
		if !kref && !vref {
			continue
		}
		switch x := r[cname].(type) {
		case UUID:
			if kref {
				fn(c, c.Type.Key.RefTable, x)
			}
		case Set:
			if kref {
				for _, a := range x {
					fn(c, c.Type.Key.RefTable, a.(UUID))
				}
			}
		case Map:
			for k, v := range x {
				if kref {
					fn(c, c.Type.Key.RefTable, k.(UUID))
				}
				if vref {
					fn(c, c.Type.Value.RefTable, v.(UUID))
				}
			}
		}
	}
}

func (tx *txn) refs(td *tableData, id UUID) int {
	n := tx.delta[id]
	if r := td.rows[id]; r != nil {
		n += r.refs
	}
	return n
}

// finish runs the commit-time work: garbage collection, weak reference
// removal, referential integrity, row counts and index uniqueness.
func (tx *txn) finish() error {
	db := tx.db
	tx.delta = map[UUID]int{}
	tx.deltaTbl = map[UUID]*tableData{}
	count := func(r Row, t *Table, d int) {
		forEachRef(t, r, false, func(c *Column, rt string, id UUID) {
			tx.delta[id] += d
			tx.deltaTbl[id] = db.tables[rt]
		})
	}
	// Strong references added to modified rows; unchanged ones pointed at
	// existing rows, and a deletion of those is caught by its refcount.
	type addedRef struct {
		ch *change
		rt string
		id UUID
	}
	var added []addedRef
	for _, ch := range tx.order {
		if tx.changes[ch.td][ch.uuid] != ch {
			continue
		}
		switch {
		case ch.old != nil && ch.new != nil:
			refDiff(ch.td.t, ch.old.cols, ch.new, func(rt string, id UUID, d int) {
				tx.delta[id] += d
				tx.deltaTbl[id] = db.tables[rt]
				if d > 0 {
					added = append(added, addedRef{ch, rt, id})
				}
			})
		case ch.old != nil:
			count(ch.old.cols, ch.td.t, -1)
		case ch.new != nil:
			count(ch.new, ch.td.t, +1)
		}
	}

	// Referential integrity of the strong references this transaction
	// adds (checked before garbage collection, as ovsdb-server does: a
	// dangling reference is an error even from a row about to be
	// collected).
	for _, ch := range tx.order {
		if ch.new == nil || ch.old != nil || tx.changes[ch.td][ch.uuid] != ch {
			continue
		}
		var err error
		forEachRef(ch.td.t, ch.new, false, func(c *Column, rt string, id UUID) {
			if err == nil && tx.get(db.tables[rt], id) == nil {
				err = errorf(tagRefInteg, "Table %s column %s row %s references nonexistent row %s in table %s.",
					ch.td.t.Name, c.Name, ch.uuid, id, rt)
			}
		})
		if err != nil {
			return err
		}
	}
	for _, a := range added {
		if a.ch.new != nil && tx.changes[a.ch.td][a.ch.uuid] == a.ch && tx.get(db.tables[a.rt], a.id) == nil {
			col := ""
			forEachRef(a.ch.td.t, a.ch.new, false, func(c *Column, rt string, id UUID) {
				if id == a.id && col == "" {
					col = c.Name
				}
			})
			return errorf(tagRefInteg, "Table %s column %s row %s references nonexistent row %s in table %s.",
				a.ch.td.t.Name, col, a.ch.uuid, a.id, a.rt)
		}
	}

	// Garbage collection of unreferenced rows in non-root tables.
	type key struct {
		td *tableData
		id UUID
	}
	var work []key
	for _, ch := range tx.order {
		if ch.new != nil && ch.old == nil && !ch.td.t.IsRoot {
			work = append(work, key{ch.td, ch.uuid})
		}
	}
	for id, d := range tx.delta {
		if d < 0 && tx.deltaTbl[id] != nil && !tx.deltaTbl[id].t.IsRoot {
			work = append(work, key{tx.deltaTbl[id], id})
		}
	}
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		if k.td.t.IsRoot {
			continue
		}
		r := tx.get(k.td, k.id)
		if r == nil || tx.refs(k.td, k.id) > 0 {
			continue
		}
		forEachRef(k.td.t, r, false, func(c *Column, rt string, id UUID) {
			tx.delta[id]--
			td := db.tables[rt]
			tx.deltaTbl[id] = td
			work = append(work, key{td, id})
		})
		tx.deleteRow(k.td, k.id)
	}

	// Weak references to rows that do not exist after the transaction are
	// removed: from rows changed here, and from unchanged rows that point at
	// rows deleted here.
	deleted := map[*tableData][]UUID{}
	for _, ch := range tx.order {
		if ch.old != nil && ch.new == nil && tx.changes[ch.td][ch.uuid] == ch {
			deleted[ch.td] = append(deleted[ch.td], ch.uuid)
		}
	}
	for tname, refs := range db.weakReferrers {
		_ = tname
		for _, wr := range refs {
			if len(deleted[db.tables[wr.target]]) == 0 {
				continue
			}
			src := db.tables[wr.table]
			gone := map[UUID]bool{}
			for _, id := range deleted[db.tables[wr.target]] {
				gone[id] = true
			}
			var hits []UUID
			for id, r := range src.rows {
				if m := tx.changes[src]; m != nil && m[id] != nil {
					continue
				}
				hit := false
				forEachRef(src.t, r.cols, true, func(c *Column, rt string, ref UUID) {
					if c.Name == wr.column && rt == wr.target && gone[ref] {
						hit = true
					}
				})
				if hit {
					hits = append(hits, id)
				}
			}
			for _, id := range hits {
				tx.writable(src, id)
			}
		}
	}
	for _, ch := range tx.order {
		if ch.new == nil || !ch.td.t.hasRefs || tx.changes[ch.td][ch.uuid] != ch {
			continue
		}
		if err := tx.dropDanglingWeak(ch); err != nil {
			return err
		}
	}

	// Referential integrity.
	for _, ch := range tx.order {
		if tx.changes[ch.td][ch.uuid] != ch {
			continue
		}
		if ch.old != nil && ch.new == nil {
			if n := tx.refs(ch.td, ch.uuid); n > 0 {
				return errorf(tagRefInteg, "cannot delete %s row %s because of %d remaining reference(s)", ch.td.t.Name, ch.uuid, n)
			}
		}
	}

	// Drop no-op modifications and note changed columns.
	kept := tx.order[:0]
	for _, ch := range tx.order {
		if tx.changes[ch.td][ch.uuid] != ch {
			continue
		}
		if ch.old == nil && ch.new == nil {
			delete(tx.changes[ch.td], ch.uuid)
			continue
		}
		if ch.old != nil && ch.new != nil {
			ch.cols = ch.cols[:0]
			for _, c := range ch.td.t.ColumnNames {
				if !valueEqual(ch.old.cols[c], ch.new[c]) {
					ch.cols = append(ch.cols, c)
				}
			}
			if len(ch.cols) == 0 {
				delete(tx.changes[ch.td], ch.uuid)
				continue
			}
		}
		kept = append(kept, ch)
	}
	tx.order = kept

	// Row counts and indexes.
	for td, m := range tx.changes {
		if len(m) == 0 {
			continue
		}
		if td.t.MaxRows > 0 {
			n := len(td.rows)
			for _, ch := range m {
				if ch.old == nil && ch.new != nil {
					n++
				} else if ch.old != nil && ch.new == nil {
					n--
				}
			}
			if n > td.t.MaxRows {
				return errorf(tagConstraint, "transaction causes \"%s\" table to contain %d rows, greater than the schema-defined limit of %d row(s)", td.t.Name, n, td.t.MaxRows)
			}
		}
		for i, cols := range td.t.Indexes {
			seen := map[string]UUID{}
			for _, ch := range m {
				if ch.new == nil {
					continue
				}
				k := indexKey(ch.new, cols)
				if other, ok := seen[k]; ok {
					return indexErr(td.t, cols, ch.new, other, ch.uuid)
				}
				seen[k] = ch.uuid
				if other, ok := td.idx[i][k]; ok && other != ch.uuid {
					if och := m[other]; och == nil {
						return indexErr(td.t, cols, ch.new, other, ch.uuid)
					}
					// The other row was changed too: its own new key (if
					// any) is in seen, and is compared there.
				}
			}
		}
	}
	// Sets whose minimum size was broken by weak reference removal.
	for _, ch := range tx.order {
		if ch.new == nil || ch.old == nil || !ch.td.t.hasRefs {
			continue
		}
		for _, c := range ch.cols {
			if err := checkDatum(&ch.td.t.Columns[c].Type, ch.new[c]); err != nil {
				return err
			}
		}
	}
	return nil
}

func indexErr(t *Table, cols []string, r Row, a, b UUID) error {
	vals := make([]string, len(cols))
	for i, c := range cols {
		switch v := r[c].(type) {
		case Set, Map:
			vals[i] = jsonText(datumJSON(v))
		default:
			vals[i] = atomText(v)
		}
	}
	return errorf(tagConstraint, "Transaction causes multiple rows in \"%s\" table to have identical values (%s) for index on column%s \"%s\".  First row, with UUID %s, and second row, with UUID %s.",
		t.Name, strings.Join(vals, ", "), plural(len(cols)), strings.Join(cols, "\", \""), a, b)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// indexKey is the text form of an index's columns in a row.
func indexKey(r Row, cols []string) string {
	if len(cols) == 1 {
		if s, ok := r[cols[0]].(string); ok {
			return s
		}
	}
	var b strings.Builder
	for _, c := range cols {
		b.WriteString(jsonText(datumJSON(r[c])))
		b.WriteByte(0)
	}
	return b.String()
}

// dropDanglingWeak removes weak references to missing rows from ch.new. A
// scalar weak reference cannot be removed: that is a constraint violation.
func (tx *txn) dropDanglingWeak(ch *change) error {
	t := ch.td.t
	for _, cname := range t.ColumnNames {
		c := t.Columns[cname]
		kref := c.Type.Key.RefTable != "" && c.Type.Key.RefWeak
		vref := c.Type.Value != nil && c.Type.Value.RefTable != "" && c.Type.Value.RefWeak
		if !kref && !vref {
			continue
		}
		exists := func(rt string, a any) bool {
			return tx.get(tx.db.tables[rt], a.(UUID)) != nil
		}
		switch x := ch.new[cname].(type) {
		case UUID:
			if !exists(c.Type.Key.RefTable, x) {
				return errorf(tagConstraint, "Table %s column %s row %s: weak reference to nonexistent row %s in table %s cannot be removed (column requires a value).",
					t.Name, cname, ch.uuid, x, c.Type.Key.RefTable)
			}
		case Set:
			var out Set
			changed := false
			for _, a := range x {
				if exists(c.Type.Key.RefTable, a) {
					out = append(out, a)
				} else {
					changed = true
				}
			}
			if changed {
				if out == nil {
					out = Set{}
				}
				ch.new[cname] = out
			}
		case Map:
			var m Map
			for k, v := range x {
				if (kref && !exists(c.Type.Key.RefTable, k)) || (vref && !exists(c.Type.Value.RefTable, v)) {
					if m == nil {
						m = make(Map, len(x))
						for k2, v2 := range x {
							m[k2] = v2
						}
					}
					delete(m, k)
				}
			}
			if m != nil {
				ch.new[cname] = m
			}
		}
	}
	return nil
}

// weakRef is a column holding weak references to target.
type weakRef struct {
	table, column, target string
}

func weakReferrers(s *Schema) map[string][]weakRef {
	out := map[string][]weakRef{}
	for _, tn := range s.TableNames {
		t := s.Tables[tn]
		for _, cn := range t.ColumnNames {
			c := t.Columns[cn]
			for _, bt := range []*BaseType{&c.Type.Key, c.Type.Value} {
				if bt != nil && bt.RefTable != "" && bt.RefWeak {
					out[bt.RefTable] = append(out[bt.RefTable], weakRef{tn, cn, bt.RefTable})
				}
			}
		}
	}
	return out
}

// symDiff walks two sorted sets and reports the elements only in a
// (removed) and only in b (added), in linear time.
func symDiff(a, b Set, removed, added func(x any)) {
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return // the same set
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareAtoms(a[i], b[j]); {
		case c < 0:
			removed(a[i])
			i++
		case c > 0:
			added(b[j])
			j++
		default:
			i++
			j++
		}
	}
	for ; i < len(a); i++ {
		removed(a[i])
	}
	for ; j < len(b); j++ {
		added(b[j])
	}
}

// refDiff reports the change in strong references from old to new, row r
// of table t, as (+1/-1) deltas per target.
func refDiff(t *Table, old, new Row, fn func(refTable string, id UUID, d int)) {
	if !t.hasRefs {
		return
	}
	for _, cname := range t.ColumnNames {
		c := t.Columns[cname]
		kref := c.Type.Key.RefTable != "" && !c.Type.Key.RefWeak
		vref := c.Type.Value != nil && c.Type.Value.RefTable != "" && !c.Type.Value.RefWeak
		if !kref && !vref {
			continue
		}
		switch o := old[cname].(type) {
		case UUID:
			if n := new[cname].(UUID); n != o {
				fn(c.Type.Key.RefTable, o, -1)
				fn(c.Type.Key.RefTable, n, +1)
			}
		case Set:
			rt := c.Type.Key.RefTable
			symDiff(o, new[cname].(Set),
				func(x any) { fn(rt, x.(UUID), -1) },
				func(x any) { fn(rt, x.(UUID), +1) })
		case Map:
			n := new[cname].(Map)
			for k, v := range o {
				if kref {
					fn(c.Type.Key.RefTable, k.(UUID), -1)
				}
				if vref {
					fn(c.Type.Value.RefTable, v.(UUID), -1)
				}
			}
			for k, v := range n {
				if kref {
					fn(c.Type.Key.RefTable, k.(UUID), +1)
				}
				if vref {
					fn(c.Type.Value.RefTable, v.(UUID), +1)
				}
			}
		}
	}
}
