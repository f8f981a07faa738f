//! Python handler classes: which ones exist, their constructor parameters
//! (so INI positional `args` can be named) and the sink each one becomes: stdout/stderr or a
//! [`FileSink`], each [`Guarded`] (written on a thread of its own).

use std::path::PathBuf;

use chrono::Local;
use log4rs::{
    append::{
        Append,
        rolling_file::policy::compound::roll::{
            Roll, delete::DeleteRoller, fixed_window::FixedWindowRoller,
        },
    },
    encode::Encode,
};
use serde_json::Value;

use super::{
    error::{LoggingError, Source},
    file::{FileSink, Rollover},
    guarded::{Guarded, Sink},
    model::{Field, HandlerDef},
    python::Env,
    rollover::{Interval, Trigger},
    writer::{LineSink, Stream},
};

/// A sink and what writes to it.
type Built = (Sink, Box<dyn LineSink>);

/// The Python handler classes this module knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HandlerClass {
    Stream,
    File,
    WatchedFile,
    Rotating,
    TimedRotating,
    Null,
    /// A class with no log4rs counterpart: a stdlib network/queue handler,
    /// or a class from another module.
    Untranslatable,
}

/// What a handler `class` may be, for error messages.
const CLASS_EXPECTED: &str = "a handler class (logging.StreamHandler, logging.FileHandler, \
     logging.handlers.RotatingFileHandler, logging.handlers.TimedRotatingFileHandler, ...)";

/// Stdlib handlers that cannot be expressed in log4rs.
const UNTRANSLATABLE: &[&str] = &[
    "Handler",
    "BaseRotatingHandler",
    "SocketHandler",
    "DatagramHandler",
    "SysLogHandler",
    "NTEventLogHandler",
    "SMTPHandler",
    "BufferingHandler",
    "MemoryHandler",
    "HTTPHandler",
    "QueueHandler",
];

impl HandlerClass {
    /// Resolves a `class` value as Python would in the `logging` namespace
    /// (`StreamHandler`, `logging.StreamHandler`, `handlers.X`,
    /// `logging.handlers.X`). A misspelt logging class is an error, as in
    /// Python; a class from another module cannot be translated.
    pub(super) fn resolve(field: &Field, src: &Source) -> Result<Self, LoggingError> {
        let class = field.text(src, CLASS_EXPECTED)?;
        let short = class.strip_prefix("logging.").unwrap_or(class);
        let short = short.strip_prefix("handlers.").unwrap_or(short);
        let resolved = match short {
            "StreamHandler" => HandlerClass::Stream,
            "FileHandler" => HandlerClass::File,
            "WatchedFileHandler" => HandlerClass::WatchedFile,
            "RotatingFileHandler" => HandlerClass::Rotating,
            "TimedRotatingFileHandler" => HandlerClass::TimedRotating,
            "NullHandler" => HandlerClass::Null,
            _ if UNTRANSLATABLE.contains(&short) || short.contains('.') => {
                HandlerClass::Untranslatable
            }
            _ => return Err(src.invalid(&field.spot, CLASS_EXPECTED, &field.value)),
        };
        Ok(resolved)
    }

    /// The constructor's parameters in Python's positional order.
    pub(super) fn params(self) -> &'static [&'static str] {
        match self {
            HandlerClass::Stream => &["stream"],
            HandlerClass::File | HandlerClass::WatchedFile => {
                &["filename", "mode", "encoding", "delay", "errors"]
            }
            HandlerClass::Rotating => &[
                "filename",
                "mode",
                "maxBytes",
                "backupCount",
                "encoding",
                "delay",
                "errors",
            ],
            HandlerClass::TimedRotating => &[
                "filename",
                "when",
                "interval",
                "backupCount",
                "encoding",
                "delay",
                "utc",
                "atTime",
                "errors",
            ],
            HandlerClass::Null | HandlerClass::Untranslatable => &[],
        }
    }
}

/// Builds the appender for a translatable handler; `None` for a
/// `NullHandler`, which log4rs expresses by having no appender at all.
pub(super) fn build_appender(
    def: &HandlerDef,
    class: HandlerClass,
    encoder: Box<dyn Encode>,
    env: &mut Env,
) -> Result<Option<Box<dyn Append>>, LoggingError> {
    warn_unknown_params(def, class, env);
    let (sink, out) = match class {
        HandlerClass::Stream => console(def, env)?,
        HandlerClass::File => file(def, env)?,
        HandlerClass::WatchedFile => {
            env.warn(
                &def.spot,
                "log4rs does not reopen a file that was moved away; \
                 translated as logging.FileHandler",
            );
            file(def, env)?
        }
        HandlerClass::Rotating => rotating(def, env)?,
        HandlerClass::TimedRotating => timed_rotating(def, env)?,
        HandlerClass::Null | HandlerClass::Untranslatable => return Ok(None),
    };
    Ok(Some(Box::new(Guarded::lines(sink, encoder, out))))
}

