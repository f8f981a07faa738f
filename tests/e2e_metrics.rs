//! End-to-end tests of the Prometheus endpoint: the real keepserver in a network namespace,
//! scraped by `curl` on the namespace's loopback, the text checked by `promtool check metrics`
//! (Debian `prometheus`, installed when missing). The role gauge, the transition and hook
//! counters and the role-detection histogram move when the VIP is added and removed; a Libra
//! job from a real Gearman client (through a real gearmand) moves the job counters and the
//! HAProxy it starts moves the apply counter; the announced-prefix gauge follows a real FRR
//! bgpd; `metrics.auth` guards the endpoint and `reload` moves it.

mod bgp;
mod common;
mod frr;
mod libra;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nix::sys::signal::Signal;

use bgp::{BgpLab, PREFIX, ROUTER_ADDR};
use common::*;
use libra::{Lab, LabSpec, VIP_CIDR, update_http};

/// One scrape: every sample by its series (`name{labels}` as written), and the text.
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    /// Reads the text strictly enough to take values from it: every line is a comment or
    /// `series value`, and no series appears twice.
    fn parse(text: String) -> Result<Scrape, String> {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| format!("not `series value`: {line:?}"))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().map_err(|_| format!("bad value in {line:?}"))?,
            };
            if samples.insert(series.to_string(), value).is_some() {
                return Err(format!("{series} twice"));
            }
        }
        Ok(Scrape { samples, text })
    }

    /// The value of `series`, 0 when it is not there (a labelled series shows once it moved).
    fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

/// `promtool`, installed from Debian's `prometheus` when missing.
fn promtool(test: &str) -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let check = CHECK.get_or_init(|| {
        let found = || Command::new("promtool").arg("--version").output().is_ok();
        if found() {
            return Ok(());
        }
        apt_install(&["prometheus"])?;
        if found() {
            Ok(())
        } else {
            Err("promtool is not there after installing prometheus".into())
        }
    });
    prerequisite(test, check.as_ref().map_err(Clone::clone))
}

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot feed promtool: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({}): {said}", out.status))
    }
}

/// GETs `http://127.0.0.1:{port}/metrics` in `ns` with curl, `headers` added: status, content
/// type and body.
fn get(ns: &Netns, port: u16, headers: &[&str]) -> (u16, String, String) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut args = vec![
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code} %{content_type}",
    ];
    for h in headers {
        args.extend(["-H", h]);
    }
    args.push(&url);
    let out = ns.exec(&args);
    let (body, trailer) = out.stdout.rsplit_once('\n').unwrap_or(("", ""));
    let (code, content_type) = trailer.split_once(' ').unwrap_or((trailer, ""));
    (
        code.parse().unwrap_or(0),
        content_type.to_string(),
        body.to_string(),
    )
}

/// Scrapes and checks the text with promtool; panics with `report` on anything wrong.
fn scrape(ns: &Netns, port: u16, report: impl Fn() -> String) -> Scrape {
    let (code, content_type, body) = get(ns, port, &[]);
    assert_eq!(code, 200, "scrape answered {code}: {body}\n{}", report());
    assert_eq!(
        content_type,
        "text/plain; version=0.0.4; charset=utf-8",
        "{}",
        report()
    );
    if let Err(e) = promtool_check(&body) {
        panic!("{e}\n=== scraped ===\n{body}\n{}", report());
    }
    Scrape::parse(body).unwrap_or_else(|e| panic!("{e}\n{}", report()))
}

/// Asserts that each of `series` is one more in `after` than in `before`.
fn each_moved_by_one(before: &Scrape, after: &Scrape, series: &[&str]) {
    for s in series {
        assert_eq!(
            after.value(s),
            before.value(s) + 1.0,
            "{s}:\n=== before ===\n{}\n=== after ===\n{}",
            before.text,
            after.text
        );
    }
}

