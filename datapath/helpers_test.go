package datapath

import (
	"encoding/binary"
	"fmt"
	"testing"

	"xvs/flow"
)

// frameSpec describes a test frame: Ethernet, optional 802.1Q tag, IPv4/UDP.
type frameSpec struct {
	src, dst [6]byte
	vid      int // -1 untagged
	pcp      int
	arp      bool
	sport    uint16
	size     int // total frame size (>= 60)
}

func mac(b byte) [6]byte { return [6]byte{0x02, 0, 0, 0, 0, b} }

var bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func buildFrame(s frameSpec) []byte {
	size := s.size
	if size < 60 {
		size = 60
	}
	f := make([]byte, 0, size+4)
	f = append(f, s.dst[:]...)
	f = append(f, s.src[:]...)
	if s.vid >= 0 {
		f = binary.BigEndian.AppendUint16(f, flow.EthTypeVLAN)
		f = binary.BigEndian.AppendUint16(f, uint16(s.pcp)<<13|uint16(s.vid))
	}
	if s.arp {
		f = binary.BigEndian.AppendUint16(f, flow.EthTypeARP)
		f = append(f, 0, 1, 8, 0, 6, 4, 0, 1)
		f = append(f, s.src[:]...)
		f = append(f, 198, 18, 0, s.src[5])
		f = append(f, 0, 0, 0, 0, 0, 0)
		f = append(f, 198, 18, 0, s.dst[5])
	} else {
		f = binary.BigEndian.AppendUint16(f, flow.EthTypeIPv4)
		ipStart := len(f)
		payload := size - len(f) - 20 - 8
		if payload < 0 {
			payload = 0
		}
		f = append(f, 0x45, 0)
		f = binary.BigEndian.AppendUint16(f, uint16(20+8+payload))
		f = append(f, 0, 0, 0x40, 0, 64, 17, 0, 0)
		f = append(f, 198, 18, 0, s.src[5], 198, 18, 0, s.dst[5])
		var sum uint32
		for i := ipStart; i < ipStart+20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(f[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(f[ipStart+10:], ^uint16(sum))
		f = binary.BigEndian.AppendUint16(f, s.sport)
		f = binary.BigEndian.AppendUint16(f, 4789)
		f = binary.BigEndian.AppendUint16(f, uint16(8+payload))
		f = append(f, 0, 0)
		f = append(f, make([]byte, payload)...)
	}
	for len(f) < size {
		f = append(f, 0)
	}
	return f
}

// frameVLAN returns the outer VID and PCP of a frame, or -1.
func frameVLAN(f []byte) (vid, pcp int) {
	if binary.BigEndian.Uint16(f[12:]) == flow.EthTypeVLAN {
		tci := binary.BigEndian.Uint16(f[14:])
		return int(tci & 0xfff), int(tci >> 13)
	}
	return -1, 0
}

// testBridge is a datapath with one bridge and in-memory devices.
type testBridge struct {
	t    *testing.T
	dp   *Datapath
	br   string
	devs map[string]*MemDevice
	p    *Poller
	// kernel, when set, is the fake XDP tier every device is served by.
	kernel *fakeKernel
	ifidx  map[string]uint32
}

func newTestBridge(t *testing.T, name string) *testBridge {
	t.Helper()
	dp := New(Config{})
	if _, err := dp.AddBridge(name); err != nil {
		t.Fatal(err)
	}
	return &testBridge{t: t, dp: dp, br: name, devs: map[string]*MemDevice{}, p: dp.NewPoller(0, 1)}
}

func (tb *testBridge) addPort(bridge string, pc PortConfig) {
	tb.t.Helper()
	for i := range pc.Interfaces {
		ic := &pc.Interfaces[i]
		if ic.Peer == "" && ic.Device == nil {
			d := NewMemDevice(ic.Name)
			tb.devs[ic.Name] = d
			ic.Device = d
			if tb.kernel != nil {
				if tb.ifidx == nil {
					tb.ifidx = map[string]uint32{}
				}
				idx := uint32(100 + len(tb.ifidx))
				tb.ifidx[ic.Name] = idx
				tb.kernel.devs[idx] = d
				ic.Device = offDev{d, int(idx)}
			}
		} else if od, ok := ic.Device.(offDev); ok {
			_ = od
		} else if md, ok := ic.Device.(*MemDevice); ok && tb.kernel != nil {
			ic.Device = offDev{md, int(tb.ifidx[ic.Name])}
		}
	}
	if pc.Tag == 0 && !pc.ModeSet && pc.Trunks == nil {
		// zero value means "no tag" in these tests unless set explicitly
	}
	if err := tb.dp.SetPort(bridge, pc); err != nil {
		tb.t.Fatal(err)
	}
}

func port(name string, tag int, mode string, trunks ...uint16) PortConfig {
	pc := PortConfig{Name: name, Interfaces: []InterfaceConfig{{Name: name}}, Tag: tag, Trunks: trunks}
	if mode != "" {
		m, err := ParseVLANMode(mode)
		if err != nil {
			panic(err)
		}
		pc.Mode, pc.ModeSet = m, true
	}
	return pc
}

// send injects frames on a port and runs the poller until idle.
func (tb *testBridge) send(portName string, frames ...[]byte) {
	tb.t.Helper()
	d := tb.devs[portName]
	if d == nil {
		tb.t.Fatalf("no device %s", portName)
	}
	if tb.kernel != nil {
		var up [][]byte
		for _, f := range frames {
			if !tb.kernel.intercept(tb.ifidx[portName], f) {
				up = append(up, f)
			}
		}
		frames = up
	}
	d.Inject(frames...)
	for tb.p.PollOnce() > 0 {
	}
}

// sent returns what every device transmitted since the last call.
func (tb *testBridge) sent() map[string][][]byte {
	out := map[string][][]byte{}
	for n, d := range tb.devs {
		if s := d.Sent(); len(s) > 0 {
			out[n] = s
		}
	}
	return out
}

func describe(m map[string][][]byte) string {
	s := ""
	for n, fs := range m {
		for _, f := range fs {
			vid, pcp := frameVLAN(f)
			s += fmt.Sprintf("%s:vid=%d,pcp=%d,len=%d ", n, vid, pcp, len(f))
		}
	}
	return s
}

// dev returns the Device a port was added with.
func (tb *testBridge) dev(name string) Device {
	if tb.kernel != nil {
		return offDev{tb.devs[name], int(tb.ifidx[name])}
	}
	return tb.devs[name]
}
