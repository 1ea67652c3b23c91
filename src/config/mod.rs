//! Configuration: `config.toml`, overridden key by key from `NUDGED__…`
//! environment variables, deserialized strictly into raw structs
//! ([`raw`]) and then validated into [`Settings`], the only form the rest of
//! the crate sees.
//!
//! Every problem is a [`ConfigError`] naming the file, the key and what is
//! wrong, on one line. Secrets are [`SecretString`]s: they print as
//! `[REDACTED]` in `Debug` and are only exposed where they are used.

mod error;
mod mattermost;
mod raw;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

pub use error::ConfigError;
pub use mattermost::MattermostSettings;

use crate::domain::{Catalogue, PersonId, Question, QuestionId, QuestionOption, default_catalogue};
use crate::http::serve::ConnectionLimits;
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
    /// `/readyz` answers 503 once the oldest undelivered message has
    /// waited longer than this.
    pub readyz_max_outbox_lag: std::time::Duration,
    /// How long a connection may take over a request head, and wait between
    /// requests, and how many may be open at once.
    pub limits: ConnectionLimits,
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

/// The wording of the readiness nudge (`[messages]`). `{name}` in any of
/// the texts is replaced by the person's name (or "there" when it is
/// unknown); a few texts take one more placeholder, named on their field.
/// The nudge reads: title, body, next step, timing, then the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    pub nudge_title: String,
    /// Recognition of the role as it already is.
    pub nudge_body: String,
    /// The step the nudge is about: structured product-owner training.
    /// `{training}` is `training_name`, or [`DEFAULT_TRAINING`].
    pub nudge_next_step: String,
    /// Timing, when the person's latest capacity answer left room to learn.
    /// `{room}` is "room" or, for `little`, "a little room".
    pub nudge_timing: String,
    /// Timing, when a nudge held for "no room to learn" is sent after
    /// `model.capacity_hold_weeks`. `{weeks}` is how many weeks it waited.
    pub nudge_timing_released: String,
    /// Timing, when the person never answered the capacity question.
    pub nudge_timing_unknown: String,
    /// The training offered (`{training}`), e.g. "the CSPO course of our
    /// academy". Not set: the text names the kind of training.
    pub training_name: Option<String>,
    /// Where to read about it or sign up: an `http(s)://` link, shown as a
    /// button on the nudge. Not a secret.
    pub training_url: Option<String>,
}

/// The nudge's default title.
pub const DEFAULT_NUDGE_TITLE: &str = "Your role has grown, {name}";

/// The nudge's default body: recognition of what already happened, not a
/// promise or a shortcut.
pub const DEFAULT_NUDGE_BODY: &str = "Week after week you have been making the calls on the same \
product, with lasting consequences and stakeholders pulling in different directions. That is \
product ownership, and it is already part of your role.";

/// The nudge's default next step: training as reinforcement of decisions
/// already made, never as a shortcut or a credential.
pub const DEFAULT_NUDGE_NEXT_STEP: &str = "This is the point where structured product-owner \
training, such as {training}, tends to pay off: not as a shortcut or a credential, but because \
it builds on decisions you already make every week. It may be worth a word with your lead.";

/// What `{training}` names when `messages.training_name` is not set.
pub const DEFAULT_TRAINING: &str = "a Certified Scrum Product Owner (CSPO) course";

/// The default timing line after a capacity answer with room to learn.
pub const DEFAULT_NUDGE_TIMING: &str = "You said you have {room} to learn this month: if that \
still holds, now is a good time, and when is your call.";

/// The default timing line of a nudge sent after being held for capacity.
pub const DEFAULT_NUDGE_TIMING_RELEASED: &str = "For {weeks} weeks you said there is no room to \
learn right now, so this message waited. It comes now because your role has not changed; \
whether and when to act on it is your call.";

/// The default timing line when capacity was never answered.
pub const DEFAULT_NUDGE_TIMING_UNKNOWN: &str = "Only you know whether this month has room to \
learn: the timing is your call.";

/// The longest template accepted: Slack's limit for a section's text,
/// less room for the name and the reasons.
const MAX_TEMPLATE_CHARS: usize = 2000;

/// The longest `messages.training_name`: it is shown inside a sentence and
/// on a button.
const MAX_TRAINING_NAME_CHARS: usize = 200;

/// The longest `messages.training_url`: Slack's limit for a button's URL.
const MAX_TRAINING_URL_CHARS: usize = 3000;

