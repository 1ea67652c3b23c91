//! A batch of inbound writes (clicks, events) as one statement: the group
//! commit of `writer` sends a batch to PostgreSQL in one round trip, not
//! one per write.
//!
//! Each write's rows are given as arrays (`unnest`), tagged with the
//! write's place in the batch, and the statement keeps each write's own
//! meaning, as [`super::inbound_statement`] does for one: its answers and
//! its replies stand only if its seen key was new, and its redraw only if
//! one of its answers was written. It returns, per write, whether its key
//! was new and how many of its answers changed.
//!
//! Keys and answers are written in their sort order, so two replicas
//! writing the same ones lock them in the same order and do not deadlock
//! over them.
//!
//! One statement cannot touch one row twice (PostgreSQL refuses an
//! `ON CONFLICT DO UPDATE` that does), and two writes of one key must
//! count as two (the second a duplicate). So writes that share a seen key
//! or an answer's (person, week, question) go in separate rounds
//! ([`rounds`]), each one statement, applied in order in one transaction.

use sqlx::PgConnection;
use sqlx::Row;

use crate::domain::PersonId;
use crate::store::InboundOutcome;
use crate::store::shared::millis;
use crate::store::shared::rounds::outcome;
pub(super) use crate::store::shared::rounds::{Write, rounds};

/// The statement: `$1`–`$3` the writes (place, seen key, time), `$4`–`$10`
/// their answers, `$11`–`$20` their outbox rows (`on_change` marks a
/// redraw, else a reply queued whatever the answers did). Answers are
/// joined back to their write by their key, which is unique in a round.
const STATEMENT: &str = concat!(
    "WITH write (idx, key, at) AS ( \
       SELECT * FROM unnest($1::int4[], $2::text[], $3::int8[])), \
     seen AS ( \
       INSERT INTO seen_events (key, seen_at) \
       SELECT key, at FROM write WHERE key IS NOT NULL ORDER BY key \
       ON CONFLICT (key) DO NOTHING RETURNING key), \
     fresh AS ( \
       SELECT idx FROM write WHERE key IS NULL OR key IN (SELECT key FROM seen)), \
     given (idx, person, week, question, option, source, recorded_at) AS ( \
       SELECT * FROM unnest($4::int4[], $5::text[], $6::text[], $7::text[], $8::text[], \
                            $9::text[], $10::int8[])), \
     answer AS (",
    upsert_answers!(insert),
    "SELECT person, week, question, option, source, recorded_at, 1 FROM given \
       WHERE idx IN (SELECT idx FROM fresh) ORDER BY person, week, question",
    upsert_answers!(update),
    " RETURNING person, week, question), \
     changed AS ( \
       SELECT given.idx FROM answer JOIN given \
         ON answer.person = given.person COLLATE \"C\" \
        AND answer.week = given.week COLLATE \"C\" \
        AND answer.question = given.question COLLATE \"C\"), \
     message (idx, on_change, dedupe_key, coalesce_key, person, kind, channel, payload, \
              not_before, created_at) AS ( \
       SELECT * FROM unnest($11::int4[], $12::bool[], $13::text[], $14::text[], $15::text[], \
                            $16::text[], $17::text[], $18::text[], $19::int8[], $20::int8[])), \
     queued AS (",
    insert_outbox!(),
    "SELECT dedupe_key, coalesce_key, person, kind, channel, payload, 'pending', 0, \
              not_before, created_at FROM message \
       WHERE CASE WHEN on_change THEN idx IN (SELECT idx FROM changed) \
                  ELSE idx IN (SELECT idx FROM fresh) END \
       ON CONFLICT DO NOTHING) \
     SELECT idx, idx IN (SELECT idx FROM fresh) AS fresh, \
            (SELECT count(*) FROM changed WHERE changed.idx = write.idx) AS changed \
     FROM write"
);

