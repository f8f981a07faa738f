//! Hooks a previous keepserver instance left running: finding them from the hook record
//! ([`super::record`]) and `/proc`, and waiting for them the way that instance would have.
//!
//! The semantics (README.rst, *Failure behaviour*): a recorded hook whose leader still runs is
//! the hook in flight, so no other hook starts; it is waited for until its original timeout
//! (counted from when it was spawned, on the boot clock), and then its whole process group is
//! killed (SIGTERM, then SIGKILL after the kill grace), exactly as its own keepserver would have
//! done. A leader that ended by itself leaves its group alone (a service it started in the
//! background keeps running), as after any hook. The leader is recognized by its pid and start
//! time (pid reuse cannot fool it), or, when the instance died between writing the record and
//! learning the pid, by the token in its environment. After a reboot nothing is adopted.

use std::time::Duration;

use log::warn;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::record::{Entry, boot_clock_ms};
use crate::pidfd::PidFd;
use crate::proc;
use crate::supervisor::HookOutcome;

/// A recorded hook whose leader still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The record.
    pub entry: Entry,
    /// The leader's pid, which is also the group's id.
    pub leader: i32,
    /// The leader's start time, in clock ticks since boot.
    pub start_ticks: u64,
    /// How long until its original timeout.
    pub remaining: Duration,
}

/// What became of a recorded hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Its leader still runs: it must be waited for.
    Running(Orphan),
    /// Its leader is gone (it ended, or the machine rebooted since).
    Gone {
        /// Why it counts as gone, for the log.
        why: &'static str,
    },
}

/// Looks the recorded hook up in `/proc`.
pub fn find(entry: Entry) -> Fate {
    if proc::boot_id().is_some_and(|boot| boot != entry.boot) {
        return Fate::Gone {
            why: "the machine rebooted since",
        };
    }
    let leader = match (entry.pgid, entry.leader_start) {
        (Some(pgid), Some(start)) => proc::is_same(pgid, start).then_some((pgid, start)),
        _ => by_token(&entry),
    };
    let Some((leader, start_ticks)) = leader else {
        return Fate::Gone {
            why: "its leader is no longer running",
        };
    };
    let deadline = entry.spawned_ms.saturating_add(entry.timeout_ms);
    let remaining = Duration::from_millis(deadline.saturating_sub(boot_clock_ms()));
    Fate::Running(Orphan {
        entry,
        leader,
        start_ticks,
        remaining,
    })
}

/// The leader of the hook whose environment holds the record's token: the process with that
/// token that leads its own group (the hook was spawned as a group leader).
fn by_token(entry: &Entry) -> Option<(i32, u64)> {
    let token = entry.token_entry();
    proc::pids().into_iter().find_map(|pid| {
        let stat = proc::stat(pid)?;
        let leads = stat.pgid == pid && stat.state != 'Z';
        (leads && proc::environ_has(pid, &token)).then_some((pid, stat.start_ticks))
    })
}

/// Waits for `orphan` to end by itself, or kills its group at its original timeout (SIGTERM,
/// up to `kill_grace` for the leader to go, then SIGKILL to the group). Returns
/// [`HookOutcome::Unobserved`] or [`HookOutcome::TimedOut`].
pub async fn wait(orphan: &Orphan, kill_grace: Duration) -> HookOutcome {
    let pidfd = match PidFd::open(orphan.leader) {
        Ok(Some(fd)) => fd,
        Ok(None) => return HookOutcome::Unobserved,
        Err(e) => {
            warn!(
                "cannot watch the adopted hook pgid={} error=\"{e}\"; killing it now",
                orphan.leader
            );
            kill_group(orphan, kill_grace).await;
            return HookOutcome::TimedOut;
        }
    };
    // The pidfd now names one process: make sure it is still the recorded one.
    if !proc::is_same(orphan.leader, orphan.start_ticks) {
        return HookOutcome::Unobserved;
    }
    match tokio::time::timeout(orphan.remaining, pidfd.exited()).await {
        Ok(_) => HookOutcome::Unobserved,
        Err(_) => {
            kill_group(orphan, kill_grace).await;
            HookOutcome::TimedOut
        }
    }
}

