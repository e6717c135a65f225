package ovsdb

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// UUID is a 128-bit row identifier, printed in the 8-4-4-4-12 form.
type UUID [16]byte

// ZeroUUID is the all-zero UUID, the default value of a uuid column.
var ZeroUUID UUID

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	if _, err := rand.Read(u[:]); err != nil {
		panic(fmt.Errorf("ovsdb: reading random bytes: %w", err))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// String returns the canonical text form of u.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseUUID parses the canonical text form of a UUID.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a valid UUID", s)
	}
	src := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(src)); err != nil {
		return u, fmt.Errorf("%q is not a valid UUID", s)
	}
	return u, nil
}

// Set is the value of a set column: distinct atoms of one type, kept sorted
// (see compareAtoms). A Set held by the database is never modified in place.
type Set []any

// Map is the value of a map column: atom keys to atom values. A Map held by
// the database is never modified in place.
type Map map[any]any

// Row is a table row: column name to value. Values are int64, float64, bool,
// string or UUID for scalar columns (min 1, max 1, no value type), Set for
// other columns without a value type and Map for columns with one. Rows
// handed out by the database are shared and must not be modified.
type Row map[string]any

func atomRank(a any) int {
	switch a.(type) {
	case int64:
		return 0
	case float64:
		return 1
	case bool:
		return 2
	case string:
		return 3
	case UUID:
		return 4
	}
	return 5
}

// compareAtoms orders two atoms (of the same type in practice).
func compareAtoms(a, b any) int {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	case UUID:
		if y, ok := b.(UUID); ok {
			return bytes.Compare(x[:], y[:])
		}
	}
	return cmp.Compare(atomRank(a), atomRank(b))
}

// newSet sorts and deduplicates atoms into a Set; dup reports a duplicate.
func newSet(atoms []any) (s Set, dup bool) {
	sort.Slice(atoms, func(i, j int) bool { return compareAtoms(atoms[i], atoms[j]) < 0 })
	out := atoms[:0]
	for i, a := range atoms {
		if i > 0 && compareAtoms(atoms[i-1], a) == 0 {
			dup = true
			continue
		}
		out = append(out, a)
	}
	return Set(out), dup
}

// Contains reports whether a is in s.
func (s Set) Contains(a any) bool {
	i := sort.Search(len(s), func(i int) bool { return compareAtoms(s[i], a) >= 0 })
	return i < len(s) && compareAtoms(s[i], a) == 0
}

// sortedKeys returns the keys of m in atom order.
func (m Map) sortedKeys() []any {
	keys := make([]any, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return compareAtoms(keys[i], keys[j]) < 0 })
	return keys
}

// valueEqual compares two column values.
func valueEqual(a, b any) bool {
	switch x := a.(type) {
	case Set:
		y, ok := b.(Set)
		if !ok || len(x) != len(y) {
			return false
		}
		if len(x) == 0 || &x[0] == &y[0] {
			return true
		}
		for i := range x {
			if compareAtoms(x[i], y[i]) != 0 {
				return false
			}
		}
		return true
	case Map:
		y, ok := b.(Map)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || compareAtoms(v, w) != 0 {
				return false
			}
		}
		return true
	}
	return compareAtoms(a, b) == 0 && atomRank(a) == atomRank(b)
}

// Error is an RFC 7047 error object: a fixed tag ("constraint violation",
// "syntax error", ...) and free-form details.
type Error struct {
	Tag     string
	Details string
	Syntax  string // the offending JSON text, when known
}

func (e *Error) Error() string {
	if e.Details == "" {
		return e.Tag
	}
	return e.Tag + ": " + e.Details
}

// object returns the JSON error object.
func (e *Error) object() map[string]any {
	o := map[string]any{"error": e.Tag}
	if e.Details != "" {
		o["details"] = e.Details
	}
	if e.Syntax != "" {
		o["syntax"] = e.Syntax
	}
	return o
}

func errorf(tag, format string, args ...any) *Error {
	return &Error{Tag: tag, Details: fmt.Sprintf(format, args...)}
}

// Error tags used by real ovsdb-server.
const (
	tagSyntax     = "syntax error"
	tagConstraint = "constraint violation"
	tagRefInteg   = "referential integrity violation"
	tagUnknownDB  = "unknown database"
	tagDupName    = "duplicate uuid-name"
	tagUnknownCol = "unknown column"
	tagNotSupp    = "not supported"
	tagTimedOut   = "timed out"
	tagAborted    = "aborted"
	tagDomain     = "domain error"
	tagRange      = "range error"
	tagNotOwner   = "not owner"
	tagResources  = "resources exhausted"
	tagIOError    = "I/O error"
	tagDupUUID    = "duplicate uuid"
	tagCanceled   = "canceled"
	tagNotAllowed = "permission error"
)

// asError converts any error to an *Error.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Tag: "unknown error", Details: err.Error()}
}
