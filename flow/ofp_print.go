package flow

import (
	"net/netip"
	"strconv"
	"strings"
)

// String prints the match in ovs-ofctl syntax, the compact form used by
// ofproto/trace and dump-flows ("tcp,in_port=1,nw_src=198.18.0.0/16");
// the empty string for a catch-all match.
func (m Match) String() string {
	var b strings.Builder
	m.appendTo(&b)
	return strings.TrimSuffix(b.String(), ",")
}

// FormatMatch prints "priority=P," (omitted for the default priority
// 32768, like ovs-ofctl) followed by the match, without a trailing comma.
func FormatMatch(m *Match, priority uint16) string {
	var b strings.Builder
	if priority != DefaultPriority {
		b.WriteString("priority=")
		b.WriteString(strconv.Itoa(int(priority)))
		b.WriteByte(',')
	}
	m.appendTo(&b)
	return strings.TrimSuffix(b.String(), ",")
}

// appendTo writes the fields in the order Open vSwitch 3.1's match_format
// uses, each followed by a comma.
func (m *Match) appendTo(b *strings.Builder) {
	k, w := &m.Key, &m.Mask
	put := func(name, val string) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(val)
		b.WriteByte(',')
	}
	dec := func(v uint64) string { return strconv.FormatUint(v, 10) }
	hex := func(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

	skipType, skipProto := false, false
	if w.DlType != 0 {
		skipType = true
		switch k.DlType {
		case EthTypeIPv4, EthTypeIPv6:
			v6 := k.DlType == EthTypeIPv6
			name := ""
			if w.NwProto != 0 {
				skipProto = true
				switch k.NwProto {
				case IPProtoICMP:
					if !v6 {
						name = "icmp"
					}
				case IPProtoICMPv6:
					if v6 {
						name = "icmp6"
					}
				case IPProtoTCP:
					name = "tcp"
				case IPProtoUDP:
					name = "udp"
				case IPProtoSCTP:
					name = "sctp"
				}
				if name != "" && v6 && k.NwProto != IPProtoICMPv6 {
					name += "6"
				}
			}
			if name == "" {
				skipProto = false
				name = "ip"
				if v6 {
					name = "ipv6"
				}
			}
			b.WriteString(name)
			b.WriteByte(',')
		case EthTypeARP:
			b.WriteString("arp,")
		case EthTypeRARP:
			b.WriteString("rarp,")
		default:
			skipType = false
		}
	}
	if w.InPort != 0 {
		put("in_port", PortName(k.InPort))
	}
	for i := range k.VLAN {
		tm := w.VLAN[i].TCI
		if tm == 0 {
			continue
		}
		sfx := ""
		if i > 0 {
			sfx = strconv.Itoa(i)
		}
		tci := k.VLAN[i].TCI
		vidMask, pcpMask, cfi := tm&VLANVIDMask, tm&VLANPCPMask, tm&VLANCFI
		switch {
		case cfi != 0 && tci&VLANCFI != 0 &&
			(vidMask == 0 || vidMask == VLANVIDMask) &&
			(pcpMask == 0 || pcpMask == VLANPCPMask) &&
			(vidMask != 0 || pcpMask != 0):
			if vidMask != 0 {
				put("dl_vlan"+sfx, dec(uint64(tci&VLANVIDMask)))
			}
			if pcpMask != 0 {
				put("dl_vlan_pcp"+sfx, dec(uint64(tci>>13)))
			}
		case tm == 0xffff:
			put("vlan_tci"+sfx, hex4(tci))
		default:
			put("vlan_tci"+sfx, hex4(tci)+"/"+hex4(tm))
		}
	}
	putMAC := func(name string, v, mk [6]byte) {
		if mk == ([6]byte{}) {
			return
		}
		s := formatMAC(v)
		if mk != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
			s += "/" + formatMAC(mk)
		}
		put(name, s)
	}
	putMAC("dl_src", k.DlSrc, w.DlSrc)
	putMAC("dl_dst", k.DlDst, w.DlDst)
	if !skipType && w.DlType != 0 {
		put("dl_type", "0x"+hex4(k.DlType)[2:])
	}
	switch k.DlType {
	case EthTypeIPv6:
		putIPv6 := func(name string, v, mk [16]byte) {
			if mk == ([16]byte{}) {
				return
			}
			s := netip.AddrFrom16(v).String()
			if ones, ok := prefixLen(mk[:]); !ok {
				s += "/" + netip.AddrFrom16(mk).String()
			} else if ones != 128 {
				s += "/" + strconv.Itoa(ones)
			}
			put(name, s)
		}
		putIPv6("ipv6_src", k.NwSrc, w.NwSrc)
		putIPv6("ipv6_dst", k.NwDst, w.NwDst)
		switch w.IPv6Label {
		case 0:
		case 0xfffff:
			put("ipv6_label", hex5(k.IPv6Label))
		default:
			put("ipv6_label", hex5(k.IPv6Label)+"/"+hex5(w.IPv6Label))
		}
	case EthTypeARP, EthTypeRARP:
		putIPv4("arp_spa", k.NwSrc, w.NwSrc, put)
		putIPv4("arp_tpa", k.NwDst, w.NwDst, put)
	default:
		putIPv4("nw_src", k.NwSrc, w.NwSrc, put)
		putIPv4("nw_dst", k.NwDst, w.NwDst, put)
	}
	arp := k.DlType == EthTypeARP || k.DlType == EthTypeRARP
	if !skipProto && w.NwProto != 0 {
		if arp {
			put("arp_op", dec(uint64(k.NwProto)))
		} else {
			put("nw_proto", dec(uint64(k.NwProto)))
		}
	}
	if arp {
		putMAC("arp_sha", k.ArpSha, w.ArpSha)
		putMAC("arp_tha", k.ArpTha, w.ArpTha)
	}
	if w.NwTOS&0xfc != 0 {
		put("nw_tos", dec(uint64(k.NwTOS&0xfc)))
	}
	if w.NwTOS&0x03 != 0 {
		put("nw_ecn", dec(uint64(k.NwTOS&0x03)))
	}
	if w.NwTTL != 0 {
		put("nw_ttl", dec(uint64(k.NwTTL)))
	}
	switch w.NwFrag & (FragAny | FragLater) {
	case FragAny | FragLater:
		switch k.NwFrag & (FragAny | FragLater) {
		case 0:
			put("nw_frag", "no")
		case FragAny:
			put("nw_frag", "first")
		case FragAny | FragLater:
			put("nw_frag", "later")
		default:
			put("nw_frag", "<error>")
		}
	case FragAny:
		put("nw_frag", pick(k.NwFrag&FragAny != 0, "yes", "no"))
	case FragLater:
		put("nw_frag", pick(k.NwFrag&FragLater != 0, "later", "not_later"))
	}
	be16 := func(name string, v, mk uint16) {
		switch mk {
		case 0:
		case 0xffff:
			put(name, dec(uint64(v)))
		default:
			put(name, hex(uint64(v))+"/"+hex(uint64(mk)))
		}
	}
	if k.DlType == EthTypeIPv4 && k.NwProto == IPProtoICMP || k.DlType == EthTypeIPv6 && k.NwProto == IPProtoICMPv6 {
		be16("icmp_type", k.TpSrc, w.TpSrc)
		be16("icmp_code", k.TpDst, w.TpDst)
	} else {
		be16("tp_src", k.TpSrc, w.TpSrc)
		be16("tp_dst", k.TpDst, w.TpDst)
	}
	if (k.DlType == EthTypeIPv4 || k.DlType == EthTypeIPv6) && k.NwProto == IPProtoTCP && w.TCPFlags&tcpFlagsMask != 0 {
		put("tcp_flags", formatTCPFlags(k.TCPFlags, w.TCPFlags&tcpFlagsMask))
	}
}

