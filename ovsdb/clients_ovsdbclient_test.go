package ovsdb_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

func ovsdbClient(tb testing.TB, args ...string) runResult {
	tb.Helper()
	return run(tb, 15*time.Second, requireTool(tb, "ovsdb-client"), append([]string{"-vsyslog:off"}, args...)...)
}

func TestClientOvsdbClientInfo(t *testing.T) {
	ours := loadRawSchema(t, ourSchemaPath)
	forEachServer(t, func(t *testing.T, sock string) {
		remote := "unix:" + sock
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"list-dbs", remote}, "Open_vSwitch\n_Server\n"},
			{[]string{"get-schema-version", remote, "Open_vSwitch"}, ours.Version + "\n"},
			{[]string{"get-schema-cksum", remote, "Open_vSwitch"}, ours.Cksum + "\n"},
			{[]string{"get-schema-version", remote, "_Server"}, "1.2.0\n"},
		} {
			r := ovsdbClient(t, c.args...)
			if r.code != 0 || r.stdout != c.want {
				t.Errorf("ovsdb-client %s: exit %d, stdout %q, want %q (stderr %q)",
					strings.Join(c.args, " "), r.code, r.stdout, c.want, r.stderr)
			}
		}

		r := ovsdbClient(t, "list-tables", remote, "Open_vSwitch")
		var tables []string
		for _, l := range strings.Split(r.stdout, "\n")[2:] {
			if l != "" {
				tables = append(tables, l)
			}
		}
		sort.Strings(tables)
		var want []string
		for name := range ours.Tables {
			want = append(want, name)
		}
		sort.Strings(want)
		if fmt.Sprint(tables) != fmt.Sprint(want) {
			t.Errorf("list-tables = %v, want %v", tables, want)
		}

		// get-schema must hand back a schema equivalent to the file,
		// column for column.
		r = ovsdbClient(t, "get-schema", remote, "Open_vSwitch")
		var got rawSchema
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("get-schema: exit %d: %v\n%s", r.code, err, r.stderr)
		}
		for _, d := range diffSchemas(got, ours) {
			t.Errorf("get-schema: %s", d)
		}
		if got.Cksum != ours.Cksum || got.Version != ours.Version {
			t.Errorf("get-schema: version %q cksum %q, want %q %q", got.Version, got.Cksum, ours.Version, ours.Cksum)
		}

		// _Server.Database is how ovs-vsctl finds the schema.
		r = ovsdbClient(t, "transact", remote, `["_Server",{"op":"select","table":"Database","where":[],"columns":["name","model","connected","leader","schema"]}]`)
		var sel []struct {
			Rows []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &sel); err != nil || len(sel) != 1 {
			t.Fatalf("_Server select: %v: %s %s", err, r.stdout, r.stderr)
		}
		found := map[string]bool{}
		for _, row := range sel[0].Rows {
			name, _ := row["name"].(string)
			found[name] = true
			if row["model"] != "standalone" || row["connected"] != true || row["leader"] != true {
				t.Errorf("_Server.Database %s: model %v connected %v leader %v", name, row["model"], row["connected"], row["leader"])
			}
			if name == "Open_vSwitch" {
				var s rawSchema
				text, _ := row["schema"].(string)
				if err := json.Unmarshal([]byte(text), &s); err != nil {
					t.Errorf("_Server.Database schema column: %v", err)
				} else if d := diffSchemas(s, ours); len(d) > 0 {
					t.Errorf("_Server.Database schema differs: %v", d)
				}
			}
		}
		if !found["Open_vSwitch"] {
			t.Errorf("_Server.Database has no Open_vSwitch row: %v", sel[0].Rows)
		}
	})
}

// txnCase is one transaction sent with `ovsdb-client transact` and the
// shape of its answer: results with UUIDs, "details" and "syntax" dropped
// (their wording is the server's own), as compact JSON.
type txnCase struct {
	name string
	txn  string
	want string
}

// canonResult keeps what a client may rely on in a transact reply.
func canonResult(s string) string {
	var res []map[string]any
	if err := json.Unmarshal([]byte(s), &res); err != nil {
		return "unparsable: " + s
	}
	for _, r := range res {
		delete(r, "details")
		delete(r, "syntax")
	}
	b, _ := json.Marshal(res)
	return uuidRE.ReplaceAllString(string(b), "U")
}

const ovsRowMatch = `"where":[]`

