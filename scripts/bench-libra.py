#!/usr/bin/env python3
"""Benchmarks of keepserver's embedded Libra worker: DISCOVER throughput, UPDATE latency, and
failed requests while HAProxy is reloaded under load.

What it does (Python 3 standard library, plus the ``gear`` Gearman library it installs with pip
into the temp dir if ``import gear`` fails; run as root: it creates a network namespace):

1. Builds keepserver with ``cargo build --release`` (unless ``--binary``).
2. Creates a temp dir and a network namespace holding ``lo`` and a veth pair ``ksb0``/``ksb0p``
   (both ends inside it, up). The VIP 192.0.2.10/24 (TEST-NET-1) goes on ``ksb0``, so keepserver
   (``keepstart.nic: ksb0``) is MASTER and runs its Libra worker. All traffic is on the
   namespace's loopback.
3. Re-runs this script inside the namespace (``ip netns exec NS python3 bench-libra.py
   --inner ...``); that part starts gearmand (``-t --gearmand-threads``), keepserver, the
   backends, the Python workers and the clients, runs the benchmarks and writes its results to a
   file. The outer part waits for it, then removes everything.

(a) DISCOVER throughput. A pool of client processes (multiprocessing, fork), each one
    ``gear.Client`` with one connection to gearmand, keeps ``--window`` DISCOVER jobs in flight:
    it appends gear's own SubmitJobTask/Job objects to the connection and writes the
    SUBMIT_JOB packets in one send (gear's ``submitJob()`` would wait for JOB_CREATED after
    each job, which is a round trip plus a thread hand-off per job); gear's poll thread
    handles JOB_CREATED / WORK_COMPLETE as usual, and each reply is checked for
    ``"hpcs_response":"PASS"``. ``--jobs`` jobs per run, split over the pool; all processes
    start together after connecting; jobs/s = completed jobs / (last completion - start).
    Each keepserver ``libra.concurrency`` of ``--concurrency`` (keepserver restarted for each)
    is measured with each pool size of ``--client-procs``: the pool sizes show where more
    clients stop adding throughput, i.e. whether the client side is the limit. Then the VIP is
    removed (keepserver goes SLAVE and its worker disconnects: the script waits until gearmand
    lists no worker for the function) and the same is measured against a minimal Python gear
    worker: as many processes (one gear.Worker each, one connection each, one job at a time)
    as keepserver had connections, for each value of ``--concurrency``. Each replies to
    DISCOVER with the request plus the same fields keepserver replied with. The Python workers
    set TCP_NODELAY, as keepserver does (gear leaves Nagle on, which costs ~44 ms per job per
    connection; ``--python-nagle`` measures gear as shipped). The ratio is best
    keepserver / best Python worker (each over all its configurations), and the same at equal
    connection counts. CPU seconds of the worker, gearmand and the clients are reported per run.
(b) UPDATE latency. ``--backends`` tiny HTTP backends (one process each; HTTP/1.1, keep-alive
    unless the request says close; body and X-Backend header name the backend) are split into
    disjoint node sets; UPDATEs rotate through them. A cold UPDATE starts HAProxy first (reported
    apart). Then for each of ``--latency-updates`` UPDATEs: t0 = just before the SUBMIT_JOB;
    the script sends a fresh HTTP request (new connection, Connection: close) to HAProxy's
    frontend every ``--probe-interval-ms``; the UPDATE is "served" at the answer time of the
    first of ``--consecutive`` consecutive answers from the new set. Reported: served latency
    p50/p90/max, the job's reply time (t0 -> WORK_COMPLETE), and probes that failed or were
    answered by the old set.
(c) ``wrk -t --wrk-threads -c --wrk-conns`` runs through HAProxy's frontend (first a control run
    without UPDATEs, ``--control-seconds``), then again while ``--load-updates`` UPDATEs are
    submitted one after another (each waits for its reply, then ``--load-gap-ms``), rotating
    the node sets (always >= 1 live node); wrk is stopped with SIGINT 1 s after the last reply
    and its output is parsed: requests, non-2xx/3xx, socket errors (connect/read/write/timeout).
    Failed requests = non-2xx/3xx + socket errors. When that is not 0, the HAProxy config
    keepserver wrote, keepserver's log lines about HAProxy and the HAProxy processes seen are
    kept in the result to explain why.

Everything created (processes, namespace, temp dir) is removed at the end, also on failure,
Ctrl-C or SIGTERM: the outer part kills whatever still runs in the namespace, HAProxy by its
pidfile and any haproxy whose command line names the temp dir, then deletes the namespace and the
temp dir. The exit status is non-zero only if the benchmark could not run; missing a target is
reported, not asserted.

Usage: scripts/bench-libra.py [--binary PATH] [--json] [--only a,b,c] [--jobs 20000]
           [--concurrency 1,2,4,8] [--client-procs 1,2,3,4] [--window 64] ...
With --json, stdout carries only the JSON object and the table goes to stderr.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CannotRun, _r, add_netns, build, copy_logs, fmt as fmt_cell,  # noqa: E402
                      git_rev, loadavg, log, machine_info, machine_line, nearest_rank,
                      proc_cpu_ns, proc_rss_kib, run, run_bench, run_inner, set_log_prefix,
                      start_group, stop_group, tail, tool_version)

NIC = "ksb0"
PEER = "ksb0p"
VIP = "192.0.2.10"
PREFIX_LEN = 24
GEAR_HOST = "127.0.0.1"
GEAR_PORT = 4730
FRONTEND_PORT = 8080
BACKEND_PORT0 = 9001
QUEUE = "lbaas-bench"
DISCOVER = b'{"hpcs_action":"DISCOVER"}'
PASS_RE = re.compile(rb'"hpcs_response"\s*:\s*"PASS"')

TARGET_JOBS_S = 5000
TARGET_RATIO = 5.0
TARGET_UPDATE_P50_MS = 50.0
TARGET_FAILED = 0

SCRIPT = os.path.abspath(__file__)


def int_list(s):
    try:
        vals = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a comma-separated list of numbers")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{s!r}: expected numbers >= 1")
    return vals


# --------------------------------------------------------------------------------------------
# /proc and machine helpers


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def summary_ms(vals):
    s = sorted(v for v in vals if v is not None)
    return {
        "n": len(s),
        "min": _r(s[0] if s else None, 2),
        "p50": _r(nearest_rank(s, 50), 2),
        "p90": _r(nearest_rank(s, 90), 2),
        "max": _r(s[-1] if s else None, 2),
        "mean": _r(sum(s) / len(s) if s else None, 2),
    }


# ============================================================================================
# Outer part: build, gear, namespace, clean-up


def gear_path(tmp, args):
    """A directory to put on PYTHONPATH so that `import gear` works ('' if it already does)."""
    if args.gear_site:
        site = os.path.abspath(args.gear_site)
        r = run([sys.executable, "-c", "import gear"], check=False,
                env=dict(os.environ, PYTHONPATH=site))
        if r.returncode != 0:
            raise CannotRun(f"--gear-site {site}: import gear fails: {r.stderr.strip()}")
        return site
    r = run([sys.executable, "-c", "import gear"], check=False)
    if r.returncode == 0:
        return ""
    site = os.path.join(tmp, "gear-site")
    log(f"import gear failed; pip install gear --target {site}")
    r = run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--target", site, "gear"], timeout=900, check=False)
    if r.returncode != 0:
        raise CannotRun("pip install gear failed:\n" + (r.stdout + r.stderr)[-2000:])
    return site


def ns_inode(ns):
    try:
        st = os.stat(f"/run/netns/{ns}")
        return (st.st_dev, st.st_ino)
    except OSError:
        return None


def pids_in_ns(ns):
    ident = ns_inode(ns)
    if ident is None:
        return []
    out = []
    for pid in all_pids():
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident:
            out.append(pid)
    return out


def kill_pids(pids, what, grace=3.0):
    """SIGTERM, then SIGKILL after grace seconds, for the pids still alive."""
    pids = [p for p in pids if p != os.getpid()]
    if not pids:
        return
    log(f"stopping {len(pids)} leftover process(es) ({what}): "
        + ", ".join(f"{p} {' '.join(proc_cmdline(p))[:60]}" for p in pids[:8]))
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def haproxy_pids(tmp):
    """HAProxy processes of this run: by pidfile in the runtime dir, and by command line."""
    pids = set()
    run_dir = os.path.join(tmp, "run")
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            if name.endswith(".pid"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(os.path.join(run_dir, name)) as f:
                        pid = int(f.read().split()[0])
                    if any("haproxy" in a for a in proc_cmdline(pid)[:1]):
                        pids.add(pid)
    for pid in all_pids():
        argv = proc_cmdline(pid)
        if argv and "haproxy" in os.path.basename(argv[0]) and any(tmp in a for a in argv):
            pids.add(pid)
    return sorted(pids)


def sweep(ns, tmp):
    """Kills what is left of this run: HAProxy first (its master by pidfile), then anything in
    the namespace."""
    kill_pids(haproxy_pids(tmp), "haproxy")
    kill_pids(pids_in_ns(ns), f"in namespace {ns}")
    left = pids_in_ns(ns) + haproxy_pids(tmp)
    if left:
        log(f"still alive after SIGKILL: {left}")


def outer(args):
    return run_bench(lambda cleanup: outer_bench(args, cleanup))


def outer_bench(args, cleanup):
    later = cleanup.later
    for tool in ("ip", "gearmand", "haproxy", "wrk"):
        if not shutil.which(tool):
            raise CannotRun(f"{tool} not found in PATH")
    binary = build(args.binary)
    tmp = tempfile.mkdtemp(prefix="ksbench-libra-")
    later("remove temp dir", shutil.rmtree, tmp, True)
    site = gear_path(tmp, args)

    ns = f"ksbench-libra-{os.getpid()}"
    add_netns(cleanup, ns, NIC, PEER)
    later("stop what is left", sweep, ns, tmp)
    if args.logs:
        later("copy logs", copy_logs, tmp, os.path.abspath(args.logs))
    run(["ip", "-netns", ns, "addr", "add", f"{VIP}/{PREFIX_LEN}", "dev", NIC])
    log(f"namespace {ns}: lo, veth {NIC}<->{PEER} up, VIP {VIP}/{PREFIX_LEN} on {NIC}")

    cfg = dict(vars(args), tmp=tmp, ns=ns, binary=binary, gear_site=site,
               python_nodelay=not args.python_nagle)
    return run_inner(ns, SCRIPT, cfg, site, later, inner_time_bound(args), render, args.json)


def inner_time_bound(args):
    runs_a = len(args.concurrency) * 2 * (len(args.client_procs) + 1)
    t_a = runs_a * (args.run_timeout + 20) + 2 * len(args.concurrency) * 30
    t_b = args.latency_updates * 11 + 30
    t_c = args.control_seconds + args.load_updates * 11 + 60
    return 120 + t_a + t_b + t_c


# ============================================================================================
# Inner part (runs inside the namespace)


class Procs:
    """What the inner part started, stopped in reverse order."""

    def __init__(self):
        self.items = []  # (name, kind, obj)

    def popen(self, name, argv, logpath, **kw):
        p = start_group(argv, logpath, **kw)
        self.items.append((name, "popen", p))
        return p

    def process(self, name, proc):
        self.items.append((name, "mp", proc))
        return proc

    def stop_one(self, name, kind, obj, grace=5.0):
        if kind == "popen":
            stop_group(name, obj, grace)
        else:
            if obj.is_alive():
                obj.terminate()
                obj.join(grace)
            if obj.is_alive():
                obj.kill()
                obj.join(5)

    def stop(self, target):
        for i, (name, kind, obj) in enumerate(self.items):
            if obj is target:
                self.stop_one(name, kind, obj)
                del self.items[i]
                return

    def stop_all(self):
        while self.items:
            name, kind, obj = self.items.pop()
            try:
                self.stop_one(name, kind, obj)
            except Exception as e:
                log(f"stopping {name} failed: {e}")


# --------------------------------------------------------------------------------------------
# Gearman helpers


def gear_admin(cmd, timeout=3.0):
    with socket.create_connection((GEAR_HOST, GEAR_PORT), timeout=timeout) as s:
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        deadline = time.monotonic() + timeout
        while not (buf == b".\n" or buf.endswith(b"\n.\n")) and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace")


def gear_function_status(fn):
    """(total queued, running, available workers) for fn, or None if gearmand does not list it."""
    try:
        out = gear_admin("status")
    except OSError:
        return None
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == fn:
            return tuple(int(x) for x in parts[1:])
    return (0, 0, 0)


def wait_workers(fn, want, timeout, alive=None):
    """Waits until gearmand lists exactly `want` workers for fn. Returns (ok, seconds, last)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = gear_function_status(fn)
        if last is not None and last[2] == want:
            return True, time.monotonic() - t0, last
        if alive is not None and not alive():
            break
        time.sleep(0.02)
    return False, time.monotonic() - t0, last


