//! Slack's side of the loop over real HTTP: verification first, then
//! clicks, thread and DM replies, and `/pulse`, each stored before the ack.

use serde_json::{Value, json};

use crate::helpers::{SIGNING_SECRET, TestApp, WAIT, repo, spawn_app};

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/data/slack").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Runs `test` against a fresh app under the suite's timeout.
async fn with_app<F, Fut>(people: &[&str], test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    let app = spawn_app(people).await;
    let app = tokio::time::timeout(WAIT, test(app))
        .await
        .expect("test timed out");
    app.stop().await;
}

/// A click by `user` on the button carrying `value`, with the `action_id`
/// rendered with it and an `action_ts` of its own: each call is another
/// click, and sending one payload twice is a replay.
fn click(user: &str, value: &str) -> Value {
    static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut payload = fixture("block_actions.json");
    payload["user"]["id"] = json!(user);
    payload["actions"][0]["value"] = json!(value);
    let parts: Vec<&str> = value.split('|').collect();
    if let [_, _, question, option, ..] = parts[..] {
        payload["actions"][0]["action_id"] = json!(format!("{question}:{option}"));
    }
    payload["actions"][0]["action_ts"] = json!(format!("1763568360.{n:06}"));
    payload
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    with_app(&["U0001"], |app| async move {
        let response = app.event(&fixture("url_verification.json")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["challenge"],
            "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn forged_stale_future_and_unsigned_requests_are_refused_and_change_nothing() {
    with_app(&["U0001"], |app| async move {
        let body = serde_urlencoded::to_string([(
            "payload",
            click("U0001", "v1|2026-W47|decisions|3-5|U0001|weekly-checkin").to_string(),
        )])
        .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-19T16:05:00Z")
            .unwrap()
            .timestamp();
        let cases: Vec<(&str, Option<String>, Option<String>, u16)> = vec![
            (
                "wrong secret",
                Some(now.to_string()),
                Some(nudged::http::verify::sign(
                    "not-the-secret",
                    now,
                    body.as_bytes(),
                )),
                401,
            ),
            (
                "stale",
                Some((now - 301).to_string()),
                Some(nudged::http::verify::sign(
                    SIGNING_SECRET,
                    now - 301,
                    body.as_bytes(),
                )),
                401,
            ),
            (
                "future",
                Some((now + 301).to_string()),
                Some(nudged::http::verify::sign(
                    SIGNING_SECRET,
                    now + 301,
                    body.as_bytes(),
                )),
                401,
            ),
            ("no signature", Some(now.to_string()), None, 401),
            (
                "no timestamp",
                None,
                Some(nudged::http::verify::sign(
                    SIGNING_SECRET,
                    now,
                    body.as_bytes(),
                )),
                401,
            ),
            (
                "signature of other body",
                Some(now.to_string()),
                Some(nudged::http::verify::sign(
                    SIGNING_SECRET,
                    now,
                    b"payload=%7B%7D",
                )),
                401,
            ),
        ];
        for (name, ts, signature, status) in cases {
            let mut request = app
                .client
                .post(app.url("/slack/interactions"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            if let Some(ts) = ts {
                request = request.header("x-slack-request-timestamp", ts);
            }
            if let Some(signature) = signature {
                request = request.header("x-slack-signature", signature);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{name}");
        }
        assert!(app.answers().await.is_empty());

        // The same body, correctly signed, is accepted.
        let ok = app
            .post_signed(
                "/slack/interactions",
                "application/x-www-form-urlencoded",
                &body,
            )
            .await;
        assert_eq!(ok.status(), 200);
        assert_eq!(app.answers().await, ["U0001,2026-W47,decisions,3-5"]);

        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("nudged_verification_failures_total"),
            "{metrics}"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused() {
    with_app(&["U0001"], |app| async move {
        let huge = format!("payload={}", "x".repeat(1024 * 1024 + 1));
        let response = app
            .post_signed(
                "/slack/interactions",
                "application/x-www-form-urlencoded",
                &huge,
            )
            .await;
        assert_eq!(response.status(), 413);

        for body in [
            "payload=not-json",
            "nothing=here",
            "payload=%7B%22type%22%3A1%7D",
        ] {
            let response = app
                .post_signed(
                    "/slack/interactions",
                    "application/x-www-form-urlencoded",
                    body,
                )
                .await;
            assert_eq!(response.status(), 400, "{body}");
        }
        let response = app
            .post_signed("/slack/events", "application/json", "{\"type\":")
            .await;
        assert_eq!(response.status(), 400);
        let response = app
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                "text=now",
            )
            .await;
        assert_eq!(response.status(), 400);
        assert!(app.answers().await.is_empty());
        app
    })
    .await;
}

/// The `chat.update` calls the fake Slack received.
fn updates(app: &mut TestApp) -> Vec<Value> {
    app.slack
        .received()
        .into_iter()
        .filter(|c| c.method == "chat.update")
        .map(|c| c.body)
        .collect()
}

#[tokio::test]
async fn a_click_records_the_answer_and_updates_the_prompt() {
    with_app(&["U0001"], |mut app| async move {
        let response = app.interaction(&fixture("block_actions.json")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(app.answers().await, ["U0001,2026-W47,decisions,3-5"]);
        // Committed with the answer: a redraw of the clicked prompt.
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0]["op"], "refresh_prompt");

        app.deliver().await;
        let updates = updates(&mut app);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0]["channel"], "D0001");
        assert_eq!(updates[0]["ts"], "1763568000.000100");
        let text = updates[0]["text"].as_str().unwrap();
        assert!(text.contains("1 of 7 answered"), "{text}");
        let blocks = updates[0]["blocks"].to_string();
        assert!(blocks.contains("✓ _3–5_"), "{blocks}");
        app
    })
    .await;
}

#[tokio::test]
async fn double_clicks_count_once_and_a_changed_click_overwrites() {
    with_app(&["U0001"], |mut app| async move {
        // Two clicks on one button (two action_ts), not a replay.
        let first = click("U0001", "v1|2026-W47|focus|mixed|U0001|weekly-checkin");
        app.interaction(&first).await;
        app.interaction(&click(
            "U0001",
            "v1|2026-W47|focus|mixed|U0001|weekly-checkin",
        ))
        .await;
        assert_eq!(app.answers().await, ["U0001,2026-W47,focus,mixed"]);
        assert_eq!(
            app.outbox().await.len(),
            1,
            "a repeated click updates nothing"
        );

        // Changed before the update went out: the waiting update shows it.
        app.interaction(&click(
            "U0001",
            "v1|2026-W47|focus|deciding|U0001|weekly-checkin",
        ))
        .await;
        assert_eq!(app.answers().await, ["U0001,2026-W47,focus,deciding"]);
        assert_eq!(app.outbox().await.len(), 1);
        app.deliver().await;
        let sent = updates(&mut app);
        assert_eq!(sent.len(), 1);
        let blocks = sent[0]["blocks"].to_string();
        assert!(blocks.contains("✓ _Deciding what &amp; why_"), "{blocks}");

        // Changed after it went out: another update, once Slack's one
        // update per second in that channel allows.
        app.interaction(&click(
            "U0001",
            "v1|2026-W47|focus|mixed|U0001|weekly-checkin",
        ))
        .await;
        assert_eq!(app.outbox().await.len(), 2);
        app.clock.advance(chrono::Duration::seconds(1));
        app.deliver().await;
        let sent = updates(&mut app);
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0]["blocks"].to_string().contains("✓ _Mixed"),
            "{}",
            sent[0]["blocks"]
        );
        app
    })
    .await;
}

#[tokio::test]
async fn a_click_from_another_user_is_ignored() {
    with_app(&["U0001", "U0002"], |app| async move {
        let response = app
            .interaction(&click(
                "U0002",
                "v1|2026-W47|decisions|6+|U0001|weekly-checkin",
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert!(app.answers().await.is_empty());
        assert!(app.outbox().await.is_empty());
        app
    })
    .await;
}

#[tokio::test]
async fn a_dm_reply_in_positional_form_records_every_answer_and_says_what_it_understood() {
    with_app(&["U0001"], |app| async move {
        let response = app.event(&fixture("message_im.json")).await;
        assert_eq!(response.status(), 200);
        let answers = app.answers().await;
        assert_eq!(answers.len(), 7, "{answers:?}");
        assert!(answers.contains(&"U0001,2026-W47,stakeholders,4+".to_owned()));
        assert!(answers.contains(&"U0001,2026-W47,capacity,yes".to_owned()));
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0]["op"], "post");
        assert_eq!(outbox[0]["channel"], "D0001");
        assert_eq!(outbox[0]["thread_ts"], "1763568300.000200");
        assert!(
            outbox[0]["text"].as_str().unwrap().starts_with("Got it"),
            "{}",
            outbox[0]
        );
        app
    })
    .await;
}

#[tokio::test]
async fn a_dm_reply_in_named_form_and_an_unreadable_one() {
    with_app(&["U0001"], |app| async move {
        let mut event = fixture("message_im.json");
        event["event"]["text"] = json!("Decisions=3–5  capacity = none");
        event["event_id"] = json!("Ev1");
        app.event(&event).await;
        let mut answers = app.answers().await;
        answers.sort();
        assert_eq!(
            answers,
            [
                "U0001,2026-W47,capacity,none",
                "U0001,2026-W47,decisions,3-5"
            ]
        );

        event["event"]["text"] = json!("decisions=lots");
        event["event"]["ts"] = json!("1763568999.000900");
        event["event_id"] = json!("Ev2");
        app.event(&event).await;
        assert_eq!(
            app.answers().await.len(),
            2,
            "nothing recorded from an unreadable reply"
        );
        let outbox = app.outbox().await;
        let help = outbox.last().unwrap()["text"].as_str().unwrap().to_owned();
        assert!(help.contains("lots") && help.contains("3-5"), "{help}");
        app
    })
    .await;
}

#[tokio::test]
async fn a_retried_event_counts_once_and_bot_messages_are_ignored() {
    with_app(&["U0001"], |app| async move {
        let event = fixture("message_im.json");
        app.event(&event).await;
        // Slack's retry: same event id, X-Slack-Retry-Num set.
        let response = app.event_retry(&event, 1).await;
        assert_eq!(response.status(), 200);
        assert_eq!(app.outbox().await.len(), 1, "one reply only");

        app.event(&fixture("bot_message_im.json")).await;
        assert_eq!(
            app.outbox().await.len(),
            1,
            "the bot's own message is ignored"
        );
        assert_eq!(app.answers().await.len(), 7);
        app
    })
    .await;
}

#[tokio::test]
async fn app_home_opened_publishes_the_home_tab() {
    with_app(&["U0001"], |app| async move {
        app.event(&fixture("app_home_opened.json")).await;
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0]["op"], "publish_home");
        assert_eq!(outbox[0]["user"], "U0001");
        assert_eq!(outbox[0]["view"]["type"], "home");
        let home = outbox[0]["view"]["blocks"].to_string();
        assert!(home.contains("Your trend for 2026-W47"), "{home}");
        app
    })
    .await;
}

#[tokio::test]
async fn pulse_subcommands_answer_ephemerally_and_act() {
    with_app(&["U0001"], |app| async move {
        assert!(app.pulse("U0001", "help").await.contains("/pulse now"));
        assert!(app.pulse("U0001", "").await.contains("/pulse now"));
        assert!(app.pulse("U0001", "dance").await.contains("/pulse help"));

        // Not enrolled yet: told how to join; join enrols.
        assert!(app.pulse("U0009", "trend").await.contains("/pulse join"));
        assert!(app.pulse("U0009", "join").await.starts_with("You're in"));
        let u9 = nudged::domain::PersonId::parse("U0009").unwrap();
        assert!(app.store.person(&u9).await.unwrap().unwrap().enrolled);

        let reply = app.pulse("U0009", "pause 2w").await;
        assert!(reply.contains("2026-12-03"), "{reply}");
        assert!(
            app.store
                .person(&u9)
                .await
                .unwrap()
                .unwrap()
                .paused_until
                .is_some()
        );
        app.pulse("U0009", "resume").await;
        assert!(
            app.store
                .person(&u9)
                .await
                .unwrap()
                .unwrap()
                .paused_until
                .is_none()
        );
        assert!(app.pulse("U0009", "pause 99w").await.contains("52 weeks"));

        app.pulse("U0009", "leave").await;
        assert!(!app.store.person(&u9).await.unwrap().unwrap().enrolled);
        app.pulse("U0009", "join").await;

        let reply = app.pulse("U0009", "decisions=6+ capacity=little").await;
        assert!(reply.starts_with("Got it"), "{reply}");
        assert!(reply.contains("2026-W47"), "{reply}");
        let reply = app.pulse("U0009", "export").await;
        assert!(reply.contains("U0009,2026-W47,decisions,6+"), "{reply}");
        let trend = app.pulse("U0009", "trend").await;
        assert!(trend.contains("Your trend for 2026-W47"), "{trend}");
        assert!(
            trend.contains("0 of the last 8 weeks with enough answers"),
            "{trend}"
        );
        assert!(trend.contains("not enough weeks answered"), "{trend}");

        let reply = app.pulse("U0009", "now").await;
        assert!(reply.contains("2026-W47"), "{reply}");
        let prompt = app.outbox().await.pop().unwrap();
        assert_eq!(prompt["op"], "post");
        assert_eq!(prompt["channel"], "U0009");
        assert!(prompt["blocks"].as_array().unwrap().len() > 7);

        // forget asks first, then deletes.
        let reply = app.pulse("U0009", "forget").await;
        assert!(reply.contains("/pulse forget confirm"), "{reply}");
        assert!(app.store.person(&u9).await.unwrap().is_some());
        let reply = app.pulse("U0009", "forget confirm").await;
        assert!(reply.starts_with("Done"), "{reply}");
        assert!(app.store.person(&u9).await.unwrap().is_none());
        assert!(app.answers().await.is_empty());
        app
    })
    .await;
}

#[tokio::test]
async fn a_reply_in_a_prompts_thread_answers_that_prompts_week_and_updates_it() {
    with_app(&["U0001", "U0002"], |mut app| async move {
        // A prompt for last week, posted in a channel thread nudged knows.
        let now = crate::helpers::test_now();
        let checkin = nudged::store::CheckinRow {
            id: 0,
            person: nudged::domain::PersonId::parse("U0001").unwrap(),
            schedule: "weekly-checkin".into(),
            period: now - chrono::Duration::weeks(1),
            week: "2026-W46".parse().unwrap(),
            channel: None,
            message_ts: None,
            created_at: now,
        };
        assert_eq!(app.store.record_checkin(&checkin).await.unwrap(), Some(1));
        app.store
            .set_checkin_message(1, "C0001", "1763000000.000100")
            .await
            .unwrap();

        let mut event = fixture("message_im.json");
        event["event"]["channel"] = json!("C0001");
        event["event"]["channel_type"] = json!("channel");
        event["event"]["thread_ts"] = json!("1763000000.000100");
        event["event"]["text"] = json!("6+, 4+");

        // Someone else replying in that thread answers nothing.
        event["event"]["user"] = json!("U0002");
        event["event_id"] = json!("EvT1");
        app.event(&event).await;
        assert!(app.answers().await.is_empty());

        event["event"]["user"] = json!("U0001");
        event["event_id"] = json!("EvT2");
        app.event(&event).await;
        let mut answers = app.answers().await;
        answers.sort();
        assert_eq!(
            answers,
            [
                "U0001,2026-W46,decisions,6+",
                "U0001,2026-W46,stakeholders,4+"
            ]
        );

        let outbox = app.outbox().await;
        let reply = outbox.iter().find(|m| m["op"] == "post").expect("reply");
        assert_eq!(reply["thread_ts"], "1763000000.000100");
        app.deliver().await;
        let updates = updates(&mut app);
        assert_eq!(updates.len(), 1, "{updates:?}");
        assert_eq!(updates[0]["channel"], "C0001");
        assert_eq!(updates[0]["ts"], "1763000000.000100");
        assert!(
            updates[0]["text"]
                .as_str()
                .unwrap()
                .contains("2026-W46: 2 of 7 answered"),
            "{}",
            updates[0]
        );

        // A plain channel message outside any prompt thread is not for us.
        let mut chatter = fixture("message_im.json");
        chatter["event"]["channel"] = json!("C0001");
        chatter["event"]["channel_type"] = json!("channel");
        chatter["event_id"] = json!("EvT3");
        app.event(&chatter).await;
        assert_eq!(app.answers().await.len(), 2);
        app
    })
    .await;
}

#[tokio::test]
async fn metrics_count_answers_by_source_and_requests_by_route() {
    with_app(&["U0001"], |app| async move {
        app.interaction(&fixture("block_actions.json")).await;
        app.event(&fixture("message_im.json")).await;
        app.pulse("U0001", "focus=mixed").await;
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for source in ["button", "text", "command"] {
            assert!(
                metrics.contains(&format!(
                    "nudged_answers_recorded_total{{source=\"{source}\"}}"
                )),
                "{source}: {metrics}"
            );
        }
        assert!(
            metrics.contains(
                "nudged_http_requests_total{route=\"/slack/interactions\",outcome=\"ok\"}"
            ),
            "{metrics}"
        );
        assert!(
            metrics.contains("nudged_http_request_seconds_bucket"),
            "{metrics}"
        );
        app
    })
    .await;
}

#[tokio::test]
async fn a_click_from_someone_forgotten_records_nothing() {
    with_app(&["U0001"], |app| async move {
        let response = app
            .interaction(&click(
                "U0042",
                "v1|2026-W47|decisions|6+|U0042|weekly-checkin",
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert!(app.answers().await.is_empty());
        assert!(app.outbox().await.is_empty());
        let u42 = nudged::domain::PersonId::parse("U0042").unwrap();
        assert!(app.store.person(&u42).await.unwrap().is_none());
        app
    })
    .await;
}

// ---- nothing lost: a failure leaves nothing half-done, and a retry is
// handled -------------------------------------------------------------------

/// Makes every write of an answer fail until [`heal`] (a disk that
/// refuses, as far as nudged can tell).
const BREAK_ANSWERS: &str = "CREATE TRIGGER broken BEFORE INSERT ON answers \
     BEGIN SELECT RAISE(ABORT, 'disk trouble'); END";
/// Makes queueing a reply fail until [`heal`].
const BREAK_REPLIES: &str = "CREATE TRIGGER broken BEFORE INSERT ON outbox \
     WHEN NEW.dedupe_key LIKE 'reply:%' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END";

async fn heal(app: &TestApp) {
    app.sqlite("DROP TRIGGER broken").await;
}

#[tokio::test]
async fn an_event_that_failed_is_handled_when_slack_retries_it() {
    with_app(&["U0001"], |app| async move {
        let event = fixture("message_im.json");
        app.sqlite(BREAK_ANSWERS).await;
        assert_eq!(app.event(&event).await.status(), 503, "Slack will retry");
        assert!(app.answers().await.is_empty());
        heal(&app).await;

        assert_eq!(app.event_retry(&event, 1).await.status(), 200);
        assert_eq!(app.answers().await.len(), 7);
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1, "{outbox:?}");
        assert!(outbox[0]["text"].as_str().unwrap().starts_with("Got it"));

        // A later retry of the event that is now handled changes nothing.
        assert_eq!(app.event_retry(&event, 2).await.status(), 200);
        assert_eq!(app.answers().await.len(), 7);
        assert_eq!(app.outbox().await.len(), 1);
        app
    })
    .await;
}

#[tokio::test]
async fn a_text_reply_whose_reply_cannot_be_queued_stores_no_answer() {
    with_app(&["U0001"], |app| async move {
        let event = fixture("message_im.json");
        app.sqlite(BREAK_REPLIES).await;
        assert_eq!(app.event(&event).await.status(), 503);
        assert!(app.answers().await.is_empty(), "all or nothing");
        assert!(app.outbox().await.is_empty());
        heal(&app).await;

        assert_eq!(app.event_retry(&event, 1).await.status(), 200);
        assert_eq!(app.answers().await.len(), 7);
        assert_eq!(app.outbox().await.len(), 1);
        app
    })
    .await;
}

#[tokio::test]
async fn a_thread_reply_its_prompts_redraw_and_its_reply_are_stored_together() {
    with_app(&["U0001"], |app| async move {
        let now = crate::helpers::test_now();
        let checkin = nudged::store::CheckinRow {
            id: 0,
            person: nudged::domain::PersonId::parse("U0001").unwrap(),
            schedule: "weekly-checkin".into(),
            period: now,
            week: "2026-W47".parse().unwrap(),
            channel: None,
            message_ts: None,
            created_at: now,
        };
        let id = app.store.record_checkin(&checkin).await.unwrap().unwrap();
        app.store
            .set_checkin_message(id, "D0001", "1763568000.000100")
            .await
            .unwrap();
        let mut event = fixture("message_im.json");
        event["event"]["thread_ts"] = json!("1763568000.000100");
        event["event"]["text"] = json!("6+, 4+");

        app.sqlite(BREAK_REPLIES).await;
        assert_eq!(app.event(&event).await.status(), 503);
        assert!(app.answers().await.is_empty());
        assert!(
            app.outbox().await.is_empty(),
            "no redraw of answers never stored"
        );
        heal(&app).await;

        assert_eq!(app.event_retry(&event, 1).await.status(), 200);
        assert_eq!(app.answers().await.len(), 2);
        let mut ops: Vec<String> = app
            .outbox()
            .await
            .iter()
            .map(|m| m["op"].as_str().unwrap().to_owned())
            .collect();
        ops.sort();
        assert_eq!(ops, ["post", "refresh_prompt"]);
        app
    })
    .await;
}

// ---- replays change nothing ------------------------------------------------

#[tokio::test]
async fn a_replayed_click_does_not_undo_a_later_answer() {
    with_app(&["U0001"], |app| async move {
        let mixed = click("U0001", "v1|2026-W47|focus|mixed|U0001|weekly-checkin");
        let deciding = click("U0001", "v1|2026-W47|focus|deciding|U0001|weekly-checkin");
        let replays = "nudged_duplicates_dropped_total{kind=\"action\"}";
        let before = app.counter(replays).await;
        app.interaction(&mixed).await;
        app.interaction(&deciding).await;
        // The first click's signed request, sent again within the window.
        assert_eq!(app.interaction(&mixed).await.status(), 200);
        assert_eq!(app.answers().await, ["U0001,2026-W47,focus,deciding"]);
        assert!(app.counter(replays).await > before);
        app
    })
    .await;
}

#[tokio::test]
async fn a_replayed_pulse_now_queues_one_prompt() {
    with_app(&["U0001"], |app| async move {
        let mut replies = Vec::new();
        for _ in 0..3 {
            let response = app.command("U0001", "now", "8096483200.777.abcdef").await;
            assert_eq!(response.status(), 200);
            let json: Value = response.json().await.unwrap();
            replies.push(json["text"].as_str().unwrap().to_owned());
        }
        let prompts = app.outbox().await;
        assert_eq!(prompts.len(), 1, "{prompts:?}");
        assert!(replies[0].starts_with("On its way"), "{replies:?}");
        assert!(replies[1].contains("already done"), "{replies:?}");

        // Another invocation (another trigger_id) is another command.
        assert!(app.pulse("U0001", "now").await.starts_with("On its way"));
        assert_eq!(app.outbox().await.len(), 2);
        app
    })
    .await;
}

#[tokio::test]
async fn a_command_that_failed_can_be_sent_again() {
    with_app(&["U0001"], |app| async move {
        app.sqlite(
            "CREATE TRIGGER broken BEFORE INSERT ON checkins \
             BEGIN SELECT RAISE(ABORT, 'disk trouble'); END",
        )
        .await;
        let trigger = "8096483200.888.abcdef";
        assert_eq!(app.command("U0001", "now", trigger).await.status(), 503);
        assert!(app.outbox().await.is_empty());
        heal(&app).await;
        let response = app.command("U0001", "now", trigger).await;
        assert_eq!(response.status(), 200);
        let json: Value = response.json().await.unwrap();
        assert!(
            json["text"].as_str().unwrap().starts_with("On its way"),
            "{json}"
        );
        assert_eq!(app.outbox().await.len(), 1);
        app
    })
    .await;
}

// ---- only real answers are stored ------------------------------------------

/// A click with this `action_id` and value, by `user`.
fn click_with(user: &str, action_id: Option<&str>, value: Option<&str>) -> Value {
    let mut payload = click(user, "v1|2026-W47|decisions|3-5|U0001|weekly-checkin");
    if let Some(action_id) = action_id {
        payload["actions"][0]["action_id"] = json!(action_id);
    }
    match value {
        Some(value) => payload["actions"][0]["value"] = json!(value),
        None => {
            payload["actions"][0]
                .as_object_mut()
                .unwrap()
                .remove("value");
        }
    }
    payload
}

#[tokio::test]
async fn clicks_that_match_no_prompt_are_acknowledged_counted_and_ignored() {
    with_app(&["U0001", "U0002"], |app| async move {
        let cases: [(&str, Value); 14] = [
            (
                "unknown_action",
                click_with("U0001", Some("other"), Some("approve")),
            ),
            ("unknown_action", click_with("U0001", Some("other"), None)),
            (
                "malformed_value",
                click_with("U0001", None, Some("v1|2026-W47|decisions")),
            ),
            (
                "malformed_value",
                click_with(
                    "U0001",
                    None,
                    Some("v1|soon|decisions|3-5|U0001|weekly-checkin"),
                ),
            ),
            (
                "not_own_prompt",
                click("U0002", "v1|2026-W47|decisions|3-5|U0001|weekly-checkin"),
            ),
            (
                "action_mismatch",
                click_with(
                    "U0001",
                    Some("capacity:yes"),
                    Some("v1|2026-W47|decisions|3-5|U0001|weekly-checkin"),
                ),
            ),
            (
                "action_mismatch",
                click_with(
                    "U0001",
                    Some("unknown"),
                    Some("v1|2026-W47|decisions|3-5|U0001|weekly-checkin"),
                ),
            ),
            (
                "unknown_question",
                click("U0001", "v1|2026-W47|velocity|3-5|U0001|weekly-checkin"),
            ),
            (
                "unknown_schedule",
                click("U0001", "v1|2026-W47|decisions|3-5|U0001|no-such-schedule"),
            ),
            (
                "not_in_schedule",
                click("U0001", "v1|2026-W47|decisions|3-5|U0001|weekly-trend"),
            ),
            (
                "unknown_option",
                click("U0001", "v1|1990-W01|decisions|zzz|U0001|weekly-checkin"),
            ),
            (
                "wrong_week",
                click("U0001", "v1|1990-W01|decisions|3-5|U0001|weekly-checkin"),
            ),
            (
                "wrong_week",
                click("U0001", "v1|2026-W48|decisions|3-5|U0001|weekly-checkin"),
            ),
            (
                "unknown_person",
                click("U0042", "v1|2026-W47|decisions|3-5|U0042|weekly-checkin"),
            ),
        ];
        for (reason, payload) in cases {
            let series = format!("nudged_clicks_ignored_total{{reason=\"{reason}\"}}");
            let before = app.counter(&series).await;
            let response = app.interaction(&payload).await;
            assert_eq!(response.status(), 200, "{reason}: Slack must not retry");
            assert!(app.counter(&series).await > before, "{reason}: {payload}");
            assert!(app.answers().await.is_empty(), "{reason}: {payload}");
        }
        assert!(app.outbox().await.is_empty());

        // Two weeks back is too old; last week's prompt may still be
        // answered.
        app.interaction(&click(
            "U0001",
            "v1|2026-W45|decisions|3-5|U0001|weekly-checkin",
        ))
        .await;
        assert!(app.answers().await.is_empty());
        app.interaction(&click(
            "U0001",
            "v1|2026-W46|decisions|3-5|U0001|weekly-checkin",
        ))
        .await;
        assert_eq!(app.answers().await, ["U0001,2026-W46,decisions,3-5"]);
        app
    })
    .await;
}

#[tokio::test]
async fn a_clicks_week_is_the_persons_own_in_their_zone() {
    with_app(&["U0001"], |app| async move {
        let u1 = nudged::domain::PersonId::parse("U0001").unwrap();
        app.store
            .upsert_person(
                &nudged::store::NewPerson {
                    id: u1,
                    name: None,
                    tz: Some(chrono_tz::Pacific::Auckland),
                    enrolled: true,
                },
                crate::helpers::test_now(),
            )
            .await
            .unwrap();
        // Sunday 2026-11-22 20:00 UTC: still W47 in UTC, already Monday
        // of W48 in Auckland (UTC+13).
        app.clock
            .advance(chrono::Duration::hours(75) + chrono::Duration::minutes(55));
        app.interaction(&click(
            "U0001",
            "v1|2026-W46|decisions|3-5|U0001|weekly-checkin",
        ))
        .await;
        assert!(app.answers().await.is_empty(), "two weeks back, there");
        app.interaction(&click(
            "U0001",
            "v1|2026-W48|decisions|3-5|U0001|weekly-checkin",
        ))
        .await;
        app.interaction(&click(
            "U0001",
            "v1|2026-W47|focus|mixed|U0001|weekly-checkin",
        ))
        .await;
        assert_eq!(
            app.answers().await,
            ["U0001,2026-W47,focus,mixed", "U0001,2026-W48,decisions,3-5"]
        );
        app
    })
    .await;
}

// ---- verified but unexpected: acknowledged, never a 5xx --------------------

#[tokio::test]
async fn events_of_an_unknown_type_or_shape_are_acknowledged_and_ignored() {
    with_app(&["U0001"], |app| async move {
        let mut unknown_type = fixture("message_im.json");
        unknown_type["event"] = json!({ "type": "reaction_added", "user": "U0001" });
        let mut no_channel = fixture("message_im.json");
        no_channel["event"]
            .as_object_mut()
            .unwrap()
            .remove("channel");
        let mut no_ts = fixture("message_im.json");
        no_ts["event"].as_object_mut().unwrap().remove("ts");
        let mut no_text = fixture("message_im.json");
        no_text["event"].as_object_mut().unwrap().remove("text");
        let mut bad_user = fixture("message_im.json");
        bad_user["event"]["user"] = json!("not a user id");
        let mut home_without_user = fixture("app_home_opened.json");
        home_without_user["event"]
            .as_object_mut()
            .unwrap()
            .remove("user");
        let mut not_an_object = fixture("message_im.json");
        not_an_object["event"] = json!("message");
        let cases = [
            ("unknown_type", unknown_type),
            ("unexpected_shape", no_channel),
            ("unexpected_shape", no_ts),
            ("message_without_user_or_text", no_text),
            ("unreadable_user", bad_user),
            ("unexpected_shape", home_without_user),
            ("unexpected_shape", not_an_object),
        ];
        for (i, (reason, mut event)) in cases.into_iter().enumerate() {
            event["event_id"] = json!(format!("EvOdd{i}"));
            let series = format!("nudged_events_ignored_total{{reason=\"{reason}\"}}");
            let before = app.counter(&series).await;
            let response = app.event(&event).await;
            assert_eq!(response.status(), 200, "{reason}: {event}");
            assert!(app.counter(&series).await > before, "{reason}: {event}");
        }
        assert!(app.answers().await.is_empty());
        assert!(app.outbox().await.is_empty());

        // Not an event callback at all: a 400, as before.
        let response = app
            .post_signed(
                "/slack/events",
                "application/json",
                "{\"type\":\"event_callback\"}",
            )
            .await;
        assert_eq!(response.status(), 400);
        app
    })
    .await;
}

#[tokio::test]
async fn pulse_now_without_a_checkin_schedule_says_so_instead_of_failing() {
    let schedules = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("schedules/weekly-trend.toml"),
        schedules.path().join("weekly-trend.toml"),
    )
    .unwrap();
    let dir = schedules.path().to_str().unwrap().to_owned();
    let app = crate::helpers::spawn_app_with(
        &["U0001"],
        &[("NUDGED__SCHEDULES__DIR", dir.as_str())],
        false,
    )
    .await;
    let app = tokio::time::timeout(WAIT, async move {
        let series = "nudged_commands_declined_total{reason=\"no_checkin_schedule\"}";
        let before = app.counter(series).await;
        let reply = app.pulse("U0001", "now").await;
        assert!(reply.contains("no `checkin` schedule"), "{reply}");
        assert!(app.outbox().await.is_empty());
        assert!(app.counter(series).await > before);
        app
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
