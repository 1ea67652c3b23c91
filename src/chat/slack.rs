//! Slack's Web API: `chat.postMessage`, `chat.update`, `views.publish`,
//! `users.info` for a person's time zone, the trend chart's upload
//! (`files.getUploadURLExternal`, the bytes to the URL it gives,
//! `files.completeUploadExternal` into the post's channel); `auth.test` for
//! `nudged check --online`, and `apps.connections.open` (with the app-level
//! token) for Socket Mode.
//!
//! [`REQUIRED_SCOPES`] and [`METHOD_SCOPES`] are the one place that says
//! which OAuth scopes nudged needs and why: the app manifest
//! (`nudged manifest`) and the online check are built from them.
//!
//! Thin serde types of our own over reqwest. Slack answers HTTP 200 with
//! `{"ok": false, "error": "…"}` for most failures, so both the status and
//! the error code decide whether a message is retried.
//!
//! Direct messages need no `conversations.open`: `chat.postMessage` with a
//! user id as its `channel` posts into the bot's DM with that person (the
//! app's Messages tab), and Slack answers with the DM's channel id, which
//! the outbox records with the message's `ts`. That saves one call, and one
//! rate-limited method, per person and message.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{ChatApi, ChatError, Delivered, Outgoing};
use crate::domain::PersonId;
use crate::model::Chart;
use crate::render;

/// How long one Web API call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// When Slack says `ratelimited` without a `Retry-After`, wait this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Error codes worth retrying; every other `ok: false` is permanent.
const TRANSIENT_CODES: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Every bot scope nudged needs, and what it serves; no other is asked
/// for. Each comes from a Web API method nudged calls ([`METHOD_SCOPES`]),
/// an event it subscribes to
/// ([`SUBSCRIBED_EVENTS`](crate::http::payloads::SUBSCRIBED_EVENTS)), or
/// the `/pulse` command.
pub const REQUIRED_SCOPES: &[(&str, &str)] = &[
    (
        "chat:write",
        "chat.postMessage and chat.update: prompts, replies, nudges, trend posts",
    ),
    (
        "im:history",
        "the message.im event: answers typed in the bot's direct messages",
    ),
    ("users:read", "users.info: each person's time zone"),
    (
        "files:write",
        "files.getUploadURLExternal and files.completeUploadExternal: the trend post's chart",
    ),
    ("commands", "the /pulse slash command"),
];

/// Every Web API method nudged calls with the bot token, and the bot scope
/// it needs (`None`: the method needs none). A method missing here is a
/// method nudged must not call: the API tests check every call against it.
pub const METHOD_SCOPES: &[(&str, Option<&str>)] = &[
    ("chat.postMessage", Some("chat:write")),
    ("chat.update", Some("chat:write")),
    ("views.publish", None),
    ("users.info", Some("users:read")),
    ("auth.test", None),
    ("files.getUploadURLExternal", Some("files:write")),
    ("files.completeUploadExternal", Some("files:write")),
];

/// The scope the `/pulse` slash command needs.
pub const COMMANDS_SCOPE: &str = "commands";

/// [`REQUIRED_SCOPES`]' names.
pub fn required_scopes() -> BTreeSet<&'static str> {
    REQUIRED_SCOPES.iter().map(|(scope, _)| *scope).collect()
}

/// The scope `method` needs: `Ok(None)` for none, `Err` for a method
/// nudged does not call.
pub fn method_scope(method: &str) -> Result<Option<&'static str>, String> {
    METHOD_SCOPES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, scope)| *scope)
        .ok_or_else(|| format!("{method} is not a Web API method nudged calls"))
}

/// Who a bot token belongs to, as `auth.test` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    /// The workspace's name.
    pub team: String,
    pub team_id: String,
    /// The bot user's name and id.
    pub user: String,
    pub user_id: String,
    /// The scopes granted to the token (`x-oauth-scopes`); `None` when
    /// Slack did not say.
    pub scopes: Option<BTreeSet<String>>,
}

/// The Slack Web API as a [`ChatApi`].
pub struct SlackChat {
    client: reqwest::Client,
    base_url: String,
    auth: HeaderValue,
}

