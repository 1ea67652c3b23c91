//! `nudged run --demo`: a made-up history for the console person, so a
//! newcomer sees a trend and the readiness nudge in the first minute
//! instead of after five weeks of answers.
//!
//! The demo answers are stored as [`AnswerSource::Demo`]: the rows say
//! themselves that they are demo data, so `nudged forget --demo` removes
//! exactly them (and the assessments and nudges recorded while they were
//! stored), and keeps every answer the person typed, even one that replaced
//! a demo answer. No marker beside the data can drift from it.

use chrono::{DateTime, Utc};

use crate::config::{Platform, Settings};
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use crate::store::{AnswerSource, DemoForgetReport, ImportOutcome, PersonRow, Store};

use super::{Result, current_week};

/// The demo's weeks, oldest first: how many weeks before the current one,
/// and the answers (decisions, stakeholders, tradeoffs, focus,
/// reversibility, continuity, capacity), or `None` for a week not answered.
/// With the default model the index rises from about 0.1 to 0.9; four of the
/// last seven weeks are strong (five are needed), so the state is
/// `building` until one strong week this week makes it `sustained`.
const WEEKS: [(i64, Option<[&str; 7]>); 10] = [
    (
        10,
        Some(["1-2", "0-1", "none", "tracking", "easily", "partly", "yes"]),
    ),
    (
        9,
        Some(["1-2", "2-3", "none", "mixed", "easily", "same", "yes"]),
    ),
    (
        8,
        Some(["1-2", "2-3", "once", "mixed", "partly", "same", "little"]),
    ),
    (
        7,
        Some(["3-5", "2-3", "once", "mixed", "partly", "same", "yes"]),
    ),
    // A week off: it shows as a week that did not count.
    (6, None),
    (
        5,
        Some(["3-5", "2-3", "once", "mixed", "partly", "same", "yes"]),
    ),
    (
        4,
        Some(["3-5", "4+", "once", "deciding", "partly", "same", "yes"]),
    ),
    (
        3,
        Some(["6+", "4+", "once", "deciding", "partly", "same", "yes"]),
    ),
    (
        2,
        Some(["3-5", "4+", "several", "mixed", "hardly", "same", "yes"]),
    ),
    (
        1,
        Some(["6+", "4+", "several", "deciding", "partly", "same", "yes"]),
    ),
];

/// The questions of [`WEEKS`]' answers, in their order.
const QUESTIONS: [&str; 7] = [
    "decisions",
    "stakeholders",
    "tradeoffs",
    "focus",
    "reversibility",
    "continuity",
    "capacity",
];

/// The demo history of `person`, ending the week before `current`.
/// Deterministic: the same week gives the same answers.
pub fn history(person: &PersonId, current: IsoWeek) -> Vec<Answer> {
    WEEKS
        .iter()
        .filter_map(|(ago, answers)| answers.map(|a| (current.plus(-ago), a)))
        .flat_map(|(week, options)| {
            QUESTIONS.iter().zip(options).map(move |(q, o)| Answer {
                person: person.clone(),
                week,
                question: QuestionId::parse(q).expect("demo question ids are valid"),
                option: OptionKey::parse(o).expect("demo option keys are valid"),
            })
        })
        .collect()
}

/// Why `--demo` cannot run with `settings`, naming the key: the demo is for
/// the embedded default only, a SQLite store and the console, so it never
/// writes made-up answers among a team's real ones.
pub fn refusal(settings: &Settings) -> Option<String> {
    if settings.chat.platform != Platform::Console {
        return Some(format!(
            "--demo needs chat.platform = \"console\" (it is \"{}\") in {}",
            settings.chat.platform.as_str(),
            settings.file.display()
        ));
    }
    if !settings.storage.url.starts_with("sqlite:") {
        return Some(format!(
            "--demo needs storage.url = \"sqlite://…\" (it is {}) in {}",
            crate::store::redact_url(&settings.storage.url),
            settings.file.display()
        ));
    }
    None
}

/// Stores the demo history for `person` (the console person), ending last
/// week in their zone. Weeks and questions they already answered keep
/// their answer; run again, it adds nothing.
pub async fn add(
    store: &dyn Store,
    person: &PersonRow,
    now: DateTime<Utc>,
) -> Result<ImportOutcome> {
    let stored: std::collections::HashSet<(IsoWeek, QuestionId)> = store
        .answers(Some(&person.id))
        .await?
        .into_iter()
        .filter(|row| row.source != AnswerSource::Demo)
        .map(|row| (row.answer.week, row.answer.question))
        .collect();
    let answers: Vec<Answer> = history(&person.id, current_week(Some(person), now))
        .into_iter()
        .filter(|a| !stored.contains(&(a.week, a.question.clone())))
        .collect();
    Ok(store.import_demo(&answers, now).await?)
}

/// Removes `person`'s demo history and what it caused (`nudged forget --demo`).
pub async fn forget(store: &dyn Store, person: &PersonId) -> Result<DemoForgetReport> {
    Ok(store.forget_demo(person).await?)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::default_catalogue;
    use crate::model::{self, History, Params, State};

    fn assess(answers: &[Answer], today: NaiveDate) -> State {
        let history = History {
            answers,
            nudges: &[],
            nudges_off: false,
        };
        model::assess(&history, &default_catalogue(), &Params::default(), today).state
    }

    #[test]
    fn the_history_builds_and_one_strong_week_makes_it_sustained() {
        let person = PersonId::parse("demo").unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
        let current = IsoWeek::of(today);
        let mut answers = history(&person, current);
        assert_eq!(answers.len(), 9 * 7);
        assert!(answers.iter().all(|a| a.week < current));
        assert_eq!(assess(&answers, today), State::Building);

        for (q, o) in QUESTIONS
            .iter()
            .zip(["6+", "4+", "several", "deciding", "hardly", "same", "yes"])
        {
            answers.push(Answer {
                person: person.clone(),
                week: current,
                question: QuestionId::parse(q).unwrap(),
                option: OptionKey::parse(o).unwrap(),
            });
        }
        assert_eq!(assess(&answers, today), State::Sustained);
    }

    #[test]
    fn the_history_is_the_same_for_the_same_week() {
        let person = PersonId::parse("demo").unwrap();
        let week: IsoWeek = "2027-W01".parse().unwrap();
        assert_eq!(history(&person, week), history(&person, week));
        assert_eq!(
            history(&person, week)[0].week.to_string(),
            "2026-W44",
            "2026 has 53 weeks"
        );
    }
}