/// Warns about parameters the class's constructor does not take.
fn warn_unknown_params(def: &HandlerDef, class: HandlerClass, env: &mut Env) {
    for (name, field) in &def.params {
        if !class.params().contains(&name.as_str()) {
            env.warn(
                &field.spot,
                "not a parameter of this handler class; ignored",
            );
        }
    }
}

/// A parameter's value; Python's `None` counts as not given.
fn param<'d>(def: &'d HandlerDef, name: &str) -> Option<&'d Field> {
    def.params
        .iter()
        .find(|(param, field)| param == name && !field.value.is_null())
        .map(|(_, field)| field)
}

/// `StreamHandler(stream)`: only the standard streams can be translated.
fn console(def: &HandlerDef, env: &Env) -> Result<Built, LoggingError> {
    let (stream, name) = match param(def, "stream") {
        None => (Stream::Stderr, "stderr"),
        Some(field) => {
            let expected = "ext://sys.stdout or ext://sys.stderr";
            match field.text(env.src, expected)? {
                "ext://sys.stdout" | "sys.stdout" => (Stream::Stdout, "stdout"),
                "ext://sys.stderr" | "sys.stderr" => (Stream::Stderr, "stderr"),
                _ => return Err(env.src.invalid(&field.spot, expected, &field.value)),
            }
        }
    };
    Ok((Sink::Stream(name), Box::new(stream)))
}

/// `FileHandler(filename, mode)`.
fn file(def: &HandlerDef, env: &mut Env) -> Result<Built, LoggingError> {
    let path = log_path(def, env)?;
    let append = append_mode(def, env)?;
    check_encoding(def, env);
    let appender =
        FileSink::open(&path, append, None).map_err(|e| cannot_open(def, &path, e, env))?;
    Ok((Sink::File(path), Box::new(appender)))
}

/// `RotatingFileHandler(filename, mode, maxBytes, backupCount)`: a size
/// trigger and a fixed window of `backupCount` files.
fn rotating(def: &HandlerDef, env: &mut Env) -> Result<Built, LoggingError> {
    let max_bytes = whole_number(def, "maxBytes", env)?;
    let backups = whole_number(def, "backupCount", env)?;
    // Python never rolls over when either is 0: the file just grows.
    if max_bytes == 0 || backups == 0 {
        return file(def, env);
    }
    let trigger = Trigger::Size(max_bytes);
    let append = append_mode(def, env)?;
    rolling(def, trigger, backups, append, env)
}

/// `TimedRotatingFileHandler(filename, when, interval, backupCount)`: a
/// time trigger and a fixed window of `backupCount` files.
fn timed_rotating(def: &HandlerDef, env: &mut Env) -> Result<Built, LoggingError> {
    let interval = time_interval(def, env)?;
    let backups = whole_number(def, "backupCount", env)?;
    if let Some(utc) = param(def, "utc")
        && utc.flag(env.src)?
    {
        env.warn(&utc.spot, "log4rs rolls over by local time; ignored");
    }
    if let Some(at_time) = param(def, "atTime") {
        env.warn(
            &at_time.spot,
            "log4rs rolls over at the start of the interval; ignored",
        );
    }
    let trigger = Trigger::time(interval, Local::now().naive_local());
    rolling(def, trigger, backups, true, env)
}

/// A rolling file; `backups` 0 deletes the rolled file since log4rs's
/// rollers cannot keep an unbounded number.
fn rolling(
    def: &HandlerDef,
    trigger: Trigger,
    backups: u64,
    append: bool,
    env: &mut Env,
) -> Result<Built, LoggingError> {
    let path = log_path(def, env)?;
    check_encoding(def, env);
    let roller: Box<dyn Roll> = if backups == 0 {
        env.warn(
            &def.spot,
            "backupCount 0 keeps every rolled file in Python; log4rs deletes it instead",
        );
        Box::new(DeleteRoller::new())
    } else {
        // A window of more than u32::MAX files is as good as unbounded.
        let count = u32::try_from(backups).unwrap_or(u32::MAX);
        let pattern = format!("{}.{{}}", path.display());
        let roller = FixedWindowRoller::builder()
            .base(1)
            .build(&pattern, count)
            .map_err(|e| env.src.rejected(&def.spot, e))?;
        Box::new(roller)
    };
    let rollover = Rollover { trigger, roller };
    let appender = FileSink::open(&path, append, Some(rollover))
        .map_err(|e| cannot_open(def, &path, e, env))?;
    Ok((Sink::File(path), Box::new(appender)))
}

