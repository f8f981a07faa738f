//! The hook record: one small file beside the pidfile (`server.hook` for `server.pid`) that
//! says which hook is in flight, so that a keepserver killed while a hook runs leaves its
//! successor enough to find that hook and wait for it or kill it (see [`super::orphan`]).
//!
//! The entry is written before the hook is spawned (its kind, command, timeout, the boot, the
//! moment on the boot clock and a token the hook gets in its environment as
//! `KEEPSERVER_HOOK_TOKEN`), and again once it runs (its process group and the leader's start
//! time, which with the pid names one process for the whole boot). So there is no moment at
//! which a hook can act without a record: killed before the second write, the successor finds
//! the hook by its token. When the hook has ended the record says so, with the running state
//! keepserver then tracked, so that a successor without is-running trusts what was known
//! rather than assume "not running" and start the service a second time.
//!
//! The file has a fixed size (one page) and is overwritten in place with one `pwrite`, without
//! fsync: its reader is a keepserver started after this one died, on the same boot (after a
//! reboot every recorded process is gone anyway), and an overwrite of allocated blocks needs no
//! free space, so a full disk cannot stop a hook from being recorded. A record that cannot be
//! parsed (it cannot be half-written by a killed writer, but someone may have edited it) is
//! reported and ignored.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::supervisor::HookKind;

/// The record's size: one page, written in one piece.
const SIZE: usize = 4096;
/// The longest command kept in the record (it is only for the successor's log).
const COMMAND_MAX: usize = 1024;
/// The environment variable carrying the hook's token.
pub const TOKEN_VAR: &str = "KEEPSERVER_HOOK_TOKEN";

/// A hook in flight, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The keepserver that started it.
    pub daemon: u32,
    /// Which hook.
    pub hook: HookKind,
    /// Its command (cut to [`COMMAND_MAX`] bytes).
    pub command: String,
    /// The token in its environment ([`TOKEN_VAR`]).
    pub token: String,
    /// The boot it was started in (`/proc/sys/kernel/random/boot_id`).
    pub boot: String,
    /// When it was about to be spawned, in ms on the boot clock (`CLOCK_BOOTTIME`).
    pub spawned_ms: u64,
    /// Its timeout, in ms.
    pub timeout_ms: u64,
    /// Its process group (= the leader's pid), once spawned.
    pub pgid: Option<i32>,
    /// The leader's start time in clock ticks since boot, once spawned.
    pub leader_start: Option<u64>,
}

impl Entry {
    /// An entry for a hook about to be spawned by this process now.
    pub fn new(hook: HookKind, command: &str, timeout: Duration) -> Entry {
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let now = boot_clock_ms();
        let mut command = command.to_string();
        if command.len() > COMMAND_MAX {
            let mut cut = COMMAND_MAX;
            while !command.is_char_boundary(cut) {
                cut -= 1;
            }
            command.truncate(cut);
        }
        Entry {
            daemon: std::process::id(),
            hook,
            command,
            token: format!(
                "{}-{now}-{}",
                std::process::id(),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ),
            boot: crate::proc::boot_id().unwrap_or_default(),
            spawned_ms: now,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            pgid: None,
            leader_start: None,
        }
    }

    /// The `NAME=value` entry the hook's environment holds.
    pub fn token_entry(&self) -> String {
        format!("{TOKEN_VAR}={}", self.token)
    }
}

/// What the record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum Content {
    /// No hook in flight; the service was last known to be running or not (unknown: null).
    Idle {
        /// The running state keepserver tracked when the last hook had ended.
        running: Option<bool>,
        /// The boot it is about: after a reboot no service runs until it is started again.
        #[serde(default)]
        boot: String,
    },
    /// This hook is in flight.
    InFlight(Entry),
}

/// What was found in the record at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No record.
    Nothing,
    /// No hook in flight; the running state its keepserver tracked last.
    Idle {
        /// Running, not running, or unknown.
        running: Option<bool>,
    },
    /// A hook was in flight when its keepserver stopped writing.
    InFlight(Entry),
    /// The file holds something that is not a record (the text, cut short).
    Unreadable(String),
}

/// The open record file.
#[derive(Debug)]
pub struct HookRecord {
    path: PathBuf,
    file: File,
}