async fn kill_group(orphan: &Orphan, kill_grace: Duration) {
    let group = Pid::from_raw(orphan.leader);
    warn!(
        "adopted hook timeout hook={} pgid={} sending=SIGTERM",
        orphan.entry.hook, orphan.leader
    );
    let _ = killpg(group, Signal::SIGTERM);
    let leader_gone = async {
        if proc::is_same(orphan.leader, orphan.start_ticks) {
            let _ = crate::pidfd::exited(orphan.leader).await;
        }
    };
    let exited = tokio::time::timeout(kill_grace, leader_gone).await.is_ok();
    if killpg(group, Signal::SIGKILL).is_ok() {
        warn!(
            "adopted hook killed hook={} pgid={} signal=SIGKILL leader_exited={exited}",
            orphan.entry.hook, orphan.leader
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;
    use crate::supervisor::HookKind;

    /// A group leader started as a hook would be, with its record entry.
    fn spawn_hook(script: &str, timeout: Duration) -> (std::process::Child, Entry) {
        let mut entry = Entry::new(HookKind::Start, script, timeout);
        let child = Command::new("/bin/sh")
            .args(["-c", script])
            .env(super::super::record::TOKEN_VAR, &entry.token)
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        entry.pgid = Some(pid);
        entry.leader_start = proc::stat(pid).map(|s| s.start_ticks);
        (child, entry)
    }

    #[tokio::test]
    async fn a_running_hook_is_found_by_pid_and_by_token_and_waited_for() {
        let (mut child, entry) = spawn_hook("sleep 0.3", Duration::from_secs(30));
        let Fate::Running(orphan) = find(entry.clone()) else {
            panic!("the hook runs");
        };
        assert_eq!(orphan.leader, child.id() as i32);
        assert!(orphan.remaining > Duration::from_secs(29));
        let unrecorded = Entry {
            pgid: None,
            leader_start: None,
            ..entry.clone()
        };
        // Its environment may take a moment to appear after the spawn returns (see proc).
        let by_token = (0..200).find_map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            match find(unrecorded.clone()) {
                Fate::Running(found) => Some(found),
                Fate::Gone { .. } => None,
            }
        });
        let by_token = by_token.expect("found by its token");
        assert_eq!(
            (by_token.leader, by_token.start_ticks),
            (orphan.leader, orphan.start_ticks)
        );
        // Reap it as it exits, as its parent (here the test, normally init) would.
        let reaper = std::thread::spawn(move || child.wait());
        assert_eq!(
            wait(&orphan, Duration::from_secs(1)).await,
            HookOutcome::Unobserved
        );
        reaper.join().expect("join").expect("wait");
        assert!(matches!(find(entry), Fate::Gone { .. }));
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "sh -c 'trap \"\" TERM; sleep 1000' & echo $! > {}; sleep 1000",
            pids.display()
        );
        let (mut child, entry) = spawn_hook(&script, Duration::from_millis(300));
        let Fate::Running(orphan) = find(entry) else {
            panic!("the hook runs");
        };
        let reaper = std::thread::spawn(move || child.wait());
        assert_eq!(
            wait(&orphan, Duration::from_millis(500)).await,
            HookOutcome::TimedOut
        );
        reaper.join().expect("join").expect("wait");
        let straggler: i32 = std::fs::read_to_string(&pids)
            .expect("pid")
            .trim()
            .parse()
            .expect("pid");
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !proc::is_alive(straggler)
        });
        assert!(gone, "the child that ignores SIGTERM survived");
    }

    #[test]
    fn another_boot_or_a_dead_leader_is_gone() {
        let mut entry = Entry::new(HookKind::Stop, "stop.sh", Duration::from_secs(5));
        entry.boot = "another-boot".to_string();
        assert_eq!(
            find(entry.clone()),
            Fate::Gone {
                why: "the machine rebooted since"
            }
        );
        entry.boot = proc::boot_id().expect("boot id");
        entry.pgid = Some(i32::MAX);
        entry.leader_start = Some(1);
        assert!(matches!(find(entry), Fate::Gone { .. }));
    }
}
