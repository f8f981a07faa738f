//! End-to-end: the daemon's log file on a really full disk (a small tmpfs). The daemon keeps
//! acting (its hooks run), says once on stderr that the file fails, counts the lost lines in
//! `status` and the alive report, and once space returns writes whole lines again and says how
//! many it lost; the file never holds a half or garbled line.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use nix::sys::signal::Signal;

const VIP: &str = "192.0.2.10";
const VIP_CIDR: &str = "192.0.2.10/24";

/// A dictConfig logging section: INFO and up to `log` only, every line between `@@` and `##`.
fn logging_section(log: &Path) -> String {
    format!(
        "logging:\n  version: 1\n  formatters:\n    marked: {{format: '@@ %(levelname)s %(message)s ##'}}\n  \
         handlers:\n    file: {{class: logging.FileHandler, filename: '{}', formatter: marked}}\n  \
         root: {{level: INFO, handlers: [file]}}\n",
        log.display()
    )
}

/// Adds the VIP, waits for MASTER and running, removes it, waits for SLAVE and stopped.
fn toggle(ns: &Netns, ws: &Workspace) {
    ns.add_addr(VIP_CIDR);
    ws.wait_settled("MASTER", true);
    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
}

/// The workspace's report with the log file's tail.
fn report(ws: &Workspace, log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    format!(
        "{}=== {} ===\n{}",
        ws.report(),
        log.display(),
        tail(&text, 30)
    )
}

/// The lines of the daemon's stderr (and stdout) that contain `text`.
fn output_lines(ws: &Workspace, text: &str) -> Vec<String> {
    ws.read("daemon.out")
        .lines()
        .filter(|line| line.contains(text))
        .map(str::to_owned)
        .collect()
}

/// The one sink `status --json` lists.
fn the_sink(ws: &Workspace) -> serde_json::Value {
    let status = ws.status_json().expect("status --json");
    let sinks = status["log_sinks"].as_array().cloned().unwrap_or_default();
    assert_eq!(sinks.len(), 1, "one sink: {status}");
    sinks[0].clone()
}

#[test]
fn a_full_log_disk_is_reported_counted_and_recovered_from() {
    let Some(ns) = Netns::new("logsink") else {
        return;
    };
    let disk = Tmpfs::mount("256k");
    let log = disk.path("keepserver.log");
    let spec = ConfigSpec::new(VIP);
    let ws = Workspace::with_config_text(
        |dir| format!("{}{}", spec.render(dir), logging_section(&log)),
        spec.daemon,
        &spec.pidfile,
    );
    let daemon = Daemon::start(&ns, &ws);
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.status_json().unwrap()["log_lines_lost"], 0);

    disk.fill();
    let failing = format!(
        "keepserver: log file {}: No space left on device (os error 28); log lines are being lost",
        log.display()
    );
    // What is left of the log file's last page still takes a few lines.
    let mut toggles = 0;
    while output_lines(&ws, "log lines are being lost").is_empty() {
        assert!(
            toggles < 40,
            "no failure after {toggles} toggles:\n{}",
            report(&ws, &log)
        );
        toggle(&ns, &ws);
        toggles += 1;
    }
    toggle(&ns, &ws);
    toggles += 1;
    assert_eq!(
        ws.start_stop().len(),
        2 * toggles,
        "every toggle ran start and stop:\n{}",
        report(&ws, &log)
    );
    assert_eq!(
        output_lines(&ws, "log lines are being lost"),
        [failing],
        "{}",
        report(&ws, &log)
    );
    let status = ws.status_json().unwrap();
    let lost = status["log_lines_lost"].as_u64().unwrap_or(0);
    assert!(lost > 0, "{status}");
    let sink = the_sink(&ws);
    assert_eq!(sink["sink"], format!("file {}", log.display()), "{sink}");
    assert_eq!(sink["failing"], "No space left on device (os error 28)");
    let text = ws.cli(&["status"]).stdout;
    assert!(
        text.contains(&format!("log lost:     {lost} lines")),
        "{text}"
    );

    let before = fs::metadata(&log).unwrap().len();
    disk.free();
    // The sink counts as writing again once it wrote for 3 s without a failure.
    let recovered = format!(
        "keepserver: log file {}: writing again after ",
        log.display()
    );
    ws.wait_until("the recovery notice, toggling the VIP", DEADLINE, || {
        toggle(&ns, &ws);
        !output_lines(&ws, &recovered).is_empty()
    });
    let status = ws.status_json().unwrap();
    let total = status["log_lines_lost"].as_u64().unwrap_or(0);
    assert!(total >= lost, "{status}");
    assert_eq!(
        output_lines(&ws, &recovered),
        [format!("{recovered}{total} lost lines")],
        "{}",
        report(&ws, &log)
    );
    assert_eq!(the_sink(&ws)["failing"], serde_json::Value::Null);
    assert!(!ws.cli(&["status"]).stdout.contains("log failing"));
    daemon.signal(Signal::SIGUSR1);
    let alive = format!(" log_lines_lost={total} ##");
    ws.wait_until("the alive report with the lost lines", DEADLINE, || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .any(|l| l.starts_with("@@ INFO alive ") && l.ends_with(&alive))
    });

    let text = fs::read_to_string(&log).unwrap();
    let fresh = &text[usize::try_from(before).unwrap()..];
    assert!(
        fresh.lines().any(|l| l.contains("role change role=MASTER"))
            && fresh.lines().any(|l| l.contains("hook end hook=stop ok")),
        "new lines after recovery:\n{}",
        report(&ws, &log)
    );
    assert!(text.ends_with('\n'), "{}", report(&ws, &log));
    for line in text.lines() {
        assert!(
            line.starts_with("@@ ")
                && line.ends_with(" ##")
                && line.matches("@@").count() == 1
                && line.matches("##").count() == 1,
            "every line whole, none garbled: {line:?}\n{}",
            report(&ws, &log)
        );
    }
}

