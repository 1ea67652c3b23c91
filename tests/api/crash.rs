//! `nudged run --ask-now` as a real child process, killed with SIGKILL in
//! the middle of its fan-out and started again: nothing is lost, and only
//! the sends in flight at the kill go out twice.

use std::collections::BTreeMap;
use tokio::process::Child;

use crate::fake_slack::{Call, FakeSlack};
use crate::helpers::{BOT_TOKEN, TestEnv, WAIT};

const PEOPLE: usize = 300;
/// Prompts Slack answers before it holds every answer back.
const ANSWERED: usize = 60;
/// `delivery.concurrency`: at most this many sends are in flight.
const CONCURRENCY: usize = 4;
/// `delivery.lease_secs`: short, so the restarted daemon takes over the
/// dead one's rows soon.
const LEASE_SECS: u64 = 3;

/// Starts `nudged ARGS` against `slack`, logging to `log` in the
/// installation's directory.
fn start(env: &TestEnv, slack: &FakeSlack, args: &[&str], log: &str) -> Child {
    let log = std::fs::File::create(env.dir.path().join(log)).expect("log file");
    env.daemon(slack, BOT_TOKEN, args)
        .stderr(log)
        .spawn()
        .expect("spawn nudged")
}

fn log(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.dir.path().join(name)).unwrap_or_default()
}

/// Prompts received per person.
fn tally(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut per_person = BTreeMap::new();
    for call in calls {
        assert_eq!(call.method, "chat.postMessage");
        let channel = call.body["channel"].as_str().expect("channel").to_owned();
        *per_person.entry(channel).or_insert(0) += 1;
    }
    per_person
}

#[tokio::test]
async fn a_daemon_killed_mid_fan_out_loses_nothing_and_resends_only_what_was_in_flight() {
    let env = TestEnv::fleet(PEOPLE, CONCURRENCY, LEASE_SECS);
    let mut slack = FakeSlack::start().await;
    slack.hold_after(ANSWERED);
    let mut calls = Vec::new();

    let mut first = start(&env, &slack, &["run", "--ask-now"], "first.log");
    // Slack has answered ANSWERED prompts and holds the next one: the
    // daemon is in the middle of its fan-out, with sends in flight.
    while calls.len() <= ANSWERED {
        calls.push(slack.next_call().await);
    }
    first.kill().await.expect("SIGKILL");
    calls.extend(slack.received());
    let unanswered = calls.len() - ANSWERED;
    assert!(
        (1..=CONCURRENCY).contains(&unanswered),
        "{unanswered} sends in flight at the kill"
    );
    slack.release();

    // Started again, it sends the rest, and the held prompts once their
    // lease runs out: Slack never answered them, so they may not have
    // arrived.
    let mut second = start(&env, &slack, &["run"], "second.log");
    tokio::time::timeout(WAIT, async {
        while tally(&calls).len() < PEOPLE || calls.len() < PEOPLE + unanswered {
            calls.push(slack.next_call().await);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not everyone was prompted after the restart: {} of {PEOPLE}\n{}",
            tally(&calls).len(),
            log(&env, "second.log")
        )
    });

    // A clean stop records every send, then the store says what happened.
    let pid = second.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(WAIT, second.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "{}", log(&env, "second.log"));
    calls.extend(slack.received());

    let per_person = tally(&calls);
    assert_eq!(per_person.len(), PEOPLE, "everyone prompted");
    assert!(per_person.keys().all(|p| p.starts_with('U')));
    let duplicates = calls.len() - PEOPLE;
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} prompts sent twice; at most the {CONCURRENCY} in flight may be"
    );

    let store = nudged::store::open(&format!("sqlite://{}", env.db().display()))
        .await
        .unwrap();
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.sent, counts.failed),
        (0, PEOPLE as u64, 0)
    );
}
