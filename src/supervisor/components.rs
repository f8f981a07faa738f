//! The components that follow the role, as part of the pure core: the Libra worker (takes jobs
//! while MASTER), the HAProxy keepserver owns for the Libra worker or the admin API (kept serving
//! while MASTER; on SLAVE stopped, left alone or kept serving as [`OnSlave`] says; restarted
//! from its last good configuration when it dies), and the BGP
//! announcer (bgpd announces while MASTER and, with `require-running`, healthy; re-applied at
//! once when bgpd or zebra restarts, which is looked at every cycle, and every
//! `force-test-cycle` cycles bgpd's running configuration is read again in case it drifted).
//!
//! Like the hooks, each component has at most one operation in flight; the machine remembers
//! what it last brought the component to, compares it with what the role and the config want,
//! and asks for the difference. A failed operation is retried on the one back-off schedule
//! ([`super::backoff`]), each component with its own counter. On shutdown the worker is stopped
//! and the BGP prefixes withdrawn at once (one attempt), and HAProxy is left as it is (it keeps
//! serving across a keepserver restart).

use std::time::{Duration, Instant};

use log::{info, warn};

use super::backoff::Backoff;
use super::types::{Action, BgpStep, ComponentEvent, HaproxyPlan, OnSlave, Role, Standing, Target};
use crate::config::{Bgp, Libra};
use crate::haproxy::HaproxySettings;

/// First wait after a failed HAProxy start or stop; doubled per failure up to [`HAPROXY_MAX`].
pub const HAPROXY_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between HAProxy retries.
pub const HAPROXY_MAX: Duration = Duration::from_secs(30);
/// First wait after a failed BGP apply; doubled per failure up to [`BGP_MAX`].
pub const BGP_RETRY: Duration = Duration::from_secs(2);
/// Longest wait between BGP retries (a bgpd that is down is not asked every 2 s for ever).
pub const BGP_MAX: Duration = Duration::from_secs(30);

/// Whether bgpd should announce: enabled, MASTER, not shutting down, and (with
/// `require-running`) the last check passed.
pub fn announce_wanted(bgp: Option<&Bgp>, standing: Standing) -> bool {
    bgp.is_some_and(|b| {
        standing.role == Role::Master
            && !standing.leaving
            && (!b.require_running || standing.healthy == Some(true))
    })
}

/// Where the Libra worker is.
#[derive(Debug, Clone, PartialEq)]
enum Worker {
    Stopped,
    /// Taking jobs with this section.
    Running(Box<Libra>),
    Stopping,
}

/// What the machine knows of HAProxy.
#[derive(Debug, Clone, Default, PartialEq)]
struct Haproxy {
    /// Where it was last brought (for `section`); `None`: not known.
    known: Option<Target>,
    /// The instance `known` is about (a reload to another HAProxy forgets it).
    section: Option<Box<HaproxySettings>>,
    /// The operation in flight.
    in_flight: Option<Target>,
    /// HAProxy exited while an operation was in flight: what it reports may be stale.
    exited_meanwhile: bool,
    backoff: Backoff,
}

/// What the machine knows of bgpd.
#[derive(Debug, Clone, Default, PartialEq)]
struct Announcer {
    /// The section the announcer was last handed (`None` also before the first step).
    section: Option<Bgp>,
    /// Whether bgpd was last brought to announce (`true`) or withdraw; `None`: not known.
    applied: Option<bool>,
    /// The step in flight.
    in_flight: Option<BgpStep>,
    /// bgpd or zebra changed while a step was in flight: what it reports may be stale.
    changed_meanwhile: bool,
    /// The next step reads bgpd's running configuration first.
    reread: bool,
    /// A look at FRR's daemons is due.
    check_due: bool,
    /// A step was made since shutdown began (one attempt on the way out).
    tried_leaving: bool,
    backoff: Backoff,
}

