#!/usr/bin/env python3
"""Benchmarks of keepserver's admin API against the real daemon and HAProxy: how long a member
change takes to be served on the runtime path (no reload) and on the reload path, how the time
per change behaves as the configuration grows to 100 pools x 10 members, and failed requests
under ``wrk`` while members change.

What it does (Python 3 standard library; run as root: it creates a network namespace):

1. Builds keepserver with ``cargo build --release`` (unless ``--binary``).
2. Creates a temp dir and a network namespace holding ``lo`` and a veth pair ``ksa0``/``ksa0p``
   (up), the VIP 192.0.2.10/24 (TEST-NET-1) on ``ksa0``. All traffic is on the namespace's
   loopback.
3. Re-runs this script inside the namespace (``--inner``): it starts ``--backends`` HTTP
   backends (a second HAProxy of its own, one frontend per port answering 200 with
   ``http-request return``; HTTP/1.1 keep-alive; the body and an X-Backend header name the
   backend) and keepserver with an ``api`` section (``serve: always``, so
   HAProxy serves whatever the role), and drives the API over HTTP (one keep-alive connection,
   like a client's session), one request at a time.

(a) Latency. Listener 8080 -> pool ``rt`` (ROUND_ROBIN: member changes go through HAProxy's
    runtime API) and listener 8081 -> pool ``rl`` (HTTP_COOKIE persistence: HAProxy refuses
    ``cookie`` on a dynamic server, so adding a member reloads). Each pool keeps one member;
    ``--latency-changes`` times: t0, POST a member on the next backend while a second thread,
    started just before, sends fresh requests (new connection, Connection: close, no cookie)
    to the frontend until the new backend answers: "served" = that answer's time - t0;
    "reply" = the POST's answer time - t0 (keepserver answers once the file is swapped in too,
    which on the runtime path is after HAProxy serves the member). Then
    the previous member is DELETEd (its reply time is reported too), so the pool holds two
    members while probed and round robin reaches the new one on the first or second request.
(b) Scale. ``--pools`` listeners and pools (ROUND_ROBIN) created, then ``--members`` members in
    each, created one by one, pool after pool. Reported: total time, and the POST reply time in
    buckets of ``--bucket`` changes as the configuration grows (mean, p50, p99): it should stay
    roughly flat.
(c) ``wrk -t --wrk-threads -c --wrk-conns`` through listener 8080 during ``--load-changes``
    member changes in pool ``rt`` (add, weight, disable, enable, delete, in turn; at least one
    member always serves), then the same through 8081 on pool ``rl`` (every change a reload);
    a control run without changes first. wrk is stopped with SIGINT 1 s after the last change;
    failed requests = non-2xx/3xx + socket errors.

Which path each change took is counted from keepserver's log (``haproxy configuration applied
action=runtime|reload``), and so are runtime changes that fell back to a reload. The daemon's
RSS is read idle after start and after (b).

Everything created (processes, namespace, temp dir) is removed at the end, also on failure,
Ctrl-C or SIGTERM. The exit status is non-zero only if the benchmark could not run; missing a
target is reported, not asserted.

Usage: scripts/bench-api.py [--binary PATH] [--json] [--only a,b,c] [--latency-changes 40]
           [--pools 100] [--members 10] [--load-changes 50] [--logs DIR] ...
"""

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CannotRun, _r, add_netns, build, copy_logs, fmt,  # noqa: E402
                      git_rev, loadavg, log, machine_info, machine_line, nearest_rank,
                      print_report, proc_rss_kib, run, run_bench, set_log_prefix, start_group,
                      stop_group, stop_inner, tail, tool_version)

NIC = "ksa0"
PEER = "ksa0p"
VIP = "192.0.2.10"
PREFIX_LEN = 24
API_PORT = 9180
RT_PORT = 8080
RL_PORT = 8081
SCALE_PORT0 = 10000
BACKEND_PORT0 = 9001

TARGET_RUNTIME_P50_MS = 5.0
TARGET_RELOAD_P50_MS = 50.0
TARGET_RSS_KIB = 8 * 1024

SCRIPT = os.path.abspath(__file__)


# --------------------------------------------------------------------------------------------
# Outer part: namespace, the inner run, clean-up


