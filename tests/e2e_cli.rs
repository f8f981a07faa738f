//! End-to-end CLI tests: `keepserver start|stop|reload|status|check` as an operator runs them
//! (pidfile and its lock, exit codes, stale pidfiles, status JSON, config errors, reload), the
//! daemon's answers to SIGTERM, SIGINT, SIGUSR1 and SIGHUP, what `check` and `reload` refuse (bad
//! NIC names, hooks that cannot run, a NIC that is not there) and `stop`/`status` with a broken
//! config file.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A namespace with the VIP on the NIC and a MASTER daemon (daemon mode or not) that has run
/// `start`, or `None` where e2e tests are skipped.
fn master(test: &str, spec: &ConfigSpec) -> Option<(Netns, Workspace, Daemon)> {
    let ns = Netns::new(test)?;
    let ws = Workspace::new(spec);
    ns.add_addr(VIP_CIDR);
    let d = Daemon::start(&ns, &ws);
    ws.wait_settled("MASTER", true);
    Some((ns, ws, d))
}

#[test]
fn daemon_start_writes_locked_pidfile_and_answers_status() {
    let Some((_ns, ws, d)) = master("daemon_start", &ConfigSpec::new(VIP).daemon(true)) else {
        return;
    };
    assert_eq!(read_pid(&ws.pidfile()), Some(d.pid()), "{}", ws.report());
    assert!(is_flocked(&ws.pidfile()), "the pidfile should be flock-ed");
    let sock = ws.path("server.sock");
    let meta = fs::metadata(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    assert!(
        meta.file_type().is_socket(),
        "{} is a socket",
        sock.display()
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "control socket mode"
    );

    let status = ws.cli(&["status"]);
    assert!(status.ok(), "status:\n{status}");
    assert!(
        !status.stdout.trim().is_empty(),
        "status prints something:\n{status}"
    );
    let json = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["pid"], d.pid(), "status pid: {json}");
}

#[test]
fn second_start_fails_with_already_running() {
    let Some((ns, ws, d)) = master("second_start", &ConfigSpec::new(VIP).daemon(true)) else {
        return;
    };
    let again = ws.cli_in(&ns, &["start"]);
    assert_eq!(again.code, Some(1), "second start:\n{again}");
    let want = format!("already running (pid {})", d.pid());
    assert!(
        again.text().contains(&want),
        "expected {want:?} in:\n{again}"
    );
    assert!(pid_alive(d.pid()), "the first daemon survives");
    assert_eq!(read_pid(&ws.pidfile()), Some(d.pid()), "pidfile untouched");
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
}

#[test]
fn stop_ends_daemon_and_removes_pidfile() {
    let Some((_ns, ws, d)) = master("stop_daemon", &ConfigSpec::new(VIP).daemon(true)) else {
        return;
    };
    let stop = ws.cli(&["stop"]);
    assert!(stop.ok(), "stop:\n{stop}\n{}", ws.report());
    assert!(
        !pid_alive(d.pid()),
        "stop returns once the daemon has exited"
    );
    assert!(!ws.pidfile().exists(), "stop removes the pidfile");
    let status = ws.cli(&["status"]);
    assert_eq!(status.code, Some(3), "status after stop:\n{status}");
}

#[test]
fn commands_without_daemon_exit_3() {
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    for cmd in [
        &["stop"][..],
        &["status"],
        &["status", "--json"],
        &["reload"],
    ] {
        let out = ws.cli(cmd);
        assert_eq!(out.code, Some(3), "{cmd:?} with nothing running:\n{out}");
        assert!(
            out.text().to_lowercase().contains("not running"),
            "{cmd:?} should say it is not running:\n{out}"
        );
    }
}

