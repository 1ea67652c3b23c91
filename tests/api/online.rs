//! `nudged check --online` against the fake Slack: the workspace and bot
//! named, a missing scope or a refused token named with what to do, and
//! Socket Mode tried with the app token.

use crate::fake_slack::{FakeSlack, Reply};
use crate::helpers::{BOT_TOKEN, SIGNING_SECRET, TestEnv, WAIT};

/// The real binary's `check --online` on the slack platform, against
/// `slack`, with more `NUDGED__…` settings.
fn check_online(
    env: &TestEnv,
    slack: &FakeSlack,
    vars: &[(&str, &str)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::from(env.command(&["check", "--online"]));
    command
        .env("NUDGED__CHAT__PLATFORM", "slack")
        .env("NUDGED__CHAT__SLACK__BOT_TOKEN", BOT_TOKEN)
        .env("NUDGED__CHAT__SLACK__SIGNING_SECRET", SIGNING_SECRET)
        .env("NUDGED__CHAT__SLACK__API_BASE_URL", &slack.base_url)
        .envs(vars.iter().copied())
        .kill_on_drop(true);
    command
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn outcome(mut command: tokio::process::Command) -> Outcome {
    let out = tokio::time::timeout(WAIT, command.output())
        .await
        .expect("check --online finished in time")
        .expect("run nudged");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[tokio::test]
async fn check_online_names_the_workspace_the_bot_and_a_missing_scope() {
    let env = TestEnv::new();
    let slack = FakeSlack::start().await;
    let ok = outcome(check_online(&env, &slack, &[])).await;
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("workspace Acme (T0001), bot user nudged (U0BOT)"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout.contains("every scope nudged needs is granted"),
        "{}",
        ok.stdout
    );

    slack.grant_scopes("chat:write,im:history,commands");
    let missing = outcome(check_online(&env, &slack, &[])).await;
    assert_eq!(missing.code, Some(1));
    let problems: Vec<&str> = missing
        .stderr
        .lines()
        .filter(|l| l.starts_with("problem:"))
        .collect();
    assert_eq!(problems.len(), 1, "{}", missing.stderr);
    assert!(
        problems[0].contains("users:read") && problems[0].contains("reinstall"),
        "{}",
        problems[0]
    );
    assert!(!missing.stderr.contains(BOT_TOKEN), "never the token");

    slack.script([Reply::Error("invalid_auth")]);
    let refused = outcome(check_online(&env, &slack, &[])).await;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("invalid_auth") && refused.stderr.contains("xoxb-"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn check_online_opens_a_socket_mode_connection_with_the_app_token() {
    let env = TestEnv::new();
    let mut slack = FakeSlack::start().await;
    let vars = [
        ("NUDGED__CHAT__SLACK__SOCKET_MODE", "true"),
        ("NUDGED__CHAT__SLACK__APP_TOKEN", "xapp-1-A0001-1-abc"),
    ];
    let child = tokio::spawn(outcome(check_online(&env, &slack, &vars)));
    let mut connection = slack.next_connection().await;
    connection.hello().await;
    let ok = child.await.unwrap();
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout.contains("Socket Mode connection opened"),
        "{}",
        ok.stdout
    );
}

#[tokio::test]
async fn check_online_reaches_the_webhook_host_and_posts_nothing() {
    let env = TestEnv::new();
    let mut hook =
        crate::fake_webhook::FakeWebhook::start(nudged::config::WebhookFlavor::Slack).await;
    let run = |url: String| {
        let mut command = tokio::process::Command::from(env.command(&["check", "--online"]));
        command
            .env("NUDGED__CHAT__PLATFORM", "webhook")
            .env("NUDGED__CHAT__WEBHOOK__URL", url)
            .kill_on_drop(true);
        outcome(command)
    };
    let ok = run(hook.url.clone()).await;
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("webhook: 127.0.0.1 resolves and answers"),
        "{}",
        ok.stdout
    );
    assert!(
        !ok.stdout.contains("/hooks/"),
        "the secret path is never shown"
    );
    assert!(hook.received().is_empty(), "nothing is posted");

    // Nothing listens there any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = run(format!("http://{closed}/hooks/secret-key")).await;
    assert_eq!(down.code, Some(1));
    assert!(
        down.stderr
            .contains("problem: webhook: 127.0.0.1 does not answer"),
        "{}",
        down.stderr
    );
    assert!(!down.stderr.contains("secret-key"), "{}", down.stderr);
}
