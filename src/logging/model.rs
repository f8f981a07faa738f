//! The intermediate model of a Python logging config. The dictConfig
//! ([`super::dict`]) and fileConfig ([`super::ini`]) front-ends both fill it,
//! so one translator ([`super::python`]) serves both and they behave alike.
//! Values stay as JSON values (the form config.yaml is read into) with
//! their [`Spot`]; they are checked only when translated, so both
//! front-ends get the same checks and messages.

use log::LevelFilter;
use serde_json::Value;

use super::error::{LoggingError, Source, Spot};

/// One value from the source and where it came from.
#[derive(Clone, Debug)]
pub(super) struct Field {
    pub value: Value,
    pub spot: Spot,
}

/// A Python `logging.Formatter` definition.
#[derive(Debug)]
pub(super) struct FormatterDef {
    pub spot: Spot,
    pub format: Option<Field>,
    pub datefmt: Option<Field>,
    pub style: Option<Field>,
}

/// A Python handler definition. `params` holds the constructor arguments
/// by their Python parameter names (INI positional args are named already).
#[derive(Debug)]
pub(super) struct HandlerDef {
    pub spot: Spot,
    pub class: Field,
    pub level: Option<Field>,
    pub formatter: Option<Field>,
    pub params: Vec<(String, Field)>,
}

/// A Python logger definition (also used for the root logger).
#[derive(Debug)]
pub(super) struct LoggerDef {
    pub spot: Spot,
    pub level: Option<Field>,
    pub handlers: Vec<Field>,
    pub propagate: Option<Field>,
}

/// A whole Python logging config, in source order (for a mapping read into
/// JSON values, key order).
#[derive(Debug, Default)]
pub(super) struct PyConfig {
    pub formatters: Vec<(String, FormatterDef)>,
    pub handlers: Vec<(String, HandlerDef)>,
    /// Handlers the front-end already dropped with a warning (e.g. custom
    /// `()` factories); references to them are not errors.
    pub skipped_handlers: Vec<String>,
    /// Python logger names (dotted) and their definitions.
    pub loggers: Vec<(String, LoggerDef)>,
    pub root: Option<LoggerDef>,
}

/// A Python level: NOTSET means "inherit" for loggers and "everything" for
/// handlers, so it is kept apart from real thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PyLevel {
    NotSet,
    Threshold(LevelFilter),
}

/// What a level may look like, for error messages.
const LEVEL_EXPECTED: &str =
    "a level (CRITICAL, FATAL, ERROR, WARNING, WARN, INFO, DEBUG, NOTSET or a number)";

impl Field {
    /// The value as a string.
    pub(super) fn text(&self, src: &Source, expected: &str) -> Result<&str, LoggingError> {
        self.value
            .as_str()
            .ok_or_else(|| src.invalid(&self.spot, expected, &self.value))
    }

    /// The value as a name (a string, or a number: YAML lets names be numbers).
    pub(super) fn name(&self, src: &Source, expected: &str) -> Result<String, LoggingError> {
        key_name(&self.value).ok_or_else(|| src.invalid(&self.spot, expected, &self.value))
    }

    /// The value as a boolean, accepting what PyYAML and Python's
    /// `int(...)` would have turned into one.
    pub(super) fn flag(&self, src: &Source) -> Result<bool, LoggingError> {
        as_bool(&self.value).ok_or_else(|| {
            src.invalid(
                &self.spot,
                "a boolean (true/false, yes/no, on/off, 1/0)",
                &self.value,
            )
        })
    }

    /// The value as an integer (a number or a numeric string).
    pub(super) fn int(&self, src: &Source, expected: &str) -> Result<i64, LoggingError> {
        as_int(&self.value).ok_or_else(|| src.invalid(&self.spot, expected, &self.value))
    }

    /// The value as a Python logging level.
    pub(super) fn level(&self, src: &Source) -> Result<PyLevel, LoggingError> {
        as_level(&self.value).ok_or_else(|| src.invalid(&self.spot, LEVEL_EXPECTED, &self.value))
    }
}

/// A reference as a name: YAML lets names be numbers.
fn key_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a boolean the way PyYAML (YAML 1.1) and Python's `int()` would.
pub(super) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Reads an integer from a number or a numeric string (INI values are text).
pub(super) fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a Python level name or number. Names are matched in any case, and
/// `TRACE` is accepted for Rust users.
fn as_level(value: &Value) -> Option<PyLevel> {
    if let Some(number) = value.as_i64() {
        return Some(level_from_number(number));
    }
    let number = match value.as_str()?.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" => 50,
        "ERROR" => 40,
        "WARNING" | "WARN" => 30,
        "INFO" => 20,
        "DEBUG" => 10,
        "TRACE" => 5,
        "NOTSET" => 0,
        numeric => numeric.parse().ok()?,
    };
    Some(level_from_number(number))
}

/// Maps a Python level number to the log4rs threshold that lets through
/// the same records. Rust's levels sit at Python's numbers (TRACE at 5);
/// a custom number in between lets through the levels above it. log4rs has
/// nothing above ERROR, so CRITICAL becomes ERROR.
fn level_from_number(number: i64) -> PyLevel {
    let filter = match number {
        ..=0 => return PyLevel::NotSet,
        1..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    };
    PyLevel::Threshold(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    #[test]
    fn booleans_accept_yaml_1_1_and_python_ints() {
        let cases = [
            (s("no"), Some(false)),
            (s("No"), Some(false)),
            (s("OFF"), Some(false)),
            (s("false"), Some(false)),
            (s("0"), Some(false)),
            (s("yes"), Some(true)),
            (s("On"), Some(true)),
            (s("TRUE"), Some(true)),
            (s("1"), Some(true)),
            (Value::Bool(false), Some(false)),
            (Value::from(0), Some(false)),
            (Value::from(1), Some(true)),
            (Value::from(2), None),
            (s("maybe"), None),
            (Value::Null, None),
        ];
        for (value, expected) in cases {
            assert_eq!(as_bool(&value), expected, "{value:?}");
        }
    }

    #[test]
    fn levels_map_python_names_and_numbers() {
        use LevelFilter::*;
        let t = PyLevel::Threshold;
        let cases = [
            (s("CRITICAL"), Some(t(Error))),
            (s("FATAL"), Some(t(Error))),
            (s("ERROR"), Some(t(Error))),
            (s("WARNING"), Some(t(Warn))),
            (s("warn"), Some(t(Warn))),
            (s("INFO"), Some(t(Info))),
            (s("debug"), Some(t(Debug))),
            (s("TRACE"), Some(t(Trace))),
            (s("NOTSET"), Some(PyLevel::NotSet)),
            (s("15"), Some(t(Info))),
            (Value::from(10), Some(t(Debug))),
            (Value::from(50), Some(t(Error))),
            (Value::from(0), Some(PyLevel::NotSet)),
            (s("LOUD"), None),
            (Value::Bool(true), None),
        ];
        for (value, expected) in cases {
            assert_eq!(as_level(&value), expected, "{value:?}");
        }
    }
}