def pids_in_ns(ns):
    try:
        st = os.stat(f"/run/netns/{ns}")
    except OSError:
        return []
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            s = os.stat(f"/proc/{name}/ns/net")
            if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino):
                out.append(int(name))
    return out


def sweep(ns):
    """Kills whatever still runs in the namespace (HAProxy daemonizes into it)."""
    pids = pids_in_ns(ns)
    if pids:
        log(f"killing {len(pids)} leftover process(es) in {ns}")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def outer(args):
    return run_bench(lambda cleanup: outer_bench(args, cleanup))


def outer_bench(args, cleanup):
    for tool in ("ip", "haproxy", "wrk"):
        if not shutil.which(tool):
            raise CannotRun(f"{tool} not found in PATH (apt-get install -y haproxy wrk)")
    binary = build(args.binary)
    tmp = tempfile.mkdtemp(prefix="ksbench-api-")
    cleanup.later("remove temp dir", shutil.rmtree, tmp, True)
    ns = f"ksbench-api-{os.getpid()}"
    add_netns(cleanup, ns, NIC, PEER)
    cleanup.later("stop what is left", sweep, ns)
    if args.logs:
        cleanup.later("copy logs", copy_logs, tmp, os.path.abspath(args.logs))
    run(["ip", "-netns", ns, "addr", "add", f"{VIP}/{PREFIX_LEN}", "dev", NIC])
    cfg = dict(vars(args), tmp=tmp, binary=binary)
    cfg_path = os.path.join(tmp, "inner-config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    signal.alarm(args.watchdog)
    inner = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-u", SCRIPT, "--inner", cfg_path],
        stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)
    cleanup.later("stop the inner part", stop_inner, inner)
    rc = inner.wait()
    result_path = os.path.join(tmp, "result.json")
    if rc != 0 or not os.path.exists(result_path):
        raise CannotRun(f"the benchmark inside the namespace exited with status {rc}")
    with open(result_path) as f:
        result = json.load(f)
    result["machine"]["loadavg_end"] = loadavg()
    print_report(render(result), result, args.json)
    return 0


# --------------------------------------------------------------------------------------------
# Backends: a second HAProxy of the benchmark's own, one frontend per port answering its name


def backends_config(port0, count):
    lines = ["global", "    maxconn 4000", "defaults", "    mode http",
             "    timeout client 30s", "    timeout connect 5s", "    timeout server 30s"]
    for i in range(count):
        name = f"b{port0 + i}"
        lines += [f"frontend {name}", f"    bind 127.0.0.1:{port0 + i}",
                  f'    http-request return status 200 content-type text/plain string "{name}" '
                  f'hdr X-Backend "{name}"']
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Inner part


def wait_port(port, secs, alive=lambda: True):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        time.sleep(0.02)
    return False


def probe(port):
    """One GET on a new connection: the backend's name, or an error string."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        return f"ERR:{type(e).__name__}"
    if not buf.startswith(b"HTTP/1.1 200"):
        return "HTTP:" + buf[:12].decode(errors="replace")
    m = re.search(rb"(?i)\r\nx-backend: ([^\r\n]+)", buf)
    return m.group(1).decode() if m else "unnamed"


def probe_until(port, want, seen, secs=10):
    """Probes `port` (from before the POST is sent, while it is answered) until backend `want`
    answers; appends the time it did to `seen`."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if probe(port) == want:
            seen.append(time.monotonic())
            return
        time.sleep(0.0005)


class Api:
    """The admin API over one keep-alive connection."""

    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=60)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            text = r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", API_PORT, timeout=60)
            raise
        if r.status >= 300:
            raise CannotRun(f"{method} {path} -> {r.status}: {text[:300]!r}")
        return r.status

    def timed(self, method, path, body=None):
        t0 = time.monotonic()
        self.call(method, path, body)
        return t0, time.monotonic()


