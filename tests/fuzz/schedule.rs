//! Target: schedule files ([`nudged::schedule::parse`]) and, for every file
//! that loads, when it is due ([`next_runs`], [`due`]). Files have the real
//! keys with random values of every TOML type (crons built from croner's
//! field syntax, real and made-up zones), missing, repeated and unknown
//! keys, and byte damage; plus arbitrary text.
//!
//! Besides "never panics": every error names the file and, unless the text
//! is not TOML at all, a key of the format; a loaded schedule is what the
//! format promises, and its occurrences move forward within the window
//! asked for.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use nudged::domain::default_catalogue;
use nudged::schedule::{Audience, SKIP_COUNT_LIMIT, due, next_runs, parse};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use toml::Value;

use crate::inputs::{Damage, damage, slack_text, user_id};
use crate::support::Target;

/// The keys of a schedule file.
const KEYS: &[&str] = &[
    "name",
    "cron",
    "timezone",
    "kind",
    "questions",
    "audience",
    "fallback_timezone",
];

/// Zones as they may be written: real ones with odd offsets and DST rules,
/// near misses and nonsense.
const ZONES: &[&str] = &[
    "UTC",
    "person",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Etc/GMT+12",
    "Etc/GMT-14",
    "Antarctica/Troll",
    "America/Sao_Paulo",
    "Africa/Casablanca",
    "europe/berlin",
    " UTC ",
    "Mars/Olympus",
    "",
    "+02:00",
    "Person",
    "local",
];

/// One field of a cron expression, from croner's syntax and near it.
fn cron_field() -> impl Strategy<Value = String> + Clone {
    let atom = prop_oneof![
        3 => Just("*".to_owned()),
        1 => Just("?".to_owned()),
        4 => (0u32..70).prop_map(|n| n.to_string()),
        2 => (0u32..62, 0u32..62).prop_map(|(a, b)| format!("{a}-{b}")),
        2 => (0u32..62).prop_map(|n| format!("*/{n}")),
        1 => (0u32..62, 0u32..62, 0u32..62).prop_map(|(a, b, n)| format!("{a}-{b}/{n}")),
        1 => prop::sample::select(&[
            "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "mon", "JAN", "FEB", "DEC", "L",
            "5L", "W", "15W", "LW", "L-2", "MON#2", "5#5", "FRI#6", "#", "MON-FRI", "SUN-SAT",
            "1/0", "99999999999", "-1", "0x1", "*/", ",", "--",
        ][..]).prop_map(str::to_owned),
    ];
    prop::collection::vec(atom, 1..3).prop_map(|atoms| atoms.join(","))
}

fn cron() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        8 => prop::collection::vec(cron_field(), 4..8).prop_map(|f| f.join(" ")),
        1 => prop::sample::select(&[
            "0 0 16 * * THU", "0 16 * * THU", "@daily", "@weekly", "@hourly", "@yearly",
            "@reboot", "0 0 12 31 2 *", "0 0 0 29 2 MON", "* * * * * *", "", "   ",
        ][..]).prop_map(str::to_owned),
    ]
}

