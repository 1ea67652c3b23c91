//! Due computation across real DST changes (Europe/Berlin: 2026-03-29 and
//! 2026-10-25; America/New_York: 2026-03-08 and 2026-11-01), then
//! properties over random spans of 2026–2027.

use std::path::Path;

use chrono::{Datelike, IsoWeek, LocalResult, NaiveDate, TimeZone, Timelike, Weekday};
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use proptest::prelude::*;

use super::*;
use crate::domain::default_catalogue;

/// A schedule with `cron` read in each person's zone.
fn schedule(cron: &str) -> Schedule {
    let text = format!(
        "name = \"t\"\ncron = {cron:?}\ntimezone = \"person\"\nkind = \"trend-post\"\naudience = \"all\"\n"
    );
    crate::schedule::parse(&text, Path::new("t.toml"), &default_catalogue())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn all(s: &Schedule, tz: Tz, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    occurrences(s, tz, after, until).collect()
}

fn local_iso_week(t: DateTime<Utc>, tz: Tz) -> IsoWeek {
    t.with_timezone(&tz).iso_week()
}

/// Weeks from `a` to `b` (ISO weeks of different years compare via Mondays).
fn weeks_between(a: IsoWeek, b: IsoWeek) -> i64 {
    let monday = |w: IsoWeek| NaiveDate::from_isoywd_opt(w.year(), w.week(), Weekday::Mon).unwrap();
    (monday(b) - monday(a)).num_weeks()
}

#[test]
fn thursday_16_00_runs_once_every_week_of_2026_in_both_zones() {
    let s = schedule("0 0 16 * * THU");
    for tz in [Berlin, New_York] {
        let runs = all(&s, tz, utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0));
        // 2026 starts on a Thursday, so it has 53 of them.
        assert_eq!(runs.len(), 53, "{tz}");
        for pair in runs.windows(2) {
            let (a, b) = (local_iso_week(pair[0], tz), local_iso_week(pair[1], tz));
            assert_eq!(weeks_between(a, b), 1, "{tz}: {} then {}", pair[0], pair[1]);
        }
        for run in &runs {
            let local = run.with_timezone(&tz);
            assert_eq!(
                (local.weekday(), local.hour(), local.minute()),
                (Weekday::Thu, 16, 0)
            );
        }
    }
}

#[test]
fn the_utc_instant_moves_with_the_offset_and_the_local_hour_does_not() {
    let s = schedule("0 0 16 * * THU");
    assert_eq!(
        all(&s, Berlin, utc(2026, 3, 20, 0, 0), utc(2026, 4, 5, 0, 0)),
        [utc(2026, 3, 26, 15, 0), utc(2026, 4, 2, 14, 0)]
    );
    assert_eq!(
        all(&s, Berlin, utc(2026, 10, 20, 0, 0), utc(2026, 11, 1, 0, 0)),
        [utc(2026, 10, 22, 14, 0), utc(2026, 10, 29, 15, 0)]
    );
    assert_eq!(
        all(&s, New_York, utc(2026, 3, 1, 0, 0), utc(2026, 3, 15, 0, 0)),
        [utc(2026, 3, 5, 21, 0), utc(2026, 3, 12, 20, 0)]
    );
    assert_eq!(
        all(
            &s,
            New_York,
            utc(2026, 10, 27, 0, 0),
            utc(2026, 11, 8, 0, 0)
        ),
        [utc(2026, 10, 29, 20, 0), utc(2026, 11, 5, 21, 0)]
    );
}

