#!/usr/bin/env python3
"""Benchmark of the BGP announcer: how long from the VIP appearing on the node's NIC to the
route being in the peer router's kernel FIB, and from the VIP going to the route being gone.

It builds (unless --no-build) and runs the release binary target/release/keepserver in a node
network namespace, with FRR's zebra and bgpd there (driven by keepserver) and in a router
namespace (the eBGP peer, whose zebra installs what it learns), joined by a veth pair. The VIP is
toggled TOGGLES times; the route is watched with `ip monitor route` in the router namespace, so
each time is the event's arrival, not a poll. FRR runs with its defaults except where operators
tune them: advertisement-interval 0 (keepserver renders it; the router sets it too) and a 1 s
connect retry on the router. Prints min, p50, mean and max for both directions.

Everything it creates (namespaces, processes, /var/run/frr/<pathspace>, the workspace) is removed
on exit, also on failure or Ctrl-C. Needs root, iproute2 and FRR (Debian: frr). No traffic leaves
the two namespaces.

Usage (as root, or with sudo): scripts/bench-bgp.py [--toggles 20] [--settle 1.0] [--no-build]
"""

import argparse
import atexit
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import REPO, nearest_rank  # noqa: E402

BINARY = os.path.join(REPO, "target", "release", "keepserver")
FRR = "/usr/lib/frr"
VTYSH = "/usr/bin/vtysh"
VIP = "192.0.2.10"
VIP_CIDR = VIP + "/24"
PREFIX = VIP + "/32"
NODE_ADDR, ROUTER_ADDR = "198.51.100.1", "198.51.100.2"
NODE_AS, ROUTER_AS = 65001, 65000
TAG = "kbb%d" % os.getpid()
NODE_NS, ROUTER_NS = TAG + "n", TAG + "r"


