//! What `/proc` says about a process: whether it is alive (a zombie counts as gone: it has
//! exited, only its parent has not reaped it yet), its process group, its start time (which,
//! with the pid, names one process for the whole boot, whatever pids are reused later), its
//! command line and environment, and the boot it belongs to.
//!
//! Written here rather than taken from a crate: `procfs` would bring a large dependency for
//! the four fields of `/proc/<pid>/stat` and two files keepserver reads.

use std::path::Path;

/// The fields of `/proc/<pid>/stat` keepserver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The state letter (`R`, `S`, `D`, `Z`, ...).
    pub state: char,
    /// The process group.
    pub pgid: i32,
    /// When it started, in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parses a `/proc/<pid>/stat` line. The command name in parentheses may hold anything, spaces
/// and parentheses included, so fields are counted after the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (_, after) = line.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(3) ppid(4) pgrp(5) ... starttime(22), numbered from pid = 1.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat`, if the process exists.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is a live (not zombie, not dead) process.
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether `pid` is alive and is the process that started at `start_ticks`.
pub fn is_same(pid: i32, start_ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X' && s.start_ticks == start_ticks)
}

/// Whether the command line of live process `pid` has an argument equal to `path`.
pub fn runs_with(pid: i32, path: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = path.as_os_str().as_encoded_bytes();
    is_alive(pid) && cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// Whether the environment `pid` was started with holds exactly `entry` (`NAME=value`).
pub fn environ_has(pid: i32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
}

/// Every pid in `/proc` now.
pub fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The live members of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|pid| stat(*pid).is_some_and(|s| s.pgid == pgid && s.state != 'Z'))
        .collect()
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`); start times are only comparable
/// within one boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1234 56 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgid: 4240,
                start_ticks: 987_654,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) Z"), None);
    }

    #[test]
    fn this_process_is_alive_with_its_own_start_time_and_a_free_pid_is_not() {
        let me = std::process::id() as i32;
        let stat = stat(me).expect("own stat");
        assert!(is_alive(me));
        assert!(is_same(me, stat.start_ticks));
        assert!(!is_same(me, stat.start_ticks + 1));
        assert!(!is_alive(i32::MAX));
        assert!(group_members(stat.pgid).contains(&me));
        assert!(!runs_with(me, Path::new("/no/such/haproxy.cfg")));
        assert!(boot_id().is_some_and(|b| !b.is_empty()));
    }

    #[test]
    fn an_exited_unreaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id() as i32;
        let gone = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !is_alive(pid)
        });
        assert!(
            gone,
            "the exited child {pid} (a zombie until reaped) counts as gone"
        );
        child.wait().expect("reap");
    }

    #[test]
    fn a_child_started_with_an_entry_has_it_in_its_environment() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env("KEEPSERVER_PROC_TEST", "yes")
            .spawn()
            .expect("spawn");
        let pid = child.id() as i32;
        // The spawning parent may run on before the kernel has set up the new environment
        // (vfork's parent is released early in exec), so look until it is there.
        let found = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            environ_has(pid, "KEEPSERVER_PROC_TEST=yes")
        });
        assert!(found);
        assert!(!environ_has(pid, "KEEPSERVER_PROC_TEST=no"));
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
}
