//! Configuration: `config.toml`, overridden key by key from `NUDGED__…`
//! environment variables, deserialized strictly into raw structs
//! ([`raw`]) and then validated into [`Settings`], the only form the rest of
//! the crate sees.
//!
//! Every problem is a [`ConfigError`] naming the file, the key and what is
//! wrong, on one line. Secrets are [`SecretString`]s: they print as
//! `[REDACTED]` in `Debug` and are only exposed where they are used.

mod error;
mod raw;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

pub use error::ConfigError;

use crate::domain::{Catalogue, PersonId, Question, QuestionId, QuestionOption, default_catalogue};
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
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where the HTTP server listens (`/healthz`, `/metrics`, `/slack/…`).
    pub bind: SocketAddr,
}

#[derive(Clone)]
pub struct StorageSettings {
    /// `sqlite://PATH` with PATH resolved against the config file's
    /// directory, or `postgres://…`, which may hold a password: shown only
    /// through [`crate::store::redact_url`].
    pub url: String,
    /// Pool size and connect timeout.
    pub options: StorageOptions,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("url", &redact_url(&self.url))
            .field("options", &self.options)
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
}

impl Platform {
    /// The name used in `chat.platform`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Console => "console",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub platform: Platform,
    pub slack: SlackSettings,
    pub webhook: WebhookSettings,
}

#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// `xoxb-…`; required for the `slack` platform.
    pub bot_token: Option<SecretString>,
    /// Verifies inbound requests; required for the `slack` platform.
    pub signing_secret: Option<SecretString>,
    /// Base of the Web API, e.g. `https://slack.com/api`; tests point it at a
    /// local fake.
    pub api_base_url: String,
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

/// The wording of the readiness nudge (`[messages]`). `{name}` in either
/// text is replaced by the person's name (or "there" when it is unknown);
/// the reasons always follow the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    pub nudge_title: String,
    pub nudge_body: String,
}

/// The nudge's default title.
pub const DEFAULT_NUDGE_TITLE: &str = "Your role has grown, {name}";

/// The nudge's default body: recognition of what already happened, not a
/// promise or a shortcut.
pub const DEFAULT_NUDGE_BODY: &str = "Week after week you have been making the calls on the same \
product, with lasting consequences and stakeholders pulling in different directions. That is \
product ownership, and it is already part of your role. This is a good moment to talk with your \
lead about what the role has become and what you want to grow into next.";

/// The longest template accepted: Slack's limit for a section's text,
/// less room for the name and the reasons.
const MAX_TEMPLATE_CHARS: usize = 2000;

/// Checks a nudge template: not empty, not too long, and no placeholder
/// other than `{name}` (a typo would otherwise be posted verbatim).
fn check_template(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("is longer than {MAX_TEMPLATE_CHARS} characters"));
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if &after[..close] == "name" => rest = &after[close + 1..],
            Some(close) => {
                return Err(format!(
                    "unknown placeholder {{{}}}; only {{name}} is replaced",
                    &after[..close]
                ));
            }
            None => return Err("has a `{` without a closing `}`".into()),
        }
    }
    Ok(())
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
        validate(path, raw)
    }
}

