package ovsdb_test

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// pythonWithOVS finds an interpreter that can import the OVS Python IDL
// (Debian's python3-openvswitch installs it for /usr/bin/python3 only).
func pythonWithOVS(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import ovs.db.idl").Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("no python3 with the ovs module (python3-openvswitch) under CI")
	}
	tb.Skip("no python3 with the ovs module; install python3-openvswitch")
	return ""
}

const wantPythonIDL = `initial:
  bridge br-pre ports=[br-pre tag=[] ifaces=[br-pre:internal] ext=[]]
  counts: Bridge=1 Port=1 Interface=1
commit add: success
after add:
  bridge br-pre ports=[br-pre tag=[] ifaces=[br-pre:internal] ext=[]]
  bridge br-py ports=[p-py tag=[] ifaces=[p-py:internal] ext=[]]
  counts: Bridge=2 Port=2 Interface=2
commit change: success
after change:
  bridge br-pre ports=[br-pre tag=[] ifaces=[br-pre:internal] ext=[]]
  bridge br-py ports=[p-py tag=[10] ifaces=[p-py:internal] ext=[('owner', 'idl')]]
  counts: Bridge=2 Port=2 Interface=2
commit remove: success
after remove:
  bridge br-pre ports=[br-pre tag=[] ifaces=[br-pre:internal] ext=[]]
  counts: Bridge=1 Port=1 Interface=1
`

func TestClientPythonIDL(t *testing.T) {
	py := pythonWithOVS(t)
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "add-br", "br-pre")
		r := run(t, 30*time.Second, py, "testdata/python/idl_bridge.py",
			"unix:"+sock, ourSchemaPath, "br-py", "p-py")
		if r.code != 0 || r.stdout != wantPythonIDL {
			t.Errorf("idl_bridge.py: exit %d\n%s\nwant\n%s\nstderr:\n%s", r.code, r.stdout, wantPythonIDL, r.stderr)
		}
		// What the IDL left behind, seen by another client.
		if got := mustVsctl(t, sock, "list-br"); got != "br-pre\n" {
			t.Errorf("list-br after the IDL session = %q", got)
		}
	})
}
