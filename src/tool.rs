//! Running an external tool to its end, output captured, killed with its whole process group if
//! it outlives a time limit (or if the caller gives up on it): how the HAProxy driver and the
//! BGP announcer call `haproxy`, `vtysh` and FRR's scripts. A tool runs in a process group of
//! its own, so what it started (frr-reload.py runs vtysh, vtysh runs a pager) goes with it;
//! tokio's `kill_on_drop` alone would kill only the direct child. Callers turn a [`ToolError`]
//! into their own error, with the context only they know.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Why a tool did not run to its end.
#[derive(Debug)]
pub enum ToolError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It was still running after the time limit, and its process group was killed.
    Timeout,
    /// Its output could not be read.
    Read(std::io::Error),
}

/// Kills a process group when dropped, unless disarmed: a tool whose caller stops waiting
/// leaves nothing behind.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Runs `program ARGS` with no input and returns its status and output, or kills its process
/// group after `within`.
pub async fn output<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    within: Duration,
) -> Result<Output, ToolError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(ToolError::Spawn)?;
    // The group id is the leader's pid: it was spawned with process_group(0).
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw),
    );
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let run = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            match stdout.as_mut() {
                Some(s) => s.read_to_end(&mut out).await.map(drop),
                None => Ok(()),
            }
        };
        let read_err = async {
            match stderr.as_mut() {
                Some(s) => s.read_to_end(&mut err).await.map(drop),
                None => Ok(()),
            }
        };
        let (status, read_out, read_err) = tokio::join!(child.wait(), read_out, read_err);
        read_out.and(read_err).map_err(ToolError::Read)?;
        let status = status.map_err(ToolError::Read)?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    };
    let result = tokio::time::timeout(within, run)
        .await
        .unwrap_or(Err(ToolError::Timeout));
    if !matches!(result, Err(ToolError::Timeout)) {
        // It ended by itself: whatever it left in its group is its own business.
        guard.0 = None;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_and_status_are_returned() {
        let out = output(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await
        .expect("ran");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[tokio::test]
    async fn a_tool_that_times_out_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!("sleep 1000 & echo $! > {}; sleep 1000", pids.display());
        let result = output(
            Path::new("/bin/sh"),
            &["-c", script.as_str()],
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(result, Err(ToolError::Timeout)), "{result:?}");
        let child: i32 = std::fs::read_to_string(&pids)
            .expect("pid written")
            .trim()
            .parse()
            .expect("pid");
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !crate::proc::is_alive(child)
        });
        assert!(gone, "the tool's own child {child} survived the timeout");
    }
}