const ROLE_MASTER: &str = "keepserver_role{role=\"master\"}";
const ROLE_SLAVE: &str = "keepserver_role{role=\"slave\"}";
const TRANSITIONS: &str = "keepserver_role_transitions_total";
const STARTS: &str = "keepserver_hook_runs_total{kind=\"start\",outcome=\"success\"}";
const START_SECONDS: &str = "keepserver_hook_duration_seconds_count{kind=\"start\"}";
const STOPS: &str = "keepserver_hook_runs_total{kind=\"stop\",outcome=\"success\"}";
const DETECTIONS: &str = "keepserver_role_detection_seconds_count";
const CONNECTIONS: &str = "keepserver_gearman_connections";

/// SLAVE, then MASTER (VIP added): role, transitions, start hook, detection latency and the
/// Gearman connections move; an UPDATE job and a refused job move the Libra counters and the
/// HAProxy start; SLAVE again (VIP removed) runs stop and drops the connections.
#[test]
fn values_move_with_the_role_and_a_job() {
    let test = "metrics_role";
    if !e2e_available(test) || !promtool(test) {
        return;
    }
    let mut port = 0;
    let spec = LabSpec {
        master: false,
        ..LabSpec::default()
    };
    let Some(lab) = Lab::start_with(test, spec, |lab, spec| {
        port = lab.port();
        spec.extra_config = format!("metrics:\n  listen: 127.0.0.1:{port}\n");
    }) else {
        return;
    };
    let report = || lab.report();
    lab.wait_role("SLAVE");
    lab.wait_until("the endpoint answers", DEADLINE, || {
        get(&lab.ns, port, &[]).0 == 200
    });
    let before = scrape(&lab.ns, port, report);
    assert_eq!(before.value(ROLE_SLAVE), 1.0, "{}", before.text);
    assert_eq!(before.value(ROLE_MASTER), 0.0, "{}", before.text);
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_virtual_memory_bytes",
    ] {
        assert!(
            before.samples.contains_key(name),
            "{name}:\n{}",
            before.text
        );
    }
    assert!(
        before.value("process_resident_memory_bytes") > 1e6,
        "{}",
        before.text
    );
    assert_eq!(before.value(CONNECTIONS), 0.0, "{}", before.text);

    // The VIP added or removed, the role taken and the worker's connections up or down.
    let turn = |add: bool, role: &str, connections: f64| {
        if add {
            lab.ns.add_addr(VIP_CIDR);
        } else {
            lab.ns.del_addr(VIP_CIDR);
        }
        lab.wait_role(role);
        let what = format!("{connections} Gearman connections up");
        lab.wait_until(&what, DEADLINE, || {
            scrape(&lab.ns, port, report).value(CONNECTIONS) == connections
        });
        scrape(&lab.ns, port, report)
    };
    let master = turn(true, "MASTER", 2.0);
    assert_eq!(master.value(ROLE_MASTER), 1.0, "{}", master.text);
    assert_eq!(master.value(ROLE_SLAVE), 0.0, "{}", master.text);
    // The VIP's arrival was timed to its start hook.
    each_moved_by_one(
        &before,
        &master,
        &[TRANSITIONS, STARTS, START_SECONDS, DETECTIONS],
    );

    let a = lab.backend("A");
    let front = lab.free_ports(1)[0];
    lab.pass(&update_http(front, &[a]));
    lab.job_raw("this is not JSON");
    let job = scrape(&lab.ns, port, report);
    for (series, value) in [
        (
            "keepserver_libra_jobs_total{action=\"UPDATE\",result=\"PASS\"}",
            1.0,
        ),
        (
            "keepserver_libra_job_duration_seconds_count{action=\"UPDATE\"}",
            1.0,
        ),
        (
            "keepserver_libra_jobs_total{action=\"INVALID\",result=\"FAIL\"}",
            1.0,
        ),
        ("keepserver_haproxy_applies_total{action=\"start\"}", 1.0),
        ("keepserver_haproxy_validation_failures_total", 0.0),
    ] {
        assert_eq!(job.value(series), value, "{series}:\n{}", job.text);
    }

    let slave = turn(false, "SLAVE", 0.0);
    assert_eq!(slave.value(ROLE_SLAVE), 1.0, "{}", slave.text);
    each_moved_by_one(&master, &slave, &[TRANSITIONS, STOPS, DETECTIONS]);
}

