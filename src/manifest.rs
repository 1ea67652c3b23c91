//! `nudged manifest`: the Slack app manifest (JSON) that Slack's "Create
//! an app → From a manifest" accepts, so nobody sets scopes, events,
//! interactivity, the slash command and the App Home by hand.
//!
//! The scopes and events come from the constants the Slack adapter and the
//! handlers keep ([`REQUIRED_SCOPES`], [`SUBSCRIBED_EVENTS`]), so the
//! manifest asks for what nudged uses and nothing else. With a public URL
//! the request URLs point at the daemon's `/slack/…` routes; without one the
//! manifest turns Socket Mode on and has no URLs at all.

use serde_json::{Value, json};

use crate::chat::slack::REQUIRED_SCOPES;
use crate::http::payloads::SUBSCRIBED_EVENTS;

/// Longest app name Slack accepts (`display_information.name`).
pub const MAX_APP_NAME_CHARS: usize = 35;
/// Longest bot user name Slack accepts (`features.bot_user.display_name`).
pub const MAX_BOT_NAME_CHARS: usize = 80;
/// Longest short description Slack accepts (`display_information.description`).
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// The app's name unless `--name` says otherwise.
pub const DEFAULT_APP_NAME: &str = "nudged";

/// The slash command nudged answers.
pub const SLASH_COMMAND: &str = "/pulse";

/// What the manifest says about the app.
const DESCRIPTION: &str = "Weekly two-minute check-ins, your own trend, and one well-timed nudge.";

/// What Slack shows under `/pulse` while typing it.
const USAGE_HINT: &str = "help | now | trend | pause 2w | resume | join | leave | export | forget";

/// The manifest for an app called `name`, receiving over HTTP at
/// `public_url` (`https://HOST[/PREFIX]`), or over Socket Mode when `None`.
/// Fails with a one-line problem for a name or URL Slack would refuse.
pub fn build(name: &str, public_url: Option<&str>) -> Result<Value, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_APP_NAME_CHARS {
        return Err(format!(
            "--name must be 1 to {MAX_APP_NAME_CHARS} characters (Slack's limit for an app name)"
        ));
    }
    let base = public_url.map(check_public_url).transpose()?;
    let url = |path: &str| base.as_ref().map(|base| format!("{base}{path}"));
    let scopes: Vec<&str> = REQUIRED_SCOPES.iter().map(|(scope, _)| *scope).collect();
    let events: Vec<&str> = SUBSCRIBED_EVENTS.iter().map(|(event, _)| *event).collect();

    let mut command = json!({
        "command": SLASH_COMMAND,
        "description": "Check in now, see your trend, pause or leave",
        "usage_hint": USAGE_HINT,
        "should_escape": false,
    });
    let mut event_subscriptions = json!({ "bot_events": events });
    let mut interactivity = json!({ "is_enabled": true });
    if let Some(base) = &base {
        command["url"] = json!(format!("{base}/slack/commands"));
        event_subscriptions["request_url"] = json!(url("/slack/events"));
        interactivity["request_url"] = json!(url("/slack/interactions"));
    }
    Ok(json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": name,
            "description": DESCRIPTION,
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": true,
                "messages_tab_enabled": true,
                "messages_tab_read_only_enabled": false,
            },
            "bot_user": {
                "display_name": name.chars().take(MAX_BOT_NAME_CHARS).collect::<String>(),
                "always_online": true,
            },
            "slash_commands": [command],
        },
        "oauth_config": { "scopes": { "bot": scopes } },
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": base.is_none(),
            "token_rotation_enabled": false,
        },
    }))
}

/// `https://HOST[/PREFIX]` without a query or fragment, returned without
/// its trailing slash. Slack calls request URLs over HTTPS only.
fn check_public_url(url: &str) -> Result<String, String> {
    let problem = || format!("--url {url:?} must be https://HOST or https://HOST/PREFIX");
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| problem())?;
    if parsed.scheme() != "https"
        || parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(problem());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_the_request_urls_and_no_url_means_socket_mode() {
        let http = build("nudged", Some("https://nudged.example.com/")).unwrap();
        assert_eq!(
            http["settings"]["event_subscriptions"]["request_url"],
            "https://nudged.example.com/slack/events"
        );
        assert_eq!(
            http["settings"]["interactivity"]["request_url"],
            "https://nudged.example.com/slack/interactions"
        );
        assert_eq!(
            http["features"]["slash_commands"][0]["url"],
            "https://nudged.example.com/slack/commands"
        );
        assert_eq!(http["settings"]["socket_mode_enabled"], false);

        let socket = build("nudged", None).unwrap();
        assert_eq!(socket["settings"]["socket_mode_enabled"], true);
        assert!(!socket.to_string().contains("://"), "no URL at all");
    }

    #[test]
    fn names_and_urls_slack_would_refuse_are_refused() {
        assert!(build("", None).is_err());
        assert!(build(&"n".repeat(MAX_APP_NAME_CHARS + 1), None).is_err());
        assert!(build(&"n".repeat(MAX_APP_NAME_CHARS), None).is_ok());
        for bad in [
            "http://nudged.example.com",
            "nudged.example.com",
            "https://",
            "https://h.example.com/?x=1",
            "https://user@h.example.com",
        ] {
            let e = build("nudged", Some(bad)).unwrap_err();
            assert!(e.contains("--url"), "{bad}: {e}");
        }
    }
}
