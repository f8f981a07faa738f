//! Process management: the locked pidfile (held by the running instance in both foreground and
//! daemon mode), daemonizing with a readiness pipe so `start` reports the daemon's real outcome,
//! and finding and signalling a running instance for stop, reload and status.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use daemonize::{Daemonize, Outcome};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Why the pidfile or daemonizing failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another instance holds the pidfile lock.
    #[error("already running (pid {pid}), pidfile {}", path.display())]
    AlreadyRunning {
        /// The running instance's pid, as written in the pidfile.
        pid: i32,
        /// The pidfile.
        path: PathBuf,
    },
    /// The pidfile could not be opened, locked, read or written.
    #[error("pidfile {}: {source}", path.display())]
    Pidfile {
        /// The pidfile.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon's stdout/stderr log could not be opened.
    #[error("cannot open daemon log {}: {source}", path.display())]
    DaemonLog {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Forking, changing directory or redirecting stdio failed.
    #[error("cannot daemonize: {0}")]
    Daemonize(String),
    /// The daemon exited before it was ready; its own message follows.
    #[error("the daemon failed to start: {0}")]
    NotReady(String),
}

/// The locked pidfile of the running instance. The lock lives as long as the process keeps the
/// file open (a daemonized child shares the parent's lock), and is not inherited by hooks.
#[derive(Debug)]
pub struct Pidfile {
    file: File,
    path: PathBuf,
}

/// What was in the pidfile before we took it, when it named a process that did not hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakenOver {
    /// The pid the file named.
    pub pid: i32,
    /// Whether that pid is (still, or again) a live process.
    pub alive: bool,
}

/// How many times a held pidfile lock is tried again before it counts as another instance's.
const LOCK_TRIES: u32 = 20;
/// The pause between those tries (20 × 10 ms: a `status` probe holds it for microseconds).
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

impl Pidfile {
    /// Opens and locks the pidfile; fails with [`DaemonError::AlreadyRunning`] when another
    /// instance holds it. A pid left by a dead instance is returned so it can be warned about.
    pub fn acquire(path: &Path) -> Result<(Self, Option<TakenOver>), DaemonError> {
        let err = |source| DaemonError::Pidfile {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                // `status`, `stop` and `notify` look for the running instance with a shared
                // lock held for an instant (see [`running_pid`]): only a lock that stays is one.
                Err(TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(DaemonError::AlreadyRunning {
                        pid: read_pid(&mut file).unwrap_or(0),
                        path: path.to_path_buf(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(err(e)),
            }
        }
        let taken_over = read_pid(&mut file).map(|pid| TakenOver {
            pid,
            alive: process_alive(pid),
        });
        Ok((
            Pidfile {
                file,
                path: path.to_path_buf(),
            },
            taken_over,
        ))
    }

    /// Writes this process's pid into the locked file.
    pub fn write_pid(&mut self, pid: u32) -> Result<(), DaemonError> {
        let path = self.path.clone();
        let mut write = || -> std::io::Result<()> {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            writeln!(self.file, "{pid}")?;
            self.file.sync_all()
        };
        write().map_err(|source| DaemonError::Pidfile { path, source })
    }

    /// Removes the pidfile, still holding the lock so no one can mistake it for stale meanwhile.
    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove pidfile {}: {e}", self.path.display());
        }
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|p| *p > 0)
}

/// Whether a process with this pid exists (a zombie counts as gone: a foreground instance that
/// has exited but is not yet reaped by a slow parent).
pub fn process_alive(pid: i32) -> bool {
    crate::proc::is_alive(pid)
}

/// The pid of the instance holding `path`'s lock, or `None` when no instance runs.
pub fn running_pid(path: &Path) -> Result<Option<i32>, DaemonError> {
    let err = |source| DaemonError::Pidfile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(read_pid(&mut file)),
        Err(TryLockError::Error(e)) => Err(err(e)),
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: i32, signal: Signal) -> Result<(), nix::Error> {
    kill(Pid::from_raw(pid), signal)
}

/// The daemon's half of the readiness pipe: it says "ready" or why it failed.
#[derive(Debug)]
pub struct Readiness(Option<std::io::PipeWriter>);

impl Readiness {
    /// For a foreground instance: nobody is waiting.
    pub fn none() -> Self {
        Readiness(None)
    }

