//! Pacing of the outbox against the fake Slack, driven step by step with a
//! manual clock: one message per second in a channel, a workspace-wide
//! rate, `Retry-After` pausing a channel or everything, several sends in
//! flight at once, and the send in flight recorded at shutdown.

use chrono::Duration;
use nudged::chat::Outgoing;
use nudged::clock::Clock;
use nudged::outbox::{self, DeliveryOutcome};
use nudged::render::Message;
use tokio_util::sync::CancellationToken;

use crate::fake_slack::Reply;
use crate::helpers::{TestApp, WAIT, slack_chat, spawn_app_with};

/// Fast enough that only the rule under test limits delivery.
const FAST: [(&str, &str); 1] = [("NUDGED__DELIVERY__GLOBAL_PER_SEC", "1000")];

fn outcome(sent: usize, retried: usize, deferred: usize) -> DeliveryOutcome {
    DeliveryOutcome {
        sent,
        retried,
        failed: 0,
        deferred,
    }
}

/// Puts a post of `text` to `channel` in the outbox, due now.
async fn post(app: &TestApp, channel: &str, text: &str) {
    let message = Outgoing::post(
        channel,
        None,
        Message {
            text: text.to_owned(),
            blocks: vec![],
        },
    );
    outbox::enqueue(
        app.store.as_ref(),
        &message.into(),
        None,
        None,
        app.clock.now(),
    )
    .await
    .unwrap();
}

