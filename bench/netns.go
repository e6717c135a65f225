package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topology is the three-namespace benchmark lab:
//
//	Gen ns: GenIf ==veth== InIf :DUT ns: OutIf ==veth== SinkIf :Sink ns
//
// Namespaces are named xvs-{gen,dut,snk}-<pid>; addresses come from
// 198.18.0.0/15. All veth ends have tx checksum offload off and threaded
// NAPI on, so that the harness can place each end's receive work on a
// chosen core (see Run).
type Topology struct {
	Gen, DUT, Sink               string // namespace names
	GenIf, InIf, OutIf, SinkIf   string // interface names
	GenMAC, SinkMAC              [6]byte
	GenIndex, InIndex, SinkIndex int
}

// Lab addresses (RFC 2544 benchmarking range).
var (
	GenIP  = [4]byte{198, 18, 0, 1}
	SinkIP = [4]byte{198, 18, 1, 2}
)

func sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsRun runs a command inside namespace ns (with its own /sys view).
func nsRun(ns string, args ...string) error {
	return sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// NewTopology creates the lab. Close removes it.
func NewTopology() (t *Topology, err error) {
	pid := os.Getpid() % 100000
	t = &Topology{
		Gen:  fmt.Sprintf("xvs-gen-%d", pid),
		DUT:  fmt.Sprintf("xvs-dut-%d", pid),
		Sink: fmt.Sprintf("xvs-snk-%d", pid),
		// Interface names carry the pid so NAPI threads are unambiguous.
		GenIf:  fmt.Sprintf("xg%d", pid),
		InIf:   fmt.Sprintf("xa%d", pid),
		OutIf:  fmt.Sprintf("xb%d", pid),
		SinkIf: fmt.Sprintf("xs%d", pid),
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for _, ns := range []string{t.Gen, t.DUT, t.Sink} {
		exec.Command("ip", "netns", "del", ns).Run() // stale
		if err := sh("ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		if err := sh("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	pairs := [][4]string{{t.Gen, t.GenIf, t.DUT, t.InIf}, {t.DUT, t.OutIf, t.Sink, t.SinkIf}}
	for _, p := range pairs {
		if err := sh("ip", "link", "add", p[1], "netns", p[0], "type", "veth", "peer", "name", p[3], "netns", p[2]); err != nil {
			return nil, err
		}
		for _, e := range [][2]string{{p[0], p[1]}, {p[2], p[3]}} {
			nsRun(e[0], "sysctl", "-qw", "net.ipv6.conf."+e[1]+".disable_ipv6=1")
			if err := nsRun(e[0], "ethtool", "-K", e[1], "tx", "off"); err != nil {
				return nil, err
			}
			if err := sh("ip", "-n", e[0], "link", "set", e[1], "up"); err != nil {
				return nil, err
			}
		}
	}
	if err := sh("ip", "-n", t.Gen, "addr", "add", "198.18.0.1/24", "dev", t.GenIf); err != nil {
		return nil, err
	}
	if err := sh("ip", "-n", t.Sink, "addr", "add", "198.18.1.2/24", "dev", t.SinkIf); err != nil {
		return nil, err
	}
	for _, e := range []struct {
		ns, ifn string
		mac     *[6]byte
		idx     *int
	}{{t.Gen, t.GenIf, &t.GenMAC, &t.GenIndex}, {t.Sink, t.SinkIf, &t.SinkMAC, &t.SinkIndex}, {t.DUT, t.InIf, nil, &t.InIndex}} {
		err := Do(e.ns, -1, func() error {
			ifi, err := net.InterfaceByName(e.ifn)
			if err != nil {
				return err
			}
			*e.idx = ifi.Index
			if e.mac != nil {
				copy(e.mac[:], ifi.HardwareAddr)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Static neighbour entries, in case anything in the namespaces routes.
	sh("ip", "-n", t.Gen, "neigh", "replace", "198.18.0.2", "lladdr", macString(t.SinkMAC), "dev", t.GenIf)
	return t, nil
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Close deletes the namespaces (and with them the veths).
func (t *Topology) Close() error {
	var errs []error
	for _, ns := range []string{t.Gen, t.DUT, t.Sink} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
			if err := sh("ip", "netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SetThreadedNAPI turns threaded NAPI on or off for ifname in ns.
func SetThreadedNAPI(ns, ifname string, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return nsRun(ns, "sh", "-c", fmt.Sprintf("echo %s > /sys/class/net/%s/threaded", v, ifname))
}

// PinNAPI pins every NAPI kernel thread of ifname ("napi/<ifname>-<id>")
// to cpu and returns how many it pinned. With fifo the threads also get
// SCHED_FIFO priority fifo (0 leaves the policy alone).
func PinNAPI(ifname string, cpu int, fifo uint32) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	prefix := "napi/" + ifname + "-"
	n := 0
	for _, e := range ents {
		pid := 0
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == 0 {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !strings.HasPrefix(string(comm), prefix) {
			continue
		}
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(pid, &set); err != nil {
			return n, fmt.Errorf("pin %s: %w", strings.TrimSpace(string(comm)), err)
		}
		// Same weight as the harness's own threads (see Do), far above
		// whatever else runs on the machine.
		unix.Setpriority(unix.PRIO_PROCESS, pid, BenchNice)
		if fifo > 0 {
			attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1 /* SCHED_FIFO */, Priority: fifo}
			if err := unix.SchedSetAttr(pid, &attr, 0); err != nil {
				return n, fmt.Errorf("SCHED_FIFO for %s: %w", strings.TrimSpace(string(comm)), err)
			}
		}
		n++
	}
	return n, nil
}

// BenchNice is the nice value of every thread taking part in a
// measurement (generator, DUT, NAPI threads): equal among them, so their
// relative shares are those of an idle machine, and high enough that
// other work on the machine (builds, fuzzers) barely disturbs a run.
const BenchNice = -20

// Do runs fn on a locked OS thread inside namespace ns, pinned to cpu when
// cpu >= 0 (and then at nice BenchNice), and restores the thread's
// namespace, affinity and nice value afterwards. A
// thread that cannot be restored stays locked and is discarded by the
// runtime.
func Do(ns string, cpu int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- doLocked(ns, cpu, fn)
	}()
	return <-errc
}

func doLocked(ns string, cpu int, fn func() error) error {
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: current netns: %w", err)
	}
	defer orig.Close()
	var origSet unix.CPUSet
	if err := unix.SchedGetaffinity(0, &origSet); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: affinity: %w", err)
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: netns %s: %w", ns, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("bench: enter %s: %w", ns, err)
	}
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			netns.Set(orig)
			runtime.UnlockOSThread()
			return fmt.Errorf("bench: pin to cpu %d: %w", cpu, err)
		}
		// On Linux the nice value is per thread; processes started from
		// this thread inherit it.
		prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
		if err == nil {
			unix.Setpriority(unix.PRIO_PROCESS, 0, BenchNice)
			defer unix.Setpriority(unix.PRIO_PROCESS, 0, 20-prio) // getpriority returns 20-nice
		}
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("bench: restore netns: %w", err)) // thread stays locked
	}
	if err := unix.SchedSetaffinity(0, &origSet); err != nil {
		return errors.Join(ferr, fmt.Errorf("bench: restore affinity: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

type nsKey struct{}

// NetNS returns the name of the DUT namespace a DUT runs in (set by Run),
// for DUTs that start processes with `ip netns exec`.
func NetNS(ctx context.Context) string {
	s, _ := ctx.Value(nsKey{}).(string)
	return s
}

// nsInode returns the inode of the namespace file at path (0 if unknown):
// a /run/netns bind mount or a /proc/.../ns/net link.
func nsInode(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// dutCPUTime returns the CPU time (ns, from schedstat) consumed so far by
// every task in the DUT namespace (the DUT's locked thread, processes it
// started) and by the NAPI threads of the DUT's veth ends. Work done in
// softirq context on behalf of the DUT is not included.
func (t *Topology) dutCPUTime() uint64 {
	want := nsInode(filepath.Join("/run/netns", t.DUT))
	if want == 0 {
		return 0
	}
	napi := []string{"napi/" + t.InIf + "-", "napi/" + t.OutIf + "-"}
	var total uint64
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		tasks, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "task"))
		for _, task := range tasks {
			dir := filepath.Join("/proc", p.Name(), "task", task.Name())
			ours := nsInode(filepath.Join(dir, "ns", "net")) == want
			if !ours {
				comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
				for _, n := range napi {
					if strings.HasPrefix(string(comm), n) {
						ours = true
					}
				}
			}
			if !ours {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, "schedstat"))
			if err != nil {
				continue
			}
			var ns uint64
			fmt.Sscan(string(b), &ns)
			total += ns
		}
	}
	return total
}

// boostAutogroup sets the nice value of the process's scheduler autogroup
// (kernel.sched_autogroup_enabled: CPU time is first shared between
// sessions, so per-thread nice values alone cannot keep other sessions'
// builds and fuzzers off the benchmark cores). It returns a function that
// restores the previous value; without autogroups it does nothing.
func boostAutogroup(nice int) (restore func()) {
	const path = "/proc/self/autogroup"
	b, err := os.ReadFile(path)
	if err != nil {
		return func() {}
	}
	var name string
	old := 0
	if _, err := fmt.Sscanf(string(b), "%s nice %d", &name, &old); err != nil {
		return func() {}
	}
	if err := os.WriteFile(path, []byte(fmt.Sprint(nice)), 0); err != nil {
		return func() {}
	}
	return func() { os.WriteFile(path, []byte(fmt.Sprint(old)), 0) }
}
