//! Chat platforms behind one trait, [`ChatApi`]: the outbox hands each
//! message to the configured adapter and branches on the typed
//! [`ChatError`] (retry later, retry after, or give up).
//!
//! - `slack.rs`: Slack's Web API over reqwest.
//! - `webhook.rs`: a Slack-compatible incoming webhook (Slack, Mattermost,
//!   Rocket.Chat): post only, to one channel.
//! - `mattermost.rs`: Mattermost's REST API v4 with a bot account: DMs,
//!   buttons as attachment actions, updates.
//! - `console.rs`: the embedded default: messages printed as text (what
//!   is typed back is read by the `console_input` driver).
//!
//! The port owns its message type, [`Outgoing`]; adapters import nothing
//! above them (ARCHITECTURE.md, "Layers").

pub mod console;
pub mod mattermost;
mod message;
pub mod slack;
mod webhook;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use console::ConsoleChat;
pub use mattermost::MattermostChat;
pub use message::Outgoing;
pub use slack::SlackChat;
pub use webhook::WebhookChat;

use crate::domain::PersonId;

/// Makes sure rustls has a crypto provider before an HTTP client is built:
/// reqwest is compiled without a default one and would panic. The binary
/// installs the same provider at start; this covers every other caller
/// (tests, embedding programs) and leaves a provider already chosen alone.
pub(crate) fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// An HTTP client for a chat platform's API: the rustls provider in
/// place, each call cut off after `timeout`, and nudged's user agent. The
/// caller adds what is its own (a redirect policy) and builds it.
pub(crate) fn http_client(timeout: Duration) -> reqwest::ClientBuilder {
    ensure_tls_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("nudged/", env!("CARGO_PKG_VERSION")))
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

/// Longest pause a `Retry-After` can impose: 15 minutes. The header comes
/// from outside; a value of years (or one that overflows a date) would
/// otherwise stall a channel, or the whole workspace, for as long. Slack
/// asks for seconds to a minute; after 15 minutes the message is simply
/// tried again, and a platform still limiting says so again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Shortest pause a `Retry-After` can impose: one second, so a server that
/// answers `0` (or a date in the past) is not called again in a loop.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The `Retry-After` a platform sent with a 429, within
/// [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`]; `None` if absent or
/// unreadable. An HTTP date is read against the answer's own `Date`
/// header (the server's clock, so clock skew does not count), else
/// against this machine's clock.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let value = text(reqwest::header::RETRY_AFTER)?;
    let now = text(reqwest::header::DATE)
        .and_then(|date| DateTime::parse_from_rfc2822(date.trim()).ok())
        .map_or_else(Utc::now, |date| date.with_timezone(&Utc));
    parse_retry_after(value, now)
}

/// Reads a `Retry-After` value at `now` (RFC 9110 §10.2.3): whole seconds
/// (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`), clamped to
/// [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`]. A number too large for any
/// clock is the longest pause, not an error; a negative or fractional
/// number, or anything else, is unreadable (`None`), and the adapter's
/// default applies.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail the parse.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        // A date already past asks for no wait at all.
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-19T16:05:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn seconds_are_read_and_kept_within_the_bounds() {
        assert_eq!(parse_retry_after("30", now()), secs(30));
        assert_eq!(parse_retry_after(" 7 ", now()), secs(7));
        assert_eq!(parse_retry_after("900", now()), secs(900));
        assert_eq!(parse_retry_after("0", now()), Some(MIN_RETRY_AFTER));
        for huge in [
            "901",
            "99999999999999",
            "18446744073709551615",
            "1".repeat(400).as_str(),
        ] {
            assert_eq!(
                parse_retry_after(huge, now()),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
    }

    #[test]
    fn an_unreadable_value_is_none() {
        for value in [
            "",
            " ",
            "-5",
            "+5",
            "1.5",
            "1e3",
            "soon",
            "30s",
            "٣٠",
            "Thu, 99 Nov",
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }

    #[test]
    fn an_http_date_is_read_against_now() {
        let in_two_minutes = "Thu, 19 Nov 2026 16:07:00 GMT";
        assert_eq!(parse_retry_after(in_two_minutes, now()), secs(120));
        assert_eq!(
            parse_retry_after("Thu, 19 Nov 2026 16:00:00 GMT", now()),
            Some(MIN_RETRY_AFTER),
            "a date in the past"
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now()),
            Some(MAX_RETRY_AFTER),
            "a date centuries away"
        );
    }

    #[test]
    fn the_header_reads_a_date_against_the_answers_own_date() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "retry-after",
            "Thu, 19 Nov 2026 16:07:00 GMT".parse().unwrap(),
        );
        headers.insert("date", "Thu, 19 Nov 2026 16:06:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), secs(60));
        headers.insert("retry-after", "99999999999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert("retry-after", "-1".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
