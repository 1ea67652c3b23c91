//! Slack's three endpoints. Each handler receives a verified
//! [`SlackRequest`], parses it into our thin payload types, stores what the
//! person answered, and only then acknowledges; messages back to Slack go
//! through the outbox.
//!
//! What is HTTP's own (the signature, reading the body, the form encoding)
//! stays in the axum handlers (`handle_events`, `handle_interactions`,
//! `handle_commands`); the rest is transport-neutral ([`handle_event`],
//! [`handle_interaction`], [`handle_command`]) and returns a [`Reply`] once
//! what it stores is committed. Socket Mode ([`crate::socket_mode`]) calls
//! the same functions for its envelopes, so both transports share one path.
//!
//! What an event or click brings is committed in one transaction with its
//! id ([`Store::record_inbound`](crate::store::Store::record_inbound)), so a
//! retry after a failure is handled again and a retry after a success, or
//! a replay, changes nothing. Verified requests that nudged does not handle
//! (an unknown event type or shape, a click that matches no prompt) are
//! acknowledged with a 200, logged and counted: a 5xx would make Slack
//! retry them, and too many can disable the event subscription. A 5xx
//! means the store could not commit; a 400, a body that is not the
//! endpoint's document at all.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::payloads::{
    Action, Event, EventEnvelope, InteractionPayload, MessageEvent, SlashCommand,
};
use super::verify::{self, Rejection, SlackRequest};
use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, PersonId};
use crate::outbox::{self, Outgoing};
use crate::readiness;
use crate::render::{ButtonValue, NudgeButton};
use crate::reply;
use crate::service;
use crate::store::{
    AnswerSource, CheckinRow, InboundOutcome, InboundWrite, NewOutbox, PersonRow, StoreError,
    action_seen_key,
};

/// An error answered to Slack. Store failures are 5xx so Slack retries;
/// what Slack sent but we cannot read is 400.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed payload: {0}")]
    BadPayload(String),
    /// Verified, but refused (another workspace or app): 403.
    #[error("refused: {}", .0.reason())]
    Refused(Rejection),
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
            Self::Refused(rejection) => rejection.into_response(),
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

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        Self::Refused(rejection)
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

/// What a handled Slack request answers, whichever transport carried it:
/// a JSON body (a `/pulse` reply, a URL challenge), or nothing but "done".
/// Over HTTP it is the 200's body; over Socket Mode, the ack's `payload`.
#[derive(Debug, Default, PartialEq)]
pub struct Reply(pub Option<serde_json::Value>);

