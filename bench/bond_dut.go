package bench

import (
	"fmt"
	"os"
)

// Bond DUTs: the output side is a balance-slb bond of two members — the
// veth to the sink and a second veth whose peer is down (no carrier), so
// the bond is live but every bucket maps to the member towards the sink.
// What is measured is forwarding through the bond machinery (member
// selection per frame), as a node with one member down does.

// downMember creates, in namespace ns, a veth whose peer is down, and
// returns its name and a cleanup.
func downMember(ns string) (string, func(), error) {
	pid := os.Getpid() % 100000
	name, peer := fmt.Sprintf("xbd%d", pid), fmt.Sprintf("xbp%d", pid)
	if err := sh("ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer); err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = sh("ip", "-n", ns, "link", "del", name) }
	if err := nsRun(ns, "ethtool", "-K", name, "tx", "off"); err != nil {
		cleanup()
		return "", nil, err
	}
	if err := sh("ip", "-n", ns, "link", "set", name, "up"); err != nil {
		cleanup()
		return "", nil, err
	}
	return name, cleanup, nil
}
