package flow_test

import (
	"encoding/hex"
	"fmt"

	"xvs/flow"
)

// A UDP datagram in VLAN 10 from 198.18.0.1:1234 to 198.18.0.2:53.
const exampleFrame = "020000000001" + "020000000002" + "8100" + "a00a" + "0800" +
	"4500001c" + "00004000" + "40110000" + "c6120001" + "c6120002" + // IPv4 (checksum not checked)
	"04d2" + "0035" + "0008" + "0000" // UDP, no checksum

func ExampleExtract() {
	frame, _ := hex.DecodeString(exampleFrame)
	var k flow.Key
	var l flow.Layout
	r := flow.Extract(frame, 1, &k, &l)
	fmt.Println(r, k.VLAN[0].VID(), k.VLAN[0].PCP(), k.NwProto, k.TpSrc, k.TpDst)
	fmt.Printf("L3 at %d, L4 at %d, %d tag(s)\n", l.L3, l.L4, l.VLANs)
	// Output:
	// none 10 5 17 1234 53
	// L3 at 18, L4 at 38, 1 tag(s)
}

func ExamplePopVLAN() {
	frame, _ := hex.DecodeString(exampleFrame)
	p := &flow.Packet{Buf: make([]byte, flow.Headroom+len(frame)), Off: flow.Headroom, Len: len(frame)}
	copy(p.Data(), frame)
	var k flow.Key
	var l flow.Layout
	flow.Extract(p.Data(), 1, &k, &l)

	// Untag, then rewrite the destination port; the Layout follows the pop.
	if err := flow.PopVLAN(p, &l); err != nil {
		fmt.Println(err)
	}
	if err := flow.SetL4Dst(p, &k, &l, 5353); err != nil {
		fmt.Println(err)
	}
	fmt.Println(p.Len, l.L3, l.L4)
	fmt.Println(flow.PopVLAN(p, &l))
	flow.Extract(p.Data(), 1, &k, &l)
	fmt.Println(k.VLAN[0].Present(), k.TpDst)
	// Output:
	// 42 14 34
	// flow: frame has no VLAN tag
	// false 5353
}
