//! Watching every log sink: [`Guarded`] wraps each appender the translation builds, so a sink
//! that fails (ENOSPC or EIO on a log file, a closed stdout) costs only the lines it loses and
//! is never silent. It counts the lost lines per sink, says so in one line on stderr when the
//! sink starts failing and in one when it writes again, and never hands the error to log4rs,
//! whose handler would print one line per lost line (to a stderr that may be the failing sink).
//! The counts live in a [`Registry`] that outlives reloads, for `status`.
//!
//! A sink that blocks (a stdout pipe nobody reads, a disk that takes seconds to take a write)
//! fails the same way: [`Guarded`] hands each line to the sink's own thread ([`super::writer`])
//! and never waits for it, so the daemon's runtime thread keeps acting; the lines that do not
//! fit in the sink's queue are the ones lost.
//!
//! A sink counts as writing again only once it has written for [`RECOVERED_AFTER`] without a
//! failure: on a full disk a short line still fits in what is left of the file's last block
//! after a long one did not, and that is no reason to say twice more that lines are lost.

use std::{
    fmt,
    io::Write as _,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use log::Record;
use log4rs::{
    append::Append,
    encode::{Encode, writer::simple::SimpleWriter},
};
use serde::{Deserialize, Serialize};

use super::writer::{Item, LineSink, OwnedRecord, Report, Target, Writer};

/// How long a failing sink must write without a failure to count as writing again.
const RECOVERED_AFTER: Duration = Duration::from_secs(3);

/// What a log sink writes to, as notices and `status` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A log file.
    File(PathBuf),
    /// `stdout` or `stderr`.
    Stream(&'static str),
    /// Another appender of a log4rs config, by name.
    Appender(String),
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::File(path) => write!(f, "file {}", path.display()),
            Sink::Stream(name) => write!(f, "stream {name}"),
            Sink::Appender(name) => write!(f, "appender `{name}`"),
        }
    }
}

/// One sink's health, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkReport {
    /// The sink: `file PATH`, `stream stderr` or `appender `NAME``.
    pub sink: String,
    /// Lines this sink could not write since keepserver started.
    pub lines_lost: u64,
    /// While the sink is failing, its latest error; `None` once it has written again.
    pub failing: Option<String>,
}

/// Whether a sink writes, and what it lost.
#[derive(Debug, Default)]
struct Health {
    /// Lines lost since keepserver started.
    lost: u64,
    failing: Option<Failing>,
}

/// A failure in progress.
#[derive(Debug)]
struct Failing {
    /// The latest error.
    error: String,
    /// Lines lost since the failure began.
    lost: u64,
    /// When the latest line was lost.
    last: Instant,
}

impl Health {
    /// Notes a line lost to `error` at `now`; the notice to give when this begins a failure.
    fn lost(&mut self, error: String, now: Instant) -> Option<String> {
        self.lost += 1;
        if let Some(failing) = &mut self.failing {
            *failing = Failing {
                error,
                lost: failing.lost + 1,
                last: now,
            };
            return None;
        }
        let notice = format!("{error}; log lines are being lost");
        self.failing = Some(Failing {
            error,
            lost: 1,
            last: now,
        });
        Some(notice)
    }

    /// Notes a line written at `now`; the notice to give when this ends a failure.
    fn wrote(&mut self, now: Instant) -> Option<String> {
        let failing = self.failing.as_ref()?;
        if now.saturating_duration_since(failing.last) < RECOVERED_AFTER {
            return None;
        }
        let lost = failing.lost;
        self.failing = None;
        let plural = if lost == 1 { "" } else { "s" };
        Some(format!("writing again after {lost} lost line{plural}"))
    }
}

/// The record of one sink, shared by every appender that writes to it, also across reloads.
#[derive(Debug)]
struct SinkRecord {
    sink: Sink,
    /// `sink` as text: what records are found by.
    name: String,
    health: Mutex<Health>,
}

/// The sinks in use and the lines lost in all of them.
#[derive(Debug)]
pub struct Registry {
    /// Live sinks in the order they first appeared; a sink no appender writes to any more drops
    /// out (its lost lines stay in `lost`).
    sinks: Mutex<Vec<Weak<SinkRecord>>>,
    lost: AtomicU64,
    /// Where notices go: stderr, except in tests.
    notice: fn(&str),
}

/// The registry of the installed logger.
pub(super) static REGISTRY: Registry = Registry::new(to_stderr);

