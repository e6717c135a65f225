package lb_test

import (
	"fmt"
	"net/netip"
	"time"

	"xvs/lb"
)

func ExampleParseVIP() {
	vip, backends, err := lb.ParseVIP("10.96.0.10:80=10.0.0.5:8080, 10.0.0.6:8080")
	if err != nil {
		panic(err)
	}
	fmt.Println(vip, backends)
	fmt.Println(lb.FormatVIP(vip, backends))
	_, _, err = lb.ParseVIP("10.96.0.10=10.0.0.5:8080")
	fmt.Println(err)
	// Output:
	// 10.96.0.10:80 [10.0.0.5:8080 10.0.0.6:8080]
	// 10.96.0.10:80=10.0.0.5:8080,10.0.0.6:8080
	// invalid load balancer: "10.96.0.10=10.0.0.5:8080": VIP: "10.96.0.10" has no port (port-less VIPs are not supported)
}

func ExampleSelector() {
	vip, backends, _ := lb.ParseVIP("10.96.0.10:80=10.0.0.5:8080,10.0.0.6:8080,10.0.0.7:8080")
	sel, err := lb.NewSelector(&lb.LoadBalancer{
		Name: "svc", VIP: vip, Protocol: lb.TCP, Backends: backends,
		SelectionFields: []string{lb.FieldIPSrc},
		AffinityTimeout: 10800 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_700_000_000, 0)
	f := lb.Flow{Src: netip.MustParseAddr("172.16.0.1"), Dst: vip.Addr(), SrcPort: 40000, DstPort: 80}
	first, _ := sel.Pick(&f, now)

	// The client keeps talking for a day, one packet an hour: it stays.
	for h := 1; h <= 24; h++ {
		f.SrcPort++
		b, _ := sel.Pick(&f, now.Add(time.Duration(h)*time.Hour))
		if b != first {
			fmt.Println("moved")
		}
	}
	// Its backend goes offline: the pin is dropped, it moves.
	sel.SetOnline(first, false)
	b, _ := sel.Pick(&f, now.Add(25*time.Hour))
	fmt.Println(b != first, len(sel.Online()))
	// Output:
	// true 2
}
