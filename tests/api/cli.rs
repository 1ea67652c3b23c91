//! The data commands on a real SQLite file, through the real binary.

use crate::helpers::{HISTORY, TestEnv};

#[test]
fn check_prints_the_next_runs_of_every_shipped_schedule() {
    let env = TestEnv::new();
    let out = env.ok(&["check"]);
    for name in ["weekly-checkin", "reminder", "weekly-trend"] {
        assert!(out.contains(name), "{out}");
    }
    // The demo person lives in Berlin: each schedule lists three runs there.
    let berlin: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Europe/Berlin"))
        .collect();
    assert_eq!(berlin.len(), 3, "{out}");
    for line in berlin {
        assert_eq!(line.matches(" · ").count(), 2, "{line}");
    }
    let checkin = out
        .lines()
        .skip_while(|l| !l.starts_with("weekly-checkin"))
        .nth(1)
        .unwrap();
    assert_eq!(checkin.matches("Thu ").count(), 3, "{checkin}");
    assert!(checkin.contains("16:00"), "{checkin}");
}

#[test]
fn a_broken_config_prints_one_line_naming_file_key_and_problem() {
    let env = TestEnv::with_config(|c| c.replace("platform = \"console\"", "platform = \"irc\""));
    let err = env.fails(&["check"]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&env.config().display().to_string()), "{err}");
    assert!(err.contains("chat.platform"), "{err}");
    assert!(err.contains("irc"), "{err}");

    // Every command validates first.
    let err = env.fails(&["export"]);
    assert!(err.contains("chat.platform"), "{err}");
}

