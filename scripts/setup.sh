#!/usr/bin/env bash
# Installs what the xvs lab and test suite need on a fresh Debian machine:
# Open vSwitch 3.1 tools (ovs-vsctl, ovs-appctl, ovsdb-server for side-by-side
# tests), python3-openvswitch (IDL tests), iperf3/ping/tcpdump/ethtool for
# the lab, and the Go modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for p in openvswitch-switch openvswitch-common python3-openvswitch iproute2 ethtool iperf3 \
         iputils-ping tcpdump bpftool make socat; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts its own Open vSwitch daemons on install; xvs and its tests use
# private sockets, but stop them so nothing else holds XDP programs or the
# default OVSDB socket.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop openvswitch-switch ovs-vswitchd ovsdb-server >/dev/null 2>&1 || true
fi
/usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
export PATH=/usr/local/go/bin:$PATH
go mod download
