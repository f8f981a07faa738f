//! End-to-end role tests: the real keepserver in a network namespace follows the VIP on a veth
//! NIC (added, removed, NIC down, NIC created late, IPv6, CIDR, flap storms), runs its hooks one
//! at a time with the right environment, kills a hung is-running, and runs keepstart's README
//! example config.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";

#[test]
fn vip_added_runs_start_with_hook_env() {
    let Some(ns) = Netns::new("vip_added") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);
    assert!(
        ws.hook_lines().is_empty(),
        "no hook without the VIP:\n{}",
        ws.report()
    );

    ns.add_addr(VIP_CIDR);
    ws.wait_until("start runs after the VIP is added", DEADLINE, || {
        ws.start_stop() == ["start"]
    });
    let start = &ws.runs_of("start")[0];
    let env = [
        ("role", "MASTER"),
        ("prev", "SLAVE"),
        ("vip", VIP),
        ("nic", NIC),
    ];
    for (key, want) in env {
        assert_eq!(start.get(key), want, "hook env {key}:\n{}", ws.report());
    }
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
}

#[test]
fn vip_removed_runs_stop() {
    let Some(ns) = Netns::new("vip_removed") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    ns.add_addr(VIP_CIDR);
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("MASTER", true);
    assert_eq!(
        ws.start_stop(),
        ["start"],
        "VIP present at startup:\n{}",
        ws.report()
    );
    assert_eq!(ws.runs_of("start")[0].get("role"), "MASTER");

    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
    let stop = &ws.runs_of("stop")[0];
    assert_eq!(stop.get("role"), "SLAVE", "{}", ws.report());
    assert_eq!(stop.get("prev"), "MASTER", "{}", ws.report());
    assert_eq!(stop.get("vip"), VIP, "{}", ws.report());
}

#[test]
fn nic_down_with_vip_is_slave() {
    let Some(ns) = Netns::new("nic_down") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    ns.add_addr(VIP_CIDR);
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("MASTER", true);

    ns.link_down();
    assert!(ns.has_addr(VIP), "the VIP stays on the down NIC");
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
    assert_eq!(ws.runs_of("stop")[0].get("role"), "SLAVE");

    ns.link_up();
    ws.wait_settled("MASTER", true);
    assert_eq!(
        ws.start_stop(),
        ["start", "stop", "start"],
        "{}",
        ws.report()
    );
}

#[test]
fn nic_absent_at_start_is_picked_up_when_created() {
    let Some(ns) = Netns::bare("nic_absent") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);
    assert!(ws.hook_lines().is_empty(), "{}", ws.report());

    ns.add_veth();
    ns.add_addr(VIP_CIDR);
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
    let start = &ws.runs_of("start")[0];
    assert_eq!(start.get("role"), "MASTER", "{}", ws.report());
    assert_eq!(start.get("nic"), NIC, "{}", ws.report());
}

#[test]
fn no_nic_configured_watches_every_nic() {
    let Some(ns) = Netns::new("any_nic") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP).nic(None));
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    ns.add_addr(VIP_CIDR);
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.runs_of("start")[0].get("vip"), VIP, "{}", ws.report());
    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
}

#[test]
fn ipv6_vip() {
    let Some(ns) = Netns::new("ipv6_vip") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new("2001:db8::10"));
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    ns.add_addr("2001:db8::10/64");
    ws.wait_settled("MASTER", true);
    let start = &ws.runs_of("start")[0];
    assert_eq!(start.get("vip"), "2001:db8::10", "{}", ws.report());
    assert_eq!(start.get("role"), "MASTER", "{}", ws.report());

    ns.del_addr("2001:db8::10/64");
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
}

#[test]
fn cidr_vip_matches_its_address_only() {
    let Some(ns) = Netns::new("cidr_vip") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new("198.51.100.7/24"));
    // A neighbour in the same subnet is not the VIP.
    ns.add_addr("198.51.100.8/24");
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    ns.add_addr("198.51.100.7/24");
    ws.wait_settled("MASTER", true);
    let start = &ws.runs_of("start")[0];
    assert!(
        start.get("vip").starts_with("198.51.100.7"),
        "KEEPSERVER_VIP should be the configured VIP:\n{}",
        ws.report()
    );

    ns.del_addr("198.51.100.7/24");
    ws.wait_settled("SLAVE", false);
    assert!(ns.has_addr("198.51.100.8"));
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
}

/// How a flap storm toggles the VIP.
#[derive(Debug, Clone, Copy)]
enum Flap {
    /// One `ip -batch` run: as fast as the kernel takes them.
    Batch,
    /// A shell loop of `ip addr` commands: a few ms apart, so hooks run during the storm.
    Loop,
}