/// Croner runs a fixed-time job whose time falls in the spring-forward gap
/// once, at the first instant after the gap: 03:00 local.
#[test]
fn a_time_in_the_spring_forward_gap_runs_once_at_the_end_of_the_gap() {
    let sunday = schedule("0 30 2 * * SUN");
    assert_eq!(
        all(
            &sunday,
            Berlin,
            utc(2026, 3, 20, 0, 0),
            utc(2026, 4, 6, 0, 0)
        ),
        // 02:30 CET, then 03:00 CEST on the transition Sunday, then 02:30 CEST.
        [
            utc(2026, 3, 22, 1, 30),
            utc(2026, 3, 29, 1, 0),
            utc(2026, 4, 5, 0, 30)
        ]
    );
    assert_eq!(
        all(
            &sunday,
            New_York,
            utc(2026, 3, 1, 0, 0),
            utc(2026, 3, 16, 0, 0)
        ),
        // 02:30 EST, then 03:00 EDT, then 02:30 EDT.
        [
            utc(2026, 3, 1, 7, 30),
            utc(2026, 3, 8, 7, 0),
            utc(2026, 3, 15, 6, 30)
        ]
    );

    // Daily, every day around the change has exactly one run.
    let daily = schedule("0 30 2 * * *");
    for (tz, day) in [(Berlin, 29), (New_York, 8)] {
        let noon = utc(2026, 3, day, 12, 0);
        let runs = all(
            &daily,
            tz,
            noon - Duration::days(3),
            noon + Duration::days(3),
        );
        let dates: Vec<NaiveDate> = runs
            .iter()
            .map(|t| t.with_timezone(&tz).date_naive())
            .collect();
        let expected: Vec<NaiveDate> = (-2..=3)
            .map(|d| noon.date_naive() + Duration::days(d))
            .collect();
        assert_eq!(dates, expected, "{tz}");
        let on_the_day = runs[2].with_timezone(&tz);
        assert_eq!(
            (on_the_day.day(), on_the_day.hour(), on_the_day.minute()),
            (day, 3, 0),
            "{tz}"
        );
    }
}

/// Croner runs a fixed-time job whose time falls in the repeated fall-back
/// hour once, on the first (summer-time) pass.
#[test]
fn a_time_in_the_fall_back_overlap_runs_once_on_the_first_pass() {
    let berlin = schedule("0 30 2 * * SUN");
    assert_eq!(
        all(
            &berlin,
            Berlin,
            utc(2026, 10, 20, 0, 0),
            utc(2026, 11, 2, 0, 0)
        ),
        // 02:30 CEST (not also 02:30 CET an hour later), then 02:30 CET.
        [utc(2026, 10, 25, 0, 30), utc(2026, 11, 1, 1, 30)]
    );
    let new_york = schedule("0 30 1 * * SUN");
    assert_eq!(
        all(
            &new_york,
            New_York,
            utc(2026, 10, 28, 0, 0),
            utc(2026, 11, 9, 0, 0)
        ),
        // 01:30 EDT (not also 01:30 EST), then 01:30 EST.
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 8, 6, 30)]
    );

    // A tick inside the repeated hour, after the run, does not find the
    // second pass: the walk starts on the second pass and knows it.
    let between = utc(2026, 11, 1, 6, 0); // 01:00 EST, the second pass
    assert_eq!(
        all(&new_york, New_York, between, utc(2026, 11, 9, 0, 0)),
        [utc(2026, 11, 8, 6, 30)]
    );
    let d = due(
        &new_york,
        New_York,
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7, 0),
        Duration::hours(24),
    );
    assert!(d.is_empty(), "{d:?}");
}

/// For contrast: an interval job skips wall-clock times in the gap and runs
/// on both passes of the overlap, as croner documents.
#[test]
fn an_interval_job_skips_the_gap_and_runs_on_both_passes_of_the_overlap() {
    let hourly = schedule("0 30 * * * *");
    assert_eq!(
        all(
            &hourly,
            New_York,
            utc(2026, 3, 8, 5, 0),
            utc(2026, 3, 8, 9, 0)
        ),
        // 00:30 EST, 01:30 EST, (no 02:30), 03:30 EDT, 04:30 EDT.
        [
            utc(2026, 3, 8, 5, 30),
            utc(2026, 3, 8, 6, 30),
            utc(2026, 3, 8, 7, 30),
            utc(2026, 3, 8, 8, 30)
        ]
    );
    assert_eq!(
        all(
            &hourly,
            New_York,
            utc(2026, 11, 1, 4, 0),
            utc(2026, 11, 1, 8, 0)
        ),
        // 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST.
        [
            utc(2026, 11, 1, 4, 30),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 6, 30),
            utc(2026, 11, 1, 7, 30)
        ]
    );
}

