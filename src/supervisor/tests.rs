//! Scenario tests for the role state machine, with simulated time.

use super::*;
use crate::keepalived::{Instance, InstanceKind, KeepalivedState};

const CYCLE: Duration = Duration::from_secs(2);

fn settings(is_running: bool) -> Keepstart {
    Keepstart {
        nic: Some("eth0".parse().unwrap()),
        vip: "192.0.2.10".parse().unwrap(),
        start: "start.sh".to_string(),
        stop: "stop.sh".to_string(),
        is_running: is_running.then(|| "is-running.sh".to_string()),
        cycle: CYCLE,
        report_cycle: 5,
        force_test_cycle: 3,
        hook_timeout: Duration::from_secs(30),
        stop_on_exit: false,
        failure_backoff_max: Duration::from_secs(30),
        hysteresis: crate::config::Hysteresis::default(),
    }
}

/// The settings of `text` (a config file), with `keepstart` in place of its own.
fn settings_of(text: &str, keepstart: Keepstart) -> Settings {
    let config = crate::config::parse(text, std::path::Path::new("/etc/keepserver/config.yaml"))
        .expect("valid")
        .config;
    Settings {
        keepstart,
        ..Settings::of(&config)
    }
}

/// `keepstart` with no components.
fn full(keepstart: Keepstart) -> Settings {
    settings_of(
        "keepstart: {vip: 192.0.2.10, start: s, stop: t}\n",
        keepstart,
    )
}

/// Drives a machine and keeps the hooks it asked for, checking they never overlap.
struct Sim {
    m: Supervisor,
    now: Instant,
    in_flight: Option<HookRun>,
    ran: Vec<HookKind>,
    reports: usize,
    exited: bool,
    /// The simulated service: up after a successful start, down after a successful stop.
    service_up: bool,
    /// Component actions asked for, in order, with the time they were asked.
    asked: Vec<(Instant, Action)>,
}

impl Sim {
    fn new(settings: Keepstart, vip_present: bool) -> Self {
        Sim::with(full(settings), vip_present, |_| {})
    }

    /// A machine for `settings`, prepared by `before` (e.g. an adoption) before it begins.
    fn with(settings: Settings, vip_present: bool, before: impl FnOnce(&mut Supervisor)) -> Self {
        let now = Instant::now();
        let mut m = Supervisor::new(settings, Role::from_vip(vip_present), now);
        before(&mut m);
        let mut sim = Sim {
            m,
            now,
            in_flight: None,
            ran: Vec::new(),
            reports: 0,
            exited: false,
            service_up: false,
            asked: Vec::new(),
        };
        let actions = sim.m.begin(now);
        sim.take(actions);
        sim
    }

    fn take(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::RunHook(run) => {
                    assert!(
                        self.in_flight.is_none(),
                        "{:?} asked while {:?} in flight",
                        run.kind,
                        self.in_flight
                    );
                    self.ran.push(run.kind);
                    self.in_flight = Some(run);
                }
                Action::Report => self.reports += 1,
                Action::Exit => {
                    assert!(!self.exited, "exit asked twice");
                    self.exited = true;
                }
                other => self.asked.push((self.now, other)),
            }
        }
    }

    fn event(&mut self, e: Event) {
        let actions = self.m.handle(e, self.now);
        self.take(actions);
    }

    fn vip(&mut self, present: bool) {
        self.event(Event::Vip { present });
    }

    /// keepalived reports `state` for instance VI_1 through the FIFO.
    fn keepalived(&mut self, state: KeepalivedState) {
        let event = KeepalivedEvent {
            instance: Some(Instance {
                kind: InstanceKind::Instance,
                name: "VI_1".to_string(),
            }),
            state,
            priority: Some(100),
        };
        self.event(Event::Keepalived {
            event,
            source: Source::Fifo,
        });
    }

    fn keepalived_view(&self) -> KeepalivedView {
        self.m
            .status(self.now, 1)
            .keepalived
            .expect("a keepalived event was seen")
    }

    /// Lets `d` pass, waking the machine at every deadline it gives on the way.
    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        for _ in 0..100_000 {
            match self.m.poll_timeout(self.now) {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.event(Event::Timeout);
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("the machine keeps asking to be woken before {until:?}");
    }

    /// One cycle passes.
    fn tick(&mut self) {
        self.advance(CYCLE);
    }

    /// Ends the hook in flight with `outcome` after `took`.
    fn finish(&mut self, outcome: HookOutcome, took: Duration) -> HookRun {
        let run = self.in_flight.take().expect("a hook in flight");
        self.advance(took);
        self.event(Event::HookFinished(HookResult {
            kind: run.kind,
            outcome,
            duration: took,
        }));
        run
    }

    fn finish_ok(&mut self) -> HookRun {
        self.finish(HookOutcome::Exited(0), Duration::from_millis(10))
    }

    /// Ends the hook in flight as a working service would: start and stop succeed and change
    /// the service, is-running tells the truth.
    fn finish_as_service(&mut self) {
        let outcome = match self.in_flight_kind() {
            Some(Start) => {
                self.service_up = true;
                HookOutcome::Exited(0)
            }
            Some(Stop) => {
                self.service_up = false;
                HookOutcome::Exited(0)
            }
            _ => HookOutcome::Exited(if self.service_up { 0 } else { 1 }),
        };
        self.finish(outcome, Duration::from_millis(10));
    }

    fn in_flight_kind(&self) -> Option<HookKind> {
        self.in_flight.as_ref().map(|r| r.kind)
    }
}

