//! The sink of Python's file handlers (`FileHandler`, `RotatingFileHandler`,
//! `TimedRotatingFileHandler`): [`FileSink`] appends each encoded record whole or not at all,
//! and rolls the file over when its trigger says so.
//!
//! Written here rather than using log4rs's `FileAppender` and `RollingFileAppender` because
//! both write through a `BufWriter` that keeps whatever a failed write left unwritten: on a full
//! disk the pieces of the lost records stay buffered and are written in front of the first
//! record once space returns (`line 051 line 052 line 060 ...`), and a record that only partly
//! fit stays cut in half. [`FileSink`] takes a record encoded in memory, appends it with one
//! `write(2)` on an `O_APPEND` descriptor, and when only part of it reached the disk cuts the
//! file back to where the record began, so the file holds whole lines and the first line after
//! a failure is clean. Rolling over uses log4rs's rollers; when is [`super::rollover`]'s call.

use std::{
    fs::{self, File, OpenOptions},
    io,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use anyhow::Context as _;
use chrono::Local;
use log4rs::append::rolling_file::policy::compound::roll::Roll;

use super::{rollover::Trigger, writer::LineSink};

/// When and how a rolling file rolls over.
#[derive(Debug)]
pub(super) struct Rollover {
    /// When.
    pub trigger: Trigger,
    /// Moves the full file away (renames into a window of backups, or deletes it).
    pub roller: Box<dyn Roll>,
}

/// A log file that records are appended to whole.
#[derive(Debug)]
pub(super) struct FileSink {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The open file; `None` after a roll-over or a reopen failed, reopened at the next record.
    writer: Option<Writer<File>>,
    rollover: Option<Rollover>,
}

impl FileSink {
    /// Opens (and creates, with its directory) the log file at `path`, truncating it unless
    /// `append`.
    pub(super) fn open(path: &Path, append: bool, rollover: Option<Rollover>) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        if !append {
            File::create(path)?;
        }
        Ok(FileSink {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                writer: Some(Writer::open(path)?),
                rollover,
            }),
        })
    }

    /// The writer for a record of `record` bytes: the open file (reopened if a roll-over or a
    /// reopen failed before), rolled over first if the trigger fires.
    fn writer_for<'s>(
        &self,
        state: &'s mut State,
        record: usize,
    ) -> anyhow::Result<&'s mut Writer<File>> {
        let State { writer, rollover } = state;
        let mut open = match writer.take() {
            Some(open) => open,
            None => Writer::open(&self.path)?,
        };
        let record = u64::try_from(record).unwrap_or(u64::MAX);
        if let Some(rollover) = rollover
            && rollover
                .trigger
                .fires(open.len, record, || Local::now().naive_local())
        {
            // The file is closed before it is moved.
            drop(open);
            rollover
                .roller
                .roll(&self.path)
                .context("cannot roll the log file over")?;
            open = Writer::open(&self.path)?;
        }
        Ok(writer.insert(open))
    }
}

impl LineSink for FileSink {
    fn write_line(&self, line: &[u8]) -> anyhow::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.writer_for(&mut state, line.len())?.append(line)?;
        Ok(())
    }
}

/// Where a [`Writer`] appends; a trait so a cut-short write can be tested without a full disk.
trait Tail {
    /// Appends some of `bytes`, as `write(2)` does.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// Cuts the last `n` bytes off.
    fn cut(&mut self, n: u64) -> io::Result<()>;
}

impl Tail for File {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        io::Write::write(self, bytes)
    }

    fn cut(&mut self, n: u64) -> io::Result<()> {
        // The length now, not the one counted: another process may have cut the file meanwhile
        // (copytruncate), and O_APPEND put this record at the end whatever the length.
        let end = self.metadata()?.len();
        self.set_len(end.saturating_sub(n))
    }
}

/// Appends whole records to a [`Tail`].
#[derive(Debug)]
struct Writer<T> {
    tail: T,
    /// The length at opening plus what was appended since: what a size trigger sees.
    len: u64,
    /// The tail ends in a cut-short record that could not be cut off: the next record starts
    /// with a newline so that at least it is whole.
    ragged: bool,
}

impl Writer<File> {
    /// Opens `path` for appending, creating it.
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Writer {
            tail: file,
            len,
            ragged: false,
        })
    }
}

impl<T: Tail> Writer<T> {
    /// Appends `record` whole; when it fails part way, what got written is cut back off.
    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        let joined;
        let bytes = if self.ragged {
            joined = [b"\n", record].concat();
            &joined
        } else {
            record
        };
        let mut done = 0;
        while done < bytes.len() {
            match self.tail.write(&bytes[done..]) {
                Ok(0) => return Err(self.undo(&bytes[..done], io::ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.undo(&bytes[..done], e)),
            }
        }
        self.len += bytes.len() as u64;
        self.ragged = false;
        Ok(())
    }

