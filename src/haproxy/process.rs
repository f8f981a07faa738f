//! The HAProxy master as a process: signals, and waiting for it to go. Liveness comes from
//! [`crate::proc`] (a zombie counts as gone, since the daemonized master is reaped by init,
//! possibly late); the wait is a pidfd event, not a poll.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::error::HaproxyError;

/// Whether live process `pid` has an argument equal to `path`: how a pid from a pidfile is
/// recognized as the HAProxy started with that configuration.
pub(crate) fn runs_with(pid: u32, path: &Path) -> bool {
    i32::try_from(pid).is_ok_and(|pid| crate::proc::runs_with(pid, path))
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
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    // A zombie answers the pidfd as exited; one that cannot be watched is looked at once more.
    let gone = async {
        if crate::pidfd::exited(pid).await.is_err() {
            while crate::proc::is_alive(pid) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokio::time::timeout(within, gone).await.is_ok() || !crate::proc::is_alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_does_not_run_with_an_unrelated_path() {
        assert!(!runs_with(
            std::process::id(),
            Path::new("/no/such/haproxy.cfg")
        ));
    }

    #[tokio::test]
    async fn waiting_for_a_gone_process_returns_at_once() {
        assert!(wait_gone(u32::MAX, Duration::from_millis(10)).await);
        assert!(!wait_gone(std::process::id(), Duration::from_millis(10)).await);
    }
}
