#!/usr/bin/env python3
"""Capture golden VLAN / NORMAL-action behaviour from a real Open vSwitch.

Starts a private ovsdb-server + ovs-vswitchd (dummy datapath, dummy ports,
every socket/pidfile/log in a fresh temp dir -- never the system run dir),
configures bridges whose ports cover every Port.vlan_mode, runs
`ovs-appctl ofproto/trace` for every (input port, input frame) pair with a
broadcast destination (so NORMAL floods), and interprets the final
"Datapath actions:" line into the VLAN state of the frame at every output.

Usage:  bench/scripts/capture-ovs-vlan.py [-o datapath/testdata/ovs-vlan-truth.json]
                                          [--keep]   (keep temp dir for debugging)

Requires: ovsdb-tool, ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-appctl on PATH
(Debian package openvswitch-switch).  Python 3 stdlib only.  Re-runnable: the
daemons it started are stopped (by their own pid) and the temp dir removed on
exit, including on error or SIGINT/SIGTERM.
"""

import argparse
import json
import struct
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BCAST = "ff:ff:ff:ff:ff:ff"
VERIFY = True
RAW = []  # full trace texts, written with --raw FILE (order of actions is
          # hash-dependent in OVS, so they are kept out of the JSON)

# ---------------------------------------------------------------------------
# Scenario definitions.
# Each port: name, ofport, vlan_mode ("" = leave unset -> implicit mode),
# tag (None = unset), trunks (list), cvlans (list), other_config (dict).
# ---------------------------------------------------------------------------

MAIN_PORTS = [
    dict(name="p1", ofport=1, vlan_mode="access", tag=10, trunks=[]),
    dict(name="p2", ofport=2, vlan_mode="access", tag=11, trunks=[]),
    dict(name="p3", ofport=3, vlan_mode="access", tag=0, trunks=[]),
    dict(name="p4", ofport=4, vlan_mode="trunk", tag=None, trunks=[]),
    dict(name="p5", ofport=5, vlan_mode="trunk", tag=None, trunks=[10, 11]),
    dict(name="p6", ofport=6, vlan_mode="native-tagged", tag=10, trunks=[]),
    dict(name="p7", ofport=7, vlan_mode="native-tagged", tag=10, trunks=[10, 11]),
    dict(name="p8", ofport=8, vlan_mode="native-untagged", tag=10, trunks=[]),
    dict(name="p9", ofport=9, vlan_mode="native-untagged", tag=10, trunks=[10, 12]),
    dict(name="p10", ofport=10, vlan_mode="trunk", tag=None, trunks=[0]),
    # Extras: implicit modes and priority-tags.
    # vlan_mode unset + tag => access (trunks ignored with a WARN).
    dict(name="p11", ofport=11, vlan_mode="", tag=12, trunks=[10]),
    # vlan_mode unset + no tag => trunk.
    dict(name="p12", ofport=12, vlan_mode="", tag=None, trunks=[11, 12]),
    dict(name="p13", ofport=13, vlan_mode="access", tag=10, trunks=[],
         other_config={"priority-tags": "if-nonzero"}),
    dict(name="p14", ofport=14, vlan_mode="native-untagged", tag=10, trunks=[],
         other_config={"priority-tags": "always"}),
    dict(name="p15", ofport=15, vlan_mode="trunk", tag=None, trunks=[0, 10]),
    dict(name="p16", ofport=16, vlan_mode="trunk", tag=None, trunks=[],
         other_config={"priority-tags": "always"}),
]

# (vid, pcp); vid None = untagged.
MAIN_FRAMES = [
    (None, 0),
    (0, 0),
    (0, 1),
    (10, 0),
    (10, 1),
    (11, 0),
    (12, 0),
]

# dot1q-tunnel scenario (needs Open_vSwitch other_config:vlan-limit=0 so the
# userspace parses two tags).  Frames are given as raw packets (hex).
QINQ_PORTS = [
    dict(name="q1", ofport=1, vlan_mode="dot1q-tunnel", tag=10, trunks=[]),
    dict(name="q2", ofport=2, vlan_mode="dot1q-tunnel", tag=10, trunks=[],
         cvlans=[11, 12]),
    dict(name="q3", ofport=3, vlan_mode="dot1q-tunnel", tag=20, trunks=[],
         other_config={"qinq-ethtype": "802.1q"}),
    dict(name="q4", ofport=4, vlan_mode="trunk", tag=None, trunks=[]),
    dict(name="q5", ofport=5, vlan_mode="access", tag=10, trunks=[]),
    dict(name="q6", ofport=6, vlan_mode="native-untagged", tag=10, trunks=[]),
    dict(name="q7", ofport=7, vlan_mode="trunk", tag=None, trunks=[20]),
]

