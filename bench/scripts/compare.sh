#!/bin/sh
# Runs the netns throughput comparison on one topology, one DUT after the
# other: the bare AF_XDP forwarder (package xdp, shared UMEM), the Linux
# bridge, in-kernel XDP_REDIRECT and Open vSwitch 3.1 (userspace datapath,
# type=afxdp ports, xdp-mode=native, PMD on the DUT core), each with 1 and
# 1000 flows of 64-byte UDP frames, and prints Mpps, loss and ratios.
#
# Needs root, veth, XDP, and ovs-vswitchd/ovsdb-server for the ovs DUT.
# Usage: bench/scripts/compare.sh [-duration 3s] [-duts afxdp,ovs] [-flows 1,1000]
#        [-cpuprofile /tmp/afxdp.pprof] [-perf /tmp/afxdp.perf] [-threaded [-napififo]]
#        [-spin N] [-batch N]   (bare forwarder: polling rounds before poll(2), batch size)
# CPU placement: the generator and the sink's NAPI thread (SCHED_FIFO) run on
# CPU 0, the DUT on CPU 1. By default the DUT's veth NAPI stays in softirq,
# which runs where it was raised: the DUT's ingress work (its XDP program,
# the AF_XDP rx copy, all of the Linux bridge and XDP_REDIRECT) then runs on
# CPU 0 inline with the generator; only user-space DUTs' own threads (and
# their tx path) run on CPU 1. -threaded moves the DUT's NAPI into threads
# pinned to CPU 1 (the DUT really on one core); on this VM the cross-core
# wakeups then leave veth's 256-entry ring overflowing while the DUT core
# is mostly idle, so those numbers are much lower. -napififo gives those
# threads real-time priority, like a NIC's softirq on the DUT core.
# Benchmark threads run at nice -20 (and the process's autogroup too), but
# other work on the machine still adds noise: check `uptime` first.
set -e
cd "$(dirname "$0")/../.."
args=""
while [ $# -gt 0 ]; do
	case "$1" in
	-duration) args="$args -bench.duration=$2"; shift 2 ;;
	-duts) args="$args -bench.duts=$2"; shift 2 ;;
	-flows) args="$args -bench.flows=$2"; shift 2 ;;
	-cpuprofile) args="$args -bench.cpuprofile=$2"; shift 2 ;;
	-perf) args="$args -bench.perf=$2"; shift 2 ;;
	-threaded) args="$args -bench.threaded"; shift ;;
	-napififo) args="$args -bench.napififo"; shift ;;
	-spin) args="$args -bench.afxdp.spin=$2"; shift 2 ;;
	-batch) args="$args -bench.afxdp.batch=$2"; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
XVS_BENCH_COMPARE=1 exec go test ${GOTESTFLAGS} -v -count=1 -timeout 30m -run '^TestCompare$' ./bench/ -args $args
