//! The durable outbox: every message nudged sends is a row first.
//!
//! [`Outgoing`] is what a row asks the chat adapter to do; [`enqueue`]
//! writes it. Delivery (pacing, retries, `Retry-After`) reads the rows back,
//! so a crash between deciding to send and sending loses nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::PersonId;
use crate::render::Message;
use crate::store::{NewOutbox, Store, StoreResult};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_round_trips_through_its_stored_json() {
        let messages = [
            Outgoing::Post {
                channel: "U1".into(),
                thread_ts: Some("1700000000.000100".into()),
                text: "Got it".into(),
                blocks: vec![],
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
