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
        deferred: 0,
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

/// A Slack client pointed at a fresh fake Slack.
async fn slack_chat() -> (crate::fake_slack::FakeSlack, nudged::chat::SlackChat) {
    let slack = crate::fake_slack::FakeSlack::start().await;
    let chat = nudged::chat::SlackChat::new(&slack.base_url, &BOT_TOKEN.to_owned().into())
        .expect("slack client");
    (slack, chat)
}

#[tokio::test]
async fn users_info_gives_a_persons_profile_time_zone() {
    use nudged::chat::{ChatApi, ChatError};
    use nudged::domain::PersonId;

    let (mut slack, chat) = slack_chat().await;
    slack.add_user("U0001", Some("Europe/Berlin"));
    slack.add_user("U0002", None);
    slack.add_user("U0003", Some("Mars/Olympus_Mons"));
    let person = |id: &str| PersonId::parse(id).unwrap();
    tokio::time::timeout(WAIT, async {
        assert_eq!(
            chat.user_tz(&person("U0001")).await,
            Ok(Some(chrono_tz::Europe::Berlin))
        );
        let call = slack.next_call().await;
        assert_eq!(call.method, "users.info");
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(call.body, json!({ "user": "U0001" }));
        assert_eq!(
            call.auth.as_deref(),
            Some(format!("Bearer {BOT_TOKEN}").as_str())
        );

        // No zone in the profile, or one chrono-tz does not know: none.
        assert_eq!(chat.user_tz(&person("U0002")).await, Ok(None));
        assert_eq!(chat.user_tz(&person("U0003")).await, Ok(None));

        assert_eq!(
            chat.user_tz(&person("U9999")).await,
            Err(ChatError::Permanent {
                code: "user_not_found".into()
            })
        );
        slack.script([Reply::TooManyRequests(20), Reply::Status(502)]);
        assert_eq!(
            chat.user_tz(&person("U0001")).await,
            Err(ChatError::RateLimited {
                retry_after: std::time::Duration::from_secs(20)
            })
        );
        assert!(matches!(
            chat.user_tz(&person("U0001")).await,
            Err(ChatError::Transient { .. })
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn platforms_without_profiles_know_no_time_zone() {
    use nudged::chat::{ChatApi, ConsoleChat};
    use nudged::domain::PersonId;

    let person = PersonId::parse("U0001").unwrap();
    assert_eq!(ConsoleChat.user_tz(&person).await, Ok(None));
    let hook = crate::fake_webhook::FakeWebhook::start(nudged::config::WebhookFlavor::Slack).await;
    let webhook = nudged::chat::WebhookChat::new(
        &hook.url.clone().into(),
        nudged::config::WebhookFlavor::Slack,
    )
    .unwrap();
    assert_eq!(webhook.user_tz(&person).await, Ok(None));
}
