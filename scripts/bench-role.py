#!/usr/bin/env python3
"""Role-change latency benchmark for keepserver, with keepstart 0.1.3 as a comparison.

What it does (Python 3 standard library only; run as root: it creates a network namespace):

1. Builds keepserver with ``cargo build --release`` (unless ``--binary`` is given) and, unless
   ``--no-keepstart``, installs keepstart 0.1.3 with ``pip install keepstart==0.1.3 'PyYAML<6'``
   into a venv in a temp dir (PyYAML 5.4.1 has no wheel for recent Pythons and its sdist does not
   build with Cython 3, so the build is constrained to ``Cython<3``).
2. Creates a network namespace holding a veth pair ``ksb0``/``ksb1`` (both ends inside it, both
   up; nothing is added to the host's namespace). The NIC watched is ``ksb0``, the VIP
   192.0.2.10/24 (TEST-NET-1, documentation range).
3. Runs keepserver and keepstart inside the namespace (``ip netns exec``), each with its own
   workspace and the same keepstart section. Each daemon's hooks are ``echo start >> FIFO`` and
   ``echo stop >> FIFO`` (dash's builtin echo: no exec), one FIFO per daemon.
4. Waits for keepserver to settle (``status --json`` says SLAVE), then warms up: adds the VIP and
   waits for both daemons' start hooks, removes it and waits for both stop hooks. This proves
   keepstart really works before anything is measured (it polls every ``sleep`` = 2 s).
5. Measures ``--toggles`` VIP changes, alternating add/del, each followed by a pause drawn
   uniformly from [0.05, 0.5] s (``random.Random(--seed)``). The VIP is changed by one
   long-lived ``ip -netns NS -force -batch -`` process fed through a pipe (no fork per toggle;
   the script checks that ip executes each line as it arrives and otherwise falls back to one
   ``ip`` process per toggle). t0 = time.monotonic_ns() right before the line is written.
   The hook lines are read in the same single-threaded loop that implements the pause: the
   pause *is* a ``select()`` over both FIFOs with a deadline, so every line is time-stamped
   the moment it becomes readable, without threads or GIL hand-offs.
6. For each toggle and daemon: latency = first matching line (start for add, stop for del)
   arriving after t0 and before the next toggle; none = a miss. Other lines in the window are
   counted as "extra" (wrong kind or duplicate, e.g. a late hook of the previous toggle).
7. Reports per daemon: toggles, hook lines seen, misses, extra lines, order violations (two
   equal lines in a row), latency p50/p90/p99/max in ms (nearest rank), VmRSS and VmHWM of
   the daemon process (for keepstart the python process) at the end, and its CPU time during
   the measured run; plus the machine (CPU model, nproc, kernel, date UTC).

Everything created (namespace, daemons, ip process, temp dirs, venv) is removed at the end,
also on failure, Ctrl-C or SIGTERM. The exit status is non-zero only if the benchmark could not
run; missing a target is reported, not asserted.

Usage: scripts/bench-role.py [--toggles 200] [--seed N] [--binary PATH] [--no-keepstart]
                             [--keepstart-venv DIR] [--json]
With --json, stdout carries only the JSON object and the table goes to stderr.
"""

import argparse
import contextlib
import json
import os
import random
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CannotRun, _r, add_netns, build, copy_logs, fmt, git_rev,  # noqa: E402
                      loadavg, log, machine_info, machine_line, nearest_rank, print_report,
                      proc_cpu_ns, proc_status_kib, run, run_bench, set_log_prefix, start_group,
                      stop_group, tail)

NIC = "ksb0"
PEER = "ksb1"
VIP = "192.0.2.10"
PREFIX_LEN = 24
PAUSE_MIN_S = 0.05
PAUSE_MAX_S = 0.5
SLEEP_S = 2  # keepstart.sleep for both daemons
KEEPSTART_NAME = "keepstart-0.1.3"
KEEPSTART_REQS = ["keepstart==0.1.3", "PyYAML<6"]
TARGET_P99_MS = 5.0
TARGET_RSS_KIB = 8 * 1024


# --------------------------------------------------------------------------------------------
# Hook lines: FIFOs read from the main loop


