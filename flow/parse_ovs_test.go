//go:build linux

package flow

// Differential test against the real Open vSwitch flow extraction: a
// private ovsdb-server and ovs-vswitchd (dummy datapath, vlan-limit 2) run
// in a temporary directory, and "ofproto/trace br0 in_port=1 <hex>" shows
// the flow OVS's flow_extract() builds from each frame. No privileges,
// kernel module or network are needed.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ovsInstance is a private OVS whose unixctl socket speaks JSON-RPC.
type ovsInstance struct {
	ctl  string // ovs-vswitchd unixctl socket
	conn net.Conn
	rd   *json.Decoder
	id   int
}

func startOVS(t *testing.T) *ovsInstance {
	t.Helper()
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	var missing []string
	for _, b := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat(schema); err != nil {
		missing = append(missing, schema)
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Open vSwitch tools missing in CI: %v", missing)
		}
		t.Skipf("Open vSwitch tools missing (%v): differential test against OVS not run", missing)
	}
	// Unix socket paths must stay short: use a short directory.
	dir, err := os.MkdirTemp("", "xvsovs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir)
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	start := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.Dir = dir
		// Never outlive the test binary, even when it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	db := filepath.Join(dir, "db.sock")
	run("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), schema)
	start("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+db,
		"--unixctl="+filepath.Join(dir, "ovsdb.ctl"), "--log-file="+filepath.Join(dir, "ovsdb.log"), "-vconsole:off")
	waitFor(t, db)
	run("ovs-vsctl", "--db=unix:"+db, "--no-wait", "--timeout=10", "init",
		"--", "set", "Open_vSwitch", ".", "other_config:vlan-limit=2",
		"--", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=dummy",
		"--", "add-port", "br0", "p1", "--", "set", "interface", "p1", "type=dummy", "ofport_request=1")
	o := &ovsInstance{ctl: filepath.Join(dir, "vswitchd.ctl")}
	start("ovs-vswitchd", "unix:"+db, "--enable-dummy=override", "--unixctl="+o.ctl,
		"--log-file="+filepath.Join(dir, "vswitchd.log"), "-vconsole:off")
	waitFor(t, o.ctl)
	if o.conn, err = net.Dial("unix", o.ctl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.conn.Close() })
	o.rd = json.NewDecoder(bufio.NewReader(o.conn))
	// The bridge appears once vswitchd has read the database.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := o.trace(ethFrame(hwA, hwB, nil, 0x88b5, nil))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovs-vswitchd not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return o
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
	}
}

