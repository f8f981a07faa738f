//! End-to-end tests of `keepserver status` with the real components: the Libra worker on a real
//! gearmand with the HAProxy it drives (tests/libra/), and the BGP announcer with FRR bgpd peering
//! a router namespace's bgpd (tests/bgp/); `status --json` is compared with what gearmand,
//! HAProxy's pidfile, the file on disk and FRR's own vtysh say. And the control protocol's
//! version: a request without one (an older keepserver's) is refused saying why, and a daemon
//! that answers without one (an older daemon) makes `status` and `notify` exit 4 saying so.

mod bgp;
mod common;
mod frr;
mod libra;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::*;

/// How long a component may take to show in `status`.
const SHOWS: Duration = Duration::from_secs(20);

/// `sha256sum`'s digest of `path`.
fn sha256sum(path: &std::path::Path) -> String {
    let out = run(Command::new("sha256sum").arg(path), Duration::from_secs(10));
    assert!(out.ok(), "sha256sum:\n{out}");
    out.stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Text that only Rust's Debug output would put in `status`.
fn assert_no_debug_text(text: &str) {
    for debug in ["None", "Some(", "{", "}"] {
        assert!(!text.contains(debug), "{debug:?} in status:\n{text}");
    }
}

/// The Libra worker's Gearman connections are up, its last job is the UPDATE just run, and the
/// HAProxy it started is the one in the pidfile, serving the file whose checksum is shown.
#[test]
fn status_shows_the_libra_worker_and_its_haproxy_after_a_job() {
    let Some(mut lab) = libra::Lab::start("status_libra", libra::LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let front = lab.port();
    let gearmand = lab.gearmand().addr();
    lab.wait_until("status shows both Gearman connections up", SHOWS, || {
        lab.ws.status_json().is_ok_and(|s| {
            s["libra"]["servers"][0]["server"] == gearmand.as_str()
                && s["libra"]["servers"][0]["connected"] == 2
        })
    });
    let status = lab.ws.status_json().expect("status --json");
    assert_eq!(status["version"], 1, "{status}");
    assert_eq!(status["libra"]["queue"], libra::QUEUE, "{status}");
    assert_eq!(status["libra"]["servers"][0]["connections"], 2, "{status}");
    assert_eq!(status["components"]["libra_worker"], "running", "{status}");
    assert_eq!(status["libra"]["last_job"], Value::Null, "{status}");

    lab.pass(&libra::update_http(front, &[a]));
    let status = lab.ws.status_json().expect("status --json");
    let job = &status["libra"]["last_job"];
    assert_eq!(job["action"], "UPDATE", "{status}");
    assert_eq!(job["result"], "PASS", "{status}");
    assert_eq!(job["error"], Value::Null, "{status}");
    assert!(job["ms"].is_u64() && job["ago_s"].is_f64(), "{status}");
    assert_eq!(status["libra"]["jobs"], 1, "{status}");

    let haproxy = &status["haproxy"];
    let master = lab.haproxy_master().expect("HAProxy runs after UPDATE");
    assert_eq!(haproxy["master_pid"], master, "{status}");
    assert_eq!(
        haproxy["config"],
        lab.haproxy_cfg().display().to_string(),
        "{status}"
    );
    assert_eq!(
        haproxy["config_sha256"],
        sha256sum(&lab.haproxy_cfg()),
        "{status}"
    );
    let op = &haproxy["last_operation"];
    assert_eq!(
        op["action"], "start",
        "the first UPDATE starts HAProxy: {status}"
    );
    assert_eq!(op["error"], Value::Null, "{status}");

    // A second UPDATE reloads: the operation and the checksum follow.
    let b = lab.backend("B");
    lab.pass(&libra::update_http(front, &[a, b]));
    let status = lab.ws.status_json().expect("status --json");
    assert_eq!(
        status["haproxy"]["last_operation"]["action"], "reload",
        "{status}"
    );
    assert_eq!(
        status["haproxy"]["config_sha256"],
        sha256sum(&lab.haproxy_cfg()),
        "{status}"
    );
    assert_eq!(status["libra"]["jobs"], 2, "{status}");

    let text = lab.ws.cli(&["status"]);
    assert!(text.ok(), "{text}");
    for want in [
        format!("libra worker: running, function {}\n", libra::QUEUE),
        format!("  gearman:    {gearmand} 2/2 connected\n"),
        "  jobs:       2; the last UPDATE PASS in ".to_string(),
        format!(
            "haproxy:      brought up, master pid {}\n",
            lab.haproxy_master().expect("HAProxy runs")
        ),
        format!(
            "  config:     {} (sha256 {})\n",
            lab.haproxy_cfg().display(),
            sha256sum(&lab.haproxy_cfg())
        ),
        "  last:       reload in ".to_string(),
    ] {
        assert!(text.stdout.contains(&want), "{want:?} missing:\n{text}");
    }
    assert_no_debug_text(&text.stdout);
}

/// While MASTER the announced prefix and the session with the router show as FRR itself reports
/// them; with the node's bgpd gone, the sessions are "unknown" with the reason, and `status`
/// still answers.
#[test]
fn status_shows_the_announced_prefixes_and_each_peer_as_frr_does() {
    use bgp::*;
    let Some(mut lab) = BgpLab::start("status_bgp", LabSpec::default()) else {
        return;
    };
    lab.add_vip();
    lab.wait("the router has the prefix", SESSION_DEADLINE, || {
        lab.router_has(PREFIX)
    });
    lab.wait("status shows the prefix announced", SHOWS, || {
        lab.ws
            .status_json()
            .is_ok_and(|s| s["bgp"]["announced"] == serde_json::json!([PREFIX]))
    });
    let status = lab.ws.status_json().expect("status --json");
    let peers = status["bgp"]["peers"].as_array().expect("peers").clone();
    assert_eq!(peers.len(), 1, "{status}");
    let peer = &peers[0];
    assert_eq!(peer["address"], ROUTER_ADDR, "{status}");
    assert_eq!(peer["remote_as"], ROUTER_AS, "{status}");
    let frr_says = lab.node_frr.session_state(ROUTER_ADDR);
    assert_eq!(frr_says, "Established", "{}", lab.report());
    assert_eq!(peer["state"], frr_says.as_str(), "{status}");
    assert_eq!(peer["prefixes_sent"], 1, "{status}");
    assert!(peer["up_ms"].is_u64(), "{status}");
    assert_eq!(status["bgp"]["peers_unknown"], Value::Null, "{status}");

    let text = lab.ws.cli(&["status"]);
    assert!(text.ok(), "{text}");
    assert!(
        text.stdout
            .contains(&format!("bgp:          announcing {PREFIX}\n")),
        "{text}"
    );
    assert!(
        text.stdout.contains(&format!(
            "  peer:       {ROUTER_ADDR} (AS {ROUTER_AS}) Established for "
        )),
        "{text}"
    );
    assert!(
        text.stdout.contains(", 1 prefix sent, 0 received\n"),
        "{text}"
    );
    assert_no_debug_text(&text.stdout);

    lab.node_frr.kill("bgpd");
    let status = lab.ws.status_json().expect("status answers without bgpd");
    assert_eq!(status["bgp"]["peers"], serde_json::json!([]), "{status}");
    let why = status["bgp"]["peers_unknown"].as_str().unwrap_or_default();
    assert!(
        !why.is_empty() && !why.contains('\n'),
        "a reason, on one line: {status}"
    );
    let text = lab.ws.cli(&["status"]);
    assert!(
        text.stdout
            .contains(&format!("  peers:      unknown: {why}\n")),
        "{text}"
    );
}

/// keepalived's notify FIFO: open, its state changes and skipped lines counted, the last event
/// shown.
#[test]
fn status_shows_the_notify_fifo() {
    let Some(ns) = Netns::new("status_fifo") else {
        return;
    };
    let spec = ConfigSpec::new(libra::VIP);
    let ws = Workspace::new(&spec);
    let fifo = ws.path("keepalived.fifo");
    ws.write(
        "config.yaml",
        &format!(
            "{}  keepalived-fifo: keepalived.fifo\n",
            spec.render(ws.dir())
        ),
    );
    let _d = Daemon::start(&ns, &ws);
    ws.wait_until("status shows the FIFO open", SHOWS, || {
        ws.status_json().is_ok_and(|s| s["fifo"]["open"] == true)
    });
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open the FIFO for writing");
    writer
        .write_all(b"this is not keepalived\nINSTANCE \"VI_1\" BACKUP 100\n")
        .expect("write");
    ws.wait_until(
        "status counts the event and the skipped line",
        SHOWS,
        || {
            ws.status_json()
                .is_ok_and(|s| s["fifo"]["events"] == 1 && s["fifo"]["skipped"] == 1)
        },
    );
    let status = ws.status_json().expect("status --json");
    assert_eq!(
        status["fifo"]["path"],
        fifo.display().to_string(),
        "{status}"
    );
    assert_eq!(status["fifo"]["error"], Value::Null, "{status}");
    let last = status["fifo"]["last_event"].as_str().unwrap_or_default();
    assert!(last.contains("instance=\"VI_1\" state=BACKUP"), "{status}");
    assert!(status["fifo"]["last_event_ago_s"].is_f64(), "{status}");
    assert_eq!(status["keepalived"]["source"], "fifo", "{status}");
    let text = ws.cli(&["status"]);
    assert!(
        text.stdout.contains(&format!(
            "fifo:         {} open, 1 event, 1 line skipped\n",
            fifo.display()
        )),
        "{text}"
    );
    assert_no_debug_text(&text.stdout);
}

/// The control protocol's version on both sides: a running daemon refuses a request without a
/// version or with another one, in one JSON line saying which protocol it speaks; `notify`
/// still works with the versioned request.
#[test]
fn the_daemon_refuses_requests_in_another_protocol_saying_why() {
    let Some(ns) = Netns::new("status_proto") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(libra::VIP));
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);
    let ask = |line: &str| -> Value {
        let mut s = UnixStream::connect(ws.path("server.sock")).expect("connect");
        s.write_all(line.as_bytes()).expect("write");
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).expect("read");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let old = ask("{\"cmd\":\"status\"}\n");
    assert_eq!(old["version"], 1, "{old}");
    assert_eq!(
        old["error"],
        "the request has no control protocol version: it comes from a keepserver older than \
         this daemon, which speaks control protocol 1; use the keepserver binary the daemon was \
         started from",
        "{old}"
    );
    assert_eq!(old["role"], Value::Null, "nothing but the error: {old}");
    let newer = ask("{\"version\":2,\"cmd\":\"status\"}\n");
    assert!(
        newer["error"].as_str().is_some_and(
            |e| e.starts_with("the client speaks control protocol 2, this daemon speaks 1")
        ),
        "{newer}"
    );
    let ok = ask("{\"version\":1,\"cmd\":\"status\"}\n");
    assert_eq!(ok["role"], "SLAVE", "{ok}");

    let notify = ws.cli(&["notify", "INSTANCE", "VI_1", "BACKUP", "100"]);
    assert!(notify.ok(), "{notify}");
    assert!(
        notify.stdout.contains("notify delivered: ")
            && notify.stdout.contains("keepserver role SLAVE"),
        "{notify}"
    );
}