class Lines:
    """Non-blocking readers for the hook FIFOs (and ip's stderr), driven by pump()."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.bufs = {}
        self.events = []  # (t_ns, source, line)
        self.fds = []

    def add_fifo(self, name, path):
        os.mkfifo(path, 0o600)
        # O_RDWR: the FIFO always has a writer (us), so the hooks' open() never blocks and we
        # never see EOF between hooks.
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.fds.append(fd)
        self.sel.register(fd, selectors.EVENT_READ, name)
        self.bufs[fd] = b""

    def add_pipe(self, name, fd):
        os.set_blocking(fd, False)
        self.sel.register(fd, selectors.EVENT_READ, name)
        self.bufs[fd] = b""

    def remove(self, fd):
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.sel.unregister(fd)

    def close(self):
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        with contextlib.suppress(Exception):
            self.sel.close()

    def pump(self, deadline_ns, until=None):
        """Reads lines until deadline_ns (monotonic) or until until() is true. Returns until()."""
        while True:
            if until is not None and until():
                return True
            left = deadline_ns - time.monotonic_ns()
            if left <= 0:
                return until() if until is not None else False
            for key, _ in self.sel.select(left / 1e9):
                t = time.monotonic_ns()
                fd = key.fd
                while True:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    if not chunk:  # EOF (ip's stderr when ip exits)
                        self.remove(fd)
                        break
                    self.bufs[fd] += chunk
                *complete, self.bufs[fd] = self.bufs[fd].split(b"\n")
                for line in complete:
                    self.events.append((t, key.data, line.decode(errors="replace").strip()))

    def wait_for(self, pred, timeout_s):
        return self.pump(time.monotonic_ns() + int(timeout_s * 1e9), pred)

    def count(self, source, word, since=0):
        return sum(1 for t, s, w in self.events[since:] if s == source and w == word)


# --------------------------------------------------------------------------------------------
# Daemons


class Daemon:
    def __init__(self, name, ns, argv, workspace, pidfile, logpath, env=None):
        self.name = name
        self.ns = ns
        self.argv = argv
        self.workspace = workspace
        self.pidfile = pidfile
        self.logpath = logpath
        self.env = env
        self.popen = None

    def start(self):
        self.popen = start_group(["ip", "netns", "exec", self.ns] + self.argv, self.logpath,
                                 env=self.env, cwd=self.workspace)

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def pid(self):
        """The daemon's own pid: from its pidfile, else the process we started."""
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().split()[0])
            if os.path.exists(f"/proc/{pid}"):
                return pid
        except (OSError, ValueError, IndexError):
            pass
        return self.popen.pid if self.alive() else None

    def stop(self):
        if self.popen is not None:  # its group holds the hooks too
            stop_group(self.name, self.popen, SLEEP_S + 4)


# --------------------------------------------------------------------------------------------
# Changing the VIP


