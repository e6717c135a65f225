package flow

import (
	"math/rand/v2"
	"testing"
)

func randKey(r *rand.Rand) Key {
	var k Key
	k.InPort = uint32(r.IntN(4))
	k.DlType = []uint16{EthTypeIPv4, EthTypeARP, EthTypeIPv6}[r.IntN(3)]
	k.DlSrc[5] = byte(r.IntN(8))
	k.DlDst[5] = byte(r.IntN(8))
	k.NwProto = byte(r.IntN(3))
	k.TpDst = uint16(r.IntN(4))
	return k
}

// TestMegaflowCacheMatchesLinearScan installs non-overlapping megaflows
// under several masks and checks every lookup against a linear scan,
// through removals and subtable re-ranking.
func TestMegaflowCacheMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	masks := []Key{{InPort: ^uint32(0), DlType: 0xffff}, {InPort: ^uint32(0), DlType: 0xffff, DlDst: [6]byte{0, 0, 0, 0, 0, 0xff}},
		{InPort: ^uint32(0), DlType: 0xffff, DlDst: [6]byte{0, 0, 0, 0, 0, 0xff}, NwProto: 0xff, TpDst: 0xffff}}
	c := NewMegaflowCache(1000)
	var all []*Megaflow
	for i := 0; i < 3000; i++ {
		k := randKey(r)
		if c.Lookup(&k) != nil {
			continue // covered already: megaflows never overlap
		}
		m := masks[r.IntN(len(masks))]
		// A mask must not make the new entry cover keys an existing entry
		// covers: check against the linear reference.
		overlap := false
		mk := MaskKey(&k, &m)
		for _, e := range all {
			if !e.Dead() && overlaps(&e.Key, &e.Mask, &mk, &m) {
				overlap = true
				break
			}
		}
		if overlap {
			continue
		}
		if mf := c.Insert(&k, &m, []DPAction{{Kind: DPOutput, Port: uint32(i)}}, nil, 1); mf != nil {
			all = append(all, mf)
		}
		if i%97 == 0 && len(all) > 0 {
			c.Remove(all[r.IntN(len(all))])
			c.Rank()
		}
		q := randKey(r)
		var want *Megaflow
		for _, e := range all {
			if !e.Dead() && maskedEqual(&q, &e.Mask, &e.Key) {
				want = e
				break
			}
		}
		if got := c.Lookup(&q); got != want {
			t.Fatalf("step %d: lookup %+v = %p, linear scan %p", i, q, got, want)
		}
	}
	if c.Len() == 0 || c.Subtables() < 2 {
		t.Fatalf("test did not exercise the cache: %d flows, %d subtables", c.Len(), c.Subtables())
	}
}

func overlaps(k1, m1, k2, m2 *Key) bool {
	a, am, b, bm := k1.Words(), m1.Words(), k2.Words(), m2.Words()
	for i := range a {
		common := am[i] & bm[i]
		if a[i]&common != b[i]&common {
			return false
		}
	}
	return true
}

func TestCacheHitAllocatesNothing(t *testing.T) {
	c := NewMegaflowCache(10)
	k := Key{InPort: 1, DlType: EthTypeIPv4}
	m := Key{InPort: ^uint32(0), DlType: 0xffff}
	mf := c.Insert(&k, &m, []DPAction{{Kind: DPOutput, Port: 2}}, nil, 1)
	var emc EMC
	h := HashKey(&k)
	emc.Insert(&k, h, mf)
	allocs := testing.AllocsPerRun(1000, func() {
		if emc.Lookup(&k, HashKey(&k)) != mf || c.Lookup(&k) != mf {
			t.Fatal("miss")
		}
		mf.Hit(1, 64, 2)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per cache hit", allocs)
	}
}

func TestEMCDeadEntryMisses(t *testing.T) {
	c := NewMegaflowCache(10)
	k := Key{InPort: 1}
	m := Key{InPort: ^uint32(0)}
	mf := c.Insert(&k, &m, nil, nil, 1)
	var emc EMC
	emc.Insert(&k, HashKey(&k), mf)
	c.Remove(mf)
	if emc.Lookup(&k, HashKey(&k)) != nil {
		t.Fatal("EMC returned a removed megaflow")
	}
}