class KsLog:
    """Counts keepserver's HAProxy apply lines since a mark."""

    def __init__(self, path):
        self.path = path
        self.at = 0

    def mark(self):
        self.at = os.path.getsize(self.path)

    def since(self):
        with open(self.path, "rb") as f:
            f.seek(self.at)
            text = f.read().decode(errors="replace")
        applied = re.findall(r"haproxy configuration applied action=(\w+) commands=\d+ "
                             r"ms=(\d+) served_ms=(\d+)", text)
        actions = [a for a, _, _ in applied]
        runtime = [(int(ms), int(served)) for a, ms, served in applied if a == "runtime"]
        return {
            "runtime_apply_ms": stats([ms for ms, _ in runtime]),
            "runtime_served_ms": stats([c for _, c in runtime]),
            "runtime": actions.count("runtime"),
            "reload": actions.count("reload"),
            "written": actions.count("written"),
            "fell_back": text.count("runtime change failed"),
            "fallback_reasons": re.findall(r"runtime change failed, reloading instead: (.*)",
                                           text)[:5],
        }


def stats(ms):
    s = sorted(ms)
    if not s:
        return {"n": 0}
    return {"n": len(s), "mean": _r(sum(s) / len(s)), "p50": _r(nearest_rank(s, 50)),
            "p90": _r(nearest_rank(s, 90)), "p99": _r(nearest_rank(s, 99)), "max": _r(s[-1])}