#[test]
fn stale_pidfile_is_taken_over_with_warning() {
    let Some(ns) = Netns::new("stale_pidfile") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP).daemon(true));
    let dead = dead_pid();
    fs::write(ws.pidfile(), format!("{dead}\n")).expect("write stale pidfile");
    let d = Daemon::start(&ns, &ws);
    assert_ne!(d.pid(), dead);
    assert_eq!(read_pid(&ws.pidfile()), Some(d.pid()), "{}", ws.report());
    assert!(is_flocked(&ws.pidfile()));
    let said = format!(
        "{}{}",
        d.start_output
            .as_ref()
            .map(CmdOutput::text)
            .unwrap_or_default(),
        ws.read("keepserver.log")
    );
    let warned = said.lines().any(|l| {
        let l = l.to_lowercase();
        l.contains("stale") || (l.contains("warn") && l.contains(&dead.to_string()))
    });
    assert!(warned, "expected a warning about stale pid {dead}:\n{said}");
}

/// The status object's `hooks.<kind>`, checked for shape.
fn hook_status<'a>(status: &'a Value, kind: &str) -> &'a Value {
    let hook = &status["hooks"][kind];
    assert!(
        hook["runs"].is_u64(),
        "hooks.{kind}.runs is a count: {status}"
    );
    let last = &hook["last"];
    if !last.is_null() {
        let outcome = last["outcome"].as_str().unwrap_or("");
        assert!(
            ["ok", "failed", "timeout"].contains(&outcome),
            "hooks.{kind}.last.outcome: {status}"
        );
        assert!(
            last["exit"].is_null() || last["exit"].is_i64(),
            "hooks.{kind}.last.exit: {status}"
        );
    }
    hook
}

#[test]
fn status_json_reports_fields() {
    let spec = ConfigSpec::new(VIP).with_is_running();
    let Some((ns, ws, d)) = master("status_json", &spec) else {
        return;
    };
    let s = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s["role"], "MASTER", "{s}");
    assert_eq!(s["running"], true, "{s}");
    assert_eq!(s["pid"], d.pid(), "{s}");
    assert!(
        s["uptime_s"].as_f64().is_some_and(|u| u >= 0.0),
        "uptime_s: {s}"
    );
    assert!(s["hook_in_flight"].is_null(), "{s}");
    let transitions = s["transitions"]
        .as_u64()
        .unwrap_or_else(|| panic!("transitions is a count: {s}"));
    let start = hook_status(&s, "start");
    assert_eq!(start["runs"], 1, "{s}");
    assert_eq!(start["last"]["outcome"], "ok", "{s}");
    assert_eq!(start["last"]["exit"], 0, "{s}");
    let stop = hook_status(&s, "stop");
    assert_eq!(stop["runs"], 0, "{s}");
    assert!(stop["last"].is_null(), "{s}");
    let is_running = hook_status(&s, "is-running");
    assert!(
        is_running["runs"].as_u64() >= Some(1),
        "is-running runs at startup: {s}"
    );

    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    let s = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s["transitions"], transitions + 1, "one role change: {s}");
    let stop = hook_status(&s, "stop");
    assert_eq!(stop["runs"], 1, "{s}");
    assert_eq!(stop["last"]["outcome"], "ok", "{s}");

    // A failing start shows up as such.
    ws.write("exit.start", "3");
    ns.add_addr(VIP_CIDR);
    ws.wait_until("status shows the failed start", DEADLINE, || {
        ws.status_json().is_ok_and(|s| {
            s["role"] == "MASTER"
                && s["hooks"]["start"]["last"]["outcome"] == "failed"
                && s["hooks"]["start"]["last"]["exit"] == 3
        })
    });
    let s = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    hook_status(&s, "start");
    assert_eq!(s["transitions"], transitions + 2, "{s}");
}

