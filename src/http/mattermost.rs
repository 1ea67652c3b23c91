//! Mattermost's two callbacks: a click on a prompt's button
//! (`POST /mattermost/actions`) and the `/pulse` slash command
//! (`POST /mattermost/commands`). Each is checked before anything it says
//! is used — a click by its context's signature, a command by its token,
//! both in constant time — and then handed to the same use case as its
//! Slack counterpart.
//!
//! Mattermost does not sign these requests. A button's context carries an
//! HMAC of its fields with `chat.mattermost.action_secret`
//! ([`Actions::verify`]), so a context nudged did not draw, or one with a
//! field changed, is refused (403) and changes nothing. The clicker is
//! the `user_id` Mattermost reports; as on Slack, only the prompt's own
//! person is recorded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::AppState;
use crate::chat::mattermost::{Actions, CONTEXT_FIELDS, NUDGE_CONTEXT_FIELDS, NUDGE_TAG, draw};
use crate::domain::PersonId;
use crate::outbox::redraw;
use crate::render::text::{self, Markup};
use crate::render::{ButtonValue, NudgeButton};
use crate::reply;
use crate::service::answers::{self, Click, Clicked};
use crate::service::nudge::{self, Answered};
use crate::service::{self, Ctx, pulse};

/// A request refused before it was acted on, counted by `reason`.
fn refuse(status: StatusCode, reason: &'static str) -> Response {
    metrics::counter!("nudged_verification_failures_total", "reason" => reason).increment(1);
    tracing::warn!(reason, "refused a Mattermost request");
    (status, format!("refused: {reason}\n")).into_response()
}

/// A use case that failed: a store failure is "try again" (503).
fn failed(error: service::Error) -> Response {
    match error {
        service::Error::Store(e) => {
            tracing::error!(error = %e, "store failed while handling a Mattermost request");
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response()
        }
        other => {
            tracing::error!(error = %other, "failed to handle a Mattermost request");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn ctx(app: &AppState) -> Ctx<'_> {
    Ctx {
        settings: &app.settings,
        store: app.store.as_ref(),
        assessor: &app.assessor,
        now: app.clock.now(),
    }
}

/// `POST /mattermost/actions`: a click on a prompt's button. The context's
/// signature is checked first; then the click is recorded
/// ([`answers::click`]) and the answer is the prompt redrawn from what is
/// stored, which Mattermost shows in place of the clicked post.
pub async fn handle_actions(State(app): State<AppState>, body: Bytes) -> Response {
    let Some(actions) = Actions::from_settings(&app.settings.chat.mattermost) else {
        return refuse(StatusCode::NOT_FOUND, "mattermost_not_configured");
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_action");
    };
    let context = &request["context"];
    if context.get("response").is_some() {
        return nudge_action(&app, &actions, &request).await;
    }
    let fields: Option<Vec<&str>> = CONTEXT_FIELDS
        .iter()
        .map(|f| context[*f].as_str())
        .collect();
    let (Some(fields), Some(sig)) = (fields, context["sig"].as_str()) else {
        return refuse(StatusCode::FORBIDDEN, "unsigned_action");
    };
    if !actions.verify(&fields, sig) {
        return refuse(StatusCode::FORBIDDEN, "bad_action_signature");
    }
    // Signed by nudged: now the rest may be read.
    let Some(clicker) = request["user_id"]
        .as_str()
        .and_then(|u| PersonId::parse(u).ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_user");
    };
    let [person, week, question, option, schedule] = fields[..] else {
        unreachable!("one field per name in CONTEXT_FIELDS")
    };
    let value = format!("v1|{week}|{question}|{option}|{person}|{schedule}");
    let action_id = format!("{question}:{option}");
    let click = Click {
        clicker: &clicker,
        action_id: &action_id,
        value: &value,
        // Mattermost gives a click no id of its own; a repeat stores the
        // same answer again, which changes nothing.
        action_ts: None,
        // The answer below redraws the post; no outbox update is needed.
        posted: None,
    };
    match answers::click(ctx(&app), click).await {
        Err(e) => failed(e),
        Ok(Clicked::Ignored(why)) => {
            let reason = why.reason();
            metrics::counter!("nudged_clicks_ignored_total", "reason" => reason).increment(1);
            tracing::info!(reason, clicked_by = %clicker, "ignored a Mattermost click");
            Json(json!({ "ephemeral_text": "That button is not one you can answer." }))
                .into_response()
        }
        Ok(Clicked::Recorded | Clicked::Unchanged | Clicked::Duplicate) => {
            let Some(value) = ButtonValue::parse(&value) else {
                unreachable!("answers::click accepted the value")
            };
            let store = app.store.as_ref();
            match redraw::prompt(
                &app.settings,
                store,
                &value.person,
                value.week,
                &value.schedule,
            )
            .await
            {
                Ok(prompt) => {
                    let (message, props) = draw(&prompt.text, &prompt.blocks, &actions);
                    Json(json!({ "update": { "message": message, "props": props } }))
                        .into_response()
                }
                Err(e) => failed(e.into()),
            }
        }
    }
}

/// A click on one of the nudge's answer buttons: its signature first, then
/// the same use case as on Slack ([`nudge::click`]); answered with the
/// nudge redrawn.
async fn nudge_action(app: &AppState, actions: &Actions, request: &Value) -> Response {
    let context = &request["context"];
    let fields: Option<Vec<&str>> = NUDGE_CONTEXT_FIELDS
        .iter()
        .map(|f| context[*f].as_str())
        .collect();
    let (Some(fields), Some(sig)) = (fields, context["sig"].as_str()) else {
        return refuse(StatusCode::FORBIDDEN, "unsigned_action");
    };
    let mut signed = vec![NUDGE_TAG];
    signed.extend(&fields);
    if !actions.verify(&signed, sig) {
        return refuse(StatusCode::FORBIDDEN, "bad_action_signature");
    }
    let Some(clicker) = request["user_id"]
        .as_str()
        .and_then(|u| PersonId::parse(u).ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_user");
    };
    let [person, week, response] = fields[..] else {
        unreachable!("one field per name in NUDGE_CONTEXT_FIELDS")
    };
    let Some(button) = NudgeButton::parse(&format!("n1|{week}|{response}|{person}")) else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_nudge_button");
    };
    let click = nudge::Click {
        clicker: &clicker,
        action_id: &format!("nudge:{}", button.response),
        button: &button,
        action_ts: None,
        // The answer below redraws the post.
        posted: None,
    };
    match nudge::click(ctx(app), click).await {
        Err(e) => failed(e),
        Ok(Answered::Recorded(_) | Answered::Unchanged | Answered::Duplicate) => {
            let store = app.store.as_ref();
            match redraw::nudge(&app.settings, store, &button.person, button.week).await {
                Ok(Some(nudge)) => {
                    let (message, props) = draw(&nudge.text, &nudge.blocks, actions);
                    Json(json!({ "update": { "message": message, "props": props } }))
                        .into_response()
                }
                Ok(None) => Json(json!({})).into_response(),
                Err(e) => failed(e.into()),
            }
        }
        Ok(Answered::NotTheirs | Answered::UnknownNudge | Answered::NotANudgeButton) => {
            Json(json!({ "ephemeral_text": "That button is not one you can answer." }))
                .into_response()
        }
    }
}

/// The fields of a slash command nudged reads (Mattermost sends more).
#[derive(Deserialize)]
struct Command {
    #[serde(default)]
    token: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    text: String,
}

fn ephemeral(text: &str) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": text })).into_response()
}

