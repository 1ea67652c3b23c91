//! A local fake of Slack's Web API: answers like Slack, records every call,
//! can be told to fail the next calls (429, 5xx, `ok: false`), and can hold
//! its answers back so a test sees sends in flight. It knows the users it
//! is told about, for `users.info`, and answers `auth.test` with the scopes
//! it is told the token has.
//!
//! Its Socket Mode side: `apps.connections.open` (for an `xapp-` token)
//! hands out a `ws://` URL on a loopback listener of its own, and each
//! WebSocket opened there reaches the test as a [`FakeConnection`], on
//! which the test says hello, sends envelopes (and re-sends them, as Slack
//! does when an ack is late), asks for a refresh, or drops the line.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::WAIT;

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub auth: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body, or the form fields as a JSON object of strings.
    pub body: Value,
    /// Whether the fake answers it with success (nothing scripted).
    pub ok: bool,
    /// Whether the fake held its answer back until [`FakeSlack::release`]:
    /// a sender that died meanwhile never learnt that it arrived.
    pub held: bool,
    /// When the fake received it.
    pub at: std::time::Instant,
}

/// A scripted answer for the next call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 429 with `Retry-After: secs`.
    TooManyRequests(u64),
    /// An HTTP status with an empty body.
    Status(u16),
    /// HTTP 200 `{"ok": false, "error": code}`.
    Error(&'static str),
}

/// How many calls are answered before the rest wait for
/// [`FakeSlack::release`]; `None`: all are.
type Held = Arc<Mutex<Option<usize>>>;

#[derive(Clone)]
struct Shared {
    calls: mpsc::UnboundedSender<Call>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    next_ts: Arc<Mutex<u64>>,
    /// User id → profile time zone (`None`: a profile without one).
    users: Arc<Mutex<HashMap<String, Option<String>>>>,
    answer_first: Held,
    released: watch::Receiver<bool>,
    /// What `x-oauth-scopes` says on every answer.
    scopes: Arc<Mutex<String>>,
    /// Where the fake's Socket Mode listener is, `ws://HOST:PORT`.
    socket_base: String,
    /// `apps.connections.open` calls so far: each URL gets its own ticket.
    tickets: Arc<Mutex<u64>>,
}

/// Every scope nudged's manifest asks for, as a freshly installed app has.
pub const ALL_SCOPES: &str = "chat:write,im:history,users:read,commands";

/// The running fake.
pub struct FakeSlack {
    pub base_url: String,
    calls: mpsc::UnboundedReceiver<Call>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    users: Arc<Mutex<HashMap<String, Option<String>>>>,
    answer_first: Held,
    release: watch::Sender<bool>,
    scopes: Arc<Mutex<String>>,
    connections: mpsc::UnboundedReceiver<FakeConnection>,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let users = Arc::new(Mutex::new(HashMap::new()));
        let answer_first: Held = Arc::new(Mutex::new(None));
        let (release, released) = watch::channel(false);
        let scopes = Arc::new(Mutex::new(ALL_SCOPES.to_owned()));
        let (socket_base, connections) = start_socket_listener().await;
        let shared = Shared {
            calls: tx,
            script: script.clone(),
            next_ts: Arc::new(Mutex::new(1_763_568_000)),
            users: users.clone(),
            answer_first: answer_first.clone(),
            released,
            scopes: scopes.clone(),
            socket_base,
            tickets: Arc::new(Mutex::new(0)),
        };
        let app = Router::new()
            .route("/api/{method}", post(handle))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url,
            calls: rx,
            script,
            users,
            answer_first,
            release,
            scopes,
            connections,
        }
    }

    /// The scopes the bot token has from now on (`x-oauth-scopes`).
    pub fn grant_scopes(&self, scopes: &str) {
        *self.scopes.lock().unwrap() = scopes.to_owned();
    }

    /// The next Socket Mode connection opened to the fake, waiting for it
    /// under the suite's timeout. It has not said hello yet.
    pub async fn next_connection(&mut self) -> FakeConnection {
        tokio::time::timeout(WAIT, self.connections.recv())
            .await
            .expect("no Socket Mode connection was opened in time")
            .expect("fake Slack stopped")
    }

    /// Makes `id` a user of the workspace, with profile zone `tz`.
    pub fn add_user(&self, id: &str, tz: Option<&str>) {
        self.users
            .lock()
            .unwrap()
            .insert(id.to_owned(), tz.map(str::to_owned));
    }

    /// Answers the next `n` calls, then records each further call at once
    /// but answers it only after [`FakeSlack::release`].
    pub fn hold_after(&self, n: usize) {
        *self.answer_first.lock().unwrap() = Some(n);
        self.release.send_replace(false);
    }

    /// Answers the held calls and every call from now on.
    pub fn release(&self) {
        *self.answer_first.lock().unwrap() = None;
        self.release.send_replace(true);
    }

    /// Answers the next calls with `replies`, in order, then normally.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// Drops the replies scripted and not yet given: answers normally
    /// from now on.
    pub fn clear_script(&self) {
        self.script.lock().unwrap().clear();
    }

    /// The next call, waiting for it under the suite's timeout.
    pub async fn next_call(&mut self) -> Call {
        tokio::time::timeout(WAIT, self.calls.recv())
            .await
            .expect("no call reached the fake Slack in time")
            .expect("fake Slack stopped")
    }

    /// Every call received so far, without waiting.
    pub fn received(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        while let Ok(call) = self.calls.try_recv() {
            calls.push(call);
        }
        calls
    }
}

