package datapath

import (
	"encoding/binary"
	"sync"
	"time"

	"xvs/flow"
)

// fakeKernel plays the XDP tier in tests: send() runs frames through it
// before the datapath sees them, with the same rules as the real program
// (xdp/offload.go): L2 key, IPv6 / IPv4 fragments / double tags miss.
type fakeKernel struct {
	mu      sync.Mutex
	flows   map[L2Flow]*fakeEntry
	devs    map[uint32]*MemDevice
	buckets map[int]uint32 // bond*256+bucket -> ifindex
	now     func() time.Time
	hits    uint64
	puts    int
	dels    int
}

type fakeEntry struct {
	a              L2Action
	packets, bytes uint64
	used           time.Time
}

func newFakeKernel(now func() time.Time) *fakeKernel {
	return &fakeKernel{flows: map[L2Flow]*fakeEntry{}, devs: map[uint32]*MemDevice{}, buckets: map[int]uint32{}, now: now}
}

func (k *fakeKernel) Put(f L2Flow, a L2Action) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.flows[f] = &fakeEntry{a: a}
	k.puts++
	return nil
}

func (k *fakeKernel) Delete(f L2Flow) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.flows, f)
	k.dels++
	return nil
}

func (k *fakeKernel) SetBondMember(bond int, bucket uint8, ifindex uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.buckets[bond*256+int(bucket)] = ifindex
	return nil
}

func (k *fakeKernel) Stats(f L2Flow) (uint64, uint64, time.Time, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.flows[f]
	if e == nil {
		return 0, 0, time.Time{}, ErrNotFound
	}
	return e.packets, e.bytes, e.used, nil
}

// offDev is a MemDevice the kernel tier serves.
type offDev struct {
	*MemDevice
	idx int
}

func (d offDev) Ifindex() int    { return d.idx }
func (d offDev) Offloaded() bool { return true }

// intercept returns true when the kernel handled the frame (delivering it
// to the output device's capture).
func (k *fakeKernel) intercept(ifindex uint32, frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	f := L2Flow{InIfindex: ifindex}
	copy(f.Dst[:], frame[0:6])
	copy(f.Src[:], frame[6:12])
	et := binary.BigEndian.Uint16(frame[12:])
	l3 := 14
	if et == flow.EthTypeVLAN || et == flow.EthTypeQinQ {
		if len(frame) < 18 {
			return false
		}
		f.TCI = binary.BigEndian.Uint16(frame[14:]) | flow.VLANCFI
		et = binary.BigEndian.Uint16(frame[16:])
		if et == flow.EthTypeVLAN || et == flow.EthTypeQinQ {
			return false
		}
		l3 = 18
	}
	if et == flow.EthTypeIPv6 {
		return false
	}
	if et == flow.EthTypeIPv4 && (len(frame) < l3+20 || binary.BigEndian.Uint16(frame[l3+6:])&0x3fff != 0) {
		return false
	}
	f.EthType = et
	k.mu.Lock()
	e := k.flows[f]
	if e == nil {
		k.mu.Unlock()
		return false
	}
	e.packets++
	e.bytes += uint64(len(frame))
	e.used = k.now()
	k.hits++
	a := e.a
	outIdx := a.OutIfindex
	if a.Bond != 0 {
		outIdx = k.buckets[int(a.Bond-1)*256+int(a.Bucket)]
	}
	out := k.devs[outIdx]
	k.mu.Unlock()
	fr := append([]byte(nil), frame...)
	switch a.VLANOp {
	case 1:
		tag := binary.BigEndian.AppendUint16([]byte{0x81, 0}, a.TCI)
		fr = append(append(append([]byte{}, fr[:12]...), tag...), fr[12:]...)
	case 2:
		fr = append(append([]byte{}, fr[:12]...), fr[16:]...)
	case 3:
		binary.BigEndian.PutUint16(fr[14:], a.TCI)
	}
	if out == nil {
		return true // the real program drops redirects to unknown devices
	}
	out.mu.Lock()
	out.sent = append(out.sent, fr)
	out.mu.Unlock()
	return true
}
