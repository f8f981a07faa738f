#!/usr/bin/env python3
"""Soak benchmark for keepserver: one daemon through 10,000 VIP toggles, 10,000 Libra jobs and
1,000 reloads, watched for role-detection latency, memory and fd growth, hook overlap, failed
jobs, failed reloads and netlink overruns.

What it does (Python 3 standard library, plus the ``gear`` Gearman library, installed with pip
into the temp dir if ``import gear`` fails; run as root: it creates a network namespace). It
reuses bench-role.py (the hook FIFO reader and the ``ip -batch`` toggler, so latency is measured
the same way) and bench-libra.py (gearmand helpers, the gear client, the clean-up sweep):

1. Builds keepserver with ``cargo build --release`` (unless ``--binary``).
2. Creates a temp dir and a network namespace holding ``lo`` and a veth pair ``ksb0``/``ksb1``
   (both ends inside it, up); the VIP is 192.0.2.10/24 (TEST-NET-1) on ``ksb0``. Everything runs
   inside the namespace (the script re-runs itself there with ``ip netns exec``), on its loopback.
3. Starts gearmand and ONE keepserver (``sleep: 2``, so the NIC is re-listed every 2 s; Libra
   worker on, 2 connections; HAProxy not following the role; logging to stdout and to a
   ``RotatingFileHandler`` of 1 MiB x 2, so the log file rolls over during the run). Its start and
   stop hooks are one shell script that writes ``B KIND PID`` to a FIFO the script reads, then
   ``begin KIND PID TIME`` and ``end KIND PID TIME`` (``date +%s.%N``) to a marks file, then
   ``E KIND PID`` to the FIFO.
4. Warm-up: adds the VIP (MASTER), runs a few jobs of every kind and 2 reloads, removes the VIP
   (SLAVE, worker gone), and samples the daemon's VmRSS and open fds: the start figures.
5. Then, at the same time:
   - this process toggles the VIP ``--toggles`` times (alternating add/del through one
     ``ip -force -batch -`` process; t0 = right before the line is written, as in bench-role.py).
     After each toggle it waits for the hook's ``B`` line (latency = its arrival - t0; none
     within 10 s = a miss), then pauses U[0.02, 0.12] s. Every ``toggles/50`` toggles it samples
     VmRSS and the fd count;
   - a child process submits ``--jobs`` Libra jobs one after the other through gearmand with a
     ``gear.Client``: UPDATE, STATS, SUSPEND, ENABLE and DELETE chosen from a model of the
     load balancer's state so each should PASS, and ~10% bad jobs that must FAIL (not JSON,
     an unknown action, a port 0, a control character in a node id, no nodes, STATS or ENABLE
     with no load balancer). The worker follows the role, so jobs wait in gearmand while SLAVE.
     A job that should PASS and did not (FAIL, no reply within 60 s) is counted;
   - a child process runs ``keepserver reload`` ``--reloads`` times, spread over the toggling
     time, each after rewriting the config (``hook-timeout`` 30 / 31 alternately); a reload
     succeeds when the command exits 0 (it waits for the daemon to confirm).
   If the jobs or reloads are not done when the toggles are, the VIP is put back (uncounted)
   until they are. Then the VIP is removed, the daemon settles as SLAVE and the end figures are
   sampled.
6. Checks: every hook's begin/end markers in order and by time (no two hooks overlap, none left
   open), misses, the daemon alive throughout, netlink overruns (lines of the daemon's log that
   mention one), lines the daemon's log sinks lost (``status``).
7. Reports: toggles p50/p99/max latency (nearest rank), the 10 slowest with what was happening
   at t0 (a hook in flight and for how long, a reload or job in flight, the daemon's log lines
   in the window), jobs ok / failed / should-pass-but-failed per action, reloads ok / failed,
   VmRSS start / end / growth / peak, fds start / end / max, overlaps, overruns, run time, the
   machine and its load average.

Everything created (namespace, processes, temp dir) is removed at the end, also on failure,
Ctrl-C or SIGTERM. The exit status is non-zero only if the benchmark could not run; targets
(RSS growth <= 1 MiB, fds constant, no overlap, no should-pass job failed, every reload ok) are
reported, not asserted.

Usage: scripts/bench-soak.py [--toggles 10000] [--jobs 10000] [--reloads 1000] [--seed N]
           [--binary PATH] [--gear-site DIR] [--logs DIR] [--json]
Quick run: scripts/bench-soak.py --toggles 500 --jobs 500 --reloads 50
"""

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (CannotRun, _r, add_netns, build, copy_logs, fmt, git_rev,  # noqa: E402
                      loadavg, log, machine_info, machine_line, nearest_rank,
                      proc_status_kib, run, run_bench, run_inner, set_log_prefix, tail,
                      tool_version)


