//! Socket Mode over a real WebSocket on loopback, against the fake Slack's
//! Socket Mode endpoint: the same clicks, replies and commands as over
//! HTTP, each stored once and acknowledged only after its commit, across
//! retries, a refresh and a dropped line.

use serde_json::{Value, json};

use crate::fake_slack::{Envelope, FakeConnection};
use crate::helpers::{TestApp, TestEnv, WAIT, repo, spawn_app, spawn_app_with};

/// The app-level token the Socket Mode apps are configured with.
const APP_TOKEN: &str = "xapp-1-A0001-1234-abcdef";

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/data/slack").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An app with Socket Mode on, and its first connection, greeted.
async fn spawn_socket_app(people: &[&str]) -> (TestApp, FakeConnection) {
    spawn_socket_app_with(people, &[]).await
}

/// An app with Socket Mode on and more `NUDGED__…` settings, before its
/// first connection.
async fn spawn_socket_mode(people: &[&str], more: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("NUDGED__CHAT__SLACK__SOCKET_MODE", "true"),
        ("NUDGED__CHAT__SLACK__APP_TOKEN", APP_TOKEN),
    ];
    settings.extend_from_slice(more);
    spawn_app_with(people, &settings, false).await
}

/// [`spawn_socket_app`] with more `NUDGED__…` settings.
async fn spawn_socket_app_with(
    people: &[&str],
    more: &[(&str, &str)],
) -> (TestApp, FakeConnection) {
    let mut app = spawn_socket_mode(people, more).await;
    let mut connection = app.slack.next_connection().await;
    connection.hello().await;
    app.supervisor
        .health()
        .wait_for("socket_mode", |w| {
            w.state == nudged::health::WorkerState::Running
        })
        .await;
    (app, connection)
}

/// A `/pulse TEXT` from `user` as Socket Mode carries it (the fields of
/// the HTTP form, as a JSON object), with `trigger_id`.
fn command(user: &str, text: &str, trigger_id: &str) -> Value {
    json!({
        "token": "XXYYZZ",
        "team_id": "T0001",
        "team_domain": "acme",
        "channel_id": "D0001",
        "channel_name": "directmessage",
        "user_id": user,
        "user_name": user.to_lowercase(),
        "command": "/pulse",
        "text": text,
        "api_app_id": "A0001",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.com/commands/T0001/1/abc",
        "trigger_id": trigger_id,
    })
}

/// Sends `envelope` on `connection` and returns its ack, checking that
/// the ack names it.
async fn acked(connection: &mut FakeConnection, envelope: &Envelope, retry: u32) -> Value {
    connection.send(envelope, retry).await;
    let ack = connection.next_ack().await;
    assert_eq!(ack["envelope_id"], envelope.id.as_str(), "{ack}");
    ack
}

/// One transport or the other, for one suite run through both.
enum Transport {
    Http,
    Socket(Box<FakeConnection>),
}

impl Transport {
    /// Delivers an Events API body; returns the reply (`null`: none).
    async fn event(&mut self, app: &TestApp, body: Value) -> Value {
        match self {
            Self::Http => {
                let response = app.event(&body).await;
                assert_eq!(response.status(), 200);
                Value::Null
            }
            Self::Socket(c) => {
                acked(c, &Envelope::new("events_api", body), 0).await["payload"].take()
            }
        }
    }

    async fn interaction(&mut self, app: &TestApp, payload: Value) -> Value {
        match self {
            Self::Http => {
                let response = app.interaction(&payload).await;
                assert_eq!(response.status(), 200);
                Value::Null
            }
            Self::Socket(c) => {
                acked(c, &Envelope::new("interactive", payload), 0).await["payload"].take()
            }
        }
    }

    /// `/pulse TEXT`; returns the ephemeral reply's text.
    async fn pulse(&mut self, app: &TestApp, user: &str, text: &str, trigger: &str) -> String {
        let reply = match self {
            Self::Http => {
                let response = app.command(user, text, trigger).await;
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.unwrap()
            }
            Self::Socket(c) => acked(
                c,
                &Envelope::new("slash_commands", command(user, text, trigger)),
                0,
            )
            .await["payload"]
                .take(),
        };
        assert_eq!(reply["response_type"], "ephemeral", "{reply}");
        reply["text"].as_str().unwrap().to_owned()
    }
}

/// A click, a DM reply, the Home tab and `/pulse` through `transport`:
/// what is stored and queued, and what `/pulse` answered.
async fn scenario(
    app: &TestApp,
    mut transport: Transport,
) -> (Vec<String>, Vec<Value>, Vec<String>) {
    let none = transport
        .interaction(app, fixture("block_actions.json"))
        .await;
    assert!(none.is_null(), "a click's ack carries nothing: {none}");
    transport.event(app, fixture("message_im.json")).await;
    transport.event(app, fixture("app_home_opened.json")).await;
    let replies = vec![
        transport
            .pulse(app, "U0001", "focus=mixed", "trigger.1")
            .await,
        // The same invocation again: done once.
        transport
            .pulse(app, "U0001", "focus=mixed", "trigger.1")
            .await,
        transport.pulse(app, "U0001", "help", "trigger.2").await,
    ];
    if let Transport::Socket(connection) = transport {
        drop(connection);
    }
    (app.answers().await, app.outbox().await, replies)
}

