//! A round of inbound writes (clicks, events; see
//! [`rounds`](crate::store::shared::rounds)) as one script: the writer
//! sends it to the connection's thread in one round trip, where one per
//! write cost a wake of that thread and of the writer, each way, per click.
//!
//! The rows go as three JSON arrays (`json_each`), since SQLite binds no
//! arrays and a fixed text is prepared once. The script keeps each write's
//! own meaning, as [`super::inbound`] does for one: its answers and its
//! replies stand only if its seen key is new, and its redraw only if one of
//! its answers is new or changes. SQLite's statements cannot read what an
//! earlier one of the script returned, so those are checked against the
//! tables before the round's rows are written, which is exact because no
//! two writes of a round share a key or an answer: the outbox rows first
//! (each redraw carrying its write's answers), then the answers, then the
//! seen keys, each gated on its key not yet being recorded.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use crate::store::shared::millis;
use crate::store::shared::rounds::{Write, outcome};
use crate::store::{InboundOutcome, InboundWrite};

/// The script: `?1` the seen keys, `?2` the answers, `?3` the outbox rows
/// ([`Rows`] says which element is which). Its rows: `('answer', person,
/// week, question)` per answer written, `('seen', key)` per key recorded.
const SCRIPT: &str = concat!(
    "SAVEPOINT job; ",
    insert_outbox!(),
    "SELECT m.value ->> 2, m.value ->> 3, m.value ->> 4, m.value ->> 5, m.value ->> 6, \
            m.value ->> 7, 'pending', 0, m.value ->> 8, m.value ->> 9 \
     FROM json_each(?3) AS m \
     WHERE (m.value ->> 1 IS NULL \
            OR NOT EXISTS (SELECT 1 FROM seen_events WHERE key = m.value ->> 1)) \
       AND (NOT (m.value ->> 0) OR EXISTS ( \
            SELECT 1 FROM json_each(m.value, '$[10]') AS a \
            WHERE NOT EXISTS (SELECT 1 FROM answers \
                              WHERE person = a.value ->> 0 AND week = a.value ->> 1 \
                                AND question = a.value ->> 2 AND option = a.value ->> 3))) \
     ON CONFLICT DO NOTHING; ",
    upsert_answers!(insert),
    "SELECT a.value ->> 1, a.value ->> 2, a.value ->> 3, a.value ->> 4, a.value ->> 5, \
            a.value ->> 6, 1 \
     FROM json_each(?2) AS a \
     WHERE a.value ->> 0 IS NULL \
        OR NOT EXISTS (SELECT 1 FROM seen_events WHERE key = a.value ->> 0)",
    upsert_answers!(update),
    " RETURNING 'answer', person, week, question; \
     INSERT INTO seen_events (key, seen_at) \
     SELECT k.value ->> 0, k.value ->> 1 FROM json_each(?1) AS k WHERE true \
     ON CONFLICT (key) DO NOTHING RETURNING 'seen', key, NULL, NULL; \
     RELEASE job"
);

