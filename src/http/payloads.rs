//! Thin serde types for what Slack sends us: only the fields nudged reads.
//! Unknown fields are ignored (Slack adds fields freely); unknown event and
//! payload types deserialize to `Other` and are acknowledged untouched.

use serde::Deserialize;

/// The body of `POST /slack/events`.
// Parsed once per request and matched at once: boxing the large variant
// would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        event_id: String,
        event: Event,
        #[serde(default)]
        team_id: Option<String>,
        #[serde(default)]
        api_app_id: Option<String>,
    },
    #[serde(other)]
    Other,
}

impl EventEnvelope {
    /// Who sent an event; `None` for `url_verification` and the envelopes
    /// nudged ignores, which carry no workspace and change nothing.
    pub fn origin(&self) -> Option<Origin<'_>> {
        match self {
            Self::EventCallback {
                team_id,
                api_app_id,
                ..
            } => Some(Origin {
                team_id: team_id.as_deref(),
                app_id: api_app_id.as_deref(),
            }),
            Self::UrlVerification { .. } | Self::Other => None,
        }
    }
}

/// The workspace (team) and the Slack app a request says it is for, checked
/// against `chat.slack.team_id` / `app_id` by [`super::verify::check_origin`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    pub team_id: Option<&'a str>,
    pub app_id: Option<&'a str>,
}

/// The bot events nudged subscribes to (the app manifest's
/// `bot_events`), each with the bot scope it needs (`None`: none): the
/// variants of [`Event`]. `message.im` is the `message` event in the
/// bot's direct messages, where prompts are posted and answered.
pub const SUBSCRIBED_EVENTS: &[(&str, Option<&str>)] = &[
    ("message.im", Some("im:history")),
    ("app_home_opened", None),
];

/// The events nudged subscribes to ([`SUBSCRIBED_EVENTS`]).
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
    /// The workspace clicked in (`team.id`).
    #[serde(default)]
    pub team: Option<SlackTeam>,
    #[serde(default)]
    pub api_app_id: Option<String>,
}

impl InteractionPayload {
    /// Who sent this interaction.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            team_id: self.team.as_ref().map(|t| t.id.as_str()),
            app_id: self.api_app_id.as_deref(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SlackTeam {
    pub id: String,
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
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub api_app_id: Option<String>,
}

impl SlashCommand {
    /// Who sent this command.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            team_id: self.team_id.as_deref(),
            app_id: self.api_app_id.as_deref(),
        }
    }
}
