// Package flow turns frames into flow keys and edits frames in place: the
// per-packet vocabulary of the xvs datapath. It holds the fixed-size,
// comparable Key (Open vSwitch field conventions), the Packet buffer with
// its ownership rules, the parser that fills a Key, the in-place header
// edits that actions perform, and the rule table and caches that map keys
// to actions.
//
// Everything on the per-packet path is allocation-free, never panics on
// any input, and retains no frame after returning.
//
// # Header views and parsing
//
// Extract parses one Ethernet frame into a Key and a Layout, in a single
// pass of bounds-checked reads over the frame (no intermediate header
// structs, no copies beyond the fields). It follows Open vSwitch's
// miniflow_extract:
//
//   - L2: destination and source MAC; up to two 802.1Q/802.1ad tags
//     (outer and inner TPID may each be 0x8100 or 0x88a8). A third tag is
//     not parsed: DlType is its TPID, like OVS with vlan-limit 2. An
//     802.3 length field gives DlType EthTypeNone (0x05ff) unless an
//     LLC/SNAP header with the Ethernet OUI carries an ethertype.
//   - ARP/RARP: opcode (low 8 bits, in NwProto), sender/target IPv4 in
//     NwSrc/NwDst, hardware addresses in ArpSha/ArpTha.
//   - IPv4: addresses, TOS byte (DSCP+ECN), TTL, protocol, fragment bits
//     (FragAny, FragLater); options are skipped via IHL; Ethernet padding
//     beyond the total length is ignored.
//   - IPv6: addresses, traffic class (NwTOS), flow label, hop limit (NwTTL),
//     extension headers hop-by-hop, routing, destination options, fragment
//     and AH are skipped to the upper-layer protocol; ESP and no-next-header
//     end the walk. A non-first fragment has NwProto IPProtoFragment.
//   - L4 (not for non-first fragments): TCP ports and 12 flag bits, UDP and
//     SCTP ports, ICMP/IGMP/ICMPv6 type and code in TpSrc/TpDst (each under
//     either IP version, as OVS); for ICMPv6
//     neighbour solicitations/advertisements the link-layer address options
//     go to ArpSha/ArpTha, as in OVS.
//
// The version nibble of IPv4/IPv6 headers is not checked, a TCP data
// offset must be at least 5 and fit, and an IPv6 extension chain cut short
// keeps only the addresses: all as OVS. Tests compare Extract field by
// field with gopacket (fuzzing) and with ovs-vswitchd's own extraction
// (ofproto/trace on a private dummy-datapath instance, thousands of
// frames). Not extracted (no Key fields): MPLS labels, the ND target,
// the IGMP group, tunnel metadata.
//
// The returned DropReason is DropNone for a fully parsed frame, otherwise
// DropTruncated or DropMalformed for the first bad header. The Key still
// holds every field parsed before that header (L2 for a bad IP header, L3
// for a short transport header), because Open vSwitch switches such frames
// on the fields it has: callers are expected to count the reason and may
// still forward on the partial key. Extract never returns DropVLANDepth.
//
// ExtractBatch does the same for a batch of Packets (keys, layouts and
// reasons in caller-owned slices sized once per batch).
//
// Layout records where the network (L3) and transport (L4) headers start
// and how many tags precede L3. The invariant the edits rely on: L4 >= 0
// only if the whole fixed header of NwProto is inside the frame.
//
// # In-place edits
//
// PushVLAN, PopVLAN, SetVLANTCI, SetEthSrc/Dst, SetIPv4Src/Dst/TOS/TTL,
// SetIPv6Src/Dst/TClass/Label/HopLimit and SetL4Src/Dst rewrite a Packet's
// frame in place, using the Key and Layout from Extract instead of parsing
// again. VLAN push grows the frame into the headroom in front of it
// (Packet.Off), pop shrinks it from the front; neither moves the payload.
// Address, TOS/TTL and port rewrites patch the IPv4 header checksum and the
// TCP/UDP/ICMPv6 checksum incrementally (RFC 1624), giving exactly the
// value a full recomputation gives when the checksum was right before;
// UDP's "no checksum" zero stays zero; SCTP's CRC32c is recomputed. The
// Key is never modified by an edit; the Layout follows header moves.
package flow
