package flow

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestCsumReplaceExact checks that incremental patches equal a full
// recomputation for random headers and random replaced words, including
// the cases that drive the sum to 0x0000/0xffff.
func TestCsumReplaceExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	hdr := make([]byte, 20)
	for i := range 100000 {
		for j := range hdr {
			hdr[j] = byte(rng.Uint32())
		}
		if i%5 == 0 {
			clear(hdr[4:]) // mostly zero headers reach the edge cases
			hdr[0] = byte(rng.Uint32())
		}
		hdr[10], hdr[11] = 0, 0
		c := refCsum(hdr)
		binary.BigEndian.PutUint16(hdr[10:], c)
		at := 12 + 2*rng.IntN(3) // 4 aligned bytes within the addresses
		var nw [4]byte
		binary.BigEndian.PutUint32(nw[:], rng.Uint32())
		if i%3 == 0 {
			nw = [4]byte{}
		}
		old := [4]byte(hdr[at : at+4])
		c2 := csumReplace(c, old[:], nw[:])
		c3 := csumReplace16(csumReplace16(c, be16(old[:]), be16(nw[:])), be16(old[2:]), be16(nw[2:]))
		copy(hdr[at:], nw[:])
		hdr[10], hdr[11] = 0, 0
		if want := refCsum(hdr); c2 != want || c3 != want {
			t.Fatalf("hdr %x: patched %#04x/%#04x, recomputed %#04x", hdr, c2, c3, want)
		}
	}
}

func TestL4CsumApplyUDPZero(t *testing.T) {
	f := []byte{0, 0}
	l4CsumApply(f, true, csumDelta([]byte{1, 2}, []byte{3, 4}))
	if f[0] != 0 || f[1] != 0 {
		t.Fatal("zero UDP checksum was changed")
	}
	// A patch whose result is 0 is sent as 0xffff for UDP, kept for TCP.
	c := csumReplace16(0x1234, 0x0000, 0x1234)
	binary.BigEndian.PutUint16(f, 0x1234)
	l4CsumApply(f, true, csumDelta([]byte{0, 0}, []byte{0x12, 0x34}))
	if c != 0 || be16(f) != 0xffff {
		t.Fatalf("computed zero: csum %#04x, UDP field %#04x", c, be16(f))
	}
	binary.BigEndian.PutUint16(f, 0x1234)
	l4CsumApply(f, false, csumDelta([]byte{0, 0}, []byte{0x12, 0x34}))
	if be16(f) != 0 {
		t.Fatalf("TCP field %#04x", be16(f))
	}
}
