//! A local fake of a Mattermost server: the REST API v4 calls nudged makes
//! (answered like Mattermost, every call recorded, the next ones
//! scriptable to fail) and the WebSocket event stream on the same port,
//! where a test pushes `posted` events and drops connections.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::WAIT;

/// The bot account's user id.
pub const BOT_ID: &str = "nudgedbot0000000000000000b";
/// The bot account's token.
pub const BOT_TOKEN: &str = "mm-bot-token-0123";

/// One REST call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET /users/me`, `POST /posts`, … (the path under `/api/v4`).
    pub route: String,
    pub auth: Option<String>,
    pub body: Value,
    /// Whether the fake answered it with success (nothing scripted).
    pub ok: bool,
}

/// A scripted answer for the next REST call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Answered normally (to script a later call).
    Ok,
    /// HTTP 429 with `Retry-After: secs`.
    TooManyRequests(u64),
    /// HTTP 429 with only Mattermost's `X-Ratelimit-Reset: secs`.
    RateLimitReset(u64),
}

#[derive(Clone)]
struct Shared {
    calls: mpsc::UnboundedSender<Call>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    next_post: Arc<Mutex<u64>>,
    /// User id → profile `timezone` object.
    users: Arc<Mutex<HashMap<String, Value>>>,
}

/// A WebSocket connection nudged opened and authenticated.
pub struct Socket {
    push: mpsc::UnboundedSender<Option<Value>>,
}

impl Socket {
    /// Sends `event` to nudged.
    pub fn send(&self, event: Value) {
        self.push.send(Some(event)).expect("socket open");
    }

    /// Drops the connection without a close handshake, as a network would.
    pub fn drop_connection(self) {
        let _ = self.push.send(None);
    }
}

/// The running fake.
pub struct FakeMattermost {
    /// The server's URL (`chat.mattermost.url`).
    pub url: String,
    calls: mpsc::UnboundedReceiver<Call>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    users: Arc<Mutex<HashMap<String, Value>>>,
    sockets: mpsc::UnboundedReceiver<Socket>,
}

impl FakeMattermost {
    pub async fn start() -> Self {
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (sockets_tx, sockets) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let users = Arc::new(Mutex::new(HashMap::new()));
        let shared = Shared {
            calls: calls_tx,
            script: script.clone(),
            next_post: Arc::new(Mutex::new(0)),
            users: users.clone(),
        };
        let router = Router::new()
            .route("/api/v4/users/{id}", get(get_user))
            .route("/api/v4/channels/direct", post(direct_channel))
            .route("/api/v4/posts", post(create_post))
            .route("/api/v4/posts/{id}/patch", put(patch_post))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (router, sockets) = (router.clone(), sockets_tx.clone());
                tokio::spawn(async move {
                    if is_websocket(&stream).await {
                        websocket(stream, sockets).await;
                    } else {
                        let service = hyper_util::service::TowerToHyperService::new(router);
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    }
                });
            }
        });
        Self {
            url,
            calls,
            script,
            users,
            sockets,
        }
    }

    /// Makes `id` a user whose profile zone is `manual` (automatic off).
    pub fn add_user(&self, id: &str, manual: &str) {
        self.users.lock().unwrap().insert(
            id.to_owned(),
            json!({
                "useAutomaticTimezone": "false",
                "automaticTimezone": "",
                "manualTimezone": manual,
            }),
        );
    }

    /// Answers the next calls with `replies`, in order, then normally.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    /// Every REST call received so far, without waiting.
    pub fn received(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        while let Ok(call) = self.calls.try_recv() {
            calls.push(call);
        }
        calls
    }

    /// The next WebSocket connection authenticated with the bot token.
    pub async fn next_socket(&mut self) -> Socket {
        tokio::time::timeout(WAIT, self.sockets.recv())
            .await
            .expect("nudged did not connect to the WebSocket in time")
            .expect("fake Mattermost stopped")
    }
}

/// A `posted` event for a post `user` wrote in their DM with the bot, as
/// Mattermost sends it (the post itself a JSON string).
pub fn posted(user: &str, post_id: &str, root_id: &str, message: &str) -> Value {
    let post = json!({
        "id": post_id,
        "create_at": 1_763_568_000_000_u64,
        "user_id": user,
        "channel_id": format!("dm{user}"),
        "root_id": root_id,
        "message": message,
        "type": "",
        "props": {},
    });
    json!({
        "event": "posted",
        "data": {
            "channel_display_name": format!("@{user}"),
            "channel_name": format!("{BOT_ID}__{user}"),
            "channel_type": "D",
            "post": post.to_string(),
            "sender_name": format!("@{user}"),
        },
        "broadcast": { "channel_id": format!("dm{user}") },
        "seq": 2,
    })
}

