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
use crate::domain::PersonId;
use crate::render::{ButtonValue, NudgeButton};
use crate::reply;
use crate::service::answers::{self, Clicked, IgnoredClick, Replied, TextReply, Written};
use crate::service::{self, Ctx, nudge, pulse, readiness};
use crate::store::{AnswerSource, StoreError};

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

impl From<service::Error> for ApiError {
    /// A store failure stays one (503, Slack retries).
    fn from(error: service::Error) -> Self {
        match error {
            service::Error::Store(store) => Self::Store(store),
            other => Self::Internal(other.into()),
        }
    }
}

impl AppState {
    /// What the use cases work with, at the clock's now.
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            settings: &self.settings,
            store: self.store.as_ref(),
            assessor: &self.assessor,
            now: self.clock.now(),
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

/// A DM to the bot, or a reply in a prompt's thread, read as answers
/// ([`answers::text_reply`]): the answers, the prompt's redraw, the reply
/// and the event's id `seen` are committed together.
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
    let reply = TextReply {
        person: &person,
        text,
        written: Some(Written {
            channel: &message.channel,
            ts: &message.ts,
            thread_ts: message.thread_ts.as_deref(),
            in_dm: message.channel_type.as_deref() == Some("im"),
        }),
        seen_key: Some(seen.clone()),
        source: AnswerSource::Text,
    };
    match answers::text_reply(app.ctx(), reply).await? {
        Replied::Answered { .. } | Replied::NotEnrolled | Replied::Duplicate => {}
        Replied::NotForNudged(reason) => ignore_event(reason, &seen, false),
    }
    Ok(())
}

async fn handle_home_opened(app: &AppState, user: &str, seen: String) -> Result<(), ApiError> {
    let Ok(person) = PersonId::parse(user) else {
        ignore_event("unreadable_user", &seen, true);
        return Ok(());
    };
    let ctx = app.ctx();
    readiness::publish_home(ctx.settings, ctx.store, &person, Some(seen), ctx.now).await?;
    Ok(())
}

// ---- interactions -----------------------------------------------------------

/// `POST /slack/interactions`: button clicks. Each clicked element is
/// dispatched by what its value says it is (`ActionKind`): a prompt's
/// answer, or the readiness nudge's.
pub async fn handle_interactions(
    State(app): State<AppState>,
    request: SlackRequest,
) -> Result<Response, ApiError> {
    let payload = form_field(&request.body, b"payload")
        .ok_or_else(|| ApiError::BadPayload("missing field `payload`".to_owned()))?;
    Ok(handle_interaction(app, &payload).await?.into_response())
}

/// The value of the first field `name` of a form body
/// (`application/x-www-form-urlencoded`), decoded (`+` is a space, `%XX` a
/// byte), or `None` if the body has no such field.
///
/// A click's body is one field, `payload`, of about 10 KB of encoded JSON,
/// the whole clicked message included: decoded here in one pass into one
/// buffer, which the JSON parser then reads (and checks as UTF-8), rather
/// than replacing the `+`s, decoding the escapes and checking UTF-8 in
/// three passes and as many copies, as a general form decoder does. Fields
/// are found with `memchr` (SIMD): a byte-at-a-time search for the `&`
/// that a click's body does not have took a third of the decoding's time.
fn form_field(body: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut fields = body;
    loop {
        let end = memchr::memchr(b'&', fields).unwrap_or(fields.len());
        let pair = &fields[..end];
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        if key == name {
            return Some(percent_decode(value));
        }
        fields = fields.get(end + 1..)?;
    }
}

