package lb

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

var errProbe = errors.New("probe failed")

// scriptedProber hands each probe to the test: a probe announces itself
// on req and returns what the test sends on res.
type scriptedProber struct {
	req chan netip.AddrPort
	res chan error
}

func (p *scriptedProber) probe(ctx context.Context, _ Protocol, _ netip.Addr, dst netip.AddrPort, _ time.Duration) error {
	select {
	case p.req <- dst:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestCheckerCounting(t *testing.T) {
	p := &scriptedProber{req: make(chan netip.AddrPort), res: make(chan error)}
	events := make(chan Event, 10)
	l := &LoadBalancer{Name: "svc", VIP: mustAP("10.96.0.10:80"), Protocol: TCP,
		Backends: []netip.AddrPort{be1},
		HealthCheck: &HealthCheckConfig{Interval: time.Millisecond, Timeout: time.Second,
			SuccessCount: 3, FailureCount: 3}}
	c, err := NewChecker(l, CheckerOptions{Prober: p.probe, OnChange: func(e Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	if dst := <-p.req; dst != be1 { // the first probe starts at once
		t.Fatalf("probe of %s", dst)
	}
	if err := c.Run(ctx); err == nil {
		t.Fatal("a second concurrent Run was accepted")
	}

	steps := []struct {
		err   error
		state State
		succ  int
		fail  int
	}{
		{nil, Online, 1, 0},
		{errProbe, Online, 0, 1},
		{errProbe, Online, 0, 2},
		{nil, Online, 1, 0}, // a success resets the failures
		{errProbe, Online, 0, 1},
		{errProbe, Online, 0, 2},
		{errProbe, Offline, 0, 3}, // failure_count reached
		{errProbe, Offline, 0, 4},
		{nil, Offline, 1, 0},
		{nil, Offline, 2, 0},
		{errProbe, Offline, 0, 1}, // a failure resets the successes
		{nil, Offline, 1, 0},
		{nil, Offline, 2, 0},
		{nil, Online, 3, 0}, // success_count reached
	}
	for i, s := range steps {
		p.res <- s.err
		<-p.req // the next probe has started: step i is recorded
		st := c.Status()[0]
		if st.State != s.state || st.Successes != s.succ || st.Failures != s.fail || st.Probes != uint64(i+1) {
			t.Fatalf("step %d: status %+v, want %v succ %d fail %d probes %d", i, st, s.state, s.succ, s.fail, i+1)
		}
		if (st.LastErr != nil) != (s.err != nil) {
			t.Fatalf("step %d: LastErr %v", i, st.LastErr)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Status()[0].Probes; got != uint64(len(steps)) {
		t.Errorf("a probe cancelled by Stop was counted: %d probes", got)
	}
	close(events)
	var got []Event
	for e := range events {
		got = append(got, e)
	}
	if len(got) != 2 || got[0].From != Online || got[0].To != Offline || !errors.Is(got[0].Err, errProbe) ||
		got[1].From != Offline || got[1].To != Online || got[1].Err != nil || got[0].Backend != be1 {
		t.Fatalf("events %+v, want online->offline, offline->online", got)
	}
}

// tcpServer is a loopback TCP backend that can be stopped and restarted
// on the same address, recording the source addresses of connections.
type tcpServer struct {
	t    *testing.T
	addr netip.AddrPort
	mu   sync.Mutex
	ln   net.Listener
	srcs map[netip.Addr]int
	wg   sync.WaitGroup
}

func newTCPServer(t *testing.T, network, addr string) *tcpServer {
	s := &tcpServer{t: t, srcs: map[netip.Addr]int{}}
	s.start(network, addr)
	s.addr = netip.MustParseAddrPort(s.ln.Addr().String())
	t.Cleanup(s.stop)
	return s
}

func (s *tcpServer) start(network, addr string) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := netip.MustParseAddrPort(c.RemoteAddr().String())
			s.mu.Lock()
			s.srcs[ap.Addr()]++
			s.mu.Unlock()
			c.Close()
		}
	})
}

func (s *tcpServer) restart() { s.start("tcp", s.addr.String()) }

func (s *tcpServer) stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
		s.wg.Wait()
	}
}

func (s *tcpServer) sources() map[netip.Addr]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[netip.Addr]int{}
	for a, n := range s.srcs {
		out[a] = n
	}
	return out
}

// udpServer is a loopback UDP backend; echo servers answer each probe,
// silent ones never do.
type udpServer struct {
	t    *testing.T
	addr netip.AddrPort
	echo bool
	mu   sync.Mutex
	pc   net.PacketConn
	srcs map[netip.Addr]int
	wg   sync.WaitGroup
}

