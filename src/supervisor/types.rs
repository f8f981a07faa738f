//! The vocabulary of the role state machine: roles, hooks and their outcomes, the events that
//! drive the machine and the actions it asks the shell to carry out (hooks, and the components
//! that follow the role: the Libra worker, its HAProxy and the BGP announcer).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::api::Serve;
use crate::config::{Bgp, Config, Keepstart, Libra};
use crate::haproxy::HaproxySettings;
use crate::ifname::Ifname;
use crate::keepalived::{KeepalivedEvent, Source};
use crate::vip::Vip;

/// This node's role, decided by whether the VIP is on the NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// A hook a previous keepserver instance started (found in the hook record at start-up)
    /// ended by itself while this one watched: it was not our child, so how it ended is unknown.
    Unobserved,
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
            HookOutcome::Signaled(sig) => write!(f, "failed signal={}", signal_name(*sig)),
            HookOutcome::TimedOut => write!(f, "timeout"),
            HookOutcome::SpawnFailed(e) => write!(f, "failed spawn-error=\"{e}\""),
            HookOutcome::Unobserved => write!(f, "ended exit=unknown"),
        }
    }
}

/// A signal's name (`SIGTERM`), or its number when it has none.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| signal.to_string())
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

/// Everything the machine's decisions depend on that comes from the config file: the
/// `keepstart` section and the components' sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The `keepstart` section.
    pub keepstart: Keepstart,
    /// The `libra` section (its `enabled` says whether the worker runs at all).
    pub libra: Libra,
    /// The `bgp` section, `None` unless enabled.
    pub bgp: Option<Bgp>,
    /// The HAProxy keepserver owns and when it serves, `None` when neither the Libra worker
    /// nor the admin API is enabled.
    pub haproxy: Option<HaproxyPlan>,
}

impl Settings {
    /// The settings `config` gives.
    pub fn of(config: &Config) -> Settings {
        Settings {
            keepstart: config.keepstart.clone(),
            libra: config.libra.clone(),
            bgp: config.bgp.clone(),
            haproxy: HaproxyPlan::of(config),
        }
    }
}

/// What HAProxy does on SLAVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSlave {
    /// It is stopped (Libra's `follow-role`, the API's `serve: master`).
    Stop,
    /// It is left as it is (Libra without `follow-role`).
    Leave,
    /// It keeps serving (the API's `serve: always`: all-active behind ECMP).
    Serve,
}

/// The HAProxy keepserver owns: which instance, and what the role means for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyPlan {
    /// The instance's files.
    pub settings: HaproxySettings,
    /// What it does on SLAVE (on MASTER it serves).
    pub on_slave: OnSlave,
}

impl HaproxyPlan {
    /// The HAProxy `config` has keepserver own, for the Libra worker or the admin API (the
    /// config loader refuses both); `None` for neither.
    pub fn of(config: &Config) -> Option<HaproxyPlan> {
        if config.libra.enabled {
            let h = &config.libra.haproxy;
            return Some(HaproxyPlan {
                settings: h.instance(),
                on_slave: if h.follow_role {
                    OnSlave::Stop
                } else {
                    OnSlave::Leave
                },
            });
        }
        let api = config.api.as_ref()?;
        Some(HaproxyPlan {
            settings: api.haproxy.instance(),
            on_slave: match api.serve {
                Serve::Master => OnSlave::Stop,
                Serve::Always => OnSlave::Serve,
            },
        })
    }
}

/// Something that happened, fed to [`super::Supervisor::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The VIP was seen to be on the NIC (`true`) or not (`false`).
    Vip {
        /// Whether the VIP is on an up NIC.
        present: bool,
    },
    /// The deadline the machine gave last ([`super::Supervisor::poll_timeout`]) has come.
    Timeout,
    /// The hook in flight ended.
    HookFinished(HookResult),
    /// A new, valid configuration replaces the current one.
    Reload(Box<Settings>),
    /// Write the alive report now (SIGUSR1).
    ReportRequested,
    /// Stop: finish the hook in flight, optionally run stop, let the components go, then exit.
    Shutdown,
    /// keepalived reported a state change; the shell re-reads the VIP right after feeding this.
    Keepalived {
        /// What keepalived said.
        event: KeepalivedEvent,
        /// Through which channel.
        source: Source,
    },
    /// Something one of the components reported.
    Component(ComponentEvent),
    /// The admin API (`/api/quagga`) replaced the BGP announcer's section (`None`: no
    /// announcer); the rest of the configuration is unchanged.
    BgpSection(Box<Option<Bgp>>),
}

/// What the components report back to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentEvent {
    /// The Libra worker, asked to stop, finished the job in hand and left the job servers.
    WorkerStopped,
    /// An [`Action::Haproxy`] finished: HAProxy is where it was asked to be, or why not.
    HaproxyDone(Result<(), String>),
    /// The HAProxy master keepserver owns exited, and not because keepserver stopped it.
    HaproxyExited,
    /// The admin API changed haproxy.cfg while HAProxy was not running (it may have had nothing
    /// to serve before): bring HAProxy where it should be again.
    HaproxyConfigChanged,
    /// An [`Action::Bgp`] finished: bgpd announces what it was asked to, or why not.
    BgpDone(Result<(), String>),
    /// bgpd or zebra is not the process it was at the last look (restarted, or gone).
    FrrChanged,
}

/// Where HAProxy should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Serving its kept configuration (if there is one and it is not suspended).
    Up,
    /// Stopped.
    Down,
}

/// One BGP announcer step: bring bgpd to this.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpStep {
    /// The section to apply with; when it differs from the one in force the announcer first
    /// withdraws through the old one (if it drives another bgpd or loopback). `None`: withdraw
    /// and let go.
    pub config: Option<Bgp>,
    /// Announce the configured prefixes (`true`) or nothing.
    pub announce: bool,
    /// Read bgpd's running configuration first and send whatever differs, rather than trust
    /// that it holds what was last applied (after bgpd restarted, and every
    /// `force-test-cycle` cycles to catch changes made by hand).
    pub reread: bool,
}

/// What the shell should do, returned by [`super::Supervisor::handle`], in order: hooks come
/// before the components, so a start hook never waits for their reaction to the role.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a hook; report its end with [`Event::HookFinished`].
    RunHook(HookRun),
    /// Write the alive report.
    Report,
    /// Nothing is left to do: exit.
    Exit,
    /// Start the Libra worker with this section (it takes jobs until told to stop).
    StartWorker(Box<Libra>),
    /// Stop the Libra worker: it finishes the job in hand, then reports
    /// [`ComponentEvent::WorkerStopped`].
    StopWorker,
    /// Bring this HAProxy to the target; report [`ComponentEvent::HaproxyDone`].
    Haproxy(Target, Box<HaproxySettings>),
    /// Bring bgpd to this; report [`ComponentEvent::BgpDone`].
    Bgp(Box<BgpStep>),
    /// Look whether bgpd or zebra restarted since the last look (a cheap look at their vty
    /// sockets); report [`ComponentEvent::FrrChanged`] if so.
    CheckFrr,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_and_unnamed_ones_numbered() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(64), "64");
    }

    #[test]
    fn hook_outcomes_read_without_debug_text() {
        assert_eq!(HookOutcome::Exited(0).to_string(), "ok exit=0");
        assert_eq!(HookOutcome::Exited(3).to_string(), "failed exit=3");
        assert_eq!(
            HookOutcome::Signaled(15).to_string(),
            "failed signal=SIGTERM"
        );
        assert_eq!(HookOutcome::TimedOut.to_string(), "timeout");
    }
}
