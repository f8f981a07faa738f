//! The hook runner: runs one hook in its own process group with the KEEPSERVER_* environment,
//! logs its output line by line tagged with the hook, and kills the whole group (SIGTERM, then
//! SIGKILL) when it outlives its timeout.
//!
//! Only the timeout kills the group: a start hook that leaves a service running in the
//! background (its own process group) is left alone when the hook itself exits.
//!
//! A hook is a shell command, run as `/bin/sh -c COMMAND` as keepstart's `os.system` did, with
//! one shortcut: a plain command (a program path and plain words: nothing the shell would
//! expand, quote, redirect or chain) is executed directly, as the shell would have done after
//! splitting it into words (a relative program path is taken from the workspace, so the program
//! sees its full path as `$0`). Each `/bin/sh` start costs about 0.8 ms of CPU here, on the path
//! from the VIP to the start hook while the rest of a failover (keepalived's own scripts, the
//! other node) competes for the same cores (see the keepalived benchmark in README.rst). When
//! the direct start fails (a missing or non-executable program, a script without `#!`), the
//! shell gets the command after all, so those cases end as they always did (127, 126, the script
//! run by sh) with the shell's own message in the hook's log.
//!
//! A hook is started synchronously ([`start`]), so the daemon has it running before it tells
//! anything else (the Libra worker, the BGP announcer) about the new role.
//!
//! Every hook is written to the hook record ([`record`]) before it is spawned and again once
//! it runs, so that a keepserver killed while it runs leaves its successor what it needs to
//! adopt it ([`orphan`]): wait for it, or kill its group at its original timeout.

pub mod orphan;
pub mod record;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use log::{info, warn};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::supervisor::{HookKind, HookOutcome, HookResult, HookRun};
use record::{Entry, HookRecord, TOKEN_VAR};

/// How long a timed-out hook gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// The shell hooks are run with, as keepstart's `os.system` did.
const SHELL: &str = "/bin/sh";

/// A hook that has been started: [`Started::finish`] waits for its end.
pub struct Started {
    run: HookRun,
    began: Instant,
    child: std::io::Result<Child>,
}

/// Starts `run` in `cwd` now (the process exists when this returns), recorded in `record`
/// before it is spawned and again with its process group once it runs. A record that cannot
/// be written is logged and does not stop the hook.
pub fn start(run: HookRun, cwd: &Path, record: Option<&mut HookRecord>) -> Started {
    let began = Instant::now();
    info!(
        "hook begin hook={} role={} command=\"{}\"",
        run.kind, run.role, run.command
    );
    let mut entry = Entry::new(run.kind, &run.command, run.timeout);
    let mut record = match record {
        Some(r) => {
            let written = r.in_flight(&entry);
            note(written, r).is_ok().then_some(r)
        }
        None => None,
    };
    let child = spawn(&run, cwd, &entry.token);
    if let (Some(record), Ok(child)) = (record.as_mut(), &child) {
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        entry.pgid = pid;
        entry.leader_start = pid.and_then(crate::proc::stat).map(|s| s.start_ticks);
        let _ = note(record.in_flight(&entry), record);
    }
    Started { run, began, child }
}

/// Logs a failed write of the hook record; the hook runs anyway.
fn note(written: std::io::Result<()>, record: &HookRecord) -> std::io::Result<()> {
    if let Err(e) = &written {
        warn!(
            "cannot write the hook record {} error=\"{e}\"; a successor could not adopt this hook",
            record.path().display()
        );
    }
    written
}

impl Started {
    /// Waits for the hook to end (or its timeout) and reports how it went.
    pub async fn finish(self) -> HookResult {
        let Started { run, began, child } = self;
        let outcome = match child {
            Ok(child) => supervise(child, run.kind, run.timeout).await,
            Err(e) => HookOutcome::SpawnFailed(e.to_string()),
        };
        report(run, began.elapsed(), outcome)
    }
}

fn report(run: HookRun, duration: Duration, outcome: HookOutcome) -> HookResult {
    let ms = duration.as_millis();
    if let (HookKind::IsRunning, HookOutcome::Exited(code)) = (run.kind, &outcome) {
        // A non-zero is-running is an answer ("not running"), not a failure of the hook.
        info!(
            "hook end hook=is-running running={} exit={code} ms={ms}",
            *code == 0
        );
    } else if outcome.is_success() {
        info!("hook end hook={} {outcome} ms={ms}", run.kind);
    } else {
        warn!(
            "hook end hook={} {outcome} ms={ms} command=\"{}\"",
            run.kind, run.command
        );
    }
    HookResult {
        kind: run.kind,
        outcome,
        duration,
    }
}

fn spawn(run: &HookRun, cwd: &Path, token: &str) -> std::io::Result<Child> {
    if let Some(words) = plain_words(&run.command) {
        let mut direct = Command::new(cwd.join(words[0]));
        direct.args(&words[1..]);
        if let Ok(child) = spawn_with(direct, run, cwd, token) {
            return Ok(child);
        }
    }
    let mut shell = Command::new(SHELL);
    shell.arg("-c").arg(&run.command);
    spawn_with(shell, run, cwd, token)
}