#[test]
fn check_accepts_valid_config() {
    let out = run(
        Command::new(BIN).args(["-c", &fixture("valid.yaml"), "check"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(0), "check valid.yaml:\n{out}");
}

#[test]
fn check_accepts_keepstart_readme_example() {
    let ws = Workspace::with_config_text(
        |dir| {
            fs::read_to_string(fixture("keepstart-readme.yaml"))
                .expect("read fixture")
                .replace("/opt/ssh-proxy-server", &dir.display().to_string())
        },
        true,
        "ssh-proxy-server.pid",
    );
    // `check` refuses hooks whose programs are missing: give it the example's three scripts.
    for script in ["start.sh", "stop.sh", "is-running.sh"] {
        ws.write_script(script, "#!/bin/sh\n");
    }
    let out = ws.cli(&["check"]);
    assert_eq!(out.code, Some(0), "check README example:\n{out}");
}

#[test]
fn check_invalid_config_names_key_file_and_line() {
    let path = fixture("invalid-sleep.yaml");
    let out = run(
        Command::new(BIN).args(["-c", &path, "check"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "check invalid-sleep.yaml:\n{out}");
    let text = out.text();
    for want in ["sleep", "invalid-sleep.yaml:8:"] {
        assert!(text.contains(want), "expected {want:?} in:\n{out}");
    }
}

#[test]
fn check_missing_vip_names_the_key() {
    let ws = Workspace::with_config_text(
        |_| "keepstart:\n  start: /bin/true\n  stop: /bin/true\n".to_string(),
        false,
        "server.pid",
    );
    let out = ws.cli(&["check"]);
    assert_eq!(out.code, Some(1), "check without vip:\n{out}");
    assert!(out.text().contains("vip"), "names the missing key:\n{out}");
}

#[test]
fn usage_error_exits_2() {
    for args in [&["frobnicate"][..], &["start", "--no-such-flag"], &[]] {
        let out = run(Command::new(BIN).args(args), Duration::from_secs(30));
        assert_eq!(out.code, Some(2), "keepserver {args:?}:\n{out}");
    }
}

/// How many lines of the daemon's output mention `word` (case-insensitive).
fn count_lines(ws: &Workspace, word: &str) -> usize {
    fs::read_to_string(ws.daemon_output())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.to_lowercase().contains(word))
        .count()
}

#[test]
fn reload_valid_config_keeps_state_and_uses_new_commands() {
    let spec = ConfigSpec::new(VIP).daemon(true);
    let Some((ns, ws, d)) = master("reload_valid", &spec) else {
        return;
    };
    let before = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    let hooks_before = ws.hook_lines().len();
    let logged_reloads = count_lines(&ws, "reload");

    let v2 = spec
        .start(&ws.hook_cmd("start", "v2"))
        .stop(&ws.hook_cmd("stop", "v2"));
    ws.write_config(&v2);
    let out = ws.cli(&["reload"]);
    assert!(out.ok(), "reload:\n{out}\n{}", ws.report());
    // The daemon usually logs the reload; where it does not, the hold below covers it.
    wait_for(
        || count_lines(&ws, "reload") > logged_reloads,
        Duration::from_secs(3),
    );
    ws.assert_holds(
        "after reload: same pid, still MASTER and running, no hook run",
        Duration::from_secs(1),
        || {
            ws.hook_lines().len() == hooks_before
                && ws.status_json().is_ok_and(|s| {
                    s["pid"] == d.pid() && s["role"] == "MASTER" && s["running"] == true
                })
        },
    );
    let after = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after["transitions"], before["transitions"], "{after}");
    assert_eq!(
        after["hooks"]["start"]["runs"],
        before["hooks"]["start"]["runs"]
    );

    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    ns.add_addr(VIP_CIDR);
    ws.wait_settled("MASTER", true);
    let lines = ws.hook_lines();
    let tags: Vec<String> = lines
        .iter()
        .map(|l| format!("{}:{}", l.kind, l.get("tag")))
        .collect();
    assert_eq!(tags, ["start:", "stop:v2", "start:v2"], "{}", ws.report());
    assert_eq!(read_pid(&ws.pidfile()), Some(d.pid()));
}

#[test]
fn reload_invalid_config_exits_2_and_leaves_daemon_untouched() {
    let spec = ConfigSpec::new(VIP).daemon(true);
    let Some((ns, ws, d)) = master("reload_invalid", &spec) else {
        return;
    };
    let bad = spec
        .render(ws.dir())
        .replace(&format!("sleep: {}", spec.sleep), "sleep: soon");
    let line = line_of(&bad, "sleep:");
    ws.write("config.yaml", &bad);

    let out = ws.cli(&["reload"]);
    assert_eq!(out.code, Some(2), "reload of an invalid file:\n{out}");
    for want in ["sleep".to_string(), format!("config.yaml:{line}:")] {
        assert!(out.text().contains(&want), "expected {want:?} in:\n{out}");
    }
    let hooks_before = ws.hook_lines().len();
    ws.assert_holds(
        "after a refused reload the daemon runs on as before",
        Duration::from_millis(600),
        || {
            ws.hook_lines().len() == hooks_before
                && ws.status_json().is_ok_and(|s| {
                    s["pid"] == d.pid() && s["role"] == "MASTER" && s["running"] == true
                })
        },
    );
    assert!(pid_alive(d.pid()));

    // Still following the VIP with the old configuration.
    ns.del_addr(VIP_CIDR);
    ws.wait_until("stop runs after the VIP goes", DEADLINE, || {
        ws.status_json()
            .is_ok_and(|s| s["role"] == "SLAVE" && s["running"] == false)
    });
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
}

/// Sends `sig` to a foreground MASTER daemon: it must exit 0 promptly, without running stop
/// (stop-on-exit is false), releasing its pidfile lock.
fn foreground_exits_on(sig: Signal, test: &str) {
    let Some((_ns, ws, mut d)) = master(test, &ConfigSpec::new(VIP)) else {
        return;
    };
    assert!(
        is_flocked(&ws.pidfile()),
        "foreground mode flocks the pidfile too"
    );
    assert_eq!(read_pid(&ws.pidfile()), Some(d.pid()));
    let sent = Instant::now();
    d.signal(sig);
    let status = d.wait_exit(Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("no exit 5 s after {sig}:\n{}", ws.report()));
    assert!(
        status.success(),
        "{sig} should end it cleanly, got {}:\n{}",
        describe_exit(&status),
        ws.report()
    );
    eprintln!("{test}: exited {:?} after {sig}", sent.elapsed());
    assert!(!is_flocked(&ws.pidfile()), "lock released");
    assert_eq!(
        ws.start_stop(),
        ["start"],
        "no stop on exit:\n{}",
        ws.report()
    );
}

#[test]
fn sigterm_stops_foreground_promptly() {
    foreground_exits_on(Signal::SIGTERM, "sigterm");
}

#[test]
fn sigint_stops_foreground_promptly() {
    foreground_exits_on(Signal::SIGINT, "sigint");
}

#[test]
fn sigusr1_writes_alive_report() {
    let Some((_ns, ws, d)) = master("sigusr1", &ConfigSpec::new(VIP)) else {
        return;
    };
    let before = count_lines(&ws, "alive");
    d.signal(Signal::SIGUSR1);
    ws.wait_until("an alive report line in the log", DEADLINE, || {
        count_lines(&ws, "alive") > before
    });
    assert!(Path::new(&ws.daemon_output()).exists());
}

// ---------------------------------------------------------------------------------------------
// What check and reload refuse, and stop/status with a broken config

/// Asserts `out` exited `code` and names `key` and the config file of `ws` at line N
/// (`<file>:N:`).
fn assert_names(out: &CmdOutput, code: i32, key: &str, ws: &Workspace, line: usize) {
    assert_eq!(out.code, Some(code), "{key}:\n{out}");
    let text = out.text();
    let file = ws.config_path().display().to_string();
    for want in [format!("`{key}`"), format!("{file}:{line}:")] {
        assert!(text.contains(&want), "expected {want:?} in:\n{out}");
    }
}

/// Asserts for a while that the daemon `d` of `ws` is still MASTER and running on NIC `ksv0`,
/// has run no hook beyond `hooks_before` and applied `reloads` reloads.
fn assert_untouched(ws: &Workspace, d: &Daemon, hooks_before: usize, reloads: u64) {
    ws.assert_holds(
        "the daemon runs on, MASTER on ksv0, with no hook run",
        Duration::from_millis(800),
        || {
            ws.hook_lines().len() == hooks_before
                && ws.status_json().is_ok_and(|s| {
                    s["pid"] == d.pid()
                        && s["role"] == "MASTER"
                        && s["running"] == true
                        && s["nic"] == NIC
                        && s["reloads"] == reloads
                })
        },
    );
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
}

#[test]
fn check_and_reload_refuse_bad_nic_names_and_hooks_that_cannot_run() {
    let spec = ConfigSpec::new(VIP);
    let Some((_ns, ws, d)) = master("refuse_bad", &spec) else {
        return;
    };
    let hooks_before = ws.hook_lines().len();
    ws.write("noexec.sh", "#!/bin/sh\n");
    let long = "n".repeat(40);
    let cases = [
        (spec.clone().nic(Some(&long)), "keepstart.nic", "nic:"),
        (spec.clone().nic(Some("eth/0")), "keepstart.nic", "nic:"),
        (spec.clone().nic(Some("ksv 0")), "keepstart.nic", "nic:"),
        (
            spec.clone().start("{ws}/missing.sh start"),
            "keepstart.start",
            "start:",
        ),
        (
            spec.clone().stop("{ws}/noexec.sh stop"),
            "keepstart.stop",
            "stop:",
        ),
    ];
    for (bad, key, prefix) in &cases {
        ws.write_config(bad);
        let line = line_of(&bad.render(ws.dir()), prefix);
        assert_names(&ws.cli(&["check"]), 1, key, &ws, line);
        assert_names(&ws.cli(&["reload"]), 2, key, &ws, line);
    }
    assert_untouched(&ws, &d, hooks_before, 0);

    // The daemon's own SIGHUP path refuses the same, with the 40-byte NIC last in the log.
    for (bad, _, _) in &cases {
        let refused = count_lines(&ws, "reload refused");
        ws.write_config(bad);
        d.signal(Signal::SIGHUP);
        ws.wait_until("the daemon logs the refused reload", DEADLINE, || {
            count_lines(&ws, "reload refused") > refused
        });
    }
    assert_untouched(&ws, &d, hooks_before, 0);
}

#[test]
fn a_shell_hook_whose_first_program_is_missing_is_only_a_warning() {
    let spec = ConfigSpec::new(VIP).stop("{ws}/missing.sh stop >> {ws}/stop.out 2>&1");
    let ws = Workspace::new(&spec);
    let out = ws.cli(&["check"]);
    assert_eq!(out.code, Some(0), "a warning does not refuse:\n{out}");
    let line = line_of(&spec.render(ws.dir()), "stop:");
    let warning = out
        .stdout
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("`keepstart.stop`"))
        .unwrap_or_else(|| panic!("a warning about keepstart.stop in:\n{out}"));
    for want in ["missing.sh".to_string(), format!("config.yaml:{line}:")] {
        assert!(warning.contains(&want), "expected {want:?} in {warning:?}");
    }
}

#[test]
fn a_reload_to_a_nic_that_does_not_exist_is_refused_and_stop_never_runs() {
    let spec = ConfigSpec::new(VIP);
    let Some((_ns, ws, d)) = master("reload_absent_nic", &spec) else {
        return;
    };
    let hooks_before = ws.hook_lines().len();
    let absent = spec.clone().nic(Some("ksv9"));
    ws.write_config(&absent);
    let line = line_of(&absent.render(ws.dir()), "nic:");
    let out = ws.cli(&["reload"]);
    assert_names(&out, 2, "keepstart.nic", &ws, line);
    assert!(out.text().contains("ksv9"), "names the NIC:\n{out}");
    assert_untouched(&ws, &d, hooks_before, 0);

    // A raw SIGHUP, bypassing the CLI's checks, is refused by the daemon itself.
    d.signal(Signal::SIGHUP);
    ws.wait_until("the daemon refuses the reload to ksv9", DEADLINE, || {
        fs::read_to_string(ws.daemon_output())
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("reload refused") && l.contains("ksv9"))
    });
    assert_untouched(&ws, &d, hooks_before, 0);
}