    /// Tells the waiting parent that the daemon runs.
    pub fn ready(&mut self) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(b"ready\n");
        }
    }

    /// Tells the waiting parent why the daemon could not start.
    pub fn failed(&mut self, why: &str) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(why.as_bytes());
        }
    }
}

/// Which side of the fork we are on.
pub enum Forked {
    /// The original process: it should exit with this result once the daemon has answered.
    Parent(Result<(), DaemonError>),
    /// The daemon, with the pipe to report readiness on.
    Daemon(Readiness),
}

/// Detaches into the background: chdir to `workspace`, umask 022, stdout and stderr appended
/// to `log`. The parent waits for the daemon to report ready (or its error).
pub fn daemonize(workspace: &Path, log: &Path) -> Result<Forked, DaemonError> {
    let open_log = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| DaemonError::DaemonLog {
                path: log.to_path_buf(),
                source,
            })
    };
    let (mut reader, writer) =
        std::io::pipe().map_err(|e| DaemonError::Daemonize(format!("pipe: {e}")))?;
    let outcome = Daemonize::new()
        .working_directory(workspace)
        .umask(0o022)
        .stdout(open_log()?)
        .stderr(open_log()?)
        .execute();
    match outcome {
        Outcome::Parent(Ok(_)) => {
            drop(writer);
            let mut answer = String::new();
            let _ = reader.read_to_string(&mut answer);
            Ok(Forked::Parent(if answer == "ready\n" {
                Ok(())
            } else if answer.is_empty() {
                Err(DaemonError::NotReady(format!(
                    "it exited without a word; see {}",
                    log.display()
                )))
            } else {
                Err(DaemonError::NotReady(answer))
            }))
        }
        Outcome::Parent(Err(e)) => Err(DaemonError::Daemonize(e.to_string())),
        Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Forked::Daemon(Readiness(Some(writer))))
        }
        Outcome::Child(Err(e)) => {
            let mut r = Readiness(Some(writer));
            r.failed(&format!("cannot daemonize: {e}"));
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_reports_the_running_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pid");
        let (mut first, taken) = Pidfile::acquire(&path).unwrap();
        assert_eq!(taken, None);
        first.write_pid(4242).unwrap();
        match Pidfile::acquire(&path) {
            Err(DaemonError::AlreadyRunning { pid, .. }) => assert_eq!(pid, 4242),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        assert_eq!(running_pid(&path).unwrap(), Some(4242));
        first.remove();
        assert_eq!(running_pid(&path).unwrap(), None);
    }

    #[test]
    fn a_status_probe_holding_the_lock_for_an_instant_does_not_stop_a_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pid");
        std::fs::write(&path, "").unwrap();
        // What `running_pid` does, held for 50 ms while the start tries to lock.
        let probe = File::open(&path).unwrap();
        probe.try_lock_shared().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(probe);
        });
        let (pidfile, taken) = Pidfile::acquire(&path).expect("the start gets the lock");
        releaser.join().unwrap();
        assert_eq!(taken, None);
        pidfile.remove();
    }

    #[test]
    fn stale_pidfile_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.pid");
        // A pid far above pid_max's default cannot be a live process.
        std::fs::write(&path, "4194300\n").unwrap();
        assert_eq!(
            running_pid(&path).unwrap(),
            None,
            "unlocked file is not running"
        );
        let (_pidfile, taken) = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            taken,
            Some(TakenOver {
                pid: 4_194_300,
                alive: false
            })
        );
    }
}
