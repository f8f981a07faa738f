#!/usr/bin/env python3
"""Benchmark: keepserver's start hook versus keepalived's own notify_master script, per failover.

Two nodes in network namespaces joined through a bridge namespace (veth pairs, 192.0.2.0/24),
each running the real keepalived (VRRP v3, unicast peers, advert_int 0.1, notify_fifo and notify
wired to keepserver as in scripts/keepalived.conf.example) and the release keepserver. Node a
(priority 150) and node b (100) take turns: stopping a's keepalived moves the VIP to b (failover),
starting it again moves the VIP back (preemptive failback). For every move it measures, from the
VIP appearing on the new MASTER:

  - keepserver: to the first line of its start hook;
  - keepalived: to the first line of keepalived's own notify_master script.

"VIP appeared" is the timestamp `ip -ts monitor address` (inside the node's namespace) prints when
it receives the kernel's RTM_NEWADDR. The hook and the notify_master script are the same
two-line /bin/sh script, writing one line into a FIFO this script reads, timestamped on arrival
with the same wall clock: the same path for both, so the two figures compare fairly (both include
the FIFO hop; neither forks `date`). The measuring side (this script and `ip monitor`) runs
SCHED_FIFO, so it wakes the moment the kernel has an event for it and its own delay is not in the
figures; everything it starts (keepalived, keepserver, hence the hooks) runs under the normal
scheduler at the niceness the script was started with.

By default both nodes share the machine's cores, so on a failback (where both nodes change at
once) the two nodes' processes compete for them. `--pin` puts each node (its keepalived, its
keepserver and everything they start) on a core of its own, as two one-core machines.

Usage (root; builds target/release/keepserver unless --no-build):
    scripts/bench-keepalived.py [--failovers 20] [--pin] [--no-build]

Everything it creates (namespaces, processes, temporary files) is removed when it ends, also on
error or Ctrl-C. Nothing leaves the namespaces it creates.
"""

import argparse
import datetime
import os
import platform
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (REPO, delete_netns, nearest_rank, proc_rss_kib,  # noqa: E402
                      set_log_prefix, tool_version)

BIN = os.path.join(REPO, "target", "release", "keepserver")
VIP = "192.0.2.100"
NIC = "ksv0"
DEADLINE = 10.0
PROBE_RT_PRIORITY = 50


