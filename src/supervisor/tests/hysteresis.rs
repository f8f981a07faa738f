//! Scenario tests for hysteresis (`rise`, `fall`, `is-running-fall`), with simulated time.

use super::*;
use crate::config::Hysteresis;

const MS: Duration = Duration::from_millis(1);

/// `settings(is_running)` with these hold times (ms) and `is-running-fall`.
fn with(is_running: bool, rise: u32, fall: u32, is_running_fall: u32) -> Keepstart {
    Keepstart {
        hysteresis: Hysteresis {
            rise: MS * rise,
            fall: MS * fall,
            is_running_fall,
        },
        ..settings(is_running)
    }
}

/// A MASTER node whose service was started (no is-running), with `fall` ms.
fn running_master(fall: u32) -> Sim {
    let mut s = Sim::new(with(false, 0, fall, 1), true);
    s.finish_ok();
    assert_eq!(s.ran, [Start]);
    s
}

#[test]
fn a_blip_shorter_than_fall_runs_nothing() {
    let mut s = running_master(500);
    s.vip(false);
    s.advance(MS * 50);
    s.vip(true);
    for _ in 0..5 {
        s.tick();
    }
    assert_eq!(s.ran, [Start], "no stop, no second start");
    let st = s.m.status(s.now, 1);
    assert_eq!((st.role, st.observed_role), (Role::Master, Role::Master));
    assert_eq!((st.transitions, st.pending_role), (0, None));
    assert_eq!(
        s.m.poll_timeout(s.now),
        Some(s.m.next_cycle_at),
        "no deadline left"
    );
}

#[test]
fn a_removal_longer_than_fall_stops_at_exactly_fall() {
    let mut s = running_master(500);
    let gone = s.now;
    s.vip(false);
    assert_eq!(s.m.poll_timeout(s.now), Some(gone + MS * 500));
    s.advance(MS * 499);
    assert_eq!(s.in_flight, None);
    let st = s.m.status(s.now, 1);
    assert_eq!((st.role, st.observed_role), (Role::Master, Role::Slave));
    let pending = st.pending_role.clone().expect("a change is pending");
    assert_eq!(
        (pending.to, pending.since_s, pending.in_s),
        (Role::Slave, 0.499, 0.001)
    );
    assert!(
        st.alive_line()
            .contains("pending_role=SLAVE pending_in=1ms"),
        "{}",
        st.alive_line()
    );
    assert_eq!(
        s.m.standing().role,
        Role::Master,
        "followers keep the acted-on role"
    );
    s.advance(MS);
    assert_eq!(s.now, gone + MS * 500);
    let stop = s.in_flight.clone().expect("stop at fall");
    assert_eq!((stop.kind, stop.role), (Stop, Role::Slave));
    let st = s.m.status(s.now, 1);
    assert_eq!(
        (st.role, st.transitions, st.pending_role),
        (Role::Slave, 1, None)
    );
}

#[test]
fn rise_holds_a_start_the_same_way() {
    let mut s = Sim::new(with(false, 300, 0, 1), false);
    s.vip(true);
    s.advance(MS * 100);
    s.vip(false);
    s.tick();
    assert!(s.ran.is_empty(), "a short appearance starts nothing");
    let seen = s.now;
    s.vip(true);
    s.advance(MS * 299);
    assert!(s.ran.is_empty());
    s.advance(MS);
    assert_eq!((s.in_flight_kind(), s.now), (Some(Start), seen + MS * 300));
    s.finish_ok();
    // fall is 0: a removal acts at once, as without hysteresis.
    s.vip(false);
    assert_eq!(s.in_flight_kind(), Some(Stop));
}

#[test]
fn flapping_faster_than_fall_never_stops_and_the_hold_restarts_each_time() {
    let mut s = running_master(500);
    for _ in 0..50 {
        s.vip(false);
        s.advance(MS * 400);
        s.vip(true);
        s.advance(MS * 100);
    }
    assert_eq!(s.ran, [Start], "400 ms absences never add up to 500 ms");
    let gone = s.now;
    s.vip(false);
    s.advance(MS * 200);
    s.vip(false);
    s.advance(MS * 299);
    assert_eq!(
        s.in_flight, None,
        "a second look does not move the deadline"
    );
    s.advance(MS);
    assert_eq!((s.in_flight_kind(), s.now), (Some(Stop), gone + MS * 500));
}

