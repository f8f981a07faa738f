#!/usr/bin/env python3
"""What the Prometheus endpoint costs: scrape latency and the daemon's RSS and CPU time, with
metrics on and off side by side.

What it does (Python 3 standard library; run as root, like the other benchmarks):

1. Builds keepserver with ``cargo build --release`` (unless ``--binary``).
2. Starts two keepservers in a temp dir, each with its own workspace, watching ``lo`` for the
   VIP 127.0.0.1 (always there, so both are MASTER at once and stay so; hooks are ``true``):
   "on" with a ``metrics`` section listening on a free port of 127.0.0.1, "off" without one.
   Nothing outside loopback is touched.
3. Waits until both answer ``status --json`` as MASTER, lets them idle ``--settle`` s and reads
   both RSS (VmRSS).
4. Scrapes "on" ``--scrapes`` times over one keep-alive connection (as Prometheus does), then
   ``--scrapes`` times with a new connection each: per scrape the time from sending the request
   to having the whole body (p50, p99, max, nearest rank), and the CPU time "on" spent per
   scrape (schedstat of its threads, over the whole batch).
5. Reads both RSS again (and VmHWM), the body size and the series count of the last scrape.

Everything it starts is stopped and the temp dir removed at the end, also on failure, Ctrl-C
or SIGTERM. The exit status is non-zero only if the benchmark could not run.

Usage: scripts/bench-metrics.py [--binary PATH] [--scrapes 2000] [--settle 2] [--json]
"""

import argparse
import http.client
import os
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(ws, metrics_port):
    text = (
        "keepstart:\n"
        "  nic: lo\n"
        "  vip: 127.0.0.1\n"
        "  start: 'true'\n"
        "  stop: 'true'\n"
        "  sleep: 2\n"
        "logging:\n"
        "  version: 1\n"
        "  handlers:\n"
        "    file:\n"
        "      class: logging.FileHandler\n"
        f"      filename: {ws}/keepserver.log\n"
        "  root:\n"
        "    level: INFO\n"
        "    handlers: [file]\n"
    )
    if metrics_port:
        text += f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n"
    return text


def start(binary, tmp, name, metrics_port, cleanup):
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    cfg = os.path.join(ws, "config.yaml")
    with open(cfg, "w") as f:
        f.write(config(ws, metrics_port))
    p = bl.start_group([binary, "-c", cfg, "start"], os.path.join(ws, "daemon.out"))
    cleanup.later(f"stop keepserver {name}", bl.stop_group, name, p, 10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise bl.CannotRun(f"keepserver {name} exited: {bl.tail(os.path.join(ws, 'daemon.out'))}")
        r = bl.run([binary, "-c", cfg, "status", "--json"], check=False, timeout=10)
        if r.returncode == 0 and '"MASTER"' in r.stdout:
            return p
        time.sleep(0.1)
    raise bl.CannotRun(f"keepserver {name} did not report MASTER within 15 s")


def scrape_batch(port, n, keep_alive):
    """n scrapes; per scrape seconds from request to whole body; the last body."""
    times = []
    body = b""
    conn = None
    for _ in range(n):
        if conn is None or not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        t0 = time.perf_counter()
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise bl.CannotRun(f"scrape answered {resp.status}: {body[:200]!r}")
        if not keep_alive:
            conn.close()
    if conn is not None:
        conn.close()
    return sorted(times), body


def body(cleanup, args):
    binary = bl.build(args.binary)
    tmp = tempfile.mkdtemp(prefix="ks-bench-metrics-")
    cleanup.later("remove temp dir", shutil.rmtree, tmp, True)
    load_start = bl.loadavg()
    port = free_port()
    on = start(binary, tmp, "on", port, cleanup)
    off = start(binary, tmp, "off", None, cleanup)
    time.sleep(args.settle)
    idle = {"on": bl.proc_rss_kib(on.pid), "off": bl.proc_rss_kib(off.pid)}
    batches = {}
    last = b""
    for name, keep_alive in (("keep-alive", True), ("new connection", False)):
        cpu0 = bl.proc_cpu_ns(on.pid)
        wall0 = time.perf_counter()
        times, last = scrape_batch(port, args.scrapes, keep_alive)
        wall = time.perf_counter() - wall0
        cpu = bl.proc_cpu_ns(on.pid) - cpu0
        batches[name] = {
            "scrapes": args.scrapes,
            "p50_ms": bl._r(bl.nearest_rank(times, 50) * 1e3),
            "p99_ms": bl._r(bl.nearest_rank(times, 99) * 1e3),
            "max_ms": bl._r(times[-1] * 1e3),
            "daemon_cpu_us_per_scrape": bl._r(cpu / 1e3 / args.scrapes, 1),
            "scrapes_per_s": round(args.scrapes / wall),
        }
    after = {n: bl.proc_status_kib(p.pid) for n, p in (("on", on), ("off", off))}
    series = sum(1 for line in last.decode().splitlines() if line and not line.startswith("#"))
    result = {
        "machine": bl.machine_info(),
        "revision": bl.git_rev(),
        "load_start": load_start,
        "load_end": bl.loadavg(),
        "rss_idle_kib": idle,
        "rss_after_kib": {n: a.get("VmRSS") for n, a in after.items()},
        "hwm_after_kib": {n: a.get("VmHWM") for n, a in after.items()},
        "body_bytes": len(last),
        "series": series,
        "batches": batches,
    }
    m = result["machine"]
    lines = [bl.machine_line(m, load_start, result["load_end"]),
             f"revision {result['revision']}; body {len(last)} bytes, {series} series",
             "",
             f"{'':16} {'RSS idle':>10} {'RSS after':>10} {'VmHWM':>10}"]
    for n in ("off", "on"):
        lines.append(f"{'metrics ' + n:16} {bl.fmt(idle[n], ' KiB'):>10} "
                     f"{bl.fmt(result['rss_after_kib'][n], ' KiB'):>10} "
                     f"{bl.fmt(result['hwm_after_kib'][n], ' KiB'):>10}")
    lines += ["", f"{'scrapes':16} {'p50':>9} {'p99':>9} {'max':>9} {'CPU/scrape':>11} {'rate':>8}"]
    for n, b in batches.items():
        lines.append(f"{n:16} {bl.fmt(b['p50_ms'], ' ms'):>9} {bl.fmt(b['p99_ms'], ' ms'):>9} "
                     f"{bl.fmt(b['max_ms'], ' ms'):>9} "
                     f"{bl.fmt(b['daemon_cpu_us_per_scrape'], ' us', 1):>11} "
                     f"{bl.fmt(b['scrapes_per_s'], '/s'):>8}")
    bl.print_report("\n".join(lines), result, args.json)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", help="keepserver binary (default: cargo build --release)")
    ap.add_argument("--scrapes", type=int, default=2000, help="scrapes per batch")
    ap.add_argument("--settle", type=float, default=2.0, help="idle seconds before the RSS")
    ap.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    args = ap.parse_args()
    bl.set_log_prefix("bench-metrics")
    return bl.run_bench(lambda cleanup: body(cleanup, args))


if __name__ == "__main__":
    sys.exit(main())
