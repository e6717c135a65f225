package xdp

// The in-kernel flow tier.
//
// An Offload holds two BPF maps shared by every port of a datapath: a hash
// map of L2 megaflows (in_port ifindex, outer VLAN TCI, ethertype, MAC
// addresses -> action and counters) and a device map of the ports frames
// may be redirected to. Its XDP program, attached to each port in place of
// the plain XSK redirect, looks a frame up and on a hit executes the cached
// action in the kernel — optional VLAN push, pop or rewrite, then
// XDP_REDIRECT to the output port — so established flows never reach
// userspace. On a miss, or for anything it does not handle (IPv6, IPv4
// fragments, double tags, frames too short), the frame goes to the port's
// AF_XDP socket as before.
//
// Userspace decides what is offloaded (datapath megaflows whose mask and
// actions fit the map) and keeps the map in sync: entries are written when
// megaflows are installed and deleted when they are invalidated. Counters
// and the last-hit time live in the map value; the revalidator reads them
// (Stats) to keep MAC learning alive and merge statistics.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"xvs/datapath"
)

// OffloadKey is the key of an offloaded flow (24 bytes, as the program
// builds it on its stack).
type OffloadKey struct {
	Ifindex uint32
	TCI     uint16 // outer VLAN TCI with the 0x1000 "present" bit; 0 untagged
	EthType uint16 // network byte order, as on the wire
	Dst     [6]byte
	Src     [6]byte
	_       uint32
}

// VLAN operations of an offloaded action.
const (
	OffloadVLANNone uint16 = iota
	OffloadVLANPush        // push an 802.1Q tag with TCI
	OffloadVLANPop         // remove the outer tag
	OffloadVLANSet         // rewrite the outer tag's TCI
)

// OffloadAction is the value of an offloaded flow (40 bytes).
type OffloadAction struct {
	OutIfindex uint32
	VLANOp     uint16
	TCI        uint16 // host order, without the present bit
	Packets    uint64 // updated by the program
	Bytes      uint64
	Used       uint64 // bpf_ktime_get_ns() of the last hit
	// Bond, when not zero, replaces OutIfindex: the output is the member
	// the bond bucket table maps (Bond-1, Bucket) to, so a failover is a
	// table update and no flow changes.
	Bond   uint16
	Bucket uint16
	_      uint32
}

// MaxBonds is the number of bonds the bucket table has room for.
const MaxBonds = 64

// Offload is the in-kernel flow tier of one datapath.
type Offload struct {
	flows   *ebpf.Map
	devs    *ebpf.Map
	buckets *ebpf.Map // (bond slot * 256 + bucket) -> member ifindex
}

// NewOffload creates the maps for up to maxFlows offloaded flows.
func NewOffload(maxFlows int) (*Offload, error) {
	if maxFlows <= 0 {
		maxFlows = 65536
	}
	flows, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_flows", Type: ebpf.Hash, KeySize: 24, ValueSize: 40, MaxEntries: uint32(maxFlows)})
	if err != nil {
		return nil, fmt.Errorf("xdp: offload flow map: %w", err)
	}
	devs, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_devs", Type: ebpf.DevMapHash, KeySize: 4, ValueSize: 4, MaxEntries: 1024})
	if err != nil {
		flows.Close()
		return nil, fmt.Errorf("xdp: offload device map: %w", err)
	}
	buckets, err := ebpf.NewMap(&ebpf.MapSpec{Name: "xvs_buckets", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: MaxBonds * 256})
	if err != nil {
		flows.Close()
		devs.Close()
		return nil, fmt.Errorf("xdp: offload bond bucket map: %w", err)
	}
	return &Offload{flows: flows, devs: devs, buckets: buckets}, nil
}

// SetBucket maps a bond bucket to a member ifindex (0: no member, drop).
func (o *Offload) SetBucket(bond int, bucket uint8, ifindex uint32) error {
	if bond < 0 || bond >= MaxBonds {
		return fmt.Errorf("xdp: bond slot %d out of range", bond)
	}
	return o.buckets.Put(uint32(bond*256+int(bucket)), ifindex)
}

