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
//! Time is an input, and so are deadlines: the machine says when it next wants to be woken
//! ([`Supervisor::poll_timeout`]: the next cycle, a retry, a confirmation, the end of a hold),
//! the shell feeds [`Event::Timeout`] then, and every retry happens at its exact time rather than
//! at the next cycle. The back-off of failing starts and stops (see [`backoff`]): after the n-th
//! failure in a row the next try waits `sleep × 2^(n−1)`, at most `failure-backoff-max`,
//! counted from when the failure was seen (a failed hook's end, or the is-running one cycle
//! after a start or stop that did not confirm it). A role change and a reload forget the
//! failures and try at once.
//!
//! Hysteresis ([`hysteresis`], off by default): with `rise`/`fall` a VIP observation that differs
//! from the role acted on only makes a change pending, one more deadline in `poll_timeout`; with
//! `is-running-fall` a running service counts as down only after that many failed checks.
//!
//! The components that follow the role (the Libra worker, HAProxy, the BGP announcer) are part
//! of the machine too ([`components`]): their starts, stops, restarts and re-applies are
//! [`Action`]s and their reports [`Event::Component`]s, so recovery from their faults is tested
//! here with simulated time like the hooks.
//!
//! A hook left running by a killed predecessor (found in the hook record at start-up) is
//! adopted with [`Supervisor::adopt`]: it counts as the hook in flight, so nothing else runs
//! until it ends or is killed at its original timeout; then, since how it ended is unknown, the
//! running state is asked of is-running (without is-running, an adopted start or stop that
//! ended by itself is taken to have done its job).
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

pub mod backoff;
pub mod components;
pub mod hysteresis;
pub mod status;
pub mod types;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::config::Keepstart;
use crate::keepalived::{KeepalivedEvent, Source};
use backoff::Backoff;
use components::{Components, show_duration};
use hysteresis::{CheckStreak, RoleFilter};
pub use status::{HookStats, KeepalivedStats, KeepalivedView, Status, Transition};
pub use types::{
    Action, BgpStep, ComponentEvent, Event, HaproxyPlan, HookKind, HookOutcome, HookResult,
    HookRun, OnSlave, Role, Settings, Standing, Target,
};

/// keepalived events kept for judging; only reached if VIP observations stopped arriving.
const MAX_UNJUDGED: usize = 64;
/// How long the components get to finish (the Libra job in hand, the BGP withdrawal) once
/// keepserver is shutting down and no hook is left.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

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
    /// The hook in flight was left by a previous instance.
    in_flight_adopted: bool,
    /// is-running is due at the next chance.
    test_due: bool,
    /// A forced is-running becomes due at this time.
    test_not_before: Option<Instant>,
    /// The start or stop whose effect the next is-running confirms.
    awaiting_confirmation: Option<HookKind>,
    cycle: u64,
    /// When the next cycle ends.
    next_cycle_at: Instant,
    transitions: u64,
    last_transition: Option<Transition>,
    hooks: BTreeMap<HookKind, HookStats>,
    backoff: Backoff,
    /// When shutting down began.
    leaving_since: Option<Instant>,
    exit_stop_done: bool,
    exited: bool,
    /// keepalived events waiting for the next VIP observation to be judged against.
    unjudged: Vec<(KeepalivedEvent, Source)>,
    /// After a FAULT or STOP demoted the node: hooks wait for the VIP until this time.
    held_until: Option<Instant>,
    keepalived: KeepalivedStats,
    components: Components,
    /// The role change waiting for `rise` or `fall`.
    filter: RoleFilter,
    /// Failed is-running checks in a row, counted against `is-running-fall`.
    streak: CheckStreak,
}

impl Supervisor {
    /// A machine that starts in `role` (from the first look at the NIC) at time `now`.
    pub fn new(settings: Settings, role: Role, now: Instant) -> Self {
        let Settings {
            keepstart,
            libra,
            bgp,
            haproxy,
        } = settings;
        Supervisor {
            next_cycle_at: now + keepstart.cycle,
            settings: keepstart,
            started: now,
            role,
            previous_role: None,
            running: None,
            checked: None,
            in_flight: None,
            in_flight_adopted: false,
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
            backoff: Backoff::default(),
            leaving_since: None,
            exit_stop_done: false,
            exited: false,
            unjudged: Vec::new(),
            held_until: None,
            keepalived: KeepalivedStats::default(),
            components: Components::new(libra, bgp, haproxy),
            filter: RoleFilter::default(),
            streak: CheckStreak::default(),
        }
    }

