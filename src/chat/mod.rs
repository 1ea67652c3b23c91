//! Chat platforms behind one trait, [`ChatApi`]: the outbox hands each
//! message to the configured adapter and branches on the typed
//! [`ChatError`] (retry later, retry after, or give up).
//!
//! - `slack.rs`: Slack's Web API over reqwest.
//! - `webhook.rs`: a Slack-compatible incoming webhook (Slack, Mattermost,
//!   Rocket.Chat): post only, to one channel.
//! - `console.rs`: the embedded default: messages printed as text, and
//!   lines typed on a terminal read as the first roster person's replies.

pub mod console;
mod slack;
mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;

pub use console::ConsoleChat;
pub use slack::SlackChat;
pub use webhook::WebhookChat;

use crate::domain::PersonId;
use crate::outbox::Outgoing;

/// Makes sure rustls has a crypto provider before an HTTP client is built:
/// reqwest is compiled without a default one and would panic. The binary
/// installs the same provider at start; this covers every other caller
/// (tests, embedding programs) and leaves a provider already chosen alone.
fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Where a delivered message landed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    pub channel: Option<String>,
    pub ts: Option<String>,
}

/// Why a message was not delivered, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Too fast: try again after `retry_after`.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// Will never succeed as it is (`channel_not_found`, `invalid_auth`, …).
    #[error("refused: {code}")]
    Permanent { code: String },
    /// May succeed later (timeouts, 5xx, connection errors).
    #[error("temporary failure: {reason}")]
    Transient { reason: String },
}

/// The `Retry-After` a platform sent with a 429, in whole seconds (the form
/// Slack, Mattermost and Rocket.Chat use); `None` if absent or unreadable.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A chat platform nudged can post to.
#[async_trait]
pub trait ChatApi: Send + Sync + 'static {
    /// Delivers one outbox message.
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError>;

    /// The IANA time zone the platform knows for `user` (Slack's profile
    /// zone), for schedules when the roster gives none. `Ok(None)` where the
    /// platform has no profiles (console, webhook) or the user set none.
    /// Nothing is cached here: the caller stores what it learns.
    async fn user_tz(&self, user: &PersonId) -> Result<Option<Tz>, ChatError> {
        let _ = user;
        Ok(None)
    }
}