/// Spawns `cmd` as the hook `run`: in `cwd`, its own process group, the KEEPSERVER_*
/// environment (with the record's `token`), output forwarded to the log.
fn spawn_with(mut cmd: Command, run: &HookRun, cwd: &Path, token: &str) -> std::io::Result<Child> {
    let previous = run.previous_role.map_or("NONE", |r| r.as_str());
    cmd.current_dir(cwd)
        .env(TOKEN_VAR, token)
        .env("KEEPSERVER_ROLE", run.role.as_str())
        .env("KEEPSERVER_PREVIOUS_ROLE", previous)
        .env("KEEPSERVER_VIP", run.vip.addr.to_string())
        .env("KEEPSERVER_NIC", run.nic.as_deref().unwrap_or(""))
        .env("KEEPSERVER_HOOK", run.kind.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward_lines(out, run.kind, "out"));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward_lines(err, run.kind, "err"));
    }
    Ok(child)
}

/// The words of a plain command (see the module documentation), which the shell would split at
/// the spaces and run as they are; `None` for anything the shell has to interpret.
pub(crate) fn plain_words(command: &str) -> Option<Vec<&str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./,+@%-".contains(c) || c == ' ';
    let words: Vec<&str> = command.split(' ').filter(|w| !w.is_empty()).collect();
    // A path, so never a builtin, keyword or function, which only the shell would find.
    let program_is_path = words.first().is_some_and(|p| p.contains('/'));
    (program_is_path && command.chars().all(plain)).then_some(words)
}

/// Logs each line of a hook's output; ends when every writer (the hook and anything it left
/// behind) has closed the pipe.
async fn forward_lines(stream: impl AsyncRead + Unpin, kind: HookKind, tag: &'static str) {
    let mut lines = BufReader::new(stream).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => info!(target: "keepserver::hooks", "hook={kind} {tag}: {line}"),
            Ok(None) => return,
            Err(e) => {
                warn!(target: "keepserver::hooks", "hook={kind} {tag}: unreadable output: {e}");
                return;
            }
        }
    }
}

async fn supervise(mut child: Child, kind: HookKind, timeout: Duration) -> HookOutcome {
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => outcome_of(status),
        Ok(Err(e)) => HookOutcome::SpawnFailed(format!("wait failed: {e}")),
        Err(_) => {
            kill_group(&mut child, kind, timeout).await;
            HookOutcome::TimedOut
        }
    }
}

fn outcome_of(status: std::process::ExitStatus) -> HookOutcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => HookOutcome::Exited(code),
        (None, Some(sig)) => HookOutcome::Signaled(sig),
        (None, None) => HookOutcome::Exited(-1),
    }
}