class Lab:
    """The namespaces, FRR instances, keepserver and workspace; cleanup() undoes all of it."""

    def __init__(self):
        self.namespaces = []
        self.pathspaces = []
        self.procs = []
        self.workspace = tempfile.mkdtemp(prefix="keepserver-bench-bgp-")

    def sh(self, *args, check=True):
        out = subprocess.run(args, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(args), out.returncode,
                                                         out.stdout, out.stderr))
        return out

    def netns(self, name):
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.sh("ip", "-n", name, "link", "set", "lo", "up")

    def spawn(self, ns, args, log):
        out = open(os.path.join(self.workspace, log), "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def frr(self, ns, pathspace, bgpd_conf):
        """Starts zebra and bgpd in `ns`, in their own pathspace, without a TCP vty."""
        run = "/var/run/frr/" + pathspace
        os.makedirs(run, exist_ok=True)
        self.pathspaces.append(run)
        for name, text in (("zebra.conf", ""), ("bgpd.conf", bgpd_conf)):
            with open(os.path.join(run, name), "w") as f:
                f.write(text)
        self.sh("chown", "-R", "frr:frr", run)
        for daemon in ("zebra", "bgpd"):
            self.spawn(ns, [os.path.join(FRR, daemon), "-N", pathspace, "-P", "0",
                            "-f", os.path.join(run, daemon + ".conf"),
                            "-i", os.path.join(run, daemon + ".pid")],
                       "%s-%s.out" % (pathspace, daemon))
            wait_for(lambda: os.path.exists(os.path.join(run, daemon + ".vty")), 20,
                     "%s %s to open its vty socket" % (pathspace, daemon))

    def vtysh(self, ns, pathspace, command):
        return self.sh("ip", "netns", "exec", ns, VTYSH, "-N", pathspace, "-c", command,
                       check=False).stdout

    def cleanup(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
        self.procs = []
        for ns in self.namespaces:
            pids = self.sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.sh("ip", "netns", "del", ns, check=False)
        self.namespaces = []
        for run in self.pathspaces:
            shutil.rmtree(run, ignore_errors=True)
        self.pathspaces = []
        shutil.rmtree(self.workspace, ignore_errors=True)


def wait_for(cond, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise RuntimeError("timed out after %ss waiting for %s" % (seconds, what))


class RouteWatch:
    """`ip monitor route` in the router namespace; the arrival time of each add or delete of
    the announced prefix, on a queue."""

    def __init__(self, lab):
        self.events = queue.Queue()
        self.proc = subprocess.Popen(["ip", "-n", ROUTER_NS, "monitor", "route"],
                                     stdout=subprocess.PIPE, text=True, bufsize=1,
                                     start_new_session=True)
        lab.procs.append(self.proc)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            now = time.monotonic()
            words = line.split()
            if VIP in words or PREFIX in words:
                self.events.put(("gone" if line.startswith("Deleted") else "present", now))

    def next(self, kind, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise RuntimeError("the route did not become %s within %ss" % (kind, timeout))
            try:
                got, at = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got == kind:
                return at

    def drain(self):
        while not self.events.empty():
            self.events.get_nowait()


def config(lab, node_ps):
    run = "/var/run/frr/" + node_ps
    return """application:
  workspace: {ws}
  pidfile: server.pid
keepstart:
  nic: ksv0
  vip: {vip}
  start: 'true'
  stop: 'true'
  sleep: 2
bgp:
  enabled: true
  local-as: {node_as}
  router-id: {node}
  neighbors:
    - {{address: {router}, remote-as: {router_as}}}
  hostname: bench-node
  vtysh: {vtysh}
  pathspace: {ps}
  log-file: {run}/bgpd.log
""".format(ws=lab.workspace, vip=VIP, node_as=NODE_AS, node=NODE_ADDR, router=ROUTER_ADDR,
           router_as=ROUTER_AS, vtysh=VTYSH, ps=node_ps, run=run)


def setup(lab):
    lab.netns(NODE_NS)
    lab.netns(ROUTER_NS)
    lab.sh("ip", "-n", NODE_NS, "link", "add", "ksv0", "type", "veth", "peer", "name", "ksv0p")
    for dev in ("ksv0", "ksv0p"):
        lab.sh("ip", "-n", NODE_NS, "link", "set", dev, "up")
    lab.sh("ip", "link", "add", "bgp0", "netns", NODE_NS, "type", "veth", "peer", "name", "bgp1",
           "netns", ROUTER_NS)
    lab.sh("ip", "-n", NODE_NS, "addr", "add", NODE_ADDR + "/24", "dev", "bgp0")
    lab.sh("ip", "-n", ROUTER_NS, "addr", "add", ROUTER_ADDR + "/24", "dev", "bgp1")
    lab.sh("ip", "-n", NODE_NS, "link", "set", "bgp0", "up")
    lab.sh("ip", "-n", ROUTER_NS, "link", "set", "bgp1", "up")
    router_ps, node_ps = TAG + "r", TAG + "n"
    lab.frr(ROUTER_NS, router_ps, """hostname router
router bgp {ras}
 bgp router-id {router}
 no bgp ebgp-requires-policy
 neighbor {node} remote-as {nas}
 neighbor {node} timers connect 1
 neighbor {node} advertisement-interval 0
""".format(ras=ROUTER_AS, router=ROUTER_ADDR, node=NODE_ADDR, nas=NODE_AS))
    lab.frr(NODE_NS, node_ps, "")
    path = os.path.join(lab.workspace, "config.yaml")
    with open(path, "w") as f:
        f.write(config(lab, node_ps))
    lab.spawn(NODE_NS, [BINARY, "-c", path, "start"], "keepserver.log")

    def established():
        out = lab.vtysh(ROUTER_NS, router_ps, "show bgp neighbors %s json" % NODE_ADDR)
        try:
            return json.loads(out)[NODE_ADDR]["bgpState"] == "Established"
        except (ValueError, KeyError):
            return False

    wait_for(established, 60, "the BGP session")


def report(name, values):
    ms = sorted(v * 1000 for v in values)
    print("%-28s n=%d  min %6.0f ms  p50 %6.0f ms  mean %6.0f ms  max %6.0f ms" % (
        name, len(ms), min(ms), nearest_rank(ms, 50), statistics.mean(ms), max(ms)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toggles", type=int, default=20)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after each change has reached the router")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-bgp: needs root (network namespaces)")
    for tool in (os.path.join(FRR, "bgpd"), os.path.join(FRR, "zebra"), VTYSH):
        if not os.path.exists(tool):
            sys.exit("bench-bgp: %s is missing; install FRR (apt-get install frr)" % tool)
    if not args.no_build:
        subprocess.run(["nice", "-n", "19", "cargo", "build", "--release", "--quiet"],
                       cwd=REPO, check=True)
    lab = Lab()
    atexit.register(lab.cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    setup(lab)
    watch = RouteWatch(lab)
    time.sleep(0.5)  # let `ip monitor` subscribe before the first change
    announce, withdraw = [], []
    for i in range(args.toggles):
        watch.drain()
        began = time.monotonic()
        lab.sh("ip", "-n", NODE_NS, "addr", "add", VIP_CIDR, "dev", "ksv0")
        announce.append(watch.next("present", 10) - began)
        time.sleep(args.settle)
        watch.drain()
        began = time.monotonic()
        lab.sh("ip", "-n", NODE_NS, "addr", "del", VIP_CIDR, "dev", "ksv0")
        withdraw.append(watch.next("gone", 10) - began)
        time.sleep(args.settle)
        print("toggle %2d: announce %4.0f ms, withdraw %4.0f ms" % (
            i + 1, announce[-1] * 1000, withdraw[-1] * 1000), flush=True)
    print()
    print("BGP announcer, %d toggles, FRR %s, %d cores, %s" % (
        args.toggles, frr_version(), os.cpu_count(), time.strftime("%Y-%m-%d %H:%M UTC",
                                                                     time.gmtime())))
    report("VIP added -> route at peer", announce)
    report("VIP removed -> route gone", withdraw)


def frr_version():
    out = subprocess.run([os.path.join(FRR, "bgpd"), "--version"], capture_output=True,
                         text=True).stdout
    words = out.split()
    return words[words.index("version") + 1] if "version" in words else "?"


if __name__ == "__main__":
    main()
