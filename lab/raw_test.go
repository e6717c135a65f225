package lab

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func auxCmsg(status uint32, tci, tpid uint16) []byte {
	b := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_PACKET, unix.PACKET_AUXDATA
	h.SetLen(unix.CmsgLen(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	a := (*unix.TpacketAuxdata)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	a.Status, a.Vlan_tci, a.Vlan_tpid = status, tci, tpid
	return b
}

func TestParseAux(t *testing.T) {
	other := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&other[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_RIGHTS
	h.SetLen(unix.CmsgLen(4))
	oob := append(other, auxCmsg(unix.TP_STATUS_VLAN_VALID, 42, 0x88a8)...)
	aux, ok := parseAux(oob)
	if !ok || aux.Vlan_tci != 42 || aux.Vlan_tpid != 0x88a8 || aux.Status != unix.TP_STATUS_VLAN_VALID {
		t.Fatalf("parseAux = %+v, %v", aux, ok)
	}
	if _, ok := parseAux(other); ok {
		t.Fatal("aux data found in a foreign message")
	}
	if _, ok := parseAux(oob[:len(oob)-8]); ok {
		t.Fatal("truncated aux data accepted")
	}
}

func FuzzParseAux(f *testing.F) {
	f.Add(auxCmsg(unix.TP_STATUS_VLAN_VALID, 7, 0), 60)
	f.Add([]byte{}, 14)
	f.Add(make([]byte, 16), 0)
	f.Fuzz(func(t *testing.T, oob []byte, n int) {
		aux, ok := parseAux(oob)
		buf := make([]byte, 64)
		if n < 0 || n > 1<<16 {
			n = 64
		}
		if ok {
			m := insertTag(buf, n, aux.Vlan_tpid, aux.Vlan_tci)
			if n >= 12 && m != n+4 {
				t.Fatalf("insertTag(%d) = %d", n, m)
			}
			if n >= 12 && binary.BigEndian.Uint16(buf[14:]) != aux.Vlan_tci {
				t.Fatal("tag not written")
			}
		}
	})
}
