package lb

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func validLB() *LoadBalancer {
	hc := DefaultHealthCheck()
	hc.Source = netip.MustParseAddr("10.0.0.2")
	return &LoadBalancer{
		Name:            "svc",
		VIP:             mustAP("10.96.0.10:80"),
		Protocol:        TCP,
		Backends:        []netip.AddrPort{mustAP("10.0.0.5:8080"), mustAP("10.0.0.6:8080")},
		SelectionFields: []string{FieldIPSrc},
		AffinityTimeout: 10800 * time.Second,
		HealthCheck:     &hc,
	}
}

func TestValidate(t *testing.T) {
	if err := validLB().Validate(); err != nil {
		t.Fatalf("valid LB: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*LoadBalancer)
		want   string
	}{
		{"no name", func(l *LoadBalancer) { l.Name = "" }, "no name"},
		{"sctp", func(l *LoadBalancer) { l.Protocol = "sctp" }, `protocol "sctp"`},
		{"no vip", func(l *LoadBalancer) { l.VIP = netip.AddrPort{} }, "no VIP"},
		{"vip port 0", func(l *LoadBalancer) { l.VIP = mustAP("10.96.0.10:0") }, "port 0"},
		{"mapped", func(l *LoadBalancer) { l.Backends[0] = mustAP("[::ffff:10.0.0.5]:80") }, "IPv4-mapped"},
		{"family", func(l *LoadBalancer) { l.Backends[0] = mustAP("[fd00::5]:80") }, "address family"},
		{"dup", func(l *LoadBalancer) { l.Backends[1] = l.Backends[0] }, "listed twice"},
		{"field", func(l *LoadBalancer) { l.SelectionFields = []string{"ip_proto"} }, `unknown selection field "ip_proto"`},
		{"field twice", func(l *LoadBalancer) { l.SelectionFields = []string{"ip_src", "ipv4_src"} }, "given twice"},
		{"v6 field", func(l *LoadBalancer) { l.SelectionFields = []string{"ipv6_src"} }, "IPv4 VIP"},
		{"affinity", func(l *LoadBalancer) { l.AffinityTimeout = -time.Second }, "negative"},
		{"interval", func(l *LoadBalancer) { l.HealthCheck.Interval = 0 }, "interval"},
		{"timeout", func(l *LoadBalancer) { l.HealthCheck.Timeout = -1 }, "timeout"},
		{"success", func(l *LoadBalancer) { l.HealthCheck.SuccessCount = 0 }, "success_count"},
		{"failure", func(l *LoadBalancer) { l.HealthCheck.FailureCount = 0 }, "failure_count"},
		{"source family", func(l *LoadBalancer) { l.HealthCheck.Source = netip.MustParseAddr("::1") }, "source ::1"},
		{"source unspecified", func(l *LoadBalancer) { l.HealthCheck.Source = netip.IPv4Unspecified() }, "unspecified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := validLB()
			tt.modify(l)
			err := l.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseVIP(t *testing.T) {
	good := []struct{ in, out string }{
		{"10.96.0.10:80=10.0.0.5:8080,10.0.0.6:8080", ""},
		{" 10.96.0.10:80 = 10.0.0.5:8080 , 10.0.0.6:8080 ", "10.96.0.10:80=10.0.0.5:8080,10.0.0.6:8080"},
		{"[fd00::10]:53=[fd00::5]:5353", ""},
		{"10.96.0.10:80=", ""},
	}
	for _, g := range good {
		vip, bs, err := ParseVIP(g.in)
		if err != nil {
			t.Errorf("ParseVIP(%q): %v", g.in, err)
			continue
		}
		want := g.out
		if want == "" {
			want = g.in
		}
		if got := FormatVIP(vip, bs); got != want {
			t.Errorf("FormatVIP(ParseVIP(%q)) = %q, want %q", g.in, got, want)
		}
	}
	bad := []struct{ in, want string }{
		{"10.96.0.10:80", "missing '='"},
		{"10.96.0.10=10.0.0.5:80", "no port"},
		{"10.96.0.10:80=10.0.0.5", "no port"},
		{"10.96.0.10:80=10.0.0.5:80,", "empty address"},
		{"10.96.0.10:80=[fd00::5]:80", "address family"},
		{"fd00::10:80=[fd00::5]:80", "VIP"},
		{"0.0.0.0:80=10.0.0.5:80", "unspecified"},
		{"10.96.0.10:70000=10.0.0.5:80", "VIP"},
	}
	for _, b := range bad {
		_, _, err := ParseVIP(b.in)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseVIP(%q) error = %v, want one wrapping ErrInvalid mentioning %q", b.in, err, b.want)
		}
	}
}

func FuzzParseVIP(f *testing.F) {
	for _, s := range []string{
		"10.96.0.10:80=10.0.0.5:8080,10.0.0.6:8080", "[fd00::10]:53=[fd00::5]:5353",
		"1.2.3.4:1=", "=", "[::1]:1=[::1]:2,[::1]:3", "1.2.3.4:5=6.7.8.9:10,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vip, bs, err := ParseVIP(s)
		if err != nil {
			return
		}
		out := FormatVIP(vip, bs)
		vip2, bs2, err := ParseVIP(out)
		if err != nil {
			t.Fatalf("ParseVIP(FormatVIP(%q) = %q): %v", s, out, err)
		}
		if vip2 != vip || FormatVIP(vip2, bs2) != out {
			t.Fatalf("round trip of %q changed: %q", s, FormatVIP(vip2, bs2))
		}
	})
}
