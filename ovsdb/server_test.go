package ovsdb

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// curCfgFollower plays the datapath daemon: it copies next_cfg to cur_cfg
// so that ovs-vsctl without --no-wait returns.
func curCfgFollower(t testing.TB, db *Database) {
	cancel := db.Watch(func(u *Update) {
		for id, rc := range u.Tables["Open_vSwitch"] {
			if rc.New == nil || valueEqual(rc.New["next_cfg"], rc.New["cur_cfg"]) {
				continue
			}
			ops := fmt.Sprintf(`[{"op":"update","table":"Open_vSwitch","where":[["_uuid","==",["uuid","%s"]]],"row":{"cur_cfg":%d}}]`, id, rc.New["next_cfg"].(int64))
			db.Transact(json.RawMessage(ops))
		}
	})
	t.Cleanup(cancel)
}

func TestVsctlEndToEnd(t *testing.T) {
	vsctl := requireTool(t, "ovs-vsctl")
	db, _ := openDB(t, BuiltinSchema())
	curCfgFollower(t, db)
	_, sock := serve(t, db)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(vsctl, append([]string{"--db=unix:" + sock, "--timeout=10"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-vsctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("init")
	run("add-br", "br0")
	run("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=internal")
	run("add-bond", "br0", "bond0", "e1", "e2", "bond_mode=balance-slb")
	run("set", "Bridge", "br0", "external_ids:a=b", "other_config:x=y")
	run("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=net:br0")
	if out := run("get", "Bridge", "br0", "external_ids:a"); strings.TrimSpace(out) != `b` {
		t.Fatalf("get: %q", out)
	}
	show := run("show")
	for _, want := range []string{"Bridge br0", "Port p1", "type: internal", "Port bond0", "Interface e1", "Interface e2"} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}
	if out := run("list-ports", "br0"); strings.Fields(out)[0] != "bond0" || len(strings.Fields(out)) != 2 {
		t.Fatalf("list-ports: %q", out)
	}
	run("del-port", "br0", "bond0")
	var ifaces int
	db.Read(func(rt *ReadTx) { ifaces = len(rt.Rows("Interface")) })
	if ifaces != 2 {
		t.Fatalf("%d interfaces after del-port, want 2 (bond members collected)", ifaces)
	}
	run("del-br", "br0")
	if out := run("list-br"); strings.TrimSpace(out) != "" {
		t.Fatalf("list-br after del-br: %q", out)
	}
	// Errors come back to ovs-vsctl as failures.
	cmd := exec.Command(vsctl, "--db=unix:"+sock, "--timeout=5", "add-port", "nobr", "p9")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no bridge named nobr") {
		t.Fatalf("add-port to a missing bridge: %v %s", err, out)
	}
}

func TestMonitorCondSinceDiffs(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	_, sock := serve(t, db)
	c := dial(t, "unix", sock)
	r := c.call("list_dbs")
	if jsonText(r["result"]) != `["T","_Server"]` {
		t.Fatalf("list_dbs: %v", r)
	}
	if res := tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"o"},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"],"tags":["map",[["a","1"]]]}}]`); errTag(res) != "" {
		t.Fatal(res)
	}
	r = c.call("monitor_cond_since", "T", []any{"m", 1}, map[string]any{
		"Root": []any{map[string]any{"columns": []any{"name", "tags", "kids", "cfg", "state"}}},
		"Kid":  map[string]any{"where": []any{[]any{"n", ">", 5}}},
	}, zeroTxnID)
	res := r["result"].([]any)
	if res[0] != false || res[1] != zeroTxnID {
		t.Fatalf("monitor_cond_since reply: %v", r)
	}
	init := jsonText(res[2])
	if !strings.Contains(init, `"initial":{"name":"r","tags":["map",[["a","1"]]]}`) {
		t.Fatalf("initial rows must omit defaults: %s", init)
	}
	// A change made over the wire: the update3 comes before the reply.
	rootID := uuidOf(t, db, "Root")
	tr := c.call("transact", "T",
		map[string]any{"op": "mutate", "table": "Root", "where": []any{}, "mutations": []any{
			[]any{"tags", "delete", []any{"set", []any{"a"}}},
			[]any{"tags", "insert", []any{"map", []any{[]any{"b", "2"}}}},
			[]any{"cfg", "+=", 3}}},
		map[string]any{"op": "insert", "table": "Kid", "row": map[string]any{"name": "big", "n": 9}, "uuid-name": "k"},
		map[string]any{"op": "insert", "table": "Kid", "row": map[string]any{"name": "small", "n": 1}, "uuid-name": "s"},
		map[string]any{"op": "mutate", "table": "Root", "where": []any{}, "mutations": []any{
			[]any{"kids", "insert", []any{"set", []any{[]any{"named-uuid", "k"}, []any{"named-uuid", "s"}}}}}},
	)
	if errTag(tr["result"].([]any)) != "" {
		t.Fatal(tr)
	}
	msgs := c.messages()
	var upd map[string]any
	for _, m := range msgs {
		if m["method"] == "update3" {
			if upd != nil {
				t.Fatalf("two notifications for one transaction: %v", msgs)
			}
			upd = m
		}
		if m["id"] == tr["id"] && upd == nil {
			t.Fatal("reply before the update3 notification")
		}
	}
	if upd == nil {
		t.Fatalf("no update3: %v", msgs)
	}
	p := upd["params"].([]any)
	if jsonText(p[0]) != `["m",1]` || p[1] != zeroTxnID {
		t.Fatalf("update3 params: %v", p)
	}
	mod := p[2].(map[string]any)["Root"].(map[string]any)[rootID].(map[string]any)["modify"].(map[string]any)
	if jsonText(mod["tags"]) != `["map",[["a","1"],["b","2"]]]` || jsonText(mod["cfg"]) != "3" {
		t.Fatalf("modify diff: %s", jsonText(mod))
	}
	kids := p[2].(map[string]any)["Kid"].(map[string]any)
	if len(kids) != 1 || !strings.Contains(jsonText(kids), `"insert":{"n":9,"name":"big"}`) {
		t.Fatalf("conditional Kid updates: %s", jsonText(kids))
	}
	// Changing the condition: small comes in, big goes out.
	cc := c.call("monitor_cond_change", []any{"m", 1}, []any{"m", 2}, map[string]any{"Kid": []any{map[string]any{"where": []any{[]any{"n", "<", 5}}}}})
	if cc["error"] != nil {
		t.Fatal(cc)
	}
	u := c.waitFor(func(m map[string]any) bool {
		return m["method"] == "update3" && jsonText(m["params"].([]any)[0]) == `["m",2]`
	})
	s := jsonText(u["params"].([]any)[2])
	if !strings.Contains(s, `"delete":null`) || !strings.Contains(s, `"insert":{"n":1,"name":"small"}`) {
		t.Fatalf("cond change update: %s", s)
	}
	// Old-style monitor: full rows.
	c2 := dial(t, "unix", sock)
	r = c2.call("monitor", "T", nil, map[string]any{"Root": map[string]any{"columns": []any{"cfg"}}})
	if !strings.Contains(jsonText(r["result"]), `"new":{"cfg":3}`) {
		t.Fatalf("monitor initial: %v", r)
	}
	tx(t, db, `[{"op":"mutate","table":"Root","where":[],"mutations":[["cfg","+=",1]]}]`)
	u = c2.waitFor(func(m map[string]any) bool { return m["method"] == "update" })
	if s := jsonText(u["params"]); !strings.Contains(s, `{"new":{"cfg":4},"old":{"cfg":3}}`) {
		t.Fatalf("update: %s", s)
	}
	if r := c2.call("monitor_cancel", nil); r["error"] != nil {
		t.Fatal(r)
	}
	if r := c2.call("monitor_cancel", nil); r["error"] == nil {
		t.Fatal("second monitor_cancel succeeded")
	}
}

