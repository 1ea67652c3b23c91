//! Thin serde types for what Slack sends us: only the fields nudged reads.
//! Unknown fields are ignored (Slack adds fields freely); unknown event and
//! payload types deserialize to `Other` and are acknowledged untouched.

use serde::Deserialize;

/// The body of `POST /slack/events`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        event_id: String,
        event: Event,
    },
    #[serde(other)]
    Other,
}

/// The events nudged subscribes to.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Message(MessageEvent),
    AppHomeOpened {
        user: String,
        #[serde(default)]
        tab: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// A `message` event (DM or channel thread).
#[derive(Debug, Deserialize)]
pub struct MessageEvent {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    pub channel: String,
    /// `im` for a direct message with the bot.
    #[serde(default)]
    pub channel_type: Option<String>,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    /// Set on messages posted by bots, including nudged itself.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// Edits, joins, bot messages…; plain messages have none.
    #[serde(default)]
    pub subtype: Option<String>,
}

/// The JSON inside the `payload` form field of `POST /slack/interactions`.
#[derive(Debug, Deserialize)]
pub struct InteractionPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub user: SlackUser,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub channel: Option<SlackChannel>,
}

#[derive(Debug, Deserialize)]
pub struct SlackUser {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct SlackChannel {
    pub id: String,
}

/// Where the clicked message is.
#[derive(Debug, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub message_ts: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// One clicked element.
#[derive(Debug, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub action_ts: Option<String>,
}

/// The form fields of `POST /slack/commands`.
#[derive(Debug, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub user_id: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Unique per invocation: a replayed request carries the same one.
    #[serde(default)]
    pub trigger_id: Option<String>,
}
