// Package bondtest checks xvs bonds (balance-slb, active-backup) end to
// end in network namespaces: the node's configuration is written only with
// the real ovs-vsctl and read only with the real ovs-appctl, and traffic is
// real frames on veth links observed from an "upstream switch" namespace
// (a Linux bridge), as a user of Open vSwitch would check a bond.
//
// Topology (one per test, see newBondLab):
//
//	vms ns: eth0 ─── vms ┐ node ns: xvsd, br0 (netdev)      ┌ sm1 ┐ sw ns: Linux bridge br0
//	                     └ bond0 = { m1, m2 } ══ veths ══  └ sm2 ┘          └ sup ── up ns: eth0
//
// The vms namespace stands for many VMs: tests send raw frames from it with
// many source MACs. Capture on sm1/sm2 (frames the node transmitted on m1
// and m2) tells which member carried what.
package bondtest

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
