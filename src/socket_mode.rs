//! Slack's Socket Mode: a driver beside `http` that receives events, clicks
//! and `/pulse` over a WebSocket nudged opens itself, so the daemon needs no
//! public URL.
//!
//! `apps.connections.open` (with the app-level `xapp-` token) hands out a
//! `wss://` URL; Slack says `hello` on it, then sends envelopes
//! (`events_api`, `interactive`, `slash_commands`). Each envelope's payload
//! is the document the matching HTTP endpoint receives, and goes through
//! the same transport-neutral handler ([`crate::http::slack::handle_event`],
//! [`handle_interaction`](crate::http::slack::handle_interaction),
//! [`handle_command`](crate::http::slack::handle_command)); the envelope is
//! acknowledged (`{"envelope_id": …, "payload": …}`) only once that handler
//! returned, that is once what it stores is committed. A store failure
//! leaves the envelope unacknowledged and Slack sends it again
//! (`retry_attempt`), which the handlers' de-duplication counts once, as
//! for HTTP retries.
//!
//! Envelopes of one connection are handled one after the other: each is a
//! short commit (slow work goes through the outbox), and acknowledging in
//! order keeps "no ack without commit" plain to see. Several replicas may
//! each hold connections: Slack spreads envelopes among them.
//!
//! Connection states, logged and counted in
//! `nudged_socket_mode_connections_total{event}`: `opened` (hello
//! received), `failed` (could not open), `dropped` (closed or broken),
//! `refresh_requested` / `warning` / `link_disabled` (Slack's `disconnect`
//! reasons) and `replaced` (an old connection closed after its successor
//! said hello). On a `disconnect` the new connection is opened **before**
//! the old one is closed, so nothing sent meanwhile is lost; after a drop
//! the first reconnect is immediate and repeated failures back off
//! exponentially with jitter ([`FIRST_RECONNECT_DELAY`] up to
//! [`MAX_RECONNECT_DELAY`]). The worker beats its heartbeat only while a
//! connection is open, so `/readyz` reports it down once it has had none
//! for [`STALL_AFTER`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use backon::BackoffBuilder;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chat::SlackChat;
use crate::config::Settings;
use crate::health::Heartbeat;
use crate::http::AppState;
use crate::http::payloads::SlashCommand;
use crate::http::slack::{self, ApiError, Reply};

/// `/readyz` reports the worker down once no connection has been open for
/// this long: a minute rides out a reconnect or two, and a daemon that
/// receives nothing for longer is not doing its work.
pub const STALL_AFTER: Duration = Duration::from_secs(60);
/// How often the worker beats while a connection is open; well inside
/// [`STALL_AFTER`].
pub const BEAT_EVERY: Duration = Duration::from_secs(10);
/// How long opening a connection may take, from `apps.connections.open`
/// to Slack's `hello`.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a replaced connection waits for Slack's side of the close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait after a failed attempt to connect.
pub const FIRST_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between attempts while Slack stays unreachable.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(60);
/// A connection that lived this long was a good one: a drop after it
/// reconnects at once and starts the back-off over.
pub const HEALTHY_CONNECTION: Duration = Duration::from_secs(60);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The Socket Mode driver; cheap to clone (one per supervised run).
#[derive(Clone)]
pub struct SocketMode {
    app: AppState,
    /// The Web API client holding the app-level token.
    opener: Arc<SlackChat>,
}

/// What a connection tells the worker.
#[derive(Debug)]
enum Signal {
    /// Slack's `disconnect`, with its reason: it will close this connection
    /// soon; open the next one now.
    Disconnect(String),
    /// The connection ended (closed by Slack, broken, or failed to ack).
    Closed(String),
}

