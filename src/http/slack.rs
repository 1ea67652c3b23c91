//! Slack's three endpoints. Each handler receives a verified
//! [`SlackRequest`], parses it into our thin payload types, stores what the
//! person answered, and only then acknowledges; messages back to Slack go
//! through the outbox.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::payloads::{Event, EventEnvelope, InteractionPayload, MessageEvent, SlashCommand};
use super::verify::SlackRequest;
use crate::domain::{Answer, PersonId};
use crate::outbox::{self, Outgoing};
use crate::readiness;
use crate::render::{ButtonValue, NudgeButton};
use crate::reply;
use crate::service;
use crate::store::{AnswerSource, StoreError};

/// An error answered to Slack. Store failures are 5xx so Slack retries;
/// what Slack sent but we cannot read is 400.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed payload: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadPayload(problem) => {
                metrics::counter!("nudged_requests_malformed_total").increment(1);
                tracing::warn!(%problem, "malformed Slack payload");
                (
                    StatusCode::BAD_REQUEST,
                    format!("malformed payload: {problem}"),
                )
                    .into_response()
            }
            Self::Store(e) => {
                tracing::error!(error = %e, "store failed while handling a Slack request");
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable").into_response()
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "failed to handle a Slack request");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

impl ApiError {
    /// A use case's error: a store failure stays one (503, Slack retries).
    fn from_service(error: anyhow::Error) -> Self {
        match error.downcast::<StoreError>() {
            Ok(store) => Self::Store(store),
            Err(other) => Self::Internal(other),
        }
    }
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadPayload(e.to_string()))
}

fn form_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| ApiError::BadPayload(e.to_string()))
}

fn person_id(raw: &str) -> Result<PersonId, ApiError> {
    PersonId::parse(raw).map_err(|e| ApiError::BadPayload(format!("user id {e}")))
}

// ---- events ---------------------------------------------------------------

/// `POST /slack/events`.
pub async fn handle_events(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    match json_body::<EventEnvelope>(&request.body)? {
        EventEnvelope::UrlVerification { challenge } => {
            Ok(Json(json!({ "challenge": challenge })).into_response())
        }
        EventEnvelope::EventCallback { event_id, event } => {
            let now = app.clock.now();
            // Slack re-sends an event it thinks we missed; the id is
            // recorded once, and a repeat is acknowledged untouched.
            if !app
                .store
                .mark_seen(&format!("event:{event_id}"), now)
                .await?
            {
                metrics::counter!("nudged_duplicates_dropped_total", "kind" => "event")
                    .increment(1);
                tracing::debug!(%event_id, retry = ?request.retry, "duplicate event dropped");
                return Ok(StatusCode::OK.into_response());
            }
            match event {
                Event::Message(message) => handle_message(&app, message).await?,
                Event::AppHomeOpened { user, tab } => {
                    if tab.as_deref().is_none_or(|t| t == "home") {
                        handle_home_opened(&app, &user).await?;
                    }
                }
                Event::Other => {}
            }
            Ok(StatusCode::OK.into_response())
        }
        EventEnvelope::Other => Ok(StatusCode::OK.into_response()),
    }
}

/// A DM to the bot, or a reply in a prompt's thread, read as answers.
async fn handle_message(app: &AppState, message: MessageEvent) -> Result<(), ApiError> {
    // Ignore edits, joins and every bot's messages, nudged's own included.
    if message.bot_id.is_some() || message.subtype.is_some() {
        return Ok(());
    }
    let (Some(user), Some(text)) = (message.user.as_deref(), message.text.as_deref()) else {
        return Ok(());
    };
    let person = person_id(user)?;
    let store = app.store.as_ref();
    let now = app.clock.now();

    let checkin = match &message.thread_ts {
        Some(thread) => store.checkin_by_message(&message.channel, thread).await?,
        None => None,
    };
    let in_dm = message.channel_type.as_deref() == Some("im");
    // A thread that is not one of our prompts, in a channel, is not for us.
    if checkin.is_none() && !in_dm {
        return Ok(());
    }
    // Only the prompt's own person answers it.
    if checkin.as_ref().is_some_and(|c| c.person != person) {
        return Ok(());
    }
    let Some(row) = store.person(&person).await? else {
        let reply = "You're not enrolled in nudged yet: `/pulse join` to start.".to_owned();
        enqueue_reply(app, &message, None, reply).await?;
        return Ok(());
    };
    let week = checkin
        .as_ref()
        .map(|c| c.week)
        .unwrap_or_else(|| service::current_week(Some(&row), now));
    let questions =
        service::questions_for(&app.settings, checkin.as_ref().map(|c| c.schedule.as_str()));
    let (reply, recorded) = service::answer_text(
        &app.settings,
        store,
        &person,
        week,
        &questions,
        text,
        AnswerSource::Text,
        now,
    )
    .await?;
    if recorded {
        app.assessor.request(&person);
    }
    if recorded && let Some(checkin) = &checkin {
        update_prompt(app, checkin, &person).await?;
    }
    enqueue_reply(app, &message, Some(&person), reply).await
}

