package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"
)

// State is a backend's health, spelled as OVN's Service_Monitor.status.
type State uint8

// Backend states. Backends start Online, as in OVN, where a backend whose
// Service_Monitor has no status yet is used.
const (
	Online State = iota
	Offline
)

func (s State) String() string {
	if s == Offline {
		return "offline"
	}
	return "online"
}

// Event reports a backend's state change.
type Event struct {
	Backend  netip.AddrPort
	From, To State
	At       time.Time
	Err      error // the probe error that caused an Online->Offline change
}

// BackendStatus is a backend's health as seen by a Checker.
type BackendStatus struct {
	Backend   netip.AddrPort
	State     State
	Successes int       // consecutive successful probes (0 after a failure)
	Failures  int       // consecutive failed probes (0 after a success)
	Probes    uint64    // probes completed
	LastProbe time.Time // end of the last completed probe
	LastErr   error     // error of the last failed probe, nil after a success
}

// Prober runs one probe of dst from src (zero src: unbound), giving up
// after timeout; nil means success. It must return ctx.Err() (or an
// error wrapping it) when ctx is cancelled, which the checker does not
// count as a failure. NetProber is the real one; tests may substitute
// fakes.
type Prober func(ctx context.Context, proto Protocol, src netip.Addr, dst netip.AddrPort, timeout time.Duration) error

// CheckerOptions are a Checker's optional settings; the zero value is
// usable.
type CheckerOptions struct {
	// OnChange, when set, is called on every state change, from the
	// checker goroutine of that backend: calls for one backend are in
	// order, calls for different backends may be concurrent. It should
	// return quickly; Selector.Observe is a suitable target.
	OnChange func(Event)
	// Prober defaults to NetProber.
	Prober Prober
	// Logger receives state changes (one line per change, never per
	// probe). nil discards them.
	Logger *slog.Logger
	// Now defaults to time.Now; it only stamps events and statuses.
	Now func() time.Time
}

// Checker probes a load balancer's backends.
//
// Semantics, per backend, in its own goroutine: a probe starts at once
// when Run starts, then every Interval measured from the start of the
// previous probe; a probe that lasts longer than Interval (at most
// Timeout) delays the next one, so probes of one backend never overlap.
// Each failure increments the consecutive failure count and zeroes the
// success count, and vice versa. An Online backend goes Offline when
// failures reach FailureCount; an Offline backend goes Online when
// successes reach SuccessCount. Hence a backend that dies is offline
// after FailureCount probes: at most FailureCount*Interval after its
// death if probes fail fast (TCP reset, ICMP unreachable) and up to
// FailureCount*max(Interval, Timeout) plus one Interval if they time
// out; symmetrically for coming back.
type Checker struct {
	proto   Protocol
	cfg     HealthCheckConfig
	opts    CheckerOptions
	targets []netip.AddrPort

	mu     sync.Mutex // protects status
	status map[netip.AddrPort]*BackendStatus

	running sync.Mutex // held by Run, so at most one Run at a time
}

// NewChecker returns a checker for lb's backends using lb.HealthCheck,
// which must be set. The checker does nothing until Run.
func NewChecker(lb *LoadBalancer, opts CheckerOptions) (*Checker, error) {
	if err := lb.Validate(); err != nil {
		return nil, err
	}
	if lb.HealthCheck == nil {
		return nil, fmt.Errorf("%w: load balancer %q has no health check", ErrInvalid, lb.Name)
	}
	if opts.Prober == nil {
		opts.Prober = NetProber
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Checker{
		proto:   lb.Protocol,
		cfg:     *lb.HealthCheck,
		opts:    opts,
		targets: slices.Clone(lb.Backends),
		status:  make(map[netip.AddrPort]*BackendStatus, len(lb.Backends)),
	}
	for _, b := range c.targets {
		c.status[b] = &BackendStatus{Backend: b, State: Online}
	}
	return c, nil
}

// Run probes every backend, one goroutine each, until ctx is cancelled,
// then waits for them and returns nil. Only one Run may be active at a
// time; state is kept across Runs.
func (c *Checker) Run(ctx context.Context) error {
	if !c.running.TryLock() {
		return errors.New("lb: checker already running")
	}
	defer c.running.Unlock()
	var wg sync.WaitGroup
	for _, b := range c.targets {
		wg.Go(func() { c.loop(ctx, b) })
	}
	wg.Wait()
	<-ctx.Done() // also when there are no backends
	return nil
}

func (c *Checker) loop(ctx context.Context, b netip.AddrPort) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		err := c.opts.Prober(pctx, c.proto, c.cfg.Source, b, c.cfg.Timeout)
		cancel()
		if ctx.Err() != nil {
			return // cancelled mid-probe: not a result
		}
		c.record(b, err)
		timer.Reset(max(0, c.cfg.Interval-time.Since(start)))
	}
}

