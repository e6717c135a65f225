package bench

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

	"xvs/xdp"
)

// Bridge is the Linux bridge DUT (STP off).
func Bridge(ctx context.Context, ifA, ifB string) error {
	const br = "xvsbr0"
	ns := NetNS(ctx)
	if err := sh("ip", "-n", ns, "link", "add", br, "type", "bridge", "stp_state", "0"); err != nil {
		return err
	}
	defer sh("ip", "-n", ns, "link", "del", br)
	for _, ifn := range []string{ifA, ifB} {
		if err := sh("ip", "-n", ns, "link", "set", ifn, "master", br); err != nil {
			return err
		}
		defer sh("ip", "-n", ns, "link", "set", ifn, "nomaster")
	}
	if err := sh("ip", "-n", ns, "link", "set", br, "up"); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// XDPRedirect is the in-kernel DUT: an XDP program on ifA redirects every
// frame to ifB (native mode).
func XDPRedirect(ctx context.Context, ifA, ifB string) error {
	a, err := net.InterfaceByName(ifA)
	if err != nil {
		return err
	}
	b, err := net.InterfaceByName(ifB)
	if err != nil {
		return err
	}
	p, err := xdp.AttachRedirect(a.Index, b.Index, xdp.ModeNative)
	if err != nil {
		return err
	}
	defer p.Close()
	<-ctx.Done()
	return nil
}

// OVSConfig configures the Open vSwitch DUT.
type OVSConfig struct {
	XDPMode string // options:xdp-mode, default "native"
	PMDCPU  int    // pmd-cpu-mask bit (the DUT core, default 1)
	// Flows, when false, leaves the bridge on the NORMAL action; when true
	// it installs in_port=A,actions=output:B and the reverse.
	PortFlows bool
	// Log, if set, receives the tail of ovs-vswitchd.log when the run ends.
	Log func(string)
	// Bond makes the output side a balance-slb bond (see bond_dut.go);
	// the bridge then runs NORMAL.
	Bond bool
}

// OVS returns a DUT running Debian's ovsdb-server and ovs-vswitchd with
// private sockets and database in a temporary directory: a netdev
// (userspace) bridge with both veth ends as type=afxdp ports and the PMD
// thread pinned to PMDCPU.
func OVS(cfg OVSConfig) DUT {
	if cfg.XDPMode == "" {
		cfg.XDPMode = "native"
	}
	if cfg.PMDCPU == 0 {
		cfg.PMDCPU = 1
	}
	return func(ctx context.Context, ifA, ifB string) (err error) {
		ns := NetNS(ctx)
		dir, err := os.MkdirTemp("", "xvs-ovs-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env := append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir)
		db := filepath.Join(dir, "conf.db")
		sock := "unix:" + filepath.Join(dir, "db.sock")
		run := func(args ...string) error {
			c := exec.Command(args[0], args[1:]...)
			c.Env = env
			out, err := c.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		}
		vsctl := func(args ...string) error {
			return run(append([]string{"ovs-vsctl", "--db=" + sock, "--timeout=20"}, args...)...)
		}
		if err := run("ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
			return err
		}
		start := func(args ...string) (*exec.Cmd, error) {
			c := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
			c.Env = env
			c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			return c, c.Start()
		}
		stop := func(c *exec.Cmd) {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				c.Process.Kill()
				<-done
			}
		}
		dbs, err := start("ovsdb-server", db, "--remote=p"+sock,
			"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
			"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
			"--log-file="+filepath.Join(dir, "ovsdb-server.log"))
		if err != nil {
			return fmt.Errorf("start ovsdb-server: %w", err)
		}
		defer stop(dbs)
		if err := waitFile(filepath.Join(dir, "db.sock"), 10*time.Second); err != nil {
			return err
		}
		if err := vsctl("--no-wait", "init"); err != nil {
			return err
		}
		if err := vsctl("--no-wait", "set", "Open_vSwitch", ".",
			fmt.Sprintf("other_config:pmd-cpu-mask=%#x", 1<<cfg.PMDCPU)); err != nil {
			return err
		}
		vsd, err := start("ovs-vswitchd", sock,
			"--pidfile="+filepath.Join(dir, "ovs-vswitchd.pid"),
			"--unixctl="+filepath.Join(dir, "ovs-vswitchd.ctl"),
			"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))
		if err != nil {
			return fmt.Errorf("start ovs-vswitchd: %w", err)
		}
		defer func() {
			vsctl("--if-exists", "del-br", "br0") // detaches XDP from the veths
			stop(vsd)
			if cfg.Log != nil {
				b, _ := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.log"))
				cfg.Log(string(b))
			}
		}()
		if err := vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"); err != nil {
			return err
		}
		for _, ifn := range []string{ifA, ifB} {
			if cfg.Bond && ifn == ifB {
				dummy, cleanup, err := downMember(ns)
				if err != nil {
					return err
				}
				defer cleanup()
				if err := vsctl("add-bond", "br0", "bond0", ifB, dummy, "bond_mode=balance-slb",
					"other_config:bond-rebalance-interval=0",
					"--", "set", "interface", ifB, "type=afxdp", "options:xdp-mode="+cfg.XDPMode,
					"--", "set", "interface", dummy, "type=afxdp", "options:xdp-mode="+cfg.XDPMode); err != nil {
					return err
				}
				continue
			}
			if err := vsctl("add-port", "br0", ifn, "--", "set", "interface", ifn, "type=afxdp",
				"options:xdp-mode="+cfg.XDPMode); err != nil {
				return err
			}
		}
		if cfg.PortFlows {
			ofctl := func(args ...string) error {
				return run(append([]string{"ovs-ofctl"}, args...)...)
			}
			if err := ofctl("del-flows", "br0"); err != nil {
				return err
			}
			for _, f := range []string{"in_port=" + ifA + ",actions=output:" + ifB, "in_port=" + ifB + ",actions=output:" + ifA} {
				if err := ofctl("add-flow", "br0", f); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
		}
		return nil
	}
}

func waitFile(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("bench: timeout waiting for " + path)
}
