//! End-to-end test harness: guards for a network namespace with a veth pair, a workspace with a
//! config and logging hook scripts, the real `keepserver` daemon, and a small tmpfs to fill;
//! each cleans up on Drop (by pid, by namespace, by mount point), also when the test panics.
#![allow(dead_code)] // every test file uses a different part of the harness

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_keepserver");
/// The watched end of the veth pair inside each test namespace.
pub const NIC: &str = "ksv0";
/// The other end of the veth pair.
pub const PEER: &str = "ksv0p";
/// The generous deadline for anything the daemon should do "soon".
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(25);
/// Longest a single CLI call may take before it is killed and reported.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Polling, processes, commands

/// Polls `cond` every few milliseconds until it holds (true) or `deadline` has passed (false).
pub fn wait_for(mut cond: impl FnMut() -> bool, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` until `deadline`; panics naming `what`, with `report()` (the test's files and
/// logs) to explain the failure.
pub fn wait_or_report(
    what: &str,
    deadline: Duration,
    cond: impl FnMut() -> bool,
    report: impl FnOnce() -> String,
) {
    if !wait_for(cond, deadline) {
        panic!(
            "timed out after {deadline:?} waiting for: {what}\n{}",
            report()
        );
    }
}

/// True while `pid` is a live process (a zombie, waiting for a parent that never reaps it, is dead).
pub fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// The command line of `pid`, arguments joined by spaces (empty when it is gone).
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The pid written in a pidfile, if the file exists and holds one.
pub fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True when another process holds a `flock` on `path` (asked of util-linux `flock -n`).
pub fn is_flocked(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    let out = run(
        Command::new("flock")
            .args(["--nonblock", "--conflict-exit-code", "75"])
            .arg(path)
            .arg("true"),
        CLI_TIMEOUT,
    );
    assert!(
        matches!(out.code, Some(0 | 75)),
        "flock could not test the lock:\n{out}"
    );
    out.code == Some(75)
}

/// The effective uid of this process.
fn euid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Sends `sig` to `pid`, ignoring "no such process".
pub fn signal(pid: i32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid), sig);
}

/// A pid of a process that has exited and been reaped: nothing runs under it.
pub fn dead_pid() -> i32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id() as i32;
    child.wait().expect("wait for true");
    assert!(!pid_alive(pid));
    pid
}

/// What a finished (or killed) command printed and how it ended.
#[derive(Debug)]
pub struct CmdOutput {
    /// The command as run, for messages.
    pub command: String,
    /// Exit code, `None` when it was killed by a signal.
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
}

impl CmdOutput {
    /// stdout and stderr together.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// True for exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` -> code {:?}{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command,
            self.code,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to completion with output captured, killing its process group after `timeout`.
///
/// Output goes through files, not pipes: a daemonizing child that kept an inherited pipe open
/// would otherwise block the reader forever.
pub fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let out = tempfile::tempfile().expect("tempfile for stdout");
    let err = tempfile::tempfile().expect("tempfile for stderr");
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone stdout file"))
        .stderr(err.try_clone().expect("clone stderr file"))
        .process_group(0);
    let command = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let end = Instant::now() + timeout;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break (status, false);
        }
        if Instant::now() >= end {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            break (child.wait().expect("wait for killed command"), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    CmdOutput {
        command,
        code: status.code(),
        stdout: read_all(out),
        stderr: read_all(err),
        timed_out,
    }
}

fn read_all(mut file: File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `ip ARGS`, returning its output.
fn ip(args: &[&str]) -> CmdOutput {
    run(Command::new("ip").args(args), CLI_TIMEOUT)
}

// ---------------------------------------------------------------------------------------------
// Skipping

/// Whether every `(program, argument)` runs (each is run once with its argument): `Ok`, or the
/// programs that do not, as a SKIP reason ending in `hint`, for [`prerequisite`].
pub fn tools_present(tools: &[(&str, &str)], hint: &str) -> Result<&'static (), String> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(tool, arg)| Command::new(tool).arg(arg).output().is_err())
        .map(|(tool, _)| *tool)
        .collect();
    if missing.is_empty() {
        Ok(&())
    } else {
        Err(format!("{} not installed{hint}", missing.join(", ")))
    }
}

/// Whether this machine can run the namespace tests; prints a SKIP line when it cannot.
///
/// Where they must run (`CI` or `KEEPSERVER_E2E_REQUIRED` set) a missing prerequisite fails the
/// test instead of skipping it.
pub fn e2e_available(test: &str) -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let check = CHECK.get_or_init(|| {
        if euid() != Some(0) {
            return Err("not running as root".to_string());
        }
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("`ip` is not available: {e}")),
        }
    });
    prerequisite(
        test,
        check
            .as_ref()
            .map_err(|reason| format!("needs root and `ip netns` ({reason})")),
    )
}

