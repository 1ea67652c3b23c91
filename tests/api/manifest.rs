//! `nudged manifest`: a manifest Slack accepts (the fields and limits of
//! Slack's manifest schema, version 1), asking for exactly the scopes and
//! events nudged uses, as the real adapter and handlers show against the
//! fake Slack.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{TestEnv, WAIT, repo, slack_chat, spawn_app_with};

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/data/slack").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn manifest(args: &[&str]) -> Value {
    let mut all = vec!["manifest"];
    all.extend_from_slice(args);
    serde_json::from_str(&TestEnv::new().ok(&all)).expect("the manifest is JSON")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

/// `object`'s keys are among `allowed` (the schema allows no others).
fn keys_within(object: &Value, allowed: &[&str]) {
    for key in object.as_object().expect("an object").keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "{key} is not in Slack's schema"
        );
    }
}

fn chars_within(value: &Value, min: usize, max: usize) {
    let n = value.as_str().expect("a string").chars().count();
    assert!(
        (min..=max).contains(&n),
        "{value} has {n} characters, not {min}..={max}"
    );
}

/// The fields and limits of Slack's manifest schema (v1) that nudged's
/// manifest touches.
fn check_schema(m: &Value) {
    keys_within(
        m,
        &[
            "_metadata",
            "display_information",
            "features",
            "oauth_config",
            "settings",
        ],
    );
    assert_eq!(m["_metadata"]["major_version"], 1);
    let display = &m["display_information"];
    keys_within(
        display,
        &[
            "name",
            "description",
            "background_color",
            "long_description",
        ],
    );
    chars_within(&display["name"], 1, 35);
    chars_within(&display["description"], 1, 140);
    let color = display["background_color"].as_str().unwrap();
    assert!(
        color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit())
    );

    let features = &m["features"];
    keys_within(
        features,
        &[
            "app_home",
            "bot_user",
            "slash_commands",
            "shortcuts",
            "unfurl_domains",
        ],
    );
    keys_within(
        &features["app_home"],
        &[
            "home_tab_enabled",
            "messages_tab_enabled",
            "messages_tab_read_only_enabled",
        ],
    );
    assert_eq!(features["app_home"]["home_tab_enabled"], true);
    assert_eq!(
        features["app_home"]["messages_tab_enabled"], true,
        "people answer in the DM"
    );
    assert_eq!(
        features["app_home"]["messages_tab_read_only_enabled"],
        false
    );
    keys_within(&features["bot_user"], &["display_name", "always_online"]);
    chars_within(&features["bot_user"]["display_name"], 1, 80);
    let commands = features["slash_commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    let pulse = &commands[0];
    keys_within(
        pulse,
        &[
            "command",
            "url",
            "description",
            "usage_hint",
            "should_escape",
        ],
    );
    assert_eq!(pulse["command"], "/pulse");
    chars_within(&pulse["command"], 2, 32);
    chars_within(&pulse["description"], 1, 2000);
    chars_within(&pulse["usage_hint"], 1, 1000);

    keys_within(&m["oauth_config"], &["scopes", "redirect_urls"]);
    keys_within(&m["oauth_config"]["scopes"], &["bot", "user"]);
    for scope in strings(&m["oauth_config"]["scopes"]["bot"]) {
        assert!(scope.len() <= 50);
    }
    let settings = &m["settings"];
    keys_within(
        settings,
        &[
            "event_subscriptions",
            "interactivity",
            "org_deploy_enabled",
            "socket_mode_enabled",
            "token_rotation_enabled",
        ],
    );
    keys_within(
        &settings["event_subscriptions"],
        &["request_url", "bot_events"],
    );
    let events = strings(&settings["event_subscriptions"]["bot_events"]);
    assert_eq!(
        events.len(),
        events.iter().collect::<BTreeSet<_>>().len(),
        "unique"
    );
    assert!(events.iter().all(|e| e.len() <= 50));
    keys_within(&settings["interactivity"], &["is_enabled", "request_url"]);
    assert_eq!(settings["interactivity"]["is_enabled"], true, "buttons");
    for url in [
        &settings["event_subscriptions"]["request_url"],
        &settings["interactivity"]["request_url"],
        &pulse["url"],
    ] {
        if let Some(url) = url.as_str() {
            assert!(url.starts_with("https://") && url.len() <= 3000, "{url}");
        }
    }
}