func TestServerDatabaseAndErrors(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	_, sock := serve(t, db)
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("socket mode: %v %v", st.Mode(), err)
	}
	c := dial(t, "unix", sock)
	r := c.call("get_schema", "_Server", "extra")
	if r["result"].(map[string]any)["name"] != "_Server" {
		t.Fatalf("get_schema _Server: %v", r)
	}
	r = c.call("monitor_cond", "_Server", []any{"monid", "_Server"}, map[string]any{"Database": []any{map[string]any{"columns": []any{"name", "model", "connected", "leader", "schema"}}}})
	s := jsonText(r["result"])
	if !strings.Contains(s, `"model":"standalone"`) || !strings.Contains(s, `"connected":true`) || !strings.Contains(s, `\"name\":\"T\"`) {
		t.Fatalf("_Server.Database: %s", s)
	}
	r = c.call("transact", "Nope", map[string]any{"op": "select", "table": "x", "where": []any{}})
	if _, has := r["result"]; has || r["error"].(map[string]any)["error"] != "unknown database" {
		t.Fatalf("unknown database: %v", r)
	}
	r = c.call("frobnicate")
	if _, has := r["result"]; has || r["error"] != "unknown method" {
		t.Fatalf("unknown method: %v", r)
	}
	r = c.call("echo", "a", 1)
	if jsonText(r["result"]) != `["a",1]` {
		t.Fatalf("echo: %v", r)
	}
	// A protocol error closes only that connection.
	bad := dial(t, "unix", sock)
	bad.sendRaw(`{"method":"echo","id":1,"params":[}`)
	bad.waitClosed()
	if r := c.call("echo"); r["error"] != nil {
		t.Fatalf("other client affected: %v", r)
	}
	for _, msg := range []string{`[1,2]`, `{"method":"echo","id":1}`, `{"method":"echo","id":1,"params":{}}`, `{bad json`} {
		bad := dial(t, "unix", sock)
		bad.sendRaw(msg)
		bad.waitClosed()
	}
}