/// SIGTERM to the hook's process group, up to [`KILL_GRACE`] for the leader to go, then SIGKILL
/// to whatever is left of the group.
async fn kill_group(child: &mut Child, kind: HookKind, timeout: Duration) {
    let Some(pid) = child.id() else {
        return;
    };
    // The group id is the leader's pid: we spawned it with process_group(0).
    let group = Pid::from_raw(pid as i32);
    warn!(
        "hook timeout hook={kind} after={} pgid={pid} sending=SIGTERM",
        crate::supervisor::components::show_duration(timeout)
    );
    let _ = killpg(group, Signal::SIGTERM);
    let exited = tokio::time::timeout(KILL_GRACE, child.wait()).await.is_ok();
    // Anything still in the group (children that ignore SIGTERM) goes now.
    if killpg(group, Signal::SIGKILL).is_ok() {
        warn!("hook killed hook={kind} pgid={pid} signal=SIGKILL leader_exited={exited}");
    }
    if !exited {
        let _ = child.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::Role;

    async fn run_hook(run: HookRun, cwd: &Path) -> HookResult {
        start(run, cwd, None).finish().await
    }

    fn hook(kind: HookKind, command: &str, timeout: Duration) -> HookRun {
        HookRun {
            kind,
            command: command.to_string(),
            timeout,
            role: Role::Master,
            previous_role: Some(Role::Slave),
            vip: "192.0.2.10/24".parse().unwrap(),
            nic: Some("eth0".parse().unwrap()),
        }
    }

    /// How `command` ends as hook `kind` in `dir`, with a timeout it never needs.
    async fn outcome(kind: HookKind, command: &str, dir: &Path) -> HookOutcome {
        run_hook(hook(kind, command, Duration::from_secs(5)), dir)
            .await
            .outcome
    }

    /// Writes `text` to `path` with permission bits `mode`.
    fn write_script(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }

    #[tokio::test]
    async fn exit_status_and_environment_reach_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let cmd = format!(
            "echo \"$KEEPSERVER_ROLE $KEEPSERVER_PREVIOUS_ROLE $KEEPSERVER_VIP $KEEPSERVER_NIC $(pwd)\" > {}; exit 3",
            out.display()
        );
        assert_eq!(
            outcome(HookKind::Start, &cmd, dir.path()).await,
            HookOutcome::Exited(3)
        );
        let env = std::fs::read_to_string(&out).unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            env.trim(),
            format!("MASTER SLAVE 192.0.2.10 eth0 {}", cwd.display())
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The hook leaves a child that ignores SIGTERM, then hangs itself.
        let cmd = format!(
            "sh -c 'trap \"\" TERM; sleep 1000' & echo $$ $! > {}; sleep 1000",
            pids.display()
        );
        let began = Instant::now();
        let r = run_hook(
            hook(HookKind::IsRunning, &cmd, Duration::from_millis(300)),
            dir.path(),
        )
        .await;
        assert_eq!(r.outcome, HookOutcome::TimedOut);
        assert!(began.elapsed() < Duration::from_millis(300) + KILL_GRACE + Duration::from_secs(1));
        let text = std::fs::read_to_string(&pids).unwrap();
        for pid in text.split_whitespace() {
            let pid: i32 = pid.parse().unwrap();
            let gone = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                nix::sys::signal::kill(Pid::from_raw(pid), None).is_err()
            });
            assert!(gone, "process {pid} of the hook's group survived");
        }
    }

    #[tokio::test]
    async fn background_service_outlives_a_successful_hook() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("svc.pid");
        let cmd = format!("sleep 30 >/dev/null 2>&1 & echo $! > {}", pidfile.display());
        let r = run_hook(
            hook(HookKind::Start, &cmd, Duration::from_secs(5)),
            dir.path(),
        )
        .await;
        assert!(r.outcome.is_success());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok(),
            "service killed"
        );
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }

    #[test]
    fn only_plain_program_commands_are_executed_directly() {
        for (plain, words) in [
            ("/opt/app/start.sh", vec!["/opt/app/start.sh"]),
            (
                "/opt/app/start.sh --fast  eth0 192.0.2.10",
                vec!["/opt/app/start.sh", "--fast", "eth0", "192.0.2.10"],
            ),
            (
                "scripts/demo/start.sh a,b +x @y 50%",
                vec!["scripts/demo/start.sh", "a,b", "+x", "@y", "50%"],
            ),
        ] {
            assert_eq!(plain_words(plain), Some(words), "{plain}");
        }
        for shell in [
            "start.sh",
            "exit 3",
            ". /etc/app/env",
            "/opt/app/start.sh; echo done",
            "/opt/app/start.sh && /opt/app/check.sh",
            "/opt/app/start.sh > /tmp/log",
            "/opt/app/start.sh $HOME",
            "/opt/app/start.sh 'quoted arg'",
            "/opt/app/start.sh *.conf",
            "/opt/app/start.sh ~",
            "/opt/app/start.sh &",
            "A=1 /opt/app/start.sh",
            "/opt/app/start.sh\n/opt/app/other.sh",
            "/opt/app/start.sh\tx",
            "",
            "   ",
        ] {
            assert_eq!(plain_words(shell), None, "{shell:?}");
        }
    }

    #[tokio::test]
    async fn a_plain_command_replaces_the_shell_and_keeps_status_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook.sh");
        let out = dir.path().join("out");
        write_script(
            &script,
            &format!(
                "#!/bin/sh\necho \"$PPID $1 $KEEPSERVER_HOOK\" > {}\nexit 4\n",
                out.display()
            ),
            0o755,
        );
        let command = format!("{} arg1", script.display());
        assert_eq!(
            outcome(HookKind::Start, &command, dir.path()).await,
            HookOutcome::Exited(4)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            text.trim(),
            format!("{} arg1 start", std::process::id()),
            "the script's parent is keepserver itself, not a forked shell"
        );
    }

    #[tokio::test]
    async fn a_plain_relative_command_is_found_in_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("bin/hook.sh");
        write_script(
            &script,
            &format!("#!/bin/sh\necho \"$0 $1\" > {}\n", out.display()),
            0o755,
        );
        assert_eq!(
            outcome(HookKind::Start, "bin/hook.sh x", dir.path()).await,
            HookOutcome::Exited(0)
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap().trim(),
            format!("{} x", script.display())
        );
    }

    #[tokio::test]
    async fn a_script_without_an_interpreter_line_is_run_by_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook");
        write_script(&script, "test \"$1\" = go && exit 5\nexit 6\n", 0o755);
        let command = format!("{} go", script.display());
        assert_eq!(
            outcome(HookKind::Start, &command, dir.path()).await,
            HookOutcome::Exited(5)
        );
    }

    #[tokio::test]
    async fn a_program_that_is_not_executable_ends_as_under_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook.sh");
        write_script(&script, "#!/bin/sh\nexit 0\n", 0o644);
        assert_eq!(
            outcome(HookKind::Start, &script.display().to_string(), dir.path()).await,
            HookOutcome::Exited(126)
        );
    }

    #[tokio::test]
    async fn missing_command_is_a_failure_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            outcome(HookKind::Stop, "/nonexistent/stop.sh", dir.path()).await,
            HookOutcome::Exited(127)
        );
    }
}
