package main

import (
	"os"
	"sync"
)

// reopener is the log destination: stderr, or a file reopened on SIGHUP
// (for logrotate).
type reopener struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (r *reopener) reopen() error {
	if r.path == "" {
		return nil
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (r *reopener) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return os.Stderr.Write(p)
	}
	return r.f.Write(p)
}
