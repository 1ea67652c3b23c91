//! Slack's Web API: `chat.postMessage`, `chat.update`, `views.publish`,
//! and `users.info` for a person's time zone.
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

use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{ChatApi, ChatError, Delivered, Outgoing};
use crate::domain::PersonId;

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
    /// `users.info`'s user, read loosely: other methods may put something
    /// else under this name, and that must not make their answer unreadable.
    #[serde(default)]
    user: Option<serde_json::Value>,
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
                anyhow::anyhow!("chat.slack.bot_token contains characters not allowed in a header")
            })?;
        auth.set_sensitive(true);
        super::ensure_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("nudged/", env!("CARGO_PKG_VERSION")))
            .build()?;
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
        let parsed: ApiResponse = response.json().await.map_err(|e| ChatError::Transient {
            reason: format!("{method}: unreadable answer: {}", e.without_url()),
        })?;
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
