package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// stateDir holds one file per live Lab: name = prefix, content = pid.
const stateDir = "/run/xvs-lab"

// Lab is a set of namespaces and root links sharing one name prefix.
// Methods are safe for concurrent use.
type Lab struct {
	// Prefix starts every namespace name and root link name of the lab.
	Prefix string

	mu     sync.Mutex
	spaces []*NS // namespaces opened by NS, closed by Close
	root   *NS
	closed bool
}

// RandomPrefix returns "xvs" followed by four random hex digits: short
// enough to leave 8 characters of a 15-character interface name.
func RandomPrefix() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return NamePrefix + hex.EncodeToString(b[:])
}

// Start begins a lab with the given prefix (which must start with "xvs";
// "" picks RandomPrefix). Anything already carrying the prefix is removed
// first, and the prefix is recorded for CleanupStale.
func Start(prefix string) (*Lab, error) {
	if prefix == "" {
		prefix = RandomPrefix()
	}
	if err := checkName(prefix); err != nil {
		return nil, err
	}
	if strings.ContainsAny(prefix, "/\x00") || len(prefix) > 12 {
		return nil, fmt.Errorf("lab: bad prefix %q (at most 12 characters)", prefix)
	}
	if err := Cleanup(prefix); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, prefix), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("lab: record prefix: %w", err)
	}
	root, err := Root()
	if err != nil {
		return nil, err
	}
	return &Lab{Prefix: prefix, root: root}, nil
}

// New starts a lab for a test: it calls Require, picks a random prefix and
// registers a t.Cleanup that removes everything the lab created.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	l, err := Start("")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return l
}

// Root returns the root namespace of the process; links created there
// must be named with the lab prefix (see Name).
func (l *Lab) Root() *NS { return l.root }

// Name returns Prefix+suffix, the name for a root-namespace link.
func (l *Lab) Name(suffix string) string { return l.Prefix + suffix }

// NS creates the namespace Prefix+"-"+name.
func (l *Lab) NS(name string) (*NS, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab: closed")
	}
	ns, err := NewNS(l.Prefix + "-" + name)
	if err != nil {
		return nil, err
	}
	l.spaces = append(l.spaces, ns)
	return ns, nil
}

// Wire connects a/aName to b/bName with a veth pair, sets both ends up
// with TX checksum offload off. Use NS.Veth for a bare pair.
func (l *Lab) Wire(a *NS, aName string, b *NS, bName string) error {
	if err := a.Veth(aName, b, bName); err != nil {
		return err
	}
	for _, e := range []struct {
		ns   *NS
		name string
	}{{a, aName}, {b, bName}} {
		if err := e.ns.SetTxChecksum(e.name, false); err != nil {
			return err
		}
		if err := e.ns.SetUp(e.name); err != nil {
			return err
		}
	}
	return nil
}

// Close removes everything carrying the lab's prefix and releases handles.
// It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ns := range l.spaces {
		ns.Close()
	}
	l.spaces = nil
	err := Cleanup(l.Prefix)
	if !l.closed {
		l.closed = true
		l.root.Close()
	}
	return err
}

// Cleanup deletes every named namespace and every root-namespace link
// whose name starts with prefix (which must start with "xvs"), and the
// lab record. It keeps going after errors and returns them joined; it is
// idempotent and works for labs left behind by a crashed process.
// Cleanup("xvs") removes every lab on the machine, including other
// processes' live ones.
func Cleanup(prefix string) error {
	if err := checkName(prefix); err != nil {
		return err
	}
	var errs []error
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("lab: %w", err))
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := deleteNamed(e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	root, err := Root()
	if err != nil {
		errs = append(errs, err)
	} else {
		links, err := root.nl.LinkList()
		if err != nil {
			errs = append(errs, fmt.Errorf("lab: list links: %w", err))
		}
		for _, lk := range links {
			if !strings.HasPrefix(lk.Attrs().Name, prefix) {
				continue
			}
			err := root.nl.LinkDel(lk)
			var nf netlink.LinkNotFoundError
			// A veth end vanishes with its peer: not an error.
			if err != nil && !errors.Is(err, unix.ENODEV) && !errors.As(err, &nf) {
				errs = append(errs, fmt.Errorf("lab: delete link %s: %w", lk.Attrs().Name, err))
			}
		}
		root.Close()
	}
	recs, _ := os.ReadDir(stateDir)
	for _, e := range recs {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = os.Remove(filepath.Join(stateDir, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// CleanupStale runs Cleanup for every recorded lab whose process no longer
// exists, and returns the prefixes it cleaned.
func CleanupStale() ([]string, error) {
	recs, err := os.ReadDir(stateDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var (
		done []string
		errs []error
	)
	for _, e := range recs {
		b, err := os.ReadFile(filepath.Join(stateDir, e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 0 && unix.Kill(pid, 0) != unix.ESRCH {
			continue // alive (or not ours to judge)
		}
		if checkName(e.Name()) != nil {
			continue
		}
		if err := Cleanup(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, e.Name())
	}
	return done, errors.Join(errs...)
}