def wait_port(port, timeout, alive=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.02)
    return False


def make_client_class(gear):
    """A gear.Client that counts and time-stamps replies (handlers run on gear's poll thread)."""

    class BenchClient(gear.Client):
        def __init__(self, client_id, low_water=0):
            super().__init__(client_id)
            self.cv = threading.Condition()
            self.sent = 0
            self.finished = 0
            self.passed = 0
            self.failed = 0
            self.not_pass = 0
            self.t_last = None
            self.low_water = low_water

        def _finish(self, job, ok):
            t = time.monotonic()
            job.t_done = t
            with self.cv:
                self.finished += 1
                self.t_last = t
                if ok:
                    data = b"".join(job.data)
                    if PASS_RE.search(data):
                        self.passed += 1
                    else:
                        self.not_pass += 1
                else:
                    self.failed += 1
                if self.sent - self.finished <= self.low_water:
                    self.cv.notify_all()

        def handleWorkComplete(self, packet):
            job = super().handleWorkComplete(packet)
            self._finish(job, True)
            return job

        def handleWorkFail(self, packet):
            job = super().handleWorkFail(packet)
            self._finish(job, False)
            return job

        def handleWorkException(self, packet):
            job = super().handleWorkException(packet)
            self._finish(job, False)
            return job

    return BenchClient


