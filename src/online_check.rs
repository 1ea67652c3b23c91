//! `nudged check --online`: asks the chat platform whether the configured
//! credentials work, before the first check-in finds out.
//!
//! Slack: `auth.test` with the bot token names the workspace and the bot
//! user, and its `x-oauth-scopes` header the scopes granted, which must
//! include every one of [`REQUIRED_SCOPES`]; with Socket Mode on, the app
//! token must open a connection that Slack greets with `hello`. Webhook:
//! nothing is posted; the URL's host must resolve and answer over TLS.
//! Each problem is one line saying what to do; any problem fails the check.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::bail;
use secrecy::ExposeSecret;

use crate::chat::ChatError;
use crate::chat::SlackChat;
use crate::chat::slack::REQUIRED_SCOPES;
use crate::config::{Platform, Settings};

/// How long the webhook host may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the checks for the configured platform, printing what was found;
/// fails naming how many problems there were (each printed on stderr).
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let mut found = String::new();
    let problems = match settings.chat.platform {
        Platform::Slack => slack(settings, &mut found).await,
        Platform::Webhook => webhook(settings, &mut found).await,
        Platform::Mattermost => mattermost(settings, &mut found).await,
        Platform::Console => {
            let _ = writeln!(found, "online: the console platform has nothing to check");
            Vec::new()
        }
    };
    print!("{found}");
    for problem in &problems {
        eprintln!("problem: {problem}");
    }
    match problems.len() {
        0 => Ok(()),
        1 => bail!("the online check found 1 problem"),
        n => bail!("the online check found {n} problems"),
    }
}

/// What Slack says of a failed call, with what to do about it.
fn slack_problem(what: &str, error: &ChatError, fix: &str) -> String {
    match error {
        ChatError::Permanent { code } => format!("{what}: Slack answered {code}; {fix}"),
        other => format!("{what}: {other}; is chat.slack.api_base_url reachable?"),
    }
}

async fn slack(settings: &Settings, found: &mut String) -> Vec<String> {
    let slack = &settings.chat.slack;
    let mut problems = Vec::new();
    // Validated config: the slack platform has a bot token.
    let Some(token) = &slack.bot_token else {
        return vec!["chat.slack.bot_token is not set".to_owned()];
    };
    let client = match SlackChat::new(&slack.api_base_url, token) {
        Ok(client) => client,
        Err(e) => return vec![format!("chat.slack.bot_token: {e}")],
    };
    match client.auth_test().await {
        Ok(auth) => {
            let _ = writeln!(
                found,
                "slack: workspace {} ({}), bot user {} ({})",
                auth.team, auth.team_id, auth.user, auth.user_id
            );
            match &auth.scopes {
                Some(granted) => {
                    for (scope, serves) in REQUIRED_SCOPES {
                        if !granted.contains(*scope) {
                            problems.push(format!(
                                "slack: the bot token lacks the scope {scope} ({serves}); add it under OAuth & Permissions → Bot Token Scopes (or recreate the app from `nudged manifest`) and reinstall the app"
                            ));
                        }
                    }
                    if problems.is_empty() {
                        let _ = writeln!(found, "slack: every scope nudged needs is granted");
                    }
                }
                None => {
                    let _ = writeln!(found, "slack: Slack did not list the token's scopes");
                }
            }
        }
        Err(e) => problems.push(slack_problem(
            "slack: auth.test with chat.slack.bot_token",
            &e,
            "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions again",
        )),
    }
    if slack.socket_mode {
        match crate::socket_mode::probe(settings).await {
            Ok(()) => {
                let _ = writeln!(found, "slack: Socket Mode connection opened (hello received)");
            }
            Err(e) => problems.push(format!(
                "slack: Socket Mode with chat.slack.app_token: {e:#}; check that Socket Mode is on under Settings → Socket Mode and that the app-level token has connections:write"
            )),
        }
    }
    problems
}

/// Mattermost: the bot token reads the bot's own account (what every send
/// needs first); nothing is posted.
async fn mattermost(settings: &Settings, found: &mut String) -> Vec<String> {
    let client = match crate::chat::MattermostChat::from_settings(&settings.chat.mattermost) {
        Ok(client) => client,
        Err(e) => return vec![format!("mattermost: {e:#}")],
    };
    match client.bot_user_id().await {
        Ok(id) => {
            let _ = writeln!(
                found,
                "mattermost: the bot token is accepted (bot user {id})"
            );
            Vec::new()
        }
        Err(e) => vec![format!(
            "mattermost: GET /api/v4/users/me with chat.mattermost.bot_token failed: {e}; \
             check chat.mattermost.url and that the bot account and its token are enabled"
        )],
    }
}

async fn webhook(settings: &Settings, found: &mut String) -> Vec<String> {
    let Some(url) = &settings.chat.webhook.url else {
        return vec!["chat.webhook.url is not set".to_owned()];
    };
    // The URL is a secret: only its scheme and host are shown or used.
    let Ok(parsed) = reqwest::Url::parse(url.expose_secret()) else {
        return vec!["chat.webhook.url is not a URL".to_owned()];
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return vec!["chat.webhook.url has no host".to_owned()];
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let resolved = tokio::net::lookup_host((host.as_str(), port))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some());
    match resolved {
        true => {}
        false => {
            return vec![format!(
                "webhook: the host {host} does not resolve; check chat.webhook.url"
            )];
        }
    }
    // A request to the host's root: it posts nothing, and any answer shows
    // that the host speaks HTTP (over TLS, for https).
    let origin = format!("{}://{host}:{port}/", parsed.scheme());
    let client = match crate::chat::http_client(WEBHOOK_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => return vec![format!("webhook: cannot build an HTTP client: {e}")],
    };
    match client.head(&origin).send().await {
        Ok(_) => {
            let _ = writeln!(
                found,
                "webhook: {host} resolves and answers {}",
                if parsed.scheme() == "https" {
                    "over TLS"
                } else {
                    "HTTP"
                }
            );
            Vec::new()
        }
        Err(e) => vec![format!(
            "webhook: {host} does not answer: {}; check chat.webhook.url and the network",
            e.without_url()
        )],
    }
}