/// The components' part of the machine. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    libra: Libra,
    bgp: Option<Bgp>,
    plan: Option<HaproxyPlan>,
    worker: Worker,
    haproxy: Haproxy,
    announcer: Announcer,
}

impl Components {
    /// Components for these sections, nothing started yet.
    pub fn new(libra: Libra, bgp: Option<Bgp>, plan: Option<HaproxyPlan>) -> Self {
        Components {
            libra,
            bgp,
            plan,
            worker: Worker::Stopped,
            haproxy: Haproxy::default(),
            announcer: Announcer::default(),
        }
    }

    /// Takes the sections of a reloaded config; a changed section is acted on by the next
    /// [`Components::actions`] (the worker restarts, the announcer re-applies). Failures are
    /// forgotten, so everything is tried again at once.
    pub fn reload(&mut self, libra: Libra, bgp: Option<Bgp>, plan: Option<HaproxyPlan>) {
        self.libra = libra;
        self.bgp = bgp;
        self.plan = plan;
        self.haproxy.backoff.reset();
        self.announcer.backoff.reset();
    }

    /// Takes a new `bgp` section alone (from the admin API); the announcer re-applies through
    /// it at once.
    pub fn set_bgp(&mut self, bgp: Option<Bgp>) {
        self.bgp = bgp;
        self.announcer.backoff.reset();
    }

    /// A cycle passed: look whether bgpd or zebra restarted, and on `full` have the next step
    /// read bgpd's running configuration.
    pub fn cycle(&mut self, full: bool) {
        if self.bgp.is_none() {
            return;
        }
        self.announcer.check_due = true;
        self.announcer.reread |= full;
    }

    /// Takes a component's report at `now`.
    pub fn event(&mut self, event: ComponentEvent, now: Instant) {
        match event {
            ComponentEvent::WorkerStopped => self.worker = Worker::Stopped,
            ComponentEvent::HaproxyDone(result) => self.haproxy_done(result, now),
            ComponentEvent::HaproxyConfigChanged => {
                if self.haproxy.in_flight.is_some() {
                    self.haproxy.exited_meanwhile = true;
                } else {
                    self.haproxy.known = None;
                }
            }
            ComponentEvent::HaproxyExited => {
                if self.haproxy.in_flight.is_some() {
                    self.haproxy.exited_meanwhile = true;
                } else if self.haproxy.known == Some(Target::Up) {
                    warn!(
                        "haproxy exited unexpectedly; it is started again from its last good configuration when it should serve"
                    );
                    self.haproxy.known = Some(Target::Down);
                }
            }
            ComponentEvent::BgpDone(result) => self.bgp_done(result, now),
            ComponentEvent::FrrChanged => {
                // Whatever bgpd was told may be gone: tell it again now, back-off or not.
                self.announcer.applied = None;
                self.announcer.reread = true;
                self.announcer.backoff.reset();
                self.announcer.changed_meanwhile = self.announcer.in_flight.is_some();
            }
        }
    }

    fn haproxy_done(&mut self, result: Result<(), String>, now: Instant) {
        let Some(target) = self.haproxy.in_flight.take() else {
            return;
        };
        let stale = std::mem::take(&mut self.haproxy.exited_meanwhile);
        match result {
            Ok(()) => {
                self.haproxy.known = (!stale).then_some(target);
                self.haproxy.backoff.reset();
            }
            Err(e) => {
                self.haproxy.known = None;
                let wait = self.haproxy.backoff.failed(now, HAPROXY_RETRY, HAPROXY_MAX);
                warn!(
                    "haproxy could not be brought {} failures={} retry_in={} error=\"{e}\"",
                    target_word(target),
                    self.haproxy.backoff.failures,
                    show_duration(wait)
                );
            }
        }
    }

