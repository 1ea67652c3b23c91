//! The durable outbox: every message nudged sends is a row first.
//!
//! [`Outgoing`] is what a row asks the chat adapter to do; [`enqueue`]
//! writes it; [`deliver_due`] claims due rows (with a lease, so a crashed
//! worker's rows are taken over), hands each to the [`ChatApi`] and records
//! the result: sent, retried later (exponential back-off with jitter, or
//! Slack's `Retry-After`), or failed for good. A crash between deciding to
//! send and sending loses nothing; a message is sent twice only if the
//! process died between the send and its record.

use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::chat::{ChatApi, ChatError};
use crate::domain::PersonId;
use crate::render::Message;
use crate::store::{NewOutbox, OutboxRow, Store, StoreResult};

/// Rows claimed per call of [`deliver_due`]: small, so a shutdown waits for
/// at most this many sends.
pub const BATCH: u32 = 10;
/// How long a claimed row stays reserved for its worker. Longer than any
/// send (the adapter times out sooner), so only a dead worker's rows expire.
pub const LEASE: Duration = Duration::from_secs(60);
/// Attempts before a message that keeps failing transiently is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// First retry delay; doubles per attempt, with jitter, up to [`MAX_DELAY`].
pub const MIN_DELAY: Duration = Duration::from_secs(2);
/// Longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(600);

/// One chat operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Outgoing {
    /// `chat.postMessage` to a channel or, with a person's id, their DM;
    /// in a thread when `thread_ts` is set.
    Post {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<String>,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<serde_json::Value>,
        /// The check-in this post is the prompt of: once delivered, where
        /// it landed is recorded on it, so clicks and thread replies find it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkin: Option<i64>,
    },
    /// `chat.update` of a message nudged posted earlier.
    Update {
        channel: String,
        ts: String,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<serde_json::Value>,
    },
    /// `views.publish` of a person's App Home.
    PublishHome {
        user: String,
        view: serde_json::Value,
    },
}

impl Outgoing {
    /// A post of a rendered message.
    pub fn post(channel: impl Into<String>, thread_ts: Option<String>, message: Message) -> Self {
        Self::Post {
            channel: channel.into(),
            thread_ts,
            text: message.text,
            blocks: message.blocks,
            checkin: None,
        }
    }

    /// An in-place update of a posted message.
    pub fn update(channel: impl Into<String>, ts: impl Into<String>, message: Message) -> Self {
        Self::Update {
            channel: channel.into(),
            ts: ts.into(),
            text: message.text,
            blocks: message.blocks,
        }
    }

    /// The operation's stable name, stored as the row's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Post { .. } => "post",
            Self::Update { .. } => "update",
            Self::PublishHome { .. } => "publish_home",
        }
    }

    /// Where per-channel pacing applies.
    pub fn channel(&self) -> &str {
        match self {
            Self::Post { channel, .. } | Self::Update { channel, .. } => channel,
            Self::PublishHome { user, .. } => user,
        }
    }
}

/// Writes `message` to the outbox, due at once. With a `dedupe_key` already
/// present nothing is written and `None` comes back.
pub async fn enqueue(
    store: &dyn Store,
    message: &Outgoing,
    person: Option<&PersonId>,
    dedupe_key: Option<String>,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    let payload = serde_json::to_string(message).expect("outgoing messages always serialize");
    store
        .enqueue(&NewOutbox {
            dedupe_key,
            person: person.cloned(),
            kind: message.kind().to_owned(),
            channel: message.channel().to_owned(),
            payload,
            not_before: now,
            created_at: now,
        })
        .await
}

/// What one [`deliver_due`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl DeliveryOutcome {
    /// Whether any row was due.
    pub fn is_idle(&self) -> bool {
        self.sent + self.retried + self.failed == 0
    }
}