#[test]
fn without_a_url_the_manifest_turns_on_socket_mode_and_has_no_urls() {
    let m = manifest(&[]);
    check_schema(&m);
    assert_eq!(m["display_information"]["name"], "nudged");
    assert_eq!(m["settings"]["socket_mode_enabled"], true);
    assert!(!m.to_string().contains("https://"), "{m}");
}

#[test]
fn with_a_url_slack_is_sent_to_the_daemons_routes() {
    let m = manifest(&[
        "--url",
        "https://nudged.example.com/team-a/",
        "--name",
        "Team pulse",
    ]);
    check_schema(&m);
    assert_eq!(m["display_information"]["name"], "Team pulse");
    assert_eq!(m["settings"]["socket_mode_enabled"], false);
    assert_eq!(
        m["settings"]["event_subscriptions"]["request_url"],
        "https://nudged.example.com/team-a/slack/events"
    );
    assert_eq!(
        m["settings"]["interactivity"]["request_url"],
        "https://nudged.example.com/team-a/slack/interactions"
    );
    assert_eq!(
        m["features"]["slash_commands"][0]["url"],
        "https://nudged.example.com/team-a/slack/commands"
    );

    let env = TestEnv::new();
    let wrong = env.fails(&["manifest", "--url", "http://nudged.example.com"]);
    assert!(
        wrong.contains("--url") && wrong.contains("https://"),
        "{wrong}"
    );
    let long = env.fails(&["manifest", "--name", &"n".repeat(36)]);
    assert!(long.contains("35"), "{long}");
}

/// The event fixture that shows each subscribed event at work.
fn event_for(name: &str) -> Value {
    match name {
        "message.im" => fixture("message_im.json"),
        "app_home_opened" => fixture("app_home_opened.json"),
        other => panic!("the manifest subscribes to {other}: add a fixture and a handler for it"),
    }
}

#[tokio::test]
async fn the_manifest_asks_for_the_scopes_and_events_nudged_uses_and_no_others() {
    let m = manifest(&[]);
    let asked: BTreeSet<String> = strings(&m["oauth_config"]["scopes"]["bot"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    let events: Vec<String> = strings(&m["settings"]["event_subscriptions"]["bot_events"])
        .into_iter()
        .map(str::to_owned)
        .collect();

    tokio::time::timeout(WAIT, async {
        // Everything nudged does with Slack: a check-in posted, a click
        // redrawing it, each subscribed event, a profile's zone read, the
        // online check's auth.test.
        let mut app = spawn_app_with(&["U0001"], &[], true).await;
        app.deliver().await;
        assert_eq!(
            app.interaction(&fixture("block_actions.json"))
                .await
                .status(),
            200
        );
        for event in &events {
            let before = app.outbox().await.len();
            assert_eq!(app.event(&event_for(event)).await.status(), 200);
            assert!(app.outbox().await.len() > before, "{event} is handled");
        }
        // Past each channel's pacing slot, until everything is sent.
        for _ in 0..5 {
            app.clock.advance(chrono::Duration::seconds(2));
            app.deliver().await;
        }
        let adapter = slack_chat(&app.slack);
        use nudged::chat::ChatApi;
        adapter
            .user_tz(&nudged::domain::PersonId::parse("U0001").unwrap())
            .await
            .ok();
        adapter.auth_test().await.expect("auth.test");

        let methods: BTreeSet<String> =
            app.slack.received().into_iter().map(|c| c.method).collect();
        let mut used = BTreeSet::new();
        for method in &methods {
            let scope = nudged::chat::slack::method_scope(method).expect("a known method");
            used.extend(scope.map(str::to_owned));
        }
        for event in &events {
            let (_, scope) = nudged::http::payloads::SUBSCRIBED_EVENTS
                .iter()
                .find(|(e, _)| e == event)
                .expect("a subscribed event");
            used.extend(scope.map(str::to_owned));
        }
        // `/pulse`, which the manifest declares.
        assert_eq!(m["features"]["slash_commands"][0]["command"], "/pulse");
        used.insert(nudged::chat::slack::COMMANDS_SCOPE.to_owned());

        assert_eq!(
            methods,
            [
                "auth.test",
                "chat.postMessage",
                "chat.update",
                "users.info",
                "views.publish"
            ]
            .map(str::to_owned)
            .into(),
            "every method nudged calls was called"
        );
        assert_eq!(
            asked, used,
            "the manifest asks for what nudged uses, no more, no less"
        );
        app.stop().await;
    })
    .await
    .expect("test timed out");
}
