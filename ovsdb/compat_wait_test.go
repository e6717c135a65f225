package ovsdb_test

import (
	"strings"
	"testing"
	"time"
)

// vsctlWait runs ovs-vsctl without --no-wait, so it blocks until cur_cfg
// catches up with the next_cfg it set.
// Safe to call from any goroutine once the test has checked for the tool.
func vsctlWait(tb testing.TB, sock string, timeout string, args ...string) runResult {
	full := append([]string{"--db=unix:" + sock, "--timeout=" + timeout, "-vsyslog:off"}, args...)
	return run(tb, 20*time.Second, "ovs-vsctl", full...)
}

func TestCompatVsctlWaitsForDaemon(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "init")

		// Nobody applies the change: ovs-vsctl must block until its
		// timeout. This shows the wait below is real.
		start := time.Now()
		r := vsctlWait(t, sock, "1", "add-br", "br-stuck")
		if r.code == 0 {
			t.Fatalf("ovs-vsctl without a daemon returned 0 after %v", time.Since(start))
		}
		if !strings.Contains(r.stderr, "signal 14") {
			t.Errorf("stderr %q, want death by SIGALRM (--timeout)", r.stderr)
		}
		// The transaction itself was committed before the wait.
		if got := mustVsctl(t, sock, "get", "Open_vSwitch", ".", "next_cfg", "cur_cfg"); got != "1\n0\n" {
			t.Errorf("next_cfg, cur_cfg = %q, want 1 and 0", got)
		}

		fakeDaemon(t, sock)
		for i, args := range [][]string{
			{"add-br", "br0"},
			{"add-port", "br0", "p1", "--", "set", "Port", "p1", "tag=10"},
			{"set", "Bridge", "br0", "external_ids:k=v"},
			{"del-br", "br-stuck"},
		} {
			r := vsctlWait(t, sock, "5", args...)
			if r.code != 0 {
				t.Fatalf("ovs-vsctl %s with a daemon: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
			}
			want := strings.Repeat(string(rune('2'+i)), 1)
			if got := mustVsctl(t, sock, "get", "Open_vSwitch", ".", "next_cfg", "cur_cfg"); got != want+"\n"+want+"\n" {
				t.Errorf("after %v: next_cfg, cur_cfg = %q, want %s twice", args, got, want)
			}
		}
		if got := mustVsctl(t, sock, "list-br"); got != "br0\n" {
			t.Errorf("list-br = %q", got)
		}
	})
}

// TestCompatVsctlWaitUntil: `ovs-vsctl wait-until` blocks on a monitor
// until another client creates the row it waits for.
func TestCompatVsctlWaitUntil(t *testing.T) {
	forEachServer(t, func(t *testing.T, sock string) {
		mustVsctl(t, sock, "init")
		done := make(chan runResult, 1)
		go func() {
			done <- vsctlWait(t, sock, "10", "--no-wait", "wait-until", "Bridge", "brW", "external_ids:ready=yes")
		}()
		select {
		case r := <-done:
			t.Fatalf("wait-until returned before the row existed: exit %d %s", r.code, r.stderr)
		case <-time.After(300 * time.Millisecond):
		}
		mustVsctl(t, sock, "add-br", "brW")
		select {
		case r := <-done:
			t.Fatalf("wait-until returned before external_ids:ready=yes: exit %d %s", r.code, r.stderr)
		case <-time.After(300 * time.Millisecond):
		}
		mustVsctl(t, sock, "set", "Bridge", "brW", "external_ids:ready=yes")
		select {
		case r := <-done:
			if r.code != 0 {
				t.Errorf("wait-until: exit %d: %s", r.code, r.stderr)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("wait-until still blocked after the row matched")
		}
	})
}
