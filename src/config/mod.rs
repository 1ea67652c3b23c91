//! Configuration: `config.toml`, overridden key by key from `NUDGED__…`
//! environment variables, deserialized strictly into raw structs
//! ([`raw`]) and then validated into [`Settings`], the only form the rest of
//! the crate sees.
//!
//! Every problem is a [`ConfigError`] naming the file, the key and what is
//! wrong, on one line. Secrets are [`SecretString`]s: they print as
//! `[REDACTED]` in `Debug` and are only exposed where they are used.
//!
//! # Layout
//!
//! - this file: the validated settings types and [`Settings::load`].
//! - `raw.rs`: the strict raw structs, the file and the environment merged.
//! - `validate.rs`: raw → [`Settings`], section by section.
//! - `messages.rs`: `[messages]`, the nudge's wording
//!   ([`MessageSettings`], defined in `render`).
//! - `catalogue.rs`: `[[questions]]`, an operator's own catalogue.
//! - `error.rs`: [`ConfigError`], which a schedule file's error becomes too.

mod catalogue;
mod error;
mod mattermost;
mod messages;
mod raw;
mod roster;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use secrecy::SecretString;

pub use crate::render::{
    DEFAULT_NUDGE_BODY, DEFAULT_NUDGE_NEXT_STEP, DEFAULT_NUDGE_TIMING,
    DEFAULT_NUDGE_TIMING_RELEASED, DEFAULT_NUDGE_TIMING_UNKNOWN, DEFAULT_NUDGE_TITLE,
    DEFAULT_TRAINING, MessageSettings,
};
pub use error::ConfigError;
pub use mattermost::MattermostSettings;
pub use validate::parse_tz;

use crate::domain::{Catalogue, PersonId, QuestionId};
use crate::model::Params;
use crate::schedule::{self, Schedule};
use crate::store::{StorageOptions, redact_url};

/// Prefix of environment overrides: `NUDGED__CHAT__SLACK__BOT_TOKEN` sets
/// `chat.slack.bot_token`.
pub const ENV_PREFIX: &str = "NUDGED";
/// Separates the prefix and each key level in an environment override.
pub const ENV_SEPARATOR: &str = "__";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file this was loaded from; relative paths in it are resolved
    /// against its directory.
    pub file: PathBuf,
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub chat: ChatSettings,
    pub schedules: ScheduleSettings,
    pub delivery: DeliverySettings,
    pub model: Params,
    pub messages: MessageSettings,
    pub catalogue: Catalogue,
    /// The roster: people enrolled from the config file.
    pub people: Vec<RosterEntry>,
    /// How the daemon writes its log (`log.format`).
    pub log_format: LogFormat,
}

/// `log.format`: lines for people, or one JSON object per line for log
/// collectors (journald exporters, Loki, Elasticsearch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where the HTTP server listens (`/healthz`, `/metrics`, `/slack/…`).
    pub bind: SocketAddr,
    /// `/readyz` answers 503 once the oldest undelivered message has
    /// waited longer than this.
    pub readyz_max_outbox_lag: std::time::Duration,
    /// How long a connection may take over a request head, and wait between
    /// requests, and how many may be open at once.
    pub limits: ConnectionLimits,
}

/// The limits connections are served within (`[server]`). `http::serve`
/// applies them, lowering the cap to what the open-files limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a whole request head, counted from
    /// when it connected, or from its first byte after a kept-alive wait. A
    /// real client sends its head in one packet; one that dribbles it holds a
    /// socket for nothing (slowloris).
    pub header_read_timeout: std::time::Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: std::time::Duration,
    /// Most connections open at once; each holds a file descriptor.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // A head is one packet; 10 s allows for a slow network.
            header_read_timeout: std::time::Duration::from_secs(10),
            // Long enough that Slack's bursts reuse a connection; nginx
            // uses 75 s.
            idle_timeout: std::time::Duration::from_secs(60),
            // Far more than Slack opens at once, far fewer than the file
            // descriptors a process usually may hold.
            max_connections: 1024,
        }
    }
}

/// `server.readyz_max_outbox_lag_secs` unless set: 10 minutes, well past
/// Slack's longest usual `Retry-After` and a few retries of an outage, so
/// only delivery that is truly stuck makes the daemon unready.
pub const DEFAULT_MAX_OUTBOX_LAG: std::time::Duration = std::time::Duration::from_secs(600);

/// `storage.retention_days` unless set: delivered messages and old
/// assessments are kept a quarter, long enough to look into what was
/// sent last month.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Longest `storage.connect_timeout_secs`: an hour. Far past any database
/// worth waiting for, and the deadline it sets must stay inside what the
/// clock can count (a value of centuries overflowed it and panicked).
pub const MAX_CONNECT_TIMEOUT_SECS: u64 = 3600;

/// Longest `storage.retention_days`: a century, which keeps the cut-off
/// date well inside what the clock can count.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Clone)]
pub struct StorageSettings {
    /// `sqlite://PATH` with PATH resolved against the config file's
    /// directory, or `postgres://…`, which may hold a password: shown only
    /// through [`crate::store::redact_url`].
    pub url: String,
    /// Pool size and connect timeout.
    pub options: StorageOptions,
    /// Delivered and failed outbox rows, and assessments other than each
    /// person's latest, are pruned once this old (`storage.retention_days`).
    pub retention: chrono::Duration,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("url", &redact_url(&self.url))
            .field("options", &self.options)
            .field("retention", &self.retention)
            .finish()
    }
}

