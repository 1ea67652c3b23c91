//! `chat.slack.team_id` / `chat.slack.app_id`: with the workspace and app
//! pinned, a correctly signed request from any other is refused with 403
//! and changes nothing, on each of Slack's three endpoints.

use serde_json::{Value, json};

use crate::helpers::{TestApp, WAIT, repo, spawn_app_with};

const TEAM: &str = "T0001";
const APP: &str = "A0001";

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/data/slack").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Runs `test` against an app pinned to [`TEAM`] and [`APP`].
async fn with_pinned_app<F, Fut>(test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    let app = spawn_app_with(
        &["U0001"],
        &[
            ("NUDGED__CHAT__SLACK__TEAM_ID", TEAM),
            ("NUDGED__CHAT__SLACK__APP_ID", APP),
        ],
        false,
    )
    .await;
    let app = tokio::time::timeout(WAIT, test(app))
        .await
        .expect("test timed out");
    app.stop().await;
}

/// Nothing was stored, and nothing is waiting to be sent.
async fn nothing_changed(app: &TestApp) {
    assert!(app.answers().await.is_empty());
    assert!(app.outbox().await.is_empty());
}

#[tokio::test]
async fn events_from_another_workspace_or_app_are_refused_and_change_nothing() {
    with_pinned_app(|app| async move {
        let mut event = fixture("message_im.json");
        for (field, value) in [("team_id", "T0OTHER"), ("api_app_id", "A0OTHER")] {
            let mut foreign = event.clone();
            foreign[field] = json!(value);
            assert_eq!(app.event(&foreign).await.status(), 403, "{field}");
            let mut unnamed = event.clone();
            unnamed.as_object_mut().unwrap().remove(field);
            assert_eq!(app.event(&unnamed).await.status(), 403, "no {field}");
        }
        nothing_changed(&app).await;

        // Slack's URL check names no workspace, and still passes.
        let check = app.event(&fixture("url_verification.json")).await;
        assert_eq!(check.status(), 200);

        // The refused event was not even marked as seen: from the pinned
        // workspace, the same event id is taken.
        event["team_id"] = json!(TEAM);
        assert_eq!(app.event(&event).await.status(), 200);
        assert_eq!(app.answers().await.len(), 7);
        app
    })
    .await;
}

#[tokio::test]
async fn clicks_from_another_workspace_or_app_are_refused_and_change_nothing() {
    with_pinned_app(|app| async move {
        let click = fixture("block_actions.json");
        let mut other_team = click.clone();
        other_team["team"]["id"] = json!("T0OTHER");
        let mut other_app = click.clone();
        other_app["api_app_id"] = json!("A0OTHER");
        let mut no_team = click.clone();
        no_team["team"] = Value::Null;
        for (name, payload) in [
            ("other team", other_team),
            ("other app", other_app),
            ("no team", no_team),
        ] {
            assert_eq!(app.interaction(&payload).await.status(), 403, "{name}");
        }
        nothing_changed(&app).await;

        assert_eq!(app.interaction(&click).await.status(), 200);
        assert_eq!(app.answers().await, ["U0001,2026-W47,decisions,3-5"]);
        app
    })
    .await;
}

#[tokio::test]
async fn commands_from_another_workspace_or_app_are_refused_and_change_nothing() {
    with_pinned_app(|app| async move {
        let join = |team: &str, api_app: &str| {
            serde_urlencoded::to_string([
                ("command", "/pulse"),
                ("text", "join"),
                ("user_id", "U0002"),
                ("channel_id", "D0002"),
                ("team_id", team),
                ("api_app_id", api_app),
            ])
            .unwrap()
        };
        let form = "application/x-www-form-urlencoded";
        for (team, api_app) in [("T0OTHER", APP), (TEAM, "A0OTHER"), ("", "")] {
            let response = app
                .post_signed("/slack/commands", form, &join(team, api_app))
                .await;
            assert_eq!(response.status(), 403, "{team:?} {api_app:?}");
        }
        let u2 = nudged::domain::PersonId::parse("U0002").unwrap();
        assert!(app.store.person(&u2).await.unwrap().is_none());

        let response = app
            .post_signed("/slack/commands", form, &join(TEAM, APP))
            .await;
        assert_eq!(response.status(), 200);
        assert!(
            app.store
                .person(&u2)
                .await
                .unwrap()
                .is_some_and(|p| p.enrolled)
        );
        app
    })
    .await;
}