/// 300 toggles of the VIP starting (and so ending) with it `present`: the start/stop hooks must
/// strictly alternate, and the last one and the final status must match the final state.
fn flap_storm(test: &str, present: bool, how: Flap) {
    let Some(ns) = Netns::new(test) else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    if present {
        ns.add_addr(VIP_CIDR);
    }
    let _d = Daemon::start(&ns, &ws);
    let role = if present { "MASTER" } else { "SLAVE" };
    ws.wait_settled(role, present);

    // The first toggle flips the initial state; an even number of toggles restores it.
    let ops: Vec<&str> = (0..300)
        .map(|i| {
            if (i % 2 == 0) != present {
                "add"
            } else {
                "del"
            }
        })
        .collect();
    match how {
        Flap::Batch => {
            let batch: String = ops
                .iter()
                .map(|op| format!("address {op} {VIP_CIDR} dev {NIC}\n"))
                .collect();
            ws.write("flap.batch", &batch);
            ns.ip(&["-batch", &ws.path("flap.batch").display().to_string()]);
        }
        Flap::Loop => {
            let (a, b) = (ops[0], ops[1]);
            let script = format!(
                "for i in $(seq {}); do ip addr {a} {VIP_CIDR} dev {NIC} && ip addr {b} {VIP_CIDR} dev {NIC} || exit 1; done",
                ops.len() / 2
            );
            let out = ns.exec(&["sh", "-c", &script]);
            assert!(out.ok(), "flap loop failed:\n{out}");
        }
    }
    assert_eq!(
        ns.has_addr(VIP),
        present,
        "the storm should end where it began"
    );

    // The daemon may still be draining queued netlink events: wait for a quiet second.
    ws.wait_stable(role, present, Duration::from_secs(1));
    let kinds = ws.start_stop();
    eprintln!(
        "{test}: {} start/stop hooks for 300 toggles ({how:?})",
        kinds.len()
    );
    if let Err(e) = check_alternating(&kinds) {
        panic!("hooks should strictly alternate: {e}\n{}", ws.report());
    }
    let last = kinds.last().map(String::as_str);
    if present {
        assert_eq!(
            last,
            Some("start"),
            "final hook vs VIP present:\n{}",
            ws.report()
        );
    } else {
        assert_ne!(
            last,
            Some("start"),
            "final hook vs VIP absent:\n{}",
            ws.report()
        );
    }
    assert_eq!(ws.overlap(), None, "{}", ws.report());
}

#[test]
fn flap_storm_batch_ending_absent() {
    flap_storm("flap_batch_absent", false, Flap::Batch);
}

#[test]
fn flap_storm_batch_ending_present() {
    flap_storm("flap_batch_present", true, Flap::Batch);
}

#[test]
fn flap_storm_loop_ending_absent() {
    flap_storm("flap_loop_absent", false, Flap::Loop);
}

#[test]
fn flap_storm_loop_ending_present() {
    flap_storm("flap_loop_present", true, Flap::Loop);
}

#[test]
fn hung_is_running_is_killed_and_counts_as_not_running() {
    let Some(ns) = Netns::new("hung_is_running") else {
        return;
    };
    let timeout = 1.0;
    let spec = ConfigSpec::new(VIP).with_is_running().hook_timeout(timeout);
    let ws = Workspace::new(&spec);
    // The first is-running (the one at startup) hangs in `wait` on a `sleep 1000` child.
    ws.write("hang.is-running", "");
    ns.add_addr(VIP_CIDR);
    let _d = Daemon::start(&ns, &ws);

    let mut pids = None;
    ws.wait_until("the startup is-running hangs", DEADLINE, || {
        pids = read_pid(&ws.path("hung.is-running.pid"))
            .zip(read_pid(&ws.path("hung.is-running.child")));
        pids.is_some()
    });
    let (hook, child) = pids.unwrap_or_default();
    let grace = 4.0;
    ws.wait_until(
        &format!("the hung is-running (pid {hook}) and its child (pid {child}) are killed"),
        Duration::from_secs_f64(timeout + grace),
        || !pid_alive(hook) && !pid_alive(child),
    );

    // Timed out counts as not running: being MASTER, start runs next, and only after the kill.
    ws.wait_settled("MASTER", true);
    let lines = ws.hook_lines();
    let hung = &lines[0];
    assert_eq!(hung.kind, "is-running", "{}", ws.report());
    let start = lines
        .iter()
        .find(|l| l.kind == "start")
        .unwrap_or_else(|| panic!("start should run:\n{}", ws.report()));
    let waited = start.at_ns.saturating_sub(hung.at_ns) as f64 / 1e9;
    assert!(
        waited >= timeout * 0.9,
        "start ran {waited:.3}s after the hung is-running began, before its {timeout}s timeout:\n{}",
        ws.report()
    );
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
    let status = ws.status_json().unwrap_or_default();
    assert!(
        status["hooks"]["is-running"]["runs"].as_u64() >= Some(1),
        "status counts the is-running runs: {status}"
    );
}

