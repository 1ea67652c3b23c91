//! Asking a person: a check-in's (or reminder's) prompt put in the outbox.
//! One use case for the scheduler's runs, `/pulse now` and
//! `run --ask-now`, so a prompt is recorded, drawn and linked one way.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::chat::Outgoing;
use crate::config::Settings;
use crate::domain::{IsoWeek, OptionKey, PersonId, QuestionId};
use crate::outbox::PromptRow;
use crate::render;
use crate::schedule::{Schedule, ScheduleKind};
use crate::store::{CheckinRow, PersonRow, PromptWrite, RunWrite, Store};

use super::{Result, current_week, history};

/// One prompt to send.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub person: &'a PersonId,
    /// A `checkin` or `reminder` schedule: whose questions, and whether
    /// only people who have not answered yet are asked.
    pub schedule: &'a Schedule,
    /// The week asked about.
    pub week: IsoWeek,
    /// The occurrence it answers: the scheduled instant, or now.
    pub period: DateTime<Utc>,
    /// Asks once per key (a scheduled run's); `None` asks every time.
    pub dedupe_key: Option<String>,
}

/// What [`ask`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The prompt is in the outbox.
    Queued,
    /// Its key was queued before: nothing new.
    AlreadyQueued,
    /// A reminder to someone who has answered that week: not sent.
    NotNeeded,
}

/// Records the check-in and queues its prompt, showing what is already
/// answered, addressed to the person's DM and linked to the check-in, so
/// clicks and thread replies on it find it once it is posted.
#[tracing::instrument(skip_all, fields(person = %ask.person, schedule = %ask.schedule.name, week = %ask.week))]
pub async fn ask(
    settings: &Settings,
    store: &dyn Store,
    ask: Ask<'_>,
    now: DateTime<Utc>,
) -> Result<Asked> {
    let answered = history::week_answers(store, ask.person, ask.week).await?;
    let Some(prompt) = prompt(settings, ask, &answered, now) else {
        return Ok(Asked::NotNeeded);
    };
    let run = RunWrite {
        prompt: Some(prompt),
        ..RunWrite::default()
    };
    let recorded = store.record_runs(&[run], now).await?;
    Ok(if recorded.first().is_some_and(|r| r.queued) {
        Asked::Queued
    } else {
        Asked::AlreadyQueued
    })
}

/// What [`ask`] writes, given what the person has `answered` that week,
/// for a caller that reads answers and commits writes for many people at
/// once (the scheduler, with each run's claim: [`Store::record_runs`]);
/// `None` for a reminder to someone who has answered.
pub fn prompt(
    settings: &Settings,
    ask: Ask<'_>,
    answered: &BTreeMap<QuestionId, OptionKey>,
    now: DateTime<Utc>,
) -> Option<PromptWrite> {
    let Ask {
        person,
        schedule,
        week,
        period,
        dedupe_key,
    } = ask;
    let reminder = schedule.kind == ScheduleKind::Reminder;
    if reminder && !answered.is_empty() {
        return None;
    }
    let draw = if reminder {
        render::reminder
    } else {
        render::prompt
    };
    let message = draw(
        &settings.catalogue,
        &schedule.questions,
        person,
        week,
        &schedule.name,
        answered,
    );
    let row = PromptRow::new(
        Outgoing::post(person.as_str(), None, message),
        person,
        dedupe_key,
        now,
    );
    Some(PromptWrite {
        checkin: CheckinRow {
            id: 0,
            person: person.clone(),
            schedule: schedule.name.clone(),
            period,
            week,
            channel: None,
            message_ts: None,
            created_at: now,
        },
        // The check-in's id is `None` when an earlier attempt recorded it:
        // the prompt then goes out unlinked (its buttons still work; they
        // carry the week).
        draw: Arc::new(move |checkin| row.linked(checkin)),
    })
}

/// What [`ask_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedNow {
    /// The default check-in for this week is in the outbox.
    Queued(IsoWeek),
    /// No `checkin` schedule is configured: nothing to ask.
    NoCheckinSchedule,
}

/// Asks `person` the default check-in now (`/pulse now`, `run --ask-now`),
/// about the week it is where they are.
pub async fn ask_now(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> Result<AskedNow> {
    let Some(schedule) = settings.default_checkin() else {
        return Ok(AskedNow::NoCheckinSchedule);
    };
    let week = current_week(Some(person), now);
    let request = Ask {
        person: &person.id,
        schedule,
        week,
        period: now,
        dedupe_key: None,
    };
    ask(settings, store, request, now).await?;
    Ok(AskedNow::Queued(week))
}
