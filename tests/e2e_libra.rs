//! End-to-end tests of the embedded Libra worker: the real keepserver in a network namespace
//! (MASTER while the VIP is on `ksv0`) takes Libra's JSON jobs from a real gearmand, submitted by
//! a real Gearman client (Python `gear`), and drives the real HAProxy in front of HTTP backends
//! the tests start; ARCHIVE uploads to a fake Swift store the test starts. Everything talks over
//! the namespace's own loopback, on ports picked at run time; see tests/libra/ for the harness.

mod common;
mod libra;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::*;
use libra::*;

/// The node entries of a STATS reply.
fn stats_nodes(reply: &Value) -> Vec<Value> {
    reply["nodes"].as_array().cloned().unwrap_or_default()
}

/// True when `v` (a string or number) is `want`.
fn is_value(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Number(n) => n.to_string() == want,
        _ => false,
    }
}

/// The STATS entry for the node with `id` (or address 127.0.0.1:`port`).
fn stats_entry(nodes: &[Value], id: &str, port: u16) -> Option<Value> {
    let addr = format!("127.0.0.1:{port}");
    nodes
        .iter()
        .find(|n| {
            let Some(fields) = n.as_object() else {
                return false;
            };
            // Strings only: a counter may happen to equal the id.
            let by_id = fields.values().any(|v| v.as_str() == Some(id));
            let by_addr = fields.values().any(|v| is_value(v, &addr));
            let by_pair =
                is_value(&n["address"], "127.0.0.1") && is_value(&n["port"], &port.to_string());
            by_id || by_addr || by_pair
        })
        .cloned()
}

/// The `status` of a STATS node entry (any key spelled `status`, any case).
fn status_of(entry: &Value) -> String {
    entry
        .as_object()
        .and_then(|f| {
            f.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("status"))
                .and_then(|(_, v)| v.as_str())
        })
        .unwrap_or("")
        .to_string()
}

/// The HTTP `bytes_out` of a METRICS reply.
fn http_bytes_out(reply: &Value, report: &str) -> u64 {
    let lbs = reply["loadBalancers"]
        .as_array()
        .unwrap_or_else(|| panic!("METRICS needs `loadBalancers`: {reply}\n{report}"));
    let http = lbs
        .iter()
        .find(|lb| {
            lb["protocol"]
                .as_str()
                .is_some_and(|p| p.eq_ignore_ascii_case("HTTP"))
        })
        .unwrap_or_else(|| panic!("METRICS needs an HTTP entry: {reply}\n{report}"));
    let bytes = http["bytes_out"]
        .as_str()
        .unwrap_or_else(|| panic!("bytes_out must be a string of digits: {reply}\n{report}"));
    bytes
        .parse()
        .unwrap_or_else(|_| panic!("bytes_out `{bytes}` is not a number: {reply}\n{report}"))
}

// ---------------------------------------------------------------------------------------------

