//! What both engines share: the SQL text of every statement that reads or
//! writes the same way on SQLite and PostgreSQL, the functions that bind
//! and run it, and the decoding of rows into [`super::rows`] records. All
//! of it is generic over sqlx's [`Database`], as [`super::bind`] binds
//! values, so [`super::sqlite`] and [`super::postgres`] keep only what
//! truly differs: SQLite's group-commit writer, checkpoints and
//! savepoints; PostgreSQL's `SKIP LOCKED`, advisory-locked migrations and
//! single-statement batches.
//!
//! Statements built at run time for a list of rows are not kept prepared
//! (`persistent(false)`): their text changes with the number of rows, and
//! each one kept would hold the engine's compiled plan for that size on
//! every connection that ran it (on SQLite, a program as long as its rows).
//!
//! Statements use numbered placeholders (`$1`, `$2`, …): PostgreSQL's own,
//! and understood by sqlx's SQLite driver as the parameter of that number
//! (SQLite reads `$1` as a named parameter; sqlx binds it by its number),
//! so one text serves both, a placeholder used twice included. Casts are
//! written `CAST(x AS BIGINT)`, which both dialects read.

use chrono::{DateTime, Utc};
use sqlx::Database;

use super::{RecordOutcome, StoreError, StoreResult};
use crate::domain::PersonId;

/// The columns of each table, as literals so queries can be `concat!`ed
/// into `&'static str` (sqlx caches one prepared statement per text, and
/// takes only static text as safe SQL).
macro_rules! columns {
    (people) => {
        "id, name, tz, enrolled, paused_until, nudges_off_since, created_at"
    };
    (answers) => {
        "person, week, question, option, source, recorded_at"
    };
    (checkins) => {
        "id, person, schedule, period, week, channel, message_ts, created_at"
    };
    (assessments) => {
        "person, week, state, ewma, detail, assessed_at"
    };
    (nudges) => {
        "person, week, sent_at, reasons, message, response, answered_at"
    };
    (outbox) => {
        "id, dedupe_key, person, kind, channel, payload, status, attempts, \
         not_before, lease_until, last_error, response, created_at, sent_at"
    };
}

/// The upsert of answers, up to its `VALUES`. `revision` counts the writes
/// of a row (1 when inserted, +1 per change) and is returned for every row
/// written; a row whose option was already stored is not written and returns
/// nothing. So one statement both stores and says what it did, with the
/// write lock held for one round trip.
macro_rules! upsert_answers {
    (insert) => {
        "INSERT INTO answers (person, week, question, option, source, recorded_at, revision) "
    };
    (update) => {
        " ON CONFLICT (person, week, question) DO UPDATE SET \
           option = excluded.option, source = excluded.source, \
           recorded_at = excluded.recorded_at, revision = answers.revision + 1 \
         WHERE answers.option <> excluded.option"
    };
    (on_conflict) => {
        concat!(upsert_answers!(update), " RETURNING revision")
    };
}

/// The head of an outbox insert; the values follow, in the order of
/// [`super::bind::outbox`] then `'pending', 0` where marked.
macro_rules! insert_outbox {
    () => {
        "INSERT INTO outbox (dedupe_key, coalesce_key, person, kind, channel, payload, status, \
                             attempts, not_before, created_at) "
    };
}

/// The statements that differ between the engines only by a clause, written
/// once here with that clause (`$lock`) left to each engine's [`Engine`]
/// constant: SQLite runs every write under its one write lock and knows no
/// `FOR UPDATE`; PostgreSQL locks the rows it picks. A macro because only
/// `concat!` joins text at compile time, and it joins only literals.
macro_rules! locking_statements {
    (claim_outbox, $lock:literal) => {
        concat!(
            "UPDATE outbox SET lease_until = $1, coalesce_key = NULL WHERE id IN ( \
               SELECT id FROM outbox \
               WHERE status = 'pending' AND not_before <= $2 \
                 AND (lease_until IS NULL OR lease_until <= $2) \
               ORDER BY not_before, id LIMIT $3",
            $lock,
            ") RETURNING ",
            columns!(outbox)
        )
    };
    (nudge_response, $lock:literal) => {
        concat!(
            "SELECT response FROM nudges WHERE person = $1 AND week = $2",
            $lock
        )
    };
    // The oldest rows (by `$time`) of `$table` before `$1`, at most `$2`.
    (prune_before, $table:literal, $key:literal, $time:literal, $lock:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " IN ( \
               SELECT ",
            $key,
            " FROM ",
            $table,
            " WHERE ",
            $time,
            " < $1 \
               ORDER BY ",
            $time,
            " LIMIT $2",
            $lock,
            ")"
        )
    };
    (prune_seen, $lock:literal) => {
        locking_statements!(prune_before, "seen_events", "key", "seen_at", $lock)
    };
    (prune_outbox, $lock:literal) => {
        concat!(
            "DELETE FROM outbox WHERE id IN ( \
               SELECT id FROM outbox WHERE status IN ('sent', 'failed') AND created_at < $1 \
               ORDER BY created_at LIMIT $2",
            $lock,
            ")"
        )
    };
    (prune_channel_pace, $lock:literal) => {
        locking_statements!(prune_before, "channel_pace", "key", "next_free", $lock)
    };
    // "Not the latest": a later one of the same person exists, in the
    // order `latest_assessment` reads (time, then the row saved last).
    (prune_assessments, $lock:literal) => {
        concat!(
            "DELETE FROM assessments WHERE id IN ( \
               SELECT a.id FROM assessments a WHERE a.assessed_at < $1 AND EXISTS ( \
                 SELECT 1 FROM assessments b WHERE b.person = a.person \
                   AND (b.assessed_at > a.assessed_at \
                        OR (b.assessed_at = a.assessed_at AND b.id > a.id))) \
               ORDER BY a.assessed_at LIMIT $2",
            $lock,
            ")"
        )
    };
}

