//! Chat platforms behind one trait, [`ChatApi`]: the outbox hands each
//! message to the configured adapter and branches on the typed
//! [`ChatError`] (retry later, retry after, or give up).
//!
//! - `slack.rs`: Slack's Web API over reqwest.
//! - `console.rs`: the embedded default: messages printed as text.

mod console;
mod slack;

use std::time::Duration;

use async_trait::async_trait;

pub use console::ConsoleChat;
pub use slack::SlackChat;

use crate::outbox::Outgoing;

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

/// A chat platform nudged can post to.
#[async_trait]
pub trait ChatApi: Send + Sync + 'static {
    async fn send(&self, message: &Outgoing) -> Result<Delivered, ChatError>;
}
