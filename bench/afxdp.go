package bench

import (
	"context"

	"golang.org/x/sys/unix"

	"xvs/flow"
	"xvs/xdp"
)

// AFXDPConfig configures the bare AF_XDP forwarder.
type AFXDPConfig struct {
	Mode xdp.Mode // default best-effort (native on veth)
	// Spin is how many empty polling rounds the forwarder makes before it
	// sleeps in poll(2). 0 sleeps at once: on a core shared with the
	// veth's NAPI thread, spinning starves the thread that feeds us.
	Spin int
	// Batch is the Recv/Send batch size (default 32, at most xdp.MaxBatch).
	Batch int
	// Stats, if set, receives the ports' counters when the run ends.
	Stats func(a, b xdp.SocketStats, acc xdp.Accounting)
}

// AFXDP returns the bare AF_XDP forwarder DUT: one socket per veth end,
// one shared UMEM, RX of A straight to TX of B (and B to A), so frames
// move by descriptor without copying.
func AFXDP(cfg AFXDPConfig) DUT {
	if cfg.Batch <= 0 || cfg.Batch > xdp.MaxBatch {
		cfg.Batch = 32
	}
	return func(ctx context.Context, ifA, ifB string) error {
		// Two sockets with 2048-entry rings can hold 4 x 2048 frames each
		// (fill, rx, tx, completion); size the UMEM so that the fill ring
		// of the receiving port never runs dry for want of frames.
		u, err := xdp.NewUMEM(xdp.UMEMConfig{Frames: 16384})
		if err != nil {
			return err
		}
		defer u.Close()
		a, err := xdp.Open(ifA, xdp.Config{Mode: cfg.Mode, UMEM: u})
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := xdp.Open(ifB, xdp.Config{Mode: cfg.Mode, UMEM: u})
		if err != nil {
			return err
		}
		defer b.Close()
		forward(ctx, a, b, cfg.Batch, cfg.Spin)
		if cfg.Stats != nil {
			cfg.Stats(a.Sockets()[0].ExtStats(), b.Sockets()[0].ExtStats(), u.Accounting())
		}
		return nil
	}
}

// forward is the poller loop of the bare forwarder.
func forward(ctx context.Context, a, b *xdp.Port, batch, spin int) {
	pkts := make([]*flow.Packet, batch)
	fds := []unix.PollFd{{Fd: int32(a.Fd()), Events: unix.POLLIN}, {Fd: int32(b.Fd()), Events: unix.POLLIN}}
	done := ctx.Done()
	idle := 0
	for iter := 0; ; iter++ {
		n, _ := a.Recv(pkts)
		if n > 0 {
			b.Send(pkts[:n])
		}
		m, _ := b.Recv(pkts)
		if m > 0 {
			a.Send(pkts[:m])
		}
		if n+m > 0 {
			idle = 0
			if iter&1023 != 0 {
				continue
			}
		} else if idle++; idle > spin {
			// Completions wake nobody: with frames in flight, come back
			// soon to reclaim them, or the fill ring runs dry and rx
			// stops without a wakeup.
			timeout := 10
			if a.TxInFlight()+b.TxInFlight() > 0 {
				timeout = 1
			}
			unix.Poll(fds, timeout)
			idle = 0
		}
		select {
		case <-done:
			return
		default:
		}
	}
}
