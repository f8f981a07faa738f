//! The `notify_fifo` reader: creates keepalived's FIFO when it is missing, reads it line by line
//! in order, and hands every state change on; bad lines are logged and skipped.
//!
//! The FIFO is opened read-write, not read-only: a read-only reader sees end-of-file whenever the
//! last writer closes, i.e. every time keepalived restarts, while a read-write one keeps a writer
//! (itself) and simply waits for the next keepalived. If the path is replaced underneath (removed,
//! or recreated by someone else) the reader notices within [`RECHECK`] and reopens the new one.
//! The FIFO is removed when the reader ends only if keepserver created it. What the reader is
//! doing is published as a [`FifoHealth`] ([`Fifo::health`]) for `status`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};
use nix::sys::stat::Mode;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::watch;

use super::{FifoLine, KeepalivedEvent, parse_fifo_line};
use crate::supervisor::components::show_duration;

/// Longest line accepted; keepalived's lines are well under 100 bytes.
pub const MAX_LINE: usize = 4096;
/// How often the path is checked to still be the FIFO that is open.
const RECHECK: Duration = Duration::from_secs(1);
/// Pause before reopening after a failure; doubled per failure in a row, up to [`REOPEN_MAX`].
const REOPEN_DELAY: Duration = Duration::from_millis(500);
/// Longest pause between attempts to open a FIFO that keeps failing.
const REOPEN_MAX: Duration = Duration::from_secs(30);

/// Why the FIFO could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    /// Something that is not a FIFO is in the way.
    #[error("keepalived-fifo {} exists and is not a FIFO; remove it or choose another path", path.display())]
    NotFifo {
        /// The configured path.
        path: PathBuf,
    },
    /// mkfifo failed.
    #[error("cannot create keepalived-fifo {}: {source}", path.display())]
    Create {
        /// The configured path.
        path: PathBuf,
        /// The error from mkfifo.
        source: nix::Error,
    },
    /// The FIFO could not be opened or inspected.
    #[error("cannot open keepalived-fifo {}: {source}", path.display())]
    Open {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A FIFO path made ready for reading; removes the FIFO on drop if it created it.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    created: bool,
    health: watch::Sender<FifoHealth>,
}

/// What the reader is doing, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FifoHealth {
    /// The FIFO is open and read.
    pub open: bool,
    /// State changes read.
    pub events: u64,
    /// Lines skipped (not a state change, malformed, too long).
    pub skipped: u64,
    /// The last state change read, and when.
    pub last_event: Option<(String, std::time::Instant)>,
    /// Why it could not be opened last, while it cannot.
    pub error: Option<String>,
}

