//! What the chat port sends: one operation on a chat platform, already
//! drawn. The outbox stores its own type (`outbox::Queued`), which may be
//! a redraw still to draw; an adapter only ever sees this one.

use serde::{Deserialize, Serialize};

use crate::render::Message;

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

    /// The operation's stable name (the outbox row's `kind`).
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