#[test]
fn the_bounds_are_exclusive_then_inclusive() {
    let s = schedule("0 0 16 * * THU");
    let run = utc(2026, 5, 14, 14, 0); // 16:00 CEST
    assert_eq!(
        all(&s, Berlin, run, run + Duration::days(7)),
        [run + Duration::days(7)]
    );
    assert_eq!(all(&s, Berlin, run - Duration::seconds(1), run), [run]);
    assert!(all(&s, Berlin, run, run).is_empty());
}

#[test]
fn next_runs_are_local_times_in_the_zone() {
    let s = schedule("0 0 16 * * THU");
    let runs = next_runs(&s, Berlin, utc(2026, 3, 20, 0, 0), 2);
    let shown: Vec<String> = runs
        .iter()
        .map(|t| t.format("%a %Y-%m-%d %H:%M %Z").to_string())
        .collect();
    assert_eq!(
        shown,
        ["Thu 2026-03-26 16:00 CET", "Thu 2026-04-02 16:00 CEST"]
    );
}

#[test]
fn due_runs_the_newest_occurrence_within_grace() {
    let s = schedule("0 0 16 * * THU");
    let last = utc(2026, 5, 7, 14, 0);
    let this = utc(2026, 5, 14, 14, 0);
    let grace = Duration::hours(24);

    let d = due(&s, Berlin, last, this + Duration::seconds(30), grace);
    assert_eq!(
        d,
        Due {
            run: Some(this),
            latest: Some(this),
            skipped: 0,
            oldest_skipped: None
        }
    );

    // Before the next occurrence, and with `since` at or after `now`.
    assert!(due(&s, Berlin, last, this - Duration::seconds(1), grace).is_empty());
    assert!(due(&s, Berlin, this, this, grace).is_empty());
    assert!(due(&s, Berlin, this + Duration::days(1), this, grace).is_empty());
    assert_eq!(due(&s, Berlin, last, this, grace).run, Some(this));
}

#[test]
fn due_after_downtime_runs_only_the_newest_and_counts_the_rest() {
    let s = schedule("0 0 16 * * THU");
    let since = utc(2026, 4, 2, 14, 0);
    let newest = utc(2026, 5, 14, 14, 0);
    let grace = Duration::hours(24);

    let d = due(&s, Berlin, since, utc(2026, 5, 14, 20, 0), grace);
    assert_eq!(
        d,
        Due {
            run: Some(newest),
            latest: Some(newest),
            skipped: 5, // Apr 9, 16, 23, 30 and May 7
            oldest_skipped: Some(utc(2026, 4, 9, 14, 0)),
        }
    );

    // Past grace, the newest is skipped too; it is still the latest, so the
    // caller can record it and not report the same weeks again next tick.
    let d = due(
        &s,
        Berlin,
        since,
        newest + grace + Duration::seconds(1),
        grace,
    );
    assert_eq!((d.run, d.latest, d.skipped), (None, Some(newest), 6));
    assert_eq!(
        due(&s, Berlin, since, newest + grace, grace).run,
        Some(newest)
    );
}

#[test]
fn due_bounds_its_work_for_a_per_minute_cron_over_a_year() {
    let s = schedule("0 * * * * *");
    let since = utc(2026, 1, 1, 0, 0);
    let now = utc(2027, 1, 1, 0, 0) + Duration::seconds(30);
    let d = due(&s, Berlin, since, now, Duration::hours(24));
    assert_eq!(d.run, Some(utc(2027, 1, 1, 0, 0)));
    assert_eq!(d.latest, d.run);
    assert_eq!(d.skipped, SKIP_COUNT_LIMIT);
    assert_eq!(d.oldest_skipped, Some(utc(2026, 1, 1, 0, 1)));
}

// ---- properties -----------------------------------------------------------