var transactCases = []txnCase{
	{"dangling strong reference",
		`{"op":"insert","table":"Open_vSwitch","row":{"bridges":["uuid","11111111-1111-1111-1111-111111111111"]}}`,
		`[{"uuid":["uuid","U"]},{"error":"referential integrity violation"}]`},
	{"create root row",
		`{"op":"insert","table":"Open_vSwitch","row":{"external_ids":["map",[["ovn-bridge-mappings","physnet:br-ex"]]]}}`,
		`[{"uuid":["uuid","U"]}]`},
	{"maxRows",
		`{"op":"insert","table":"Open_vSwitch","row":{}}`,
		`[{"uuid":["uuid","U"]},{"error":"constraint violation"}]`},
	{"unreferenced bridge is collected",
		`{"op":"insert","table":"Bridge","row":{"name":"lost"}},{"op":"select","table":"Bridge","where":[],"columns":["name"]}`,
		`[{"uuid":["uuid","U"]},{"rows":[{"name":"lost"}]}]`},
	{"collected bridge is gone",
		`{"op":"select","table":"Bridge","where":[],"columns":["name"]}`,
		`[{"rows":[]}]`},
	{"bridge with port and interface",
		`{"op":"insert","table":"Interface","row":{"name":"p0","type":"internal"},"uuid-name":"i"},` +
			`{"op":"insert","table":"Port","row":{"name":"p0","interfaces":["named-uuid","i"],"tag":7},"uuid-name":"p"},` +
			`{"op":"insert","table":"Bridge","row":{"name":"b0","ports":["named-uuid","p"]},"uuid-name":"b"},` +
			`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[["bridges","insert",["set",[["named-uuid","b"]]]]]}`,
		`[{"uuid":["uuid","U"]},{"uuid":["uuid","U"]},{"uuid":["uuid","U"]},{"count":1}]`},
	{"select by index",
		`{"op":"select","table":"Port","where":[["name","==","p0"]],"columns":["name","tag","trunks"]}`,
		`[{"rows":[{"name":"p0","tag":7,"trunks":["set",[]]}]}]`},
	{"duplicate index value",
		`{"op":"insert","table":"Bridge","row":{"name":"b0"},"uuid-name":"b"},` +
			`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[["bridges","insert",["named-uuid","b"]]]}`,
		`[{"uuid":["uuid","U"]},{"count":1},{"error":"constraint violation"}]`},
	{"port without interfaces",
		`{"op":"insert","table":"Port","row":{"name":"np"},"uuid-name":"p"},` +
			`{"op":"mutate","table":"Bridge","where":[["name","==","b0"]],"mutations":[["ports","insert",["named-uuid","p"]]]}`,
		`[{"uuid":["uuid","U"]},{"count":1},{"error":"referential integrity violation"}]`},
	{"map insert does not overwrite, delete needs the exact pair",
		`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[` +
			`["external_ids","insert",["map",[["ovn-bridge-mappings","other"],["k","v"]]]],` +
			`["external_ids","delete",["map",[["k","wrong"]]]]]},` +
			`{"op":"select","table":"Open_vSwitch",` + ovsRowMatch + `,"columns":["external_ids"]}`,
		`[{"count":1},{"rows":[{"external_ids":["map",[["k","v"],["ovn-bridge-mappings","physnet:br-ex"]]]}]}]`},
	{"map delete by key",
		`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[["external_ids","delete",["set",["k"]]]]},` +
			`{"op":"select","table":"Open_vSwitch",` + ovsRowMatch + `,"columns":["external_ids"]}`,
		`[{"count":1},{"rows":[{"external_ids":["map",[["ovn-bridge-mappings","physnet:br-ex"]]]}]}]`},
	{"integer mutate",
		`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[["next_cfg","+=",1]]},` +
			`{"op":"select","table":"Open_vSwitch",` + ovsRowMatch + `,"columns":["next_cfg","cur_cfg"]}`,
		`[{"count":1},{"rows":[{"cur_cfg":0,"next_cfg":1}]}]`},
	{"tag out of range",
		`{"op":"update","table":"Port","where":[["name","==","p0"]],"row":{"tag":5000}}`,
		`[{"error":"constraint violation"}]`},
	{"enum",
		`{"op":"update","table":"Port","where":[["name","==","p0"]],"row":{"vlan_mode":"bogus"}}`,
		`[{"error":"constraint violation"}]`},
	{"immutable column",
		`{"op":"update","table":"Bridge","where":[["name","==","b0"]],"row":{"name":"b1"}}`,
		`[{"error":"constraint violation"}]`},
	{"wrong type",
		`{"op":"update","table":"Open_vSwitch",` + ovsRowMatch + `,"row":{"cur_cfg":"x"}}`,
		`[{"error":"syntax error"}]`},
	{"unknown column",
		`{"op":"update","table":"Open_vSwitch",` + ovsRowMatch + `,"row":{"nocol":1}}`,
		`[{"error":"unknown column"}]`},
	{"unknown table",
		`{"op":"select","table":"Nope","where":[]}`,
		`[{"error":"syntax error"}]`},
	{"unknown operation",
		`{"op":"bogus","table":"Bridge"}`,
		`[{"error":"syntax error"}]`},
	{"abort leaves null after it",
		`{"op":"select","table":"Bridge","where":[],"columns":["name"]},{"op":"abort"},{"op":"select","table":"Bridge","where":[]}`,
		`[{"rows":[{"name":"b0"}]},{"error":"aborted"},null]`},
	{"wait timeout 0",
		`{"op":"wait","table":"Bridge","where":[],"columns":["name"],"until":"==","rows":[{"name":"zz"}],"timeout":0}`,
		`[{"error":"timed out"}]`},
	{"wait satisfied",
		`{"op":"wait","table":"Bridge","where":[],"columns":["name"],"until":"==","rows":[{"name":"b0"}],"timeout":0}`,
		`[{}]`},
	{"comment and lock assert",
		`{"op":"comment","comment":"xvs compat"},{"op":"assert","lock":"nolock"}`,
		`[{},{"error":"not owner"}]`},
	{"failed op rolls back the whole transaction",
		`{"op":"delete","table":"Port","where":[]},{"op":"update","table":"Port","where":[],"row":{"tag":9999}}`,
		`[{"count":1},{"error":"constraint violation"}]`},
	{"rolled back",
		`{"op":"select","table":"Port","where":[],"columns":["name"]},{"op":"delete","table":"Bridge","where":[["name","==","zz"]]}`,
		`[{"rows":[{"name":"p0"}]},{"count":0}]`},
	{"removing a bridge collects its port and interface",
		`{"op":"mutate","table":"Open_vSwitch",` + ovsRowMatch + `,"mutations":[["bridges","delete",["set",[]]]]},` +
			`{"op":"update","table":"Open_vSwitch",` + ovsRowMatch + `,"row":{"bridges":["set",[]]}}`,
		`[{"count":1},{"count":1}]`},
	{"all gone",
		`{"op":"select","table":"Bridge","where":[]},{"op":"select","table":"Port","where":[]},{"op":"select","table":"Interface","where":[]}`,
		`[{"rows":[]},{"rows":[]},{"rows":[]}]`},
}

