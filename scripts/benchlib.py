"""What the benchmark scripts (bench-role.py, bench-libra.py, bench-keepalived.py) share.

benchlib owns: the run protocol of a benchmark (must be root; CannotRun -> exit status 1, a
signal -> Interrupted -> 130; a watchdog alarm; a clean-up stack that runs to its end even when
signals arrive during it), the ``[name]`` log prefix, running commands, process groups started
with their output in a log, network namespaces (creation with a veth pair, deletion), the /proc
readers (memory, CPU time, load, machine description), the git revision of the checkout, tool
versions, nearest-rank percentiles and rounding, building keepserver, copying configs and logs out
of the temp dir, and the parts of the reports that are the same in every script (numbers, the
machine line, table or JSON on stdout).

Python 3 standard library only. The scripts import it from their own directory, so that it is
found from any cwd and inside ``ip netns exec``.
"""

import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CannotRun(Exception):
    """The benchmark could not run (exit status 1)."""


class Interrupted(BaseException):
    """A signal asked us to stop (exit status 130)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_prefix = "bench"
_cleaning = False


def set_log_prefix(name):
    """Names the script (or its part) in front of every log line."""
    global _prefix
    _prefix = name


def log(msg):
    print(f"[{_prefix}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Signals, watchdog, clean-up


def _start_cleaning():
    """From now on a signal no longer interrupts and the watchdog no longer fires: the clean-up
    runs to its end."""
    global _cleaning
    _cleaning = True


def _on_signal(signum, _frame):
    if _cleaning:
        log(f"got signal {signum} while cleaning up; finishing the clean-up first")
        return
    raise Interrupted(signum)


def _on_alarm(_signum, _frame):
    if not _cleaning:
        raise CannotRun("watchdog: the run took far longer than it should; aborting")


class Cleanup(contextlib.ExitStack):
    """The clean-up steps of a run, run in reverse order when it ends."""

    def later(self, desc, fn, *a):
        """Registers fn(*a) as a clean-up step; a step that fails is logged, the rest still runs."""
        def wrapped():
            _start_cleaning()
            try:
                fn(*a)
            except Exception as e:  # keep cleaning up
                log(f"clean-up step '{desc}' failed: {e}")
        self.callback(wrapped)


def run_bench(body):
    """Runs body(cleanup) as root, cleanup a Cleanup unwound when body ends, however it ends.
    Meanwhile SIGINT, SIGTERM and SIGHUP raise Interrupted, and SIGALRM (the watchdog: body arms
    it with signal.alarm) raises CannotRun. Returns the exit status: body's, 1 if the benchmark
    could not run, 130 if a signal interrupted it."""
    if os.geteuid() != 0:
        log("must run as root (it creates a network namespace)")
        return 1
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    cleanup = Cleanup()
    try:
        with cleanup:
            return body(cleanup)
    except Interrupted as e:
        log(f"interrupted by signal {e.signum}; cleaned up")
        return 130
    except CannotRun as e:
        log(f"could not run: {e}")
        return 1
    except (subprocess.SubprocessError, OSError) as e:
        detail = ""
        if isinstance(e, subprocess.CalledProcessError):
            detail = f": {(e.stderr or '').strip()}"
        log(f"could not run: {e}{detail}")
        return 1
    finally:
        _start_cleaning()
        signal.alarm(0)


# --------------------------------------------------------------------------------------------
# Commands, processes, namespaces, files


def run(cmd, timeout=60, check=True, **kw):
    """Runs cmd, capturing its output as text."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=check, **kw)


def tail(path, lines=25):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def start_group(argv, logpath, **kw):
    """Starts argv in a new session (its own process group), stdout and stderr appended to
    logpath."""
    with open(logpath, "ab") as logf:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True, **kw)


def stop_group(name, p, grace):
    """Stops a process started by start_group: SIGTERM if it still runs, up to grace seconds for
    it to exit, then SIGKILL to whatever is left of its group (children such as hooks)."""
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"{name} ignored SIGTERM for {grace} s; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(timeout=5)


def add_netns(cleanup, ns, nic, peer):
    """Creates namespace ns (deleted by cleanup) holding lo and a veth pair nic/peer, all up."""
    run(["ip", "netns", "add", ns])
    cleanup.later("delete namespace", delete_netns, ns)
    run(["ip", "-netns", ns, "link", "add", nic, "type", "veth", "peer", "name", peer])
    for dev in ("lo", nic, peer):
        run(["ip", "-netns", ns, "link", "set", dev, "up"])


def stop_inner(p):
    """Stops a benchmark's inner part (the process run inside its namespace): SIGTERM, then
    30 s for its clean-up, then SIGKILL."""
    if p is None or p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log("the inner part did not finish its clean-up in 30 s; killing it")
        p.kill()
        p.wait(timeout=10)