/// A connection being served by a task of its own.
struct Connection {
    number: u64,
    opened: Instant,
    signals: mpsc::UnboundedReceiver<Signal>,
    /// Cancelled to close the connection after the envelope in hand.
    close: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SocketMode {
    /// The driver for `app`, whose settings hold `chat.slack.app_token`.
    pub fn new(app: AppState) -> anyhow::Result<Self> {
        let opener = opener(&app.settings)?;
        Ok(Self {
            app,
            opener: Arc::new(opener),
        })
    }

    /// Holds a connection open until `stop`: reconnects after drops, and
    /// opens a successor before Slack closes a connection it asked to
    /// refresh. Returns `Ok` at shutdown, once the envelopes in hand are
    /// acknowledged and the connections closed.
    pub async fn run(self, stop: CancellationToken, heartbeat: Heartbeat) -> anyhow::Result<()> {
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(FIRST_RECONNECT_DELAY)
            .with_max_delay(MAX_RECONNECT_DELAY)
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        let mut wait_before_open = false;
        // Drops since the last connection that lived long.
        let mut quick_drops = 0u32;
        let mut number = 0;
        let mut active: Option<Connection> = None;
        let mut retiring: Vec<Connection> = Vec::new();
        let mut beat = tokio::time::interval(BEAT_EVERY);
        loop {
            retiring.retain(|c| !c.task.is_finished());
            let Some(connection) = active.as_mut() else {
                if wait_before_open {
                    let delay = delays.next().unwrap_or(MAX_RECONNECT_DELAY);
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                number += 1;
                let Some(opened) = self.open_until(number, &stop).await else {
                    break;
                };
                match opened {
                    Ok(connection) => {
                        heartbeat.beat();
                        wait_before_open = false;
                        active = Some(connection);
                    }
                    Err(e) => {
                        count("failed");
                        tracing::warn!(
                            connection = number,
                            error = format!("{e:#}"),
                            "cannot open a Socket Mode connection; retrying"
                        );
                        wait_before_open = true;
                    }
                }
                continue;
            };
            tokio::select! {
                () = stop.cancelled() => break,
                _ = beat.tick() => heartbeat.beat(),
                signal = connection.signals.recv() => match signal {
                    Some(Signal::Disconnect(reason)) => {
                        let old = connection.number;
                        number += 1;
                        let Some(opened) = self.open_until(number, &stop).await else {
                            break;
                        };
                        match opened {
                            Ok(successor) => {
                                heartbeat.beat();
                                let old = active.replace(successor).expect("a connection is active");
                                old.close.cancel();
                                count("replaced");
                                tracing::info!(connection = old.number, successor = number, %reason, "Socket Mode connection replaced");
                                retiring.push(old);
                            }
                            Err(e) => {
                                count("failed");
                                tracing::warn!(connection = old, error = format!("{e:#}"), "cannot open a successor; the current connection serves until Slack closes it");
                            }
                        }
                    }
                    closed => {
                        let why = match closed {
                            Some(Signal::Closed(why)) => why,
                            _ => "its task ended".to_owned(),
                        };
                        count("dropped");
                        tracing::warn!(connection = connection.number, %why, "Socket Mode connection dropped; reconnecting");
                        if connection.opened.elapsed() >= HEALTHY_CONNECTION {
                            delays = backoff.build();
                            quick_drops = 0;
                        }
                        // The first drop reconnects at once; a connection
                        // that keeps dropping soon after opening backs off.
                        wait_before_open = quick_drops > 0;
                        quick_drops += 1;
                        active = None;
                    }
                },
            }
        }
        // Shutdown: each connection finishes the envelope in hand, then closes.
        for connection in active.into_iter().chain(retiring) {
            connection.close.cancel();
            let _ = connection.task.await;
        }
        Ok(())
    }

    /// [`SocketMode::open`] unless `stop` comes first (`None`).
    async fn open_until(
        &self,
        number: u64,
        stop: &CancellationToken,
    ) -> Option<anyhow::Result<Connection>> {
        tokio::select! {
            () = stop.cancelled() => None,
            opened = tokio::time::timeout(OPEN_TIMEOUT, self.open(number)) => Some(
                opened.unwrap_or_else(|_| Err(anyhow!("no hello within {} s", OPEN_TIMEOUT.as_secs())))
            ),
        }
    }

    /// Opens connection `number` and, once Slack said hello, serves it in
    /// a task of its own.
    async fn open(&self, number: u64) -> anyhow::Result<Connection> {
        let socket = connect(&self.opener).await?;
        count("opened");
        tracing::info!(connection = number, "Socket Mode connection open");
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let close = CancellationToken::new();
        let task = tokio::spawn(
            serve(socket, self.app.clone(), signals_tx, close.clone())
                .instrument(tracing::info_span!("socket_mode", connection = number)),
        );
        Ok(Connection {
            number,
            opened: Instant::now(),
            signals,
            close,
            task,
        })
    }
}

/// Counts a connection state.
fn count(event: &'static str) {
    metrics::counter!("nudged_socket_mode_connections_total", "event" => event).increment(1);
}

/// The Web API client with the app-level token.
fn opener(settings: &Settings) -> anyhow::Result<SlackChat> {
    let slack = &settings.chat.slack;
    let token = slack
        .app_token
        .as_ref()
        .context("chat.slack.app_token is required for Socket Mode")?;
    SlackChat::new(&slack.api_base_url, token)
}

/// `apps.connections.open`, the WebSocket handshake, and Slack's `hello`.
async fn connect(opener: &SlackChat) -> anyhow::Result<Socket> {
    let url = opener
        .open_connection()
        .await
        .map_err(|e| anyhow!("apps.connections.open: {e}"))?;
    check_socket_url(&url)?;
    crate::chat::ensure_tls_provider();
    // The URL carries a ticket: errors are reported without it.
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| anyhow!("cannot connect to Slack's WebSocket: {e}"))?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Frame = serde_json::from_str(text.as_str())
                    .map_err(|e| anyhow!("unreadable first message: {e}"))?;
                match frame.kind.as_str() {
                    "hello" => return Ok(socket),
                    "disconnect" => bail!(
                        "Slack closed the connection before hello ({})",
                        frame.reason.as_deref().unwrap_or("no reason")
                    ),
                    other => bail!("Slack sent {other:?} before hello"),
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("the connection broke before hello: {e}"),
            None => bail!("the connection closed before hello"),
        }
    }
}

