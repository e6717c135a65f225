package ovsdb_test

import (
	"bufio"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// rawExchange writes msg on a fresh connection and returns the first
// reply with error details dropped, or "<EOF>" if the server closed the
// connection, or "<none>" if nothing came within a second.
func rawExchange(t *testing.T, sock, msg string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	var reply map[string]any
	if err := json.NewDecoder(c).Decode(&reply); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "<none>"
		}
		return "<EOF>"
	}
	if e, ok := reply["error"].(map[string]any); ok {
		delete(e, "details")
		delete(e, "syntax")
	}
	b, _ := json.Marshal(reply)
	return uuidRE.ReplaceAllString(string(b), "U")
}

func TestClientRawProtocol(t *testing.T) {
	cases := []struct{ name, send, want string }{
		{"echo", `{"method":"echo","params":["x",1],"id":3}`, `{"error":null,"id":3,"result":["x",1]}`},
		{"list_dbs", `{"method":"list_dbs","params":[],"id":"s"}`, `{"error":null,"id":"s","result":["Open_vSwitch","_Server"]}`},
		{"array id", `{"method":"transact","params":["Open_vSwitch",{"op":"select","table":"Bridge","where":[],"columns":["name"]}],"id":["a",1]}`,
			`{"error":null,"id":["a",1],"result":[{"rows":[]}]}`},
		{"unknown database", `{"method":"get_schema","params":["Nope"],"id":1}`, `{"error":{"error":"unknown database"},"id":1}`},
		{"unknown method", `{"method":"nosuch","params":[],"id":2}`, `{"error":"unknown method","id":2}`},
		{"python IDL get_schema with extra parameter", `{"method":"get_schema","params":["_Server","6b5f1b0e-6f5c-4d8e-9b3a-2a1c0d9e8f70"],"id":6}`, ""},
		{"monitor_cond_since on standalone", `{"method":"monitor_cond_since","params":["Open_vSwitch",["x"],{"Bridge":{"columns":[]}},"00000000-0000-0000-0000-000000000000"],"id":5}`,
			`{"error":null,"id":5,"result":[false,"U",{}]}`},
		{"missing params", `{"method":"list_dbs","id":4}`, "<EOF>"},
		{"not an object", `[1,2]`, "<EOF>"},
		{"bad JSON", `{bad json`, "<EOF>"},
	}
	forEachServer(t, func(t *testing.T, sock string) {
		// A connection that stays open through all the bad ones.
		keeper := dialRPC(t, sock, nil)
		for _, c := range cases {
			got := rawExchange(t, sock, c.send)
			if c.want == "" {
				// Only the shape: a schema named _Server came back.
				if !strings.Contains(got, `"name":"_Server"`) || !strings.Contains(got, `"error":null`) {
					t.Errorf("%s: %.200s", c.name, got)
				}
				continue
			}
			if got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
			}
			if _, err := keeper.call("echo", []any{c.name}); err != nil {
				t.Fatalf("after %s another client's connection broke: %v", c.name, err)
			}
		}
	})
}

// TestClientOwnChangeNotifiedFirst checks that a client's monitor sees its
// own transaction, as one update3, before the transact reply; ovs-vsctl
// and the IDLs rely on that order.
func TestClientOwnChangeNotifiedFirst(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send := func(s string) {
			if _, err := c.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		dec := json.NewDecoder(bufio.NewReader(c))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		recv := func() map[string]json.RawMessage {
			var m map[string]json.RawMessage
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("read: %v", err)
			}
			return m
		}
		send(`{"method":"monitor_cond_since","params":["Open_vSwitch",["m",1],{"Open_vSwitch":[{"columns":["external_ids","next_cfg"]}]},"00000000-0000-0000-0000-000000000000"],"id":1}`)
		if m := recv(); string(m["id"]) != "1" {
			t.Fatalf("first message %v", m)
		}
		send(`{"method":"transact","params":["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{"external_ids":["map",[["a","1"]]]}}],"id":2}`)
		var order []string
		for len(order) < 2 || order[len(order)-1] != "reply" {
			m := recv()
			switch {
			case string(m["method"]) == `"update3"`:
				var p []json.RawMessage
				json.Unmarshal(m["params"], &p)
				if len(p) != 3 || string(p[0]) != `["m",1]` || string(p[1]) != `"00000000-0000-0000-0000-000000000000"` {
					t.Errorf("update3 params %s", m["params"])
				}
				// Inserted rows omit default-valued columns (next_cfg 0).
				if len(p) == 3 && (!strings.Contains(string(p[2]), `"insert":{"external_ids":["map",[["a","1"]]]}`) || strings.Contains(string(p[2]), "next_cfg")) {
					t.Errorf("update3 body %s", p[2])
				}
				order = append(order, "update3")
			case string(m["id"]) == "2":
				order = append(order, "reply")
			default:
				order = append(order, "other:"+string(m["method"]))
			}
		}
		if strings.Join(order, ",") != "update3,reply" {
			t.Errorf("order %v, want one update3 then the reply", order)
		}

		// A modify carries only the difference of a map.
		send(`{"method":"transact","params":["Open_vSwitch",{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["external_ids","insert",["map",[["b","2"]]]]]}],"id":3}`)
		m := recv()
		var p []json.RawMessage
		json.Unmarshal(m["params"], &p)
		if len(p) != 3 || !strings.Contains(string(p[2]), `"modify":{"external_ids":["map",[["b","2"]]]}`) {
			t.Errorf("modify update3 %s %s", m["method"], m["params"])
		}
		if m := recv(); string(m["id"]) != "3" {
			t.Errorf("expected transact reply, got %v", m)
		}
	})
}
