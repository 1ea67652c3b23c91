//! The SQLite engine: the embedded default.
//!
//! One file, WAL journal (readers never block the writer, so the CLI can
//! read while the daemon runs), foreign keys on, a busy timeout so two
//! processes wait for each other instead of failing. Migrations are embedded
//! in the binary and run when the store opens. Queries are plain runtime SQL
//! (no compile-time checking), shared with PostgreSQL (`store::shared`)
//! wherever the engines do not differ; this file keeps what does: the
//! connections, the group-commit writer, savepoints and the one-round-trip
//! inbound write.
//!
//! Every idempotent operation is one statement on a unique row (`INSERT …
//! ON CONFLICT`, `UPDATE … RETURNING`) whose rows affected or returned say
//! what happened, so there is no read-then-write window between processes.
//! Timestamps are stored as Unix milliseconds: anything finer is dropped.
//!
//! Connections: a pool for reads; one write connection owned by a task that
//! group-commits every write of the store (`writer.rs`); one connection that
//! checkpoints the WAL off the write path (`checkpoint.rs`).
//!
//! Durability: WAL with `synchronous = NORMAL`. A commit is written to the
//! WAL before its caller hears of it, so a crash of the process loses
//! nothing; the WAL is synced at checkpoints rather than at every commit, so
//! a power cut or OS crash may lose the last commits before it (never
//! corrupt the file). `FULL` would sync at every commit; group commit makes
//! that one `fsync` per batch rather than per write, but this store trades
//! that last window for latency, as most SQLite deployments in WAL mode do.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection};

use super::migrations;
use super::shared::{Engine, millis};
use super::*;
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};

/// How long a statement waits for another connection's (or process's) write
/// lock before failing with "database is locked". Writes here are short, so
/// this is only reached when something holds the lock far too long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the read pool. Every write goes through the writer's own
/// connection, and the hot paths (a click, a reply) read little or
/// nothing: two readers keep a slow read from holding up the others. Each
/// connection is a thread of sqlx's and a page cache of up to
/// [`READER_CACHE_KIB`] (see the README, "Memory").
const MAX_CONNECTIONS: u32 = 2;

/// The write connection's page cache, in KiB (SQLite's default is 2,000):
/// the pages of the indexes a click writes stay in it from one batch to the
/// next, as no other connection writes.
const WRITER_CACHE_KIB: u32 = 512;

/// The page cache of the readers and the checkpointer, in KiB. A reader's
/// cache is emptied whenever another connection has written since its last
/// read, so under a stream of clicks it holds only what one read needs;
/// the file's pages are in the OS's cache anyway.
const READER_CACHE_KIB: u32 = 256;

mod batch;
mod checkpoint;
mod due;
mod inbound;
mod writer;

/// A SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, and the tests' own statements.
    pool: SqlitePool,
    /// Every write of the store, group-committed on one connection.
    writer: writer::Writer,
}

