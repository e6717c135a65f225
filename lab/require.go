package lab

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

var probe struct {
	once   sync.Once
	reason string // "" when namespaces are usable
}

// Available reports whether this process can build labs: it runs as root
// and can create a network namespace. The reason explains a false answer.
func Available() (ok bool, reason string) {
	probe.once.Do(func() {
		if os.Geteuid() != 0 {
			probe.reason = "lab needs root (euid 0)"
			return
		}
		if _, err := os.Stat("/proc/self/ns/net"); err != nil {
			probe.reason = fmt.Sprintf("no network namespaces: %v", err)
			return
		}
		// Try an unshare on a throwaway thread.
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread is discarded
			errc <- unix.Unshare(unix.CLONE_NEWNET)
		}()
		if err := <-errc; err != nil {
			probe.reason = fmt.Sprintf("cannot create a network namespace: %v", err)
		}
	})
	return probe.reason == "", probe.reason
}

// InCI reports whether CI=true is set in the environment.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when labs cannot be built: it skips with the
// reason, unless CI=true, where it fails instead (in CI a skipped
// privileged test would hide a broken setup).
func Require(t testing.TB) {
	t.Helper()
	if ok, reason := Available(); !ok {
		Unavailable(t, reason)
	}
}

// Unavailable stops the test because a privileged setup step failed:
// t.Fatal when CI=true, t.Skip otherwise. Use it for setup failures that
// mean "this machine cannot run the test" (e.g. a missing kernel feature).
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("privileged test setup failed (CI=true, not skipping): %s", reason)
		return
	}
	t.Skipf("skipping privileged test: %s (set CI=true to fail instead)", reason)
}