class Toggler:
    """Adds/removes the VIP; t0 is taken right before the command is handed to ip."""

    def __init__(self, ns, lines):
        self.ns = ns
        self.lines = lines
        self.mode = "batch"
        self.errors = []
        self.spawned = []
        self.batch = subprocess.Popen(["ip", "-netns", ns, "-force", "-batch", "-"],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, bufsize=0,
                                      start_new_session=True)
        self.stdin_fd = self.batch.stdin.fileno()
        lines.add_pipe("ip", self.batch.stderr.fileno())

    @staticmethod
    def _cmd(add):
        return f"address {'add' if add else 'del'} {VIP}/{PREFIX_LEN} dev {NIC}"

    def apply(self, add):
        if self.mode == "batch":
            data = (self._cmd(add) + "\n").encode()
            t0 = time.monotonic_ns()
            os.write(self.stdin_fd, data)
            return t0
        t0 = time.monotonic_ns()
        p = subprocess.Popen(["ip", "-netns", self.ns] + self._cmd(add).split(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.spawned.append(p)
        return t0

    def reap(self):
        for p in self.spawned:
            if p.poll() is not None:
                err = p.stderr.read().strip()
                if p.returncode != 0:
                    self.errors.append(err or f"ip exited {p.returncode}")
        self.spawned = [p for p in self.spawned if p.returncode is None]

    def fall_back(self, reason):
        log(f"ip -batch - did not apply a line as it arrived ({reason}); "
            "falling back to one ip process per toggle")
        self.close()
        self.mode = "process per toggle"

    def close(self):
        if self.batch is not None:
            with contextlib.suppress(OSError):
                self.batch.stdin.close()
            try:
                self.batch.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.batch.kill()
                self.batch.wait(timeout=5)
            self.lines.remove(self.batch.stderr.fileno())
            with contextlib.suppress(OSError):
                self.batch.stderr.close()
            self.batch = None
        for p in self.spawned:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        self.reap()

    def batch_alive(self):
        return self.mode != "batch" or (self.batch is not None and self.batch.poll() is None)


def vip_present(ns):
    out = run(["ip", "-netns", ns, "-4", "-o", "addr", "show", "dev", NIC], timeout=10).stdout
    return f" {VIP}/" in out


# --------------------------------------------------------------------------------------------
# Statistics


def analyse(source, toggles, end_ns, events, since_index):
    """toggles: [(t0_ns, 'start'|'stop')]; the window of toggle i is [t0_i, t0_{i+1})."""
    evs = [(t, w) for t, s, w in events[since_index:] if s == source]
    lat_ms = []
    per_toggle = []
    extra = 0
    extra_words = {}
    j = 0
    # lines before the first toggle (after the warm-up) are "extra" too
    while j < len(evs) and evs[j][0] < toggles[0][0]:
        extra += 1
        extra_words[evs[j][1]] = extra_words.get(evs[j][1], 0) + 1
        j += 1
    for i, (t0, want) in enumerate(toggles):
        hi = toggles[i + 1][0] if i + 1 < len(toggles) else end_ns
        hit = None
        while j < len(evs) and evs[j][0] < hi:
            t, w = evs[j]
            if hit is None and w == want:
                hit = (t - t0) / 1e6
            else:
                extra += 1
                extra_words[w] = extra_words.get(w, 0) + 1
            j += 1
        per_toggle.append(None if hit is None else round(hit, 3))
        if hit is not None:
            lat_ms.append(hit)
    trailing = [w for _, w in evs[j:]]
    s = sorted(lat_ms)
    seen = [w for _, w in evs]
    return {
        "toggles": len(toggles),
        "hooks_seen": len(seen),
        "start_lines": seen.count("start"),
        "stop_lines": seen.count("stop"),
        "caught": len(lat_ms),
        "misses": len(toggles) - len(lat_ms),
        "extra_lines": extra,
        "extra_by_word": extra_words,
        "trailing_lines": trailing,
        "latency_ms": {
            "min": _r(s[0] if s else None),
            "p50": _r(nearest_rank(s, 50)),
            "p90": _r(nearest_rank(s, 90)),
            "p99": _r(nearest_rank(s, 99)),
            "max": _r(s[-1] if s else None),
            "mean": _r(sum(s) / len(s) if s else None),
        },
        "per_toggle_ms": per_toggle,
    }


def order_violations(events, source):
    seq = [w for _, s, w in events if s == source]
    bad = [i for i in range(1, len(seq)) if seq[i] == seq[i - 1]]
    odd = [w for w in seq if w not in ("start", "stop")]
    return seq, bad, odd


# --------------------------------------------------------------------------------------------
# Setup steps


def spawn_floor(lines, tmp, n=50):
    """The machine's floor: posix_spawn of the same hook shell, to the line's arrival (ms)."""
    fifo = os.path.join(tmp, "floor.fifo")
    lines.add_fifo("floor", fifo)
    argv = ["sh", "-c", "echo start >> " + shlex.quote(fifo)]
    lat = []
    for _ in range(n):
        mark = len(lines.events)
        t0 = time.monotonic_ns()
        pid = os.posix_spawn("/bin/sh", argv, os.environ)
        if lines.wait_for(lambda: len(lines.events) > mark, 2):
            lat.append((lines.events[-1][0] - t0) / 1e6)
        os.waitpid(pid, 0)
        lines.wait_for(None, 0.01)
    lat.sort()
    return {"samples": len(lat), "p50": _r(nearest_rank(lat, 50)),
            "p99": _r(nearest_rank(lat, 99)), "max": _r(lat[-1] if lat else None)}


def install_keepstart(tmp, args):
    """Returns (argv prefix, env) for keepstart's CLI, or raises RuntimeError with the reason."""
    if args.keepstart_venv:
        exe = os.path.join(os.path.abspath(args.keepstart_venv), "bin", "keepserver")
        if not os.access(exe, os.X_OK):
            raise RuntimeError(f"--keepstart-venv: {exe} not found")
        return [exe], None
    venv = os.path.join(tmp, "keepstart-venv")
    constraints = os.path.join(tmp, "pip-constraints.txt")
    with open(constraints, "w") as f:
        # PyYAML 5.4.1 ships no wheel for Python >= 3.10 and its sdist fails with Cython 3.
        f.write("Cython<3\n")
    env = dict(os.environ, PIP_CONSTRAINT=constraints, PIP_DISABLE_PIP_VERSION_CHECK="1")
    log(f"installing {' '.join(KEEPSTART_REQS)} into a venv under {tmp} (pip; ~1 min on first run)")
    r = run([sys.executable, "-m", "venv", venv], timeout=300, check=False)
    if r.returncode == 0:
        r = run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
                + KEEPSTART_REQS, timeout=900, check=False, env=env)
        if r.returncode != 0:
            raise RuntimeError("pip install failed:\n" + (r.stdout + r.stderr)[-2000:])
        return [os.path.join(venv, "bin", "keepserver")], None
    # No venv module: pip --target and PYTHONPATH.
    log("python -m venv failed; trying pip install --target")
    target = os.path.join(tmp, "keepstart-site")
    r = run([sys.executable, "-m", "pip", "install", "-q", "--target", target] + KEEPSTART_REQS,
            timeout=900, check=False, env=env)
    if r.returncode != 0:
        raise RuntimeError("pip install --target failed:\n" + (r.stdout + r.stderr)[-2000:])
    runenv = dict(os.environ, PYTHONPATH=target)
    return [sys.executable, os.path.join(target, "bin", "keepserver")], runenv


def write_config(path, workspace, fifo, pidfile=None):
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    app = [f"  daemon: false", f"  workspace: {q(workspace)}"]
    if pidfile:
        app.append(f"  pidfile: {q(pidfile)}")
    text = "\n".join(
        ["application:"] + app + [
            "keepstart:",
            f"  nic: {NIC}",
            f"  vip: {VIP}",
            f"  start: {q('echo start >> ' + shlex.quote(fifo))}",
            f"  stop: {q('echo stop >> ' + shlex.quote(fifo))}",
            f"  sleep: {SLEEP_S}",
            "  running-report-cycle: 3600",
            "  force-test-cycle: 60",
            "",
        ])
    with open(path, "w") as f:
        f.write(text)


def keepserver_status(binary, ns, config):
    try:
        r = run(["ip", "netns", "exec", ns, binary, "-c", config, "status", "--json"],
                timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Report


def render_table(result):
    cols = list(result["daemons"].keys())
    rows = [
        ("toggles", lambda d: d.get("toggles")),
        ("hook lines seen", lambda d: d.get("hooks_seen")),
        ("caught (in window)", lambda d: d.get("caught")),
        ("misses", lambda d: d.get("misses")),
        ("extra lines", lambda d: d.get("extra_lines")),
        ("order violations", lambda d: d.get("order_violations")),
        ("latency min ms", lambda d: d.get("latency_ms", {}).get("min")),
        ("latency p50 ms", lambda d: d.get("latency_ms", {}).get("p50")),
        ("latency p90 ms", lambda d: d.get("latency_ms", {}).get("p90")),
        ("latency p99 ms", lambda d: d.get("latency_ms", {}).get("p99")),
        ("latency max ms", lambda d: d.get("latency_ms", {}).get("max")),
        ("VmRSS at end KiB", lambda d: d.get("rss_kib", {}).get("VmRSS")),
        ("VmHWM (peak) KiB", lambda d: d.get("rss_kib", {}).get("VmHWM")),
        ("CPU during run ms", lambda d: d.get("cpu_ms")),
    ]
    w0 = max(len(r[0]) for r in rows)
    table = []
    for name in cols:
        d = result["daemons"][name]
        table.append([fmt(f(d)) if "error" not in d else "" for _, f in rows])
    widths = [max([len(c)] + [len(v) for v in vals]) for c, vals in zip(cols, table)]
    out = []
    m = result["machine"]
    out.append(machine_line(m, result['loadavg_start'], m['loadavg']))
    out.append(f"keepserver: {result['keepserver_binary']} (rev {result['keepserver_rev']}); "
               f"toggles {result['toggles']}, pause U[{PAUSE_MIN_S}, {PAUSE_MAX_S}] s, "
               f"seed {result['seed']}, VIP changes via {result['ip_mode']}, sleep {SLEEP_S} s")
    out.append("")
    out.append(" " * w0 + " | " + " | ".join(c.rjust(w) for c, w in zip(cols, widths)))
    out.append("-" * w0 + "-+-" + "-+-".join("-" * w for w in widths))
    for i, (label, _) in enumerate(rows):
        out.append(label.ljust(w0) + " | "
                   + " | ".join(table[k][i].rjust(widths[k]) for k in range(len(cols))))
    for name in cols:
        if "error" in result["daemons"][name]:
            out.append(f"{name}: NOT MEASURED: {result['daemons'][name]['error']}")
    f = result["hook_spawn_floor_ms"]
    out.append("")
    out.append(f"floor on this machine: the same hook shell spawned directly by this script "
               f"(posix_spawn, no daemon), spawn to line: p50 {fmt(f['p50'])} ms, "
               f"p99 {fmt(f['p99'])} ms, max {fmt(f['max'])} ms ({f['samples']} samples)")
    t = result.get("targets")
    if t:
        out.append("")
        out.append(f"targets (keepserver): p99 <= {TARGET_P99_MS} ms: {fmt(t['p99_ms'])} ms -> "
                   f"{'met' if t['p99_met'] else 'NOT met'}; RSS <= 8 MiB: VmRSS "
                   f"{fmt(t['rss_mib'])} MiB, peak {fmt(t['hwm_mib'])} MiB -> "
                   f"{'met' if t['rss_met'] else 'NOT met'}")
    if result["notes"]:
        out.append("")
        out.append("notes:")
        out.extend("  - " + n for n in result["notes"])
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Main


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--toggles", type=int, default=200, help="VIP changes to measure (default 200)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random pauses (default 1)")
    p.add_argument("--binary", help="keepserver binary to use (default: cargo build --release)")
    p.add_argument("--no-keepstart", action="store_true", help="do not run keepstart 0.1.3")
    p.add_argument("--keepstart-venv", metavar="DIR",
                   help="use keepstart from this existing venv instead of installing it")
    p.add_argument("--logs", metavar="DIR",
                   help="copy the daemons' configs and output into DIR (created) at the end")
    p.add_argument("--json", action="store_true",
                   help="print a JSON object on stdout (the table goes to stderr)")
    a = p.parse_args()
    if a.toggles < 2 or a.toggles % 2:
        p.error("--toggles must be an even number >= 2 (so the VIP ends absent)")
    return a


def main():
    args = parse_args()
    set_log_prefix("bench-role")
    return run_bench(lambda cleanup: bench(args, cleanup))


def bench(args, cleanup):
    later = cleanup.later
    daemons = {}
    binary = build(args.binary)
    tmp = tempfile.mkdtemp(prefix="ksbench-")
    later("remove temp dir", shutil.rmtree, tmp, True)
    notes = []

    ks_argv, ks_env, ks_error = None, None, None
    if not args.no_keepstart:
        try:
            ks_argv, ks_env = install_keepstart(tmp, args)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            ks_error = f"could not be installed: {e}"
            log("=" * 70)
            log(f"keepstart 0.1.3 {ks_error}")
            log("continuing with keepserver only")
            log("=" * 70)

    # The rest must finish in bounded time.
    warmup_bound = 2 * (SLEEP_S * 2 + 10) + 30
    signal.alarm(int(warmup_bound + args.toggles * PAUSE_MAX_S + 120))

    ns = f"ksbench-{os.getpid()}"
    add_netns(cleanup, ns, NIC, PEER)
    log(f"namespace {ns}: veth {NIC}<->{PEER} up, VIP {VIP}/{PREFIX_LEN} absent")

    lines = Lines()
    later("close FIFOs", lines.close)
    floor = spawn_floor(lines, tmp)
    log(f"floor: /bin/sh -c 'echo start >> FIFO' spawned by this script (posix_spawn), spawn "
        f"to line: p50 {floor['p50']} ms, p99 {floor['p99']} ms")

    # keepserver
    ws = os.path.join(tmp, "keepserver")
    os.mkdir(ws)
    ks_cfg = os.path.join(tmp, "keepserver.yaml")
    write_config(ks_cfg, ws, os.path.join(ws, "fifo"))
    lines.add_fifo("keepserver", os.path.join(ws, "fifo"))
    ksd = Daemon("keepserver", ns, [binary, "-c", ks_cfg, "start"], ws,
                 os.path.join(ws, "server.pid"), os.path.join(tmp, "keepserver.log"))
    daemons["keepserver"] = ksd

    # keepstart
    kst = None
    if ks_argv:
        kws = os.path.join(tmp, "keepstart")
        os.mkdir(kws)
        kst_cfg = os.path.join(tmp, "keepstart.yaml")
        write_config(kst_cfg, kws, os.path.join(kws, "fifo"), os.path.join(kws, "server.pid"))
        lines.add_fifo(KEEPSTART_NAME, os.path.join(kws, "fifo"))
        kst = Daemon(KEEPSTART_NAME, ns, ks_argv + ["-c", kst_cfg, "start"], kws,
                     os.path.join(kws, "server.pid"), os.path.join(tmp, "keepstart.log"),
                     env=ks_env)
        daemons[KEEPSTART_NAME] = kst

    toggler = Toggler(ns, lines)
    later("stop ip -batch", toggler.close)
    if args.logs:
        later("copy logs", copy_logs, tmp, os.path.abspath(args.logs),
              "configs and daemon output")
    for d in daemons.values():
        later(f"stop {d.name}", d.stop)

    def die(msg, d=None):
        detail = ""
        for x in ([d] if d else daemons.values()):
            t = tail(x.logpath)
            if t:
                detail += f"\n--- last lines of {x.name}'s output ---\n{t}"
        raise CannotRun(msg + detail)

    ksd.start()
    if kst:
        kst.start()

    # Settle: keepserver answers status and says SLAVE.
    st = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not ksd.alive():
            die(f"keepserver exited with status {ksd.popen.returncode} at start-up", ksd)
        st = keepserver_status(binary, ns, ks_cfg)
        if st and st.get("role") == "SLAVE":
            break
        lines.wait_for(None, 0.1)
    else:
        notes.append(f"keepserver did not report SLAVE via status --json within 15 s "
                     f"(last answer: {st}); went on anyway")
        log(notes[-1])
    if st:
        log(f"keepserver settled: role={st.get('role')} running={st.get('running')} "
            f"pid={st.get('pid')}")
    if kst and not kst.alive():
        ks_error = (f"exited with status {kst.popen.returncode} at start-up:\n"
                    + tail(kst.logpath))
        log(f"keepstart 0.1.3 {ks_error}")
        kst = None
    pre = [(s, w) for _, s, w in lines.events if s in daemons]
    if pre:
        notes.append(f"hook lines before the VIP was ever added: {pre}")

    active = [d for d in (ksd, kst) if d]

    # Warm-up: add, then delete; checks ip -batch and that keepstart really works.
    warm = {}
    for add, word in ((True, "start"), (False, "stop")):
        mark = len(lines.events)
        t0 = toggler.apply(add)
        if add and toggler.mode == "batch":
            deadline_ns = t0 + 1_000_000_000
            while not vip_present(ns):
                if time.monotonic_ns() > deadline_ns:
                    toggler.fall_back("address not present 1 s after the line was written")
                    if not vip_present(ns):
                        t0 = toggler.apply(True)
                    break
                lines.wait_for(None, 0.005)
        for d in active:
            limit = 5 if d is ksd else 2 * SLEEP_S + 3
            ok = lines.wait_for(lambda: lines.count(d.name, word, mark) > 0,
                                limit - (time.monotonic_ns() - t0) / 1e9)
            if not ok:
                if d is ksd:
                    die(f"keepserver did not run its {word} hook within {limit} s of the VIP "
                        f"being {'added' if add else 'removed'} (warm-up)", ksd)
                ks_error = (f"ran but did not run its {word} hook within {limit} s of the VIP "
                            f"being {'added' if add else 'removed'} (alive: {d.alive()})\n"
                            + tail(d.logpath))
                log(f"keepstart 0.1.3 {ks_error}")
                d.stop()
                active.remove(d)
                kst = None
                continue
            t = next(t for t, s, w in lines.events[mark:] if s == d.name and w == word)
            warm.setdefault(d.name, []).append(round((t - t0) / 1e6, 3))
        if toggler.mode == "batch" and not toggler.batch_alive():
            die("ip -batch exited during the warm-up: " + str(lines.events))
    log("warm-up done: " + ", ".join(f"{k} start/stop after {v} ms" for k, v in warm.items()))
    if kst:
        log(f"keepstart 0.1.3 is running (pid {kst.pid()}) and runs its hooks")
    # keepserver back to SLAVE, not running
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        st = keepserver_status(binary, ns, ks_cfg)
        if st and st.get("role") == "SLAVE" and not st.get("running"):
            break
        lines.wait_for(None, 0.05)
    lines.wait_for(None, 0.3)

    # Measured run
    load_start = loadavg()
    rng = random.Random(args.seed)
    pauses = [rng.uniform(PAUSE_MIN_S, PAUSE_MAX_S) for _ in range(args.toggles)]
    cpu0 = {d.name: proc_cpu_ns(d.pid()) for d in active}
    since = len(lines.events)
    toggles = []
    walls = []  # wall-clock time of each toggle, to match against the daemons' logs
    log(f"measuring {args.toggles} toggles (~{sum(pauses):.0f} s)")
    for i, pause in enumerate(pauses):
        add = i % 2 == 0
        t0 = toggler.apply(add)
        walls.append(round(time.time(), 6))
        toggles.append((t0, "start" if add else "stop"))
        lines.pump(t0 + int(pause * 1e9))
        if toggler.mode != "batch":
            toggler.reap()
        if not ksd.alive():
            die(f"keepserver exited with status {ksd.popen.returncode} during the run", ksd)
        if not toggler.batch_alive():
            die(f"ip -batch exited with status {toggler.batch.returncode} during the run")
        if (i + 1) % 50 == 0:
            log(f"  {i + 1}/{args.toggles}")
    end_ns = toggles[-1][0] + int(pauses[-1] * 1e9)
    # Let trailing hooks arrive (keepstart may still act on the last state within `sleep`).
    lines.wait_for(None, (SLEEP_S + 0.5) if kst else 0.5)
    cpu1 = {d.name: proc_cpu_ns(d.pid()) for d in active}
    rss = {d.name: proc_status_kib(d.pid()) for d in active}
    pids = {d.name: d.pid() for d in active}
    notes.extend(n for n in (check_pid(d, binary) for d in active) if n)
    st_end = keepserver_status(binary, ns, ks_cfg)
    vip_at_end = vip_present(ns)
    toggler.close()
    ip_errors = [w for _, s, w in lines.events if s == "ip" and w] + toggler.errors

    # Analysis
    result = {
        "benchmark": "bench-role",
        "machine": machine_info(),
        "keepserver_binary": binary,
        "keepserver_rev": git_rev(),
        "loadavg_start": load_start,
        "toggles": args.toggles,
        "seed": args.seed,
        "pause_s": [PAUSE_MIN_S, PAUSE_MAX_S],
        "sleep_s": SLEEP_S,
        "ip_mode": ("ip -batch - (one process, fed line by line)" if toggler.mode == "batch"
                    else "one ip process per toggle"),
        "hook_spawn_floor_ms": floor,
        "daemons": {},
        "toggle_wall_s": walls,
        "notes": notes,
    }
    for d in active:
        a = analyse(d.name, toggles, end_ns, lines.events, since)
        seq, bad, odd = order_violations(lines.events, d.name)
        a["order_violations"] = len(bad)
        a["pid"] = pids[d.name]
        a["rss_kib"] = rss[d.name]
        c0, c1 = cpu0.get(d.name), cpu1.get(d.name)
        a["cpu_ms"] = None if c0 is None or c1 is None else round((c1 - c0) / 1e6, 1)
        a["warmup_ms"] = warm.get(d.name)
        result["daemons"][d.name] = a
        if a["misses"] and d is ksd:
            missed = [i for i, v in enumerate(a["per_toggle_ms"]) if v is None]
            notes.append(f"keepserver missed toggles {missed[:20]}"
                         f"{' ...' if len(missed) > 20 else ''} (no matching hook line "
                         f"before the next toggle)")
        if a["extra_lines"]:
            notes.append(f"{d.name}: {a['extra_lines']} extra line(s) "
                         f"{a['extra_by_word']} (wrong kind or duplicate within a window)")
        if a["trailing_lines"]:
            notes.append(f"{d.name}: line(s) after the last window: {a['trailing_lines']}")
        if bad:
            notes.append(f"{d.name}: {len(bad)} order violation(s) (same line twice in a row) "
                         f"at positions {bad[:10]} of its {len(seq)} lines")
        if odd:
            notes.append(f"{d.name}: unexpected line(s) {odd[:5]}")
        if seq and seq[-1] != "stop":
            notes.append(f"{d.name}: last hook line is {seq[-1]!r} although the VIP is absent")
    if not args.no_keepstart and KEEPSTART_NAME not in result["daemons"]:
        result["daemons"][KEEPSTART_NAME] = {"error": ks_error or "did not run"}
    if ip_errors:
        notes.append(f"ip reported {len(ip_errors)} error(s): {ip_errors[:5]}")
    if vip_at_end:
        notes.append("the VIP is still present after the last (del) toggle")
    if st_end is not None:
        result["keepserver_status_at_end"] = st_end
        exp = 2 + args.toggles
        if st_end.get("role") != "SLAVE" or st_end.get("running"):
            notes.append(f"keepserver status at end: role={st_end.get('role')} "
                         f"running={st_end.get('running')} (expected SLAVE, false)")
        tr = st_end.get("transitions")
        if isinstance(tr, int) and tr < exp:
            notes.append(f"keepserver counted {tr} role transitions; {exp} VIP changes were made")
        hooks = st_end.get("hooks") or {}
        runs = {k: (v or {}).get("runs") for k, v in hooks.items() if isinstance(v, dict)}
        if runs:
            result["keepserver_hook_runs"] = runs
    else:
        notes.append("keepserver status --json did not answer at the end")

    ksr = result["daemons"]["keepserver"]
    p99 = ksr["latency_ms"]["p99"]
    rss_k = ksr["rss_kib"].get("VmRSS")
    hwm_k = ksr["rss_kib"].get("VmHWM")
    result["targets"] = {
        "p99_ms": p99,
        "p99_target_ms": TARGET_P99_MS,
        "p99_met": p99 is not None and p99 <= TARGET_P99_MS and ksr["misses"] == 0,
        "rss_mib": None if rss_k is None else round(rss_k / 1024, 2),
        "hwm_mib": None if hwm_k is None else round(hwm_k / 1024, 2),
        "rss_target_mib": TARGET_RSS_KIB / 1024,
        "rss_met": rss_k is not None and rss_k <= TARGET_RSS_KIB,
    }

    print_report(render_table(result), result, args.json)
    return 0


def check_pid(d, binary):
    """A note if the pid measured is not the daemon itself."""
    pid = d.pid()
    try:
        if d.name == "keepserver":
            exe = os.path.realpath(f"/proc/{pid}/exe")
            if exe != os.path.realpath(binary):
                return f"keepserver: measured pid {pid} runs {exe}, not {binary}"
        else:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not any(a.endswith(b"keepserver") for a in argv) or b"python" not in argv[0]:
                return f"{d.name}: measured pid {pid} is {argv}, not keepstart's python"
    except OSError as e:
        return f"{d.name}: cannot check pid {pid}: {e}"
    return None


if __name__ == "__main__":
    sys.exit(main())
