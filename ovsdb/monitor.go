package ovsdb

// monitor is one monitor of a connection. Its tables are read by commit
// (txMu held) and replaced by monitor_cond_change (also under txMu).
type monitor struct {
	conn    *conn
	db      *Database
	id      any // the client's monitor id, as JSON
	version int // 1: update, 2: update2, 3: update3
	tables  map[string]*monTable
}

type monTable struct {
	td                              *tableData
	cols                            []string
	initial, insert, delete, modify bool
	conds                           []condition // ORed; nil matches all
}

var zeroTxnID = ZeroUUID.String()

// parseMonitorRequests parses the table -> request(s) object.
func parseMonitorRequests(db *Database, v any, version int) (map[string]*monTable, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(tagSyntax, "monitor requests must be an object")
	}
	out := map[string]*monTable{}
	for tn, rv := range obj {
		td := db.tables[tn]
		if td == nil {
			return nil, errorf(tagSyntax, "no table named %s", tn)
		}
		var reqs []any
		if a, ok := rv.([]any); ok {
			reqs = a
		} else {
			reqs = []any{rv}
		}
		mt := &monTable{td: td}
		seen := map[string]bool{}
		first := true
		for _, r := range reqs {
			ro, ok := r.(map[string]any)
			if !ok {
				return nil, errorf(tagSyntax, "monitor request for %s must be an object", tn)
			}
			cols, err := parseColumns(td.t, ro["columns"], td.t.ColumnNames)
			if err != nil {
				return nil, err
			}
			for _, c := range cols {
				if c == "_uuid" || c == "_version" {
					continue
				}
				if !seen[c] {
					seen[c] = true
					mt.cols = append(mt.cols, c)
				}
			}
			sel := map[string]bool{"initial": true, "insert": true, "delete": true, "modify": true}
			if sv, ok := ro["select"]; ok {
				so, ok := sv.(map[string]any)
				if !ok {
					return nil, errorf(tagSyntax, "\"select\" must be an object")
				}
				for k, b := range so {
					bv, ok := b.(bool)
					if !ok {
						return nil, errorf(tagSyntax, "\"select\" members must be booleans")
					}
					sel[k] = bv
				}
			}
			if first {
				mt.initial, mt.insert, mt.delete, mt.modify = sel["initial"], sel["insert"], sel["delete"], sel["modify"]
			} else {
				mt.initial = mt.initial || sel["initial"]
				mt.insert = mt.insert || sel["insert"]
				mt.delete = mt.delete || sel["delete"]
				mt.modify = mt.modify || sel["modify"]
			}
			first = false
			if wv, ok := ro["where"]; ok && version > 1 {
				conds, err := parseConditions(td.t, wv, nil)
				if err != nil {
					return nil, err
				}
				mt.conds = conds
			}
		}
		out[tn] = mt
	}
	return out, nil
}

func (mt *monTable) match(id, version UUID, r Row) bool {
	if mt.conds == nil {
		return true
	}
	for i := range mt.conds {
		if mt.conds[i].eval(id, version, r) {
			return true
		}
	}
	return false
}

// rowJSON renders the monitored columns of r; v2+ omits defaults.
func (mt *monTable) rowJSON(r Row, omitDefaults bool) map[string]any {
	out := make(map[string]any, len(mt.cols))
	for _, c := range mt.cols {
		v := r[c]
		if omitDefaults && isDefault(&mt.td.t.Columns[c].Type, v) {
			continue
		}
		out[c] = datumJSON(v)
	}
	return out
}

// initialJSON builds the initial contents (txMu held).
func (m *monitor) initialJSON() map[string]any {
	out := map[string]any{}
	for tn, mt := range m.tables {
		if !mt.initial {
			continue
		}
		rows := map[string]any{}
		for id, r := range mt.td.rows {
			if m.version > 1 && !mt.match(id, r.version, r.cols) {
				continue
			}
			if m.version == 1 {
				rows[id.String()] = map[string]any{"new": mt.rowJSON(r.cols, false)}
			} else {
				rows[id.String()] = map[string]any{"initial": mt.rowJSON(r.cols, true)}
			}
		}
		if len(rows) > 0 {
			out[tn] = rows
		}
	}
	return out
}

// diffJSON is the update2 "modify" value of a column: the new value for
// columns holding at most one element, the elements to toggle for sets, and for maps the removed keys
// (with their old values) plus added or changed pairs (new values).
func diffJSON(ct *ColumnType, old, new any) any {
	if ct.Max == 1 && !ct.IsMap() {
		// Scalars and optional scalars: the new value, as ovsdb-server.
		return datumJSON(new)
	}
	switch o := old.(type) {
	case Set:
		var d []any
		collect := func(x any) { d = append(d, x) }
		symDiff(o, new.(Set), collect, collect)
		s, _ := newSet(d)
		return datumJSON(s)
	case Map:
		n := new.(Map)
		d := Map{}
		for k, v := range o {
			if _, ok := n[k]; !ok {
				d[k] = v
			}
		}
		for k, v := range n {
			if w, ok := o[k]; !ok || compareAtoms(v, w) != 0 {
				d[k] = v
			}
		}
		return datumJSON(d)
	}
	return datumJSON(new)
}