use HookKind::{IsRunning, Start, Stop};

#[test]
fn master_without_is_running_starts_at_once() {
    let mut s = Sim::new(settings(false), true);
    assert_eq!(s.in_flight_kind(), Some(Start));
    let run = s.finish_ok();
    assert_eq!(run.role, Role::Master);
    assert_eq!(run.previous_role, None);
    assert_eq!(run.command, "start.sh");
    assert_eq!(s.m.status(s.now, 1).running, Some(true));
}

#[test]
fn slave_at_startup_runs_nothing_without_is_running() {
    let mut s = Sim::new(settings(false), false);
    for _ in 0..10 {
        s.tick();
    }
    assert!(s.ran.is_empty(), "{:?}", s.ran);
    assert_eq!(s.m.status(s.now, 1).running, Some(false));
}

#[test]
fn unknown_state_is_tested_first_then_acted_on() {
    let mut s = Sim::new(settings(true), true);
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish(HookOutcome::Exited(1), Duration::from_millis(5));
    assert_eq!(s.in_flight_kind(), Some(Start));

    let mut s = Sim::new(settings(true), false);
    s.finish_ok();
    assert_eq!(
        s.in_flight_kind(),
        Some(Stop),
        "SLAVE and running must stop"
    );
}

#[test]
fn vip_changes_start_and_stop_and_set_the_hook_env() {
    let mut s = Sim::new(settings(false), false);
    s.vip(true);
    let start = s.finish_ok();
    assert_eq!(
        (start.kind, start.role, start.previous_role),
        (Start, Role::Master, Some(Role::Slave))
    );
    s.vip(false);
    let stop = s.finish_ok();
    assert_eq!(
        (stop.kind, stop.role, stop.previous_role),
        (Stop, Role::Slave, Some(Role::Master))
    );
    assert_eq!(stop.vip.to_string(), "192.0.2.10");
    assert_eq!(stop.nic.as_deref(), Some("eth0"));
    assert_eq!(s.m.status(s.now, 1).transitions, 2);
    s.vip(false);
    assert_eq!(
        s.m.status(s.now, 1).transitions,
        2,
        "same role is no transition"
    );
}

#[test]
fn flap_storm_alternates_and_ends_in_the_right_hook() {
    for (is_running, end_present) in [(false, true), (false, false), (true, true), (true, false)] {
        let mut s = Sim::new(settings(is_running), false);
        if s.in_flight.is_some() {
            s.finish_as_service();
        }
        // A cheap deterministic pseudo-random sequence of toggles and hook completions.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut present = false;
        for i in 0..600 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if i < 599 {
                present = !present;
            } else {
                present = end_present;
            }
            s.advance(Duration::from_millis(seed % 50));
            s.vip(present);
            if seed.is_multiple_of(3) && s.in_flight.is_some() {
                s.finish_as_service();
            }
            if seed.is_multiple_of(11) {
                s.tick();
                if s.in_flight.is_some() {
                    s.finish_as_service();
                }
            }
        }
        while s.in_flight.is_some() {
            s.finish_as_service();
        }
        let actions: Vec<HookKind> = s.ran.iter().copied().filter(|k| *k != IsRunning).collect();
        for pair in actions.windows(2) {
            assert_ne!(pair[0], pair[1], "two {:?} in a row: {actions:?}", pair[0]);
        }
        let want = if end_present { Start } else { Stop };
        assert_eq!(actions.last(), Some(&want), "is_running={is_running}");
        let st = s.m.status(s.now, 1);
        assert_eq!(st.role, Role::from_vip(end_present));
        assert_eq!(st.running, Some(end_present));
        assert!(st.transitions > 100);
    }
}

