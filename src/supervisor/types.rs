//! The vocabulary of the role state machine: roles, hooks and their outcomes, the events that
//! drive the machine and the actions it asks the shell to carry out.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::Keepstart;
use crate::ifname::Ifname;
use crate::keepalived::{KeepalivedEvent, Source};
use crate::vip::Vip;

/// This node's role, decided by whether the VIP is on the NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// The VIP is on the NIC: services should run here.
    Master,
    /// The VIP is not on the NIC (or the NIC is down or absent): services should not run here.
    Slave,
}

impl Role {
    /// MASTER when the VIP is present, SLAVE otherwise.
    pub fn from_vip(present: bool) -> Self {
        if present { Role::Master } else { Role::Slave }
    }

    /// The role's name as operators and keepalived spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "MASTER",
            Role::Slave => "SLAVE",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the node stands, as followers (the BGP announcer) see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The role.
    pub role: Role,
    /// The last is-running check since the last start or stop: passed, failed, or none yet.
    pub healthy: Option<bool>,
    /// keepserver is shutting down (followers let go now, before any stop-on-exit hook ends).
    pub leaving: bool,
}

/// Which of the three hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum HookKind {
    /// Starts the service (run on MASTER when not running).
    #[serde(rename = "start")]
    Start,
    /// Stops the service (run on SLAVE when running).
    #[serde(rename = "stop")]
    Stop,
    /// Tells whether the service runs (exit 0 = running).
    #[serde(rename = "is-running")]
    IsRunning,
}

impl HookKind {
    /// Every hook, in a fixed order for reports.
    pub const ALL: [HookKind; 3] = [HookKind::Start, HookKind::Stop, HookKind::IsRunning];

    /// The hook's config key and log tag.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Start => "start",
            HookKind::Stop => "stop",
            HookKind::IsRunning => "is-running",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a hook process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// It exited with this status.
    Exited(i32),
    /// It was ended by this signal (not by our timeout).
    Signaled(i32),
    /// It ran past the hook timeout and its process group was killed.
    TimedOut,
    /// It could not be started at all.
    SpawnFailed(String),
}

impl HookOutcome {
    /// True only for exit status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, HookOutcome::Exited(0))
    }
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookOutcome::Exited(0) => write!(f, "ok exit=0"),
            HookOutcome::Exited(code) => write!(f, "failed exit={code}"),
            HookOutcome::Signaled(sig) => write!(f, "failed signal={sig}"),
            HookOutcome::TimedOut => write!(f, "timeout"),
            HookOutcome::SpawnFailed(e) => write!(f, "failed spawn-error=\"{e}\""),
        }
    }
}

/// A finished hook, as reported by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResult {
    /// Which hook it was.
    pub kind: HookKind,
    /// How it ended.
    pub outcome: HookOutcome,
    /// How long it ran.
    pub duration: Duration,
}

/// Something that happened, fed to [`super::Supervisor::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The VIP was seen to be on the NIC (`true`) or not (`false`).
    Vip {
        /// Whether the VIP is on an up NIC.
        present: bool,
    },
    /// One cycle (`sleep` seconds) elapsed.
    Tick,
    /// The hook in flight ended.
    HookFinished(HookResult),
    /// A new, valid configuration replaces the current one.
    Reload(Box<Keepstart>),
    /// Write the alive report now (SIGUSR1).
    ReportRequested,
    /// Stop: finish the hook in flight, optionally run stop, then exit.
    Shutdown,
    /// keepalived reported a state change; the shell re-reads the VIP right after feeding this.
    Keepalived {
        /// What keepalived said.
        event: KeepalivedEvent,
        /// Through which channel.
        source: Source,
    },
}

/// What the shell should do, returned by [`super::Supervisor::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a hook; report its end with [`Event::HookFinished`].
    RunHook(HookRun),
    /// Write the alive report.
    Report,
    /// Nothing is left to do: exit.
    Exit,
}

/// A hook to run, with everything the runner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// Which hook.
    pub kind: HookKind,
    /// The shell command string.
    pub command: String,
    /// Kill it (whole process group) after this long.
    pub timeout: Duration,
    /// The role at the time it was started.
    pub role: Role,
    /// The role before the last transition, if there was one.
    pub previous_role: Option<Role>,
    /// The VIP being watched.
    pub vip: Vip,
    /// The NIC being watched, if one is configured.
    pub nic: Option<Ifname>,
}
