#!/usr/bin/env python3
"""Gearman client for keepserver's Libra end-to-end tests, built on the `gear` library.

    gear_client.py submit HOST:PORT FUNCTION PAYLOADS_FILE [--timeout SECONDS] [--out FILE]
        PAYLOADS_FILE holds a JSON list of payload strings (sent as they are, so invalid JSON can
        be sent too). Each is submitted in turn as a foreground job, waiting for its end up to
        --timeout seconds. Prints a JSON list, one object per payload:
            {"outcome": "complete"|"fail"|"exception"|"timeout",
             "data": "<WORK_COMPLETE data or WORK_EXCEPTION data>", "seconds": <float>}
        Stops after the first timeout. Exit code 0 when every job completed, 1 otherwise. With
        --out the list is also written to FILE (atomically: FILE appears complete or not at all).

    gear_client.py status HOST:PORT
        Gearman's text admin `status` command: prints {"FUNCTION": {"total": N, "running": N,
        "workers": N}, ...} as JSON.

Everything is bounded: a server that cannot be reached within --timeout is an error (exit 2).
"""

import json
import os
import socket
import sys
import time


def split_server(server):
    host, _, port = server.rpartition(":")
    return host, int(port)


def status(server, timeout=5.0):
    host, port = split_server(server)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"status\n")
        buf = b""
        while not (buf == b".\n" or buf.endswith(b"\n.\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    functions = {}
    for line in buf.decode("utf-8", "replace").splitlines():
        fields = line.split("\t")
        if len(fields) == 4:
            name, total, running, workers = fields
            functions[name] = {
                "total": int(total),
                "running": int(running),
                "workers": int(workers),
            }
    return functions


def submit(server, function, payloads, timeout):
    import gear  # imported here: `status` must work without it

    host, port = split_server(server)
    client = gear.Client(client_id="keepserver-e2e")
    client.addServer(host, port)
    results = []
    try:
        client.waitForServer(timeout=timeout)
        for payload in payloads:
            began = time.monotonic()
            job = gear.Job(function, payload.encode("utf-8"))
            client.submitJob(job, timeout=timeout)
            deadline = began + timeout
            while not job.complete and time.monotonic() < deadline:
                time.sleep(0.01)
            seconds = round(time.monotonic() - began, 3)
            if not job.complete:
                results.append({"outcome": "timeout", "data": "", "seconds": seconds})
                break
            if job.exception is not None:
                data = job.exception
                outcome = "exception"
            elif job.failure:
                data = b""
                outcome = "fail"
            else:
                data = b"".join(job.data)
                outcome = "complete"
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            results.append({"outcome": outcome, "data": data, "seconds": seconds})
    finally:
        client.shutdown()
    return results


def main(argv):
    if len(argv) >= 2 and argv[0] == "status":
        print(json.dumps(status(argv[1])))
        return 0
    if len(argv) >= 4 and argv[0] == "submit":
        timeout = 10.0
        if "--timeout" in argv:
            timeout = float(argv[argv.index("--timeout") + 1])
        with open(argv[3], encoding="utf-8") as f:
            payloads = json.load(f)
        results = submit(argv[1], argv[2], payloads, timeout)
        text = json.dumps(results)
        if "--out" in argv:
            out = argv[argv.index("--out") + 1]
            with open(out + ".tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(out + ".tmp", out)
        print(text, flush=True)
        complete = len(results) == len(payloads) and all(
            r["outcome"] == "complete" for r in results
        )
        return 0 if complete else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # a clear one-line reason for the test's message
        print(f"gear_client.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
