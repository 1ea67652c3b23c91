//! Each mistake a schedule file can hold, and the line a person sees.

use std::fs;

use chrono::{Datelike, TimeZone, Timelike, Weekday};

use super::*;
use crate::domain::default_catalogue;
use crate::schedule::next_runs;

const VALID: &str = r#"
name = "weekly-checkin"
cron = "0 0 16 * * THU"
timezone = "person"
kind = "checkin"
questions = ["decisions", "stakeholders", "tradeoffs"]
audience = "all"
"#;

fn file() -> &'static Path {
    Path::new("schedules/weekly-checkin.toml")
}

fn parse_ok(text: &str) -> Schedule {
    parse(text, file(), &default_catalogue()).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> ScheduleError {
    parse(text, file(), &default_catalogue()).expect_err("schedule should be rejected")
}

/// `text` with the line that starts with `key =` replaced by `line`.
fn with_in(text: &str, key: &str, line: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with(&format!("{key} =")) {
                line
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without its `key` line.
fn without_in(text: &str, key: &str) -> String {
    with_in(text, key, "")
}

fn with(key: &str, line: &str) -> String {
    with_in(VALID, key, line)
}

fn without(key: &str) -> String {
    without_in(VALID, key)
}

#[test]
fn a_valid_file_becomes_a_typed_schedule() {
    let s = parse_ok(VALID);
    assert_eq!(s.name, "weekly-checkin");
    assert_eq!(s.cron_text, "0 0 16 * * THU");
    assert_eq!(s.zone, ScheduleZone::Person { fallback: Tz::UTC });
    assert_eq!(s.kind, ScheduleKind::Checkin);
    assert_eq!(s.kind.as_str(), "checkin");
    let ids: Vec<_> = s.questions.iter().map(|q| q.as_str()).collect();
    assert_eq!(ids, ["decisions", "stakeholders", "tradeoffs"]);
    assert_eq!(s.audience, Audience::All);
}

#[test]
fn a_fixed_zone_a_fallback_and_a_list_audience_are_read() {
    let s = parse_ok(&with("timezone", r#"timezone = "America/New_York""#));
    assert_eq!(s.zone, ScheduleZone::Fixed(chrono_tz::America::New_York));
    assert_eq!(
        s.zone_for(Some(chrono_tz::Europe::Berlin)),
        chrono_tz::America::New_York
    );

    let s = parse_ok(&format!("{VALID}\nfallback_timezone = \"Europe/Berlin\"\n"));
    assert_eq!(
        s.zone,
        ScheduleZone::Person {
            fallback: chrono_tz::Europe::Berlin
        }
    );
    assert_eq!(s.zone_for(None), chrono_tz::Europe::Berlin);
    assert_eq!(
        s.zone_for(Some(chrono_tz::Asia::Tokyo)),
        chrono_tz::Asia::Tokyo
    );

    let s = parse_ok(&with(
        "audience",
        r#"audience = ["U024BE7LH", "ana.lopez@example.com"]"#,
    ));
    let ana = PersonId::parse("ana.lopez@example.com").unwrap();
    assert!(s.includes(&ana));
    assert!(!s.includes(&PersonId::parse("U999").unwrap()));
    assert!(parse_ok(VALID).includes(&PersonId::parse("U999").unwrap()));
}

#[test]
fn five_field_crons_and_trend_posts_without_questions_are_accepted() {
    let s = parse_ok(&with("cron", r#"cron = "0 16 * * THU""#));
    assert_eq!(s.cron_text, "0 16 * * THU");

    let trend = with("kind", r#"kind = "trend-post""#);
    assert_eq!(parse_ok(&trend).kind, ScheduleKind::TrendPost);
    assert!(
        parse_ok(&without_in(&trend, "questions"))
            .questions
            .is_empty()
    );
    assert!(
        parse_ok(&with_in(&trend, "questions", "questions = []"))
            .questions
            .is_empty()
    );
}

#[test]
fn a_bad_cron_names_the_key_and_croners_reason() {
    let e = parse_err(&with("cron", r#"cron = "0 61 * * * *""#));
    assert_eq!(e.key, "cron");
    assert!(
        e.to_string().starts_with(
            r#"schedules/weekly-checkin.toml: cron: "0 61 * * * *" is not a valid cron expression: "#
        ),
        "{e}"
    );
    assert!(
        e.problem.len() > r#""0 61 * * * *" is not a valid cron expression: "#.len(),
        "{e}"
    );

    // Four or seven fields are outside the documented format.
    for bad in ["0 16 * THU", "0 0 16 * * THU 2026", "", "every thursday"] {
        let e = parse_err(&with("cron", &format!("cron = {bad:?}")));
        assert_eq!(e.key, "cron", "{bad}: {e}");
    }
}

#[test]
fn a_cron_that_never_matches_is_rejected() {
    let e = parse_err(&with("cron", r#"cron = "0 0 12 31 2 *""#));
    assert_eq!(e.key, "cron");
    assert!(e.problem.contains("never matches"), "{e}");
}

#[test]
fn an_unknown_zone_is_named() {
    let e = parse_err(&with("timezone", r#"timezone = "Europe/Berln""#));
    assert_eq!(e.key, "timezone");
    assert!(
        e.to_string().starts_with(
            r#"schedules/weekly-checkin.toml: timezone: unknown time zone "Europe/Berln""#
        ),
        "{e}"
    );

    let e = parse_err(&format!("{VALID}\nfallback_timezone = \"Mars/Olympus\"\n"));
    assert_eq!(e.key, "fallback_timezone");
    assert!(e.problem.contains("Mars/Olympus"), "{e}");
}

#[test]
fn a_fallback_next_to_a_fixed_zone_is_rejected() {
    let text = format!(
        "{}\nfallback_timezone = \"UTC\"\n",
        with("timezone", r#"timezone = "Europe/Berlin""#)
    );
    assert_eq!(parse_err(&text).key, "fallback_timezone");
}

#[test]
fn an_unknown_question_names_its_position_and_the_known_ones() {
    let e = parse_err(&with("questions", r#"questions = ["decisions", "mood"]"#));
    assert_eq!(e.key, "questions[1]");
    assert!(
        e.problem
            .starts_with(r#"unknown question "mood"; known: decisions, stakeholders, "#),
        "{e}"
    );

    let e = parse_err(&with("questions", r#"questions = ["focus", "focus"]"#));
    assert_eq!(e.key, "questions[1]");
    assert!(e.problem.contains("twice"), "{e}");
}

#[test]
fn a_checkin_or_reminder_without_questions_is_rejected() {
    for kind in ["checkin", "reminder"] {
        let text = with("kind", &format!("kind = {kind:?}"));
        for text in [
            with_in(&text, "questions", "questions = []"),
            without_in(&text, "questions"),
        ] {
            let e = parse_err(&text);
            assert_eq!(e.key, "questions", "{e}");
            assert!(e.problem.contains(kind), "{e}");
        }
    }
}

#[test]
fn an_unknown_kind_lists_the_kinds() {
    let e = parse_err(&with("kind", r#"kind = "check-in""#));
    assert_eq!(e.key, "kind");
    assert_eq!(
        e.problem,
        r#"unknown kind "check-in"; use one of checkin, reminder, trend-post, team-digest"#
    );
}

#[test]
fn an_empty_name_is_rejected() {
    let e = parse_err(&with("name", r#"name = "  ""#));
    assert_eq!(e.key, "name");
}

#[test]
fn a_bad_audience_names_the_key_or_the_entry() {
    let e = parse_err(&with("audience", r#"audience = "everyone""#));
    assert_eq!(e.key, "audience");
    assert!(
        e.problem.contains(r#""all" or a list of person ids"#),
        "{e}"
    );

    let e = parse_err(&with("audience", r#"audience = []"#));
    assert_eq!(e.key, "audience");

    let e = parse_err(&with("audience", r#"audience = ["U1", "U 2"]"#));
    assert_eq!(e.key, "audience[1]");

    let e = parse_err(&with("audience", r#"audience = ["U1", "U1"]"#));
    assert_eq!(e.key, "audience[1]");
    assert!(e.problem.contains("twice"), "{e}");
}

#[test]
fn unknown_missing_and_mistyped_keys_are_named() {
    let e = parse_err(&format!("{VALID}\nquestion = [\"focus\"]\n"));
    assert_eq!(e.key, "question");
    assert!(e.problem.starts_with("unknown key; expected one of"), "{e}");
    assert!(e.problem.contains("`questions`"), "{e}");

    let e = parse_err(&without("cron"));
    assert_eq!(
        (e.key.as_str(), e.problem.as_str()),
        ("cron", "is required")
    );
    let e = parse_err(&without("audience"));
    assert_eq!(e.key, "audience");

    let e = parse_err(&with("name", "name = 3"));
    assert_eq!(e.key, "name");
    assert!(e.problem.contains("expected a string"), "{e}");

    let e = parse_err(&with("questions", "questions = [\n  \"focus\",\n  3,\n]"));
    assert_eq!(e.key, "questions[1]", "{e}");
}

#[test]
fn a_toml_syntax_error_has_no_key_and_says_where() {
    let e = parse_err("name = \"weekly\ncron = \"0 0 16 * * THU\"\n");
    assert_eq!(e.key, "");
    assert!(e.problem.starts_with("not valid TOML at line 1"), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");

    let e = parse_err(&format!("{VALID}\nname = \"again\"\n"));
    assert_eq!(e.key, "");
    assert!(e.problem.contains("duplicate key"), "{e}");
}

/// A temp directory holding `files`.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_directory_loads_in_file_name_order_and_ignores_other_files() {
    let second = VALID.replace("weekly-checkin", "b-second");
    let first = VALID.replace("weekly-checkin", "a-first");
    let dir = dir_with(&[
        ("b.toml", &second),
        ("a.toml", &first),
        ("notes.md", "not a schedule"),
        (".a.toml.swp", "not a schedule"),
        (".hidden.toml", "not = a schedule"),
    ]);
    let list = load_dir(dir.path(), &default_catalogue()).unwrap();
    let names: Vec<_> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-first", "b-second"]);
}

#[test]
fn a_duplicate_name_is_reported_against_the_second_file() {
    let dir = dir_with(&[("a.toml", VALID), ("b.toml", VALID)]);
    let e = load_dir(dir.path(), &default_catalogue()).unwrap_err();
    assert_eq!(e.file, dir.path().join("b.toml"));
    assert_eq!(e.key, "name");
    assert!(e.problem.contains("a.toml"), "{e}");
}

#[test]
fn an_error_names_the_schedule_file() {
    let dir = dir_with(&[
        ("a.toml", VALID),
        ("b.toml", &with("cron", r#"cron = "0 61 * * * *""#)),
    ]);
    let e = load_dir(dir.path(), &default_catalogue()).unwrap_err();
    assert_eq!(e.file, dir.path().join("b.toml"));
    assert_eq!(e.key, "cron");
}

#[test]
fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("schedules");
    let e = load_dir(&missing, &default_catalogue()).unwrap_err();
    assert_eq!(e.file, missing);
    assert_eq!(e.key, "");
    assert!(e.to_string().contains("not found"), "{e}");
}

#[test]
fn the_shipped_schedules_load_and_fire_on_the_right_local_day_and_hour() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    let list = load_dir(&dir, &default_catalogue()).unwrap_or_else(|e| panic!("{e}"));
    let by_name = |name: &str| {
        list.iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no schedule {name}"))
    };
    let all_questions: Vec<_> = default_catalogue()
        .questions()
        .iter()
        .map(|q| q.id.clone())
        .collect();

    let expected = [
        ("weekly-checkin", ScheduleKind::Checkin, Weekday::Thu, 16),
        ("reminder", ScheduleKind::Reminder, Weekday::Fri, 11),
        ("weekly-trend", ScheduleKind::TrendPost, Weekday::Mon, 9),
    ];
    assert_eq!(list.len(), expected.len());
    // One start in winter, one in summer, and one in the week of the US
    // change while Europe is still on winter time.
    let starts = [
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 7, 0, 0, 0).unwrap(),
    ];
    for (name, kind, weekday, hour) in expected {
        let s = by_name(name);
        assert_eq!(s.kind, kind, "{name}");
        assert_eq!(s.audience, Audience::All, "{name}");
        assert!(matches!(s.zone, ScheduleZone::Person { .. }), "{name}");
        if kind.needs_questions() {
            assert_eq!(s.questions, all_questions, "{name}");
        } else {
            assert!(s.questions.is_empty(), "{name}");
        }
        for tz in [chrono_tz::Europe::Berlin, chrono_tz::America::New_York] {
            for start in starts {
                let runs = next_runs(s, s.zone_for(Some(tz)), start, 3);
                assert_eq!(runs.len(), 3, "{name} {tz}");
                for run in runs {
                    assert_eq!(
                        (run.weekday(), run.hour(), run.minute(), run.second()),
                        (weekday, hour, 0, 0),
                        "{name} in {tz}: {run}"
                    );
                    assert!(run.with_timezone(&Utc) > start);
                }
            }
        }
    }
}

const DIGEST: &str = r#"
name = "team-digest"
cron = "0 0 9 * * MON"
timezone = "Europe/Berlin"
kind = "team-digest"
channel = "C0123TEAM"
audience = "all"
"#;

#[test]
fn a_team_digest_reads_its_channel_and_min_group() {
    let s = parse_ok(DIGEST);
    assert_eq!(s.kind, ScheduleKind::TeamDigest);
    assert!(!s.kind.is_per_person());
    assert_eq!(
        s.digest,
        Some(Digest {
            channel: "C0123TEAM".into(),
            min_group: DEFAULT_MIN_GROUP
        })
    );
    let s = parse_ok(&format!("{DIGEST}min_group = 3\n"));
    assert_eq!(s.digest.map(|d| d.min_group), Some(3));
    assert_eq!(parse_ok(VALID).digest, None);
}

#[test]
fn a_team_digest_without_a_channel_or_with_a_small_group_is_rejected() {
    let e = parse_err(&without_in(DIGEST, "channel"));
    assert_eq!(e.key, "channel");
    assert!(e.problem.contains("is required"), "{e}");

    let e = parse_err(&with_in(DIGEST, "channel", r##"channel = "#team""##));
    assert_eq!(e.key, "channel");
    assert!(e.problem.contains("not a channel id"), "{e}");

    for n in ["2", "0", "-1"] {
        let e = parse_err(&format!("{DIGEST}min_group = {n}\n"));
        assert_eq!(e.key, "min_group");
        assert!(e.problem.contains("at least 3"), "{e}");
    }
}

#[test]
fn a_team_digest_in_each_persons_zone_or_with_questions_is_rejected() {
    let e = parse_err(&with_in(DIGEST, "timezone", r#"timezone = "person""#));
    assert_eq!(e.key, "timezone");
    assert!(e.problem.contains("posts once for everybody"), "{e}");

    let e = parse_err(&format!("{DIGEST}questions = [\"decisions\"]\n"));
    assert_eq!(e.key, "questions");
}

#[test]
fn channel_and_min_group_are_refused_for_other_kinds() {
    let e = parse_err(&format!("{VALID}channel = \"C0123TEAM\"\n"));
    assert_eq!(e.key, "channel");
    assert!(e.problem.contains("team-digest"), "{e}");
    let e = parse_err(&format!("{VALID}min_group = 5\n"));
    assert_eq!(e.key, "min_group");
    assert!(e.to_string().contains("weekly-checkin.toml"), "{e}");
}

#[test]
fn the_shipped_team_digest_example_is_valid_and_not_loaded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    let list = load_dir(&dir, &default_catalogue()).unwrap_or_else(|e| panic!("{e}"));
    assert!(list.iter().all(|s| s.kind != ScheduleKind::TeamDigest));

    let example = fs::read_to_string(dir.join("team-digest.toml.example")).unwrap();
    let s = parse_ok(&example);
    assert_eq!(s.kind, ScheduleKind::TeamDigest);
    assert_eq!(s.zone, ScheduleZone::Fixed(chrono_tz::Europe::Berlin));
    assert_eq!(s.digest.map(|d| d.min_group), Some(5));
}
