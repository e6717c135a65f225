package bond

import (
	"net"
	"testing"
)

// goldenHashes were produced by the real Open vSwitch 3.1.0 (Debian
// package, generic hash build) with `ovs-appctl bond/hash MAC VLAN BASIS`
// against an ovs-vswitchd running with dummy ports.
var goldenHashes = []struct {
	mac    string
	vlan   uint16
	basis  uint32
	bucket uint8
}{
	{"50:54:00:00:00:01", 0, 0, 144},
	{"50:54:00:00:00:01", 10, 0, 60},
	{"50:54:00:00:00:01", 0, 7, 21},
	{"00:00:00:00:00:00", 0, 0, 252},
	{"ff:ff:ff:ff:ff:ff", 4095, 4294967295, 93},
	{"50:54:00:00:00:00", 0, 0, 73},
	{"50:54:00:00:00:64", 0, 0, 202},
	{"00:00:00:00:00:01", 0, 0, 68},
	{"01:00:00:00:00:00", 0, 0, 34},
	{"00:00:00:00:00:00", 1, 0, 96},
	{"00:00:00:00:00:00", 0, 1, 125},
	{"aa:55:aa:55:00:0e", 100, 12345, 52},
	{"39:0c:8c:7d:72:47", 4094, 2342331444, 6},
	{"10:0f:2f:6f:77:0d", 4094, 0, 12},
	{"e5:8e:03:51:d8:ae", 0, 0, 145},
	{"2f:c2:31:b7:b0:87", 4094, 0, 191},
	{"c2:8e:e8:ba:53:bd", 0, 0, 161},
	{"a1:cd:89:21:6c:a1", 4094, 2144181937, 52},
	{"49:87:47:7e:86:db", 1, 4284391408, 22},
	{"2e:18:38:4e:51:d8", 10, 7, 3},
	{"05:3a:88:ae:39:96", 0, 7, 182},
	{"5b:36:98:65:4e:bf", 100, 7, 74},
	{"f8:23:40:41:f3:54", 100, 7, 154},
	{"1e:75:22:10:a9:24", 1, 0, 108},
	{"62:61:e5:47:d8:5d", 10, 3965395580, 46},
	{"32:19:07:2f:79:55", 10, 2067418686, 244},
	{"29:d6:a1:85:68:a0", 1, 7, 12},
	{"ea:a1:25:04:ea:33", 100, 7, 243},
	{"68:87:fa:80:1a:2f", 3469, 0, 60},
	{"bd:4b:dc:41:15:9d", 2987, 0, 2},
}

func mustMAC(tb testing.TB, s string) [6]byte {
	tb.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		tb.Fatalf("bad MAC %q: %v", s, err)
	}
	return [6]byte(hw)
}

func TestHashGolden(t *testing.T) {
	for _, g := range goldenHashes {
		mac := mustMAC(t, g.mac)
		if got := Bucket(mac, g.vlan, g.basis); got != g.bucket {
			t.Errorf("Bucket(%s, %d, %d) = %d, OVS 3.1 says %d", g.mac, g.vlan, g.basis, got, g.bucket)
		}
		if got := uint8(HashMAC(mac, g.vlan, g.basis)); got != g.bucket {
			t.Errorf("HashMAC(%s, %d, %d)&0xff = %d, want %d", g.mac, g.vlan, g.basis, got, g.bucket)
		}
	}
}

// Replies of the real OVS 3.1 bond/hash, including its parser's quirks.
func TestHashCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  error
	}{
		{[]string{"50:54:00:00:00:01"}, "144", nil},
		{[]string{"50:54:00:00:00:01", "10"}, "60", nil},
		{[]string{"50:54:00:00:00:01", "0", "7"}, "21", nil},
		{[]string{"50:54:00:00:00:01", "70000"}, "4", nil},
		{[]string{"50:54:00:00:00:01", "4464"}, "4", nil},
		{[]string{"50:54:00:00:00:01", "x"}, "", ErrInvalidVLAN},
		{[]string{"50:54:00:00:00:01", "0", "-1"}, "170", nil},
		{[]string{"50:54:00:00:00:01", "0", "4294967296"}, "144", nil},
		{[]string{"5054.0000.0001"}, "", ErrInvalidMAC},
		{[]string{"50:54:00:00:00:1"}, "144", nil},
		{[]string{"50:54:00:00:00:01", "10x"}, "60", nil},
		{[]string{"50-54-00-00-00-01"}, "", ErrInvalidMAC},
	} {
		got, err := HashCommand(tc.args...)
		if got != tc.want || err != tc.err {
			t.Errorf("bond/hash %v = %q, %v; OVS says %q, %v", tc.args, got, err, tc.want, tc.err)
		}
	}
}
