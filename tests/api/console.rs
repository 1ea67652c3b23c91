//! Replies typed on the console: the same grammar and use cases as Slack's
//! thread replies and `/pulse`, against a real SQLite store.

use std::sync::Arc;

use nudged::chat::console;
use nudged::clock::ManualClock;
use nudged::console_input::{self, ConsoleInput, MAX_LINE_BYTES};
use nudged::domain::PersonId;
use nudged::outbox::{Op, Queued};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestEnv, WAIT, test_now};

/// The shipped config (its roster's first person is `demo`, in
/// Europe/Berlin), built into an app that is not started.
async fn console_input() -> (TestEnv, ConsoleInput) {
    let env = TestEnv::new();
    let settings = nudged::config::Settings::load_with_env(&env.config(), []).expect("config");
    let clock = ManualClock::new(test_now());
    let app = nudged::app::App::build(settings, Arc::new(clock))
        .await
        .expect("build app");
    let input = ConsoleInput {
        settings: app.settings(),
        store: app.store(),
        clock: app.clock(),
        assessor: app.assessor(),
        person: PersonId::parse("demo").unwrap(),
    };
    (env, input)
}

async fn type_line(input: &ConsoleInput, line: &str) -> String {
    tokio::time::timeout(WAIT, console_input::handle_line(input, line))
        .await
        .expect("a line is handled in time")
        .expect("handled")
}

