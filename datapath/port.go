package datapath

import "xvs/flow"

// BatchSize is the largest batch a port is asked to receive or send at once.
const BatchSize = 32

// Device is a batch-shaped network device under a bridge port: an AF_XDP
// socket, a TAP device, an AF_PACKET socket, or an in-memory fake in tests.
//
// A Device is used by one poller goroutine at a time (Recv and Send are not
// called concurrently with each other); Stats may be called from any
// goroutine.
type Device interface {
	// Name is the interface name (as in the Interface table).
	Name() string
	// Recv fills pkts[:n] with received frames, n <= len(pkts). It never
	// blocks. The packets belong to the caller (see flow.Packet).
	Recv(pkts []*flow.Packet) (n int, err error)
	// Send transmits the frames. It takes ownership of every packet, sent
	// or not; frames it cannot send are freed and counted as tx drops.
	Send(pkts []*flow.Packet) (sent int)
	// Stats returns the device's counters.
	Stats() DeviceStats
	// Close releases the device; buffers it handed out may still be freed
	// afterwards.
	Close() error
}

// DeviceStats are per-device counters, as in Interface:statistics.
type DeviceStats struct {
	RxPackets, RxBytes, RxDropped, RxErrors uint64
	TxPackets, TxBytes, TxDropped, TxErrors uint64
}
