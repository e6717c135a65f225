package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A topology outlives the process that built it (`xvs lab up` exits and
// leaves xvsd running). Save writes what another process needs to attach
// (LoadTopo) and makes xvsd the recorded owner of the lab prefix, so
// CleanupStale keeps the lab exactly as long as its daemon lives.

// Save writes t as JSON to path and records the xvsd process as the owner
// of the lab prefix.
func (t *Topo) Save(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: save topology: %w", err)
	}
	if pid, ok := t.XvsdPid(); ok && checkName(t.Prefix) == nil {
		if err := os.WriteFile(filepath.Join(stateDir, t.Prefix), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("lab: record owner: %w", err)
		}
	}
	return nil
}

// LoadTopo reads a topology saved by Save. Its Xvsd can run ovs-vsctl and
// ovs-appctl (and Start a new daemon) but Stop and Kill9 do nothing: use
// Teardown. Namespaces are opened on first use.
func LoadTopo(path string) (*Topo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	t := &Topo{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", path, err)
	}
	if checkName(t.Prefix) != nil || t.Dir == "" {
		return nil, fmt.Errorf("lab: %s: not a topology record", path)
	}
	t.Xvsd = xvsdAt(nil, "", t.Dir)
	if t.NodeNS != "" {
		if ns, err := t.NS(t.NodeNS); err == nil {
			t.Xvsd.NS = ns
		}
	}
	return t, nil
}

// xvsdAt describes (without starting) an xvsd with its files in dir, laid
// out like StartXvsd does.
func xvsdAt(ns *NS, bin, dir string) *Xvsd {
	return &Xvsd{NS: ns, Bin: bin, Dir: dir,
		DB: filepath.Join(dir, "conf.db"), Sock: filepath.Join(dir, "db.sock"),
		Ctl: filepath.Join(dir, "xvsd.ctl"), Log: filepath.Join(dir, "xvsd.log")}
}

// XvsdPid returns the pid of the topology's xvsd and whether it is alive:
// the process this Topo started, or the one named by the pidfile in Dir
// when that process is an xvsd.
func (t *Topo) XvsdPid() (int, bool) {
	if t.Xvsd != nil && t.Xvsd.cmd != nil {
		return t.Xvsd.cmd.Process.Pid, t.Xvsd.Running()
	}
	return pidfileXvsd(filepath.Join(t.Dir, "xvsd.pid"))
}

// pidfileXvsd reads a pidfile and reports whether that pid is a live xvsd
// (so a recycled pid is never signalled).
func pidfileXvsd(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return pid, false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	if !strings.Contains(filepath.Base(argv0), "xvsd") {
		return pid, false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		// Field 3, after the parenthesised command name, is the state.
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
			return pid, false
		}
	}
	return pid, true
}

// Release closes the namespace handles of t and leaves everything running,
// for a process that built a topology to hand it over (Save) and exit.
func (t *Topo) Release() {
	for _, ns := range t.spaces {
		ns.Close()
	}
	t.spaces = nil
}

// Close releases the topology: a topology built by this process has its
// xvsd stopped and its lab removed; a loaded one only closes its handles
// (see Teardown).
func (t *Topo) Close() error {
	var errs []error
	if t.Xvsd != nil && t.Xvsd.cmd != nil {
		errs = append(errs, t.Xvsd.Stop())
	}
	for _, ns := range t.spaces {
		ns.Close()
	}
	t.spaces = nil
	if t.Lab != nil {
		errs = append(errs, t.Lab.Close())
	}
	return errors.Join(errs...)
}

// Teardown removes a lab built by a process that may be gone: it stops the
// xvsd whose pidfile is in xvsdDir (SIGTERM, then SIGKILL after 10 s),
// kills any process still running inside one of the lab's namespaces
// (iperf3 servers left by an interrupted test, an xvsd without pidfile),
// and runs Cleanup(prefix). It is idempotent.
func Teardown(prefix, xvsdDir string) error {
	if err := checkName(prefix); err != nil {
		return err
	}
	var errs []error
	if xvsdDir != "" {
		pidfile := filepath.Join(xvsdDir, "xvsd.pid")
		if pid, ok := pidfileXvsd(pidfile); ok {
			_ = unix.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, alive := pidfileXvsd(pidfile); !alive {
					break
				}
				if time.Now().After(deadline) {
					_ = unix.Kill(pid, syscall.SIGKILL)
					errs = append(errs, fmt.Errorf("lab: xvsd (pid %d) ignored SIGTERM for 10 s; killed", pid))
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	if err := killInNamespaces(prefix); err != nil {
		errs = append(errs, err)
	}
	if err := Cleanup(prefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killInNamespaces SIGKILLs every process whose network namespace is one
// of the named namespaces /run/netns/prefix*: such processes were started
// in the lab and would otherwise keep it alive after its mounts are gone.
func killInNamespaces(prefix string) error {
	type nsID struct{ dev, ino uint64 }
	ids := map[nsID]string{}
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(netnsDir, e.Name()), &st) == nil {
			ids[nsID{st.Dev, st.Ino}] = e.Name()
		}
	}
	if len(ids) == 0 {
		return nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	self := os.Getpid()
	var killed []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
			continue
		}
		if _, ok := ids[nsID{st.Dev, st.Ino}]; ok {
			if unix.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
	}
	// Give the kernel a moment to reap them, so their sockets and XDP
	// programs are gone before the namespaces are.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range killed {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