/// The fields of Slack's answers that nudged reads; the rest is ignored.
#[derive(Deserialize)]
struct ApiResponse {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
    /// `files.getUploadURLExternal`'s answer: where to send the bytes, and
    /// the file's id to complete.
    #[serde(default)]
    upload_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    /// `users.info`'s user, read loosely: other methods may put something
    /// else under this name, and that must not make their answer unreadable.
    #[serde(default)]
    user: Option<serde_json::Value>,
    /// `auth.test`: the workspace and the ids.
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    /// `apps.connections.open`: the WebSocket URL (it carries a ticket:
    /// never logged).
    #[serde(default)]
    url: Option<String>,
    /// The `x-oauth-scopes` header, which Slack adds to every answer.
    #[serde(skip)]
    scopes: Option<String>,
}

/// A Web API request body: write methods take JSON; read methods such as
/// `users.info` only take form fields.
enum Body<'a> {
    Json(serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
}

impl SlackChat {
    /// A client for `base_url` (e.g. `https://slack.com/api`) with `token`.
    pub fn new(base_url: &str, token: &SecretString) -> anyhow::Result<Self> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                anyhow::anyhow!("the Slack token contains characters not allowed in a header")
            })?;
        auth.set_sensitive(true);
        let client = super::http_client(CALL_TIMEOUT).build()?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
        })
    }

    /// Calls a write method and returns where the message landed.
    async fn call(&self, method: &str, body: serde_json::Value) -> Result<Delivered, ChatError> {
        let parsed = self.request(method, Body::Json(body)).await?;
        Ok(Delivered {
            channel: parsed.channel,
            ts: parsed.ts,
        })
    }

    /// Uploads the PNG of `chart` into `channel` (the DM the post landed
    /// in): the file's length first, then its bytes to the URL Slack gives
    /// (without the token: it is signed, and may be another host), then the
    /// completion that shares it.
    async fn upload_chart(&self, channel: &str, chart: &Chart) -> Result<(), ChatError> {
        let png = render::chart_png(chart).map_err(|e| ChatError::Permanent {
            code: format!("chart_not_drawn: {e}"),
        })?;
        let week = chart
            .weeks
            .last()
            .map(|w| w.week.to_string())
            .unwrap_or_default();
        let filename = format!("trend-{week}.png");
        let length = png.len().to_string();
        let answer = self
            .request(
                "files.getUploadURLExternal",
                Body::Form(&[("filename", &filename), ("length", &length)]),
            )
            .await?;
        let (Some(url), Some(file_id)) = (answer.upload_url, answer.file_id) else {
            return Err(ChatError::Permanent {
                code: "upload_url_missing".to_owned(),
            });
        };
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "image/png")
            .body(png)
            .send()
            .await
            .map_err(|e| ChatError::Transient {
                reason: format!("chart upload: {}", e.without_url()),
            })?;
        if !sent.status().is_success() {
            return Err(ChatError::Transient {
                reason: format!("chart upload: HTTP {}", sent.status()),
            });
        }
        self.request(
            "files.completeUploadExternal",
            Body::Json(json!({
                "files": [{ "id": file_id, "title": format!("Your trend, {week}") }],
                "channel_id": channel,
            })),
        )
        .await?;
        Ok(())
    }

    /// Calls `method` and maps every failure to a [`ChatError`].
    async fn request(&self, method: &str, body: Body<'_>) -> Result<ApiResponse, ChatError> {
        let request = self
            .client
            .post(format!("{}/{method}", self.base_url))
            .header(AUTHORIZATION, self.auth.clone());
        let request = match body {
            Body::Json(json) => request.json(&json),
            Body::Form(fields) => request.form(fields),
        };
        let response = request.send().await.map_err(|e| ChatError::Transient {
            reason: format!("{method}: {}", e.without_url()),
        })?;
        let status = response.status();
        let retry_after = super::retry_after(response.headers());
        let scopes = response
            .headers()
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ChatError::RateLimited {
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            });
        }
        if status.is_server_error() {
            return Err(ChatError::Transient {
                reason: format!("{method}: HTTP {status}"),
            });
        }
        let mut parsed: ApiResponse = response.json().await.map_err(|e| ChatError::Transient {
            reason: format!("{method}: unreadable answer: {}", e.without_url()),
        })?;
        parsed.scopes = scopes;
        if parsed.ok {
            return Ok(parsed);
        }
        let code = parsed.error.unwrap_or_else(|| format!("HTTP {status}"));
        Err(match code.as_str() {
            "ratelimited" => ChatError::RateLimited {
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            },
            c if TRANSIENT_CODES.contains(&c) => ChatError::Transient { reason: code },
            _ => ChatError::Permanent { code },
        })
    }
}

