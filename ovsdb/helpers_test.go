package ovsdb

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSchemaJSON exercises every feature the engine implements.
const testSchemaJSON = `{
 "name": "T", "version": "1.0.0",
 "tables": {
  "Root": {"isRoot": true, "maxRows": 2, "columns": {
    "name": {"type": "string", "mutable": false},
    "kids": {"type": {"key": {"type": "uuid", "refTable": "Kid"}, "min": 0, "max": "unlimited"}},
    "fav": {"type": {"key": {"type": "uuid", "refTable": "Other", "refType": "weak"}, "min": 0, "max": "unlimited"}},
    "need": {"type": {"key": {"type": "uuid", "refTable": "Other", "refType": "weak"}, "min": 1, "max": 2}},
    "cfg": {"type": "integer"},
    "tags": {"type": {"key": {"type": "string"}, "value": "string", "min": 0, "max": "unlimited"}},
    "state": {"type": {"key": {"type": "string", "enum": ["set", ["up", "down"]]}, "min": 0, "max": 1}},
    "live": {"type": {"key": "string", "min": 0, "max": 1}, "ephemeral": true}
  }},
  "Kid": {"indexes": [["name"]], "columns": {
    "name": {"type": "string"},
    "n": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 100}}},
    "r": {"type": {"key": {"type": "real", "minReal": -1.5, "maxReal": 1.5}}},
    "s": {"type": {"key": {"type": "string", "minLength": 1, "maxLength": 3}, "min": 0, "max": 1}},
    "toys": {"type": {"key": {"type": "uuid", "refTable": "Toy"}, "min": 0, "max": "unlimited"}},
    "ns": {"type": {"key": "integer", "min": 0, "max": "unlimited"}}
  }},
  "Toy": {"columns": {"name": {"type": "string"}}},
  "Other": {"isRoot": true, "columns": {"name": {"type": "string"}}}
 }
}`

func testSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := ParseSchema([]byte(testSchemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tempDir returns a short temporary directory (unix socket paths are
// limited to about 100 bytes).
func tempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "xo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func openDB(t testing.TB, s *Schema) (*Database, string) {
	t.Helper()
	path := filepath.Join(tempDir(t), "t.db")
	db, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func serve(t testing.TB, dbs ...*Database) (*Server, string) {
	t.Helper()
	srv := NewServer(dbs...)
	sock := filepath.Join(tempDir(t), "s.sock")
	if err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, sock
}

// rpcClient is a minimal JSON-RPC client: replies by id, notifications in
// arrival order (with their position relative to replies).
type rpcClient struct {
	t     testing.TB
	c     net.Conn
	enc   *json.Encoder
	mu    sync.Mutex
	next  int
	got   []map[string]any // every message received, in order
	cond  *sync.Cond
	close bool
}

func dial(t testing.TB, network, addr string) *rpcClient {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rpcClient{t: t, c: c, enc: json.NewEncoder(c)}
	rc.cond = sync.NewCond(&rc.mu)
	go func() {
		dec := json.NewDecoder(bufio.NewReader(c))
		dec.UseNumber()
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				rc.mu.Lock()
				rc.close = true
				rc.cond.Broadcast()
				rc.mu.Unlock()
				return
			}
			rc.mu.Lock()
			rc.got = append(rc.got, m)
			rc.cond.Broadcast()
			rc.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return rc
}

func (rc *rpcClient) sendRaw(s string) {
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatal(err)
	}
}

// call sends a request and returns the whole reply message.
func (rc *rpcClient) call(method string, params ...any) map[string]any {
	rc.t.Helper()
	rc.mu.Lock()
	rc.next++
	id := rc.next
	rc.mu.Unlock()
	if params == nil {
		params = []any{}
	}
	if err := rc.enc.Encode(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		rc.t.Fatal(err)
	}
	return rc.waitFor(func(m map[string]any) bool {
		n, ok := m["id"].(json.Number)
		return ok && n.String() == jsonText(id)
	})
}

// waitFor returns the first message received satisfying f.
func (rc *rpcClient) waitFor(f func(map[string]any) bool) map[string]any {
	rc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	timer := time.AfterFunc(5*time.Second, func() { rc.mu.Lock(); rc.cond.Broadcast(); rc.mu.Unlock() })
	defer timer.Stop()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for {
		for _, m := range rc.got {
			if f(m) {
				return m
			}
		}
		if rc.close || time.Now().After(deadline) {
			rc.t.Fatalf("no matching message; got %v", rc.got)
		}
		rc.cond.Wait()
	}
}

// waitClosed fails unless the server closes the connection soon.
func (rc *rpcClient) waitClosed() {
	rc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	timer := time.AfterFunc(5*time.Second, func() { rc.mu.Lock(); rc.cond.Broadcast(); rc.mu.Unlock() })
	defer timer.Stop()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for !rc.close {
		if time.Now().After(deadline) {
			rc.t.Fatalf("connection not closed; got %v", rc.got)
		}
		rc.cond.Wait()
	}
}

func (rc *rpcClient) messages() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got...)
}

func mustJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("bad JSON %s: %v", s, err)
	}
	return v
}

// tx runs a transaction through the in-process API and returns the
// decoded results.
func tx(t testing.TB, db *Database, ops string) []any {
	t.Helper()
	out, _ := db.Transact(json.RawMessage(ops))
	var res []any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("results %s: %v", out, err)
	}
	return res
}

// errTag returns the error tag of the first error object in results.
func errTag(res []any) string {
	for _, r := range res {
		if m, ok := r.(map[string]any); ok {
			if e, ok := m["error"].(string); ok {
				return e
			}
		}
	}
	return ""
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (required when CI=true): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
