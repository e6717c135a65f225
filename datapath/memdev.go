package datapath

import (
	"sync"

	"xvs/flow"
)

// MemDevice is an in-memory Device for tests and benchmarks: frames are
// injected with Inject and whatever the datapath sends is captured (or just
// counted). It is safe for concurrent use by one poller and a test.
type MemDevice struct {
	name string
	mu   sync.Mutex
	rxq  []*flow.Packet
	sent [][]byte
	// Capture keeps a copy of every sent frame (default true).
	capture bool
	stats   DeviceStats
	closed  bool
}

// NewMemDevice returns a device that captures what it sends.
func NewMemDevice(name string) *MemDevice {
	return &MemDevice{name: name, capture: true}
}

// SetCapture turns capture of sent frames on or off (off: count only).
func (d *MemDevice) SetCapture(on bool) {
	d.mu.Lock()
	d.capture = on
	d.mu.Unlock()
}

// Name implements Device.
func (d *MemDevice) Name() string { return d.name }

// Inject queues a copy of frame for reception.
func (d *MemDevice) Inject(frames ...[]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range frames {
		buf := make([]byte, flow.Headroom+len(f)+64)
		copy(buf[flow.Headroom:], f)
		d.rxq = append(d.rxq, &flow.Packet{Buf: buf, Off: flow.Headroom, Len: len(f)})
	}
}

// Recv implements Device.
func (d *MemDevice) Recv(pkts []*flow.Packet) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := copy(pkts, d.rxq)
	for _, p := range pkts[:n] {
		d.stats.RxPackets++
		d.stats.RxBytes += uint64(p.Len)
	}
	d.rxq = d.rxq[n:]
	return n, nil
}

// Send implements Device.
func (d *MemDevice) Send(pkts []*flow.Packet) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range pkts {
		if d.closed {
			d.stats.TxDropped++
		} else {
			d.stats.TxPackets++
			d.stats.TxBytes += uint64(p.Len)
			if d.capture {
				d.sent = append(d.sent, append([]byte(nil), p.Data()...))
			}
		}
		p.Free()
	}
	if d.closed {
		return 0
	}
	return len(pkts)
}

// Sent returns and clears the captured frames.
func (d *MemDevice) Sent() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.sent
	d.sent = nil
	return s
}

// Stats implements Device.
func (d *MemDevice) Stats() DeviceStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Close implements Device.
func (d *MemDevice) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}