/// Which chat platform carries prompts and replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Slack,
    Webhook,
    Console,
    Mattermost,
}

impl Platform {
    /// The name used in `chat.platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Console => "console",
            Self::Mattermost => "mattermost",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub platform: Platform,
    pub slack: SlackSettings,
    pub webhook: WebhookSettings,
    pub mattermost: MattermostSettings,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// `xoxb-…`; required for the `slack` platform.
    pub bot_token: Option<SecretString>,
    /// Verifies inbound requests; required for the `slack` platform.
    pub signing_secret: Option<SecretString>,
    /// Base of the Web API, e.g. `https://slack.com/api`; tests point it at a
    /// local fake. `https://` unless the host is loopback: the bot token
    /// travels with every call.
    pub api_base_url: String,
    /// When set, requests from any other workspace are refused (403).
    pub team_id: Option<String>,
    /// When set, requests meant for any other Slack app are refused (403).
    pub app_id: Option<String>,
    /// Receive events, clicks and commands over Socket Mode (a WebSocket
    /// nudged opens) instead of HTTP request URLs.
    pub socket_mode: bool,
    /// App-level token (`xapp-…`, scope `connections:write`) that opens
    /// Socket Mode connections; required when `socket_mode` is on.
    pub app_token: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Incoming-webhook URL. It grants posting rights, so it is a secret.
    pub url: Option<SecretString>,
    /// Which server the webhook belongs to: each reads a different
    /// message format.
    pub flavor: WebhookFlavor,
}

/// The chat server behind a Slack-compatible incoming webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WebhookFlavor {
    /// Slack: Block Kit `blocks` and mrkdwn `*bold*`.
    #[default]
    Slack,
    /// Mattermost: ignores `blocks`; Markdown `**bold**`.
    Mattermost,
    /// Rocket.Chat: ignores `blocks`; `*bold*` as in Slack.
    Rocketchat,
}

impl WebhookFlavor {
    /// Reads `chat.webhook.flavor` (case-insensitive; `rocket.chat` too).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "slack" => Ok(Self::Slack),
            "mattermost" => Ok(Self::Mattermost),
            "rocketchat" | "rocket.chat" => Ok(Self::Rocketchat),
            _ => Err(format!(
                "unknown flavor {name:?}; use slack, mattermost or rocketchat"
            )),
        }
    }

    /// The name used in `chat.webhook.flavor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Mattermost => "mattermost",
            Self::Rocketchat => "rocketchat",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// Directory of `*.toml` schedule files, resolved against the config file.
    pub dir: PathBuf,
    /// How late a missed occurrence may still be sent after downtime.
    pub grace: chrono::Duration,
    /// The schedules found in `dir`, validated.
    pub list: Vec<Schedule>,
}

/// How the outbox paces and runs its sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliverySettings {
    /// Least time between two messages to one channel (Slack allows about
    /// one per second per channel).
    pub per_channel_interval: std::time::Duration,
    /// Least average time between two messages across the workspace.
    pub global_interval: std::time::Duration,
    /// Sends in flight at once: with a round trip of 20 ms, one at a time
    /// would cap delivery at 50 messages/s whatever the rates allow.
    pub concurrency: usize,
    /// How long a claimed row stays reserved for its worker. After a crash
    /// its rows wait this long before a worker takes them over.
    pub lease: std::time::Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            per_channel_interval: std::time::Duration::from_secs(1),
            global_interval: std::time::Duration::from_millis(200),
            concurrency: 4,
            lease: std::time::Duration::from_secs(60),
        }
    }
}

/// One person from `[[people]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterEntry {
    pub id: PersonId,
    pub name: Option<String>,
    pub tz: Option<Tz>,
}

impl Settings {
    /// The schedule whose questions a reply outside a prompt's thread
    /// answers: the first `checkin` schedule.
    pub fn default_checkin(&self) -> Option<&Schedule> {
        self.schedules
            .list
            .iter()
            .find(|s| s.kind == schedule::ScheduleKind::Checkin)
    }

    /// The questions a reply is read against, and a prompt of `schedule`
    /// asks: the schedule's (the default check-in's without one), else the
    /// whole catalogue in order.
    pub fn questions_for(&self, schedule: Option<&str>) -> Vec<QuestionId> {
        schedule
            .and_then(|name| self.schedules.list.iter().find(|s| s.name == name))
            .or_else(|| self.default_checkin())
            .map(|s| s.questions.clone())
            .unwrap_or_else(|| {
                self.catalogue
                    .questions()
                    .iter()
                    .map(|q| q.id.clone())
                    .collect()
            })
    }

    /// Loads `path`, applies `NUDGED__…` overrides from the process
    /// environment, validates, and loads the schedule files.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let raw = raw::read(path, env)?;
        validate::validate(path, raw)
    }
}

#[cfg(test)]
mod tests;
