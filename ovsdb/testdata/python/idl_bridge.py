"""Drive an OVSDB server with the OVS Python IDL (python3-openvswitch).

Usage: idl_bridge.py REMOTE SCHEMA BRIDGE PORT

Connects, replicates Open_vSwitch/Bridge/Port/Interface, adds BRIDGE with
one internal PORT in a single transaction, waits until the IDL's replica
shows it, changes the port, removes the bridge, and prints each state it
observes in a stable, UUID-free form. Exits non-zero on any failure.
"""

import sys
import time

import ovs.db.idl
import ovs.poller

DEADLINE = time.time() + 15


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def pump(idl, done, what):
    """Run the IDL until done() holds."""
    while not done():
        if time.time() > DEADLINE:
            fail("timed out waiting for " + what)
        idl.run()
        if done():
            break
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.timer_wait(100)
        poller.block()


def commit(idl, build, what):
    while True:
        txn = ovs.db.idl.Transaction(idl)
        build(txn)
        status = txn.commit_block()
        if status == ovs.db.idl.Transaction.TRY_AGAIN:
            pump(idl, lambda: True, what)
            continue
        print("commit %s: %s" % (what, ovs.db.idl.Transaction.status_to_string(status)))
        if status not in (ovs.db.idl.Transaction.SUCCESS, ovs.db.idl.Transaction.UNCHANGED):
            fail("commit %s: %s" % (what, txn.get_error()))
        return


def describe(idl):
    lines = []
    for br in idl.tables["Bridge"].rows.values():
        ports = []
        for p in br.ports:
            ifaces = ",".join(sorted("%s:%s" % (i.name, i.type) for i in p.interfaces))
            ports.append("%s tag=%s ifaces=[%s] ext=%s" % (
                p.name, list(p.tag), ifaces, sorted(p.external_ids.items())))
        lines.append("bridge %s ports=[%s]" % (br.name, "; ".join(sorted(ports))))
    lines.sort()
    lines.append("counts: Bridge=%d Port=%d Interface=%d" % tuple(
        len(idl.tables[t].rows) for t in ("Bridge", "Port", "Interface")))
    return lines


def bridge(idl, name):
    for br in idl.tables["Bridge"].rows.values():
        if br.name == name:
            return br
    return None


def main():
    remote, schema, brname, portname = sys.argv[1:5]
    helper = ovs.db.idl.SchemaHelper(location=schema)
    for table in ("Open_vSwitch", "Bridge", "Port", "Interface"):
        helper.register_table(table)
    idl = ovs.db.idl.Idl(remote, helper)

    pump(idl, lambda: idl.has_ever_connected() and idl.change_seqno > 0
         and len(idl.tables["Open_vSwitch"].rows) == 1, "initial contents")
    print("initial:")
    for line in describe(idl):
        print("  " + line)

    def add(txn):
        root = next(iter(idl.tables["Open_vSwitch"].rows.values()))
        iface = txn.insert(idl.tables["Interface"])
        iface.name = portname
        iface.type = "internal"
        port = txn.insert(idl.tables["Port"])
        port.name = portname
        port.interfaces = [iface]
        br = txn.insert(idl.tables["Bridge"])
        br.name = brname
        br.ports = [port]
        root.verify("bridges")
        root.bridges = list(root.bridges) + [br]

    commit(idl, add, "add")
    pump(idl, lambda: bridge(idl, brname) is not None
         and len(bridge(idl, brname).ports) == 1, "the new bridge")
    print("after add:")
    for line in describe(idl):
        print("  " + line)

    def change(txn):
        port = bridge(idl, brname).ports[0]
        port.tag = [10]
        port.setkey("external_ids", "owner", "idl")

    commit(idl, change, "change")
    pump(idl, lambda: list(bridge(idl, brname).ports[0].tag) == [10], "the tag")
    print("after change:")
    for line in describe(idl):
        print("  " + line)

    def remove(txn):
        root = next(iter(idl.tables["Open_vSwitch"].rows.values()))
        root.verify("bridges")
        root.bridges = [b for b in root.bridges if b.name != brname]

    commit(idl, remove, "remove")
    pump(idl, lambda: bridge(idl, brname) is None
         and all(p.name != portname for p in idl.tables["Port"].rows.values())
         and all(i.name != portname for i in idl.tables["Interface"].rows.values()),
         "garbage collection")
    print("after remove:")
    for line in describe(idl):
        print("  " + line)
    idl.close()


if __name__ == "__main__":
    main()
