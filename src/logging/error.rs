//! The error type of logging setup, and [`Source`]/[`Spot`], which remember
//! where a spec came from so every error and warning can name the file, the
//! key path and (for INI files) the line.

use std::{
    fmt::Display,
    io,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// Why a `logging:` spec could not be turned into a log4rs config.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A value has the wrong type or content.
    #[error("{}: `{key}`: expected {expected}, found {found}", at(.file, .line))]
    Invalid {
        /// The file holding the value: config.yaml, or the separate logging file.
        file: PathBuf,
        /// The line of the value, when the source format tells it (INI files).
        line: Option<usize>,
        /// The key path of the value, e.g. `logging.handlers.file.class`.
        key: String,
        /// What would have been accepted.
        expected: String,
        /// What was there instead.
        found: String,
    },
    /// The separate logging file named by `logging:` could not be read.
    #[error("{}: `{key}`: cannot read logging file {}: {source}", .config_file.display(), .file.display())]
    Read {
        /// The config file that names the logging file.
        config_file: PathBuf,
        /// The key naming the logging file (`logging`).
        key: String,
        /// The logging file, resolved against the config file's directory.
        file: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The separate logging file is not well-formed YAML, INI or log4rs config.
    #[error("{}: {message}", at(.file, .line))]
    Malformed {
        /// The logging file.
        file: PathBuf,
        /// The line the parser stopped at, when it says.
        line: Option<usize>,
        /// The parser's complaint.
        message: String,
    },
    /// log4rs refused a component, e.g. a log file that cannot be opened.
    #[error("{}: `{key}`: {message}", .file.display())]
    Rejected {
        /// The file holding the component.
        file: PathBuf,
        /// The key path of the component.
        key: String,
        /// log4rs's complaint.
        message: String,
    },
    /// A global logger was already installed.
    #[error("cannot install the logger: {0}")]
    Install(#[from] log::SetLoggerError),
}

/// Formats `file` or `file:line`.
fn at(file: &Path, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

/// Where one value sits in its source: key path and, if known, line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Spot {
    /// Dotted key path, e.g. `logging.handlers.file.class`.
    pub key: String,
    /// 1-based line, known for INI files only.
    pub line: Option<usize>,
}

impl Spot {
    /// The spot of `child` below this one (`a.b` + `c` → `a.b.c`).
    pub(super) fn child(&self, child: &str) -> Spot {
        Spot {
            key: format!("{}.{child}", self.key),
            line: self.line,
        }
    }

    /// The spot of the `index`th element of a list at this spot.
    pub(super) fn item(&self, index: usize) -> Spot {
        Spot {
            key: format!("{}[{index}]", self.key),
            line: self.line,
        }
    }
}

/// The file a spec came from and the key it sits under in that file.
#[derive(Clone, Debug)]
pub(super) struct Source {
    file: PathBuf,
    /// `Some("logging")` for a spec inside config.yaml; `None` for a
    /// separate file, whose keys start at the document's top.
    prefix: Option<&'static str>,
}

impl Source {
    /// A spec written under `logging:` in `config_file`.
    pub(super) fn inline(config_file: &Path) -> Self {
        Source {
            file: config_file.to_path_buf(),
            prefix: Some("logging"),
        }
    }

    /// A spec that is the whole of `file`.
    pub(super) fn whole_file(file: &Path) -> Self {
        Source {
            file: file.to_path_buf(),
            prefix: None,
        }
    }

    /// The spot of the key path `parts` below the spec's root.
    pub(super) fn spot(&self, parts: &[&str]) -> Spot {
        let mut all: Vec<&str> = self.prefix.into_iter().collect();
        all.extend_from_slice(parts);
        let key = if all.is_empty() {
            "(top level)".to_owned()
        } else {
            all.join(".")
        };
        Spot { key, line: None }
    }

    /// An [`LoggingError::Invalid`] for the value `found` at `spot`.
    pub(super) fn invalid(&self, spot: &Spot, expected: &str, found: &Value) -> LoggingError {
        self.invalid_found(spot, expected, describe(found))
    }

    /// An [`LoggingError::Invalid`] with `found` already described.
    pub(super) fn invalid_found(&self, spot: &Spot, expected: &str, found: String) -> LoggingError {
        LoggingError::Invalid {
            file: self.file.clone(),
            line: spot.line,
            key: spot.key.clone(),
            expected: expected.to_owned(),
            found,
        }
    }

    /// A [`LoggingError::Rejected`] for the component at `spot`.
    pub(super) fn rejected(&self, spot: &Spot, message: impl Display) -> LoggingError {
        LoggingError::Rejected {
            file: self.file.clone(),
            key: spot.key.clone(),
            message: message.to_string(),
        }
    }

    /// A [`LoggingError::Malformed`] for the whole file, at `line` if known.
    pub(super) fn malformed(&self, line: Option<usize>, message: impl Display) -> LoggingError {
        LoggingError::Malformed {
            file: self.file.clone(),
            line,
            message: message.to_string(),
        }
    }

    /// A [`LoggingError::Malformed`] for a YAML parser error, at its line.
    /// The message is the parser's without its position and snippet: `at` names file and line.
    pub(super) fn yaml_error(&self, error: &serde_saphyr::Error) -> LoggingError {
        let line = error
            .location()
            .and_then(|location| usize::try_from(location.line()).ok());
        self.malformed(line, crate::config::yaml_message(error))
    }

    /// A warning about `spot`, phrased like the errors so both read alike.
    pub(super) fn warning(&self, spot: &Spot, message: impl Display) -> String {
        format!("{}: `{}`: {message}", at(&self.file, &spot.line), spot.key)
    }
}

/// Describes a value for the "found ..." part of an error.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spots_join_keys_under_the_prefix() {
        let inline = Source::inline(Path::new("/etc/k/config.yaml"));
        let spot = inline.spot(&["handlers", "file"]).child("class");
        assert_eq!(spot.key, "logging.handlers.file.class");
        assert_eq!(
            inline.spot(&["root", "handlers"]).item(1).key,
            "logging.root.handlers[1]"
        );
        assert_eq!(
            Source::whole_file(Path::new("l.yaml")).spot(&[]).key,
            "(top level)"
        );
    }

    #[test]
    fn invalid_names_file_line_key_and_expectation() {
        let src = Source::whole_file(Path::new("/etc/k/logging.ini"));
        let spot = Spot {
            key: "handler_x.level".to_owned(),
            line: Some(7),
        };
        let err = src.invalid(&spot, "a level", &Value::String("LOUD".to_owned()));
        assert_eq!(
            err.to_string(),
            "/etc/k/logging.ini:7: `handler_x.level`: expected a level, found \"LOUD\""
        );
    }
}