def _load(filename):
    """Imports a sibling benchmark script (its name has a dash) as a module."""
    spec = importlib.util.spec_from_file_location(filename[:-3].replace("-", "_"),
                                                  os.path.join(HERE, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role = _load("bench-role.py")
libra = _load("bench-libra.py")

NIC = role.NIC
PEER = role.PEER
VIP = role.VIP
PREFIX_LEN = role.PREFIX_LEN
GEAR_HOST = libra.GEAR_HOST
GEAR_PORT = libra.GEAR_PORT
QUEUE = "lbaas-soak"
CONCURRENCY = 2
FRONTEND_PORT = 8080
SLEEP_S = 2
PAUSE_S = (0.02, 0.12)
HOOK_WAIT_S = 10.0
JOB_TIMEOUT_S = 60.0
LOG_MAX_BYTES = 1 << 20
SLOWEST = 10
TARGET_RSS_GROWTH_KIB = 1024
SCRIPT = os.path.abspath(__file__)


# ============================================================================================
# Outer part: build, gear, namespace, clean-up


def outer(args):
    return run_bench(lambda cleanup: outer_bench(args, cleanup))


def outer_bench(args, cleanup):
    later = cleanup.later
    for tool in ("ip", "gearmand", "haproxy", "date"):
        if not shutil.which(tool):
            raise CannotRun(f"{tool} not found in PATH")
    binary = build(args.binary)
    tmp = tempfile.mkdtemp(prefix="ksbench-soak-")
    later("remove temp dir", shutil.rmtree, tmp, True)
    site = libra.gear_path(tmp, args)
    ns = f"ksbench-soak-{os.getpid()}"
    add_netns(cleanup, ns, NIC, PEER)
    later("stop what is left", libra.sweep, ns, tmp)
    if args.logs:
        later("copy logs", copy_logs, tmp, os.path.abspath(args.logs))
    log(f"namespace {ns}: lo, veth {NIC}<->{PEER} up, VIP {VIP}/{PREFIX_LEN} absent")

    cfg = dict(vars(args), tmp=tmp, ns=ns, binary=binary, gear_site=site)
    return run_inner(ns, SCRIPT, cfg, site, later, time_bound(args), render, args.json)


def time_bound(args):
    """Seconds the inner part may take at most (a watchdog, far above what a run takes)."""
    return 180 + args.toggles * (PAUSE_S[1] + 0.5) + args.jobs * 1.0 + args.reloads * 2.0


# ============================================================================================
# Inner part (runs inside the namespace)


HOOK_SCRIPT = """#!/bin/sh
# keepserver's start/stop hook for bench-soak.py: $1 is start or stop.
echo "B $1 $$" >> {fifo}
echo "begin $1 $$ $(date +%s.%N)" >> {marks}
echo "end $1 $$ $(date +%s.%N)" >> {marks}
echo "E $1 $$" >> {fifo}
"""


def write_config(path, tmp, ws, hook, hook_timeout):
    """keepserver's config; written whole beside `path`, then renamed over it."""
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    text = "\n".join([
        "application:",
        "  daemon: false",
        f"  workspace: {q(ws)}",
        "keepstart:",
        f"  nic: {NIC}",
        f"  vip: {VIP}",
        f"  start: {q(hook + ' start')}",
        f"  stop: {q(hook + ' stop')}",
        f"  sleep: {SLEEP_S}",
        "  running-report-cycle: 30",
        f"  hook-timeout: {hook_timeout}",
        "libra:",
        "  enabled: true",
        f"  servers: [{q(f'{GEAR_HOST}:{GEAR_PORT}')}]",
        f"  queue: {QUEUE}",
        f"  concurrency: {CONCURRENCY}",
        "  haproxy:",
        f"    config: {q(os.path.join(tmp, 'haproxy.cfg'))}",
        "    binary: haproxy",
        "    bind: 127.0.0.1",
        f"    runtime-dir: {q(os.path.join(tmp, 'run'))}",
        "logging:",
        "  version: 1",
        "  formatters:",
        "    simple:",
        "      format: \"%(asctime)s %(levelname)s %(message)s\"",
        "  handlers:",
        "    console:",
        "      class: logging.StreamHandler",
        "      formatter: simple",
        "      stream: ext://sys.stdout",
        "    file:",
        "      class: logging.handlers.RotatingFileHandler",
        "      formatter: simple",
        f"      filename: {q(os.path.join(tmp, 'keepserver-file.log'))}",
        f"      maxBytes: {LOG_MAX_BYTES}",
        "      backupCount: 2",
        "  root:",
        "    level: INFO",
        "    handlers: [console, file]",
        "",
    ])
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# Libra jobs (a child process)


def update(rng):
    nodes = [{"id": f"n{i}", "address": "127.0.0.1", "port": str(9001 + i)}
             for i in sorted(rng.sample(range(6), rng.randint(1, 3)))]
    return {"hpcs_action": "UPDATE", "loadbalancers": [{
        "protocol": "HTTP", "port": str(FRONTEND_PORT), "nodes": nodes}]}


def bad_job(rng, state):
    """A job that must FAIL: (label, payload bytes)."""
    kinds = ["not JSON", "unknown action", "port 0", "control character", "no nodes"]
    if state == "none":
        kinds += ["STATS, no LB", "ENABLE, no LB"]
    kind = rng.choice(kinds)
    if kind == "not JSON":
        return kind, b'{"hpcs_action": "UPDATE", '
    if kind == "unknown action":
        return kind, b'{"hpcs_action": "FROBNICATE"}'
    job = update(rng)
    lb = job["loadbalancers"][0]
    if kind == "port 0":
        lb["port"] = "0"
    elif kind == "control character":
        lb["nodes"][0]["id"] = "n\nx"
    elif kind == "no nodes":
        lb["nodes"] = []
    elif kind == "STATS, no LB":
        job = {"hpcs_action": "STATS"}
    else:
        job = {"hpcs_action": "ENABLE"}
    return kind, json.dumps(job).encode()


def next_job(rng, state):
    """(action label, payload, should pass, state after) from the load balancer's state: none
    (deleted or never made), serving, suspended."""
    if rng.random() < 0.10:
        label, payload = bad_job(rng, state)
        return label, payload, False, state
    r = rng.random()
    if state == "none":
        action = "UPDATE"
    elif state == "suspended":
        action = "ENABLE" if r < 0.8 else "DELETE"
    else:
        action = ("UPDATE" if r < 0.45 else "STATS" if r < 0.80 else "SUSPEND" if r < 0.90
                  else "DELETE")
    after = {"UPDATE": "serving", "ENABLE": "serving", "STATS": state, "SUSPEND": "suspended",
             "DELETE": "none"}[action]
    payload = update(rng) if action == "UPDATE" else {"hpcs_action": action}
    return action, json.dumps(payload).encode(), True, after


WARMUP_JOBS = ["UPDATE", "STATS", "SUSPEND", "ENABLE", "STATS", "DELETE", "UPDATE"]


def jobs_proc(n, seed, go, q, result_path):
    """Submits n jobs one after the other (after a warm-up) and writes what came back."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    client = None
    try:
        import gear
        client = libra.make_client_class(gear)("bench-soak")
        client.addServer(GEAR_HOST, GEAR_PORT)
        client.waitForServer(10)
        rng = random.Random(seed)

        def submit(payload):
            job = gear.Job(QUEUE.encode(), payload)
            job.t_done = None
            with client.cv:
                client.sent += 1
            t0 = time.monotonic_ns()
            client.submitJob(job, timeout=10)
            deadline = time.monotonic() + JOB_TIMEOUT_S
            with client.cv:
                while job.t_done is None and time.monotonic() < deadline:
                    client.cv.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            t1 = time.monotonic_ns()
            if job.t_done is None:
                return t0, t1, "no reply", None
            data = b"".join(job.data)
            if job.failure:
                return t0, t1, "WORK_FAIL", None
            try:
                reply = json.loads(data)
            except ValueError:
                return t0, t1, "reply not JSON", data[:200].decode(errors="replace")
            return t0, t1, reply.get("hpcs_response"), reply.get("hpcs_error")

        warm = []
        for action in WARMUP_JOBS:
            payload = update(rng) if action == "UPDATE" else {"hpcs_action": action}
            _, _, got, err = submit(json.dumps(payload).encode())
            warm.append((action, got, err))
        q.put(("warm", warm))
        if not go.wait(600):
            q.put(("error", "no go signal within 600 s"))
            return
        state = "none"
        jobs = []
        for _ in range(n):
            action, payload, should_pass, after = next_job(rng, state)
            t0, t1, got, err = submit(payload)
            jobs.append([action, should_pass, got, err, t0, t1])
            if got == "PASS" or not should_pass:
                state = after
            elif got == "no reply":
                break  # the state is unknown from here; the rest would mean nothing
        with open(result_path, "w") as f:
            json.dump(jobs, f)
        q.put(("done", len(jobs)))
    except BaseException as e:  # report, never hang the parent
        q.put(("error", repr(e)))
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


# --------------------------------------------------------------------------------------------
# Reloads (a child process)


def reloads_proc(cfg, n, warm_n, mean_gap_s, go, q, result_path, cfg_args):
    """Rewrites the config and runs `keepserver reload`: warm_n times, then n times after go."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        rng = random.Random(cfg["seed"] + 1)
        argv = [cfg["binary"], "-c", cfg_args[0], "reload"]
        out = []

        def one(i):
            write_config(*cfg_args, hook_timeout=30 + i % 2)
            t0 = time.monotonic_ns()
            try:
                r = run(argv, timeout=30, check=False)
                ok, msg = r.returncode == 0, (r.stdout + r.stderr).strip()[-300:]
            except subprocess.TimeoutExpired:
                ok, msg = False, "keepserver reload did not return within 30 s"
            return [t0, time.monotonic_ns(), ok, msg]

        warm = [one(i + 1) for i in range(warm_n)]
        q.put(("warm", [(ok, msg) for _, _, ok, msg in warm]))
        if not go.wait(600):
            q.put(("error", "no go signal within 600 s"))
            return
        for i in range(n):
            out.append(one(i))
            time.sleep(rng.uniform(0.5, 1.5) * mean_gap_s)
        with open(result_path, "w") as f:
            json.dump(out, f)
        q.put(("done", len(out)))
    except BaseException as e:
        q.put(("error", repr(e)))


# --------------------------------------------------------------------------------------------
# The inner benchmark


class Soak:
    def __init__(self, cfg, cleanup):
        self.cfg = cfg
        self.cleanup = cleanup
        self.tmp = cfg["tmp"]
        self.ns = cfg["ns"]
        self.binary = cfg["binary"]
        self.procs = libra.Procs()
        cleanup.later("stop processes", self.procs.stop_all)
        self.mp = multiprocessing.get_context("fork")
        self.notes = []
        self.ws = os.path.join(self.tmp, "ws")
        os.makedirs(self.ws)
        os.makedirs(os.path.join(self.tmp, "run"))
        self.config = os.path.join(self.tmp, "config.yaml")
        self.ks_log = os.path.join(self.tmp, "keepserver.log")
        self.marks = os.path.join(self.tmp, "marks.out")
        self.hook = os.path.join(self.ws, "hook.sh")
        self.ks = None
        self.lines = role.Lines()
        cleanup.later("close FIFOs", self.lines.close)
        self.hook_open = None  # (kind, t_ns) of the hook whose B came and E not yet
        self.seen = 0  # events tracked by track()

    def note(self, msg):
        self.notes.append(msg)
        log("NOTE: " + msg)

    def die(self, msg):
        raise CannotRun(msg + f"\n--- last lines of keepserver's output ---\n{tail(self.ks_log)}")

    # ---- set-up

    def start(self):
        gl = os.path.join(self.tmp, "gearmand.log")
        gm = self.procs.popen("gearmand", [
            "gearmand", "--listen", GEAR_HOST, "--port", str(GEAR_PORT), "--log-file", gl,
            "--pid-file", os.path.join(self.tmp, "gearmand.pid"), "-t", "2"],
            os.path.join(self.tmp, "gearmand.out"))
        if not libra.wait_port(GEAR_PORT, 10, lambda: gm.poll() is None):
            raise CannotRun("gearmand did not listen within 10 s:\n" + tail(gl))
        fifo = os.path.join(self.tmp, "hook.fifo")
        self.lines.add_fifo("hook", fifo)
        with open(self.hook, "w") as f:
            f.write(HOOK_SCRIPT.format(fifo=shlex.quote(fifo), marks=shlex.quote(self.marks)))
        os.chmod(self.hook, 0o755)
        self.cfg_args = (self.config, self.tmp, self.ws, self.hook)
        write_config(*self.cfg_args, hook_timeout=30)
        self.ks = self.procs.popen("keepserver", [self.binary, "-c", self.config, "start"],
                                   self.ks_log, cwd=self.ws)
        deadline = time.monotonic() + 15
        st = None
        while time.monotonic() < deadline:
            if not self.alive():
                self.die(f"keepserver exited with status {self.ks.returncode} at start-up")
            st = self.status()
            if st and st.get("role") == "SLAVE":
                break
            self.lines.wait_for(None, 0.1)
        else:
            self.die(f"keepserver did not report SLAVE within 15 s (last status: {st})")
        self.pid = st.get("pid") or self.ks.pid
        self.toggler = role.Toggler(self.ns, self.lines)
        self.cleanup.later("stop ip -batch", self.toggler.close)
        log(f"gearmand and keepserver (pid {self.pid}) up; keepserver is SLAVE")

    def alive(self):
        return self.ks is not None and self.ks.poll() is None

    def status(self):
        return role.keepserver_status(self.binary, self.ns, self.config)

    # ---- hooks

    def track(self):
        """Follows the hook's B/E lines: which hook is in flight."""
        evs = self.lines.events
        while self.seen < len(evs):
            t, src, line = evs[self.seen]
            self.seen += 1
            if src != "hook":
                continue
            word, _, rest = line.partition(" ")
            if word == "B":
                self.hook_open = (rest.split(" ")[0], t)
            elif word == "E":
                self.hook_open = None

    def toggle(self, add):
        """One VIP change: (t0_ns, wall, latency ms or None, hook in flight at t0)."""
        self.track()
        in_flight = self.hook_open
        want = "B " + ("start" if add else "stop") + " "
        mark = len(self.lines.events)
        t0 = self.toggler.apply(add)
        wall = time.time()
        evs = self.lines.events

        def seen():
            return any(s == "hook" and w.startswith(want) for _, s, w in evs[mark:])

        lat = None
        if self.lines.wait_for(seen, HOOK_WAIT_S):
            t = next(t for t, s, w in evs[mark:] if s == "hook" and w.startswith(want))
            lat = (t - t0) / 1e6
        return t0, wall, lat, in_flight

    def settle(self, role_want, timeout=15):
        """Waits until status says role_want, no hook in flight and, on SLAVE, no worker."""
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.status()
            workers = libra.gear_function_status(QUEUE)
            if (st and st.get("role") == role_want and not st.get("hook_in_flight")
                    and (role_want == "MASTER" or (workers is not None and workers[2] == 0))):
                self.lines.wait_for(None, 0.3)
                return st
            self.lines.wait_for(None, 0.1)
        self.note(f"keepserver did not settle as {role_want} within {timeout} s: {st}")
        return st

    def sample(self, label, i):
        kib = proc_status_kib(self.pid, ("VmRSS", "VmHWM"))
        return {"at": label, "toggle": i, "t": round(time.monotonic(), 3),
                "rss_kib": kib.get("VmRSS"), "hwm_kib": kib.get("VmHWM"),
                "fds": proc_fds(self.pid), "load": loadavg()}

    # ---- the run

    def children(self, args_reload_gap):
        c = self.cfg
        self.jobs_q, self.reload_q = self.mp.Queue(), self.mp.Queue()
        self.go = self.mp.Event()
        self.jobs_path = os.path.join(self.tmp, "jobs.json")
        self.reloads_path = os.path.join(self.tmp, "reloads.json")
        jp = self.mp.Process(target=jobs_proc, name="jobs", daemon=True, args=(
            c["jobs"], c["seed"], self.go, self.jobs_q, self.jobs_path))
        rp = self.mp.Process(target=reloads_proc, name="reloads", daemon=True, args=(
            c, c["reloads"], 2, args_reload_gap, self.go, self.reload_q, self.reloads_path,
            self.cfg_args))
        for name, p in (("jobs", jp), ("reloads", rp)):
            p.start()
            self.procs.process(name, p)
        return jp, rp

    def wait_msg(self, q, kind, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                k, val = q.get(timeout=0.05)
                if k == kind:
                    return val
                if k == "error":
                    self.die(f"{what}: {val}")
            self.lines.wait_for(None, 0.0)
            if not self.alive():
                self.die(f"keepserver exited with status {self.ks.returncode}")
        self.die(f"{what}: nothing within {timeout} s")

    def run(self):
        cfg = self.cfg
        self.start()
        est_s = cfg["toggles"] * (sum(PAUSE_S) / 2 + 0.012)
        jp, rp = self.children(est_s / max(1, cfg["reloads"]))

        # Warm-up: MASTER, a few jobs of each kind and 2 reloads, then SLAVE.
        _, _, lat, _ = self.toggle(True)
        if lat is None:
            self.die("warm-up: no start hook within 10 s of the VIP being added")
        ok, secs, last = libra.wait_workers(QUEUE, CONCURRENCY, 20, self.alive)
        if not ok:
            self.die(f"warm-up: the Libra worker did not register within 20 s ({last})")
        warm_jobs = self.wait_msg(self.jobs_q, "warm", 120, "warm-up jobs")
        warm_reloads = self.wait_msg(self.reload_q, "warm", 120, "warm-up reloads")
        bad = [j for j in warm_jobs if j[1] != "PASS"] + [r for r in warm_reloads if not r[0]]
        if bad:
            self.die(f"warm-up: jobs or reloads did not pass: {bad}")
        _, _, lat, _ = self.toggle(False)
        if lat is None:
            self.die("warm-up: no stop hook within 10 s of the VIP being removed")
        self.settle("SLAVE")
        log(f"warm-up done: start/stop hooks, {len(warm_jobs)} jobs PASS, "
            f"{len(warm_reloads)} reloads ok")
        samples = [self.sample("start", 0)]
        marks_from = os.path.getsize(self.marks) if os.path.exists(self.marks) else 0
        load_start = loadavg()

        # Measured run.
        rng = random.Random(cfg["seed"])
        n = cfg["toggles"]
        every = max(1, n // 50)
        toggles = []
        t_start = time.monotonic()
        self.go.set()
        log(f"measuring: {n} toggles, {cfg['jobs']} jobs, {cfg['reloads']} reloads "
            f"(toggles ~{est_s:.0f} s)")
        for i in range(n):
            add = i % 2 == 0
            t0, wall, lat, in_flight = self.toggle(add)
            toggles.append({"i": i, "add": add, "t0": t0, "wall": wall,
                            "ms": None if lat is None else round(lat, 3),
                            "in_flight": None if in_flight is None else
                            [in_flight[0], round((t0 - in_flight[1]) / 1e6, 3)]})
            self.lines.pump(time.monotonic_ns() + int(rng.uniform(*PAUSE_S) * 1e9))
            if not self.alive():
                self.die(f"keepserver exited with status {self.ks.returncode} during the run")
            if not self.toggler.batch_alive():
                self.die("ip -batch exited during the run")
            if (i + 1) % every == 0:
                samples.append(self.sample("run", i + 1))
                done = [p.name for p in (jp, rp) if not p.is_alive()]
                log(f"  {i + 1}/{n} toggles; RSS {samples[-1]['rss_kib']} KiB, fds "
                    f"{samples[-1]['fds']}, load {samples[-1]['load']}"
                    + (f"; {', '.join(done)} done" if done else ""))
        t_toggles = time.monotonic() - t_start

        # The jobs and reloads finish with the VIP present (uncounted), then SLAVE again.
        extra_master = None
        if jp.is_alive() or rp.is_alive():
            t_extra = time.monotonic()
            self.toggle(True)
            log("toggles done; VIP present (uncounted) until the jobs and reloads are done")
            while jp.is_alive() or rp.is_alive():
                self.lines.wait_for(None, 0.5)
                if not self.alive():
                    self.die(f"keepserver exited with status {self.ks.returncode}")
                if time.monotonic() - t_extra > cfg["jobs"] * 2 + 600:
                    self.die("the jobs or reloads did not finish")
            extra_master = round(time.monotonic() - t_extra, 1)
            self.toggle(False)
        jobs_done = self.wait_msg(self.jobs_q, "done", 30, "jobs")
        reloads_done = self.wait_msg(self.reload_q, "done", 30, "reloads")
        t_all = time.monotonic() - t_start
        st_end = self.settle("SLAVE")
        samples.append(self.sample("end", n))
        load_end = loadavg()
        self.toggler.close()

        with open(self.jobs_path) as f:
            jobs = json.load(f)
        with open(self.reloads_path) as f:
            reloads = json.load(f)
        if jobs_done != cfg["jobs"]:
            self.note(f"only {jobs_done} of {cfg['jobs']} jobs ran: one got no reply within "
                      f"{JOB_TIMEOUT_S} s, so the load balancer's state was unknown after it")
        return self.analyse(toggles, jobs, reloads, samples, marks_from, st_end, {
            "load_start": load_start, "load_end": load_end, "toggle_s": round(t_toggles, 1),
            "run_s": round(t_all, 1), "extra_master_s": extra_master,
            "reloads_done": reloads_done})

    # ---- analysis

    def analyse(self, toggles, jobs, reloads, samples, marks_from, st_end, times):
        cfg = self.cfg
        lat = sorted(t["ms"] for t in toggles if t["ms"] is not None)
        misses = [t["i"] for t in toggles if t["ms"] is None]
        slow = sorted((t for t in toggles if t["ms"] is not None), key=lambda t: -t["ms"])
        log_lines = read_log_lines(self.ks_log)
        slowest = [self.explain(t, jobs, reloads, log_lines) for t in slow[:SLOWEST]]
        in_flight = [t["ms"] for t in toggles if t["in_flight"] and t["ms"] is not None]

        by_action = {}
        spf = []
        for action, should_pass, got, err, t0, t1 in jobs:
            a = by_action.setdefault(action, {"n": 0, "pass": 0, "fail": 0, "other": 0,
                                              "should_pass": should_pass})
            a["n"] += 1
            key = "pass" if got == "PASS" else "fail" if got == "FAIL" else "other"
            a[key] += 1
            if should_pass and got != "PASS":
                spf.append({"action": action, "got": got, "error": err})
        bad_passed = [a for a, v in by_action.items() if not v["should_pass"] and v["pass"]]
        job_ms = sorted((t1 - t0) / 1e6 for *_, t0, t1 in jobs)
        rel_ok = sum(1 for r in reloads if r[2])
        rel_failed = [r[3] for r in reloads if not r[2]]
        rel_ms = sorted((r[1] - r[0]) / 1e6 for r in reloads)

        overlaps, open_hooks, hooks = check_marks(self.marks, marks_from)
        overruns = [ln for ln in log_lines if "overrun" in ln[1].lower()]
        start, end = samples[0], samples[-1]
        rss_growth = (None if start["rss_kib"] is None or end["rss_kib"] is None
                      else end["rss_kib"] - start["rss_kib"])
        fds_run = [s["fds"] for s in samples if s["fds"] is not None]
        lost = (st_end or {}).get("log_lines_lost")
        if not (st_end or {}).get("reloads"):
            self.note(f"status at the end: {st_end}")
        m = machine_info()
        return {
            "benchmark": "bench-soak", "machine": m, "keepserver_binary": self.binary,
            "keepserver_rev": git_rev(), "gearmand": tool_version(["gearmand", "--version"]),
            "haproxy": tool_version(["haproxy", "-v"]),
            "config": {k: cfg[k] for k in ("toggles", "jobs", "reloads", "seed")},
            "pause_s": list(PAUSE_S), "sleep_s": SLEEP_S, "times": times,
            "toggles": {
                "n": len(toggles), "caught": len(lat), "misses": len(misses),
                "missed": misses[:20],
                "ms": {"min": _r(lat[0] if lat else None), "p50": _r(nearest_rank(lat, 50)),
                       "p90": _r(nearest_rank(lat, 90)), "p99": _r(nearest_rank(lat, 99)),
                       "max": _r(lat[-1] if lat else None)},
                "with_hook_in_flight": len(in_flight),
                "with_hook_in_flight_max_ms": _r(max(in_flight) if in_flight else None),
                "slowest": slowest,
            },
            "jobs": {"n": len(jobs), "by_action": by_action,
                     "ok": sum(1 for j in jobs if j[2] == "PASS" and j[1]),
                     "failed_as_expected": sum(1 for j in jobs if j[2] != "PASS" and not j[1]),
                     "should_pass_but_failed": len(spf), "spf_examples": spf[:5],
                     "bad_but_passed": bad_passed,
                     "ms": {"p50": _r(nearest_rank(job_ms, 50)),
                            "p99": _r(nearest_rank(job_ms, 99)),
                            "max": _r(job_ms[-1] if job_ms else None)}},
            "reloads": {"n": len(reloads), "ok": rel_ok, "failed": len(rel_failed),
                        "failed_examples": rel_failed[:5],
                        "daemon_count": (st_end or {}).get("reloads"),
                        "ms": {"p50": _r(nearest_rank(rel_ms, 50)),
                               "max": _r(rel_ms[-1] if rel_ms else None)}},
            "memory": {"rss_start_kib": start["rss_kib"], "rss_end_kib": end["rss_kib"],
                       "rss_growth_kib": rss_growth, "hwm_end_kib": end["hwm_kib"],
                       "rss_max_kib": max((s["rss_kib"] or 0) for s in samples),
                       "fds_start": start["fds"], "fds_end": end["fds"],
                       "fds_max": max(fds_run) if fds_run else None},
            "samples": samples,
            "hooks": {"begun": hooks, "overlaps": overlaps[:10], "overlap_count": len(overlaps),
                      "left_open": open_hooks},
            "overruns": {"count": len(overruns), "lines": [ln[1] for ln in overruns[:5]]},
            "log_lines_lost": lost,
            "status_end": {k: (st_end or {}).get(k) for k in
                           ("role", "running", "transitions", "reloads", "hooks",
                            "consecutive_failures", "log_sinks")},
            "notes": self.notes,
        }

    def explain(self, t, jobs, reloads, log_lines):
        """What was happening around a slow toggle."""
        t0 = t["t0"]
        t1 = t0 + int(t["ms"] * 1e6)
        job = [j[0] for j in jobs if j[4] <= t1 and j[5] >= t0 - 1_000_000]
        rel = [round((r[0] - t0) / 1e6, 1) for r in reloads if r[0] <= t1 and r[1] >= t0]
        w0, w1 = t["wall"] - 0.002, t["wall"] + t["ms"] / 1e3 + 0.002
        lines = [ln[1][:160] for ln in log_lines if w0 <= ln[0] <= w1]
        return {"i": t["i"], "kind": "add" if t["add"] else "del", "ms": t["ms"],
                "wall": t["wall"], "hook_in_flight": t["in_flight"], "jobs_in_flight": job,
                "reloads_in_flight_ms": rel, "log": lines[:6]}


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def read_log_lines(path):
    """The daemon's log lines as (wall time, line), for lines with a timestamp."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = LOG_TIME.match(line)
                if m:
                    t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
                    out.append((t + int(m.group(2)) / 1000, line.rstrip("\n")))
    except OSError:
        pass
    return out


def check_marks(path, offset):
    """Hook overlaps in the marks file from `offset`: (overlaps, hooks left open, hooks begun).
    Two hooks overlap when one begins before the other has ended, by the file's order or by the
    time stamps."""
    overlaps = []
    begun = 0
    open_hook = None  # (kind, pid, t)
    last_end = None
    try:
        with open(path) as f:
            f.seek(offset)
            text = f.read()
    except OSError:
        return [], None, 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            overlaps.append(f"unreadable marker {line!r}")
            continue
        what, kind, pid, t = parts[0], parts[1], parts[2], float(parts[3])
        if what == "begin":
            begun += 1
            if open_hook is not None:
                overlaps.append(f"{kind} pid {pid} began at {t:.6f} while {open_hook[0]} pid "
                                f"{open_hook[1]} (begun {open_hook[2]:.6f}) had not ended")
            elif last_end is not None and t < last_end[2]:
                overlaps.append(f"{kind} pid {pid} began at {t:.6f}, before {last_end[0]} pid "
                                f"{last_end[1]} ended at {last_end[2]:.6f}")
            open_hook = (kind, pid, t)
        elif what == "end":
            if open_hook is None or open_hook[1] != pid:
                overlaps.append(f"end of {kind} pid {pid} without its begin")
            open_hook = None
            last_end = (kind, pid, t)
    left = None if open_hook is None else f"{open_hook[0]} pid {open_hook[1]}"
    return overlaps, left, begun


def inner_main(cfg_path):
    set_log_prefix("bench-soak/ns")
    with open(cfg_path) as f:
        cfg = json.load(f)
    return run_bench(lambda cleanup: inner_bench(cfg, cleanup))


def inner_bench(cfg, cleanup):
    signal.alarm(int(time_bound(argparse.Namespace(**cfg))))
    result = Soak(cfg, cleanup).run()
    with open(os.path.join(cfg["tmp"], "result.json"), "w") as f:
        json.dump(result, f)
    return 0


# ============================================================================================
# Report


def met(ok):
    return "met" if ok else "NOT met"


def render(res):
    m = res["machine"]
    c, t, j, r = res["config"], res["toggles"], res["jobs"], res["reloads"]
    mem, h, times = res["memory"], res["hooks"], res["times"]
    out = [machine_line(m, times["load_start"], m.get("loadavg_end", times["load_end"])),
           f"keepserver: {res['keepserver_binary']} (rev {res['keepserver_rev']}); "
           f"{res.get('gearmand')}; {res.get('haproxy')}; python {m['python']}",
           f"one daemon: {c['toggles']} VIP toggles (pause U[{res['pause_s'][0]}, "
           f"{res['pause_s'][1]}] s after each hook), {c['jobs']} Libra jobs, {c['reloads']} "
           f"reloads, seed {c['seed']}; sleep {res['sleep_s']} s (NIC re-listed every cycle)",
           f"run time {times['run_s']} s (toggles {times['toggle_s']} s"
           + (f"; then {times['extra_master_s']} s as MASTER for the rest of the jobs/reloads"
              if times["extra_master_s"] else "") + ")", ""]
    ms = t["ms"]
    out.append(f"toggles: {t['caught']}/{t['n']} acted on (misses {t['misses']}"
               + (f": {t['missed']}" if t["missed"] else "") + f"); latency (VIP change -> "
               f"hook spawned) p50 {fmt(ms['p50'])} ms, p90 {fmt(ms['p90'])} ms, p99 "
               f"{fmt(ms['p99'])} ms, max {fmt(ms['max'])} ms")
    out.append(f"  {t['with_hook_in_flight']} toggles came while the previous hook was still "
               f"running (slowest of those {fmt(t['with_hook_in_flight_max_ms'])} ms)")
    out.append(f"  the {len(t['slowest'])} slowest, with what was happening at the toggle:")
    for s in t["slowest"]:
        what = []
        if s["hook_in_flight"]:
            what.append(f"{s['hook_in_flight'][0]} hook in flight (began "
                        f"{s['hook_in_flight'][1]:.1f} ms before)")
        if s["reloads_in_flight_ms"]:
            d = s["reloads_in_flight_ms"][0]
            what.append(f"reload in flight (began {abs(d)} ms {'before' if d <= 0 else 'after'}"
                        f" the toggle)")
        if s["jobs_in_flight"]:
            what.append(f"job {','.join(s['jobs_in_flight'])} in flight")
        stamp = time.strftime("%H:%M:%S", time.localtime(s["wall"]))
        out.append(f"    #{s['i']:>5} {s['kind']} {fmt(s['ms'])} ms at {stamp}: "
                   + ("; ".join(what) or "nothing else in flight"))
        for ln in s["log"]:
            out.append(f"           | {ln}")
    out.append("")
    out.append(f"jobs: {j['n']} run: {j['ok']} should-pass PASS, {j['failed_as_expected']} bad "
               f"jobs FAILed as they must, should-pass-but-failed {j['should_pass_but_failed']}"
               + (f" {j['spf_examples']}" if j["spf_examples"] else "")
               + (f"; bad jobs that PASSed: {j['bad_but_passed']}" if j["bad_but_passed"]
                  else "")
               + f"; job time p50 {fmt(j['ms']['p50'], digits=1)} ms, p99 "
               f"{fmt(j['ms']['p99'], digits=1)} ms, max {fmt(j['ms']['max'], digits=1)} ms")
    out.append("  " + ", ".join(f"{a} {v['pass']}/{v['n']} PASS" for a, v in
                                sorted(j["by_action"].items())))
    out.append(f"reloads: {r['ok']}/{r['n']} ok, {r['failed']} failed"
               + (f" {r['failed_examples']}" if r["failed_examples"] else "")
               + f" (the daemon counts {r['daemon_count']}, warm-up included); keepserver "
               f"reload took p50 {fmt(r['ms']['p50'], digits=1)} ms, max "
               f"{fmt(r['ms']['max'], digits=1)} ms")
    g = mem["rss_growth_kib"]
    out.append(f"memory: VmRSS {mem['rss_start_kib']} KiB at start (after warm-up), "
               f"{mem['rss_end_kib']} KiB at end: growth {g} KiB; max sampled "
               f"{mem['rss_max_kib']} KiB, VmHWM {mem['hwm_end_kib']} KiB")
    out.append(f"fds: {mem['fds_start']} at start, {mem['fds_end']} at end (max sampled "
               f"{mem['fds_max']}; both taken as SLAVE, worker gone, no hook in flight)")
    out.append(f"hooks: {h['begun']} run, {h['overlap_count']} overlapping"
               + (f" {h['overlaps']}" if h["overlaps"] else "")
               + (f", left open: {h['left_open']}" if h["left_open"] else ""))
    o = res["overruns"]
    out.append(f"netlink overruns logged: {o['count']}" + (f" {o['lines']}" if o["lines"]
                                                            else ""))
    out.append(f"log lines lost (status): {res['log_lines_lost']}")
    out.append("")
    out.append(
        f"targets: RSS growth <= {TARGET_RSS_GROWTH_KIB} KiB -> "
        f"{met(g is not None and g <= TARGET_RSS_GROWTH_KIB)}; fds constant -> "
        f"{met(mem['fds_start'] == mem['fds_end'])}; no hook overlap -> "
        f"{met(h['overlap_count'] == 0 and not h['left_open'])}; no should-pass job failed -> "
        f"{met(j['should_pass_but_failed'] == 0 and not j['bad_but_passed'])}; every reload "
        f"ok -> {met(r['failed'] == 0 and r['n'] == c['reloads'])}; every toggle acted on -> "
        f"{met(t['misses'] == 0)}")
    if res.get("notes"):
        out += ["", "notes:"] + ["  - " + n for n in res["notes"]]
    return "\n".join(out)


# ============================================================================================
# Main


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--toggles", type=int, default=10000,
                   help="VIP changes (even, default 10000)")
    p.add_argument("--jobs", type=int, default=10000, help="Libra jobs (default 10000)")
    p.add_argument("--reloads", type=int, default=1000, help="reloads (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed of pauses and jobs (default 1)")
    p.add_argument("--binary", help="keepserver binary to use (default: cargo build --release)")
    p.add_argument("--gear-site", metavar="DIR",
                   help="a directory holding the gear package (skips pip install)")
    p.add_argument("--logs", metavar="DIR", help="copy configs and logs into DIR at the end")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object on stdout (the table goes to stderr)")
    p.add_argument("--inner", metavar="CONFIG", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.inner:
        return a
    if a.toggles < 2 or a.toggles % 2:
        p.error("--toggles must be an even number >= 2 (so the VIP ends absent)")
    if a.jobs < 1 or a.reloads < 1:
        p.error("--jobs and --reloads must be >= 1")
    return a


def main():
    args = parse_args()
    set_log_prefix("bench-soak")
    if args.inner:
        return inner_main(args.inner)
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