/// The delay before retry number `attempt` (1-based) after a transient
/// failure.
pub fn backoff(attempt: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(MAX_DELAY)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Delivers the rows due at `now`, each once, and records each outcome.
pub async fn deliver_due(
    store: &dyn Store,
    chat: &dyn ChatApi,
    now: DateTime<Utc>,
) -> StoreResult<DeliveryOutcome> {
    let mut outcome = DeliveryOutcome::default();
    for row in store
        .claim_outbox(now, now + to_chrono(LEASE), BATCH)
        .await?
    {
        deliver_one(store, chat, &row, now, &mut outcome).await?;
    }
    Ok(outcome)
}

#[tracing::instrument(skip_all, fields(outbox_id = row.id, kind = %row.kind))]
async fn deliver_one(
    store: &dyn Store,
    chat: &dyn ChatApi,
    row: &OutboxRow,
    now: DateTime<Utc>,
    outcome: &mut DeliveryOutcome,
) -> StoreResult<()> {
    let message: Outgoing = match serde_json::from_str(&row.payload) {
        Ok(message) => message,
        Err(e) => {
            tracing::error!(error = %e, "unreadable outbox payload; marked failed");
            store
                .outbox_failed(row.id, now, &format!("unreadable payload: {e}"))
                .await?;
            metrics::counter!("nudged_outbox_failed_total").increment(1);
            outcome.failed += 1;
            return Ok(());
        }
    };
    match chat.send(&message).await {
        Ok(delivered) => {
            let response = serde_json::to_string(&delivered).unwrap_or_default();
            store.outbox_sent(row.id, now, &response).await?;
            if let (
                Outgoing::Post {
                    checkin: Some(id), ..
                },
                Some(channel),
                Some(ts),
            ) = (&message, &delivered.channel, &delivered.ts)
            {
                store.set_checkin_message(*id, channel, ts).await?;
            }
            metrics::counter!("nudged_outbox_sent_total").increment(1);
            outcome.sent += 1;
        }
        Err(ChatError::RateLimited { retry_after }) => {
            tracing::info!(
                ?retry_after,
                "rate limited; retrying after the platform's delay"
            );
            store
                .outbox_retry(row.id, now + to_chrono(retry_after), "rate limited")
                .await?;
            metrics::counter!("nudged_outbox_retried_total", "reason" => "rate_limited")
                .increment(1);
            outcome.retried += 1;
        }
        Err(ChatError::Transient { reason }) if row.attempts + 1 < MAX_ATTEMPTS => {
            let delay = backoff(row.attempts + 1);
            tracing::warn!(%reason, ?delay, attempt = row.attempts + 1, "delivery failed; will retry");
            store
                .outbox_retry(row.id, now + to_chrono(delay), &reason)
                .await?;
            metrics::counter!("nudged_outbox_retried_total", "reason" => "transient").increment(1);
            outcome.retried += 1;
        }
        Err(error) => {
            tracing::error!(%error, attempts = row.attempts + 1, "delivery failed for good");
            store.outbox_failed(row.id, now, &error.to_string()).await?;
            metrics::counter!("nudged_outbox_failed_total").increment(1);
            outcome.failed += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d >= MIN_DELAY && d <= MAX_DELAY * 2, "{attempt}: {d:?}");
        }
        assert!(backoff(8) > backoff(1));
    }

    #[test]
    fn outgoing_round_trips_through_its_stored_json() {
        let messages = [
            Outgoing::Post {
                channel: "U1".into(),
                thread_ts: Some("1700000000.000100".into()),
                text: "Got it".into(),
                blocks: vec![],
                checkin: Some(7),
            },
            Outgoing::Update {
                channel: "D1".into(),
                ts: "1700000000.000100".into(),
                text: "1 of 7 answered".into(),
                blocks: vec![serde_json::json!({"type": "divider"})],
            },
            Outgoing::PublishHome {
                user: "U1".into(),
                view: serde_json::json!({"type": "home", "blocks": []}),
            },
        ];
        for m in messages {
            let json = serde_json::to_string(&m).unwrap();
            assert!(json.contains(&format!("\"op\":\"{}\"", m.kind())), "{json}");
            assert_eq!(serde_json::from_str::<Outgoing>(&json).unwrap(), m);
        }
    }
}
