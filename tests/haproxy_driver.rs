//! The HAProxy driver against the real `haproxy` binary, on 127.0.0.1 only: apply and traffic,
//! hitless reloads, rejected and unservable configurations, SUSPEND / ENABLE / DELETE, statistics.
//!
//! Every test has its own temporary directory (configuration and runtime files) and a guard that
//! SIGKILLs every process whose command line names that directory when the test ends, passed or
//! panicked. Backends are small HTTP servers in the test; ports are picked free at run time.

mod dir_guard;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dir_guard::{Guard, processes_mentioning};
use keepserver::haproxy::driver::{Haproxy, HaproxyError, HaproxySettings};
use keepserver::haproxy::model::{Balancer, HttpPath};
use keepserver::haproxy::render::{RuntimePaths, render};
use keepserver::haproxy::stats;
use keepserver::libra::site::{
    Algorithm, Condition, LoadBalancer, Monitor, MonitorKind, Node, Protocol, Site,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

// ---------------------------------------------------------------------------------------------
// Fixture: a temporary directory, the driver, and the guard that kills what the test started.

struct Fixture {
    // Declared first: dropped first, before the directory goes.
    _guard: Guard,
    haproxy: Haproxy,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self::with_binary(PathBuf::from("haproxy"))
    }

    fn with_binary(binary: PathBuf) -> Self {
        assert!(
            std::process::Command::new("haproxy")
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success()),
            "these tests need HAProxy 2.6: apt-get install -y haproxy"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("haproxy.cfg");
        let haproxy = Haproxy::new(HaproxySettings {
            binary,
            config: config.clone(),
            runtime_dir: dir.path().join("run"),
        });
        Fixture {
            _guard: Guard {
                dir: dir.path().to_owned(),
            },
            haproxy,
            config,
            dir,
        }
    }

    fn master_pid(&self) -> u32 {
        std::fs::read_to_string(self.haproxy.paths().pidfile)
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid")
    }

    fn failed_config(&self) -> PathBuf {
        PathBuf::from(format!("{}-failed", self.config.display()))
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("config")
    }
}

// ---------------------------------------------------------------------------------------------
// Backends: HTTP/1.1 servers answering 200 with their name, keep-alive unless told otherwise.

struct Backend {
    address: IpAddr,
    port: u16,
}

async fn backend(name: &str) -> Backend {
    backend_on(LOCALHOST, name).await
}

async fn backend_on(address: IpAddr, name: &str) -> Backend {
    let listener = TcpListener::bind((address, 0)).await.expect("bind backend");
    let port = listener.local_addr().expect("addr").port();
    let body = name.to_owned();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, body.clone()));
        }
    });
    Backend { address, port }
}

async fn serve_connection(stream: TcpStream, body: String) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(close) = read_request(&mut stream).await else {
            return;
        };
        let connection = if close { "close" } else { "keep-alive" };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            body.len()
        );
        if stream
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

/// Reads one request head; `Some(close)` says whether the connection ends after the answer.
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<bool> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut close = line.trim_end().ends_with("HTTP/1.0");
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            return Some(close);
        }
        if header.starts_with("connection:") {
            close = header.contains("close");
        }
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind((LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Client: one HTTP/1.1 GET, on a fresh or a kept-alive connection.

struct Response {
    status: u16,
    body: String,
    close: bool,
}

/// How long a request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

async fn send_get(stream: &mut BufReader<TcpStream>) -> Result<Response, String> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(stream))
        .await
        .unwrap_or_else(|_| Err(format!("no response within {REQUEST_TIMEOUT:?}")))
}

async fn exchange(stream: &mut BufReader<TcpStream>) -> Result<Response, String> {
    stream
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: lb.test\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    let n = stream
        .read_line(&mut line)
        .await
        .map_err(|e| format!("read status: {e}"))?;
    if n == 0 {
        return Err("connection closed before the status line".into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (length, close) = read_response_headers(stream).await?;
    let mut body = vec![0; length];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("read body: {e}"))?;
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        close,
    })
}

