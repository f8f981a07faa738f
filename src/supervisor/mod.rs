//! The role state machine: the pure core that decides which hook to run and when.
//!
//! It owns the role, the tracked running state, the cycle counter, the hook in flight, retry
//! back-off and counters. [`Supervisor::handle`] takes an [`Event`] and the current time and returns
//! [`Action`]s; it never blocks, never reads the clock and touches nothing outside itself (it logs
//! its decisions through the `log` facade), so every scenario is a plain test with simulated time.
//!
//! The rules are keepstart's: MASTER and not running → start; SLAVE and running → stop; is-running
//! is run when the running state is unknown, one cycle after a start or stop, and every
//! `force-test-cycle` cycles; without is-running the tracked state is trusted. Fixed from
//! keepstart: one hook at a time (role changes during a hook are acted on when it ends, latest role
//! only), a failed is-running counts as not running, failing starts and stops back off.
//!
//! keepalived's notifies ([`Event::Keepalived`]) are logged next to keepserver's own view, but
//! the VIP on the NIC stays the truth: the shell re-reads the VIP right after every notify, and
//! that observation decides. A notify the re-read VIP contradicts (MASTER without the VIP, or
//! anything else with it) is logged as a warning. FAULT and STOP are treated as SLAVE until the
//! VIP says otherwise: a MASTER node becomes SLAVE at once (status and role followers see it), but
//! start and stop hooks are held until the re-read arrives (at most one cycle), so the notify
//! alone never runs a hook the VIP would contradict. If the VIP is gone the stop hook then runs;
//! if it is still there the node is MASTER again without having run anything. Holding, rather
//! than stopping at once, is what keeps the VIP the truth: a FAULT that keepalived reports while
//! the VIP is still on the NIC must not cost a stop and a start. (With keepalived 2.2.7 a STOP on
//! the FIFO can beat the netlink event for the VIP's removal, but the re-read already finds the VIP
//! gone, so the stop hook is only delayed by the re-read.)

pub mod status;
pub mod types;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::Keepstart;
use crate::keepalived::{KeepalivedEvent, Source};
pub use status::{HookStats, KeepalivedStats, KeepalivedView, Status, Transition};
pub use types::{Action, Event, HookKind, HookOutcome, HookResult, HookRun, Role, Standing};

/// keepalived events kept for judging; only reached if VIP observations stopped arriving.
const MAX_UNJUDGED: usize = 64;

/// The role state machine. See the module documentation.
#[derive(Debug)]
pub struct Supervisor {
    settings: Keepstart,
    started: Instant,
    role: Role,
    previous_role: Option<Role>,
    running: Option<bool>,
    /// The last is-running outcome since the last start or stop finished.
    checked: Option<bool>,
    in_flight: Option<HookKind>,
    /// is-running is due at the next chance.
    test_due: bool,
    /// A forced is-running becomes due on the first tick at or after this time.
    test_not_before: Option<Instant>,
    /// The start or stop whose effect the next is-running confirms.
    awaiting_confirmation: Option<HookKind>,
    cycle: u64,
    transitions: u64,
    last_transition: Option<Transition>,
    hooks: BTreeMap<HookKind, HookStats>,
    failures: u32,
    retry_not_before: Option<Instant>,
    shutting_down: bool,
    exit_stop_done: bool,
    exited: bool,
    /// keepalived events waiting for the next VIP observation to be judged against.
    unjudged: Vec<(KeepalivedEvent, Source)>,
    /// After a FAULT or STOP demoted the node: hooks wait for the VIP until this time.
    held_until: Option<Instant>,
    keepalived: KeepalivedStats,
}

impl Supervisor {
    /// A machine that starts in `role` (from the first look at the NIC) at time `now`.
    pub fn new(settings: Keepstart, role: Role, now: Instant) -> Self {
        Supervisor {
            settings,
            started: now,
            role,
            previous_role: None,
            running: None,
            checked: None,
            in_flight: None,
            test_due: false,
            test_not_before: None,
            awaiting_confirmation: None,
            cycle: 0,
            transitions: 0,
            last_transition: None,
            hooks: HookKind::ALL
                .iter()
                .map(|k| (*k, HookStats::default()))
                .collect(),
            failures: 0,
            retry_not_before: None,
            shutting_down: false,
            exit_stop_done: false,
            exited: false,
            unjudged: Vec::new(),
            held_until: None,
            keepalived: KeepalivedStats::default(),
        }
    }

    /// The actions to take now, before any event (e.g. the first is-running or start).
    pub fn begin(&mut self, now: Instant) -> Vec<Action> {
        self.next_action(now).into_iter().collect()
    }