/// Whether the connection's first request asks for the WebSocket.
async fn is_websocket(stream: &TcpStream) -> bool {
    let want = b"GET /api/v4/websocket";
    let mut buf = [0_u8; 21];
    for _ in 0..100 {
        match stream.peek(&mut buf).await {
            Ok(n) if n >= want.len() => return &buf[..] == want,
            Ok(0) | Err(_) => return false,
            Ok(_) => tokio::task::yield_now().await,
        }
    }
    false
}

/// One WebSocket connection: authenticated with the bot token, then handed
/// to the test, which pushes events or drops it.
async fn websocket(stream: TcpStream, sockets: mpsc::UnboundedSender<Socket>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    // The authentication challenge comes first.
    let Some(Ok(Message::Text(first))) = ws.next().await else {
        return;
    };
    let challenge: Value = serde_json::from_str(&first).unwrap_or_default();
    let ok = challenge["action"] == "authentication_challenge"
        && challenge["data"]["token"] == BOT_TOKEN;
    let status = if ok { "OK" } else { "FAIL" };
    let answer = json!({ "status": status, "seq_reply": challenge["seq"] });
    if ws.send(Message::text(answer.to_string())).await.is_err() || !ok {
        return;
    }
    let hello = json!({ "event": "hello", "data": { "server_version": "10.0.0" }, "seq": 0 });
    let _ = ws.send(Message::text(hello.to_string())).await;
    let (push, mut pushed) = mpsc::unbounded_channel();
    if sockets.send(Socket { push }).is_err() {
        return;
    }
    loop {
        tokio::select! {
            command = pushed.recv() => match command {
                Some(Some(event)) => {
                    if ws.send(Message::text(event.to_string())).await.is_err() {
                        return;
                    }
                }
                // Dropped: the TCP connection closes with no close frame.
                Some(None) | None => return,
            },
            incoming = ws.next() => {
                if !matches!(incoming, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

/// Records the call, and takes the scripted answer if there is one.
fn record(shared: &Shared, route: String, headers: &HeaderMap, body: Value) -> Option<Response> {
    let scripted = shared.script.lock().unwrap().pop_front();
    let _ = shared.calls.send(Call {
        route,
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
        ok: matches!(scripted, None | Some(Reply::Ok)),
    });
    scripted.and_then(|reply| match reply {
        Reply::Ok => None,
        Reply::TooManyRequests(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            axum::Json(json!({ "id": "api.context.rate_limited", "status_code": 429 })),
        )
            .into_response()
            .into(),
        Reply::RateLimitReset(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-ratelimit-reset", secs.to_string())],
            axum::Json(json!({ "id": "api.context.rate_limited", "status_code": 429 })),
        )
            .into_response()
            .into(),
    })
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {BOT_TOKEN}").as_str())
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "id": "api.context.session_expired.app_error", "status_code": 401 })),
    )
        .into_response()
}

async fn get_user(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(scripted) = record(&shared, format!("GET /users/{id}"), &headers, Value::Null) {
        return scripted;
    }
    if !authorized(&headers) {
        return unauthorized();
    }
    if id == "me" {
        return axum::Json(json!({ "id": BOT_ID, "username": "nudged", "is_bot": true }))
            .into_response();
    }
    match shared.users.lock().unwrap().get(&id) {
        Some(timezone) => {
            axum::Json(json!({ "id": id, "username": id, "timezone": timezone })).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "id": "app.user.missing_account.const", "status_code": 404 })),
        )
            .into_response(),
    }
}

async fn direct_channel(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Some(scripted) = record(
        &shared,
        "POST /channels/direct".into(),
        &headers,
        body.clone(),
    ) {
        return scripted;
    }
    if !authorized(&headers) {
        return unauthorized();
    }
    let other = body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|id| *id != BOT_ID)
        .unwrap_or(BOT_ID);
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": format!("dm{other}"), "type": "D" })),
    )
        .into_response()
}

async fn create_post(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if let Some(scripted) = record(&shared, "POST /posts".into(), &headers, body.clone()) {
        return scripted;
    }
    if !authorized(&headers) {
        return unauthorized();
    }
    let id = {
        let mut next = shared.next_post.lock().unwrap();
        *next += 1;
        format!("post{:022}", *next)
    };
    let mut post = body;
    post["id"] = json!(id);
    (StatusCode::CREATED, axum::Json(post)).into_response()
}

async fn patch_post(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let route = format!("{method} /posts/{id}/patch");
    if let Some(scripted) = record(&shared, route, &headers, body.clone()) {
        return scripted;
    }
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut post = body;
    post["id"] = json!(id);
    axum::Json(post).into_response()
}
