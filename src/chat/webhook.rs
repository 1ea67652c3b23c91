//! A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat):
//! post only, into the one channel the webhook is bound to.
//!
//! What a webhook cannot do, and what happens instead:
//! - It cannot address a person: every post lands in the webhook's
//!   channel, so each post opens with the person it is for (a mention).
//! - It cannot receive clicks or replies: a prompt's buttons are shown as
//!   the option keys, as text, and nothing pretends to be clickable.
//! - It cannot edit a message or publish an App Home: `Update` and
//!   `PublishHome` rows are acknowledged as delivered without a call. Both
//!   only ever refresh something already shown; re-posting them would fill
//!   the channel with copies, and failing them would raise alarms about
//!   something that is working as designed.
//!
//! Each [`WebhookFlavor`] gets its own rendering: Slack reads Block Kit
//! `blocks` and mrkdwn; Mattermost ignores `blocks` and writes `**bold**`;
//! Rocket.Chat ignores `blocks` and writes `*bold*`.
//!
//! The URL is the only credential a webhook has, so it never appears in
//! `Debug`, in errors or in logs; redirects are refused rather than
//! followed, since following one would log the full URL.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{ChatApi, ChatError, Delivered, Outgoing};
use crate::config::WebhookFlavor;
use crate::render::text::{self, Markup};

/// How long one post may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// When the server answers 429 without a usable `Retry-After`, wait this
/// long (Slack allows about one webhook post per second).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest error code taken from a server's answer, in bytes.
const MAX_CODE_LEN: usize = 64;

/// An incoming webhook as a [`ChatApi`].
pub struct WebhookChat {
    client: reqwest::Client,
    url: SecretString,
    flavor: WebhookFlavor,
}

impl fmt::Debug for WebhookChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChat")
            .field("url", &"[REDACTED]")
            .field("flavor", &self.flavor)
            .finish()
    }
}

impl WebhookChat {
    /// A client posting to `url` in `flavor`'s format.
    pub fn new(url: &SecretString, flavor: WebhookFlavor) -> anyhow::Result<Self> {
        // Checked here too, without echoing the URL, for callers that did
        // not come through the config.
        reqwest::Url::parse(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("chat.webhook.url is not a valid URL"))?;
        let client = super::http_client(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url: url.clone(),
            flavor,
        })
    }

    #[tracing::instrument(skip_all, fields(flavor = self.flavor.as_str()))]
    async fn post(&self, body: &Value) -> Result<Delivered, ChatError> {
        let response = self
            .client
            .post(self.url.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| ChatError::Transient {
                reason: describe_request_error(&e),
            })?;
        let status = response.status();
        let retry_after = super::retry_after(response.headers());
        // The body only matters for its error code; one that cannot be read
        // leaves the status to decide.
        let answer = response.text().await.unwrap_or_default();
        classify(status, retry_after, &answer)
    }
}

/// A reqwest failure described without its URL.
fn describe_request_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("webhook: {what}")
}

/// Decides what a webhook's answer means. Slack and Mattermost answer
/// `ok`; Rocket.Chat answers `{"success": true}`, and may say
/// `{"success": false, "error": …}` even with a 200.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    answer: &str,
) -> Result<Delivered, ChatError> {
    let code = error_code(answer);
    if status.is_success() {
        let refused = serde_json::from_str::<Value>(answer)
            .is_ok_and(|v| v.get("success") == Some(&Value::Bool(false)));
        return if refused {
            Err(ChatError::Permanent {
                code: code.unwrap_or_else(|| "refused".to_owned()),
            })
        } else {
            Ok(Delivered::default())
        };
    }
    let with_status = |code: Option<String>| match code {
        Some(code) => format!("{code} (HTTP {})", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        Err(ChatError::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        })
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Err(ChatError::Transient {
            reason: format!("webhook: {}", with_status(code)),
        })
    } else if status.is_redirection() {
        Err(ChatError::Permanent {
            code: format!(
                "{}: the webhook URL redirects; use the final URL",
                with_status(None)
            ),
        })
    } else {
        // 4xx: `no_service` (404), `invalid_token` (403),
        // `channel_is_archived` (410), `invalid_payload` (400), …
        Err(ChatError::Permanent {
            code: with_status(code),
        })
    }
}

/// The error code in a webhook's answer: Slack's plain-text body
/// (`no_service`), Mattermost's JSON `id`, or Rocket.Chat's JSON `error`.
/// Only a short identifier is taken, so nothing else the server said
/// (which could quote the request) reaches an error or a log.
fn error_code(answer: &str) -> Option<String> {
    let candidate = match serde_json::from_str::<Value>(answer) {
        Ok(json) => ["error", "id"]
            .iter()
            .find_map(|k| json.get(*k).and_then(Value::as_str).map(str::to_owned))?,
        Err(_) => answer.trim().to_owned(),
    };
    let is_identifier = !candidate.is_empty()
        && candidate.len() <= MAX_CODE_LEN
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (is_identifier && candidate != "ok").then_some(candidate)
}