def run_inner(ns, script, cfg, site, later, bound_s, render, as_json):
    """Runs `script --inner` in namespace `ns` with `cfg` (written to cfg["tmp"]/inner-config.json;
    the inner part writes cfg["tmp"]/result.json), `site` prepended to PYTHONPATH when given, a
    watchdog alarm of `bound_s` + 120 s; then prints the report `render` makes of the result."""
    cfg_path = os.path.join(cfg["tmp"], "inner-config.json")
    result_path = os.path.join(cfg["tmp"], "result.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
    signal.alarm(int(bound_s + 120))
    inner_p = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-u", script, "--inner", cfg_path],
        stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr, env=env)
    later("stop the inner part", stop_inner, inner_p)
    rc = inner_p.wait()
    if rc != 0 or not os.path.exists(result_path):
        raise CannotRun(f"the benchmark inside the namespace exited with status {rc}"
                        + ("" if os.path.exists(result_path) else " without results"))
    with open(result_path) as f:
        result = json.load(f)
    result["machine"]["loadavg_end"] = loadavg()
    print_report(render(result), result, as_json)
    return 0


def delete_netns(ns):
    r = run(["ip", "netns", "del", ns], check=False, timeout=30)
    if r.returncode != 0:
        log(f"ip netns del {ns}: {r.stderr.strip()}")
    if ns in run(["ip", "netns", "list"], check=False).stdout.split():
        log(f"namespace {ns} is still listed")


def copy_logs(tmp, dest, what="configs and logs"):
    """Copies the configs and logs (regular files named *.log, *.yaml, *.cfg, *.json, *.out) at
    the top of tmp into dest (created). Registered before the daemons' stop steps, it runs after
    them, so their last words are in."""
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(tmp)):
        src = os.path.join(tmp, name)
        if os.path.isfile(src) and name.endswith((".log", ".yaml", ".cfg", ".json", ".out")):
            shutil.copy(src, dest)
    log(f"{what} copied to {dest}")


def build(binary):
    """The keepserver binary: `binary` if given (checked), else built with
    ``cargo build --release``."""
    if binary:
        path = os.path.abspath(binary)
        if not os.access(path, os.X_OK):
            raise CannotRun(f"--binary {path} is not an executable file")
        return path
    log("building keepserver: cargo build --release")
    try:
        r = subprocess.run(["cargo", "build", "--release"], cwd=REPO, stdout=sys.stderr,
                           stderr=sys.stderr, timeout=3600)
    except FileNotFoundError:
        raise CannotRun("cargo not found; pass --binary PATH")
    if r.returncode != 0:
        raise CannotRun(f"cargo build --release failed (exit {r.returncode})")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    path = os.path.join(target, "release", "keepserver")
    if not os.access(path, os.X_OK):
        raise CannotRun(f"built, but {path} is not there")
    return path


# --------------------------------------------------------------------------------------------
# /proc and machine


def proc_status_kib(pid, keys=("VmRSS", "VmHWM")):
    """The fields `keys` of /proc/PID/status in KiB; those it cannot read are missing."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def proc_rss_kib(pid):
    """VmRSS of pid in KiB, or None."""
    return proc_status_kib(pid, ("VmRSS",)).get("VmRSS")


def proc_cpu_ns(pid, schedstat=True):
    """CPU time of pid (all its threads, not its children) in ns, or None. From the threads'
    schedstat (ns resolution; a thread that has exited no longer counts) unless schedstat is
    false or unreadable, else utime + stime (clock ticks, exited threads included)."""
    if pid is None:
        return None
    if schedstat:
        total = 0
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            return total
        except (OSError, IndexError, ValueError):
            pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rpartition(")")[2].split()
        return (int(rest[11]) + int(rest[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg():
    """1-minute load average: other work on the machine skews the figures."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() in ("model name", "Hardware", "Model", "cpu model") and v.strip():
                    model = v.strip()
                    break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        nproc = os.cpu_count()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "nproc": nproc,
        "kernel": platform.release(),
        "arch": platform.machine(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "loadavg": loadavg(),
    }


def git_rev():
    try:
        rev = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain"], timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def tool_version(argv):
    """The first line argv prints (stdout, else stderr), or None."""
    try:
        r = run(argv, timeout=10, check=False)
        out = (r.stdout or r.stderr).strip().splitlines()
        return out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------
# Statistics and report


def nearest_rank(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def _r(x, nd=3):
    return None if x is None else round(x, nd)


def fmt(v, unit="", digits=3):
    """A table cell: '-' for None, floats with `digits` decimals."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def machine_line(m, load_start, load_end):
    """The report's first line, from machine_info() and the load averages around the run."""
    return (f"machine: {m['cpu']}, nproc {m['nproc']}, kernel {m['kernel']} ({m['arch']}), "
            f"{m['date_utc']}; load avg (1 min) {load_start} at start, {load_end} at end")


def print_report(table, result, as_json):
    """The table on stdout, or with as_json the table on stderr and result as JSON on stdout."""
    if as_json:
        print(table, file=sys.stderr, flush=True)
        print(json.dumps(result, indent=2), flush=True)
    else:
        print(table, flush=True)