/// `value` with `+` read as a space and each `%XX` as its byte; a `%` that
/// starts no escape stands for itself. Written to a buffer by index rather
/// than pushed, so the loop keeps its state in registers (twice as fast on
/// a click's payload as pushing onto a `Vec`).
fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut decoded = vec![0; value.len()];
    let (mut read, mut written) = (0, 0);
    while let Some(&byte) = value.get(read) {
        let mut out = if byte == b'+' { b' ' } else { byte };
        let mut used = 1;
        if byte == b'%'
            && let (Some(high), Some(low)) = (value.get(read + 1), value.get(read + 2))
            && let (Some(high), Some(low)) = (hex_value(*high), hex_value(*low))
        {
            out = high << 4 | low;
            used = 3;
        }
        if let Some(slot) = decoded.get_mut(written) {
            *slot = out;
        }
        written += 1;
        read += used;
    }
    decoded.truncate(written);
    decoded
}

/// The value of an ASCII hex digit, if it is one.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
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
                let click = answers::Click {
                    clicker: &clicker,
                    action_id: &action.action_id,
                    value,
                    action_ts: action.action_ts.as_deref(),
                    posted: location,
                };
                if let Clicked::Ignored(why) = answers::click(app.ctx(), click).await? {
                    ignore_click(why, &clicker, action);
                }
            }
            ActionKind::Nudge(button) => {
                let click = nudge::Click {
                    clicker: &clicker,
                    action_id: &action.action_id,
                    button: &button,
                    action_ts: action.action_ts.as_deref(),
                    posted: location.map(|(channel, ts)| nudge::PostedNudge { channel, ts }),
                };
                nudge::click(app.ctx(), click).await?;
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
    /// A prompt's answer button ([`ButtonValue`]), with its value
    /// ([`answers::click`]).
    Prompt(&'a str),
    /// One of the readiness nudge's answer buttons ([`nudge::click`]).
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
    let ctx = Ctx { now, ..app.ctx() };
    match pulse::run(ctx, &person, parsed).await {
        Ok(text) => Ok(ephemeral(text)),
        Err(e) => {
            if let Some(key) = &seen
                && let Err(undo) = store.unmark_seen(key).await
            {
                tracing::error!(error = %undo, "cannot release a failed command's id");
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::form_field;

    /// What a general form decoder reads as the field's value.
    fn decoded_by_serde(body: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(body)
            .unwrap()
            .into_iter()
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value)
    }

    #[test]
    fn a_form_field_reads_as_a_general_form_decoder_reads_it() {
        let json = r#"{"type":"block_actions","text":"3-5, 4+, once, … 100% ✓","a&b=c":"x+y"}"#;
        let encoded = serde_urlencoded::to_string([("payload", json)]).unwrap();
        for body in [
            encoded.clone(),
            format!("token=abc&{encoded}&payload=second"),
            "payload=a+b%20c%2Bd%e2%9c%93".to_owned(),
            "payload=".to_owned(),
            "payload".to_owned(),
            "other=1&payload=%41%4a%6a".to_owned(),
        ] {
            let ours =
                form_field(body.as_bytes(), b"payload").map(|v| String::from_utf8(v).unwrap());
            assert_eq!(ours, decoded_by_serde(&body), "{body}");
        }
        let ours = form_field(encoded.as_bytes(), b"payload").unwrap();
        assert_eq!(ours, json.as_bytes());
    }

    proptest::proptest! {
        /// Any body, escapes cut short and stray `%`s included, reads as
        /// the general decoder reads it (which replaces bytes that are not
        /// UTF-8, as the JSON parser would refuse them).
        #[test]
        fn any_body_reads_as_a_general_form_decoder_reads_it(
            body in "(payload|x)?[=&+%0-9a-fA-FzZ\\x{e9}]{0,40}",
        ) {
            let ours = form_field(body.as_bytes(), b"payload")
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            proptest::prop_assert_eq!(ours, decoded_by_serde(&body));
        }
    }

    #[test]
    fn a_stray_percent_stands_for_itself_and_a_missing_field_is_none() {
        assert_eq!(
            form_field(b"payload=100%&x=1", b"payload").unwrap(),
            b"100%"
        );
        assert_eq!(form_field(b"payload=%zz%4", b"payload").unwrap(), b"%zz%4");
        assert_eq!(form_field(b"x=1&y=2", b"payload"), None);
        assert_eq!(form_field(b"", b"payload"), None);
    }
}