    /// Cuts `written`, the start of a record whose rest could not be written, back off; passes
    /// on `error`, the reason.
    fn undo(&mut self, written: &[u8], error: io::Error) -> io::Error {
        let Some(&last) = written.last() else {
            return error;
        };
        if self.tail.cut(written.len() as u64).is_err() {
            self.len += written.len() as u64;
            self.ragged = last != b'\n';
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use log4rs::append::rolling_file::policy::compound::roll::fixed_window::FixedWindowRoller;

    use super::*;

    /// A disk with `room` bytes left, whose cuts fail when `cut_fails`.
    #[derive(Debug, Default)]
    struct Disk {
        data: Vec<u8>,
        room: usize,
        cut_fails: bool,
    }

    impl Tail for Disk {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = bytes.len().min(self.room);
            self.data.extend_from_slice(&bytes[..n]);
            self.room -= n;
            Ok(n)
        }

        fn cut(&mut self, n: u64) -> io::Result<()> {
            if self.cut_fails {
                return Err(io::Error::from_raw_os_error(5));
            }
            let n = usize::try_from(n).unwrap();
            self.data.truncate(self.data.len() - n);
            self.room += n;
            Ok(())
        }
    }

    fn writer(room: usize, cut_fails: bool) -> Writer<Disk> {
        let tail = Disk {
            room,
            cut_fails,
            ..Disk::default()
        };
        Writer {
            tail,
            len: 0,
            ragged: false,
        }
    }

    fn text(w: &Writer<Disk>) -> &str {
        std::str::from_utf8(&w.tail.data).unwrap()
    }

    #[test]
    fn a_record_cut_short_by_a_full_disk_is_cut_back_off() {
        let mut w = writer(10, false);
        w.append(b"one\n").unwrap();
        let error = w.append(b"second\n").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28));
        assert_eq!(text(&w), "one\n");
        assert!(w.append(b"third line\n").is_err());
        w.tail.room += 100;
        w.append(b"fourth\n").unwrap();
        assert_eq!(text(&w), "one\nfourth\n");
        assert_eq!(w.len, 11);
    }

    #[test]
    fn a_half_line_that_cannot_be_cut_is_ended_before_the_next_record() {
        let mut w = writer(6, true);
        w.append(b"one\n").unwrap();
        assert!(w.append(b"second\n").is_err());
        assert_eq!(text(&w), "one\nse");
        assert!(w.ragged);
        w.tail.room += 100;
        w.append(b"third\n").unwrap();
        assert_eq!(text(&w), "one\nse\nthird\n");
        assert!(!w.ragged);
        assert_eq!(w.len, 13);
    }

    #[test]
    fn a_write_that_fails_at_a_line_end_leaves_no_half_line() {
        let mut w = writer(4, true);
        w.ragged = true;
        assert!(w.append(b"one\n").is_err());
        assert_eq!(text(&w), "\none");
        assert!(w.ragged, "the file ends in `one`");
        let mut w = writer(4, true);
        w.append(b"one\n").unwrap();
        assert!(w.append(b"two\n").is_err());
        assert!(!w.ragged, "nothing of `two` reached the disk");
    }

    fn log(sink: &FileSink, message: &str) {
        sink.write_line(format!("{message}\n").as_bytes()).unwrap();
    }

    #[test]
    fn files_append_or_truncate_and_roll_over_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/k.log");
        drop(FileSink::open(&path, true, None).unwrap());
        fs::write(&path, "old\n").unwrap();
        log(&FileSink::open(&path, true, None).unwrap(), "kept");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\nkept\n");
        log(&FileSink::open(&path, false, None).unwrap(), "fresh");
        assert_eq!(fs::read_to_string(&path).unwrap(), "fresh\n");

        let pattern = format!("{}.{{}}", path.display());
        let rollover = Rollover {
            trigger: Trigger::Size(12),
            roller: Box::new(
                FixedWindowRoller::builder()
                    .base(1)
                    .build(&pattern, 2)
                    .unwrap(),
            ),
        };
        let sink = FileSink::open(&path, true, Some(rollover)).unwrap();
        for message in ["aaaa", "bbbb", "cccc", "dddd"] {
            log(&sink, message);
        }
        let read = |suffix: &str| fs::read_to_string(format!("{}{suffix}", path.display()));
        assert_eq!(read("").unwrap(), "dddd\n");
        assert_eq!(read(".1").unwrap(), "bbbb\ncccc\n");
        assert_eq!(read(".2").unwrap(), "fresh\naaaa\n");
    }
}
