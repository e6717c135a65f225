package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run the daemon in-process on sockets in a temp dir and drive
// it with the real ovs-vsctl and ovs-appctl. They need no root: only patch
// ports, which have no device.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (CI must install it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

type running struct {
	d      *Daemon
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, metrics string) *running {
	t.Helper()
	needTool(t, "ovs-vsctl")
	needTool(t, "ovs-appctl")
	dir := t.TempDir()
	cfg := Config{
		DB:      filepath.Join(dir, "conf.db"),
		Remotes: []string{"punix:" + filepath.Join(dir, "db.sock")},
		Unixctl: filepath.Join(dir, "xvsd.ctl"),
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics,
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(cfg.Unixctl); err == nil {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("daemon did not start")
	return nil
}

func (r *running) vsctl(t *testing.T, args ...string) string {
	t.Helper()
	a := append([]string{"--db=unix:" + filepath.Join(r.dir, "db.sock"), "--timeout=10"}, args...)
	out, err := exec.Command("ovs-vsctl", a...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-vsctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (r *running) appctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	a := append([]string{"-t", filepath.Join(r.dir, "xvsd.ctl")}, args...)
	out, err := exec.Command("ovs-appctl", a...).CombinedOutput()
	return string(out), err
}

func TestDaemonPatchBridgesAndAppctl(t *testing.T) {
	r := startDaemon(t, "127.0.0.1:0")
	// Without --no-wait: returns only once the daemon applied it (cur_cfg).
	// The bridges' local ports are made unconnected patch ports so that no
	// TAP device is needed (no root).
	r.vsctl(t, "add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev",
		"--", "set", "interface", "br-ex", "type=patch", "options:peer=nowhere-ex")
	r.vsctl(t, "add-br", "br-phy", "--", "set", "interface", "br-phy", "type=patch", "options:peer=nowhere-phy")
	r.vsctl(t, "add-port", "br-ex", "patch-ex-to-phy", "--", "set", "interface", "patch-ex-to-phy", "type=patch", "options:peer=patch-phy-to-ex")
	r.vsctl(t, "add-port", "br-phy", "patch-phy-to-ex", "--", "set", "interface", "patch-phy-to-ex", "type=patch", "options:peer=patch-ex-to-phy")
	if got := strings.TrimSpace(r.vsctl(t, "get", "interface", "patch-ex-to-phy", "ofport")); got != "1" && got != "2" {
		t.Fatalf("patch ofport %q, want 1", got)
	}
	if got := r.vsctl(t, "get", "open_vswitch", ".", "ovs_version"); !strings.Contains(got, OVSVersion) {
		t.Fatalf("ovs_version %q", got)
	}
	out, err := r.appctl(t, "dpif/show")
	if err != nil || !strings.Contains(out, "patch-ex-to-phy 1/none: (patch: peer=patch-phy-to-ex)") {
		t.Fatalf("dpif/show: %v\n%s", err, out)
	}
	// OpenFlow programming and tracing across the patch.
	if out, err := r.appctl(t, "ofctl/add-flow", "br-phy", "priority=10,in_port=patch-phy-to-ex,actions=drop"); err != nil {
		t.Fatalf("add-flow: %v %s", err, out)
	}
	out, err = r.appctl(t, "ofctl/dump-flows", "br-phy")
	if err != nil || !strings.Contains(out, "priority=10,in_port=") || !strings.Contains(out, "priority=0 actions=NORMAL") {
		t.Fatalf("dump-flows: %v\n%s", err, out)
	}
	out, err = r.appctl(t, "ofproto/trace", "br-ex", "in_port=patch-ex-to-phy,dl_dst=ff:ff:ff:ff:ff:ff")
	if err != nil || !strings.Contains(out, "bridge br-ex") {
		t.Fatalf("trace: %v\n%s", err, out)
	}
	// Errors come back as ovs-appctl errors (exit 2).
	if out, err := r.appctl(t, "fdb/show", "nosuchbr"); err == nil || !strings.Contains(out, "nosuchbr") {
		t.Fatalf("fdb/show of a missing bridge: %v %s", err, out)
	}
	if out, err := r.appctl(t, "ofctl/add-flow", "br-ex", "in_port=1,actions=frobnicate"); err == nil {
		t.Fatalf("bad flow accepted: %s", out)
	}
	for _, cmd := range []string{"coverage/show", "memory/show", "bond/list", "version", "dpctl/dump-flows"} {
		if out, err := r.appctl(t, cmd); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, out)
		}
	}
	// An unsupported interface type is reported in Interface:error, not a crash.
	r.vsctl(t, "add-port", "br-ex", "weird", "--", "set", "interface", "weird", "type=vxlan")
	if got := r.vsctl(t, "get", "interface", "weird", "error"); !strings.Contains(got, "not supported") {
		t.Fatalf("error column %q", got)
	}
	// Metrics.
	resp, err := http.Get("http://" + r.d.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"xvs_megaflows", "xvs_cache_lookups_total{level=\"emc\"}", "xvs_mac_table_entries{bridge=\"br-ex\"}", "xvs_ovsdb_commits_total", "xvs_ovsdb_clients"} {
		if !strings.Contains(string(body), m) {
			t.Fatalf("metrics lack %s:\n%s", m, body)
		}
	}
	// del-br removes it from the datapath.
	r.vsctl(t, "del-br", "br-phy")
	out, _ = r.appctl(t, "dpif/show")
	if strings.Contains(out, "br-phy") {
		t.Fatalf("br-phy still in the datapath:\n%s", out)
	}
}

func TestDaemonRestoresFromDatabase(t *testing.T) {
	r := startDaemon(t, "")
	r.vsctl(t, "add-br", "br0", "--", "set", "interface", "br0", "type=patch", "options:peer=nowhere")
	r.vsctl(t, "add-port", "br0", "pa", "--", "set", "interface", "pa", "type=patch", "options:peer=pb")
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
	// A new daemon on the same database rebuilds the datapath.
	cfg := r.d.cfg
	d2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(d2.Datapath().Ifaces()) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ifs := d2.Datapath().Ifaces()
	if len(ifs) != 2 || ifs[0].Name != "pa" || ifs[0].Bridge != "br0" || ifs[1].OfPort != 65534 {
		t.Fatalf("restored datapath: %+v", ifs)
	}
}