impl SlackChat {
    /// `auth.test`: whose token this is, and the scopes it was granted.
    pub async fn auth_test(&self) -> Result<AuthInfo, ChatError> {
        let parsed = self.request("auth.test", Body::Form(&[])).await?;
        let text = |v: Option<String>| v.unwrap_or_default();
        Ok(AuthInfo {
            team: text(parsed.team),
            team_id: text(parsed.team_id),
            user: parsed
                .user
                .as_ref()
                .and_then(|u| u.as_str())
                .unwrap_or_default()
                .to_owned(),
            user_id: text(parsed.user_id),
            scopes: parsed.scopes.map(|s| {
                s.split(',')
                    .map(|scope| scope.trim().to_owned())
                    .filter(|scope| !scope.is_empty())
                    .collect()
            }),
        })
    }

    /// `apps.connections.open`, called on a client built with the
    /// app-level token: the URL of a new Socket Mode connection.
    pub async fn open_connection(&self) -> Result<String, ChatError> {
        let parsed = self
            .request("apps.connections.open", Body::Form(&[]))
            .await?;
        parsed.url.ok_or_else(|| ChatError::Transient {
            reason: "apps.connections.open: no url in the answer".to_owned(),
        })
    }
}

#[async_trait]
impl ChatApi for SlackChat {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError> {
        match message {
            Outgoing::Post {
                channel,
                thread_ts,
                text,
                blocks,
            } => {
                let mut body = json!({ "channel": channel, "text": text });
                if !blocks.is_empty() {
                    body["blocks"] = json!(blocks);
                }
                if let Some(thread) = thread_ts {
                    body["thread_ts"] = json!(thread);
                }
                self.call("chat.postMessage", body).await
            }
            // The text post first: it is the message, and the fallback.
            // Once it is posted, a failed upload is logged and not retried,
            // which would post the text twice.
            Outgoing::TrendPost {
                channel,
                text,
                blocks,
                chart,
            } => {
                let mut body = json!({ "channel": channel, "text": text });
                if !blocks.is_empty() {
                    body["blocks"] = json!(blocks);
                }
                let delivered = self.call("chat.postMessage", body).await?;
                let dm = delivered.channel.as_deref().unwrap_or(channel);
                if let Err(e) = self.upload_chart(dm, chart).await {
                    tracing::warn!(error = %e, "the trend chart was not uploaded; the text post stands");
                    metrics::counter!("nudged_chart_uploads_failed_total").increment(1);
                }
                Ok(delivered)
            }
            Outgoing::Update {
                channel,
                ts,
                text,
                blocks,
            } => {
                self.call(
                    "chat.update",
                    json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks }),
                )
                .await
            }
            Outgoing::PublishHome { user, view } => {
                self.call("views.publish", json!({ "user_id": user, "view": view }))
                    .await
            }
        }
    }

    /// `users.info` → the person's profile zone. A zone Slack reports but
    /// chrono-tz does not know is treated as none (and logged), so the
    /// schedule's zone applies rather than a guess.
    async fn user_tz(&self, user: &PersonId) -> Result<Option<Tz>, ChatError> {
        let parsed = self
            .request("users.info", Body::Form(&[("user", user.as_str())]))
            .await?;
        // `tz` is an IANA name such as `Europe/Berlin`; absent or null for
        // some bots and deleted users.
        let name = parsed.user.as_ref().and_then(|u| u["tz"].as_str());
        let Some(name) = name.filter(|tz| !tz.is_empty()) else {
            return Ok(None);
        };
        match name.parse::<Tz>() {
            Ok(tz) => Ok(Some(tz)),
            Err(_) => {
                tracing::warn!(person = %user, zone = %name, "Slack reports a time zone chrono-tz does not know; ignored");
                Ok(None)
            }
        }
    }
}
