package daemon

import (
	"sort"

	"xvs/ovsdb"
)

// Column accessors over ovsdb.Row values. They accept a scalar stored
// either as the atom itself or as a one-element set (optional columns), so
// reconciliation does not depend on how a column's type is declared.

func atoms(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case ovsdb.Set:
		return []any(x)
	default:
		return []any{x}
	}
}

func colStr(r ovsdb.Row, col string) string {
	for _, a := range atoms(r[col]) {
		if s, ok := a.(string); ok {
			return s
		}
	}
	return ""
}

func colInt(r ovsdb.Row, col string) (int64, bool) {
	for _, a := range atoms(r[col]) {
		if n, ok := a.(int64); ok {
			return n, true
		}
	}
	return 0, false
}

func colBool(r ovsdb.Row, col string) bool {
	for _, a := range atoms(r[col]) {
		if b, ok := a.(bool); ok {
			return b
		}
	}
	return false
}

func colInts(r ovsdb.Row, col string) []int64 {
	var out []int64
	for _, a := range atoms(r[col]) {
		if n, ok := a.(int64); ok {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func colUUIDs(r ovsdb.Row, col string) []ovsdb.UUID {
	var out []ovsdb.UUID
	for _, a := range atoms(r[col]) {
		if u, ok := a.(ovsdb.UUID); ok {
			out = append(out, u)
		}
	}
	return out
}

func colMap(r ovsdb.Row, col string) map[string]string {
	out := map[string]string{}
	if m, ok := r[col].(ovsdb.Map); ok {
		for k, v := range m {
			ks, ok1 := k.(string)
			vs, ok2 := v.(string)
			if ok1 && ok2 {
				out[ks] = vs
			}
		}
	}
	return out
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