#[test]
fn role_changes_during_a_hook_act_on_the_latest_role_only() {
    let mut s = Sim::new(settings(false), false);
    s.vip(true);
    assert_eq!(s.in_flight_kind(), Some(Start));
    for _ in 0..100 {
        s.vip(false);
        s.vip(true);
    }
    s.finish_ok();
    assert_eq!(s.in_flight, None, "ended MASTER and running: nothing to do");
    s.vip(false);
    s.vip(true);
    s.vip(false);
    assert_eq!(s.in_flight_kind(), Some(Stop));
    s.vip(true);
    s.finish_ok();
    assert_eq!(
        s.in_flight_kind(),
        Some(Start),
        "MASTER again after the stop"
    );
}

#[test]
fn force_test_cycles_run_is_running_every_n_cycles() {
    let mut s = Sim::new(settings(true), false);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert!(s.in_flight.is_none());
    let mut tested_at = Vec::new();
    for cycle in 1..=9 {
        s.tick();
        if s.in_flight_kind() == Some(IsRunning) {
            tested_at.push(cycle);
            s.finish(HookOutcome::Exited(1), Duration::ZERO);
        }
    }
    assert_eq!(tested_at, [3, 6, 9]);
}

#[test]
fn is_running_is_forced_one_cycle_after_start() {
    let mut s = Sim::new(settings(true), true);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    s.finish_ok(); // start
    assert!(s.in_flight.is_none(), "no test straight after the start");
    s.tick();
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish_ok();
    let st = s.m.status(s.now, 1);
    assert_eq!((st.running, st.consecutive_failures), (Some(true), 0));
}

#[test]
fn without_is_running_the_tracked_state_is_trusted() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    for _ in 0..20 {
        s.tick();
    }
    assert_eq!(s.ran, [Start]);
}

#[test]
fn failed_is_running_counts_as_not_running() {
    for outcome in [
        HookOutcome::Exited(3),
        HookOutcome::TimedOut,
        HookOutcome::Signaled(9),
        HookOutcome::SpawnFailed("no such file".into()),
    ] {
        let mut s = Sim::new(settings(true), true);
        s.finish(outcome.clone(), Duration::from_secs(1));
        assert_eq!(s.in_flight_kind(), Some(Start), "{outcome:?}");
    }
}

#[test]
fn hook_timeout_is_a_failure_and_retries_back_off() {
    let mut s = Sim::new(settings(false), true);
    let mut retries_at = Vec::new();
    for cycle in 1..=40 {
        if s.in_flight_kind() == Some(Start) {
            retries_at.push(cycle);
            s.finish(HookOutcome::TimedOut, Duration::ZERO);
        }
        s.tick();
    }
    // First retry one cycle later, then 2, 4, 8 cycles, capped at 30 s = 15 cycles.
    assert_eq!(retries_at, [1, 2, 4, 8, 16, 31]);
    let st = s.m.status(s.now, 1);
    assert_eq!(st.consecutive_failures, 6);
    assert_eq!(
        st.hooks[&Start].last.as_ref().unwrap().outcome.as_str(),
        "timeout"
    );
}

#[test]
fn start_that_does_not_stay_up_backs_off() {
    let mut s = Sim::new(settings(true), true);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    let mut starts = Vec::new();
    for cycle in 1..=30 {
        match s.in_flight_kind() {
            Some(Start) => {
                starts.push(cycle);
                s.finish_ok();
            }
            Some(IsRunning) => {
                s.finish(HookOutcome::Exited(1), Duration::ZERO);
                if s.in_flight_kind() == Some(Start) {
                    starts.push(cycle);
                    s.finish_ok();
                }
            }
            _ => {}
        }
        s.tick();
    }
    let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "gaps grow: {starts:?}"
    );
    assert!(*gaps.last().unwrap() >= 4, "{starts:?}");
}

#[test]
fn a_new_master_term_starts_at_once_despite_back_off() {
    let mut s = Sim::new(settings(false), true);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    s.tick();
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert!(s.in_flight.is_none());
    s.vip(false);
    s.vip(true);
    assert_eq!(s.in_flight_kind(), Some(Start));
}

#[test]
fn failed_stop_keeps_the_service_counted_as_running() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.vip(false);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert_eq!(s.m.status(s.now, 1).running, Some(true));
    s.tick();
    assert_eq!(s.in_flight_kind(), Some(Stop), "stop is retried");
}

#[test]
fn reload_during_a_hook_runs_nothing_itself_and_applies_next_time() {
    let mut s = Sim::new(settings(false), true);
    let mut new = settings(false);
    new.start = "new-start.sh".into();
    new.stop = "new-stop.sh".into();
    s.event(Event::Reload(Box::new(full(new))));
    assert_eq!(s.ran, [Start], "reload runs no hook");
    s.finish_ok();
    s.event(Event::Reload(Box::new(full(settings(false)))));
    assert_eq!(s.ran, [Start]);
    let mut new = settings(false);
    new.stop = "new-stop.sh".into();
    s.event(Event::Reload(Box::new(full(new))));
    s.vip(false);
    assert_eq!(s.in_flight.as_ref().unwrap().command, "new-stop.sh");
}

