//! The webhook platform against a local fake webhook over loopback: what
//! each server receives, how its errors are read, and that the URL (the
//! webhook's only credential) never shows.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nudged::chat::Outgoing;
use nudged::chat::{ChatApi, ChatError, Delivered, WebhookChat};
use nudged::clock::Clock;
use nudged::config::WebhookFlavor;
use nudged::domain::{PersonId, QuestionId, default_catalogue};
use nudged::outbox::{self, DeliveryOutcome};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::fake_webhook::{Answer, FakeWebhook, HOOK_KEY};
use crate::helpers::{TestEnv, WAIT, spawn_app};

fn chat(url: &str, flavor: WebhookFlavor) -> WebhookChat {
    WebhookChat::new(&url.to_owned().into(), flavor).expect("webhook client")
}

/// This week's prompt for U0001, nothing answered yet.
fn prompt() -> Outgoing {
    let catalogue = default_catalogue();
    let questions: Vec<QuestionId> = catalogue.questions().iter().map(|q| q.id.clone()).collect();
    let message = nudged::render::prompt(
        &catalogue,
        &questions,
        &PersonId::parse("U0001").unwrap(),
        "2026-W47".parse().unwrap(),
        "weekly-checkin",
        &BTreeMap::new(),
    );
    Outgoing::post("U0001", None, message)
}

#[tokio::test]
async fn a_slack_webhook_gets_blocks_with_the_options_as_text_and_no_buttons() {
    let mut hook = FakeWebhook::start(WebhookFlavor::Slack).await;
    let chat = chat(&hook.url, WebhookFlavor::Slack);
    let delivered = tokio::time::timeout(WAIT, chat.send(&prompt()))
        .await
        .unwrap();
    assert_eq!(delivered, Ok(Delivered::default()));

    let post = hook.next_post().await;
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    let blocks = post.body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["elements"][0]["text"], "For <@U0001>");
    assert!(
        blocks.iter().all(|b| b["type"] != "actions"),
        "nobody could receive a click: {blocks:#?}"
    );
    assert!(
        blocks
            .iter()
            .any(|b| b["elements"][0]["text"] == "0 · 1-2 · 3-5 · 6+"),
        "{blocks:#?}"
    );
    assert_eq!(blocks.len(), 1 + 15);
    let text = post.body["text"].as_str().unwrap();
    assert_eq!(
        text,
        "For <@U0001>: Weekly check-in for 2026-W47: 0 of 7 answered"
    );
}

#[tokio::test]
async fn mattermost_gets_markdown_text_and_no_blocks() {
    let mut hook = FakeWebhook::start(WebhookFlavor::Mattermost).await;
    let chat = Arc::new(chat(&hook.url, WebhookFlavor::Mattermost));
    assert_eq!(chat.send(&prompt()).await, Ok(Delivered::default()));

    let post = hook.next_post().await;
    assert!(post.body.get("blocks").is_none(), "{:#}", post.body);
    let text = post.body["text"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "For @U0001");
    assert_eq!(
        lines[1],
        "**Weekly check-in for 2026-W47: 0 of 7 answered**"
    );
    assert!(text.contains("\n    0 · 1-2 · 3-5 · 6+\n"), "{text}");
    assert!(text.contains("deciding (Deciding what & why)"), "{text}");
}

#[tokio::test]
async fn rocket_chat_gets_mrkdwn_text_and_its_json_answer_is_understood() {
    let mut hook = FakeWebhook::start(WebhookFlavor::Rocketchat).await;
    let chat = chat(&hook.url, WebhookFlavor::Rocketchat);
    assert_eq!(chat.send(&prompt()).await, Ok(Delivered::default()));
    let post = hook.next_post().await;
    assert!(post.body.get("blocks").is_none());
    let text = post.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("For @U0001\n*Weekly check-in for 2026-W47: 0 of 7 answered*\n"),
        "{text}"
    );

    // Rocket.Chat may refuse with a 200 and `success: false`.
    hook.script([Answer::Status(
        200,
        r#"{"success":false,"error":"error-invalid-channel"}"#,
    )]);
    assert_eq!(
        chat.send(&prompt()).await,
        Err(ChatError::Permanent {
            code: "error-invalid-channel".into()
        })
    );
}