/// The texts the fake Slack has received since last asked, in order.
fn texts(app: &mut TestApp) -> Vec<String> {
    app.slack
        .received()
        .into_iter()
        .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_second_message_to_a_channel_in_the_same_second_waits_for_the_next() {
    let mut app = spawn_app_with(&[], &FAST, false).await;
    tokio::time::timeout(WAIT, async {
        post(&app, "C1", "one").await;
        post(&app, "C1", "two").await;
        post(&app, "C2", "other").await;
        assert_eq!(app.deliver().await, outcome(2, 0, 1));
        assert_eq!(texts(&mut app).len(), 2);
        assert_eq!(app.deliver().await, outcome(0, 0, 0), "parked, not due");
        app.clock.advance(Duration::milliseconds(999));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        app.clock.advance(Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        assert_eq!(texts(&mut app), ["two"]);
        let row = app.store.outbox_row(2).await.unwrap().unwrap();
        assert_eq!(row.attempts, 1, "waiting for its slot is not an attempt");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn messages_to_different_channels_are_in_flight_together() {
    let mut app = spawn_app_with(&[], &FAST, false).await;
    tokio::time::timeout(WAIT, async {
        for channel in ["C1", "C2", "C3", "C4"] {
            post(&app, channel, channel).await;
        }
        // Slack holds every answer: all four calls arrive before any is
        // answered, so they were sent at once.
        app.slack.hold_after(0);
        let mut worker = outbox::Worker::new(
            app.store.clone(),
            slack_chat(&app.slack),
            app.settings.clone(),
        );
        let now = app.clock.now();
        let delivering = tokio::spawn(async move { worker.deliver_due(now).await.unwrap() });
        let mut calls = Vec::new();
        for _ in 0..4 {
            calls.push(app.slack.next_call().await);
        }
        app.slack.release();
        let deliver = delivering.await.unwrap();
        assert_eq!(deliver, outcome(4, 0, 0));
        let mut channels: Vec<_> = calls
            .iter()
            .map(|c| c.body["channel"].as_str().unwrap().to_owned())
            .collect();
        channels.sort();
        assert_eq!(channels, ["C1", "C2", "C3", "C4"]);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn the_workspace_rate_caps_delivery_across_channels() {
    let env = [
        ("NUDGED__DELIVERY__GLOBAL_PER_SEC", "2"),
        ("NUDGED__DELIVERY__CONCURRENCY", "2"),
    ];
    let mut app = spawn_app_with(&[], &env, false).await;
    tokio::time::timeout(WAIT, async {
        for i in 0..5 {
            post(&app, &format!("C{i}"), &format!("m{i}")).await;
        }
        // Two at once (the sends in flight), then one per half second.
        assert_eq!(app.deliver().await, outcome(2, 0, 0));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        app.clock.advance(Duration::milliseconds(499));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        for _ in 0..3 {
            app.clock.advance(Duration::milliseconds(500));
            assert_eq!(app.deliver().await, outcome(1, 0, 0));
        }
        let mut delivered = texts(&mut app);
        delivered[..2].sort();
        assert_eq!(delivered, ["m0", "m1", "m2", "m3", "m4"]);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_429_pauses_every_channel_for_its_retry_after_then_all_is_delivered() {
    let env = [FAST[0], ("NUDGED__DELIVERY__CONCURRENCY", "1")];
    let mut app = spawn_app_with(&[], &env, false).await;
    tokio::time::timeout(WAIT, async {
        post(&app, "C1", "first").await;
        post(&app, "C2", "second").await;
        // C1 had sent nothing: its own rate cannot explain the 429, so it
        // is the workspace's limit, and C2 waits too.
        app.slack.script([Reply::TooManyRequests(5)]);
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        app.clock.advance(Duration::milliseconds(4999));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        assert_eq!(texts(&mut app), ["first"]);
        app.clock.advance(Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        app.clock.advance(Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        let mut delivered = texts(&mut app);
        delivered.sort();
        assert_eq!(delivered, ["first", "second"]);
        let counts = app.store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent), (0, 2));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_429_on_a_busy_channel_pauses_only_that_channel() {
    let mut app = spawn_app_with(&[], &FAST, false).await;
    tokio::time::timeout(WAIT, async {
        post(&app, "C1", "one").await;
        post(&app, "C1", "two").await;
        post(&app, "C1", "three").await;
        assert_eq!(app.deliver().await, outcome(1, 0, 2));
        app.clock.advance(Duration::seconds(1));
        app.slack.script([Reply::TooManyRequests(3)]);
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        post(&app, "C2", "elsewhere").await;
        assert_eq!(
            app.deliver().await,
            outcome(1, 0, 0),
            "other channels go on"
        );
        app.clock.advance(Duration::seconds(1));
        assert_eq!(app.deliver().await, outcome(0, 0, 1), "C1 is paused");
        app.clock.advance(Duration::seconds(2));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        app.clock.advance(Duration::seconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        // In order: the refused message first once the pause ends.
        assert_eq!(texts(&mut app), ["one", "two", "elsewhere", "two", "three"]);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn on_shutdown_the_send_in_flight_is_recorded() {
    let mut app = spawn_app_with(&["U0001"], &FAST, false).await;
    tokio::time::timeout(WAIT, async {
        app.pulse("U0001", "now").await;
        app.slack.hold_after(0);
        let worker = outbox::Worker::new(
            app.store.clone(),
            slack_chat(&app.slack),
            app.settings.clone(),
        );
        let stop = CancellationToken::new();
        let running =
            tokio::spawn(worker.run(std::sync::Arc::new(app.clock.clone()), stop.clone()));
        // The prompt is in flight: Slack has it and has not answered.
        app.slack.next_call().await;
        stop.cancel();
        assert_eq!(app.store.outbox_counts().await.unwrap().pending, 1);
        app.slack.release();
        running.await.unwrap();
        let row = app.store.outbox_row(1).await.unwrap().unwrap();
        assert_eq!(row.status, nudged::store::OutboxStatus::Sent);
        assert!(row.lease_until.is_none());
        assert!(app.slack.received().is_empty(), "and nothing more was sent");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_fan_out_to_a_thousand_people_through_503s_and_429s_gives_one_prompt_each() {
    let people: Vec<String> = (0..1000).map(|i| format!("U{i:05}")).collect();
    let ids: Vec<&str> = people.iter().map(String::as_str).collect();
    let env = [FAST[0], ("NUDGED__DELIVERY__CONCURRENCY", "8")];
    let mut app = spawn_app_with(&ids, &env, true).await;
    tokio::time::timeout(WAIT, async {
        let faults = [
            Reply::Status(503),
            Reply::TooManyRequests(2),
            Reply::Status(502),
            Reply::Error("ratelimited"),
            Reply::Error("service_unavailable"),
            Reply::TooManyRequests(1),
        ];
        app.slack.script(faults.clone());
        let mut calls = Vec::new();
        for _ in 0..10_000 {
            let done = app.deliver().await;
            calls.extend(app.slack.received());
            if done.is_idle() {
                if app.store.outbox_counts().await.unwrap().pending == 0 {
                    break;
                }
                // Past any back-off: a transient failure waits at most
                // twice its delay.
                app.clock.advance(Duration::seconds(10));
            }
        }
        let counts = app.store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1000, 0));
        assert_eq!(calls.len(), 1000 + faults.len(), "one call per attempt");
        let mut prompted: Vec<&str> = calls
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.body["channel"].as_str().unwrap())
            .collect();
        prompted.sort_unstable();
        assert_eq!(prompted, ids, "exactly one prompt each");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

/// Longer than any clock can count: before it was bounded, adding it to
/// the time panicked the delivery worker, and delivery stopped for good.
const ABSURD_RETRY_AFTER: u64 = 99_999_999_999_999;

#[tokio::test]
async fn an_absurd_retry_after_defers_by_at_most_fifteen_minutes_and_delivery_goes_on() {
    let env = [FAST[0], ("NUDGED__DELIVERY__CONCURRENCY", "1")];
    let mut app = spawn_app_with(&[], &env, false).await;
    tokio::time::timeout(WAIT, async {
        let clamp = Duration::from_std(nudged::chat::MAX_RETRY_AFTER).unwrap();
        assert_eq!(clamp, Duration::minutes(15));
        post(&app, "C1", "first").await;
        app.slack
            .script([Reply::TooManyRequests(ABSURD_RETRY_AFTER)]);
        let refused_at = app.clock.now();
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        let row = app.store.outbox_row(1).await.unwrap().unwrap();
        assert_eq!(row.status, nudged::store::OutboxStatus::Pending);
        assert_eq!(row.not_before, refused_at + clamp, "deferred by the clamp");

        // Messages queued meanwhile wait with it (the workspace is
        // paused), and all go once the pause ends.
        post(&app, "C2", "later").await;
        app.clock.advance(clamp - Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        app.clock.advance(Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        app.clock.advance(Duration::milliseconds(1));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));
        let mut delivered = texts(&mut app);
        // The refused one, then both (the older row may go first).
        delivered[1..].sort();
        assert_eq!(delivered, ["first", "first", "later"]);
        let counts = app.store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent), (0, 2));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn the_running_worker_survives_an_absurd_retry_after() {
    let env = [FAST[0], ("NUDGED__DELIVERY__CONCURRENCY", "1")];
    let mut app = spawn_app_with(&[], &env, false).await;
    tokio::time::timeout(WAIT, async {
        post(&app, "C1", "first").await;
        app.slack
            .script([Reply::TooManyRequests(ABSURD_RETRY_AFTER)]);
        let worker = outbox::Worker::new(
            app.store.clone(),
            slack_chat(&app.slack),
            app.settings.clone(),
        );
        let stop = CancellationToken::new();
        let running =
            tokio::spawn(worker.run(std::sync::Arc::new(app.clock.clone()), stop.clone()));
        assert!(!app.slack.next_call().await.ok, "the 429");
        // Recorded (as a retry, at the clock's time) before time moves on.
        while app.store.outbox_row(1).await.unwrap().unwrap().attempts == 0 {
            tokio::task::yield_now().await;
        }
        // Fifteen minutes later, by the app's clock, the worker sends it.
        app.clock.advance(Duration::minutes(15));
        let call = app.slack.next_call().await;
        assert_eq!(call.body["text"], "first");
        // And it goes on: a later message goes at its time.
        post(&app, "C2", "later").await;
        app.clock.advance(Duration::seconds(1));
        assert_eq!(app.slack.next_call().await.body["text"], "later");
        stop.cancel();
        running.await.expect("the worker did not panic");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