/// Checks a nudge template: not empty, not too long, and no placeholder
/// but `{name}` and those in `extra` (a typo would otherwise be posted
/// verbatim).
fn check_template(text: &str, extra: &[&str]) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("is longer than {MAX_TEMPLATE_CHARS} characters"));
    }
    let known = |p: &str| p == "name" || extra.contains(&p);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if known(&after[..close]) => rest = &after[close + 1..],
            Some(close) => {
                let allowed: Vec<String> = std::iter::once("name")
                    .chain(extra.iter().copied())
                    .map(|p| format!("{{{p}}}"))
                    .collect();
                return Err(format!(
                    "unknown placeholder {{{}}}; only {} {} replaced",
                    &after[..close],
                    allowed.join(" and "),
                    if allowed.len() == 1 { "is" } else { "are" }
                ));
            }
            None => return Err("has a `{` without a closing `}`".into()),
        }
    }
    Ok(())
}

/// Validates `[messages]`; on error returns (key, problem).
fn message_settings(raw: raw::RawMessages) -> Result<MessageSettings, (String, String)> {
    for (key, text, extra) in [
        ("nudge_title", &raw.nudge_title, &[][..]),
        ("nudge_body", &raw.nudge_body, &[]),
        ("nudge_next_step", &raw.nudge_next_step, &["training"]),
        ("nudge_timing", &raw.nudge_timing, &["room"]),
        (
            "nudge_timing_released",
            &raw.nudge_timing_released,
            &["weeks"],
        ),
        ("nudge_timing_unknown", &raw.nudge_timing_unknown, &[]),
    ] {
        check_template(text, extra).map_err(|problem| (format!("messages.{key}"), problem))?;
    }
    let training_name = raw
        .training_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(name) = &training_name
        && name.chars().count() > MAX_TRAINING_NAME_CHARS
    {
        return Err((
            "messages.training_name".into(),
            format!("is longer than {MAX_TRAINING_NAME_CHARS} characters"),
        ));
    }
    let training_url = raw
        .training_url
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(url) = &training_url {
        if !is_http_url(url) {
            return Err((
                "messages.training_url".into(),
                format!("{url:?} is not an http:// or https:// link"),
            ));
        }
        if url.chars().count() > MAX_TRAINING_URL_CHARS {
            return Err((
                "messages.training_url".into(),
                format!("is longer than {MAX_TRAINING_URL_CHARS} characters"),
            ));
        }
    }
    Ok(MessageSettings {
        nudge_title: raw.nudge_title,
        nudge_body: raw.nudge_body,
        nudge_next_step: raw.nudge_next_step,
        nudge_timing: raw.nudge_timing,
        nudge_timing_released: raw.nudge_timing_released,
        nudge_timing_unknown: raw.nudge_timing_unknown,
        training_name,
        training_url,
    })
}

impl Default for MessageSettings {
    /// The shipped wording, with no training named or linked.
    fn default() -> Self {
        message_settings(raw::RawMessages::default()).expect("the default wording is valid")
    }
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
    let limits = connection_limits(&raw.server).map_err(|(key, problem)| err(&key, problem))?;

