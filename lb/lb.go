package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation and parse error of this
// package, so callers can test with errors.Is(err, lb.ErrInvalid).
var ErrInvalid = errors.New("invalid load balancer")

// Protocol is the transport protocol of a VIP, spelled as in OVN's
// Load_Balancer.protocol column.
type Protocol string

// Supported protocols. OVN also knows "sctp"; xvs rejects it for now.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Valid reports whether p is a protocol this package handles.
func (p Protocol) Valid() bool { return p == TCP || p == UDP }

// Selection field names accepted in LoadBalancer.SelectionFields (OVN's
// Load_Balancer.selection_fields). The ip_*, ipv4_* and ipv6_* spellings
// all select the address of the flow; the family-specific ones exist for
// compatibility with OVN configurations and mean the same thing here,
// since one load balancer VIP has one family.
const (
	FieldEthSrc  = "eth_src"
	FieldEthDst  = "eth_dst"
	FieldIPSrc   = "ip_src"
	FieldIPDst   = "ip_dst"
	FieldIPv4Src = "ipv4_src"
	FieldIPv4Dst = "ipv4_dst"
	FieldIPv6Src = "ipv6_src"
	FieldIPv6Dst = "ipv6_dst"
	FieldTPSrc   = "tp_src"
	FieldTPDst   = "tp_dst"
)

// fieldMask is the set of selected flow fields, as bits.
type fieldMask uint8

const (
	maskEthSrc fieldMask = 1 << iota
	maskEthDst
	maskIPSrc
	maskIPDst
	maskTPSrc
	maskTPDst

	// maskDefault is used when no selection field is configured: the
	// whole 5-tuple, like OVN's dp_hash default.
	maskDefault = maskIPSrc | maskIPDst | maskTPSrc | maskTPDst
)

var fieldBits = map[string]fieldMask{
	FieldEthSrc: maskEthSrc, FieldEthDst: maskEthDst,
	FieldIPSrc: maskIPSrc, FieldIPv4Src: maskIPSrc, FieldIPv6Src: maskIPSrc,
	FieldIPDst: maskIPDst, FieldIPv4Dst: maskIPDst, FieldIPv6Dst: maskIPDst,
	FieldTPSrc: maskTPSrc, FieldTPDst: maskTPDst,
}

// Default health check parameters, those of OVN's
// Load_Balancer_Health_Check.options and of the seed topology.
const (
	DefaultInterval     = 5 * time.Second
	DefaultTimeout      = 20 * time.Second
	DefaultSuccessCount = 3
	DefaultFailureCount = 3
)

// HealthCheckConfig configures the probing of a load balancer's backends.
// See Checker for the exact semantics of each field.
type HealthCheckConfig struct {
	Interval     time.Duration // time between the starts of two probes of one backend
	Timeout      time.Duration // how long one probe may take
	SuccessCount int           // consecutive successes that bring an offline backend online
	FailureCount int           // consecutive failures that take an online backend offline
	// Source, when valid, is the local address probes are sent from
	// (OVN's per-subnet checker address, ip_port_mappings). Its family
	// must be the backends' family. The zero Addr lets the kernel choose.
	Source netip.Addr
}

// DefaultHealthCheck returns the OVN defaults: interval 5 s, timeout 20 s,
// success_count 3, failure_count 3, no source binding.
func DefaultHealthCheck() HealthCheckConfig {
	return HealthCheckConfig{
		Interval:     DefaultInterval,
		Timeout:      DefaultTimeout,
		SuccessCount: DefaultSuccessCount,
		FailureCount: DefaultFailureCount,
	}
}

// Validate checks c on its own (not against a VIP family).
func (c *HealthCheckConfig) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("%w: health check interval %v must be positive", ErrInvalid, c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: health check timeout %v must be positive", ErrInvalid, c.Timeout)
	case c.SuccessCount < 1:
		return fmt.Errorf("%w: health check success_count %d must be at least 1", ErrInvalid, c.SuccessCount)
	case c.FailureCount < 1:
		return fmt.Errorf("%w: health check failure_count %d must be at least 1", ErrInvalid, c.FailureCount)
	case c.Source.IsValid() && c.Source.Zone() != "":
		return fmt.Errorf("%w: health check source %s must not have a zone", ErrInvalid, c.Source)
	case c.Source.IsValid() && c.Source.IsUnspecified():
		return fmt.Errorf("%w: health check source %s is unspecified; leave it unset instead", ErrInvalid, c.Source)
	}
	return nil
}

// LoadBalancer is one VIP of a load balancer and its backends: the model
// of one entry of OVN's Load_Balancer.vips together with the row's
// protocol, selection_fields, options:affinity_timeout and health check.
type LoadBalancer struct {
	Name     string
	VIP      netip.AddrPort
	Protocol Protocol
	// Backends, in configuration order. May be empty (OVN allows a VIP
	// without backends; the selector then picks nothing).
	Backends []netip.AddrPort
	// SelectionFields are hashed to choose a backend; empty means the
	// 5-tuple (ip_src, ip_dst, tp_src, tp_dst, and the protocol).
	SelectionFields []string
	// AffinityTimeout enables ClientIP session affinity when positive:
	// a client stays on its backend until it has been silent this long.
	AffinityTimeout time.Duration
	// HealthCheck, when non-nil, enables health checking of Backends.
	HealthCheck *HealthCheckConfig
}