/// UPDATE renders and starts HAProxy; round robin reaches both nodes; a second UPDATE reloads
/// hitlessly under load; SUSPEND refuses connections and keeps the config; ENABLE serves again;
/// DELETE stops HAProxy and removes the config, after which STATS and METRICS fail.
#[test]
fn update_suspend_enable_delete_lifecycle() {
    let Some(mut lab) = Lab::start("libra_lifecycle", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let b = lab.backend("B");
    let c = lab.backend("C");
    let front = lab.port();

    // Values are case-insensitive and extra fields are echoed: the reply is the request plus
    // hpcs_response, nothing else.
    let request = json!({
        "hpcs_action": "update",
        "extra_field": {"echo": ["me", 1]},
        "loadbalancers": [{
            "name": "lb-1",
            "protocol": "http",
            "port": front.to_string(),
            "algorithm": "round_robin",
            "nodes": [node(a), node(b)],
        }],
    });
    let reply = lab.pass(&request);
    let mut expected = request.clone();
    expected["hpcs_response"] = "PASS".into();
    assert_eq!(reply, expected, "UPDATE reply\n{}", lab.report());
    assert!(lab.haproxy_cfg().exists(), "{}", lab.report());
    assert!(
        !lab.haproxy_pids().is_empty(),
        "HAProxy runs:\n{}",
        lab.report()
    );
    assert_eq!(
        lab.backends_seen(front, 8),
        names(&["A", "B"]),
        "round robin reaches both nodes"
    );

    // A new node set (camelCase `loadBalancers`) under continuous load: no request may fail.
    let hammer = lab.hammer_start(front);
    let request = json!({
        "hpcs_action": "UPDATE",
        "loadBalancers": [http_lb(front, &[b, c])],
    });
    lab.pass(&request);
    // The load generator shares the round robin, so these few may all land on one node.
    let seen = lab.backends_seen(front, 6);
    assert!(
        seen.iter().all(|n| n == "B" || n == "C"),
        "right after the UPDATE's PASS new connections reach only the new node set: {seen:?}\n{}",
        lab.report()
    );
    let summary = lab.hammer_stop(&hammer);
    assert_eq!(
        summary["failed"],
        0,
        "a reload must be hitless: requests failed during the UPDATE: {summary}\n{}",
        lab.report()
    );
    assert!(
        summary["bodies"]["backend=C"].as_u64().unwrap_or(0) > 0,
        "the load saw the new node: {summary}"
    );
    assert_eq!(lab.backends_seen(front, 6), names(&["B", "C"]));
    lab.pass(&action("SUSPEND"));
    lab.wait_until(
        "SUSPEND: connections refused",
        Duration::from_secs(2),
        || lab.refused(front),
    );
    let kept = lab.haproxy_cfg_bytes();
    assert!(
        kept.as_ref()
            .is_some_and(|k| String::from_utf8_lossy(k).contains(&c.to_string())),
        "SUSPEND keeps the config (with node C's port {c}):\n{}",
        lab.report()
    );

    lab.pass(&action("ENABLE"));
    assert_eq!(
        lab.backends_seen(front, 6),
        names(&["B", "C"]),
        "ENABLE serves the kept config again"
    );

    lab.pass(&action("DELETE"));
    lab.wait_until(
        "DELETE: connections refused",
        Duration::from_secs(2),
        || lab.refused(front),
    );
    lab.wait_until("DELETE: no HAProxy process left", DEADLINE, || {
        lab.haproxy_pids().is_empty()
    });
    assert!(
        !lab.haproxy_cfg().exists(),
        "DELETE removes the config:\n{}",
        lab.report()
    );
    let error = lab.fail(&action("STATS"));
    assert!(!error.is_empty());
    let error = lab.fail(&action("METRICS"));
    assert!(!error.is_empty());
}

/// One HTTP and one TCP load balancer together: a DISABLED node gets no traffic, LEAST_CONNECTIONS
/// is accepted, a backup node gets traffic only once the primary is down (CONNECT monitor).
#[test]
fn http_and_tcp_load_balancers_with_disabled_and_backup_nodes() {
    let Some(mut lab) = Lab::start("libra_tcp", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let c = lab.backend("C");
    let (b, mut b_proc) = lab.backend_proc("B", 0);
    let d = lab.backend("D");
    let http_port = lab.port();
    let tcp_port = lab.port();
    let request = json!({
        "hpcs_action": "UPDATE",
        "loadbalancers": [
            {
                "protocol": "HTTP",
                "port": http_port.to_string(),
                "algorithm": "LEAST_CONNECTIONS",
                "nodes": [
                    {"id": "1", "address": "127.0.0.1", "port": a.to_string(), "weight": "1"},
                    {"id": "2", "address": "127.0.0.1", "port": c.to_string(), "weight": "1",
                     "condition": "DISABLED"},
                ],
            },
            {
                "protocol": "TCP",
                "port": tcp_port.to_string(),
                "monitor": {"type": "CONNECT", "delay": 1, "timeout": 1, "attempts": 1},
                "nodes": [
                    {"id": "3", "address": "127.0.0.1", "port": b.to_string(), "weight": "1"},
                    {"id": "4", "address": "127.0.0.1", "port": d.to_string(), "weight": "1",
                     "backup": "TRUE"},
                ],
            },
        ],
    });
    lab.pass(&request);
    assert_eq!(
        lab.backends_seen(http_port, 6),
        names(&["A"]),
        "the DISABLED node gets no traffic\n{}",
        lab.report()
    );
    assert_eq!(
        lab.backends_seen(tcp_port, 6),
        names(&["B"]),
        "the TCP load balancer forwards to its primary node, not the backup\n{}",
        lab.report()
    );

    signal(b_proc.id() as i32, Signal::SIGKILL);
    let _ = b_proc.wait();
    lab.wait_until(
        "the TCP load balancer fails over to the backup node D",
        DEADLINE,
        || {
            lab.get(tcp_port, 1)
                .first()
                .is_some_and(|r| r.as_ref().is_ok_and(|body| body.starts_with("backend=D")))
        },
    );
    assert_eq!(lab.backends_seen(tcp_port, 4), names(&["D"]));
    assert_eq!(lab.backends_seen(http_port, 4), names(&["A"]));
}

/// STATS lists the nodes with a status that tells a live node from a dead one (HTTP monitor);
/// METRICS gives HTTP bytes out since the last METRICS; STATS fails while HAProxy is not running,
/// and an UPDATE brings it back.
#[test]
fn stats_and_metrics() {
    let Some(mut lab) = Lab::start("libra_stats", LabSpec::default()) else {
        return;
    };
    let live = lab.backend("A");
    let dead = lab.port(); // nothing listens there
    let front = lab.port();
    let request = json!({
        "hpcs_action": "UPDATE",
        "loadbalancers": [{
            "protocol": "HTTP",
            "port": front.to_string(),
            "monitor": {"type": "HTTP", "delay": 1, "timeout": 1, "attempts": 1, "path": "/health"},
            "nodes": [
                {"id": "101", "address": "127.0.0.1", "port": live.to_string(), "weight": "1"},
                {"id": "102", "address": "127.0.0.1", "port": dead.to_string(), "weight": "1"},
            ],
        }],
    });
    lab.pass(&request);

    let mut last = Value::Null;
    let told_apart = wait_for(
        || {
            last = lab.job(&action("STATS"));
            if response(&last) != "PASS" {
                return false;
            }
            let nodes = stats_nodes(&last);
            match (
                stats_entry(&nodes, "101", live),
                stats_entry(&nodes, "102", dead),
            ) {
                (Some(l), Some(d)) => {
                    let (l, d) = (status_of(&l), status_of(&d));
                    !l.is_empty() && !d.is_empty() && l != d
                }
                _ => false,
            }
        },
        DEADLINE,
    );
    assert!(
        told_apart,
        "STATS should PASS and list both nodes with a status, the dead one's differing from the \
         live one's; last reply: {last}\n{}",
        lab.report()
    );
    let nodes = stats_nodes(&last);
    let live_status = status_of(&stats_entry(&nodes, "101", live).unwrap()).to_ascii_uppercase();
    let dead_status = status_of(&stats_entry(&nodes, "102", dead).unwrap()).to_ascii_uppercase();
    assert!(
        ["UP", "ONLINE", "ACTIVE", "OK"]
            .iter()
            .any(|w| live_status.contains(w)),
        "live node status `{live_status}`: {last}"
    );
    assert!(
        ["DOWN", "ERROR", "OFFLINE", "FAIL"]
            .iter()
            .any(|w| dead_status.contains(w)),
        "dead node status `{dead_status}`: {last}"
    );

    // METRICS: the first sets the mark; traffic; the second counts it; the third, right after,
    // has next to nothing.
    lab.pass(&action("METRICS"));
    let results = lab.get(front, 10);
    let body_bytes: u64 = results
        .iter()
        .map(|r| match r {
            Ok(body) => body.len() as u64,
            Err(e) => panic!("traffic failed: {e}\n{}", lab.report()),
        })
        .sum();
    let report = lab.report();
    let first = http_bytes_out(&lab.pass(&action("METRICS")), &report);
    assert!(
        first >= body_bytes,
        "METRICS bytes_out {first} should count at least the {body_bytes} body bytes sent\n{report}"
    );
    let second = http_bytes_out(&lab.pass(&action("METRICS")), &report);
    assert!(
        second * 10 < first,
        "a METRICS right after another, without traffic, should be small: {second} (first {first})"
    );

    // HAProxy not running (suspended): STATS fails with a reason.
    lab.pass(&action("SUSPEND"));
    lab.wait_until("HAProxy is gone", DEADLINE, || {
        lab.haproxy_pids().is_empty()
    });
    let error = lab.fail(&action("STATS"));
    assert!(error.len() > 5, "STATS FAIL needs a reason: {error}");
    lab.pass(&request);
    assert_eq!(
        lab.backends_seen(front, 2),
        names(&["A"]),
        "an UPDATE brings HAProxy back\n{}",
        lab.report()
    );
}

/// Malformed or dangerous jobs FAIL with an `hpcs_error` naming the problem, and leave
/// haproxy.cfg byte-for-byte unchanged and HAProxy serving the previous node set.
#[test]
fn bad_input_fails_precisely_and_keeps_config() {
    let Some(mut lab) = Lab::start("libra_badinput", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let b = lab.backend("B");
    let front = lab.port();
    lab.pass(&update_http(front, &[a, b]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");
    assert_eq!(lab.backends_seen(front, 4), names(&["A", "B"]));

    let with_node = |n: Value| {
        json!({"hpcs_action": "UPDATE", "loadbalancers": [{
            "protocol": "HTTP", "port": front.to_string(), "nodes": [node(a), n]}]})
    };
    let with_lb_port = |p: &str| {
        json!({"hpcs_action": "UPDATE", "loadbalancers": [{
            "protocol": "HTTP", "port": p, "nodes": [node(a)]}]})
    };
    let bad_node_port = |p: &str| with_node(json!({"address": "127.0.0.1", "port": p}));
    let bad_address = |addr: &str| with_node(json!({"address": addr, "port": b.to_string()}));
    let valid_lb = http_lb(front, &[a]);

    // (what, payload, words the hpcs_error must contain, case-insensitively)
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "invalid JSON",
            r#"{"hpcs_action": "UPDATE", "loadbalancers": ["#.to_string(),
            vec!["json".into()],
        ),
        (
            "missing hpcs_action",
            json!({"loadbalancers": [valid_lb.clone()]}).to_string(),
            vec!["hpcs_action".into()],
        ),
        (
            "unknown action",
            action("FROBNICATE").to_string(),
            vec!["frobnicate".into()],
        ),
        (
            "missing loadbalancers",
            action("UPDATE").to_string(),
            vec!["loadbalancers".into()],
        ),
        (
            "node port 0",
            bad_node_port("0").to_string(),
            vec!["port".into(), "0".into()],
        ),
        (
            "node port 70000",
            bad_node_port("70000").to_string(),
            vec!["port".into(), "70000".into()],
        ),
        (
            "node port http",
            bad_node_port("http").to_string(),
            vec!["port".into(), "http".into()],
        ),
        (
            "load balancer port 70000",
            with_lb_port("70000").to_string(),
            vec!["port".into(), "70000".into()],
        ),
        (
            "address with a second word",
            bad_address("10.0.0.1 backup").to_string(),
            vec!["address".into()],
        ),
        (
            "address with a semicolon",
            bad_address("a;b").to_string(),
            vec!["address".into()],
        ),
        (
            "newline in a field",
            json!({"hpcs_action": "UPDATE", "loadbalancers": [{
                "name": "x\nbackend evil", "protocol": "HTTP", "port": front.to_string(),
                "nodes": [node(a)]}]})
            .to_string(),
            vec!["name".into()],
        ),
        (
            "unknown protocol",
            json!({"hpcs_action": "UPDATE", "loadbalancers": [{
                "protocol": "SMTP", "port": front.to_string(), "nodes": [node(a)]}]})
            .to_string(),
            vec!["protocol".into(), "smtp".into()],
        ),
        (
            "two HTTP load balancers",
            json!({"hpcs_action": "UPDATE", "loadbalancers": [valid_lb.clone(), http_lb(front + 1, &[a])]})
                .to_string(),
            vec!["tcp".into()],
        ),
        (
            "no nodes",
            json!({"hpcs_action": "UPDATE", "loadbalancers": [{
                "protocol": "HTTP", "port": front.to_string(), "nodes": []}]})
            .to_string(),
            vec!["nodes".into()],
        ),
        (
            "bad weight",
            with_node(json!({"address": "127.0.0.1", "port": b.to_string(), "weight": "heavy"}))
                .to_string(),
            vec!["weight".into()],
        ),
        (
            "not an object",
            "[1, 2, 3]".to_string(),
            vec![],
        ),
    ];
    let payloads: Vec<String> = cases.iter().map(|(_, p, _)| p.clone()).collect();
    let ends = lab.submit_raw(&payloads, Duration::from_secs(20));
    assert_eq!(
        ends.len(),
        cases.len(),
        "every job ended: {ends:?}\n{}",
        lab.report()
    );
    let mut problems = Vec::new();
    for ((what, payload, words), end) in cases.iter().zip(&ends) {
        let Some(reply) = (end.outcome == "complete").then(|| end.reply()).flatten() else {
            problems.push(format!("{what}: no JSON WORK_COMPLETE reply: {end:?}"));
            continue;
        };
        if response(&reply) != "FAIL" {
            problems.push(format!("{what}: expected FAIL, got {reply}"));
            continue;
        }
        let error = error_of(&reply).to_ascii_lowercase();
        if error.trim().is_empty() {
            problems.push(format!("{what}: FAIL without hpcs_error: {reply}"));
        }
        for w in words {
            if !error.contains(&w.to_ascii_lowercase()) {
                problems.push(format!("{what}: hpcs_error should mention `{w}`: {reply}"));
            }
        }
        if let Ok(Value::Object(request)) = serde_json::from_str::<Value>(payload) {
            for (k, v) in &request {
                if &reply[k] != v {
                    problems.push(format!("{what}: reply does not echo `{k}`: {reply}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "bad input replies:\n{}\n{}",
        problems.join("\n"),
        lab.report()
    );
    assert_eq!(
        lab.haproxy_cfg_bytes().as_deref(),
        Some(&cfg[..]),
        "haproxy.cfg must be unchanged after refused jobs\n{}",
        lab.report()
    );
    assert_eq!(
        lab.backends_seen(front, 4),
        names(&["A", "B"]),
        "still serving the previous node set"
    );
}

/// A message the model accepts but HAProxy refuses (a node host name that does not resolve):
/// FAIL with HAProxy's own message, the old config in place and serving, the refused one saved
/// as `<config>-failed`; a later valid UPDATE still works.
#[test]
fn haproxy_rejected_config_keeps_old_and_saves_failed() {
    let Some(mut lab) = Lab::start("libra_rejected", LabSpec::default()) else {
        return;
    };
    let a = lab.backend("A");
    let b = lab.backend("B");
    let front = lab.port();
    lab.pass(&update_http(front, &[a, b]));
    let cfg = lab.haproxy_cfg_bytes().expect("haproxy.cfg after UPDATE");

    let request = json!({"hpcs_action": "UPDATE", "loadbalancers": [{
        "protocol": "HTTP", "port": front.to_string(),
        "nodes": [node(a), {"address": "nonexistent.invalid", "port": "80", "weight": "1"}]}]});
    let error = lab.fail(&request);
    assert!(
        error.contains("nonexistent.invalid") && error.contains("resolve"),
        "hpcs_error should carry HAProxy's message (could not resolve address \
         'nonexistent.invalid'): {error}\n{}",
        lab.report()
    );
    assert_eq!(
        lab.haproxy_cfg_bytes().as_deref(),
        Some(&cfg[..]),
        "the old haproxy.cfg stays in place\n{}",
        lab.report()
    );
    let failed = lab.ws.read("haproxy.cfg-failed");
    assert!(
        failed.contains("nonexistent.invalid"),
        "the refused config is saved as haproxy.cfg-failed:\n{}",
        lab.report()
    );
    assert_eq!(lab.backends_seen(front, 4), names(&["A", "B"]));

    lab.pass(&update_http(front, &[a]));
    assert_eq!(lab.backends_seen(front, 4), names(&["A"]));
}

/// DIAGNOSTICS: network PASS/FAIL from the configured targets, one PASS/FAIL per Gearman server,
/// FAIL when more than a third of the servers fail (1 of 2 here) or the network fails.
#[test]
fn diagnostics_network_and_gearman_rules() {
    let mut target = None;
    let mut second = 0;
    let Some(mut lab) = Lab::start_with("libra_diagnostics", LabSpec::default(), |lab, spec| {
        let (port, child) = lab.backend_proc("target", 0);
        target = Some(child);
        second = lab.port();
        spec.targets = Some(vec![port]);
        spec.extra_servers = vec![second];
    }) else {
        return;
    };
    let first = lab.gearmand().addr();
    let second_addr = format!("127.0.0.1:{second}");
    let gearman = |reply: &Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = reply["gearman"]
            .as_array()
            .unwrap_or_else(|| panic!("DIAGNOSTICS needs a `gearman` list: {reply}"))
            .iter()
            .flat_map(|e| {
                e.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            })
            .collect();
        v.sort();
        v
    };
    let expect = |one: &str, two: &str| {
        let mut v = vec![
            (first.clone(), one.to_string()),
            (second_addr.clone(), two.to_string()),
        ];
        v.sort();
        v
    };

    // One of two servers down: 1/2 > 1/3 fails.
    let reply = lab.job(&action("DIAGNOSTICS"));
    assert_eq!(response(&reply), "FAIL", "{reply}\n{}", lab.report());
    assert_eq!(reply["network"], "PASS", "{reply}");
    assert_eq!(gearman(&reply), expect("PASS", "FAIL"), "{reply}");
    assert!(
        error_of(&reply).contains(&second.to_string()),
        "hpcs_error should name the unreachable server {second_addr}: {reply}"
    );

    // Both up: PASS.
    lab.start_gearmand(second);
    let reply = lab.pass(&action("DIAGNOSTICS"));
    assert_eq!(reply["network"], "PASS", "{reply}");
    assert_eq!(gearman(&reply), expect("PASS", "PASS"), "{reply}");

    // The network target down: FAIL.
    let mut target = target.expect("target backend");
    signal(target.id() as i32, Signal::SIGKILL);
    let _ = target.wait();
    let reply = lab.job(&action("DIAGNOSTICS"));
    assert_eq!(response(&reply), "FAIL", "{reply}\n{}", lab.report());
    assert_eq!(reply["network"], "FAIL", "{reply}");
    assert_eq!(gearman(&reply), expect("PASS", "PASS"), "{reply}");
}

/// DISCOVER gives `version` M.N and a `release` (gearmand's death and return are in
/// tests/e2e_faults.rs).
#[test]
fn discover_gives_version_and_release() {
    let Some(lab) = Lab::start("libra_discover", LabSpec::default()) else {
        return;
    };
    let reply = lab.pass(&action("DISCOVER"));
    let version = reply["version"].as_str().unwrap_or("");
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() == 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "version should be M.N: {reply}"
    );
    assert!(
        reply["release"]
            .as_str()
            .is_some_and(|r| !r.trim().is_empty()),
        "release should be non-empty: {reply}"
    );
}

/// ARCHIVE gzips the HTTP load balancer's log lines and PUTs them to
/// `<endpoint>/<basepath>/<id>/<name>.log.gz` with the token and the body's MD5 as ETag; a 401
/// from the store is a FAIL naming the status; the token never reaches keepserver's log.
#[test]
fn archive_uploads_http_log_lines_to_swift() {
    let Some(lab) = Lab::start(
        "libra_archive",
        LabSpec {
            debug_log: true,
            ..LabSpec::default()
        },
    ) else {
        return;
    };
    let http_lines = [
        "Nov 23 10:00:00 lb haproxy[100]: Proxy http-in started.",
        "Nov 23 10:00:01 lb haproxy[101]: 192.0.2.1:5000 [23/Nov/2026:10:00:01.000] http-in http-servers/node-1 0/0/1/2/3 200 120 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
        "Nov 23 10:00:03 lb haproxy[101]: Server http-servers/node-2 is DOWN, reason: Layer4 connection problem.",
    ];
    let tcp_lines = [
        "Nov 23 10:00:00 lb haproxy[100]: Proxy tcp-in started.",
        "Nov 23 10:00:02 lb haproxy[101]: 192.0.2.2:5001 [23/Nov/2026:10:00:02.000] tcp-in tcp-servers/node-3 1/0/5 300 -- 1/1/0/0/0 0/0",
    ];
    let log = [
        http_lines[0],
        tcp_lines[0],
        http_lines[1],
        tcp_lines[1],
        "Nov 23 10:00:02 lb haproxy[100]: Loading success.",
        http_lines[2],
    ]
    .join("\n")
        + "\n";
    lab.ws.write("haproxy.log", &log);
    let store = lab.ws.path("swift");
    let port = lab.swift(&store);
    let endpoint = format!("http://127.0.0.1:{port}/v1/AUTH_test");
    let request = json!({
        "hpcs_action": "ARCHIVE",
        "hpcs_object_store_type": "swift",
        "hpcs_object_store_endpoint": endpoint,
        "hpcs_object_store_basepath": "lbaaslogs",
        "hpcs_object_store_token": "SECRET-TOKEN",
        "loadbalancers": [{"id": "15", "protocol": "HTTP"}],
    });
    lab.pass(&request);

    assert!(
        store.join("req-1.json").exists() && !store.join("req-2.json").exists(),
        "exactly one PUT: {:?}\n{}",
        fs::read_dir(&store).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        lab.report()
    );
    let record: Value =
        serde_json::from_str(&fs::read_to_string(store.join("req-1.json")).unwrap()).unwrap();
    let path = record["path"].as_str().unwrap_or("");
    let name = path
        .strip_prefix("/v1/AUTH_test/lbaaslogs/15/")
        .unwrap_or_else(|| panic!("PUT path {path} should be under /v1/AUTH_test/lbaaslogs/15/"));
    assert!(
        name.len() > ".log.gz".len() && name.ends_with(".log.gz") && !name.contains('/'),
        "object name {name} should be <name>.log.gz"
    );
    let header = |h: &str| -> Option<String> {
        record["headers"].as_array()?.iter().find_map(|pair| {
            let k = pair[0].as_str()?;
            k.eq_ignore_ascii_case(h)
                .then(|| pair[1].as_str().unwrap_or("").to_string())
        })
    };
    assert_eq!(
        header("X-Auth-Token").as_deref(),
        Some("SECRET-TOKEN"),
        "{record}"
    );
    let body = store.join("req-1.body");
    let md5 = run(Command::new("md5sum").arg(&body), DEADLINE);
    let md5 = md5
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        header("ETag").map(|e| e.trim_matches('"').to_ascii_lowercase()),
        Some(md5),
        "ETag must be the MD5 hex of the body: {record}"
    );
    let gunzip = run(Command::new("gzip").arg("-dc").arg(&body), DEADLINE);
    assert!(gunzip.ok(), "the body must be gzip:\n{gunzip}");
    let lines: Vec<&str> = gunzip.stdout.lines().collect();
    assert_eq!(
        lines, http_lines,
        "the upload holds exactly the HTTP load balancer's lines, in order"
    );

    // The store refuses the token.
    lab.ws.write("swift/status", "401");
    let error = lab.fail(&request);
    assert!(
        error.contains("401"),
        "hpcs_error should name HTTP 401: {error}"
    );

    let daemon_log = lab.daemon_log();
    assert!(
        daemon_log.contains("ARCHIVE"),
        "keepserver's log should show the jobs (DEBUG logging):\n{}",
        tail(&daemon_log, 30)
    );
    assert!(
        !daemon_log.contains("SECRET-TOKEN"),
        "the object store token must never be logged:\n{}",
        daemon_log
            .lines()
            .filter(|l| l.contains("SECRET-TOKEN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// MASTER → SLAVE: the job in hand finishes, then keepserver leaves the queue; a job submitted
/// on SLAVE stays queued with no worker; back on MASTER it is taken and completes.
#[test]
fn slave_leaves_queue_after_job_in_hand_and_master_takes_queued_job() {
    let Some(lab) = Lab::start("libra_slave", LabSpec::default()) else {
        return;
    };
    lab.pass(&action("DISCOVER"));

    // A job in hand: an ARCHIVE whose upload the store holds for 2 s.
    lab.ws
        .write("haproxy.log", "haproxy[1]: Proxy http-in started.\n");
    let store = lab.ws.path("swift");
    let port = lab.swift(&store);
    lab.ws.write("swift/delay", "2");
    let archive = json!({
        "hpcs_action": "ARCHIVE",
        "hpcs_object_store_type": "swift",
        "hpcs_object_store_endpoint": format!("http://127.0.0.1:{port}/v1/AUTH_test"),
        "hpcs_object_store_basepath": "lbaaslogs",
        "hpcs_object_store_token": "TOKEN",
        "loadbalancers": [{"id": "1", "protocol": "HTTP"}],
    });
    let in_hand = lab.submit_background(&archive, Duration::from_secs(20));
    lab.wait_until("the ARCHIVE upload is in flight", DEADLINE, || {
        store.join("req-1.json").exists()
    });
    lab.ns.del_addr(VIP_CIDR);
    lab.wait_role("SLAVE");
    let mut end = None;
    lab.wait_until("the job in hand finishes", DEADLINE, || {
        end = lab.background_result(&in_hand);
        end.is_some()
    });
    let finished = Instant::now();
    let end = end.unwrap();
    assert_eq!(end.outcome, "complete", "{end:?}\n{}", lab.report());
    assert_eq!(
        end.reply().map(|r| response(&r).to_string()).as_deref(),
        Some("PASS"),
        "the job in hand completes on SLAVE: {end:?}\n{}",
        lab.report()
    );
    lab.wait_until(
        "no worker on the queue within ~1 s of finishing the job in hand",
        Duration::from_millis(1500),
        || lab.queue_status().2 == 0,
    );
    let left_after = finished.elapsed();

    // A job submitted on SLAVE stays queued.
    let queued = lab.submit_background(&action("DISCOVER"), Duration::from_secs(30));
    lab.wait_until("the job is queued in gearmand", DEADLINE, || {
        lab.queue_status().0 >= 1
    });
    lab.ws.assert_holds(
        "on SLAVE the job stays queued, untaken, with no worker",
        Duration::from_secs(1),
        || {
            let (total, running, workers) = lab.queue_status();
            total >= 1 && running == 0 && workers == 0 && !queued.exists()
        },
    );

    // Back to MASTER: the queued job is taken.
    lab.ns.add_addr(VIP_CIDR);
    let mut end = None;
    lab.wait_until("the queued job completes on MASTER", DEADLINE, || {
        end = lab.background_result(&queued);
        end.is_some()
    });
    let end = end.unwrap();
    assert_eq!(
        end.reply().map(|r| response(&r).to_string()).as_deref(),
        Some("PASS"),
        "{end:?}\n{}",
        lab.report()
    );
    lab.wait_role("MASTER");
    eprintln!(
        "left the queue {left_after:?} after the job in hand finished; the queued job took {:.2} s",
        end.seconds
    );
}

/// `follow-role: true`: HAProxy stops on SLAVE and starts again, with the same config, on MASTER.
#[test]
fn follow_role_stops_and_starts_haproxy() {
    let Some(mut lab) = Lab::start(
        "libra_follow",
        LabSpec {
            follow_role: true,
            ..LabSpec::default()
        },
    ) else {
        return;
    };
    let a = lab.backend("A");
    let front = lab.port();
    lab.pass(&update_http(front, &[a]));
    assert_eq!(lab.backends_seen(front, 2), names(&["A"]));
    assert!(
        lab.queue_status().2 >= 1,
        "a worker on MASTER\n{}",
        lab.report()
    );
    lab.ns.del_addr(VIP_CIDR);
    lab.wait_until(
        "no worker on the queue within 1 s of the role change (no job in hand)",
        Duration::from_secs(1),
        || lab.queue_status().2 == 0,
    );
    lab.wait_role("SLAVE");
    lab.wait_until("SLAVE: HAProxy stopped", DEADLINE, || {
        lab.haproxy_pids().is_empty()
    });
    assert!(lab.refused(front), "{}", lab.report());
    assert!(
        lab.ws.read("haproxy.cfg").contains(&a.to_string()),
        "the config stays on SLAVE:\n{}",
        lab.report()
    );

    lab.ns.add_addr(VIP_CIDR);
    lab.wait_role("MASTER");
    lab.wait_until("MASTER: HAProxy serves again", DEADLINE, || {
        lab.get(front, 1).first().is_some_and(Result::is_ok)
    });
    assert_eq!(lab.backends_seen(front, 2), names(&["A"]));
}