/// Whether a test's prerequisite `check` holds. When it does not: where tests must run (`CI` or
/// `KEEPSERVER_E2E_REQUIRED` set) the test fails naming the reason; elsewhere a SKIP line is
/// printed and the caller returns early.
pub fn prerequisite(test: &str, check: Result<&(), String>) -> bool {
    let Err(reason) = check else {
        return true;
    };
    let required = ["CI", "KEEPSERVER_E2E_REQUIRED"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    assert!(!required, "{test}: required here but cannot run: {reason}");
    // Straight to stderr, not eprintln!: the test harness would capture and hide it.
    let line = format!("SKIP {test}: {reason}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

/// Installs Debian `packages` with apt-get (after an update); an error names them and carries
/// apt-get's output.
pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = Duration::from_secs(600);
    let update = run(Command::new("apt-get").args(["update", "-qq"]), install);
    let out = run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages),
        install,
    );
    if out.ok() {
        Ok(())
    } else {
        Err(format!(
            "cannot install {}:\n{update}\n{out}",
            packages.join(" ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Network namespace guard

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace of its own for one test, with `lo` up and (unless made bare) a veth pair
/// `ksv0`/`ksv0p`, both up. Drop kills every process in it and deletes it.
pub struct Netns {
    name: String,
    /// Process groups this guard started (their leaders' pids).
    spawned: Mutex<Vec<i32>>,
}

impl Netns {
    /// A namespace with the veth pair, or `None` (after a SKIP line) where e2e tests cannot run.
    pub fn new(test: &str) -> Option<Netns> {
        let ns = Self::bare(test)?;
        ns.add_veth();
        Some(ns)
    }

    /// A namespace with only `lo` (up): the NIC is absent until [`Netns::add_veth`].
    pub fn bare(test: &str) -> Option<Netns> {
        if !e2e_available(test) {
            return None;
        }
        sweep_stale_namespaces();
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag: String = test.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        // `ks<pid>-<n>-` is unique and is what the stale sweep parses; the test name is a hint.
        let mut name = format!("ks{}-{}-{}", std::process::id(), n, tag);
        name.truncate(15);
        let ns = Netns {
            name,
            spawned: Mutex::new(Vec::new()),
        };
        let add = ip(&["netns", "add", &ns.name]);
        assert!(add.ok(), "cannot create namespace:\n{add}");
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NS ARGS`, panicking with its output when it fails.
    pub fn ip(&self, args: &[&str]) {
        let out = self.try_ip(args);
        assert!(out.ok(), "ip command failed in {}:\n{out}", self.name);
    }

    /// Runs `ip -n NS ARGS` and returns its output.
    pub fn try_ip(&self, args: &[&str]) -> CmdOutput {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs a command inside the namespace (`ip netns exec NS ARGS`) to completion.
    pub fn exec(&self, args: &[&str]) -> CmdOutput {
        run(&mut self.exec_command(args), CLI_TIMEOUT)
    }

    fn exec_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Creates the veth pair `ksv0`/`ksv0p` and brings both ends up.
    pub fn add_veth(&self) {
        self.ip(&["link", "add", NIC, "type", "veth", "peer", "name", PEER]);
        self.ip(&["link", "set", PEER, "up"]);
        self.ip(&["link", "set", NIC, "up"]);
    }

    /// Adds an address (CIDR) to `ksv0`; IPv6 addresses skip duplicate address detection.
    pub fn add_addr(&self, cidr: &str) {
        let mut args = vec!["addr", "add", cidr, "dev", NIC];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args);
    }

    /// Removes an address (CIDR) from `ksv0`.
    pub fn del_addr(&self, cidr: &str) {
        self.ip(&["addr", "del", cidr, "dev", NIC]);
    }

    /// True when `addr` (without prefix) is on `ksv0`.
    pub fn has_addr(&self, addr: &str) -> bool {
        let out = self.try_ip(&["-o", "addr", "show", "dev", NIC]);
        out.stdout
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// Sets `ksv0` administratively down.
    pub fn link_down(&self) {
        self.ip(&["link", "set", NIC, "down"]);
    }

    /// Sets `ksv0` up.
    pub fn link_up(&self) {
        self.ip(&["link", "set", NIC, "up"]);
    }

    /// Starts `ARGS` inside the namespace in a process group of its own, stdout and stderr
    /// appended to `log`; the guard kills the group on Drop.
    pub fn spawn(&self, args: &[&str], log: &Path) -> Child {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        let mut cmd = self.exec_command(args);
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        self.spawned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.id() as i32);
        child
    }

    /// True when `pid` lives in this namespace.
    pub fn holds(&self, pid: i32) -> bool {
        let ns = fs::metadata(format!("/run/netns/{}", self.name)).map(|m| (m.dev(), m.ino()));
        let p = fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| (m.dev(), m.ino()));
        matches!((ns, p), (Ok(a), Ok(b)) if a == b)
    }

    /// Kills every process this guard started (whole group) and every process in the namespace.
    pub fn kill_all(&self) {
        let spawned = self
            .spawned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for pgid in spawned {
            // Only while the leader is still ours: the pid may have been reused since.
            if pid_alive(pgid) && self.holds(pgid) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        kill_netns_pids(&self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// SIGKILLs every process in namespace `name` until none is left (they may fork meanwhile).
fn kill_netns_pids(name: &str) {
    for _ in 0..100 {
        let out = ip(&["netns", "pids", name]);
        let pids: Vec<i32> = out
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            signal(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deletes namespaces left by earlier test processes that were killed before their guards ran.
fn sweep_stale_namespaces() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let list = ip(&["netns", "list"]);
        for name in list
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            let mut parts = name.strip_prefix("ks").unwrap_or("").splitn(3, '-');
            let (Some(pid), Some(n)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(pid), Ok(_)) = (pid.parse::<i32>(), n.parse::<usize>()) else {
                continue;
            };
            if pid != std::process::id() as i32 && !pid_alive(pid) {
                kill_netns_pids(name);
                let _ = ip(&["netns", "del", name]);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Config

/// What goes into a test's config.yaml. Command strings may use `{ws}` for the workspace path.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// `application.daemon`.
    pub daemon: bool,
    /// `application.pidfile` (relative to the workspace).
    pub pidfile: String,
    /// `keepstart.nic`; `None` leaves the key out (any NIC).
    pub nic: Option<String>,
    /// `keepstart.vip`.
    pub vip: String,
    /// `keepstart.start`.
    pub start: String,
    /// `keepstart.stop`.
    pub stop: String,
    /// `keepstart.is-running`; `None` leaves the key out.
    pub is_running: Option<String>,
    /// `keepstart.sleep`, seconds.
    pub sleep: f64,
    /// `keepstart.hook-timeout`, seconds.
    pub hook_timeout: f64,
    /// `keepstart.force-test-cycle`.
    pub force_test_cycle: u64,
    /// `keepstart.running-report-cycle`.
    pub running_report_cycle: u64,
}

impl ConfigSpec {
    /// Foreground, NIC `ksv0`, the logging hook script for start and stop, no is-running,
    /// 0.2 s cycles, 5 s hook timeout.
    pub fn new(vip: &str) -> ConfigSpec {
        ConfigSpec {
            daemon: false,
            pidfile: "server.pid".to_string(),
            nic: Some(NIC.to_string()),
            vip: vip.to_string(),
            start: "{ws}/hook.sh start".to_string(),
            stop: "{ws}/hook.sh stop".to_string(),
            is_running: None,
            sleep: 0.2,
            hook_timeout: 5.0,
            force_test_cycle: 60,
            running_report_cycle: 3600,
        }
    }

    /// Sets `application.daemon`.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Sets `keepstart.nic` (`None`: no key).
    pub fn nic(mut self, nic: Option<&str>) -> Self {
        self.nic = nic.map(str::to_string);
        self
    }

    /// Sets `keepstart.start`.
    pub fn start(mut self, cmd: &str) -> Self {
        self.start = cmd.to_string();
        self
    }

    /// Sets `keepstart.stop`.
    pub fn stop(mut self, cmd: &str) -> Self {
        self.stop = cmd.to_string();
        self
    }

    /// Uses the logging hook script as `keepstart.is-running`.
    pub fn with_is_running(mut self) -> Self {
        self.is_running = Some("{ws}/hook.sh is-running".to_string());
        self
    }

    /// Sets `keepstart.sleep`.
    pub fn sleep(mut self, secs: f64) -> Self {
        self.sleep = secs;
        self
    }

    /// Sets `keepstart.hook-timeout`.
    pub fn hook_timeout(mut self, secs: f64) -> Self {
        self.hook_timeout = secs;
        self
    }

    /// Sets `keepstart.force-test-cycle`.
    pub fn force_test_cycle(mut self, cycles: u64) -> Self {
        self.force_test_cycle = cycles;
        self
    }

    /// The YAML text, with `{ws}` replaced by the workspace path.
    pub fn render(&self, ws: &Path) -> String {
        let sub = |s: &str| quote(&s.replace("{ws}", &ws.display().to_string()));
        let mut y = String::new();
        let _ = writeln!(y, "application:");
        let _ = writeln!(y, "  daemon: {}", self.daemon);
        let _ = writeln!(y, "  workspace: {}", sub("{ws}"));
        let _ = writeln!(y, "  pidfile: {}", quote(&self.pidfile));
        let _ = writeln!(y, "keepstart:");
        if let Some(nic) = &self.nic {
            let _ = writeln!(y, "  nic: {}", quote(nic));
        }
        let _ = writeln!(y, "  vip: {}", quote(&self.vip));
        let _ = writeln!(y, "  start: {}", sub(&self.start));
        let _ = writeln!(y, "  stop: {}", sub(&self.stop));
        if let Some(cmd) = &self.is_running {
            let _ = writeln!(y, "  is-running: {}", sub(cmd));
        }
        let _ = writeln!(y, "  sleep: {}", self.sleep);
        let _ = writeln!(y, "  running-report-cycle: {}", self.running_report_cycle);
        let _ = writeln!(y, "  force-test-cycle: {}", self.force_test_cycle);
        let _ = writeln!(y, "  hook-timeout: {}", self.hook_timeout);
        let _ = writeln!(y, "  stop-on-exit: false");
        y
    }
}

/// A single-quoted YAML scalar.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The 1-based number of the first line of `text` that starts (after indentation) with `prefix`.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// Workspace guard

/// The hook script: one line per run in hooks.log, begin/end markers in spans.log, an
/// `app.running` flag kept by start/stop and read by is-running. Files in the workspace steer it:
/// `hang.<kind>` (hang once, with a child), `delay` (seconds to sleep), `exit.<kind>` (exit code).
const HOOK_SCRIPT: &str = r#"#!/bin/sh
# keepserver e2e hook. usage: hook.sh start|stop|is-running [TAG]
ws='{ws}'
kind=$1
tag=${2:-}
echo "begin $kind $$" >> "$ws/spans.log"
echo "$kind $(date +%s%N) role=${KEEPSERVER_ROLE-unset} prev=${KEEPSERVER_PREVIOUS_ROLE-unset} vip=${KEEPSERVER_VIP-unset} nic=${KEEPSERVER_NIC-unset} tag=$tag pid=$$" >> "$ws/hooks.log"
if [ -e "$ws/hang.$kind" ]; then
    rm -f "$ws/hang.$kind"
    echo $$ > "$ws/hung.$kind.pid.tmp" && mv "$ws/hung.$kind.pid.tmp" "$ws/hung.$kind.pid"
    sleep 1000 &
    echo $! > "$ws/hung.$kind.child.tmp" && mv "$ws/hung.$kind.child.tmp" "$ws/hung.$kind.child"
    wait
fi
if [ -e "$ws/delay" ]; then sleep "$(cat "$ws/delay")"; fi
code=0
case $kind in
    start) : > "$ws/app.running" ;;
    stop) rm -f "$ws/app.running" ;;
    is-running) [ -e "$ws/app.running" ] || code=1 ;;
esac
if [ -e "$ws/exit.$kind" ]; then code=$(cat "$ws/exit.$kind"); fi
echo "end $kind $$" >> "$ws/spans.log"
exit $code
"#;

/// One line of hooks.log: which hook, when (ns since the epoch), and its `key=value` fields.
#[derive(Debug, Clone)]
pub struct HookLine {
    /// `start`, `stop` or `is-running`.
    pub kind: String,
    /// Wall clock at the start of the run, ns since the epoch.
    pub at_ns: u128,
    /// role, prev, vip, nic, tag, pid.
    pub fields: BTreeMap<String, String>,
}

impl HookLine {
    /// A field's value (empty when absent).
    pub fn get(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }
}

/// A temporary directory holding config.yaml, hook.sh and everything the daemon writes; removed
/// on Drop.
pub struct Workspace {
    dir: tempfile::TempDir,
    daemon: bool,
    pidfile: PathBuf,
}

impl Workspace {
    /// A workspace with the hook script and a config.yaml rendered from `spec`.
    pub fn new(spec: &ConfigSpec) -> Workspace {
        let ws = Self::empty(spec.daemon, &spec.pidfile);
        ws.write_config(spec);
        ws
    }

    /// A workspace with the hook script and a config.yaml made by `text` from the workspace path
    /// (for configs not made from a [`ConfigSpec`]); `daemon` and `pidfile` must match it.
    pub fn with_config_text(
        text: impl FnOnce(&Path) -> String,
        daemon: bool,
        pidfile: &str,
    ) -> Workspace {
        let ws = Self::empty(daemon, pidfile);
        let config = text(ws.dir());
        ws.write("config.yaml", &config);
        ws
    }

    fn empty(daemon: bool, pidfile: &str) -> Workspace {
        sweep_stale_workspaces();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{WORKSPACE_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create workspace tempdir");
        let pidfile = dir.path().join(pidfile);
        let ws = Workspace {
            dir,
            daemon,
            pidfile,
        };
        let script = HOOK_SCRIPT.replace("{ws}", &ws.dir().display().to_string());
        ws.write_script("hook.sh", &script);
        ws
    }

    /// The workspace directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the workspace.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.path("config.yaml")
    }

    /// The pidfile.
    pub fn pidfile(&self) -> PathBuf {
        self.pidfile.clone()
    }

    /// Whether the config runs keepserver as a daemon.
    pub fn daemon_mode(&self) -> bool {
        self.daemon
    }

    /// Where the daemon's own output goes: the foreground capture or the daemon log.
    pub fn daemon_output(&self) -> PathBuf {
        if self.daemon {
            self.path("keepserver.log")
        } else {
            self.path("daemon.out")
        }
    }

    /// The hook script command for `kind`, optionally tagged (the tag shows in hooks.log).
    pub fn hook_cmd(&self, kind: &str, tag: &str) -> String {
        format!("{}/hook.sh {kind} {tag}", self.dir().display())
            .trim_end()
            .to_string()
    }

    /// Rewrites config.yaml from `spec`.
    pub fn write_config(&self, spec: &ConfigSpec) {
        self.write("config.yaml", &spec.render(self.dir()));
    }

    /// Writes a file in the workspace.
    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Writes an executable script in the workspace.
    pub fn write_script(&self, name: &str, text: &str) {
        self.write(name, text);
        let path = self.path(name);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }

    /// A file's content, empty when it does not exist.
    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Every run recorded in hooks.log, in order.
    pub fn hook_lines(&self) -> Vec<HookLine> {
        self.read("hooks.log")
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let kind = words.next()?.to_string();
                let at_ns = words.next()?.parse().ok()?;
                let fields = words
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                Some(HookLine {
                    kind,
                    at_ns,
                    fields,
                })
            })
            .collect()
    }

    /// The start and stop runs only, in order, as their names.
    pub fn start_stop(&self) -> Vec<String> {
        self.hook_lines()
            .into_iter()
            .map(|l| l.kind)
            .filter(|k| k == "start" || k == "stop")
            .collect()
    }

    /// The runs of hook `kind`.
    pub fn runs_of(&self, kind: &str) -> Vec<HookLine> {
        self.hook_lines()
            .into_iter()
            .filter(|l| l.kind == kind)
            .collect()
    }

    /// `None` when spans.log shows hooks one at a time (each begin followed by its own end),
    /// else a description of the first overlap.
    pub fn overlap(&self) -> Option<String> {
        let text = self.read("spans.log");
        let mut open: Option<&str> = None;
        for (i, line) in text.lines().enumerate() {
            match (line.strip_prefix("begin "), line.strip_prefix("end "), open) {
                (Some(run), _, None) => open = Some(run),
                (Some(_), _, Some(prev)) => {
                    return Some(format!(
                        "line {}: `{line}` began while `{prev}` was still running",
                        i + 1
                    ));
                }
                (None, Some(run), Some(prev)) if run == prev => open = None,
                _ => {
                    return Some(format!("line {}: `{line}` does not match {open:?}", i + 1));
                }
            }
        }
        None
    }

    /// Runs `keepserver -c config.yaml ARGS` (outside any namespace).
    pub fn cli(&self, args: &[&str]) -> CmdOutput {
        self.cli_with(&self.config_path(), args)
    }

    /// Runs `keepserver -c CONFIG ARGS` (outside any namespace).
    pub fn cli_with(&self, config: &Path, args: &[&str]) -> CmdOutput {
        run(
            Command::new(BIN).arg("-c").arg(config).args(args),
            CLI_TIMEOUT,
        )
    }

    /// Runs `keepserver -c config.yaml ARGS` inside namespace `ns`.
    pub fn cli_in(&self, ns: &Netns, args: &[&str]) -> CmdOutput {
        let config = self.config_path().display().to_string();
        let mut full = vec![BIN, "-c", config.as_str()];
        full.extend_from_slice(args);
        ns.exec(&full)
    }

    /// `keepserver -c config.yaml status --json`, parsed.
    pub fn status_json(&self) -> Result<Value, String> {
        self.status_json_with(&self.config_path())
    }

    /// `keepserver -c CONFIG status --json`, parsed.
    pub fn status_json_with(&self, config: &Path) -> Result<Value, String> {
        let out = run(
            Command::new(BIN)
                .arg("-c")
                .arg(config)
                .args(["status", "--json"]),
            Duration::from_secs(5),
        );
        if !out.ok() {
            return Err(out.to_string());
        }
        serde_json::from_str(out.stdout.trim()).map_err(|e| format!("not JSON ({e}):\n{out}"))
    }

    /// True when status says `role`, `running`, and no hook is in flight.
    pub fn settled(&self, role: &str, running: bool) -> bool {
        self.status_json().is_ok_and(|s| {
            s["role"] == role && s["running"] == running && s["hook_in_flight"].is_null()
        })
    }

    /// Polls `cond` until `deadline`; panics with `what` and everything the workspace holds.
    pub fn wait_until(&self, what: &str, deadline: Duration, cond: impl FnMut() -> bool) {
        wait_or_report(what, deadline, cond, || self.report());
    }

    /// Asserts `cond` holds at every poll for `period`: for checking that nothing more happens.
    pub fn assert_holds(&self, what: &str, period: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + period;
        while Instant::now() < end {
            assert!(
                cond(),
                "expected to hold for {period:?}: {what}\n{}",
                self.report()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until status has shown `role`/`running` with no hook in flight, and hooks.log has
    /// not grown, for a whole `window`: the daemon has drained whatever was still queued.
    pub fn wait_stable(&self, role: &str, running: bool, window: Duration) {
        let mut since: Option<(Instant, usize)> = None;
        self.wait_until(
            &format!("status role={role} running={running} idle, unchanged for {window:?}"),
            DEADLINE + window,
            || {
                let runs = self.hook_lines().len();
                if !self.settled(role, running) {
                    since = None;
                    return false;
                }
                match since {
                    Some((t, n)) if n == runs => t.elapsed() >= window,
                    _ => {
                        since = Some((Instant::now(), runs));
                        false
                    }
                }
            },
        );
    }

    /// Waits until status shows `role`/`running` with no hook in flight.
    pub fn wait_settled(&self, role: &str, running: bool) {
        self.wait_until(
            &format!("status role={role} running={running} hook_in_flight=null"),
            DEADLINE,
            || self.settled(role, running),
        );
    }

    /// Everything useful to understand a failure: config, hook logs, daemon output, status.
    pub fn report(&self) -> String {
        let mut r = String::new();
        for name in [
            "config.yaml",
            "hooks.log",
            "spans.log",
            "start.out",
            "daemon.out",
            "keepserver.log",
        ] {
            let text = self.read(name);
            if !text.is_empty() {
                let _ = writeln!(r, "=== {name} ===\n{}", tail(&text, 60));
            }
        }
        let status = match self.status_json() {
            Ok(v) => v.to_string(),
            Err(e) => e,
        };
        let _ = writeln!(r, "=== status --json ===\n{status}");
        r
    }
}

/// Workspaces are `<tmp>/keepserver-e2e-<pid>-XXXXXX`: the pid lets a later run sweep them.
const WORKSPACE_PREFIX: &str = "keepserver-e2e-";

/// Removes workspaces left by earlier test processes that were killed before their guards ran.
fn sweep_stale_workspaces() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| remove_stale_dirs(&std::env::temp_dir(), WORKSPACE_PREFIX));
}

/// Removes the directories in `dir` named `<prefix><pid>-...` whose test process `pid` is gone
/// (left by a run that was killed before its guards ran).
pub fn remove_stale_dirs(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id() as i32
            && !pid_alive(pid)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        let _ = writeln!(out, "[... {skip} lines ...]");
    }
    for l in &lines[skip..] {
        let _ = writeln!(out, "{l}");
    }
    out
}

/// Checks that `kinds` (start/stop names in order) alternate, beginning with `start`; the error
/// names the first offending position.
pub fn check_alternating(kinds: &[String]) -> Result<(), String> {
    for (i, kind) in kinds.iter().enumerate() {
        let expected = if i % 2 == 0 { "start" } else { "stop" };
        if kind != expected {
            let around = &kinds[i.saturating_sub(8)..(i + 8).min(kinds.len())];
            return Err(format!(
                "hook #{} of {} is {kind}, expected {expected} (around it: {})",
                i + 1,
                kinds.len(),
                around.join(" ")
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Daemon guard

/// The real keepserver, started with `keepserver -c config.yaml start` inside a namespace.
/// Drop SIGKILLs it (pidfile pid and the spawned child) and everything left in its namespace.
pub struct Daemon {
    ns: String,
    pidfile: PathBuf,
    /// The foreground process (`ip netns exec` execs into keepserver, so this is its pid).
    child: Option<Child>,
    /// The daemon's pid as first seen.
    pid: i32,
    /// Daemon mode: what the launching `start` printed.
    pub start_output: Option<CmdOutput>,
}

impl Daemon {
    /// Starts keepserver (foreground or daemon mode, from the config) and waits until it answers
    /// `status`.
    pub fn start(ns: &Netns, ws: &Workspace) -> Daemon {
        let d = Self::launch(ns, ws);
        ws.wait_until("the daemon answers `status`", DEADLINE, || {
            ws.status_json().is_ok()
        });
        d
    }

    /// Starts keepserver without waiting for `status`. In daemon mode the launching `start` must
    /// exit 0 (the daemon is ready) and the pidfile must name the daemon.
    pub fn launch(ns: &Netns, ws: &Workspace) -> Daemon {
        let config = ws.config_path().display().to_string();
        if ws.daemon_mode() {
            let out = ws.cli_in(ns, &["start"]);
            ws.write("start.out", &out.to_string());
            let pid = read_pid(&ws.pidfile());
            // Built before the checks, so a failing check still kills what was started.
            let d = Daemon {
                ns: ns.name().to_string(),
                pidfile: ws.pidfile(),
                child: None,
                pid: pid.unwrap_or(0),
                start_output: Some(out),
            };
            assert!(
                d.start_output.as_ref().is_some_and(CmdOutput::ok),
                "daemon-mode start should exit 0:\n{}",
                ws.report()
            );
            assert!(
                pid.is_some_and(pid_alive),
                "after a daemon-mode start the pidfile should name a live daemon (pid {pid:?}):\n{}",
                ws.report()
            );
            d
        } else {
            let child = ns.spawn(&[BIN, "-c", &config, "start"], &ws.path("daemon.out"));
            let pid = child.id() as i32;
            Daemon {
                ns: ns.name().to_string(),
                pidfile: ws.pidfile(),
                child: Some(child),
                pid,
                start_output: None,
            }
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) {
        signal(self.pid, sig);
    }

    /// Foreground only: waits up to `deadline` for the process to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let child = self
            .child
            .as_mut()
            .expect("wait_exit needs a foreground daemon");
        let mut status = None;
        wait_for(
            || {
                status = child.try_wait().ok().flatten();
                status.is_some()
            },
            deadline,
        );
        status
    }

    /// Whether the daemon process is still alive.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => pid_alive(self.pid),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut pids = vec![self.pid];
        pids.extend(read_pid(&self.pidfile));
        for pid in pids {
            if pid > 0 && pid_alive(pid) && cmdline(pid).contains("keepserver") {
                signal(pid, Signal::SIGKILL);
            }
        }
        if let Some(child) = self.child.as_mut() {
            let pgid = Pid::from_raw(child.id() as i32);
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_netns_pids(&self.ns);
    }
}

/// Describes how a process ended, for messages.
pub fn describe_exit(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{status:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A small file system to fill

/// Mount points are `<tmp>/keepserver-tmpfs-<pid>-XXXXXX`: the pid lets a later run sweep them.
const MOUNT_PREFIX: &str = "keepserver-tmpfs-";

/// A small tmpfs mounted on a temp dir of its own, for really full disks. Drop unmounts it
/// (lazily if a process still holds it) and removes the dir.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`256k`).
    pub fn mount(size: &str) -> Tmpfs {
        sweep_stale_mounts();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{MOUNT_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create the mount point");
        let out = run(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size}"),
                    "keepserver-e2e",
                ])
                .arg(dir.path()),
            Duration::from_secs(10),
        );
        assert!(out.ok(), "cannot mount a tmpfs:\n{out}");
        Tmpfs { dir }
    }

    /// A path on the file system.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the file system by writing the file `filler` on it until it is refused.
    pub fn fill(&self) {
        fill(&self.path("filler"));
    }

    /// Removes the filler: there is space again.
    pub fn free(&self) {
        fs::remove_file(self.path("filler")).expect("remove the filler");
    }

    /// The names of the files on the file system, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(self.dir.path());
    }
}

/// Unmounts `dir`, lazily if something still holds it.
fn unmount(dir: &Path) {
    let timeout = Duration::from_secs(10);
    if !run(Command::new("umount").arg(dir), timeout).ok() {
        let _ = run(Command::new("umount").arg("-l").arg(dir), timeout);
    }
}

/// Unmounts and removes the mount points of test processes killed before their guards ran.
fn sweep_stale_mounts() {
    let tmp = std::env::temp_dir();
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for point in mounts.lines().filter_map(|line| line.split(' ').nth(1)) {
        let point = Path::new(point);
        let pid = point
            .strip_prefix(&tmp)
            .ok()
            .and_then(|rest| rest.to_str()?.strip_prefix(MOUNT_PREFIX))
            .and_then(|rest| rest.split('-').next()?.parse::<i32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id() as i32
            && !pid_alive(pid)
        {
            unmount(point);
        }
    }
    remove_stale_dirs(&tmp, MOUNT_PREFIX);
}

/// Fills the file system of `path` by writing `path` until it is refused.
pub fn fill(path: &Path) {
    let mut filler = File::create(path).expect("create the filler");
    while std::io::Write::write_all(&mut filler, &[0; 4096]).is_ok() {}
    while std::io::Write::write_all(&mut filler, &[0]).is_ok() {}
}