// Validate checks the load balancer and returns the first problem found,
// wrapping ErrInvalid and naming the load balancer and the culprit.
func (lb *LoadBalancer) Validate() error {
	if lb.Name == "" {
		return fmt.Errorf("%w: load balancer has no name", ErrInvalid)
	}
	wrap := func(format string, a ...any) error {
		return fmt.Errorf("%w: load balancer %q: %s", ErrInvalid, lb.Name, fmt.Sprintf(format, a...))
	}
	if !lb.Protocol.Valid() {
		return wrap("protocol %q is not tcp or udp", string(lb.Protocol))
	}
	if !lb.VIP.Addr().IsValid() {
		return wrap("no VIP")
	}
	if err := checkEndpoint(lb.VIP); err != "" {
		return wrap("VIP %s: %s", lb.VIP, err)
	}
	seen := make(map[netip.AddrPort]struct{}, len(lb.Backends))
	for _, b := range lb.Backends {
		if err := checkEndpoint(b); err != "" {
			return wrap("backend %s: %s", b, err)
		}
		if b.Addr().Is4() != lb.VIP.Addr().Is4() {
			return wrap("backend %s is not of the VIP's address family", b)
		}
		if _, dup := seen[b]; dup {
			return wrap("backend %s listed twice", b)
		}
		seen[b] = struct{}{}
	}
	var mask fieldMask
	for _, f := range lb.SelectionFields {
		bit, ok := fieldBits[f]
		if !ok {
			return wrap("unknown selection field %q", f)
		}
		if f == FieldIPv4Src || f == FieldIPv4Dst {
			if !lb.VIP.Addr().Is4() {
				return wrap("selection field %q on an IPv6 VIP", f)
			}
		}
		if f == FieldIPv6Src || f == FieldIPv6Dst {
			if lb.VIP.Addr().Is4() {
				return wrap("selection field %q on an IPv4 VIP", f)
			}
		}
		if mask&bit != 0 {
			return wrap("selection field %q given twice", f)
		}
		mask |= bit
	}
	if lb.AffinityTimeout < 0 {
		return wrap("affinity timeout %v is negative", lb.AffinityTimeout)
	}
	if hc := lb.HealthCheck; hc != nil {
		if err := hc.Validate(); err != nil {
			return fmt.Errorf("load balancer %q: %w", lb.Name, err)
		}
		if hc.Source.IsValid() && hc.Source.Is4() != lb.VIP.Addr().Is4() {
			return wrap("health check source %s is not of the VIP's address family", hc.Source)
		}
	}
	return nil
}

// selectionMask returns the validated selection fields as a mask.
func (lb *LoadBalancer) selectionMask() fieldMask {
	var m fieldMask
	for _, f := range lb.SelectionFields {
		m |= fieldBits[f]
	}
	if m == 0 {
		m = maskDefault
	}
	return m
}

func checkEndpoint(ap netip.AddrPort) string {
	a := ap.Addr()
	switch {
	case !a.IsValid():
		return "no address"
	case a.Is4In6():
		return "IPv4-mapped IPv6 address; write it as IPv4"
	case a.Zone() != "":
		return "address has a zone"
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsMulticast():
		return "multicast address"
	case ap.Port() == 0:
		return "port 0 (port-less VIPs are not supported)"
	}
	return ""
}

// ParseVIP parses OVN's "VIP:port=backend:port,backend:port" form (IPv6
// addresses in brackets: "[fd00::1]:80=[fd00::2]:8080"). Spaces around
// the separators are ignored; an empty backend list ("VIP:port=") is
// allowed. Only the syntax and per-address rules are checked here; use
// LoadBalancer.Validate for the whole model.
func ParseVIP(s string) (vip netip.AddrPort, backends []netip.AddrPort, err error) {
	left, right, ok := strings.Cut(s, "=")
	if !ok {
		return vip, nil, fmt.Errorf("%w: %q: missing '=' between VIP and backends", ErrInvalid, s)
	}
	vip, err = parseEndpoint(strings.TrimSpace(left))
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: %q: VIP: %v", ErrInvalid, s, err)
	}
	right = strings.TrimSpace(right)
	if right == "" {
		return vip, nil, nil
	}
	n := strings.Count(right, ",") + 1
	backends = make([]netip.AddrPort, 0, n)
	for part := range strings.SplitSeq(right, ",") {
		b, err := parseEndpoint(strings.TrimSpace(part))
		if err != nil {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: %q: backend: %v", ErrInvalid, s, err)
		}
		if b.Addr().Is4() != vip.Addr().Is4() {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: %q: backend %s is not of the VIP's address family", ErrInvalid, s, b)
		}
		backends = append(backends, b)
	}
	return vip, backends, nil
}

func parseEndpoint(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, errors.New("empty address")
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		if _, aerr := netip.ParseAddr(strings.Trim(s, "[]")); aerr == nil {
			return netip.AddrPort{}, fmt.Errorf("%q has no port (port-less VIPs are not supported)", s)
		}
		return netip.AddrPort{}, err
	}
	if msg := checkEndpoint(ap); msg != "" {
		return netip.AddrPort{}, fmt.Errorf("%s: %s", s, msg)
	}
	return ap, nil
}

// FormatVIP is the inverse of ParseVIP: "VIP:port=b1:port,b2:port".
func FormatVIP(vip netip.AddrPort, backends []netip.AddrPort) string {
	var sb strings.Builder
	sb.WriteString(vip.String())
	sb.WriteByte('=')
	for i, b := range backends {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(b.String())
	}
	return sb.String()
}

// String returns the OVN form of lb's VIP, as FormatVIP.
func (lb *LoadBalancer) String() string { return FormatVIP(lb.VIP, lb.Backends) }

// Clone returns a deep copy of lb.
func (lb *LoadBalancer) Clone() *LoadBalancer {
	c := *lb
	c.Backends = slices.Clone(lb.Backends)
	c.SelectionFields = slices.Clone(lb.SelectionFields)
	if lb.HealthCheck != nil {
		hc := *lb.HealthCheck
		c.HealthCheck = &hc
	}
	return &c
}
