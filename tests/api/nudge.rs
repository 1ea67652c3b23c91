//! The readiness nudge as a person receives and answers it, over real
//! HTTP: what it says (the training, the timing, the reasons), and what
//! each of its buttons does when clicked — signed as Slack signs it, stored
//! before the acknowledgement, shown on the nudge, in `/pulse trend` and in
//! the metrics.

use chrono::Duration;
use nudged::domain::{IsoWeek, NudgeResponse, OptionKey, PersonId};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WAIT, spawn_app_with, strong_history};

fn pid(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

/// The week of the app's clock.
fn this_week(app: &TestApp) -> IsoWeek {
    use nudged::clock::Clock;
    IsoWeek::of(app.clock.now().date_naive())
}

/// Gives `person` a sustained history up to this week and re-assesses them,
/// as a trend post would; returns whether a nudge was queued.
async fn reassess(app: &TestApp, person: &str) -> bool {
    use nudged::clock::Clock;
    let now = app.clock.now();
    app.store
        .import_answers(&strong_history(person, this_week(app), 16, "yes"), now)
        .await
        .unwrap();
    let row = app.store.person(&pid(person)).await.unwrap().unwrap();
    nudged::service::readiness::reassess(&app.settings, app.store.as_ref(), &row, now, None)
        .await
        .unwrap()
        .nudged
}

/// Delivers the outbox and returns the nudge posted to `person`, with the
/// channel and timestamp it landed at.
async fn posted_nudge(app: &mut TestApp) -> Value {
    app.deliver().await;
    let posts: Vec<Value> = app
        .slack
        .received()
        .into_iter()
        .filter(|c| c.method == "chat.postMessage")
        .map(|c| c.body)
        .filter(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Your role has grown"))
        })
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    posts.into_iter().next().unwrap()
}

/// The app with one person who has just been sent their nudge.
async fn nudged_app(overrides: &[(&str, &str)]) -> (TestApp, Value) {
    let mut app = spawn_app_with(&["U0001", "U0002"], overrides, false).await;
    assert!(reassess(&app, "U0001").await);
    let nudge = posted_nudge(&mut app).await;
    (app, nudge)
}

