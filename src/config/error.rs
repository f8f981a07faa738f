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
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": key `{}`", self.key)?;
        if let Some(p) = self.position {
            write!(f, " (line {}, column {})", p.line, p.column)?;
        }
        write!(f, ": {}", self.message)
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
    #[error("{}: not a valid keepserver config: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The YAML is well formed but one or more keys are wrong; every problem is listed.
    #[error("{}", list(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<KeyProblem>,
    },
}

fn list(problems: &[KeyProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}