/// A daemon from before the protocol was versioned answers with its status and no version:
/// `status` and `notify` exit 4 and say to restart it. The old daemon is played by the test: it
/// holds the pidfile's lock and answers on the control socket as that keepserver did.
#[test]
fn status_and_notify_against_an_older_daemon_exit_4_saying_to_restart_it() {
    let ws = Workspace::new(&ConfigSpec::new(libra::VIP));
    let pidfile = std::fs::File::create(ws.pidfile()).expect("pidfile");
    pidfile.lock().expect("flock");
    std::fs::write(ws.pidfile(), format!("{}\n", std::process::id())).expect("pid");
    let listener = UnixListener::bind(ws.path("server.sock")).expect("bind");
    let old_daemon = std::thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().expect("accept");
            let mut request = String::new();
            BufReader::new(&stream)
                .read_line(&mut request)
                .expect("read");
            let answer = if request.contains("\"notify\"") {
                "{\"ok\":true,\"role\":\"MASTER\"}\n"
            } else {
                "{\"role\":\"MASTER\",\"running\":true,\"pid\":1,\"uptime_s\":2.0}\n"
            };
            (&stream).write_all(answer.as_bytes()).expect("write");
        }
    });
    let want = "keepserver: the running daemon speaks the unversioned control protocol of an \
                older keepserver, this keepserver speaks control protocol 1: restart the daemon";
    let status = ws.cli(&["status"]);
    assert_eq!(status.code, Some(4), "{status}");
    assert!(status.stderr.contains(want), "{status}");
    let notify = ws.cli(&["notify", "INSTANCE", "VI_1", "MASTER", "100"]);
    assert_eq!(notify.code, Some(4), "{notify}");
    assert!(notify.stderr.contains(want), "{notify}");
    old_daemon.join().expect("the old daemon answered both");
    drop(pidfile);
}
