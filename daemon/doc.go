// Package daemon is xvsd: it serves the Open_vSwitch database (package
// ovsdb) and runs the datapath it describes.
//
// Reconciliation runs on one goroutine after every commit: it reads a
// consistent snapshot of the Open_vSwitch, Bridge, Port and Interface
// tables, compares it with what runs, and changes only what differs —
// bridges, ports and their VLAN configuration, bonds (package bond), patch
// ports, and the devices behind interfaces (AF_XDP sockets with an
// AF_PACKET fallback, TAP devices for type=internal; package xdp). A
// device is closed only after the datapath stopped using it (Quiesce).
// Then it writes back what clients read (Interface ofport, error, status,
// ifindex, mac_in_use, mtu, admin/link state, statistics; Port
// bond_active_slave; Bridge datapath_id) and copies next_cfg to cur_cfg,
// which is what a plain ovs-vsctl waits for. Interfaces whose device is
// missing are retried every two seconds.
//
// The management socket speaks the unixctl protocol (package
// ovsdb/unixctl), so the real ovs-appctl works: dpif/show,
// dpctl/dump-flows, fdb/show, fdb/flush, ofproto/trace, coverage/show,
// memory/show, vlog/set, ofctl/add-flow|mod-flows|del-flows|dump-flows
// and the bond/ commands. Optional Prometheus metrics are read from the
// datapath's counters at scrape time.
package daemon
