//! Server changes through HAProxy's runtime API, against the real `haproxy` binary on 127.0.0.1
//! only: a member added serves with the same master and worker (no reload), weight, drain
//! (weight 0) and maintenance are applied, a member removed is gone, the file agrees and a
//! restart from it has the same servers; anything else reloads, and so does a runtime change
//! that fails (a member deleted with a request in flight, which still ends) or leaves the
//! worker disagreeing with the model. The admin API's service takes the
//! same path for its member requests.
//!
//! Every test has its own temporary directory and a guard that SIGKILLs every process whose
//! command line names that directory when the test ends, passed or panicked. Backends are small
//! HTTP servers in the test, answering their name; ports are picked free at run time.

mod dir_guard;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dir_guard::Guard;
use keepserver::api::Kind;
use keepserver::api::service::{Operation, Service};
use keepserver::config::Api;
use keepserver::config::api::{ApiHaproxy, Serve};
use keepserver::haproxy::driver::{Applied, Haproxy, HaproxySettings};
use keepserver::haproxy::model::{Balance, Balancer, Listener, Member, Mode, Name, Pool};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixStream};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long anything that should happen soon may take.
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fixture: a temporary directory, the driver, and the guard that kills what the test started.

struct Fixture {
    // Declared first: dropped first, before the directory goes.
    _guard: Guard,
    haproxy: Arc<Haproxy>,
    config: PathBuf,
    runtime_dir: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self::with_binary(|_| PathBuf::from("haproxy"))
    }

    /// A fixture whose driver runs the binary `binary` makes in the test's directory.
    fn with_binary(binary: impl FnOnce(&Path) -> PathBuf) -> Self {
        assert!(
            std::process::Command::new("haproxy")
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success()),
            "these tests need HAProxy 2.6: apt-get install -y haproxy"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("haproxy.cfg");
        let runtime_dir = dir.path().join("run");
        let settings = HaproxySettings {
            binary: binary(dir.path()),
            ..HaproxySettings::new(&config, &runtime_dir)
        };
        let haproxy = Arc::new(Haproxy::new(settings));
        Fixture {
            _guard: Guard {
                dir: dir.path().to_owned(),
            },
            haproxy,
            config,
            runtime_dir,
            dir,
        }
    }

    /// The admin API's service on this HAProxy, its store in the test's directory.
    async fn service(&self) -> Service {
        let api = Api {
            listen: (LOCALHOST, 9180).into(),
            auth: None,
            tls: None,
            certificates: self.dir.path().join("certificates"),
            store: self.dir.path().join("api-store.json"),
            serve: Serve::Always,
            bind: LOCALHOST,
            peers_section: name("lb"),
            peer_name: name("node1"),
            haproxy: ApiHaproxy {
                config: self.config.clone(),
                binary: PathBuf::from("haproxy"),
                runtime_dir: self.runtime_dir.clone(),
            },
        };
        Service::open(&api, self.haproxy.clone(), Box::new(|| {}))
            .await
            .expect("the service opens")
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("config")
    }

    /// One command on the master CLI.
    async fn master(&self, command: &str) -> String {
        cli(&self.runtime_dir.join("haproxy-master.sock"), command).await
    }

    /// One command on the worker's stats socket.
    async fn worker(&self, command: &str) -> String {
        cli(&self.haproxy.paths().stats_socket, command).await
    }

    /// The master's pid, its reload count and its current workers.
    async fn processes(&self) -> (u32, u32, Vec<u32>) {
        let answer = self.master("show proc").await;
        let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
        let master: Vec<&str> = lines
            .find(|l| l.contains(" master "))
            .expect("a master line")
            .split_whitespace()
            .collect();
        let workers = answer
            .split("# workers")
            .nth(1)
            .and_then(|rest| rest.split("# old workers").next())
            .expect("a workers section")
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        (
            master[0].parse().expect("pid"),
            master[2].parse().expect("reloads"),
            workers,
        )
    }

    /// The running servers of `backend`: name → (address:port, weight, admin state).
    async fn servers(&self, backend: &str) -> BTreeMap<String, (String, u16, u32)> {
        let answer = self.worker(&format!("show servers state {backend}")).await;
        let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
        assert_eq!(lines.next(), Some("1"), "{answer}");
        let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
        let at = |name: &str| header.iter().position(|h| *h == name).expect(name) - 1;
        lines
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (
                    f[at("srv_name")].to_owned(),
                    (
                        format!("{}:{}", f[at("srv_addr")], f[at("srv_port")]),
                        f[at("srv_uweight")].parse().expect("weight"),
                        f[at("srv_admin_state")].parse().expect("admin state"),
                    ),
                )
            })
            .collect()
    }

    /// Each server of `backend` with its `show stat` status (`UP`, `DRAIN`, `MAINT`, ...).
    async fn statuses(&self, backend: &str) -> BTreeMap<String, String> {
        self.stat_field(backend, "status").await
    }

    /// One `show stat` field of `server` in `backend`.
    async fn stat_of(&self, backend: &str, server: &str, field: &str) -> String {
        self.stat_field(backend, field)
            .await
            .remove(server)
            .unwrap_or_default()
    }

    /// Each server of `backend` with its `show stat` field `field`.
    async fn stat_field(&self, backend: &str, field: &str) -> BTreeMap<String, String> {
        let answer = self.worker(&format!("show stat {backend} 4 -1")).await;
        let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .expect("header")
            .split(',')
            .collect();
        let at = |name: &str| header.iter().position(|h| *h == name).expect(name);
        lines
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                (f[at("svname")].to_owned(), f[at(field)].to_owned())
            })
            .collect()
    }
}

