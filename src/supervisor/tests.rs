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
    }
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
}

impl Sim {
    fn new(settings: Keepstart, vip_present: bool) -> Self {
        let now = Instant::now();
        let m = Supervisor::new(settings, Role::from_vip(vip_present), now);
        let mut sim = Sim {
            m,
            now,
            in_flight: None,
            ran: Vec::new(),
            reports: 0,
            exited: false,
            service_up: false,
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

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn tick(&mut self) {
        self.advance(CYCLE);
        self.event(Event::Tick);
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
    assert_eq!(st.hooks[&Start].last.as_ref().unwrap().outcome, "timeout");
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
    s.event(Event::Reload(Box::new(new)));
    assert_eq!(s.ran, [Start], "reload runs no hook");
    s.finish_ok();
    s.event(Event::Reload(Box::new(settings(false))));
    assert_eq!(s.ran, [Start]);
    let mut new = settings(false);
    new.stop = "new-stop.sh".into();
    s.event(Event::Reload(Box::new(new)));
    s.vip(false);
    assert_eq!(s.in_flight.as_ref().unwrap().command, "new-stop.sh");
}

#[test]
fn reload_adding_is_running_uses_it_on_the_next_force_cycle() {
    let mut s = Sim::new(settings(false), true);
    s.finish_ok();
    s.event(Event::Reload(Box::new(settings(true))));
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
        (view.state, view.source, view.events, view.disagreements),
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
    s.event(Event::Tick);
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
    assert_eq!((view.source, view.instance), ("notify", None));
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
