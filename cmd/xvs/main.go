// Command xvs is the user's entry point to xvs: it builds network-namespace
// labs running xvsd (`xvs lab demo seed`), sends traffic through them, and
// wraps ovs-vsctl and ovs-appctl for a running lab.
//
//	xvs lab demo  TOPOLOGY [--xvsd PATH]   up, traffic, summary, down
//	xvs lab up    TOPOLOGY [--xvsd PATH]   build (idempotent)
//	xvs lab traffic TOPOLOGY [--time 3s] [--pings 5] [--no-iperf]
//	xvs lab status [TOPOLOGY]
//	xvs lab down  TOPOLOGY                 works after a crash or Ctrl-C
//	xvs show   [--lab TOPOLOGY | --db unix:PATH]
//	xvs vsctl  [--lab TOPOLOGY] ARGS...
//	xvs appctl [--lab TOPOLOGY] ARGS...
//	xvs capture PORT [-w FILE.pcap] [-c N] [filter]
//
// Topologies: seed, pair, bond (see package lab). Lab commands need root.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  xvs lab demo TOPOLOGY [--xvsd PATH] [--hosts N]   build, send traffic, summarise, tear down
  xvs lab up TOPOLOGY [--xvsd PATH] [--hosts N]     build the lab (again, if it is broken)
  xvs lab traffic TOPOLOGY [--time 3s] [--pings 5] [--no-iperf]
  xvs lab status [TOPOLOGY]
  xvs lab down TOPOLOGY
  xvs show [--lab TOPOLOGY | --db unix:PATH]        ovs-vsctl show
  xvs vsctl [--lab TOPOLOGY] ARGS...                ovs-vsctl against the lab's xvsd
  xvs appctl [--lab TOPOLOGY] ARGS...               ovs-appctl against the lab's xvsd
  xvs bench compare [--duts afxdp,bridge,xdp-redirect,ovs,xvs,xvs-xdp] [--sizes 64,512,1518]
                    [--flows 1,1000] [--duration 3s] [--out DIR]
                                                    netns throughput comparison: table + charts
  xvs bench report DIR/results.json [--out DIR]     re-render a stored comparison
  xvs capture PORT [-w FILE.pcap] [-c N] [-t SECONDS] [--dir rx|tx|both] [--lab T | --ctl SOCK] [filter]
                                                    frames of a port as the datapath sees them (pcap)

topologies:
  seed   the node of seed-topology.md: br-ex (internal port 198.18.0.1/24) -- patch --
         br-phy -- balance-slb bond over enp2s0/enp3s0 -- upstream switch -- upstream host;
         VMs vm0 (untagged), vm10 and vm10b (VLAN 10), vm20 (VLAN 20)
  pair   two hosts on access ports of one bridge
  bond   N upstream hosts (--hosts, default 4) behind a 2-member balance-slb bond

--xvsd defaults to building ./cmd/xvsd of the enclosing module (go build, cached),
then xvsd next to this program, then xvsd in $PATH.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	if errors.Is(err, errUsage) {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xvs:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "lab":
		if len(args) < 2 {
			return errUsage
		}
		return runLab(ctx, args[1], args[2:])
	case "show":
		return runShow(args[1:])
	case "vsctl":
		return runVsctl(args[1:])
	case "appctl":
		return runAppctl(args[1:])
	case "capture":
		return runCapture(args[1:])
	case "bench":
		return runBench(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return errUsage
}