/// `metrics.auth` (a token file, as `api.auth`) guards the endpoint, and `check` refuses a
/// token file others may read; `reload` moves the endpoint to a new port in place and drops the
/// credential.
#[test]
fn auth_guards_the_endpoint_and_reload_moves_it() {
    let test = "metrics_auth";
    if !e2e_available(test) || !promtool(test) {
        return;
    }
    let Some(ns) = Netns::new(test) else {
        return;
    };
    let (first, second) = (19181, 19182);
    let base = ConfigSpec::new("192.0.2.10");
    let guarded =
        format!("metrics:\n  listen: 127.0.0.1:{first}\n  auth:\n    token-file: token\n");
    let ws = Workspace::with_config_text(
        |dir| format!("{}{guarded}", base.render(dir)),
        false,
        "server.pid",
    );
    ws.write("token", "s3cret\n");
    std::fs::set_permissions(
        ws.path("token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod the token");
    let check = ws.cli(&["check"]);
    assert!(
        !check.ok() && check.text().contains("key `metrics.auth.token-file`"),
        "check refuses a token file others may read:\n{check}"
    );
    let token = ws.path("token");
    let mut perms = std::fs::metadata(&token).expect("token").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&token, perms).expect("chmod the token");
    let daemon = Daemon::start(&ns, &ws);
    let report = || ws.report();
    ws.wait_until("the endpoint answers", DEADLINE, || {
        get(&ns, first, &[]).0 == 401
    });
    let (code, _, body) = get(&ns, first, &["Authorization: Bearer wrong"]);
    assert_eq!(code, 401, "a wrong token is refused: {body}\n{}", report());
    let (code, _, body) = get(&ns, first, &["Authorization: Bearer s3cret"]);
    assert_eq!(
        code,
        200,
        "the token lets a scrape in: {body}\n{}",
        report()
    );
    promtool_check(&body).unwrap_or_else(|e| panic!("{e}\n{}", report()));

    let open = format!("metrics:\n  listen: 127.0.0.1:{second}\n");
    ws.write("config.yaml", &format!("{}{open}", base.render(ws.dir())));
    daemon.signal(Signal::SIGHUP);
    ws.wait_until("the endpoint moved", DEADLINE, || {
        get(&ns, second, &[]).0 == 200
    });
    assert_eq!(get(&ns, first, &[]).0, 0, "the old port is closed");
    let moved = scrape(&ns, second, report);
    assert_eq!(moved.value(ROLE_SLAVE), 1.0, "{}", moved.text);
}

/// The announced-prefix gauge follows what bgpd (a real FRR, peered with a second one) was told:
/// 0 on SLAVE, 1 once the VIP's prefix is announced on MASTER, 0 again when it is withdrawn;
/// the session with the router is read from bgpd at each scrape (1: Established).
#[test]
fn bgp_prefixes_follow_the_announcement() {
    let test = "metrics_bgp";
    if !promtool(test) {
        return;
    }
    let Some(mut lab) = BgpLab::prepare(test, &bgp::LabSpec::default()) else {
        return;
    };
    let port = 19181;
    let config = lab.ws.read("config.yaml");
    lab.ws.write(
        "config.yaml",
        &format!("{config}metrics:\n  listen: 127.0.0.1:{port}\n"),
    );
    lab.start_keepserver();
    lab.wait_session();
    let session = format!("keepserver_bgp_session_established{{peer=\"{ROUTER_ADDR}\"}}");
    lab.wait(&format!("{session} 1"), DEADLINE, || {
        scrape(&lab.node, port, || lab.report()).value(&session) == 1.0
    });
    const PREFIXES: &str = "keepserver_bgp_prefixes_announced";
    let announced = |n: f64| {
        lab.wait(&format!("{PREFIXES} {n}"), DEADLINE, || {
            scrape(&lab.node, port, || lab.report()).value(PREFIXES) == n
        });
    };
    announced(0.0);
    lab.add_vip();
    lab.wait("the router receives the prefix", DEADLINE, || {
        lab.router_has(PREFIX)
    });
    announced(1.0);
    lab.del_vip();
    lab.wait("the router loses the prefix", DEADLINE, || {
        !lab.router_has(PREFIX)
    });
    announced(0.0);
}