#[test]
fn reload_adding_is_running_uses_it_on_the_next_force_cycle() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.event(Event::Reload(Box::new(full(settings(true)))));
    assert!(s.in_flight.is_none());
    s.tick();
    s.tick();
    assert!(s.in_flight.is_none());
    s.tick();
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
}

#[test]
fn alive_report_every_report_cycle_and_on_request() {
    let mut s = Sim::new(settings(false), false);
    for _ in 0..12 {
        s.tick();
    }
    assert_eq!(s.reports, 2, "cycles 5 and 10");
    s.event(Event::ReportRequested);
    assert_eq!(s.reports, 3);
    let line = s.m.status(s.now, 42).alive_line();
    assert!(
        line.starts_with("alive role=SLAVE running=false pid=42"),
        "{line}"
    );
    assert!(line.contains("start=never"), "{line}");
}

#[test]
fn shutdown_waits_for_the_hook_in_flight() {
    let mut s = Sim::new(settings(false), true);
    s.event(Event::Shutdown);
    assert!(!s.exited);
    s.vip(false);
    s.finish_ok();
    assert!(s.exited, "no stop on exit by default");
    assert_eq!(s.ran, [Start]);
}

#[test]
fn stop_on_exit_runs_stop_once_then_exits() {
    let mut st = settings(false);
    st.stop_on_exit = true;
    let mut s = Sim::new(st.clone(), true);
    s.finish_ok();
    s.event(Event::Shutdown);
    assert_eq!(s.in_flight_kind(), Some(Stop));
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert!(s.exited);
    assert_eq!(s.ran, [Start, Stop]);

    let mut s = Sim::new(st, false);
    s.event(Event::Shutdown);
    assert!(s.exited, "not running: nothing to stop");
    assert!(s.ran.is_empty());
}

#[test]
fn keepalived_notifies_that_agree_with_the_vip_run_nothing_themselves() {
    let mut s = Sim::new(settings(false), false);
    s.keepalived(KeepalivedState::Backup);
    s.vip(false);
    assert!(s.ran.is_empty());
    s.vip(true);
    s.keepalived(KeepalivedState::Master);
    s.finish_ok();
    s.vip(true);
    assert_eq!(s.ran, [Start], "the VIP ran start, the notify nothing more");
    let view = s.keepalived_view();
    assert_eq!(
        (
            view.state,
            view.source.as_str(),
            view.events,
            view.disagreements
        ),
        (KeepalivedState::Master, "fifo", 2, 0)
    );
    assert_eq!(
        (view.instance.as_deref(), view.priority),
        (Some("VI_1"), Some(100))
    );
    assert_eq!(s.m.status(s.now, 1).transitions, 1);
}

#[test]
fn fault_while_master_demotes_at_once_and_holds_hooks_until_the_vip_is_reread() {
    for state in [KeepalivedState::Fault, KeepalivedState::Stop] {
        let mut s = Sim::new(settings(false), true);
        s.finish_ok();
        s.keepalived(state);
        assert_eq!(s.m.role(), Role::Slave, "{state}: SLAVE at once");
        assert_eq!(
            s.in_flight, None,
            "{state}: no hook before the VIP is re-read"
        );
        s.advance(Duration::from_millis(2));
        s.vip(false);
        assert_eq!(
            s.in_flight_kind(),
            Some(Stop),
            "{state}: the VIP confirmed SLAVE"
        );
        s.finish_ok();
        assert_eq!(s.keepalived_view().disagreements, 0);
        assert_eq!(s.m.status(s.now, 1).transitions, 1);
    }
}

#[test]
fn fault_while_the_vip_stays_is_master_again_without_any_hook() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.keepalived(KeepalivedState::Fault);
    assert_eq!(s.m.role(), Role::Slave);
    s.vip(true);
    assert_eq!(s.m.role(), Role::Master, "the VIP says otherwise");
    for _ in 0..5 {
        s.tick();
    }
    assert_eq!(s.ran, [Start], "neither stop nor a second start");
    let st = s.m.status(s.now, 1);
    assert_eq!((st.running, st.transitions), (Some(true), 2));
    assert_eq!(s.keepalived_view().disagreements, 1);
}

#[test]
fn held_hooks_run_after_a_cycle_when_no_reread_arrives() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.keepalived(KeepalivedState::Stop);
    s.advance(CYCLE / 2);
    assert_eq!(s.in_flight, None, "still within the hold");
    s.tick();
    assert_eq!(s.in_flight_kind(), Some(Stop), "the hold ended: SLAVE acts");
}

