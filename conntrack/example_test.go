package conntrack_test

import (
	"fmt"

	"xvs/conntrack"
)

func ExampleParseNAT() {
	n, err := conntrack.ParseNAT("dst=10.244.1.5-10.244.1.9:8080")
	fmt.Println(n.Kind == conntrack.NATDst, n.AddrMin, n.AddrMax, n.PortMin, n.PortMax, err)
	fmt.Println(n)
	// Output:
	// true 10.244.1.5 10.244.1.9 8080 8080 <nil>
	// dst=10.244.1.5-10.244.1.9:8080
}

func ExampleFlags_String() {
	fmt.Println(conntrack.CSTrk | conntrack.CSEst | conntrack.CSRpl)
	// Output: +est+rpl+trk
}
