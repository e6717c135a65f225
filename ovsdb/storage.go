package ovsdb

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

const logMagic = "OVSDB JSON "

// maxRecord bounds one log record (a snapshot of a large database fits).
const maxRecord = 1 << 30

// encodeRecord frames JSON text as a log record. The length and SHA-1 cover
// the JSON text and its trailing newline, as in ovsdb-server's files.
func encodeRecord(js []byte) []byte {
	body := make([]byte, 0, len(js)+1)
	body = append(body, js...)
	body = append(body, '\n')
	sum := sha1.Sum(body)
	out := make([]byte, 0, len(body)+80)
	out = append(out, logMagic...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, ' ')
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return append(out, body...)
}

var errTorn = errors.New("torn or corrupt record")

// readRecord reads one record; it returns io.EOF at a clean end and errTorn
// (wrapped) for a partial or corrupt record.
func readRecord(r *bufio.Reader) (js []byte, n int64, err error) {
	hdr, err := r.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(hdr) == 0 {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("%w: truncated header", errTorn)
	}
	if !bytes.HasPrefix(hdr, []byte(logMagic)) {
		return nil, 0, fmt.Errorf("%w: bad magic", errTorn)
	}
	fields := bytes.Fields(hdr[len(logMagic):])
	if len(fields) != 2 || len(fields[1]) != 40 {
		return nil, 0, fmt.Errorf("%w: bad header", errTorn)
	}
	length, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil || length < 0 || length > maxRecord {
		return nil, 0, fmt.Errorf("%w: bad length", errTorn)
	}
	var want [20]byte
	if _, err := hex.Decode(want[:], fields[1]); err != nil {
		return nil, 0, fmt.Errorf("%w: bad checksum field", errTorn)
	}
	n = int64(len(hdr))
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, 0, fmt.Errorf("%w: truncated body", errTorn)
	}
	if sha1.Sum(body) != want {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	return body, n + length, nil
}

// logFile is the append-only database file. append is called with the
// database's txMu held (one writer); sync may be called concurrently and
// implements group commit: one caller fsyncs for everyone who wrote before.
type logFile struct {
	path string

	mu      sync.Mutex // protects all fields below
	cond    *sync.Cond // signalled when synced advances or a sync ends
	f       *os.File
	written int64 // bytes appended
	synced  int64 // bytes known durable
	syncing bool
	gen     int   // bumped by replace: offsets of older files are durable
	err     error // sticky write/sync error
	// base is the size of the file after the last snapshot (open or
	// compaction); compaction is due when the file grows well past it.
	base int64
}

func newLogFile(path string, f *os.File, size int64) *logFile {
	l := &logFile{path: path, f: f, written: size, synced: size, base: size}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// syncToken names a point in the log that sync waits for.
type syncToken struct {
	gen int
	end int64
}

// append writes a record (not yet durable) and returns the point after it.
func (l *logFile) append(rec []byte) (syncToken, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return syncToken{}, l.err
	}
	f := l.f
	off := l.written
	if _, err := f.WriteAt(rec, off); err != nil {
		l.err = fmt.Errorf("ovsdb: writing %s: %w", l.path, err)
		return syncToken{}, l.err
	}
	l.written = off + int64(len(rec))
	return syncToken{l.gen, l.written}, nil
}

// sync returns once every byte up to end is durable.
func (l *logFile) sync(t syncToken) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.err != nil {
			return l.err
		}
		if l.gen != t.gen || l.synced >= t.end {
			return nil
		}
		if !l.syncing {
			break
		}
		l.cond.Wait()
	}
	l.syncing = true
	target := l.written
	f := l.f
	l.mu.Unlock()
	gen := l.gen
	err := datasync(f)
	l.mu.Lock()
	l.syncing = false
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("ovsdb: syncing %s: %w", l.path, err)
	}
	if err == nil && gen == l.gen && target > l.synced {
		l.synced = target
	}
	l.cond.Broadcast()
	return l.err
}

func (l *logFile) size() (written, base int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.written, l.base
}

// replace atomically swaps in a new file holding the given records. Called
// with the database's txMu held, so no append runs concurrently.
func (l *logFile) replace(records ...[]byte) error {
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("ovsdb: compacting: %w", err)
	}
	var size int64
	for _, r := range records {
		if _, err := f.Write(r); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("ovsdb: compacting: %w", err)
		}
		size += int64(len(r))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("ovsdb: compacting: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("ovsdb: compacting: %w", err)
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		f.Close()
		return err
	}
	l.mu.Lock()
	// Wait out a sync in flight on the old file before closing it.
	for l.syncing {
		l.cond.Wait()
	}
	old := l.f
	l.f = f
	l.written, l.synced, l.base = size, size, size
	l.gen++
	l.mu.Unlock()
	old.Close()
	return nil
}

func (l *logFile) close() error {
	l.mu.Lock()
	for l.syncing {
		l.cond.Wait()
	}
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if l.err == nil {
		l.err = errors.New("ovsdb: database closed")
	}
	return err
}

// datasync flushes f's data and the metadata needed to read it back (its
// size); fdatasync skips timestamps, which saves a little per commit.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ovsdb: opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ovsdb: syncing directory %s: %w", dir, err)
	}
	return nil
}

// lockFile takes an exclusive advisory lock next to the database file
// (".NAME.~lock~", the name ovsdb-server uses), so that two servers never
// append to one file. The lock dies with the process.
func lockFile(path string) (*os.File, error) {
	lp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".~lock~")
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ovsdb: creating lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("ovsdb: %s is in use by another process (lock %s): %w", path, lp, err)
	}
	return f, nil
}