func newUDPServer(t *testing.T, echo bool) *udpServer {
	s := &udpServer{t: t, echo: echo, srcs: map[netip.Addr]int{}}
	s.start("127.0.0.1:0")
	s.addr = netip.MustParseAddrPort(s.pc.LocalAddr().String())
	t.Cleanup(s.stop)
	return s
}

func (s *udpServer) start(addr string) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		s.t.Fatalf("listen udp %s: %v", addr, err)
	}
	s.mu.Lock()
	s.pc = pc
	s.mu.Unlock()
	s.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.srcs[netip.MustParseAddrPort(from.String()).Addr()]++
			s.mu.Unlock()
			if s.echo {
				pc.WriteTo(buf[:n], from)
			}
		}
	})
}

func (s *udpServer) restart() { s.start(s.addr.String()) }

func (s *udpServer) stop() {
	s.mu.Lock()
	pc := s.pc
	s.pc = nil
	s.mu.Unlock()
	if pc != nil {
		pc.Close()
		s.wg.Wait()
	}
}

// waitEvent waits for backend b's next state change.
func waitEvent(t *testing.T, events <-chan Event, b netip.AddrPort, to State, within time.Duration) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e := <-events:
			if e.Backend != b {
				t.Fatalf("unexpected event for %s: %+v", e.Backend, e)
			}
			if e.To != to {
				t.Fatalf("event %+v, want %s", e, to)
			}
			return e
		case <-deadline:
			t.Fatalf("%s did not go %s within %v", b, to, within)
		}
	}
}

func contains(list []netip.AddrPort, b netip.AddrPort) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