#[test]
fn a_reload_of_unrelated_keys_while_master_never_runs_stop() {
    let spec = ConfigSpec::new(VIP).with_is_running();
    let Some((_ns, ws, d)) = master("reload_unrelated", &spec) else {
        return;
    };
    let changed = spec
        .clone()
        .sleep(0.3)
        .hook_timeout(7.0)
        .force_test_cycle(1000);
    ws.write_config(&changed);
    let out = ws.cli(&["reload"]);
    assert!(out.ok(), "reload:\n{out}\n{}", ws.report());
    d.signal(Signal::SIGHUP);
    ws.wait_until("both reloads applied", DEADLINE, || {
        ws.status_json().is_ok_and(|s| s["reloads"] == 2)
    });
    ws.assert_holds(
        "MASTER and running after the reloads, no stop",
        Duration::from_secs(1),
        || {
            ws.runs_of("stop").is_empty()
                && ws.status_json().is_ok_and(|s| {
                    s["pid"] == d.pid() && s["role"] == "MASTER" && s["running"] == true
                })
        },
    );
    assert_eq!(ws.start_stop(), ["start"], "{}", ws.report());
}

#[test]
fn a_reload_to_another_existing_nic_without_the_vip_makes_the_node_slave() {
    let spec = ConfigSpec::new(VIP);
    let Some((ns, ws, d)) = master("reload_other_nic", &spec) else {
        return;
    };
    // ksv1 exists only in the namespace: the CLI, outside it, checks in the daemon's namespace.
    ns.ip(&[
        "link", "add", "ksv1", "type", "veth", "peer", "name", "ksv1p",
    ]);
    ns.ip(&["link", "set", "ksv1p", "up"]);
    ns.ip(&["link", "set", "ksv1", "up"]);
    ws.write_config(&spec.clone().nic(Some("ksv1")));
    let out = ws.cli(&["reload"]);
    assert!(
        out.ok(),
        "reload to an existing NIC:\n{out}\n{}",
        ws.report()
    );
    ws.wait_settled("SLAVE", false);
    let s = ws.status_json().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s["nic"], "ksv1", "{s}");
    assert_eq!(s["pid"], d.pid(), "{s}");
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());

    // It follows the new NIC: the VIP there makes it MASTER again.
    ns.ip(&["addr", "add", VIP_CIDR, "dev", "ksv1"]);
    ws.wait_settled("MASTER", true);
    assert_eq!(ws.start_stop(), ["start", "stop", "start"]);
}

