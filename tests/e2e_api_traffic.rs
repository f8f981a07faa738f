//! End-to-end traffic tests of the admin API: the real keepserver (MASTER while the VIP is on
//! `ksv0`, `api.serve: always`) in a network namespace of its own, driven over HTTP by `curl`
//! with a bearer token, configures the real HAProxy in front of real HTTP backends on
//! 198.51.100.x (tests/fixtures/api/backend.py); after every step the traffic through the
//! listener on 203.0.113.10 is checked, also with curl (from chosen source addresses, with a
//! cookie jar, over TLS with SNI against a CA the test makes with the openssl CLI). Everything
//! runs inside the namespace; its guard kills every process in it and the workspace guard
//! removes every file, also when a test fails.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::*;

/// The VIP on `ksv0` that makes the node MASTER.
const VIP_CIDR: &str = "192.0.2.10/24";
/// The address the listeners bind (the load balancer's `vip_address`).
const FRONT: &str = "203.0.113.10";
/// Where the admin API listens, inside the namespace.
const API: &str = "http://127.0.0.1:9180";
/// The bearer token the API is configured with.
const TOKEN: &str = "e2e-token-3f9c1a7b";
/// This node's peer name (`api.peer-name`).
const PEER_NAME: &str = "ks-e2e-node";
/// The port every backend listens on (each has an address of its own).
const BACKEND_PORT: u16 = 8080;
/// The backends the tests start, by name and address (each test takes the first few).
const BACKENDS: [(&str, &str); 4] = [
    ("A", "198.51.100.11"),
    ("B", "198.51.100.12"),
    ("C", "198.51.100.13"),
    ("D", "198.51.100.14"),
];
/// The backend script.
const BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api/backend.py");
/// The generous deadline for what HAProxy should do "eventually" (a reload, a health check).
const EVENTUALLY: Duration = Duration::from_secs(30);
/// Longest one curl run may take.
const CURL_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Prerequisites

/// Root, `ip netns`, and haproxy, curl, openssl and python3 on this machine.
fn api_available(test: &str) -> bool {
    if !e2e_available(test) {
        return false;
    }
    let missing: Vec<&str> = ["curl", "openssl", "python3"]
        .into_iter()
        .filter(|tool| {
            !run(
                Command::new("sh").args(["-c", &format!("command -v {tool}")]),
                CURL_TIMEOUT,
            )
            .ok()
        })
        .chain((!Path::new(&haproxy_binary()).exists()).then_some("haproxy"))
        .collect();
    let check = if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("needs {}", missing.join(", ")))
    };
    prerequisite(test, check.as_ref().map_err(Clone::clone))
}

/// The HAProxy binary keepserver is told to use (Debian's place, else the one in `PATH`).
fn haproxy_binary() -> String {
    if Path::new("/usr/sbin/haproxy").exists() {
        return "/usr/sbin/haproxy".to_string();
    }
    let out = run(
        Command::new("sh").args(["-c", "command -v haproxy"]),
        CURL_TIMEOUT,
    );
    out.stdout.trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Answers

/// An answer of the admin API.
#[derive(Debug, Clone)]
struct Reply {
    /// The HTTP status (0: no answer).
    status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    body: Value,
    /// The body as sent.
    raw: String,
}

impl Reply {
    /// The body's `field`, when it names one.
    fn field(&self) -> &str {
        self.body["field"].as_str().unwrap_or("")
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, tail(&self.raw, 20))
    }
}

/// A request that must be refused: what it is, the request, the statuses allowed (default 400)
/// and the field the answer must name, if any.
struct Bad<'a> {
    what: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    /// `None`: the right token; `Some(header)`: this `Authorization` header (or none).
    auth: Option<Option<&'a str>>,
    statuses: &'static [u16],
    field: Option<&'static str>,
}

impl<'a> Bad<'a> {
    fn new(what: &'static str, method: &'static str, path: &str) -> Bad<'a> {
        Bad {
            what,
            method,
            path: path.to_string(),
            body: None,
            auth: None,
            statuses: &[400],
            field: None,
        }
    }

    fn body(mut self, body: Option<Vec<u8>>) -> Self {
        self.body = body;
        self
    }

    fn auth(mut self, header: Option<&'a str>) -> Self {
        self.auth = Some(header);
        self
    }

    fn status(mut self, statuses: &'static [u16]) -> Self {
        self.statuses = statuses;
        self
    }

    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

/// What one GET through the listener got: the backend's name, or what went wrong.
type Served = Result<String, String>;

/// The backends' names from `results`, or the first failure with all results.
fn names_of(results: &[Served]) -> Result<Vec<String>, String> {
    results
        .iter()
        .map(|r| {
            r.clone()
                .map_err(|e| format!("{e} (all results: {results:?})"))
        })
        .collect()
}

/// How many times each name occurs.
fn counts(names: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for n in names {
        *counts.entry(n.clone()).or_insert(0) += 1;
    }
    counts
}

/// The distinct names, sorted.
fn distinct(names: &[String]) -> Vec<String> {
    counts(names).into_keys().collect()
}

/// `names` as owned strings, sorted.
fn set(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// The lab

/// A backend process.
struct Backend {
    address: String,
    child: Option<Child>,
}

/// Everything the API shows, and the haproxy.cfg it made: what must not change when a request
/// is refused.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    lists: BTreeMap<String, Value>,
    config: Option<Vec<u8>>,
}

