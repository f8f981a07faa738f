//! Configuration errors and warnings: each one names the file, the key, the line and column, and
//! what was expected, so an operator can fix the file without guessing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a config file something was found (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number.
    pub line: u64,
    /// 1-based column number.
    pub column: u64,
}

/// Where each key's value was found, by dotted key (`keepstart.start`), so checks made after
/// loading (see [`super::host`]) can still name the line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPositions(BTreeMap<String, Position>);

impl KeyPositions {
    /// Records that `key`'s value starts at `position`.
    pub fn insert(&mut self, key: String, position: Position) {
        self.0.insert(key, position);
    }

    /// Where `key`'s value starts, when the file has it.
    pub fn of(&self, key: &str) -> Option<Position> {
        self.0.get(key).copied()
    }

    /// A problem with `key` of `file`, at the key's position.
    pub fn problem(&self, file: &Path, key: &str, message: String) -> KeyProblem {
        KeyProblem {
            file: file.to_path_buf(),
            key: key.to_string(),
            position: self.of(key),
            message,
        }
    }
}

/// One problem with one key of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// The file the key is in.
    pub file: PathBuf,
    /// Dotted key path, e.g. `keepstart.sleep`.
    pub key: String,
    /// Where the value (or the section holding the missing key) starts, when known.
    pub position: Option<Position>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = at(&self.file, self.position);
        write!(f, "{at}: key `{}`: {}", self.key, self.message)
    }
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}: {source}", file.display())]
    Read {
        /// The file that was asked for.
        file: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML, or not a mapping of sections.
    #[error("{}: not a valid keepserver config: {message}", at(file, *position))]
    Syntax {
        /// The file.
        file: PathBuf,
        /// Where the parser stopped, when it says.
        position: Option<Position>,
        /// The parser's message, without the position.
        message: String,
    },
    /// The YAML is well formed but one or more keys are wrong; every problem is listed.
    #[error("{}", list(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<KeyProblem>,
    },
}

/// A YAML parser's message for an operator: without the position (the caller says it once)
/// and without the source snippet (which would say it twice more).
pub fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let message = serde_saphyr::UserMessageFormatter.format_message(e.without_snippet());
    // Called directly, the formatter keeps control characters (its renderer would not).
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `file:line:column`, or the file alone when the position is not known.
fn at(file: &Path, position: Option<Position>) -> String {
    match position {
        Some(p) => format!("{}:{}:{}", file.display(), p.line, p.column),
        None => file.display().to_string(),
    }
}

fn list(problems: &[KeyProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}