#[tokio::test]
async fn socket_mode_records_clicks_replies_and_pulse_exactly_like_http() {
    tokio::time::timeout(WAIT, async {
        let app = spawn_app(&["U0001"]).await;
        let over_http = scenario(&app, Transport::Http).await;
        app.stop().await;

        let (app, connection) = spawn_socket_app(&["U0001"]).await;
        let over_socket = scenario(&app, Transport::Socket(Box::new(connection))).await;
        app.stop().await;

        assert_eq!(over_socket.0.len(), 7, "{:?}", over_socket.0);
        assert!(
            over_socket.2[1].contains("already done"),
            "{:?}",
            over_socket.2
        );
        assert_eq!(over_socket, over_http);
    })
    .await
    .expect("test timed out");
}

/// Makes storing answers fail until the trigger is dropped.
const BREAK_ANSWERS: &str = "CREATE TRIGGER broken BEFORE INSERT ON answers \
     BEGIN SELECT RAISE(ABORT, 'disk trouble'); END";

#[tokio::test]
async fn an_envelope_is_acknowledged_only_after_its_answers_are_committed() {
    tokio::time::timeout(WAIT, async {
        let (app, mut connection) = spawn_socket_app(&["U0001"]).await;
        app.sqlite(BREAK_ANSWERS).await;
        let reply = Envelope::new("events_api", fixture("message_im.json"));
        connection.send(&reply, 0).await;
        // Envelopes are answered in order: the bot message's ack comes
        // first, so the reply was handled, failed, and got none.
        let ignored = Envelope::new("events_api", fixture("bot_message_im.json"));
        let ack = acked(&mut connection, &ignored, 0).await;
        assert_eq!(ack, json!({ "envelope_id": ignored.id }));
        assert!(app.answers().await.is_empty());

        app.sqlite("DROP TRIGGER broken").await;
        // Slack re-sends what was not acknowledged: now it is stored, once.
        acked(&mut connection, &reply, 1).await;
        assert_eq!(app.answers().await.len(), 7);
        acked(&mut connection, &reply, 2).await;
        assert_eq!(app.answers().await.len(), 7);
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1, "one reply: {outbox:?}");
        drop(connection);
        app.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_refresh_opens_the_new_connection_before_the_old_one_closes_and_loses_nothing() {
    tokio::time::timeout(WAIT, async {
        let (mut app, mut old) = spawn_socket_app(&["U0001"]).await;
        acked(
            &mut old,
            &Envelope::new("interactive", fixture("block_actions.json")),
            0,
        )
        .await;

        let asked = std::time::Instant::now();
        old.disconnect("refresh_requested").await;
        let mut new = app.slack.next_connection().await;
        assert_eq!((old.number, new.number), (1, 2));
        // The new connection is open and not greeted yet: the old one
        // still serves what Slack sends it meanwhile.
        acked(
            &mut old,
            &Envelope::new("events_api", fixture("message_im.json")),
            0,
        )
        .await;
        new.hello().await;
        old.closed_by_nudged().await;
        let refresh = asked.elapsed();
        eprintln!("refresh: old connection closed {refresh:?} after the disconnect");

        let ack = acked(
            &mut new,
            &Envelope::new(
                "slash_commands",
                command("U0001", "focus=mixed", "trigger.r"),
            ),
            0,
        )
        .await;
        assert_eq!(ack["payload"]["response_type"], "ephemeral");
        let answers = app.answers().await;
        assert_eq!(answers.len(), 7, "{answers:?}");
        assert!(answers.contains(&"U0001,2026-W47,focus,mixed".to_owned()));
        drop(new);
        app.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_dropped_line_is_reconnected_and_what_was_not_acknowledged_is_stored_once() {
    tokio::time::timeout(WAIT, async {
        let (mut app, mut first) = spawn_socket_app(&["U0001"]).await;
        first.ping().await;
        let reply = Envelope::new("events_api", fixture("message_im.json"));
        // Sent, and the line drops before any ack can come back.
        first.send(&reply, 0).await;
        first.drop_abruptly();

        let mut second = app.slack.next_connection().await;
        second.hello().await;
        // Slack re-sends the unacknowledged envelope on the new line.
        acked(&mut second, &reply, 1).await;
        second.ping().await;
        assert_eq!(app.answers().await.len(), 7);
        assert_eq!(app.outbox().await.len(), 1, "one reply");
        let opens = app
            .slack
            .received()
            .iter()
            .filter(|c| c.method == "apps.connections.open")
            .inspect(|c| assert_eq!(c.auth.as_deref(), Some(&*format!("Bearer {APP_TOKEN}"))))
            .count();
        assert_eq!(opens, 2);
        drop(second);
        app.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn replicas_each_holding_a_connection_store_an_envelope_sent_to_both_once() {
    // Two daemons on one PostgreSQL database, as behind Slack's spreading
    // of envelopes among an app's connections.
    let Some(db) = crate::store::TestDb::postgres().await else {
        return;
    };
    tokio::time::timeout(WAIT, async {
        let shared = [("NUDGED__STORAGE__URL", db.url.as_str())];
        let (first, mut to_first) = spawn_socket_app_with(&["U0001"], &shared).await;
        let (second, mut to_second) = spawn_socket_app_with(&["U0001"], &shared).await;
        let reply = Envelope::new("events_api", fixture("message_im.json"));
        let click = Envelope::new("interactive", fixture("block_actions.json"));
        // Slack gave up waiting on one connection and re-sent on the other.
        tokio::join!(
            async {
                acked(&mut to_first, &reply, 0).await;
                acked(&mut to_first, &click, 1).await;
            },
            async {
                acked(&mut to_second, &reply, 1).await;
                acked(&mut to_second, &click, 0).await;
            },
        );
        let answers = first.answers().await;
        assert_eq!(answers.len(), 7, "{answers:?}");
        assert_eq!(second.answers().await, answers);
        let replies = first
            .outbox()
            .await
            .into_iter()
            .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with("Got it")))
            .count();
        assert_eq!(replies, 1, "one reply to the message");
        drop((to_first, to_second));
        first.stop().await;
        second.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_connection_that_fails_before_hello_is_tried_again_after_a_back_off() {
    tokio::time::timeout(WAIT, async {
        let mut app = spawn_socket_mode(&["U0001"], &[]).await;
        let mut refused = app.slack.next_connection().await;
        let failed = std::time::Instant::now();
        refused.disconnect("link_disabled").await;
        let mut second = app.slack.next_connection().await;
        let waited = failed.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(900),
            "a failed attempt is followed by a back-off, not a hot loop: {waited:?}"
        );
        second.hello().await;
        acked(
            &mut second,
            &Envelope::new("events_api", fixture("message_im.json")),
            0,
        )
        .await;
        assert_eq!(app.answers().await.len(), 7);
        drop((refused, second));
        app.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn readyz_reports_socket_mode_down_until_a_connection_is_open_and_http_takes_nothing() {
    tokio::time::timeout(WAIT, async {
        // No signing secret: the HTTP routes take nothing.
        let mut app =
            spawn_socket_mode(&["U0001"], &[("NUDGED__CHAT__SLACK__SIGNING_SECRET", "")]).await;
        let mut connection = app.slack.next_connection().await;
        let over_http = app.event(&fixture("message_im.json")).await;
        assert_eq!(over_http.status(), 401);
        assert!(app.answers().await.is_empty());
        let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(readyz.status(), 503);
        let body = readyz.text().await.unwrap();
        assert!(body.contains("worker socket_mode: starting"), "{body}");

        connection.hello().await;
        app.supervisor
            .health()
            .wait_for("socket_mode", |w| {
                w.state == nudged::health::WorkerState::Running
            })
            .await;
        let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(readyz.status(), 200);
        // Shutdown closes the connection with a close frame.
        tokio::join!(app.stop(), connection.closed_by_nudged());
    })
    .await
    .expect("test timed out");
}

#[test]
fn socket_mode_needs_an_app_token_and_no_signing_secret() {
    let env = TestEnv::new();
    let load = |vars: &[(&str, &str)]| {
        nudged::config::Settings::load_with_env(
            &env.config(),
            [
                ("NUDGED__CHAT__PLATFORM", "slack"),
                ("NUDGED__CHAT__SLACK__BOT_TOKEN", "xoxb-1"),
                ("NUDGED__CHAT__SLACK__SOCKET_MODE", "true"),
            ]
            .iter()
            .chain(vars)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    };
    let settings = load(&[("NUDGED__CHAT__SLACK__APP_TOKEN", APP_TOKEN)]).expect("valid");
    assert!(settings.chat.slack.socket_mode);
    assert!(settings.chat.slack.signing_secret.is_none());
    assert!(!format!("{settings:?}").contains(APP_TOKEN), "redacted");

    let missing = load(&[]).unwrap_err().to_string();
    assert!(missing.contains("chat.slack.app_token"), "{missing}");
    assert!(
        missing.contains("NUDGED__CHAT__SLACK__APP_TOKEN"),
        "{missing}"
    );

    let wrong = load(&[("NUDGED__CHAT__SLACK__APP_TOKEN", "xoxb-not-an-app-token")])
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("chat.slack.app_token"), "{wrong}");
    assert!(
        !wrong.contains("xoxb-not-an-app-token"),
        "never echoed: {wrong}"
    );

    let console = nudged::config::Settings::load_with_env(
        &env.config(),
        [(
            "NUDGED__CHAT__SLACK__SOCKET_MODE".to_owned(),
            "true".to_owned(),
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(console.contains("chat.slack.socket_mode"), "{console}");
}
