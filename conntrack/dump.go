package conntrack

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"xvs/flow"
)

var protoNames = map[uint8]string{
	flow.IPProtoTCP: "tcp", flow.IPProtoUDP: "udp", flow.IPProtoICMP: "icmp",
	flow.IPProtoICMPv6: "icmpv6", flow.IPProtoSCTP: "sctp",
}

// Dump returns one line per connection, sorted, in the format of
// ovs-appctl dpctl/dump-conntrack:
//
//	tcp,orig=(src=198.18.0.1,dst=198.18.0.2,sport=1234,dport=80),reply=(src=198.18.0.2,dst=198.18.0.1,sport=80,dport=1234),zone=3,mark=1,labels=0x...,protoinfo=(state=ESTABLISHED)
//
// As OVS, zone, mark and labels are printed only when not zero; the
// protocol is "tcp6", "udp6"... for IPv6 (ICMPv6 is "icmpv6"); TCP prints
// state=S when both peers are in S, else state_orig=..,state_reply=...
// Dump takes each shard's lock briefly; it is meant for the control path.
func (t *Tracker) Dump() []string { return t.dump(func(*conn) bool { return true }) }

// DumpZone is Dump restricted to one zone.
func (t *Tracker) DumpZone(zone uint16) []string {
	return t.dump(func(c *conn) bool { return c.orig.Zone == zone })
}

func (t *Tracker) dump(match func(*conn) bool) []string {
	var out []string
	for _, c := range t.conns() {
		if match(c) {
			out = append(out, c.String())
		}
	}
	slices.Sort(out)
	return out
}

// String formats the connection as one Dump line.
func (c *conn) String() string {
	c.mu.Lock()
	mark, label, tcp := c.mark, c.label, c.tcp
	c.mu.Unlock()
	var b strings.Builder
	name, ok := protoNames[c.orig.Proto]
	if !ok {
		name = fmt.Sprintf("%d", c.orig.Proto)
	}
	b.WriteString(name)
	if c.orig.IPv6 && c.orig.Proto != flow.IPProtoICMPv6 {
		b.WriteString("6")
	}
	var reqT, repT uint8 = icmp4Echo, icmp4EchoReply
	if c.orig.IPv6 {
		reqT, repT = icmp6EchoRequest, icmp6EchoReply
	}
	b.WriteString(",orig=(")
	c.orig.format(&b, reqT, 0)
	b.WriteString("),reply=(")
	c.reply.format(&b, repT, 0)
	b.WriteString(")")
	if c.orig.Zone != 0 {
		fmt.Fprintf(&b, ",zone=%d", c.orig.Zone)
	}
	if mark != 0 {
		fmt.Fprintf(&b, ",mark=%d", mark)
	}
	if label != ([16]byte{}) {
		l := label[:]
		for len(l) > 1 && l[0] == 0 {
			l = l[1:]
		}
		s := hex.EncodeToString(l)
		b.WriteString(",labels=0x" + strings.TrimPrefix(s, "0"))
	}
	if c.orig.Proto == flow.IPProtoTCP {
		if tcp[0] == tcp[1] {
			fmt.Fprintf(&b, ",protoinfo=(state=%s)", tcpStateNames[tcp[0]])
		} else {
			fmt.Fprintf(&b, ",protoinfo=(state_orig=%s,state_reply=%s)",
				tcpStateNames[tcp[0]], tcpStateNames[tcp[1]])
		}
	}
	return b.String()
}