/// `wss://`, or `ws://` to this machine only (a local fake Slack): the
/// envelopes carry what people answered.
fn check_socket_url(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| anyhow!("apps.connections.open answered an unreadable URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "wss" => Ok(()),
        "ws" if loopback => Ok(()),
        scheme => bail!("apps.connections.open answered a {scheme}:// URL; only wss:// is used"),
    }
}

/// Opens a connection, waits for Slack's hello and closes it again: the
/// online check's proof that the app token and Socket Mode work.
pub async fn probe(settings: &Settings) -> anyhow::Result<()> {
    let opener = opener(settings)?;
    let mut socket = tokio::time::timeout(OPEN_TIMEOUT, connect(&opener))
        .await
        .map_err(|_| anyhow!("no hello within {} s", OPEN_TIMEOUT.as_secs()))??;
    let _ = socket.close(None).await;
    Ok(())
}

/// A message from Slack: `hello`, `disconnect`, or an envelope.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    /// 0 the first time; Slack re-sends an envelope not acknowledged in time.
    #[serde(default)]
    retry_attempt: u32,
    #[serde(default)]
    retry_reason: Option<String>,
    /// `disconnect`'s reason.
    #[serde(default)]
    reason: Option<String>,
    /// Whether the ack may carry a reply (slash commands).
    #[serde(default)]
    accepts_response_payload: bool,
}

/// Reads and answers one connection until it ends or `close` is
/// cancelled, then tells the worker why it ended.
async fn serve(
    mut socket: Socket,
    app: AppState,
    signals: mpsc::UnboundedSender<Signal>,
    close: CancellationToken,
) {
    metrics::gauge!("nudged_socket_mode_connections_open").increment(1.0);
    let ended = loop {
        tokio::select! {
            // The envelope in hand is finished first: a close never cuts
            // between a commit and its ack.
            biased;
            () = close.cancelled() => {
                let _ = socket.close(None).await;
                // Slack answers the close; what it sends meanwhile is not
                // acknowledged, and it sends that again elsewhere.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                    while let Some(Ok(_)) = socket.next().await {}
                })
                .await;
                break "closed by nudged".to_owned();
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => match on_text(&app, text.as_str()).await {
                    Step::Ack(ack) => {
                        if let Err(e) = socket.send(Message::text(ack.to_string())).await {
                            break format!("cannot send an ack: {e}");
                        }
                    }
                    Step::Disconnect(reason) => {
                        let _ = signals.send(Signal::Disconnect(reason));
                    }
                    Step::Nothing => {}
                },
                // Pings are answered by tungstenite as it reads; a close
                // frame is answered too, and the stream then ends.
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("broken: {e}"),
                None => break "closed by Slack".to_owned(),
            },
        }
    };
    metrics::gauge!("nudged_socket_mode_connections_open").decrement(1.0);
    let _ = signals.send(Signal::Closed(ended));
}

/// What to do after a message.
enum Step {
    /// Send this acknowledgement.
    Ack(Value),
    /// Slack will close this connection: open the next.
    Disconnect(String),
    Nothing,
}

