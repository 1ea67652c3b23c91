//! `[chat.mattermost]`: a Mattermost server reached with a bot account's
//! token (REST API v4 and its WebSocket), the secret that signs the
//! contexts of nudged's buttons, the slash command's token, and the
//! address Mattermost calls back for clicks.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::validate::{check_url, is_http_url, secret};
use super::{ENV_PREFIX, Platform};

/// Shortest `chat.mattermost.action_secret`, in bytes: it is an HMAC key,
/// and a short one could be guessed from signed contexts.
pub const MIN_ACTION_SECRET_LEN: usize = 16;

/// The validated `[chat.mattermost]` table. Secrets print redacted in
/// `Debug` (`SecretString`).
#[derive(Debug, Clone, Default)]
pub struct MattermostSettings {
    /// The server, e.g. `https://chat.example.com` (no trailing `/`).
    /// `https://` unless the host is loopback: the bot token travels with
    /// every call.
    pub url: String,
    /// A bot account's access token; required for the `mattermost` platform.
    pub bot_token: Option<SecretString>,
    /// Signs the context of every button nudged posts (HMAC-SHA256), since
    /// Mattermost does not sign the requests a click makes.
    pub action_secret: Option<SecretString>,
    /// The `/pulse` slash command's token, which Mattermost sends with
    /// every command.
    pub command_token: Option<SecretString>,
    /// Where Mattermost reaches nudged, e.g. `https://nudged.example.com`:
    /// buttons call `{public_url}/mattermost/actions`.
    pub public_url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMattermost {
    pub url: String,
    pub bot_token: Option<SecretString>,
    pub action_secret: Option<SecretString>,
    pub command_token: Option<SecretString>,
    pub public_url: String,
}

/// Validates `[chat.mattermost]`; every key is required when `platform` is
/// `mattermost`, and none is checked otherwise.
pub(super) fn settings(
    raw: RawMattermost,
    platform: Platform,
) -> Result<MattermostSettings, (String, String)> {
    let out = MattermostSettings {
        url: raw.url.trim().trim_end_matches('/').to_owned(),
        bot_token: secret(raw.bot_token),
        action_secret: secret(raw.action_secret),
        command_token: secret(raw.command_token),
        public_url: raw.public_url.trim().trim_end_matches('/').to_owned(),
    };
    if platform != Platform::Mattermost {
        return Ok(out);
    }
    let key = |name: &str| format!("chat.mattermost.{name}");
    let required = |name: &str| {
        (
            key(name),
            format!(
                "required when chat.platform = \"mattermost\"; set {ENV_PREFIX}__CHAT__MATTERMOST__{}",
                name.to_uppercase()
            ),
        )
    };
    for (name, value) in [("url", &out.url), ("public_url", &out.public_url)] {
        if value.is_empty() {
            return Err(required(name));
        }
    }
    check_url(&out.url).map_err(|problem| (key("url"), format!("{:?} {problem}", out.url)))?;
    // Mattermost calls this address itself, often inside one network, and
    // nothing secret travels to it: plain http is allowed.
    if !is_http_url(&out.public_url) {
        return Err((
            key("public_url"),
            format!("{:?} is not an http(s) URL with a host", out.public_url),
        ));
    }
    for (name, value) in [
        ("bot_token", &out.bot_token),
        ("action_secret", &out.action_secret),
        ("command_token", &out.command_token),
    ] {
        if value.is_none() {
            return Err(required(name));
        }
    }
    if out
        .action_secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().len() < MIN_ACTION_SECRET_LEN)
    {
        return Err((
            key("action_secret"),
            format!("must be at least {MIN_ACTION_SECRET_LEN} bytes long"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RawMattermost {
        RawMattermost {
            url: "https://chat.example.com/".into(),
            bot_token: Some("bot-s3cr3t".into()),
            action_secret: Some("action-s3cr3t-0123456789".into()),
            command_token: Some("command-s3cr3t".into()),
            public_url: "http://nudged.internal:3000".into(),
        }
    }

    #[test]
    fn a_full_table_is_read_and_its_secrets_print_redacted() {
        let s = settings(full(), Platform::Mattermost).unwrap();
        assert_eq!(s.url, "https://chat.example.com");
        assert_eq!(s.public_url, "http://nudged.internal:3000");
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    /// Loads a `config.toml` of `body` (with one schedule beside it) and
    /// the environment `env`.
    fn load(
        body: &str,
        env: &[(&str, &str)],
    ) -> Result<super::super::Settings, super::super::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("schedules")).unwrap();
        std::fs::write(
            dir.path().join("schedules/weekly.toml"),
            "name = \"weekly-checkin\"\ncron = \"0 0 16 * * THU\"\ntimezone = \"person\"\n\
             kind = \"checkin\"\nquestions = [\"decisions\"]\naudience = \"all\"\n",
        )
        .unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, body).unwrap();
        super::super::Settings::load_with_env(
            &file,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn the_secrets_come_from_the_environment_and_a_missing_one_is_named() {
        let body = "[chat]\nplatform = \"mattermost\"\n[chat.mattermost]\n\
                    url = \"https://chat.example.com\"\npublic_url = \"https://nudged.example.com\"\n";
        let env = [
            ("NUDGED__CHAT__MATTERMOST__BOT_TOKEN", "bot-s3cr3t"),
            (
                "NUDGED__CHAT__MATTERMOST__ACTION_SECRET",
                "action-s3cr3t-0123456789",
            ),
            ("NUDGED__CHAT__MATTERMOST__COMMAND_TOKEN", "command-s3cr3t"),
        ];
        let settings = load(body, &env).unwrap();
        let mm = &settings.chat.mattermost;
        assert_eq!(mm.bot_token.as_ref().unwrap().expose_secret(), "bot-s3cr3t");
        assert!(!format!("{settings:?}").contains("s3cr3t"));
        let e = load(body, &env[..2]).unwrap_err();
        assert_eq!(e.key, "chat.mattermost.command_token");
        assert!(e.file.ends_with("config.toml"), "{e}");
        let e = load("[chat.mattermost]\nbot_tokn = \"x\"\n", &[]).unwrap_err();
        assert!(
            e.to_string().contains("bot_tokn"),
            "unknown keys are refused: {e}"
        );
    }

    #[test]
    fn each_key_is_required_for_the_platform_only() {
        assert!(settings(RawMattermost::default(), Platform::Console).is_ok());
        let (key, problem) = settings(
            RawMattermost {
                command_token: None,
                ..full()
            },
            Platform::Mattermost,
        )
        .unwrap_err();
        assert_eq!(key, "chat.mattermost.command_token");
        assert!(
            problem.contains("NUDGED__CHAT__MATTERMOST__COMMAND_TOKEN"),
            "{problem}"
        );
        let (key, _) = settings(
            RawMattermost {
                url: "http://chat.example.com".into(),
                ..full()
            },
            Platform::Mattermost,
        )
        .unwrap_err();
        assert_eq!(key, "chat.mattermost.url");
        let (key, _) = settings(
            RawMattermost {
                action_secret: Some("short".into()),
                ..full()
            },
            Platform::Mattermost,
        )
        .unwrap_err();
        assert_eq!(key, "chat.mattermost.action_secret");
    }
}