impl Fifo {
    /// Makes sure a FIFO exists at `path`, creating it (mode 0600) when nothing is there.
    pub fn create(path: &Path) -> Result<Fifo, FifoError> {
        let mut fifo = Fifo {
            path: path.to_path_buf(),
            created: false,
            health: watch::Sender::new(FifoHealth::default()),
        };
        fifo.ensure()?;
        Ok(fifo)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the reader is doing, updated as it goes.
    pub fn health(&self) -> watch::Receiver<FifoHealth> {
        self.health.subscribe()
    }

    fn ensure(&mut self) -> Result<(), FifoError> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_fifo() => Ok(()),
            Ok(_) => Err(FifoError::NotFifo {
                path: self.path.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                nix::unistd::mkfifo(&self.path, Mode::from_bits_truncate(0o600)).map_err(
                    |source| FifoError::Create {
                        path: self.path.clone(),
                        source,
                    },
                )?;
                self.created = true;
                info!("keepalived-fifo created path={}", self.path.display());
                Ok(())
            }
            Err(source) => Err(FifoError::Open {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn open(&mut self) -> Result<(pipe::Receiver, (u64, u64)), FifoError> {
        self.ensure()?;
        let err = |source| FifoError::Open {
            path: self.path.clone(),
            source,
        };
        let receiver = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&self.path)
            .map_err(err)?;
        let meta = std::fs::metadata(&self.path).map_err(err)?;
        Ok((receiver, (meta.dev(), meta.ino())))
    }

    /// Whether the path still names the FIFO with identity `id`.
    fn still(&self, id: (u64, u64)) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == id)
    }

    /// Reads the FIFO until `deliver` returns false (the daemon is going away), reopening it
    /// whenever it fails or is replaced. Never returns an error: problems are logged.
    pub async fn run(mut self, mut deliver: impl FnMut(KeepalivedEvent) -> bool) {
        let mut buf = vec![0u8; MAX_LINE];
        let mut delay = REOPEN_DELAY;
        loop {
            let (mut receiver, id) = match self.open() {
                Ok(opened) => opened,
                Err(e) => {
                    self.health.send_modify(|h| {
                        h.open = false;
                        h.error = Some(e.to_string());
                    });
                    error!("{e}; retrying in {}", show_duration(delay));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(REOPEN_MAX);
                    continue;
                }
            };
            delay = REOPEN_DELAY;
            self.health.send_modify(|h| {
                h.open = true;
                h.error = None;
            });
            debug!("keepalived-fifo open path={}", self.path.display());
            let mut lines = Lines::default();
            let mut recheck = tokio::time::interval(RECHECK);
            loop {
                tokio::select! {
                    read = receiver.read(&mut buf) => match read {
                        Ok(0) => {
                            warn!("keepalived-fifo end of file path={}; reopening", self.path.display());
                            break;
                        }
                        Ok(n) => {
                            for line in lines.push(&buf[..n]) {
                                let event = self.accept(line);
                                self.health.send_modify(|h| match &event {
                                    Some(e) => {
                                        h.events += 1;
                                        h.last_event = Some((e.to_string(), std::time::Instant::now()));
                                    }
                                    None => h.skipped += 1,
                                });
                                if let Some(event) = event && !deliver(event) {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            warn!("keepalived-fifo read failed path={} error=\"{e}\"; reopening", self.path.display());
                            tokio::time::sleep(REOPEN_DELAY).await;
                            break;
                        }
                    },
                    _ = recheck.tick() => {
                        if !self.still(id) {
                            warn!("keepalived-fifo path={} was replaced or removed; reopening", self.path.display());
                            break;
                        }
                    }
                }
            }
            self.health.send_modify(|h| h.open = false);
        }
    }

    /// Logs a line that is not an event; returns the event otherwise.
    fn accept(&self, line: Result<String, Overlong>) -> Option<KeepalivedEvent> {
        let path = self.path.display();
        match line.map(|l| (parse_fifo_line(&l), l)) {
            Ok((Ok(FifoLine::Event(event)), _)) => Some(event),
            Ok((Ok(FifoLine::Other(text)), _)) => {
                info!(
                    "keepalived-fifo line skipped (not a state change) path={path} line={text:?}"
                );
                None
            }
            Ok((Err(e), text)) => {
                warn!("keepalived-fifo bad line skipped path={path} line={text:?} error=\"{e}\"");
                None
            }
            Err(Overlong) => {
                warn!("keepalived-fifo line longer than {MAX_LINE} bytes skipped path={path}");
                None
            }
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.created && std::fs::remove_file(&self.path).is_ok() {
            info!("keepalived-fifo removed path={}", self.path.display());
        }
    }
}

/// A line that grew past [`MAX_LINE`] without a newline; it is dropped up to its newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlong;

/// Splits a byte stream into lines, whatever the chunking; bounded memory.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
    /// Inside an overlong line: drop bytes until its newline.
    skipping: bool,
}

impl Lines {
    /// Feeds `bytes`; returns the lines they complete, in order (lossy UTF-8, `\r` trimmed).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<String, Overlong>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + head.len() > MAX_LINE {
                self.partial.clear();
                out.push(Err(Overlong));
            } else {
                self.partial.extend_from_slice(head);
                let line = String::from_utf8_lossy(&self.partial)
                    .trim_end_matches('\r')
                    .to_string();
                self.partial.clear();
                out.push(Ok(line));
            }
            rest = tail;
        }
        if !self.skipping {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.partial.clear();
                self.skipping = true;
                out.push(Err(Overlong));
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::KeepalivedState;

    #[test]
    fn lines_survive_any_chunking() {
        let text = b"INSTANCE \"VI_1\" MASTER 100\nINSTANCE \"VI_1\" BACKUP 100\r\n\nGROUP";
        for chunk in 1..text.len() {
            let mut lines = Lines::default();
            let got: Vec<_> = text.chunks(chunk).flat_map(|c| lines.push(c)).collect();
            assert_eq!(
                got,
                [
                    Ok("INSTANCE \"VI_1\" MASTER 100".to_string()),
                    Ok("INSTANCE \"VI_1\" BACKUP 100".to_string()),
                    Ok(String::new()),
                ],
                "chunk {chunk}"
            );
            assert_eq!(
                lines.push(b" \"G\" FAULT 1\n"),
                [Ok("GROUP \"G\" FAULT 1".into())]
            );
        }
    }

    #[test]
    fn overlong_lines_are_dropped_once_and_the_next_line_reads() {
        let mut lines = Lines::default();
        let long = vec![b'x'; MAX_LINE + 10];
        assert_eq!(lines.push(&long), [Err(Overlong)]);
        assert_eq!(lines.push(&long), Vec::new(), "still the same line");
        assert_eq!(
            lines.push(b"tail\nINSTANCE \"V\" STOP 1\n"),
            [Ok("INSTANCE \"V\" STOP 1".to_string())]
        );
        let mut lines = Lines::default();
        let mut exact = vec![b'y'; MAX_LINE + 1];
        exact.push(b'\n');
        assert_eq!(lines.push(&exact), [Err(Overlong)]);
        assert_eq!(lines.push(b"ok\n"), [Ok("ok".to_string())]);
    }

    #[tokio::test]
    async fn reads_events_in_order_skips_bad_lines_and_survives_writers_closing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.fifo");
        let fifo = Fifo::create(&path).unwrap();
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(fifo.run(move |e| tx.send(e).is_ok()));
        // Two writers one after the other, as keepalived before and after a restart.
        for batch in [
            "INSTANCE \"VI_1\" BACKUP 100\nrubbish\nINSTANCE \"VI_1\" MASTER 100\n",
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100\nINSTANCE \"VI_1\" STOP 100\n",
        ] {
            let p = path.clone();
            let text = batch.to_string();
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                w.write_all(text.as_bytes()).unwrap();
            })
            .await
            .unwrap();
        }
        let mut states = Vec::new();
        while states.len() < 3 {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("an event within 5 s")
                .unwrap();
            states.push(e.state);
        }
        use KeepalivedState::*;
        assert_eq!(states, [Backup, Master, Stop]);
        task.abort();
        let _ = task.await;
        assert!(!path.exists(), "a FIFO keepserver created is removed");
    }

    #[test]
    fn an_existing_fifo_is_kept_and_a_regular_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("theirs.fifo");
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        drop(Fifo::create(&path).unwrap());
        assert!(path.exists(), "a FIFO keepserver did not create stays");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = Fifo::create(&file).unwrap_err();
        assert!(err.to_string().contains("is not a FIFO"), "{err}");
    }
}
