//! Redraws drawn at send time: a queued [`super::Redraw`] becomes the
//! message to send from what the store holds now, through the pure
//! renderers and the catalogue in `Settings`.

use crate::config::Settings;
use crate::domain::{IsoWeek, PersonId};
use crate::render::{self, Message};
use crate::store::{Store, StoreError, StoreResult};

/// `person`'s prompt of `schedule` for `week`, showing what is answered.
pub async fn prompt(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
) -> StoreResult<Message> {
    let questions = settings.questions_for(Some(schedule));
    let answered = store
        .week_answers(person, week)
        .await?
        .into_iter()
        .collect();
    Ok(render::prompt(
        &settings.catalogue,
        &questions,
        person,
        week,
        schedule,
        &answered,
    ))
}

/// `person`'s nudge of `week` as posted, with its buttons and the answer
/// stored now. `None` if it is not stored, or was stored without its text
/// (sent before nudges could be answered).
pub async fn nudge(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
) -> StoreResult<Option<Message>> {
    let nudges = store.nudges(person).await?;
    let Some(nudge) = nudges.into_iter().find(|n| n.week == week) else {
        return Ok(None);
    };
    let Some(stored) = nudge.message else {
        return Ok(None);
    };
    let content: Message = serde_json::from_str(&stored).map_err(|e| StoreError::Corrupt {
        table: "nudges",
        problem: format!("message of {person}'s nudge of {week}: {e}"),
    })?;
    Ok(Some(render::nudge_with_answer(
        &content,
        person,
        week,
        nudge.response,
        settings.model.not_now_weeks,
    )))
}