#[test]
fn fault_during_a_start_waits_for_the_start_then_for_the_vip() {
    let mut s = Sim::new(settings(false), false);
    s.vip(true);
    assert_eq!(s.in_flight_kind(), Some(Start));
    s.keepalived(KeepalivedState::Fault);
    s.finish_ok();
    assert_eq!(s.in_flight, None, "held: the VIP has not been re-read");
    s.vip(false);
    assert_eq!(s.in_flight_kind(), Some(Stop));
}

#[test]
fn notifies_the_vip_contradicts_are_counted_and_change_nothing() {
    let mut s = Sim::new(settings(false), false);
    s.keepalived(KeepalivedState::Master);
    assert_eq!(
        s.m.role(),
        Role::Slave,
        "a MASTER notify does not make MASTER"
    );
    s.vip(false);
    s.event(Event::Keepalived {
        event: crate::keepalived::parse_notify_args(&["BACKUP"]).unwrap(),
        source: Source::Notify,
    });
    s.vip(false);
    let view = s.keepalived_view();
    assert_eq!((view.events, view.disagreements), (2, 1));
    assert_eq!((view.source.as_str(), view.instance), ("notify", None));
    assert!(s.ran.is_empty());
}

#[test]
fn shutdown_is_not_held_by_a_fault() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.keepalived(KeepalivedState::Fault);
    s.event(Event::Shutdown);
    assert!(s.exited);
}

#[test]
fn standing_is_healthy_only_after_a_passing_check_since_the_last_start_or_stop() {
    let mut s = Sim::new(settings(true), true);
    let healthy = |s: &Sim| s.m.standing().healthy;
    assert_eq!(healthy(&s), None, "nothing checked yet");
    s.finish(HookOutcome::Exited(1), Duration::ZERO); // is-running: down
    assert_eq!(healthy(&s), Some(false));
    s.finish_ok(); // start
    assert_eq!(healthy(&s), None, "started, not yet confirmed");
    s.tick();
    s.finish_ok(); // is-running confirms
    assert_eq!(
        s.m.standing(),
        Standing {
            role: Role::Master,
            healthy: Some(true),
            leaving: false
        }
    );
    s.tick();
    s.tick(); // force-test-cycle: is-running fails
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert_eq!(healthy(&s), Some(false));
    assert_eq!(s.in_flight_kind(), Some(Start));
    s.finish_ok(); // the restart
    assert_eq!(healthy(&s), None);
    s.vip(false);
    assert_eq!(s.in_flight_kind(), Some(Stop));
    s.finish_ok();
    assert_eq!(
        s.m.standing(),
        Standing {
            role: Role::Slave,
            healthy: None,
            leaving: false
        }
    );
    s.event(Event::Shutdown);
    assert!(s.m.standing().leaving);
}

/// Start times, in seconds from the machine's start, of every start hook in the first `span`.
fn start_times(mut s: Sim, span: Duration, mut end: impl FnMut(&mut Sim)) -> Vec<f64> {
    let t0 = s.now;
    let mut times = Vec::new();
    let step = Duration::from_millis(250);
    while s.now < t0 + span {
        if s.in_flight_kind() == Some(Start)
            && times.len() < s.ran.iter().filter(|k| **k == Start).count()
        {
            times.push((s.now - t0).as_secs_f64());
        }
        if s.in_flight.is_some() {
            end(&mut s);
        } else {
            s.advance(step);
        }
    }
    times
}

#[test]
fn failing_starts_are_retried_on_the_documented_schedule() {
    // Without is-running: each start fails at once; the n-th failure waits 2 s × 2^(n−1), at
    // most failure-backoff-max (30 s), counted from the failure.
    let s = Sim::new(settings(false), true);
    let times = start_times(s, Duration::from_secs(100), |s| {
        s.finish(HookOutcome::Exited(1), Duration::ZERO);
    });
    assert_eq!(times, [0.0, 2.0, 6.0, 14.0, 30.0, 60.0, 90.0]);

    // A start that takes 1 s to fail: the wait counts from its end.
    let s = Sim::new(settings(false), true);
    let times = start_times(s, Duration::from_secs(40), |s| {
        s.finish(HookOutcome::Exited(1), Duration::from_secs(1));
    });
    assert_eq!(times, [0.0, 3.0, 8.0, 17.0, 34.0]);

    // With is-running: a start that exits 0 is confirmed one cycle later; when the service is
    // not running then, that is the failure, and the wait counts from it.
    let mut s = Sim::new(settings(true), true);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    let times = start_times(s, Duration::from_secs(60), |s| {
        let outcome = match s.in_flight_kind() {
            Some(Start) => HookOutcome::Exited(0),
            _ => HookOutcome::Exited(1),
        };
        s.finish(outcome, Duration::ZERO);
    });
    assert_eq!(times, [0.0, 4.0, 10.0, 20.0, 38.0]);
}

