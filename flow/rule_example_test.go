package flow_test

import (
	"fmt"

	"xvs/flow"
)

func ExampleParseFlow() {
	ports := func(name string) (uint32, bool) {
		if name == "uplink" {
			return 2, true
		}
		return 0, false
	}
	fm, err := flow.ParseFlow("priority=100,in_port=1,dl_vlan=10,actions=strip_vlan,output:uplink", ports)
	if err != nil {
		fmt.Println(err)
		return
	}
	tb := flow.NewTableAt(0)
	tb.Add(fm, 0)
	fmt.Print(tb.DumpFlows(nil, 1234e6))

	_, err = flow.ParseFlow("tp_dst=80,actions=drop", ports)
	fmt.Println(err)
	// Output:
	//  cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=100,in_port=1,dl_vlan=10 actions=strip_vlan,output:2
	//  cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=0 actions=NORMAL
	// tp_dst: prerequisite not met: the match must also specify tcp, udp or sctp (or tcp6, udp6, sctp6)
}

func ExampleTable_Lookup() {
	tb := flow.NewTableAt(0)
	fm, _ := flow.ParseFlow("priority=10,tcp,tp_dst=22,actions=drop", nil)
	tb.Add(fm, 0)

	var k flow.Key
	k.InPort = 3
	k.DlType = flow.EthTypeIPv4
	k.NwProto = flow.IPProtoTCP
	k.TpDst = 80
	r, mask := tb.Lookup(&k)
	// The rule chosen, and the fields the decision depended on: any packet
	// agreeing with k on them gets the same rule (a megaflow).
	fmt.Println(flow.FormatMatch(&r.Match, r.Priority), "->", flow.FormatActions(r.Actions()))
	fmt.Println("megaflow:", flow.Match{Key: k, Mask: mask}.String())
	// Output:
	// priority=0 -> NORMAL
	// megaflow: tcp,tp_dst=80
}
