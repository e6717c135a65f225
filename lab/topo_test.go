package lab

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParsePing(t *testing.T) {
	out := `PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.

--- 198.18.0.2 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 812ms
rtt min/avg/max/mdev = 0.051/0.089/0.141/0.031 ms
`
	r, ok := parsePing(out)
	want := PingResult{Sent: 5, Received: 4, Loss: 20, RTTMin: 0.051, RTTAvg: 0.089, RTTMax: 0.141}
	if !ok || r != want {
		t.Errorf("parsePing = %+v, %v; want %+v", r, ok, want)
	}
	r, ok = parsePing("3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms\n")
	if !ok || r.Received != 0 || r.Sent != 3 || r.Loss != 100 || r.RTTAvg != 0 {
		t.Errorf("parsePing(no replies) = %+v, %v", r, ok)
	}
	if _, ok := parsePing("ping: connect: Network is unreachable\n"); ok {
		t.Error("parsePing accepted an error message")
	}
}

// Reports of iperf 3.12 (trimmed to "end").
const (
	iperfUDP = `{"end": {"sum": {"seconds": 1.476077, "bits_per_second": 1255646.18, "lost_packets": 4363, "packets": 9660},
	"sum_sent": {"seconds": 1.107828, "bits_per_second": 1255646.18, "lost_packets": 0, "packets": 9660, "sender": true},
	"sum_received": {"seconds": 1.476077, "bytes": 87822, "bits_per_second": 475975.17, "lost_packets": 4363, "packets": 9242, "sender": false}}}`
	iperfTCP = `{"end": {"sum_sent": {"seconds": 3.000213, "bits_per_second": 1213465801.26, "retransmits": 0, "sender": true},
	"sum_received": {"seconds": 3.010178, "bits_per_second": 1202115670.24, "sender": true}}}`
	iperfRefused = `{"start": {"connected": []}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}`
)

func TestParseIperf(t *testing.T) {
	var r IperfResult
	if err := parseIperf([]byte(iperfTCP), false, &r); err != nil || r.BitsPerSec != 1202115670.24 || r.Seconds != 3.010178 {
		t.Errorf("TCP: %+v, %v", r, err)
	}
	r = IperfResult{}
	if err := parseIperf([]byte(iperfUDP), true, &r); err != nil {
		t.Fatal(err)
	}
	// 9242 sequence numbers seen with 4363 gaps: 4879 received of 9660 sent.
	if r.Packets != 9660 || r.Lost != 9660-4879 || math.Abs(r.SentPPS-9660/1.107828) > 1e-6 ||
		math.Abs(r.ReceivedPPS-4879/1.107828) > 1e-6 || math.Abs(r.LossPercent()-100*4781/9660.0) > 1e-9 {
		t.Errorf("UDP: %+v (loss %.2f%%)", r, r.LossPercent())
	}
	if err := parseIperf([]byte(iperfRefused), false, &r); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused: %v", err)
	}
	if err := parseIperf([]byte("iperf3: error - unable to start listener"), false, &r); err == nil {
		t.Error("non-JSON output accepted")
	}
}

func TestBuildNeedsXvsd(t *testing.T) {
	if _, err := Build("nope", &Lab{Prefix: "xvsx"}, TopoOptions{}); err == nil {
		t.Error("unknown topology accepted")
	}
	if _, err := Build(KindPair, &Lab{Prefix: "xvsx"}, TopoOptions{}); err == nil || !strings.Contains(err.Error(), "Xvsd") {
		t.Errorf("missing xvsd binary: %v", err)
	}
}

var xvsdBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildXvsd compiles cmd/xvsd once per test binary.
func buildXvsd(t *testing.T) string {
	t.Helper()
	xvsdBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "xvs-topo-test-")
		if err != nil {
			xvsdBuild.err = err
			return
		}
		// go test puts its own GOROOT/bin first in PATH.
		xvsdBuild.path = filepath.Join(dir, "xvsd")
		xvsdBuild.out, xvsdBuild.err = exec.Command("go", "build", "-o", xvsdBuild.path, "xvs/cmd/xvsd").CombinedOutput()
	})
	if xvsdBuild.err != nil {
		t.Fatalf("building xvsd: %v: %s", xvsdBuild.err, xvsdBuild.out)
	}
	return xvsdBuild.path
}