    /// Feeds one event at time `now`; returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Vip { present } => {
                self.observe(Role::from_vip(present), now);
                self.judge(present);
            }
            Event::Keepalived { event, source } => self.keepalived(event, source, now),
            Event::Tick => {
                if self.held_until.is_some_and(|t| now >= t) {
                    warn!(
                        "no VIP re-read after a keepalived notify; acting on role={}",
                        self.role
                    );
                    self.held_until = None;
                }
                if self.tick(now) {
                    actions.push(Action::Report);
                }
            }
            Event::HookFinished(result) => self.finish(result, now),
            Event::Reload(settings) => self.reload(*settings),
            Event::ReportRequested => actions.push(Action::Report),
            Event::Shutdown => {
                if !self.shutting_down {
                    info!(
                        "shutting down in_flight={:?}",
                        self.in_flight.map(|k| k.as_str())
                    );
                }
                self.shutting_down = true;
            }
        }
        actions.extend(self.next_action(now));
        actions
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The role and the last health check since the last start or stop, for followers.
    pub fn standing(&self) -> Standing {
        Standing {
            role: self.role,
            healthy: self.checked,
            leaving: self.shutting_down,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Keepstart {
        &self.settings
    }

    /// A snapshot for `status` and the alive report.
    pub fn status(&self, now: Instant, pid: u32) -> Status {
        Status {
            role: self.role,
            running: self.running,
            pid,
            uptime_s: status::secs(now.saturating_duration_since(self.started)),
            transitions: self.transitions,
            last_transition: self.last_transition.map(|t| status::TransitionView {
                from: t.from,
                to: t.to,
                ago_s: status::secs(now.saturating_duration_since(t.at)),
            }),
            cycle: self.cycle,
            hook_in_flight: self.in_flight,
            hooks: self
                .hooks
                .iter()
                .map(|(k, s)| (*k, status::HookView::new(s, now)))
                .collect(),
            consecutive_failures: self.failures,
            retry_in_s: self
                .retry_not_before
                .filter(|t| *t > now)
                .map(|t| status::secs(t - now)),
            keepalived: KeepalivedView::new(&self.keepalived, now),
        }
    }

    /// Logs keepalived's view next to ours; FAULT and STOP demote a MASTER until the VIP is
    /// re-read (see the module documentation).
    fn keepalived(&mut self, event: KeepalivedEvent, source: Source, now: Instant) {
        info!(
            "keepalived notify source={} {event} role={} running={}",
            source.as_str(),
            self.role,
            show_running(self.running)
        );
        self.keepalived.events += 1;
        self.keepalived.last = Some((event.clone(), source, now));
        if event.state.is_down() && self.role == Role::Master {
            info!(
                "keepalived gave this node up: SLAVE until the VIP is re-read state={}",
                event.state
            );
            self.observe(Role::Slave, now);
            self.held_until = Some(now + self.settings.cycle);
        }
        if self.unjudged.len() >= MAX_UNJUDGED {
            self.unjudged.remove(0);
        }
        self.unjudged.push((event, source));
    }

    /// Judges the keepalived events received since the last VIP observation against it.
    fn judge(&mut self, present: bool) {
        self.held_until = None;
        let vip = if present { "present" } else { "absent" };
        for (event, source) in self.unjudged.drain(..) {
            if event.state.wants_vip() == present {
                debug!(
                    "keepalived agrees with the VIP source={} state={} vip={vip}",
                    source.as_str(),
                    event.state
                );
            } else {
                self.keepalived.disagreements += 1;
                warn!(
                    "keepalived disagrees with the VIP; the VIP decides source={} state={} vip={vip} role={}",
                    source.as_str(),
                    event.state,
                    self.role
                );
            }
        }
    }

    fn observe(&mut self, role: Role, now: Instant) {
        if role == self.role {
            return;
        }
        info!(
            "role change role={} previous={} running={} in_flight={}",
            role,
            self.role,
            show_running(self.running),
            self.in_flight.map_or("none", HookKind::as_str)
        );
        self.previous_role = Some(self.role);
        self.last_transition = Some(Transition {
            from: self.role,
            to: role,
            at: now,
        });
        self.role = role;
        self.transitions += 1;
        // A new term: act at once, whatever failed in the last one.
        self.failures = 0;
        self.retry_not_before = None;
        self.awaiting_confirmation = None;
    }

    /// Counts a cycle; returns whether the alive report is due.
    fn tick(&mut self, now: Instant) -> bool {
        self.cycle += 1;
        if self.settings.is_running.is_some() {
            if self.cycle.is_multiple_of(self.settings.force_test_cycle) {
                self.test_due = true;
            }
            if self.test_not_before.is_some_and(|t| now >= t) {
                self.test_not_before = None;
                self.test_due = true;
            }
        }
        self.cycle.is_multiple_of(self.settings.report_cycle)
    }

    fn reload(&mut self, settings: Keepstart) {
        info!(
            "configuration reloaded role={} running={}",
            self.role,
            show_running(self.running)
        );
        if settings.is_running.is_none() {
            self.test_due = false;
            self.test_not_before = None;
            self.awaiting_confirmation = None;
        }
        self.settings = settings;
    }

    fn finish(&mut self, result: HookResult, now: Instant) {
        if self.in_flight != Some(result.kind) {
            warn!("unexpected hook result hook={} ignored", result.kind);
            return;
        }
        self.in_flight = None;
        let ok = result.outcome.is_success();
        let kind = result.kind;
        let stats = self.hooks.entry(kind).or_default();
        stats.runs += 1;
        stats.last = Some((result, now));
        match kind {
            HookKind::Start | HookKind::Stop => {
                // Whatever is-running said was about the service before this hook.
                self.checked = None;
                let wanted_running = kind == HookKind::Start;
                if ok {
                    self.running = Some(wanted_running);
                    if self.settings.is_running.is_some() {
                        self.awaiting_confirmation = Some(kind);
                    } else {
                        self.succeeded();
                    }
                } else {
                    // A failed start leaves the service down; a failed stop leaves it up.
                    self.running = Some(!wanted_running);
                    self.failed(kind, now);
                }
                if self.settings.is_running.is_some() {
                    self.test_not_before = Some(now + self.settings.cycle);
                }
            }
            HookKind::IsRunning => {
                self.test_due = false;
                self.running = Some(ok);
                self.checked = Some(ok);
                match self.awaiting_confirmation.take() {
                    Some(HookKind::Start) if !ok => self.failed(HookKind::Start, now),
                    Some(HookKind::Stop) if ok => self.failed(HookKind::Stop, now),
                    Some(_) => self.succeeded(),
                    None => {}
                }
            }
        }
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_not_before = None;
    }

    fn failed(&mut self, kind: HookKind, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let delay = self.backoff();
        self.retry_not_before = Some(now + delay);
        warn!(
            "{kind} did not take effect role={} failures={} retry_in={:.1}s",
            self.role,
            self.failures,
            delay.as_secs_f64()
        );
    }

    /// One cycle after the first failure, doubling per failure, capped.
    fn backoff(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(20);
        let delay = self.settings.cycle.saturating_mul(1 << doublings);
        delay.min(self.settings.failure_backoff_max)
    }

    fn next_action(&mut self, now: Instant) -> Option<Action> {
        if self.exited || self.in_flight.is_some() {
            return None;
        }
        if self.shutting_down {
            return Some(self.next_exit_action());
        }
        if self.held_until.is_some_and(|t| now < t) {
            return None;
        }
        if self.running.is_none() {
            if self.settings.is_running.is_some() {
                return Some(self.run(HookKind::IsRunning));
            }
            self.running = Some(false);
        }
        let retry_allowed = self.retry_not_before.is_none_or(|t| now >= t);
        match (self.role, self.running) {
            (Role::Master, Some(false)) if retry_allowed => Some(self.run(HookKind::Start)),
            (Role::Slave, Some(true)) if retry_allowed => Some(self.run(HookKind::Stop)),
            _ if self.test_due => Some(self.run(HookKind::IsRunning)),
            _ => None,
        }
    }

    fn next_exit_action(&mut self) -> Action {
        if self.settings.stop_on_exit && self.running != Some(false) && !self.exit_stop_done {
            self.exit_stop_done = true;
            return self.run(HookKind::Stop);
        }
        self.exited = true;
        Action::Exit
    }

    fn run(&mut self, kind: HookKind) -> Action {
        self.in_flight = Some(kind);
        let command = match kind {
            HookKind::Start => self.settings.start.clone(),
            HookKind::Stop => self.settings.stop.clone(),
            // next_action only asks for is-running when one is configured.
            HookKind::IsRunning => self.settings.is_running.clone().unwrap_or_default(),
        };
        Action::RunHook(HookRun {
            kind,
            command,
            timeout: self.settings.hook_timeout,
            role: self.role,
            previous_role: self.previous_role,
            vip: self.settings.vip,
            nic: self.settings.nic.clone(),
        })
    }
}

fn show_running(running: Option<bool>) -> &'static str {
    match running {
        Some(true) => "true",
        Some(false) => "false",
        None => "unknown",
    }
}

#[cfg(test)]
mod tests;
