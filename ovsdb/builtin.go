package ovsdb

import (
	_ "embed"
	"sync"
)

//go:embed vswitch.ovsschema
var vswitchSchema []byte

var builtin = sync.OnceValue(func() *Schema {
	s, err := ParseSchema(vswitchSchema)
	if err != nil {
		panic("ovsdb: embedded vswitch.ovsschema: " + err.Error())
	}
	return s
})

// BuiltinSchema returns the embedded Open_vSwitch schema. The Schema is
// shared and must not be modified.
func BuiltinSchema() *Schema { return builtin() }
