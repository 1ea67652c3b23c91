//! `nudged run --demo` and `nudged forget --demo`: a demo history that shows
//! a trend at once and the readiness nudge after one strong week, on the
//! embedded default only, and removed again without touching real answers.

use std::sync::Arc;

use nudged::clock::ManualClock;
use nudged::console_input::{self, ConsoleInput};
use nudged::domain::PersonId;
use nudged::model::State;
use nudged::service;

use crate::daemon::Daemon;
use crate::helpers::{TestEnv, WAIT, test_now};

/// The shipped config built into an app that is not started, at
/// [`test_now`], and its console person (`demo`, the roster's first).
async fn console() -> (TestEnv, nudged::app::App, ConsoleInput) {
    let env = TestEnv::new();
    let settings = nudged::config::Settings::load_with_env(&env.config(), []).expect("config");
    let app = nudged::app::App::build(settings, Arc::new(ManualClock::new(test_now())))
        .await
        .expect("build app");
    let input = ConsoleInput {
        settings: app.settings(),
        store: app.store(),
        clock: app.clock(),
        assessor: app.assessor(),
        person: PersonId::parse("demo").unwrap(),
    };
    (env, app, input)
}

async fn type_line(input: &ConsoleInput, line: &str) -> String {
    tokio::time::timeout(WAIT, console_input::handle_line(input, line))
        .await
        .expect("a line is handled in time")
        .expect("handled")
}

fn export_lines(env: &TestEnv) -> Vec<String> {
    env.ok(&["export", "--person", "demo"])
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn run_demo_shows_a_trend_is_idempotent_and_forget_demo_removes_it() {
    let env = TestEnv::new();
    for _ in 0..2 {
        let daemon = Daemon::spawn(tokio::process::Command::from(
            env.command(&["run", "--demo"]),
        ))
        .await;
        let (status, log) = daemon.terminate().await;
        assert!(status.success(), "exit {status}; log:\n{log}");
    }
    // Nine answered weeks of seven answers, once however often it ran.
    let lines = export_lines(&env);
    assert_eq!(lines.len(), 63, "{lines:#?}");

    let trend = env.ok(&["trend", "demo"]);
    assert!(trend.contains("state building"), "{trend}");
    assert!(!trend.contains("insufficient"), "{trend}");

    let removed = env.ok(&["forget", "--demo"]);
    assert!(
        removed.contains("removed the demo history of demo: 63 answers"),
        "{removed}"
    );
    assert!(export_lines(&env).is_empty());
    assert!(
        env.ok(&["forget", "--demo"])
            .contains("no demo history is stored")
    );
}

#[tokio::test]
async fn one_strong_week_on_the_demo_history_brings_the_nudge_and_forget_keeps_it() {
    let (env, app, input) = console().await;
    let store = app.store();
    let person = store.person(&input.person).await.unwrap().unwrap();
    let added = service::demo::add(store.as_ref(), &person, test_now())
        .await
        .unwrap();
    assert_eq!(added.inserted, 63);

    let trend = type_line(&input, "/pulse trend").await;
    assert!(trend.contains("building"), "{trend}");
    assert!(!trend.contains("not enough weeks"), "{trend}");

    let mut reassessed = input.assessor.subscribe();
    type_line(&input, "6+, 4+, several, deciding, hardly, same, yes").await;
    let today = service::readiness::today(&person, test_now());
    let assessment = service::readiness::assess_on(&input.settings, store.as_ref(), &person, today)
        .await
        .unwrap();
    assert_eq!(assessment.state, State::Sustained);
    assert!(assessment.reasons.iter().all(|r| r.holds));

    let done = tokio::time::timeout(WAIT, reassessed.recv())
        .await
        .expect("the strong week is re-assessed")
        .unwrap();
    assert!(done.nudged, "{done:?}");
    let nudges = store.nudges(&input.person).await.unwrap();
    assert_eq!(nudges.len(), 1);
    assert!(nudges[0].reasons.contains("index"), "{}", nudges[0].reasons);
    let trend = type_line(&input, "/pulse trend").await;
    assert!(trend.contains("recognised"), "{trend}");

    // The demo goes with the nudge it caused; the week typed stays.
    let removed = env.ok(&["forget", "--demo"]);
    assert!(
        removed.contains("63 answers") && removed.contains("1 nudges"),
        "{removed}"
    );
    let lines = export_lines(&env);
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("demo,2026-W47,")));
    assert!(store.nudges(&input.person).await.unwrap().is_empty());
}

#[test]
fn run_demo_is_refused_off_the_embedded_default_naming_the_key() {
    let env = TestEnv::new();
    let out = env
        .command(&["run", "--demo"])
        .env("NUDGED__CHAT__PLATFORM", "webhook")
        .env("NUDGED__CHAT__WEBHOOK__URL", "https://hooks.example.com/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--demo needs chat.platform = \"console\" (it is \"webhook\")"),
        "{err}"
    );

    let out = env
        .command(&["run", "--demo"])
        .env(
            "NUDGED__STORAGE__URL",
            "postgres://nudged:secret@127.0.0.1:1/nudged",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--demo needs storage.url"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    // Refused before anything was opened or written.
    assert!(!env.db().exists());
}
