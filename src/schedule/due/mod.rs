//! When a schedule is due (ARCHITECTURE.md, "Scheduling"): pure functions of a schedule, a zone
//! and instants, no clock.
//!
//! The cron expression is read in the wall clock of `zone` (croner 4 walks
//! wall-clock time and resolves each match to a real instant), and results
//! are returned as UTC instants, the form that is stored and compared. Every
//! walk starts from the exact instant in `zone`, so croner knows which pass
//! of a repeated fall-back hour it is on, and each step resumes from the
//! instant the previous one returned. That is what makes a walk split across
//! ticks find the same occurrences as one walk.
//!
//! Croner's DST rules, observed and asserted in the tests below:
//!
//! - a fixed-time schedule (single second, minute and hour, e.g.
//!   `0 30 2 * * SUN`) whose wall-clock time falls in a spring-forward gap
//!   runs once, at the first instant after the gap (03:00 local);
//! - a fixed-time schedule in a fall-back overlap runs once, at the first
//!   (summer-time) pass;
//! - an interval schedule (`0 30 * * * *`) skips the times in a gap and runs
//!   on both passes of an overlap, since each pass is a real hour.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;

use super::Schedule;

/// The most occurrences [`due`] walks one by one. Past it, [`due`] stops
/// counting and jumps to the newest, so a per-minute cron after months of
/// downtime costs a bounded amount of work (a few milliseconds) rather than
/// one step per missed minute. The count only feeds a log line and a metric.
pub const SKIP_COUNT_LIMIT: usize = 1000;

/// What to do about one schedule for one person at one tick: the result of
/// [`due`] for the occurrences in `(since, now]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// The occurrence to run now: the newest in `(since, now]`, if it is at
    /// most `grace` old. Only one is ever run, however many were missed.
    pub run: Option<DateTime<Utc>>,
    /// The newest occurrence in `(since, now]`, whether run or skipped. The
    /// caller records it (claims it) so the next call's `since` starts after
    /// it; otherwise skipped occurrences would be reported again each tick.
    pub latest: Option<DateTime<Utc>>,
    /// How many occurrences in `(since, now]` are not run: all but the
    /// newest, and the newest too when it is older than `grace`. Counted up
    /// to [`SKIP_COUNT_LIMIT`]; that value means "at least that many".
    pub skipped: usize,
    /// The oldest skipped occurrence, for the log line; `None` when nothing
    /// was skipped.
    pub oldest_skipped: Option<DateTime<Utc>>,
}

impl Due {
    /// Whether nothing fell due in `(since, now]`.
    pub fn is_empty(&self) -> bool {
        self.latest.is_none()
    }
}

/// The occurrences of `schedule` strictly after `after` and up to and
/// including `until`, in increasing order, read in `zone`'s wall clock.
///
/// Lazy and unbounded in count: a per-second cron over a year yields
/// millions. [`due`] is the bounded form the dispatcher uses.
pub fn occurrences(
    schedule: &Schedule,
    zone: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Utc>> {
    walk(&schedule.cron, zone, after)
        .map(|t| t.with_timezone(&Utc))
        .take_while(move |t| *t <= until)
}

/// The next `n` occurrences of `schedule` strictly after `after`, as local
/// times in `zone` (what `nudged check` prints).
pub fn next_runs(
    schedule: &Schedule,
    zone: Tz,
    after: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Tz>> {
    walk(&schedule.cron, zone, after).take(n).collect()
}

/// Which occurrence of `schedule`, read in `zone`, to run at `now`, given
/// that everything up to `since` is done.
///
/// `since` is the last claimed occurrence, or the daemon's first start on a
/// fresh store; the caller picks it, which is how nothing from before the
/// first start is caught up. Only the newest occurrence in `(since, now]`
/// can run, and only within `grace` of `now`: after downtime a person gets
/// one prompt, not one per missed week, and never a stale one.
pub fn due(
    schedule: &Schedule,
    zone: Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Due {
    let mut missed = occurrences(schedule, zone, since, now);
    let Some(oldest) = missed.next() else {
        return Due::default();
    };
    let mut latest = oldest;
    let mut count = 1;
    for t in missed.by_ref() {
        latest = t;
        count += 1;
        if count > SKIP_COUNT_LIMIT {
            break;
        }
    }
    if count > SKIP_COUNT_LIMIT {
        // Too many to walk: search backwards from `now` for the newest. The
        // guard keeps the answer inside `(since, now]` whatever croner says.
        let newest = schedule
            .cron
            .find_previous_occurrence(&now.with_timezone(&zone), true)
            .map(|t| t.with_timezone(&Utc));
        if let Ok(newest) = newest
            && newest > latest
            && newest <= now
        {
            latest = newest;
        }
    }

    let run = (now - latest <= grace).then_some(latest);
    let skipped = (count - usize::from(run.is_some())).min(SKIP_COUNT_LIMIT);
    Due {
        run,
        latest: Some(latest),
        skipped,
        oldest_skipped: (skipped > 0).then_some(oldest),
    }
}

/// Every occurrence of `cron` strictly after `after`, in `zone`.
fn walk(cron: &Cron, zone: Tz, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Tz>> {
    // The instant itself, not its wall-clock reading: in a repeated hour the
    // offset tells croner which pass the walk is on.
    let mut cursor = after.with_timezone(&zone);
    std::iter::from_fn(move || {
        // An error is croner's search limit (a pattern with no date within
        // reach, refused when the file is loaded) or the end of its years.
        let next = cron.find_next_occurrence(&cursor, false).ok()?;
        // Croner promises a strictly later instant; if it ever did not, end
        // the walk rather than loop on one occurrence forever.
        if next <= cursor {
            return None;
        }
        cursor = next;
        Some(next)
    })
}

#[cfg(test)]
mod tests;
