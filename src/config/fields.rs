//! Reading one section of the config file key by key, collecting every problem instead of
//! stopping at the first, and remembering which keys were never read so they can be warned about.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Spanned;

use super::error::{KeyProblem, Position};

/// A section's keys as parsed, each with the position of its value.
pub type RawSection = BTreeMap<String, Spanned<Value>>;

/// Hands out typed values from one section and records problems against the right key and line.
pub struct SectionReader<'a> {
    file: &'a Path,
    section: &'static str,
    at: Option<Position>,
    keys: RawSection,
    problems: &'a mut Vec<KeyProblem>,
}

impl<'a> SectionReader<'a> {
    /// Reads `keys` of `section`; `at` is where the section starts (for missing keys).
    pub fn new(
        file: &'a Path,
        section: &'static str,
        at: Option<Position>,
        keys: RawSection,
        problems: &'a mut Vec<KeyProblem>,
    ) -> Self {
        SectionReader {
            file,
            section,
            at,
            keys,
            problems,
        }
    }

    /// Takes `key` and converts it with `parse`; a missing or null key gives `None`.
    pub fn optional<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let spanned = self.keys.remove(key)?;
        if spanned.value.is_null() {
            return None;
        }
        match parse(&spanned.value) {
            Ok(v) => Some(v),
            Err(message) => {
                let position = Some(position_of(&spanned));
                self.problem(key, position, message);
                None
            }
        }
    }

    /// Like [`Self::optional`] but a missing key is a problem too.
    pub fn required<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
        expected: &str,
    ) -> Option<T> {
        let present = self.keys.get(key).is_some_and(|v| !v.value.is_null());
        let value = self.optional(key, parse);
        if !present {
            let at = self.at;
            self.problem(key, at, format!("missing; expected {expected}"));
        }
        value
    }

    /// Reports a problem with a key that was left out (its default does not fit), at the
    /// section's position.
    pub fn refuse_default(&mut self, key: &str, message: String) {
        let at = self.at;
        self.problem(key, at, message);
    }

    /// Ends the section: every key nobody asked for is reported as unknown.
    pub fn unknown_keys(self) -> Vec<KeyProblem> {
        let section = self.section;
        let file = self.file;
        self.keys
            .into_iter()
            .map(|(key, v)| KeyProblem {
                file: file.to_path_buf(),
                key: format!("{section}.{key}"),
                position: Some(position_of(&v)),
                message: "unknown key, ignored".to_string(),
            })
            .collect()
    }

    fn problem(&mut self, key: &str, position: Option<Position>, message: String) {
        self.problems.push(KeyProblem {
            file: self.file.to_path_buf(),
            key: format!("{}.{}", self.section, key),
            position,
            message,
        });
    }
}

/// The position a spanned value was found at.
pub fn position_of<T>(v: &Spanned<T>) -> Position {
    Position {
        line: v.referenced.line(),
        column: v.referenced.column(),
    }
}

/// A boolean; YAML 1.1 words (yes/no/on/off) are accepted as PyYAML, and so keepstart, did.
pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "y" | "on" | "true" => Ok(true),
            "no" | "n" | "off" | "false" => Ok(false),
            _ => Err(format!("`{s}` is not a boolean (expected true or false)")),
        },
        other => Err(format!(
            "{} is not a boolean (expected true or false)",
            kind(other)
        )),
    }
}

/// A non-empty string.
pub fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::String(_) => Err("empty (expected a non-empty string)".to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{} is not a string", kind(other))),
    }
}

/// A positive number of seconds, whole or fractional.
pub fn seconds(v: &Value) -> Result<Duration, String> {
    let secs = v.as_f64().ok_or_else(|| {
        format!(
            "{} is not a number of seconds (expected e.g. 2 or 0.5)",
            kind(v)
        )
    })?;
    if !(secs > 0.0 && secs.is_finite() && secs <= 86_400.0 * 365.0) {
        return Err(format!("{secs} is out of range (expected seconds > 0)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A whole number of cycles, at least 1.
pub fn cycles(v: &Value) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(format!("{} is not a whole number of cycles >= 1", kind(v))),
    }
}

/// Describes a config value for an error message.
pub fn kind(v: &Value) -> String {
    describe(v, "a mapping")
}

/// Describes a value for an error message; `object` names a map in the reader's terms ("a
/// mapping" in YAML, "an object" in a JSON message).
pub fn describe(v: &Value, object: &str) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("`{s}`"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => object.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_accept_yaml_1_1_words() {
        for (v, want) in [
            (json!(true), true),
            (json!("no"), false),
            (json!("Yes"), true),
            (json!("off"), false),
        ] {
            assert_eq!(boolean(&v), Ok(want), "{v}");
        }
        assert!(boolean(&json!("maybe")).is_err());
        assert!(boolean(&json!(1)).is_err());
    }

    #[test]
    fn seconds_accept_whole_and_fractional() {
        assert_eq!(seconds(&json!(2)), Ok(Duration::from_secs(2)));
        assert_eq!(seconds(&json!(0.5)), Ok(Duration::from_millis(500)));
        for bad in [json!(0), json!(-1), json!("soon"), json!([1])] {
            assert!(seconds(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cycles_must_be_positive_integers() {
        assert_eq!(cycles(&json!(60)), Ok(60));
        for bad in [json!(0), json!(1.5), json!("x"), json!(-3)] {
            assert!(cycles(&bad).is_err(), "{bad}");
        }
    }
}