/// `RUST_LOG` sets the levels by target; a value that is not a list of
/// `target=level` directives is named at start, and the command runs on
/// with the default levels.
#[test]
fn rust_log_sets_levels_and_a_bad_one_is_reported_not_fatal() {
    let env = TestEnv::new();
    let stderr_with = |directives: &str| {
        let out = env
            .command(&["check"])
            .env("RUST_LOG", directives)
            .output()
            .unwrap();
        assert!(out.status.success(), "RUST_LOG={directives}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = stderr_with("nudged=loud");
    assert!(
        err.contains("RUST_LOG") && err.contains("default levels"),
        "{err}"
    );
    assert_eq!(
        stderr_with("info,nudged=debug,sqlx=warn"),
        "",
        "a valid list"
    );
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let env = TestEnv::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nudged"))
        .arg("check")
        .arg("--config")
        .arg(env.dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope.toml") && err.contains("no such config file"),
        "{err}"
    );
}

#[test]
fn import_then_export_round_trips_and_reimport_changes_nothing() {
    let env = TestEnv::new();
    let file = env.file("history.csv", HISTORY);
    let out = env.ok(&["import", file.to_str().unwrap()]);
    assert!(out.contains("7 new, 0 changed, 0 unchanged"), "{out}");
    assert!(out.contains("2 new people"), "{out}");
    assert!(env.db().is_file());

    let exported = env.ok(&["export"]);
    let mut sorted_in: Vec<&str> = HISTORY.lines().skip(1).collect();
    let mut sorted_out: Vec<&str> = exported.lines().skip(1).collect();
    sorted_in.sort();
    sorted_out.sort();
    assert_eq!(sorted_in, sorted_out);
    assert_eq!(exported.lines().next(), Some("person,week,question,option"));

    // The export is itself importable, and changes nothing.
    let again = env.file("again.csv", &exported);
    let out = env.ok(&["import", again.to_str().unwrap()]);
    assert!(out.contains("0 new, 0 changed, 7 unchanged"), "{out}");
    assert_eq!(env.ok(&["export"]), exported);
}

#[test]
fn export_filters_by_person_and_prints_json_lines() {
    let env = TestEnv::new();
    let file = env.file("history.csv", HISTORY);
    env.ok(&["import", file.to_str().unwrap()]);

    let csv = env.ok(&["export", "--person", "U2"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.starts_with("U2,")), "{csv}");

    let json = env.ok(&["export", "--format", "json"]);
    let people: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(people.len(), 2);
    assert_eq!(people[0]["person"], "U1");
    assert_eq!(people[0]["weeks"][1]["week"], "2026-W47");
    assert_eq!(people[0]["weeks"][1]["answers"]["focus"], "deciding");

    let err = env.fails(&["export", "--person", "U9"]);
    assert!(err.contains("unknown person U9"), "{err}");
}

#[test]
fn a_bad_csv_row_is_reported_by_line_and_nothing_is_imported() {
    let env = TestEnv::new();
    let good = env.file("good.csv", HISTORY);
    env.ok(&["import", good.to_str().unwrap()]);
    let before = env.ok(&["export"]);

    let cases = [
        (
            "U3,2026-W47,decisions,3-5\nU3,2026-W47,mood,good\n",
            "line 3",
            "unknown question",
        ),
        (
            "U3,2026-W47,decisions,3-5\nU3,2026-W47,decisions,lots\n",
            "line 3",
            "not an option",
        ),
        (
            "U3,2026-W47,decisions,3-5\nU3,2026-W99,focus,mixed\n",
            "line 3",
            "no ISO week",
        ),
        ("U3,2026-W47,decisions\n", "line 2", "expected 4 columns"),
    ];
    for (rows, line, problem) in cases {
        let bad = env.file("bad.csv", &format!("person,week,question,option\n{rows}"));
        let err = env.fails(&["import", bad.to_str().unwrap()]);
        assert!(err.contains(line) && err.contains(problem), "{rows}: {err}");
        assert!(err.contains("nothing imported"), "{err}");
        assert_eq!(env.ok(&["export"]), before, "{rows}");
    }
}

#[test]
fn forget_removes_everything_of_one_person_and_nothing_of_another() {
    let env = TestEnv::new();
    let file = env.file("history.csv", HISTORY);
    env.ok(&["import", file.to_str().unwrap()]);

    let out = env.ok(&["forget", "U1"]);
    assert!(out.contains("forgot U1: 6 rows"), "{out}");
    assert!(out.contains("5 answers"), "{out}");

    let left = env.ok(&["export"]);
    assert!(!left.contains("U1,"), "{left}");
    assert_eq!(
        left.lines().filter(|l| l.starts_with("U2,")).count(),
        2,
        "{left}"
    );

    let err = env.fails(&["forget", "U1"]);
    assert!(err.contains("unknown person U1"), "{err}");
    let err = env.fails(&["trend", "U1"]);
    assert!(err.contains("unknown person U1"), "{err}");
}

#[tokio::test]
async fn trend_and_replay_show_how_a_sent_nudge_was_answered() {
    use chrono::{DateTime, Utc};
    use nudged::domain::{NudgeResponse, PersonId};
    use nudged::store::{NudgeClick, NudgeRow};

    let env = TestEnv::new();
    let mut csv = String::from("person,week,question,option\n");
    for week in 38..=47 {
        for (q, o) in [
            ("decisions", "6+"),
            ("stakeholders", "4+"),
            ("tradeoffs", "several"),
            ("focus", "deciding"),
            ("reversibility", "hardly"),
            ("continuity", "same"),
            ("capacity", "yes"),
        ] {
            csv.push_str(&format!("U1,2026-W{week},{q},{o}\n"));
        }
    }
    let file = env.file("history.csv", &csv);
    env.ok(&["import", file.to_str().unwrap()]);

    // A nudge the daemon sent and the person answered.
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let store = nudged::store::open(&format!("sqlite://{}", env.db().display()))
        .await
        .unwrap();
    let u1 = PersonId::parse("U1").unwrap();
    store
        .record_nudge(&NudgeRow {
            person: u1.clone(),
            week: "2026-W46".parse().unwrap(),
            sent_at: at("2026-11-10T09:00:00Z"),
            reasons: "[]".into(),
            message: None,
            response: None,
            answered_at: None,
        })
        .await
        .unwrap();
    store
        .answer_nudge(
            &NudgeClick {
                person: u1,
                week: "2026-W46".parse().unwrap(),
                response: NudgeResponse::NotNow,
                at: at("2026-11-11T10:00:00Z"),
                seen_key: None,
            },
            None,
        )
        .await
        .unwrap();
    drop(store);

    let out = env.ok(&["trend", "U1", "--json", "--today", "2026-11-20"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["state"], "nudged", "{out}");
    assert_eq!(
        json["nudge"],
        serde_json::json!({
            "sent_on": "2026-11-10",
            "answer": { "response": "not-now", "on": "2026-11-11" },
        })
    );
    let not_now = json["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "not-now")
        .expect("the not-now rule");
    assert_eq!(not_now["holds"], false);
    assert_eq!(not_now["facts"]["not_now_weeks"], 8);
    let decisions = json["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["question"] == "decisions")
        .unwrap();
    assert_eq!(decisions["present_weeks"], 8, "{out}");

    let text = env.ok(&["trend", "U1", "--today", "2026-11-20"]);
    assert!(
        text.contains("nudge sent 2026-11-10, answered not-now on 2026-11-11"),
        "{text}"
    );
    let replay = env.ok(&["replay", "--today", "2026-11-20"]);
    assert!(
        replay.contains("2026-W46 sent on 2026-11-10, answered not-now on 2026-11-11"),
        "{replay}"
    );
    let replay = env.ok(&["replay", "--json", "--today", "2026-11-20"]);
    let line: serde_json::Value = serde_json::from_str(replay.lines().next().unwrap()).unwrap();
    assert_eq!(line["sent"][0]["answer"]["response"], "not-now", "{replay}");
}

/// `trend` counts a person's today as the daemon does: in the zone stored
/// for them (which each start of the daemon keeps from the roster), not in
/// a zone read from the roster afresh. Here the roster was edited since
/// the daemon last started, to a zone 26 hours behind the stored one: a
/// nudge sent on today's date in the stored zone is not yet sent by the
/// roster zone's today, so the two rules would show different trends.
#[tokio::test]
async fn trend_counts_today_in_the_stored_zone_as_the_daemon_does() {
    use chrono::Utc;
    use chrono_tz::Pacific::Kiritimati;
    use nudged::domain::{IsoWeek, PersonId};
    use nudged::store::{NewPerson, NudgeRow};

    let env = TestEnv::with_config(|c| {
        let c = c.replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"");
        let cut = c.find("[[people]]").expect("shipped roster");
        format!(
            "{}[[people]]\nid = \"U1\"\ntz = \"Etc/GMT+12\"\n",
            &c[..cut]
        )
    });
    let store = nudged::store::open(&format!("sqlite://{}", env.db().display()))
        .await
        .unwrap();
    let u1 = PersonId::parse("U1").unwrap();
    let now = Utc::now();
    // As the daemon stored U1 from the roster before it was edited.
    let person = NewPerson {
        id: u1.clone(),
        name: None,
        tz: Some(Kiritimati),
        enrolled: true,
    };
    store.upsert_person(&person, now).await.unwrap();
    let today = now.with_timezone(&Kiritimati).date_naive();
    store
        .record_nudge(&NudgeRow {
            person: u1.clone(),
            week: IsoWeek::of(today),
            sent_at: today.and_hms_opt(12, 0, 0).unwrap().and_utc(),
            reasons: "[]".into(),
            message: None,
            response: None,
            answered_at: None,
        })
        .await
        .unwrap();

    // What the daemon assesses and saves for U1 now.
    let settings = nudged::config::Settings::load_with_env(&env.config(), []).unwrap();
    let row = store.person(&u1).await.unwrap().unwrap();
    nudged::service::readiness::reassess(&settings, store.as_ref(), &row, now, None)
        .await
        .unwrap();
    let saved = store.latest_assessment(&u1).await.unwrap().unwrap();
    let daemon: serde_json::Value = serde_json::from_str(&saved.detail).unwrap();
    drop(store);

    let out = env.ok(&["trend", "U1", "--json"]);
    let mut cli: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli["nudge"]["sent_on"], today.to_string(), "{out}");
    cli.as_object_mut().unwrap().remove("person");
    assert_eq!(cli, daemon);
}

#[test]
fn trend_png_writes_the_chart_and_says_where() {
    let env = TestEnv::new();
    let mut csv = String::from("person,week,question,option\n");
    for week in 36..=47 {
        for (q, o) in [
            ("decisions", if week % 3 == 0 { "1-2" } else { "6+" }),
            ("stakeholders", "4+"),
            ("tradeoffs", "several"),
            ("focus", "deciding"),
            ("reversibility", "hardly"),
            ("continuity", "same"),
            ("capacity", "yes"),
        ] {
            csv.push_str(&format!("U1,2026-W{week},{q},{o}\n"));
        }
    }
    let file = env.file("history.csv", &csv);
    env.ok(&["import", file.to_str().unwrap()]);

    let png = env.dir.path().join("trend.png");
    let out = env.run(&[
        "trend",
        "U1",
        "--png",
        png.to_str().unwrap(),
        "--today",
        "2026-11-20",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("chart saved to {}", png.display())),
        "{stderr}"
    );
    let bytes = std::fs::read(&png).unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    assert_eq!((reader.info().width, reader.info().height), (640, 320));
    assert!(bytes.len() < 48 * 1024, "{} bytes", bytes.len());

    // A place it cannot write is a clear error.
    let err = env.fails(&["trend", "U1", "--png", "no/such/dir/trend.png"]);
    assert!(
        err.contains("cannot write the chart to no/such/dir/trend.png"),
        "{err}"
    );
}