    /// Takes over a hook of `kind` that a previous instance left running: it is the hook in
    /// flight until the shell reports its end. Call before [`Supervisor::begin`].
    pub fn adopt(&mut self, kind: HookKind) {
        self.in_flight = Some(kind);
        self.in_flight_adopted = true;
    }

    /// Takes the running state a previous instance recorded when its last hook had ended; used
    /// only without is-running (which is asked instead), so the tracked state survives a
    /// restart. Call before [`Supervisor::begin`].
    pub fn assume_running(&mut self, running: bool) {
        if self.settings.is_running.is_none() && self.in_flight.is_none() {
            self.running = Some(running);
        }
    }

    /// The hook in flight, if any.
    pub fn hook_in_flight(&self) -> Option<HookKind> {
        self.in_flight
    }

    /// The service's tracked running state (`None`: unknown).
    pub fn running(&self) -> Option<bool> {
        self.running
    }

    /// The actions to take now, before any event (e.g. the first is-running or start).
    pub fn begin(&mut self, now: Instant) -> Vec<Action> {
        self.next_actions(now)
    }

    /// Feeds one event at time `now`; returns what the shell must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Vip { present } => {
                self.seen(Role::from_vip(present), now);
                self.judge(present);
            }
            Event::Keepalived { event, source } => self.keepalived(event, source, now),
            Event::Timeout => {
                if self.cycles(now) {
                    actions.push(Action::Report);
                }
            }
            Event::HookFinished(result) => self.finish(result, now),
            Event::Reload(settings) => self.reload(*settings, now),
            Event::ReportRequested => actions.push(Action::Report),
            Event::Shutdown => {
                if self.leaving_since.is_none() {
                    info!(
                        "shutting down in_flight={}",
                        self.in_flight.map_or("none", HookKind::as_str)
                    );
                    self.leaving_since = Some(now);
                }
            }
            Event::Component(event) => self.components.event(event, now),
            Event::BgpSection(bgp) => {
                info!(
                    "bgp section set by the admin API announcer={}",
                    if bgp.is_some() { "on" } else { "off" }
                );
                self.components.set_bgp(*bgp);
            }
        }
        if let Some(role) = self.filter.due(now) {
            self.observe(role, now);
        }
        actions.extend(self.next_actions(now));
        actions
    }

    /// When the machine next wants [`Event::Timeout`]: the end of the cycle, or earlier when a
    /// retry, a confirming is-running, the end of a hold, a pending role change or the exit
    /// grace is due. `None` once it has exited.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.exited {
            return None;
        }
        // A deadline already passed is either acted on by now or waits for the hook in
        // flight, whose end wakes the machine anyway; the cycle's end is always kept.
        let ahead = |t: Option<Instant>| t.filter(|t| *t > now);
        [
            Some(self.next_cycle_at),
            self.backoff.pending(now),
            ahead(self.test_not_before),
            ahead(self.held_until),
            ahead(self.leaving_since.map(|t| t + EXIT_GRACE)),
            // Landed by whatever event comes next, so even a passed one is kept.
            self.filter.deadline(),
            self.components.poll_timeout(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The role the machine acts on (with `rise` or `fall` set, the VIP may already say
    /// otherwise: see [`Supervisor::status`]).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The role and the last health check since the last start or stop, for followers.
    pub fn standing(&self) -> Standing {
        Standing {
            role: self.role,
            healthy: self.checked,
            leaving: self.leaving_since.is_some(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Keepstart {
        &self.settings
    }

    /// A snapshot for `status` and the alive report.
    pub fn status(&self, now: Instant, pid: u32) -> Status {
        let role_since = self.last_transition.map_or(self.started, |t| t.at);
        Status {
            role: self.role,
            role_since_s: status::secs(now.saturating_duration_since(role_since)),
            observed_role: self.filter.pending().map_or(self.role, |p| p.to),
            pending_role: self
                .filter
                .pending()
                .map(|p| status::PendingView::new(&p, now)),
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
            hook_in_flight_adopted: self.in_flight.is_some() && self.in_flight_adopted,
            hooks: self
                .hooks
                .iter()
                .map(|(k, s)| (*k, status::HookView::new(s, now)))
                .collect(),
            consecutive_failures: self.backoff.failures,
            retry_in_s: self.backoff.pending(now).map(|t| status::secs(t - now)),
            is_running_failures: self.streak.failures,
            keepalived: KeepalivedView::new(&self.keepalived, now),
            components: self.components.view(now),
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
            if self.settings.hysteresis.fall.is_zero() {
                info!(
                    "keepalived gave this node up: SLAVE until the VIP is re-read state={}",
                    event.state
                );
                self.observe(Role::Slave, now);
                self.held_until = Some(now + self.settings.cycle);
            } else {
                // With `fall` the notify counts as the VIP seen absent: the re-read VIP keeps
                // the change pending or calls it off, and nothing runs before `fall`.
                self.seen(Role::Slave, now);
            }
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

    /// The VIP says `role` at `now`: act on it, at once or once `rise`/`fall` has passed.
    fn seen(&mut self, role: Role, now: Instant) {
        if let Some(role) = self
            .filter
            .observe(role, self.role, &self.settings.hysteresis, now)
        {
            self.observe(role, now);
        }
    }

    /// The role acted on becomes `role` at `now`.
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
        self.backoff.reset();
        self.awaiting_confirmation = None;
    }

    /// Counts the cycles that ended by `now`; returns whether the alive report is due.
    fn cycles(&mut self, now: Instant) -> bool {
        let mut report = false;
        while now >= self.next_cycle_at {
            self.cycle += 1;
            self.next_cycle_at += self.settings.cycle;
            if self.next_cycle_at <= now {
                // Far behind (a stopped process): count one cycle and start again from now.
                self.next_cycle_at = now + self.settings.cycle;
            }
            let forced = self.cycle.is_multiple_of(self.settings.force_test_cycle);
            if forced && self.settings.is_running.is_some() {
                self.test_due = true;
            }
            self.components.cycle(forced);
            report |= self.cycle.is_multiple_of(self.settings.report_cycle);
        }
        report
    }

    fn reload(&mut self, settings: Settings, now: Instant) {
        info!(
            "configuration reloaded role={} running={} failures_forgotten={}{}",
            self.role,
            show_running(self.running),
            self.backoff.failures,
            self.filter.pending().map_or(String::new(), |p| format!(
                " pending={} since={}",
                p.to,
                show_duration(now.saturating_duration_since(p.since))
            ))
        );
        let Settings {
            keepstart,
            libra,
            bgp,
            haproxy,
        } = settings;
        if keepstart.is_running.is_none() {
            self.test_due = false;
            self.test_not_before = None;
            self.awaiting_confirmation = None;
            self.streak.reset();
        }
        if keepstart.cycle != self.settings.cycle {
            self.next_cycle_at = self.next_cycle_at - self.settings.cycle + keepstart.cycle;
        }
        // A fixed hook is tried at once, not after the back-off its predecessor earned.
        self.backoff.reset();
        self.settings = keepstart;
        self.components.reload(libra, bgp, haproxy);
        if let Some(role) = self.filter.reload(&self.settings.hysteresis, now) {
            self.observe(role, now);
        }
    }

    fn finish(&mut self, result: HookResult, now: Instant) {
        if self.in_flight != Some(result.kind) {
            warn!("unexpected hook result hook={} ignored", result.kind);
            return;
        }
        self.in_flight = None;
        self.in_flight_adopted = false;
        let kind = result.kind;
        let outcome = result.outcome.clone();
        let stats = self.hooks.entry(kind).or_default();
        stats.runs += 1;
        stats.last = Some((result, now));
        if outcome == HookOutcome::Unobserved {
            return self.finish_unobserved(kind);
        }
        let ok = outcome.is_success();
        match kind {
            HookKind::Start | HookKind::Stop => {
                // Whatever is-running said was about the service before this hook.
                self.checked = None;
                self.streak.reset();
                let wanted_running = kind == HookKind::Start;
                if ok {
                    self.running = Some(wanted_running);
                    if self.settings.is_running.is_some() {
                        self.awaiting_confirmation = Some(kind);
                    } else {
                        self.backoff.reset();
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
                self.test_not_before = None;
                if self.tolerated(ok, now) {
                    return;
                }
                self.running = Some(ok);
                self.checked = Some(ok);
                match self.awaiting_confirmation.take() {
                    Some(HookKind::Start) if !ok => self.failed(HookKind::Start, now),
                    Some(HookKind::Stop) if ok => self.failed(HookKind::Stop, now),
                    Some(_) => self.backoff.reset(),
                    None => {}
                }
            }
        }
    }

    /// With `is-running-fall`, whether a failed check of a service believed running is one
    /// of the first `is-running-fall − 1` in a row: the service still counts as running (what
    /// was believed and awaited stays) and the next check comes one cycle later.
    fn tolerated(&mut self, ok: bool, now: Instant) -> bool {
        let fall = self.settings.hysteresis.is_running_fall;
        if ok || self.running != Some(true) || !self.streak.tolerates(fall) {
            self.streak.reset();
            return false;
        }
        info!(
            "is-running failed; still counted as running failures={} is-running-fall={fall} next_check_in={}",
            self.streak.failures,
            show_duration(self.settings.cycle)
        );
        self.test_not_before = Some(now + self.settings.cycle);
        true
    }

    /// An adopted hook ended by itself: ask is-running, or (without one) take a start or stop
    /// to have done its job.
    fn finish_unobserved(&mut self, kind: HookKind) {
        self.checked = None;
        self.awaiting_confirmation = None;
        self.running = match (&self.settings.is_running, kind) {
            (Some(_), _) | (None, HookKind::IsRunning) => None,
            (None, HookKind::Start) => Some(true),
            (None, HookKind::Stop) => Some(false),
        };
        info!(
            "adopted hook ended hook={kind} running={}",
            if self.running.is_none() {
                "unknown: asking is-running"
            } else {
                show_running(self.running)
            }
        );
    }

    fn failed(&mut self, kind: HookKind, now: Instant) {
        let wait = self
            .backoff
            .failed(now, self.settings.cycle, self.settings.failure_backoff_max);
        warn!(
            "{kind} did not take effect role={} failures={} retry_in={}",
            self.role,
            self.backoff.failures,
            show_duration(wait)
        );
    }

    fn next_actions(&mut self, now: Instant) -> Vec<Action> {
        let mut actions: Vec<Action> = self.next_hook(now).into_iter().collect();
        if self.exited {
            return actions;
        }
        actions.extend(self.components.actions(self.standing(), now));
        if let Some(exit) = self.exit_if_done(now) {
            actions.push(exit);
        }
        actions
    }

    fn next_hook(&mut self, now: Instant) -> Option<Action> {
        if self.exited || self.in_flight.is_some() {
            return None;
        }
        if self.leaving_since.is_some() {
            return self.exit_stop();
        }
        if let Some(until) = self.held_until {
            if now < until {
                return None;
            }
            warn!(
                "no VIP re-read after a keepalived notify; acting on role={}",
                self.role
            );
            self.held_until = None;
        }
        if self.running.is_none() {
            if self.settings.is_running.is_some() {
                return Some(self.run(HookKind::IsRunning));
            }
            self.running = Some(false);
        }
        if self.test_not_before.is_some_and(|t| now >= t) {
            self.test_not_before = None;
            self.test_due = true;
        }
        let retry_allowed = self.backoff.allows(now);
        match (self.role, self.running) {
            (Role::Master, Some(false)) if retry_allowed => Some(self.run(HookKind::Start)),
            (Role::Slave, Some(true)) if retry_allowed => Some(self.run(HookKind::Stop)),
            _ if self.test_due => Some(self.run(HookKind::IsRunning)),
            _ => None,
        }
    }

    /// While leaving: the stop-on-exit hook, once.
    fn exit_stop(&mut self) -> Option<Action> {
        if self.settings.stop_on_exit && self.running != Some(false) && !self.exit_stop_done {
            self.exit_stop_done = true;
            return Some(self.run(HookKind::Stop));
        }
        None
    }

    /// Exit once leaving, no hook is left and the components are done (or the grace is over).
    fn exit_if_done(&mut self, now: Instant) -> Option<Action> {
        let since = self.leaving_since?;
        if self.in_flight.is_some() {
            return None;
        }
        let exit_stop_pending =
            self.settings.stop_on_exit && self.running != Some(false) && !self.exit_stop_done;
        if exit_stop_pending {
            return None;
        }
        if !self.components.settled_for_exit() {
            if now < since + EXIT_GRACE {
                return None;
            }
            warn!(
                "exiting without waiting longer for unfinished={} after={}",
                self.components.unfinished().join(","),
                show_duration(EXIT_GRACE)
            );
        }
        self.components.log_exit();
        self.exited = true;
        Some(Action::Exit)
    }

    fn run(&mut self, kind: HookKind) -> Action {
        self.in_flight = Some(kind);
        let command = match kind {
            HookKind::Start => self.settings.start.clone(),
            HookKind::Stop => self.settings.stop.clone(),
            // next_hook only asks for is-running when one is configured.
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