impl SqliteStore {
    /// Opens the database named by `sqlite://PATH` (or `sqlite:PATH`; a
    /// relative path is relative to the working directory), creating the file
    /// and its parent directory if missing, and runs pending migrations.
    ///
    /// In-memory databases (`sqlite::memory:`) and URL parameters (`?mode=…`)
    /// are refused: the daemon and the CLI must share one file.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, &StorageOptions::default()).await
    }

    /// As [`SqliteStore::open`], with the pool sized and timed by `options`.
    pub async fn open_with(url: &str, options: &StorageOptions) -> StoreResult<Self> {
        let path = database_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot create directory {}: {e}", dir.display()),
                )))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL syncs at checkpoints rather than at every
            // commit: a crash of the process loses nothing (the WAL is in the
            // OS's hands once written); only a power cut or OS crash may lose
            // the last few commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Negative: a size in KiB rather than in pages.
            .pragma("cache_size", format!("-{READER_CACHE_KIB}"));
        // A new connection sets `journal_mode = WAL`, and SQLite may answer
        // that (or a first read that must recover the WAL index) with
        // "database is locked" at once, without waiting on the busy timeout,
        // while another process writes. Opening is retried for as long as
        // the busy timeout would have waited.
        let open = || async {
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(MAX_CONNECTIONS))
                .acquire_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                // A connection to a local file does not go stale; a ping
                // before each read would be one more round trip to its
                // thread.
                .test_before_acquire(false)
                .connect_with(connect.clone())
                .await?;
            migrate(&pool).await?;
            let checkpoint_connection = connect.connect().await?;
            let write_connection = connect
                .clone()
                .pragma(
                    "wal_autocheckpoint",
                    checkpoint::WRITER_AUTOCHECKPOINT.to_string(),
                )
                .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                .connect()
                .await?;
            StoreResult::Ok((pool, checkpoint_connection, write_connection))
        };
        let (pool, checkpoint_connection, write_connection) = open
            .retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(5))
                    .with_max_delay(Duration::from_millis(250))
                    .with_total_delay(Some(BUSY_TIMEOUT))
                    .with_max_times(usize::MAX)
                    .with_jitter(),
            )
            .when(is_locked)
            .await?;
        let checkpointer = checkpoint::Checkpointer::start(checkpoint_connection);
        let writer = writer::Writer::start(write_connection, checkpointer);
        Ok(Self { pool, writer })
    }

    /// The connection pool, for tests that inspect or tamper with tables.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `apply` on the write connection and returns once it is
    /// committed, grouped with whatever other writes were queued.
    async fn write<T: Send + 'static>(&self, apply: impl writer::Apply<T>) -> StoreResult<T> {
        self.writer.write(apply).await
    }
}

/// Whether `error` is SQLite's "database is locked" (`SQLITE_BUSY`, also
/// in its extended forms such as `SQLITE_BUSY_RECOVERY`).
fn is_locked(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = error else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// The file path in a `sqlite:` URL.
fn database_path(url: &str) -> StoreResult<&Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty() && !p.starts_with(':') && !p.contains('?'))
        .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
    Ok(Path::new(path))
}

/// Applies pending migrations.
///
/// sqlx takes no lock for SQLite migrations, so two processes opening a new
/// file at once (the daemon and `nudged import`, say) could both see version
/// 1 missing and both apply it. `BEGIN IMMEDIATE` takes the write lock before
/// sqlx reads what is applied: the second process waits, then finds nothing
/// to do. Each migration runs in a savepoint inside this transaction.
async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // `Migrator::run(&mut *tx)` would make this future `!Send` (its
    // `Acquire` bound on a borrowed connection is not general enough);
    // `run_direct` is sqlx's public way around that, same checks and all.
    migrations::migrator(migrations::SQLITE)
        .run_direct(None, &mut *tx, false)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The statements this engine shares with PostgreSQL.
type Sql = shared::Sql<Sqlite>;

