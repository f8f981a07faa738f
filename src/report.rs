//! Human-readable text for operators: `status` without `--json` (one block per component, from
//! the typed [`Snapshot`]), the plan `check` prints and the alive report's lost-log-lines field.

use std::fmt::Write as _;

use crate::config::Config;
use crate::snapshot::{BgpView, FifoView, HaproxyView, LibraView, Snapshot};
use crate::supervisor::components::show_duration;
use crate::supervisor::status::{HookResultView, HookView};
use crate::supervisor::{HookKind, Target};

/// `keepserver status` as text.
pub fn status_text(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    role_block(&mut out, snapshot);
    hooks_block(&mut out, snapshot);
    if let Some(k) = &snapshot.core.keepalived {
        let _ = writeln!(
            out,
            "keepalived:   {} (from {}, instance {}, {} ago; {} events, {} contradicted by the VIP)",
            k.state.as_str(),
            k.source.as_str(),
            k.instance.as_deref().unwrap_or("-"),
            seconds(k.ago_s),
            k.events,
            k.disagreements
        );
    }
    if let Some(fifo) = &snapshot.fifo {
        fifo_block(&mut out, fifo);
    }
    if let Some(libra) = &snapshot.libra {
        libra_block(&mut out, snapshot, libra);
    }
    if let Some(haproxy) = &snapshot.haproxy {
        haproxy_block(&mut out, snapshot, haproxy);
    }
    if let Some(bgp) = &snapshot.bgp {
        bgp_block(&mut out, snapshot, bgp);
    }
    log_loss(&mut out, snapshot);
    out
}

