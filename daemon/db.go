package daemon

import (
	"encoding/json"
	"fmt"
	"sort"

	"xvs/ovsdb"
)

// snapshot copies the tables reconciliation reads from one consistent view.
func (d *Daemon) snapshot() map[string]map[ovsdb.UUID]ovsdb.Row {
	out := map[string]map[ovsdb.UUID]ovsdb.Row{}
	d.db.Read(func(tx *ovsdb.ReadTx) {
		for _, t := range []string{"Open_vSwitch", "Bridge", "Port", "Interface"} {
			out[t] = tx.Rows(t)
		}
	})
	return out
}

// transact runs ops (RFC 7047 operations) against the database.
func (d *Daemon) transact(ops []map[string]any) error {
	if len(ops) == 0 {
		return nil
	}
	js, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	res, err := d.db.Transact(js)
	if err != nil {
		return fmt.Errorf("%w: %v (%s)", errDBFailed, err, res)
	}
	return nil
}

// OVSDB JSON notation helpers.

func ovsSet(vals ...any) []any {
	if vals == nil {
		vals = []any{}
	}
	return []any{"set", vals}
}

func ovsUUID(u ovsdb.UUID) []any { return []any{"uuid", u.String()} }

func ovsMap(m map[string]string) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]any, 0, len(m))
	for _, k := range keys {
		pairs = append(pairs, []any{k, m[k]})
	}
	return []any{"map", pairs}
}

func whereUUID(u ovsdb.UUID) []any {
	return []any{[]any{"_uuid", "==", ovsUUID(u)}}
}

// optStr is an optional string column: empty set when s is "".
func optStr(s string) any {
	if s == "" {
		return ovsSet()
	}
	return s
}

func optInt(n int64, ok bool) any {
	if !ok {
		return ovsSet()
	}
	return n
}
