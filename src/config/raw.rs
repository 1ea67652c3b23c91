//! The configuration exactly as written: strict serde structs with defaults,
//! read through the `config` crate (file, then environment). Nothing here
//! is validated beyond types; see [`super::validate`].

use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, ENV_PREFIX, ENV_SEPARATOR, Platform};
use crate::model::Params;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub chat: RawChat,
    #[serde(default)]
    pub schedules: RawSchedules,
    #[serde(default)]
    pub delivery: RawDelivery,
    #[serde(default)]
    pub model: Params,
    #[serde(default)]
    pub messages: RawMessages,
    /// Replaces the built-in catalogue when present.
    #[serde(default)]
    pub questions: Option<Vec<RawQuestion>>,
    #[serde(default)]
    pub people: Vec<RawPerson>,
    #[serde(default)]
    pub log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    pub format: super::LogFormat,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawServer {
    pub bind: String,
    pub readyz_max_outbox_lag_secs: u64,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: u32,
}

impl Default for RawServer {
    fn default() -> Self {
        let limits = super::ConnectionLimits::default();
        Self {
            bind: "127.0.0.1:3000".into(),
            readyz_max_outbox_lag_secs: super::DEFAULT_MAX_OUTBOX_LAG.as_secs(),
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
            max_connections: limits.max_connections as u32,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStorage {
    pub url: String,
    /// Unset: the engine's default (SQLite 2 readers beside its one writer, PostgreSQL 10).
    pub max_connections: Option<u32>,
    pub connect_timeout_secs: u64,
    pub retention_days: u32,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            url: "sqlite://data/nudged.db".into(),
            max_connections: None,
            connect_timeout_secs: crate::store::DEFAULT_CONNECT_TIMEOUT.as_secs(),
            retention_days: super::DEFAULT_RETENTION_DAYS,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChat {
    #[serde(default = "default_platform")]
    pub platform: Platform,
    #[serde(default)]
    pub slack: RawSlack,
    #[serde(default)]
    pub webhook: RawWebhook,
    #[serde(default)]
    pub mattermost: super::mattermost::RawMattermost,
}

fn default_platform() -> Platform {
    Platform::Console
}

impl Default for RawChat {
    fn default() -> Self {
        Self {
            platform: default_platform(),
            slack: RawSlack::default(),
            webhook: RawWebhook::default(),
            mattermost: Default::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSlack {
    pub bot_token: Option<SecretString>,
    pub signing_secret: Option<SecretString>,
    pub api_base_url: String,
    pub team_id: Option<String>,
    pub app_id: Option<String>,
    pub socket_mode: bool,
    pub app_token: Option<SecretString>,
}

impl Default for RawSlack {
    fn default() -> Self {
        Self {
            bot_token: None,
            signing_secret: None,
            api_base_url: "https://slack.com/api".into(),
            team_id: None,
            app_id: None,
            socket_mode: false,
            app_token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawWebhook {
    pub url: Option<SecretString>,
    /// Read by [`super::WebhookFlavor::parse`], which names the choices.
    pub flavor: String,
}

impl Default for RawWebhook {
    fn default() -> Self {
        Self {
            url: None,
            flavor: "slack".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSchedules {
    pub dir: String,
    pub grace_hours: u32,
}

impl Default for RawSchedules {
    fn default() -> Self {
        Self {
            dir: "schedules".into(),
            grace_hours: 24,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMessages {
    pub nudge_title: String,
    pub nudge_body: String,
    pub nudge_next_step: String,
    pub nudge_timing: String,
    pub nudge_timing_released: String,
    pub nudge_timing_unknown: String,
    pub training_name: Option<String>,
    pub training_url: Option<String>,
}

impl Default for RawMessages {
    fn default() -> Self {
        Self {
            nudge_title: super::DEFAULT_NUDGE_TITLE.into(),
            nudge_body: super::DEFAULT_NUDGE_BODY.into(),
            nudge_next_step: super::DEFAULT_NUDGE_NEXT_STEP.into(),
            nudge_timing: super::DEFAULT_NUDGE_TIMING.into(),
            nudge_timing_released: super::DEFAULT_NUDGE_TIMING_RELEASED.into(),
            nudge_timing_unknown: super::DEFAULT_NUDGE_TIMING_UNKNOWN.into(),
            training_name: None,
            training_url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDelivery {
    pub per_channel_per_sec: f64,
    pub global_per_sec: f64,
    pub concurrency: u32,
    pub lease_secs: u32,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            per_channel_per_sec: 1.0,
            global_per_sec: 5.0,
            concurrency: 4,
            lease_secs: 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuestion {
    pub id: String,
    pub text: String,
    pub options: Vec<RawOption>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOption {
    pub key: String,
    pub label: Option<String>,
    pub score: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerson {
    pub id: String,
    pub name: Option<String>,
    pub tz: Option<String>,
}

/// Reads `path` and the `NUDGED__…` variables of `env` into [`RawSettings`].
pub(super) fn read(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<RawSettings, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::new(
            path,
            "",
            "no such config file (pass --config PATH)",
        ));
    }
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    // `NUDGED__` alone or `NUDGED__SERVER____BIND` sets a key with an empty
    // part, which the config crate reports as an unknown key with no name.
    if let Some(name) = env
        .keys()
        .find(|k| k[prefix.len()..].split(ENV_SEPARATOR).any(str::is_empty))
    {
        return Err(ConfigError::new(
            path,
            name.as_str(),
            format!(
                "this environment variable names no key (a part between {ENV_SEPARATOR} is empty); \
                 write {prefix}SECTION{ENV_SEPARATOR}KEY, e.g. {prefix}SERVER{ENV_SEPARATOR}BIND"
            ),
        ));
    }
    let from_env: Vec<&str> = env.keys().map(|k| &k[prefix.len()..]).collect();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the file: {e}")))?;
    // The roster is read table by table (see `roster`), the rest as a whole.
    let split = super::roster::split(path, &text)?;
    drop(text);
    let built = Config::builder()
        .add_source(File::from_str(&split.rest, FileFormat::Toml))
        .add_source(
            // Values stay strings (no `try_parsing`): serde converts them to
            // the type each key needs, so a token of digits stays a string.
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .source(Some(env.clone())),
        )
        .build()
        .map_err(|e| from_config_error(path, e, &from_env))?;
    let mut raw: RawSettings = built
        .try_deserialize()
        .map_err(|e| from_config_error(path, e, &from_env))?;
    if !split.people.is_empty() {
        if !raw.people.is_empty() {
            return Err(ConfigError::new(
                path,
                "people",
                "given both as [[people]] tables and as a value; keep one",
            ));
        }
        raw.people = split.people;
    }
    Ok(raw)
}

/// Turns the `config` crate's error into our one-line `file: key: problem`.
/// `env_keys` are the `NUDGED__` variables' names without the prefix.
fn from_config_error(path: &Path, error: config::ConfigError, env_keys: &[&str]) -> ConfigError {
    let (key, problem, from_env) = describe(error);
    // An unknown key is reported without its origin: it came from the
    // environment if a variable sets exactly that key.
    let from_env = from_env
        || env_keys
            .iter()
            .any(|k| k.to_lowercase().replace(ENV_SEPARATOR, ".") == key);
    let problem = if from_env && !key.is_empty() {
        format!(
            "{problem} (set by {ENV_PREFIX}{ENV_SEPARATOR}{})",
            key.replace('.', ENV_SEPARATOR).to_uppercase()
        )
    } else {
        problem
    };
    ConfigError::new(path, key, problem)
}

/// Returns (key, problem, whether the value came from the environment).
fn describe(error: config::ConfigError) -> (String, String, bool) {
    use config::ConfigError as E;
    match error {
        E::Type {
            origin,
            unexpected,
            expected,
            key,
        } => (
            key.unwrap_or_default(),
            format!("expected {expected}, found {unexpected}"),
            origin.as_deref() == Some("the environment"),
        ),
        E::At { error, key, origin } => {
            let (inner_key, problem, from_env) = describe(*error);
            let key = key.unwrap_or_default();
            let from_env = from_env || origin.as_deref() == Some("the environment");
            // serde reports an unknown key as a message at its parent.
            if let Some(field) = unknown_field(&problem) {
                let full = join(&key, &field);
                return (
                    full,
                    "unknown key".to_owned() + &expected_suffix(&problem),
                    from_env,
                );
            }
            let full = if inner_key.is_empty() {
                key
            } else {
                join(&key, &inner_key)
            };
            (full, problem, from_env)
        }
        E::NotFound(key) => (key, "is required".into(), false),
        E::FileParse { cause, .. } => (String::new(), format!("not valid TOML: {cause}"), false),
        E::Message(message) => match unknown_field(&message) {
            Some(field) => (
                field,
                "unknown key".to_owned() + &expected_suffix(&message),
                false,
            ),
            None => (String::new(), message, false),
        },
        other => (String::new(), other.to_string(), false),
    }
}

fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.starts_with('[')) {
        (true, _) => child.to_owned(),
        (false, true) => format!("{parent}{child}"),
        (false, false) => format!("{parent}.{child}"),
    }
}

/// The key serde's `message` names as unknown.
pub(super) fn unknown_field(message: &str) -> Option<String> {
    backticked(message, "unknown field `")
}

/// The name in `` prefix`name` `` at the start of serde's `message`.
pub(super) fn backticked(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// `; expected …` from serde's `message`, or nothing.
pub(super) fn expected_suffix(message: &str) -> String {
    match message.find("expected ") {
        Some(at) => format!("; {}", &message[at..]),
        None => String::new(),
    }
}
