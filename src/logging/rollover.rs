//! When a rolling log file rolls over, as pure decisions on size and local time: by size before
//! a record that would take the file to `maxBytes` (Python's `RotatingFileHandler` rule), by time
//! before the first record at or after the next period boundary (the boundaries log4rs's time
//! trigger uses: the next whole second, minute or hour, midnight, or Monday midnight, plus the
//! interval's count). Moving the files is log4rs's rollers' job.

use chrono::{Datelike, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

/// A `TimedRotatingFileHandler` period: a unit and how many of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Interval {
    Second(i64),
    Minute(i64),
    Hour(i64),
    Day(i64),
    /// Weeks starting on Monday.
    Week(i64),
}

impl Interval {
    /// The first boundary after `now`: the start of `now`'s second, minute, hour, day or week,
    /// plus the count. A count too large for the calendar never comes.
    pub(super) fn next_after(self, now: NaiveDateTime) -> NaiveDateTime {
        let midnight = now.date().and_time(NaiveTime::MIN);
        let hour = midnight + TimeDelta::hours(i64::from(now.hour()));
        let minute = hour + TimeDelta::minutes(i64::from(now.minute()));
        let (start, step) = match self {
            Interval::Second(n) => (
                minute + TimeDelta::seconds(i64::from(now.second())),
                TimeDelta::try_seconds(n),
            ),
            Interval::Minute(n) => (minute, TimeDelta::try_minutes(n)),
            Interval::Hour(n) => (hour, TimeDelta::try_hours(n)),
            Interval::Day(n) => (midnight, TimeDelta::try_days(n)),
            Interval::Week(n) => (
                midnight - TimeDelta::days(i64::from(now.weekday().num_days_from_monday())),
                TimeDelta::try_weeks(n),
            ),
        };
        step.and_then(|step| start.checked_add_signed(step))
            .unwrap_or(NaiveDateTime::MAX)
    }
}

/// When to roll over.
#[derive(Debug)]
pub(super) enum Trigger {
    /// Before a record that would make the file this many bytes or more.
    Size(u64),
    /// Before the first record at or after `next`, local time.
    Time {
        interval: Interval,
        next: NaiveDateTime,
    },
}

impl Trigger {
    /// A time trigger whose first boundary is the one after `now`.
    pub(super) fn time(interval: Interval, now: NaiveDateTime) -> Self {
        Trigger::Time {
            interval,
            next: interval.next_after(now),
        }
    }

    /// Whether to roll over before writing `record` bytes to a file of `len` bytes; `now` tells
    /// the local time, asked only by a time trigger. One that fires moves on to the boundary
    /// after `now`, so a failed roll-over is not retried for every record until the next one.
    pub(super) fn fires(
        &mut self,
        len: u64,
        record: u64,
        now: impl FnOnce() -> NaiveDateTime,
    ) -> bool {
        match self {
            // An empty file is never rolled, even for a record bigger than the limit.
            Trigger::Size(max) => len > 0 && len.saturating_add(record) >= *max,
            Trigger::Time { interval, next } => {
                let now = now();
                if now < *next {
                    return false;
                }
                *next = interval.next_after(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    /// 2024-05-15 (a Wednesday) at `h:m:s.ms`.
    fn at(day: u32, h: u32, m: u32, s: u32, ms: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 5, day)
            .and_then(|d| d.and_hms_milli_opt(h, m, s, ms))
            .unwrap()
    }

    #[test]
    fn boundaries_are_period_starts_plus_the_count() {
        let now = at(15, 13, 45, 30, 500);
        let cases = [
            (Interval::Second(1), at(15, 13, 45, 31, 0)),
            (Interval::Second(90), at(15, 13, 47, 0, 0)),
            (Interval::Minute(5), at(15, 13, 50, 0, 0)),
            (Interval::Hour(1), at(15, 14, 0, 0, 0)),
            (Interval::Hour(12), at(16, 1, 0, 0, 0)),
            (Interval::Day(1), at(16, 0, 0, 0, 0)),
            (Interval::Day(2), at(17, 0, 0, 0, 0)),
            (Interval::Week(1), at(20, 0, 0, 0, 0)),
            (Interval::Week(2), at(27, 0, 0, 0, 0)),
            (Interval::Day(i64::MAX), NaiveDateTime::MAX),
        ];
        for (interval, want) in cases {
            assert_eq!(interval.next_after(now), want, "{interval:?}");
        }
    }

    #[test]
    fn size_rolls_before_a_record_that_would_reach_the_limit() {
        let mut size = Trigger::Size(100);
        let now = || -> NaiveDateTime { panic!("a size trigger needs no clock") };
        assert!(!size.fires(0, 500, now), "an empty file stays");
        assert!(!size.fires(50, 49, now));
        assert!(size.fires(50, 50, now));
        assert!(size.fires(120, 1, now));
    }

    #[test]
    fn time_fires_once_per_boundary() {
        let mut hourly = Trigger::time(Interval::Hour(1), at(15, 13, 10, 0, 0));
        let mut fires_at = |len, now| hourly.fires(len, 10, || now);
        assert!(!fires_at(10, at(15, 13, 59, 59, 999)));
        assert!(fires_at(10, at(15, 14, 0, 0, 0)));
        assert!(!fires_at(0, at(15, 14, 30, 0, 0)));
        assert!(fires_at(0, at(15, 17, 5, 0, 0)), "late records roll once");
        assert!(!fires_at(10, at(15, 17, 6, 0, 0)));
        assert!(fires_at(10, at(15, 18, 0, 0, 0)));
    }
}