/// The body posted for one message in `flavor`'s format.
pub fn body(flavor: WebhookFlavor, channel: &str, text: &str, blocks: &[Value]) -> Value {
    match flavor {
        WebhookFlavor::Slack => {
            let for_whom = format!("For {}", mention(flavor, channel));
            if blocks.is_empty() {
                return json!({ "text": format!("{for_whom}\n{text}") });
            }
            let mut out = vec![json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": for_whom }],
            })];
            out.extend(blocks.iter().filter_map(readonly_block));
            json!({ "text": format!("{for_whom}: {text}"), "blocks": out })
        }
        WebhookFlavor::Mattermost | WebhookFlavor::Rocketchat => {
            let markup = if flavor == WebhookFlavor::Mattermost {
                Markup::Markdown
            } else {
                Markup::RocketChat
            };
            let rendered = text::to_text(text, blocks, markup);
            json!({ "text": format!("For {}\n{rendered}", mention(flavor, channel)) })
        }
    }
}

/// How the person a post is for is named in the shared channel: a Slack
/// user id (`U…`, `W…`) as a mention, a Mattermost or Rocket.Chat roster id
/// (their username) as `@name`.
fn mention(flavor: WebhookFlavor, person: &str) -> String {
    match flavor {
        WebhookFlavor::Slack if person.starts_with(['U', 'W']) => format!("<@{person}>"),
        WebhookFlavor::Slack => person.to_owned(),
        WebhookFlavor::Mattermost | WebhookFlavor::Rocketchat => format!("@{person}"),
    }
}

/// A block as a webhook post can carry it: a prompt's row of buttons
/// becomes its option keys as text (nobody could receive the click);
/// other buttons are dropped.
fn readonly_block(block: &Value) -> Option<Value> {
    if block["type"] != "actions" {
        return Some(block.clone());
    }
    let options = text::option_line(block);
    (!options.is_empty()).then(|| {
        json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": crate::render::escape(&options) }],
        })
    })
}

#[async_trait]
impl ChatApi for WebhookChat {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError> {
        match message {
            // A thread cannot be reached through a webhook: the post goes
            // to the channel.
            Outgoing::Post {
                channel,
                text,
                blocks,
                ..
            }
            // A webhook takes no files: the trend post goes as text.
            | Outgoing::TrendPost {
                channel,
                text,
                blocks,
                ..
            } => self.post(&body(self.flavor, channel, text, blocks)).await,
            Outgoing::Update { .. } | Outgoing::PublishHome { .. } => {
                tracing::debug!(
                    kind = message.kind(),
                    "a webhook cannot edit or publish; nothing to send"
                );
                Ok(Delivered::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_retry_decisions() {
        let ok = |s: u16, body: &str| classify(StatusCode::from_u16(s).unwrap(), None, body);
        assert_eq!(ok(200, "ok"), Ok(Delivered::default()));
        assert_eq!(ok(200, r#"{"success":true}"#), Ok(Delivered::default()));
        assert_eq!(
            ok(200, r#"{"success":false,"error":"invalid-channel"}"#),
            Err(ChatError::Permanent {
                code: "invalid-channel".into()
            })
        );
        assert_eq!(
            ok(404, "no_service"),
            Err(ChatError::Permanent {
                code: "no_service (HTTP 404)".into()
            })
        );
        assert_eq!(
            ok(
                400,
                r#"{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook","status_code":400}"#
            ),
            Err(ChatError::Permanent {
                code: "web.incoming_webhook.invalid.app_error (HTTP 400)".into()
            })
        );
        assert_eq!(
            ok(503, "<html>Service Unavailable</html>"),
            Err(ChatError::Transient {
                reason: "webhook: HTTP 503".into()
            })
        );
        assert_eq!(
            classify(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(30)),
                ""
            ),
            Err(ChatError::RateLimited {
                retry_after: Duration::from_secs(30)
            })
        );
        assert_eq!(
            ok(429, ""),
            Err(ChatError::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            })
        );
        assert!(matches!(ok(301, ""), Err(ChatError::Permanent { .. })));
    }

    #[test]
    fn a_long_or_chatty_error_body_is_not_quoted() {
        let body = "cannot post to https://chat.example.com/hooks/s3cr3t";
        let Err(ChatError::Permanent { code }) = classify(StatusCode::FORBIDDEN, None, body) else {
            panic!("a 403 is permanent");
        };
        assert_eq!(code, "HTTP 403");
    }

    #[test]
    fn debug_hides_the_url() {
        let chat = WebhookChat::new(
            &SecretString::from("https://chat.example.com/hooks/s3cr3t"),
            WebhookFlavor::Mattermost,
        )
        .unwrap();
        let shown = format!("{chat:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("Mattermost"), "{shown}");
    }

    #[test]
    fn a_url_that_does_not_parse_is_refused_without_echoing_it() {
        let e = WebhookChat::new(&SecretString::from("s3cr3t"), WebhookFlavor::Slack).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
