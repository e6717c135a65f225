#!/bin/sh
# Bond failover loss and bond forwarding throughput, xvs next to Open vSwitch
# 3.1 (userspace datapath, afxdp ports), in a netns lab. Needs root.
#   bench/scripts/failover.sh [runs]     (default 3 failovers per case)
# Loss timeline charts (SVG and PNG) of the first failover of each case go
# to $XVS_FAILOVER_CHARTS (default /tmp/xvs-failover).
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-3}
export XVS_FAILOVER_CHARTS="${XVS_FAILOVER_CHARTS:-/tmp/xvs-failover}"
mkdir -p "$XVS_FAILOVER_CHARTS"
exec go test -count=1 -run '^$' -bench 'BondFailover' -benchtime "${runs}x" -timeout 15m ./bench/