async fn read_response_headers(stream: &mut BufReader<TcpStream>) -> Result<(usize, bool), String> {
    let (mut length, mut close) = (0, false);
    let mut line = String::new();
    loop {
        line.clear();
        if stream
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read headers: {e}"))?
            == 0
        {
            return Err("connection closed in the headers".into());
        }
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            return Ok((length, close));
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value
                .trim()
                .parse()
                .map_err(|_| format!("bad {header:?}"))?;
        }
        if header.starts_with("connection:") && header.contains("close") {
            close = true;
        }
    }
}

async fn connect(port: u16) -> Result<BufReader<TcpStream>, String> {
    TcpStream::connect((LOCALHOST, port))
        .await
        .map(BufReader::new)
        .map_err(|e| format!("connect: {e}"))
}

/// One GET on a new connection; the body (the backend's name) on a 200.
async fn get(port: u16) -> Result<String, String> {
    let response = send_get(&mut connect(port).await?).await?;
    match response.status {
        200 => Ok(response.body),
        other => Err(format!("status {other}")),
    }
}

/// How many of `n` GETs on new connections each backend answered.
async fn spread(port: u16, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let body = get(port).await.expect("GET through HAProxy");
        *seen.entry(body).or_default() += 1;
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Sites.

fn node(backend: &Backend) -> Node {
    node_at(&backend.address.to_string(), backend.port)
}

fn node_at(address: &str, port: u16) -> Node {
    Node {
        id: None,
        address: address.parse().expect("a valid host"),
        port,
        weight: 1,
        backup: false,
        condition: Condition::Enabled,
    }
}

fn http_lb(port: u16, nodes: Vec<Node>) -> LoadBalancer {
    LoadBalancer {
        protocol: Protocol::Http,
        port,
        algorithm: Algorithm::RoundRobin,
        nodes,
        monitor: None,
    }
}

fn tcp_lb(port: u16, nodes: Vec<Node>) -> LoadBalancer {
    LoadBalancer {
        protocol: Protocol::Tcp,
        ..http_lb(port, nodes)
    }
}

fn site(lbs: Vec<LoadBalancer>) -> Balancer {
    Site::new(LOCALHOST, lbs).expect("valid site").balancer()
}

fn names(seen: &BTreeMap<String, usize>) -> Vec<&str> {
    seen.keys().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Every shape the renderer produces (both protocols, monitors, ids, backup, disabled, IPv6 bind
/// and nodes, host names, quotes and `#`/`$` in paths) passes the real `haproxy -c` without a
/// warning.
#[test]
fn every_rendered_shape_passes_haproxy_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = RuntimePaths {
        stats_socket: dir.path().join("o'dd #dir/haproxy.sock"),
        pidfile: dir.path().join("$HOME.pid"),
        ping_script: dir.path().join("ping"),
    };
    let http_monitor = Monitor {
        kind: MonitorKind::Http,
        delay_s: 3600,
        timeout_s: 3600,
        attempts: 10,
        path: Some(HttpPath::new("/he'alth?x=${HOME}#\\\"").expect("path")),
    };
    let connect_monitor = Monitor {
        kind: MonitorKind::Connect,
        path: None,
        ..http_monitor.clone()
    };
    let mut http = http_lb(
        80,
        vec![node_at("10.0.0.1", 8080), node_at("10.0.0.2", 65535)],
    );
    http.algorithm = Algorithm::LeastConnections;
    http.monitor = Some(http_monitor);
    http.nodes[0].id = Some("web-1.a_b".into());
    http.nodes[0].weight = 256;
    http.nodes[1].backup = true;
    http.nodes[1].condition = Condition::Disabled;
    let mut tcp = tcp_lb(
        65535,
        vec![node_at("::1", 22), node_at("::ffff:10.0.0.3", 22)],
    );
    tcp.monitor = Some(connect_monitor);
    let hosts = http_lb(
        8080,
        vec![node_at("localhost", 80), node_at("2001:db8::5", 80)],
    );
    let sites = [
        Site::new(LOCALHOST, vec![http.clone()]),
        Site::new(LOCALHOST, vec![tcp.clone()]),
        Site::new("::".parse().expect("ip"), vec![tcp, http]),
        Site::new("0.0.0.0".parse().expect("ip"), vec![hosts]),
    ];
    for (i, site) in sites.into_iter().enumerate() {
        let text = render(&site.expect("valid site").balancer(), &paths);
        let file = dir.path().join(format!("shape-{i}.cfg"));
        std::fs::write(&file, &text).expect("write");
        let output = std::process::Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .expect("haproxy -c");
        let said = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "shape {i}: {said}\n{text}");
        assert!(
            !said.contains("[WARNING]") && !said.contains("[ALERT]"),
            "shape {i}: {said}\n{text}"
        );
    }
}

/// UPDATE starts HAProxy; HTTP round robin reaches both nodes, TCP its IPv6 node; a new node
/// set is reloaded into the same master.
#[tokio::test]
async fn apply_serves_both_protocols_and_a_new_node_set_reloads_on_the_same_master() {
    let f = Fixture::new();
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let c6 = backend_on("::1".parse().expect("ip"), "c6").await;
    let (http_port, tcp_port) = (free_port(), free_port());
    assert!(!f.haproxy.has_config());
    assert!(!f.haproxy.is_running().await);

    f.haproxy
        .apply(&site(vec![
            http_lb(http_port, vec![node(&a), node(&b)]),
            tcp_lb(tcp_port, vec![node(&c6)]),
        ]))
        .await
        .expect("first apply starts HAProxy");
    assert!(f.haproxy.has_config());
    assert!(f.haproxy.is_running().await);
    let seen = spread(http_port, 20).await;
    assert_eq!(
        names(&seen),
        ["a", "b"],
        "round robin reaches both: {seen:?}"
    );
    assert_eq!(seen["a"], 10, "{seen:?}");
    assert_eq!(
        get(tcp_port).await.as_deref(),
        Ok("c6"),
        "TCP reaches its node, over IPv6"
    );
    let master = f.master_pid();

    // A new node set: c (by id) replaces a and b. The same master reloads.
    let replacement = Node {
        id: Some("web-c".into()),
        ..node(&c)
    };
    f.haproxy
        .apply(&site(vec![http_lb(http_port, vec![replacement])]))
        .await
        .expect("second apply reloads");
    assert_eq!(names(&spread(http_port, 5).await), ["c"]);
    assert_eq!(f.master_pid(), master, "a reload keeps the master");
    assert!(f.config_text().contains("server web-c 127.0.0.1:"));
    assert!(
        get(tcp_port).await.is_err(),
        "the TCP load balancer is gone"
    );
    assert!(!f.failed_config().exists());
}

/// A site HAProxy refuses: FAIL with HAProxy's own message, old file kept and serving, the
/// refused one saved as `<config>-failed`.
#[tokio::test]
async fn a_configuration_haproxy_rejects_leaves_the_old_one_serving() {
    // A node host name that does not resolve is model-valid, but `haproxy -c` refuses it. The
    // binary is a wrapper running `-c` in a network namespace without network, so the lookup fails
    // on this machine (from /etc/hosts, then no route for DNS) and no query leaves it.
    let dir = tempfile::tempdir().expect("tempdir");
    let wrapper = dir.path().join("haproxy-offline-check");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n\
         if [ \"$1\" = -c ]; then exec unshare --net haproxy \"$@\"; fi\n\
         exec haproxy \"$@\"\n",
    )
    .expect("write wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let f = Fixture::with_binary(wrapper);
    let a = backend("a").await;
    let port = free_port();
    f.haproxy
        .apply(&site(vec![http_lb(port, vec![node(&a)])]))
        .await
        .expect("first apply");
    let served = f.config_text();
    let master = f.master_pid();

    let unresolvable = Node {
        address: "nonexistent.invalid".parse().expect("a valid host name"),
        ..node(&a)
    };
    let error = f
        .haproxy
        .apply(&site(vec![http_lb(port, vec![node(&a), unresolvable])]))
        .await
        .expect_err("rejected");
    assert!(
        matches!(error, HaproxyError::ConfigRejected { .. }),
        "{error:?}"
    );
    let failed = f.failed_config();
    let rejected = std::fs::read_to_string(&failed).expect("-failed saved");
    let line = 1 + rejected
        .lines()
        .position(|l| l.contains("nonexistent.invalid"))
        .expect("the node is in the saved file");
    assert_eq!(
        error.to_string(),
        format!(
            "haproxy -c rejected the configuration (kept the previous one, saved this one as \
             {0}): [ALERT] config : [{0}:{line}] : 'server http-servers/node-2' : could not \
             resolve address 'nonexistent.invalid'. [ALERT] config : Failed to initialize \
             server(s) addr.",
            failed.display()
        )
    );
    assert_eq!(f.config_text(), served, "the old configuration is kept");
    assert_eq!(
        names(&spread(port, 3).await),
        ["a"],
        "the old one still serves"
    );
    assert_eq!(f.master_pid(), master);
    assert!(!PathBuf::from(format!("{}.tmp", f.config.display())).exists());

    // The next valid configuration goes through.
    let b = backend("b").await;
    f.haproxy
        .apply(&site(vec![http_lb(port, vec![node(&b)])]))
        .await
        .expect("apply after a rejection");
    assert_eq!(names(&spread(port, 3).await), ["b"]);
}

/// A site that passes `-c` but cannot bind: at start (HAProxy's message) and on reload (the
/// master's failed-reload count), rolled back either way.
#[tokio::test]
async fn a_configuration_that_cannot_bind_is_rolled_back() {
    let f = Fixture::new();
    let a = backend("a").await;
    let (http_port, taken) = (free_port(), std::net::TcpListener::bind((LOCALHOST, 0)));
    let taken = taken.expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();

    // Not running: the start fails with HAProxy's own message and leaves nothing behind.
    let error = f
        .haproxy
        .apply(&site(vec![http_lb(taken_port, vec![node(&a)])]))
        .await
        .expect_err("port taken");
    let message = error.to_string();
    assert!(
        message.starts_with("haproxy failed to start: "),
        "{message}"
    );
    assert!(message.contains("cannot bind socket"), "{message}");
    assert!(
        message.contains("the previous one is back in place"),
        "{message}"
    );
    assert!(
        !f.haproxy.has_config(),
        "no previous configuration: none is left"
    );
    assert!(f.failed_config().exists());
    assert!(!f.haproxy.is_running().await);

    // Running: the reload fails, the previous configuration keeps serving and is put back.
    let good = site(vec![http_lb(http_port, vec![node(&a)])]);
    f.haproxy.apply(&good).await.expect("apply");
    let served = f.config_text();
    let master = f.master_pid();
    let error = f
        .haproxy
        .apply(&site(vec![
            http_lb(http_port, vec![node(&a)]),
            tcp_lb(taken_port, vec![node(&a)]),
        ]))
        .await
        .expect_err("port taken");
    let message = error.to_string();
    assert!(
        matches!(&error, HaproxyError::NotApplied { source, .. }
            if matches!(**source, HaproxyError::ReloadFailed { .. })),
        "{message}"
    );
    assert!(message.contains("reload failed"), "{message}");
    assert_eq!(f.config_text(), served);
    assert!(
        std::fs::read_to_string(f.failed_config())
            .expect("-failed")
            .contains(&format!("bind 127.0.0.1:{taken_port}"))
    );
    assert_eq!(get(http_port).await.as_deref(), Ok("a"));
    assert_eq!(f.master_pid(), master);

    // And the next good configuration reloads normally.
    drop(taken);
    f.haproxy
        .apply(&good)
        .await
        .expect("apply after a failed reload");
    assert_eq!(get(http_port).await.as_deref(), Ok("a"));
}

/// SUSPEND refuses connections and keeps the file, ENABLE serves it again, DELETE removes all;
/// each is idempotent.
#[tokio::test]
async fn suspend_enable_and_delete() {
    let f = Fixture::new();
    let a = backend("a").await;
    let port = free_port();
    f.haproxy
        .apply(&site(vec![http_lb(port, vec![node(&a)])]))
        .await
        .expect("apply");
    let served = f.config_text();
    assert_eq!(get(port).await.as_deref(), Ok("a"));

    f.haproxy.suspend().await.expect("suspend");
    let refused = TcpStream::connect((LOCALHOST, port))
        .await
        .expect_err("suspended");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(!f.haproxy.is_running().await);
    assert!(f.haproxy.has_config());
    assert!(!f.haproxy.paths().pidfile.exists());
    f.haproxy.suspend().await.expect("suspend again");

    f.haproxy.enable().await.expect("enable");
    assert_eq!(get(port).await.as_deref(), Ok("a"));
    assert_eq!(
        f.config_text(),
        served,
        "enable serves the kept configuration"
    );
    f.haproxy.enable().await.expect("enable again");

    f.haproxy.delete().await.expect("delete");
    assert!(TcpStream::connect((LOCALHOST, port)).await.is_err());
    assert!(!f.haproxy.is_running().await);
    assert!(!f.haproxy.has_config());
    f.haproxy.delete().await.expect("delete again");
    let error = f.haproxy.enable().await.expect_err("nothing to enable");
    assert_eq!(
        error.to_string(),
        format!(
            "nothing to enable: there is no HAProxy configuration at {}",
            f.config.display()
        )
    );
    assert!(
        processes_mentioning(f.dir.path()).is_empty(),
        "no HAProxy left"
    );
}

/// STATS: per-node status, check result and counters; bytes out per frontend; an error naming
/// the socket once HAProxy is stopped.
#[tokio::test]
async fn stats_report_each_node_and_fail_when_haproxy_does_not_run() {
    let f = Fixture::new();
    let (a, b) = (backend("a").await, backend("b").await);
    let dead = free_port();
    let port = free_port();
    let disabled = Node {
        condition: Condition::Disabled,
        ..node(&b)
    };
    let mut lb = http_lb(port, vec![node(&a), node_at("127.0.0.1", dead), disabled]);
    lb.monitor = Some(Monitor {
        kind: MonitorKind::Http,
        delay_s: 1,
        timeout_s: 1,
        attempts: 1,
        path: None,
    });
    f.haproxy.apply(&site(vec![lb])).await.expect("apply");
    let socket = f.haproxy.paths().stats_socket;

    // Wait for the checks to mark the dead node down, then send traffic.
    let deadline = Instant::now() + Duration::from_secs(10);
    let nodes = loop {
        let nodes = stats::node_stats(&socket).await.expect("stats");
        if nodes.iter().any(|n| n.status == "DOWN") || Instant::now() > deadline {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status: Vec<(&str, &str, &str)> = nodes
        .iter()
        .map(|n| (n.backend.as_str(), n.server.as_str(), n.status.as_str()))
        .collect();
    assert_eq!(
        status,
        [
            ("http-servers", "node-1", "UP"),
            ("http-servers", "node-2", "DOWN"),
            ("http-servers", "node-3", "MAINT"),
        ]
    );
    assert_eq!(nodes[0].check_status.as_deref(), Some("L7OK"));
    assert_eq!(nodes[1].check_status.as_deref(), Some("L4CON"));
    assert_eq!(names(&spread(port, 4).await), ["a"]);

    let nodes = stats::node_stats(&socket).await.expect("stats");
    assert_eq!(nodes[0].total_sessions, 4);
    assert!(
        nodes[0].bytes_in > 0 && nodes[0].bytes_out > 0,
        "{:?}",
        nodes[0]
    );
    assert_eq!(nodes[0].current_sessions, 0);
    assert_eq!(nodes[1].total_sessions, 0);
    let out = stats::frontend_bytes_out(&socket).await.expect("bytes out");
    assert_eq!(
        out.keys().map(String::as_str).collect::<Vec<_>>(),
        ["http-in"]
    );
    assert!(out["http-in"] >= nodes[0].bytes_out, "{out:?}");

    f.haproxy.stop().await.expect("stop");
    let error = stats::node_stats(&socket).await.expect_err("not running");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "HAProxy is not running (stats socket {}: ",
            socket.display()
        )),
        "{message}"
    );
    assert!(stats::frontend_bytes_out(&socket).await.is_err());
}

/// Ten reloads while a keep-alive client and a new-connection-per-request client run: no request
/// fails (bounded: at most 20,000 requests per client, 30 s).
#[tokio::test]
async fn reloads_under_load_fail_no_request() {
    const RELOADS: usize = 10;
    const MIN_REQUESTS: u64 = 1000;
    const MAX_REQUESTS: u64 = 20_000;
    let f = Fixture::new();
    let backends = [
        backend("a").await,
        backend("b").await,
        backend("c").await,
        backend("d").await,
    ];
    let port = free_port();
    let config = |i: usize| {
        let mut nodes = vec![node(&backends[0]), node(&backends[1 + i % 3])];
        nodes[0].weight = 1 + i as u16;
        site(vec![http_lb(port, nodes)])
    };
    f.haproxy.apply(&config(0)).await.expect("apply");
    let master = f.master_pid();

    let load = Arc::new(Load::default());
    let clients = [
        tokio::spawn(keep_alive_client(port, load.clone(), MAX_REQUESTS)),
        tokio::spawn(new_connection_client(port, load.clone(), MAX_REQUESTS)),
    ];
    let began = Instant::now();
    let mut reload_ms = Vec::new();
    for i in 1..=RELOADS {
        let at = Instant::now();
        f.haproxy
            .apply(&config(i))
            .await
            .expect("reload under load");
        reload_ms.push(at.elapsed().as_millis());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during_reloads = load.ok.load(Ordering::Relaxed);
    while load.ok.load(Ordering::Relaxed) + load.failed.load(Ordering::Relaxed) < 2 * MIN_REQUESTS
        && began.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for client in clients {
        errors.extend(client.await.expect("client task"));
    }
    let ok = load.ok.load(Ordering::Relaxed);
    let reconnects = load.reconnects.load(Ordering::Relaxed);
    eprintln!(
        "hitless: {RELOADS} reloads in {}ms (each {reload_ms:?} ms), {ok} requests ok \
         ({during_reloads} during the reloads), {} failed, keep-alive reconnects on \
         `Connection: close`: {reconnects}",
        began.elapsed().as_millis(),
        errors.len()
    );
    assert!(errors.is_empty(), "failed requests: {errors:?}");
    assert!(during_reloads > 100, "the load overlapped the reloads");
    assert!(ok >= 2 * MIN_REQUESTS);
    assert_eq!(f.master_pid(), master);
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    ok: AtomicU64,
    failed: AtomicU64,
    reconnects: AtomicU64,
}

impl Load {
    fn record(&self, result: Result<Response, String>, errors: &mut Vec<String>) -> Option<bool> {
        match result {
            Ok(r) if r.status == 200 => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(r.close)
            }
            Ok(r) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                errors.push(format!("status {}", r.status));
                None
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                errors.push(e);
                None
            }
        }
    }

    fn running(&self, sent: u64, max: u64) -> bool {
        !self.stop.load(Ordering::Relaxed) && sent < max
    }
}

/// GETs on one kept-alive connection, reconnecting only when HAProxy says `Connection: close`
/// (or after a failure, which is counted). Returns the failures.
async fn keep_alive_client(port: u16, load: Arc<Load>, max: u64) -> Vec<String> {
    let mut errors = Vec::new();
    let mut stream = None;
    let mut sent = 0;
    while load.running(sent, max) {
        sent += 1;
        let result = match stream.as_mut() {
            Some(s) => send_get(s).await,
            None => match connect(port).await {
                Ok(s) => send_get(stream.insert(s)).await,
                Err(e) => Err(e),
            },
        };
        match load.record(result, &mut errors) {
            Some(false) => {}
            Some(true) => {
                stream = None;
                load.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            None => stream = None,
        }
    }
    errors
}

/// GETs on a new connection each. Returns the failures.
async fn new_connection_client(port: u16, load: Arc<Load>, max: u64) -> Vec<String> {
    let mut errors = Vec::new();
    let mut sent = 0;
    while load.running(sent, max) {
        sent += 1;
        let result = match connect(port).await {
            Ok(mut s) => send_get(&mut s).await,
            Err(e) => Err(e),
        };
        load.record(result, &mut errors);
    }
    errors
}
