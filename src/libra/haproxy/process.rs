//! The HAProxy master as a process: liveness from `/proc` (a zombie counts as gone, since the
//! daemonized master is reaped by init, possibly late) and signals.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::error::HaproxyError;

/// How often a stopping process is looked at.
const POLL: Duration = Duration::from_millis(20);

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| state(&stat))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The state letter of a `/proc/<pid>/stat` line (`R`, `S`, `Z`, ...). The command name in
/// parentheses may hold anything, so the state is read after the last `)`.
fn state(stat: &str) -> Option<char> {
    let (_, after) = stat.rsplit_once(')')?;
    after.trim_start().chars().next()
}

/// Whether the command line of live process `pid` has an argument equal to `path`: how a pid
/// from a pidfile is recognized as the HAProxy started with that configuration.
pub(crate) fn runs_with(pid: u32, path: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = path.as_os_str().as_encoded_bytes();
    is_alive(pid) && cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub(crate) fn send(pid: u32, signal: Signal) -> Result<(), HaproxyError> {
    let target = i32::try_from(pid).map_err(|_| HaproxyError::Signal {
        pid,
        signal: signal.as_str(),
        source: Errno::EINVAL,
    })?;
    match kill(Pid::from_raw(target), signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(source) => Err(HaproxyError::Signal {
            pid,
            signal: signal.as_str(),
            source,
        }),
    }
}

/// Waits up to `within` for `pid` to be gone; whether it is.
pub(crate) async fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while is_alive(pid) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_read_after_the_command_name() {
        assert_eq!(state("13937 (haproxy) S 1 13937 13937 0"), Some('S'));
        assert_eq!(state("13937 (ha) Z) Z 1 13937"), Some('Z'));
        assert_eq!(state("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_free_pid_is_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX));
    }

    #[test]
    fn this_process_does_not_run_with_an_unrelated_path() {
        assert!(!runs_with(
            std::process::id(),
            Path::new("/no/such/haproxy.cfg")
        ));
    }
}