fn validate(file: &Path, raw: raw::RawSettings) -> Result<Settings, ConfigError> {
    let err = |key: &str, problem: String| ConfigError::new(file, key, problem);
    let base = file.parent().unwrap_or(Path::new("."));

    let bind = SocketAddr::from_str(raw.server.bind.trim()).map_err(|_| {
        err(
            "server.bind",
            format!(
                "{:?} is not an address with a port, e.g. 127.0.0.1:3000",
                raw.server.bind
            ),
        )
    })?;

    let url = resolve_storage_url(base, raw.storage.url.trim())
        .map_err(|problem| err("storage.url", problem))?;
    if raw.storage.max_connections == Some(0) {
        return Err(err("storage.max_connections", "must be at least 1".into()));
    }
    if raw.storage.connect_timeout_secs == 0 {
        return Err(err(
            "storage.connect_timeout_secs",
            "must be at least 1".into(),
        ));
    }
    let storage = StorageSettings {
        url,
        options: StorageOptions {
            max_connections: raw.storage.max_connections,
            connect_timeout: Some(std::time::Duration::from_secs(
                raw.storage.connect_timeout_secs,
            )),
        },
    };

    let catalogue = match raw.questions {
        None => default_catalogue(),
        Some(questions) => {
            catalogue_from(questions).map_err(|(key, problem)| err(&key, problem))?
        }
    };

    raw.model
        .validate(&catalogue)
        .map_err(|(key, problem)| err(&key, problem))?;

    let chat = chat_settings(raw.chat).map_err(|(key, problem)| err(&key, problem))?;
    let delivery = delivery_settings(&raw.delivery).map_err(|(key, problem)| err(&key, problem))?;

    let mut people = Vec::with_capacity(raw.people.len());
    let mut seen = HashSet::new();
    for (i, p) in raw.people.into_iter().enumerate() {
        let key = |field: &str| format!("people[{i}].{field}");
        let id =
            PersonId::parse(p.id.trim()).map_err(|e| err(&key("id"), format!("{:?} {e}", p.id)))?;
        if !seen.insert(id.clone()) {
            return Err(err(&key("id"), format!("{id} is listed twice")));
        }
        let tz =
            p.tz.as_deref()
                .map(|tz| parse_tz(tz).map_err(|problem| err(&key("tz"), problem)))
                .transpose()?;
        people.push(RosterEntry {
            id,
            name: p.name.filter(|n| !n.trim().is_empty()),
            tz,
        });
    }

    if raw.schedules.grace_hours == 0 {
        return Err(err("schedules.grace_hours", "must be at least 1".into()));
    }
    let dir = base.join(&raw.schedules.dir);
    let list = schedule::load_dir(&dir, &catalogue)?;

    check_template(&raw.messages.nudge_title)
        .map_err(|problem| err("messages.nudge_title", problem))?;
    check_template(&raw.messages.nudge_body)
        .map_err(|problem| err("messages.nudge_body", problem))?;

    Ok(Settings {
        file: file.to_path_buf(),
        server: ServerSettings { bind },
        storage,
        chat,
        schedules: ScheduleSettings {
            dir,
            grace: chrono::Duration::hours(i64::from(raw.schedules.grace_hours)),
            list,
        },
        delivery,
        model: raw.model,
        messages: MessageSettings {
            nudge_title: raw.messages.nudge_title,
            nudge_body: raw.messages.nudge_body,
        },
        catalogue,
        people,
    })
}

/// Parses an IANA zone name with a helpful message.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim())
        .map_err(|_| format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin"))
}

fn resolve_storage_url(base: &Path, url: &str) -> Result<String, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("sqlite:// needs a file path, e.g. sqlite://data/nudged.db".into());
        }
        let path = Path::new(path);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        };
        Ok(format!("sqlite://{}", path.display()))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "{:?} is neither sqlite://PATH nor postgres://…",
            redact_url(url)
        ))
    }
}

/// `http(s)://` followed by a host, with no whitespace anywhere.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace)
    })
}

fn secret(value: Option<SecretString>) -> Option<SecretString> {
    value.filter(|s| !s.expose_secret().trim().is_empty())
}

fn chat_settings(raw: raw::RawChat) -> Result<ChatSettings, (String, String)> {
    let slack = SlackSettings {
        bot_token: secret(raw.slack.bot_token),
        signing_secret: secret(raw.slack.signing_secret),
        api_base_url: raw
            .slack
            .api_base_url
            .trim()
            .trim_end_matches('/')
            .to_owned(),
    };
    let webhook = WebhookSettings {
        url: secret(raw.webhook.url),
        flavor: WebhookFlavor::parse(&raw.webhook.flavor)
            .map_err(|problem| ("chat.webhook.flavor".to_owned(), problem))?,
    };
    if !(slack.api_base_url.starts_with("http://") || slack.api_base_url.starts_with("https://")) {
        return Err((
            "chat.slack.api_base_url".into(),
            format!("{:?} is not an http(s) URL", slack.api_base_url),
        ));
    }
    match raw.platform {
        Platform::Slack => {
            for (key, value) in [
                ("bot_token", &slack.bot_token),
                ("signing_secret", &slack.signing_secret),
            ] {
                if value.is_none() {
                    return Err((
                        format!("chat.slack.{key}"),
                        format!(
                            "required when chat.platform = \"slack\"; set {ENV_PREFIX}__CHAT__SLACK__{}",
                            key.to_uppercase()
                        ),
                    ));
                }
            }
        }
        Platform::Webhook => match &webhook.url {
            None => {
                return Err((
                    "chat.webhook.url".into(),
                    format!(
                        "required when chat.platform = \"webhook\"; set {ENV_PREFIX}__CHAT__WEBHOOK__URL"
                    ),
                ));
            }
            // The URL is a secret: the problem is described, never echoed.
            Some(url) if !is_http_url(url.expose_secret()) => {
                return Err((
                    "chat.webhook.url".into(),
                    "is not an http(s) URL with a host".into(),
                ));
            }
            Some(_) => {}
        },
        Platform::Console => {}
    }
    Ok(ChatSettings {
        platform: raw.platform,
        slack,
        webhook,
    })
}