/// One test's world. Field order is drop order: keepserver, the backends, every process left in
/// the namespace and the namespace itself, then the files.
struct Lab {
    daemon: Option<Daemon>,
    /// keepservers killed by [`Lab::kill_and_restart`] (dropping one clears the namespace).
    killed: Vec<Daemon>,
    backends: BTreeMap<String, Backend>,
    ns: Netns,
    ws: Workspace,
    seq: AtomicUsize,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.daemon.take();
        for b in self.backends.values_mut() {
            if let Some(mut child) = b.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The config: the logging hook for start and stop, and the `api` section.
fn config_text(ws: &Path) -> String {
    let mut y = ConfigSpec::new("192.0.2.10").render(ws);
    let _ = write!(
        y,
        "api:\n  listen: '127.0.0.1:9180'\n  serve: always\n  peer-name: '{PEER_NAME}'\n  \
         auth:\n    token-file: 'api.token'\n  haproxy:\n    binary: '{}'\n    \
         runtime-dir: 'run'\n",
        haproxy_binary()
    );
    y
}

impl Lab {
    /// Namespace with the backends' and clients' addresses, workspace, keepserver (MASTER, its
    /// API answering). `None` where the tests cannot run (after a SKIP line).
    fn start(test: &str) -> Option<Lab> {
        if !api_available(test) {
            return None;
        }
        let ns = Netns::new(test)?;
        for cidr in [
            VIP_CIDR,
            "203.0.113.10/24",
            "198.51.100.1/24",
            "198.51.100.11/24",
            "198.51.100.12/24",
            "198.51.100.13/24",
            "198.51.100.14/24",
            "198.51.100.101/24",
            "198.51.100.102/24",
            "198.51.100.103/24",
            "198.51.100.104/24",
        ] {
            ns.add_addr(cidr);
        }
        let ws = Workspace::with_config_text(config_text, false, "server.pid");
        ws.write("api.token", &format!("{TOKEN}\n"));
        fs::set_permissions(ws.path("api.token"), fs::Permissions::from_mode(0o600))
            .expect("chmod the token file");
        fs::create_dir_all(ws.path("backends")).expect("create backends/");
        fs::create_dir_all(ws.path("certificates")).expect("create certificates/");
        let mut lab = Lab {
            daemon: None,
            killed: Vec::new(),
            backends: BTreeMap::new(),
            ns,
            ws,
            seq: AtomicUsize::new(0),
        };
        lab.daemon = Some(Daemon::start(&lab.ns, &lab.ws));
        lab.wait_api();
        Some(lab)
    }

    /// Waits until the API answers an authenticated GET.
    fn wait_api(&self) {
        self.wait_until("the admin API answers", EVENTUALLY, || {
            self.request("GET", "/api/haproxy/loadbalancers", None)
                .status
                == 200
        });
    }

    fn unique(&self, stem: &str) -> String {
        format!("{stem}-{}", self.seq.fetch_add(1, Ordering::SeqCst))
    }

    // -- the API ------------------------------------------------------------------------------

    /// A curl command for the API: `auth` is the whole `Authorization` header (or none), the
    /// body goes through a file; returns the command and the file its answer goes to.
    fn curl_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        auth: Option<&str>,
    ) -> (Command, PathBuf) {
        let name = self.unique("api");
        let out = self.ws.path(&format!("{name}.out"));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns.name(), "curl", "-sS"])
            .args(["--max-time", "40", "-X", method])
            .arg("-o")
            .arg(&out)
            .args(["-w", "%{http_code}"]);
        if let Some(auth) = auth {
            cmd.args(["-H", &format!("Authorization: {auth}")]);
        }
        if let Some(body) = body {
            let file = self.ws.path(&format!("{name}.in"));
            fs::write(&file, body).expect("write the request body");
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", file.display()));
        }
        cmd.arg(format!("{API}{path}"));
        (cmd, out)
    }

    /// Runs a command made by [`Lab::curl_api`].
    fn finish(&self, mut cmd: Command, out: &Path) -> Reply {
        let done = run(&mut cmd, CURL_TIMEOUT);
        let raw = fs::read_to_string(out).unwrap_or_default();
        let status = done.stdout.trim().parse().unwrap_or(0);
        Reply {
            status,
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw: if status == 0 { done.to_string() } else { raw },
        }
    }

    /// One request with the right token.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.request_raw(method, path, bytes.as_deref(), Some(&bearer()))
    }

    /// One request with any body bytes and `Authorization` header.
    fn request_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        auth: Option<&str>,
    ) -> Reply {
        let (cmd, out) = self.curl_api(method, path, body, auth);
        self.finish(cmd, &out)
    }

    /// A request that must get `status`; returns its body.
    fn expect(&self, status: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
        let reply = self.request(method, path, body);
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {}: {reply}\n{}",
            body.map(Value::to_string).unwrap_or_default(),
            self.report()
        );
        reply.body
    }

    /// POST (create), expecting 201; returns the object.
    fn create(&self, path: &str, body: Value) -> Value {
        let made = self.expect(201, "POST", path, Some(&body));
        for (k, v) in body.as_object().into_iter().flatten() {
            let scalar = !v.is_object() && v.is_string() == made[k].is_string();
            if scalar {
                assert_eq!(
                    &made[k], v,
                    "POST {path} answers field `{k}` as sent: {made}"
                );
            }
        }
        made
    }

    /// PUT (update), expecting 200; returns the object.
    fn update(&self, path: &str, body: Value) -> Value {
        self.expect(200, "PUT", path, Some(&body))
    }

    /// DELETE, expecting 204; the object is gone (404) afterwards.
    fn delete(&self, path: &str) {
        self.expect(204, "DELETE", path, None);
        self.expect(404, "GET", path, None);
    }

    /// GET, expecting 200.
    fn read(&self, path: &str) -> Value {
        self.expect(200, "GET", path, None)
    }

    /// Every list the API has (and every pool's members), and haproxy.cfg.
    fn snapshot(&self) -> Snapshot {
        let mut lists = BTreeMap::new();
        for kind in [
            "loadbalancers",
            "listeners",
            "pools",
            "healthmonitors",
            "peers",
        ] {
            let list = self.read(&format!("/api/haproxy/{kind}"));
            if kind == "pools" {
                for pool in list.as_array().into_iter().flatten() {
                    let id = pool["id"].as_str().expect("pool id");
                    let path = format!("/api/haproxy/pools/{id}/members");
                    lists.insert(path.clone(), self.read(&path));
                }
            }
            lists.insert(kind.to_string(), list);
        }
        Snapshot {
            lists,
            config: fs::read(self.haproxy_cfg()).ok(),
        }
    }

    // -- backends -----------------------------------------------------------------------------

    /// Starts each `(name, address)` of `list` as [`Lab::backend`] does.
    fn backends(&mut self, list: &[(&str, &str)]) {
        for (name, address) in list {
            self.backend(name, address);
        }
    }

    /// Starts backend `name` on `address`:8080 and waits until it listens.
    fn backend(&mut self, name: &str, address: &str) {
        self.backends.insert(
            name.to_string(),
            Backend {
                address: address.to_string(),
                child: None,
            },
        );
        self.start_backend(name);
    }

    fn backend_file(&self, name: &str, what: &str) -> PathBuf {
        self.ws.path(&format!("backends/{name}.{what}"))
    }

    fn start_backend(&mut self, name: &str) {
        let ready = self.backend_file(name, "ready");
        let _ = fs::remove_file(&ready);
        let address = self.backends[name].address.clone();
        let dir = self.ws.path("backends").display().to_string();
        let log = self.ws.path(&format!("backends/{name}.log"));
        let port = BACKEND_PORT.to_string();
        let child = self
            .ns
            .spawn(&["python3", BACKEND, name, &address, &port, &dir], &log);
        self.backends.get_mut(name).expect("known backend").child = Some(child);
        self.wait_until(&format!("backend {name} listens"), EVENTUALLY, || {
            ready.exists()
        });
    }

    /// SIGKILLs backend `name` and waits until it is gone.
    fn kill_backend(&mut self, name: &str) {
        let b = self.backends.get_mut(name).expect("known backend");
        if let Some(mut child) = b.child.take() {
            signal(child.id() as i32, Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// The requests (other than health checks) backend `name` has answered or holds.
    fn hits(&self, name: &str) -> u64 {
        fs::read_to_string(self.backend_file(name, "hits"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The body of a member for backend `name`.
    fn member(&self, id: &str, backend: &str) -> Value {
        json!({"id": id, "address": self.backends[backend].address,
               "protocol_port": BACKEND_PORT})
    }

    // -- traffic ------------------------------------------------------------------------------

    /// `count` GETs of `url`, each on a new connection, with curl `args` before the URLs.
    fn get_with(&self, url: &str, count: usize, args: &[&str]) -> Vec<Served> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns.name(), "curl", "-sS"])
            .args(["--max-time", "5", "-H", "Connection: close"])
            .args(["-w", "\n|%{http_code}|\n"])
            .args(args);
        for _ in 0..count {
            cmd.arg(url);
        }
        let out = run(&mut cmd, CURL_TIMEOUT);
        let mut results = Vec::new();
        let mut body = String::new();
        for line in out.stdout.lines() {
            let code = line
                .strip_prefix('|')
                .and_then(|l| l.strip_suffix('|'))
                .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()));
            match code {
                Some("200") => results.push(Ok(body.trim().to_string())),
                Some("000") => results.push(Err("no answer".to_string())),
                Some(code) => results.push(Err(format!("HTTP {code}: {}", body.trim()))),
                None => {
                    body.push_str(line);
                    body.push('\n');
                    continue;
                }
            }
            body.clear();
        }
        if results.len() != count {
            results.push(Err(format!("curl gave {} results:\n{out}", results.len())));
        }
        results
    }

    /// `count` GETs of `http://203.0.113.10:PORT/`.
    fn get(&self, port: u16, count: usize) -> Vec<Served> {
        self.get_with(&format!("http://{FRONT}:{port}/"), count, &[])
    }

    /// The backends that answered `count` GETs on `port`, in order; panics if any failed.
    fn served(&self, port: u16, count: usize) -> Vec<String> {
        names_of(&self.get(port, count))
            .unwrap_or_else(|e| panic!("GET on port {port}: {e}\n{}", self.report()))
    }

    /// Waits until `count` GETs on `port` are all answered, by exactly the backends `want`.
    fn wait_served_by(&self, port: u16, count: usize, want: &[&str]) {
        let want = set(want);
        let mut last = Vec::new();
        let ok = wait_for(
            || {
                last = self.get(port, count);
                names_of(&last).is_ok_and(|names| distinct(&names) == want)
            },
            EVENTUALLY,
        );
        assert!(
            ok,
            "{count} GETs on port {port} should all be answered by {want:?}; last: {last:?}\n{}",
            self.report()
        );
    }

    /// Waits until a GET on `port` gets no answer (nothing listens, or the frontend is off).
    fn wait_refused(&self, port: u16) {
        let mut last = Vec::new();
        let ok = wait_for(
            || {
                last = self.get(port, 1);
                last.iter()
                    .all(|r| r.as_ref().is_err_and(|e| e == "no answer"))
            },
            EVENTUALLY,
        );
        assert!(
            ok,
            "port {port} should refuse; last: {last:?}\n{}",
            self.report()
        );
    }

    /// Waits until GETs on `port` are answered with HTTP `status` (an empty pool: 503).
    fn wait_status(&self, port: u16, status: u16) {
        let want = format!("HTTP {status}");
        let mut last = Vec::new();
        let ok = wait_for(
            || {
                last = self.get(port, 2);
                last.iter()
                    .all(|r| r.as_ref().is_err_and(|e| e.starts_with(&want)))
            },
            EVENTUALLY,
        );
        assert!(
            ok,
            "port {port} should answer {status}; last: {last:?}\n{}",
            self.report()
        );
    }

    // -- HAProxy ------------------------------------------------------------------------------

    /// The haproxy.cfg the API owns.
    fn haproxy_cfg(&self) -> PathBuf {
        self.ws.path("haproxy.cfg")
    }

    /// Its text (empty when absent).
    fn cfg(&self) -> String {
        fs::read_to_string(self.haproxy_cfg()).unwrap_or_default()
    }

    /// How many HAProxy processes (master and workers) run in the namespace.
    fn haproxy_processes(&self) -> usize {
        let out = run(
            Command::new("ip").args(["netns", "pids", self.ns.name()]),
            CURL_TIMEOUT,
        );
        out.stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|pid| pid_alive(*pid) && cmdline(*pid).starts_with(&haproxy_binary()))
            .count()
    }

    /// Sends one command to the HAProxy stats socket and returns the answer.
    fn stats_command(&self, command: &str) -> Result<String, String> {
        let path = self.ws.path("run/haproxy.sock");
        let mut s = UnixStream::connect(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(format!("{command}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| e.to_string())?;
        Ok(text)
    }

    /// The status (`UP`, `DOWN`, `MAINT`, `no check`, ...) HAProxy shows for server `member` of
    /// pool `pool`.
    fn server_status(&self, pool: &str, member: &str) -> Option<String> {
        let stat = self.stats_command("show stat").ok()?;
        let backend = format!("backend-{pool}");
        stat.lines().find_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols.len() > 17 && cols[0] == backend && cols[1] == member)
                .then(|| cols[17].to_string())
        })
    }

    /// Waits until HAProxy shows `member` of `pool` as `status`.
    fn wait_server(&self, pool: &str, member: &str, status: &str) {
        self.wait_until(
            &format!("HAProxy shows server {member} of pool {pool} {status}"),
            EVENTUALLY,
            || self.server_status(pool, member).as_deref() == Some(status),
        );
    }

    // -- the daemon ---------------------------------------------------------------------------

    /// SIGKILLs keepserver, waits until it is gone, runs `meanwhile`, and starts it again.
    fn kill_and_restart_checking(&mut self, meanwhile: impl FnOnce(&Lab)) {
        let mut old = self.daemon.take().expect("a running keepserver");
        old.signal(Signal::SIGKILL);
        let gone = wait_for(|| !old.alive(), EVENTUALLY);
        self.killed.push(old);
        assert!(gone, "keepserver should die of SIGKILL\n{}", self.report());
        meanwhile(self);
        self.daemon = Some(Daemon::start(&self.ns, &self.ws));
        self.wait_api();
    }

    // -- waiting and reporting ----------------------------------------------------------------

    fn wait_until(&self, what: &str, deadline: Duration, cond: impl FnMut() -> bool) {
        wait_or_report(what, deadline, cond, || self.report());
    }

    /// Everything useful to understand a failure.
    fn report(&self) -> String {
        let mut r = self.ws.report();
        let _ = writeln!(r, "=== haproxy.cfg ===\n{}", self.cfg());
        let store = self.ws.read("api-store.json");
        let _ = writeln!(r, "=== api-store.json ===\n{}", tail(&store, 80));
        for name in self.backends.keys() {
            let log = fs::read_to_string(self.backend_file(name, "log")).unwrap_or_default();
            if !log.is_empty() {
                let _ = writeln!(r, "=== backend {name} log ===\n{}", tail(&log, 10));
            }
        }
        let pids = run(
            Command::new("ip").args(["netns", "pids", self.ns.name()]),
            CURL_TIMEOUT,
        );
        let _ = writeln!(r, "=== processes in the namespace ===");
        for pid in pids.stdout.split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = writeln!(r, "{pid} {}", cmdline(pid));
            }
        }
        r
    }
}