async fn handle(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = if content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    {
        let fields: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
        json!(fields)
    } else {
        serde_json::from_str(&body).unwrap_or(Value::Null)
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let channel = body["channel"].as_str().map(|c| {
        // Posting to a user id lands in the DM with the bot, as in Slack.
        match c.strip_prefix('U') {
            Some(rest) => format!("D{rest}"),
            None => c.to_owned(),
        }
    });
    let scripted = shared.script.lock().unwrap().pop_front();
    let scopes = shared.scopes.lock().unwrap().clone();
    // Decided before the call is recorded, so a test reading the call knows
    // whether its sender has been answered.
    let hold = match &mut *shared.answer_first.lock().unwrap() {
        Some(0) => true,
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    };
    let _ = shared.calls.send(Call {
        method: method.clone(),
        auth: auth.clone(),
        content_type,
        body: body.clone(),
        ok: scripted.is_none(),
        held: hold,
        at: std::time::Instant::now(),
    });
    if hold {
        let _ = shared.released.clone().wait_for(|released| *released).await;
    }
    // A method nudged does not declare (with the scope it needs) in
    // `METHOD_SCOPES` fails, so the manifest cannot fall behind the code.
    let undeclared =
        method != "apps.connections.open" && nudged::chat::slack::method_scope(&method).is_err();
    let mut response = match scripted {
        _ if undeclared => {
            axum::Json(json!({ "ok": false, "error": "method_not_in_METHOD_SCOPES" }))
                .into_response()
        }
        Some(Reply::TooManyRequests(secs)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "",
        )
            .into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::Error(code)) => {
            axum::Json(json!({ "ok": false, "error": code })).into_response()
        }
        None if method == "apps.connections.open" => {
            // Only an app-level token opens a connection, as in Slack.
            if auth
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer xapp-"))
            {
                let ticket = {
                    let mut n = shared.tickets.lock().unwrap();
                    *n += 1;
                    *n
                };
                let url = format!("{}/link/?ticket=t{ticket}&app_id=A0001", shared.socket_base);
                axum::Json(json!({ "ok": true, "url": url })).into_response()
            } else {
                axum::Json(json!({ "ok": false, "error": "not_allowed_token_type" }))
                    .into_response()
            }
        }
        None if method == "auth.test" => axum::Json(json!({
            "ok": true,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "nudged",
            "team_id": "T0001",
            "user_id": "U0BOT",
            "bot_id": "B0001",
        }))
        .into_response(),
        None if method == "users.info" => {
            let id = body["user"].as_str().unwrap_or_default();
            let known = shared.users.lock().unwrap().get(id).cloned();
            match known {
                // As Slack answers: the profile, `tz` null when unset.
                Some(tz) => axum::Json(json!({
                    "ok": true,
                    "user": {
                        "id": id,
                        "team_id": "T0001",
                        "name": id.to_lowercase(),
                        "deleted": false,
                        "tz": tz,
                        "tz_label": "Central European Time",
                        "tz_offset": 3600,
                        "is_bot": false,
                    },
                }))
                .into_response(),
                None => {
                    axum::Json(json!({ "ok": false, "error": "user_not_found" })).into_response()
                }
            }
        }
        None => {
            let ts = {
                let mut next = shared.next_ts.lock().unwrap();
                *next += 1;
                format!("{}.000100", *next)
            };
            let ts = body["ts"].as_str().map_or(ts, str::to_owned);
            axum::Json(json!({ "ok": true, "channel": channel, "ts": ts })).into_response()
        }
    };
    // Slack says which scopes the token has on every answer.
    if let Ok(value) = scopes.parse() {
        response.headers_mut().insert("x-oauth-scopes", value);
    }
    response
}