// trace returns the fields of the "Flow:" line OVS prints for frame.
func (o *ovsInstance) trace(frame []byte) (string, error) {
	o.id++
	req := map[string]any{"method": "ofproto/trace", "params": []string{"br0", "in_port=1", hex.EncodeToString(frame)}, "id": o.id}
	if err := json.NewEncoder(o.conn).Encode(req); err != nil {
		return "", err
	}
	var resp struct {
		Result *string `json:"result"`
		Error  any     `json:"error"`
	}
	if err := o.rd.Decode(&resp); err != nil {
		return "", err
	}
	if resp.Error != nil || resp.Result == nil {
		return "", fmt.Errorf("ofproto/trace: %v", resp.Error)
	}
	for line := range strings.SplitSeq(*resp.Result, "\n") {
		if s, ok := strings.CutPrefix(line, "Flow: "); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("no Flow line in %q", *resp.Result)
}

// corpusFrames returns the table frames plus the FuzzExtract corpus.
func corpusFrames(t *testing.T) [][]byte {
	var frames [][]byte
	for _, tc := range extractCases() {
		frames = append(frames, tc.frame)
	}
	files, _ := filepath.Glob("testdata/fuzz/FuzzExtract/*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: unexpected corpus format", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		frames = append(frames, []byte(s))
	}
	return frames
}

var ovsProtoKeywords = map[string][2]int{ // keyword -> dl_type, nw_proto (-1: printed separately)
	"ip": {EthTypeIPv4, -1}, "tcp": {EthTypeIPv4, IPProtoTCP}, "udp": {EthTypeIPv4, IPProtoUDP},
	"sctp": {EthTypeIPv4, IPProtoSCTP}, "icmp": {EthTypeIPv4, IPProtoICMP}, "igmp": {EthTypeIPv4, 2},
	"ipv6": {EthTypeIPv6, -1}, "tcp6": {EthTypeIPv6, IPProtoTCP}, "udp6": {EthTypeIPv6, IPProtoUDP},
	"sctp6": {EthTypeIPv6, IPProtoSCTP}, "icmp6": {EthTypeIPv6, IPProtoICMPv6},
	"arp": {EthTypeARP, -1}, "rarp": {EthTypeRARP, -1},
	"mpls": {0x8847, -1}, "mplsm": {0x8848, -1}, // label stack: not in Key
}

var ovsTCPFlagNames = map[string]uint16{"fin": 0x1, "syn": 0x2, "rst": 0x4, "psh": 0x8, "ack": 0x10, "urg": 0x20, "ece": 0x40, "cwr": 0x80, "ns": 0x100}

// compareOVS checks every field OVS printed against k, and that the
// fields k sets are among them. It returns the differences.
func compareOVS(flow string, k *Key) []string {
	var diffs []string
	bad := func(format string, a ...any) { diffs = append(diffs, fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			bad("unparsable number %q", s)
		}
		return v
	}
	mac := func(s string) [6]byte {
		hw, err := net.ParseMAC(s)
		if err != nil || len(hw) != 6 {
			bad("unparsable MAC %q", s)
			return [6]byte{}
		}
		return [6]byte(hw)
	}
	ip := func(s string) [16]byte {
		a := net.ParseIP(s)
		if a == nil {
			bad("unparsable IP %q", s)
			return [16]byte{}
		}
		if a4 := a.To4(); a4 != nil && !strings.Contains(s, ":") {
			return v4in16([4]byte(a4))
		}
		return [16]byte(a.To16())
	}
	check := func(name string, got, want any) {
		if got != want {
			bad("%s: ours %v, OVS %v", name, got, want)
		}
	}
	for f := range strings.SplitSeq(flow, ",") {
		name, val, hasVal := strings.Cut(f, "=")
		seen[name] = true
		if !hasVal {
			p, ok := ovsProtoKeywords[name]
			if !ok {
				bad("unknown keyword %q", name)
				continue
			}
			check("dl_type", int(k.DlType), p[0])
			if p[1] >= 0 {
				check("nw_proto", int(k.NwProto), p[1])
			}
			continue
		}
		switch name {
		case "in_port":
			check(name, uint64(k.InPort), num(val))
		case "vlan_tci":
			check(name, uint64(k.VLAN[0].TCI), num(val))
		case "vlan_tci1":
			check(name, uint64(k.VLAN[1].TCI), num(val))
		case "dl_vlan":
			check(name, uint64(k.VLAN[0].VID()), num(val))
		case "dl_vlan_pcp":
			check(name, uint64(k.VLAN[0].PCP()), num(val))
		case "dl_vlan1":
			check(name, uint64(k.VLAN[1].VID()), num(val))
		case "dl_vlan_pcp1":
			check(name, uint64(k.VLAN[1].PCP()), num(val))
		case "dl_src":
			check(name, k.DlSrc, mac(val))
		case "dl_dst":
			check(name, k.DlDst, mac(val))
		case "dl_type":
			check(name, uint64(k.DlType), num(val))
		case "nw_src", "ipv6_src", "arp_spa":
			check(name, k.NwSrc, ip(val))
		case "nw_dst", "ipv6_dst", "arp_tpa":
			check(name, k.NwDst, ip(val))
		case "nw_proto", "arp_op":
			check(name, uint64(k.NwProto), num(val))
		case "ipv6_label":
			check(name, uint64(k.IPv6Label), num(val))
		case "nw_tos":
			check(name, uint64(k.NwTOS&0xfc), num(val))
		case "nw_ecn":
			check(name, uint64(k.NwTOS&0x03), num(val))
		case "nw_ttl":
			check(name, uint64(k.NwTTL), num(val))
		case "nw_frag":
			want := map[string]uint8{"no": 0, "first": FragAny, "later": FragAny | FragLater}
			if w, ok := want[val]; !ok || w != k.NwFrag {
				bad("nw_frag: ours %d, OVS %s", k.NwFrag, val)
			}
		case "tp_src", "icmp_type":
			check(name, uint64(k.TpSrc), num(val))
		case "tp_dst", "icmp_code":
			check(name, uint64(k.TpDst), num(val))
		case "tcp_flags":
			var fl uint16
			if val != "0" {
				for n := range strings.SplitSeq(val, "|") {
					b, ok := ovsTCPFlagNames[n]
					if !ok {
						if v, err := strconv.ParseUint(strings.Trim(n, "[]"), 16, 16); err == nil && strings.HasPrefix(n, "[") {
							b = uint16(v)
						} else {
							bad("unknown TCP flag %q", n)
						}
					}
					fl |= b
				}
			}
			check(name, k.TCPFlags, fl)
		case "arp_sha", "nd_sll":
			check(name, k.ArpSha, mac(val))
		case "arp_tha", "nd_tll":
			check(name, k.ArpTha, mac(val))
		case "nd_target", "nd_reserved", "nd_options_type", "mpls_label", "mpls_tc", "mpls_ttl", "mpls_bos",
			"mpls_lse1", "mpls_lse2", "igmp_group_ip4":
			// Not in Key.
		default:
			bad("unknown OVS field %q=%q", name, val)
		}
	}
	// Fields we set must have been printed by OVS.
	if k.NwSrc != ([16]byte{}) && !seen["nw_src"] && !seen["ipv6_src"] && !seen["arp_spa"] {
		bad("ours has NwSrc %v, OVS printed none", k.NwSrc)
	}
	if (k.TpSrc != 0 || k.TpDst != 0) && !seen["tp_src"] && !seen["icmp_type"] {
		bad("ours has ports %d/%d, OVS printed none", k.TpSrc, k.TpDst)
	}
	if k.ArpSha != ([6]byte{}) && !seen["arp_sha"] && !seen["nd_sll"] {
		bad("ours has ArpSha %v, OVS printed none", k.ArpSha)
	}
	if k.VLAN[0].Present() && !seen["dl_vlan"] {
		bad("ours has a VLAN tag, OVS printed none")
	}
	return diffs
}

func TestExtractAgainstOVS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ovsdb-server and ovs-vswitchd")
	}
	o := startOVS(t)
	n := 0
	frames := corpusFrames(t)
	// Every truncation of every table frame, and byte mutations of them
	// (deterministic), reach the error paths of both parsers.
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range extractCases() {
		for i := ethHdrLen; i < len(tc.frame); i++ {
			frames = append(frames, tc.frame[:i])
		}
		for range 60 {
			if len(tc.frame) < ethHdrLen {
				break
			}
			m := bytes.Clone(tc.frame)
			for range 1 + rng.IntN(4) {
				i := ethHdrLen - 2 + rng.IntN(len(m)-ethHdrLen+2)
				m[i] = byte(rng.Uint32())
				if rng.IntN(4) == 0 {
					m[i] = []byte{0, 1, 2, 6, 17, 43, 44, 51, 58, 60, 132, 0xff}[rng.IntN(12)]
				}
			}
			frames = append(frames, m)
		}
	}
	for _, frame := range frames {
		if len(frame) < ethHdrLen {
			continue // OVS drops runts before extracting a flow
		}
		flow, err := o.trace(frame)
		if err != nil {
			t.Fatalf("frame %x: %v", frame, err)
		}
		var k Key
		var l Layout
		Extract(frame, 1, &k, &l)
		if d := compareOVS(flow, &k); len(d) > 0 {
			t.Errorf("frame %x\n OVS: %s\n diffs: %s", frame, flow, strings.Join(d, "; "))
		}
		n++
	}
	t.Logf("%d frames agree with ovs-vswitchd's flow extraction", n)
}