#[test]
fn reload_and_a_role_change_forget_the_back_off_and_retry_at_once() {
    let mut s = Sim::new(settings(false), true);
    for _ in 0..4 {
        s.finish(HookOutcome::Exited(1), Duration::ZERO);
        while s.in_flight.is_none() {
            let next = s.m.poll_timeout(s.now).expect("a retry is due");
            s.advance(next - s.now);
        }
    }
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    let st = s.m.status(s.now, 1);
    assert_eq!(st.consecutive_failures, 5);
    assert_eq!(
        st.retry_in_s,
        Some(30.0),
        "the fifth failure waits 32 s, capped at 30"
    );
    let line = st.alive_line();
    assert!(line.contains("failures=5 next_retry_in=30s"), "{line}");
    s.advance(Duration::from_secs(1));
    let mut fixed = settings(false);
    fixed.start = "fixed-start.sh".to_string();
    s.event(Event::Reload(Box::new(full(fixed))));
    let run = s.in_flight.as_ref().expect("retried at once");
    assert_eq!((run.kind, run.command.as_str()), (Start, "fixed-start.sh"));
    assert_eq!(s.m.status(s.now, 1).consecutive_failures, 0);

    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    assert!(s.in_flight.is_none(), "backing off again");
    s.vip(false);
    s.vip(true);
    assert_eq!(
        s.in_flight_kind(),
        Some(Start),
        "a new MASTER term starts at once"
    );
}

#[test]
fn an_adopted_hook_holds_every_other_hook_until_it_ends() {
    // With is-running: once the adopted start ends, is-running decides.
    let mut s = Sim::with(full(settings(true)), true, |m| m.adopt(Start));
    assert!(s.ran.is_empty(), "nothing runs beside the adopted start");
    assert_eq!(s.m.status(s.now, 1).hook_in_flight, Some(Start));
    assert!(s.m.status(s.now, 1).hook_in_flight_adopted);
    s.vip(false);
    s.vip(true);
    s.tick();
    assert!(s.ran.is_empty());
    s.advance(Duration::from_secs(5));
    s.event(Event::HookFinished(HookResult {
        kind: Start,
        outcome: HookOutcome::Unobserved,
        duration: Duration::from_secs(5),
    }));
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish_ok();
    assert!(s.in_flight.is_none(), "it is running: no second start");
    assert_eq!(s.m.status(s.now, 1).running, Some(true));
    assert_eq!(
        s.m.status(s.now, 1).hooks[&Start]
            .last
            .as_ref()
            .expect("recorded")
            .outcome
            .as_str(),
        "unknown"
    );

    // Without is-running: an adopted start or stop that ended by itself did its job.
    for (kind, vip, running) in [(Start, true, true), (Stop, false, false)] {
        let mut s = Sim::with(full(settings(false)), vip, |m| m.adopt(kind));
        s.event(Event::HookFinished(HookResult {
            kind,
            outcome: HookOutcome::Unobserved,
            duration: Duration::from_secs(1),
        }));
        assert!(s.ran.is_empty(), "{kind}: nothing to run");
        assert_eq!(s.m.status(s.now, 1).running, Some(running));
    }
}

#[test]
fn an_adopted_start_killed_at_its_timeout_is_a_failed_start() {
    let mut s = Sim::with(full(settings(false)), true, |m| m.adopt(Start));
    s.event(Event::HookFinished(HookResult {
        kind: Start,
        outcome: HookOutcome::TimedOut,
        duration: Duration::from_secs(30),
    }));
    assert!(
        s.in_flight.is_none(),
        "retried after the back-off, not at once"
    );
    assert_eq!(s.m.status(s.now, 1).consecutive_failures, 1);
    s.advance(CYCLE);
    assert_eq!(s.in_flight_kind(), Some(Start));
}

#[test]
fn a_recorded_running_state_is_trusted_only_without_is_running() {
    let s = Sim::with(full(settings(false)), true, |m| m.assume_running(true));
    assert!(s.ran.is_empty(), "recorded as running: no second start");
    let s = Sim::with(full(settings(false)), false, |m| m.assume_running(true));
    assert_eq!(s.ran, [Stop], "SLAVE and recorded running");
    let s = Sim::with(full(settings(true)), true, |m| m.assume_running(true));
    assert_eq!(s.ran, [IsRunning], "is-running is asked instead");
}

// ---------------------------------------------------------------------------------------------
// Components