/// Binds the Socket Mode listener: each WebSocket accepted there is sent
/// to the test as a [`FakeConnection`].
async fn start_socket_listener() -> (String, mpsc::UnboundedReceiver<FakeConnection>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut number = 0;
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
                continue;
            };
            number += 1;
            let _ = tx.send(FakeConnection { socket, number });
        }
    });
    (base, rx)
}

/// An envelope the fake sent, to send again.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub kind: &'static str,
    pub payload: Value,
}

impl Envelope {
    /// A new envelope of `kind` ("events_api", "interactive",
    /// "slash_commands") around `payload`, with an id of its own.
    pub fn new(kind: &'static str, payload: Value) -> Self {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            id: format!("env-{n:04}-8f1c"),
            kind,
            payload,
        }
    }
}

/// One Socket Mode connection, Slack's end of it.
pub struct FakeConnection {
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    /// 1 for the first connection opened to the fake, and so on.
    pub number: u64,
}

impl FakeConnection {
    async fn send_json(&mut self, value: Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .expect("send to nudged");
    }

    /// Slack's first message on a connection.
    pub async fn hello(&mut self) {
        self.send_json(json!({
            "type": "hello",
            "num_connections": 1,
            "debug_info": { "host": "fake-slack", "approximate_connection_time": 18060 },
            "connection_info": { "app_id": "A0001" },
        }))
        .await;
    }

    /// Sends `envelope` as Slack does the first time (`retry_attempt` 0)
    /// or as its retry number `retry_attempt`.
    pub async fn send(&mut self, envelope: &Envelope, retry_attempt: u32) {
        self.send_json(json!({
            "envelope_id": envelope.id,
            "type": envelope.kind,
            "payload": envelope.payload,
            "accepts_response_payload": envelope.kind == "slash_commands",
            "retry_attempt": retry_attempt,
            "retry_reason": if retry_attempt > 0 { "timeout" } else { "" },
        }))
        .await;
    }

    /// Slack's `disconnect` with `reason` (`refresh_requested`, `warning`,
    /// `link_disabled`); the connection stays open until nudged closes it.
    pub async fn disconnect(&mut self, reason: &str) {
        self.send_json(json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": { "host": "fake-slack" },
        }))
        .await;
    }

    /// The next acknowledgement nudged sends, under the suite's timeout;
    /// a ping on the way is answered.
    pub async fn next_ack(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("no ack in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("an ack is JSON");
                }
                Some(Ok(Message::Close(_))) | None => panic!("nudged closed the connection"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection broke: {e}"),
            }
        }
    }

    /// Sends a ping and waits for nudged's pong.
    pub async fn ping(&mut self) {
        self.socket
            .send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .expect("ping");
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("no pong in time");
            match frame {
                Some(Ok(Message::Pong(data))) => {
                    assert_eq!(&data[..], b"are you there");
                    return;
                }
                Some(Ok(Message::Text(text))) => panic!("expected a pong, got {text}"),
                Some(Ok(_)) => {}
                other => panic!("connection ended before the pong: {other:?}"),
            }
        }
    }

    /// Waits until nudged closes the connection (nothing else may come),
    /// then closes the line, as a server does after the closing handshake.
    pub async fn closed_by_nudged(mut self) {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("nudged did not close the connection in time");
            match frame {
                // Reading on after the close frame sends Slack's side of
                // the closing handshake; the stream then ends.
                None | Some(Err(_)) => return,
                Some(Ok(Message::Text(text))) => panic!("expected a close, got {text}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Drops the line without a close frame, as a broken network does.
    pub fn drop_abruptly(self) {
        drop(self.socket);
    }
}