/// Reads one text message from Slack and handles it.
async fn on_text(app: &AppState, text: &str) -> Step {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(problem = %e, "ignored an unreadable Socket Mode message");
            return Step::Nothing;
        }
    };
    match frame.kind.as_str() {
        "hello" => Step::Nothing,
        "disconnect" => {
            let reason = frame.reason.unwrap_or_else(|| "unknown".to_owned());
            let event = match reason.as_str() {
                "refresh_requested" => "refresh_requested",
                "warning" => "warning",
                "link_disabled" => "link_disabled",
                _ => "disconnect_other",
            };
            count(event);
            if event == "link_disabled" {
                tracing::error!(%reason, "Slack disabled Socket Mode for this app; turn it on again under Settings → Socket Mode");
            } else {
                tracing::info!(%reason, "Slack will close this Socket Mode connection");
            }
            Step::Disconnect(reason)
        }
        _ => match frame.envelope_id.clone() {
            Some(id) => {
                let span = tracing::info_span!(
                    "envelope",
                    kind = %frame.kind,
                    envelope_id = %id,
                    retry_attempt = frame.retry_attempt
                );
                on_envelope(app, frame, id).instrument(span).await
            }
            None => {
                tracing::warn!(kind = %frame.kind, "ignored a Socket Mode message of unknown type");
                Step::Nothing
            }
        },
    }
}

/// Handles one envelope and says whether to acknowledge it: yes once its
/// handler returned (its writes committed) or for what no retry can help
/// (a payload nudged cannot read, another workspace's); no after a store
/// or internal failure, so that Slack sends it again.
async fn on_envelope(app: &AppState, frame: Frame, envelope_id: String) -> Step {
    let kind = match frame.kind.as_str() {
        "events_api" => "events_api",
        "interactive" => "interactive",
        "slash_commands" => "slash_commands",
        _ => "other",
    };
    if frame.retry_attempt > 0 {
        let reason = frame.retry_reason.clone().unwrap_or_default();
        metrics::counter!("nudged_socket_mode_retries_total", "kind" => kind).increment(1);
        tracing::info!(%reason, "Slack re-sent an envelope");
    }
    let accepts_reply = frame.accepts_response_payload;
    let outcome = match kind {
        "events_api" => {
            slack::handle_event(app.clone(), frame.payload.to_string().as_bytes()).await
        }
        "interactive" => {
            slack::handle_interaction(app.clone(), frame.payload.to_string().as_bytes()).await
        }
        "slash_commands" => match serde_json::from_value::<SlashCommand>(frame.payload) {
            Ok(command) => slack::handle_command(app.clone(), command).await,
            Err(e) => Err(ApiError::BadPayload(e.to_string())),
        },
        _ => {
            tracing::warn!(kind = %frame.kind, "acknowledged an envelope of a type nudged does not handle");
            Ok(Reply::done())
        }
    };
    let (label, ack) = match outcome {
        Ok(Reply(Some(reply))) if accepts_reply => (
            "ok",
            Some(json!({ "envelope_id": envelope_id, "payload": reply })),
        ),
        Ok(_) => ("ok", Some(json!({ "envelope_id": envelope_id }))),
        Err(ApiError::BadPayload(problem)) => {
            tracing::warn!(%problem, "acknowledged a malformed envelope");
            ("malformed", Some(json!({ "envelope_id": envelope_id })))
        }
        Err(ApiError::Refused(rejection)) => {
            tracing::warn!(
                reason = rejection.reason(),
                "acknowledged a refused envelope"
            );
            ("refused", Some(json!({ "envelope_id": envelope_id })))
        }
        Err(ApiError::Store(e)) => {
            tracing::error!(error = %e, "store failed; the envelope is not acknowledged and Slack sends it again");
            ("failed", None)
        }
        Err(ApiError::Internal(e)) => {
            tracing::error!(
                error = format!("{e:#}"),
                "failed to handle an envelope; not acknowledged"
            );
            ("failed", None)
        }
    };
    metrics::counter!("nudged_socket_mode_envelopes_total", "kind" => kind, "outcome" => label)
        .increment(1);
    ack.map_or(Step::Nothing, Step::Ack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wss_or_loopback_ws_urls_are_used() {
        assert!(check_socket_url("wss://wss-primary.slack.com/link/?ticket=x").is_ok());
        assert!(check_socket_url("ws://127.0.0.1:4000/link").is_ok());
        assert!(check_socket_url("ws://localhost:4000/link").is_ok());
        assert!(check_socket_url("ws://[::1]:4000/link").is_ok());
        assert!(check_socket_url("ws://slack.example.com/link").is_err());
        assert!(check_socket_url("https://slack.com/").is_err());
        assert!(check_socket_url("not a url").is_err());
    }
}
