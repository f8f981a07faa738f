//! End-to-end hysteresis: the real keepserver in a network namespace, MASTER with its service
//! running, sees the VIP vanish for about 50 ms (`ip addr del` then `ip addr add` on a veth NIC).
//! With `keepstart.fall` set the blip runs no hook and the service stays up; without it the same
//! blip runs stop (and start again), which is what makes the first test able to fail. A real
//! removal longer than `fall` runs stop, no earlier than `fall` after the VIP went.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";
/// `keepstart.fall` in the test with hysteresis: long against a 50 ms blip even on a loaded
/// machine, short enough to wait out.
const FALL: Duration = Duration::from_secs(1);

/// A workspace for the default spec (no is-running), plus `fall` when given.
fn workspace(fall: Option<&str>) -> Workspace {
    let spec = ConfigSpec::new(VIP);
    Workspace::with_config_text(
        |ws| {
            let mut text = spec.render(ws);
            if let Some(fall) = fall {
                text.push_str(&format!("  fall: {fall}\n"));
            }
            text
        },
        false,
        "server.pid",
    )
}

/// A MASTER daemon whose start hook ran and whose service (`app.running`) is up.
fn running_master(ns: &Netns, ws: &Workspace) -> Daemon {
    ns.add_addr(VIP_CIDR);
    let d = Daemon::start(ns, ws);
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
    assert!(ws.path("app.running").exists(), "{}", ws.report());
    d
}

/// Removes the VIP, waits ~50 ms and adds it back, in one shell inside the namespace; returns
/// how long the VIP was really gone (between the two `ip` commands' ends, as the shell saw).
fn blip(ns: &Netns) -> Duration {
    let script = format!(
        "ip addr del {VIP_CIDR} dev {NIC} && date +%s%N && sleep 0.05 && \
         ip addr add {VIP_CIDR} dev {NIC} && date +%s%N"
    );
    let out = ns.exec(&["sh", "-c", &script]);
    assert!(out.ok(), "blip failed:\n{out}");
    let ns: Vec<u128> = out
        .stdout
        .lines()
        .map(|l| l.trim().parse().expect("date +%s%N"))
        .collect();
    assert!(ns.len() == 2 && ns.iter().all(|t| *t > 0), "{out}");
    Duration::from_nanos(u64::try_from(ns[1] - ns[0]).unwrap_or(u64::MAX))
}

fn epoch_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

#[test]
fn with_fall_a_blip_runs_nothing_and_a_longer_removal_stops() {
    let Some(ns) = Netns::new("hyst_fall") else {
        return;
    };
    let ws = workspace(Some("1s"));
    let check = ws.cli(&["check"]);
    assert!(
        check.ok()
            && check
                .stdout
                .contains("SLAVE once it has been absent for 1s"),
        "check shows fall:\n{check}"
    );
    let _d = running_master(&ns, &ws);

    let gone = blip(&ns);
    eprintln!("blip: VIP gone for {} ms", gone.as_millis());
    ws.wait_until(
        "the daemon saw the blip and called it off",
        DEADLINE,
        || ws.read("daemon.out").contains("role change called off"),
    );
    ws.assert_holds("no stop after the blip, service up", FALL * 2, || {
        ws.runs_of("stop").is_empty() && ws.path("app.running").exists()
    });
    let st = ws.status_json().expect("status");
    assert_eq!(
        (&st["role"], &st["transitions"], &st["pending_role"]),
        (
            &serde_json::json!("MASTER"),
            &serde_json::json!(0),
            &serde_json::Value::Null
        ),
        "{}",
        ws.report()
    );

    let removed_ns = epoch_ns();
    ns.del_addr(VIP_CIDR);
    ws.wait_until("status shows the pending change", DEADLINE, || {
        ws.status_json()
            .is_ok_and(|s| s["pending_role"]["to"] == "SLAVE" || s["role"] == "SLAVE")
    });
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
    let stop = &ws.runs_of("stop")[0];
    let waited = Duration::from_nanos(u64::try_from(stop.at_ns - removed_ns).unwrap_or(0));
    eprintln!(
        "removal: stop ran {} ms after the VIP was removed (fall {} ms)",
        waited.as_millis(),
        FALL.as_millis()
    );
    assert!(
        waited >= FALL,
        "stop ran {waited:?} after the removal, before fall:\n{}",
        ws.report()
    );
    assert_eq!(stop.get("role"), "SLAVE", "{}", ws.report());
    assert!(!ws.path("app.running").exists(), "{}", ws.report());
    assert_eq!(ws.overlap(), None, "{}", ws.report());
}

#[test]
fn without_fall_the_same_blip_runs_stop() {
    let Some(ns) = Netns::new("hyst_none") else {
        return;
    };
    let ws = workspace(None);
    let _d = running_master(&ns, &ws);

    let gone = blip(&ns);
    eprintln!("blip: VIP gone for {} ms", gone.as_millis());
    ws.wait_until("the blip runs stop", DEADLINE, || {
        !ws.runs_of("stop").is_empty()
    });
    ws.wait_settled("MASTER", true);
    assert_eq!(
        ws.start_stop(),
        ["start", "stop", "start"],
        "{}",
        ws.report()
    );
    assert_eq!(ws.overlap(), None, "{}", ws.report());
}