/// Applies the writes at `places` in one statement on `conn`, in whatever
/// transaction is open there, and returns their outcomes in that order.
/// Errors are sqlx's own: one write refused fails the statement, and with
/// it every write of the round.
pub(super) async fn apply(
    conn: &mut PgConnection,
    writes: &[Write<'_>],
    places: &[usize],
) -> Result<Vec<InboundOutcome>, sqlx::Error> {
    let Columns {
        write,
        answer,
        message,
    } = Columns::of(writes, places);
    let rows = sqlx::query(STATEMENT)
        .bind(write.idx)
        .bind(write.key)
        .bind(write.at)
        .bind(answer.idx)
        .bind(answer.person)
        .bind(answer.week)
        .bind(answer.question)
        .bind(answer.option)
        .bind(answer.source)
        .bind(answer.recorded_at)
        .bind(message.idx)
        .bind(message.on_change)
        .bind(message.dedupe_key)
        .bind(message.coalesce_key)
        .bind(message.person)
        .bind(message.kind)
        .bind(message.channel)
        .bind(message.payload)
        .bind(message.not_before)
        .bind(message.created_at)
        .fetch_all(conn)
        .await?;
    let mut outcomes = vec![InboundOutcome::Duplicate; places.len()];
    for row in rows {
        let idx: i32 = row.try_get("idx")?;
        let fresh: bool = row.try_get("fresh")?;
        let changed: i64 = row.try_get("changed")?;
        let Some(i) = usize::try_from(idx).ok().filter(|i| *i < places.len()) else {
            return Err(sqlx::Error::Protocol(format!(
                "batch row {idx} out of range"
            )));
        };
        let (write, _) = writes[places[i]];
        outcomes[i] = outcome(write, fresh, usize::try_from(changed).unwrap_or_default());
    }
    Ok(outcomes)
}

/// The statement's arrays, one per column, for the writes of one round.
#[derive(Default)]
struct Columns {
    write: WriteColumns,
    answer: AnswerColumns,
    message: MessageColumns,
}

#[derive(Default)]
struct WriteColumns {
    idx: Vec<i32>,
    key: Vec<Option<String>>,
    at: Vec<i64>,
}

#[derive(Default)]
struct AnswerColumns {
    idx: Vec<i32>,
    person: Vec<String>,
    week: Vec<String>,
    question: Vec<String>,
    option: Vec<String>,
    source: Vec<&'static str>,
    recorded_at: Vec<i64>,
}

#[derive(Default)]
struct MessageColumns {
    idx: Vec<i32>,
    on_change: Vec<bool>,
    dedupe_key: Vec<Option<String>>,
    coalesce_key: Vec<Option<String>>,
    person: Vec<Option<String>>,
    kind: Vec<String>,
    channel: Vec<String>,
    payload: Vec<String>,
    not_before: Vec<i64>,
    created_at: Vec<i64>,
}

impl Columns {
    fn of(writes: &[Write<'_>], places: &[usize]) -> Self {
        let mut columns = Self::default();
        for (idx, place) in places.iter().enumerate() {
            let idx = i32::try_from(idx).unwrap_or(i32::MAX);
            let (write, now) = writes[*place];
            columns.write.idx.push(idx);
            columns.write.key.push(write.seen_key.clone());
            columns.write.at.push(millis(now));
            let answers = write.distinct_answers();
            for answer in &answers {
                let given = &mut columns.answer;
                given.idx.push(idx);
                given.person.push(answer.person.to_string());
                given.week.push(answer.week.to_string());
                given.question.push(answer.question.to_string());
                given.option.push(answer.option.to_string());
                given.source.push(write.source.as_str());
                given.recorded_at.push(millis(now));
            }
            let redraw = write.on_change.iter().filter(|_| !answers.is_empty());
            let messages = redraw
                .map(|m| (true, m))
                .chain(write.always.iter().map(|m| (false, m)));
            for (on_change, message) in messages {
                let queued = &mut columns.message;
                queued.idx.push(idx);
                queued.on_change.push(on_change);
                queued.dedupe_key.push(message.dedupe_key.clone());
                queued.coalesce_key.push(message.coalesce_key.clone());
                queued
                    .person
                    .push(message.person.as_ref().map(PersonId::to_string));
                queued.kind.push(message.kind.clone());
                queued.channel.push(message.channel.clone());
                queued.payload.push(message.payload.clone());
                queued.not_before.push(millis(message.not_before));
                queued.created_at.push(millis(message.created_at));
            }
        }
        columns
    }
}
