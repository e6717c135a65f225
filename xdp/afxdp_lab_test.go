package xdp

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// labT is a tiny netns lab for this package's privileged tests: named
// namespaces xvs-<x>-<pid> made with ip(8), deleted at cleanup.
type labT struct {
	t   testing.TB
	nss []string
}

// need fails (CI=true) or skips the test when the lab cannot be set up.
func need(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("lab setup (%s): %v", what, err)
	}
	t.Skipf("needs root, netns, veth and XDP (%s): %v", what, err)
}

func newLab(t testing.TB) *labT {
	t.Helper()
	if os.Geteuid() != 0 {
		need(t, fmt.Errorf("not root"), "euid")
	}
	l := &labT{t: t}
	t.Cleanup(l.cleanup)
	return l
}

func (l *labT) cleanup() {
	for _, n := range l.nss {
		exec.Command("ip", "netns", "del", n).Run()
	}
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ns creates namespace xvs-<x>-<pid>.
func (l *labT) ns(x string) string {
	name := fmt.Sprintf("xvs-%s-%d", x, os.Getpid())
	exec.Command("ip", "netns", "del", name).Run() // stale from a crashed run
	need(l.t, run("ip", "netns", "add", name), "netns add")
	l.nss = append(l.nss, name)
	need(l.t, run("ip", "-n", name, "link", "set", "lo", "up"), "lo up")
	return name
}

// veth creates a veth pair a@nsA <-> b@nsB, MTU mtu, up, tx checksum off.
func (l *labT) veth(nsA, a, nsB, b string, mtu int) {
	need(l.t, run("ip", "link", "add", a, "netns", nsA, "mtu", fmt.Sprint(mtu), "type", "veth",
		"peer", "name", b, "netns", nsB, "mtu", fmt.Sprint(mtu)), "veth")
	for _, e := range [][2]string{{nsA, a}, {nsB, b}} {
		need(l.t, run("ip", "-n", e[0], "link", "set", e[1], "up"), "link up")
		need(l.t, run("ip", "netns", "exec", e[0], "ethtool", "-K", e[1], "tx", "off"), "ethtool")
		run("ip", "netns", "exec", e[0], "sysctl", "-qw", "net.ipv6.conf."+e[1]+".disable_ipv6=1")
	}
}

// inNS runs fn on a locked OS thread switched into namespace name, and
// switches back afterwards. If the thread cannot be restored it stays
// locked, so the runtime discards it when the goroutine ends.
func inNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore netns: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