/// Highest rate accepted for `delivery.*_per_sec`: one message per
/// millisecond is far above any chat platform's limit.
const MAX_RATE: f64 = 1000.0;
/// Lowest rate accepted for `delivery.*_per_sec`: one message a day. Any
/// slower is no rate a daemon can send by, and an interval of centuries
/// does not fit a duration or a date.
const MIN_RATE: f64 = 1.0 / 86_400.0;
/// Most sends in flight at once.
const MAX_CONCURRENCY: u32 = 64;

fn delivery_settings(raw: &raw::RawDelivery) -> Result<DeliverySettings, (String, String)> {
    let interval = |key: &str, per_sec: f64| {
        if (MIN_RATE..=MAX_RATE).contains(&per_sec) {
            Ok(std::time::Duration::from_secs_f64(1.0 / per_sec))
        } else {
            Err((
                format!("delivery.{key}"),
                format!(
                    "must be a number of messages per second from one a day ({MIN_RATE:.7}) to {MAX_RATE}, got {per_sec}"
                ),
            ))
        }
    };
    if !(1..=MAX_CONCURRENCY).contains(&raw.concurrency) {
        return Err((
            "delivery.concurrency".into(),
            format!(
                "must be between 1 and {MAX_CONCURRENCY}, got {}",
                raw.concurrency
            ),
        ));
    }
    if raw.lease_secs < 2 {
        return Err((
            "delivery.lease_secs".into(),
            format!(
                "must be at least 2 (a send may take half the lease), got {}",
                raw.lease_secs
            ),
        ));
    }
    Ok(DeliverySettings {
        per_channel_interval: interval("per_channel_per_sec", raw.per_channel_per_sec)?,
        global_interval: interval("global_per_sec", raw.global_per_sec)?,
        concurrency: raw.concurrency as usize,
        lease: std::time::Duration::from_secs(u64::from(raw.lease_secs)),
    })
}

fn catalogue_from(questions: Vec<raw::RawQuestion>) -> Result<Catalogue, (String, String)> {
    if questions.is_empty() {
        return Err(("questions".into(), "needs at least one question".into()));
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(questions.len());
    for (i, q) in questions.into_iter().enumerate() {
        let key = |field: &str| format!("questions[{i}].{field}");
        let id =
            QuestionId::parse(q.id.trim()).map_err(|e| (key("id"), format!("{:?} {e}", q.id)))?;
        if !ids.insert(id.clone()) {
            return Err((key("id"), format!("{id} is defined twice")));
        }
        if q.text.trim().is_empty() {
            return Err((key("text"), "is empty".into()));
        }
        if q.options.len() < 2 {
            return Err((key("options"), "needs at least two options".into()));
        }
        let mut keys = HashSet::new();
        let mut options = Vec::with_capacity(q.options.len());
        for (j, o) in q.options.into_iter().enumerate() {
            let key = |field: &str| format!("questions[{i}].options[{j}].{field}");
            let option_key = crate::domain::OptionKey::parse(o.key.trim())
                .map_err(|e| (key("key"), format!("{:?} {e}", o.key)))?;
            if !keys.insert(option_key.clone()) {
                return Err((key("key"), format!("{option_key} is used twice in {id}")));
            }
            if !(0.0..=1.0).contains(&o.score) {
                return Err((
                    key("score"),
                    format!("must be between 0 and 1, got {}", o.score),
                ));
            }
            let label = o.label.unwrap_or_else(|| option_key.to_string());
            options.push(QuestionOption {
                key: option_key,
                label,
                score: o.score,
            });
        }
        out.push(Question {
            id,
            text: q.text,
            options,
        });
    }
    Ok(Catalogue::new(out))
}

#[cfg(test)]
mod tests;
