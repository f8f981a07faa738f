//! Running an external tool to its end, output captured, killed (with whatever it started in
//! its place) if it outlives a time limit: how the HAProxy driver and the BGP announcer call
//! `haproxy`, `vtysh` and FRR's scripts. Callers turn a [`ToolError`] into their own error,
//! with the context only they know.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// Why a tool did not run to its end.
#[derive(Debug)]
pub enum ToolError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It was still running after the time limit, and was killed.
    Timeout,
    /// Its output could not be read.
    Read(std::io::Error),
}

/// Runs `program ARGS` with no input and returns its status and output, or kills it after
/// `within`.
pub async fn output<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    within: Duration,
) -> Result<Output, ToolError> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(ToolError::Spawn)?;
    tokio::time::timeout(within, child.wait_with_output())
        .await
        .map_err(|_| ToolError::Timeout)?
        .map_err(ToolError::Read)
}
