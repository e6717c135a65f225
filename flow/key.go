package flow

import "unsafe"

// VLANHdr is one 802.1Q/802.1ad header as it appears in a flow key.
//
// TCI follows Open vSwitch's convention: the CFI/DEI bit (0x1000) is set
// whenever the tag is present, so "no tag" (TCI == 0) differs from
// "tag with VID 0, PCP 0" (TCI == 0x1000). TPID is 0 when no tag is present.
type VLANHdr struct {
	TPID uint16
	TCI  uint16
}

// VLAN TCI helpers.
const (
	VLANCFI     = 0x1000 // "tag present" marker inside Key.VLAN[i].TCI
	VLANVIDMask = 0x0fff
	VLANPCPMask = 0xe000
)

// VID returns the 12-bit VLAN ID of the header (0 when absent).
func (h VLANHdr) VID() uint16 { return h.TCI & VLANVIDMask }

// PCP returns the 3-bit priority of the header.
func (h VLANHdr) PCP() uint8 { return uint8(h.TCI >> 13) }

// Present reports whether the tag exists.
func (h VLANHdr) Present() bool { return h.TCI&VLANCFI != 0 }

// Key is the fixed-size, comparable flow key extracted from a frame.
//
// Its layout is deliberate: the struct is exactly KeyWords 64-bit words
// with explicit padding, so that masks (also Keys) can be applied and
// hashed word by word (see Words). Padding must stay zero.
//
// Field conventions follow Open vSwitch:
//   - IPv4 addresses live in the first 4 bytes of NwSrc/NwDst (rest zero);
//     IPv6 addresses use all 16 bytes.
//   - For ARP, NwSrc/NwDst hold the sender/target protocol addresses,
//     NwProto holds the low byte of the ARP opcode, ArpSha/ArpTha the
//     hardware addresses.
//   - For ICMP/ICMPv6, TpSrc is the type and TpDst the code.
//   - DlType is the ethertype after all VLAN tags (0x05ff for 802.2 frames
//     with no ethertype, like OVS's FLOW_DL_TYPE_NONE).
type Key struct {
	InPort    uint32     // word 0
	DlType    uint16     //
	NwProto   uint8      //
	NwTOS     uint8      // DSCP+ECN byte
	VLAN      [2]VLANHdr // word 1: outer, inner
	DlSrc     [6]byte    // word 2..3
	DlDst     [6]byte    //
	TpSrc     uint16     //
	TpDst     uint16     //
	NwSrc     [16]byte   // word 4..5
	NwDst     [16]byte   // word 6..7
	ArpSha    [6]byte    // word 8..9
	ArpTha    [6]byte    //
	IPv6Label uint32     //
	NwTTL     uint8      // word 10
	NwFrag    uint8      // FragAny|FragLater
	TCPFlags  uint16     //
	_         [4]byte    // padding, always zero
}

// KeyWords is the size of a Key in 64-bit words.
const KeyWords = 11

// Fragment bits of Key.NwFrag (as OVS's nw_frag).
const (
	FragAny   = 1 << 0 // the packet is a fragment (first or later)
	FragLater = 1 << 1 // the packet is a non-first fragment (no L4 header)
)

// Words views the key as an array of 64-bit words (no copy).
func (k *Key) Words() *[KeyWords]uint64 {
	return (*[KeyWords]uint64)(unsafe.Pointer(k))
}

var _ = [1]struct{}{}[unsafe.Sizeof(Key{})-KeyWords*8] // compile-time size check

// IsIPv4 reports whether the key describes an IPv4 packet.
func (k *Key) IsIPv4() bool { return k.DlType == EthTypeIPv4 }

// IsIPv6 reports whether the key describes an IPv6 packet.
func (k *Key) IsIPv6() bool { return k.DlType == EthTypeIPv6 }

// Ethertypes and IP protocol numbers used throughout xvs.
const (
	EthTypeIPv4   = 0x0800
	EthTypeARP    = 0x0806
	EthTypeRARP   = 0x8035
	EthTypeVLAN   = 0x8100 // 802.1Q
	EthTypeQinQ   = 0x88a8 // 802.1ad
	EthTypeIPv6   = 0x86dd
	EthTypeNone   = 0x05ff // 802.2/802.3 frame without an ethertype
	IPProtoICMP   = 1
	IPProtoTCP    = 6
	IPProtoUDP    = 17
	IPProtoICMPv6 = 58
	IPProtoSCTP   = 132
)

// Layout records where each header starts in the frame a Key was extracted
// from, so actions can edit the frame in place. Offsets are from the start
// of the frame; -1 means "not present".
type Layout struct {
	L3 int16 // start of the network header (after all VLAN tags)
	L4 int16 // start of the transport header (-1 for later fragments, unknown protocols)
	// VLANs is the number of VLAN tags parsed (0..2); tags begin at offset 12.
	VLANs uint8
}

// DropReason says why a frame was not (fully) parsed. Parse failures are
// counted per reason by callers; they never panic.
type DropReason uint8

const (
	DropNone      DropReason = iota
	DropTruncated            // frame shorter than a header it claims
	DropMalformed            // a header field is invalid (bad IHL, version...)
	DropVLANDepth            // more than two VLAN tags
	NumDropReasons
)

var dropNames = [NumDropReasons]string{"none", "truncated", "malformed", "vlan_depth"}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}