async fn cli(socket: &Path, command: &str) -> String {
    let mut stream = UnixStream::connect(socket).await.expect("connect CLI");
    stream
        .write_all(format!("{command}\n").as_bytes())
        .await
        .expect("send");
    stream.shutdown().await.expect("shutdown");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    answer
}

// ---------------------------------------------------------------------------------------------
// Backends (HTTP/1.1, keep-alive, answering their name) and the client.

struct Backend {
    name: &'static str,
    port: u16,
}

async fn backend(name: &'static str) -> Backend {
    backend_after(name, Duration::ZERO).await
}

/// A backend that answers each request after `delay`.
async fn backend_after(name: &'static str, delay: Duration) -> Backend {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, name, delay));
        }
    });
    Backend { name, port }
}

async fn serve(stream: TcpStream, body: &'static str, delay: Duration) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // The request head, up to its empty line.
        loop {
            line.clear();
            match stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line.trim().is_empty() => break,
                Ok(_) => {}
            }
        }
        tokio::time::sleep(delay).await;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream
            .get_mut()
            .write_all(response.as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// One GET on a new connection: the body on a 200, else the status.
async fn get(port: u16) -> Result<String, String> {
    let mut stream = TcpStream::connect((LOCALHOST, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut answer))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no head")?;
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(body.to_owned()),
        other => Err(format!("status {other:?}")),
    }
}

/// The backends that answered `n` GETs.
async fn answering(port: u16, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(get(port).await.expect("GET through HAProxy"));
    }
    seen
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Models.

fn name(value: &str) -> Name {
    Name::new("name", value).expect("name")
}

fn member(backend: &Backend, weight: u16, enabled: bool) -> Member {
    Member {
        name: name(backend.name),
        address: LOCALHOST.into(),
        port: backend.port,
        weight,
        enabled,
        backup: false,
    }
}

fn balancer(port: u16, members: Vec<Member>) -> Balancer {
    balancer_with(port, Balance::RoundRobin, members)
}