/// The roll-over interval for `when` × `interval`.
fn time_interval(def: &HandlerDef, env: &mut Env) -> Result<Interval, LoggingError> {
    let count = match param(def, "interval") {
        Some(field) => positive(field, env)?,
        None => 1,
    };
    let Some(when) = param(def, "when") else {
        // Python's default is `h`.
        return Ok(Interval::Hour(count));
    };
    let expected = "S, M, H, D, midnight or W0-W6";
    let text = when.text(env.src, expected)?.to_ascii_uppercase();
    let interval = match text.as_str() {
        "S" => Interval::Second(count),
        "M" => Interval::Minute(count),
        "H" => Interval::Hour(count),
        "D" | "MIDNIGHT" => Interval::Day(count),
        "W0" => Interval::Week(count),
        "W1" | "W2" | "W3" | "W4" | "W5" | "W6" => {
            env.warn(
                &when.spot,
                "log4rs weeks start on Monday; rolls over on Mondays (W0)",
            );
            Interval::Week(count)
        }
        _ => return Err(env.src.invalid(&when.spot, expected, &when.value)),
    };
    Ok(interval)
}

/// An interval count: a positive whole number.
fn positive(field: &Field, env: &Env) -> Result<i64, LoggingError> {
    let expected = "a positive whole number";
    match field.int(env.src, expected)? {
        n if n > 0 => Ok(n),
        _ => Err(env.src.invalid(&field.spot, expected, &field.value)),
    }
}

/// A non-negative count such as `maxBytes` or `backupCount`; absent is 0,
/// as in Python.
fn whole_number(def: &HandlerDef, name: &str, env: &Env) -> Result<u64, LoggingError> {
    let Some(field) = param(def, name) else {
        return Ok(0);
    };
    let expected = "a whole number, 0 or more";
    let n = field.int(env.src, expected)?;
    u64::try_from(n).map_err(|_| env.src.invalid(&field.spot, expected, &field.value))
}

/// The handler's `filename`, relative to the workspace unless absolute.
fn log_path(def: &HandlerDef, env: &Env) -> Result<PathBuf, LoggingError> {
    let expected = "a log file name";
    let Some(field) = param(def, "filename") else {
        return Err(env
            .src
            .invalid(&def.spot.child("filename"), expected, &Value::Null));
    };
    match field.text(env.src, expected)? {
        "" => Err(env.src.invalid(&field.spot, expected, &field.value)),
        name => Ok(env.workspace.join(name)),
    }
}

/// `mode`: `a…` appends, `w…` truncates; Python's default is `a`.
fn append_mode(def: &HandlerDef, env: &Env) -> Result<bool, LoggingError> {
    let Some(field) = param(def, "mode") else {
        return Ok(true);
    };
    let expected = "a file mode starting with a or w";
    match field.text(env.src, expected)?.chars().next() {
        Some('a') => Ok(true),
        Some('w') => Ok(false),
        _ => Err(env.src.invalid(&field.spot, expected, &field.value)),
    }
}

/// log4rs always writes UTF-8; any other `encoding` only earns a warning.
fn check_encoding(def: &HandlerDef, env: &mut Env) {
    let Some(field) = param(def, "encoding") else {
        return;
    };
    let is_utf8 = field.value.as_str().is_some_and(|name| {
        let name = name.to_ascii_lowercase().replace('_', "-");
        name == "utf-8" || name == "utf8"
    });
    if !is_utf8 {
        env.warn(&field.spot, "log4rs always writes UTF-8; encoding ignored");
    }
}

/// The error for a log file log4rs could not open.
fn cannot_open(
    def: &HandlerDef,
    path: &std::path::Path,
    error: std::io::Error,
    env: &Env,
) -> LoggingError {
    let spot = param(def, "filename").map_or(&def.spot, |field| &field.spot);
    env.src
        .rejected(spot, format!("cannot open {}: {error}", path.display()))
}