async fn enqueue_reply(
    app: &AppState,
    message: &MessageEvent,
    person: Option<&PersonId>,
    text: String,
) -> Result<(), ApiError> {
    let thread = message
        .thread_ts
        .clone()
        .or_else(|| Some(message.ts.clone()));
    let reply = Outgoing::Post {
        channel: message.channel.clone(),
        thread_ts: thread,
        text: crate::render::escape(&text),
        blocks: Vec::new(),
        checkin: None,
    };
    // One reply per message, even if the handler runs twice.
    let key = format!("reply:{}:{}", message.channel, message.ts);
    outbox::enqueue(
        app.store.as_ref(),
        &reply,
        person,
        Some(key),
        app.clock.now(),
    )
    .await?;
    Ok(())
}

/// Queues a redraw of a posted prompt, to show what is answered now.
async fn update_prompt(
    app: &AppState,
    checkin: &crate::store::CheckinRow,
    person: &PersonId,
) -> Result<(), ApiError> {
    let (Some(channel), Some(ts)) = (&checkin.channel, &checkin.message_ts) else {
        return Ok(());
    };
    let redraw = outbox::refresh_prompt(
        channel,
        ts,
        person,
        checkin.week,
        &checkin.schedule,
        app.clock.now(),
    );
    app.store.enqueue(&redraw).await?;
    Ok(())
}

async fn handle_home_opened(app: &AppState, user: &str) -> Result<(), ApiError> {
    let person = person_id(user)?;
    let blocks = match app.store.person(&person).await? {
        Some(row) => {
            readiness::trend_message(&app.settings, app.store.as_ref(), &row, app.clock.now())
                .await?
                .blocks
        }
        None => vec![json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*nudged*\nYou're not enrolled yet: `/pulse join` to start.",
            },
        })],
    };
    let view = json!({ "type": "home", "blocks": blocks });
    outbox::enqueue(
        app.store.as_ref(),
        &Outgoing::PublishHome {
            user: person.to_string(),
            view,
        },
        Some(&person),
        None,
        app.clock.now(),
    )
    .await?;
    Ok(())
}

// ---- interactions -----------------------------------------------------------

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

/// `POST /slack/interactions`: button clicks on prompts and on the
/// readiness nudge (handled in `nudge.rs`).
pub async fn handle_interactions(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    let form: InteractionForm = form_body(&request.body)?;
    let payload: InteractionPayload = json_body(form.payload.as_bytes())?;
    if payload.kind != "block_actions" {
        return Ok(StatusCode::OK.into_response());
    }
    let clicker = person_id(&payload.user.id)?;
    let store = app.store.as_ref();
    let now = app.clock.now();
    // Where the clicked prompt is, so it can be redrawn with the answer.
    let channel = payload
        .container
        .as_ref()
        .and_then(|c| c.channel_id.as_deref())
        .or_else(|| payload.channel.as_ref().map(|c| c.id.as_str()));
    let ts = payload
        .container
        .as_ref()
        .and_then(|c| c.message_ts.as_deref());
    for action in &payload.actions {
        if let Some(button) = action.value.as_deref().and_then(NudgeButton::parse) {
            super::nudge::handle_click(&app, &clicker, action, &button, channel.zip(ts)).await?;
            continue;
        }
        let Some(value) = action.value.as_deref().and_then(ButtonValue::parse) else {
            continue;
        };
        if value.person != clicker {
            metrics::counter!("nudged_clicks_ignored_total", "reason" => "not_own_prompt")
                .increment(1);
            tracing::info!(prompt_for = %value.person, clicked_by = %clicker, "ignored a click on someone else's prompt");
            continue;
        }
        let prompt = channel.zip(ts).map(|(channel, ts)| service::PostedPrompt {
            channel,
            ts,
            schedule: &value.schedule,
        });
        let answer = Answer {
            person: clicker.clone(),
            week: value.week,
            question: value.question,
            option: value.option,
        };
        match service::record_click(store, &answer, prompt, now).await {
            Ok(true) => app.assessor.request(&clicker),
            Ok(false) => {
                metrics::counter!("nudged_duplicates_dropped_total", "kind" => "click")
                    .increment(1);
            }
            // Someone who left and was forgotten, clicking an old prompt.
            Err(StoreError::NotFound(_)) => {
                metrics::counter!("nudged_clicks_ignored_total", "reason" => "unknown_person")
                    .increment(1);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(StatusCode::OK.into_response())
}

// ---- /pulse ---------------------------------------------------------------

fn ephemeral(text: impl Into<String>) -> Response {
    Json(json!({ "response_type": "ephemeral", "text": text.into() })).into_response()
}

/// `POST /slack/commands`: `/pulse …`. Answers ephemerally, within the ack.
pub async fn handle_commands(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    let command: SlashCommand = form_body(&request.body)?;
    let person = person_id(&command.user_id)?;
    let store = app.store.as_ref();
    let now = app.clock.now();
    let parsed = match reply::parse_command(&command.text) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(ephemeral(crate::render::escape(&e.to_string()))),
    };
    let text = service::pulse(&app.settings, store, &app.assessor, &person, parsed, now)
        .await
        .map_err(ApiError::from_service)?;
    Ok(ephemeral(text))
}