#[test]
fn reload_while_pending_counts_the_new_fall_from_the_first_observation() {
    let mut s = running_master(500);
    let gone = s.now;
    s.vip(false);
    s.advance(MS * 200);
    s.event(Event::Reload(Box::new(full(with(false, 0, 1000, 1)))));
    assert_eq!(s.m.poll_timeout(s.now), Some(gone + MS * 1000));
    s.advance(MS * 799);
    assert_eq!(s.in_flight, None);
    s.advance(MS);
    assert_eq!(s.in_flight_kind(), Some(Stop));
    s.finish_ok();
    s.vip(true);
    assert_eq!(s.in_flight_kind(), Some(Start), "rise is 0: at once");
    s.finish_ok();

    s.vip(false);
    s.advance(MS * 200);
    s.event(Event::Reload(Box::new(full(with(false, 0, 100, 1)))));
    assert_eq!(
        s.in_flight_kind(),
        Some(Stop),
        "the shorter fall has passed"
    );
    s.finish_ok();
    s.vip(true);
    s.finish_ok();

    s.event(Event::Reload(Box::new(full(with(false, 0, 500, 1)))));
    s.vip(false);
    s.advance(MS * 10);
    s.event(Event::Reload(Box::new(full(settings(false)))));
    assert_eq!(s.in_flight_kind(), Some(Stop), "fall removed: at once");
}

#[test]
fn a_pending_change_lands_during_a_hook_and_acts_when_it_ends() {
    let mut s = Sim::new(with(false, 0, 500, 1), true);
    assert_eq!(s.in_flight_kind(), Some(Start));
    s.vip(false);
    s.advance(MS * 600);
    assert_eq!(
        s.m.role(),
        Role::Slave,
        "landed at fall, start still running"
    );
    assert_eq!(s.m.status(s.now, 1).hook_in_flight, Some(Start));
    s.finish_ok();
    assert_eq!(
        s.in_flight_kind(),
        Some(Stop),
        "the start's end lets SLAVE act"
    );

    // A blip during a hook leaves nothing to do when it ends.
    let mut s = Sim::new(with(false, 0, 500, 1), true);
    s.vip(false);
    s.advance(MS * 50);
    s.vip(true);
    s.finish(HookOutcome::Exited(0), Duration::from_secs(1));
    s.tick();
    assert_eq!(
        (s.ran.as_slice(), s.m.role()),
        ([Start].as_slice(), Role::Master)
    );
}

#[test]
fn a_blip_shorter_than_fall_keeps_the_back_off() {
    let mut s = Sim::new(with(false, 0, 500, 1), true);
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    let retry = s.m.poll_timeout(s.now).expect("a retry");
    assert_eq!(retry, s.now + CYCLE);
    s.advance(MS * 100);
    s.vip(false);
    s.advance(MS * 50);
    s.vip(true);
    assert_eq!(s.in_flight, None, "no new term: the back-off stands");
    assert_eq!(s.m.status(s.now, 1).consecutive_failures, 1);
    s.advance(retry - s.now);
    assert_eq!(s.in_flight_kind(), Some(Start), "retried on schedule");

    // A real removal is a new term: the failures are forgotten.
    s.finish(HookOutcome::Exited(1), Duration::ZERO);
    s.vip(false);
    s.advance(MS * 500);
    assert_eq!(s.m.status(s.now, 1).consecutive_failures, 0);
}

