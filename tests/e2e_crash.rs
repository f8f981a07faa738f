//! keepserver killed with SIGKILL at the worst moments, as an operator (or the OOM killer)
//! would: while a start hook runs, while a stop hook runs, while a hook hangs, and at random
//! moments right after the VIP moves. A successor is started on the same workspace each time and
//! must end with exactly one correct outcome: the service runs iff the node is MASTER, it never
//! runs twice (the service itself holds a lock and reports a second instance), the old hook's
//! process group is gone, hooks never overlap across the two instances, and the successor's log
//! says what it found in the hook record and what it did.
//!
//! Real processes in a network namespace with a veth NIC; the hooks start a real background
//! service (`svc.sh`, in a session of its own).

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const VIP: &str = "192.0.2.10";
const CIDR: &str = "192.0.2.10/24";

/// The hooks and the service. `start.delay`/`stop.delay` make a hook take that long before it
/// acts; `hang.start` makes the next start hang (once).
const HOOKS: &str = r#"#!/bin/sh
ws='{ws}'
kind=$1
echo "begin $kind $$" >> "$ws/spans.log"
echo "$kind $(date +%s%N) pid=$$" >> "$ws/hooks.log"
if [ -e "$ws/$kind.delay" ]; then sleep "$(cat "$ws/$kind.delay")"; fi
code=0
case $kind in
    start)
        if [ -e "$ws/hang.start" ]; then rm -f "$ws/hang.start"; sleep 1000; fi
        setsid "$ws/svc.sh" </dev/null >/dev/null 2>&1 &
        echo $! > "$ws/svc.pid.tmp" && mv "$ws/svc.pid.tmp" "$ws/svc.pid"
        ;;
    stop)
        if [ -e "$ws/svc.pid" ]; then kill "$(cat "$ws/svc.pid")" 2>/dev/null; fi
        rm -f "$ws/svc.pid"
        ;;
    is-running)
        [ -e "$ws/svc.pid" ] && kill -0 "$(cat "$ws/svc.pid")" 2>/dev/null || code=1
        ;;
esac
echo "end $kind $$" >> "$ws/spans.log"
exit $code
"#;

/// The service: holds a lock for as long as it runs; a second instance cannot take it and says
/// so in `duplicates`.
const SERVICE: &str = r#"#!/bin/sh
ws='{ws}'
exec 9>"$ws/svc.lock"
flock -n 9 || echo "duplicate $$" >> "$ws/duplicates"
echo "service $$" >> "$ws/services.log"
while :; do sleep 1 9>&-; done
"#;

/// A namespace, a workspace with the hooks and the service, and a config using them.
fn lab(test: &str, hook_timeout: f64) -> Option<(Netns, Workspace)> {
    let ns = Netns::new(test)?;
    let mut spec = ConfigSpec::new(VIP)
        .start("{ws}/hooks.sh start")
        .stop("{ws}/hooks.sh stop")
        .sleep(0.5)
        .hook_timeout(hook_timeout);
    spec.is_running = Some("{ws}/hooks.sh is-running".to_string());
    let ws = Workspace::new(&spec);
    let dir = ws.dir().display().to_string();
    ws.write_script("hooks.sh", &HOOKS.replace("{ws}", &dir));
    ws.write_script("svc.sh", &SERVICE.replace("{ws}", &dir));
    Some((ns, ws))
}

/// The live instances of this workspace's service (each wrote its pid to `services.log` when it
/// began; looking for `svc.sh` in command lines would also count its children between their fork
/// and exec).
fn services(ws: &Workspace) -> Vec<i32> {
    ws.read("services.log")
        .lines()
        .filter_map(|l| l.strip_prefix("service ")?.parse().ok())
        .filter(|pid| pid_alive(*pid) && cmdline(*pid).contains("svc.sh"))
        .collect()
}

/// Every live pid.
fn live_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|pid| pid_alive(*pid))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether any live process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    live_pids().into_iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let after = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(2)?
                    .to_string();
                after.parse::<i32>().ok()
            })
            == Some(pgid)
    })
}

/// The pid (= process group) of the last run of hook `kind`.
fn last_run_pid(ws: &Workspace, kind: &str) -> i32 {
    ws.runs_of(kind)
        .last()
        .and_then(|l| l.get("pid").parse().ok())
        .unwrap_or_else(|| panic!("no {kind} run\n{}", ws.report()))
}

