package unixctl

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SocketMode is the permission of the control socket, as OVS leaves it:
// owner and group may connect, others may not.
const SocketMode fs.FileMode = 0o750

// maxSunPath is the usable length of sockaddr_un.sun_path on Linux (108
// bytes including the terminating NUL).
const maxSunPath = 107

// shortPath calls fn with an address for path that fits in sun_path.
// Longer paths are reached, as OVS does, through /proc/self/fd/N/NAME
// where N is a descriptor of path's directory.
func shortPath(path string, fn func(addr string) error) error {
	if len(path) <= maxSunPath {
		return fn(path)
	}
	dir, name := filepath.Split(path)
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), name)
	if len(addr) > maxSunPath {
		return fmt.Errorf("socket name %q: %w", name, syscall.ENAMETOOLONG)
	}
	return fn(addr)
}

// removeStale removes path if it is a socket nobody listens on. A socket
// with a live listener is left alone (ErrInUse), and so is anything that
// is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	err = shortPath(path, func(addr string) error {
		c, err := net.DialTimeout("unix", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	switch {
	case err == nil:
		return fmt.Errorf("%s: %w", path, ErrInUse)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	default:
		return fmt.Errorf("probing %s: %w", path, err)
	}
}

// listenUnix binds a stream socket at path (absolute), sets SocketMode and
// returns the listener with the identity of the file it created, so that
// Close removes only its own socket.
func listenUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	if err := removeStale(path); err != nil {
		return nil, nil, err
	}
	var ln *net.UnixListener
	err := shortPath(path, func(addr string) error {
		var err error
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	// The listener may have been bound through a /proc alias; removal is
	// done by Close on the real path.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, fi, nil
}

// removeOwn removes path if it is still the file described by fi; a later
// server may have replaced it.
func removeOwn(path string, fi os.FileInfo) {
	if cur, err := os.Lstat(path); err == nil && os.SameFile(cur, fi) {
		os.Remove(path)
	}
}
