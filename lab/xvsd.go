package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Xvsd is an xvsd process running inside a lab namespace, with its
// database, OVSDB socket, management socket and log under Dir. It is driven
// with the real ovs-vsctl and ovs-appctl (Vsctl, Appctl).
type Xvsd struct {
	NS   *NS
	Bin  string
	Dir  string
	DB   string // database file
	Sock string // OVSDB unix socket
	Ctl  string // unixctl socket
	Log  string // log file
	cmd  *exec.Cmd
	done chan error
}

// StartXvsd starts bin (an xvsd binary) in ns with its files in dir (created
// if needed; an existing database is reused, which is how a restart keeps
// the configuration) and waits until ovs-vsctl can connect.
func StartXvsd(ns *NS, bin, dir string, extraArgs ...string) (*Xvsd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	x := &Xvsd{NS: ns, Bin: bin, Dir: dir,
		DB: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock"),
		Ctl: filepath.Join(dir, "xvsd.ctl"), Log: filepath.Join(dir, "xvsd.log")}
	return x, x.Start(extraArgs...)
}

// Start (re)starts the process with the same files.
func (x *Xvsd) Start(extraArgs ...string) error {
	args := []string{"--db", x.DB, "--remote", "punix:" + x.Sock, "--unixctl", x.Ctl,
		"--log-file", x.Log, "--pidfile", filepath.Join(x.Dir, "xvsd.pid")}
	args = append(args, extraArgs...)
	var cmd *exec.Cmd
	if x.NS == nil || x.NS.Name == "" {
		cmd = exec.Command(x.Bin, args...)
	} else {
		cmd = exec.Command("ip", append([]string{"netns", "exec", x.NS.Name, x.Bin}, args...)...)
	}
	out, err := os.OpenFile(filepath.Join(x.Dir, "xvsd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", x.Bin, err)
	}
	x.cmd = cmd
	x.done = make(chan error, 1)
	go func() { x.done <- cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-x.done:
			x.done <- err
			return fmt.Errorf("xvsd exited during start-up (%v): %s", err, x.tail())
		default:
		}
		if c, err := net.Dial("unix", x.Sock); err == nil {
			c.Close()
			if _, err := os.Stat(x.Ctl); err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	x.Kill9()
	return fmt.Errorf("xvsd did not come up within 15 s: %s", x.tail())
}

func (x *Xvsd) tail() string {
	b, _ := os.ReadFile(filepath.Join(x.Dir, "xvsd.out"))
	l, _ := os.ReadFile(x.Log)
	s := string(b) + string(l)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// Vsctl runs the real ovs-vsctl against this daemon (waiting for the
// datapath to apply the change, as without --no-wait).
func (x *Xvsd) Vsctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := append([]string{"--db=unix:" + x.Sock, "--timeout=20"}, args...)
	out, err := exec.CommandContext(ctx, "ovs-vsctl", a...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ovs-vsctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Appctl runs the real ovs-appctl against the daemon's management socket.
func (x *Xvsd) Appctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := append([]string{"-t", x.Ctl}, args...)
	out, err := exec.CommandContext(ctx, "ovs-appctl", a...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ovs-appctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Stop sends SIGTERM and waits for a clean exit.
func (x *Xvsd) Stop() error {
	if x.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-x.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-x.done:
		x.cmd = nil
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		return nil
	case <-time.After(10 * time.Second):
		x.Kill9()
		return errors.New("xvsd did not stop within 10 s of SIGTERM; killed")
	}
}

// Kill9 kills the process (and ip-netns-exec wrapper) with SIGKILL.
func (x *Xvsd) Kill9() {
	if x.cmd == nil {
		return
	}
	_ = syscall.Kill(-x.cmd.Process.Pid, syscall.SIGKILL)
	<-x.done
	x.cmd = nil
}

// Running reports whether the process is alive.
func (x *Xvsd) Running() bool {
	if x.cmd == nil {
		return false
	}
	select {
	case err := <-x.done:
		x.done <- err
		return false
	default:
		return true
	}
}

// RunWithXvsd is the TestMain of packages whose tests run xvsd: it builds
// the daemon once (`go build xvs/cmd/xvsd`, or takes $XVSD_BIN, a
// prebuilt binary to bisect or compare builds), stores the path or the
// build error through bin and buildErr, runs the tests and exits. Nothing
// is built where labs cannot run (the tests then skip or fail as Require
// says).
func RunWithXvsd(m interface{ Run() int }, bin *string, buildErr *error) {
	dir, err := os.MkdirTemp("", "xvs-xvsd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(2)
	}
	*bin = filepath.Join(dir, "xvsd")
	if b := os.Getenv("XVSD_BIN"); b != "" {
		*bin = b
	} else if ok, _ := Available(); ok {
		if out, err := exec.Command("go", "build", "-o", *bin, "xvs/cmd/xvsd").CombinedOutput(); err != nil {
			*buildErr = fmt.Errorf("go build xvs/cmd/xvsd: %w: %s", err, out)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
