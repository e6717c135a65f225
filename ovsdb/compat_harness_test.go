package ovsdb_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A target is one OVSDB server implementation the compatibility suite
// runs against. start brings up a fresh, empty Open_vSwitch database;
// the server is torn down by tb.Cleanup.
type target struct {
	name  string
	start func(tb testing.TB) *instance
}

// An instance is one running server.
type instance struct {
	sock string // unix socket path (remote "unix:"+sock)
	tcp  string // remote "tcp:127.0.0.1:PORT"

	// restart stops the server as abruptly as the implementation allows
	// (kill -9 for a process) and starts it again on the same database
	// file and remotes.
	restart func(tb testing.TB)
}

// targets lists the servers every compatibility test runs against: ours
// and the reference, so each expectation is proven on ovsdb-server 3.1.
var targets = []target{
	{"xvs", startXVS},
	{"ovsdb-server", startReference},
}

// forEachServer runs f as one subtest per target, each on its own fresh
// database reached through a unix socket.
func forEachServer(t *testing.T, f func(t *testing.T, sock string)) {
	t.Helper()
	forEachInstance(t, func(t *testing.T, in *instance) { f(t, in.sock) })
}

// forEachInstance is forEachServer for tests that need TCP or a restart.
func forEachInstance(t *testing.T, f func(t *testing.T, in *instance)) {
	t.Helper()
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			f(t, tg.start(t))
		})
	}
}

// freeTCPPort returns a loopback port that was free a moment ago.
func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// requireTool returns the path of a binary (or file) the suite needs.
// Without CI set a missing tool skips the test; under CI it fails,
// because a skip there would hide that nothing was checked.
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	var path string
	var err error
	if filepath.IsAbs(name) {
		path = name
		_, err = os.Stat(name)
	} else {
		path, err = exec.LookPath(name)
	}
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is required under CI: %v", name, err)
	}
	tb.Skipf("%s not available (install openvswitch-switch): %v", name, err)
	return ""
}

// shortTempDir is a t.TempDir substitute whose path stays short enough
// for a unix socket (sun_path is 108 bytes; subtest names make
// t.TempDir paths long).
func shortTempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "xvsdb-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startReference runs the real ovsdb-server on a database created by
// ovsdb-tool from our schema file.
func startReference(tb testing.TB) *instance {
	tb.Helper()
	tool := requireTool(tb, "ovsdb-tool")
	server := requireTool(tb, "ovsdb-server")
	dir := shortTempDir(tb)
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command(tool, "create", db, ourSchemaPath).CombinedOutput(); err != nil {
		tb.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	port := freeTCPPort(tb)
	in := &instance{
		sock: filepath.Join(dir, "db.sock"),
		tcp:  fmt.Sprintf("tcp:127.0.0.1:%d", port),
	}
	var cmd *exec.Cmd
	start := func(tb testing.TB) {
		cmd = exec.Command(server, db,
			"--remote=punix:"+in.sock,
			fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", port),
			"--unixctl="+filepath.Join(dir, "ctl"),
			"--no-chdir",
			"--log-file="+filepath.Join(dir, "ovsdb-server.log"),
			"-vconsole:off", "-vsyslog:off")
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start ovsdb-server: %v", err)
		}
		if err := waitForSocket(in.sock, 10*time.Second); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "ovsdb-server.log"))
			tb.Fatalf("ovsdb-server did not come up: %v\n%s", err, log)
		}
		if err := waitForTCP(port, 10*time.Second); err != nil {
			tb.Fatalf("ovsdb-server TCP remote: %v", err)
		}
	}
	stop := func() {
		cmd.Process.Kill() // SIGKILL: no chance to flush anything
		cmd.Wait()
	}
	start(tb)
	tb.Cleanup(func() { stop() })
	in.restart = func(tb testing.TB) {
		stop()
		start(tb)
	}
	return in
}

func waitForTCP(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitForSocket(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runResult is what a client process left behind.
type runResult struct {
	stdout, stderr string
	code           int // exit status; -1 if killed by a signal
}

// run executes a client binary with a deadline and never fails the test
// itself: exit codes and stderr are part of what is compared. A process
// that cannot start or is killed reports code -1. Safe to call from any
// goroutine.
func run(tb testing.TB, timeout time.Duration, name string, args ...string) runResult {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+os.TempDir(), "OVS_LOGDIR="+os.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return runResult{code: -1, stderr: err.Error()}
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := runResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += err.Error()
	}
	return r
}

// vsctlArgs is the ovs-vsctl command line the suite uses: --no-wait,
// because nothing plays ovs-vswitchd unless a test starts fakeDaemon.
func vsctlArgs(sock string, args ...string) []string {
	return append([]string{"--db=" + remote(sock), "--no-wait", "--timeout=5", "-vsyslog:off"}, args...)
}

// vsctl runs the real ovs-vsctl against sock (a unix socket path or a
// tcp: remote). It stops the test if ovs-vsctl got no answer, so call it
// from the test goroutine only; other goroutines use run with vsctlArgs.
func vsctl(tb testing.TB, sock string, args ...string) runResult {
	tb.Helper()
	r := run(tb, 10*time.Second, requireTool(tb, "ovs-vsctl"), vsctlArgs(sock, args...)...)
	if strings.Contains(r.stderr, "(Alarm clock)") || r.code == -1 {
		// A server that does not answer would make every later step
		// wait as long: stop here.
		tb.Fatalf("ovs-vsctl %s: no answer within 5 s: %s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// remote turns a unix socket path into an OVSDB remote; a remote such
// as "tcp:127.0.0.1:6640" is returned unchanged.
func remote(sockOrRemote string) string {
	if strings.HasPrefix(sockOrRemote, "tcp:") || strings.HasPrefix(sockOrRemote, "unix:") {
		return sockOrRemote
	}
	return "unix:" + sockOrRemote
}

// mustVsctl is vsctl for steps that must succeed on every server.
func mustVsctl(tb testing.TB, sock string, args ...string) string {
	tb.Helper()
	r := vsctl(tb, sock, args...)
	if r.code != 0 {
		tb.Fatalf("ovs-vsctl %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// normUUIDs replaces each distinct UUID by <uuidN>, numbered in order of
// first appearance, so two servers' outputs compare equal when they
// refer to the same rows in the same places.
func normUUIDs(s string) string {
	seen := map[string]string{}
	return uuidRE.ReplaceAllStringFunc(s, func(u string) string {
		if r, ok := seen[u]; ok {
			return r
		}
		r := fmt.Sprintf("<uuid%d>", len(seen))
		seen[u] = r
		return r
	})
}

// crossCheck records a per-server transcript and, once both servers have
// produced one, reports where they differ.
type crossCheck map[string]string

func (c crossCheck) compare(t *testing.T) {
	t.Helper()
	x, okx := c["xvs"]
	r, okr := c["ovsdb-server"]
	if !okx || !okr {
		return
	}
	if x != r {
		t.Errorf("xvs and ovsdb-server differ:\n%s", lineDiff(r, x))
	}
}

// lineDiff lists lines that differ between want (reference) and got.
func lineDiff(want, got string) string {
	wl := strings.Split(want, "\n")
	gl := strings.Split(got, "\n")
	var b strings.Builder
	n := max(len(wl), len(gl))
	shown := 0
	for i := 0; i < n && shown < 40; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			b.WriteString("  ovsdb-server: " + w + "\n  xvs:          " + g + "\n")
			shown++
		}
	}
	return b.String()
}
