//! What the supervisor knows about itself, as a snapshot: the core of what `status` shows (the
//! shell adds what the components' own tasks know, see [`crate::snapshot`]) and condensed into the
//! one-line alive report. Every view serializes and deserializes, so the daemon and the `status`
//! client share one typed definition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::components::{ComponentsView, show_duration};
use super::hysteresis::Pending;
use super::types::{HookKind, HookOutcome, HookResult, Role, signal_name};
use crate::keepalived::{KeepalivedEvent, KeepalivedState, Source};

/// Run counts and the last result of one hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookStats {
    /// How many times it has run to an end.
    pub runs: u64,
    /// The last result and when it ended.
    pub last: Option<(HookResult, Instant)>,
}

/// A role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The role before.
    pub from: Role,
    /// The role after.
    pub to: Role,
    /// When it was seen.
    pub at: Instant,
}

/// The role machine's snapshot, the top-level fields of `keepserver status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// MASTER or SLAVE: the role the node acts on.
    pub role: Role,
    /// Seconds the node has had `role`: since the last role change, or since start.
    pub role_since_s: f64,
    /// The role the VIP says now; differs from `role` only while a change waits for `rise` or
    /// `fall`.
    pub observed_role: Role,
    /// The role change waiting for `rise` or `fall`, if any.
    pub pending_role: Option<PendingView>,
    /// Whether the service is running; null until first known.
    pub running: Option<bool>,
    /// The daemon's pid.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Number of role changes seen.
    pub transitions: u64,
    /// The last role change.
    pub last_transition: Option<TransitionView>,
    /// Cycles completed.
    pub cycle: u64,
    /// The hook running now, if any.
    pub hook_in_flight: Option<HookKind>,
    /// The hook in flight was left running by a previous keepserver instance (adopted).
    pub hook_in_flight_adopted: bool,
    /// Per hook: runs and last result.
    pub hooks: BTreeMap<HookKind, HookView>,
    /// Consecutive failed starts or stops (reset by a confirmed success or a role change).
    pub consecutive_failures: u32,
    /// Seconds until the next retry is allowed, while backing off.
    pub retry_in_s: Option<f64>,
    /// Failed is-running checks in a row still tolerated by `is-running-fall`.
    pub is_running_failures: u32,
    /// keepalived's view, from its last notify or FIFO line; null until one arrives.
    pub keepalived: Option<KeepalivedView>,
    /// The components that follow the role.
    pub components: ComponentsView,
}

/// What keepalived said last, and how often it disagreed with the VIP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepalivedStats {
    /// The last event, where it came from and when it arrived.
    pub last: Option<(KeepalivedEvent, Source, Instant)>,
    /// Events received.
    pub events: u64,
    /// Events the VIP, re-read after them, contradicted.
    pub disagreements: u64,
}

/// keepalived's view, relative to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeepalivedView {
    /// The state keepalived reported last.
    pub state: KeepalivedState,
    /// `notify` or `fifo`.
    pub source: Source,
    /// The instance or group name, when keepalived gave one.
    pub instance: Option<String>,
    /// The priority, when keepalived gave one.
    pub priority: Option<u8>,
    /// Seconds since it arrived.
    pub ago_s: f64,
    /// Events received.
    pub events: u64,
    /// Events the VIP, re-read after them, contradicted.
    pub disagreements: u64,
}

impl KeepalivedView {
    /// The view of `stats` at `now`; `None` before the first event.
    pub fn new(stats: &KeepalivedStats, now: Instant) -> Option<Self> {
        let (event, source, at) = stats.last.as_ref()?;
        Some(KeepalivedView {
            state: event.state,
            source: *source,
            instance: event.instance.as_ref().map(|i| i.name.clone()),
            priority: event.priority,
            ago_s: secs(now.saturating_duration_since(*at)),
            events: stats.events,
            disagreements: stats.disagreements,
        })
    }
}

/// A pending role change, relative to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingView {
    /// The role it changes to.
    pub to: Role,
    /// Seconds since the VIP was first seen saying so.
    pub since_s: f64,
    /// Seconds until it lands, unless the VIP says otherwise first.
    pub in_s: f64,
}

impl PendingView {
    /// The view of `pending` at `now`.
    pub fn new(pending: &Pending, now: Instant) -> Self {
        PendingView {
            to: pending.to,
            since_s: secs(now.saturating_duration_since(pending.since)),
            in_s: secs(pending.at.saturating_duration_since(now)),
        }
    }
}

/// A role change, relative to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionView {
    /// The role before.
    pub from: Role,
    /// The role after.
    pub to: Role,
    /// Seconds ago.
    pub ago_s: f64,
}