func TestLocks(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	_, sock := serve(t, db)
	a, b := dial(t, "unix", sock), dial(t, "unix", sock)
	if r := a.call("lock", "L"); jsonText(r["result"]) != `{"locked":true}` {
		t.Fatal(r)
	}
	if r := b.call("lock", "L"); jsonText(r["result"]) != `{"locked":false}` {
		t.Fatal(r)
	}
	if r := a.call("transact", "T", map[string]any{"op": "assert", "lock": "L"}); errTag(r["result"].([]any)) != "" {
		t.Fatal(r)
	}
	if r := b.call("transact", "T", map[string]any{"op": "assert", "lock": "L"}); errTag(r["result"].([]any)) != "not owner" {
		t.Fatal(r)
	}
	a.call("unlock", "L")
	b.waitFor(func(m map[string]any) bool { return m["method"] == "locked" && jsonText(m["params"]) == `["L"]` })
	if r := a.call("steal", "L"); jsonText(r["result"]) != `{"locked":true}` {
		t.Fatal(r)
	}
	b.waitFor(func(m map[string]any) bool { return m["method"] == "stolen" && jsonText(m["params"]) == `["L"]` })
	// Closing the owner hands the lock on.
	c := dial(t, "unix", sock)
	c.call("lock", "L")
	a.c.Close()
	c.waitFor(func(m map[string]any) bool { return m["method"] == "locked" })
}

func TestInactivityProbe(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	srv := NewServer(db)
	srv.ProbeInterval = 200 * time.Millisecond
	if err := srv.Listen("ptcp:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addrs()[0].String()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("ptcp default address %s, want 127.0.0.1", addr)
	}
	c := dial(t, "tcp", addr)
	start := time.Now()
	c.waitFor(func(m map[string]any) bool { return m["method"] == "echo" && m["id"] == "echo" })
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("probe after %v, want about 200ms", d)
	}
	// Not answering: dropped after another interval.
	buf := make([]byte, 1)
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, err := c.c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("idle client not dropped")
			}
			break
		}
	}
}

func TestMessageTooLong(t *testing.T) {
	db, _ := openDB(t, testSchema(t))
	srv := NewServer(db)
	srv.MaxMessage = 1000
	sock := tempDir(t) + "/s"
	if err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := dial(t, "unix", sock)
	c.sendRaw(`{"id":1,"method":"echo","params":["` + strings.Repeat("x", 2000) + `"]}`)
	m := c.waitFor(func(m map[string]any) bool { return m["error"] != nil })
	if !strings.Contains(jsonText(m), "resources exhausted") {
		t.Fatalf("error: %v", m)
	}
	ok := dial(t, "unix", sock)
	if r := ok.call("echo"); r["error"] != nil {
		t.Fatal(r)
	}
}
