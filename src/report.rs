//! Human-readable text for operators: `status` without `--json`, the plan `check` prints and
//! the alive report's lost-log-lines field.

use std::fmt::Write as _;

use serde_json::Value;

use crate::config::Config;
use crate::supervisor::components::show_duration;

/// `keepserver status` as text, from the daemon's JSON status.
pub fn status_text(status: &Value) -> String {
    let mut out = String::new();
    let running = match &status["running"] {
        Value::Bool(b) => b.to_string(),
        _ => "unknown".to_string(),
    };
    let _ = writeln!(out, "role:         {}", text(&status["role"]));
    if let Some(p) = status["pending_role"].as_object() {
        let _ = writeln!(
            out,
            "pending:      {} in {}s (the VIP has said so for {}s)",
            text(&p["to"]),
            text(&p["in_s"]),
            text(&p["since_s"])
        );
    }
    let _ = writeln!(out, "running:      {running}");
    let _ = writeln!(out, "pid:          {}", text(&status["pid"]));
    let _ = writeln!(out, "uptime:       {}s", text(&status["uptime_s"]));
    let _ = writeln!(
        out,
        "vip:          {} on {}",
        text(&status["vip"]),
        nic(&status["nic"])
    );
    let _ = writeln!(out, "transitions:  {}", text(&status["transitions"]));
    if let Some(t) = status["last_transition"].as_object() {
        let _ = writeln!(
            out,
            "last change:  {} -> {}, {}s ago",
            text(&t["from"]),
            text(&t["to"]),
            text(&t["ago_s"])
        );
    }
    let _ = writeln!(out, "cycle:        {}", text(&status["cycle"]));
    if let Some(kind) = status["hook_in_flight"].as_str() {
        let _ = writeln!(out, "in flight:    {kind}");
    }
    if let Some(hooks) = status["hooks"].as_object() {
        for (kind, view) in hooks {
            let last = match view["last"].as_object() {
                None => "never run".to_string(),
                Some(l) => {
                    let code = match (&l["exit"], &l["signal"]) {
                        (Value::Number(n), _) => format!(" exit={n}"),
                        (_, Value::String(name)) => format!(" signal={name}"),
                        _ => String::new(),
                    };
                    format!(
                        "{}{code} in {}ms, {}s ago",
                        text(&l["outcome"]),
                        text(&l["ms"]),
                        text(&l["ago_s"])
                    )
                }
            };
            let _ = writeln!(
                out,
                "hook {kind:<11} runs={} last: {last}",
                text(&view["runs"])
            );
        }
    }
    if let Some(k) = status["keepalived"].as_object() {
        let _ = writeln!(
            out,
            "keepalived:   {} (from {}, instance {}, {}s ago; {} events, {} contradicted by the VIP)",
            text(&k["state"]),
            text(&k["source"]),
            text(&k["instance"]),
            text(&k["ago_s"]),
            text(&k["events"]),
            text(&k["disagreements"])
        );
    }
    if status["consecutive_failures"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "failures:     {} (next retry in {}s)",
            text(&status["consecutive_failures"]),
            text(&status["retry_in_s"])
        );
    }
    if status["is_running_failures"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "is-running:   {} failed check(s) in a row, still counted as running",
            text(&status["is_running_failures"])
        );
    }
    log_loss(&mut out, status);
    out
}

/// The status lines about lost log lines: none while no line was lost.
fn log_loss(out: &mut String, status: &Value) {
    let lost = status["log_lines_lost"].as_u64().unwrap_or(0);
    if lost == 0 {
        return;
    }
    let _ = writeln!(out, "log lost:     {lost} lines");
    for sink in status["log_sinks"].as_array().into_iter().flatten() {
        if let Some(error) = sink["failing"].as_str() {
            let _ = writeln!(out, "log failing:  {}: {error}", text(&sink["sink"]));
        }
    }
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

fn nic(v: &Value) -> String {
    nic_name(v.as_str())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_shows_keepalived_beside_the_role_once_it_spoke() {
        let mut status = serde_json::json!({
            "role": "SLAVE", "running": false, "pid": 7, "uptime_s": 1.5, "vip": "192.0.2.100",
            "nic": "eth0", "transitions": 2, "cycle": 3, "hooks": {}, "keepalived": null,
        });
        assert!(!status_text(&status).contains("keepalived"));
        status["keepalived"] = serde_json::json!({
            "state": "FAULT", "source": "fifo", "instance": "VI_1", "priority": 100,
            "ago_s": 0.25, "events": 4, "disagreements": 1,
        });
        let text = status_text(&status);
        assert!(text.contains("role:         SLAVE"), "{text}");
        assert!(
            text.contains(
                "keepalived:   FAULT (from fifo, instance VI_1, 0.25s ago; 4 events, 1 contradicted by the VIP)"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_text_names_the_signal_that_killed_a_hook() {
        let status = serde_json::json!({
            "role": "MASTER", "running": true, "hooks": {"start": {"runs": 1, "last": {
                "outcome": "failed", "exit": null, "signal": "SIGTERM", "ms": 12, "ago_s": 3.5,
            }}},
        });
        let text = status_text(&status);
        assert!(
            text.contains("last: failed signal=SIGTERM in 12ms"),
            "{text}"
        );
    }

    #[test]
    fn lost_log_lines_show_only_once_some_were_lost() {
        let mut status = serde_json::json!({
            "role": "MASTER", "running": true, "log_lines_lost": 0,
            "log_sinks": [{"sink": "stream stderr", "lines_lost": 0, "failing": null}],
        });
        assert!(
            !status_text(&status).contains("log"),
            "{}",
            status_text(&status)
        );
        assert_eq!(lost_lines_field(0), "");
        status["log_lines_lost"] = 12.into();
        status["log_sinks"] = serde_json::json!([
            {"sink": "stream stderr", "lines_lost": 0, "failing": null},
            {"sink": "file /var/log/k.log", "lines_lost": 12,
             "failing": "No space left on device (os error 28)"},
        ]);
        let text = status_text(&status);
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
        let mut status = serde_json::json!({
            "role": "MASTER", "running": true, "pending_role": null, "is_running_failures": 0,
        });
        assert!(!status_text(&status).contains("pending"));
        status["pending_role"] = serde_json::json!({"to": "SLAVE", "since_s": 0.2, "in_s": 0.3});
        status["is_running_failures"] = 2.into();
        let text = status_text(&status);
        assert!(
            text.contains("pending:      SLAVE in 0.3s (the VIP has said so for 0.2s)"),
            "{text}"
        );
        assert!(
            text.contains("is-running:   2 failed check(s) in a row, still counted as running"),
            "{text}"
        );
    }
}