#[tokio::test]
async fn http_errors_map_to_rate_limited_transient_or_permanent() {
    let hook = FakeWebhook::start(WebhookFlavor::Slack).await;
    let chat = chat(&hook.url, WebhookFlavor::Slack);
    let message = prompt();
    hook.script([
        Answer::TooManyRequests(12),
        Answer::Status(503, "<html>busy</html>"),
        Answer::Status(500, "rollup_error"),
        Answer::Status(404, "no_service"),
        Answer::Status(403, "invalid_token"),
        Answer::Status(410, "channel_is_archived"),
        Answer::Status(400, "invalid_payload"),
    ]);
    let mut results = Vec::new();
    for _ in 0..7 {
        results.push(
            tokio::time::timeout(WAIT, chat.send(&message))
                .await
                .unwrap(),
        );
    }
    let permanent = |code: &str| {
        Err(ChatError::Permanent {
            code: code.to_owned(),
        })
    };
    assert_eq!(
        results,
        [
            Err(ChatError::RateLimited {
                retry_after: Duration::from_secs(12)
            }),
            Err(ChatError::Transient {
                reason: "webhook: HTTP 503".into()
            }),
            Err(ChatError::Transient {
                reason: "webhook: rollup_error (HTTP 500)".into()
            }),
            permanent("no_service (HTTP 404)"),
            permanent("invalid_token (HTTP 403)"),
            permanent("channel_is_archived (HTTP 410)"),
            permanent("invalid_payload (HTTP 400)"),
        ]
    );

    // Nothing listening: worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = self::chat(
        &format!("http://{addr}/hooks/{HOOK_KEY}"),
        WebhookFlavor::Slack,
    );
    assert_eq!(
        unreachable.send(&message).await,
        Err(ChatError::Transient {
            reason: "webhook: cannot connect".into()
        })
    );
}

#[tokio::test]
async fn updates_and_home_views_are_acknowledged_without_a_post() {
    let app = spawn_app(&["U0001"]).await;
    let mut hook = FakeWebhook::start(WebhookFlavor::Mattermost).await;
    let chat = Arc::new(chat(&hook.url, WebhookFlavor::Mattermost));
    tokio::time::timeout(WAIT, async {
        let now = app.clock.now();
        let person = PersonId::parse("U0001").unwrap();
        for message in [
            Outgoing::Update {
                channel: "D0001".into(),
                ts: "1763568001.000100".into(),
                text: "1 of 7 answered".into(),
                blocks: vec![],
            },
            Outgoing::PublishHome {
                user: "U0001".into(),
                view: json!({"type": "home", "blocks": []}),
            },
        ] {
            outbox::enqueue(
                app.store.as_ref(),
                &message.into(),
                Some(&person),
                None,
                now,
            )
            .await
            .unwrap();
        }
        let outcome = outbox::Worker::new(app.store.clone(), chat.clone(), app.settings.clone())
            .deliver_due(now)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DeliveryOutcome {
                sent: 2,
                retried: 0,
                failed: 0,
                deferred: 0,
            }
        );
        // Had either been posted, it would arrive before this one.
        chat.send(&prompt()).await.unwrap();
        let post = hook.next_post().await;
        assert!(
            post.body["text"]
                .as_str()
                .unwrap()
                .contains("Weekly check-in"),
            "{:#}",
            post.body
        );
        assert!(hook.received().is_empty());
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

/// Everything tracing writes, at every level, kept for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_webhook_url_never_reaches_errors_logs_or_the_outbox() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runs on one thread, so everything it polls logs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = spawn_app(&["U0001"]).await;
    let hook = FakeWebhook::start(WebhookFlavor::Slack).await;
    let chat = Arc::new(chat(&hook.url, WebhookFlavor::Slack));
    tokio::time::timeout(WAIT, async {
        app.pulse("U0001", "now").await;
        app.pulse("U0001", "now").await;
        hook.script([
            Answer::Status(503, "busy"),
            Answer::Status(404, "no_service"),
        ]);
        // Both prompts go to one DM, so the second waits a second for its
        // turn.
        let mut worker = outbox::Worker::new(app.store.clone(), chat.clone(), app.settings.clone());
        let first = worker.deliver_due(app.clock.now()).await.unwrap();
        app.clock.advance(chrono::Duration::seconds(1));
        let second = worker.deliver_due(app.clock.now()).await.unwrap();
        assert_eq!(
            [first, second],
            [
                DeliveryOutcome {
                    sent: 0,
                    retried: 1,
                    failed: 0,
                    deferred: 1,
                },
                DeliveryOutcome {
                    sent: 0,
                    retried: 0,
                    failed: 1,
                    deferred: 0,
                },
            ]
        );
        let mut stored = Vec::new();
        for id in 1..=2 {
            let row = app.store.outbox_row(id).await.unwrap().unwrap();
            stored.push(row.last_error.unwrap_or_default());
        }
        stored.sort();
        assert_eq!(
            stored,
            ["refused: no_service (HTTP 404)", "webhook: busy (HTTP 503)"]
        );
    })
    .await
    .expect("test timed out");
    app.stop().await;

    let logs = logs.text();
    assert!(logs.contains("delivery failed for good"), "{logs}");
    assert!(!logs.contains(HOOK_KEY), "{logs}");
    let shown = format!("{chat:?}");
    assert!(!shown.contains(HOOK_KEY), "{shown}");
}

#[tokio::test]
async fn nudged_run_posts_through_the_configured_webhook_and_never_logs_its_url() {
    let env = TestEnv::new();
    let mut hook = FakeWebhook::start(WebhookFlavor::Mattermost).await;
    let mut child = tokio::process::Command::from(env.command(&["run", "--ask-now"]))
        .env("NUDGED__CHAT__PLATFORM", "webhook")
        .env("NUDGED__CHAT__WEBHOOK__URL", &hook.url)
        .env("NUDGED__CHAT__WEBHOOK__FLAVOR", "mattermost")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn nudged run");

    let post = hook.next_post().await;
    let text = post.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("For @demo\n**Weekly check-in for "),
        "{text}"
    );

    child.kill().await.unwrap();
    let mut log = String::new();
    tokio::time::timeout(WAIT, async {
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .await
            .unwrap();
    })
    .await
    .expect("stderr closes once the child is gone");
    assert!(log.contains("listening on"), "{log}");
    assert!(
        !log.contains(HOOK_KEY),
        "the webhook URL was logged:\n{log}"
    );
}