class Inner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tmp = cfg["tmp"]
        self.procs = []
        self.ks = None
        self.ks_log = os.path.join(self.tmp, "keepserver.log")
        self.log = None
        self.api = None
        self.next_backend = 0

    def backend_port(self):
        port = BACKEND_PORT0 + self.next_backend % self.cfg["backends"]
        self.next_backend += 1
        return port

    def start(self):
        blog = os.path.join(self.tmp, "backends.out")
        bcfg = os.path.join(self.tmp, "backends.cfg")
        with open(bcfg, "w") as f:
            f.write(backends_config(BACKEND_PORT0, self.cfg["backends"]))
        b = start_group(["haproxy", "-db", "-f", bcfg], blog)
        self.procs.append(("backends", b))
        last = BACKEND_PORT0 + self.cfg["backends"] - 1
        if not wait_port(last, 10, lambda: b.poll() is None):
            raise CannotRun("the backends did not start:\n" + tail(blog))
        ws = os.path.join(self.tmp, "ks")
        os.makedirs(ws, exist_ok=True)
        q = json.dumps
        config = "\n".join([
            "application:",
            "  daemon: false",
            f"  workspace: {q(ws)}",
            "keepstart:",
            f"  nic: {NIC}",
            f"  vip: {VIP}",
            '  start: "true"',
            '  stop: "true"',
            "  sleep: 2",
            "api:",
            f"  listen: 127.0.0.1:{API_PORT}",
            "  serve: always",
            "  bind: 127.0.0.1",
            "  peer-name: bench",
            "  haproxy:",
            f"    config: {q(os.path.join(self.tmp, 'haproxy.cfg'))}",
            f"    runtime-dir: {q(os.path.join(self.tmp, 'run'))}",
            "",
        ])
        cfg_path = os.path.join(self.tmp, "config.yaml")
        with open(cfg_path, "w") as f:
            f.write(config)
        self.ks = start_group([self.cfg["binary"], "-c", cfg_path, "start"], self.ks_log, cwd=ws)
        self.procs.append(("keepserver", self.ks))
        if not wait_port(API_PORT, 20, lambda: self.ks.poll() is None):
            raise CannotRun("keepserver's API did not listen within 20 s:\n" + tail(self.ks_log))
        self.log = KsLog(self.ks_log)
        self.api = Api()
        log(f"keepserver up (pid {self.ks.pid}), API on 127.0.0.1:{API_PORT}")

    def stop(self):
        for name, p in reversed(self.procs):
            stop_group(name, p, 10)

    def wait_serving(self, port, secs=20):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            if not probe(port).startswith(("ERR", "HTTP")):
                return True
            time.sleep(0.02)
        return False

    def pool(self, listener, pool, port, persistence=None):
        self.api.call("POST", "/api/haproxy/listeners",
                      {"id": listener, "protocol": "HTTP", "protocol_port": port})
        body = {"id": pool, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "listener_id": listener}
        if persistence:
            body["session_persistence"] = {"type": persistence}
        self.api.call("POST", "/api/haproxy/pools", body)

    def member(self, pool, mid, port, **extra):
        return self.api.timed("POST", f"/api/haproxy/pools/{pool}/members",
                              dict({"id": mid, "address": "127.0.0.1", "protocol_port": port},
                                   **extra))

    def check_alone(self, runs=20):
        """`haproxy -c` of the configuration in place, alone: what every change pays."""
        ms = []
        for _ in range(runs):
            t0 = time.monotonic()
            run(["haproxy", "-c", "-q", "-f", os.path.join(self.tmp, "haproxy.cfg")])
            ms.append((time.monotonic() - t0) * 1000)
        return stats(ms)

    # ---- (a)

    def latency(self):
        self.pool("l-rt", "rt", RT_PORT)
        self.pool("l-rl", "rl", RL_PORT, "HTTP_COOKIE")
        out = {}
        for pool, port in (("rt", RT_PORT), ("rl", RL_PORT)):
            self.member(pool, "m0", self.backend_port())
            if not self.wait_serving(port):
                raise CannotRun(f"listener {port} does not serve:\n" + tail(self.ks_log))
            reply, served, delete = [], [], []
            self.log.mark()
            previous = "m0"
            for i in range(1, self.cfg["latency_changes"] + 1):
                bport = self.backend_port()
                want = f"b{bport}"
                seen = []
                prober = threading.Thread(target=probe_until, args=(port, want, seen))
                prober.start()
                t0, t1 = self.member(pool, f"m{i}", bport)
                prober.join()
                if not seen:
                    raise CannotRun(f"{pool}: backend {want} not served 10 s after its POST")
                t2 = seen[0]
                d0, d1 = self.api.timed("DELETE", f"/api/haproxy/pools/{pool}/members/{previous}")
                previous = f"m{i}"
                reply.append((t1 - t0) * 1000)
                served.append((t2 - t0) * 1000)
                delete.append((d1 - d0) * 1000)
            out[pool] = {"served_ms": stats(served), "reply_ms": stats(reply),
                         "delete_ms": stats(delete), "paths": self.log.since()}
            log(f"(a) {pool}: served p50 {out[pool]['served_ms']['p50']} ms, "
                f"paths {out[pool]['paths']}")
        out["check_alone_ms"] = self.check_alone()
        return out

    # ---- (b)

    def scale(self):
        n_pools, n_members, bucket = self.cfg["pools"], self.cfg["members"], self.cfg["bucket"]
        t_start = time.monotonic()
        setup = []
        for p in range(n_pools):
            t0 = time.monotonic()
            self.pool(f"l-s{p}", f"s{p}", SCALE_PORT0 + p)
            setup.append((time.monotonic() - t0) * 1000)
        t_setup = time.monotonic() - t_start
        self.log.mark()
        times = []
        t_members = time.monotonic()
        for p in range(n_pools):
            for m in range(n_members):
                t0, t1 = self.member(f"s{p}", f"m{m}", self.backend_port())
                times.append((t1 - t0) * 1000)
        t_end = time.monotonic()
        buckets = []
        for i in range(0, len(times), bucket):
            chunk = times[i:i + bucket]
            buckets.append(dict(stats(chunk), first=i + 1, last=i + len(chunk)))
        rss = proc_rss_kib(self.ks.pid)
        out = {"pools": n_pools, "members": n_members,
               "setup_s": _r(t_setup), "setup_ms_per_listener_and_pool": stats(setup),
               "members_s": _r(t_end - t_members), "total_s": _r(t_end - t_start),
               "per_change_ms": stats(times), "buckets": buckets, "paths": self.log.since(),
               "rss_kib_after": rss, "check_alone_ms": self.check_alone(),
               "config_bytes": os.path.getsize(os.path.join(self.tmp, "haproxy.cfg"))}
        log(f"(b) {n_pools * n_members} members in {out['members_s']} s, "
            f"paths {out['paths']}")
        return out

    # ---- (c)

    def wrk(self, port, seconds=None, changes=None):
        argv = ["wrk", "-t", str(self.cfg["wrk_threads"]), "-c", str(self.cfg["wrk_conns"]),
                "-d", f"{seconds or 600}s", f"http://127.0.0.1:{port}/"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        self.procs.append(("wrk", p))
        if changes is not None:
            time.sleep(1)
            changes()
            time.sleep(1)
            p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=(seconds or 0) + 60)
        return parse_wrk(out)

    def load(self):
        out = {"control": self.wrk(RT_PORT, seconds=self.cfg["control_seconds"])}
        for pool, port in (("rt", RT_PORT), ("rl", RL_PORT)):
            self.log.mark()
            applied = []

            def changes():
                live = []
                i = 0
                while len(applied) < self.cfg["load_changes"]:
                    step = i % 5
                    i += 1
                    if step == 0:
                        mid = f"w{i}"
                        self.member(pool, mid, self.backend_port())
                        live.append(mid)
                    elif step == 1:
                        self.api.call("PUT", f"/api/haproxy/pools/{pool}/members/{live[-1]}",
                                      {"weight": 5})
                    elif step == 2:
                        self.api.call("PUT", f"/api/haproxy/pools/{pool}/members/{live[-1]}",
                                      {"enabled": False})
                    elif step == 3:
                        self.api.call("PUT", f"/api/haproxy/pools/{pool}/members/{live[-1]}",
                                      {"enabled": True})
                    else:
                        self.api.call("DELETE",
                                      f"/api/haproxy/pools/{pool}/members/{live.pop(0)}")
                    applied.append(step)
                    time.sleep(self.cfg["load_gap_ms"] / 1000)

            out[pool] = dict(self.wrk(port, changes=changes), changes=len(applied),
                             paths=self.log.since())
            log(f"(c) {pool}: {out[pool]}")
        return out

    def body(self):
        self.start()
        result = {"machine": machine_info(), "git": git_rev(),
                  "haproxy": tool_version(["haproxy", "-v"]),
                  "wrk": tool_version(["wrk", "--version"])}
        time.sleep(1)
        result["rss_kib_idle"] = proc_rss_kib(self.ks.pid)
        only = self.cfg["only"]
        if "a" in only:
            result["latency"] = self.latency()
        elif "c" in only:
            self.pool("l-rt", "rt", RT_PORT)
            self.pool("l-rl", "rl", RL_PORT, "HTTP_COOKIE")
            for pool in ("rt", "rl"):
                self.member(pool, "m0", self.backend_port())
        if "c" in only:
            result["load"] = self.load()
        if "b" in only:
            result["scale"] = self.scale()
        return result


