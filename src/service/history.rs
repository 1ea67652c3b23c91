//! What the readiness model and the exports read about a person.

use std::collections::BTreeMap;

use crate::config::Settings;
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use crate::model::{NudgeAnswer, SentNudge};
use crate::store::{Store, StoreResult};

use super::{Error, Result};

/// A person's whole history, oldest week first.
pub async fn person_answers(store: &dyn Store, person: &PersonId) -> StoreResult<Vec<Answer>> {
    Ok(store
        .answers(Some(person))
        .await?
        .into_iter()
        .map(|row| row.answer)
        .collect())
}

/// What the readiness model reads about a person: their answers, oldest
/// week first, and their nudges with the answers to them.
pub async fn person_history(
    store: &dyn Store,
    person: &PersonId,
) -> StoreResult<(Vec<Answer>, Vec<SentNudge>)> {
    let answers = person_answers(store, person).await?;
    let nudges = store
        .nudges(person)
        .await?
        .into_iter()
        .map(|n| SentNudge {
            sent_on: n.sent_at.date_naive(),
            answer: n
                .response
                .zip(n.answered_at)
                .map(|(response, at)| NudgeAnswer {
                    response,
                    on: at.date_naive(),
                }),
        })
        .collect();
    Ok((answers, nudges))
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

/// A person's answers as CSV, in the export's order, with how many rows
/// it holds (`/pulse export`).
pub async fn export_csv(
    settings: &Settings,
    store: &dyn Store,
    person: &PersonId,
) -> Result<(usize, String)> {
    let mut answers = person_answers(store, person).await?;
    crate::history::sort_for_export(&mut answers, &settings.catalogue);
    let mut csv = Vec::new();
    crate::history::write_csv(&mut csv, &answers).map_err(|e| Error::Export(e.to_string()))?;
    Ok((answers.len(), String::from_utf8_lossy(&csv).into_owned()))
}
