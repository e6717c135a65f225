#!/bin/sh
# Runs a comparison sweep (bench.Compare) and writes a report directory:
# results.json, report.md (tables per frame size, ratios of xvs and
# xvs-xdp to ovs, bridge and the afxdp / xdp-redirect ceilings, machine
# facts and load averages) and throughput-<size>.svg/.png charts.
#
# Needs root, veth, XDP, and ovs-vswitchd/ovsdb-server for the ovs DUT.
# Usage: bench/scripts/report.sh [-out DIR] [-duts afxdp,bridge,xdp-redirect,ovs,xvs,xvs-xdp]
#        [-sizes 64,512,1518] [-flows 1,1000,100000] [-duration 3s]
# The machine is shared: the report records the load average at start and
# end and per run; check `uptime` first.
set -e
cd "$(dirname "$0")/../.."
out="bench-report-$(date -u +%Y%m%dT%H%M%SZ)"
args=""
while [ $# -gt 0 ]; do
	case "$1" in
	-out) out="$2"; shift 2 ;;
	-duts) args="$args -report.duts=$2"; shift 2 ;;
	-sizes) args="$args -report.sizes=$2"; shift 2 ;;
	-flows) args="$args -report.flows=$2"; shift 2 ;;
	-duration) args="$args -report.duration=$2"; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
go test ${GOTESTFLAGS} -v -count=1 -timeout 2h -run '^TestCompareReport$' ./bench/ -args -report.out="$out" $args
echo "report: $out/report.md"
