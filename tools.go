//go:build tools

package tools

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/gopacket/gopacket"
	_ "github.com/ovn-org/libovsdb/client"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/sys/unix"
)