// Close releases the maps (programs that use them keep them alive).
func (o *Offload) Close() error {
	return errors.Join(o.flows.Close(), o.devs.Close(), o.buckets.Close())
}

// AddDevice lets frames be redirected to ifindex.
func (o *Offload) AddDevice(ifindex int) error {
	return o.devs.Put(uint32(ifindex), uint32(ifindex))
}

// RemoveDevice forbids redirects to ifindex.
func (o *Offload) RemoveDevice(ifindex int) error {
	err := o.devs.Delete(uint32(ifindex))
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Put installs or replaces an offloaded flow (counters start at zero).
func (o *Offload) Put(k OffloadKey, a OffloadAction) error {
	return o.flows.Put(&k, &a)
}

// Delete removes an offloaded flow; a missing key is not an error.
func (o *Offload) Delete(k OffloadKey) error {
	err := o.flows.Delete(&k)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Lookup returns an offloaded flow's action and counters.
func (o *Offload) Lookup(k OffloadKey) (OffloadAction, error) {
	var a OffloadAction
	err := o.flows.Lookup(&k, &a)
	return a, err
}

// Flush removes every offloaded flow.
func (o *Offload) Flush() error {
	var k OffloadKey
	var keys []OffloadKey
	it := o.flows.Iterate()
	var v OffloadAction
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	for _, k := range keys {
		_ = o.Delete(k)
	}
	return it.Err()
}

// Len counts the offloaded flows.
func (o *Offload) Len() int {
	var k OffloadKey
	var v OffloadAction
	n := 0
	it := o.flows.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	return n
}

// Ethertypes as the program reads them: raw 16-bit loads of network-order
// bytes on a little-endian CPU.
func rawBE16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// Program builds the XDP program of one port: offloaded flows first, the
// port's XSKMAP (xsks) for everything else.
func (o *Offload) Program(xsks *ebpf.Map) (*ebpf.Program, error) {
	const (
		keyOff = -24
		// value layout
		vOut, vOp, vTCI, vPkts, vBytes, vUsed, vBond, vBucket = 0, 4, 6, 8, 16, 24, 32, 34
		bucketKey                                             = -28
	)
	vlan, qinq := rawBE16(0x8100), rawBE16(0x88a8)
	ipv4, ipv6 := rawBE16(0x0800), rawBE16(0x86dd)
	fragMask := rawBE16(0x3fff)
	R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP := asm.R0, asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R6, asm.R7, asm.R8, asm.R9, asm.RFP
	reload := asm.Instructions{
		asm.LoadMem(R7, R6, mdData, asm.Word),
		asm.LoadMem(R8, R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(R2, R7),
		asm.Add.Imm(R2, 18),
		asm.JGT.Reg(R2, R8, "miss"),
	}
	insns := asm.Instructions{
		asm.Mov.Reg(R6, R1),
		asm.LoadMem(R7, R6, mdData, asm.Word),
		asm.LoadMem(R8, R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(R2, R7),
		asm.Add.Imm(R2, 14),
		asm.JGT.Reg(R2, R8, "miss"),
		// key: ifindex, tci=0, MACs, pad
		asm.LoadMem(R2, R6, mdIngressIfidx, asm.Word),
		asm.StoreMem(FP, keyOff, R2, asm.Word),
		asm.StoreImm(FP, keyOff+4, 0, asm.Word), // tci + ethertype, set below
		asm.LoadMem(R2, R7, 0, asm.Word),
		asm.StoreMem(FP, keyOff+8, R2, asm.Word),
		asm.LoadMem(R2, R7, 4, asm.Word),
		asm.StoreMem(FP, keyOff+12, R2, asm.Word),
		asm.LoadMem(R2, R7, 8, asm.Word),
		asm.StoreMem(FP, keyOff+16, R2, asm.Word),
		asm.StoreImm(FP, keyOff+20, 0, asm.Word),
		// R5 = L3 offset, R3 = ethertype (raw)
		asm.Mov.Imm(R5, 14),
		asm.LoadMem(R3, R7, 12, asm.Half),
		asm.JEq.Imm(R3, vlan, "tagged"),
		asm.JEq.Imm(R3, qinq, "miss"), // 802.1ad outer tags: the key has no TPID
		asm.Ja.Label("ethertype"),
		asm.Mov.Reg(R2, R7).WithSymbol("tagged"),
		asm.Add.Imm(R2, 18),
		asm.JGT.Reg(R2, R8, "miss"),
		asm.LoadMem(R4, R7, 14, asm.Half),
		asm.HostTo(asm.BE, R4, asm.Half),
		asm.Or.Imm(R4, 0x1000),
		asm.StoreMem(FP, keyOff+4, R4, asm.Half),
		asm.LoadMem(R3, R7, 16, asm.Half),
		asm.JEq.Imm(R3, vlan, "miss"), // double tagged: userspace
		asm.JEq.Imm(R3, qinq, "miss"),
		asm.Mov.Imm(R5, 18),
		asm.StoreMem(FP, keyOff+6, R3, asm.Half).WithSymbol("ethertype"),
		asm.JEq.Imm(R3, ipv6, "miss"), // fragments hide behind extension headers
		asm.JNE.Imm(R3, ipv4, "lookup"),
		// IPv4: fragments go to userspace
		asm.Mov.Reg(R2, R7),
		asm.Add.Reg(R2, R5),
		asm.Mov.Reg(R4, R2),
		asm.Add.Imm(R4, 20),
		asm.JGT.Reg(R4, R8, "miss"),
		asm.LoadMem(R4, R2, 6, asm.Half),
		asm.And.Imm(R4, fragMask),
		asm.JNE.Imm(R4, 0, "miss"),
		// lookup
		asm.LoadMapPtr(R1, o.flows.FD()).WithSymbol("lookup"),
		asm.Mov.Reg(R2, FP),
		asm.Add.Imm(R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(R0, 0, "miss"),
		asm.Mov.Reg(R9, R0),
	}
	// Counters (atomic: several CPUs may hit one flow), then the action.
	insns = append(insns,
		asm.Mov.Reg(R3, R9),
		asm.Add.Imm(R3, vPkts),
		asm.Mov.Imm(R2, 1),
		asm.StoreXAdd(R3, R2, asm.DWord),
		asm.Mov.Reg(R3, R9),
		asm.Add.Imm(R3, vBytes),
		asm.Mov.Reg(R2, R8),
		asm.Sub.Reg(R2, R7),
		asm.StoreXAdd(R3, R2, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(R9, vUsed, R0, asm.DWord),
		// VLAN operation
		asm.LoadMem(R2, R9, vOp, asm.Half),
		asm.JEq.Imm(R2, int32(OffloadVLANPush), "push"),
		asm.JEq.Imm(R2, int32(OffloadVLANPop), "pop"),
		asm.JEq.Imm(R2, int32(OffloadVLANSet), "set"),
		asm.Ja.Label("redirect"),
		// push: grow the head by 4, move the MACs down, write the tag
		asm.Mov.Reg(R1, R6).WithSymbol("push"),
		asm.Mov.Imm(R2, -4),
		asm.FnXdpAdjustHead.Call(),
		asm.JNE.Imm(R0, 0, "miss"),
	)
	insns = append(insns, reload...)
	insns = append(insns,
		asm.LoadMem(R2, R7, 4, asm.Word),
		asm.StoreMem(R7, 0, R2, asm.Word),
		asm.LoadMem(R2, R7, 8, asm.Word),
		asm.StoreMem(R7, 4, R2, asm.Word),
		asm.LoadMem(R2, R7, 12, asm.Word),
		asm.StoreMem(R7, 8, R2, asm.Word),
		asm.StoreImm(R7, 12, int64(vlan), asm.Half),
		asm.Ja.Label("writetci"),
		// pop: move the MACs up by 4, shrink the head
		asm.Mov.Reg(R2, R7).WithSymbol("pop"),
		asm.Add.Imm(R2, 18),
		asm.JGT.Reg(R2, R8, "miss"),
		asm.LoadMem(R2, R7, 8, asm.Word),
		asm.StoreMem(R7, 12, R2, asm.Word),
		asm.LoadMem(R2, R7, 4, asm.Word),
		asm.StoreMem(R7, 8, R2, asm.Word),
		asm.LoadMem(R2, R7, 0, asm.Word),
		asm.StoreMem(R7, 4, R2, asm.Word),
		asm.Mov.Reg(R1, R6),
		asm.Mov.Imm(R2, 4),
		asm.FnXdpAdjustHead.Call(),
		asm.JNE.Imm(R0, 0, "drop"),
		asm.Ja.Label("redirect"),
		// set: rewrite the TCI
		asm.Mov.Reg(R2, R7).WithSymbol("set"),
		asm.Add.Imm(R2, 18),
		asm.JGT.Reg(R2, R8, "miss"),
		asm.LoadMem(R2, R9, vTCI, asm.Half).WithSymbol("writetci"),
		asm.HostTo(asm.BE, R2, asm.Half),
		asm.StoreMem(R7, 14, R2, asm.Half),
		// redirect to the output port, or to the bond member of the bucket
		asm.LoadMem(R2, R9, vOut, asm.Word).WithSymbol("redirect"),
		asm.LoadMem(R3, R9, vBond, asm.Half),
		asm.JEq.Imm(R3, 0, "out"),
		asm.Sub.Imm(R3, 1),
		asm.LSh.Imm(R3, 8),
		asm.LoadMem(R4, R9, vBucket, asm.Half),
		asm.Add.Reg(R3, R4),
		asm.StoreMem(FP, bucketKey, R3, asm.Word),
		asm.LoadMapPtr(R1, o.buckets.FD()),
		asm.Mov.Reg(R2, FP),
		asm.Add.Imm(R2, bucketKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(R0, 0, "drop"),
		asm.LoadMem(R2, R0, 0, asm.Word),
		asm.JEq.Imm(R2, 0, "drop"),
		asm.LoadMapPtr(R1, o.devs.FD()).WithSymbol("out"),
		asm.Mov.Imm(R3, xdpDrop),
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
		// miss: the port's AF_XDP socket
		asm.LoadMem(R2, R6, mdRxQueueIndex, asm.Word).WithSymbol("miss"),
		asm.LoadMapPtr(R1, xsks.FD()),
		asm.Mov.Imm(R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	)
	return loadXDP("xvs_offload", insns)
}

// EthTypeKey converts an ethertype to the OffloadKey.EthType form (network
// byte order in memory).
func EthTypeKey(v uint16) uint16 { return uint16(rawBE16(v)) }

// Tier adapts the offload to the datapath's KernelTier interface.
func (o *Offload) Tier() datapath.KernelTier { return offloadTier{o} }

type offloadTier struct{ o *Offload }

func tierKey(f datapath.L2Flow) OffloadKey {
	return OffloadKey{Ifindex: f.InIfindex, TCI: f.TCI, EthType: EthTypeKey(f.EthType), Dst: f.Dst, Src: f.Src}
}

func (t offloadTier) Put(f datapath.L2Flow, a datapath.L2Action) error {
	return t.o.Put(tierKey(f), OffloadAction{OutIfindex: a.OutIfindex, VLANOp: uint16(a.VLANOp), TCI: a.TCI, Bond: a.Bond, Bucket: uint16(a.Bucket)})
}

func (t offloadTier) SetBondMember(bond int, bucket uint8, ifindex uint32) error {
	return t.o.SetBucket(bond, bucket, ifindex)
}

func (t offloadTier) Delete(f datapath.L2Flow) error { return t.o.Delete(tierKey(f)) }

func (t offloadTier) Stats(f datapath.L2Flow) (uint64, uint64, time.Time, error) {
	a, err := t.o.Lookup(tierKey(f))
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	var used time.Time
	if a.Used != 0 {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
			used = time.Now().Add(-time.Duration(ts.Nano() - int64(a.Used)))
		}
	}
	return a.Packets, a.Bytes, used, nil
}