def sh(*args, check=True):
    """Runs a command, returns its stdout; raises with its stderr when it fails."""
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Lab:
    """The namespaces, the processes started in them and the work directory; cleaned up once."""

    def __init__(self, pin):
        tag = f"kb{os.getpid()}"
        # With --pin: node a on the first core, node b on the second.
        self.cores = {}
        if pin:
            cores = sorted(os.sched_getaffinity(0))
            if len(cores) < 2:
                raise RuntimeError("--pin needs two cores")
            self.cores = {f"{tag}a": {cores[0]}, f"{tag}b": {cores[1]}}
        self.bridge = f"{tag}br"
        self.nodes = {"a": f"{tag}a", "b": f"{tag}b"}
        self.namespaces = []
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="keepserver-bench-ka-")
        self.events = os.path.join(self.dir, "events.fifo")
        os.mkfifo(self.events, 0o600)
        # Read-write: writers come and go (one per hook run) without an end-of-file here.
        self.events_fd = os.open(self.events, os.O_RDWR | os.O_NONBLOCK)
        self.keepalived = {}
        self.monitors = {}
        # The measuring side (this script and the `ip monitor` probes) runs SCHED_FIFO: under the
        # normal scheduler a probe woken while both cores are busy with a failback's processes
        # was seen to stamp an event up to 10 ms late, and a late "VIP appeared" even made one
        # hook look 3.6 ms early. RESET_ON_FORK: what this script starts runs under the normal
        # scheduler, at the niceness the script was started with.
        self.daemon_nice = os.getpriority(os.PRIO_PROCESS, 0)
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(PROBE_RT_PRIORITY))

    def netns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def spawn(self, ns, args, log, nice=None, **kw):
        """Starts `args` in namespace `ns`; `nice` sets its niceness (default: this script's). A
        daemon (one with `nice`) runs on its node's core when the nodes are pinned."""
        out = open(log, "ab")
        cores = self.cores.get(ns) if nice is not None else None

        def placed():
            if nice is not None:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            if cores:
                os.sched_setaffinity(0, cores)

        p = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdin=subprocess.DEVNULL,
                             stdout=kw.pop("stdout", out), stderr=out, start_new_session=True,
                             preexec_fn=placed, **kw)
        self.procs.append(p)
        return p

    def build(self):
        self.netns(self.bridge)
        sh("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge, "link", "set", "br0", "up")
        addrs = {"a": ("192.0.2.1", "192.0.2.2", 150), "b": ("192.0.2.2", "192.0.2.1", 100)}
        for node, ns in self.nodes.items():
            me, peer, prio = addrs[node]
            self.netns(ns)
            leg = f"leg{node}"
            sh("ip", "-n", ns, "link", "add", NIC, "type", "veth", "peer", "name", leg,
               "netns", self.bridge)
            sh("ip", "-n", self.bridge, "link", "set", leg, "master", "br0")
            sh("ip", "-n", self.bridge, "link", "set", leg, "up")
            sh("ip", "-n", ns, "link", "set", NIC, "up")
            sh("ip", "-n", ns, "addr", "add", f"{me}/24", "dev", NIC)
            self.write_node(node, me, peer, prio)

    def ws(self, node, name=""):
        return os.path.join(self.dir, node, name)

    def write_node(self, node, me, peer, prio):
        # No enable_script_security, unlike scripts/keepalived.conf.example: it would refuse the
        # keepserver binary in a checkout writable by a non-root user.
        os.makedirs(self.ws(node))
        hook = self.ws(node, "hook.sh")
        with open(hook, "w") as f:
            f.write(f"#!/bin/sh\necho \"$1 {node}\" > {self.events}\n")
        os.chmod(hook, 0o755)
        with open(self.ws(node, "config.yaml"), "w") as f:
            f.write(f"""application:
  daemon: false
  workspace: {self.ws(node)}
keepstart:
  nic: {NIC}
  vip: {VIP}/24
  start: {hook} start
  stop: {hook} stop
  sleep: 2
  keepalived-fifo: keepalived.fifo
""")
        with open(self.ws(node, "keepalived.conf"), "w") as f:
            f.write(f"""global_defs {{
    router_id bench_{node}
    vrrp_version 3
    notify_fifo {self.ws(node, "keepalived.fifo")}
    script_user root
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {NIC}
    virtual_router_id 51
    priority {prio}
    advert_int 0.1
    unicast_src_ip {me}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
    notify "{BIN} -c {self.ws(node, "config.yaml")} notify"
    notify_master "{hook} notify_master"
}}
""")

    def start_keepserver(self, node):
        self.spawn(self.nodes[node], [BIN, "-c", self.ws(node, "config.yaml"), "start"],
                   self.ws(node, "keepserver.log"), nice=self.daemon_nice)

    def start_keepalived(self, node):
        pids = [self.ws(node, f) for f in ("ka.pid", "vrrp.pid", "chk.pid", "bfd.pid")]
        for p in pids:
            if os.path.exists(p):
                os.unlink(p)
        self.keepalived[node] = self.spawn(
            self.nodes[node],
            ["keepalived", "-n", "-l", "-f", self.ws(node, "keepalived.conf"), "-p", pids[0],
             "-r", pids[1], "-c", pids[2], "-b", pids[3]],
            self.ws(node, "keepalived.log"), nice=self.daemon_nice)

    def stop_keepalived(self, node):
        """SIGTERM without waiting: keepalived takes a while to exit, and the events must be
        read (and timestamped) as they come. Returns the process, to reap once they are in."""
        p = self.keepalived.pop(node)
        p.send_signal(signal.SIGTERM)
        return p

    def start_monitor(self, node):
        self.monitors[node] = self.spawn(
            self.nodes[node],
            ["chrt", "--fifo", str(PROBE_RT_PRIORITY), "ip", "-ts", "monitor", "address"],
            self.ws(node, "monitor.err"), stdout=subprocess.PIPE)

    def cleanup(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait()
        for ns in self.namespaces:
            pids = sh("ip", "netns", "pids", ns, check=False).split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            delete_netns(ns)
        os.close(self.events_fd)
        shutil.rmtree(self.dir, ignore_errors=True)


class Clock:
    """Collects (time, node, what) from the monitors and the events FIFO."""

    def __init__(self, lab):
        self.lab = lab
        self.sel = selectors.DefaultSelector()
        self.sel.register(lab.events_fd, selectors.EVENT_READ, ("fifo", None))
        for node, p in lab.monitors.items():
            os.set_blocking(p.stdout.fileno(), False)
            self.sel.register(p.stdout.fileno(), selectors.EVENT_READ, ("monitor", node))
        self.partial = {}
        self.seen = []

    def pump(self, timeout):
        for key, _ in self.sel.select(timeout):
            arrived = time.time()
            kind, node = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            text = self.partial.pop(key.fd, b"") + data
            *lines, rest = text.split(b"\n")
            self.partial[key.fd] = rest
            for line in lines:
                self.line(kind, node, line.decode(errors="replace"), arrived)

    def line(self, kind, node, line, arrived):
        if kind == "fifo":
            words = line.split()
            if len(words) == 2:
                self.seen.append((arrived, words[1], words[0]))
            return
        if not line.startswith("[") or f" {VIP}/" not in line:
            return
        stamp, rest = line[1:].split("]", 1)
        at = datetime.datetime.fromisoformat(stamp).timestamp()
        what = "vip_gone" if rest.strip().startswith("Deleted") else "vip"
        self.seen.append((at, node, what))

    def wait(self, want, deadline=DEADLINE):
        """Waits until every (node, what) in `want` has been seen; returns their first times."""
        end = time.time() + deadline
        while True:
            found = {}
            for at, node, what in self.seen:
                if (node, what) in want and (node, what) not in found:
                    found[(node, what)] = at
            if len(found) == len(want):
                return found
            if time.time() > end:
                missing = [w for w in want if w not in found]
                raise RuntimeError(f"timed out waiting for {missing}; seen {self.seen[-10:]}")
            self.pump(0.05)

    def reset(self):
        self.pump(0)
        self.seen.clear()


def summary(name, values):
    p99 = nearest_rank(sorted(values), 99)
    return (f"    {name:<26} p50 {statistics.median(values):6.2f} ms   p99 {p99:6.2f} ms"
            f"   max {max(values):6.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--failovers", type=int, default=20, help="VIP moves to measure (default 20)")
    ap.add_argument("--pin", action="store_true",
                    help="each node on a core of its own (default: both share all cores)")
    ap.add_argument("--no-build", action="store_true", help="use target/release/keepserver as is")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="copy each node's keepserver and keepalived logs to DIR at the end")
    args = ap.parse_args()
    set_log_prefix("bench-keepalived")
    if os.geteuid() != 0:
        sys.exit("bench-keepalived: needs root (network namespaces)")
    if shutil.which("keepalived") is None:
        sys.exit("bench-keepalived: keepalived is not installed (apt-get install keepalived)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)

    lab = Lab(args.pin)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        lab.build()
        for node in ("a", "b"):
            lab.start_monitor(node)
            lab.start_keepserver(node)
        clock = Clock(lab)
        time.sleep(0.5)
        lab.start_keepalived("a")
        clock.wait([("a", "vip"), ("a", "start"), ("a", "notify_master")])
        lab.start_keepalived("b")
        time.sleep(1.0)
        rows = []
        master = "a"
        for i in range(args.failovers):
            clock.reset()
            new = "b" if master == "a" else "a"
            stopped = None
            if master == "a":
                how = "failover (keepalived stop)"
                stopped = lab.stop_keepalived("a")
            else:
                how = "failback (preemption)"
                lab.start_keepalived("a")
            t = clock.wait([(new, "vip"), (new, "start"), (new, "notify_master"),
                            (master, "stop")])
            if stopped is not None:
                stopped.wait(timeout=DEADLINE)
            ks = (t[(new, "start")] - t[(new, "vip")]) * 1000
            ka = (t[(new, "notify_master")] - t[(new, "vip")]) * 1000
            rows.append((how, ks, ka))
            print(f"{i + 1:3} {how:<27} {master}->{new}  keepserver start {ks:7.2f} ms"
                  f"   keepalived notify_master {ka:7.2f} ms", flush=True)
            master = new
            time.sleep(0.5)
        not_slower = sum(1 for r in rows if r[1] <= r[2])
        rss = [proc_rss_kib(p.pid) for p in lab.procs if p.args[4] == BIN and p.poll() is None]
        version = tool_version(["keepalived", "--version"])
        placement = ("each node pinned to a core of its own" if args.pin
                     else "both nodes share the cores")
        print()
        print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
              f"machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
              f"{version}; {placement}")
        print(f"{len(rows)} VIP moves (advert_int 0.1, VRRPv3 unicast), from the VIP appearing on "
              f"the new MASTER:")
        for label, kind in (("all moves", None), ("failovers", "failover"),
                            ("failbacks", "failback")):
            picked = [r for r in rows if kind is None or r[0].startswith(kind)]
            if picked:
                print(f"  {label} ({len(picked)}):")
                print(summary("keepserver start hook", [r[1] for r in picked]))
                print(summary("keepalived notify_master", [r[2] for r in picked]))
        print(f"keepserver no slower than keepalived's notify_master in {not_slower}/{len(rows)} "
              f"moves; keepserver RSS {', '.join(f'{r / 1024:.1f} MiB' for r in rss)}")
    finally:
        if args.keep_logs:
            for node in lab.nodes:
                shutil.copytree(lab.ws(node), os.path.join(args.keep_logs, node),
                                ignore=shutil.ignore_patterns("*.fifo", "*.sock"),
                                dirs_exist_ok=True)
        lab.cleanup()


if __name__ == "__main__":
    main()
