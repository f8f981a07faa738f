//! The role-detection latency, kept pure: from the VIP watcher's reading that changed the VIP's
//! presence against the role acted on, to the start or stop hook spawned for it. A change the
//! VIP takes back before the role follows is called off; one whose role is taken with nothing
//! left to run (the service was already in the state the role wants) is dropped, so a later
//! hook is never timed against it.

use std::time::{Duration, Instant};

use crate::supervisor::{HookKind, Role};

/// The change waiting for its hook, if any.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// The VIP's presence it saw, and when.
    waiting: Option<(bool, Instant)>,
}

impl Detection {
    /// The watcher read `present` at `seen`, while `role` is acted on.
    pub fn reading(&mut self, present: bool, seen: Instant, role: Role) {
        if Role::from_vip(present) == role {
            // Back where the role is: a change still waiting for the other role is called off.
            self.waiting = self.waiting.filter(|(p, _)| *p == present);
        } else if self.waiting.is_none_or(|(p, _)| p != present) {
            self.waiting = Some((present, seen));
        }
    }

    /// A hook of `kind` is spawned at `now`: the latency, when it answers the waiting change.
    pub fn spawned(&mut self, kind: HookKind, now: Instant) -> Option<Duration> {
        let (present, seen) = self.waiting?;
        let answers = match kind {
            HookKind::Start => present,
            HookKind::Stop => !present,
            HookKind::IsRunning => false,
        };
        answers.then(|| {
            self.waiting = None;
            now.saturating_duration_since(seen)
        })
    }

    /// After an input: `role` is acted on and a hook is in flight or not. A change whose role
    /// is taken with no hook running needs none.
    pub fn settled(&mut self, role: Role, hook_in_flight: bool) {
        if let Some((present, _)) = self.waiting
            && Role::from_vip(present) == role
            && !hook_in_flight
        {
            self.waiting = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn times_the_first_reading_to_its_hook() {
        let t = Instant::now();
        let mut d = Detection::default();
        d.reading(true, t, Role::Slave);
        // A re-read during `rise` keeps the first time.
        d.reading(true, t + 5 * MS, Role::Slave);
        assert_eq!(d.spawned(HookKind::IsRunning, t + 6 * MS), None);
        assert_eq!(d.spawned(HookKind::Stop, t + 6 * MS), None);
        assert_eq!(d.spawned(HookKind::Start, t + 7 * MS), Some(7 * MS));
        assert_eq!(d.spawned(HookKind::Start, t + 8 * MS), None);
    }

    #[test]
    fn a_change_taken_back_or_needing_no_hook_is_dropped() {
        let t = Instant::now();
        let mut d = Detection::default();
        d.reading(false, t, Role::Master);
        d.reading(true, t + MS, Role::Master);
        assert_eq!(d.spawned(HookKind::Stop, t + 2 * MS), None);

        d.reading(false, t, Role::Master);
        // SLAVE taken while a hook still runs: the stop hook is still to come.
        d.settled(Role::Slave, true);
        d.reading(false, t + MS, Role::Slave);
        assert_eq!(d.spawned(HookKind::Stop, t + 3 * MS), Some(3 * MS));

        d.reading(true, t, Role::Slave);
        // MASTER taken, nothing runs (the service was running already).
        d.settled(Role::Master, false);
        assert_eq!(d.spawned(HookKind::Start, t + 9 * MS), None);
    }
}
