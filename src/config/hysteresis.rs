//! The optional hysteresis keys of the `keepstart` section: `rise` and `fall` (how long the VIP
//! must be seen present or absent before the role the machine acts on changes) and
//! `is-running-fall` (how many failed is-running checks in a row make a running service count
//! as down). All off by default, which is keepstart's behaviour: act on the first observation.
//!
//! `rise` and `fall` are durations, not counts: keepserver learns of the VIP from netlink events,
//! one per change, and re-lists only as a safety net that reports nothing when nothing changed,
//! so "N observations in a row" would count events, not time. `is-running-fall` is a count
//! because is-running checks are discrete observations.

use std::time::Duration;

use serde_json::Value;

use super::fields::{SectionReader, kind};

/// The longest `rise` or `fall`: a day (beyond that the VIP no longer decides anything).
const MAX_HOLD: Duration = Duration::from_secs(86_400);

/// The hysteresis settings; [`Hysteresis::default`] is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    /// The VIP must be present this long before a SLAVE node acts as MASTER (`rise`, default 0).
    pub rise: Duration,
    /// The VIP must be absent this long before a MASTER node acts as SLAVE (`fall`, default 0).
    pub fall: Duration,
    /// Failed is-running checks in a row before a service believed running counts as down
    /// (`is-running-fall`, default 1).
    pub is_running_fall: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            rise: Duration::ZERO,
            fall: Duration::ZERO,
            is_running_fall: 1,
        }
    }
}

impl Hysteresis {
    /// Whether any key differs from keepstart's behaviour.
    pub fn is_on(&self) -> bool {
        *self != Hysteresis::default()
    }
}

/// Reads `rise`, `fall` and `is-running-fall`; `has_is_running` says whether `is-running` is
/// set (`is-running-fall` means nothing without it and is refused).
pub(super) fn read(r: &mut SectionReader<'_>, has_is_running: bool) -> Hysteresis {
    let defaults = Hysteresis::default();
    let rise = r.optional("rise", hold).unwrap_or(defaults.rise);
    let fall = r.optional("fall", hold).unwrap_or(defaults.fall);
    let is_running_fall = r
        .optional("is-running-fall", |v| {
            let n = checks(v)?;
            if n > 1 && !has_is_running {
                return Err(format!(
                    "{n} failed checks need a check: set `keepstart.is-running` too"
                ));
            }
            Ok(n)
        })
        .unwrap_or(defaults.is_running_fall);
    Hysteresis {
        rise,
        fall,
        is_running_fall,
    }
}

/// A hold time: a number of seconds (`0.5`, as every other duration key) or a string with a
/// unit (`500ms`, `0.5s`); 0 is off.
pub fn hold(v: &Value) -> Result<Duration, String> {
    let expected = "(expected seconds, e.g. 0.5, or a duration such as 500ms or 2s)";
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix("ms") {
                Some(ms) => ms.trim().parse::<f64>().ok().map(|ms| ms / 1000.0),
                None => s.strip_suffix('s').unwrap_or(s).trim().parse::<f64>().ok(),
            }
        }
        _ => None,
    }
    .ok_or_else(|| format!("{} is not a duration {expected}", kind(v)))?;
    if !(secs.is_finite() && secs >= 0.0 && secs <= MAX_HOLD.as_secs_f64()) {
        return Err(format!(
            "{} is out of range (expected 0 to {} s)",
            kind(v),
            MAX_HOLD.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A whole number of checks, at least 1 (1 is off: the first failed check counts).
fn checks(v: &Value) -> Result<u32, String> {
    match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(format!("{} is not a whole number of checks >= 1", kind(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn holds_are_seconds_or_durations_with_a_unit() {
        for (v, ms) in [
            (json!(0.5), 500),
            (json!(2), 2000),
            (json!(0), 0),
            (json!("200ms"), 200),
            (json!("200 ms"), 200),
            (json!("1.5s"), 1500),
            (json!("3"), 3000),
        ] {
            assert_eq!(hold(&v), Ok(Duration::from_millis(ms)), "{v}");
        }
        for bad in [
            json!(-1),
            json!("soon"),
            json!("5m"),
            json!("-3ms"),
            json!(true),
            json!([1]),
            json!(86_401),
        ] {
            assert!(hold(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_are_whole_and_positive() {
        assert_eq!(checks(&json!(3)), Ok(3));
        for bad in [
            json!(0),
            json!(1.5),
            json!("x"),
            json!(-3),
            json!(1u64 << 40),
        ] {
            assert!(checks(&bad).is_err(), "{bad}");
        }
    }
}