/// One hook's record, relative to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookView {
    /// How many times it has run to an end.
    pub runs: u64,
    /// The last result.
    pub last: Option<HookResultView>,
}

/// One hook result, relative to now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookResultView {
    /// `ok`, `failed`, `timeout` or `unknown`.
    pub outcome: Verdict,
    /// Exit status, when it exited.
    pub exit: Option<i32>,
    /// Signal that ended it (`SIGKILL`), when one did.
    pub signal: Option<String>,
    /// Why it could not start, when it could not.
    pub error: Option<String>,
    /// How long it ran, in milliseconds.
    pub ms: u64,
    /// Seconds since it ended.
    pub ago_s: f64,
}

/// How a hook ended, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Exit status 0.
    Ok,
    /// Another exit status, a signal, or it could not start.
    Failed,
    /// Killed at the hook timeout.
    Timeout,
    /// Adopted from a previous instance: how it ended is not known.
    Unknown,
}

impl Verdict {
    /// The word, as JSON and the alive report spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Failed => "failed",
            Verdict::Timeout => "timeout",
            Verdict::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HookView {
    /// The view of `stats` as seen at `now`.
    pub fn new(stats: &HookStats, now: Instant) -> Self {
        HookView {
            runs: stats.runs,
            last: stats.last.as_ref().map(|(r, at)| HookResultView {
                outcome: match r.outcome {
                    HookOutcome::Exited(0) => Verdict::Ok,
                    HookOutcome::TimedOut => Verdict::Timeout,
                    HookOutcome::Unobserved => Verdict::Unknown,
                    _ => Verdict::Failed,
                },
                exit: match r.outcome {
                    HookOutcome::Exited(code) => Some(code),
                    _ => None,
                },
                signal: match r.outcome {
                    HookOutcome::Signaled(sig) => Some(signal_name(sig)),
                    _ => None,
                },
                error: match &r.outcome {
                    HookOutcome::SpawnFailed(e) => Some(e.clone()),
                    _ => None,
                },
                ms: millis(r.duration),
                ago_s: secs(now.saturating_duration_since(*at)),
            }),
        }
    }
}

impl Status {
    /// The alive report: one line, key=value pairs after the message.
    pub fn alive_line(&self) -> String {
        let running = match self.running {
            Some(r) => r.to_string(),
            None => "unknown".to_string(),
        };
        let mut line = format!(
            "alive role={} running={} pid={} uptime={:.0}s transitions={} cycle={}",
            self.role, running, self.pid, self.uptime_s, self.transitions, self.cycle
        );
        for (kind, view) in &self.hooks {
            let last = match &view.last {
                None => "never".to_string(),
                Some(l) => match (l.exit, &l.signal) {
                    (Some(code), _) => format!("{}(exit={},{}ms)", l.outcome, code, l.ms),
                    (_, Some(sig)) => format!("{}(signal={},{}ms)", l.outcome, sig, l.ms),
                    _ => format!("{}({}ms)", l.outcome, l.ms),
                },
            };
            let _ = write!(line, " {kind}={last} {kind}_runs={}", view.runs);
        }
        if let Some(kind) = self.hook_in_flight {
            let _ = write!(line, " in_flight={kind}");
            if self.hook_in_flight_adopted {
                line.push_str("(adopted)");
            }
        }
        if self.consecutive_failures > 0 {
            let _ = write!(line, " failures={}", self.consecutive_failures);
        }
        if let Some(retry) = self.retry_in_s {
            let _ = write!(line, " next_retry_in={}", show_secs(retry));
        }
        if let Some(p) = &self.pending_role {
            let _ = write!(
                line,
                " pending_role={} pending_in={}",
                p.to,
                show_secs(p.in_s)
            );
        }
        if self.is_running_failures > 0 {
            let _ = write!(line, " is_running_failures={}", self.is_running_failures);
        }
        let c = &self.components;
        if c.haproxy_failures > 0 {
            let _ = write!(line, " haproxy_failures={}", c.haproxy_failures);
        }
        if let Some(retry) = c.haproxy_retry_in_s {
            let _ = write!(line, " haproxy_retry_in={}", show_secs(retry));
        }
        if c.bgp_failures > 0 {
            let _ = write!(line, " bgp_failures={}", c.bgp_failures);
        }
        if let Some(retry) = c.bgp_retry_in_s {
            let _ = write!(line, " bgp_retry_in={}", show_secs(retry));
        }
        line
    }
}

/// Seconds as a log line shows durations ([`show_duration`]).
fn show_secs(secs: f64) -> String {
    show_duration(Duration::try_from_secs_f64(secs).unwrap_or_default())
}

/// Whole milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Seconds with millisecond precision, for JSON.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
