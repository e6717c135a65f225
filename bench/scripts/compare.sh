#!/bin/sh
# Runs the netns throughput comparison on one topology, one DUT after the
# other: the bare AF_XDP forwarder (package xdp, shared UMEM), the Linux
# bridge, in-kernel XDP_REDIRECT and Open vSwitch 3.1 (userspace datapath,
# type=afxdp ports, xdp-mode=native, PMD on the DUT core), each with 1 and
# 1000 flows of 64-byte UDP frames, and prints Mpps, loss and ratios.
#
# Needs root, veth, XDP, and ovs-vswitchd/ovsdb-server for the ovs DUT.
# Usage: bench/scripts/compare.sh [-duration 3s] [-duts afxdp,ovs] [-flows 1,1000]
#        [-cpuprofile /tmp/afxdp.pprof] [-perf /tmp/afxdp.perf] [-softirq] [-napififo]
#        [-spin N] [-batch N]   (bare forwarder: polling rounds before poll(2), batch size)
# Results are meaningless when other work runs on the machine: check
# `uptime` first (load should be well below 1).
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
	-softirq) args="$args -bench.softirq"; shift ;;
	-napififo) args="$args -bench.napififo"; shift ;;
	-spin) args="$args -bench.afxdp.spin=$2"; shift 2 ;;
	-batch) args="$args -bench.afxdp.batch=$2"; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
XVS_BENCH_COMPARE=1 exec go test ${GOTESTFLAGS} -v -count=1 -timeout 30m -run '^TestCompare$' ./bench/ -args $args
