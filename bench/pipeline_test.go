package bench

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"xvs/datapath"
	"xvs/flow"
)

// The in-memory pipeline benchmarks: the whole per-batch fast path (key
// extraction, exact-match cache, megaflow cache, actions, output batching)
// between in-memory ports, no kernel involved. One op is one batch of
// datapath.BatchSize frames.

// source hands out pre-built frames: flows distinct source MACs, all to
// one destination. Each Recv resets the frames' headers (VLAN push moves
// them) without copying payloads, so the measurement is the pipeline.
type source struct {
	pkts  []*flow.Packet
	hdrs  [][]byte
	next  int
	flows int
}

func newSource(flows, size int, dst [6]byte) *source {
	s := &source{flows: flows}
	n := flows
	if n < datapath.BatchSize {
		n = datapath.BatchSize
	}
	for i := 0; i < n; i++ {
		f := make([]byte, size)
		copy(f[0:6], dst[:])
		src := srcMAC(i % flows)
		copy(f[6:12], src[:])
		binary.BigEndian.PutUint16(f[12:], flow.EthTypeIPv4)
		ip := f[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
		ip[8], ip[9] = 64, flow.IPProtoUDP
		copy(ip[12:16], []byte{198, 18, byte(i >> 8), byte(i)})
		copy(ip[16:20], []byte{198, 19, 0, 1})
		binary.BigEndian.PutUint16(ip[20:], uint16(1024+i%50000))
		binary.BigEndian.PutUint16(ip[22:], 4789)
		binary.BigEndian.PutUint16(ip[24:], uint16(size-34))
		buf := make([]byte, flow.Headroom+size)
		copy(buf[flow.Headroom:], f)
		s.pkts = append(s.pkts, &flow.Packet{Buf: buf, Off: flow.Headroom, Len: size, Pool: nopPool{}})
		s.hdrs = append(s.hdrs, f[:16])
	}
	return s
}

func srcMAC(i int) [6]byte {
	return [6]byte{0x02, 0x10, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

type nopPool struct{}

func (nopPool) Free(*flow.Packet) {}

// batch fills out with the next frames.
func (s *source) batch(out []*flow.Packet) {
	for i := range out {
		p := s.pkts[s.next]
		p.Off = flow.Headroom
		p.Len = len(p.Buf) - flow.Headroom
		copy(p.Buf[p.Off:], s.hdrs[s.next])
		s.next++
		if s.next == len(s.pkts) {
			s.next = 0
		}
		out[i] = p
	}
}

// sink counts and recycles what the datapath sends.
type sink struct {
	name    string
	packets uint64
}

func (d *sink) Name() string                       { return d.name }
func (d *sink) Recv(p []*flow.Packet) (int, error) { return 0, nil }
func (d *sink) Send(p []*flow.Packet) int {
	d.packets += uint64(len(p))
	for _, pk := range p {
		pk.Free()
	}
	return len(p)
}
func (d *sink) Stats() datapath.DeviceStats { return datapath.DeviceStats{TxPackets: d.packets} }
func (d *sink) Close() error                { return nil }

var dstMAC = [6]byte{0x02, 0x20, 0, 0, 0, 1}

// topology builds a datapath and returns it with the input port and the
// output sink. patch=false: one bridge, two trunk ports. patch=true: the
// seed topology's path, br-ex (VM on access VLAN 10) -> patch -> br-phy
// (trunk uplink), so every frame gets a VLAN pushed.
func topology(b *testing.B, flows int, patch bool) (*datapath.Datapath, uint32, *sink) {
	dp := datapath.New(datapath.Config{FlowLimit: 2 * flows, MaxIdle: time.Hour})
	out := &sink{name: "out"}
	in := &sink{name: "in"}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	port := func(name string, tag int, dev datapath.Device, peer string) datapath.PortConfig {
		return datapath.PortConfig{Name: name, Tag: tag, Interfaces: []datapath.InterfaceConfig{{Name: name, Device: dev, Peer: peer}}}
	}
	_, err := dp.AddBridge("br-ex")
	must(err)
	must(dp.SetMACLimits("br-ex", flows+100, time.Hour))
	if patch {
		_, err = dp.AddBridge("br-phy")
		must(err)
		must(dp.SetMACLimits("br-phy", flows+100, time.Hour))
		must(dp.SetPort("br-ex", port("vm1", 10, in, "")))
		must(dp.SetPort("br-ex", port("patch-ex-to-phy", -1, nil, "patch-phy-to-ex")))
		must(dp.SetPort("br-phy", port("patch-phy-to-ex", -1, nil, "patch-ex-to-phy")))
		must(dp.SetPort("br-phy", port("uplink", -1, out, "")))
	} else {
		must(dp.SetPort("br-ex", port("p1", -1, in, "")))
		must(dp.SetPort("br-ex", port("p2", -1, out, "")))
	}
	var inNo, outNo uint32
	for _, i := range dp.Ifaces() {
		switch i.Name {
		case "vm1", "p1":
			inNo = i.DPPort
		case "uplink", "p2":
			outNo = i.DPPort
		}
	}
	// The destination answers once, so it is learned on the output side.
	reply := make([]byte, 60)
	s0 := srcMAC(0)
	copy(reply[0:6], s0[:])
	copy(reply[6:12], dstMAC[:])
	binary.BigEndian.PutUint16(reply[12:], 0x88b5)
	vid := -1
	if patch {
		vid = 10
	}
	if vid >= 0 {
		tagged := append(append(append([]byte{}, reply[:12]...), 0x81, 0, 0, byte(vid)), reply[12:]...)
		reply = tagged
	}
	p := dp.NewPoller(0, 1)
	buf := make([]byte, flow.Headroom+len(reply))
	copy(buf[flow.Headroom:], reply)
	p.Process(outNo, []*flow.Packet{{Buf: buf, Off: flow.Headroom, Len: len(reply)}})
	return dp, inNo, out
}

func BenchmarkPipeline(b *testing.B) {
	for _, patch := range []bool{false, true} {
		for _, size := range []int{60, 1514} {
			for _, flows := range []int{1, 1000, 100000} {
				name := fmt.Sprintf("bridge=%s/frame=%d/flows=%d", map[bool]string{false: "one", true: "ex-patch-phy+vlan"}[patch], size+4, flows)
				b.Run(name, func(b *testing.B) { runPipeline(b, flows, size, patch) })
			}
		}
	}
}

func runPipeline(b *testing.B, flows, size int, patch bool) {
	dp, in, out := topology(b, flows, patch)
	src := newSource(flows, size, dstMAC)
	p := dp.NewPoller(0, 1)
	batch := make([]*flow.Packet, datapath.BatchSize)
	// Warm up: every flow's megaflow installed (and learned).
	for i := 0; i < (flows+datapath.BatchSize-1)/datapath.BatchSize+1; i++ {
		src.batch(batch)
		p.Process(in, batch)
	}
	if n, _, _ := dp.CacheStats(); n < flows {
		b.Fatalf("%d megaflows installed for %d flows", n, flows)
	}
	up0 := dp.Counters.Upcalls.Load()
	sent0 := out.packets
	b.ReportAllocs()
	b.SetBytes(int64(size * datapath.BatchSize))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		src.batch(batch)
		p.Process(in, batch)
	}
	el := time.Since(start)
	b.StopTimer()
	pkts := float64(b.N * datapath.BatchSize)
	if got := out.packets - sent0; got != uint64(pkts) {
		b.Fatalf("sink got %d packets, sent %v", got, pkts)
	}
	if up := dp.Counters.Upcalls.Load() - up0; up != 0 {
		b.Fatalf("%d upcalls in steady state", up)
	}
	b.ReportMetric(pkts/el.Seconds()/1e6, "Mpps")
	b.ReportMetric(float64(el.Nanoseconds())/pkts, "ns/pkt")
}