#[tokio::test]
async fn typed_answers_are_recorded_and_exported_like_a_thread_reply() {
    let (env, input) = console_input().await;
    let reply = type_line(&input, "3-5, 4+, once, deciding, hardly, same, yes").await;
    assert!(reply.ends_with("(2026-W47)"), "{reply}");
    assert!(reply.contains("deciding"), "{reply}");

    let reply = type_line(&input, "  capacity=none  ").await;
    assert!(reply.contains("(2026-W47)"), "{reply}");

    let csv = env.ok(&["export", "--person", "demo"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "person,week,question,option");
    assert_eq!(lines.len(), 8, "{csv}");
    assert!(lines.contains(&"demo,2026-W47,decisions,3-5"), "{csv}");
    assert!(lines.contains(&"demo,2026-W47,capacity,none"), "{csv}");
}

#[tokio::test]
async fn pulse_subcommands_work_as_in_slack() {
    let (_env, input) = console_input().await;
    assert_eq!(
        type_line(&input, "/pulse help").await,
        nudged::reply::command_help()
    );
    let trend = type_line(&input, "/pulse trend").await;
    assert!(trend.starts_with("Your trend for 2026-W47\n"), "{trend}");
    assert!(trend.contains("· decisions –"), "{trend}");
    assert!(!trend.contains('*'), "shown as plain text: {trend}");
    type_line(&input, "decisions=6+").await;
    let trend = type_line(&input, "/PULSE   trend").await;
    assert!(trend.contains("· decisions 1.00"), "{trend}");

    // `/pulse now` puts the prompt in the outbox; the console shows it with
    // the keys to type.
    let reply = type_line(&input, "/pulse now").await;
    assert!(reply.contains("2026-W47"), "{reply}");
    let counts = input.store.outbox_counts().await.unwrap();
    assert_eq!(counts.pending, 1);
    let row = input.store.outbox_row(1).await.unwrap().unwrap();
    let queued: Queued = serde_json::from_str(&row.payload).unwrap();
    let Op::Send(prompt) = queued.op else {
        panic!("a prompt is sent as it is: {queued:?}")
    };
    let shown = console::render(&prompt);
    assert!(
        shown.starts_with("── to demo ──\nWeekly check-in for 2026-W47: 1 of 7 answered\n"),
        "{shown}"
    );
    assert!(shown.contains("\n    0 · 1-2 · 3-5 · 6+\n"), "{shown}");
    assert!(shown.contains("Type your answers in order"), "{shown}");

    let reply = type_line(&input, "/pulse pause 2w").await;
    assert!(
        reply.starts_with("Paused: no check-ins until 2026-12-03"),
        "{reply}"
    );
    let person = input.store.person(&input.person).await.unwrap().unwrap();
    assert!(person.paused_until.is_some());
}

#[tokio::test]
async fn a_line_that_says_nothing_readable_gets_the_help_and_records_nothing() {
    let (_env, input) = console_input().await;
    let reply = type_line(&input, "what is this").await;
    assert!(reply.contains("Reply with answers in order"), "{reply}");
    assert!(
        reply.ends_with("`/pulse help` lists the commands."),
        "{reply}"
    );

    let reply = type_line(&input, "/frobnicate").await;
    assert!(reply.contains("is not a /pulse command"), "{reply}");
    assert!(reply.ends_with(nudged::reply::command_help()), "{reply}");

    assert!(input.store.answers(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn someone_who_forgot_themselves_is_told_how_to_join_again() {
    let (_env, input) = console_input().await;
    let reply = type_line(&input, "/pulse forget confirm").await;
    assert!(reply.starts_with("Done:"), "{reply}");
    let reply = type_line(&input, "decisions=6+").await;
    assert!(reply.contains("/pulse join"), "{reply}");
    assert!(input.store.answers(None).await.unwrap().is_empty());
    type_line(&input, "/pulse join").await;
    let reply = type_line(&input, "decisions=6+").await;
    assert!(reply.contains("(2026-W47)"), "{reply}");
}

#[tokio::test]
async fn the_reader_answers_each_line_in_order_until_the_input_ends() {
    let (_env, input) = console_input().await;
    let mut typed = b"decisions=6+\n\n   \n/pulse trend\n".to_vec();
    typed.extend_from_slice(b"\xff\xfe\n");
    typed.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES as usize + 10));
    typed.extend_from_slice(b"\nstakeholders=4+");
    let mut output = Vec::new();
    tokio::time::timeout(
        WAIT,
        console_input::read_lines(&input, &typed[..], &mut output, CancellationToken::new()),
    )
    .await
    .expect("the reader stops at the end of its input")
    .unwrap();
    let output = String::from_utf8(output).unwrap();
    // Each reply in the order its line was typed.
    let order: Vec<Option<usize>> = [
        "Got it: decisions 6+. (2026-W47)",
        "Your trend for 2026-W47",
        "is not an answer",
        "That line is too long to read",
        "Got it: stakeholders 4+. (2026-W47)",
    ]
    .iter()
    .map(|reply| output.find(reply))
    .collect();
    assert!(order.iter().all(Option::is_some), "{output}");
    assert!(order.is_sorted(), "{output}");
    // The last line needs no line break to count.
    let answers = input.store.answers(None).await.unwrap();
    assert_eq!(answers.len(), 2, "{output}");
}

#[tokio::test]
async fn the_reader_stops_when_told_even_while_waiting_for_input() {
    let (_env, input) = console_input().await;
    // The writing half stays open: the reader would wait for ever.
    let (_typing, reader) = tokio::io::duplex(64);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let input = input.clone();
        let stop = stop.clone();
        async move {
            console_input::read_lines(
                &input,
                tokio::io::BufReader::new(reader),
                tokio::io::sink(),
                stop,
            )
            .await
        }
    });
    stop.cancel();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the reader stops once cancelled")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn typed_answers_are_re_assessed_like_slack_replies() {
    let (_env, input) = console_input().await;
    let mut reassessed = input.assessor.subscribe();
    type_line(&input, "decisions=6+").await;
    let done = tokio::time::timeout(WAIT, reassessed.recv())
        .await
        .expect("the typed answer is re-assessed")
        .unwrap();
    assert_eq!(done.person, input.person);

    // Text that records nothing asks for nothing.
    type_line(&input, "what is this").await;
    type_line(&input, "/pulse decisions=3-5").await;
    let done = tokio::time::timeout(WAIT, reassessed.recv())
        .await
        .expect("the inline /pulse answer is re-assessed")
        .unwrap();
    assert_eq!(done.person, input.person);
    assert!(reassessed.try_recv().is_err());
}