func TestClientOvsdbClientTransact(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		remote := "unix:" + sock
		for _, c := range transactCases {
			r := ovsdbClient(t, "transact", remote, `["Open_vSwitch",`+c.txn+`]`)
			if r.code != 0 {
				t.Errorf("%s: exit %d: %s", c.name, r.code, r.stderr)
				continue
			}
			if got := canonResult(r.stdout); got != c.want {
				t.Errorf("%s:\n got %s\nwant %s\n(raw %s)", c.name, got, c.want, strings.TrimSpace(r.stdout))
			}
		}

		// Errors of the request itself rather than of an operation.
		r := ovsdbClient(t, "transact", remote, `["Nope",{"op":"select","table":"Bridge","where":[]}]`)
		if r.code != 1 || !strings.Contains(r.stderr, `"error":"unknown database"`) {
			t.Errorf("unknown database: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestClientOvsdbClientDump(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "add-br", "br0", "--", "set", "Bridge", "br0", "external_ids:k=v")
		r := ovsdbClient(t, "dump", "unix:"+sock, "Open_vSwitch", "Bridge", "name", "external_ids")
		want := "Bridge table\nexternal_ids name\n------------ ----\n{k=v}        br0\n"
		if r.code != 0 || r.stdout != want {
			t.Errorf("dump Bridge: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
		}
		r = ovsdbClient(t, "dump", "unix:"+sock, "--format=json", "Open_vSwitch")
		if r.code != 0 {
			t.Fatalf("dump: exit %d: %s", r.code, r.stderr)
		}
		// One JSON table per line, one per schema table.
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.HasPrefix(l, "{") {
				n++
			}
		}
		if want := len(loadRawSchema(t, ourSchemaPath).Tables); n != want {
			t.Errorf("dump printed %d tables, want %d:\n%s", n, want, r.stdout)
		}
	})
}

// monitorProc is a running `ovsdb-client monitor*` whose JSON lines are
// collected as they arrive.
type monitorProc struct {
	lines chan string
}

func startMonitor(t *testing.T, args ...string) *monitorProc {
	t.Helper()
	cmd := exec.Command(requireTool(t, "ovsdb-client"), append([]string{"-vsyslog:off", "--format=json"}, args...)...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+os.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	m := &monitorProc{lines: make(chan string, 100)}
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			m.lines <- s.Text()
		}
		close(m.lines)
	}()
	return m
}