fn role_block(out: &mut String, snapshot: &Snapshot) {
    let core = &snapshot.core;
    let changes = match &core.last_transition {
        None => "no change since start".to_string(),
        Some(t) => format!(
            "{} change{}, the last {} -> {}",
            core.transitions,
            plural(core.transitions),
            t.from,
            t.to
        ),
    };
    let _ = writeln!(
        out,
        "role:         {} for {} ({changes})",
        core.role,
        seconds(core.role_since_s)
    );
    if let Some(p) = &core.pending_role {
        let _ = writeln!(
            out,
            "pending:      {} in {} (the VIP has said so for {})",
            p.to,
            seconds(p.in_s),
            seconds(p.since_s)
        );
    }
    let running = match core.running {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let _ = writeln!(out, "running:      {running}");
    let _ = writeln!(
        out,
        "pid:          {}, up {}, {} reload{}",
        core.pid,
        seconds(core.uptime_s),
        snapshot.reloads,
        plural(snapshot.reloads)
    );
    let _ = writeln!(
        out,
        "vip:          {} on {}",
        snapshot.vip,
        nic_name(snapshot.nic.as_deref())
    );
    let _ = writeln!(out, "cycle:        {}", core.cycle);
}

fn hooks_block(out: &mut String, snapshot: &Snapshot) {
    let core = &snapshot.core;
    if let Some(kind) = core.hook_in_flight {
        let adopted = if core.hook_in_flight_adopted {
            " (adopted from a previous keepserver)"
        } else {
            ""
        };
        let _ = writeln!(out, "in flight:    {kind}{adopted}");
    }
    for kind in HookKind::ALL {
        let Some(view) = core.hooks.get(&kind) else {
            continue;
        };
        let _ = writeln!(out, "{:<17}{}", format!("hook {kind}:"), hook_line(view));
    }
    if core.consecutive_failures > 0 {
        let retry = core
            .retry_in_s
            .map_or(String::new(), |r| format!(", next retry in {}", seconds(r)));
        let _ = writeln!(
            out,
            "failures:     {} in a row{retry}",
            core.consecutive_failures
        );
    }
    if core.is_running_failures > 0 {
        let _ = writeln!(
            out,
            "is-running:   {} failed check(s) in a row, still counted as running",
            core.is_running_failures
        );
    }
}

fn hook_line(view: &HookView) -> String {
    let Some(last) = &view.last else {
        return "never run".to_string();
    };
    format!(
        "{} run{}, last {}",
        view.runs,
        plural(view.runs),
        hook_result(last)
    )
}

fn hook_result(l: &HookResultView) -> String {
    let how = match (&l.exit, &l.signal, &l.error) {
        (Some(code), _, _) => format!(" exit={code}"),
        (_, Some(signal), _) => format!(" by {signal}"),
        (_, _, Some(error)) => format!(" to start: {error}"),
        _ => String::new(),
    };
    format!(
        "{}{how} in {}, {} ago",
        l.outcome,
        millis(l.ms),
        seconds(l.ago_s)
    )
}

fn fifo_block(out: &mut String, fifo: &FifoView) {
    let _ = writeln!(
        out,
        "fifo:         {} {}, {} event{}, {} line{} skipped",
        fifo.path.display(),
        if fifo.open { "open" } else { "not open" },
        fifo.events,
        plural(fifo.events),
        fifo.skipped,
        plural(fifo.skipped)
    );
    if let (Some(event), Some(ago)) = (&fifo.last_event, fifo.last_event_ago_s) {
        let _ = writeln!(out, "  last:       {event}, {} ago", seconds(ago));
    }
    if let Some(error) = &fifo.error {
        let _ = writeln!(out, "  error:      {error}");
    }
}

fn libra_block(out: &mut String, snapshot: &Snapshot, libra: &LibraView) {
    let _ = writeln!(
        out,
        "libra worker: {}, function {}",
        snapshot.core.components.libra_worker.as_str(),
        libra.queue
    );
    for s in &libra.servers {
        let _ = writeln!(
            out,
            "  gearman:    {} {}/{} connected",
            s.server, s.connected, s.connections
        );
    }
    let last = match &libra.last_job {
        None => String::new(),
        Some(job) => format!(
            "; the last {} {} in {}, {} ago{}",
            job.action,
            job.result,
            millis(job.ms),
            seconds(job.ago_s),
            job.error
                .as_ref()
                .map_or(String::new(), |e| format!(": {e}"))
        ),
    };
    let _ = writeln!(out, "  jobs:       {}{last}", libra.jobs);
}

fn haproxy_block(out: &mut String, snapshot: &Snapshot, h: &HaproxyView) {
    let c = &snapshot.core.components;
    let brought = match c.haproxy {
        Some(Target::Up) => "up",
        Some(Target::Down) => "down",
        None => "not known",
    };
    let master = h.master_pid.map_or("no master running".to_string(), |p| {
        format!("master pid {p}")
    });
    let _ = writeln!(out, "haproxy:      brought {brought}, {master}");
    let sum = match (&h.config_sha256, &h.config_error) {
        (Some(sum), _) => format!("sha256 {sum}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "not there yet".to_string(),
    };
    let _ = writeln!(out, "  config:     {} ({sum})", h.config.display());
    if let Some(op) = &h.last_operation {
        let result = match &op.error {
            None => "ok".to_string(),
            Some(e) => format!("failed: {e}"),
        };
        let _ = writeln!(
            out,
            "  last:       {} in {}, {} ago, {result}",
            op.action,
            millis(op.ms),
            seconds(op.ago_s)
        );
    }
    retrying(out, c.haproxy_failures, c.haproxy_retry_in_s);
}

fn bgp_block(out: &mut String, snapshot: &Snapshot, bgp: &BgpView) {
    let c = &snapshot.core.components;
    let announced = match &bgp.announced {
        None => "nothing applied yet".to_string(),
        Some(p) if p.is_empty() => "withdrawn (nothing announced)".to_string(),
        Some(p) => format!("announcing {}", p.join(", ")),
    };
    let _ = writeln!(out, "bgp:          {announced}");
    if let Some(why) = &bgp.peers_unknown {
        let _ = writeln!(out, "  peers:      unknown: {why}");
    } else if bgp.peers.is_empty() {
        let _ = writeln!(out, "  peers:      none in bgpd");
    }
    for p in &bgp.peers {
        let up = p
            .up_ms
            .map_or(String::new(), |ms| format!(" for {}", millis(ms)));
        let remote = p.remote_as.map_or(String::new(), |a| format!(" (AS {a})"));
        let _ = writeln!(
            out,
            "  peer:       {}{remote} {}{up}, {} prefix{} sent, {} received",
            p.address,
            p.state,
            p.prefixes_sent,
            if p.prefixes_sent == 1 { "" } else { "es" },
            p.prefixes_received
        );
    }
    retrying(out, c.bgp_failures, c.bgp_retry_in_s);
}

/// A component's failures line, only while it fails.
fn retrying(out: &mut String, failures: u32, retry_in_s: Option<f64>) {
    if failures == 0 {
        return;
    }
    let retry = retry_in_s.map_or(String::new(), |r| format!(", next retry in {}", seconds(r)));
    let _ = writeln!(out, "  failures:   {failures} in a row{retry}");
}

/// The status lines about lost log lines: none while no line was lost.
fn log_loss(out: &mut String, snapshot: &Snapshot) {
    if snapshot.log_lines_lost == 0 {
        return;
    }
    let _ = writeln!(out, "log lost:     {} lines", snapshot.log_lines_lost);
    for sink in &snapshot.log_sinks {
        if let Some(error) = &sink.failing {
            let _ = writeln!(out, "log failing:  {}: {error}", sink.sink);
        }
    }
}

/// `s` seconds for a person: `250ms`, `3.2s`, `5m 3s`, `2h 5m`, `3d 4h`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "0ms".to_string();
    }
    if s < 1.0 {
        return format!("{}ms", (s * 1000.0).round());
    }
    if s < 60.0 {
        let text = format!("{s:.1}");
        return format!("{}s", text.strip_suffix(".0").unwrap_or(&text));
    }
    let whole = s as u64;
    let (d, h, m, sec) = (
        whole / 86400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    match (d, h) {
        (0, 0) => format!("{m}m {sec}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `ms` milliseconds for a person.
fn millis(ms: u64) -> String {
    seconds(ms as f64 / 1000.0)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The alive report's ` log_lines_lost=N` field, empty while no log line was lost.
pub fn lost_lines_field(lost: u64) -> String {
    if lost == 0 {
        String::new()
    } else {
        format!(" log_lines_lost={lost}")
    }
}

/// What `check` says the server would do with `config`.
pub fn plan_text(config: &Config) -> String {
    let app = &config.application;
    let ks = &config.keepstart;
    let mut out = String::new();
    let _ = writeln!(out, "config {} is valid", config.file.display());
    let _ = writeln!(
        out,
        "MASTER while {} is on {} (re-listed every {}s); SLAVE otherwise",
        ks.vip,
        nic_name(ks.nic.as_deref()),
        ks.cycle.as_secs_f64()
    );
    let _ = writeln!(out, "on MASTER, when not running: {}", ks.start);
    let _ = writeln!(out, "on SLAVE, when running:      {}", ks.stop);
    match &ks.is_running {
        Some(cmd) => {
            let _ = writeln!(
                out,
                "is-running: {cmd} (at start, one cycle after start/stop, every {} cycles)",
                ks.force_test_cycle
            );
        }
        None => {
            let _ = writeln!(out, "is-running: none (the tracked state is trusted)");
        }
    }
    let _ = writeln!(
        out,
        "hook timeout {}s (then the hook's process group is killed); failing hooks retried with back-off up to {}s",
        ks.hook_timeout.as_secs_f64(),
        ks.failure_backoff_max.as_secs_f64()
    );
    hysteresis_plan(&mut out, &ks.hysteresis);
    let _ = writeln!(
        out,
        "alive report every {} cycles; stop on exit: {}",
        ks.report_cycle, ks.stop_on_exit
    );
    if let Some(fifo) = &config.keepalived_fifo {
        let _ = writeln!(
            out,
            "keepalived notify FIFO: {} (created if missing, read as an event source)",
            fifo.display()
        );
    }
    let libra = &config.libra;
    if libra.enabled {
        let servers: Vec<String> = libra.servers.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "Libra worker: while MASTER, function {} on {} ({} connections each); HAProxy {} in {} bound to {}{}",
            libra.queue,
            servers.join(", "),
            libra.concurrency,
            libra.haproxy.config.display(),
            libra.haproxy.runtime_dir.display(),
            libra.haproxy.bind,
            if libra.haproxy.follow_role {
                ", following the role"
            } else {
                ""
            }
        );
    } else {
        let _ = writeln!(out, "Libra worker: disabled");
    }
    bgp_plan(&mut out, config.bgp.as_ref());
    api_plan(&mut out, config.api.as_ref());
    let _ = writeln!(
        out,
        "{} in {}; pidfile {}; control socket {}",
        if app.daemon { "daemon" } else { "foreground" },
        app.workspace.display(),
        app.pidfile.display(),
        app.control_socket.display()
    );
    out
}

/// The admin API's line of the plan.
fn api_plan(out: &mut String, api: Option<&crate::config::Api>) {
    use crate::config::api::{Auth, Serve};
    let Some(api) = api else {
        let _ = writeln!(out, "Admin API: disabled");
        return;
    };
    let auth = match &api.auth {
        None => "no authentication".to_string(),
        Some(Auth::Basic {
            username,
            password_file,
        }) => format!(
            "HTTP basic as {username}, password in {}",
            password_file.display()
        ),
        Some(Auth::Token { token_file }) => {
            format!("bearer token in {}", token_file.display())
        }
    };
    let tls = match &api.tls {
        None => "HTTP".to_string(),
        Some(tls) => format!(
            "HTTPS with {}{}",
            tls.certificate.display(),
            tls.client_ca.as_ref().map_or(String::new(), |ca| format!(
                ", client certificates from {}",
                ca.display()
            ))
        ),
    };
    let _ = writeln!(
        out,
        "Admin API: {tls} on {} ({auth}); objects in {}; HAProxy {} in {} serving {}",
        api.listen,
        api.store.display(),
        api.haproxy.config.display(),
        api.haproxy.runtime_dir.display(),
        match api.serve {
            Serve::Master => "while MASTER",
            Serve::Always => "in every role",
        }
    );
}

/// The plan's hysteresis line, only when it is on.
fn hysteresis_plan(out: &mut String, h: &crate::config::Hysteresis) {
    if !h.is_on() {
        return;
    }
    let hold = |d: std::time::Duration, state: &str| {
        if d.is_zero() {
            format!("as soon as it is {state}")
        } else {
            format!("once it has been {state} for {}", show_duration(d))
        }
    };
    let _ = writeln!(
        out,
        "hysteresis: SLAVE {} and MASTER {} (the VIP); a running service counts as down after \
         {} failed is-running checks in a row",
        hold(h.fall, "absent"),
        hold(h.rise, "present"),
        h.is_running_fall
    );
}

/// The BGP announcer's line of the plan.
fn bgp_plan(out: &mut String, bgp: Option<&crate::config::Bgp>) {
    let Some(bgp) = bgp else {
        let _ = writeln!(out, "BGP announcer: disabled");
        return;
    };
    let join = |items: Vec<String>| items.join(", ");
    let _ = writeln!(
        out,
        "BGP announcer: while MASTER{}, announce {} (on {}) from AS {} router-id {} to {}; \
         bgpd.conf {} applied via {}{}",
        if bgp.require_running {
            " and the last is-running check passed"
        } else {
            ""
        },
        join(bgp.announce.iter().map(ToString::to_string).collect()),
        bgp.loopback,
        bgp.local_as,
        bgp.router_id,
        join(
            bgp.neighbors
                .iter()
                .map(|n| format!("{} (AS {})", n.address, n.remote_as))
                .collect()
        ),
        bgp.config.display(),
        bgp.apply,
        bgp.pathspace
            .as_ref()
            .map_or_else(String::new, |p| format!(" (FRR pathspace {p})"))
    );
}

fn nic_name(nic: Option<&str>) -> String {
    nic.map_or_else(|| "any NIC".to_string(), |n| format!("NIC {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::{KeepalivedState, Source};
    use crate::snapshot::example;
    use crate::supervisor::KeepalivedView;
    use crate::supervisor::status::PendingView;

    #[test]
    fn every_component_has_its_block_in_words_and_units() {
        let text = status_text(&example());
        for want in [
            "role:         SLAVE for 0ms (no change since start)\n",
            "running:      unknown\n",
            "pid:          7, up 0ms, 1 reload\n",
            "vip:          192.0.2.100 on NIC eth0\n",
            "fifo:         /run/keepalived.fifo open, 4 events, 1 line skipped\n",
            "  last:       kind=INSTANCE instance=\"VI_1\" state=MASTER priority=100, 1.2s ago\n",
            "libra worker: stopped, function lbaas-node1\n",
            "  gearman:    127.0.0.1:4730 2/2 connected\n",
            "  jobs:       3; the last UPDATE PASS in 120ms, 2s ago\n",
            "haproxy:      brought not known, master pid 4242\n",
            "  last:       reload in 80ms, 2s ago, ok\n",
            "bgp:          announcing 192.0.2.10/32\n",
            "  peer:       198.51.100.2 (AS 65000) Established for 1m 15s, 1 prefix sent, 0 received\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
        assert!(
            text.contains(&format!(
                "  config:     /var/lib/keepserver/haproxy.cfg (sha256 {})\n",
                "ab".repeat(32)
            )),
            "{text}"
        );
        for debug in ["None", "Some(", "\"\"", "{", "}"] {
            assert!(!text.contains(debug), "{debug:?} in:\n{text}");
        }
    }

    #[test]
    fn what_is_not_known_is_said_so() {
        let mut snapshot = example();
        let bgp = snapshot.bgp.as_mut().expect("bgp");
        bgp.peers.clear();
        bgp.peers_unknown = Some("vtysh did not answer within 2s".into());
        bgp.announced = Some(Vec::new());
        let haproxy = snapshot.haproxy.as_mut().expect("haproxy");
        haproxy.master_pid = None;
        haproxy.config_sha256 = None;
        if let Some(op) = haproxy.last_operation.as_mut() {
            op.error = Some("haproxy -c refused the configuration".into());
        }
        snapshot.core.components.bgp_failures = 2;
        snapshot.core.components.bgp_retry_in_s = Some(3.5);
        let text = status_text(&snapshot);
        for want in [
            "bgp:          withdrawn (nothing announced)\n",
            "  peers:      unknown: vtysh did not answer within 2s\n",
            "  failures:   2 in a row, next retry in 3.5s\n",
            "haproxy:      brought not known, no master running\n",
            "  config:     /var/lib/keepserver/haproxy.cfg (not there yet)\n",
            "  last:       reload in 80ms, 2s ago, failed: haproxy -c refused the configuration\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
    }

    #[test]
    fn each_hook_says_how_it_ended_how_long_it_took_and_when() {
        use crate::supervisor::status::Verdict;
        let mut snapshot = example();
        let last = |outcome, exit, signal: Option<&str>, error: Option<&str>, ms| HookResultView {
            outcome,
            exit,
            signal: signal.map(str::to_string),
            error: error.map(str::to_string),
            ms,
            ago_s: 3.0,
        };
        let hooks = &mut snapshot.core.hooks;
        hooks.insert(
            HookKind::Start,
            HookView {
                runs: 2,
                last: Some(last(Verdict::Failed, None, Some("SIGKILL"), None, 1500)),
            },
        );
        hooks.insert(
            HookKind::Stop,
            HookView {
                runs: 1,
                last: Some(last(Verdict::Failed, None, None, Some("No such file"), 0)),
            },
        );
        hooks.insert(
            HookKind::IsRunning,
            HookView {
                runs: 1,
                last: Some(last(Verdict::Ok, Some(0), None, None, 12)),
            },
        );
        snapshot.core.consecutive_failures = 2;
        snapshot.core.retry_in_s = Some(4.0);
        let text = status_text(&snapshot);
        for want in [
            "hook start:      2 runs, last failed by SIGKILL in 1.5s, 3s ago\n",
            "hook stop:       1 run, last failed to start: No such file in 0ms, 3s ago\n",
            "hook is-running: 1 run, last ok exit=0 in 12ms, 3s ago\n",
            "failures:     2 in a row, next retry in 4s\n",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
    }

    #[test]
    fn keepalived_shows_beside_the_role_once_it_spoke() {
        let mut snapshot = example();
        assert!(!status_text(&snapshot).contains("keepalived:"));
        snapshot.core.keepalived = Some(KeepalivedView {
            state: KeepalivedState::Fault,
            source: Source::Fifo,
            instance: Some("VI_1".into()),
            priority: Some(100),
            ago_s: 0.25,
            events: 4,
            disagreements: 1,
        });
        let text = status_text(&snapshot);
        assert!(
            text.contains(
                "keepalived:   FAULT (from fifo, instance VI_1, 250ms ago; 4 events, 1 contradicted by the VIP)"
            ),
            "{text}"
        );
    }

    #[test]
    fn lost_log_lines_show_only_once_some_were_lost() {
        let mut snapshot = example();
        assert!(!status_text(&snapshot).contains("log "));
        assert_eq!(lost_lines_field(0), "");
        snapshot.log_lines_lost = 12;
        snapshot.log_sinks.push(crate::logging::SinkReport {
            sink: "file /var/log/k.log".into(),
            lines_lost: 12,
            failing: Some("No space left on device (os error 28)".into()),
        });
        let text = status_text(&snapshot);
        assert!(
            text.ends_with(
                "log lost:     12 lines\n\
                 log failing:  file /var/log/k.log: No space left on device (os error 28)\n"
            ),
            "{text}"
        );
        assert_eq!(lost_lines_field(12), " log_lines_lost=12");
    }

    #[test]
    fn durations_read_in_ms_s_minutes_hours_and_days() {
        for (s, want) in [
            (0.0, "0ms"),
            (0.25, "250ms"),
            (1.0, "1s"),
            (3.25, "3.2s"),
            (59.96, "60s"),
            (303.0, "5m 3s"),
            (7500.0, "2h 5m"),
            (273_600.0, "3d 4h"),
        ] {
            assert_eq!(seconds(s), want, "{s}");
        }
    }

    #[test]
    fn plan_names_the_keepalived_fifo_when_configured() {
        let file = std::path::Path::new("/etc/keepserver/config.yaml");
        let base = "keepstart:\n  vip: 192.0.2.100\n  start: s\n  stop: t\n";
        let plain = crate::config::parse(base, file).unwrap().config;
        assert!(!plan_text(&plain).contains("FIFO"));
        let text = format!("{base}  keepalived-fifo: keepalived.fifo\n");
        let with_fifo = crate::config::parse(&text, file).unwrap().config;
        assert!(
            plan_text(&with_fifo)
                .contains("keepalived notify FIFO: /etc/keepserver/keepalived.fifo"),
            "{}",
            plan_text(&with_fifo)
        );
    }

    #[test]
    fn plan_and_status_show_hysteresis_only_when_on() {
        let file = std::path::Path::new("/etc/keepserver/config.yaml");
        let base = "keepstart:\n  vip: 192.0.2.100\n  start: s\n  stop: t\n  is-running: r\n";
        let plain = crate::config::parse(base, file).unwrap().config;
        assert!(!plan_text(&plain).contains("hysteresis"));
        let text = format!("{base}  fall: 500ms\n  is-running-fall: 3\n");
        let on = crate::config::parse(&text, file).unwrap().config;
        assert!(
            plan_text(&on).contains(
                "hysteresis: SLAVE once it has been absent for 500ms and MASTER as soon as it \
                 is present (the VIP); a running service counts as down after 3 failed \
                 is-running checks in a row"
            ),
            "{}",
            plan_text(&on)
        );
        let mut snapshot = example();
        assert!(!status_text(&snapshot).contains("pending"));
        snapshot.core.pending_role = Some(PendingView {
            to: crate::supervisor::Role::Master,
            since_s: 0.2,
            in_s: 0.3,
        });
        snapshot.core.is_running_failures = 2;
        let text = status_text(&snapshot);
        assert!(
            text.contains("pending:      MASTER in 300ms (the VIP has said so for 200ms)"),
            "{text}"
        );
        assert!(
            text.contains("is-running:   2 failed check(s) in a row, still counted as running"),
            "{text}"
        );
    }
}
