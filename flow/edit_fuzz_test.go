package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
)

// Edit operations driven by FuzzEdit.
const (
	opPushPop = iota
	opPopPush
	opIPv4Src
	opIPv4Dst
	opIPv4TOS
	opIPv4TTL
	opIPv6Src
	opIPv6Dst
	opIPv6TClass
	opIPv6Label
	opIPv6HopLimit
	opL4Src
	opL4Dst
	opEthSrc
	opEthDst
	numOps
)

// FuzzEdit applies one edit to an arbitrary frame whose checksums were
// first made correct, and checks: push then pop (and pop then push)
// restore the frame and Layout; a failed edit leaves the frame untouched;
// a successful one changes exactly the edited key field and leaves every
// checksum equal to a full recomputation (reference code in the test).
func FuzzEdit(f *testing.F) {
	for i, tc := range extractCases() {
		for op := range numOps {
			if (i+op)%3 == 0 {
				f.Add(tc.frame, uint8(op), uint64(0x0123456789abcdef)*uint64(i+1))
			}
		}
	}
	for _, tc := range editCases() {
		for op := range numOps {
			f.Add(tc.in, uint8(op), uint64(op)<<40|0xfffe)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte, op uint8, val uint64) {
		var k Key
		var l Layout
		r := Extract(frame, 1, &k, &l)
		frame = bytes.Clone(frame)
		fixCsums(frame, &k, &l, val&1 == 1)
		before := bytes.Clone(frame)
		p := newPacket(frame)
		lb := l
		switch op % numOps {
		case opPushPop:
			checkPushPop(t, p, before, &l, uint16(val), uint16(val>>16))
			return
		case opPopPush:
			checkPopPush(t, p, before, &l)
			return
		}
		var v [16]byte
		binary.BigEndian.PutUint64(v[:], val)
		binary.BigEndian.PutUint64(v[8:], ^val)
		want := k
		var err error
		switch op % numOps {
		case opIPv4Src:
			err = SetIPv4Src(p, &k, &l, [4]byte(v[:4]))
			copy(want.NwSrc[:4], v[:4])
		case opIPv4Dst:
			err = SetIPv4Dst(p, &k, &l, [4]byte(v[:4]))
			copy(want.NwDst[:4], v[:4])
		case opIPv4TOS:
			err = SetIPv4TOS(p, &k, &l, v[0])
			want.NwTOS = v[0]
		case opIPv4TTL:
			err = SetIPv4TTL(p, &k, &l, v[0])
			want.NwTTL = v[0]
		case opIPv6Src:
			err = SetIPv6Src(p, &k, &l, v)
			want.NwSrc = v
		case opIPv6Dst:
			err = SetIPv6Dst(p, &k, &l, v)
			want.NwDst = v
		case opIPv6TClass:
			err = SetIPv6TClass(p, &k, &l, v[0])
			want.NwTOS = v[0]
		case opIPv6Label:
			err = SetIPv6Label(p, &k, &l, uint32(val))
			want.IPv6Label = uint32(val) & 0xfffff
		case opIPv6HopLimit:
			err = SetIPv6HopLimit(p, &k, &l, v[0])
			want.NwTTL = v[0]
		case opL4Src:
			err = SetL4Src(p, &k, &l, uint16(val))
			want.TpSrc = uint16(val)
		case opL4Dst:
			err = SetL4Dst(p, &k, &l, uint16(val))
			want.TpDst = uint16(val)
		case opEthSrc:
			err = SetEthSrc(p, [6]byte(v[:6]))
			want.DlSrc = [6]byte(v[:6])
		case opEthDst:
			err = SetEthDst(p, [6]byte(v[:6]))
			want.DlDst = [6]byte(v[:6])
		}
		if l != lb {
			t.Fatalf("field edit changed the layout: %+v -> %+v", lb, l)
		}
		if err != nil {
			if !bytes.Equal(p.Data(), before) {
				t.Fatalf("failed edit (%v) modified the frame", err)
			}
			return
		}
		if r != DropNone {
			return // the key of a partly parsed frame is not comparable
		}
		var k2 Key
		var l2 Layout
		if r2 := Extract(p.Data(), 1, &k2, &l2); r2 != DropNone || k2 != want || l2 != l {
			t.Fatalf("after op %d: reason %v\n key  %+v\n want %+v", op%numOps, r2, k2, want)
		}
		if op%numOps == opIPv6Dst && routingPending(before, &l) {
			if l.L4 >= 0 && !bytes.Equal(p.Data()[l.L4:], before[l.L4:]) {
				t.Fatal("IPv6 dst edit with routing header changed the transport header")
			}
			return
		}
		if msg := checkCsums(p.Data(), &k2, &l2); msg != "" {
			t.Fatalf("after op %d: %s", op%numOps, msg)
		}
	})
}