def parse_wrk(text):
    def num(pattern):
        m = re.search(pattern, text)
        return int(m.group(1)) if m else 0

    socket_errors, kinds = 0, {}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        kinds = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
        socket_errors = sum(kinds.values())
    requests = num(r"(\d+) requests in")
    non2xx = num(r"Non-2xx or 3xx responses: (\d+)")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return {"requests": requests, "non_2xx_3xx": non2xx, "socket_errors": socket_errors,
            "socket_error_kinds": kinds, "failed": non2xx + socket_errors, "rps": float(rate.group(1)) if rate else None}


def inner_main(cfg_path):
    set_log_prefix("bench-api inner")
    with open(cfg_path) as f:
        cfg = json.load(f)
    inner = Inner(cfg)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1) or sys.exit(130))
    try:
        result = inner.body()
    except CannotRun as e:
        log(f"could not run: {e}")
        return 1
    finally:
        inner.stop()
    with open(os.path.join(cfg["tmp"], "result.json"), "w") as f:
        json.dump(result, f)
    return 0


# --------------------------------------------------------------------------------------------
# Report


def render(r):
    m = r["machine"]
    lines = [machine_line(m, m.get("loadavg"), m.get("loadavg_end")),
             f"keepserver {r['git']}, {r['haproxy']}, {r['wrk']}",
             f"daemon RSS idle (API enabled, no object): {r['rss_kib_idle']} KiB "
             f"(target <= {TARGET_RSS_KIB} KiB)", ""]
    if "latency" in r:
        lines.append("(a) POST member -> HAProxy serving it (ms)")
        lines.append(f"{'path':<26}{'n':>4}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
                     f"{'reply p50':>11}{'DELETE p50':>12}  paths taken")
        for pool, label, target in (("rt", "runtime (ROUND_ROBIN)", TARGET_RUNTIME_P50_MS),
                                    ("rl", "reload (HTTP_COOKIE)", TARGET_RELOAD_P50_MS)):
            x = r["latency"][pool]
            s = x["served_ms"]
            lines.append(f"{label:<26}{s['n']:>4}{fmt(s['p50']):>9}{fmt(s['p90']):>9}"
                         f"{fmt(s['p99']):>9}{fmt(s['max']):>9}{fmt(x['reply_ms']['p50']):>11}"
                         f"{fmt(x['delete_ms']['p50']):>12}  {paths(x['paths'])}"
                         f"  (target p50 <= {target} ms)")
        c = r["latency"]["check_alone_ms"]
        lines.append(f"haproxy -c of that configuration alone: p50 {fmt(c['p50'])} ms, "
                     f"p90 {fmt(c['p90'])} ms (every change pays it, on both paths)")
        lines.append("")
    if "scale" in r:
        s = r["scale"]
        lines.append(f"(b) {s['pools']} listeners+pools, then {s['pools']} x {s['members']} "
                     f"members one by one: setup {s['setup_s']} s, members {s['members_s']} s, "
                     f"total {s['total_s']} s; final haproxy.cfg {s['config_bytes']} bytes, "
                     f"daemon RSS {s['rss_kib_after']} KiB; {paths(s['paths'])}")
        c = s["check_alone_ms"]
        lines.append(f"haproxy -c of the final configuration alone: p50 {fmt(c['p50'])} ms, "
                     f"p90 {fmt(c['p90'])} ms")
        lines.append(f"{'changes':<14}{'mean':>9}{'p50':>9}{'p99':>9}{'max':>9}  (POST reply, ms)")
        for b in s["buckets"]:
            lines.append(f"{b['first']:>5}-{b['last']:<8}{fmt(b['mean']):>9}{fmt(b['p50']):>9}"
                         f"{fmt(b['p99']):>9}{fmt(b['max']):>9}")
        lines.append("")
    if "load" in r:
        x = r["load"]
        lines.append("(c) wrk through HAProxy")
        c = x["control"]
        lines.append(f"control, no change: {c['requests']} requests, {c['rps']} req/s, "
                     f"failed {c['failed']}")
        for pool, label in (("rt", "runtime path"), ("rl", "reload path")):
            y = x[pool]
            lines.append(f"{y['changes']} member changes, {label}: {y['requests']} requests, "
                         f"{y['rps']} req/s, failed {y['failed']} (non-2xx/3xx "
                         f"{y['non_2xx_3xx']}, socket errors {y['socket_errors']}); "
                         f"{paths(y['paths'])}")
    return "\n".join(lines)