// buildTopo builds kind in a fresh lab, removed (with its xvsd) at the
// end of the test.
func buildTopo(t *testing.T, kind string) *Topo {
	t.Helper()
	l := New(t)
	bin := buildXvsd(t)
	topo, err := Build(kind, l, TopoOptions{Xvsd: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(topo.Xvsd.Log); err == nil {
				t.Logf("xvsd log:\n%s", b)
			}
		}
		if err := topo.Close(); err != nil {
			t.Errorf("closing topology: %v", err)
		}
	})
	return topo
}

// pingPaths runs the topology's paths, ping only, and fails on any
// connectivity (or isolation) failure.
func pingPaths(t *testing.T, topo *Topo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := topo.Traffic(ctx, TrafficOptions{Pings: 3, NoIperf: true})
	if err != nil {
		var sb strings.Builder
		WriteSummary(&sb, res)
		t.Fatalf("%v\n%s", err, sb.String())
	}
	if len(res) != len(topo.Paths) {
		t.Fatalf("%d results for %d paths", len(res), len(topo.Paths))
	}
}

func TestPairTopo(t *testing.T) {
	topo := buildTopo(t, KindPair)
	pingPaths(t, topo)
	out, err := topo.Xvsd.Appctl("fdb/show", "br0")
	if err != nil {
		t.Fatal(err)
	}
	h1, err := topo.HostNS("h1")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := topo.HostNS("h2")
	if err != nil {
		t.Fatal(err)
	}
	r, err := UDPFlood(context.Background(), h1, h2, topo.Host("h2").IP(), 500*time.Millisecond)
	if err != nil || r.Packets == 0 || r.ReceivedPPS == 0 {
		t.Errorf("UDPFlood: %+v, %v", r, err)
	}
	t.Logf("UDP flood h1 -> h2: %.0f pps sent, %.0f pps received", r.SentPPS, r.ReceivedPPS)
	// Both hosts were learned on VLAN 10.
	if n := strings.Count(out, "   10  "); n < 2 {
		t.Errorf("fdb/show br0: want both hosts on VLAN 10:\n%s", out)
	}
}

func TestSeedTopo(t *testing.T) {
	topo := buildTopo(t, KindSeed)
	pingPaths(t, topo)

	// The rows are those of seed-topology.md.
	for _, c := range []struct{ args, want string }{
		{"get Port patch-ex-to-phy external_ids:bridge-uplink", "patch-ex-to-phy"},
		{"get Open_vSwitch . external_ids:ovn-bridge-mappings", "localnet-network:br-ex"},
		{"get Port ovs-bond bond_mode", "balance-slb"},
		{"get Interface enp3s0 mtu_request", "1500"},
		{"get Port vm20 tag", "20"},
	} {
		out, err := topo.Xvsd.Vsctl(strings.Fields(c.args)...)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Trim(strings.TrimSpace(out), `"`); got != c.want {
			t.Errorf("ovs-vsctl %s = %q, want %q", c.args, got, c.want)
		}
	}

	// Save, attach from "another process", tear down without the handles.
	path := filepath.Join(t.TempDir(), "topo.json")
	if err := topo.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadTopo(path)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	if pid, ok := loaded.XvsdPid(); !ok || pid <= 0 {
		t.Fatalf("loaded topology: xvsd pid %d alive=%v", pid, ok)
	}
	if out, err := loaded.Xvsd.Appctl("bond/show", "ovs-bond"); err != nil || !strings.Contains(out, "balance-slb") {
		t.Fatalf("bond/show through the loaded topology: %v\n%s", err, out)
	}
	if err := Teardown(topo.Prefix, topo.Dir); err != nil {
		t.Fatal(err)
	}
	if _, ok := loaded.XvsdPid(); ok {
		t.Error("xvsd still running after Teardown")
	}
	if _, err := os.Stat(filepath.Join(netnsDir, topo.Prefix+"-node")); !os.IsNotExist(err) {
		t.Errorf("namespace left after Teardown: %v", err)
	}
}

func TestParseIfaceStats(t *testing.T) {
	out := "vm0,\"{rx_bytes=337004, rx_dropped=7, rx_packets=5102, tx_packets=161492}\"\nbr-ex,{}\n"
	got := parseIfaceStats(out)
	if len(got) != 2 || got[0].Name != "br-ex" || len(got[0].Stats) != 0 ||
		got[1].Name != "vm0" || got[1].Stats["rx_dropped"] != 7 || got[1].Stats["tx_packets"] != 161492 {
		t.Errorf("parseIfaceStats = %+v", got)
	}
}
