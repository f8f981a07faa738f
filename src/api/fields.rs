//! Reading a request's JSON object field by field, so that every refusal names the field and the
//! reason (serde's own errors name a line and column of the body, not the field). Numbers and
//! booleans may come as JSON numbers and booleans or as their strings (`"80"`, `"true"`), as
//! KINX's clients sent them; every other field has one type. Fields a request may not carry are
//! refused by name.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::haproxy::model::{Name, quote};

/// The longest id accepted: a pool's backend is named `backend-<id>`, and names are at most 64.
pub const MAX_ID_LEN: usize = 56;
/// The longest free text (`name`, `description`, `project_id`) accepted.
pub const MAX_TEXT_LEN: usize = 255;

/// One request object being read.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// The path of the object in the request, for field names (`""` or `healthmonitor.`).
    prefix: String,
    read: BTreeSet<&'a str>,
}

impl<'a> Fields<'a> {
    /// The request body as an object.
    pub fn of(body: &'a Value) -> Result<Fields<'a>, ApiError> {
        match body {
            Value::Object(object) => Ok(Fields {
                object,
                prefix: String::new(),
                read: BTreeSet::new(),
            }),
            other => Err(ApiError::malformed(format!(
                "the body must be a JSON object, not {}",
                json_kind(other)
            ))),
        }
    }

    /// The object under `key`, if present, to read its own fields.
    pub fn nested(&mut self, key: &'a str) -> Result<Option<Fields<'a>>, ApiError> {
        let prefix = format!("{}{key}.", self.prefix);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(Fields {
                object,
                prefix,
                read: BTreeSet::new(),
            })),
            Some(other) => Err(ApiError::bad(
                &self.name(key),
                format!("must be an object, not {}", json_kind(other)),
            )),
        }
    }

    /// The full name of `key` for messages.
    pub fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Whether `key` is present (and not null).
    pub fn has(&self, key: &str) -> bool {
        self.object.get(key).is_some_and(|v| !v.is_null())
    }

    fn take(&mut self, key: &'a str) -> Option<&'a Value> {
        self.read.insert(key);
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// `key` converted by `parse`, or `None` when absent or null.
    pub fn optional<T>(
        &mut self,
        key: &'a str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, ApiError> {
        let name = self.name(key);
        match self.take(key) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .map_err(|reason| ApiError::bad(&name, reason)),
        }
    }

    /// `key` converted by `parse`; absent is an error.
    pub fn required<T>(
        &mut self,
        key: &'a str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let name = self.name(key);
        self.optional(key, parse)?
            .ok_or_else(|| ApiError::bad(&name, "is required"))
    }

    /// Marks keys a request may carry but keepserver does not use (KINX's `protocol_mode`):
    /// they are accepted and not kept.
    pub fn ignore(&mut self, keys: &[&'a str]) {
        self.read.extend(keys.iter().copied());
    }

    /// Ends the object: a field nobody read is refused.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.object.keys().find(|k| !self.read.contains(k.as_str())) {
            Some(unknown) => Err(ApiError::bad(
                &self.name(unknown),
                "is not a field of this object",
            )),
            None => Ok(()),
        }
    }
}

/// What a JSON value is, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string field.
pub fn string(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("must be a string, not {}", json_kind(v)))
}

/// An object id: 1-56 characters from `A-Z a-z 0-9 _ . -` (it names HAProxy sections).
pub fn id(v: &Value) -> Result<Name, String> {
    let text = string(v)?;
    if text.chars().count() > MAX_ID_LEN {
        return Err(format!(
            "`{}` has more than {MAX_ID_LEN} characters",
            quote(text)
        ));
    }
    Name::new("id", text).map_err(|e| {
        let message = e.to_string();
        message.strip_prefix("id ").unwrap_or(&message).to_string()
    })
}

/// Free text kept for the client (`name`, `description`): at most 255 characters, no control
/// characters. It never reaches haproxy.cfg.
pub fn text(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    if s.chars().count() > MAX_TEXT_LEN {
        return Err(format!("has more than {MAX_TEXT_LEN} characters"));
    }
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("holds the control character {}", c.escape_debug())),
        None => Ok(s.to_string()),
    }
}