def client_proc(idx, fn, payload, n, window, timeout, go, q):
    """One process of the client pool: keeps `window` jobs in flight until n are done."""
    client = None
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import gear
        low = max(0, window - max(1, window // 4))
        client = make_client_class(gear)(f"bench-client-{idx}", low_water=low)
        client.addServer(GEAR_HOST, GEAR_PORT)
        client.waitForServer(10)
        conn = client.getConnection()
        fnb = fn.encode()
        packet = gear.Packet(gear.constants.REQ, gear.constants.SUBMIT_JOB,
                             b"\x00".join((fnb, b"", payload))).toBinary()
        q.put(("ready", idx, None))
        if not go.wait(60):
            q.put(("error", idx, "no go signal within 60 s"))
            return
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        deadline = t0 + timeout
        timed_out = False
        while True:
            with client.cv:
                inflight = client.sent - client.finished
                if client.sent >= n and inflight == 0:
                    break
                if client.sent < n and inflight <= low:
                    k = min(window - inflight, n - client.sent)
                    for _ in range(k):
                        conn.pending_tasks.append(gear.SubmitJobTask(gear.Job(fnb, payload)))
                    client.sent += k
                else:
                    k = 0
                    left = deadline - time.monotonic()
                    if left <= 0:
                        timed_out = True
                        break
                    client.cv.wait(min(left, 1.0))
            if k:
                conn.sendRaw(packet * k)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        with client.cv:
            q.put(("result", idx, {
                "sent": client.sent, "finished": client.finished, "passed": client.passed,
                "failed": client.failed, "not_pass": client.not_pass, "t0": t0,
                "t_last": client.t_last, "cpu_s": cpu, "timed_out": timed_out}))
    except BaseException as e:  # report, never hang the pool
        q.put(("error", idx, repr(e)))
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


def py_worker_proc(idx, fn, fields, ready, nodelay):
    """The minimal Python gear worker: one connection, one job at a time, DISCOVER reply;
    with TCP_NODELAY set on its connection when ``nodelay``."""
    import gear
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    w = gear.Worker(f"py-worker-{idx}")
    w.addServer(GEAR_HOST, GEAR_PORT)
    w.registerFunction(fn)
    w.waitForServer(10)
    if nodelay:
        # gear leaves Nagle on: each GRAB_JOB after WORK_COMPLETE then waits for gearmand's
        # delayed ACK (~40 ms, 22 jobs/s per connection). Off, the Python worker is at its best.
        for c in w.active_connections:
            c.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ready.put(idx)
    while True:
        job = w.getJob()
        try:
            req = json.loads(job.arguments)
            if req.get("hpcs_action", "").upper() == "DISCOVER":
                req.update(fields)
                req["hpcs_response"] = "PASS"
            else:
                req["hpcs_response"] = "FAIL"
                req["hpcs_error"] = "unsupported"
        except ValueError as e:
            req = {"hpcs_response": "FAIL", "hpcs_error": f"invalid JSON: {e}"}
        job.sendWorkComplete(json.dumps(req, separators=(",", ":")).encode())


# --------------------------------------------------------------------------------------------
# HTTP backends and probes


def backend_proc(name, port):
    """A tiny HTTP/1.1 server: 200, body and X-Backend name it; keep-alive unless told close."""
    import selectors
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    body = f"{name}\n".encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"X-Backend: {name}\r\n").encode()
    resp_ka = head + b"\r\n" + body
    resp_close = head + b"Connection: close\r\n\r\n" + body
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)

    def close(c):
        with contextlib.suppress(Exception):
            sel.unregister(c)
        c.close()

    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(c, selectors.EVENT_READ, [b""])
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                close(c)
                continue
            if not data:
                close(c)
                continue
            buf = key.data[0] + data
            out = []
            closing = False
            while b"\r\n\r\n" in buf:
                req, _, buf = buf.partition(b"\r\n\r\n")
                low = req.lower()
                closing = b"connection: close" in low or (
                    b" http/1.0\r\n" in low.split(b"\r\n", 1)[0] + b"\r\n"
                    and b"connection: keep-alive" not in low)
                out.append(resp_close if closing else resp_ka)
                if closing:
                    break
            key.data[0] = buf
            if out:
                try:
                    c.setblocking(True)
                    c.settimeout(2)
                    c.sendall(b"".join(out))
                    c.setblocking(False)
                except OSError:
                    closing = True
            if closing:
                close(c)