/// Whether `given` is `expected`, in time that depends on neither: both
/// are MACed under one key and the MACs compared in constant time.
fn same_token(given: &str, expected: &str) -> bool {
    let mac = |data: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(expected.as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(data.as_bytes());
        mac
    };
    mac(given)
        .verify_slice(&mac(expected).finalize().into_bytes())
        .is_ok()
}

/// `POST /mattermost/commands`: `/pulse …`, checked against
/// `chat.mattermost.command_token` and run by the same use case as on
/// Slack ([`pulse::run`]); answered ephemerally.
pub async fn handle_commands(State(app): State<AppState>, body: Bytes) -> Response {
    let Some(expected) = app.settings.chat.mattermost.command_token.as_ref() else {
        return refuse(StatusCode::NOT_FOUND, "mattermost_not_configured");
    };
    let Ok(command) = serde_urlencoded::from_bytes::<Command>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_command");
    };
    if !same_token(&command.token, expected.expose_secret()) {
        return refuse(StatusCode::FORBIDDEN, "bad_command_token");
    }
    let Ok(person) = PersonId::parse(&command.user_id) else {
        return refuse(StatusCode::BAD_REQUEST, "unreadable_user");
    };
    let parsed = match reply::parse_command(&command.text) {
        Ok(parsed) => parsed,
        Err(e) => return ephemeral(&e.to_string()),
    };
    match pulse::run(ctx(&app), &person, parsed).await {
        // Written for Slack's mrkdwn: shown as Mattermost's Markdown.
        Ok(answer) => ephemeral(&text::convert(&answer, Markup::Markdown)),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }
}