fn balancer_with(port: u16, balance: Balance, members: Vec<Member>) -> Balancer {
    let pool = Pool {
        name: name("be-web"),
        enabled: true,
        mode: Mode::Http,
        balance,
        persistence: None,
        monitor: None,
        members,
    };
    let listener = Listener {
        name: name("fe-web"),
        enabled: true,
        mode: Mode::Http,
        address: LOCALHOST,
        port,
        max_connections: None,
        tls: None,
        default_pool: Some(name("be-web")),
    };
    Balancer::new(vec![listener], vec![pool], None).expect("valid")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOCALHOST, 0))
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_are_made_at_run_time_and_the_file_agrees() {
    let fx = Fixture::new();
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    fx.haproxy
        .apply(&balancer(port, vec![member(&a, 10, true)]))
        .await
        .expect("start");
    assert_eq!(answering(port, 4).await, set(&["a"]));
    let before = fx.processes().await;

    // Added: serves at once, same master, same worker, no reload.
    let added = balancer(port, vec![member(&a, 10, true), member(&b, 10, true)]);
    assert_eq!(
        fx.haproxy.update(&added).await.expect("add"),
        Applied::Runtime
    );
    assert_eq!(fx.processes().await, before, "no reload");
    assert_eq!(answering(port, 6).await, set(&["a", "b"]));
    let line_b = format!("server b 127.0.0.1:{} weight 10\n", b.port);
    assert!(fx.config_text().contains(&line_b), "{}", fx.config_text());

    // Drain (weight 0): no new traffic; maintenance: none at all.
    let drained = balancer(port, vec![member(&a, 0, true), member(&b, 10, true)]);
    assert_eq!(
        fx.haproxy.update(&drained).await.expect("drain"),
        Applied::Runtime
    );
    assert_eq!(answering(port, 6).await, set(&["b"]));
    assert_eq!(fx.servers("be-web").await["a"].1, 0);
    let maint = balancer(port, vec![member(&a, 5, true), member(&b, 10, false)]);
    assert_eq!(
        fx.haproxy.update(&maint).await.expect("maint"),
        Applied::Runtime
    );
    assert_eq!(answering(port, 6).await, set(&["a"]));
    assert_eq!(
        fx.statuses("be-web").await,
        BTreeMap::from([
            ("a".into(), "no check".into()),
            ("b".into(), "MAINT".into())
        ])
    );
    assert!(fx.config_text().contains(&format!(
        "server b 127.0.0.1:{} weight 10 disabled\n",
        b.port
    )));
    let back = balancer(port, vec![member(&a, 5, true), member(&b, 10, true)]);
    assert_eq!(
        fx.haproxy.update(&back).await.expect("ready"),
        Applied::Runtime
    );
    assert_eq!(answering(port, 6).await, set(&["a", "b"]));

    // Removed: gone from the worker and the file.
    let removed = balancer(port, vec![member(&b, 10, true)]);
    assert_eq!(
        fx.haproxy.update(&removed).await.expect("remove"),
        Applied::Runtime
    );
    assert_eq!(answering(port, 4).await, set(&["b"]));
    assert_eq!(fx.servers("be-web").await.keys().collect::<Vec<_>>(), ["b"]);
    assert!(!fx.config_text().contains("server a "));
    assert_eq!(fx.processes().await, before, "still no reload");

    // A restart from the file has the same servers.
    let running = fx.servers("be-web").await;
    fx.haproxy.stop().await.expect("stop");
    fx.haproxy.start().await.expect("start from the file");
    let restarted = fx.servers("be-web").await;
    let essentials = |servers: &BTreeMap<String, (String, u16, u32)>| {
        servers
            .iter()
            .map(|(name, (address, weight, admin))| {
                (name.clone(), address.clone(), *weight, admin & 0x23)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(essentials(&restarted), essentials(&running));
    assert_eq!(answering(port, 4).await, set(&["b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_changes_and_failed_runtime_changes_reload() {
    let fx = Fixture::new();
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let both = balancer(port, vec![member(&a, 10, true), member(&b, 10, true)]);
    fx.haproxy.apply(&both).await.expect("start");
    let (master, reloads, _) = fx.processes().await;

    // A change the runtime API cannot make: the balance algorithm.
    let leastconn = balancer_with(
        port,
        Balance::LeastConnections,
        vec![member(&a, 10, true), member(&b, 10, true)],
    );
    assert_eq!(
        fx.haproxy.update(&leastconn).await.expect("balance"),
        Applied::Reloaded
    );
    assert_eq!(fx.processes().await.1, reloads + 1);

    // A server deleted behind keepserver's back: the next weight change on it is refused by
    // HAProxy, and a reload of the file brings it back.
    assert!(
        fx.worker("set server be-web/b state maint; del server be-web/b")
            .await
            .contains("Server deleted")
    );
    let heavier = balancer_with(
        port,
        Balance::LeastConnections,
        vec![member(&a, 10, true), member(&b, 20, true)],
    );
    assert_eq!(
        fx.haproxy.update(&heavier).await.expect("weight"),
        Applied::Reloaded
    );
    assert_eq!(fx.processes().await.1, reloads + 2);
    assert_eq!(fx.servers("be-web").await["b"].1, 20);

    // A server re-weighted behind keepserver's back: the next change in its pool works, but
    // the worker disagrees with the model, so the file is reloaded.
    assert!(
        fx.worker("set server be-web/a weight 99")
            .await
            .trim()
            .is_empty()
    );
    let lighter = balancer_with(
        port,
        Balance::LeastConnections,
        vec![member(&a, 10, true), member(&b, 5, true)],
    );
    assert_eq!(
        fx.haproxy.update(&lighter).await.expect("weight"),
        Applied::Reloaded
    );
    let (same_master, now, _) = fx.processes().await;
    assert_eq!((same_master, now), (master, reloads + 3));
    let servers = fx.servers("be-web").await;
    assert_eq!((servers["a"].1, servers["b"].1), (10, 5));
    assert_eq!(answering(port, 6).await, set(&["a", "b"]));
}

/// The runtime change is served before the file is checked: a file `haproxy -c` then refuses
/// (here a wrapper around the real binary refuses every `-c` while a marker file exists) is
/// refused, and a reload of the file still in place undoes the runtime change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_change_whose_file_is_refused_is_undone() {
    let fx = Fixture::with_binary(|dir| {
        let wrapper = dir.join("haproxy-wrapper");
        let script = format!(
            "#!/bin/sh\nif [ \"$1\" = -c ] && [ -e {marker} ]; then\n  \
             echo '[ALERT]    (1) : refused by the test' >&2\n  exit 1\nfi\n\
             exec haproxy \"$@\"\n",
            marker = dir.join("refuse-check").display()
        );
        std::fs::write(&wrapper, script).expect("wrapper");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&wrapper, mode).expect("chmod");
        wrapper
    });
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let one = balancer(port, vec![member(&a, 10, true)]);
    fx.haproxy.apply(&one).await.expect("start");
    let (master, reloads, _) = fx.processes().await;
    let file = fx.config_text();

    std::fs::write(fx.dir.path().join("refuse-check"), "").expect("marker");
    let both = balancer(port, vec![member(&a, 10, true), member(&b, 10, true)]);
    let refused = fx.haproxy.update(&both).await.expect_err("refused");
    assert!(
        refused.to_string().contains("refused by the test"),
        "{refused}"
    );
    assert_eq!(fx.config_text(), file, "the file in place is unchanged");
    assert_eq!(fx.servers("be-web").await.keys().collect::<Vec<_>>(), ["a"]);
    let (same_master, now, _) = fx.processes().await;
    assert_eq!(
        (same_master, now),
        (master, reloads + 1),
        "undone by one reload"
    );
    assert_eq!(answering(port, 4).await, set(&["a"]));

    // What the worker serves is the file again: the next change takes the runtime path.
    std::fs::remove_file(fx.dir.path().join("refuse-check")).expect("marker");
    assert_eq!(
        fx.haproxy.update(&both).await.expect("add"),
        Applied::Runtime
    );
    assert_eq!(answering(port, 6).await, set(&["a", "b"]));
    assert_eq!(fx.processes().await.1, reloads + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_apis_member_requests_take_the_runtime_path() {
    let fx = Fixture::new();
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port();
    let mut service = fx.service().await;
    let pool = || Kind::Member(name("web-pool"));
    let mut expect = async |operation: Operation, status: u16| {
        let reply = service.handle(operation).await;
        assert_eq!(reply.status, status, "{:?}", reply.body);
    };
    let listener = json!({"id": "web", "protocol": "HTTP", "protocol_port": port});
    expect(Operation::Create(Kind::Listener, listener), 201).await;
    let web_pool = json!({"id": "web-pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                          "listener_id": "web"});
    expect(Operation::Create(Kind::Pool, web_pool), 201).await;
    let member_a = json!({"id": "a", "address": "127.0.0.1", "protocol_port": a.port});
    expect(Operation::Create(pool(), member_a), 201).await;
    // The core starts HAProxy (the service never does).
    fx.haproxy.start().await.expect("start");
    assert_eq!(answering(port, 4).await, set(&["a"]));
    let before = fx.processes().await;

    let member_b = json!({"id": "b", "address": "127.0.0.1", "protocol_port": b.port});
    expect(Operation::Create(pool(), member_b), 201).await;
    assert_eq!(answering(port, 6).await, set(&["a", "b"]));
    expect(
        Operation::Update(pool(), name("b"), json!({"weight": 0})),
        200,
    )
    .await;
    assert_eq!(answering(port, 6).await, set(&["a"]));
    expect(
        Operation::Update(pool(), name("b"), json!({"weight": 3})),
        200,
    )
    .await;
    expect(Operation::Delete(pool(), name("a")), 204).await;
    assert_eq!(answering(port, 4).await, set(&["b"]));
    assert_eq!(fx.processes().await, before, "no reload");
    let servers = fx.servers("backend-web-pool").await;
    assert_eq!(servers.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(servers["b"].1, 3);
    let line = format!("server b 127.0.0.1:{} weight 3\n", b.port);
    assert!(fx.config_text().contains(&line), "{}", fx.config_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_with_a_request_in_flight_goes_by_a_reload_and_the_request_ends() {
    let fx = Fixture::new();
    let slow = backend_after("slow", Duration::from_secs(2)).await;
    let b = backend("b").await;
    let port = free_port();
    fx.haproxy
        .apply(&balancer(port, vec![member(&slow, 10, true)]))
        .await
        .expect("start");
    let (master, reloads, _) = fx.processes().await;
    let in_flight = tokio::spawn(get(port));
    let deadline = Instant::now() + DEADLINE;
    while fx.stat_of("be-web", "slow", "scur").await != "1" {
        assert!(
            Instant::now() < deadline,
            "the request never reached the slow member"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // HAProxy refuses `del server` while the request runs: the change falls back to a reload.
    let replaced = balancer(port, vec![member(&b, 10, true)]);
    assert_eq!(
        fx.haproxy.update(&replaced).await.expect("replace"),
        Applied::Reloaded
    );
    assert_eq!(fx.processes().await.0, master);
    assert_eq!(fx.processes().await.1, reloads + 1);
    assert_eq!(in_flight.await.expect("task"), Ok("slow".to_owned()));
    assert_eq!(fx.servers("be-web").await.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(answering(port, 4).await, set(&["b"]));
}