/// Weekly fixed-time schedules, two of them at a DST-sensitive hour.
const WEEKLY: [&str; 3] = ["0 0 16 * * THU", "0 30 2 * * SUN", "0 30 1 * * SUN"];
/// Every kind of pattern the properties run over.
const PATTERNS: [&str; 5] = [
    "0 0 16 * * THU",
    "0 30 2 * * SUN",
    "0 30 1 * * SUN",
    "0 30 2 * * *",
    "0 30 * * * *",
];
const ZONES: [Tz; 2] = [Berlin, New_York];

/// The DST changes of 2026–2027 in [`ZONES`], as UTC instants.
fn transitions() -> Vec<DateTime<Utc>> {
    vec![
        utc(2026, 3, 29, 1, 0),  // Berlin, spring forward
        utc(2026, 10, 25, 1, 0), // Berlin, fall back
        utc(2027, 3, 28, 1, 0),
        utc(2027, 10, 31, 1, 0),
        utc(2026, 3, 8, 7, 0),  // New York, spring forward
        utc(2026, 11, 1, 6, 0), // New York, fall back
        utc(2027, 3, 14, 7, 0),
        utc(2027, 11, 7, 6, 0),
    ]
}

/// An instant in 2026–2027, to the second: half of them uniform, half
/// within three hours of a DST change, so that spans often start, end or
/// are split inside a gap or a repeated hour, which uniform draws rarely hit.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let start = utc(2026, 1, 1, 0, 0).timestamp();
    let end = utc(2028, 1, 1, 0, 0).timestamp();
    let uniform = (start..end).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap());
    let near_change = (prop::sample::select(transitions()), -3 * 3600..3 * 3600i64)
        .prop_map(|(t, offset)| t + Duration::seconds(offset));
    prop_oneof![uniform, near_change]
}

/// `(since, now)` with `now` up to `max_days` after `since`; half of the
/// spans are at most six hours long, to split around a DST change.
fn span(max_days: i64) -> impl Strategy<Value = (DateTime<Utc>, DateTime<Utc>)> {
    let length = prop_oneof![1..max_days * 86_400, 1..6 * 3600i64];
    (instant(), length).prop_map(|(since, len)| (since, since + Duration::seconds(len)))
}

/// `(since, mid, now)`: `mid` is drawn like any [`instant`], so it is
/// often inside a gap or a repeated hour, and the two sides of the split
/// reach up to `max_days` (or six hours) from it.
fn split_span(
    max_days: i64,
) -> impl Strategy<Value = (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
    let side = || prop_oneof![0..max_days * 86_400, 0..6 * 3600i64];
    (instant(), side(), side()).prop_map(|(mid, before, after)| {
        (
            mid - Duration::seconds(before),
            mid,
            mid + Duration::seconds(after),
        )
    })
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(ZONES.to_vec())
}

/// The local ISO weeks lying wholly inside `(since, now]` in `tz`.
fn full_weeks(tz: Tz, since: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let start_of = |date: NaiveDate| {
        // Midnight exists in both zones (they change at 02:00/03:00).
        tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    };
    let local = since.with_timezone(&tz).date_naive();
    let mut monday = local - Duration::days(i64::from(local.weekday().num_days_from_monday()));
    let mut count = 0;
    while start_of(monday) <= now {
        let next = monday + Duration::days(7);
        if start_of(monday) > since && start_of(next) <= now {
            count += 1;
        }
        monday = next;
    }
    count
}

/// Whether `t` is where a run of the weekly `pattern` belongs in `tz`.
fn at_the_scheduled_local_time(pattern: &str, tz: Tz, t: DateTime<Utc>) -> bool {
    let local = t.with_timezone(&tz);
    let hm = (
        local.weekday(),
        local.hour(),
        local.minute(),
        local.second(),
    );
    match pattern {
        "0 0 16 * * THU" => hm == (Weekday::Thu, 16, 0, 0),
        "0 30 1 * * SUN" | "0 30 2 * * SUN" => {
            let hour = if pattern == "0 30 1 * * SUN" { 1 } else { 2 };
            let intended =
                tz.from_local_datetime(&local.date_naive().and_hms_opt(hour, 30, 0).unwrap());
            match intended {
                // A repeated time runs on its first pass only.
                LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => {
                    hm.0 == Weekday::Sun && local == x
                }
                // A time in the gap runs when the gap ends.
                LocalResult::None => hm == (Weekday::Sun, 3, 0, 0),
            }
        }
        _ => unreachable!("not a weekly pattern: {pattern}"),
    }
}