#[test]
fn start_failures_back_off_and_recover() {
    let Some(ns) = Netns::new("start_backoff") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP).sleep(0.1));
    ws.write("exit.start", "1");
    ns.add_addr(VIP_CIDR);
    let _d = Daemon::start(&ns, &ws);
    ws.wait_until("five failed starts", DEADLINE, || {
        ws.runs_of("start").len() >= 5
    });
    let at: Vec<u128> = ws.runs_of("start").iter().map(|l| l.at_ns).collect();
    let gaps: Vec<f64> = at
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e9)
        .collect();
    eprintln!("start_backoff: gaps between failed starts {gaps:.3?}");
    assert!(
        gaps[3] >= 2.0 * gaps[0],
        "retries should back off: gaps {gaps:.3?}\n{}",
        ws.report()
    );
    let status = ws.status_json().unwrap_or_default();
    assert_eq!(status["role"], "MASTER", "{status}");
    assert_eq!(
        status["running"], false,
        "a failed start is not running: {status}"
    );

    fs::remove_file(ws.path("exit.start")).expect("remove exit.start");
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.runs_of("stop").len(), 0, "{}", ws.report());
}

#[test]
fn forced_is_running_restarts_a_crashed_service() {
    let Some(ns) = Netns::new("forced_test") else {
        return;
    };
    let spec = ConfigSpec::new(VIP)
        .with_is_running()
        .sleep(0.1)
        .force_test_cycle(3);
    let ws = Workspace::new(&spec);
    ns.add_addr(VIP_CIDR);
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());

    // The service dies behind keepserver's back: the periodic is-running notices, start runs.
    fs::remove_file(ws.path("app.running")).expect("remove app.running");
    ws.wait_until(
        "start runs again after the forced is-running",
        DEADLINE,
        || ws.start_stop() == ["start", "start"],
    );
    ws.wait_settled("MASTER", true);
}

#[test]
fn hooks_never_overlap() {
    let Some(ns) = Netns::new("no_overlap") else {
        return;
    };
    // Every hook takes 0.15 s, longer than a 0.1 s cycle; is-running is due every cycle.
    let spec = ConfigSpec::new(VIP)
        .with_is_running()
        .sleep(0.1)
        .force_test_cycle(1);
    let ws = Workspace::new(&spec);
    ws.write("delay", "0.15");
    let _d = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);

    for i in 0..17 {
        if i % 2 == 0 {
            ns.add_addr(VIP_CIDR);
        } else {
            ns.del_addr(VIP_CIDR);
        }
        // Pacing, not synchronisation: role changes land while hooks are in flight.
        std::thread::sleep(Duration::from_millis(120));
    }
    ws.wait_settled("MASTER", true);
    let runs = ws.hook_lines().len();
    assert!(
        runs >= 6,
        "expected a busy hook runner, got {runs} runs:\n{}",
        ws.report()
    );
    assert_eq!(ws.overlap(), None, "hooks overlapped:\n{}", ws.report());
    assert_eq!(ws.start_stop().last().map(String::as_str), Some("start"));
}

#[test]
fn keepstart_readme_example_config() {
    let Some(ns) = Netns::bare("readme_example") else {
        return;
    };
    let fixture = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keepstart-readme.yaml"
    ))
    .expect("read the README fixture");
    // Only the paths change: workspace, scripts and log file move into the test's tempdir.
    let ws = Workspace::with_config_text(
        |dir| fixture.replace("/opt/ssh-proxy-server", &dir.display().to_string()),
        true,
        "ssh-proxy-server.pid",
    );
    for kind in ["start", "stop", "is-running"] {
        let hook = ws.path("hook.sh").display().to_string();
        ws.write_script(
            &format!("{kind}.sh"),
            &format!("#!/bin/sh\nexec {hook} {kind}\n"),
        );
    }
    let d = Daemon::start(&ns, &ws);
    assert!(
        is_flocked(&ws.pidfile()),
        "pidfile locked:\n{}",
        ws.report()
    );

    ws.wait_until("start runs (127.0.0.1 is on lo)", DEADLINE, || {
        !ws.runs_of("start").is_empty()
    });
    let start = &ws.runs_of("start")[0];
    assert_eq!(start.get("role"), "MASTER", "{}", ws.report());
    assert_eq!(start.get("vip"), "127.0.0.1", "{}", ws.report());
    assert_eq!(start.get("nic"), "lo", "{}", ws.report());
    ws.wait_settled("MASTER", true);

    // The TimedRotatingFileHandler with the `simple` format: asctime, TAB, level, TAB, message.
    let formatted = |l: &str| {
        let mut f = l.split('\t');
        let (time, level) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        let date = time.as_bytes();
        date.len() >= 19
            && date[..4].iter().all(u8::is_ascii_digit)
            && date[4] == b'-'
            && level == "INFO"
            && f.next().is_some()
    };
    ws.wait_until(
        "server.log has `asctime\\tINFO\\tmessage` lines",
        DEADLINE,
        || ws.read("server.log").lines().any(formatted),
    );

    let stop = ws.cli(&["stop"]);
    assert!(stop.ok(), "stop:\n{stop}\n{}", ws.report());
    assert!(!pid_alive(d.pid()), "stopped daemon gone");
}