def probe(port, timeout=0.25):
    """One request through HAProxy on a new connection: the backend name, or 'ERR:...'/'HTTP:...'"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        return f"ERR:{type(e).__name__}"
    status = buf.split(b"\r\n", 1)[0]
    parts = status.split()
    if len(parts) < 2 or parts[1] != b"200":
        return "HTTP:" + (parts[1].decode(errors="replace") if len(parts) > 1 else "none")
    m = re.search(rb"(?i)\r\nX-Backend: ([^\r\n]+)", buf)  # HAProxy 2 lowercases names
    return m.group(1).decode() if m else "HTTP:200-unnamed"


# --------------------------------------------------------------------------------------------
# The inner benchmark


class Inner:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tmp = cfg["tmp"]
        self.binary = cfg["binary"]
        self.procs = Procs()
        self.notes = []
        self.ks = None
        self.ks_conc = None
        self.gearmand = None
        self.mp = multiprocessing.get_context("fork")
        self.backends = {}  # name -> port
        self.ks_log = os.path.join(self.tmp, "keepserver.log")
        self.haproxy_cfg = os.path.join(self.tmp, "haproxy.cfg")
        self.run_dir = os.path.join(self.tmp, "run")
        self.discover_fields = None
        import gear
        self.gear = gear

    def note(self, msg):
        self.notes.append(msg)
        log("NOTE: " + msg)

    # ---- daemons

    def start_gearmand(self):
        gl = os.path.join(self.tmp, "gearmand.log")
        self.gearmand = self.procs.popen("gearmand", [
            "gearmand", "--listen", GEAR_HOST, "--port", str(GEAR_PORT), "--log-file", gl,
            "--pid-file", os.path.join(self.tmp, "gearmand.pid"),
            "-t", str(self.cfg["gearmand_threads"])], os.path.join(self.tmp, "gearmand.out"))
        if not wait_port(GEAR_PORT, 10, lambda: self.gearmand.poll() is None):
            raise CannotRun("gearmand did not listen within 10 s:\n" + tail(gl)
                            + tail(os.path.join(self.tmp, "gearmand.out")))
        log(f"gearmand {GEAR_HOST}:{GEAR_PORT} up (pid {self.gearmand.pid}, "
            f"-t {self.cfg['gearmand_threads']})")

    def write_ks_config(self, concurrency):
        q = json.dumps
        text = "\n".join([
            "application:",
            "  daemon: false",
            f"  workspace: {q(os.path.join(self.tmp, 'ks'))}",
            "keepstart:",
            f"  nic: {NIC}",
            f"  vip: {VIP}",
            '  start: "true"',
            '  stop: "true"',
            "  sleep: 2",
            "libra:",
            "  enabled: true",
            f"  servers: [{q(f'{GEAR_HOST}:{GEAR_PORT}')}]",
            f"  queue: {QUEUE}",
            f"  concurrency: {concurrency}",
            "  haproxy:",
            f"    config: {q(self.haproxy_cfg)}",
            "    binary: haproxy",
            "    bind: 127.0.0.1",
            f"    runtime-dir: {q(self.run_dir)}",
            "",
        ])
        path = os.path.join(self.tmp, "config.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def ks_alive(self):
        return self.ks is not None and self.ks.poll() is None

    def start_keepserver(self, concurrency):
        """(Re)starts keepserver with libra.concurrency; waits until its worker registered."""
        self.stop_keepserver()
        os.makedirs(os.path.join(self.tmp, "ks"), exist_ok=True)
        cfg_path = self.write_ks_config(concurrency)
        with open(self.ks_log, "a") as f:
            f.write(f"\n===== bench-libra: start, libra.concurrency={concurrency} =====\n")
        self.ks = self.procs.popen("keepserver", [self.binary, "-c", cfg_path, "start"],
                                   self.ks_log, cwd=os.path.join(self.tmp, "ks"))
        self.ks_conc = concurrency
        ok, secs, last = wait_workers(QUEUE, concurrency, 20, self.ks_alive)
        if not ok:
            if not self.ks_alive():
                raise CannotRun(f"keepserver exited with status {self.ks.returncode} at "
                                f"start-up:\n{tail(self.ks_log)}")
            raise CannotRun(f"keepserver's Libra worker did not register {concurrency} "
                            f"connection(s) for {QUEUE} within 20 s (gearmand status: {last})"
                            f":\n{tail(self.ks_log)}")
        log(f"keepserver up (pid {self.ks.pid}), {concurrency} worker connection(s) registered "
            f"after {secs:.2f} s")

    def stop_keepserver(self):
        if self.ks is not None:
            self.procs.stop(self.ks)
            rc = self.ks.returncode
            if rc not in (0, -signal.SIGTERM, None):
                self.note(f"keepserver exited with status {rc} after SIGTERM")
            self.ks = None

    def set_vip(self, present):
        r = run(["ip", "addr", "add" if present else "del", f"{VIP}/{PREFIX_LEN}", "dev", NIC],
                check=False)
        benign = ("exists", "already assigned", "Cannot assign")
        if r.returncode != 0 and not any(b in r.stderr for b in benign):
            raise CannotRun(f"ip addr {'add' if present else 'del'}: {r.stderr.strip()}")

    def submit(self, client, payload, timeout=15.0):
        """Submits one job and waits for its reply: (t0, job)."""
        job = self.gear.Job(QUEUE.encode(), payload)
        job.t_done = None
        t0 = time.monotonic()
        client.submitJob(job, timeout=5)
        deadline = t0 + timeout
        while job.t_done is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        return t0, job

    def new_client(self, name):
        client = make_client_class(self.gear)(name)
        client.addServer(GEAR_HOST, GEAR_PORT)
        client.waitForServer(10)
        return client

    # ---- (a)

    def throughput_run(self, label, jobs, nprocs, cpu_pids):
        cfg = self.cfg
        q = self.mp.Queue()
        go = self.mp.Event()
        per = [jobs // nprocs + (1 if i < jobs % nprocs else 0) for i in range(nprocs)]
        ps = []
        for i in range(nprocs):
            p = self.mp.Process(target=client_proc, daemon=True, args=(
                i, QUEUE, DISCOVER, per[i], cfg["window"], cfg["run_timeout"], go, q))
            p.start()
            self.procs.process(f"client {i}", p)
            ps.append(p)
        results, errors = {}, []
        try:
            ready = 0
            deadline = time.monotonic() + 20
            while ready < nprocs and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    kind, idx, val = q.get(timeout=max(0.01, deadline - time.monotonic()))
                    if kind == "ready":
                        ready += 1
                    elif kind == "error":
                        errors.append(f"client {idx}: {val}")
                        break
            if ready < nprocs:
                raise CannotRun(f"{label}: only {ready}/{nprocs} client processes connected: "
                                f"{errors}")
            cpu0 = {k: proc_cpu_ns(pid, schedstat=False) for k, pid in cpu_pids.items()}
            go.set()
            deadline = time.monotonic() + cfg["run_timeout"] + 20
            while len(results) + len(errors) < nprocs and time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    kind, idx, val = q.get(timeout=max(0.01, deadline - time.monotonic()))
                    if kind == "result":
                        results[idx] = val
                    elif kind == "error":
                        errors.append(f"client {idx}: {val}")
            cpu1 = {k: proc_cpu_ns(pid, schedstat=False) for k, pid in cpu_pids.items()}
        finally:
            for p in ps:
                self.procs.stop(p)
        if not results:
            raise CannotRun(f"{label}: no client process reported ({errors})")
        vals = list(results.values())
        t0 = min(v["t0"] for v in vals)
        t1 = max(v["t_last"] or v["t0"] for v in vals)
        finished = sum(v["finished"] for v in vals)
        passed = sum(v["passed"] for v in vals)
        elapsed = max(1e-9, t1 - t0)
        cpu = {k: (None if cpu0.get(k) is None or cpu1.get(k) is None
                   else round((cpu1[k] - cpu0[k]) / 1e9, 2)) for k in cpu_pids}
        cpu["clients"] = round(sum(v["cpu_s"] for v in vals), 2)
        out = {
            "jobs": jobs, "client_procs": nprocs, "window_per_client": cfg["window"],
            "sent": sum(v["sent"] for v in vals), "completed": finished, "passed": passed,
            "failed": sum(v["failed"] for v in vals),
            "not_pass": sum(v["not_pass"] for v in vals),
            "timed_out": any(v["timed_out"] for v in vals) or len(results) < nprocs,
            "seconds": round(elapsed, 3),
            "jobs_per_s": round(passed / elapsed, 1),
            "cpu_s": cpu,
            "cpu_total_pct_of_machine": None,
            "errors": errors,
        }
        known = [v for v in cpu.values() if v is not None]
        ncpu = len(os.sched_getaffinity(0))
        out["cpu_total_pct_of_machine"] = round(100 * sum(known) / (elapsed * ncpu), 1)
        log(f"  {label}: clients {nprocs}: {out['jobs_per_s']:.0f} jobs/s ({passed}/{jobs} PASS "
            f"in {elapsed:.2f} s; CPU s {cpu})")
        if out["failed"] or out["not_pass"] or out["timed_out"] or errors:
            self.note(f"{label}, {nprocs} client procs: failed {out['failed']}, not PASS "
                      f"{out['not_pass']}, timed out {out['timed_out']}, errors {errors[:3]}")
        return out

    def sweep_clients(self, label, cpu_pids):
        runs = []
        # warm-up: not counted
        self.throughput_run(label + " warm-up", max(500, self.cfg["jobs"] // 10),
                            self.cfg["client_procs"][-1], cpu_pids)
        for k in self.cfg["client_procs"]:
            runs.append(self.throughput_run(label, self.cfg["jobs"], k, cpu_pids))
        return runs

    def bench_a(self):
        cfg = self.cfg
        res = {"jobs_per_run": cfg["jobs"], "window_per_client": cfg["window"],
               "client_procs": cfg["client_procs"], "gearmand_threads": cfg["gearmand_threads"],
               "keepserver": [], "python": []}
        # keepserver: one restart per concurrency
        self.set_vip(True)
        for c in cfg["concurrency"]:
            self.start_keepserver(c)
            if self.discover_fields is None:
                self.discover_fields = self.check_discover()
                res["discover_reply"] = self.discover_fields
            pids = {"keepserver": self.ks.pid, "gearmand": self.gearmand.pid}
            for r in self.sweep_clients(f"(a) keepserver concurrency {c}", pids):
                r["worker_connections"] = c
                res["keepserver"].append(r)
            rss = proc_rss_kib(self.ks.pid)
            res.setdefault("keepserver_rss_kib", {})[str(c)] = rss
        # keepserver's worker off: VIP removed -> SLAVE -> it disconnects
        t0 = time.monotonic()
        self.set_vip(False)
        ok, secs, last = wait_workers(QUEUE, 0, 15, self.ks_alive)
        res["slave_disconnect_s"] = round(time.monotonic() - t0, 3) if ok else None
        if ok:
            log(f"VIP removed: keepserver's worker gone from gearmand after {secs:.2f} s")
        else:
            self.note(f"after the VIP was removed, gearmand still listed {last} for {QUEUE} "
                      f"15 s later; stopping keepserver instead")
            self.stop_keepserver()
            ok, _, last = wait_workers(QUEUE, 0, 10)
            if not ok:
                raise CannotRun(f"workers for {QUEUE} still registered: {last}")
        fields = {k: v for k, v in (self.discover_fields or {}).items()
                  if k not in ("hpcs_action", "hpcs_response")}
        for c in cfg["concurrency"]:
            ready = self.mp.Queue()
            workers = []
            for i in range(c):
                p = self.mp.Process(target=py_worker_proc, args=(i, QUEUE, fields, ready,
                                                                cfg["python_nodelay"]),
                                    daemon=True)
                p.start()
                self.procs.process(f"python worker {i}", p)
                workers.append(p)
            ok, secs, last = wait_workers(QUEUE, c, 20)
            if not ok:
                raise CannotRun(f"{c} Python gear workers did not register within 20 s ({last})")
            pids = {"python_workers": None, "gearmand": self.gearmand.pid}
            pids.update({f"pyw{i}": p.pid for i, p in enumerate(workers)})
            for r in self.sweep_clients(f"(a) python gear worker x{c}", pids):
                cpu = r["cpu_s"]
                ws = [cpu.pop(f"pyw{i}") for i in range(c)]
                cpu["python_workers"] = (None if any(w is None for w in ws)
                                         else round(sum(ws), 2))
                r["worker_connections"] = c
                res["python"].append(r)
            for p in workers:
                self.procs.stop(p)
            ok, _, last = wait_workers(QUEUE, 0, 10)
            if not ok:
                self.note(f"Python workers still listed after being stopped: {last}")
        best_ks = max(res["keepserver"], key=lambda r: r["jobs_per_s"])
        best_py = max(res["python"], key=lambda r: r["jobs_per_s"])
        res["best_keepserver"] = {k: best_ks[k] for k in
                                  ("jobs_per_s", "worker_connections", "client_procs")}
        res["best_python"] = {k: best_py[k] for k in
                              ("jobs_per_s", "worker_connections", "client_procs")}
        res["ratio"] = (round(best_ks["jobs_per_s"] / best_py["jobs_per_s"], 2)
                        if best_py["jobs_per_s"] else None)
        per_conc = {}
        for c in cfg["concurrency"]:
            k = max((r["jobs_per_s"] for r in res["keepserver"] if r["worker_connections"] == c),
                    default=None)
            p = max((r["jobs_per_s"] for r in res["python"] if r["worker_connections"] == c),
                    default=None)
            per_conc[str(c)] = {"keepserver": k, "python": p,
                                "ratio": round(k / p, 2) if k and p else None}
        res["best_by_connections"] = per_conc
        # client capacity: does the best pool size sit at the top of the sweep?
        for who in ("keepserver", "python"):
            best = res["best_" + who]
            c = best["worker_connections"]
            series = [(r["client_procs"], r["jobs_per_s"]) for r in res[who]
                      if r["worker_connections"] == c]
            res.setdefault("client_sweep_at_best", {})[who] = series
            if best["client_procs"] == max(cfg["client_procs"]) and len(series) > 1:
                prev = sorted(series)[-2][1]
                if best["jobs_per_s"] > prev * 1.05:
                    self.note(f"(a) {who}: the largest client pool ({best['client_procs']}) was "
                              f"still > 5% faster than the next smaller one ({prev:.0f} jobs/s):"
                              f" the clients may be the limit; try more --client-procs")
        return res

    def check_discover(self):
        client = self.new_client("bench-check")
        try:
            t0, job = self.submit(client, DISCOVER, timeout=10)
        finally:
            client.shutdown()
        if job.t_done is None:
            raise CannotRun(f"DISCOVER: no reply within 10 s:\n{tail(self.ks_log)}")
        data = b"".join(job.data)
        try:
            reply = json.loads(data)
        except ValueError:
            raise CannotRun(f"DISCOVER: reply is not JSON: {data[:300]!r}")
        if job.failure or reply.get("hpcs_response") != "PASS":
            raise CannotRun(f"DISCOVER: reply {reply}")
        log(f"DISCOVER reply: {reply}")
        return reply

    # ---- (b)

    def start_backends(self):
        n = self.cfg["backends"]
        for i in range(n):
            name, port = f"b{i + 1}", BACKEND_PORT0 + i
            p = self.mp.Process(target=backend_proc, args=(name, port), daemon=True)
            p.start()
            self.procs.process(f"backend {name}", p)
            self.backends[name] = port
        for name, port in self.backends.items():
            if not wait_port(port, 10):
                raise CannotRun(f"backend {name} did not listen on {port}")
        log(f"{n} HTTP backends up on 127.0.0.1:{BACKEND_PORT0}-{BACKEND_PORT0 + n - 1}")

    def node_sets(self):
        names = list(self.backends)
        k = len(names) // 2 if len(names) < 6 else len(names) // 3
        sets = [names[i:i + k] for i in range(0, k * (len(names) // k), k)]
        return [s for s in sets if s]

    def update_payload(self, names):
        return json.dumps({"hpcs_action": "UPDATE", "loadbalancers": [{
            "protocol": "HTTP", "port": str(FRONTEND_PORT),
            "nodes": [{"id": n, "address": "127.0.0.1", "port": str(self.backends[n])}
                      for n in names]}]}).encode()

    def measure_update(self, client, names, timeout=10.0):
        cfg = self.cfg
        want = set(names)
        need = cfg["consecutive"]
        interval = cfg["probe_interval_ms"] / 1000.0
        job = self.gear.Job(QUEUE.encode(), self.update_payload(names))
        job.t_done = None
        t0 = time.monotonic()
        client.submitJob(job, timeout=5)
        deadline = t0 + timeout
        run_len, run_start, served, first_new = 0, None, None, None
        probes, errors, old, other = 0, {}, 0, 0
        while time.monotonic() < deadline:
            if served is None:
                tp = time.monotonic()
                r = probe(FRONTEND_PORT)
                ta = time.monotonic()
                probes += 1
                if r in want:
                    if first_new is None:
                        first_new = ta
                    if run_len == 0:
                        run_start = ta
                    run_len += 1
                    if run_len >= need:
                        served = run_start
                else:
                    run_len = 0
                    if r in self.backends:
                        old += 1
                    else:
                        errors[r] = errors.get(r, 0) + 1
                if served is None:
                    wait = tp + interval - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    continue
            if job.t_done is not None:
                break
            time.sleep(0.0005)
        data = b"".join(job.data) if job.complete else b""
        ok = job.complete and not job.failure and bool(PASS_RE.search(data))
        ms = lambda t: None if t is None else round((t - t0) * 1000, 2)
        return {
            "nodes": names, "served_ms": ms(served), "first_new_answer_ms": ms(first_new),
            "reply_ms": ms(job.t_done), "pass": ok,
            "reply": None if ok else data[:500].decode(errors="replace"),
            "probes": probes, "old_set_answers": old, "probe_errors": errors,
            "served_after_reply": (served is not None and job.t_done is not None
                                   and served > job.t_done),
        }

    def bench_b(self, client):
        cfg = self.cfg
        sets = self.node_sets()
        res = {"node_sets": sets, "probe_interval_ms": cfg["probe_interval_ms"],
               "consecutive": cfg["consecutive"], "updates": []}
        cold = self.measure_update(client, sets[0])
        res["cold_start"] = cold
        log(f"(b) cold UPDATE (starts HAProxy): served {cold['served_ms']} ms, reply "
            f"{cold['reply_ms']} ms, pass {cold['pass']}")
        if not cold["pass"] or cold["served_ms"] is None:
            self.note(f"(b) the first UPDATE did not give a serving HAProxy: {cold}; "
                      f"haproxy.cfg:\n{tail(self.haproxy_cfg, 60)}\nkeepserver log:\n"
                      f"{tail(self.ks_log)}")
        time.sleep(0.3)
        for i in range(cfg["latency_updates"]):
            names = sets[(i + 1) % len(sets)]
            r = self.measure_update(client, names)
            res["updates"].append(r)
            if (i + 1) % 10 == 0:
                log(f"  (b) {i + 1}/{cfg['latency_updates']}")
            if not self.ks_alive():
                raise CannotRun(f"keepserver exited during (b):\n{tail(self.ks_log)}")
            time.sleep(cfg["latency_gap_ms"] / 1000.0)
        ups = res["updates"]
        res["served_ms"] = summary_ms([u["served_ms"] for u in ups])
        res["reply_ms"] = summary_ms([u["reply_ms"] for u in ups])
        res["not_served"] = sum(1 for u in ups if u["served_ms"] is None)
        res["not_pass"] = sum(1 for u in ups if not u["pass"])
        res["served_after_reply"] = sum(1 for u in ups if u["served_after_reply"])
        res["probe_errors"] = {}
        for u in ups:
            for k, v in u["probe_errors"].items():
                res["probe_errors"][k] = res["probe_errors"].get(k, 0) + v
        res["old_set_answers"] = sum(u["old_set_answers"] for u in ups)
        if res["not_pass"]:
            self.note(f"(b) {res['not_pass']} UPDATE(s) not PASS, e.g. "
                      f"{next(u['reply'] for u in ups if not u['pass'])}")
        if res["served_after_reply"]:
            self.note(f"(b) {res['served_after_reply']} UPDATE(s) replied PASS before HAProxy "
                      f"served the new node set")
        return res

    # ---- (c)

    def wrk(self, seconds, during=None):
        """Runs wrk; `during()` runs while it does, then wrk gets SIGINT. Returns parsed output."""
        cfg = self.cfg
        argv = ["wrk", f"-t{cfg['wrk_threads']}", f"-c{cfg['wrk_conns']}", f"-d{seconds}s",
                "--timeout", "2s", f"http://127.0.0.1:{FRONTEND_PORT}/"]
        out_path = os.path.join(self.tmp, "wrk.out")
        with open(out_path, "w") as f:
            f.write("")
        p = self.procs.popen("wrk", argv, out_path)
        extra = None
        try:
            if during is not None:
                time.sleep(1.0)
                extra = during()
                time.sleep(1.0)
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=(seconds + 15) if during is None else 15)
            except subprocess.TimeoutExpired:
                self.note("wrk did not stop on time; killed")
        finally:
            self.procs.stop(p)
        with open(out_path) as f:
            text = f.read()
        parsed = parse_wrk(text)
        parsed["argv"] = " ".join(argv)
        return parsed, extra

    def bench_c(self, client):
        cfg = self.cfg
        sets = self.node_sets()
        res = {"wrk_threads": cfg["wrk_threads"], "wrk_conns": cfg["wrk_conns"]}
        control, _ = self.wrk(cfg["control_seconds"])
        res["control"] = control
        log(f"(c) control run (no UPDATEs): {fmt_wrk(control)}")
        hap_seen = set()

        def updates():
            out = []
            for i in range(cfg["load_updates"]):
                names = sets[i % len(sets)]
                t0, job = self.submit(client, self.update_payload(names), timeout=10)
                data = b"".join(job.data) if job.complete else b""
                ok = job.complete and not job.failure and bool(PASS_RE.search(data))
                out.append({"nodes": names, "pass": ok,
                            "reply_ms": round((job.t_done - t0) * 1000, 2)
                            if job.t_done is not None else None,
                            "reply": None if ok else data[:300].decode(errors="replace")})
                hap_seen.update(haproxy_pids(self.tmp))
                time.sleep(cfg["load_gap_ms"] / 1000.0)
            return out

        est = cfg["load_updates"] * (0.5 + cfg["load_gap_ms"] / 1000.0) + 30
        loaded, ups = self.wrk(int(min(600, max(30, est * 3))), during=updates)
        res["under_updates"] = loaded
        res["updates"] = len(ups)
        res["updates_pass"] = sum(1 for u in ups if u["pass"])
        res["update_reply_ms"] = summary_ms([u["reply_ms"] for u in ups])
        res["haproxy_pids_seen"] = len(hap_seen)
        bad = [u for u in ups if not u["pass"]]
        if bad:
            self.note(f"(c) {len(bad)} UPDATE(s) not PASS, e.g. {bad[0]}")
        log(f"(c) with {len(ups)} UPDATEs: {fmt_wrk(loaded)}")
        res["failed_requests"] = loaded.get("failed")
        if loaded.get("failed") is None:
            self.note("(c) could not parse wrk's output:\n" + loaded.get("raw", "")[-1500:])
        if loaded.get("failed") or control.get("failed"):
            res["evidence"] = self.evidence()
        return res

    def evidence(self):
        ev = {}
        with contextlib.suppress(OSError):
            with open(self.haproxy_cfg) as f:
                ev["haproxy_cfg"] = f.read()[:6000]
        with contextlib.suppress(OSError):
            with open(self.ks_log, errors="replace") as f:
                lines = [ln.rstrip() for ln in f if re.search(r"haproxy|reload|error|warn",
                                                             ln, re.I)]
            ev["keepserver_log_haproxy_lines"] = lines[-80:]
        ev["haproxy_processes_now"] = [" ".join(proc_cmdline(p)) for p in haproxy_pids(self.tmp)]
        return ev

    # ---- main

    def run(self):
        cfg = self.cfg
        only = cfg["only"]
        result = {"benchmark": "bench-libra", "machine": machine_info(),
                  "keepserver_binary": self.binary, "keepserver_rev": git_rev(),
                  "gearmand": tool_version(["gearmand", "--version"]),
                  "haproxy": tool_version(["haproxy", "-v"]),
                  "wrk": tool_version(["wrk", "--version"]),
                  "gear": getattr(self.gear, "__version__", None) or gear_version(),
                  "loadavg_start": loadavg(), "config": {
                      k: cfg[k] for k in ("jobs", "window", "client_procs", "concurrency",
                                          "gearmand_threads", "run_timeout", "backends",
                                          "latency_updates", "probe_interval_ms", "consecutive",
                                          "load_updates", "load_gap_ms", "wrk_threads",
                                          "wrk_conns", "control_seconds", "main_concurrency")},
                  "notes": self.notes}
        os.makedirs(self.run_dir, exist_ok=True)
        self.start_gearmand()
        if "a" in only:
            result["a"] = self.bench_a()
        if "b" in only or "c" in only:
            self.set_vip(True)
            self.start_keepserver(cfg["main_concurrency"])
            if self.discover_fields is None:
                self.discover_fields = self.check_discover()
            self.start_backends()
            client = self.new_client("bench-update")
            try:
                if "b" in only:
                    result["b"] = self.bench_b(client)
                if "c" in only:
                    if "b" not in only:
                        cold = self.measure_update(client, self.node_sets()[0])
                        if cold["served_ms"] is None:
                            self.note(f"(c) the first UPDATE did not serve: {cold}")
                    result["c"] = self.bench_c(client)
            finally:
                client.shutdown()
            result["keepserver_rss_kib_end"] = proc_rss_kib(self.ks.pid) if self.ks else None
            result["haproxy_processes_end"] = [" ".join(proc_cmdline(p))
                                               for p in haproxy_pids(self.tmp)]
        if self.ks is not None and not self.ks_alive():
            self.note(f"keepserver exited with status {self.ks.returncode}")
        result["machine"]["loadavg"] = loadavg()
        return result


def gear_version():
    try:
        from importlib import metadata
        return metadata.version("gear")
    except Exception:
        return None


def parse_wrk(text):
    out = {"raw": text}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    if m:
        out["requests"] = int(m.group(1))
        secs = float(m.group(2))
        out["seconds"] = secs * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}.get(m.group(3), 1)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = ({k: int(v) for k, v in zip(("connect", "read", "write", "timeout"),
                                                       m.groups())} if m else
                            {"connect": 0, "read": 0, "write": 0, "timeout": 0})
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", text)
    if m:
        out["latency_avg"], out["latency_stdev"], out["latency_max"] = m.groups()
    out["failed"] = (out["non_2xx_3xx"] + sum(out["socket_errors"].values())
                     if "requests" in out else None)
    return out


def fmt_wrk(w):
    if w.get("requests") is None:
        return "wrk output not understood"
    se = w["socket_errors"]
    return (f"{w['requests']} requests in {w.get('seconds')} s ({w.get('requests_per_s')}/s), "
            f"non-2xx/3xx {w['non_2xx_3xx']}, socket errors connect {se['connect']} read "
            f"{se['read']} write {se['write']} timeout {se['timeout']} -> failed {w['failed']}")


def inner_main(cfg_path):
    set_log_prefix("bench-libra/ns")
    with open(cfg_path) as f:
        cfg = json.load(f)
    return run_bench(lambda cleanup: inner_bench(cfg, cleanup))


def inner_bench(cfg, cleanup):
    signal.alarm(int(inner_time_bound(argparse.Namespace(**cfg))))
    inner = Inner(cfg)
    cleanup.later("stop processes", inner.procs.stop_all)
    result = inner.run()
    with open(os.path.join(cfg["tmp"], "result.json"), "w") as f:
        json.dump(result, f)
    return 0


# ============================================================================================
# Report


def fmt(v, unit=""):
    """A table cell: one decimal."""
    return fmt_cell(v, unit, digits=1)


def table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    out = ["  " + " | ".join(str(h).rjust(w) for h, w in zip(header, widths)),
           "  " + "-+-".join("-" * w for w in widths)]
    for r in rows:
        out.append("  " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)))
    return out


def met(ok):
    return "met" if ok else "NOT met"


def render(res):
    m = res["machine"]
    out = [machine_line(m, res.get("loadavg_start"), m.get("loadavg_end", m.get("loadavg"))),
           f"keepserver: {res['keepserver_binary']} (rev {res['keepserver_rev']}); "
           f"{res.get('gearmand')}; {res.get('haproxy')}; gear {res.get('gear')}; "
           f"python {m['python']}"]
    a = res.get("a")
    if a:
        out += ["", f"(a) DISCOVER jobs/s through one gearmand (-t {a['gearmand_threads']}), "
                f"{a['jobs_per_run']} jobs per run, gear.Client pool, {a['window_per_client']} "
                f"jobs in flight per client process"]
        rows = []
        for who, key in (("keepserver", "keepserver"), ("python gear", "python")):
            for r in a[key]:
                cpu = r["cpu_s"]
                wcpu = cpu.get("keepserver") if key == "keepserver" else cpu.get("python_workers")
                rows.append([who, r["worker_connections"], r["client_procs"],
                             fmt(r["jobs_per_s"]), f"{r['passed']}/{r['jobs']}",
                             fmt(r["seconds"]), fmt(wcpu), fmt(cpu.get("gearmand")),
                             fmt(cpu.get("clients")), fmt(r["cpu_total_pct_of_machine"], "%")])
        out += table(["worker", "conns", "client procs", "jobs/s", "PASS", "s", "worker CPU s",
                      "gearmand CPU s", "clients CPU s", "CPU used"], rows)
        bk, bp = a["best_keepserver"], a["best_python"]
        out.append(f"  best keepserver: {fmt(bk['jobs_per_s'])} jobs/s (libra.concurrency "
                   f"{bk['worker_connections']}, {bk['client_procs']} client procs); best Python "
                   f"gear worker: {fmt(bp['jobs_per_s'])} jobs/s ({bp['worker_connections']} "
                   f"worker procs, {bp['client_procs']} client procs); ratio {fmt(a['ratio'])}x")
        out.append("  best at equal connections (keepserver / python = ratio): " + "; ".join(
            f"{c}: {fmt(v['keepserver'])} / {fmt(v['python'])} = {fmt(v['ratio'])}x"
            for c, v in a["best_by_connections"].items()))
        if a.get("slave_disconnect_s") is not None:
            out.append(f"  keepserver's worker left gearmand {a['slave_disconnect_s']} s after "
                       f"the VIP was removed (SLAVE)")
        out.append(f"  target: >= {TARGET_JOBS_S} jobs/s: {fmt(bk['jobs_per_s'])} -> "
                   f"{met(bk['jobs_per_s'] >= TARGET_JOBS_S)}; >= {TARGET_RATIO:.0f}x the Python "
                   f"worker: {fmt(a['ratio'])}x -> "
                   f"{met(a['ratio'] is not None and a['ratio'] >= TARGET_RATIO)}")
    b = res.get("b")
    if b:
        s, r = b["served_ms"], b["reply_ms"]
        out += ["", f"(b) UPDATE latency, {s['n']}/{len(b['updates'])} UPDATEs served, node "
                f"sets {b['node_sets']} in rotation; a fresh HTTP request every "
                f"{b['probe_interval_ms']} ms, served = first of {b['consecutive']} consecutive "
                f"answers from the new set"]
        out += table(["ms", "min", "p50", "p90", "max", "mean"], [
            ["submit -> HAProxy serves new set", s["min"], s["p50"], s["p90"], s["max"],
             s["mean"]],
            ["submit -> WORK_COMPLETE (reply)", r["min"], r["p50"], r["p90"], r["max"],
             r["mean"]]])
        c = b["cold_start"]
        out.append(f"  cold UPDATE (HAProxy not running yet): served {fmt(c['served_ms'])} ms, "
                   f"reply {fmt(c['reply_ms'])} ms; not served {b['not_served']}, not PASS "
                   f"{b['not_pass']}, served after the reply {b['served_after_reply']}, probes "
                   f"answered by the old set {b['old_set_answers']}, failed probes "
                   f"{b['probe_errors'] or 0}")
        out.append(f"  target: p50 <= {TARGET_UPDATE_P50_MS:.0f} ms: {fmt(s['p50'])} ms -> "
                   f"{met(s['p50'] is not None and s['p50'] <= TARGET_UPDATE_P50_MS)}")
    c = res.get("c")
    if c:
        rows = []
        for label, w in (("control, no UPDATEs", c["control"]),
                         (f"{c['updates']} UPDATEs", c["under_updates"])):
            se = w.get("socket_errors", {})
            rows.append([label, fmt(w.get("requests")), fmt(w.get("seconds")),
                         fmt(w.get("requests_per_s")), w.get("non_2xx_3xx"), se.get("connect"),
                         se.get("read"), se.get("write"), se.get("timeout"), fmt(w.get("failed"))])
        out += ["", f"(c) wrk -t{c['wrk_threads']} -c{c['wrk_conns']} through HAProxy while "
                f"UPDATEs change the node set ({c['updates_pass']}/{c['updates']} PASS, reply "
                f"p50 {c['update_reply_ms']['p50']} ms, max {c['update_reply_ms']['max']} ms; "
                f"{c['haproxy_pids_seen']} HAProxy pids seen)"]
        out += table(["run", "requests", "s", "req/s", "non-2xx/3xx", "connect", "read", "write",
                      "timeout", "FAILED"], rows)
        f = c.get("failed_requests")
        out.append(f"  target: failed requests = {TARGET_FAILED}: {fmt(f)} -> "
                   f"{met(f == TARGET_FAILED)}")
    if res.get("notes"):
        out += ["", "notes:"] + ["  - " + n for n in res["notes"]]
    return "\n".join(out)


# ============================================================================================
# Main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", help="keepserver binary to use (default: cargo build --release)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object on stdout (the table goes to stderr)")
    p.add_argument("--only", default="a,b,c", help="benchmarks to run: any of a,b,c (default all)")
    p.add_argument("--logs", metavar="DIR", help="copy configs and logs into DIR at the end")
    p.add_argument("--gear-site", metavar="DIR",
                   help="a directory holding the gear package (skips pip install)")
    g = p.add_argument_group("(a) DISCOVER throughput")
    g.add_argument("--jobs", type=int, default=20000, help="jobs per run (default 20000)")
    g.add_argument("--window", type=int, default=64,
                   help="jobs in flight per client process (default 64)")
    g.add_argument("--client-procs", type=int_list, default=[1, 2, 3, 4],
                   help="client pool sizes to try (default 1,2,3,4)")
    g.add_argument("--concurrency", type=int_list, default=[1, 2, 4, 8],
                   help="keepserver libra.concurrency values, and Python worker process counts, "
                        "to try (default 1,2,4,8)")
    g.add_argument("--python-nagle", action="store_true",
                   help="leave Nagle on in the Python workers, as gear ships (default: they set "
                        "TCP_NODELAY, as keepserver does, so the comparison is with their best)")
    g.add_argument("--gearmand-threads", type=int, default=4, help="gearmand -t (default 4)")
    g.add_argument("--run-timeout", type=float, default=60.0,
                   help="seconds one run may take (default 60)")
    g = p.add_argument_group("(b) UPDATE latency")
    g.add_argument("--main-concurrency", type=int, default=4,
                   help="libra.concurrency for (b) and (c) (default 4)")
    g.add_argument("--backends", type=int, default=6, help="HTTP backends (default 6, >= 2)")
    g.add_argument("--latency-updates", type=int, default=30, help="UPDATEs to time (default 30)")
    g.add_argument("--latency-gap-ms", type=float, default=200.0,
                   help="pause after each timed UPDATE (default 200)")
    g.add_argument("--probe-interval-ms", type=float, default=2.0,
                   help="one HTTP probe every this many ms (default 2)")
    g.add_argument("--consecutive", type=int, default=5,
                   help="answers from the new set in a row that count as served (default 5)")
    g = p.add_argument_group("(c) UPDATEs under load")
    g.add_argument("--load-updates", type=int, default=50, help="UPDATEs under wrk (default 50)")
    g.add_argument("--load-gap-ms", type=float, default=100.0,
                   help="pause after each UPDATE's reply (default 100)")
    g.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    g.add_argument("--wrk-conns", type=int, default=32, help="wrk -c (default 32)")
    g.add_argument("--control-seconds", type=int, default=5,
                   help="wrk run without UPDATEs first (default 5 s)")
    p.add_argument("--inner", metavar="CONFIG", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.inner:
        return a
    a.only = sorted({x.strip() for x in a.only.split(",") if x.strip()})
    if not a.only or any(x not in ("a", "b", "c") for x in a.only):
        p.error("--only takes a comma-separated subset of a,b,c")
    if a.backends < 2:
        p.error("--backends must be >= 2")
    if a.jobs < 1 or a.window < 1 or a.latency_updates < 1 or a.load_updates < 1:
        p.error("--jobs, --window, --latency-updates and --load-updates must be >= 1")
    if not 1 <= a.main_concurrency <= 64 or any(c > 64 for c in a.concurrency):
        p.error("libra.concurrency must be 1 to 64")
    return a


def main():
    args = parse_args()
    set_log_prefix("bench-libra")
    if args.inner:
        return inner_main(args.inner)
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