def paths(p):
    text = f"runtime {p['runtime']}, reload {p['reload']}"
    if p["runtime"]:
        text += (f"; a runtime change in the driver: p50 {fmt(p['runtime_apply_ms']['p50'])} ms, "
                 f"of which up to the worker serving it (render, runtime commands, "
                 f"show servers state) {fmt(p['runtime_served_ms']['p50'])} ms")
    if p["fell_back"]:
        text += f" (of which {p['fell_back']} fell back, the first: {p['fallback_reasons'][0]})"
    return text


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", help="keepserver binary (default: cargo build --release)")
    p.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    p.add_argument("--only", default="a,b,c", help="which parts (a, b, c)")
    p.add_argument("--backends", type=int, default=40)
    p.add_argument("--latency-changes", type=int, default=40)
    p.add_argument("--pools", type=int, default=100)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--bucket", type=int, default=100)
    p.add_argument("--load-changes", type=int, default=50)
    p.add_argument("--load-gap-ms", type=int, default=50)
    p.add_argument("--control-seconds", type=int, default=5)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--wrk-conns", type=int, default=16)
    p.add_argument("--watchdog", type=int, default=1800, help="abort after this many seconds")
    p.add_argument("--logs", help="copy configs and logs to this directory")
    p.add_argument("--inner", help=argparse.SUPPRESS)
    return p.parse_args()


def main():
    args = parse_args()
    if args.inner:
        return inner_main(args.inner)
    set_log_prefix("bench-api")
    args.only = [x.strip() for x in args.only.split(",")]
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
