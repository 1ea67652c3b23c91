//! Answers to the readiness nudge (ARCHITECTURE.md, "The nudge"): a click on
//! Interested, Not now or Not for me is stored with the nudge, and the
//! posted nudge is redrawn to show it.
//!
//! [`click`] is the use case every chat driver calls with a verified
//! click; it commits the answer, the person's nudges setting and the
//! nudge's redraw together before the driver acknowledges; the outbox
//! worker draws that redraw (`outbox::redraw`). What the answers do
//! to later nudges is the model's (`model::assess`): "Not now" re-arms
//! after `model.not_now_weeks`, "Not for me" turns nudges off until the
//! person turns them back on (`/pulse nudge on`).

use chrono::{DateTime, Utc};

use crate::domain::{NudgeResponse, PersonId};
use crate::outbox;
use crate::render::NudgeButton;
use crate::store::{NudgeClick, NudgeClickOutcome, Store, StoreResult, action_seen_key};

use super::{Ctx, Result};

/// What became of a click on a nudge's answer button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Stored: a new or changed answer (its redraw is queued).
    Recorded(NudgeResponse),
    /// The same answer was already stored.
    Unchanged,
    /// The same click, delivered again: nothing changed.
    Duplicate,
    /// A click on someone else's nudge: ignored.
    NotTheirs,
    /// No such nudge is stored (forgotten since, or never sent): ignored.
    UnknownNudge,
    /// The value came under another element's `action_id`: no click
    /// nudged's nudge could have sent. Ignored.
    NotANudgeButton,
}

/// A click on one of the nudge's answer buttons, as the platform reports
/// it.
#[derive(Debug, Clone, Copy)]
pub struct Click<'a> {
    pub clicker: &'a PersonId,
    pub action_id: &'a str,
    /// The clicked value, read.
    pub button: &'a NudgeButton,
    /// The click's own id (Slack's `action_ts`).
    pub action_ts: Option<&'a str>,
    pub posted: Option<PostedNudge<'a>>,
}

/// Records a click on a nudge's answer button ([`answer`]) if it is one
/// nudged rendered, and has the person re-assessed: the nudges setting
/// follows even an unchanged answer.
#[tracing::instrument(skip_all, fields(person = %click.clicker))]
pub async fn click(ctx: Ctx<'_>, click: Click<'_>) -> Result<Answered> {
    if click.action_id != format!("nudge:{}", click.button.response) {
        metrics::counter!("nudged_clicks_ignored_total", "reason" => "not_a_nudge_button")
            .increment(1);
        return Ok(Answered::NotANudgeButton);
    }
    let answered = answer(
        ctx.store,
        click.clicker,
        click.button,
        click.posted,
        click.action_ts,
        ctx.now,
    )
    .await?;
    if matches!(answered, Answered::Recorded(_) | Answered::Unchanged) {
        ctx.assessor.request(click.clicker);
    }
    Ok(answered)
}

/// Where the clicked nudge is posted: its channel and message timestamp.
#[derive(Debug, Clone, Copy)]
pub struct PostedNudge<'a> {
    pub channel: &'a str,
    pub ts: &'a str,
}

/// Records `clicker`'s click on `button`. Only the nudge's own person
/// answers it. `action_ts` identifies the click itself (with the user, as
/// [`action_seen_key`]: the same key a prompt's click has, which
/// [`Store::forget`] removes), so a click delivered twice counts once; `posted`
/// says where to redraw the nudge. Committed before returning.
pub async fn answer(
    store: &dyn Store,
    clicker: &PersonId,
    button: &NudgeButton,
    posted: Option<PostedNudge<'_>>,
    action_ts: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Answered> {
    if &button.person != clicker {
        metrics::counter!("nudged_clicks_ignored_total", "reason" => "not_own_nudge").increment(1);
        tracing::info!(nudge_for = %button.person, clicked_by = %clicker, "ignored a click on someone else's nudge");
        return Ok(Answered::NotTheirs);
    }
    let click = NudgeClick {
        person: button.person.clone(),
        week: button.week,
        response: button.response,
        at: now,
        seen_key: action_ts.map(|ts| action_seen_key(clicker, ts)),
    };
    let redraw =
        posted.map(|p| outbox::refresh_nudge(p.channel, p.ts, &button.person, button.week, now));
    let outcome = store.answer_nudge(&click, redraw.as_ref()).await?;
    Ok(match outcome {
        NudgeClickOutcome::Recorded => {
            metrics::counter!("nudged_nudge_responses_total", "response" => button.response.as_str())
                .increment(1);
            tracing::info!(person = %button.person, week = %button.week, response = %button.response, "nudge answered");
            Answered::Recorded(button.response)
        }
        NudgeClickOutcome::Unchanged => Answered::Unchanged,
        NudgeClickOutcome::Duplicate => {
            metrics::counter!("nudged_duplicates_dropped_total", "kind" => "nudge_click")
                .increment(1);
            Answered::Duplicate
        }
        NudgeClickOutcome::UnknownNudge => {
            metrics::counter!("nudged_clicks_ignored_total", "reason" => "unknown_nudge")
                .increment(1);
            Answered::UnknownNudge
        }
    })
}