// formatTCPFlags prints flags as ovs-ofctl does: "syn|ack" (or "0") under
// a full mask, "+syn-ack" under a partial one.
func formatTCPFlags(v, m uint16) string {
	var b strings.Builder
	if m == tcpFlagsMask {
		for i, n := range tcpFlagNames {
			if v&(1<<i) != 0 {
				if b.Len() > 0 {
					b.WriteByte('|')
				}
				b.WriteString(n)
			}
		}
		if b.Len() == 0 {
			return "0"
		}
		return b.String()
	}
	for i, n := range tcpFlagNames {
		if m&(1<<i) != 0 {
			if v&(1<<i) != 0 {
				b.WriteByte('+')
			} else {
				b.WriteByte('-')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

func hex5(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	for len(s) < 5 {
		s = "0" + s
	}
	return "0x" + s
}

// FormatKey prints a packet's flow key the way ofproto/trace prints its
// "Flow:" line: every field the packet has, including zero values
// ("icmp,in_port=1,vlan_tci=0x0000,dl_src=...,nw_tos=0,nw_ecn=0,
// nw_ttl=64,nw_frag=no,icmp_type=8,icmp_code=0"). ParseMatch reads it
// back to the same key.
func FormatKey(k *Key) string {
	m := Match{Key: *k, Mask: PacketMask(k)}
	m.Normalize()
	return m.String()
}

// PacketMask returns the mask of the fields that are meaningful for a
// packet with key k (like OVS's flow_wildcards_init_for_packet): L2
// always, L3 for IPv4/IPv6/ARP, L4 unless the packet is a later fragment.
func PacketMask(k *Key) Key {
	var w Key
	if k.InPort != 0 {
		w.InPort = 0xffffffff
	}
	w.VLAN[0].TCI = 0xffff
	if k.VLAN[0].TCI&VLANCFI != 0 {
		w.VLAN[1].TCI = 0xffff
	}
	w.DlSrc = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	w.DlDst = w.DlSrc
	w.DlType = 0xffff
	switch k.DlType {
	case EthTypeIPv4, EthTypeIPv6:
		if k.DlType == EthTypeIPv4 {
			copy(w.NwSrc[:4], []byte{0xff, 0xff, 0xff, 0xff})
			copy(w.NwDst[:4], []byte{0xff, 0xff, 0xff, 0xff})
		} else {
			for i := range w.NwSrc {
				w.NwSrc[i], w.NwDst[i] = 0xff, 0xff
			}
			w.IPv6Label = 0xfffff
		}
		w.NwTOS, w.NwTTL, w.NwProto = 0xff, 0xff, 0xff
		w.NwFrag = FragAny | FragLater
		if k.NwFrag&FragLater != 0 {
			break
		}
		switch k.NwProto {
		case IPProtoTCP:
			w.TCPFlags = tcpFlagsMask
			fallthrough
		case IPProtoUDP, IPProtoSCTP:
			w.TpSrc, w.TpDst = 0xffff, 0xffff
		case IPProtoICMP:
			if k.DlType == EthTypeIPv4 {
				w.TpSrc, w.TpDst = 0xffff, 0xffff
			}
		case IPProtoICMPv6:
			if k.DlType == EthTypeIPv6 {
				w.TpSrc, w.TpDst = 0xffff, 0xffff
			}
		}
	case EthTypeARP, EthTypeRARP:
		copy(w.NwSrc[:4], []byte{0xff, 0xff, 0xff, 0xff})
		copy(w.NwDst[:4], []byte{0xff, 0xff, 0xff, 0xff})
		w.NwProto = 0xff
		w.ArpSha = w.DlSrc
		w.ArpTha = w.DlSrc
	}
	return w
}

func hex4(v uint16) string {
	const hexd = "0123456789abcdef"
	return string([]byte{'0', 'x', hexd[v>>12], hexd[v>>8&15], hexd[v>>4&15], hexd[v&15]})
}

func putIPv4(name string, v, mk [16]byte, put func(string, string)) {
	m4 := [4]byte(mk[:4])
	if m4 == ([4]byte{}) {
		return
	}
	s := netip.AddrFrom4([4]byte(v[:4])).String()
	if ones, ok := prefixLen(m4[:]); !ok {
		s += "/" + netip.AddrFrom4(m4).String()
	} else if ones != 32 {
		s += "/" + strconv.Itoa(ones)
	}
	put(name, s)
}

// prefixLen returns the number of leading one bits of mask and whether
// the mask is a contiguous prefix.
func prefixLen(mask []byte) (int, bool) {
	n := 0
	for i, c := range mask {
		if c == 0xff {
			n += 8
			continue
		}
		for c&0x80 != 0 {
			n++
			c <<= 1
		}
		if c != 0 {
			return 0, false
		}
		for _, r := range mask[i+1:] {
			if r != 0 {
				return 0, false
			}
		}
		return n, true
	}
	return n, true
}

// String prints the rule as ovs-ofctl --no-stats dump-flows does (minus
// the leading space): "cookie=0x5, table=2, idle_timeout=10, priority=10,ip
// actions=NORMAL", with cookie, table and timeouts only when non-zero.
// ParseFlow reads it back into an identical rule.
func (r *Rule) String() string {
	var b strings.Builder
	if r.Cookie != 0 {
		b.WriteString("cookie=0x")
		b.WriteString(strconv.FormatUint(r.Cookie, 16))
		b.WriteString(", ")
	}
	if r.Table != 0 {
		b.WriteString("table=")
		b.WriteString(strconv.Itoa(int(r.Table)))
		b.WriteString(", ")
	}
	if r.IdleTimeout != 0 {
		b.WriteString("idle_timeout=")
		b.WriteString(strconv.Itoa(int(r.IdleTimeout)))
		b.WriteString(", ")
	}
	if r.HardTimeout != 0 {
		b.WriteString("hard_timeout=")
		b.WriteString(strconv.Itoa(int(r.HardTimeout)))
		b.WriteString(", ")
	}
	if m := FormatMatch(&r.Match, r.Priority); m != "" {
		b.WriteString(m)
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	b.WriteString(FormatActions(r.Actions()))
	return b.String()
}

// FormatFlowStats prints one rule as a line of ovs-ofctl dump-flows
// (Open vSwitch 3.1, default NXM output), at time now (unix ns):
//
//	cookie=0x0, duration=1.234s, table=0, n_packets=3, n_bytes=180, idle_timeout=10, idle_age=0, priority=100,in_port=1,dl_vlan=10 actions=strip_vlan,output:2
//
// The line starts with a space, as in ovs-ofctl's output. hard_age is
// printed only when the actions were modified after the rule was added.
func FormatFlowStats(r *Rule, now int64) string {
	var b strings.Builder
	pk, by := r.Stats()
	b.WriteString(" cookie=0x")
	b.WriteString(strconv.FormatUint(r.Cookie, 16))
	b.WriteString(", duration=")
	b.WriteString(formatDuration(now - r.created))
	b.WriteString("s, table=")
	b.WriteString(strconv.Itoa(int(r.Table)))
	b.WriteString(", n_packets=")
	b.WriteString(strconv.FormatUint(pk, 10))
	b.WriteString(", n_bytes=")
	b.WriteString(strconv.FormatUint(by, 10))
	b.WriteString(", ")
	if r.IdleTimeout != 0 {
		b.WriteString("idle_timeout=")
		b.WriteString(strconv.Itoa(int(r.IdleTimeout)))
		b.WriteString(", ")
	}
	if r.HardTimeout != 0 {
		b.WriteString("hard_timeout=")
		b.WriteString(strconv.Itoa(int(r.HardTimeout)))
		b.WriteString(", ")
	}
	b.WriteString("idle_age=")
	b.WriteString(strconv.FormatInt(max(0, now-r.Used())/1e9, 10))
	b.WriteString(", ")
	if hardAge, dur := max(0, now-r.modified)/1e9, max(0, now-r.created)/1e9; hardAge != dur {
		b.WriteString("hard_age=")
		b.WriteString(strconv.FormatInt(hardAge, 10))
		b.WriteString(", ")
	}
	m := FormatMatch(&r.Match, r.Priority)
	b.WriteString(m)
	if m != "" {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	b.WriteString(FormatActions(r.Actions()))
	return b.String()
}

// formatDuration prints nanoseconds as ovs-ofctl prints durations with
// millisecond precision: "5", "0.082", "12.300".
func formatDuration(ns int64) string {
	if ns < 0 {
		ns = 0
	}
	sec, ms := ns/1e9, (ns%1e9)/1e6
	s := strconv.FormatInt(sec, 10)
	if ms == 0 {
		return s
	}
	frac := strconv.FormatInt(1000+ms, 10)[1:]
	return s + "." + frac
}

// DumpFlows returns ovs-ofctl dump-flows lines (see FormatFlowStats) for
// the rules fm selects loosely (nil: every rule), in table, priority,
// age order, each terminated by a newline.
func (t *Table) DumpFlows(fm *FlowMod, now int64) string {
	var rs []*Rule
	if fm == nil {
		rs = t.Rules(TableAll)
	} else {
		rs = t.Select(fm, false)
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(FormatFlowStats(r, now))
		b.WriteByte('\n')
	}
	return b.String()
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// FormatTraceRule prints the ofproto/trace line for a lookup in table tid
// that found r (nil: no rule matched), as Open vSwitch 3.1 does:
// " 0. in_port=1,dl_vlan=10, priority 100, cookie 0x5" or " 0. No match.".
func FormatTraceRule(tid uint8, r *Rule) string {
	var b strings.Builder
	if tid < 10 {
		b.WriteByte(' ')
	}
	b.WriteString(strconv.Itoa(int(tid)))
	b.WriteString(". ")
	if r == nil {
		b.WriteString("No match.")
		return b.String()
	}
	if m := r.Match.String(); m != "" {
		b.WriteString(m)
		b.WriteString(", ")
	}
	b.WriteString("priority ")
	b.WriteString(strconv.Itoa(int(r.Priority)))
	if r.Cookie != 0 {
		b.WriteString(", cookie 0x")
		b.WriteString(strconv.FormatUint(r.Cookie, 16))
	}
	return b.String()
}

// Aggregate sums the counters of the rules fm selects loosely (nil: all
// rules), as ovs-ofctl dump-aggregate reports them.
func (t *Table) Aggregate(fm *FlowMod) (packets, bytes uint64, flows int) {
	var rs []*Rule
	if fm == nil {
		rs = t.Rules(TableAll)
	} else {
		rs = t.Select(fm, false)
	}
	for _, r := range rs {
		p, b := r.Stats()
		packets += p
		bytes += b
	}
	return packets, bytes, len(rs)
}

// FormatAggregate prints dump-aggregate's statistics line (without the
// reply header): "packet_count=2 byte_count=212 flow_count=6".
func FormatAggregate(packets, bytes uint64, flows int) string {
	return "packet_count=" + strconv.FormatUint(packets, 10) +
		" byte_count=" + strconv.FormatUint(bytes, 10) +
		" flow_count=" + strconv.Itoa(flows)
}
