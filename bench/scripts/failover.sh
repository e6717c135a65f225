#!/bin/sh
# Bond failover loss and bond forwarding throughput, xvs next to Open vSwitch
# 3.1 (userspace datapath, afxdp ports), in a netns lab. Needs root.
#   bench/scripts/failover.sh [runs]     (default 3 failovers per case)
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-3}
exec go test -count=1 -run '^$' -bench 'BondFailover' -benchtime "${runs}x" -timeout 15m ./bench/