/// Occurrences (run or skipped) that one `due` result accounts for.
fn accounted(d: &Due) -> usize {
    d.skipped + usize::from(d.run.is_some())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_weekly_schedule_runs_once_per_iso_week(
        pattern in prop::sample::select(WEEKLY.to_vec()),
        tz in zone(),
        (since, now) in span(42),
    ) {
        let s = schedule(pattern);
        let runs = all(&s, tz, since, now);
        for pair in runs.windows(2) {
            let (a, b) = (local_iso_week(pair[0], tz), local_iso_week(pair[1], tz));
            prop_assert_eq!(weeks_between(a, b), 1, "{} then {}", pair[0], pair[1]);
        }
        for &run in &runs {
            prop_assert!(at_the_scheduled_local_time(pattern, tz, run), "{} in {}", run, tz);
        }
        // Every whole week in the span has its run; each end may add one.
        let full = full_weeks(tz, since, now);
        prop_assert!((full..=full + 2).contains(&runs.len()), "{} runs, {} full weeks", runs.len(), full);
    }

    #[test]
    fn occurrences_increase_strictly_within_the_span(
        pattern in prop::sample::select(PATTERNS.to_vec()),
        tz in zone(),
        (since, now) in span(21),
    ) {
        let runs = all(&schedule(pattern), tz, since, now);
        prop_assert!(runs.windows(2).all(|p| p[0] < p[1]));
        prop_assert!(runs.iter().all(|t| since < *t && *t <= now));
    }

    #[test]
    fn splitting_a_span_finds_the_same_occurrences(
        pattern in prop::sample::select(PATTERNS.to_vec()),
        tz in zone(),
        (since, mid, now) in split_span(10),
    ) {
        let s = schedule(pattern);
        let mut split = all(&s, tz, since, mid);
        split.extend(all(&s, tz, mid, now));
        prop_assert_eq!(split, all(&s, tz, since, now));
    }

    #[test]
    fn due_runs_only_inside_the_span_and_accounts_for_every_occurrence(
        pattern in prop::sample::select(PATTERNS.to_vec()),
        tz in zone(),
        (since, now) in span(21),
        grace_hours in 1..72i64,
    ) {
        let s = schedule(pattern);
        let grace = Duration::hours(grace_hours);
        let d = due(&s, tz, since, now, grace);
        let runs = all(&s, tz, since, now);
        if let Some(run) = d.run {
            prop_assert!(since < run && run <= now && now - run <= grace, "{:?}", d);
            prop_assert_eq!(d.latest, Some(run));
        }
        prop_assert_eq!(d.latest, runs.last().copied());
        prop_assert_eq!(accounted(&d), runs.len());
        prop_assert_eq!(d.oldest_skipped, runs.first().copied().filter(|_| d.skipped > 0));
    }

    #[test]
    fn due_split_over_two_ticks_neither_doubles_nor_skips(
        pattern in prop::sample::select(PATTERNS.to_vec()),
        tz in zone(),
        (since, mid, now) in split_span(10),
        grace_hours in 1..72i64,
    ) {
        let s = schedule(pattern);
        let grace = Duration::hours(grace_hours);
        let once = due(&s, tz, since, now, grace);
        let first = due(&s, tz, since, mid, grace);
        // The caller records `latest`, and the next tick starts after it.
        let second = due(&s, tz, first.latest.unwrap_or(since), now, grace);
        prop_assert_eq!(accounted(&first) + accounted(&second), accounted(&once));
        prop_assert_eq!(second.latest.or(first.latest), once.latest);
        if let (Some(a), Some(b)) = (first.run, second.run) {
            prop_assert!(a < b);
        }
    }
}
