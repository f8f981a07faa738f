//! The hook runner: runs one hook as `/bin/sh -c COMMAND` in its own process group with the
//! KEEPSERVER_* environment, logs its output line by line tagged with the hook, and kills the
//! whole group (SIGTERM, then SIGKILL) when it outlives its timeout.
//!
//! Only the timeout kills the group: a start hook that leaves a service running in the
//! background (its own process group) is left alone when the hook itself exits.
//!
//! A plain command (a program path and plain words: nothing the shell would expand, quote,
//! redirect or chain) is run as `/bin/sh -c 'exec COMMAND'`: dash forks once more for the last
//! command of `-c`, and that fork was most of keepserver's share of the time from the VIP to the
//! hook (see the keepalived benchmark in README.rst). The shell still looks the program up and
//! runs a script without `#!` itself, and the exit statuses for a missing (127) or non-executable
//! (126) program are the same, so hooks behave as before.

use std::borrow::Cow;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use log::{info, warn};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::supervisor::{HookKind, HookOutcome, HookResult, HookRun};

/// How long a timed-out hook gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// The shell hooks are run with, as keepstart's `os.system` did.
const SHELL: &str = "/bin/sh";

/// Runs `run` in `cwd` to its end (or its timeout) and reports how it went.
pub async fn run_hook(run: HookRun, cwd: &Path) -> HookResult {
    let began = Instant::now();
    info!(
        "hook begin hook={} role={} command=\"{}\"",
        run.kind, run.role, run.command
    );
    let outcome = match spawn(&run, cwd) {
        Ok(child) => supervise(child, run.kind, run.timeout).await,
        Err(e) => HookOutcome::SpawnFailed(e.to_string()),
    };
    let duration = began.elapsed();
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

fn spawn(run: &HookRun, cwd: &Path) -> std::io::Result<Child> {
    let previous = run.previous_role.map_or("NONE", |r| r.as_str());
    let mut cmd = Command::new(SHELL);
    cmd.arg("-c")
        .arg(shell_script(&run.command).as_ref())
        .current_dir(cwd)
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

/// What `sh -c` gets for `command`: `exec COMMAND` for a plain command (see the module
/// documentation), the command as written otherwise.
fn shell_script(command: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./,+@%-".contains(c) || c == ' ';
    // A path, so never a builtin, keyword or function, which `exec` would not find.
    let program_is_path = command
        .split_whitespace()
        .next()
        .is_some_and(|p| p.contains('/'));
    if program_is_path && command.chars().all(plain) {
        Cow::Owned(format!("exec {command}"))
    } else {
        Cow::Borrowed(command)
    }
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
        "hook timeout hook={kind} after={:.1}s pgid={pid} sending=SIGTERM",
        timeout.as_secs_f64()
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

    fn hook(kind: HookKind, command: &str, timeout: Duration) -> HookRun {
        HookRun {
            kind,
            command: command.to_string(),
            timeout,
            role: Role::Master,
            previous_role: Some(Role::Slave),
            vip: "192.0.2.10/24".parse().unwrap(),
            nic: Some("eth0".to_string()),
        }
    }

    #[tokio::test]
    async fn exit_status_and_environment_reach_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let cmd = format!(
            "echo \"$KEEPSERVER_ROLE $KEEPSERVER_PREVIOUS_ROLE $KEEPSERVER_VIP $KEEPSERVER_NIC $(pwd)\" > {}; exit 3",
            out.display()
        );
        let r = run_hook(
            hook(HookKind::Start, &cmd, Duration::from_secs(5)),
            dir.path(),
        )
        .await;
        assert_eq!(r.outcome, HookOutcome::Exited(3));
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
    fn only_plain_program_commands_are_execed() {
        for plain in [
            "/opt/app/start.sh",
            "/opt/app/start.sh --fast eth0 192.0.2.10",
            "scripts/demo/start.sh a,b +x @y 50%",
        ] {
            assert_eq!(shell_script(plain), format!("exec {plain}"), "{plain}");
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
        ] {
            assert_eq!(shell_script(shell), shell, "{shell:?}");
        }
    }

    #[tokio::test]
    async fn a_plain_command_replaces_the_shell_and_keeps_status_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hook.sh");
        let out = dir.path().join("out");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$PPID $1 $KEEPSERVER_HOOK\" > {}\nexit 4\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let command = format!("{} arg1", script.display());
        let r = run_hook(
            hook(HookKind::Start, &command, Duration::from_secs(5)),
            dir.path(),
        )
        .await;
        assert_eq!(r.outcome, HookOutcome::Exited(4));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            text.trim(),
            format!("{} arg1 start", std::process::id()),
            "the script's parent is keepserver itself, not a forked shell"
        );
    }

    #[tokio::test]
    async fn missing_command_is_a_failure_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let r = run_hook(
            hook(
                HookKind::Stop,
                "/nonexistent/stop.sh",
                Duration::from_secs(5),
            ),
            dir.path(),
        )
        .await;
        assert_eq!(r.outcome, HookOutcome::Exited(127));
    }
}
