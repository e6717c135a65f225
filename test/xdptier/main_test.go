// Package xdptier checks xvs's in-kernel XDP flow tier end to end in
// network namespaces, through xvsd configured with the real ovs-vsctl:
//
//   - differential: the same deterministic traffic (unicast, VLAN push, pop
//     and rewrite, flooding, IPv4 with fragments, IPv6, ARP) is sent with
//     other_config:xdp-flow-offload=false and =true, and every receiver
//     must capture the same frames both times, and the Interface
//     statistics must agree;
//   - invalidation under traffic: a MAC move, port retags, fdb/flush,
//     del-port, a bond member going away (link down, removed from the
//     bond), turning the tier off and on, killing xvsd; once the change
//     is acknowledged, no frame may reach the old destination and the
//     stream continues at the new one;
//   - MAC ageing with traffic only in the kernel, and statistics (per
//     megaflow, per interface, bond members) of kernel-forwarded frames;
//   - the offload program passes the verifier and attaches to a veth in
//     native mode, and leaves nothing behind when detached.
//
// Redirecting into a veth needs NAPI on the veth's peer, so every peer of a
// switch port (the hosts' eth0, the upstream switch's ports) gets GRO on.
package xdptier

import (
	"testing"

	"xvs/lab"
)

// xvsdBin is built once by TestMain (or taken from $XVSD_BIN); buildErr
// says why not.
var (
	xvsdBin  string
	buildErr error
)

func TestMain(m *testing.M) { lab.RunWithXvsd(m, &xvsdBin, &buildErr) }