// TestCompareOVSDetectsDifferences keeps the comparison honest.
func TestCompareOVSDetectsDifferences(t *testing.T) {
	k := Key{InPort: 1, DlType: EthTypeIPv4, NwProto: IPProtoUDP, TpSrc: 1234, TpDst: 53, DlSrc: hwB, DlDst: hwA,
		NwSrc: v4in16(addr4A), NwDst: v4in16(addr4B), NwTTL: 64, VLAN: [2]VLANHdr{{EthTypeVLAN, VLANCFI | 5<<13 | 10}}}
	flow := "udp,in_port=1,dl_vlan=10,dl_vlan_pcp=5,vlan_tci1=0x0000,dl_src=02:00:00:00:00:0b,dl_dst=02:00:00:00:00:0a," +
		"nw_src=198.18.0.1,nw_dst=198.18.0.2,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no,tp_src=1234,tp_dst=53"
	if d := compareOVS(flow, &k); len(d) != 0 {
		t.Fatalf("matching flow reported: %v", d)
	}
	for _, mut := range []func(*Key){
		func(k *Key) { k.TpDst++ }, func(k *Key) { k.VLAN[0].TCI++ }, func(k *Key) { k.NwSrc[0]++ },
		func(k *Key) { k.NwTTL++ }, func(k *Key) { k.DlType = EthTypeIPv6 }, func(k *Key) { k.NwFrag = FragAny },
		func(k *Key) { k.ArpSha[0] = 1 }, func(k *Key) { k.VLAN[1].TCI = VLANCFI },
	} {
		bad := k
		mut(&bad)
		if d := compareOVS(flow, &bad); len(d) == 0 {
			t.Errorf("difference not detected: %+v", bad)
		}
	}
	if !bytes.Equal(hwA[:], []byte{2, 0, 0, 0, 0, 0x0a}) {
		t.Fatal("test MACs changed")
	}
}
