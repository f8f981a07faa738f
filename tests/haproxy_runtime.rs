//! Server changes through HAProxy's runtime API, against the real `haproxy` binary on 127.0.0.1
//! only: a member added serves with the same master and worker (no reload), weight, drain
//! (weight 0) and maintenance are applied, a member removed is gone, the file agrees and a
//! restart from it has the same servers; anything else reloads, and so does a runtime change
//! that fails or leaves the worker disagreeing with the model.
//!
//! Every test has its own temporary directory and a guard that SIGKILLs every process whose
//! command line names that directory when the test ends, passed or panicked. Backends are small
//! HTTP servers in the test, answering their name; ports are picked free at run time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keepserver::haproxy::driver::{Applied, Haproxy, HaproxySettings};
use keepserver::haproxy::model::{Balance, Balancer, Listener, Member, Mode, Name, Pool};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixStream};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long anything that should happen soon may take.
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fixture: a temporary directory, the driver, and the guard that kills what the test started.

/// Kills, on drop, every process whose command line mentions the test's directory.
struct Guard {
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pids = processes_mentioning(&self.dir);
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32 && alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Alive and not a zombie (the daemonized master is reaped by init, maybe late).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

struct Fixture {
    // Declared first: dropped first, before the directory goes.
    _guard: Guard,
    haproxy: Haproxy,
    config: PathBuf,
    runtime_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
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
        let haproxy = Haproxy::new(HaproxySettings::new(&config, &runtime_dir));
        Fixture {
            _guard: Guard {
                dir: dir.path().to_owned(),
            },
            haproxy,
            config,
            runtime_dir,
            _dir: dir,
        }
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
                (f[at("svname")].to_owned(), f[at("status")].to_owned())
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
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, name));
        }
    });
    Backend { name, port }
}

async fn serve(stream: TcpStream, body: &'static str) {
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
