//! Hysteresis, off by default: the role the machine acts on follows the VIP only once the VIP
//! has been seen absent for `fall` (present for `rise`), and a service believed running counts
//! as down only after `is-running-fall` failed is-running checks in a row.
//!
//! [`RoleFilter`] sits between the VIP observations and the role: an observation that differs
//! from the acted-on role makes a change pending, due `fall` (or `rise`) after that first
//! observation; an observation of the acted-on role calls it off; the machine reports the due
//! time as a deadline and lands the change when it comes. With a zero hold the change is made at
//! once, as without hysteresis. [`CheckStreak`] counts the failed checks.

use std::time::{Duration, Instant};

use log::info;

use super::components::show_duration;
use super::types::Role;
use crate::config::Hysteresis;

/// A role change waiting for its hold time to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The role the VIP says.
    pub to: Role,
    /// When the VIP was first seen saying it.
    pub since: Instant,
    /// When the change lands unless the VIP says otherwise first.
    pub at: Instant,
}

/// The pending role change, if any. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleFilter {
    pending: Option<Pending>,
}

impl RoleFilter {
    /// Feeds the VIP's verdict `seen` at `now` while the machine acts as `acting`; returns the
    /// role to act on at once, when it changes now.
    pub fn observe(
        &mut self,
        seen: Role,
        acting: Role,
        hysteresis: &Hysteresis,
        now: Instant,
    ) -> Option<Role> {
        if seen == acting {
            if let Some(p) = self.pending.take() {
                info!(
                    "role change called off: the VIP is back role={acting} pending={} for={} hold={}",
                    p.to,
                    show_duration(now.saturating_duration_since(p.since)),
                    show_duration(p.at.saturating_duration_since(p.since))
                );
            }
            return None;
        }
        if self.pending.is_some_and(|p| p.to == seen) {
            return None;
        }
        let hold = hold_for(seen, hysteresis);
        if hold.is_zero() {
            self.pending = None;
            return Some(seen);
        }
        info!(
            "role change pending role={acting} observed={seen} lands_in={}",
            show_duration(hold)
        );
        self.pending = Some(Pending {
            to: seen,
            since: now,
            at: now + hold,
        });
        None
    }

    /// The role to act on, once the pending change is due at `now`.
    pub fn due(&mut self, now: Instant) -> Option<Role> {
        let p = self.pending.filter(|p| now >= p.at)?;
        self.pending = None;
        info!(
            "role change lands role={} observed_for={}",
            p.to,
            show_duration(now.saturating_duration_since(p.since))
        );
        Some(p.to)
    }

    /// New hold times: a pending change is now due its new hold after it was first seen (at
    /// once if that has passed, or if hysteresis for it is now off). Returns the role to act on
    /// when it lands now.
    pub fn reload(&mut self, hysteresis: &Hysteresis, now: Instant) -> Option<Role> {
        if let Some(p) = &mut self.pending {
            p.at = p.since + hold_for(p.to, hysteresis);
        }
        self.due(now)
    }

    /// The pending change.
    pub fn pending(&self) -> Option<Pending> {
        self.pending
    }

    /// When the pending change lands (possibly already passed: it lands at the next event).
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.map(|p| p.at)
    }
}

/// How long the VIP must say `to` before the machine acts on it.
fn hold_for(to: Role, hysteresis: &Hysteresis) -> Duration {
    match to {
        Role::Master => hysteresis.rise,
        Role::Slave => hysteresis.fall,
    }
}

/// Failed is-running checks in a row of a service believed running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckStreak {
    /// The failures counted so far.
    pub failures: u32,
}

impl CheckStreak {
    /// Counts one more failed check; true while the streak is still shorter than `fall`, so
    /// the service still counts as running. Once it reaches `fall` the count starts again.
    pub fn tolerates(&mut self, fall: u32) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.failures < fall {
            return true;
        }
        self.failures = 0;
        false
    }

    /// Forgets the failures (a check passed, or a start or stop changed the service).
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn fall(ms: u64) -> Hysteresis {
        Hysteresis {
            fall: MS * u32::try_from(ms).unwrap(),
            ..Hysteresis::default()
        }
    }

    #[test]
    fn off_changes_at_once() {
        let t0 = Instant::now();
        let mut f = RoleFilter::default();
        let h = Hysteresis::default();
        assert_eq!(
            f.observe(Role::Slave, Role::Master, &h, t0),
            Some(Role::Slave)
        );
        assert_eq!(f.pending(), None);
    }

    #[test]
    fn a_change_waits_from_its_first_observation_and_a_return_calls_it_off() {
        let t0 = Instant::now();
        let mut f = RoleFilter::default();
        let h = fall(500);
        assert_eq!(f.observe(Role::Slave, Role::Master, &h, t0), None);
        assert_eq!(f.deadline(), Some(t0 + MS * 500));
        assert_eq!(
            f.observe(Role::Slave, Role::Master, &h, t0 + MS * 300),
            None
        );
        assert_eq!(
            f.deadline(),
            Some(t0 + MS * 500),
            "kept from the first look"
        );
        assert_eq!(f.due(t0 + MS * 499), None);
        assert_eq!(f.due(t0 + MS * 500), Some(Role::Slave));
        assert_eq!(f.pending(), None);

        assert_eq!(f.observe(Role::Slave, Role::Master, &h, t0), None);
        assert_eq!(
            f.observe(Role::Master, Role::Master, &h, t0 + MS * 50),
            None
        );
        assert_eq!(f.pending(), None);
        assert_eq!(f.due(t0 + MS * 1000), None);
    }

    #[test]
    fn reload_moves_the_deadline_from_the_first_observation() {
        let t0 = Instant::now();
        let mut f = RoleFilter::default();
        f.observe(Role::Slave, Role::Master, &fall(500), t0);
        assert_eq!(f.reload(&fall(1000), t0 + MS * 600), None);
        assert_eq!(f.deadline(), Some(t0 + MS * 1000));
        assert_eq!(f.reload(&fall(200), t0 + MS * 600), Some(Role::Slave));
        f.observe(Role::Slave, Role::Master, &fall(500), t0);
        assert_eq!(
            f.reload(&Hysteresis::default(), t0 + MS * 1),
            Some(Role::Slave)
        );
    }

    #[test]
    fn a_streak_tolerates_fall_minus_one_failures() {
        let mut s = CheckStreak::default();
        assert!(!s.tolerates(1), "1 is off");
        assert!(s.tolerates(3));
        assert!(s.tolerates(3));
        assert!(!s.tolerates(3));
        assert_eq!(s.failures, 0);
        assert!(s.tolerates(3));
        s.reset();
        assert!(s.tolerates(3));
        assert!(s.tolerates(3));
    }
}