/// A pipe whose write end is full: what a daemon's stderr is under a journald that stopped
/// reading, or a `keepserver start | less` nobody scrolls. Returns (read end, write end).
fn full_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::io::Write as _;
    let (read, write) = nix::unistd::pipe().expect("pipe");
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("O_NONBLOCK");
    let mut file = fs::File::from(write.try_clone().expect("dup"));
    let chunk = [b'x'; 4096];
    loop {
        match file.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    fcntl(&write, FcntlArg::F_SETFL(OFlag::empty())).expect("blocking again");
    (read, write)
}

/// The daemon's only log sink (stderr, the default) is a full pipe nobody reads: every write
/// to it would block for ever. The daemon still answers `status`, follows the VIP with its
/// hooks and stops when told: a sink that blocks costs log lines, never the daemon's work
/// (before, the runtime thread blocked in the first log line and nothing happened any more).
#[test]
fn a_log_sink_that_blocks_does_not_stop_the_daemon() {
    let Some(ns) = Netns::new("logblock") else {
        return;
    };
    let ws = Workspace::new(&ConfigSpec::new(VIP));
    let (read, write) = full_pipe();
    let config = ws.config_path().display().to_string();
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", ns.name(), BIN, "-c", &config, "start"])
        .stdin(std::process::Stdio::null())
        .stdout(write.try_clone().expect("dup"))
        .stderr(write);
    let mut child = cmd.spawn().expect("spawn keepserver");
    ws.wait_settled("SLAVE", false);
    ns.add_addr(VIP_CIDR);
    ws.wait_settled("MASTER", true);
    ns.del_addr(VIP_CIDR);
    ws.wait_settled("SLAVE", false);
    assert_eq!(ws.start_stop(), ["start", "stop"], "{}", ws.report());
    let status = ws.status_json().expect("status --json");
    assert_eq!(status["log_sinks"][0]["sink"], "stream stderr", "{status}");

    let stop = ws.cli(&["stop"]);
    assert!(stop.ok(), "stop: {stop:?}\n{}", ws.report());
    let _ = child.wait();
    drop(read);
}
