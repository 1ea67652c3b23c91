//! The outbox delivering to a local fake Slack: what Slack receives, and
//! nothing lost through rate limits and outages.

use chrono::Duration;
use nudged::outbox::DeliveryOutcome;
use serde_json::json;

use crate::fake_slack::Reply;
use crate::helpers::{BOT_TOKEN, WAIT, spawn_app};

fn outcome(sent: usize, retried: usize, failed: usize) -> DeliveryOutcome {
    DeliveryOutcome {
        sent,
        retried,
        failed,
    }
}

#[tokio::test]
async fn a_prompt_asked_now_reaches_slack_and_its_thread_then_takes_answers() {
    let mut app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        let reply = app.pulse("U0001", "now").await;
        assert!(reply.contains("2026-W47"), "{reply}");
        assert_eq!(app.deliver().await, outcome(1, 0, 0));

        let call = app.slack.next_call().await;
        assert_eq!(call.method, "chat.postMessage");
        assert_eq!(
            call.auth.as_deref(),
            Some(format!("Bearer {BOT_TOKEN}").as_str())
        );
        assert_eq!(call.body["channel"], "U0001");
        assert_eq!(call.body["blocks"].as_array().unwrap().len(), 15);

        // The fake answered with the DM channel and ts: a reply in that
        // thread is now an answer to that prompt, and updates it.
        let mut event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                crate::helpers::repo().join("tests/data/slack/message_im.json"),
            )
            .unwrap(),
        )
        .unwrap();
        event["event"]["channel"] = json!("D0001");
        event["event"]["thread_ts"] = json!("1763568001.000100");
        event["event"]["text"] = json!("decisions=6+");
        app.event(&event).await;
        assert_eq!(app.answers().await, ["U0001,2026-W47,decisions,6+"]);
        assert_eq!(app.deliver().await, outcome(2, 0, 0));
        let calls = app.slack.received();
        let update = calls
            .iter()
            .find(|c| c.method == "chat.update")
            .expect("prompt updated");
        assert_eq!(update.body["ts"], "1763568001.000100");
        assert!(
            update.body["text"]
                .as_str()
                .unwrap()
                .contains("1 of 7 answered")
        );
        let reply = calls
            .iter()
            .find(|c| c.method == "chat.postMessage")
            .expect("reply posted");
        assert_eq!(reply.body["thread_ts"], "1763568001.000100");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried_and_nothing_is_lost() {
    let mut app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        app.pulse("U0001", "now").await;
        app.slack.script([Reply::TooManyRequests(7)]);
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        app.slack.next_call().await;

        // Not before Slack's Retry-After.
        app.clock.advance(Duration::seconds(6));
        assert_eq!(app.deliver().await, outcome(0, 0, 0));
        app.clock.advance(Duration::seconds(1));

        // Then an outage: retried with back-off.
        app.slack
            .script([Reply::Status(503), Reply::Error("ratelimited")]);
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        app.clock.advance(Duration::minutes(30));
        assert_eq!(app.deliver().await, outcome(0, 1, 0));
        app.clock.advance(Duration::minutes(30));
        assert_eq!(app.deliver().await, outcome(1, 0, 0));

        let calls = app.slack.received();
        assert_eq!(calls.len(), 3, "one call per attempt");
        let counts = app.store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 0));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn permanent_errors_are_marked_failed_with_the_error() {
    let mut app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        app.pulse("U0001", "now").await;
        app.slack.script([Reply::Error("channel_not_found")]);
        assert_eq!(app.deliver().await, outcome(0, 0, 1));
        app.slack.next_call().await;
        app.clock.advance(Duration::hours(1));
        assert_eq!(app.deliver().await, outcome(0, 0, 0), "never retried");
        let row = app.store.outbox_row(1).await.unwrap().unwrap();
        assert_eq!(
            row.last_error.as_deref(),
            Some("refused: channel_not_found")
        );
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