/// The value of the nudge's button for `response`.
fn button(nudge: &Value, response: &str) -> String {
    let row = nudge["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block_id"] == "nudge:answer")
        .expect("a row of answer buttons");
    row["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["action_id"] == format!("nudge:{response}"))
        .expect("the button")["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A click by `user` on the button with `value`, on the nudge posted in
/// the DM, at Slack's `action_ts`.
fn click(user: &str, value: &str, action_ts: &str) -> Value {
    // As the button was drawn: its action id names its answer.
    let response = value.split('|').nth(2).unwrap_or_default();
    json!({
        "type": "block_actions",
        "user": { "id": user },
        "container": { "type": "message", "message_ts": "1763568001.000100", "channel_id": "D0001" },
        "channel": { "id": "D0001" },
        "actions": [{
            "action_id": format!("nudge:{response}"),
            "block_id": "nudge:answer",
            "value": value,
            "type": "button",
            "action_ts": action_ts,
        }],
    })
}

/// The stored answer to U0001's nudge(s), newest last.
async fn responses(app: &TestApp) -> Vec<Option<NudgeResponse>> {
    app.store
        .nudges(&pid("U0001"))
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.response)
        .collect()
}

/// The `chat.update` calls the fake Slack received.
fn updates(app: &mut TestApp) -> Vec<Value> {
    app.slack
        .received()
        .into_iter()
        .filter(|c| c.method == "chat.update")
        .map(|c| c.body)
        .collect()
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn within_time<T>(test: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, test)
        .await
        .expect("test timed out")
}

fn text_of(message: &Value) -> String {
    serde_json::to_string(&message["blocks"]).unwrap()
}

#[tokio::test]
async fn the_nudge_names_the_training_it_is_about_and_links_it() {
    within_time(async {
        let (app, nudge) = nudged_app(&[
            (
                "NUDGED__MESSAGES__TRAINING_NAME",
                "the CSPO course of our academy",
            ),
            (
                "NUDGED__MESSAGES__TRAINING_URL",
                "https://learning.example.com/cspo",
            ),
        ])
        .await;
        assert_eq!(nudge["channel"], "U0001");
        let text = text_of(&nudge);
        assert!(
            text.contains(
                "structured product-owner training, such as the CSPO course of our academy,"
            ),
            "{text}"
        );
        assert!(text.contains("not as a shortcut or a credential"), "{text}");
        assert!(
            text.contains("You said you have room to learn this month"),
            "{text}"
        );
        assert!(
            text.contains(
                "you made 3 or more priority calls others acted on in 8 of the last 8 weeks"
            ),
            "{text}"
        );
        assert!(
            text.contains("the same product 16 of the last 16 weeks"),
            "{text}"
        );
        let link = nudge["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|b| b["accessory"]["url"].as_str())
            .unwrap();
        assert_eq!(link, "https://learning.example.com/cspo");
        for response in ["interested", "not-now", "not-for-me"] {
            assert_eq!(
                button(&nudge, response),
                format!("n1|2026-W47|{response}|U0001")
            );
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn without_a_training_configured_the_nudge_names_the_kind_and_links_nothing() {
    within_time(async {
        let (app, nudge) = nudged_app(&[]).await;
        let text = text_of(&nudge);
        assert!(
            text.contains("such as a Certified Scrum Product Owner (CSPO) course"),
            "{text}"
        );
        assert!(!text.contains("\"url\""), "{text}");
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn interested_is_stored_shown_on_the_nudge_and_in_the_trend_and_counted() {
    within_time(async {
        let (mut app, nudge) = nudged_app(&[]).await;
        let response = app
            .interaction(&click(
                "U0001",
                &button(&nudge, "interested"),
                "1763568400.000001",
            ))
            .await;
        assert_eq!(response.status(), 200);
        // Stored before the acknowledgement.
        assert_eq!(responses(&app).await, [Some(NudgeResponse::Interested)]);
        let queued = app.outbox().await.pop().unwrap();
        assert_eq!(queued["op"], "refresh_nudge");

        app.deliver().await;
        let sent = updates(&mut app);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["channel"], "D0001");
        assert_eq!(sent[0]["ts"], "1763568001.000100");
        assert_eq!(sent[0]["text"], nudge["text"]);
        let shown = text_of(&sent[0]);
        assert!(shown.contains("You answered: Interested."), "{shown}");
        assert!(shown.contains("such as a Certified Scrum"), "{shown}");
        let chosen: Vec<&Value> = sent[0]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["elements"].as_array().into_iter().flatten())
            .filter(|e| e["style"] == "primary")
            .collect();
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0]["action_id"], "nudge:interested");

        let trend = app.pulse("U0001", "trend").await;
        assert!(trend.contains("you answered “Interested”"), "{trend}");
        let metrics = metrics(&app).await;
        assert!(
            metrics.contains("nudged_nudge_responses_total{response=\"interested\"}"),
            "{metrics}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn not_now_asks_again_after_the_configured_weeks_while_the_role_is_still_sustained() {
    within_time(async {
        let (mut app, nudge) = nudged_app(&[]).await;
        app.interaction(&click(
            "U0001",
            &button(&nudge, "not-now"),
            "1763568400.000001",
        ))
        .await;
        assert_eq!(responses(&app).await, [Some(NudgeResponse::NotNow)]);
        app.deliver().await;
        let shown = text_of(&updates(&mut app)[0]);
        assert!(shown.contains("asks again in about 8 weeks"), "{shown}");

        // Seven weeks on, still sustained: not yet.
        app.clock.advance(Duration::weeks(7));
        assert!(!reassess(&app, "U0001").await);
        let trend = app.pulse("U0001", "trend").await;
        assert!(trend.contains("You said “Not now”"), "{trend}");
        assert!(trend.contains("you answered “Not now”"), "{trend}");

        // Eight weeks on, still sustained: asked again, well inside the
        // 90 days any other answer waits.
        app.clock.advance(Duration::weeks(1));
        assert!(reassess(&app, "U0001").await);
        assert_eq!(responses(&app).await, [Some(NudgeResponse::NotNow), None]);
        let again = posted_nudge(&mut app).await;
        let text = text_of(&again);
        assert!(text.contains("*You said “Not now”*"), "{text}");
        assert_eq!(
            button(&again, "not-now"),
            format!("n1|{}|not-now|U0001", this_week(&app))
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn not_for_me_sends_nothing_again_until_the_person_asks_with_pulse_nudge_on() {
    within_time(async {
        let (mut app, nudge) = nudged_app(&[]).await;
        let mut assessed = app.assessed.resubscribe();
        app.interaction(&click(
            "U0001",
            &button(&nudge, "not-for-me"),
            "1763568400.000001",
        ))
        .await;
        assert_eq!(responses(&app).await, [Some(NudgeResponse::NotForMe)]);
        let person = app.store.person(&pid("U0001")).await.unwrap().unwrap();
        assert!(person.nudges_off_since.is_some());
        // The click is re-assessed: no nudge.
        assert!(!assessed.recv().await.unwrap().nudged);
        app.deliver().await;
        let shown = text_of(&updates(&mut app)[0]);
        assert!(shown.contains("`/pulse nudge on`"), "{shown}");

        // Long after "Not now" would have asked again: nothing.
        app.clock.advance(Duration::weeks(9));
        assert!(!reassess(&app, "U0001").await);
        let trend = app.pulse("U0001", "trend").await;
        assert!(trend.contains("*Nudges are off*"), "{trend}");

        assert!(app.pulse("U0001", "help").await.contains("/pulse nudge on"));
        let reply = app.pulse("U0001", "nudge on").await;
        assert!(reply.starts_with("Nudges are on"), "{reply}");
        let done = assessed.recv().await.unwrap();
        assert!(done.nudged, "{done:?}");
        assert_eq!(responses(&app).await, [Some(NudgeResponse::NotForMe), None]);
        posted_nudge(&mut app).await;

        // And off again by command: the next one is held as declined.
        let reply = app.pulse("U0001", "nudge off").await;
        assert!(reply.starts_with("Nudges are off"), "{reply}");
        let done = assessed.recv().await.unwrap();
        assert!(!done.nudged);
        assert!(app.pulse("U0001", "nudge").await.contains("on or off"));
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_click_on_someone_elses_nudge_is_ignored() {
    within_time(async {
        let (app, nudge) = nudged_app(&[]).await;
        let before = app.outbox().await.len();
        let response = app
            .interaction(&click(
                "U0002",
                &button(&nudge, "not-for-me"),
                "1763568400.000001",
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(responses(&app).await, [None]);
        assert_eq!(app.outbox().await.len(), before);
        for id in ["U0001", "U0002"] {
            let person = app.store.person(&pid(id)).await.unwrap().unwrap();
            assert_eq!(person.nudges_off_since, None, "{id}");
        }
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_repeated_click_counts_once_and_a_changed_answer_overwrites() {
    within_time(async {
        let (mut app, nudge) = nudged_app(&[]).await;
        let not_now = click("U0001", &button(&nudge, "not-now"), "1763568400.000001");
        app.interaction(&not_now).await;
        app.interaction(&click("U0001", &button(&nudge, "interested"), "1763568401.000001"))
            .await;
        assert_eq!(responses(&app).await, [Some(NudgeResponse::Interested)]);
        // Slack delivers the first click again: it changes nothing.
        assert_eq!(app.interaction(&not_now).await.status(), 200);
        assert_eq!(responses(&app).await, [Some(NudgeResponse::Interested)]);

        // Both answers came before the redraw went out: one update, with
        // the last.
        app.deliver().await;
        let sent = updates(&mut app);
        assert_eq!(sent.len(), 1);
        assert!(text_of(&sent[0]).contains("You answered: Interested."));

        // Clicks on a nudge that was never sent, or with a broken value,
        // and on the training link (which carries no value), change nothing.
        let before = app.outbox().await.len();
        for value in [
            "n1|2026-W40|not-for-me|U0001",
            "n1|2026-W47|maybe|U0001",
            "n1|garbage",
        ] {
            let response = app
                .interaction(&click("U0001", value, "1763568402.000001"))
                .await;
            assert_eq!(response.status(), 200, "{value}");
        }
        // A value under another button's action id.
        let mut mislabelled = click("U0001", &button(&nudge, "not-for-me"), "1763568402.000002");
        mislabelled["actions"][0]["action_id"] = json!("nudge:interested");
        assert_eq!(app.interaction(&mislabelled).await.status(), 200);
        let mut link = click("U0001", "", "1763568403.000001");
        link["actions"][0] = json!({ "action_id": "nudge:training", "type": "button", "action_ts": "1763568403.000001" });
        assert_eq!(app.interaction(&link).await.status(), 200);
        assert_eq!(responses(&app).await, [Some(NudgeResponse::Interested)]);
        assert_eq!(app.outbox().await.len(), before);
        let person = app.store.person(&pid("U0001")).await.unwrap().unwrap();
        assert_eq!(person.nudges_off_since, None);
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_click_on_the_nudge_of_someone_forgotten_changes_nothing() {
    within_time(async {
        let (app, nudge) = nudged_app(&[]).await;
        app.pulse("U0001", "forget confirm").await;
        let response = app
            .interaction(&click(
                "U0001",
                &button(&nudge, "interested"),
                "1763568400.000001",
            ))
            .await;
        assert_eq!(response.status(), 200);
        assert!(app.store.person(&pid("U0001")).await.unwrap().is_none());
        assert!(app.store.nudges(&pid("U0001")).await.unwrap().is_empty());
        assert!(app.outbox().await.is_empty());
        app.stop().await;
    })
    .await;
}

#[test]
fn the_readme_shows_the_default_nudge_as_it_is_rendered() {
    use nudged::config::MessageSettings;
    use nudged::domain::default_catalogue;
    use nudged::model::{History, Params, assess};
    use nudged::render::text::{Markup, to_text};

    let readme = std::fs::read_to_string(crate::helpers::repo().join("README.md")).unwrap();
    let section = readme
        .split("### The nudge a person receives")
        .nth(1)
        .and_then(|rest| rest.split("With `messages.training_name`").next())
        .expect("the README shows the nudge");
    let normal = |text: &str| -> String {
        text.lines()
            .map(|l| l.trim().trim_start_matches('>').trim())
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let shown = normal(section);

    // Ada's answers: 14 strong, anchored weeks with room to learn, as of
    // Sunday of 2026-W47.
    let mut answers = strong_history("U1", "2026-W47".parse().unwrap(), 14, "yes");
    for a in &mut answers {
        if a.question.as_str() == "decisions" {
            a.option = OptionKey::parse("3-5").unwrap();
        }
    }
    let catalogue = default_catalogue();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let a = assess(
        &History {
            answers: &answers,
            nudges: &[],
            nudges_off: false,
        },
        &catalogue,
        &Params::default(),
        today,
    );
    let content = nudged::render::nudge(Some("Ada"), &MessageSettings::default(), &a, &catalogue);
    let message = nudged::render::nudge_with_answer(
        &content,
        &pid("U1"),
        "2026-W47".parse().unwrap(),
        None,
        8,
    );
    for paragraph in to_text(&message.text, &message.blocks, Markup::Markdown).split('\n') {
        let paragraph = normal(paragraph);
        assert!(
            shown.contains(&paragraph),
            "README lacks: {paragraph}\n\nREADME shows: {shown}"
        );
    }
}