// runChecked starts a checker feeding a selector and an event channel.
func runChecked(t *testing.T, l *LoadBalancer) (*Checker, *Selector, <-chan Event) {
	t.Helper()
	sel, err := NewSelector(l)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 16)
	c, err := NewChecker(l, CheckerOptions{OnChange: func(e Event) {
		sel.Observe(e)
		events <- e
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, sel, events
}

// waitProbes waits until every backend has had n probes.
func waitProbes(t *testing.T, c *Checker, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok := true
		for _, st := range c.Status() {
			ok = ok && st.Probes >= n
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d probes: %+v", n, c.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	testInterval = 50 * time.Millisecond
	testTimeout  = 150 * time.Millisecond
	slack        = time.Second // scheduling noise on a loaded CI machine
)

func TestCheckerTCP(t *testing.T) {
	up := newTCPServer(t, "tcp", "127.0.0.1:0")
	flappy := newTCPServer(t, "tcp", "127.0.0.1:0")
	src := netip.MustParseAddr("127.0.0.1")
	l := &LoadBalancer{Name: "svc", VIP: mustAP("10.96.0.10:80"), Protocol: TCP,
		Backends: []netip.AddrPort{up.addr, flappy.addr},
		HealthCheck: &HealthCheckConfig{Interval: testInterval, Timeout: testTimeout,
			SuccessCount: 3, FailureCount: 3, Source: src}}
	c, sel, events := runChecked(t, l)
	waitProbes(t, c, 3)
	for _, st := range c.Status() {
		if st.State != Online || st.Successes < 3 || st.LastErr != nil {
			t.Fatalf("healthy backend: %+v", st)
		}
	}
	if got := up.sources(); got[src] < 3 || len(got) != 1 {
		t.Errorf("server saw probes from %v, want only %s", got, src)
	}

	stopped := time.Now()
	flappy.stop()
	e := waitEvent(t, events, flappy.addr, Offline, 3*testInterval+testTimeout+slack)
	if took := e.At.Sub(stopped); took < 2*testInterval-10*time.Millisecond {
		t.Errorf("offline after %v, before 3 probes could fail", took)
	}
	if !errors.Is(e.Err, syscall.ECONNREFUSED) {
		t.Errorf("offline event error %v, want connection refused", e.Err)
	}
	if on := sel.Online(); len(on) != 1 || on[0] != up.addr {
		t.Errorf("selector online set %v, want only %s", on, up.addr)
	}

	restarted := time.Now()
	flappy.restart()
	e = waitEvent(t, events, flappy.addr, Online, 3*testInterval+slack)
	if took := e.At.Sub(restarted); took < 2*testInterval-10*time.Millisecond {
		t.Errorf("online after %v, before 3 probes could succeed", took)
	}
	if st := c.Status()[1]; st.State != Online || st.Successes < 3 {
		t.Errorf("restarted backend %+v", st)
	}
	if !contains(sel.Online(), flappy.addr) || len(sel.Online()) != 2 {
		t.Errorf("selector online set %v after restart", sel.Online())
	}
	if st := c.Status()[0]; st.State != Online || st.Failures != 0 {
		t.Errorf("the other backend was affected: %+v", st)
	}
}

func TestCheckerUDP(t *testing.T) {
	echo := newUDPServer(t, true)
	silent := newUDPServer(t, false)
	src := netip.MustParseAddr("127.0.0.1")
	l := &LoadBalancer{Name: "dns", VIP: mustAP("10.96.0.10:53"), Protocol: UDP,
		Backends: []netip.AddrPort{echo.addr, silent.addr},
		HealthCheck: &HealthCheckConfig{Interval: testInterval, Timeout: testTimeout,
			SuccessCount: 3, FailureCount: 3, Source: src}}
	c, sel, events := runChecked(t, l)
	waitProbes(t, c, 3)
	for _, st := range c.Status() {
		if st.State != Online || st.Successes < 3 || st.LastErr != nil {
			t.Fatalf("healthy UDP backend (reply or silence): %+v", st)
		}
	}
	for _, s := range []*udpServer{echo, silent} {
		s.mu.Lock()
		if s.srcs[src] < 3 || len(s.srcs) != 1 {
			t.Errorf("%s saw probes from %v, want only %s", s.addr, s.srcs, src)
		}
		s.mu.Unlock()
	}

	for _, s := range []*udpServer{echo, silent} {
		stopped := time.Now()
		s.stop()
		e := waitEvent(t, events, s.addr, Offline, 3*testInterval+testTimeout+slack)
		if took := e.At.Sub(stopped); took < 2*testInterval-10*time.Millisecond {
			t.Errorf("%s offline after %v, before 3 probes could fail", s.addr, took)
		}
		if !errors.Is(e.Err, syscall.ECONNREFUSED) {
			t.Errorf("offline event error %v, want ICMP port unreachable (connection refused)", e.Err)
		}
		if contains(sel.Online(), s.addr) {
			t.Errorf("offline %s still in the selector's set", s.addr)
		}
		restarted := time.Now()
		s.restart()
		// A silent backend's successes each wait out the timeout.
		e = waitEvent(t, events, s.addr, Online, 3*testTimeout+3*testInterval+slack)
		if took := e.At.Sub(restarted); took < 2*testInterval-10*time.Millisecond {
			t.Errorf("%s online after %v, before 3 probes could succeed", s.addr, took)
		}
		if !contains(sel.Online(), s.addr) {
			t.Errorf("%s back online but not in the selector's set", s.addr)
		}
	}
}

func TestNetProber(t *testing.T) {
	ctx := t.Context()
	lo := netip.MustParseAddr("127.0.0.1")

	// TCP to a port nobody listens on: refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	if err := NetProber(ctx, TCP, lo, closed, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("TCP probe of a closed port: %v", err)
	}

	// UDP: silence is success, after the timeout; refusal is failure.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := netip.MustParseAddrPort(pc.LocalAddr().String())
	start := time.Now()
	if err := NetProber(ctx, UDP, lo, quiet, 100*time.Millisecond); err != nil {
		t.Errorf("UDP probe of a silent server: %v", err)
	}
	if took := time.Since(start); took < 90*time.Millisecond {
		t.Errorf("silent UDP probe returned after %v, before its timeout", took)
	}
	pc.Close()
	if err := NetProber(ctx, UDP, netip.Addr{}, quiet, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("UDP probe of a closed port: %v", err)
	}

	// Cancellation is reported as such, not as silence.
	pc, err = net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	err = NetProber(cctx, UDP, lo, netip.MustParseAddrPort(pc.LocalAddr().String()), 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled UDP probe: %v", err)
	}

	// A source of the other family cannot be bound.
	if err := NetProber(ctx, TCP, netip.MustParseAddr("::1"), closed, time.Second); err == nil {
		t.Error("TCP probe of an IPv4 backend from ::1 succeeded")
	}
}

func TestCheckerTCPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here (%v); the IPv4 tests cover the logic", err)
	}
	ln.Close()
	srv := newTCPServer(t, "tcp6", "[::1]:0")
	src := netip.MustParseAddr("::1")
	l := &LoadBalancer{Name: "v6", VIP: mustAP("[fd00::10]:80"), Protocol: TCP,
		Backends: []netip.AddrPort{srv.addr},
		HealthCheck: &HealthCheckConfig{Interval: testInterval, Timeout: testTimeout,
			SuccessCount: 1, FailureCount: 1, Source: src}}
	c, _, _ := runChecked(t, l)
	waitProbes(t, c, 2)
	if st := c.Status()[0]; st.State != Online || st.LastErr != nil {
		t.Fatalf("%+v", st)
	}
	if got := srv.sources(); got[src] < 2 {
		t.Errorf("server saw %v, want probes from %s", got, src)
	}
}

func TestNewCheckerErrors(t *testing.T) {
	l := validLB()
	l.HealthCheck = nil
	if _, err := NewChecker(l, CheckerOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no health check: %v", err)
	}
	l = validLB()
	l.HealthCheck.FailureCount = 0
	if _, err := NewChecker(l, CheckerOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad health check: %v", err)
	}
}