/// A boolean, or `"true"`/`"false"`.
pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("must be true or false, not {}", shown(other))),
    }
}

/// A whole number from `min` to `max`, given as a number or its string.
pub fn integer(v: &Value, min: i64, max: i64) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    };
    n.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
        format!(
            "must be a whole number from {min} to {max}, not {}",
            shown(v)
        )
    })
}

/// A TCP port, 1-65535.
pub fn port(v: &Value) -> Result<u16, String> {
    integer(v, 1, 65535).map(|n| n as u16)
}

/// An IP address.
pub fn address(v: &Value) -> Result<IpAddr, String> {
    let s = string(v)?;
    s.parse::<IpAddr>()
        .map_err(|_| format!("`{}` is not an IP address", quote(s)))
}

/// One of `choices` (compared without case).
pub fn choice<T: Copy>(v: &Value, choices: &[(&str, T)]) -> Result<T, String> {
    let s = string(v)?;
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("`{}` is not one of {}", quote(s), names.join(", "))
        })
}

/// A list of ids.
pub fn ids(v: &Value) -> Result<Vec<Name>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("must be a list of ids, not {}", json_kind(v)))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| id(item).map_err(|e| format!("item {}: {e}", i + 1)))
        .collect()
}

/// A value as a message shows it: strings quoted and cut short.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{}`", quote(s)),
        other => {
            let text = other.to_string();
            if text.chars().count() > 40 {
                json_kind(other).to_string()
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_refusal_names_its_field() {
        let body = json!({"protocol_port": "eighty", "extra": 1, "hm": {"delay": -1}});
        let mut f = Fields::of(&body).expect("object");
        let e = f.required("protocol_port", port).expect_err("not a port");
        assert_eq!(e.field.as_deref(), Some("protocol_port"));
        assert_eq!(
            e.reason,
            "must be a whole number from 1 to 65535, not `eighty`"
        );
        let mut hm = f.nested("hm").expect("nested").expect("present");
        let e = hm
            .required("delay", |v| integer(v, 1, 3600))
            .expect_err("range");
        assert_eq!(e.field.as_deref(), Some("hm.delay"));
        hm.finish().expect("all read");
        let e = f.finish().expect_err("extra");
        assert_eq!(
            (e.field.as_deref(), e.reason.as_str()),
            (Some("extra"), "is not a field of this object")
        );
        assert_eq!(
            Fields::of(&json!([1])).err().map(|e| e.reason),
            Some("the body must be a JSON object, not a list".to_string())
        );
    }

    #[test]
    fn numbers_and_booleans_may_be_strings() {
        assert_eq!(port(&json!(80)), Ok(80));
        assert_eq!(port(&json!("443")), Ok(443));
        assert!(port(&json!(0)).is_err());
        assert!(port(&json!(65536)).is_err());
        assert!(port(&json!(80.5)).is_err());
        assert_eq!(boolean(&json!("TRUE")), Ok(true));
        assert_eq!(boolean(&json!(false)), Ok(false));
        assert!(boolean(&json!(1)).is_err());
    }

    #[test]
    fn ids_text_and_addresses_cannot_carry_config_syntax() {
        assert!(id(&json!("a0c8e3ff-5791-42dd-ac9f-f3bd0450c654")).is_ok());
        for bad in ["", "has space", "x\ny", "a#b", "a'b"] {
            assert!(id(&json!(bad)).is_err(), "{bad:?}");
        }
        let long = "x".repeat(57);
        assert!(id(&json!(long)).unwrap_err().contains("more than 56"));
        assert_eq!(
            id(&json!("a b")).unwrap_err(),
            "`a b` is not valid: a space at position 2 is not a letter, digit, `_`, `.` or `-`"
        );
        assert!(text(&json!("any words, é")).is_ok());
        assert!(text(&json!("line\nbreak")).is_err());
        assert!(address(&json!("192.0.2.1")).is_ok());
        assert!(address(&json!("192.0.2.1\n")).is_err());
        assert!(address(&json!("192.0.2.1\nserver x")).is_err());
        assert!(address(&json!("example.com")).is_err());
    }
}
