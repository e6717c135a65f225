package xdp

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// The offload program is checked by the kernel verifier and then run with
// BPF_PROG_RUN on crafted frames: no namespace or device needed besides lo.

func offloadOrSkip(t *testing.T) (*Offload, *ebpf.Program) {
	t.Helper()
	o, err := NewOffload(1024)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { o.Close() })
	xsks, err := newXSKMap(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xsks.Close() })
	prog, err := o.Program(xsks)
	if err != nil {
		t.Fatalf("verifier refused the offload program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := o.AddDevice(1); err != nil { // lo: a valid redirect target
		t.Fatal(err)
	}
	return o, prog
}

var (
	offDst = [6]byte{0x02, 0, 0, 0, 0, 2}
	offSrc = [6]byte{0x02, 0, 0, 0, 0, 1}
)

func offFrame(vid int, ethType uint16, fragOff uint16) []byte {
	f := append(append([]byte{}, offDst[:]...), offSrc[:]...)
	if vid >= 0 {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, uint16(vid)|3<<13)
	}
	f = binary.BigEndian.AppendUint16(f, ethType)
	ip := make([]byte, 46)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[6:], fragOff)
	return append(f, ip...)
}

func runXDP(t *testing.T, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+64)
	ctx := make([]byte, 24)                                    // struct xdp_md
	binary.NativeEndian.PutUint32(ctx[4:], uint32(len(frame))) // data_end
	binary.NativeEndian.PutUint32(ctx[12:], 1)                 // ingress_ifindex = lo
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

func TestOffloadProgram(t *testing.T) {
	o, prog := offloadOrSkip(t)
	untagged := OffloadKey{Ifindex: 1, EthType: EthTypeKey(0x0800), Dst: offDst, Src: offSrc}

	// Miss: the frame goes to the XSK map, which has no socket: XDP_PASS.
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpPass {
		t.Fatalf("miss returned %d, want XDP_PASS", ret)
	}
	// Hit with a push of VLAN 10: redirected, frame tagged.
	if err := o.Put(untagged, OffloadAction{OutIfindex: 1, VLANOp: OffloadVLANPush, TCI: 10}); err != nil {
		t.Fatal(err)
	}
	in := offFrame(-1, 0x0800, 0)
	ret, out := runXDP(t, prog, in)
	if ret != xdpRedirect {
		t.Fatalf("hit returned %d, want XDP_REDIRECT", ret)
	}
	want := offFrame(10, 0x0800, 0)
	binary.BigEndian.PutUint16(want[14:], 10) // PCP 0
	if !bytes.Equal(out[:len(want)], want) {
		t.Fatalf("push:\n got %x\nwant %x", out[:len(want)], want)
	}
	a, err := o.Lookup(untagged)
	if err != nil || a.Packets != 1 || a.Bytes != uint64(len(in)) || a.Used == 0 {
		t.Fatalf("counters %+v %v", a, err)
	}
	// Pop: a tagged frame leaves untagged.
	tagged := untagged
	tagged.TCI = 0x1000 | 3<<13 | 20
	if err := o.Put(tagged, OffloadAction{OutIfindex: 1, VLANOp: OffloadVLANPop}); err != nil {
		t.Fatal(err)
	}
	ret, out = runXDP(t, prog, offFrame(20, 0x0800, 0))
	if want := offFrame(-1, 0x0800, 0); ret != xdpRedirect || !bytes.Equal(out[:len(want)], want) {
		t.Fatalf("pop: ret %d\n got %x\nwant %x", ret, out[:len(want)], want)
	}
	// Set: the tag is rewritten.
	if err := o.Put(tagged, OffloadAction{OutIfindex: 1, VLANOp: OffloadVLANSet, TCI: 30}); err != nil {
		t.Fatal(err)
	}
	ret, out = runXDP(t, prog, offFrame(20, 0x0800, 0))
	want = offFrame(30, 0x0800, 0)
	binary.BigEndian.PutUint16(want[14:], 30)
	if ret != xdpRedirect || !bytes.Equal(out[:len(want)], want) {
		t.Fatalf("set: ret %d\n got %x\nwant %x", ret, out[:len(want)], want)
	}
	// Fragments, IPv6 and double tags always go to userspace.
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0x2000)); ret != xdpPass {
		t.Fatalf("fragment returned %d", ret)
	}
	v6 := untagged
	v6.EthType = EthTypeKey(0x86dd)
	_ = o.Put(v6, OffloadAction{OutIfindex: 1})
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x86dd, 0)); ret != xdpPass {
		t.Fatalf("IPv6 returned %d", ret)
	}
	// Deleting the flow sends it back to userspace.
	if err := o.Delete(untagged); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpPass {
		t.Fatalf("after delete returned %d", ret)
	}
	// A redirect to a port not in the device map drops (no leak to a
	// wrong place).
	if err := o.Put(untagged, OffloadAction{OutIfindex: 4242}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpDrop {
		t.Fatalf("redirect to unknown device returned %d", ret)
	}
	// Bond output: the bucket table picks the member; a failover is one
	// table update, and a bucket with no member drops.
	if err := o.Put(untagged, OffloadAction{Bond: 3, Bucket: 7}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpDrop {
		t.Fatalf("bond bucket without member returned %d", ret)
	}
	if err := o.SetBucket(2, 7, 1); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpRedirect {
		t.Fatalf("bond output returned %d", ret)
	}
	if err := o.SetBucket(2, 7, 0); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runXDP(t, prog, offFrame(-1, 0x0800, 0)); ret != xdpDrop {
		t.Fatalf("bond output after the member left returned %d", ret)
	}
	if n := o.Len(); n != 3 {
		t.Fatalf("Len %d", n)
	}
	if err := o.Flush(); err != nil || o.Len() != 0 {
		t.Fatalf("flush: %v, %d left", err, o.Len())
	}
}
