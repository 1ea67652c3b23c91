//! The team digest (README, "Schedules"): counts and medians over a
//! schedule's audience, posted once to a channel. What is read per person
//! (their answers, their latest state) is folded into counts here and
//! never leaves this function: the rendered post holds no id, name,
//! answer or single person's state.

use chrono::NaiveDate;

use crate::chat::Outgoing;
use crate::config::Settings;
use crate::domain::IsoWeek;
use crate::model::{self, State};
use crate::outbox::{self, Queued};
use crate::render::{self, DigestData, STATE_ORDER};
use crate::schedule::Schedule;
use crate::store::Store;

use super::{Result, history};

/// Whether this call queued the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Queued,
    /// Its dedupe key was already in the outbox: another dispatcher, or an
    /// earlier attempt, queued it.
    AlreadyQueued,
}

/// The outbox key of `schedule`'s digest for `week`: one post per
/// schedule and week, however many replicas or retries act on it.
pub fn dedupe_key(schedule: &Schedule, week: IsoWeek) -> String {
    format!("digest:{}:{week}", schedule.name)
}

/// Gathers the digest of `schedule` (a team digest) for the week holding
/// `today` (in the schedule's zone), renders it and queues one post to its
/// channel. Returns `None` for a schedule that is not a team digest.
pub async fn post(
    settings: &Settings,
    store: &dyn Store,
    schedule: &Schedule,
    today: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Posted>> {
    let Some(digest) = &schedule.digest else {
        return Ok(None);
    };
    let data = gather(settings, store, schedule, digest.min_group, today).await?;
    let message = render::team_digest(&data);
    let post = Queued::from(Outgoing::post(digest.channel.clone(), None, message));
    let queued = outbox::enqueue(
        store,
        &post,
        None,
        Some(dedupe_key(schedule, data.week)),
        now,
    )
    .await?;
    Ok(Some(if queued.is_some() {
        Posted::Queued
    } else {
        Posted::AlreadyQueued
    }))
}

/// The counts and medians of the digest for the week holding `today`.
async fn gather(
    settings: &Settings,
    store: &dyn Store,
    schedule: &Schedule,
    min_group: u32,
    today: NaiveDate,
) -> Result<DigestData> {
    let week = IsoWeek::of(today);
    let before = week.plus(-1);
    let mut asked = 0;
    let mut states: Vec<usize> = vec![0; STATE_ORDER.len()];
    let mut now_indices = Vec::new();
    let mut before_indices = Vec::new();
    for person in store.people().await? {
        if !person.enrolled || !schedule.includes(&person.id) {
            continue;
        }
        asked += 1;
        let answers = history::person_answers(store, &person.id).await?;
        if !answers.iter().any(|a| a.week == week) {
            continue;
        }
        // Someone whose answers were not assessed yet has no state: counted
        // with those who have too few weeks, which is what they are.
        let state = store
            .latest_assessment(&person.id)
            .await?
            .and_then(|row| STATE_ORDER.into_iter().find(|s| s.as_str() == row.state))
            .unwrap_or(State::InsufficientData);
        if let Some(i) = STATE_ORDER.iter().position(|s| *s == state) {
            states[i] += 1;
        }
        let chart = model::chart(&answers, &settings.catalogue, &settings.model, today);
        let index_of = |w: IsoWeek| chart.weeks.iter().find(|c| c.week == w)?.index;
        if let Some(i) = index_of(week) {
            now_indices.push(i);
        }
        if let Some(i) = index_of(before) {
            before_indices.push(i);
        }
    }
    let answered = states.iter().sum();
    Ok(DigestData {
        week,
        asked,
        answered,
        min_group,
        states: STATE_ORDER
            .into_iter()
            .zip(states)
            .filter(|(_, n)| *n > 0)
            .collect(),
        median: median(&mut now_indices),
        median_before: median(&mut before_indices),
    })
}

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when empty.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_odd_even_and_empty_lists() {
        assert_eq!(median(&mut [0.9, 0.1, 0.5]), Some(0.5));
        assert_eq!(median(&mut [0.8, 0.2, 0.4, 0.6]), Some(0.5));
        assert_eq!(median(&mut []), None);
    }
}