    fn bgp_done(&mut self, result: Result<(), String>, now: Instant) {
        let Some(step) = self.announcer.in_flight.take() else {
            return;
        };
        // The announcer takes the step's section whatever happens (a failed withdrawal through
        // the old section is not retried through it).
        self.announcer.section = step.config.clone();
        let stale = std::mem::take(&mut self.announcer.changed_meanwhile);
        match result {
            Ok(()) => {
                self.announcer.applied = (!stale).then_some(step.announce);
                self.announcer.backoff.reset();
            }
            Err(e) => {
                self.announcer.applied = None;
                let wait = self.announcer.backoff.failed(now, BGP_RETRY, BGP_MAX);
                warn!(
                    "bgp {} failed failures={} retry_in={} error=\"{e}\"",
                    if step.announce {
                        "announcement"
                    } else {
                        "withdrawal"
                    },
                    self.announcer.backoff.failures,
                    show_duration(wait)
                );
            }
        }
    }

    /// What to do now, given where the node stands.
    pub fn actions(&mut self, standing: Standing, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        actions.extend(self.worker_action(standing));
        actions.extend(self.haproxy_action(standing, now));
        actions.extend(self.frr_check());
        actions.extend(self.bgp_action(standing, now));
        actions
    }

    fn worker_action(&mut self, standing: Standing) -> Option<Action> {
        let wanted = self.libra.enabled && standing.role == Role::Master && !standing.leaving;
        match &self.worker {
            Worker::Stopped if wanted => {
                let section = Box::new(self.libra.clone());
                self.worker = Worker::Running(section.clone());
                Some(Action::StartWorker(section))
            }
            Worker::Running(section) if !wanted || **section != self.libra => {
                self.worker = Worker::Stopping;
                Some(Action::StopWorker)
            }
            _ => None,
        }
    }

    /// Where HAProxy should be: serving while MASTER; on SLAVE as the plan says; no opinion
    /// without a plan or while shutting down.
    fn haproxy_target(&self, standing: Standing) -> Option<Target> {
        let plan = self.plan.as_ref().filter(|_| !standing.leaving)?;
        match (standing.role, plan.on_slave) {
            (Role::Master, _) | (Role::Slave, OnSlave::Serve) => Some(Target::Up),
            (Role::Slave, OnSlave::Stop) => Some(Target::Down),
            (Role::Slave, OnSlave::Leave) => None,
        }
    }

    fn haproxy_action(&mut self, standing: Standing, now: Instant) -> Option<Action> {
        let target = self.haproxy_target(standing)?;
        let settings = &self.plan.as_ref()?.settings;
        let same_section = self.haproxy.section.as_deref() == Some(settings);
        let settled = same_section && self.haproxy.known == Some(target);
        if settled || self.haproxy.in_flight.is_some() || !self.haproxy.backoff.allows(now) {
            return None;
        }
        let section = Box::new(settings.clone());
        self.haproxy.in_flight = Some(target);
        self.haproxy.section = Some(section.clone());
        Some(Action::Haproxy(target, section))
    }

    fn frr_check(&mut self) -> Option<Action> {
        std::mem::take(&mut self.announcer.check_due).then_some(Action::CheckFrr)
    }

    fn bgp_action(&mut self, standing: Standing, now: Instant) -> Option<Action> {
        let a = &mut self.announcer;
        if a.in_flight.is_some() || (standing.leaving && a.tried_leaving) {
            return None;
        }
        if self.bgp.is_none() && a.section.is_none() {
            return None;
        }
        let announce = announce_wanted(self.bgp.as_ref(), standing);
        let differs = a.applied != Some(announce) || a.section != self.bgp;
        // On the way out there is one attempt at what differs, back-off or not.
        let due = if standing.leaving {
            differs
        } else {
            (differs || a.reread) && a.backoff.allows(now)
        };
        if !due {
            return None;
        }
        let step = BgpStep {
            config: self.bgp.clone(),
            announce,
            reread: std::mem::take(&mut a.reread),
        };
        a.tried_leaving = standing.leaving;
        a.in_flight = Some(step.clone());
        Some(Action::Bgp(Box::new(step)))
    }