// next returns the next update as sorted "action name..." rows with
// UUIDs hidden, or fails after timeout. Lines that carry no table
// ("last_id: ...") are checked for the all-zero standalone id.
func (m *monitorProc) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-m.lines:
			if !ok {
				t.Fatal("monitor exited")
			}
			if strings.Contains(l, "last_id:") && !strings.Contains(l, "last_id: 00000000-0000-0000-0000-000000000000") {
				t.Errorf("standalone last_id is not all-zero: %q", l)
			}
			i := strings.Index(l, "{")
			if i < 0 {
				continue
			}
			var tbl struct{ Data [][]any }
			if err := json.Unmarshal([]byte(l[i:]), &tbl); err != nil {
				t.Fatalf("monitor line %q: %v", l, err)
			}
			var rows []string
			for _, r := range tbl.Data {
				b, _ := json.Marshal(r[1:])
				rows = append(rows, string(b))
			}
			sort.Strings(rows)
			return strings.Join(rows, " ")
		case <-deadline:
			t.Fatalf("no monitor update within %v", timeout)
			return ""
		}
	}
}

// none checks that no update arrives within d.
func (m *monitorProc) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l := <-m.lines:
		if strings.Contains(l, "{") {
			t.Errorf("unexpected monitor update %q", l)
		}
	case <-time.After(d):
	}
}

func TestClientOvsdbClientMonitor(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		remote := "unix:" + sock
		mustVsctl(t, sock, "add-br", "br0")

		// monitor (update), monitor-cond (update2) with a condition that
		// hides brX, monitor-cond-since (update3).
		m1 := startMonitor(t, "monitor", remote, "Open_vSwitch", "Bridge", "name")
		m2 := startMonitor(t, "monitor-cond", remote, "Open_vSwitch", `[["name","!=","brX"]]`, "Bridge", "name,external_ids")
		m3 := startMonitor(t, "monitor-cond-since", remote, "Open_vSwitch", `[true]`, "Bridge", "name")
		const wait = 5 * time.Second
		for i, m := range []*monitorProc{m1, m3} {
			if got := m.next(t, wait); got != `["initial","br0"]` {
				t.Errorf("monitor %d initial: %s", i, got)
			}
		}
		if got := m2.next(t, wait); got != `["initial","br0",null]` {
			t.Errorf("monitor-cond initial: %s", got)
		}

		mustVsctl(t, sock, "add-br", "brM", "--", "add-br", "brX")
		mustVsctl(t, sock, "set", "Bridge", "brM", "external_ids:a=b")
		mustVsctl(t, sock, "del-br", "brM")

		want := map[string][]string{
			"monitor":            {`["insert","brM"] ["insert","brX"]`, `["delete","brM"]`},
			"monitor-cond":       {`["insert","brM",null]`, `["modify",null,["map",[["a","b"]]]]`, `["delete",null,null]`},
			"monitor-cond-since": {`["insert","brM"] ["insert","brX"]`, `["delete",null]`},
		}
		for name, m := range map[string]*monitorProc{"monitor": m1, "monitor-cond": m2, "monitor-cond-since": m3} {
			for i, w := range want[name] {
				if got := m.next(t, wait); got != w {
					t.Errorf("%s update %d: %s, want %s", name, i, got, w)
				}
			}
		}
		// The external_ids change touched no monitored column of m1/m3.
		m1.none(t, 200*time.Millisecond)
		m3.none(t, 10*time.Millisecond)

		// update2 "modify" of a set column carries the elements to toggle;
		// of an optional scalar (max 1), the new value.
		mustVsctl(t, sock, "add-port", "br0", "pt")
		m4 := startMonitor(t, "monitor-cond", remote, "Open_vSwitch", `[["name","==","pt"]]`, "Port", "trunks,tag")
		if got := m4.next(t, wait); got != `["initial",null,null]` {
			t.Errorf("Port pt initial: %s", got)
		}
		mustVsctl(t, sock, "set", "Port", "pt", "trunks=10,20")
		mustVsctl(t, sock, "set", "Port", "pt", "trunks=20,30", "tag=5")
		mustVsctl(t, sock, "set", "Port", "pt", "tag=6")
		mustVsctl(t, sock, "clear", "Port", "pt", "tag")
		for i, w := range []string{
			`["modify",["set",[10,20]],null]`,
			`["modify",["set",[10,30]],5]`,
			`["modify",null,6]`,
			`["modify",null,["set",[]]]`,
		} {
			if got := m4.next(t, wait); got != w {
				t.Errorf("Port pt update %d: %s, want %s", i, got, w)
			}
		}
	})
}
