//! End-to-end: what keepserver tells an operator reads as text, not as Rust. A real daemon goes
//! through a role change, a start hook killed by SIGTERM, a reload refused for a broken config,
//! an alive report and a SIGTERM shutdown; its log and `status` must name signals (`SIGTERM`),
//! say a config error's position once, and hold no Debug output (`None`, `Some(`).

mod common;

use common::*;
use nix::sys::signal::Signal;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";

/// Debug text and the older spellings the log must not show.
const FORBIDDEN: &[&str] = &["None", "Some(", "Ok(", "Err(", "{ ", "(line ", "<input>"];

#[test]
fn the_log_and_status_read_as_text() {
    let Some(ns) = Netns::new("messages") else {
        return;
    };
    let spec = ConfigSpec::new(VIP)
        .with_is_running()
        .start("{ws}/start.sh");
    let ws = Workspace::new(&spec);
    // The start hook is killed by SIGTERM until `start-ok` exists.
    let dir = ws.dir().display().to_string();
    ws.write_script(
        "start.sh",
        &format!(
            "#!/bin/sh\n[ -e '{dir}/start-ok' ] && exec '{dir}/hook.sh' start\nkill -TERM $$\n"
        ),
    );
    let mut d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    ns.add_addr(VIP_CIDR);
    ws.wait_until("a start killed by SIGTERM", DEADLINE, || {
        ws.status_json()
            .is_ok_and(|s| s["hooks"]["start"]["last"]["signal"] == "SIGTERM")
    });
    let status = ws.cli(&["status"]);
    assert!(
        status.stdout.contains("failed by SIGTERM in "),
        "status names the signal:\n{status}"
    );
    ws.write("start-ok", "");
    ws.wait_settled("MASTER", true);

    let good = ws.read("config.yaml");
    ws.write(
        "config.yaml",
        &good.replace("  sleep: 0.2", "  sleep: soon"),
    );
    let sleep_line = line_of(&ws.read("config.yaml"), "sleep:");
    d.signal(Signal::SIGHUP);
    let refused = format!("config.yaml:{sleep_line}:");
    ws.wait_until("the reload refused", DEADLINE, || {
        ws.read("daemon.out").contains(&refused)
    });
    ws.write("config.yaml", &good);

    d.signal(Signal::SIGUSR1);
    ws.wait_until("the alive report", DEADLINE, || {
        ws.read("daemon.out").contains("alive role=MASTER")
    });
    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    d.signal(Signal::SIGTERM);
    let exit = d.wait_exit(DEADLINE);
    assert!(
        exit.is_some_and(|e| e.success()),
        "SIGTERM ends it cleanly:\n{}",
        ws.report()
    );

    let log = ws.read("daemon.out");
    for want in [
        "role change role=MASTER previous=SLAVE",
        "hook end hook=start failed signal=SIGTERM",
        "signal received signal=SIGTERM action=stop",
        "shutting down in_flight=none",
    ] {
        assert!(log.contains(want), "the log says {want:?}:\n{log}");
    }
    let refusal = log
        .lines()
        .find(|l| l.contains(&refused))
        .expect("the refusal line");
    assert_eq!(refusal.matches(&refused).count(), 1, "{refusal}");
    assert!(!refusal.contains("line"), "the position once: {refusal}");
    for line in log.lines() {
        for bad in FORBIDDEN {
            assert!(!line.contains(bad), "{bad:?} in the log: {line}\n{log}");
        }
        if let Some((_, after)) = line.split_once("signal=") {
            assert!(
                after.starts_with("SIG"),
                "a signal by number in the log: {line}"
            );
        }
    }
}
