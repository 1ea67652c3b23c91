//! Validation: the raw structs read from the file and the environment
//! become [`Settings`], section by section. Every problem is the key it
//! was found at and what is wrong with it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

use super::catalogue::catalogue_from;
use super::mattermost;
use super::messages::message_settings;
use super::{
    ChatSettings, ConfigError, ConnectionLimits, DeliverySettings, ENV_PREFIX,
    MAX_CONNECT_TIMEOUT_SECS, MAX_RETENTION_DAYS, Platform, RosterEntry, ScheduleSettings,
    ServerSettings, Settings, SlackSettings, StorageSettings, WebhookFlavor, WebhookSettings, raw,
};
use crate::domain::{PersonId, default_catalogue};
use crate::schedule;
use crate::store::{StorageOptions, redact_url};

pub(super) fn validate(file: &Path, raw: raw::RawSettings) -> Result<Settings, ConfigError> {
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
        log_format: raw.log.format,
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
pub(super) fn is_http_url(url: &str) -> bool {
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
pub(super) fn check_url(url: &str) -> Result<(), &'static str> {
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

pub(super) fn secret(value: Option<SecretString>) -> Option<SecretString> {
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
        socket_mode: raw.slack.socket_mode,
        app_token: secret(raw.slack.app_token),
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
            // Socket Mode needs the app token instead of the signing secret.
            let inbound = if slack.socket_mode {
                ("app_token", &slack.app_token)
            } else {
                ("signing_secret", &slack.signing_secret)
            };
            for (key, value) in [("bot_token", &slack.bot_token), inbound] {
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
        _ if slack.socket_mode => {
            return Err((
                "chat.slack.socket_mode".into(),
                format!(
                    "needs chat.platform = \"slack\" (it is {:?})",
                    raw.platform.as_str()
                ),
            ));
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
    // The token is a secret: what is wrong is said, the value never echoed.
    if let Some(token) = &slack.app_token
        && !token.expose_secret().trim().starts_with("xapp-")
    {
        return Err((
            "chat.slack.app_token".into(),
            "is not an app-level token (it starts with xapp-; create one under Basic Information → App-Level Tokens with the connections:write scope)".into(),
        ));
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
