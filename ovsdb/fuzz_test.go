package ovsdb

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"
)

// FuzzJSONRPC feeds arbitrary bytes through the message splitter and the
// dispatcher of one connection: nothing may panic, and every message the
// server queues must be a well-formed JSON-RPC reply or notification.
func FuzzJSONRPC(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"list_dbs","params":[]}`,
		`{"id":1,"method":"get_schema","params":["T","x"]}`,
		`{"id":2,"method":"transact","params":["T",{"op":"insert","table":"Other","row":{"name":"a"},"uuid-name":"o"},{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"]}}]}`,
		`{"id":3,"method":"monitor_cond_since","params":["T",["m"],{"Root":[{"columns":["name","tags"]}]},"00000000-0000-0000-0000-000000000000"]}{"id":4,"method":"transact","params":["T",{"op":"mutate","table":"Root","where":[],"mutations":[["tags","insert",["map",[["k","v"]]]]]}]}`,
		`{"id":5,"method":"lock","params":["l"]}{"id":6,"method":"transact","params":["T",{"op":"assert","lock":"l"}]}{"id":7,"method":"unlock","params":["l"]}`,
		`{"id":8,"method":"transact","params":["T",{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[],"timeout":10}]}`,
		`{"id":9,"method":"monitor","params":["T",null,{"Kid":{}}]}{"id":10,"method":"monitor_cancel","params":[null]}`,
		`{"id":11,"method":"echo","params":[[],{},"\u00e9"]}`,
		`{"id":"echo","result":[],"error":null}`,
		`{"id":12,"method":"transact","params":["T",{"op":"select","table":"Kid","where":[["n","<",3],["ns","includes",["set",[1]]]]}]}`,
		`[1,2]`, `{"method":"x"}`, `{"id":1,"method":"transact","params":[]}`,
	} {
		f.Add([]byte(s))
	}
	schema := testSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		db := NewMemory(schema)
		srv := NewServer(db)
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newConn(srv, a, false)
		srv.wg.Add(1)
		mr := newMsgReader(bytes.NewReader(data), 1<<16)
		for i := 0; i < 20; i++ {
			msg, err := mr.next()
			if err != nil {
				break
			}
			if err := c.handle(msg); err != nil {
				break
			}
		}
		c.wmu.Lock()
		out := c.queue
		c.wmu.Unlock()
		c.cleanup()
		for _, m := range out {
			var v map[string]any
			if err := json.Unmarshal(m, &v); err != nil {
				t.Fatalf("server sent invalid JSON %q: %v", m, err)
			}
			if _, ok := v["id"]; !ok {
				t.Fatalf("message without id: %s", m)
			}
			_, hasMethod := v["method"]
			_, hasResult := v["result"]
			e, hasErr := v["error"]
			switch {
			case hasMethod:
				if _, ok := v["params"].([]any); !ok {
					t.Fatalf("notification without params array: %s", m)
				}
			case hasResult:
				if !hasErr || e != nil {
					t.Fatalf("reply with result must have error null: %s", m)
				}
			case hasErr:
				if e == nil {
					t.Fatalf("error reply with null error: %s", m)
				}
			default:
				t.Fatalf("neither reply nor notification: %s", m)
			}
		}
	})
}
