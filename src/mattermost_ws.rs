//! Replies typed in a DM with the bot on Mattermost, read from the
//! server's WebSocket event stream (`/api/v4/websocket`).
//!
//! The reader connects with the bot account's token (the
//! `authentication_challenge` action), reads `posted` events, and hands
//! each post a person wrote in their DM with the bot to the same use case
//! as a Slack DM ([`answers::text_reply`]), with the post's id as its
//! seen key: Mattermost may deliver a post again after a reconnect, and it
//! then counts once. Its own posts and posts in other channels are
//! ignored.
//!
//! A dropped connection is opened again after a back-off with jitter
//! (reset once a connection has been authenticated), and the reader runs
//! under the [`Supervisor`], like every worker; a refused token is a
//! fault of the worker, shown by `/readyz`. A silent connection is
//! pinged, and given up after [`SILENCE_LIMIT`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backon::BackoffBuilder;
use futures_util::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::chat::{ChatError, MattermostChat};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::PersonId;
use crate::health::Heartbeat;
use crate::service::answers::{self, Replied, TextReply, Written};
use crate::service::readiness::Assessor;
use crate::service::{self, Ctx};
use crate::store::{AnswerSource, Store};
use crate::supervisor::Supervisor;

/// How often a connection is pinged (and the worker beats).
const PING_EVERY: Duration = Duration::from_secs(30);
/// A connection that has said nothing, not even a pong, for this long is
/// taken for dead and opened again.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(90);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// First wait before reconnecting; doubled per failed attempt, with jitter.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Longest wait before reconnecting.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(60);
/// Tries at storing one post before it is given up (the store is down).
const STORE_TRIES: usize = 3;

/// Starts the reader under `supervisor`, as the `mattermost` worker.
pub fn spawn(
    supervisor: &Supervisor,
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    assessor: Assessor,
) -> anyhow::Result<()> {
    let chat = Arc::new(MattermostChat::from_settings(&settings.chat.mattermost)?);
    let url = websocket_url(&settings.chat.mattermost.url)?;
    supervisor.spawn("mattermost", None, move |heartbeat, stop| {
        let reader = Reader {
            settings: settings.clone(),
            store: store.clone(),
            clock: clock.clone(),
            assessor: assessor.clone(),
            chat: chat.clone(),
            url: url.clone(),
        };
        async move { reader.run(heartbeat, stop).await }
    });
    Ok(())
}

/// `wss://host/api/v4/websocket` for `https://host` (`ws://` for `http://`).
fn websocket_url(server: &str) -> anyhow::Result<String> {
    let rest = server
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| server.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .context("chat.mattermost.url is not an http(s) URL")?;
    Ok(format!("{}/api/v4/websocket", rest.trim_end_matches('/')))
}

struct Reader {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    assessor: Assessor,
    chat: Arc<MattermostChat>,
    url: String,
}

/// How a connection ended.
enum Ended {
    /// Told to stop.
    Stopped,
    /// Lost; `authenticated` if it had been working.
    Lost { authenticated: bool, why: String },
    /// The server refused the bot account (its token, on the REST API or
    /// the WebSocket): a fault of the worker, which the supervisor reports
    /// in `/readyz` and restarts after its back-off.
    Refused,
}

/// The fields of a WebSocket event nudged reads.
#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    event: String,
    #[serde(default)]
    data: Value,
    /// Set on the answer to an action nudged sent (the authentication).
    #[serde(default)]
    seq_reply: Option<u64>,
    #[serde(default)]
    status: Option<String>,
}

/// The fields of a post nudged reads.
#[derive(Deserialize)]
struct Post {
    id: String,
    user_id: String,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    message: String,
    /// A system message's kind; empty for what a person wrote.
    #[serde(default, rename = "type")]
    kind: String,
}

