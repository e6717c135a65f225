package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NamePrefix is the prefix every lab object name must carry.
const NamePrefix = "xvs"

// netnsDir is where named namespaces are bind-mounted (as by `ip netns`).
const netnsDir = "/run/netns"

// ErrName reports a name outside the lab's naming rules.
var ErrName = errors.New("lab: name must start with \"xvs\"")

// NS is a network namespace: either a named lab namespace or the root
// namespace of the process (Name == "").
//
// An NS holds an open handle to the namespace and a netlink handle inside
// it; Close releases them (it does not delete the namespace: see Delete).
// Methods are safe for concurrent use.
type NS struct {
	// Name is the namespace name under /run/netns ("" for the root).
	Name string

	handle netns.NsHandle
	nl     *netlink.Handle
}

// rootNS is the namespace of the process, captured in init (which runs on
// the main thread before any goroutine can have switched a thread).
var rootNS, rootErr = netns.Get()

// NewNS creates the named network namespace name (which must start with
// "xvs") and returns it with lo up. It fails if the namespace exists.
func NewNS(name string) (*NS, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if strings.ContainsAny(name, "/\x00") || len(name) > 200 {
		return nil, fmt.Errorf("lab: bad namespace name %q", name)
	}
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: create %s: %w", netnsDir, err)
	}
	// netns.NewNamed leaves the calling thread in the new namespace (and
	// in a half-made one on error). Run it on a thread that is locked and
	// never unlocked, so the runtime destroys the thread afterwards.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		// Remove a possibly created but unmounted file.
		_ = unix.Unmount(filepath.Join(netnsDir, name), unix.MNT_DETACH)
		_ = os.Remove(filepath.Join(netnsDir, name))
		return nil, fmt.Errorf("lab: create namespace %s: %w", name, err)
	}
	ns, err := OpenNS(name)
	if err != nil {
		_ = deleteNamed(name)
		return nil, err
	}
	if err := ns.SetUp("lo"); err != nil {
		ns.Close()
		_ = deleteNamed(name)
		return nil, err
	}
	return ns, nil
}

// OpenNS opens an existing named namespace, or the root namespace of the
// process when name is "".
func OpenNS(name string) (*NS, error) {
	var (
		h   netns.NsHandle
		err error
	)
	if name == "" {
		if rootErr != nil {
			return nil, fmt.Errorf("lab: open root namespace: %w", rootErr)
		}
		var fd int
		fd, err = unix.FcntlInt(uintptr(rootNS), unix.F_DUPFD_CLOEXEC, 0)
		h = netns.NsHandle(fd)
	} else {
		h, err = netns.GetFromName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: open namespace %q: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("lab: netlink in namespace %q: %w", name, err)
	}
	return &NS{Name: name, handle: h, nl: nl}, nil
}

// Root returns the root network namespace of the process.
func Root() (*NS, error) { return OpenNS("") }

// String returns the namespace name, or "root".
func (n *NS) String() string {
	if n.Name == "" {
		return "root"
	}
	return n.Name
}

// Netlink returns the netlink handle operating inside the namespace, for
// configuration this package does not wrap. It is valid until Close.
func (n *NS) Netlink() *netlink.Handle { return n.nl }

// Fd returns the namespace file descriptor (valid until Close).
func (n *NS) Fd() int { return int(n.handle) }

// Close releases the handles (the namespace itself stays).
func (n *NS) Close() error {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.handle.IsOpen() {
		return n.handle.Close()
	}
	return nil
}

// Delete closes the handles and removes the named namespace. Links inside
// it are destroyed by the kernel (a veth's peer goes with it). Deleting the
// root namespace is an error.
func (n *NS) Delete() error {
	if n.Name == "" {
		return errors.New("lab: cannot delete the root namespace")
	}
	n.Close()
	return deleteNamed(n.Name)
}

func deleteNamed(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("lab: unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("lab: remove %s: %w", p, err)
	}
	return nil
}

// Do runs fn with the network namespace of the running thread set to n.
//
// fn runs on a separate goroutine locked to its OS thread; the thread is
// switched back to the namespace it came from afterwards. If that fails,
// the goroutine exits still locked and the runtime discards the thread, so
// no other goroutine ever runs in the wrong namespace. Goroutines fn
// starts do not run in n. Do returns fn's error; a panic in fn, or fn
// exiting its goroutine (t.FailNow, runtime.Goexit), becomes an error.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("lab: get current namespace: %w", err)
			return // thread stays locked and is discarded
		}
		defer orig.Close()
		if err := netns.Set(n.handle); err != nil {
			errc <- fmt.Errorf("lab: enter namespace %s: %w", n, err)
			return
		}
		ferr := fmt.Errorf("lab: function in namespace %s exited its goroutine (t.FailNow or runtime.Goexit)", n)
		defer func() {
			if r := recover(); r != nil {
				ferr = fmt.Errorf("lab: panic in namespace %s: %v", n, r)
			}
			if err := netns.Set(orig); err != nil {
				errc <- errors.Join(ferr, fmt.Errorf("lab: restore namespace: %w", err))
				return // thread stays locked and is discarded
			}
			runtime.UnlockOSThread()
			errc <- ferr
		}()
		ferr = fn()
	}()
	return <-errc
}

// Command returns an exec.Cmd that runs name with args inside the
// namespace (through `ip netns exec`, which also mounts a matching /sys).
// For the root namespace the command runs directly.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if n.Name == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Exec runs a command inside the namespace and returns its combined
// output; a failure's error includes the output.
func (n *NS) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab: %s in %s: %w: %s", strings.Join(append([]string{name}, args...), " "), n, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

func checkName(name string) error {
	if !strings.HasPrefix(name, NamePrefix) {
		return fmt.Errorf("%w: %q", ErrName, name)
	}
	return nil
}