// record applies one probe result and reports a state change.
func (c *Checker) record(b netip.AddrPort, err error) {
	now := c.opts.Now()
	c.mu.Lock()
	st := c.status[b]
	st.Probes++
	st.LastProbe = now
	st.LastErr = err
	from := st.State
	if err == nil {
		st.Successes++
		st.Failures = 0
		if st.State == Offline && st.Successes >= c.cfg.SuccessCount {
			st.State = Online
		}
	} else {
		st.Failures++
		st.Successes = 0
		if st.State == Online && st.Failures >= c.cfg.FailureCount {
			st.State = Offline
		}
	}
	to := st.State
	c.mu.Unlock()
	if from == to {
		return
	}
	if l := c.opts.Logger; l != nil {
		l.Info("lb backend state changed", "backend", b, "protocol", string(c.proto),
			"from", from.String(), "to", to.String(), "err", err)
	}
	if c.opts.OnChange != nil {
		c.opts.OnChange(Event{Backend: b, From: from, To: to, At: now, Err: err})
	}
}

// Status returns a snapshot of every backend's health, in configuration
// order.
func (c *Checker) Status() []BackendStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BackendStatus, len(c.targets))
	for i, b := range c.targets {
		out[i] = *c.status[b]
	}
	return out
}

// NetProber probes over the host's network stack.
//
// TCP: success is a completed connect (three-way handshake) within
// timeout; the connection is closed at once. Refusal, unreachability or
// timeout are failures.
//
// UDP follows OVN: a probe datagram is sent from a connected socket and
// the socket is read until timeout. A reply is a success (reported
// early), an ICMP port/host unreachable (ECONNREFUSED and friends on the
// read) is a failure, and silence until timeout is a success: a UDP
// service need not answer an arbitrary datagram, so only an explicit
// error proves it down. A UDP probe of a healthy but silent backend
// therefore lasts the whole timeout.
//
// With a valid src the probe's socket is bound to it (port chosen by the
// kernel), as OVN sends probes from the subnet's checker address.
func NetProber(ctx context.Context, proto Protocol, src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	switch proto {
	case TCP:
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		conn, err := d.DialContext(ctx, "tcp", dst.String())
		if err != nil {
			return err
		}
		return conn.Close()
	case UDP:
		if src.IsValid() {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		conn, err := d.DialContext(ctx, "udp", dst.String())
		if err != nil {
			return err
		}
		defer conn.Close()
		deadline := time.Now().Add(timeout)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		conn.SetDeadline(deadline)
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
		defer stop()
		if _, err := conn.Write(udpProbe); err != nil {
			return udpResult(ctx, err)
		}
		var buf [64]byte
		_, err = conn.Read(buf[:])
		return udpResult(ctx, err)
	}
	return fmt.Errorf("%w: protocol %q", ErrInvalid, string(proto))
}

// udpProbe is the payload of a UDP probe datagram.
var udpProbe = []byte("xvs-lb-health-probe")

// udpResult maps the outcome of a UDP probe's write or read.
func udpResult(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil // a reply
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctxErr := ctx.Err(); errors.Is(ctxErr, context.Canceled) {
			return ctxErr
		}
		return nil // silence until timeout
	}
	return err // ECONNREFUSED (ICMP port unreachable), EHOSTUNREACH, ...
}