# list of tags outer-first: (tpid, vid, pcp)
QINQ_FRAMES = [
    [],
    [(0x8100, 0, 1)],
    [(0x8100, 11, 0)],
    [(0x8100, 13, 2)],
    [(0x88a8, 10, 0), (0x8100, 11, 3)],
    [(0x8100, 20, 0), (0x8100, 12, 0)],
    [(0x88a8, 10, 0), (0x8100, 13, 0)],
]


# ---------------------------------------------------------------------------
# Daemon management
# ---------------------------------------------------------------------------

class OVS:
    def __init__(self, keep=False):
        self.dir = tempfile.mkdtemp(prefix="xvs-ovs-vlan.")
        self.keep = keep
        self.pids = []
        self.env = dict(os.environ)
        for v in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"):
            self.env[v] = self.dir
        self.db_sock = os.path.join(self.dir, "db.sock")
        self.vsd_ctl = os.path.join(self.dir, "ovs-vswitchd.ctl")
        self.db_ctl = os.path.join(self.dir, "ovsdb-server.ctl")

    def p(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args, check=True):
        r = subprocess.run(list(args), env=self.env, cwd=self.dir,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("command failed (%d): %s\n%s%s" % (
                r.returncode, " ".join(args), r.stdout, r.stderr))
        return r.stdout

    def _readpid(self, f):
        for _ in range(100):
            try:
                with open(f) as fh:
                    return int(fh.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("no pidfile " + f)

    def start(self, dp_other_config=None):
        db = self.p("conf.db")
        self.run("ovsdb-tool", "create", db, SCHEMA)
        self.run("ovsdb-server", db, "--remote=punix:" + self.db_sock,
                 "--pidfile=" + self.p("ovsdb-server.pid"),
                 "--log-file=" + self.p("ovsdb-server.log"),
                 "--unixctl=" + self.db_ctl, "--detach", "--no-chdir")
        self.pids.append((self._readpid(self.p("ovsdb-server.pid")), self.db_ctl))
        self.vsctl("--no-wait", "init")
        if dp_other_config:
            for k, v in dp_other_config.items():
                self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                           "other_config:%s=%s" % (k, v))
        self.run("ovs-vswitchd", "unix:" + self.db_sock,
                 "--enable-dummy=override", "--disable-system",
                 "--pidfile=" + self.p("ovs-vswitchd.pid"),
                 "--log-file=" + self.p("ovs-vswitchd.log"),
                 "--unixctl=" + self.vsd_ctl, "--detach", "--no-chdir")
        self.pids.insert(0, (self._readpid(self.p("ovs-vswitchd.pid")), self.vsd_ctl))

    def vsctl(self, *args):
        return self.run("ovs-vsctl", "--db=unix:" + self.db_sock,
                        "--timeout=30", *args)

    def appctl(self, *args, check=True):
        return self.run("ovs-appctl", "-t", self.vsd_ctl, *args, check=check)

    def stop(self):
        for pid, ctl in self.pids:
            try:
                subprocess.run(["ovs-appctl", "-t", ctl, "exit"], env=self.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=10)
            except Exception:
                pass
            for _ in range(50):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.pids = []
        if self.keep:
            print("kept temp dir", self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie child would still answer; our daemons are detached, so fine.
    return True


# ---------------------------------------------------------------------------
# Bridge configuration
# ---------------------------------------------------------------------------

def add_bridge(ovs, br, ports):
    cmd = ["add-br", br, "--", "set", "bridge", br, "datapath_type=dummy",
           "--", "set", "interface", br, "options:tx_pcap=" + ovs.p(br + ".pcap")]
    for pt in ports:
        cmd += ["--", "add-port", br, pt["name"],
                "--", "set", "interface", pt["name"], "type=dummy",
                "ofport_request=%d" % pt["ofport"],
                "options:tx_pcap=" + ovs.p(pt["name"] + ".pcap")]
        sets = []
        if pt.get("vlan_mode"):
            sets.append("vlan_mode=" + pt["vlan_mode"])
        if pt.get("tag") is not None:
            sets.append("tag=%d" % pt["tag"])
        if pt.get("trunks"):
            sets.append("trunks=" + ",".join(str(t) for t in pt["trunks"]))
        if pt.get("cvlans"):
            sets.append("cvlans=" + ",".join(str(t) for t in pt["cvlans"]))
        for k, v in sorted(pt.get("other_config", {}).items()):
            sets.append("other_config:%s=%s" % (k, v))
        if sets:
            cmd += ["--", "set", "port", pt["name"]] + sets
    ovs.vsctl(*cmd)
    # Wait until vswitchd has every port with its requested ofport.
    for _ in range(100):
        got = dpif_ports(ovs, br)
        if all(pt["name"] in got for pt in ports):
            break
        time.sleep(0.1)
    got = dpif_ports(ovs, br)
    for pt in ports:
        if got.get(pt["name"], (None,))[0] != pt["ofport"]:
            raise RuntimeError("port %s not at ofport %d: %r" % (pt["name"], pt["ofport"], got))
    return got


def dpif_ports(ovs, br):
    """name -> (ofport, dp_port) from `dpif/show` for bridge br."""
    out = ovs.appctl("dpif/show")
    res = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"^  (\S+):$", line)
        if m:
            cur = m.group(1)
            continue
        m = re.match(r"^    (\S+) (\d+)/(\d+):", line)
        if m and cur == br:
            res[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return res


# ---------------------------------------------------------------------------
# Trace parsing
# ---------------------------------------------------------------------------

def split_top(s):
    """Split on commas not inside parentheses."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return [x.strip() for x in out]


def kv(s):
    d = {}
    for part in s.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            d[k.strip()] = v.strip()
    return d


def interpret_actions(actions, in_tags, dp2name):
    """Apply datapath actions to a tag stack; return list of (port, tags)."""
    tags = list(in_tags)  # outer-first list of (tpid, vid, pcp)
    outs = []
    if actions.strip() == "drop":
        return outs
    for a in split_top(actions):
        if re.fullmatch(r"\d+", a):
            outs.append((dp2name[int(a)], list(tags)))
        elif a == "pop_vlan":
            if not tags:
                raise RuntimeError("pop_vlan on untagged frame: " + actions)
            tags.pop(0)
        elif a.startswith("push_vlan(") and a.endswith(")"):
            d = kv(a[len("push_vlan("):-1])
            tpid = int(d.get("tpid", "0x8100"), 16)
            if "tci" in d:
                tci = int(d["tci"], 16)
                vid, pcp = tci & 0xfff, tci >> 13
            else:
                vid, pcp = int(d["vid"]), int(d.get("pcp", "0"))
            tags.insert(0, (tpid, vid, pcp))
        else:
            raise RuntimeError("unhandled datapath action %r in %r" % (a, actions))
    return outs


def trace_reasons(text):
    """Lines emitted by NORMAL (->, >>, >>>>) without their markers."""
    rs = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(">>") or s.startswith("->"):
            rs.append(s.strip("<> -").strip())
    return rs


def read_pcap(path):
    """Return list of raw frames (bytes) from a classic little/big-endian pcap."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    if len(data) < 24:
        return []
    magic = data[:4]
    end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off, frames = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def frame_tags(f):
    """(src_mac, [(tpid, vid, pcp), ...]) of a raw Ethernet frame."""
    src = ":".join("%02x" % b for b in f[6:12])
    tags, off = [], 12
    while f[off:off + 2] in (b"\x81\x00", b"\x88\xa8"):
        tpid = int.from_bytes(f[off:off + 2], "big")
        tci = int.from_bytes(f[off + 2:off + 4], "big")
        tags.append((tpid, tci & 0xfff, tci >> 13))
        off += 4
    return src, tags


def verify_pcap(ovs, br, names, expected):
    """Inject every case as a real packet with netdev-dummy/receive, then
    compare what each port's tx_pcap captured with the trace-derived
    expectation.  expected: list of (in_port, src_mac, in_tags, {port: tags}).
    Returns list of mismatch strings."""
    for in_port, src, in_tags, _ in expected:
        ovs.appctl("fdb/flush", br)
        ovs.appctl("netdev-dummy/receive", in_port, frame_hex(src, in_tags))
    seen = {}
    for _ in range(50):
        time.sleep(0.2)
        seen = {}
        for n in names:
            for f in read_pcap(ovs.p(n + ".pcap")):
                s, tags = frame_tags(f)
                seen.setdefault(s, {}).setdefault(n, []).append(tags)
        total = sum(len(v) for d in seen.values() for v in d.values())
        want = sum(len(e[3]) for e in expected)
        if total >= want:
            break
    bad = []
    nframes = sum(len(v) for d in seen.values() for v in d.values())
    print("%s: replayed %d packets, captured %d output frames" % (
        br, len(expected), nframes), file=sys.stderr)
    for in_port, src, in_tags, outs in expected:
        got = seen.get(src, {})
        exp = {p: [t] for p, t in outs.items()}
        if got != exp:
            bad.append("%s %s %r: trace says %r, pcap saw %r" % (br, in_port, in_tags, exp, got))
    return bad


def frame_hex(src_mac, tags):
    eth = "ffffffffffff" + src_mac.replace(":", "")
    for tpid, vid, pcp in tags:
        eth += "%04x%04x" % (tpid, (pcp << 13) | vid)
    eth += "0800"
    # Minimal IPv4 header (20 bytes, proto 253 experimental) + padding.
    ip = "450000140000000040fd0000c0000201c0000202"
    pkt = eth + ip
    pkt += "00" * max(0, 60 - len(pkt) // 2)
    return pkt


def trace(ovs, br, in_port, flow_or_packet, packet=None):
    args = ["ofproto/trace", br, flow_or_packet]
    if packet:
        args.append(packet)
    return ovs.appctl(*args)


def parse_trace(text):
    m = re.search(r"^Datapath actions: (.*)$", text, re.M)
    if not m:
        raise RuntimeError("no Datapath actions in trace:\n" + text)
    return m.group(1).strip()


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------

def port_record(pt, ports_map):
    return {
        "name": pt["name"],
        "ofport": pt["ofport"],
        "dp_port": ports_map[pt["name"]][1],
        "vlan_mode": pt.get("vlan_mode", ""),
        "tag": pt.get("tag"),
        "trunks": sorted(pt.get("trunks", [])),
        "cvlans": sorted(pt.get("cvlans", [])),
        "other_config": dict(sorted(pt.get("other_config", {}).items())),
        "local": False,
    }


def local_port_record(br, ports_map):
    return {"name": br, "ofport": 65534, "dp_port": ports_map[br][1],
            "vlan_mode": "", "tag": None, "trunks": [], "cvlans": [],
            "other_config": {}, "local": True}


def mac_for(i):
    return "00:00:5e:%02x:%02x:%02x" % ((i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)


def run_main(ovs):
    br = "br0"
    pm = add_bridge(ovs, br, MAIN_PORTS)
    dp2name = {v[1]: k for k, v in pm.items()}
    inputs = [p["name"] for p in MAIN_PORTS] + [br]
    ofport = {k: v[0] for k, v in pm.items()}
    cases = []
    expected = []
    n = 0
    for name in inputs:
        for vid, pcp in MAIN_FRAMES:
            n += 1
            ovs.appctl("fdb/flush", br)
            flow = "in_port=%d,dl_src=%s,dl_dst=%s" % (ofport[name], mac_for(n), BCAST)
            in_tags = []
            if vid is not None:
                flow += ",dl_vlan=%d,dl_vlan_pcp=%d" % (vid, pcp)
                in_tags = [(0x8100, vid, pcp)]
            text = trace(ovs, br, name, flow)
            acts = parse_trace(text)
            outs = interpret_actions(acts, in_tags, dp2name)
            olist = []
            for port, tags in outs:
                if len(tags) > 1 or (tags and tags[0][0] != 0x8100):
                    raise RuntimeError("unexpected multi/non-8100 tag in main run: %r" % acts)
                olist.append({"port": port,
                              "vid": tags[0][1] if tags else None,
                              "pcp": tags[0][2] if tags else 0})
            olist.sort(key=lambda o: (sortkey(o["port"]), o["vid"] is not None, o["vid"] or 0, o["pcp"]))
            reasons = trace_reasons(text)
            cases.append({
                "in_port": name,
                "in_vid": vid,
                "in_pcp": pcp,
                "trace_flow": flow,
                "outputs": olist,
                "drop_reason": "" if olist else "; ".join(reasons),
            })
            RAW.append("### %s %s\n%s\n" % (br, flow, text))
            expected.append((name, mac_for(n), in_tags, dict(outs)))
    mism = verify_pcap(ovs, br, inputs, expected) if VERIFY else []
    ports = [port_record(p, pm) for p in MAIN_PORTS] + [local_port_record(br, pm)]
    return {"bridge": br, "ports": ports, "cases": cases}, mism


def run_qinq(ovs):
    br = "br1"
    pm = add_bridge(ovs, br, QINQ_PORTS)
    dp2name = {v[1]: k for k, v in pm.items()}
    inputs = [p["name"] for p in QINQ_PORTS] + [br]
    ofport = {k: v[0] for k, v in pm.items()}
    cases = []
    expected = []
    n = 0x10000
    for name in inputs:
        for tags in QINQ_FRAMES:
            n += 1
            ovs.appctl("fdb/flush", br)
            pkt = frame_hex(mac_for(n), tags)
            flow = "in_port=%d" % ofport[name]
            text = trace(ovs, br, name, flow, pkt)
            acts = parse_trace(text)
            outs = interpret_actions(acts, tags, dp2name)
            olist = [{"port": port, "tags": [tagrec(t) for t in t_]} for port, t_ in outs]
            olist.sort(key=lambda o: (sortkey(o["port"]), json.dumps(o["tags"])))
            reasons = trace_reasons(text)
            cases.append({
                "in_port": name,
                "in_tags": [tagrec(t) for t in tags],
                "packet": pkt,
                "outputs": olist,
                "drop_reason": "" if olist else "; ".join(reasons),
            })
            RAW.append("### %s %s %s\n%s\n" % (br, flow, pkt, text))
            expected.append((name, mac_for(n), tags, dict(outs)))
    ports = [port_record(p, pm) for p in QINQ_PORTS] + [local_port_record(br, pm)]
    mism = verify_pcap(ovs, br, inputs, expected) if VERIFY else []
    return {"bridge": br, "open_vswitch_other_config": {"vlan-limit": "0"},
            "ports": ports, "cases": cases}, mism


def tagrec(t):
    return {"tpid": "0x%04x" % t[0], "vid": t[1], "pcp": t[2]}


def sortkey(name):
    m = re.match(r"^([a-z]+)(\d+)$", name)
    if m:
        return (0, m.group(1), int(m.group(2)))
    return (1, name, 0)


def dump_stable(obj, indent=0):
    """Deterministic JSON: sorted keys; every list of objects (ports, cases)
    gets one element per line so diffs between OVS versions stay readable."""
    pad = " " * indent
    if isinstance(obj, dict) and any(isinstance(v, (dict, list)) and v and
                                     (isinstance(v, dict) or isinstance(v[0], dict))
                                     and k in ("ports", "cases", "qinq")
                                     for k, v in obj.items()):
        items = []
        for k in sorted(obj):
            items.append("%s %s: %s" % (pad, json.dumps(k), dump_stable(obj[k], indent + 1)))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" + ("\n" if indent == 0 else "")
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return "[\n" + ",\n".join(pad + "  " + json.dumps(x, sort_keys=True) for x in obj) + "\n" + pad + " ]"
    return json.dumps(obj, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--output", default=os.path.join(
        here, "..", "..", "datapath", "testdata", "ovs-vlan-truth.json"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (db, logs) for debugging")
    ap.add_argument("--raw", metavar="FILE",
                    help="also write every full ofproto/trace output to FILE")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip replaying every case as a real packet "
                         "(netdev-dummy/receive + tx_pcap) to cross-check the traces")
    args = ap.parse_args()
    global VERIFY
    VERIFY = not args.no_verify

    version = subprocess.run(["ovs-vswitchd", "--version"], stdout=subprocess.PIPE,
                             text=True).stdout.splitlines()[0].strip()
    result = {
        "generator": "bench/scripts/capture-ovs-vlan.py",
        "ovs_version": version,
        "notes": "vid null = untagged; outputs sorted by port; 'br0'/'br1' is the "
                 "bridge-local (internal) port, a trunk for all VLANs. "
                 "See datapath/testdata/README-vlan.md.",
    }

    def handler(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, handler)

    # Run 1: main single-tag truth table (default vlan-limit=1).
    ovs = OVS(keep=args.keep)
    try:
        ovs.start()
        main_res, mism1 = run_main(ovs)
    finally:
        ovs.stop()
    # Run 2: dot1q-tunnel / QinQ with vlan-limit=0 (unlimited; userspace max 2).
    ovs = OVS(keep=args.keep)
    try:
        ovs.start(dp_other_config={"vlan-limit": "0"})
        qinq_res, mism2 = run_qinq(ovs)
    finally:
        ovs.stop()

    mism = mism1 + mism2
    if mism:
        print("pcap verification FAILED (%d cases):" % len(mism), file=sys.stderr)
        for m in mism:
            print("  " + m, file=sys.stderr)
        sys.exit(1)
    result["verified_with_pcap"] = VERIFY
    result["bridge"] = main_res["bridge"]
    result["ports"] = main_res["ports"]
    result["cases"] = main_res["cases"]
    result["qinq"] = qinq_res
    out = os.path.normpath(args.output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as fh:
        fh.write(dump_stable(result))
    os.replace(out + ".tmp", out)
    if args.raw:
        with open(args.raw, "w") as fh:
            fh.write("\n".join(RAW))
    print("wrote %s: %d main cases, %d qinq cases" % (
        out, len(main_res["cases"]), len(qinq_res["cases"])))


if __name__ == "__main__":
    main()
