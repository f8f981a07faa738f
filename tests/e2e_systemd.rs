//! End-to-end systemd tests: the real keepserver in a network namespace, started as systemd
//! starts a `Type=notify` unit (NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM), talks the notify
//! protocol to a unix datagram socket the test binds: READY=1 after the first role, STATUS=
//! lines as the VIP comes and goes, RELOADING=1 with MONOTONIC_USEC and READY=1 around a taken
//! and a refused reload, WATCHDOG=1 again and again, STOPPING=1 on stop. Its stderr, being the
//! "journal stream", carries syslog priorities and no time stamps. The shipped unit passes
//! `systemd-analyze verify` where the tool is installed.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";

/// The service manager's end: a datagram socket in the workspace and a thread that keeps every
/// datagram it receives, in order.
struct NotifySocket {
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// How far [`NotifySocket::expect`] has read.
    cursor: usize,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("cannot bind {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (received.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                }
            }
        });
        NotifySocket {
            received,
            stop,
            reader: Some(reader),
            cursor: 0,
        }
    }

    fn all(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a datagram after the last one expected that `matches`; returns it.
    fn expect(&mut self, ws: &Workspace, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let mut found = None;
        wait_or_report(
            what,
            DEADLINE,
            || {
                let all = self.all();
                found = all[self.cursor..]
                    .iter()
                    .position(|d| matches(d))
                    .map(|i| (self.cursor + i, all[self.cursor + i].clone()));
                found.is_some()
            },
            || format!("datagrams: {:#?}\n{}", self.all(), ws.report()),
        );
        let (at, datagram) = found.expect("found");
        self.cursor = at + 1;
        datagram
    }

    /// The datagrams carrying WATCHDOG=1.
    fn pings(&self) -> usize {
        self.all()
            .iter()
            .filter(|d| d.lines().any(|l| l == "WATCHDOG=1"))
            .count()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Whether a datagram has exactly this `KEY=VALUE` line.
fn has(datagram: &str, line: &str) -> bool {
    datagram.lines().any(|l| l == line)
}

/// The STATUS= line of a datagram.
fn status_of(datagram: &str) -> Option<&str> {
    datagram.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// CLOCK_MONOTONIC now, in microseconds.
fn monotonic_usec() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock");
    t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
}

/// `DEVICE:INODE` of a file, as JOURNAL_STREAM gives stderr's.
fn dev_ino(path: &Path) -> String {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    format!("{}:{}", meta.dev(), meta.ino())
}

/// Starts keepserver in `ns` with systemd's variables; its stdout and stderr go to daemon.out,
/// which JOURNAL_STREAM names when `journal` is set. The namespace guard kills it on Drop.
fn start_under_systemd(ns: &Netns, ws: &Workspace, journal: bool) -> std::process::Child {
    let out = ws.path("daemon.out");
    fs::write(&out, "").expect("create daemon.out");
    let other = ws.path("other.stream");
    fs::write(&other, "").expect("create other.stream");
    let stream = dev_ino(if journal { &out } else { &other });
    let notify = format!("NOTIFY_SOCKET={}", ws.path("notify.sock").display());
    let journal_stream = format!("JOURNAL_STREAM={stream}");
    let config = ws.config_path().display().to_string();
    ns.spawn(
        &[
            "env",
            &notify,
            "WATCHDOG_USEC=400000",
            &journal_stream,
            BIN,
            "-c",
            &config,
            "start",
        ],
        &out,
    )
}

#[test]
fn notify_protocol_follows_role_reload_watchdog_and_stop() {
    let Some(ns) = Netns::new("sd_notify") else {
        return;
    };
    let spec = ConfigSpec::new(VIP).start("env > {ws}/start.env; {ws}/hook.sh start");
    let ws = Workspace::new(&spec);
    let mut notify = NotifySocket::bind(&ws.path("notify.sock"));
    let mut child = start_under_systemd(&ns, &ws, true);

    let ready = notify.expect(&ws, "READY=1 after the first role", |d| has(d, "READY=1"));
    assert_eq!(
        status_of(&ready),
        Some("SLAVE, service stopped"),
        "READY=1 comes with the first STATUS= line: {ready:?}"
    );

    ns.add_addr(VIP_CIDR);
    notify.expect(&ws, "STATUS= says the start hook runs", |d| {
        status_of(d) == Some("MASTER, service starting")
    });
    notify.expect(&ws, "STATUS= says the service runs", |d| {
        status_of(d) == Some("MASTER, service running")
    });
    let env = ws.read("start.env");
    for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "KEEPSERVER_ROLE"] {
        let inherited = env.lines().any(|l| l.starts_with(&format!("{key}=")));
        assert_eq!(
            inherited,
            key == "KEEPSERVER_ROLE",
            "{key} in the start hook's environment:\n{env}"
        );
    }

    ns.del_addr(VIP_CIDR);
    notify.expect(&ws, "STATUS= says the stop hook runs", |d| {
        status_of(d) == Some("SLAVE, service stopping")
    });
    notify.expect(&ws, "STATUS= says the service is stopped", |d| {
        status_of(d) == Some("SLAVE, service stopped")
    });

    let before = monotonic_usec();
    let reload = ws.cli_in(&ns, &["reload"]);
    let after = monotonic_usec();
    assert!(reload.ok(), "reload:\n{reload}\n{}", ws.report());
    let reloading = notify.expect(&ws, "RELOADING=1 on reload", |d| has(d, "RELOADING=1"));
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(
        (before..=after).contains(&usec),
        "MONOTONIC_USEC={usec} is CLOCK_MONOTONIC during the reload ({before}..={after})"
    );
    notify.expect(&ws, "READY=1 after the reload", |d| has(d, "READY=1"));

    // A bad file: `keepserver reload` would refuse it before signalling, so signal directly.
    ws.write("config.yaml", "keepstart: [not, a, mapping]\n");
    signal(child.id() as i32, Signal::SIGHUP);
    notify.expect(&ws, "RELOADING=1 on a refused reload", |d| {
        has(d, "RELOADING=1")
    });
    notify.expect(&ws, "READY=1 after the refused reload", |d| {
        has(d, "READY=1")
    });
    ws.write_config(&spec);

    let pings = notify.pings();
    ws.wait_until("WATCHDOG=1 keeps coming", DEADLINE, || {
        notify.pings() >= pings + 3
    });

    signal(child.id() as i32, Signal::SIGTERM);
    notify.expect(&ws, "STOPPING=1 on stop", |d| has(d, "STOPPING=1"));
    ws.wait_until("the daemon exits", DEADLINE, || {
        child.try_wait().ok().flatten().is_some()
    });

    let log = ws.read("daemon.out");
    assert!(
        log.lines()
            .any(|l| l.starts_with("<3>ERROR reload refused")),
        "the refused reload is logged at priority 3:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.starts_with("<6>INFO  role change")),
        "role changes are logged at priority 6:\n{log}"
    );
    for line in log.lines() {
        let (priority, rest) = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .unwrap_or_else(|| panic!("no syslog priority under journald: {line:?}\n{log}"));
        assert!(
            priority.parse::<u8>().is_ok_and(|n| (3..=7).contains(&n)),
            "a syslog priority from 3 to 7: {line:?}"
        );
        assert!(
            !starts_with_date(rest),
            "no time stamp of its own under journald: {line:?}"
        );
    }
}

#[test]
fn another_journal_stream_keeps_the_time_stamps() {
    let Some(ns) = Netns::new("sd_nojournal") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    let mut notify = NotifySocket::bind(&ws.path("notify.sock"));
    let mut child = start_under_systemd(&ns, &ws, false);
    notify.expect(&ws, "READY=1", |d| has(d, "READY=1"));
    signal(child.id() as i32, Signal::SIGTERM);
    ws.wait_until("the daemon exits", DEADLINE, || {
        child.try_wait().ok().flatten().is_some()
    });
    let log = ws.read("daemon.out");
    let started = log
        .lines()
        .find(|l| l.contains("keepserver started"))
        .unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert!(
        starts_with_date(started),
        "stderr that is not the journal keeps the time stamp: {started:?}"
    );
}

/// Whether `line` starts with a date, as the default console's time stamp does
/// (`2026-12-06 23:40:01.123 INFO  keepserver started`).
fn starts_with_date(line: &str) -> bool {
    let date = line.as_bytes().get(..10).unwrap_or_default();
    date.len() == 10
        && date.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn shipped_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP shipped_unit_passes_systemd_analyze_verify: no systemd-analyze");
        return;
    }
    let unit = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/keepserver.service"
    ))
    .expect("read scripts/keepserver.service");
    // verify wants the binary the unit names to exist: point it at the one under test.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keepserver.service");
    fs::write(&path, unit.replace("/usr/bin/keepserver", BIN)).expect("write unit");
    let out = run(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        Duration::from_secs(60),
    );
    assert!(
        out.ok() && out.stderr.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "ExecReload=/usr/bin/keepserver -c /etc/keepserver/config.yaml reload",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "the unit has {line}:\n{unit}"
        );
    }
}