    /// The next time something here is due (a retry), if any.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        [
            self.haproxy.backoff.pending(now),
            self.announcer.backoff.pending(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether everything that must finish before keepserver exits has: the worker is stopped,
    /// no HAProxy or BGP operation is in flight, and the withdrawal was tried.
    pub fn settled_for_exit(&self) -> bool {
        self.worker == Worker::Stopped
            && self.haproxy.in_flight.is_none()
            && self.announcer.in_flight.is_none()
    }

    /// Logs where the announcer is left as keepserver exits.
    pub fn log_exit(&self) {
        if self.bgp.is_none() && self.announcer.section.is_none() {
            return;
        }
        match self.announcer.applied {
            Some(false) => {
                info!("bgp announcer stopped: nothing announced, loopback prefixes removed")
            }
            _ => warn!("bgp announcer stopped without a confirmed withdrawal; check bgpd"),
        }
    }

    /// What is still unfinished, for the log when the exit grace runs out.
    pub fn unfinished(&self) -> Vec<&'static str> {
        let mut left = Vec::new();
        if self.worker != Worker::Stopped {
            left.push("libra-worker");
        }
        if self.haproxy.in_flight.is_some() {
            left.push("haproxy");
        }
        if self.announcer.in_flight.is_some() {
            left.push("bgp");
        }
        left
    }

    /// A snapshot for `status`.
    pub fn view(&self, now: Instant) -> ComponentsView {
        ComponentsView {
            libra_worker: match &self.worker {
                Worker::Stopped => WorkerState::Stopped,
                Worker::Running(_) => WorkerState::Running,
                Worker::Stopping => WorkerState::Stopping,
            },
            haproxy: self.haproxy.known,
            haproxy_failures: self.haproxy.backoff.failures,
            haproxy_retry_in_s: self
                .haproxy
                .backoff
                .pending(now)
                .map(|t| super::status::secs(t - now)),
            bgp_announced: self.announcer.applied,
            bgp_failures: self.announcer.backoff.failures,
            bgp_retry_in_s: self
                .announcer
                .backoff
                .pending(now)
                .map(|t| super::status::secs(t - now)),
        }
    }
}

/// The components as the core sees them, in `status`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentsView {
    /// Where the core last brought the Libra worker.
    pub libra_worker: WorkerState,
    /// Where HAProxy was last brought: `up`, `down`, or null when not known.
    pub haproxy: Option<Target>,
    /// HAProxy operations failed in a row.
    pub haproxy_failures: u32,
    /// Seconds until the next HAProxy retry, while backing off.
    pub haproxy_retry_in_s: Option<f64>,
    /// Whether bgpd was last brought to announce (true) or withdraw (false); null: not known.
    pub bgp_announced: Option<bool>,
    /// BGP applies failed in a row.
    pub bgp_failures: u32,
    /// Seconds until the next BGP retry, while backing off.
    pub bgp_retry_in_s: Option<f64>,
}

/// Where the core last brought the Libra worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Not taking jobs.
    Stopped,
    /// Taking jobs (its connections may still be coming up).
    Running,
    /// Finishing the job in hand before it leaves the job servers.
    Stopping,
}

impl WorkerState {
    /// The word, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Stopped => "stopped",
            WorkerState::Running => "running",
            WorkerState::Stopping => "stopping",
        }
    }
}

/// `up` or `down`, for a log line.
pub fn target_word(target: Target) -> &'static str {
    match target {
        Target::Up => "up",
        Target::Down => "down",
    }
}

/// A duration for a log line: `250ms`, `2s`, `1.5s`.
pub fn show_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_ms_below_a_second_and_in_s_above() {
        for (d, shown) in [
            (Duration::ZERO, "0ms"),
            (Duration::from_micros(1500), "1ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "300s"),
        ] {
            assert_eq!(show_duration(d), shown, "{d:?}");
        }
    }

    #[test]
    fn targets_are_words() {
        assert_eq!(target_word(Target::Up), "up");
        assert_eq!(target_word(Target::Down), "down");
    }
}
