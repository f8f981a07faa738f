//! Waiting for any process to exit, not only our own children: a pidfd (`pidfd_open(2)`,
//! Linux 5.3) becomes readable when the process it names terminates, so the wait is one event
//! on the runtime, never a poll. Used for hooks a previous keepserver instance left running and
//! for the HAProxy master (a daemon, not our child).
//!
//! Written here because neither nix nor tokio exposes `pidfd_open` for an arbitrary pid.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// An open pidfd.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PidFd {
    /// Opens a pidfd for `pid`; `Ok(None)` when there is no such process (it has gone).
    pub fn open(pid: i32) -> io::Result<Option<PidFd>> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; it
        // touches no memory of ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(None),
                _ => Err(e),
            };
        }
        let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        Ok(Some(PidFd(unsafe { OwnedFd::from_raw_fd(fd) })))
    }

    /// Waits until the process has exited (a zombie counts as exited).
    pub async fn exited(self) -> io::Result<()> {
        // SAFETY: `PidFd` owns its descriptor, never replaces or closes it while alive, and
        // `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(self, Interest::READABLE) }
            .map_err(io::Error::from)?;
        let _ready = fd.readable().await?;
        Ok(())
    }
}

/// Waits until `pid` has exited; at once if there is no such process.
pub async fn exited(pid: i32) -> io::Result<()> {
    match PidFd::open(pid)? {
        Some(fd) => fd.exited().await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_wait_ends_when_the_process_exits_and_not_before() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        let waiting = tokio::spawn(exited(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "sleep 30 has not exited");
        child.kill().expect("kill");
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the wait ends")
            .expect("task")
            .expect("pidfd");
        child.wait().expect("reap");
        exited(pid).await.expect("a gone pid is no error");
    }
}