/// `impl<DB> Sql<DB> { … }` with the bounds every shared statement needs
/// of the engine: that its driver encodes and decodes the values nudged
/// stores, and that a connection runs queries. A macro because Rust cannot
/// name a list of bounds on types other than the engine (a trait's
/// `where` clauses are not implied where it is used), and each file of
/// shared statements would otherwise spell the list again.
macro_rules! shared_statements {
    ($($item:item)*) => {
        impl<DB> $crate::store::shared::Sql<DB>
        where
            DB: $crate::store::shared::Engine + ::sqlx::database::HasStatementCache,
            DB::Arguments: ::sqlx::IntoArguments<DB>,
            for<'c> &'c mut DB::Connection: ::sqlx::Executor<'c, Database = DB>,
            for<'c> &'c str: ::sqlx::ColumnIndex<DB::Row>,
            usize: ::sqlx::ColumnIndex<DB::Row>,
            for<'r> &'r str: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> String: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> i64: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> i32: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> f64: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> bool: ::sqlx::Decode<'r, DB> + ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>,
            for<'r> Option<&'r str>: ::sqlx::Encode<'r, DB>,
            for<'r> Option<String>: ::sqlx::Encode<'r, DB>,
            for<'r> Option<i64>: ::sqlx::Encode<'r, DB>,
            for<'r> Option<f64>: ::sqlx::Encode<'r, DB>,
        {
            $($item)*
        }
    };
}

mod decode;
mod due;
mod outbox;
pub(super) mod rounds;
mod statements;

pub(super) use decode::*;
pub(super) use outbox::micros_instant;
pub(super) use statements::Sql;

/// What the shared statements need to know of an engine beyond sqlx's
/// [`Database`]: the few facts and clauses in which the engines differ.
pub(super) trait Engine: Database {
    /// Answers per `INSERT` statement in an import: as many as the
    /// engine's limit on bound values allows with room to spare.
    const IMPORT_BATCH_ROWS: usize;
    /// Whether a flag is stored as `INTEGER` 0 or 1 (SQLite) rather than
    /// as a `BOOLEAN`.
    const INTEGER_FLAGS: bool;
    /// Claims due outbox rows ([`locking_statements!`]`(claim_outbox)`).
    const CLAIM_OUTBOX: &'static str;
    /// Reads a nudge's response before a click on it is recorded, locking
    /// it where the engine can.
    const NUDGE_RESPONSE: &'static str;
    /// One batch of the prune of inbound event and action ids.
    const PRUNE_SEEN: &'static str;
    /// One batch of the prune of delivered and failed outbox rows.
    const PRUNE_OUTBOX: &'static str;
    /// One batch of the prune of assessments that are not the latest.
    const PRUNE_ASSESSMENTS: &'static str;
    /// One batch of the prune of channel paces long free.
    const PRUNE_CHANNEL_PACE: &'static str;

    /// How many rows a statement touched (each driver has its own result
    /// type, with no trait to ask it by).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// Instants are stored as Unix milliseconds on both engines.
pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn corrupt(table: &'static str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        problem: problem.to_string(),
    }
}

/// A group-commit writer's task is gone: its queue or answer was dropped.
fn writer_stopped() -> StoreError {
    StoreError::Database(sqlx::Error::WorkerCrashed)
}

/// Queues `job(done)` for a group-commit writer and waits for the outcome
/// it sends on `done` once the write's transaction is committed (or
/// failed). Dropping the returned future does not withdraw a queued write.
pub(super) async fn queue_and_wait<J, T>(
    queue: &tokio::sync::mpsc::Sender<J>,
    job: impl FnOnce(tokio::sync::oneshot::Sender<StoreResult<T>>) -> J,
) -> StoreResult<T> {
    let (done, outcome) = tokio::sync::oneshot::channel();
    queue.send(job(done)).await.map_err(|_| writer_stopped())?;
    outcome.await.map_err(|_| writer_stopped())?
}

/// The error each write of a batch gets when the batch failed as a whole.
pub(super) fn not_committed(e: &impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
        "not committed: {e}"
    ))))
}

/// A foreign-key failure means the person a row refers to is unknown.
pub(super) fn unknown_person(person: &PersonId) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound(format!("unknown person {person}"))
        }
        _ => StoreError::Database(e),
    }
}

/// What an answer's upsert did, from the `revision` it returned (none: the
/// option was already stored).
pub(super) fn outcome_of(revision: Option<i32>) -> RecordOutcome {
    match revision {
        None => RecordOutcome::Unchanged,
        Some(1) => RecordOutcome::Inserted,
        Some(_) => RecordOutcome::Changed,
    }
}