/// The right `Authorization` header.
fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// The members path of `pool`.
fn members(pool: &str) -> String {
    format!("/api/haproxy/pools/{pool}/members")
}

/// A load balancer `lb1` on 203.0.113.10, an HTTP pool `web` with `pool_fields` and a listener
/// `http` on `port` sending to it.
fn http_front(lab: &Lab, port: u16, pool_fields: Value) {
    lab.create(
        "/api/haproxy/loadbalancers",
        json!({"id": "lb1", "name": "shop", "vip_address": FRONT}),
    );
    let mut pool = json!({"id": "web", "protocol": "HTTP", "loadbalancer_id": "lb1"});
    for (k, v) in pool_fields.as_object().into_iter().flatten() {
        pool[k] = v.clone();
    }
    lab.create("/api/haproxy/pools", pool);
    lab.create(
        "/api/haproxy/listeners",
        json!({"id": "http", "protocol": "HTTP", "protocol_port": port,
               "default_pool_id": "web", "loadbalancer_id": "lb1"}),
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Every object type is created, read, updated and deleted, and the traffic through the
/// listener follows each step: round robin over the members, weights, a disabled member, a
/// health monitor whose expected code no member gives, the peers section, a listener moved to
/// another port, a disabled load balancer, and at the end nothing left to serve.
#[test]
fn every_object_type_created_read_updated_and_deleted_with_traffic_after_each_step() {
    let Some(mut lab) = Lab::start("api_crud") else {
        return;
    };
    lab.backends(&BACKENDS[..3]);
    assert_eq!(lab.read("/api/haproxy/loadbalancers"), json!([]));
    let quagga = lab.request("GET", "/api/quagga", None);
    assert_eq!(quagga.status, 404, "no BGP peering set yet: {quagga}");

    // Load balancer, pool, listener: HAProxy serves, with no member yet.
    http_front(&lab, 80, json!({"lb_algorithm": "ROUND_ROBIN"}));
    let lb = lab.read("/api/haproxy/loadbalancers/lb1");
    assert_eq!(
        (lb["name"].as_str(), lb["enabled"].as_bool()),
        (Some("shop"), Some(true))
    );
    assert_eq!(lab.read("/api/haproxy/listeners")[0]["protocol_port"], 80);
    lab.wait_status(80, 503);

    // Members: round robin spreads requests evenly.
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    assert_eq!(
        lab.read(&format!("{}/a", members("web")))["address"],
        "198.51.100.11"
    );
    assert_eq!(lab.read(&members("web")).as_array().map(Vec::len), Some(2));
    lab.wait_served_by(80, 4, &["A", "B"]);
    let c = counts(&lab.served(80, 20));
    assert_eq!((c["A"], c["B"]), (10, 10), "round robin alternates: {c:?}");

    // Member updates: a weight, then disabled, then back.
    let b = lab.update(&format!("{}/b", members("web")), json!({"weight": 3}));
    assert_eq!(
        (b["weight"].as_u64(), b["address"].as_str()),
        (Some(3), Some("198.51.100.12"))
    );
    lab.wait_until("the weight is in haproxy.cfg", EVENTUALLY, || {
        lab.cfg().contains("server b 198.51.100.12:8080 weight 3")
    });
    let c = counts(&lab.served(80, 40));
    assert_eq!((c["A"], c["B"]), (10, 30), "weights 1 and 3: {c:?}");
    lab.update(&format!("{}/b", members("web")), json!({"enabled": false}));
    lab.wait_served_by(80, 6, &["A"]);
    lab.update(
        &format!("{}/b", members("web")),
        json!({"enabled": true, "weight": 1}),
    );
    lab.wait_served_by(80, 6, &["A", "B"]);

    // A third member; the first one deleted.
    lab.create(&members("web"), lab.member("c", "C"));
    lab.wait_served_by(80, 6, &["A", "B", "C"]);
    lab.delete(&format!("{}/a", members("web")));
    lab.wait_served_by(80, 6, &["B", "C"]);

    // Pool update: the algorithm.
    let pool = lab.update(
        "/api/haproxy/pools/web",
        json!({"lb_algorithm": "LEAST_CONNECTIONS"}),
    );
    assert_eq!(pool["lb_algorithm"], "LEAST_CONNECTIONS");
    assert_eq!(
        lab.read("/api/haproxy/pools/web")["lb_algorithm"],
        "LEAST_CONNECTIONS"
    );
    assert!(
        lab.cfg().contains("    balance leastconn\n"),
        "{}",
        lab.report()
    );
    lab.wait_served_by(80, 6, &["B", "C"]);

    // Health monitor: created (members stay up), updated to expect a code nobody gives (all
    // down: 503), back, deleted.
    let hm = lab.create(
        "/api/haproxy/healthmonitors",
        json!({"id": "hm1", "pool_id": "web", "type": "HTTP", "delay": 1, "timeout": 1,
               "max_retries": 1, "url_path": "/health", "expected_codes": "200"}),
    );
    assert_eq!(hm["url_path"], "/health");
    assert!(
        lab.cfg().contains("option httpchk GET '/health'"),
        "{}",
        lab.report()
    );
    lab.wait_server("web", "b", "UP");
    lab.wait_served_by(80, 6, &["B", "C"]);
    let hm = lab.update(
        "/api/haproxy/healthmonitors/hm1",
        json!({"expected_codes": "299"}),
    );
    assert_eq!(hm["expected_codes"], "299");
    lab.wait_status(80, 503);
    lab.update(
        "/api/haproxy/healthmonitors/hm1",
        json!({"expected_codes": "200"}),
    );
    lab.wait_served_by(80, 6, &["B", "C"]);
    lab.delete("/api/haproxy/healthmonitors/hm1");
    assert!(!lab.cfg().contains("httpchk"), "{}", lab.report());
    lab.wait_served_by(80, 6, &["B", "C"]);

    // Peers: this node and another; the section follows; traffic goes on.
    lab.create(
        "/api/haproxy/peers",
        json!({"hostname": PEER_NAME, "address": "127.0.0.1", "port": 10001}),
    );
    lab.create(
        "/api/haproxy/peers",
        json!({"hostname": "other-node", "address": "198.51.100.250"}),
    );
    assert_eq!(lab.read("/api/haproxy/peers/other-node")["port"], 1024);
    let cfg = lab.cfg();
    assert!(
        cfg.contains("peers kinx_loadbalancer_peers\n")
            && cfg.contains(&format!("    peer {PEER_NAME} 127.0.0.1:10001\n"))
            && cfg.contains("    peer other-node 198.51.100.250:1024\n"),
        "{}",
        lab.report()
    );
    lab.wait_served_by(80, 4, &["B", "C"]);
    let peer = lab.update("/api/haproxy/peers/other-node", json!({"port": 1025}));
    assert_eq!(peer["port"], 1025);
    assert!(
        lab.cfg()
            .contains("    peer other-node 198.51.100.250:1025\n")
    );
    lab.delete("/api/haproxy/peers/other-node");
    lab.delete(&format!("/api/haproxy/peers/{PEER_NAME}"));
    assert!(!lab.cfg().contains("peers "), "{}", lab.report());
    lab.wait_served_by(80, 4, &["B", "C"]);

    // Listener and pool updates: disabled (the frontend stops; the backend answers 503),
    // enabled again.
    let l = lab.update("/api/haproxy/listeners/http", json!({"enabled": false}));
    assert_eq!(l["enabled"], false);
    lab.wait_refused(80);
    lab.update("/api/haproxy/listeners/http", json!({"enabled": true}));
    lab.wait_served_by(80, 4, &["B", "C"]);
    let p = lab.update("/api/haproxy/pools/web", json!({"enabled": false}));
    assert_eq!(p["enabled"], false);
    lab.wait_status(80, 503);
    lab.update("/api/haproxy/pools/web", json!({"enabled": true}));
    lab.wait_served_by(80, 4, &["B", "C"]);

    // Listener update: another port.
    let l = lab.update(
        "/api/haproxy/listeners/http",
        json!({"protocol_port": 8081}),
    );
    assert_eq!(l["protocol_port"], 8081);
    lab.wait_served_by(8081, 4, &["B", "C"]);
    lab.wait_refused(80);

    // Load balancer update: disabled, its listener stops; enabled again.
    let lb = lab.update(
        "/api/haproxy/loadbalancers/lb1",
        json!({"enabled": false, "name": "closed"}),
    );
    assert_eq!(
        (lb["enabled"].as_bool(), lb["name"].as_str()),
        (Some(false), Some("closed"))
    );
    lab.wait_refused(8081);
    lab.update("/api/haproxy/loadbalancers/lb1", json!({"enabled": true}));
    lab.wait_served_by(8081, 4, &["B", "C"]);

    // Deletes: what is used cannot go; in order everything goes, and HAProxy with it.
    let refused = lab.request("DELETE", "/api/haproxy/pools/web", None);
    assert_eq!(refused.status, 409, "{refused}");
    lab.wait_served_by(8081, 2, &["B", "C"]);
    lab.delete("/api/haproxy/listeners/http");
    lab.wait_refused(8081);
    lab.delete("/api/haproxy/pools/web");
    lab.delete("/api/haproxy/loadbalancers/lb1");
    for kind in [
        "loadbalancers",
        "listeners",
        "pools",
        "healthmonitors",
        "peers",
    ] {
        assert_eq!(
            lab.read(&format!("/api/haproxy/{kind}")),
            json!([]),
            "{kind}"
        );
    }
    lab.wait_until(
        "haproxy.cfg is removed with the last listener",
        EVENTUALLY,
        || !lab.haproxy_cfg().exists(),
    );
}

/// LEAST_CONNECTIONS sends every new request past the member busy with a slow one; the same
/// pool switched to ROUND_ROBIN sends them to both.
#[test]
fn least_connections_avoids_the_busy_member_and_round_robin_does_not() {
    let Some(mut lab) = Lab::start("api_leastconn") else {
        return;
    };
    lab.backend("A", "198.51.100.11");
    lab.backend("B", "198.51.100.12");
    http_front(&lab, 80, json!({"lb_algorithm": "LEAST_CONNECTIONS"}));
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    lab.wait_served_by(80, 4, &["A", "B"]);

    let busy_while = |lab: &Lab, seconds: u32| -> (String, Vec<String>) {
        for name in ["A", "B"] {
            let _ = fs::remove_file(lab.backend_file(name, "slow"));
        }
        // An old worker still listening could take one request and not know of the other.
        lab.wait_until("one HAProxy worker left", EVENTUALLY, || {
            lab.haproxy_processes() == 2
        });
        let log = lab.ws.path(&format!("{}.log", lab.unique("slow")));
        let url = format!("http://{FRONT}/slow?s={seconds}");
        let mut slow = lab
            .ns
            .spawn(&["curl", "-sS", "--max-time", "60", &url], &log);
        lab.wait_until("the slow request reached a backend", EVENTUALLY, || {
            ["A", "B"]
                .iter()
                .any(|n| lab.backend_file(n, "slow").exists())
        });
        // Spaced a little, so that each quick request has left its member before the next.
        let url = format!("http://{FRONT}/");
        let quick = names_of(&lab.get_with(&url, 6, &["--rate", "4/s"]))
            .unwrap_or_else(|e| panic!("quick requests: {e}\n{}", lab.report()));
        let status = slow.wait().expect("wait for the slow request");
        assert!(
            status.success(),
            "the slow request: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        let busy = fs::read_to_string(&log)
            .unwrap_or_default()
            .trim()
            .to_string();
        (busy, quick)
    };

    let (busy, quick) = busy_while(&lab, 4);
    let other = if busy == "A" { "B" } else { "A" };
    assert_eq!(
        distinct(&quick),
        set(&[other]),
        "least-conn: while {busy} holds the slow request, all go to {other}\n{}",
        lab.report()
    );

    lab.update(
        "/api/haproxy/pools/web",
        json!({"lb_algorithm": "ROUND_ROBIN"}),
    );
    lab.wait_until("balance roundrobin in haproxy.cfg", EVENTUALLY, || {
        lab.cfg().contains("    balance roundrobin\n")
    });
    let (busy, quick) = busy_while(&lab, 4);
    assert_eq!(
        distinct(&quick),
        set(&["A", "B"]),
        "round robin: both members, also {busy} that holds the slow request\n{}",
        lab.report()
    );
}

/// SOURCE_IP persistence: each client address stays on one member (the stick table, synced
/// through the rendered `peers` section, holds them); HTTP_COOKIE: a client with the inserted
/// cookie stays on one member, one without spreads.
#[test]
fn source_ip_and_http_cookie_persistence_keep_a_client_on_one_member() {
    let Some(mut lab) = Lab::start("api_sticky") else {
        return;
    };
    lab.backends(&BACKENDS[..3]);
    lab.create(
        "/api/haproxy/peers",
        json!({"hostname": PEER_NAME, "address": "127.0.0.1", "port": 10002}),
    );
    lab.create(
        "/api/haproxy/peers",
        json!({"hostname": "other-node", "address": "198.51.100.250"}),
    );
    http_front(
        &lab,
        80,
        json!({"lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "SOURCE_IP"}}),
    );
    for (id, backend) in [("a", "A"), ("b", "B"), ("c", "C")] {
        lab.create(&members("web"), lab.member(id, backend));
    }
    let cfg = lab.cfg();
    for line in [
        "peers kinx_loadbalancer_peers\n",
        &format!("    peer {PEER_NAME} 127.0.0.1:10002\n"),
        &format!("    localpeer {PEER_NAME}\n"),
        "    stick-table type ip size 200k expire 1d peers kinx_loadbalancer_peers\n",
        "    stick on src\n",
    ] {
        assert!(cfg.contains(line), "missing `{line}`\n{}", lab.report());
    }
    lab.wait_until("the members serve", EVENTUALLY, || {
        names_of(&lab.get(80, 3)).is_ok()
    });

    let clients = [
        "198.51.100.101",
        "198.51.100.102",
        "198.51.100.103",
        "198.51.100.104",
    ];
    let url = format!("http://{FRONT}/");
    let mut chosen = Vec::new();
    for client in clients {
        let names = names_of(&lab.get_with(&url, 8, &["--interface", client]))
            .unwrap_or_else(|e| panic!("client {client}: {e}\n{}", lab.report()));
        assert_eq!(
            distinct(&names).len(),
            1,
            "client {client} sticks: {names:?}"
        );
        chosen.push(names[0].clone());
    }
    assert!(
        distinct(&chosen).len() >= 2,
        "round robin gives new clients different members: {chosen:?}"
    );
    let table = lab
        .stats_command("show table backend-web")
        .unwrap_or_default();
    for client in clients {
        assert!(
            table.contains(&format!("key={client} ")),
            "{client} in the stick table:\n{table}"
        );
    }
    for (client, member) in clients.iter().zip(&chosen) {
        let again = names_of(&lab.get_with(&url, 4, &["--interface", client])).expect("served");
        assert_eq!(
            distinct(&again),
            vec![member.clone()],
            "client {client} later\n{}",
            lab.report()
        );
    }

    let pool = lab.update(
        "/api/haproxy/pools/web",
        json!({"session_persistence": {"type": "HTTP_COOKIE"}}),
    );
    assert_eq!(pool["session_persistence"]["type"], "HTTP_COOKIE");
    lab.wait_until("the cookie in haproxy.cfg", EVENTUALLY, || {
        lab.cfg()
            .contains("    cookie SERVERID insert indirect nocache\n")
    });
    assert!(
        lab.cfg()
            .contains("server a 198.51.100.11:8080 weight 1 cookie a")
    );
    lab.wait_served_by(80, 6, &["A", "B", "C"]);
    let mut chosen = Vec::new();
    for n in 0..3 {
        let jar = lab.ws.path(&format!("cookies-{n}"));
        let jar = jar.display().to_string();
        let names = names_of(&lab.get_with(&url, 8, &["-c", &jar, "-b", &jar]))
            .unwrap_or_else(|e| panic!("cookie client {n}: {e}\n{}", lab.report()));
        assert_eq!(
            distinct(&names).len(),
            1,
            "cookie client {n} sticks: {names:?}"
        );
        let cookies = fs::read_to_string(&jar).unwrap_or_default();
        let member = names[0].to_lowercase();
        assert!(
            cookies.contains(&format!("SERVERID\t{member}")),
            "the jar holds SERVERID={member}:\n{cookies}"
        );
        chosen.push(names[0].clone());
    }
    assert_eq!(distinct(&chosen).len(), 3, "new clients spread: {chosen:?}");
}

/// A health monitor takes a member whose check fails out (no request reaches it while it is
/// down) and puts it back when it passes; a killed member is taken out too, and comes back when
/// it is started again.
#[test]
fn health_monitor_takes_a_failing_or_dead_member_out_and_back() {
    let Some(mut lab) = Lab::start("api_health") else {
        return;
    };
    lab.backend("A", "198.51.100.11");
    lab.backend("B", "198.51.100.12");
    http_front(&lab, 80, json!({"lb_algorithm": "ROUND_ROBIN"}));
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    lab.create(
        "/api/haproxy/healthmonitors",
        json!({"id": "hm", "pool_id": "web", "type": "HTTP", "delay": 1, "timeout": 1,
               "max_retries": 2, "url_path": "/health", "expected_codes": "200"}),
    );
    assert!(
        lab.cfg()
            .contains("server b 198.51.100.12:8080 weight 1 check inter 1s rise 2 fall 2"),
        "{}",
        lab.report()
    );
    lab.wait_server("web", "a", "UP");
    lab.wait_server("web", "b", "UP");
    lab.wait_served_by(80, 4, &["A", "B"]);

    // B's check fails while B itself would still answer.
    fs::write(lab.backend_file("B", "sick"), "").expect("make B sick");
    lab.wait_server("web", "b", "DOWN");
    let before = lab.hits("B");
    assert_eq!(distinct(&lab.served(80, 20)), set(&["A"]));
    assert_eq!(
        lab.hits("B"),
        before,
        "no request reached B while it was down"
    );
    fs::remove_file(lab.backend_file("B", "sick")).expect("make B well");
    lab.wait_server("web", "b", "UP");
    lab.wait_served_by(80, 4, &["A", "B"]);

    // B is killed: taken out, every request answered by A; started again, it returns.
    lab.kill_backend("B");
    lab.wait_server("web", "b", "DOWN");
    assert_eq!(distinct(&lab.served(80, 20)), set(&["A"]));
    lab.start_backend("B");
    lab.wait_server("web", "b", "UP");
    lab.wait_served_by(80, 4, &["A", "B"]);
}

/// Makes a test CA and, signed by it, one certificate for each of `names`, written as
/// `<certificates>/<name>.pem` (certificate and key, as HAProxy's `crt` takes them); returns
/// the CA's certificate.
fn make_certificates(lab: &Lab, names: &[(&str, &str)]) -> PathBuf {
    let dir = lab.ws.path("pki");
    fs::create_dir_all(&dir).expect("create pki/");
    let openssl = |args: &[&str]| {
        let out = run(
            Command::new("openssl").args(args).current_dir(&dir),
            CURL_TIMEOUT,
        );
        assert!(out.ok(), "openssl failed:\n{out}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=keepserver e2e test CA",
    ]);
    for (id, host) in names {
        let ext = format!("{id}.ext");
        fs::write(
            dir.join(&ext),
            format!("subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"),
        )
        .expect("write the extensions");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{id}.key"),
            "-out",
            &format!("{id}.csr"),
            "-subj",
            &format!("/CN={host}"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{id}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{id}.crt"),
        ]);
        let pem = [
            fs::read_to_string(dir.join(format!("{id}.crt"))).expect("the certificate"),
            fs::read_to_string(dir.join(format!("{id}.key"))).expect("the key"),
        ]
        .concat();
        lab.ws.write(&format!("certificates/{id}.pem"), &pem);
    }
    dir.join("ca.pem")
}

/// TERMINATED_HTTPS: TLS ends at HAProxy with the certificate `tls_certificate_id` names, and by
/// SNI with the one of `sni_containers` for the other name; each name, resolved to the listener
/// by curl, gets its own certificate verified against the test CA, and plain HTTP to the pool.
#[test]
fn terminated_https_serves_each_sni_name_its_certificate() {
    let Some(mut lab) = Lab::start("api_tls") else {
        return;
    };
    lab.backend("A", "198.51.100.11");
    lab.backend("B", "198.51.100.12");
    let ca = make_certificates(
        &lab,
        &[("site-a", "a.example.test"), ("site-b", "b.example.test")],
    );
    http_front(&lab, 80, json!({"lb_algorithm": "ROUND_ROBIN"}));
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    let l = lab.create(
        "/api/haproxy/listeners",
        json!({"id": "https", "protocol": "TERMINATED_HTTPS", "protocol_port": 8443,
               "tls_certificate_id": "site-a", "sni_containers": ["site-b"],
               "default_pool_id": "web", "loadbalancer_id": "lb1"}),
    );
    assert_eq!(l["sni_containers"], json!(["site-b"]));
    assert!(lab.cfg().contains(" ssl crt "), "{}", lab.report());
    lab.wait_served_by(80, 2, &["A", "B"]);

    let ca = ca.display().to_string();
    let https = |host: &str| {
        let resolve = format!("{host}:8443:{FRONT}");
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            lab.ns.name(),
            "curl",
            "-sS",
            "-v",
            "--max-time",
            "5",
        ])
        .args(["--cacert", &ca, "--resolve", &resolve])
        .arg(format!("https://{host}:8443/"))
        .arg(format!("https://{host}:8443/"));
        run(&mut cmd, CURL_TIMEOUT)
    };
    for host in ["a.example.test", "b.example.test"] {
        let mut out = https(host);
        lab.wait_until(&format!("https://{host}:8443/ answers"), EVENTUALLY, || {
            out = https(host);
            out.ok()
        });
        assert!(
            out.stderr.contains(&format!("subject: CN={host}")),
            "{host} gets its own certificate:\n{out}"
        );
        assert!(out.stderr.contains("SSL certificate verify ok"), "{out}");
        let mut bodies: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        bodies.sort();
        assert_eq!(bodies, set(&["A", "B"]), "over TLS to both members:\n{out}");
    }
    // A name without a certificate of its own gets the default one, which curl refuses.
    let out = https("c.example.test");
    assert!(
        !out.ok() && out.stderr.contains("CN=a.example.test"),
        "{out}"
    );

    lab.update(
        "/api/haproxy/listeners/https",
        json!({"sni_containers": []}),
    );
    lab.wait_until(
        "the SNI certificate is gone from haproxy.cfg",
        EVENTUALLY,
        || !lab.cfg().contains("site-b.pem"),
    );
    lab.wait_until(
        "b.example.test now gets the default certificate",
        EVENTUALLY,
        || {
            let out = https("b.example.test");
            !out.ok() && out.stderr.contains("subject: CN=a.example.test")
        },
    );
    assert!(https("a.example.test").ok());
    lab.delete("/api/haproxy/listeners/https");
    lab.wait_served_by(80, 2, &["A", "B"]);
}

/// Bad requests are refused with a JSON 4xx naming the field (unknown pool, port 0, an address
/// with a newline, an id with a space, an unknown field, a 1 MiB body, no or a wrong token), a
/// configuration HAProxy refuses with 422; after each, every list, haproxy.cfg and the traffic
/// are as before.
#[test]
fn bad_requests_are_refused_naming_the_field_and_change_nothing() {
    let Some(mut lab) = Lab::start("api_bad") else {
        return;
    };
    lab.backend("A", "198.51.100.11");
    lab.backend("B", "198.51.100.12");
    http_front(&lab, 80, json!({"lb_algorithm": "ROUND_ROBIN"}));
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    lab.wait_served_by(80, 4, &["A", "B"]);
    lab.ws.write(
        "certificates/garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot one\n",
    );
    let before = lab.snapshot();
    assert!(before.config.is_some());

    let member = |extra: Value| {
        let mut m = json!({"address": "198.51.100.13", "protocol_port": 8080});
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        m.to_string().into_bytes()
    };
    let big = {
        let mut m = json!({"address": "198.51.100.13", "protocol_port": 8080});
        m["name"] = json!("x".repeat(1024 * 1024));
        m.to_string().into_bytes()
    };
    let token = bearer();
    let with_token = Some(token.as_str());
    let json_body = |v: Value| Some(v.to_string().into_bytes());
    let cases = [
        Bad::new("a member of an unknown pool", "POST", &members("nope"))
            .body(Some(member(json!({}))))
            .status(&[404]),
        Bad::new(
            "a listener whose default pool does not exist",
            "POST",
            "/api/haproxy/listeners",
        )
        .body(json_body(
            json!({"protocol": "HTTP", "protocol_port": 81, "default_pool_id": "nope"}),
        ))
        .status(&[409])
        .field("default_pool_id"),
        Bad::new("port 0", "POST", &members("web"))
            .body(Some(member(json!({"protocol_port": 0}))))
            .field("protocol_port"),
        Bad::new("an address with a newline", "POST", &members("web"))
            .body(Some(member(
                json!({"address": "198.51.100.13\nserver evil 198.51.100.14:8080"}),
            )))
            .field("address"),
        Bad::new("an id with a space", "POST", &members("web"))
            .body(Some(member(json!({"id": "has space"}))))
            .field("id"),
        Bad::new(
            "an id with a space in the path",
            "PUT",
            &format!("{}/has%20space", members("web")),
        )
        .body(Some(member(json!({}))))
        .field("id"),
        Bad::new("an unknown field", "POST", &members("web"))
            .body(Some(member(json!({"colour": "red"}))))
            .field("colour"),
        Bad::new("not JSON", "POST", &members("web")).body(Some(b"{\"address\": ".to_vec())),
        Bad::new("a 1 MiB body", "POST", &members("web"))
            .body(Some(big))
            .status(&[413]),
        Bad::new("no token", "POST", &members("web"))
            .body(Some(member(json!({}))))
            .auth(None)
            .status(&[401]),
        Bad::new("a wrong token", "POST", &members("web"))
            .body(Some(member(json!({}))))
            .auth(Some("Bearer not-the-token"))
            .status(&[401]),
        Bad::new("a wrong scheme", "DELETE", &format!("{}/a", members("web")))
            .auth(Some("Basic YWRtaW46YWRtaW4="))
            .status(&[401]),
        Bad::new(
            "a certificate HAProxy cannot load",
            "POST",
            "/api/haproxy/listeners",
        )
        .body(json_body(
            json!({"id": "tls", "protocol": "TERMINATED_HTTPS",
            "protocol_port": 8443, "tls_certificate_id": "garbage", "default_pool_id": "web"}),
        ))
        .status(&[422]),
    ];
    let mut failures = Vec::new();
    for bad in cases {
        let Bad {
            what,
            method,
            path,
            body,
            auth,
            statuses,
            field,
        } = bad;
        let auth = auth.unwrap_or(with_token);
        let reply = lab.request_raw(method, &path, body.as_deref(), auth);
        let mut wrong = Vec::new();
        if !statuses.contains(&reply.status) {
            wrong.push(format!(
                "status {} (want one of {statuses:?})",
                reply.status
            ));
        }
        if !reply.body.is_object() || reply.body["reason"].as_str().is_none_or(str::is_empty) {
            wrong.push("the body is not a JSON object with a `reason`".to_string());
        }
        if let Some(field) = field
            && reply.field() != field
        {
            wrong.push(format!("`field` is `{}`, not `{field}`", reply.field()));
        }
        if what == "a certificate HAProxy cannot load" {
            let reason = reply.body["reason"].as_str().unwrap_or("");
            if !reason.contains("garbage.pem") {
                wrong.push("the reason does not carry HAProxy's message about the file".into());
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{what} ({method} {path}): {}: {reply}",
                wrong.join("; ")
            ));
        }
        let after = lab.snapshot();
        assert_eq!(after, before, "{what}: nothing changed\n{}", lab.report());
        let c = counts(&lab.served(80, 4));
        assert_eq!((c["A"], c["B"]), (2, 2), "{what}: traffic as before");
    }
    assert!(
        failures.is_empty(),
        "refusals not as specified:\n{}\n{}",
        failures.join("\n"),
        lab.report()
    );
}

/// A state with every object type survives kill -9 of keepserver: after a restart every GET
/// answers the same, haproxy.cfg is the same, and the traffic is served as before.
#[test]
fn kill_9_and_restart_restores_every_object() {
    let Some(mut lab) = Lab::start("api_restart") else {
        return;
    };
    lab.backend("A", "198.51.100.11");
    lab.backend("B", "198.51.100.12");
    lab.backend("C", "198.51.100.13");
    lab.create(
        "/api/haproxy/peers",
        json!({"hostname": PEER_NAME, "address": "127.0.0.1", "port": 10003}),
    );
    http_front(
        &lab,
        80,
        json!({"lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "SOURCE_IP"},
               "stick_size": "10k", "stick_expire": "1h", "description": "the web pool"}),
    );
    lab.create(&members("web"), lab.member("a", "A"));
    lab.create(&members("web"), lab.member("b", "B"));
    lab.create(
        "/api/haproxy/healthmonitors",
        json!({"id": "hm", "pool_id": "web", "type": "TCP", "delay": 2, "timeout": 1,
               "max_retries": 3}),
    );
    lab.create(
        "/api/haproxy/pools",
        json!({"id": "cookies", "protocol": "HTTP", "lb_algorithm": "LEAST_CONNECTIONS",
               "session_persistence": {"type": "HTTP_COOKIE", "cookie_name": "KS"}}),
    );
    lab.create(&members("cookies"), lab.member("c", "C"));
    let mut weighted = lab.member("b2", "B");
    weighted["weight"] = json!(5);
    weighted["enabled"] = json!(false);
    lab.create(&members("cookies"), weighted);
    lab.create(
        "/api/haproxy/listeners",
        json!({"id": "second", "protocol": "HTTP", "protocol_port": 81, "name": "second one",
               "connection_limit": 100, "default_pool_id": "cookies", "loadbalancer_id": "lb1"}),
    );
    lab.wait_served_by(81, 2, &["C"]);
    lab.wait_until("both members of web serve", EVENTUALLY, || {
        let mut seen = Vec::new();
        for client in ["198.51.100.101", "198.51.100.102", "198.51.100.103"] {
            let url = format!("http://{FRONT}/");
            match names_of(&lab.get_with(&url, 1, &["--interface", client])) {
                Ok(names) => seen.extend(names),
                Err(_) => return false,
            }
        }
        distinct(&seen) == set(&["A", "B"])
    });
    let before = lab.snapshot();

    lab.kill_and_restart_checking(|lab| {
        // HAProxy is a process of its own: it serves on while keepserver is dead.
        lab.wait_served_by(81, 2, &["C"]);
    });
    let after = lab.snapshot();
    assert_eq!(
        after.lists,
        before.lists,
        "every object as before\n{}",
        lab.report()
    );
    assert_eq!(
        after.config,
        before.config,
        "haproxy.cfg as before\n{}",
        lab.report()
    );
    lab.wait_served_by(81, 2, &["C"]);
    lab.wait_until("port 80 serves", EVENTUALLY, || {
        names_of(&lab.get(80, 2)).is_ok()
    });

    // The restarted daemon carries on: a change after the restart is served.
    lab.update(
        &format!("{}/b2", members("cookies")),
        json!({"enabled": true}),
    );
    lab.wait_served_by(81, 4, &["B", "C"]);
}

/// Twenty member POSTs at once all succeed, and end in one consistent state: every member
/// listed, in haproxy.cfg, in the running HAProxy and in the store file, and the traffic
/// reaching every backend.
#[test]
fn a_burst_of_concurrent_member_posts_ends_consistent() {
    let Some(mut lab) = Lab::start("api_burst") else {
        return;
    };
    let backends = BACKENDS;
    lab.backends(&backends);
    http_front(&lab, 80, json!({"lb_algorithm": "ROUND_ROBIN"}));
    lab.wait_status(80, 503);

    let ids: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let body = lab.member(id, backends[i % backends.len()].0).to_string();
                let (cmd, out) = lab.curl_api(
                    "POST",
                    &members("web"),
                    Some(body.as_bytes()),
                    Some(&bearer()),
                );
                let lab = &lab;
                s.spawn(move || lab.finish(cmd, &out))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a POST thread"))
            .collect()
    });
    for (id, reply) in ids.iter().zip(&replies) {
        assert_eq!(reply.status, 201, "POST {id}: {reply}\n{}", lab.report());
    }

    let mut listed: Vec<String> = lab
        .read(&members("web"))
        .as_array()
        .expect("a list")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ids, "every member listed once");
    let cfg = lab.cfg();
    let servers: Vec<&str> = cfg
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("server "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(servers.len(), 20, "20 server lines:\n{cfg}");
    for id in &ids {
        assert!(
            servers.contains(&id.as_str()),
            "{id} in haproxy.cfg:\n{cfg}"
        );
        assert!(
            lab.server_status("web", id).is_some(),
            "{id} in the running HAProxy\n{}",
            lab.report()
        );
    }
    let store = lab.ws.read("api-store.json");
    for id in &ids {
        assert!(
            store.contains(&format!("\"{id}\"")),
            "{id} in the store file"
        );
    }
    lab.wait_served_by(80, 12, &["A", "B", "C", "D"]);
}