    let url = resolve_storage_url(base, raw.storage.url.trim())
        .map_err(|problem| err("storage.url", problem))?;
    if raw.storage.max_connections == Some(0) {
        return Err(err("storage.max_connections", "must be at least 1".into()));
    }
    if !(1..=MAX_CONNECT_TIMEOUT_SECS).contains(&raw.storage.connect_timeout_secs) {
        return Err(err(
            "storage.connect_timeout_secs",
            format!(
                "must be a number of seconds from 1 to {MAX_CONNECT_TIMEOUT_SECS}, got {}",
                raw.storage.connect_timeout_secs
            ),
        ));
    }
    if !(1..=MAX_RETENTION_DAYS).contains(&raw.storage.retention_days) {
        return Err(err(
            "storage.retention_days",
            format!(
                "must be a number of days from 1 to {MAX_RETENTION_DAYS}, got {}",
                raw.storage.retention_days
            ),
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
        retention: chrono::Duration::days(i64::from(raw.storage.retention_days)),
    };
    if raw.server.readyz_max_outbox_lag_secs == 0 {
        return Err(err(
            "server.readyz_max_outbox_lag_secs",
            "must be at least 1".into(),
        ));
    }

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

    let messages = message_settings(raw.messages).map_err(|(key, problem)| err(&key, problem))?;

    Ok(Settings {
        file: file.to_path_buf(),
        server: ServerSettings {
            bind,
            readyz_max_outbox_lag: std::time::Duration::from_secs(
                raw.server.readyz_max_outbox_lag_secs,
            ),
            limits,
        },
        storage,
        chat,
        schedules: ScheduleSettings {
            dir,
            grace: chrono::Duration::hours(i64::from(raw.schedules.grace_hours)),
            list,
        },
        delivery,
        model: raw.model,
        messages,
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

/// What [`check_url`] says of a URL that fails it. It never quotes the URL,
/// which may be a secret.
const NOT_HTTPS: &str = "must be an https:// URL (plain http:// only to a loopback host: \
127.0.0.0/8, ::1 or localhost), since it carries a secret";

/// An `http(s)://` URL with a host that keeps what it carries out of clear
/// text on the network: `https://`, or `http://` to this machine (tests
/// and local fakes).
fn check_url(url: &str) -> Result<(), &'static str> {
    if !is_http_url(url) {
        return Err("is not an http(s) URL with a host");
    }
    // The same parser the HTTP client uses, so the host judged here is
    // the host it connects to (`http://127.1` is 127.0.0.1 to both).
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not an http(s) URL with a host")?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if parsed.host_str().is_some_and(is_loopback) => Ok(()),
        _ => Err(NOT_HTTPS),
    }
}

/// 127.0.0.0/8, `::1` (written `[::1]` in a URL) and `localhost`, which
/// resolves to them.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A Slack id such as `T0123ABCD` (team) or `A0123ABCD` (app): upper-case
/// letters and digits. Unset or blank means "not pinned".
fn slack_id(key: &str, value: Option<String>) -> Result<Option<String>, (String, String)> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        Ok(Some(value))
    } else {
        Err((
            format!("chat.slack.{key}"),
            format!("{value:?} is not a Slack id (upper-case letters and digits, e.g. T0123ABCD)"),
        ))
    }
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
        team_id: slack_id("team_id", raw.slack.team_id)?,
        app_id: slack_id("app_id", raw.slack.app_id)?,
    };
    let mattermost = mattermost::settings(raw.mattermost, raw.platform)?;
    let webhook = WebhookSettings {
        url: secret(raw.webhook.url),
        flavor: WebhookFlavor::parse(&raw.webhook.flavor)
            .map_err(|problem| ("chat.webhook.flavor".to_owned(), problem))?,
    };
    if let Err(problem) = check_url(&slack.api_base_url) {
        return Err((
            "chat.slack.api_base_url".into(),
            format!("{:?} {problem}", slack.api_base_url),
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
            Some(url) => {
                check_url(url.expose_secret())
                    .map_err(|problem| ("chat.webhook.url".to_owned(), problem.to_owned()))?;
            }
        },
        Platform::Console | Platform::Mattermost => {}
    }
    Ok(ChatSettings {
        platform: raw.platform,
        slack,
        webhook,
        mattermost,
    })
}

/// Longest `server.header_read_timeout_secs`: a request head is a few
/// hundred bytes; ten minutes is patience for any real client.
const MAX_HEADER_READ_TIMEOUT_SECS: u64 = 600;
/// Longest `server.idle_timeout_secs`: an hour.
const MAX_IDLE_TIMEOUT_SECS: u64 = 3600;
/// Most `server.max_connections`: far above what one daemon serves, well
/// below what would exhaust a process's file descriptors by default.
const MAX_SERVER_CONNECTIONS: u32 = 65_536;

fn connection_limits(raw: &raw::RawServer) -> Result<ConnectionLimits, (String, String)> {
    let secs = |key: &str, value: u64, max: u64| {
        if (1..=max).contains(&value) {
            Ok(std::time::Duration::from_secs(value))
        } else {
            Err((
                format!("server.{key}"),
                format!("must be between 1 and {max} seconds, got {value}"),
            ))
        }
    };
    if !(1..=MAX_SERVER_CONNECTIONS).contains(&raw.max_connections) {
        return Err((
            "server.max_connections".into(),
            format!(
                "must be between 1 and {MAX_SERVER_CONNECTIONS}, got {}",
                raw.max_connections
            ),
        ));
    }
    Ok(ConnectionLimits {
        header_read_timeout: secs(
            "header_read_timeout_secs",
            raw.header_read_timeout_secs,
            MAX_HEADER_READ_TIMEOUT_SECS,
        )?,
        idle_timeout: secs(
            "idle_timeout_secs",
            raw.idle_timeout_secs,
            MAX_IDLE_TIMEOUT_SECS,
        )?,
        max_connections: raw.max_connections as usize,
    })
}

/// Highest rate accepted for `delivery.*_per_sec`: one message per
/// millisecond is far above any chat platform's limit.
const MAX_RATE: f64 = 1000.0;
/// Lowest rate accepted: one message per 1000 s. Below it the interval
/// between two messages soon exceeds what a duration can hold, and no
/// deployment means that.
const MIN_RATE: f64 = 0.001;
/// Most sends in flight at once.
const MAX_CONCURRENCY: u32 = 64;

fn delivery_settings(raw: &raw::RawDelivery) -> Result<DeliverySettings, (String, String)> {
    let interval = |key: &str, per_sec: f64| {
        if per_sec.is_finite() && (MIN_RATE..=MAX_RATE).contains(&per_sec) {
            Ok(std::time::Duration::from_secs_f64(1.0 / per_sec))
        } else {
            Err((
                format!("delivery.{key}"),
                format!(
                    "must be a number of messages per second from {MIN_RATE} to {MAX_RATE}, got {per_sec}"
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