impl HookRecord {
    /// Opens (creating) the record at `path` and returns what it held. Call only while holding
    /// the pidfile lock: no other instance writes it then.
    pub fn open(path: &Path) -> io::Result<(HookRecord, Found)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = vec![0u8; SIZE];
        let read = file.read_at(&mut bytes, 0)?;
        bytes.truncate(read);
        let found = parse(&bytes);
        let mut record = HookRecord {
            path: path.to_path_buf(),
            file,
        };
        if read < SIZE {
            // Allocate the page now, while writing needs space, so later overwrites do not.
            record.write(&match &found {
                Found::InFlight(entry) => Content::InFlight(entry.clone()),
                Found::Idle { running } => idle(*running),
                _ => idle(None),
            })?;
        }
        Ok((record, found))
    }

    /// The record's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `entry` as the hook in flight.
    pub fn in_flight(&mut self, entry: &Entry) -> io::Result<()> {
        self.write(&Content::InFlight(entry.clone()))
    }

    /// Records that no hook is in flight and the service's tracked state.
    pub fn idle(&mut self, running: Option<bool>) -> io::Result<()> {
        self.write(&idle(running))
    }

    fn write(&mut self, content: &Content) -> io::Result<()> {
        let mut text = serde_json::to_vec(content).map_err(io::Error::other)?;
        if text.len() >= SIZE {
            return Err(io::Error::other("hook record larger than a page"));
        }
        // Padding after the JSON line keeps the size fixed, so one write replaces it all.
        text.push(b'\n');
        text.resize(SIZE, b' ');
        self.file.write_all_at(&text, 0)
    }
}

/// An idle record for this boot.
fn idle(running: Option<bool>) -> Content {
    Content::Idle {
        running,
        boot: crate::proc::boot_id().unwrap_or_default(),
    }
}

fn parse(bytes: &[u8]) -> Found {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Found::Nothing;
    }
    match serde_json::from_str::<Content>(line) {
        Ok(Content::Idle { running, boot }) => Found::Idle {
            // A state from before a reboot is no state: nothing started since runs.
            running: running.filter(|_| crate::proc::boot_id().is_some_and(|b| b == boot)),
        },
        Ok(Content::InFlight(entry)) => Found::InFlight(entry),
        Err(_) => Found::Unreadable(line.chars().take(200).collect()),
    }
}

/// Milliseconds on the boot clock (`CLOCK_BOOTTIME`: monotonic, and counting suspend).
pub fn boot_clock_ms() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| {
            let ms = i128::from(t.tv_sec()) * 1000 + i128::from(t.tv_nsec()) / 1_000_000;
            u64::try_from(ms).unwrap_or(0)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_the_file_and_idle_clears_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.hook");
        let (mut record, found) = HookRecord::open(&path).expect("open");
        assert_eq!(found, Found::Nothing);
        assert_eq!(
            HookRecord::open(&path).expect("reopen").1,
            Found::Idle { running: None },
            "opening a new record makes it idle"
        );
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), SIZE as u64);
        let mut entry = Entry::new(HookKind::Start, "start.sh --now", Duration::from_secs(30));
        record.in_flight(&entry).expect("write");
        entry.pgid = Some(4242);
        entry.leader_start = Some(987_654);
        record.in_flight(&entry).expect("rewrite");
        drop(record);
        let (mut record, found) = HookRecord::open(&path).expect("reopen");
        assert_eq!(found, Found::InFlight(entry.clone()));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), SIZE as u64);
        record.idle(Some(true)).expect("idle");
        assert_eq!(
            HookRecord::open(&path).expect("again").1,
            Found::Idle {
                running: Some(true)
            }
        );
        assert!(entry.token_entry().starts_with("KEEPSERVER_HOOK_TOKEN="));
        assert_eq!(entry.timeout_ms, 30_000);
    }

    #[test]
    fn a_running_state_from_another_boot_is_forgotten() {
        let this = serde_json::to_string(&idle(Some(true))).expect("json");
        assert_eq!(
            parse(this.as_bytes()),
            Found::Idle {
                running: Some(true)
            }
        );
        let other = r#"{"state":"idle","running":true,"boot":"another-boot"}"#;
        assert_eq!(parse(other.as_bytes()), Found::Idle { running: None });
    }

    #[test]
    fn garbage_is_reported_and_a_long_command_is_cut() {
        assert_eq!(parse(b""), Found::Nothing);
        assert_eq!(parse(b"   \n   "), Found::Nothing);
        assert!(matches!(
            parse(b"{\"state\":\"in-fli"),
            Found::Unreadable(_)
        ));
        let long = "x".repeat(3 * COMMAND_MAX);
        let entry = Entry::new(HookKind::Stop, &long, Duration::from_secs(1));
        assert_eq!(entry.command.len(), COMMAND_MAX);
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut record, _) = HookRecord::open(&dir.path().join("r")).expect("open");
        record.in_flight(&entry).expect("fits in a page");
    }

    #[test]
    fn the_boot_clock_moves_forward() {
        let a = boot_clock_ms();
        std::thread::sleep(Duration::from_millis(5));
        assert!(boot_clock_ms() >= a + 5);
    }
}
