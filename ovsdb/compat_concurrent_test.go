package ovsdb_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCompatVsctlConcurrent starts ovs-vsctl processes that all rewrite
// the same Bridge.ports column at once. ovs-vsctl guards its
// read-modify-write with a "wait" operation (the IDL's verify); a server
// that let a stale write through would lose ports, one that failed the
// wait wrongly would exhaust retries.
func TestCompatVsctlConcurrent(t *testing.T) {
	const n = 12
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "add-br", "br0")
		bin := requireTool(t, "ovs-vsctl")
		var wg sync.WaitGroup
		results := make([]runResult, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = run(t, 30*time.Second, bin, vsctlArgs(sock, "add-port", "br0", fmt.Sprintf("p%02d", i),
					"--", "set", "Bridge", "br0", fmt.Sprintf("external_ids:p%02d=%d", i, i))...)
			}()
		}
		wg.Wait()
		var want []string
		for i, r := range results {
			if r.code != 0 {
				t.Errorf("add-port p%02d: exit %d: %s", i, r.code, r.stderr)
			}
			want = append(want, fmt.Sprintf("p%02d", i))
		}
		sort.Strings(want)
		got := strings.Fields(mustVsctl(t, sock, "list-ports", "br0"))
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("list-ports = %v, want %v", got, want)
		}
		ext := mustVsctl(t, sock, "get", "Bridge", "br0", "external_ids")
		if c := strings.Count(ext, "="); c != n {
			t.Errorf("external_ids has %d keys, want %d: %s", c, n, ext)
		}
	})
}
