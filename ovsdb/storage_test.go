package ovsdb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReplayAfterReopen(t *testing.T) {
	s := testSchema(t)
	db, path := openDB(t, s)
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"keep"},"uuid-name":"o"},
		{"op":"insert","table":"Root","row":{"name":"r","need":["named-uuid","o"],"live":"eph","kids":["named-uuid","k"],"tags":["map",[["a","1"]]]}},
		{"op":"insert","table":"Kid","row":{"name":"k","n":3},"uuid-name":"k"},
		{"op":"insert","table":"Other","row":{"name":"gone"}}]`)
	tx(t, db, `[{"op":"mutate","table":"Root","where":[],"mutations":[["tags","insert",["map",[["b","2"]]]],["cfg","+=",7]]},
		{"op":"delete","table":"Other","where":[["name","==","gone"]]}]`)
	tx(t, db, `[{"op":"update","table":"Root","where":[],"row":{"state":"up"}}]`)
	tx(t, db, `[{"op":"update","table":"Root","where":[],"row":{"state":"down"}}]`)
	tx(t, db, `[{"op":"update","table":"Root","where":[],"row":{"live":"changed"}}]`) // ephemeral only: no record
	before := dump(t, db, true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if after := dump(t, db2, true); after != before {
		t.Fatalf("replay differs:\nbefore %s\nafter  %s", before, after)
	}
	db2.Read(func(rt *ReadTx) {
		for _, r := range rt.Rows("Root") {
			if r["live"].(Set) == nil || len(r["live"].(Set)) != 0 {
				t.Fatalf("ephemeral column came back: %v", r["live"])
			}
		}
	})
	// Reference counts were rebuilt: deleting the kid is still refused.
	if res := tx(t, db2, `[{"op":"delete","table":"Kid","where":[]}]`); errTag(res) != "referential integrity violation" {
		t.Fatalf("after replay: %v", res)
	}
}

// dump renders the durable contents of db (rows without versions).
func dump(t testing.TB, db *Database, durableOnly bool) string {
	var b strings.Builder
	db.Read(func(rt *ReadTx) {
		for _, tn := range db.schema.TableNames {
			rows := rt.Rows(tn)
			var lines []string
			for id, r := range rows {
				lines = append(lines, id.String()+jsonText(durableRow(db.schema.Tables[tn], r, nil)))
			}
			sortStrings(lines)
			fmt.Fprintf(&b, "%s:%s\n", tn, strings.Join(lines, ","))
		}
	})
	return b.String()
}

func TestCorruptTailTruncated(t *testing.T) {
	s := testSchema(t)
	db, path := openDB(t, s)
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"one"}}]`)
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"two"}}]`)
	db.Close()
	good, _ := os.ReadFile(path)
	for name, tail := range map[string][]byte{
		"torn header": []byte("OVSDB JSON 12"),
		"torn body":   []byte("OVSDB JSON 100 0123456789012345678901234567890123456789\n{\"Other\":"),
		"bad sha1":    encodeRecordBadSum(`{"Other":{"11111111-1111-1111-1111-111111111111":{"name":"three"}}}`),
		"garbage":     []byte("\x00\x00\x00\x00garbage"),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, append(append([]byte{}, good...), tail...), 0o640); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, s)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			db.Read(func(rt *ReadTx) { n = len(rt.Rows("Other")) })
			if n != 2 {
				t.Fatalf("%d rows, want 2", n)
			}
			// New commits land after the truncated point and replay.
			tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"after"}}]`)
			db.Close()
			db, err = Open(path, s)
			if err != nil {
				t.Fatal(err)
			}
			db.Read(func(rt *ReadTx) { n = len(rt.Rows("Other")) })
			db.Close()
			if n != 3 {
				t.Fatalf("after new commit and reopen: %d rows, want 3", n)
			}
		})
	}
}

func encodeRecordBadSum(js string) []byte {
	r := encodeRecord([]byte(js))
	i := bytes.IndexByte(r, '\n')
	if r[i-1] == '0' {
		r[i-1] = '1'
	} else {
		r[i-1] = '0'
	}
	return r
}

func TestCompaction(t *testing.T) {
	oldF, oldM := compactFactor, compactMin
	compactFactor, compactMin = 2, 32<<10
	defer func() { compactFactor, compactMin = oldF, oldM }()
	s := testSchema(t)
	db, path := openDB(t, s)
	tx(t, db, `[{"op":"insert","table":"Other","row":{"name":"x"}}]`)
	var maxSize int64
	for i := 0; i < 400; i++ {
		tx(t, db, fmt.Sprintf(`[{"op":"update","table":"Other","where":[],"row":{"name":"%s-%d"}}]`, strings.Repeat("n", 100), i))
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, st.Size())
	}
	if maxSize > 80<<10 {
		t.Fatalf("file grew to %d bytes without compaction", maxSize)
	}
	before := dump(t, db, true)
	db.Close()
	db2, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if after := dump(t, db2, true); after != before {
		t.Fatalf("after compaction:\n%s\nwant\n%s", after, before)
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Fatal("temporary file left behind")
	}
}