#[tokio::test]
async fn an_absurd_retry_after_from_a_webhook_defers_by_at_most_fifteen_minutes() {
    let app = spawn_app(&["U0001"]).await;
    let mut hook = FakeWebhook::start(WebhookFlavor::Slack).await;
    let chat = Arc::new(chat(&hook.url, WebhookFlavor::Slack));
    tokio::time::timeout(WAIT, async {
        let first = Outgoing::post(
            "C1",
            None,
            nudged::render::Message {
                text: "first".into(),
                blocks: vec![],
            },
        );
        outbox::enqueue(
            app.store.as_ref(),
            &first.into(),
            None,
            None,
            app.clock.now(),
        )
        .await
        .unwrap();
        hook.script([Answer::TooManyRequests(99_999_999_999_999)]);
        let mut worker = outbox::Worker::new(app.store.clone(), chat.clone(), app.settings.clone());
        let refused_at = app.clock.now();
        let refused = worker.deliver_due(refused_at).await.unwrap();
        assert_eq!(refused.retried, 1);
        let row = app.store.outbox_row(1).await.unwrap().unwrap();
        assert_eq!(row.not_before, refused_at + chrono::Duration::minutes(15));

        let later = Outgoing::post(
            "C2",
            None,
            nudged::render::Message {
                text: "later".into(),
                blocks: vec![],
            },
        );
        outbox::enqueue(
            app.store.as_ref(),
            &later.into(),
            None,
            None,
            app.clock.now(),
        )
        .await
        .unwrap();
        app.clock.advance(chrono::Duration::minutes(15));
        let mut sent = 0;
        for _ in 0..3 {
            sent += worker.deliver_due(app.clock.now()).await.unwrap().sent;
            app.clock.advance(chrono::Duration::seconds(1));
        }
        assert_eq!(sent, 2);
        let mut texts: Vec<_> = hook
            .received()
            .iter()
            .map(|p| p.body["text"].as_str().unwrap().to_owned())
            .collect();
        // The refused post, then both at once (two channels).
        texts[1..].sort();
        assert_eq!(texts, ["For C1\nfirst", "For C1\nfirst", "For C2\nlater"]);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