// commit sends the changes of one transaction (txMu held).
func (m *monitor) commit(ci *commitInfo) {
	out := map[string]any{}
	for _, ch := range ci.changes {
		mt := m.tables[ch.td.t.Name]
		if mt == nil {
			continue
		}
		var ru map[string]any
		if m.version == 1 {
			ru = m.rowUpdate1(mt, ch)
		} else {
			ru = m.rowUpdate2(mt, ch, ci)
		}
		if ru == nil {
			continue
		}
		tm, _ := out[ch.td.t.Name].(map[string]any)
		if tm == nil {
			tm = map[string]any{}
			out[ch.td.t.Name] = tm
		}
		tm[ch.uuid.String()] = ru
	}
	if len(out) == 0 {
		return
	}
	m.conn.notify(m.method(), m.params(out))
}

func (m *monitor) method() string {
	switch m.version {
	case 1:
		return "update"
	case 2:
		return "update2"
	}
	return "update3"
}

func (m *monitor) params(updates map[string]any) []any {
	if m.version == 3 {
		return []any{m.id, zeroTxnID, updates}
	}
	return []any{m.id, updates}
}

func (m *monitor) rowUpdate1(mt *monTable, ch *change) map[string]any {
	switch {
	case ch.old == nil:
		if !mt.insert {
			return nil
		}
		return map[string]any{"new": mt.rowJSON(ch.new, false)}
	case ch.new == nil:
		if !mt.delete {
			return nil
		}
		return map[string]any{"old": mt.rowJSON(ch.old.cols, false)}
	}
	if !mt.modify {
		return nil
	}
	old := map[string]any{}
	for _, c := range ch.cols {
		if mt.has(c) {
			old[c] = datumJSON(ch.old.cols[c])
		}
	}
	if len(old) == 0 {
		return nil
	}
	return map[string]any{"old": old, "new": mt.rowJSON(ch.new, false)}
}

func (mt *monTable) has(c string) bool {
	for _, x := range mt.cols {
		if x == c {
			return true
		}
	}
	return false
}

func (m *monitor) rowUpdate2(mt *monTable, ch *change, ci *commitInfo) map[string]any {
	var wasIn, isIn bool
	if ch.old != nil {
		wasIn = mt.match(ch.uuid, ch.old.version, ch.old.cols)
	}
	if ch.new != nil {
		isIn = mt.match(ch.uuid, ci.versions[ch.uuid], ch.new)
	}
	switch {
	case !wasIn && !isIn:
		return nil
	case !wasIn:
		if !mt.insert {
			return nil
		}
		return map[string]any{"insert": mt.rowJSON(ch.new, true)}
	case !isIn:
		if !mt.delete {
			return nil
		}
		return map[string]any{"delete": nil}
	}
	if !mt.modify {
		return nil
	}
	d := map[string]any{}
	for _, c := range ch.cols {
		if mt.has(c) {
			d[c] = diffJSON(&mt.td.t.Columns[c].Type, ch.old.cols[c], ch.new[c])
		}
	}
	if len(d) == 0 {
		return nil
	}
	return map[string]any{"modify": d}
}

// changeConditions applies monitor_cond_change (txMu held) and returns the
// resulting row updates.
func (m *monitor) changeConditions(v any) (map[string]any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(tagSyntax, "monitor_cond_change requests must be an object")
	}
	type pending struct {
		mt    *monTable
		conds []condition
		cols  []string
	}
	var ps []pending
	for tn, rv := range obj {
		mt := m.tables[tn]
		if mt == nil {
			return nil, errorf(tagSyntax, "table %s is not monitored", tn)
		}
		reqs, ok := rv.([]any)
		if !ok {
			reqs = []any{rv}
		}
		p := pending{mt: mt, conds: mt.conds, cols: mt.cols}
		for _, r := range reqs {
			ro, ok := r.(map[string]any)
			if !ok {
				return nil, errorf(tagSyntax, "condition change for %s must be an object", tn)
			}
			if wv, ok := ro["where"]; ok {
				conds, err := parseConditions(mt.td.t, wv, nil)
				if err != nil {
					return nil, err
				}
				p.conds = conds
			}
			if cv, ok := ro["columns"]; ok {
				cols, err := parseColumns(mt.td.t, cv, nil)
				if err != nil {
					return nil, err
				}
				p.cols = cols
			}
		}
		ps = append(ps, p)
	}
	out := map[string]any{}
	for _, p := range ps {
		oldMt := *p.mt
		p.mt.conds = p.conds
		p.mt.cols = p.cols
		rows := map[string]any{}
		for id, r := range p.mt.td.rows {
			was := oldMt.match(id, r.version, r.cols)
			is := p.mt.match(id, r.version, r.cols)
			switch {
			case was && !is:
				rows[id.String()] = map[string]any{"delete": nil}
			case !was && is:
				rows[id.String()] = map[string]any{"insert": p.mt.rowJSON(r.cols, true)}
			}
		}
		if len(rows) > 0 {
			out[p.mt.td.t.Name] = rows
		}
	}
	return out, nil
}