func checkPushPop(t *testing.T, p *Packet, before []byte, l *Layout, tpid, tci uint16) {
	lb := *l
	err := PushVLAN(p, l, tpid, tci)
	if len(before) < 14 {
		if !errors.Is(err, ErrNoHeader) || *l != lb {
			t.Fatalf("push on a runt: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	want := joinBytes(before[:12], appendBE16(appendBE16(nil, tpid), tci&^VLANCFI), before[12:])
	if !bytes.Equal(p.Data(), want) || p.Off != Headroom-4 {
		t.Fatalf("push: %x, want %x", p.Data(), want)
	}
	if l.VLANs != lb.VLANs+1 || (lb.L3 >= 0) != (l.L3 == lb.L3+4) || (lb.L4 >= 0) != (l.L4 == lb.L4+4) {
		t.Fatalf("push layout %+v from %+v", *l, lb)
	}
	if IsVLANTPID(tpid) && lb.VLANs < 2 {
		// A frame with room for the tag in the key parses as expected.
		var k Key
		var l2 Layout
		Extract(p.Data(), 1, &k, &l2)
		if k.VLAN[0] != (VLANHdr{tpid, tci | VLANCFI}) || l2 != *l {
			t.Fatalf("pushed tag parses as %+v, layout %+v want %+v", k.VLAN[0], l2, *l)
		}
	}
	if err := PopVLAN(p, l); IsVLANTPID(tpid) != (err == nil) {
		t.Fatalf("pop after push of %#x: %v", tpid, err)
	}
	if !IsVLANTPID(tpid) {
		return // not a tag: cannot be popped, by design
	}
	if !bytes.Equal(p.Data(), before) || p.Off != Headroom || p.Len != len(before) || *l != lb {
		t.Fatalf("push+pop did not restore: %x layout %+v (was %+v)", p.Data(), *l, lb)
	}
}

func checkPopPush(t *testing.T, p *Packet, before []byte, l *Layout) {
	lb := *l
	err := PopVLAN(p, l)
	tagged := len(before) >= 18 && IsVLANTPID(be16(before[12:]))
	if !tagged {
		if !errors.Is(err, ErrNoVLAN) || *l != lb || !bytes.Equal(p.Data(), before) {
			t.Fatalf("pop on untagged frame: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Data(), joinBytes(before[:12], before[16:])) || l.VLANs != lb.VLANs-1 {
		t.Fatalf("pop: %x layout %+v", p.Data(), *l)
	}
	if err := PushVLAN(p, l, be16(before[12:]), be16(before[14:])); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(before)
	want[14] &^= VLANCFI >> 8 // the DEI bit is not kept (OVS)
	if !bytes.Equal(p.Data(), want) || *l != lb {
		t.Fatalf("pop+push: %x want %x", p.Data(), want)
	}
}

// ipEnd returns where the IP datagram ends in frame (clamped), or -1.
func ipEnd(frame []byte, k *Key, l *Layout) int {
	if l.L3 < 0 {
		return -1
	}
	ip := frame[l.L3:]
	var n int
	switch {
	case k.DlType == EthTypeIPv4 && len(ip) >= 20:
		n = int(binary.BigEndian.Uint16(ip[2:]))
	case k.DlType == EthTypeIPv6 && len(ip) >= 40:
		n = 40 + int(binary.BigEndian.Uint16(ip[4:]))
	default:
		return -1
	}
	return min(int(l.L3)+n, len(frame))
}

// l4Pseudo returns the pseudo-header for the transport segment seg.
func l4Pseudo(frame []byte, k *Key, l *Layout, seg []byte) []byte {
	ip := frame[l.L3:]
	if k.DlType == EthTypeIPv4 {
		return pseudo4([4]byte(ip[12:16]), [4]byte(ip[16:20]), k.NwProto, len(seg))
	}
	return pseudo6([16]byte(ip[8:24]), [16]byte(ip[24:40]), k.NwProto, len(seg))
}

// csumField returns the offset of the transport checksum for k.NwProto
// (and whether UDP rules apply), or -1.
func csumField(k *Key) (int, bool) {
	switch k.NwProto {
	case IPProtoTCP:
		return 16, false
	case IPProtoUDP:
		return 6, true
	case IPProtoICMPv6:
		if k.DlType == EthTypeIPv6 {
			return 2, false
		}
	}
	return -1, false
}

func ipv4HdrLen(frame []byte, k *Key, l *Layout) int {
	if k.DlType != EthTypeIPv4 || l.L3 < 0 || len(frame) < int(l.L3)+20 {
		return 0
	}
	ip := frame[l.L3:]
	n := int(ip[0]&0xf) * 4
	if ip[0]>>4 != 4 || n < 20 || len(ip) < n {
		return 0
	}
	return n
}

// fixCsums rewrites every checksum an edit could touch with its correct
// value (zeroUDP: give UDP "no checksum" instead).
func fixCsums(frame []byte, k *Key, l *Layout, zeroUDP bool) {
	if n := ipv4HdrLen(frame, k, l); n > 0 {
		ip := frame[l.L3:]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], refCsum(ip[:n]))
	}
	end := ipEnd(frame, k, l)
	if l.L4 < 0 || k.NwFrag != 0 || end < int(l.L4) {
		return
	}
	seg := frame[l.L4:end]
	if k.NwProto == IPProtoSCTP && len(seg) >= 12 {
		clear(seg[8:12])
		binary.LittleEndian.PutUint32(seg[8:], crc32.Checksum(seg, crc32.MakeTable(crc32.Castagnoli)))
		return
	}
	off, udp := csumField(k)
	if off < 0 || len(seg) < off+2 {
		return
	}
	if udp && zeroUDP {
		seg[off], seg[off+1] = 0, 0
		return
	}
	withCsum(l4Pseudo(frame, k, l, seg), seg, off, udp)
}

// checkCsums verifies what fixCsums set up, by full recomputation.
func checkCsums(frame []byte, k *Key, l *Layout) string {
	if n := ipv4HdrLen(frame, k, l); n > 0 {
		ip := bytes.Clone(frame[l.L3 : int(l.L3)+n])
		got := binary.BigEndian.Uint16(ip[10:])
		ip[10], ip[11] = 0, 0
		if want := refCsum(ip); got != want {
			return fmt.Sprintf("IPv4 header checksum %#04x, recomputed %#04x", got, want)
		}
	}
	end := ipEnd(frame, k, l)
	if l.L4 < 0 || k.NwFrag != 0 || end < int(l.L4) {
		return ""
	}
	seg := bytes.Clone(frame[l.L4:end])
	if k.NwProto == IPProtoSCTP && len(seg) >= 12 {
		got := binary.LittleEndian.Uint32(seg[8:])
		clear(seg[8:12])
		if want := crc32.Checksum(seg, crc32.MakeTable(crc32.Castagnoli)); got != want {
			return fmt.Sprintf("SCTP checksum %#x, recomputed %#x", got, want)
		}
		return ""
	}
	off, udp := csumField(k)
	if off < 0 || len(seg) < off+2 {
		return ""
	}
	got := binary.BigEndian.Uint16(seg[off:])
	if udp && got == 0 {
		return ""
	}
	withCsum(l4Pseudo(frame, k, l, seg), seg, off, udp)
	if want := binary.BigEndian.Uint16(seg[off:]); got != want {
		return fmt.Sprintf("proto %d checksum %#04x, recomputed %#04x", k.NwProto, got, want)
	}
	return ""
}

// routingPending is the test's own walk for "a routing header with
// segments left precedes the transport header".
func routingPending(frame []byte, l *Layout) bool {
	if l.L3 < 0 || l.L4 < 0 || len(frame) < int(l.L3)+40 {
		return false
	}
	next := frame[l.L3+6]
	for off := int(l.L3) + 40; off+8 <= int(l.L4); {
		h := frame[off:]
		if next == IPProtoRouting && h[3] > 0 {
			return true
		}
		switch next {
		case IPProtoAH:
			off += (int(h[1]) + 2) * 4
		case IPProtoFragment:
			off += 8
		default:
			off += (int(h[1]) + 1) * 8
		}
		next = h[0]
	}
	return false
}