/// Writes a notice on stderr, ignoring failure: stderr may be the failing sink, and nothing
/// here logs, so a failing stderr cannot make notices loop.
fn to_stderr(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

impl Registry {
    /// An empty registry that gives its notices to `notice`.
    pub(super) const fn new(notice: fn(&str)) -> Self {
        Registry {
            sinks: Mutex::new(Vec::new()),
            lost: AtomicU64::new(0),
            notice,
        }
    }

    /// Lines lost in all sinks since keepserver started.
    pub fn lost_lines(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Every sink in use, in the order they first appeared.
    pub fn sinks(&self) -> Vec<SinkReport> {
        self.live()
            .iter()
            .filter_map(Weak::upgrade)
            .map(|record| {
                let health = lock(&record.health);
                SinkReport {
                    sink: record.name.clone(),
                    lines_lost: health.lost,
                    failing: health.failing.as_ref().map(|f| f.error.clone()),
                }
            })
            .collect()
    }

    /// The record of `sink`: the live one if another appender writes there, else a new one.
    fn record(&self, sink: Sink) -> Arc<SinkRecord> {
        let name = sink.to_string();
        let mut sinks = self.live();
        if let Some(record) = sinks
            .iter()
            .filter_map(Weak::upgrade)
            .find(|record| record.name == name)
        {
            return record;
        }
        let record = Arc::new(SinkRecord {
            sink,
            name,
            health: Mutex::new(Health::default()),
        });
        sinks.push(Arc::downgrade(&record));
        record
    }

    /// The sink list, without the sinks no appender writes to any more.
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<Weak<SinkRecord>>> {
        let mut sinks = lock(&self.sinks);
        sinks.retain(|record| record.strong_count() > 0);
        sinks
    }
}

/// Locks a mutex; nothing here panics while holding one, and a poisoned count is still a count.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An appender whose failures are counted and reported rather than returned, and that never
/// waits for its sink: lines are handed to the sink's own thread ([`super::writer`]).
pub(super) struct Guarded {
    record: Arc<SinkRecord>,
    registry: &'static Registry,
    /// Encodes records on the logging thread, for a sink that takes lines.
    encoder: Option<Box<dyn Encode>>,
    writer: Writer,
}

impl Guarded {
    /// Wraps log4rs's `appender`, which writes to `sink`; records are replayed to it on the
    /// sink's thread. Counts in the installed logger's registry.
    pub(super) fn new(sink: Sink, appender: Box<dyn Append>) -> Self {
        Self::in_registry(&REGISTRY, sink, None, Target::Appender(appender))
    }

    /// A sink of keepserver's own that takes lines encoded by `encoder` on the logging thread.
    pub(super) fn lines(sink: Sink, encoder: Box<dyn Encode>, out: Box<dyn LineSink>) -> Self {
        Self::in_registry(&REGISTRY, sink, Some(encoder), Target::Lines(out))
    }

    /// Wraps `target`, counting in `registry`.
    fn in_registry(
        registry: &'static Registry,
        sink: Sink,
        encoder: Option<Box<dyn Encode>>,
        target: Target,
    ) -> Self {
        let record = registry.record(sink);
        // Weak: a sink's thread that is still writing out its queue after a reload does not
        // keep the sink listed.
        let shared = Arc::downgrade(&record);
        let report: Report = Box::new(move |result, at| {
            if let Some(record) = shared.upgrade() {
                account(registry, &record, result, at);
            }
        });
        Guarded {
            record,
            registry,
            encoder,
            writer: Writer::new(target, report),
        }
    }

    /// Hands `record`, logged at `now`, to the sink's thread; counts it lost if it cannot.
    fn append_at(&self, record: &Record, now: Instant) {
        let item = match &self.encoder {
            Some(encoder) if self.writer.takes_lines() => {
                let mut line = SimpleWriter(Vec::new());
                if let Err(e) = encoder.encode(&mut line, record) {
                    self.lost_here(format!("{e:#}"), now);
                    return;
                }
                Item::Line(line.0, now)
            }
            _ => Item::Record(OwnedRecord::of(record), now),
        };
        if let Err(refused) = self.writer.send(item) {
            self.lost_here(refused.to_string(), now);
        }
    }

    /// Counts a line lost on the logging thread; a notice it gives is written by a thread of its
    /// own, since stderr may be the sink that does not take lines.
    fn lost_here(&self, error: String, now: Instant) {
        self.registry.lost.fetch_add(1, Ordering::Relaxed);
        let notice = lock(&self.record.health).lost(error, now);
        if let Some(notice) = notice {
            let text = format!("keepserver: log {}: {notice}", self.record.sink);
            let give = self.registry.notice;
            let _ = std::thread::Builder::new()
                .name("log-notice".into())
                .spawn(move || give(&text));
        }
    }
}

/// Counts how a write of a line logged `at` went, and tells when the sink starts or stops
/// failing.
fn account(registry: &Registry, record: &SinkRecord, result: anyhow::Result<()>, at: Instant) {
    let notice = {
        let mut health = lock(&record.health);
        match result {
            Ok(()) => health.wrote(at),
            Err(error) => {
                registry.lost.fetch_add(1, Ordering::Relaxed);
                health.lost(format!("{error:#}"), at)
            }
        }
    };
    if let Some(notice) = notice {
        (registry.notice)(&format!("keepserver: log {}: {notice}", record.sink));
    }
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("sink", &self.record.sink)
            .field("inner", &self.writer)
            .finish_non_exhaustive()
    }
}

impl Append for Guarded {
    fn append(&self, record: &Record) -> anyhow::Result<()> {
        self.append_at(record, Instant::now());
        Ok(())
    }

    /// Waits (briefly) until the sink's thread has written what was logged so far.
    fn flush(&self) {
        self.writer.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, io, sync::mpsc};

    use super::*;
    use crate::logging::writer::QUEUE_LINES;

    /// The notices given, by every test's registry (they come from the sinks' threads); each
    /// test takes those about its own sinks.
    static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn capture(line: &str) {
        lock(&NOTICES).push(line.to_owned());
    }

    /// Takes the notices that name `sink`.
    fn notices(sink: &str) -> Vec<String> {
        let mut all = lock(&NOTICES);
        let (mine, rest) = all.drain(..).partition(|n: &String| n.contains(sink));
        *all = rest;
        mine
    }

    /// A registry of its own for one test.
    fn registry() -> &'static Registry {
        Box::leak(Box::new(Registry::new(capture)))
    }

    /// A writer that succeeds or fails as scripted (`true` writes), then succeeds.
    #[derive(Debug)]
    struct Scripted(Mutex<VecDeque<bool>>);

    impl Scripted {
        fn boxed(script: &[bool]) -> Box<dyn Append> {
            Box::new(Scripted(Mutex::new(script.iter().copied().collect())))
        }
    }

    impl Append for Scripted {
        fn append(&self, _: &Record) -> anyhow::Result<()> {
            if self.0.lock().unwrap().pop_front().unwrap_or(true) {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(28).into())
            }
        }

        fn flush(&self) {}
    }

    /// An appender for `sink` that writes as `script` says.
    fn scripted(registry: &'static Registry, sink: Sink, script: &[bool]) -> Guarded {
        let target = Target::Appender(Scripted::boxed(script));
        Guarded::in_registry(registry, sink, None, target)
    }

    /// Logs `times` lines through `appender` at `now`, and waits until they are written.
    fn log(appender: &Guarded, times: usize, now: Instant) {
        for _ in 0..times {
            appender.append_at(&Record::builder().args(format_args!("a line")).build(), now);
        }
        appender.flush();
    }

    const ENOSPC: &str = "No space left on device (os error 28)";

    #[test]
    fn a_failure_is_reported_once_counted_and_its_end_reported_with_the_count() {
        let registry = registry();
        let sink = Sink::File("/var/log/k.log".into());
        let script = [true, false, false, false, true, false, true, false, true];
        let appender = scripted(registry, sink, &script);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let record = Record::builder().args(format_args!("a line")).build();
        assert!(
            appender.append(&record).is_ok(),
            "log4rs never sees an error"
        );
        appender.flush();
        let notices = || notices("/var/log/k.log");
        assert!(notices().is_empty());

        log(&appender, 3, at(1000));
        let failing =
            format!("keepserver: log file /var/log/k.log: {ENOSPC}; log lines are being lost");
        assert_eq!(notices(), std::slice::from_ref(&failing));
        assert_eq!(registry.lost_lines(), 3);
        let report = SinkReport {
            sink: "file /var/log/k.log".to_owned(),
            lines_lost: 3,
            failing: Some(ENOSPC.to_owned()),
        };
        assert_eq!(registry.sinks(), [report]);

        // A short line fits where a long one did not: not yet writing again.
        log(&appender, 2, at(2000));
        assert!(notices().is_empty());
        assert_eq!(registry.sinks()[0].failing.as_deref(), Some(ENOSPC));

        log(&appender, 1, at(5000));
        assert_eq!(
            notices(),
            ["keepserver: log file /var/log/k.log: writing again after 4 lost lines"]
        );
        log(&appender, 1, at(6000));
        log(&appender, 1, at(9000));
        assert_eq!(
            notices(),
            [
                failing,
                "keepserver: log file /var/log/k.log: writing again after 1 lost line".to_owned(),
            ]
        );
        assert_eq!(registry.lost_lines(), 5);
        let [report] = &registry.sinks()[..] else {
            panic!("{:?}", registry.sinks())
        };
        assert_eq!((report.lines_lost, report.failing.as_ref()), (5, None));
    }

    #[test]
    fn appenders_of_one_sink_share_its_record_across_a_reload() {
        let registry = registry();
        let stderr = || Sink::Stream("stderr");
        let old = scripted(registry, stderr(), &[false, false]);
        let other = scripted(registry, Sink::Appender("net".into()), &[]);
        let t0 = Instant::now();
        log(&old, 2, t0);
        let notices = || notices("log stream stderr");
        assert_eq!(notices().len(), 1);

        // A reload builds the new appender before dropping the old one.
        let new = scripted(registry, stderr(), &[]);
        drop(old);
        log(&new, 1, t0 + RECOVERED_AFTER);
        assert_eq!(
            notices(),
            ["keepserver: log stream stderr: writing again after 2 lost lines"]
        );
        let names: Vec<String> = registry.sinks().into_iter().map(|s| s.sink).collect();
        assert_eq!(names, ["stream stderr", "appender `net`"]);

        drop((new, other));
        assert!(registry.sinks().is_empty());
        assert_eq!(registry.lost_lines(), 2, "the total outlives the sinks");
    }

    /// A sink that blocks in its first write until told to go on.
    #[derive(Debug)]
    struct Blocked {
        entered: Mutex<mpsc::Sender<()>>,
        go: Mutex<mpsc::Receiver<()>>,
    }

    impl LineSink for Blocked {
        fn write_line(&self, _: &[u8]) -> anyhow::Result<()> {
            let _ = lock(&self.entered).send(());
            let _ = lock(&self.go).recv();
            Ok(())
        }
    }

    #[test]
    fn a_sink_that_blocks_costs_lines_never_the_callers_time() {
        let registry = registry();
        let (entered_tx, entered) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        let blocked = Blocked {
            entered: Mutex::new(entered_tx),
            go: Mutex::new(go_rx),
        };
        let encoder = Box::new(log4rs::encode::pattern::PatternEncoder::new("{m}{n}"));
        let appender = Guarded::in_registry(
            registry,
            Sink::File("/blocked.log".into()),
            Some(encoder),
            Target::Lines(Box::new(blocked)),
        );
        let t0 = Instant::now();
        let line = || Record::builder().args(format_args!("a line")).build();
        appender.append_at(&line(), t0);
        entered
            .recv()
            .expect("the sink's thread takes the first line");

        // The thread is stuck in the first write: the queue fills, then lines are lost, and
        // every call returns at once.
        for _ in 0..QUEUE_LINES + 5 {
            appender.append_at(&line(), t0);
        }
        assert_eq!(registry.lost_lines(), 5);
        let [report] = &registry.sinks()[..] else {
            panic!("{:?}", registry.sinks())
        };
        let behind = format!("the sink is {QUEUE_LINES} lines behind");
        assert!(
            report
                .failing
                .as_ref()
                .is_some_and(|f| f.starts_with(&behind)),
            "{report:?}"
        );

        // Unblocked, it writes the queue out and, with time, counts as writing again.
        for _ in 0..=QUEUE_LINES {
            go.send(()).expect("go");
        }
        drop(go);
        appender.flush();
        assert_eq!(registry.sinks()[0].lines_lost, 5);
        appender.append_at(&line(), t0 + RECOVERED_AFTER);
        appender.flush();
        assert_eq!(registry.sinks()[0].failing, None);
        assert_eq!(registry.lost_lines(), 5);
        // The first notice comes from a thread of its own.
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 2 && Instant::now() < deadline {
            seen.extend(notices("/blocked.log"));
            std::thread::sleep(Duration::from_millis(5));
        }
        let lost = format!("keepserver: log file /blocked.log: {behind}");
        assert!(seen.iter().any(|n| n.starts_with(&lost)), "{seen:?}");
        let again = "keepserver: log file /blocked.log: writing again after 5 lost lines";
        assert!(seen.iter().any(|n| n == again), "{seen:?}");
        assert_eq!(seen.len(), 2, "{seen:?}");
    }
}