/// Settings with the Libra worker (HAProxy following the role when `follow_role`) and the BGP
/// announcer enabled.
fn with_components(is_running: bool, follow_role: bool) -> Settings {
    let text = format!(
        "keepstart: {{nic: eth0, vip: 192.0.2.10, start: s, stop: t}}\n\
         libra:\n  enabled: true\n  queue: lbaas-test\n  haproxy: {{follow-role: {follow_role}}}\n\
         bgp:\n  enabled: true\n  local-as: 65001\n  router-id: 198.51.100.1\n  \
         neighbors: [{{address: 198.51.100.2, remote-as: 65000}}]\n  loopback: lo\n"
    );
    settings_of(&text, settings(is_running))
}

impl Sim {
    /// The component actions asked since the last call, without their times.
    fn asked(&mut self) -> Vec<Action> {
        self.asked.drain(..).map(|(_, a)| a).collect()
    }

    fn component(&mut self, e: ComponentEvent) {
        self.event(Event::Component(e));
    }
}

fn is_bgp(a: &Action, announce: bool, reread: bool) -> bool {
    matches!(a, Action::Bgp(step) if step.announce == announce && step.reread == reread)
}

#[test]
fn hooks_come_before_the_components_and_the_worker_follows_the_role() {
    let now = Instant::now();
    let mut m = Supervisor::new(with_components(false, false), Role::Master, now);
    let first = m.begin(now);
    assert!(matches!(first[0], Action::RunHook(_)), "{first:?}");
    assert!(matches!(first[1], Action::StartWorker(_)), "{first:?}");

    let mut s = Sim::with(with_components(false, false), false, |_| {});
    assert!(
        !s.asked()
            .iter()
            .any(|a| matches!(a, Action::StartWorker(_))),
        "no worker on SLAVE"
    );
    s.vip(true);
    assert!(
        s.asked()
            .iter()
            .any(|a| matches!(a, Action::StartWorker(_)))
    );
    s.vip(false);
    assert!(s.asked().contains(&Action::StopWorker));
    s.vip(true);
    assert!(s.asked().is_empty(), "still stopping: no second worker yet");
    s.component(ComponentEvent::WorkerStopped);
    assert!(
        s.asked()
            .iter()
            .any(|a| matches!(a, Action::StartWorker(_)))
    );

    // A reload with a changed section restarts the worker.
    let mut changed = with_components(false, false);
    changed.libra.queue = "lbaas-other".to_string();
    s.event(Event::Reload(Box::new(changed)));
    assert!(s.asked().contains(&Action::StopWorker));
    s.component(ComponentEvent::WorkerStopped);
    let asked = s.asked();
    assert!(
        asked
            .iter()
            .any(|a| matches!(a, Action::StartWorker(l) if l.queue == "lbaas-other")),
        "{asked:?}"
    );
}

#[test]
fn a_dead_haproxy_is_started_again_at_once_and_failures_back_off() {
    let mut s = Sim::with(with_components(false, false), true, |_| {});
    let up = |a: &Action| matches!(a, Action::Haproxy(Target::Up, _));
    assert!(s.asked().iter().any(up), "MASTER: HAProxy serves");
    s.component(ComponentEvent::HaproxyDone(Ok(())));
    s.component(ComponentEvent::HaproxyExited);
    assert!(s.asked().iter().any(up), "restarted at once");
    let t0 = s.now;
    s.component(ComponentEvent::HaproxyDone(Err("cannot bind".into())));
    let mut retries = Vec::new();
    while s.now < t0 + Duration::from_secs(10) {
        s.advance(Duration::from_millis(100));
        if s.asked().iter().any(up) {
            retries.push((s.now - t0).as_secs_f64().round());
            s.component(ComponentEvent::HaproxyDone(Err("cannot bind".into())));
        }
    }
    assert_eq!(retries, [1.0, 3.0, 7.0], "1 s, then 2 s, then 4 s");
    s.component(ComponentEvent::HaproxyExited);
    assert!(
        s.asked().is_empty(),
        "an exit while backing off waits for the retry"
    );

    // On SLAVE it is left alone without follow-role, stopped with it.
    s.vip(false);
    assert!(!s.asked().iter().any(|a| matches!(a, Action::Haproxy(..))));
    let mut s = Sim::with(with_components(false, true), false, |_| {});
    assert!(
        s.asked()
            .iter()
            .any(|a| matches!(a, Action::Haproxy(Target::Down, _)))
    );
    s.component(ComponentEvent::HaproxyDone(Ok(())));
    s.component(ComponentEvent::HaproxyExited);
    assert!(s.asked().is_empty(), "stopped is what it should be");
}