// TestOvsdbToolReadsOurFile checks the file format against the real tools.
func TestOvsdbToolReadsOurFile(t *testing.T) {
	tool := requireTool(t, "ovsdb-tool")
	db, path := openDB(t, BuiltinSchema())
	tx(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}},
		{"op":"insert","table":"Bridge","row":{"name":"br0","external_ids":["map",[["k","v"]]]},"uuid-name":"b"},
		{"op":"comment","comment":"hello log"}]`)
	tx(t, db, `[{"op":"mutate","table":"Bridge","where":[],"mutations":[["external_ids","delete",["set",["k"]]],["external_ids","insert",["map",[["k2","v2"]]]]]},
		{"op":"update","table":"Bridge","where":[],"row":{"datapath_type":"netdev"}}]`)
	out, err := exec.Command(tool, "show-log", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello log") {
		t.Fatalf("show-log: %v\n%s", err, out)
	}
	out, err = exec.Command(tool, "query", path, `["Open_vSwitch",{"op":"select","table":"Bridge","where":[],"columns":["name","external_ids"]}]`).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"name":"br0"`) || !strings.Contains(string(out), `["k2","v2"]`) || strings.Contains(string(out), `["k","v"]`) {
		t.Fatalf("query: %v\n%s", err, out)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(tool, "query", path, `["Open_vSwitch",{"op":"select","table":"Bridge","where":[],"columns":["name"]}]`).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"name":"br0"`) {
		t.Fatalf("query after compaction: %v\n%s", err, out)
	}
}

// TestReadRealServerFile replays a file written by ovsdb-tool (diff records).
func TestReadRealServerFile(t *testing.T) {
	tool := requireTool(t, "ovsdb-tool")
	dir := tempDir(t)
	path := filepath.Join(dir, "real.db")
	schemaPath := filepath.Join(dir, "s.ovsschema")
	os.WriteFile(schemaPath, vswitchSchema, 0o644)
	if out, err := exec.Command(tool, "create", path, schemaPath).CombinedOutput(); err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	for _, ops := range []string{
		`["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}},{"op":"insert","table":"Bridge","row":{"name":"br0","external_ids":["map",[["a","1"],["b","2"]]]},"uuid-name":"b"}]`,
		`["Open_vSwitch",{"op":"mutate","table":"Bridge","where":[],"mutations":[["external_ids","delete",["set",["a"]]],["external_ids","insert",["map",[["c","3"]]]]]}]`,
	} {
		if out, err := exec.Command(tool, "transact", path, ops).CombinedOutput(); err != nil {
			t.Fatalf("transact: %v %s", err, out)
		}
	}
	db, err := Open(path, BuiltinSchema())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ext string
	db.Read(func(rt *ReadTx) {
		for _, r := range rt.Rows("Bridge") {
			ext = jsonText(datumJSON(r["external_ids"]))
		}
	})
	if ext != `["map",[["b","2"],["c","3"]]]` {
		t.Fatalf("external_ids %s", ext)
	}
}

// TestKill9 commits transactions in a loop against a server subprocess
// (this test binary re-executed), kills it with SIGKILL at a random moment,
// and checks that every acknowledged transaction survives.
func TestKill9(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "k.db")
	sock := filepath.Join(dir, "k.sock")
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "XVS_OVSDB_SERVE="+path, "XVS_OVSDB_REMOTE=punix:"+sock)
		switch round {
		case 2, 3:
			cmd.Env = append(cmd.Env, "XVS_OVSDB_COMPACT_MIN=20000")
		case 4:
			// Without fsync a process crash still loses nothing.
			cmd.Env = append(cmd.Env, "XVS_OVSDB_NOSYNC=1")
		}
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			t.Fatalf("server did not start: %q %v", line, err)
		}
		c := dial(t, "unix", sock)
		acked := map[string]bool{}
		killAt := time.Now().Add(time.Duration(100+round*70) * time.Millisecond)
		if round == 2 || round == 3 {
			killAt = killAt.Add(600 * time.Millisecond) // compactions are slow
		}
		go func() {
			time.Sleep(time.Until(killAt))
			cmd.Process.Signal(syscall.SIGKILL)
		}()
		if round == 0 && !c.tryTransact(`["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]`) {
			t.Fatal("inserting the root row failed")
		}
		for i := 0; ; i++ {
			name := fmt.Sprintf("r%d-%d", round, i)
			ok := c.tryTransact(`["Open_vSwitch",{"op":"insert","table":"Bridge","row":{"name":"` + name + `"},"uuid-name":"b"},
				{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["bridges","insert",["named-uuid","b"]]]}]`)
			if !ok {
				break
			}
			acked[name] = true
		}
		cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("no transaction acknowledged before the kill")
		}
		db, err := Open(path, BuiltinSchema())
		if err != nil {
			t.Fatalf("round %d: reopening after kill: %v", round, err)
		}
		have := map[string]bool{}
		db.Read(func(rt *ReadTx) {
			for _, r := range rt.Rows("Bridge") {
				have[r["name"].(string)] = true
			}
		})
		db.Close()
		for name := range acked {
			if !have[name] {
				t.Fatalf("round %d: acknowledged transaction %s lost (%d acked, %d present)", round, name, len(acked), len(have))
			}
		}
		t.Logf("round %d: %d acknowledged, all present", round, len(acked))
	}
}

// tryTransact sends a transact and reports whether it committed; false
// when the connection died or the transaction failed.
func (rc *rpcClient) tryTransact(params string) bool {
	rc.mu.Lock()
	rc.next++
	id := rc.next
	rc.mu.Unlock()
	if _, err := rc.c.Write([]byte(`{"id":` + fmt.Sprint(id) + `,"method":"transact","params":` + params + `}`)); err != nil {
		return false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for {
		for i, m := range rc.got {
			if n, ok := m["id"].(json.Number); ok && n.String() == fmt.Sprint(id) {
				rc.got = append(rc.got[:i:i], rc.got[i+1:]...)
				res, _ := m["result"].([]any)
				return res != nil && errTag(res) == ""
			}
		}
		if rc.close {
			return false
		}
		rc.cond.Wait()
	}
}

func TestOpenTwiceFails(t *testing.T) {
	s := testSchema(t)
	db, path := openDB(t, s)
	if _, err := Open(path, s); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
	db.Close()
	db2, err := Open(path, s)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db2.Close()
}