fn string(s: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Value> + Clone {
    s.prop_map(Value::String)
}

/// Any TOML value, a few levels deep.
fn any_value() -> impl Strategy<Value = Value> + Clone {
    let leaf = prop_oneof![
        string(slack_text(4)),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        Just(Value::Datetime("2026-11-19T16:05:00Z".parse().unwrap())),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
}

/// A value for `key`: mostly of the kind the format expects.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let ids: Vec<String> = default_catalogue()
        .questions()
        .iter()
        .map(|q| q.id.to_string())
        .chain(["mood".to_owned(), " focus ".to_owned(), "Focus".to_owned()])
        .collect();
    let expected: BoxedStrategy<Value> = match key {
        "name" => string(prop_oneof![4 => "[a-z-]{1,12}", 1 => slack_text(3)]).boxed(),
        "cron" => string(cron()).boxed(),
        "timezone" | "fallback_timezone" => string(prop::sample::select(ZONES).prop_map(str::to_owned)).boxed(),
        "kind" => string(
            prop::sample::select(&["checkin", "reminder", "trend-post", "Checkin", "trend_post", " checkin", ""][..])
                .prop_map(str::to_owned),
        )
        .boxed(),
        "questions" => prop::collection::vec(string(prop::sample::select(ids)), 0..9)
            .prop_map(Value::Array)
            .boxed(),
        "audience" => prop_oneof![
            2 => string(prop::sample::select(&["all", " all ", "All", "everyone"][..]).prop_map(str::to_owned)),
            2 => prop::collection::vec(string(prop_oneof![3 => prop::sample::select(&["U1", "U2"][..]).prop_map(str::to_owned), 1 => user_id()]), 0..4)
                .prop_map(Value::Array),
        ]
        .boxed(),
        _ => any_value().boxed(),
    };
    prop_oneof![6 => expected, 1 => any_value()].boxed()
}

/// A schedule file: each key present or not, maybe twice, maybe unknown
/// ones, written as TOML lines, then maybe damaged.
fn schedule_file() -> impl Strategy<Value = String> {
    let entries: Vec<BoxedStrategy<Option<(String, Value)>>> = KEYS
        .iter()
        .map(|key| {
            prop_oneof![
                1 => Just(None),
                6 => value_for(key).prop_map(move |v| Some(((*key).to_owned(), v))),
            ]
            .boxed()
        })
        .collect();
    let unknown = prop::collection::vec(
        (
            prop::sample::select(&["extra", "Name", "crons", "audiences", "timezone"][..]),
            any_value(),
        ),
        0..2,
    );
    (entries, unknown, any::<bool>(), damage()).prop_map(|(entries, unknown, comments, damage)| {
        let mut text = String::new();
        for (key, value) in entries
            .into_iter()
            .flatten()
            .chain(unknown.into_iter().map(|(k, v)| (k.to_owned(), v)))
        {
            if comments {
                text.push_str("# a comment\n\n");
            }
            text.push_str(&format!("{key} = {value}\n"));
        }
        if matches!(damage, Damage::Nest(_)) {
            return text;
        }
        String::from_utf8_lossy(&damage.apply(text.into_bytes())).into_owned()
    })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2200: the years a daemon may be asked about.
    (0i64..7_258_118_400).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

fn check(
    text: &str,
    since: DateTime<Utc>,
    span_minutes: i64,
    person_tz: Option<Tz>,
) -> TestCaseResult {
    let file = Path::new("schedules/fuzz.toml");
    let catalogue = default_catalogue();
    match parse(text, file, &catalogue) {
        Err(e) => {
            prop_assert_eq!(&e.file, file);
            let shown = e.to_string();
            prop_assert!(!shown.contains('\n'), "{:?}", shown);
            if !e.problem.starts_with("not valid TOML") {
                let base = e.key.split('[').next().unwrap_or_default();
                prop_assert!(
                    KEYS.contains(&base) || e.problem.starts_with("unknown key"),
                    "names no key of the format: {}",
                    shown
                );
            }
        }
        Ok(schedule) => {
            prop_assert!(!schedule.name.is_empty() && schedule.name.trim() == schedule.name);
            let mut questions = schedule.questions.clone();
            prop_assert!(
                questions
                    .iter()
                    .all(|q| catalogue.get(q.as_str()).is_some())
            );
            questions.sort();
            questions.dedup();
            prop_assert_eq!(questions.len(), schedule.questions.len());
            prop_assert!(!(schedule.kind.needs_questions() && questions.is_empty()));
            if let Audience::People(people) = &schedule.audience {
                prop_assert!(!people.is_empty());
            }
            let zone = schedule.zone_for(person_tz);
            let runs = next_runs(&schedule, zone, since, 3);
            let mut previous = since;
            for run in &runs {
                let run = run.with_timezone(&Utc);
                prop_assert!(
                    run > previous,
                    "{} after {} in {}",
                    run,
                    previous,
                    schedule.cron_text
                );
                previous = run;
            }
            let now = since + Duration::minutes(span_minutes);
            let grace = Duration::hours(24);
            let due = due(&schedule, zone, since, now, grace);
            for t in due.run.iter().chain(&due.latest).chain(&due.oldest_skipped) {
                prop_assert!(
                    since < *t && *t <= now,
                    "{} outside ({}, {}]",
                    t,
                    since,
                    now
                );
            }
            if let Some(run) = due.run {
                prop_assert!(now - run <= grace);
                prop_assert_eq!(due.latest, Some(run));
            }
            prop_assert!(due.skipped <= SKIP_COUNT_LIMIT);
        }
    }
    Ok(())
}

#[test]
fn schedule_files_load_or_name_the_key() {
    let target = Target {
        name: "schedule/files",
        regressions: "tests/fuzz/regressions/schedule-files.txt",
        per_mille: 1000,
    };
    let zone = prop_oneof![
        Just(None),
        Just(Some(Tz::Europe__Berlin)),
        Just(Some(Tz::Australia__Lord_Howe))
    ];
    let inputs = (schedule_file(), instant(), 0i64..=400 * 24 * 60, zone);
    target.run(inputs, |(text, since, span, zone)| {
        check(&text, since, span, zone)
    });
}

#[test]
fn arbitrary_text_is_refused_without_panic() {
    let target = Target {
        name: "schedule/raw",
        regressions: "tests/fuzz/regressions/schedule-raw.txt",
        per_mille: 1000,
    };
    let text = prop_oneof![any::<String>(), "[a-z_ =\"'\\[\\],\n#*0-9{}.:+-]{0,120}",];
    target.run((text, instant()), |(text, since)| {
        check(&text, since, 60, None)
    });
}