/// Asserts `out` exited 0 and warned on stderr that the config is broken, naming `pidfile`.
fn assert_worked_despite_broken_config(out: &CmdOutput, pidfile: &Path, also: &[&str]) {
    assert_eq!(out.code, Some(0), "with a broken config:\n{out}");
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("warning") && l.contains("broken"))
        .unwrap_or_else(|| panic!("a warning that the config is broken in:\n{out}"));
    let pidfile = pidfile.display().to_string();
    for want in [pidfile.as_str()].iter().chain(also) {
        assert!(warning.contains(want), "expected {want:?} in {warning:?}");
    }
}

#[test]
fn stop_and_status_work_when_the_config_is_not_yaml() {
    let Some((_ns, ws, d)) = master("broken_yaml", &ConfigSpec::new(VIP).daemon(true)) else {
        return;
    };
    ws.write("config.yaml", "{{{ this is: not YAML\n  - [\n");
    let pidfile = ws.pidfile();
    let status = ws.cli(&["status"]);
    assert_worked_despite_broken_config(&status, &pidfile, &["not readable YAML"]);
    assert!(status.stdout.contains("MASTER"), "{status}");
    let json = ws.cli(&["status", "--json"]);
    assert_worked_despite_broken_config(&json, &pidfile, &[]);
    let parsed: Value = serde_json::from_str(json.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout stays JSON ({e}):\n{json}"));
    assert_eq!(parsed["pid"], d.pid());
    let notify = ws.cli(&["notify", "MASTER"]);
    assert_worked_despite_broken_config(&notify, &pidfile, &[]);

    // No config at all: --workspace finds it.
    let workspace = ws.dir().display().to_string();
    let elsewhere = Path::new("/nonexistent-keepserver/config.yaml");
    let found = ws.cli_with(elsewhere, &["--workspace", &workspace, "status"]);
    assert_worked_despite_broken_config(&found, &pidfile, &[]);

    let stop = ws.cli(&["stop"]);
    assert_worked_despite_broken_config(&stop, &pidfile, &[]);
    assert!(!pid_alive(d.pid()), "stop returns once the daemon is gone");
    for cmd in [&["stop"][..], &["status"]] {
        let out = ws.cli(cmd);
        assert_eq!(out.code, Some(3), "{cmd:?} with nothing running:\n{out}");
        assert!(out.text().contains("not running"), "{out}");
    }
}

#[test]
fn stop_and_status_work_when_the_config_has_a_bad_key() {
    let mut spec = ConfigSpec::new(VIP).daemon(true);
    spec.pidfile = "other.pid".to_string();
    let Some((_ns, ws, d)) = master("broken_key", &spec) else {
        return;
    };
    let bad = spec
        .render(ws.dir())
        .replace(&format!("sleep: {}", spec.sleep), "sleep: soon");
    ws.write("config.yaml", &bad);
    let pidfile = ws.pidfile();
    let line = format!("config.yaml:{}:", line_of(&bad, "sleep:"));
    let status = ws.cli(&["status"]);
    assert_worked_despite_broken_config(&status, &pidfile, &["keepstart.sleep", &line]);

    // Not YAML any more: the default pidfile is not this one, --pidfile is.
    ws.write("config.yaml", "not: [yaml\n");
    let lost = ws.cli(&["status"]);
    assert_eq!(
        lost.code,
        Some(3),
        "the default pidfile is not this one:\n{lost}"
    );
    assert!(
        lost.text().contains("server.pid"),
        "names what it tried:\n{lost}"
    );
    let given = pidfile.display().to_string();
    let found = ws.cli(&["--pidfile", &given, "status"]);
    assert_worked_despite_broken_config(&found, &pidfile, &[]);
    let stop = ws.cli(&["stop", "--pidfile", &given]);
    assert_worked_despite_broken_config(&stop, &pidfile, &[]);
    assert!(!pid_alive(d.pid()), "stop returns once the daemon is gone");
    let after = ws.cli(&["--pidfile", &given, "stop"]);
    assert_eq!(after.code, Some(3), "{after}");
}

#[test]
fn locating_options_are_refused_where_the_config_decides() {
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    let dir = ws.dir().display().to_string();
    for cmd in ["start", "check", "reload"] {
        let out = ws.cli(&[cmd, "--workspace", &dir]);
        assert_eq!(out.code, Some(2), "{cmd} --workspace:\n{out}");
        assert!(out.text().contains("stop, status and notify"), "{out}");
    }
}
