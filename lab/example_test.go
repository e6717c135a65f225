package lab_test

import (
	"fmt"
	"log"
	"net/netip"

	"xvs/lab"
)

// A two-host topology through an "upstream switch" namespace holding a
// Linux bridge. (Needs root; not run as a test.)
func Example() {
	l, err := lab.Start("") // random "xvsNNNN" prefix
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close() // removes every namespace and root link of the lab

	sw, _ := l.NS("sw")
	_ = sw.Bridge("br0")
	_ = sw.SetUp("br0")
	for i, name := range []string{"h1", "h2"} {
		h, _ := l.NS(name)
		port := fmt.Sprintf("p%d", i)
		_ = l.Wire(h, "eth0", sw, port) // veth, both ends up, tx csum off
		_ = sw.SetMaster(port, "br0")
		_ = h.AddAddr("eth0", fmt.Sprintf("198.18.0.%d/24", i+1))
	}
}

func ExampleInLabRange() {
	fmt.Println(lab.InLabRange(netip.MustParseAddr("198.19.1.1")))
	fmt.Println(lab.InLabRange(netip.MustParseAddr("192.0.2.1")))
	fmt.Println(lab.InLabRange(netip.MustParseAddr("2001:db8:1::1")))
	// Output:
	// true
	// false
	// true
}
