package datapath

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"xvs/flow"
)

// Packet capture taps a port's received and/or sent frames for
// `xvs capture`. A tap is bounded (at most Max frames of at most SnapLen
// bytes) and never blocks the poller: when it is full, frames are counted
// as missed and forwarding goes on. With no tap attached the fast path
// pays one atomic pointer load per batch.

// CapturedFrame is one tapped frame.
type CapturedFrame struct {
	Time time.Time
	Sent bool   // false: received by the datapath; true: sent by it
	Len  int    // original length
	Data []byte // at most SnapLen bytes
}

// CaptureConfig configures Capture.
type CaptureConfig struct {
	Iface   string
	RX, TX  bool // both false means both true
	Max     int  // frames (default 100, at most 100000)
	SnapLen int  // default 2048
	Timeout time.Duration
}

type tap struct {
	mu     sync.Mutex
	rx, tx bool
	max    int
	snap   int
	frames []CapturedFrame
	missed uint64
	full   chan struct{}
	closed bool
}

func (t *tap) add(pkts []*flow.Packet, sent bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	now := time.Now()
	for _, p := range pkts {
		if p == nil {
			continue
		}
		if len(t.frames) >= t.max {
			t.missed++
			continue
		}
		n := min(p.Len, t.snap)
		t.frames = append(t.frames, CapturedFrame{Time: now, Sent: sent, Len: p.Len, Data: append([]byte(nil), p.Buf[p.Off:p.Off+n]...)})
		if len(t.frames) == t.max {
			t.closed = true
			close(t.full)
			return
		}
	}
}

// ErrCaptureBusy is returned when the port already has a capture running.
var ErrCaptureBusy = errors.New("a capture is already running on this port")

// Capture taps an interface until Max frames were seen or Timeout passed,
// and returns the frames with the number that did not fit.
func (dp *Datapath) Capture(cfg CaptureConfig) ([]CapturedFrame, uint64, error) {
	if !cfg.RX && !cfg.TX {
		cfg.RX, cfg.TX = true, true
	}
	if cfg.Max <= 0 {
		cfg.Max = 100
	}
	cfg.Max = min(cfg.Max, 100000)
	if cfg.SnapLen <= 0 {
		cfg.SnapLen = 2048
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	dp.mu.Lock()
	i := dp.findIface(cfg.Iface)
	dp.mu.Unlock()
	if i == nil || i.dpPort == 0 {
		return nil, 0, fmt.Errorf("%s: no such interface with a device", cfg.Iface)
	}
	s := dp.snap.Load()
	if int(i.dpPort) >= len(s.ports) || s.ports[i.dpPort] == nil {
		return nil, 0, fmt.Errorf("%s: not running", cfg.Iface)
	}
	p := s.ports[i.dpPort]
	t := &tap{rx: cfg.RX, tx: cfg.TX, max: cfg.Max, snap: cfg.SnapLen, full: make(chan struct{})}
	if !p.tap.CompareAndSwap(nil, t) {
		return nil, 0, fmt.Errorf("%s: %w", cfg.Iface, ErrCaptureBusy)
	}
	select {
	case <-t.full:
	case <-time.After(cfg.Timeout):
	}
	p.tap.Store(nil)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return t.frames, t.missed, nil
}

// tapRX/tapTX are called by pollers with a batch.
func (p *dpPort) tapRX(pkts []*flow.Packet) {
	if t := p.tap.Load(); t != nil && t.rx {
		t.add(pkts, false)
	}
}

func (p *dpPort) tapTX(pkts []*flow.Packet) {
	if t := p.tap.Load(); t != nil && t.tx {
		t.add(pkts, true)
	}
}