/// Lines of the daemons' shared log that contain `text`.
fn log_lines(ws: &Workspace, text: &str) -> Vec<String> {
    ws.read("daemon.out")
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

/// Kills `daemon` with SIGKILL and waits until it is gone (it stays in scope: dropping it would
/// kill everything in the namespace, the hook it left included).
fn kill_9(daemon: &mut Daemon, ws: &Workspace) {
    daemon.signal(Signal::SIGKILL);
    assert!(
        daemon.wait_exit(DEADLINE).is_some(),
        "the daemon survived SIGKILL\n{}",
        ws.report()
    );
}

/// The invariants every scenario ends with, held for a while: `role` and the service running
/// iff MASTER, never two services.
fn settles_right(ws: &Workspace, master: bool) {
    let role = if master { "MASTER" } else { "SLAVE" };
    ws.wait_stable(role, master, Duration::from_secs(1));
    ws.assert_holds(
        "one service iff MASTER, none twice",
        Duration::from_secs(1),
        || services(ws).len() == usize::from(master) && ws.read("duplicates").is_empty(),
    );
}

/// [`settles_right`], and every hook ran to its end alone, across both instances.
fn ends_right(ws: &Workspace, master: bool) {
    settles_right(ws, master);
    assert_eq!(ws.overlap(), None, "hooks overlapped\n{}", ws.report());
}

#[test]
fn kill_9_during_a_start_hook_leaves_one_service() {
    let Some((ns, ws)) = lab("crash_start", 10.0) else {
        return;
    };
    ws.write("start.delay", "2");
    ns.add_addr(CIDR);
    let mut old = Daemon::start(&ns, &ws);
    ws.wait_until("the start hook runs", DEADLINE, || {
        !ws.runs_of("start").is_empty()
    });
    let hook = last_run_pid(&ws, "start");
    kill_9(&mut old, &ws);
    assert!(group_alive(hook), "the start hook outlives its keepserver");

    let _new = Daemon::start(&ns, &ws);
    ends_right(&ws, true);
    assert_eq!(
        ws.runs_of("start").len(),
        1,
        "started once\n{}",
        ws.report()
    );
    assert!(!group_alive(hook), "the old hook's group is gone");
    let found = log_lines(&ws, "hook record: hook=start left by keepserver");
    assert!(
        found.len() == 1 && found[0].contains(&format!("still runs pgid={hook}")),
        "the successor says what it found\n{}",
        ws.report()
    );
    assert_eq!(
        log_lines(
            &ws,
            &format!("adopted hook end hook=start pgid={hook} ended")
        )
        .len(),
        1,
        "and how it ended\n{}",
        ws.report()
    );
}

#[test]
fn kill_9_during_a_stop_hook_leaves_no_service() {
    let Some((ns, ws)) = lab("crash_stop", 10.0) else {
        return;
    };
    ns.add_addr(CIDR);
    let mut old = Daemon::start(&ns, &ws);
    ws.wait_settled("MASTER", true);
    ws.write("stop.delay", "2");
    ns.del_addr(CIDR);
    ws.wait_until("the stop hook runs", DEADLINE, || {
        !ws.runs_of("stop").is_empty()
    });
    let hook = last_run_pid(&ws, "stop");
    kill_9(&mut old, &ws);

    let _new = Daemon::start(&ns, &ws);
    ends_right(&ws, false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
    assert!(!group_alive(hook), "the old hook's group is gone");
    assert_eq!(
        log_lines(&ws, "hook record: hook=stop left by keepserver").len(),
        1,
        "{}",
        ws.report()
    );
    assert_eq!(
        log_lines(
            &ws,
            &format!("adopted hook end hook=stop pgid={hook} ended")
        )
        .len(),
        1,
        "{}",
        ws.report()
    );
}

#[test]
fn a_hung_hook_left_by_a_killed_keepserver_is_killed_at_its_original_timeout() {
    let timeout = 3.0;
    let Some((ns, ws)) = lab("crash_hung", timeout) else {
        return;
    };
    ws.write("hang.start", "");
    ns.add_addr(CIDR);
    let mut old = Daemon::start(&ns, &ws);
    ws.wait_until("the start hook hangs", DEADLINE, || {
        !ws.runs_of("start").is_empty()
    });
    let hook = last_run_pid(&ws, "start");
    let hung_at = ws.runs_of("start")[0].at_ns;
    std::thread::sleep(Duration::from_millis(500));
    kill_9(&mut old, &ws);

    let _new = Daemon::start(&ns, &ws);
    // The killed hook never writes its end: the order is checked in the successor's log.
    settles_right(&ws, true);
    assert!(!group_alive(hook), "the hung group is gone");
    let log = ws.read("daemon.out");
    let killed = log.find(&format!("adopted hook end hook=start pgid={hook} timeout"));
    let retried = log.rfind("hook begin hook=start");
    assert!(
        killed.is_some() && killed < retried,
        "the successor ran start only after the hung group was killed\n{}",
        ws.report()
    );
    let starts = ws.runs_of("start");
    assert_eq!(
        starts.len(),
        2,
        "the killed start is retried once\n{}",
        ws.report()
    );
    let waited = Duration::from_nanos((starts[1].at_ns - hung_at) as u64);
    assert!(
        waited >= Duration::from_secs_f64(timeout)
            && waited <= Duration::from_secs_f64(timeout) + Duration::from_secs(5),
        "killed at its original timeout ({timeout}s after it began), then retried: {waited:?}\n{}",
        ws.report()
    );
    assert_eq!(
        log_lines(
            &ws,
            &format!("adopted hook timeout hook=start pgid={hook} sending=SIGTERM")
        )
        .len(),
        1,
        "{}",
        ws.report()
    );
}

#[test]
fn kill_9_at_random_moments_after_the_vip_moves_never_runs_two_services() {
    let Some((ns, ws)) = lab("crash_chaos", 10.0) else {
        return;
    };
    ws.write("start.delay", "0.2");
    ws.write("stop.delay", "0.2");
    let mut daemons = vec![Daemon::start(&ns, &ws)];
    ws.wait_settled("SLAVE", false);
    // A cheap deterministic spread of kill moments from 0 to ~450 ms after the move, around the
    // hook's record, spawn and work.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 450);
        let master = round % 2 == 0;
        if master {
            ns.add_addr(CIDR);
        } else {
            ns.del_addr(CIDR);
        }
        let moved = Instant::now();
        std::thread::sleep(delay.saturating_sub(moved.elapsed()));
        let last = daemons.last_mut().expect("a daemon");
        kill_9(last, &ws);
        daemons.push(Daemon::start(&ns, &ws));
        ends_right(&ws, master);
    }
    let kinds = ws.start_stop();
    check_alternating(&kinds).unwrap_or_else(|e| panic!("{e}\n{}", ws.report()));
}
