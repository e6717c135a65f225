package xdp

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// This file holds the small XDP programs of the benchmark lab (bench/):
// a counting sink, an in-kernel XDP_REDIRECT forwarder and a traffic
// generator run through BPF_PROG_RUN. They live here because xdp is the
// only package that loads BPF.

// Attached is an XDP program attached to an interface; Close detaches it.
type Attached struct {
	prog *ebpf.Program
	maps []*ebpf.Map
	link link.Link
	Mode Mode // native or generic
}

// Close detaches the program and releases its maps.
func (a *Attached) Close() error {
	var err error
	if a.link != nil {
		err = a.link.Close()
	}
	a.prog.Close()
	for _, m := range a.maps {
		m.Close()
	}
	return err
}

func attachLab(prog *ebpf.Program, maps []*ebpf.Map, ifindex int, m Mode) (*Attached, error) {
	if m == ModeBestEffort || m == ModeNativeZeroCopy {
		m = ModeNative
	}
	l, err := attach(prog, ifindex, m)
	if err != nil {
		prog.Close()
		for _, mp := range maps {
			mp.Close()
		}
		return nil, err
	}
	return &Attached{prog: prog, maps: maps, link: l, Mode: m}, nil
}

// Sink is an XDP program that counts frames and bytes in a per-CPU array
// and drops them.
type Sink struct {
	*Attached
	counts *ebpf.Map
}

// AttachSink attaches a counting sink to ifindex (in the caller's netns).
func AttachSink(ifindex int, m Mode) (*Sink, error) {
	counts, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "xvs_sink", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("xdp: sink map: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, counts.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R2, asm.R6, mdDataEnd, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdData, asm.Word),
		asm.Sub.Reg(asm.R2, asm.R3),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("out"),
		asm.Return(),
	}
	prog, err := loadXDP("xvs_sink", insns)
	if err != nil {
		counts.Close()
		return nil, err
	}
	a, err := attachLab(prog, []*ebpf.Map{counts}, ifindex, m)
	if err != nil {
		return nil, err
	}
	return &Sink{Attached: a, counts: counts}, nil
}

// Count returns the frames and bytes the sink has dropped so far.
func (s *Sink) Count() (packets, bytes uint64, err error) {
	var vals []struct{ P, B uint64 }
	if err := s.counts.Lookup(uint32(0), &vals); err != nil {
		return 0, 0, fmt.Errorf("xdp: read sink counters: %w", err)
	}
	for _, v := range vals {
		packets += v.P
		bytes += v.B
	}
	return packets, bytes, nil
}

// AttachRedirect attaches an in-kernel forwarder to ifindex that sends
// every frame out of toIfindex with bpf_redirect (XDP_REDIRECT).
func AttachRedirect(ifindex, toIfindex int, m Mode) (*Attached, error) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R1, int32(toIfindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
	}
	prog, err := loadXDP("xvs_redirect", insns)
	if err != nil {
		return nil, err
	}
	return attachLab(prog, nil, ifindex, m)
}

// Generator transmits copies of one frame with BPF_PROG_RUN in live-frame
// mode (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel runs the program on
// recycled page-pool frames and transmits each with XDP_TX out of the
// given interface. For IPv4/UDP frames the program rewrites the UDP
// ports so that successive frames belong to different flows (n mod
// flows; the source port cycles first, the destination port above 32768
// flows). The UDP checksum must be 0.
type Generator struct {
	prog  *ebpf.Program
	state *ebpf.Map
}

// NewGenerator loads a generator cycling through flows UDP source ports
// starting at basePort.
func NewGenerator(flows int, basePort uint16) (*Generator, error) {
	if flows < 1 {
		flows = 1
	}
	state, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "xvs_gen", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("xdp: generator map: %w", err)
	}
	const udpSrcOff = 14 + 20 // Ethernet + IPv4 without options
	// With more than portsPerDst flows the destination port varies too
	// (from genDstBase), so flow counts up to a million fit.
	const portsPerDst, genDstBase = 32768, 20000
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.R10, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, state.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		// n = state++
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		// bounds check: data + udpSrcOff + 4 <= data_end (both ports)
		asm.LoadMem(asm.R2, asm.R6, mdData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, mdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, udpSrcOff+4),
		asm.JGT.Reg(asm.R4, asm.R3, "tx"),
		// f = n % flows; source port = htons(base + f % portsPerDst),
		// destination port = htons(dstBase + f / portsPerDst): more
		// flows than one port field holds.
		asm.Mod.Imm(asm.R7, int32(flows)),
		asm.Mov.Reg(asm.R8, asm.R7),
		asm.Mod.Imm(asm.R7, portsPerDst),
		asm.Add.Imm(asm.R7, int32(basePort)),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		asm.StoreMem(asm.R2, udpSrcOff, asm.R7, asm.Half),
	}
	if flows > portsPerDst {
		insns = append(insns,
			asm.Div.Imm(asm.R8, portsPerDst),
			asm.Add.Imm(asm.R8, genDstBase),
			asm.HostTo(asm.BE, asm.R8, asm.Half),
			asm.StoreMem(asm.R2, udpSrcOff+2, asm.R8, asm.Half),
		)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, xdpTx).WithSymbol("tx"),
		asm.Return(),
	)
	prog, err := loadXDP("xvs_gen", insns)
	if err != nil {
		state.Close()
		return nil, err
	}
	return &Generator{prog: prog, state: state}, nil
}

// xdpMD mirrors struct xdp_md for BPF_PROG_RUN contexts.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// Run transmits frame repeat times out of ifindex, which must be an
// interface of the caller's network namespace. It blocks until done.
func (g *Generator) Run(frame []byte, ifindex int, repeat uint32) error {
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	_, err := g.prog.Run(&ebpf.RunOptions{
		Data:      frame,
		Context:   &ctx,
		Repeat:    repeat,
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: 64,
	})
	if err != nil {
		return fmt.Errorf("xdp: generator run: %w", err)
	}
	return nil
}

// Close releases the generator.
func (g *Generator) Close() error {
	g.state.Close()
	return g.prog.Close()
}
