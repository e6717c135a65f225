package xdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Mode is how the XDP program is attached and the sockets are bound, named
// as Open vSwitch's options:xdp-mode.
type Mode int

const (
	// ModeBestEffort tries native-with-zerocopy, then native, then generic.
	ModeBestEffort Mode = iota
	// ModeNativeZeroCopy is driver XDP with zero-copy sockets (XDP_ZEROCOPY).
	ModeNativeZeroCopy
	// ModeNative is driver XDP with copying sockets (XDP_COPY).
	ModeNative
	// ModeGeneric is SKB (generic) XDP with copying sockets.
	ModeGeneric
)

var modeNames = [...]string{"best-effort", "native-with-zerocopy", "native", "generic"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode parses an OVS options:xdp-mode value ("" is best-effort).
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeBestEffort, nil
	}
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("xdp: unknown xdp-mode %q", s)
}

// attachFlags is the XDP attach mode for a concrete mode.
func (m Mode) attachFlags() link.XDPAttachFlags {
	if m == ModeGeneric {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}

// xdp_md field offsets (include/uapi/linux/bpf.h).
const (
	mdData         = 0
	mdDataEnd      = 4
	mdIngressIfidx = 12
	mdRxQueueIndex = 16
	xdpAborted     = 0
	xdpDrop        = 1
	xdpPass        = 2
	xdpTx          = 3
	xdpRedirect    = 4
	programLicense = "Dual BSD/GPL"
	xskMapName     = "xvs_xsks"
	xskProgramName = "xvs_xsk"
)

// newXSKMap creates the XSKMAP that maps rx queue index -> socket.
func newXSKMap(queues int) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       xskMapName,
		Type:       ebpf.XSKMap,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(queues),
	})
	if err != nil {
		return nil, fmt.Errorf("xdp: create XSKMAP: %w", err)
	}
	return m, nil
}

// newXSKProgram builds the redirect program:
//
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// The low bits of the flags argument are the action returned when the map
// has no socket for the queue, so frames on queues without a socket still
// reach the kernel stack.
func newXSKProgram(xsks *ebpf.Map) (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, mdRxQueueIndex, asm.Word),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
	}
	return loadXDP(xskProgramName, insns)
}

func loadXDP(name string, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.XDP,
		Instructions: insns,
		License:      programLicense,
	})
	if err != nil {
		return nil, fmt.Errorf("xdp: load program %s: %w", name, err)
	}
	return p, nil
}

// ErrAttach wraps failures to attach an XDP program in the requested mode.
var ErrAttach = errors.New("xdp: cannot attach XDP program")

// attach links prog to ifindex in mode (native or generic). The returned
// link detaches the program when closed (or when the process exits).
func attach(prog *ebpf.Program, ifindex int, m Mode) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: m.attachFlags()})
	if err != nil {
		return nil, fmt.Errorf("%w in %s mode: %w", ErrAttach, m, err)
	}
	return l, nil
}
