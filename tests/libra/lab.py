#!/usr/bin/env python3
"""Small network tools for keepserver's Libra end-to-end tests; the tests run them inside their
own network namespace. Every server stops by itself after --lifetime seconds (default 300).

    lab.py ports N
        Prints N distinct free TCP ports on 127.0.0.1, one a line.
    lab.py backend NAME PORT_FILE [--port P] [--lifetime S]
        HTTP/1.1 server on 127.0.0.1 (port P, default any) answering every GET with 200 and the
        body "backend=NAME path=PATH\\n". Writes its port to PORT_FILE once it listens.
    lab.py swift DIR [--lifetime S]
        A fake object store on 127.0.0.1: every PUT is recorded as DIR/req-N.json (method, path,
        headers as [name, value] pairs) and DIR/req-N.body, then answered with the status in
        DIR/status (default 201), after sleeping DIR/delay seconds if that file exists. Writes its
        port to DIR/port once it listens.
    lab.py get URL COUNT [--timeout S]
        COUNT GET requests, each on a new connection; prints JSON {"results": [{"status": N,
        "body": "..."} or {"error": "..."}], "body_bytes": N}.
    lab.py hammer URL STOP_FILE OUT_FILE [--max S]
        GET requests one after another, each on a new connection, until STOP_FILE exists (then 20
        more) or S seconds (default 30) have passed; writes OUT_FILE.started after the first
        answer, then OUT_FILE: {"ok": N, "failed": N, "errors": [...first 10], "bodies": {...}}.
"""

import http.client
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse


def option(argv, name, default):
    if name in argv:
        return argv[argv.index(name) + 1]
    return default


def write_atomic(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def exit_after(seconds):
    def later():
        time.sleep(seconds)
        os._exit(0)

    threading.Thread(target=later, daemon=True).start()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


def ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()


def backend(name, port_file, port, lifetime):
    class Handler(Quiet):
        def do_GET(self):
            body = f"backend={name} path={self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

    server = Server(("127.0.0.1", port), Handler)
    exit_after(lifetime)
    write_atomic(port_file, str(server.server_address[1]))
    server.serve_forever()


def swift(directory, lifetime):
    counter = {"n": 0}
    lock = threading.Lock()

    def read_file(name, default):
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                return f.read().strip()
        except FileNotFoundError:
            return default

    class Handler(Quiet):
        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_PUT(self):
            body = self.read_body()
            with lock:
                counter["n"] += 1
                n = counter["n"]
            base = os.path.join(directory, f"req-{n}")
            with open(base + ".body", "wb") as f:
                f.write(body)
            record = {
                "method": "PUT",
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
            }
            write_atomic(base + ".json", json.dumps(record))
            delay = float(read_file("delay", "0"))
            if delay > 0:
                time.sleep(delay)
            status = int(read_file("status", "201"))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = Server(("127.0.0.1", 0), Handler)
    exit_after(lifetime)
    write_atomic(os.path.join(directory, "port"), str(server.server_address[1]))
    server.serve_forever()


def get_once(url, timeout):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path or "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return {"status": resp.status, "body": body}
    except ConnectionRefusedError:
        return {"error": "refused"}
    except Exception as e:  # reset, timeout, bad status line...
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()


def get(url, count, timeout):
    results = [get_once(url, timeout) for _ in range(count)]
    body_bytes = sum(len(r.get("body", "").encode()) for r in results)
    print(json.dumps({"results": results, "body_bytes": body_bytes}))


def hammer(url, stop_file, out_file, max_seconds):
    end = time.monotonic() + max_seconds
    ok, failed, errors, bodies = 0, 0, [], {}
    after_stop = None
    while time.monotonic() < end:
        r = get_once(url, 2.0)
        if r.get("status") == 200:
            ok += 1
            name = r["body"].split()[0] if r["body"] else ""
            bodies[name] = bodies.get(name, 0) + 1
            if ok == 1:
                write_atomic(out_file + ".started", "1")
        else:
            failed += 1
            if len(errors) < 10:
                errors.append(r)
        if after_stop is None and os.path.exists(stop_file):
            after_stop = 20
        if after_stop is not None:
            after_stop -= 1
            if after_stop <= 0:
                break
    write_atomic(
        out_file,
        json.dumps({"ok": ok, "failed": failed, "errors": errors, "bodies": bodies}),
    )


def main(argv):
    lifetime = float(option(argv, "--lifetime", "300"))
    if argv[:1] == ["ports"]:
        ports(int(argv[1]))
    elif argv[:1] == ["backend"]:
        backend(argv[1], argv[2], int(option(argv, "--port", "0")), lifetime)
    elif argv[:1] == ["swift"]:
        swift(argv[1], lifetime)
    elif argv[:1] == ["get"]:
        get(argv[1], int(argv[2]), float(option(argv, "--timeout", "3")))
    elif argv[:1] == ["hammer"]:
        hammer(argv[1], argv[2], argv[3], float(option(argv, "--max", "30")))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