impl Reader {
    async fn run(self, heartbeat: Heartbeat, stop: CancellationToken) -> anyhow::Result<()> {
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(FIRST_RECONNECT_DELAY)
            .with_max_delay(MAX_RECONNECT_DELAY)
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        heartbeat.beat();
        loop {
            match self.connection(&heartbeat, &stop).await {
                Ended::Stopped => return Ok(()),
                Ended::Refused => {
                    anyhow::bail!("Mattermost refused the bot account's token")
                }
                Ended::Lost { authenticated, why } => {
                    if authenticated {
                        delays = backoff.build();
                    }
                    tracing::warn!(reason = %why, "Mattermost WebSocket lost; reconnecting");
                    metrics::counter!("nudged_mattermost_reconnects_total").increment(1);
                }
            }
            let delay = delays.next().unwrap_or(MAX_RECONNECT_DELAY);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return Ok(()),
            }
        }
    }

    /// One connection, from opening to its end.
    async fn connection(&self, heartbeat: &Heartbeat, stop: &CancellationToken) -> Ended {
        let lost = |authenticated, why: String| Ended::Lost { authenticated, why };
        let bot = match self.chat.bot_user_id().await {
            Ok(bot) => bot,
            // A refused token (401) or a deleted bot: no retry helps.
            Err(ChatError::Permanent { code }) => {
                tracing::error!(%code, "Mattermost refused the bot account");
                return Ended::Refused;
            }
            Err(e) => return lost(false, format!("cannot read the bot's user id: {e}")),
        };
        let connect = tokio_tungstenite::connect_async(self.url.as_str());
        let mut socket = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok((socket, _))) => socket,
            Ok(Err(e)) => return lost(false, format!("cannot connect: {e}")),
            Err(_) => return lost(false, "connecting timed out".to_owned()),
        };
        let Some(token) = &self.settings.chat.mattermost.bot_token else {
            return lost(false, "no bot token".to_owned());
        };
        let challenge = json!({
            "seq": 1,
            "action": "authentication_challenge",
            "data": { "token": token.expose_secret() },
        });
        if let Err(e) = socket.send(Message::text(challenge.to_string())).await {
            return lost(false, format!("cannot authenticate: {e}"));
        }
        let mut authenticated = false;
        let mut heard = Instant::now();
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => {
                    let _ = socket.close(None).await;
                    return Ended::Stopped;
                }
                _ = ping.tick() => {
                    heartbeat.beat();
                    if heard.elapsed() > SILENCE_LIMIT {
                        return lost(authenticated, "silent for too long".to_owned());
                    }
                    if let Err(e) = socket.send(Message::Ping(Vec::new().into())).await {
                        return lost(authenticated, format!("cannot ping: {e}"));
                    }
                    continue;
                }
                message = socket.next() => message,
            };
            heard = Instant::now();
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => {
                    return lost(authenticated, "closed by the server".to_owned());
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return lost(authenticated, e.to_string()),
            };
            let Ok(event) = serde_json::from_str::<Event>(&text) else {
                tracing::debug!("ignored an unreadable WebSocket message");
                continue;
            };
            if event.seq_reply == Some(1) {
                if event.status.as_deref() != Some("OK") {
                    return Ended::Refused;
                }
                authenticated = true;
                heartbeat.beat();
                tracing::info!("Mattermost WebSocket connected");
                continue;
            }
            match event.event.as_str() {
                "hello" => authenticated = true,
                "posted" => {
                    self.posted(&bot, &event.data).await;
                    heartbeat.beat();
                }
                _ => {}
            }
        }
    }

    /// A `posted` event: a post a person wrote in their DM with the bot is
    /// read as answers; anything else is ignored.
    async fn posted(&self, bot: &str, data: &Value) {
        // A DM's channel type is "D", its name the two user ids.
        if data["channel_type"] != "D" {
            return;
        }
        let in_bots_dm = data["channel_name"]
            .as_str()
            .is_some_and(|name| name.split("__").any(|id| id == bot));
        let post = data["post"]
            .as_str()
            .and_then(|post| serde_json::from_str::<Post>(post).ok());
        let Some(post) = post.filter(|_| in_bots_dm) else {
            return;
        };
        if post.user_id == bot || !post.kind.is_empty() || post.message.trim().is_empty() {
            return;
        }
        let Ok(person) = PersonId::parse(&post.user_id) else {
            return;
        };
        let mut tries = backon::ExponentialBuilder::default()
            .with_jitter()
            .with_max_times(STORE_TRIES - 1)
            .build();
        loop {
            match self.reply(&person, &post).await {
                Ok(Replied::NotForNudged(reason)) => {
                    tracing::debug!(reason, "ignored a Mattermost post");
                    return;
                }
                Ok(_) => return,
                Err(e) => match tries.next() {
                    Some(delay) => {
                        tracing::warn!(error = %e, "cannot store a Mattermost reply; trying again");
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        tracing::error!(error = %e, person = %person, "cannot store a Mattermost reply; it is lost");
                        return;
                    }
                },
            }
        }
    }

    async fn reply(&self, person: &PersonId, post: &Post) -> service::Result<Replied> {
        let ctx = Ctx {
            settings: &self.settings,
            store: self.store.as_ref(),
            assessor: &self.assessor,
            now: self.clock.now(),
        };
        let reply = TextReply {
            person,
            text: &post.message,
            written: Some(Written {
                // The adapter's name for a person's DM is their user id.
                channel: person.as_str(),
                ts: &post.id,
                thread_ts: Some(post.root_id.as_str()).filter(|r| !r.is_empty()),
                in_dm: true,
            }),
            seen_key: Some(format!("mm-post:{}", post.id)),
            source: AnswerSource::Text,
        };
        answers::text_reply(ctx, reply).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_is_under_the_server_url() {
        assert_eq!(
            websocket_url("https://chat.example.com").unwrap(),
            "wss://chat.example.com/api/v4/websocket"
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:8065").unwrap(),
            "ws://127.0.0.1:8065/api/v4/websocket"
        );
    }
}