impl Engine for Sqlite {
    /// Each row binds 6 values (SQLite allows 32 766 per statement); 500
    /// rows cut the round trips to the database thread 500-fold, which is
    /// what makes 100k answers take well under a second instead of several.
    const IMPORT_BATCH_ROWS: usize = 500;
    const INTEGER_FLAGS: bool = true;
    // Every statement here runs under the database's one write lock, so
    // two workers (or processes) can never claim the same row, and what a
    // write reads is still true when it writes: no row locks to take.
    const CLAIM_OUTBOX: &'static str = locking_statements!(claim_outbox, "");
    const NUDGE_RESPONSE: &'static str = locking_statements!(nudge_response, "");
    const PRUNE_SEEN: &'static str = locking_statements!(prune_seen, "");
    const PRUNE_OUTBOX: &'static str = locking_statements!(prune_outbox, "");
    const PRUNE_ASSESSMENTS: &'static str = locking_statements!(prune_assessments, "");
    const PRUNE_CHANNEL_PACE: &'static str = locking_statements!(prune_channel_pace, "");

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Runs `$body` as one write on the writer's connection, named `$conn`
/// in it: `self.write(move |conn| Box::pin(async move { … })).await`. A
/// macro, not a function taking an async closure, because the writer needs
/// the closure's future to be `Send`, which stable Rust cannot yet require
/// of an async closure's future.
macro_rules! on_writer {
    ($self:ident, |$conn:ident| $body:expr) => {
        $self
            .write(move |$conn| Box::pin(async move { $body }))
            .await
    };
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()> {
        let person = person.clone();
        on_writer!(self, |conn| Sql::upsert_person(conn, &person, now).await)
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>> {
        Sql::person(&self.pool, id).await
    }

    async fn people(&self) -> StoreResult<Vec<PersonRow>> {
        Sql::people(&self.pool).await
    }

    async fn set_enrolled(&self, id: &PersonId, enrolled: bool) -> StoreResult<bool> {
        let id = id.clone();
        on_writer!(self, |conn| Sql::set_enrolled(conn, &id, enrolled).await)
    }

    async fn set_paused_until(
        &self,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let id = id.clone();
        on_writer!(self, |conn| Sql::set_paused_until(conn, &id, until).await)
    }

    async fn set_nudges_off(
        &self,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let id = id.clone();
        on_writer!(self, |conn| Sql::set_nudges_off(conn, &id, since).await)
    }

    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome> {
        let answer = answer.clone();
        on_writer!(self, |conn| Sql::upsert_answer(conn, &answer, source, now)
            .await)
    }

    async fn record_inbound(
        &self,
        write: &InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
        // With other inbound writes queued beside it, in one script with
        // them (`writer::Writer::record`).
        self.writer.record(write.clone(), now).await
    }

    async fn import_answers(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        if answers.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let answers = answers.to_vec();
        // All or nothing: a failure rolls back every row of the import.
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            Sql::import_rows(conn, &answers, AnswerSource::Import, now).await
        })
        .await)
    }

    async fn import_demo(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        if answers.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let answers = answers.to_vec();
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            Sql::import_rows(conn, &answers, AnswerSource::Demo, now).await
        })
        .await)
    }

    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>> {
        Sql::answers(&self.pool, person).await
    }

    async fn answers_of_week(
        &self,
        people: &[PersonId],
        week: IsoWeek,
    ) -> StoreResult<Vec<(PersonId, QuestionId, OptionKey)>> {
        Sql::answers_of_week(&self.pool, people, week).await
    }

    async fn mark_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let key = key.to_owned();
        on_writer!(self, |conn| Sql::mark_seen(conn, &key, now).await)
    }

    async fn unmark_seen(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        on_writer!(self, |conn| Sql::unmark_seen(conn, &key).await)
    }

    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let run = run.clone();
        on_writer!(self, |conn| Sql::claim_run(conn, &run, now).await)
    }

    async fn last_run(
        &self,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        Sql::last_run(&self.pool, person, schedule).await
    }

    async fn record_runs(
        &self,
        runs: &[RunWrite],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RunRecorded>> {
        let runs = runs.to_vec();
        on_writer!(self, |conn| {
            writer::savepoint(conn).await?;
            let recorded = Sql::record_runs(&mut *conn, &runs, now).await;
            writer::end_savepoint(conn, recorded).await
        })
    }

    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>> {
        let checkin = checkin.clone();
        on_writer!(self, |conn| Sql::record_checkin(conn, &checkin).await)
    }

    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()> {
        let (channel, ts) = (channel.to_owned(), message_ts.to_owned());
        on_writer!(self, |conn| Sql::set_checkin_message(
            conn, id, &channel, &ts
        )
        .await)
    }

    async fn checkin_by_message(
        &self,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>> {
        Sql::checkin_by_message(&self.pool, channel, message_ts).await
    }

    async fn save_assessment(&self, row: &AssessmentRow) -> StoreResult<()> {
        let row = row.clone();
        on_writer!(self, |conn| Sql::save_assessment(conn, &row).await)
    }

    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>> {
        Sql::latest_assessment(&self.pool, person).await
    }

    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool> {
        let nudge = nudge.clone();
        on_writer!(self, |conn| Sql::record_nudge(conn, &nudge).await)
    }

    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>> {
        Sql::nudges(&self.pool, person).await
    }

    async fn answer_nudge(
        &self,
        click: &NudgeClick,
        on_change: Option<&NewOutbox>,
    ) -> StoreResult<NudgeClickOutcome> {
        let (click, on_change) = (click.clone(), on_change.cloned());
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            Sql::nudge_click(conn, &click, on_change.as_ref()).await
        })
        .await)
    }

    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>> {
        let message = message.clone();
        on_writer!(self, |conn| Sql::insert_outbox(conn, &message).await)
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        on_writer!(self, |conn| Sql::claim_outbox(
            conn,
            now,
            lease_until,
            limit
        )
        .await)
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()> {
        let response = response.to_owned();
        on_writer!(self, |conn| Sql::outbox_sent(conn, id, now, &response)
            .await)
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        let error = error.to_owned();
        on_writer!(self, |conn| Sql::outbox_retry(
            conn,
            id,
            next_attempt,
            &error
        )
        .await)
    }

    async fn outbox_defer(&self, deferrals: &[(i64, DateTime<Utc>)]) -> StoreResult<()> {
        if deferrals.is_empty() {
            return Ok(());
        }
        let deferrals = deferrals.to_vec();
        // One write: a paced batch is one commit, not one per row.
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            for (id, not_before) in &deferrals {
                sqlx::query(
                    "UPDATE outbox SET lease_until = NULL, not_before = $1 \
                     WHERE id = $2 AND status = 'pending'",
                )
                .bind(millis(*not_before))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        })
        .await)
    }

    async fn outbox_record(&self, results: &[OutboxResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let results = results.to_vec();
        // One write: sends that finished together are one commit, and in a
        // savepoint so a batch never half-commits. Each result is recorded
        // by the statement of its one-row method.
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            for result in &results {
                match result {
                    OutboxResult::Sent {
                        id,
                        at,
                        response,
                        checkin,
                    } => {
                        Sql::outbox_sent(&mut *conn, *id, *at, response).await?;
                        if let Some(m) = checkin {
                            Sql::set_checkin_message(&mut *conn, m.checkin, &m.channel, &m.ts)
                                .await?;
                        }
                    }
                    OutboxResult::Retry {
                        id,
                        next_attempt,
                        error,
                    } => {
                        Sql::outbox_retry(&mut *conn, *id, *next_attempt, error).await?;
                    }
                    OutboxResult::Failed { id, error } => {
                        Sql::outbox_failed(&mut *conn, *id, error).await?;
                    }
                }
            }
            Ok(())
        })
        .await)
    }

    async fn outbox_failed(&self, id: i64, _now: DateTime<Utc>, error: &str) -> StoreResult<()> {
        let error = error.to_owned();
        on_writer!(self, |conn| Sql::outbox_failed(conn, id, &error).await)
    }

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>> {
        Sql::outbox_row(&self.pool, id).await
    }

    async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        Sql::outbox_counts(&self.pool).await
    }

    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport> {
        let person = person.clone();
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            Sql::forget_rows(conn, &person).await
        })
        .await)
    }

    async fn forget_demo(&self, person: &PersonId) -> StoreResult<DemoForgetReport> {
        let person = person.clone();
        on_writer!(self, |conn| all_or_nothing(conn, async |conn| {
            Sql::forget_demo_rows(conn, &person).await
        })
        .await)
    }

    async fn opted_out(&self) -> StoreResult<Vec<PersonId>> {
        Sql::opted_out(&self.pool).await
    }

    async fn clear_opt_out(&self, person: &PersonId) -> StoreResult<bool> {
        let person = person.clone();
        on_writer!(self, |conn| Sql::clear_opt_out(conn, &person).await)
    }

    fn shares_send_rate(&self) -> bool {
        false
    }

    // The outbox paces in memory on SQLite (one process); these work all
    // the same, through the writer, so both engines keep one contract.

    async fn take_send_slots(
        &self,
        now: DateTime<Utc>,
        count: u32,
        step: std::time::Duration,
    ) -> StoreResult<DateTime<Utc>> {
        on_writer!(self, |conn| Sql::take_send_slots(conn, now, count, step)
            .await)
    }

    async fn pause_sends(&self, until: DateTime<Utc>) -> StoreResult<()> {
        on_writer!(self, |conn| Sql::pause_sends(conn, until).await)
    }

    async fn reserve_channels(
        &self,
        planned: &[(String, DateTime<Utc>)],
        spacing: std::time::Duration,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let mut keys: BTreeMap<String, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
        for (key, at) in planned {
            let span = keys.entry(key.clone()).or_insert((*at, *at));
            *span = (span.0.min(*at), span.1.max(*at));
        }
        on_writer!(self, |conn| {
            let mut refused = Vec::new();
            for (key, (first, last)) in keys {
                if let Some(free) = Sql::reserve_channel(conn, &key, first, last, spacing).await? {
                    refused.push((key, free));
                }
            }
            Ok(refused)
        })
    }

    async fn pause_channel(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        let key = key.to_owned();
        on_writer!(self, |conn| Sql::pause_channel(conn, &key, until).await)
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        // Through the write task, as every write: a probe that passes
        // means writes are being committed.
        on_writer!(self, |conn| Sql::probe_write(conn, now).await)
    }

    async fn oldest_pending_outbox(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Sql::oldest_pending_outbox(&self.pool).await
    }

    // Each prune batch is one short write, so other writes queue behind it
    // only briefly.

    async fn prune_seen(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        on_writer!(self, |conn| Sql::prune(
            conn,
            Sqlite::PRUNE_SEEN,
            before,
            limit
        )
        .await)
    }

    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        on_writer!(self, |conn| Sql::prune(
            conn,
            Sqlite::PRUNE_OUTBOX,
            before,
            limit
        )
        .await)
    }

    async fn prune_assessments(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        on_writer!(self, |conn| Sql::prune(
            conn,
            Sqlite::PRUNE_ASSESSMENTS,
            before,
            limit
        )
        .await)
    }

    async fn prune_channel_pace(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        on_writer!(self, |conn| Sql::prune_channel_pace(conn, before, limit)
            .await)
    }

    // ---- due index: in `sqlite/due.rs` ----

    async fn upsert_people(&self, people: &[NewPerson], now: DateTime<Utc>) -> StoreResult<()> {
        self.upsert_people_rows(people, now).await
    }

    async fn sync_schedule_set(
        &self,
        fingerprint: &str,
        schedules: &[String],
    ) -> StoreResult<bool> {
        self.sync_schedule_set_rows(fingerprint, schedules).await
    }

    async fn pending_due(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PendingDue>> {
        self.pending_due_rows(after, limit).await
    }

    async fn set_due(&self, updates: &[DueUpdate]) -> StoreResult<usize> {
        self.set_due_rows(updates).await
    }

    async fn due_by(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: u32,
    ) -> StoreResult<Vec<DueEntry>> {
        Sql::due_by(&self.pool, now, after, limit).await
    }

    async fn due_rows(&self, person: &PersonId) -> StoreResult<Vec<DueRow>> {
        Sql::due_rows(&self.pool, person).await
    }
}

/// Runs `statements` on the write connection in a savepoint, so a write of
/// several statements is kept whole or undone whole within the batch's
/// transaction.
async fn all_or_nothing<T>(
    conn: &mut SqliteConnection,
    statements: impl AsyncFnOnce(&mut SqliteConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    writer::savepoint(conn).await?;
    let outcome = statements(&mut *conn).await;
    writer::end_savepoint(conn, outcome).await
}
