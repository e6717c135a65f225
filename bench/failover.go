package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Switch is a daemon driven by the real ovs-vsctl and ovs-appctl: xvsd
// (lab.Xvsd) or Open vSwitch itself (OVSProc). Failover measurements and
// the bond tests configure both through it, with identical commands.
type Switch interface {
	Vsctl(args ...string) (string, error)
	Appctl(args ...string) (string, error)
}

// OVSProc is Open vSwitch 3.1 (ovsdb-server and ovs-vswitchd, as
// installed) running inside a network namespace, with its database,
// sockets, pidfiles and logs in a private directory: it never touches the
// system's /etc/openvswitch or /var/run/openvswitch. Both processes run in
// their own process group so that Stop ends exactly them.
type OVSProc struct {
	NS        string // namespace name ("" = the caller's)
	Dir       string
	env       []string
	sock, ctl string
	procs     []*exec.Cmd
	done      []chan struct{}
}

// StartOVS creates a database in dir and starts ovsdb-server and
// ovs-vswitchd in namespace ns. otherConfig entries ("key=value") are set
// in Open_vSwitch other_config before ovs-vswitchd starts (e.g.
// "pmd-cpu-mask=0x2").
func StartOVS(ns, dir string, otherConfig ...string) (o *OVSProc, err error) {
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		return nil, fmt.Errorf("bench: Open vSwitch not installed: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	o = &OVSProc{NS: ns, Dir: dir,
		env:  append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir),
		sock: filepath.Join(dir, "db.sock"), ctl: filepath.Join(dir, "ovs-vswitchd.ctl")}
	defer func() {
		if err != nil {
			o.Stop()
		}
	}()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command("ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: ovsdb-tool create: %w: %s", err, out)
	}
	if err := o.start("ovsdb-server", db, "--remote=punix:"+o.sock,
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(dir, "ovsdb-server.log")); err != nil {
		return nil, err
	}
	if err := waitFile(o.sock, 10*time.Second); err != nil {
		return nil, err
	}
	if _, err := o.Vsctl("--no-wait", "init"); err != nil {
		return nil, err
	}
	for _, kv := range otherConfig {
		if _, err := o.Vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:"+kv); err != nil {
			return nil, err
		}
	}
	if err := o.start("ovs-vswitchd", "unix:"+o.sock,
		"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
		"--unixctl="+o.ctl,
		"--log-file="+filepath.Join(dir, "ovs-vswitchd.log")); err != nil {
		return nil, err
	}
	if err := waitFile(o.ctl, 10*time.Second); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *OVSProc) start(args ...string) error {
	var c *exec.Cmd
	if o.NS == "" {
		c = exec.Command(args[0], args[1:]...)
	} else {
		c = exec.Command("ip", append([]string{"netns", "exec", o.NS}, args...)...)
	}
	c.Env = o.env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("bench: start %s: %w", args[0], err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	o.procs, o.done = append(o.procs, c), append(o.done, done)
	return nil
}

func (o *OVSProc) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = o.env
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Vsctl runs ovs-vsctl against this instance's database.
func (o *OVSProc) Vsctl(args ...string) (string, error) {
	return o.run("ovs-vsctl", append([]string{"--db=unix:" + o.sock, "--timeout=20"}, args...)...)
}

// Appctl runs ovs-appctl against this instance's ovs-vswitchd.
func (o *OVSProc) Appctl(args ...string) (string, error) {
	return o.run("ovs-appctl", append([]string{"-t", o.ctl}, args...)...)
}

// Log returns ovs-vswitchd's log.
func (o *OVSProc) Log() string {
	b, _ := os.ReadFile(filepath.Join(o.Dir, "ovs-vswitchd.log"))
	return string(b)
}

// Stop deletes every bridge (which detaches OVS's XDP programs from the
// interfaces), then ends ovs-vswitchd and ovsdb-server: SIGTERM to their
// process groups, SIGKILL after 5 s. It is idempotent.
func (o *OVSProc) Stop() error {
	var errs []error
	if len(o.procs) == 2 {
		if out, err := o.Vsctl("list-br"); err == nil {
			for _, br := range strings.Fields(out) {
				if _, err := o.Vsctl("--if-exists", "del-br", br); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for i := len(o.procs) - 1; i >= 0; i-- {
		c := o.procs[i]
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case <-o.done[i]:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-o.done[i]
			errs = append(errs, errors.New("bench: "+filepath.Base(c.Path)+" ignored SIGTERM; killed"))
		}
	}
	o.procs, o.done = nil, nil
	return errors.Join(errs...)
}