#[test]
fn bgp_follows_the_role_retries_and_reapplies_when_bgpd_restarts() {
    let mut s = Sim::with(with_components(false, false), true, |_| {});
    let asked = s.asked();
    assert!(asked.iter().any(|a| is_bgp(a, true, false)), "{asked:?}");
    s.component(ComponentEvent::BgpDone(Err("bgpd is down".into())));
    let t0 = s.now;
    let mut retries = Vec::new();
    while s.now < t0 + Duration::from_secs(15) {
        s.advance(Duration::from_millis(500));
        let announce = |a: &Action| matches!(a, Action::Bgp(step) if step.announce);
        if s.asked().iter().any(announce) {
            retries.push((s.now - t0).as_secs_f64());
            s.component(ComponentEvent::BgpDone(Err("bgpd is down".into())));
        }
    }
    assert_eq!(retries, [2.0, 6.0, 14.0], "2 s, then 4 s, then 8 s");
    // bgpd comes back: seen at the next cycle's look, applied at once, back-off or not.
    s.component(ComponentEvent::FrrChanged);
    assert!(s.asked().iter().any(|a| is_bgp(a, true, true)));
    s.component(ComponentEvent::BgpDone(Ok(())));
    assert_eq!(s.m.status(s.now, 1).components.bgp_announced, Some(true));

    // Every cycle FRR is looked at; every force-test-cycle (3) bgpd's configuration is read.
    let mut looks = 0;
    let mut rereads = 0;
    for _ in 0..6 {
        s.tick();
        for a in s.asked() {
            match a {
                Action::CheckFrr => looks += 1,
                Action::Bgp(step) if step.reread && step.announce => {
                    rereads += 1;
                    s.component(ComponentEvent::BgpDone(Ok(())));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!((looks, rereads), (6, 2));

    // A restart seen while a step is in flight: that step's success does not count.
    s.vip(false);
    assert!(s.asked().iter().any(|a| is_bgp(a, false, false)));
    s.component(ComponentEvent::FrrChanged);
    s.component(ComponentEvent::BgpDone(Ok(())));
    assert!(
        s.asked().iter().any(|a| is_bgp(a, false, true)),
        "told again"
    );
}

#[test]
fn shutdown_lets_the_components_go_at_once_and_exits_when_they_are_done() {
    let mut st = with_components(false, false);
    st.keepstart.stop_on_exit = true;
    let mut s = Sim::with(st, true, |_| {});
    s.finish_ok();
    s.asked();
    s.component(ComponentEvent::HaproxyDone(Ok(())));
    s.component(ComponentEvent::BgpDone(Ok(())));
    s.event(Event::Shutdown);
    assert_eq!(s.in_flight_kind(), Some(Stop), "stop-on-exit");
    let asked = s.asked();
    assert!(asked.contains(&Action::StopWorker), "{asked:?}");
    assert!(
        asked.iter().any(|a| is_bgp(a, false, false)),
        "withdrawn at once: {asked:?}"
    );
    s.finish_ok();
    assert!(!s.exited, "the worker and the withdrawal are not done");
    s.component(ComponentEvent::WorkerStopped);
    assert!(!s.exited);
    s.component(ComponentEvent::BgpDone(Err("bgpd is down".into())));
    assert!(s.exited, "one attempt on the way out");
    assert!(s.asked().is_empty(), "no retry");

    // A worker that does not finish is given up after the grace.
    let mut s = Sim::with(with_components(false, false), true, |_| {});
    s.finish_ok();
    s.asked();
    s.event(Event::Shutdown);
    s.component(ComponentEvent::BgpDone(Ok(())));
    s.advance(EXIT_GRACE - Duration::from_millis(1));
    assert!(!s.exited);
    s.advance(Duration::from_millis(1));
    assert!(s.exited, "the grace is over");
}

#[test]
fn a_bgp_section_from_the_api_is_applied_at_once_and_removed_again() {
    let mut s = Sim::with(with_components(false, false), true, |_| {});
    s.finish_ok();
    s.asked();
    s.component(ComponentEvent::BgpDone(Ok(())));
    let mut other = with_components(false, false).bgp.expect("bgp");
    other.local_as = crate::bgp::model::Asn::new(64999).expect("asn");
    s.event(Event::BgpSection(Box::new(Some(other.clone()))));
    let asked = s.asked();
    assert!(
        asked
            .iter()
            .any(|a| matches!(a, Action::Bgp(step) if step.announce && step.config == Some(other.clone()))),
        "{asked:?}"
    );
    s.component(ComponentEvent::BgpDone(Ok(())));
    s.event(Event::BgpSection(Box::new(None)));
    let asked = s.asked();
    assert!(
        asked
            .iter()
            .any(|a| matches!(a, Action::Bgp(step) if !step.announce && step.config.is_none())),
        "withdrawn through the old section and let go: {asked:?}"
    );
    s.component(ComponentEvent::BgpDone(Ok(())));
    s.tick();
    assert!(
        !s.asked()
            .iter()
            .any(|a| matches!(a, Action::Bgp(_) | Action::CheckFrr)),
        "no announcer left"
    );
}

mod hysteresis;