#[test]
fn a_keepalived_fault_with_fall_is_an_absence_like_any_other() {
    let mut s = running_master(500);
    s.keepalived(KeepalivedState::Fault);
    assert_eq!(s.m.role(), Role::Master, "no demotion at once");
    s.advance(MS * 2);
    s.vip(true);
    s.advance(Duration::from_secs(2));
    assert_eq!(
        (s.ran.as_slice(), s.m.role()),
        ([Start].as_slice(), Role::Master)
    );
    assert_eq!(s.keepalived_view().disagreements, 1);

    let since = s.now;
    s.keepalived(KeepalivedState::Fault);
    s.advance(MS * 2);
    s.vip(false);
    s.advance(MS * 497);
    assert_eq!(s.in_flight, None);
    s.advance(MS);
    assert_eq!((s.in_flight_kind(), s.now), (Some(Stop), since + MS * 500));
}

/// A MASTER node with is-running and `is-running-fall: 3` whose service was started and
/// confirmed.
fn checked_master() -> Sim {
    let mut s = Sim::new(with(true, 0, 0, 3), true);
    s.finish(HookOutcome::Exited(1), MS);
    assert_eq!(s.in_flight_kind(), Some(Start));
    s.finish_ok();
    s.tick();
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish_ok();
    assert_eq!(s.ran, [IsRunning, Start, IsRunning]);
    s
}

/// Runs the next is-running (waiting for it) and ends it with exit `code`.
fn next_check(s: &mut Sim, code: i32) {
    let next = s.m.poll_timeout(s.now).expect("a deadline");
    s.advance(next - s.now);
    while s.in_flight.is_none() {
        s.tick();
    }
    assert_eq!(s.in_flight_kind(), Some(IsRunning));
    s.finish(HookOutcome::Exited(code), MS);
}

#[test]
fn is_running_fall_starts_again_only_after_that_many_failures_in_a_row() {
    let mut s = checked_master();
    next_check(&mut s, 1);
    assert_eq!(s.in_flight, None, "one failure is tolerated");
    let st = s.m.status(s.now, 1);
    assert_eq!((st.running, st.is_running_failures), (Some(true), 1));
    assert!(st.alive_line().contains("is_running_failures=1"));
    assert_eq!(
        s.m.standing().healthy,
        Some(true),
        "followers see no failure yet"
    );
    let failed_at = s.now;
    assert_eq!(
        s.m.test_not_before,
        Some(failed_at + CYCLE),
        "the next check comes one cycle later, not after force-test-cycle"
    );
    next_check(&mut s, 1);
    assert_eq!(s.in_flight, None);
    assert_eq!(s.m.status(s.now, 1).is_running_failures, 2);
    next_check(&mut s, 1);
    assert_eq!(s.in_flight_kind(), Some(Start), "the third failure counts");
    assert_eq!(s.m.status(s.now, 1).is_running_failures, 0);
    assert_eq!(s.m.standing().healthy, Some(false));
}

#[test]
fn is_running_fall_resets_on_a_passing_check() {
    let mut s = checked_master();
    for code in [1, 1, 0, 1, 1, 0, 1, 1] {
        next_check(&mut s, code);
        assert_eq!(s.in_flight, None, "never three failures in a row");
    }
    assert_eq!(s.m.status(s.now, 1).is_running_failures, 2);
    assert_eq!(s.ran.iter().filter(|k| **k == Start).count(), 1);
}

#[test]
fn is_running_fall_also_waits_before_calling_a_start_failed() {
    let mut s = Sim::new(with(true, 0, 0, 2), true);
    s.finish(HookOutcome::Exited(1), MS);
    s.finish_ok();
    next_check(&mut s, 1);
    assert_eq!(s.m.status(s.now, 1).consecutive_failures, 0, "tolerated");
    next_check(&mut s, 1);
    let st = s.m.status(s.now, 1);
    assert_eq!((st.consecutive_failures, st.running), (1, Some(false)));
}

#[test]
fn is_running_fall_does_not_delay_the_first_look() {
    let mut s = Sim::new(with(true, 0, 0, 3), true);
    s.finish(HookOutcome::Exited(1), MS);
    assert_eq!(
        s.in_flight_kind(),
        Some(Start),
        "unknown state: one check decides"
    );
}
