//! Use cases shared by the HTTP handlers, the console and the CLI: recording
//! answers, asking now, and the person-facing side of `/pulse`. Drivers call
//! these; these call the store, the pure modules and the outbox.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use crate::outbox::{self, Outgoing};
use crate::render;
use crate::schedule::{Schedule, ScheduleKind};
use crate::store::{AnswerSource, CheckinRow, PersonRow, RecordOutcome, Store, StoreResult};

/// The ISO week `now` falls in, in the person's zone (UTC if unknown).
pub fn current_week(person: Option<&PersonRow>, now: DateTime<Utc>) -> IsoWeek {
    let tz: Tz = person
        .and_then(|p| p.tz.as_deref())
        .and_then(|tz| tz.parse().ok())
        .unwrap_or(Tz::UTC);
    IsoWeek::of(now.with_timezone(&tz).date_naive())
}

/// The schedule whose questions a reply outside a prompt's thread answers:
/// the first `checkin` schedule.
pub fn default_checkin(settings: &Settings) -> Option<&Schedule> {
    settings
        .schedules
        .list
        .iter()
        .find(|s| s.kind == ScheduleKind::Checkin)
}

/// The questions a reply is read against: the schedule's, else the whole
/// catalogue in order.
pub fn questions_for(settings: &Settings, schedule: Option<&str>) -> Vec<QuestionId> {
    schedule
        .and_then(|name| settings.schedules.list.iter().find(|s| s.name == name))
        .or_else(|| default_checkin(settings))
        .map(|s| s.questions.clone())
        .unwrap_or_else(|| {
            settings
                .catalogue
                .questions()
                .iter()
                .map(|q| q.id.clone())
                .collect()
        })
}

/// How a batch of answers went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Answers that were new or changed.
    pub changed: usize,
    /// Answers identical to what was stored.
    pub unchanged: usize,
}

/// Stores each answer for `person` in `week`; committed before returning.
pub async fn record_answers(
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
    answers: &[(QuestionId, OptionKey)],
    source: AnswerSource,
    now: DateTime<Utc>,
) -> StoreResult<Recorded> {
    let mut recorded = Recorded::default();
    for (question, option) in answers {
        let answer = Answer {
            person: person.clone(),
            week,
            question: question.clone(),
            option: option.clone(),
        };
        match store.record_answer(&answer, source, now).await? {
            RecordOutcome::Inserted | RecordOutcome::Changed => {
                recorded.changed += 1;
                metrics::counter!("nudged_answers_recorded_total", "source" => source.as_str())
                    .increment(1);
            }
            RecordOutcome::Unchanged => recorded.unchanged += 1,
        }
    }
    Ok(recorded)
}

/// Reads `text` as answers to `questions` for `person`'s `week`, stores
/// what it understood, and returns the reply to show them and whether
/// anything was recorded. Text it cannot read records nothing; the reply
/// then says why and how to write it.
#[allow(clippy::too_many_arguments)]
pub async fn answer_text(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
    questions: &[QuestionId],
    text: &str,
    source: AnswerSource,
    now: DateTime<Utc>,
) -> StoreResult<(String, bool)> {
    match crate::reply::parse_answers(text, &settings.catalogue, questions) {
        Ok(parsed) => {
            record_answers(store, person, week, &parsed.answers, source, now).await?;
            let understood = crate::reply::understood(&parsed, &settings.catalogue);
            Ok((format!("{understood} ({week})"), true))
        }
        Err(e) => Ok((
            format!(
                "{e}\n{}",
                crate::reply::help_text(&settings.catalogue, questions)
            ),
            false,
        )),
    }
}

/// A person's whole history, oldest week first.
pub async fn person_answers(store: &dyn Store, person: &PersonId) -> StoreResult<Vec<Answer>> {
    Ok(store
        .answers(Some(person))
        .await?
        .into_iter()
        .map(|row| row.answer)
        .collect())
}

/// The person's answers for one week, by question.
pub async fn week_answers(
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
) -> StoreResult<BTreeMap<QuestionId, OptionKey>> {
    Ok(store
        .week_answers(person, week)
        .await?
        .into_iter()
        .collect())
}

/// Renders the prompt of `schedule` for `person`'s `week` with what is
/// already answered.
pub async fn render_prompt(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
) -> StoreResult<render::Message> {
    let questions = questions_for(settings, Some(schedule));
    let answered = week_answers(store, person, week).await?;
    Ok(render::prompt(
        &settings.catalogue,
        &questions,
        person,
        week,
        schedule,
        &answered,
    ))
}

/// Asks `person` the default check-in now (`/pulse now`, `run --ask-now`):
/// records the check-in and puts the prompt in the outbox, addressed to the
/// person's DM. Returns the week asked about.
pub async fn ask_now(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> anyhow::Result<IsoWeek> {
    let schedule = default_checkin(settings)
        .map(|s| s.name.clone())
        .ok_or_else(|| anyhow::anyhow!("no checkin schedule is configured"))?;
    let week = current_week(Some(person), now);
    let checkin = store
        .record_checkin(&CheckinRow {
            id: 0,
            person: person.id.clone(),
            schedule: schedule.clone(),
            period: now,
            week,
            channel: None,
            message_ts: None,
            created_at: now,
        })
        .await?;
    let message = render_prompt(settings, store, &person.id, week, &schedule).await?;
    let mut post = Outgoing::post(person.id.as_str(), None, message);
    if let Outgoing::Post { checkin: link, .. } = &mut post {
        *link = checkin;
    }
    outbox::enqueue(store, &post, Some(&person.id), None, now).await?;
    Ok(week)
}