impl Reply {
    /// Acknowledged, with nothing to say.
    pub fn done() -> Self {
        Self(None)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self.0 {
            Some(body) => Json(body).into_response(),
            None => StatusCode::OK.into_response(),
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
    Ok(handle_event(app, &request.body).await?.into_response())
}

/// An Events API body (`url_verification` or `event_callback`), verified
/// by its transport. (The state is taken by value, a few `Arc`s: the
/// handlers' bodies stay as they were when they were HTTP's alone.)
pub async fn handle_event(app: AppState, body: &[u8]) -> Result<Reply, ApiError> {
    let envelope = match serde_json::from_slice::<EventEnvelope>(body) {
        Ok(envelope) => envelope,
        Err(e) => return unreadable_event(body, e),
    };
    if let Some(origin) = envelope.origin() {
        verify::check_origin(&app.settings.chat.slack, origin)?;
    }
    match envelope {
        EventEnvelope::UrlVerification { challenge } => {
            Ok(Reply(Some(json!({ "challenge": challenge }))))
        }
        EventEnvelope::EventCallback {
            event_id, event, ..
        } => {
            // Slack re-sends an event it thinks we missed: the id is
            // committed with what the event stores, and a repeat of an
            // event handled before is acknowledged untouched.
            let seen = format!("event:{event_id}");
            match event {
                Event::Message(message) => handle_message(&app, message, seen).await?,
                Event::AppHomeOpened { user, tab } => {
                    if tab.as_deref().is_none_or(|t| t == "home") {
                        handle_home_opened(&app, &user, seen).await?;
                    } else {
                        ignore_event("other_tab", &event_id, false);
                    }
                }
                Event::Other => ignore_event("unknown_type", &event_id, true),
            }
            Ok(Reply::done())
        }
        EventEnvelope::Other => Ok(Reply::done()),
    }
}

/// The least an event callback has: what tells a well-formed event nudged
/// cannot read from a body that is no event at all.
#[derive(Deserialize)]
struct CallbackShape {
    #[serde(rename = "type")]
    kind: String,
    event_id: String,
    event: serde_json::Value,
}

/// A body that did not parse as an envelope. An event callback whose
/// `event` has a shape we do not expect (a known type without a field we
/// need) is acknowledged and ignored, as Slack would retry anything else;
/// a body that is no event callback at all is a 400.
fn unreadable_event(body: &[u8], error: serde_json::Error) -> Result<Reply, ApiError> {
    match serde_json::from_slice::<CallbackShape>(body) {
        Ok(shape) if shape.kind == "event_callback" => {
            metrics::counter!("nudged_events_ignored_total", "reason" => "unexpected_shape")
                .increment(1);
            tracing::warn!(
                event_id = %shape.event_id,
                event_type = shape.event["type"].as_str().unwrap_or("?"),
                problem = %error,
                "ignored an event of a shape nudged does not read"
            );
            Ok(Reply::done())
        }
        _ => Err(ApiError::BadPayload(error.to_string())),
    }
}

/// Counts and logs an event acknowledged without effect. `unexpected` for
/// what Slack should not send an app like this one (logged at warn); the
/// rest (bot messages, channel chatter) is everyday traffic (debug).
fn ignore_event(reason: &'static str, event_id: &str, unexpected: bool) {
    metrics::counter!("nudged_events_ignored_total", "reason" => reason).increment(1);
    if unexpected {
        tracing::warn!(%event_id, reason, "ignored an unexpected event");
    } else {
        tracing::debug!(%event_id, reason, "ignored an event");
    }
}

/// A DM to the bot, or a reply in a prompt's thread, read as answers. The
/// answers, the prompt's redraw, the reply and the event's id `seen` are
/// committed together.
async fn handle_message(
    app: &AppState,
    message: MessageEvent,
    seen: String,
) -> Result<(), ApiError> {
    // Ignore edits, joins and every bot's messages, nudged's own included.
    if message.bot_id.is_some() {
        ignore_event("bot_message", &seen, false);
        return Ok(());
    }
    if message.subtype.is_some() {
        ignore_event("message_subtype", &seen, false);
        return Ok(());
    }
    let (Some(user), Some(text)) = (message.user.as_deref(), message.text.as_deref()) else {
        ignore_event("message_without_user_or_text", &seen, true);
        return Ok(());
    };
    let Ok(person) = PersonId::parse(user) else {
        ignore_event("unreadable_user", &seen, true);
        return Ok(());
    };
    let store = app.store.as_ref();
    let now = app.clock.now();

    let checkin = match &message.thread_ts {
        Some(thread) => store.checkin_by_message(&message.channel, thread).await?,
        None => None,
    };
    let in_dm = message.channel_type.as_deref() == Some("im");
    // A thread that is not one of our prompts, in a channel, is not for us.
    if checkin.is_none() && !in_dm {
        ignore_event("not_for_nudged", &seen, false);
        return Ok(());
    }
    // Only the prompt's own person answers it.
    if checkin.as_ref().is_some_and(|c| c.person != person) {
        ignore_event("not_own_prompt", &seen, false);
        return Ok(());
    }
    let Some(row) = store.person(&person).await? else {
        let reply = "You're not enrolled in nudged yet: `/pulse join` to start.".to_owned();
        let write = InboundWrite {
            seen_key: Some(seen),
            always: vec![reply_row(app, &message, None, &reply)],
            ..InboundWrite::answers(Vec::new(), AnswerSource::Text)
        };
        service::record_inbound(store, &write, "event", now).await?;
        return Ok(());
    };
    let week = checkin
        .as_ref()
        .map(|c| c.week)
        .unwrap_or_else(|| service::current_week(Some(&row), now));
    let questions = app
        .settings
        .questions_for(checkin.as_ref().map(|c| c.schedule.as_str()));
    let read = service::read_reply(&app.settings, &person, week, &questions, text);
    let write = InboundWrite {
        seen_key: Some(seen),
        answers: read.answers,
        source: AnswerSource::Text,
        on_change: checkin.as_ref().and_then(|c| redraw_row(c, &person, now)),
        always: vec![reply_row(app, &message, Some(&person), &read.reply)],
    };
    let outcome = service::record_inbound(store, &write, "event", now).await?;
    if matches!(outcome, InboundOutcome::Recorded { changed, .. } if changed > 0) {
        app.assessor.request(&person);
    }
    Ok(())
}

/// The reply to `message`, in its thread (or starting one).
fn reply_row(
    app: &AppState,
    message: &MessageEvent,
    person: Option<&PersonId>,
    text: &str,
) -> NewOutbox {
    let thread = message
        .thread_ts
        .clone()
        .or_else(|| Some(message.ts.clone()));
    let reply = Outgoing::Post {
        channel: message.channel.clone(),
        thread_ts: thread,
        text: crate::render::escape(text),
        blocks: Vec::new(),
        checkin: None,
    };
    // One reply per message, whatever happens to the event's id.
    let key = format!("reply:{}:{}", message.channel, message.ts);
    outbox::row(&reply, person, Some(key), app.clock.now())
}

/// The redraw of a posted prompt, to show what is answered now; `None`
/// while the prompt's place is not known yet.
fn redraw_row(
    checkin: &CheckinRow,
    person: &PersonId,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<NewOutbox> {
    let (Some(channel), Some(ts)) = (&checkin.channel, &checkin.message_ts) else {
        return None;
    };
    Some(outbox::refresh_prompt(
        channel,
        ts,
        person,
        checkin.week,
        &checkin.schedule,
        now,
    ))
}

async fn handle_home_opened(app: &AppState, user: &str, seen: String) -> Result<(), ApiError> {
    let Ok(person) = PersonId::parse(user) else {
        ignore_event("unreadable_user", &seen, true);
        return Ok(());
    };
    let now = app.clock.now();
    let blocks = match app.store.person(&person).await? {
        Some(row) => {
            readiness::trend_message(&app.settings, app.store.as_ref(), &row, now)
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
    let publish = Outgoing::PublishHome {
        user: person.to_string(),
        view,
    };
    let write = InboundWrite {
        seen_key: Some(seen),
        always: vec![outbox::row(&publish, Some(&person), None, now)],
        ..InboundWrite::answers(Vec::new(), AnswerSource::Text)
    };
    service::record_inbound(app.store.as_ref(), &write, "event", now).await?;
    Ok(())
}

// ---- interactions -----------------------------------------------------------

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

/// `POST /slack/interactions`: button clicks. Each clicked element is
/// dispatched by what its value says it is (`ActionKind`): a prompt's
/// answer, or the readiness nudge's (handled in `nudge.rs`).
pub async fn handle_interactions(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    let form: InteractionForm = form_body(&request.body)?;
    Ok(handle_interaction(app, form.payload.as_bytes())
        .await?
        .into_response())
}

/// An interaction payload (the JSON document, out of its HTTP form
/// field), verified by its transport.
pub async fn handle_interaction(app: AppState, payload: &[u8]) -> Result<Reply, ApiError> {
    let payload: InteractionPayload = json_body(payload)?;
    verify::check_origin(&app.settings.chat.slack, payload.origin())?;
    if payload.kind != "block_actions" {
        return Ok(Reply::done());
    }
    let clicker = person_id(&payload.user.id)?;
    // Where the clicked message is, so it can be redrawn with the answer.
    let channel = payload
        .container
        .as_ref()
        .and_then(|c| c.channel_id.as_deref())
        .or_else(|| payload.channel.as_ref().map(|c| c.id.as_str()));
    let ts = payload
        .container
        .as_ref()
        .and_then(|c| c.message_ts.as_deref());
    let location = channel.zip(ts);
    for action in &payload.actions {
        match ActionKind::of(action) {
            ActionKind::Prompt(value) => {
                handle_prompt_click(&app, &clicker, action, value, location).await?;
            }
            ActionKind::Nudge(button) => {
                super::nudge::handle_click(&app, &clicker, action, &button, location).await?;
            }
            ActionKind::Unknown => {
                ignore_click(IgnoredClick::UnknownAction, &clicker, action);
            }
        }
    }
    Ok(Reply::done())
}

/// What a clicked element is, told by its value's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ActionKind<'a> {
    /// A prompt's answer button ([`ButtonValue`]), with its value.
    Prompt(&'a str),
    /// One of the readiness nudge's answer buttons ([`NudgeButton`]).
    Nudge(NudgeButton),
    /// Nothing nudged rendered.
    Unknown,
}

impl<'a> ActionKind<'a> {
    fn of(action: &'a Action) -> Self {
        match action.value.as_deref() {
            Some(value) if value.starts_with(ButtonValue::PREFIX) => Self::Prompt(value),
            Some(value) => NudgeButton::parse(value).map_or(Self::Unknown, Self::Nudge),
            None => Self::Unknown,
        }
    }
}

/// Why a click was acknowledged but not recorded; the `reason` label of
/// `nudged_clicks_ignored_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IgnoredClick {
    /// A value nudged did not render (another app's button, or no value).
    UnknownAction,
    /// A prompt value that does not parse.
    MalformedValue,
    /// Someone clicked another person's prompt.
    NotOwnPrompt,
    /// The `action_id` is not the one rendered for the value.
    ActionMismatch,
    /// The question is not in the catalogue.
    UnknownQuestion,
    /// No schedule of that name.
    UnknownSchedule,
    /// The schedule does not ask that question.
    NotInSchedule,
    /// The question has no such option.
    UnknownOption,
    /// Not the current or previous week of the person.
    WrongWeek,
    /// Someone nudged does not know (never enrolled, or forgotten).
    UnknownPerson,
}

impl IgnoredClick {
    fn reason(self) -> &'static str {
        match self {
            Self::UnknownAction => "unknown_action",
            Self::MalformedValue => "malformed_value",
            Self::NotOwnPrompt => "not_own_prompt",
            Self::ActionMismatch => "action_mismatch",
            Self::UnknownQuestion => "unknown_question",
            Self::UnknownSchedule => "unknown_schedule",
            Self::NotInSchedule => "not_in_schedule",
            Self::UnknownOption => "unknown_option",
            Self::WrongWeek => "wrong_week",
            Self::UnknownPerson => "unknown_person",
        }
    }
}

fn ignore_click(why: IgnoredClick, clicker: &PersonId, action: &Action) {
    let reason = why.reason();
    metrics::counter!("nudged_clicks_ignored_total", "reason" => reason).increment(1);
    tracing::info!(
        reason,
        clicked_by = %clicker,
        action_id = %action.action_id,
        value = action.value.as_deref().unwrap_or(""),
        "ignored a click"
    );
}

/// Checks a prompt click against what nudged renders
/// ([`crate::render::prompt`]): the value parses, is the clicker's own,
/// its `action_id` is the one rendered with it, and it names a question
/// of the catalogue that the named schedule asks, and one of that
/// question's options. The week is checked once the person is read
/// ([`check_click_week`]).
fn check_prompt_click(
    settings: &Settings,
    clicker: &PersonId,
    action_id: &str,
    value: &str,
) -> Result<ButtonValue, IgnoredClick> {
    let value = ButtonValue::parse(value).ok_or(IgnoredClick::MalformedValue)?;
    if &value.person != clicker {
        return Err(IgnoredClick::NotOwnPrompt);
    }
    if action_id != value.action_id() {
        return Err(IgnoredClick::ActionMismatch);
    }
    let question = settings
        .catalogue
        .get(value.question.as_str())
        .ok_or(IgnoredClick::UnknownQuestion)?;
    let schedule = settings
        .schedules
        .list
        .iter()
        .find(|s| s.name == value.schedule)
        .ok_or(IgnoredClick::UnknownSchedule)?;
    if !schedule.questions.contains(&value.question) {
        return Err(IgnoredClick::NotInSchedule);
    }
    question
        .option(value.option.as_str())
        .ok_or(IgnoredClick::UnknownOption)?;
    Ok(value)
}

/// A prompt asks about the week it was posted in, and may be answered
/// through the next: the clicked week must be the person's current or
/// previous ISO week, in their zone.
fn check_click_week(
    week: IsoWeek,
    person: &PersonRow,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), IgnoredClick> {
    let current = service::current_week(Some(person), now);
    if week == current || week == current.plus(-1) {
        Ok(())
    } else {
        Err(IgnoredClick::WrongWeek)
    }
}

/// A click on a prompt's answer button: checked, then the answer, the
/// prompt's redraw and the click's id are committed together.
async fn handle_prompt_click(
    app: &AppState,
    clicker: &PersonId,
    action: &Action,
    raw: &str,
    location: Option<(&str, &str)>,
) -> Result<(), ApiError> {
    let value = match check_prompt_click(&app.settings, clicker, &action.action_id, raw) {
        Ok(value) => value,
        Err(why) => {
            ignore_click(why, clicker, action);
            return Ok(());
        }
    };
    let store = app.store.as_ref();
    let now = app.clock.now();
    let Some(person) = store.person(clicker).await? else {
        ignore_click(IgnoredClick::UnknownPerson, clicker, action);
        return Ok(());
    };
    if let Err(why) = check_click_week(value.week, &person, now) {
        ignore_click(why, clicker, action);
        return Ok(());
    }
    let prompt = location.map(|(channel, ts)| service::PostedPrompt {
        channel,
        ts,
        schedule: &value.schedule,
    });
    let seen = action
        .action_ts
        .as_deref()
        .map(|ts| action_seen_key(clicker, ts));
    let answer = Answer {
        person: clicker.clone(),
        week: value.week,
        question: value.question,
        option: value.option,
    };
    match service::record_click(store, &answer, prompt, seen, now).await {
        Ok(InboundOutcome::Recorded { changed, .. }) if changed > 0 => {
            app.assessor.request(clicker);
        }
        Ok(_) => {}
        // Forgotten between the read and the write.
        Err(StoreError::NotFound(_)) => ignore_click(IgnoredClick::UnknownPerson, clicker, action),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

// ---- /pulse ---------------------------------------------------------------

fn ephemeral(text: impl Into<String>) -> Reply {
    Reply(Some(
        json!({ "response_type": "ephemeral", "text": text.into() }),
    ))
}

/// `POST /slack/commands`: `/pulse …`. Answers ephemerally, within the ack.
///
/// A command is done once per `trigger_id`: a replay of the same signed
/// request is answered without acting again. Its id is recorded before it
/// runs and removed if it fails, so a failed command can be sent again.
/// (Slack itself never retries a slash command.)
pub async fn handle_commands(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    let command: SlashCommand = form_body(&request.body)?;
    Ok(handle_command(app, command).await?.into_response())
}

/// A `/pulse` command, verified by its transport; the reply is the
/// ephemeral answer.
pub async fn handle_command(app: AppState, command: SlashCommand) -> Result<Reply, ApiError> {
    verify::check_origin(&app.settings.chat.slack, command.origin())?;
    let person = person_id(&command.user_id)?;
    let store = app.store.as_ref();
    let now = app.clock.now();
    let parsed = match reply::parse_command(&command.text) {
        Ok(parsed) => parsed,
        Err(e) => return Ok(ephemeral(crate::render::escape(&e.to_string()))),
    };
    let seen = command
        .trigger_id
        .as_deref()
        .map(|t| format!("command:{t}"));
    if let Some(key) = &seen
        && !store.mark_seen(key, now).await?
    {
        metrics::counter!("nudged_duplicates_dropped_total", "kind" => "command").increment(1);
        tracing::info!(%person, "a repeated slash command was not done again");
        return Ok(ephemeral("That command was already done."));
    }
    match service::pulse(&app.settings, store, &app.assessor, &person, parsed, now).await {
        Ok(text) => Ok(ephemeral(text)),
        Err(e) => {
            if let Some(key) = &seen
                && let Err(undo) = store.unmark_seen(key).await
            {
                tracing::error!(error = %undo, "cannot release a failed command's id");
            }
            Err(ApiError::from_service(e))
        }
    }
}