/// Applies the writes at `places` of `writes` in one script on `conn`, in
/// the transaction open there, and returns their outcomes in that order.
/// An error is sqlx's own and leaves the script's savepoint open for the
/// caller to undo: one write refused (an unknown person) fails the script,
/// and with it every write of the round.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    writes: &[Write<'_>],
    places: &[usize],
) -> Result<Vec<InboundOutcome>, sqlx::Error> {
    let round: Vec<Write<'_>> = places.iter().map(|p| writes[*p]).collect();
    let rows = Rows::of(&round);
    let (keys, answers, messages) = (
        serde_json::to_string(&rows.keys),
        serde_json::to_string(&rows.answers),
        serde_json::to_string(&rows.messages),
    );
    let (Ok(keys), Ok(answers), Ok(messages)) = (keys, answers, messages) else {
        return Err(sqlx::Error::Protocol(
            "a round's rows could not be written as JSON".to_owned(),
        ));
    };
    let returned = sqlx::query(SCRIPT)
        .bind(keys)
        .bind(answers)
        .bind(messages)
        .fetch_all(&mut *conn)
        .await?;
    // Keys and answers are unique in a round: each names its write.
    let mut of_key: HashMap<&str, usize> = HashMap::new();
    let mut of_answer: HashMap<(&str, String, &str), usize> = HashMap::new();
    for (i, (write, _)) in round.iter().enumerate() {
        if let Some(key) = &write.seen_key {
            of_key.insert(key, i);
        }
        for answer in write.distinct_answers() {
            let at = (
                answer.person.as_str(),
                answer.week.to_string(),
                answer.question.as_str(),
            );
            of_answer.insert(at, i);
        }
    }
    let mut fresh = vec![false; round.len()];
    let mut changed = vec![0; round.len()];
    for row in &returned {
        let what: &str = row.try_get(0)?;
        let first: &str = row.try_get(1)?;
        let write = if what == "seen" {
            of_key.get(first).map(|i| (*i, true))
        } else {
            let week: String = row.try_get(2)?;
            let question: &str = row.try_get(3)?;
            of_answer.get(&(first, week, question)).map(|i| (*i, false))
        };
        match write {
            Some((i, true)) => fresh[i] = true,
            Some((i, false)) => changed[i] += 1,
            None => {
                return Err(sqlx::Error::Protocol(format!(
                    "a round returned a row of no write of it ({what} {first})"
                )));
            }
        }
    }
    Ok(round
        .iter()
        .enumerate()
        .map(|(i, (write, _))| outcome(write, fresh[i], changed[i]))
        .collect())
}

/// The script's three arrays, each element an array of columns.
#[derive(Default)]
struct Rows<'a> {
    /// `[key, seen_at]`.
    keys: Vec<(&'a str, i64)>,
    /// See [`Answer`].
    answers: Vec<Answer<'a>>,
    /// See [`Message`].
    messages: Vec<Message<'a>>,
}

/// An answer of a write: `[key, person, week, question, option, source,
/// recorded_at]`.
#[derive(Serialize)]
struct Answer<'a>(
    Option<&'a str>,
    &'a str,
    String,
    &'a str,
    &'a str,
    &'a str,
    i64,
);

/// An outbox row of a write: `[on_change, key, dedupe_key, coalesce_key,
/// person, kind, channel, payload, not_before, created_at, answers]`, the
/// answers (`[person, week, question, option]`) only on a redraw, which is
/// queued if one of them is new or changes.
#[derive(Serialize)]
struct Message<'a>(
    bool,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    &'a str,
    i64,
    i64,
    Vec<(&'a str, String, &'a str, &'a str)>,
);

impl<'a> Rows<'a> {
    fn of(round: &[Write<'a>]) -> Self {
        let mut rows = Self::default();
        for (write, now) in round {
            let write: &'a InboundWrite = write;
            let key = write.seen_key.as_deref();
            let now = millis(*now);
            if let Some(key) = key {
                rows.keys.push((key, now));
            }
            let answers = write.distinct_answers();
            let given: Vec<_> = answers
                .iter()
                .map(|a| {
                    (
                        a.person.as_str(),
                        a.week.to_string(),
                        a.question.as_str(),
                        a.option.as_str(),
                    )
                })
                .collect();
            for (person, week, question, option) in &given {
                rows.answers.push(Answer(
                    key,
                    person,
                    week.clone(),
                    question,
                    option,
                    write.source.as_str(),
                    now,
                ));
            }
            let redraw = write.on_change.iter().filter(|_| !answers.is_empty());
            let messages = redraw
                .map(|m| (true, m))
                .chain(write.always.iter().map(|m| (false, m)));
            for (on_change, message) in messages {
                rows.messages.push(Message(
                    on_change,
                    key,
                    message.dedupe_key.as_deref(),
                    message.coalesce_key.as_deref(),
                    message.person.as_ref().map(|p| p.as_str()),
                    &message.kind,
                    &message.channel,
                    &message.payload,
                    millis(message.not_before),
                    millis(message.created_at),
                    if on_change { given.clone() } else { Vec::new() },
                ));
            }
        }
        rows
    }
}
