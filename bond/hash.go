package bond

import "math/bits"

// Buckets is the number of SLB hash buckets, as in OVS (BOND_BUCKETS).
const Buckets = 256

// mix32 folds one 32-bit word into h, as the generic (non-SSE4.2) build of
// OVS does: a zero word leaves the state untouched apart from the rotate
// and multiply-add round.
func mix32(h, k uint32) uint32 {
	if k != 0 {
		k *= 0xcc9e2d51
		k = bits.RotateLeft32(k, 15)
		k *= 0x1b873593
		h ^= k
	}
	h = bits.RotateLeft32(h, 13)
	return h*5 + 0xe6546b64
}

// finish32 is the MurmurHash3 32-bit finaliser.
func finish32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// macVLANWord packs a MAC and a VLAN into one 64-bit word: VLAN ID in bits
// 48..63, the MAC with its first octet most significant in bits 0..47.
func macVLANWord(mac [6]byte, vlan uint16) uint64 {
	return uint64(vlan)<<48 |
		uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 |
		uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
}

// HashMAC returns the SLB hash of a source MAC on a VLAN, numerically equal
// to OVS's hash_mac() in builds that use the portable MurmurHash3-style
// hash (Debian/Ubuntu amd64 packages, which are built without SSE4.2).
// OVS builds compiled with -msse4.2 use a CRC32C variant and report other
// bucket numbers from bond/hash; this package always uses the portable one.
//
// vlan is the VLAN ID as it appears on the bond's wire (0 for an access
// bond). The bucket is HashMAC(...) & 0xff; see Bucket.
func HashMAC(mac [6]byte, vlan uint16, basis uint32) uint32 {
	x := macVLANWord(mac, vlan)
	h := mix32(basis, uint32(x))
	h = mix32(h, uint32(x>>32))
	return finish32(h ^ 8)
}

// Bucket returns the SLB bucket (0..255) of a source MAC on a VLAN; this is
// what `ovs-appctl bond/hash MAC VLAN BASIS` prints.
func Bucket(mac [6]byte, vlan uint16, basis uint32) uint8 {
	return uint8(HashMAC(mac, vlan, basis))
}
