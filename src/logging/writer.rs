//! The writing side of a log sink: each sink writes on a thread of its own, fed through a
//! bounded queue of [`QUEUE_LINES`] lines that the logging thread never waits on. The logging
//! thread is mostly the daemon's one runtime thread, which must go on watching the VIP and
//! running hooks while a sink takes seconds to accept a line (a stdout pipe nobody reads, a
//! stalled journald, a log file behind a disk that is flushing gigabytes): a line that does not
//! fit in the queue is lost and counted by the caller, never waited for.
//!
//! What goes through the queue: for keepserver's own sinks (console, Python file handlers) the
//! line already encoded on the logging thread, so its time stamp is the event's, not the write's;
//! for an appender of an inline log4rs config (which encodes and writes in one step) a copy of
//! the record, replayed to it on the sink's thread.
//!
//! The thread is started with the first line, not when the appender is built: a config is
//! translated before a daemon forks itself into the background, and threads do not survive a
//! fork. It ends once its appender is dropped (a reload) and the queue is written out.

use std::fmt;
use std::io::{self, Write as _};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use log::{Level, Record};
use log4rs::append::Append;

/// Lines a sink may be behind before new ones are lost.
pub(super) const QUEUE_LINES: usize = 1024;

/// How long [`Writer::flush`] waits for a sink to write out its queue (at exit): a sink that is
/// stuck must not keep the daemon from exiting.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// A sink that takes whole encoded lines.
pub(super) trait LineSink: Send + Sync + fmt::Debug + 'static {
    /// Writes one encoded record.
    fn write_line(&self, line: &[u8]) -> anyhow::Result<()>;
}

/// stdout or stderr, one `write` per line.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stream {
    Stdout,
    Stderr,
}

impl LineSink for Stream {
    fn write_line(&self, line: &[u8]) -> anyhow::Result<()> {
        match self {
            Stream::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line)?;
                out.flush()?;
            }
            Stream::Stderr => io::stderr().lock().write_all(line)?,
        }
        Ok(())
    }
}

/// What a sink's thread writes to.
#[derive(Debug)]
pub(super) enum Target {
    /// keepserver's own sinks: lines encoded by the caller.
    Lines(Box<dyn LineSink>),
    /// A log4rs appender: records replayed to it.
    Appender(Box<dyn Append>),
}

/// One queued thing for the sink's thread.
#[derive(Debug)]
pub(super) enum Item {
    /// An encoded line, for [`Target::Lines`], and when it was logged.
    Line(Vec<u8>, Instant),
    /// A copy of a record, for [`Target::Appender`], and when it was logged.
    Record(OwnedRecord, Instant),
    /// Acknowledge once everything queued before it is written.
    Flush(SyncSender<()>),
}

/// A record with everything an appender reads, owned.
#[derive(Debug)]
pub(super) struct OwnedRecord {
    level: Level,
    target: String,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    message: String,
}

impl OwnedRecord {
    /// A copy of `record`, its message formatted.
    pub(super) fn of(record: &Record) -> Self {
        OwnedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            module_path: record.module_path().map(str::to_owned),
            file: record.file().map(str::to_owned),
            line: record.line(),
            message: record.args().to_string(),
        }
    }

    fn replay(&self, appender: &dyn Append) -> anyhow::Result<()> {
        appender.append(
            &Record::builder()
                .level(self.level)
                .target(&self.target)
                .module_path(self.module_path.as_deref())
                .file(self.file.as_deref())
                .line(self.line)
                .args(format_args!("{}", self.message))
                .build(),
        )
    }
}

/// Why a line did not reach the sink's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The queue is full: the sink is [`QUEUE_LINES`] lines behind.
    Full,
    /// The sink's thread could not be started, or has ended.
    NoThread,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Full => write!(
                f,
                "the sink is {QUEUE_LINES} lines behind (it does not take lines as fast as they come)"
            ),
            Refused::NoThread => write!(f, "the sink's writer thread is not running"),
        }
    }
}

/// What the sink's thread reports after each write: the result and when the line was logged.
pub(super) type Report = Box<dyn Fn(anyhow::Result<()>, Instant) + Send + 'static>;

/// The queue of one sink and, once started, its thread.
pub(super) struct Writer {
    /// The target and the reporter, until the thread takes them.
    pending: Mutex<Option<(Target, Report)>>,
    queue: OnceLock<Option<SyncSender<Item>>>,
    /// The target takes encoded lines ([`Target::Lines`]).
    lines: bool,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.as_ref() {
            Some((Target::Lines(sink), _)) => sink.fmt(f),
            Some((Target::Appender(appender), _)) => appender.fmt(f),
            None => f.write_str("(writing on its own thread)"),
        }
    }
}

impl Writer {
    /// A writer to `target` whose thread hands every write's result to `report`.
    pub(super) fn new(target: Target, report: Report) -> Self {
        Writer {
            lines: matches!(target, Target::Lines(_)),
            pending: Mutex::new(Some((target, report))),
            queue: OnceLock::new(),
        }
    }

    /// Whether records must be encoded by the caller ([`Item::Line`]) rather than copied.
    pub(super) fn takes_lines(&self) -> bool {
        self.lines
    }

    /// Queues `item` without waiting.
    pub(super) fn send(&self, item: Item) -> Result<(), Refused> {
        let Some(queue) = self.queue() else {
            return Err(Refused::NoThread);
        };
        queue.try_send(item).map_err(|e| match e {
            TrySendError::Full(_) => Refused::Full,
            TrySendError::Disconnected(_) => Refused::NoThread,
        })
    }

    /// Waits (up to [`FLUSH_WAIT`]) until everything queued so far is written.
    pub(super) fn flush(&self) {
        let Some(Some(queue)) = self.queue.get() else {
            return;
        };
        let deadline = Instant::now() + FLUSH_WAIT;
        let (ack, acked) = mpsc::sync_channel(1);
        let mut item = Item::Flush(ack);
        loop {
            match queue.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let _ = acked.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }

    /// The queue, its thread started with the first call; `None` if it could not be.
    fn queue(&self) -> Option<&SyncSender<Item>> {
        self.queue
            .get_or_init(|| {
                let taken = self
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let (target, report) = taken?;
                let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
                std::thread::Builder::new()
                    .name("log-writer".into())
                    .spawn(move || write_out(&rx, &target, &report))
                    .ok()
                    .map(|_| tx)
            })
            .as_ref()
    }
}

/// The sink's thread: writes what comes until every sender is gone.
fn write_out(rx: &Receiver<Item>, target: &Target, report: &Report) {
    for item in rx {
        let (result, at) = match (item, target) {
            (Item::Flush(ack), _) => {
                if let Target::Appender(appender) = target {
                    appender.flush();
                }
                let _ = ack.send(());
                continue;
            }
            (Item::Line(line, at), Target::Lines(sink)) => (sink.write_line(&line), at),
            (Item::Record(record, at), Target::Appender(appender)) => {
                (record.replay(appender.as_ref()), at)
            }
            (Item::Line(_, at), Target::Appender(_)) | (Item::Record(_, at), Target::Lines(_)) => (
                Err(anyhow::anyhow!("a line of the wrong form reached the sink")),
                at,
            ),
        };
        report(result, at);
    }
}
