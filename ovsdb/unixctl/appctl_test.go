package unixctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests drive the server with the real ovs-appctl. Without it they
// skip, except under CI=true, where a missing binary is a failure: a skip
// there would hide a compatibility break.

func lookOVS(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (install openvswitch-switch/openvswitch-common): %v", name, err)
		}
		t.Skipf("%s not installed; these tests run the real OVS tool to check wire compatibility", name)
	}
	return p
}

// startServer listens on a fresh socket in a temporary directory.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "xvsd.ctl")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return sock
}

type result struct {
	stdout, stderr string
	code           int
}

func runAppctl(t *testing.T, sock string, args ...string) result {
	t.Helper()
	bin := lookOVS(t, "ovs-appctl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--timeout=10", "-t", sock}, args...)...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+filepath.Dir(sock))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ovs-appctl %q: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// failed is what ovs-appctl prints when the server returns error text msg.
func failed(sock, msg string) result {
	return result{"", msg + "\novs-appctl: " + sock + ": server returned an error\n", 2}
}

func check(t *testing.T, sock string, want result, args ...string) {
	t.Helper()
	if got := runAppctl(t, sock, args...); got != want {
		t.Errorf("ovs-appctl %q:\n got %#v\nwant %#v", args, got, want)
	}
}

func newTestServer() *Server {
	s := New()
	s.SetVersion("xvsd (xvs) 0.1.0")
	s.Register("xvs/echo", "[ARG]...", 0, 4, func(args []string) (string, error) {
		return strings.Join(args, "|"), nil
	})
	s.Register("xvs/newline", "", 0, 0, func([]string) (string, error) {
		return "one\ntwo\n", nil
	})
	s.Register("xvs/empty", "", 0, 0, func([]string) (string, error) {
		return "", nil
	})
	s.Register("xvs/fail", "WHY", 1, 1, func(args []string) (string, error) {
		return "ignored", fmt.Errorf("no such thing %q", args[0])
	})
	s.Register("xvs/panic", "", 0, 0, func([]string) (string, error) {
		panic("handler bug")
	})
	s.Register("bond/show", "[port]", 0, 1, func(args []string) (string, error) {
		return "---- bond0 ----", nil
	})
	s.Register("ovsdb-server/add-db", "DB", 1, 1, func([]string) (string, error) {
		return "", nil
	})
	return s
}

func TestAppctl(t *testing.T) {
	lookOVS(t, "ovs-appctl")
	sock := startServer(t, quietServer())

	tests := []struct {
		name string
		args []string
		want result
	}{
		{"no args", []string{"xvs/echo"}, result{"", "", 0}},
		{"args", []string{"xvs/echo", "a", "b c", "ü", `"q"\`}, result{"a|b c|ü|\"q\"\\\n", "", 0}},
		{"empty arg", []string{"xvs/echo", ""}, result{"", "", 0}},
		{"trailing newline kept once", []string{"xvs/newline"}, result{"one\ntwo\n", "", 0}},
		{"empty output", []string{"xvs/empty"}, result{"", "", 0}},
		{"handler error", []string{"xvs/fail", "x"}, failed(sock, `no such thing "x"`)},
		{"handler panic", []string{"xvs/panic"}, failed(sock, `"xvs/panic" command failed: internal error`)},
		{"unknown", []string{"foo"}, failed(sock, `"foo" is not a valid command (use "list-commands" to see a list of valid commands)`)},
		{"unknown with args", []string{"foo", "a", "b"}, failed(sock, `"foo" is not a valid command (use "list-commands" to see a list of valid commands)`)},
		{"too many", []string{"bond/show", "a", "b"}, failed(sock, `"bond/show" command takes at most 1 arguments`)},
		{"too many, none allowed", []string{"version", "x"}, failed(sock, `"version" command takes at most 0 arguments`)},
		{"too few", []string{"ovsdb-server/add-db"}, failed(sock, `"ovsdb-server/add-db" command requires at least 1 arguments`)},
		{"version", []string{"version"}, result{"xvsd (xvs) 0.1.0\n", "", 0}},
		{"exit without OnExit", []string{"exit"}, failed(sock, `"exit" is not supported by this daemon`)},
		{"list-commands", []string{"list-commands"}, result{`The available commands are:
  bond/show               [port]
  exit                    
  list-commands           
  ovsdb-server/add-db     DB
  version                 
  xvs/echo                [ARG]...
  xvs/empty               
  xvs/fail                WHY
  xvs/newline             
  xvs/panic               
`, "", 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { check(t, sock, tc.want, tc.args...) })
	}
}

func TestAppctlExit(t *testing.T) {
	lookOVS(t, "ovs-appctl")
	s := New()
	exited := make(chan struct{})
	s.OnExit(func() {
		// The exit function may close the server it was called from.
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		close(exited)
	})
	sock := startServer(t, s)
	check(t, sock, failed(sock, `"exit" command takes at most 0 arguments`), "exit", "--cleanup")
	check(t, sock, result{"", "", 0}, "exit")
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("OnExit function not called")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after Close: %v", err)
	}
}

// TestAppctlConcurrent runs many ovs-appctl processes at once against a
// handler that waits until all of them have arrived: it passes only if
// handlers of different connections run concurrently.
func TestAppctlConcurrent(t *testing.T) {
	lookOVS(t, "ovs-appctl")
	const n = 16
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	s := New()
	s.Register("xvs/barrier", "ID", 1, 1, func(args []string) (string, error) {
		arrived.Done()
		select {
		case <-all:
			return "ok " + args[0], nil
		case <-time.After(15 * time.Second):
			return "", errors.New("handlers did not run concurrently")
		}
	})
	sock := startServer(t, s)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprint(i)
			check(t, sock, result{"ok " + id + "\n", "", 0}, "xvs/barrier", id)
		})
	}
	wg.Wait()
}

// TestAppctlLongPath checks a socket path longer than sun_path allows,
// which OVS reaches through /proc/self/fd on both sides.
func TestAppctlLongPath(t *testing.T) {
	lookOVS(t, "ovs-appctl")
	dir := t.TempDir()
	for len(dir) < 120 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := New()
	s.SetVersion("long")
	sock := filepath.Join(dir, "xvsd.ctl")
	if err := s.Listen(sock); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(t, sock, result{"long\n", "", 0}, "version")
}
