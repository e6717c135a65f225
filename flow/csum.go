package flow

import (
	"encoding/binary"
	"hash/crc32"
)

// Internet checksum helpers. Edits patch checksums
// incrementally (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')), which is
// exact: for a header whose checksum was correct before the edit, the
// patched value equals a full recomputation (the sum of a non-zero header
// never folds to +0, so the ±0 ambiguity of one's complement cannot
// arise). A checksum that was wrong before stays exactly as wrong, like
// Open vSwitch.

// csumFold folds a 32-bit one's complement accumulator into 16 bits.
func csumFold(s uint32) uint16 {
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}

// csumReplace16 returns checksum c patched for one 16-bit word changing
// from old to new.
func csumReplace16(c, old, new uint16) uint16 {
	return ^csumFold(uint32(^c) + uint32(^old) + uint32(new))
}

// csumDelta returns the one's complement difference of the even-length,
// 16-bit aligned bytes old becoming new (len(new) >= len(old)), to be
// applied to one or more checksums with csumApply.
func csumDelta(old, new []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(old); i += 2 {
		s += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	return s
}

// csumApply returns checksum c patched by a csumDelta (at most 16 bytes'
// worth, so the 32-bit sum cannot overflow).
func csumApply(c uint16, delta uint32) uint16 {
	return ^csumFold(uint32(^c) + delta)
}

// csumReplace returns checksum c patched for old becoming new.
func csumReplace(c uint16, old, new []byte) uint16 {
	return csumApply(c, csumDelta(old, new))
}

// l4CsumApply patches the transport checksum field by delta. For UDP
// (udp true) a zero field means "no checksum" and stays zero, and a
// computed zero is sent as 0xffff (RFC 768).
func l4CsumApply(field []byte, udp bool, delta uint32) {
	c := binary.BigEndian.Uint16(field)
	if udp && c == 0 {
		return
	}
	c = csumApply(c, delta)
	if udp && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(field, c)
}

// castagnoli is the CRC32c table SCTP uses; crc32 picks the hardware
// implementation for it where available.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpCRC returns the SCTP checksum of the packet b computed with its
// checksum field (bytes 8..11) taken as zero. b is restored before return.
func sctpCRC(b []byte) uint32 {
	var saved [4]byte
	copy(saved[:], b[8:12])
	clear(b[8:12])
	c := crc32.Checksum(b, castagnoli)
	copy(b[8:12], saved[:])
	return c
}
