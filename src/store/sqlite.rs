//! The SQLite engine: the embedded default.
//!
//! One file, WAL journal (readers never block the writer, so the CLI can
//! read while the daemon runs), foreign keys on, a busy timeout so two
//! processes wait for each other instead of failing. Migrations are embedded
//! in the binary and run when the store opens. Queries are plain runtime SQL
//! (no compile-time checking), written to port to PostgreSQL unchanged where
//! that costs nothing.
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

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::*;
use super::{bind, migrations};
use crate::domain::{Answer, IsoWeek, NudgeResponse, OptionKey, PersonId, QuestionId};

/// How long a statement waits for another connection's (or process's) write
/// lock before failing with "database is locked". Writes here are short, so
/// this is only reached when something holds the lock far too long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool. SQLite has one writer at a time; a few readers
/// beside it is all concurrency buys.
const MAX_CONNECTIONS: u32 = 4;

/// Answers per `INSERT` statement in an import. Each row binds 6 values
/// (SQLite allows 32 766 per statement); 500 rows cut the round trips to the
/// database thread 500-fold, which is what makes 100k answers take well
/// under a second instead of several.
const IMPORT_BATCH_ROWS: usize = 500;

/// The columns of each table, as literals so queries can be `concat!`ed
/// into `&'static str` (sqlx caches one prepared statement per text).
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

mod checkpoint;
mod due;
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
            .busy_timeout(BUSY_TIMEOUT);
        // A new connection sets `journal_mode = WAL`, and SQLite may answer
        // that (or a first read that must recover the WAL index) with
        // "database is locked" at once, without waiting on the busy timeout,
        // while another process writes. Opening is retried for as long as
        // the busy timeout would have waited.
        let open = || async {
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(MAX_CONNECTIONS))
                .acquire_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
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
    async fn write<T, F>(&self, apply: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> writer::BoxFuture<'c, StoreResult<T>>
            + Send
            + 'static,
    {
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

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn corrupt(table: &'static str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        problem: problem.to_string(),
    }
}

/// A row being read from `table`: every value that does not decode or
/// parse becomes [`StoreError::Corrupt`] naming the column, never a panic.
struct Fields<'r> {
    row: &'r SqliteRow,
    table: &'static str,
}

impl<'r> Fields<'r> {
    fn of(table: &'static str, row: &'r SqliteRow) -> Self {
        Self { row, table }
    }

    fn get<T>(&self, column: &str) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.row.try_get(column).map_err(|e| match e {
            // SQLite columns hold any type: a hand-edited value may be text
            // where a number belongs, or NULL.
            sqlx::Error::ColumnDecode { .. } => corrupt(self.table, e),
            e => StoreError::Database(e),
        })
    }

    fn parsed<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<T> {
        let text: &str = self.get(column)?;
        parse(text).map_err(|e| corrupt(self.table, format!("{column} {text:?}: {e}")))
    }

    fn opt_parsed<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<Option<T>> {
        let text: Option<&str> = self.get(column)?;
        text.map(|text| {
            parse(text).map_err(|e| corrupt(self.table, format!("{column} {text:?}: {e}")))
        })
        .transpose()
    }

    fn person(&self, column: &str) -> StoreResult<PersonId> {
        self.parsed(column, PersonId::parse)
    }

    fn week(&self, column: &str) -> StoreResult<IsoWeek> {
        self.parsed(column, IsoWeek::from_str)
    }

    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        let ms: i64 = self.get(column)?;
        self.to_time(column, ms)
    }

    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let ms: Option<i64> = self.get(column)?;
        ms.map(|ms| self.to_time(column, ms)).transpose()
    }

    fn to_time(&self, column: &str, ms: i64) -> StoreResult<DateTime<Utc>> {
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| corrupt(self.table, format!("{column} {ms}: not a timestamp")))
    }

    fn flag(&self, column: &str) -> StoreResult<bool> {
        match self.get::<i64>(column)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(corrupt(self.table, format!("{column} {n}: not 0 or 1"))),
        }
    }

    fn count<T: TryFrom<i64>>(&self, column: &str) -> StoreResult<T> {
        let n: i64 = self.get(column)?;
        T::try_from(n).map_err(|_| corrupt(self.table, format!("{column} {n}: not a count")))
    }
}

fn person_row(row: &SqliteRow) -> StoreResult<PersonRow> {
    let f = Fields::of("people", row);
    Ok(PersonRow {
        id: f.person("id")?,
        name: f.get("name")?,
        tz: f.get("tz")?,
        enrolled: f.flag("enrolled")?,
        paused_until: f.opt_time("paused_until")?,
        nudges_off_since: f.opt_time("nudges_off_since")?,
        created_at: f.time("created_at")?,
    })
}

fn answer_row(row: &SqliteRow) -> StoreResult<AnswerRow> {
    let f = Fields::of("answers", row);
    Ok(AnswerRow {
        answer: Answer {
            person: f.person("person")?,
            week: f.week("week")?,
            question: f.parsed("question", QuestionId::parse)?,
            option: f.parsed("option", OptionKey::parse)?,
        },
        source: f.parsed("source", AnswerSource::from_str)?,
        recorded_at: f.time("recorded_at")?,
    })
}

fn checkin_row(row: &SqliteRow) -> StoreResult<CheckinRow> {
    let f = Fields::of("checkins", row);
    Ok(CheckinRow {
        id: f.get("id")?,
        person: f.person("person")?,
        schedule: f.get("schedule")?,
        period: f.time("period")?,
        week: f.week("week")?,
        channel: f.get("channel")?,
        message_ts: f.get("message_ts")?,
        created_at: f.time("created_at")?,
    })
}

fn assessment_row(row: &SqliteRow) -> StoreResult<AssessmentRow> {
    let f = Fields::of("assessments", row);
    Ok(AssessmentRow {
        person: f.person("person")?,
        week: f.week("week")?,
        state: f.get("state")?,
        ewma: f.get("ewma")?,
        detail: f.get("detail")?,
        assessed_at: f.time("assessed_at")?,
    })
}

fn nudge_row(row: &SqliteRow) -> StoreResult<NudgeRow> {
    let f = Fields::of("nudges", row);
    Ok(NudgeRow {
        person: f.person("person")?,
        week: f.week("week")?,
        sent_at: f.time("sent_at")?,
        reasons: f.get("reasons")?,
        message: f.get("message")?,
        response: f.opt_parsed("response", NudgeResponse::from_str)?,
        answered_at: f.opt_time("answered_at")?,
    })
}

fn outbox_row(row: &SqliteRow) -> StoreResult<OutboxRow> {
    let f = Fields::of("outbox", row);
    Ok(OutboxRow {
        id: f.get("id")?,
        dedupe_key: f.get("dedupe_key")?,
        person: f.opt_parsed("person", PersonId::parse)?,
        kind: f.get("kind")?,
        channel: f.get("channel")?,
        payload: f.get("payload")?,
        status: f.parsed("status", OutboxStatus::from_str)?,
        attempts: f.count("attempts")?,
        not_before: f.time("not_before")?,
        lease_until: f.opt_time("lease_until")?,
        last_error: f.get("last_error")?,
        response: f.get("response")?,
        created_at: f.time("created_at")?,
        sent_at: f.opt_time("sent_at")?,
    })
}

/// A foreign-key failure means the person a row refers to is unknown.
fn unknown_person(person: &PersonId) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound(format!("unknown person {person}"))
        }
        _ => StoreError::Database(e),
    }
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
    (on_conflict) => {
        " ON CONFLICT (person, week, question) DO UPDATE SET \
           option = excluded.option, source = excluded.source, \
           recorded_at = excluded.recorded_at, revision = answers.revision + 1 \
         WHERE answers.option <> excluded.option \
         RETURNING revision"
    };
}

/// The head of an outbox insert; the values follow.
macro_rules! insert_outbox {
    () => {
        "INSERT INTO outbox (dedupe_key, coalesce_key, person, kind, channel, payload, status, \
                             attempts, not_before, created_at) "
    };
}

fn outcome_of(revision: Option<i64>) -> RecordOutcome {
    match revision {
        None => RecordOutcome::Unchanged,
        Some(1) => RecordOutcome::Inserted,
        Some(_) => RecordOutcome::Changed,
    }
}

/// The statement of [`Store::record_answer`], in the caller's transaction.
async fn upsert_answer(
    conn: &mut SqliteConnection,
    answer: &Answer,
    source: AnswerSource,
    now: DateTime<Utc>,
) -> StoreResult<RecordOutcome> {
    // The foreign key refuses an unknown person: no read before the write.
    let query = sqlx::query_scalar(concat!(
        upsert_answers!(insert),
        "VALUES (?, ?, ?, ?, ?, ?, 1)",
        upsert_answers!(on_conflict)
    ));
    let revision: Option<i64> = bind::answer(query, answer, source, now)
        .fetch_optional(conn)
        .await
        .map_err(unknown_person(&answer.person))?;
    Ok(outcome_of(revision))
}

/// The statement of [`Store::enqueue`], in the caller's transaction.
async fn insert_outbox(
    conn: &mut SqliteConnection,
    message: &NewOutbox,
) -> StoreResult<Option<i64>> {
    // Keys left NULL never conflict (NULLs are distinct); a conflict on
    // either key adds nothing.
    let query = sqlx::query_scalar(concat!(
        insert_outbox!(),
        "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING RETURNING id"
    ));
    let id: Option<i64> = bind::outbox(query, message).fetch_optional(conn).await?;
    Ok(id)
}

/// The statement of [`Store::set_nudges_off`], in the caller's transaction.
async fn set_nudges_off(
    conn: &mut SqliteConnection,
    id: &PersonId,
    since: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE people SET nudges_off_since = CASE WHEN ? IS NULL THEN NULL \
         ELSE COALESCE(nudges_off_since, ?) END WHERE id = ?",
    )
    .bind(since.map(millis))
    .bind(since.map(millis))
    .bind(id.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The statements of [`Store::answer_nudge`], in the caller's savepoint.
async fn record_nudge_click(
    conn: &mut SqliteConnection,
    click: &NudgeClick,
    on_change: Option<&NewOutbox>,
) -> StoreResult<NudgeClickOutcome> {
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT response FROM nudges WHERE person = ? AND week = ?")
            .bind(click.person.as_str())
            .bind(click.week.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(stored) = stored else {
        return Ok(NudgeClickOutcome::UnknownNudge);
    };
    if let Some(key) = &click.seen_key {
        let seen = sqlx::query(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(millis(click.at))
        .execute(&mut *conn)
        .await?;
        if seen.rows_affected() == 0 {
            return Ok(NudgeClickOutcome::Duplicate);
        }
    }
    let changed = stored.as_deref() != Some(click.response.as_str());
    if changed {
        sqlx::query(
            "UPDATE nudges SET response = ?, answered_at = ? WHERE person = ? AND week = ?",
        )
        .bind(click.response.as_str())
        .bind(millis(click.at))
        .bind(click.person.as_str())
        .bind(click.week.to_string())
        .execute(&mut *conn)
        .await?;
        if let Some(message) = on_change {
            insert_outbox(conn, message).await?;
        }
    }
    let off = (click.response == NudgeResponse::NotForMe).then_some(click.at);
    set_nudges_off(conn, &click.person, off).await?;
    Ok(if changed {
        NudgeClickOutcome::Recorded
    } else {
        NudgeClickOutcome::Unchanged
    })
}

/// The statements of [`Store::import_answers`], in the caller's transaction.
async fn import_rows(
    conn: &mut SqliteConnection,
    answers: &[Answer],
    now: DateTime<Utc>,
) -> StoreResult<ImportOutcome> {
    let mut outcome = ImportOutcome::default();
    let now = millis(now);
    let people: Vec<&str> = answers
        .iter()
        .map(|a| a.person.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for chunk in people.chunks(IMPORT_BATCH_ROWS) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) ",
        );
        insert.push_values(chunk, |mut row, id| {
            row.push_bind(*id)
                .push("NULL, NULL, 0, NULL")
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (id) DO NOTHING");
        outcome.new_people += insert.build().execute(&mut *conn).await?.rows_affected();
    }
    for chunk in answers.chunks(IMPORT_BATCH_ROWS) {
        let mut upsert = QueryBuilder::<Sqlite>::new(upsert_answers!(insert));
        upsert.push_values(chunk, |mut row, answer| {
            row.push_bind(answer.person.as_str())
                .push_bind(answer.week.to_string())
                .push_bind(answer.question.as_str())
                .push_bind(answer.option.as_str())
                .push_bind(AnswerSource::Import.as_str())
                .push_bind(now)
                .push("1");
        });
        upsert.push(upsert_answers!(on_conflict));
        // SQLite applies the rows in order, so a key repeated within a
        // chunk counts exactly as it would one statement at a time.
        let written: Vec<i64> = upsert.build_query_scalar().fetch_all(&mut *conn).await?;
        for revision in &written {
            match outcome_of(Some(*revision)) {
                RecordOutcome::Inserted => outcome.inserted += 1,
                _ => outcome.changed += 1,
            }
        }
        outcome.unchanged += (chunk.len() - written.len()) as u64;
    }
    Ok(outcome)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()> {
        let person = person.clone();
        self.write(move |conn| {
            Box::pin(async move {
                // One statement, so a person forgotten meanwhile is never
                // inserted again. (The WHERE also settles SQLite's parsing
                // of an upsert from a SELECT.)
                sqlx::query(
                    "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
             SELECT ?1, ?2, ?3, ?4, NULL, ?5 \
             WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE person = ?1) \
             ON CONFLICT (id) DO UPDATE SET \
               name = COALESCE(excluded.name, people.name), \
               tz = COALESCE(excluded.tz, people.tz)",
                )
                .bind(person.id.as_str())
                .bind(person.name.as_deref())
                .bind(person.tz.as_deref())
                .bind(i64::from(person.enrolled))
                .bind(millis(now))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            " FROM people WHERE id = ?"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(person_row)
        .transpose()
    }

    async fn people(&self) -> StoreResult<Vec<PersonRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            " FROM people ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(person_row)
        .collect()
    }

    async fn set_enrolled(&self, id: &PersonId, enrolled: bool) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE people SET enrolled = ? WHERE id = ?")
                    .bind(i64::from(enrolled))
                    .bind(id.as_str())
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn set_paused_until(
        &self,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE people SET paused_until = ? WHERE id = ?")
                    .bind(until.map(millis))
                    .bind(id.as_str())
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn set_nudges_off(
        &self,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| Box::pin(async move { set_nudges_off(conn, &id, since).await }))
            .await
    }

    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome> {
        let answer = answer.clone();
        self.write(move |conn| {
            Box::pin(async move { upsert_answer(conn, &answer, source, now).await })
        })
        .await
    }

    async fn record_inbound(
        &self,
        write: &InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
        let write = write.clone();
        self.write(move |conn| Box::pin(async move { inbound_rows(conn, &write, now).await }))
            .await
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
        self.write(move |conn| {
            Box::pin(async move {
                // All or nothing: a failure rolls back every row of the import.
                writer::savepoint(conn).await?;
                let outcome = import_rows(conn, &answers, now).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>> {
        let query = match person {
            Some(p) => sqlx::query(concat!(
                "SELECT ",
                columns!(answers),
                " FROM answers WHERE person = ? ORDER BY person, week, question"
            ))
            .bind(p.as_str()),
            None => sqlx::query(concat!(
                "SELECT ",
                columns!(answers),
                " FROM answers ORDER BY person, week, question"
            )),
        };
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(answer_row)
            .collect()
    }

    async fn week_answers(
        &self,
        person: &PersonId,
        week: IsoWeek,
    ) -> StoreResult<Vec<(QuestionId, OptionKey)>> {
        sqlx::query(
            "SELECT question, option FROM answers WHERE person = ? AND week = ? ORDER BY question",
        )
        .bind(person.as_str())
        .bind(week.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let f = Fields::of("answers", row);
            Ok((
                f.parsed("question", QuestionId::parse)?,
                f.parsed("option", OptionKey::parse)?,
            ))
        })
        .collect()
    }

    async fn mark_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let key = key.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(millis(now))
        .execute(conn)
        .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn unmark_seen(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM seen_events WHERE key = ?")
                    .bind(key)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let run = run.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
            "INSERT INTO schedule_runs (person, schedule, period, claimed_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (person, schedule, period) DO NOTHING",
        )
        .bind(run.person.as_str())
        .bind(&run.schedule)
        .bind(millis(run.period))
        .bind(millis(now))
        .execute(conn)
        .await
        .map_err(unknown_person(&run.person))?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn last_run(
        &self,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MAX(period) AS period FROM schedule_runs WHERE person = ? AND schedule = ?",
        )
        .bind(person.as_str())
        .bind(schedule)
        .fetch_one(&self.pool)
        .await?;
        Fields::of("schedule_runs", &row).opt_time("period")
    }

    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>> {
        let checkin = checkin.clone();
        self.write(move |conn| Box::pin(async move {
        let id = sqlx::query_scalar(
            "INSERT INTO checkins (person, schedule, period, week, channel, message_ts, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (person, schedule, period) DO NOTHING \
             RETURNING id",
        )
        .bind(checkin.person.as_str())
        .bind(&checkin.schedule)
        .bind(millis(checkin.period))
        .bind(checkin.week.to_string())
        .bind(checkin.channel.as_deref())
        .bind(checkin.message_ts.as_deref())
        .bind(millis(checkin.created_at))
        .fetch_optional(conn)
        .await
        .map_err(unknown_person(&checkin.person))?;
        Ok(id)
        })).await
    }

    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()> {
        let (channel, message_ts) = (channel.to_owned(), message_ts.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("UPDATE checkins SET channel = ?, message_ts = ? WHERE id = ?")
                    .bind(channel)
                    .bind(message_ts)
                    .bind(id)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn checkin_by_message(
        &self,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(checkins),
            " FROM checkins WHERE channel = ? AND message_ts = ? ORDER BY id DESC LIMIT 1"
        ))
        .bind(channel)
        .bind(message_ts)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(checkin_row)
        .transpose()
    }

    async fn save_assessment(&self, row: &AssessmentRow) -> StoreResult<()> {
        let row = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO assessments (person, week, state, ewma, detail, assessed_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(row.person.as_str())
                .bind(row.week.to_string())
                .bind(&row.state)
                .bind(row.ewma)
                .bind(&row.detail)
                .bind(millis(row.assessed_at))
                .execute(conn)
                .await
                .map_err(unknown_person(&row.person))?;
                Ok(())
            })
        })
        .await
    }

    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>> {
        // Ties on the instant go to the row saved last.
        sqlx::query(concat!(
            "SELECT ",
            columns!(assessments),
            " FROM assessments WHERE person = ? ORDER BY assessed_at DESC, id DESC LIMIT 1"
        ))
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(assessment_row)
        .transpose()
    }

    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool> {
        let nudge = nudge.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO nudges (person, week, sent_at, reasons, message, response, answered_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (person, week) DO NOTHING",
                )
                .bind(nudge.person.as_str())
                .bind(nudge.week.to_string())
                .bind(millis(nudge.sent_at))
                .bind(&nudge.reasons)
                .bind(nudge.message.as_deref())
                .bind(nudge.response.map(NudgeResponse::as_str))
                .bind(nudge.answered_at.map(millis))
                .execute(conn)
                .await
                .map_err(unknown_person(&nudge.person))?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(nudges),
            " FROM nudges WHERE person = ? ORDER BY sent_at, week"
        ))
        .bind(person.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(nudge_row)
        .collect()
    }

    async fn answer_nudge(
        &self,
        click: &NudgeClick,
        on_change: Option<&NewOutbox>,
    ) -> StoreResult<NudgeClickOutcome> {
        let click = click.clone();
        let on_change = on_change.cloned();
        self.write(move |conn| {
            Box::pin(async move {
                // Several statements, all or none. The writer task is the
                // only writer, so what is read here is still true when it
                // is written.
                writer::savepoint(conn).await?;
                let outcome = record_nudge_click(conn, &click, on_change.as_ref()).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>> {
        let message = message.clone();
        self.write(move |conn| Box::pin(async move { insert_outbox(conn, &message).await }))
            .await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        self.write(move |conn| {
            Box::pin(async move {
                // One statement: SQLite runs it under the write lock, so two
                // workers (or processes) can never claim the same row. PostgreSQL
                // needs `FOR UPDATE SKIP LOCKED` in the subquery for the same.
                let mut rows = sqlx::query(concat!(
                    "UPDATE outbox SET lease_until = ?, coalesce_key = NULL WHERE id IN ( \
                 SELECT id FROM outbox \
                 WHERE status = 'pending' AND not_before <= ? \
                   AND (lease_until IS NULL OR lease_until <= ?) \
                 ORDER BY not_before, id LIMIT ?) \
             RETURNING ",
                    columns!(outbox)
                ))
                .bind(millis(lease_until))
                .bind(millis(now))
                .bind(millis(now))
                .bind(i64::from(limit))
                .fetch_all(conn)
                .await?
                .iter()
                .map(outbox_row)
                .collect::<StoreResult<Vec<_>>>()?;
                // RETURNING comes back in no particular order.
                rows.sort_by_key(|r| (r.not_before, r.id));
                Ok(rows)
            })
        })
        .await
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()> {
        let response = response.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                // Recorded whatever the row's state: the message did go out, even
                // if this worker's lease had expired meanwhile.
                sqlx::query(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, lease_until = NULL, \
                               response = ?, sent_at = ? WHERE id = ?",
        )
        .bind(response)
        .bind(millis(now))
        .bind(id)
        .execute(conn)
        .await?;
                Ok(())
            })
        })
        .await
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        let error = error.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                // Only a pending row: a late report from a worker whose lease
                // expired must not reopen a row another worker has since finished.
                sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, not_before = ?, \
                               last_error = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(millis(next_attempt))
        .bind(error)
        .bind(id)
        .execute(conn)
        .await?;
                Ok(())
            })
        })
        .await
    }

    async fn outbox_defer(&self, deferrals: &[(i64, DateTime<Utc>)]) -> StoreResult<()> {
        if deferrals.is_empty() {
            return Ok(());
        }
        let deferrals = deferrals.to_vec();
        // One write: a paced batch is one commit, not one per row.
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = defer_rows(conn, &deferrals).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    async fn outbox_record(&self, results: &[OutboxResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let results = results.to_vec();
        // One write: sends that finished together are one commit, and in a
        // savepoint so a batch never half-commits.
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = record_rows(conn, &results).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    async fn outbox_failed(&self, id: i64, _now: DateTime<Utc>, error: &str) -> StoreResult<()> {
        let error = error.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                // Only a pending row: a row another worker delivered stays sent.
                sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, lease_until = NULL, \
                               last_error = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(conn)
        .await?;
                Ok(())
            })
        })
        .await
    }

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(outbox),
            " FROM outbox WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(outbox_row)
        .transpose()
    }

    async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = OutboxCounts::default();
        for row in &rows {
            let f = Fields::of("outbox", row);
            let n = f.count("n")?;
            match f.parsed("status", OutboxStatus::from_str)? {
                OutboxStatus::Pending => counts.pending = n,
                OutboxStatus::Sent => counts.sent = n,
                OutboxStatus::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport> {
        let person = person.clone();
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = forget_rows(conn, &person).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    async fn opted_out(&self) -> StoreResult<Vec<PersonId>> {
        sqlx::query("SELECT person FROM opt_outs ORDER BY person")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Fields::of("opt_outs", row).person("person"))
            .collect()
    }

    async fn clear_opt_out(&self, person: &PersonId) -> StoreResult<bool> {
        let person = person.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM opt_outs WHERE person = ?")
                    .bind(person.as_str())
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        // Through the write task, as every write: a probe that passes
        // means writes are being committed.
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO readiness_probe (id, written_at) VALUES (1, ?) \
                     ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
                )
                .bind(millis(now))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn oldest_pending_outbox(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row =
            sqlx::query("SELECT MIN(created_at) AS queued FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Fields::of("outbox", &row).opt_time("queued")
    }

    async fn prune_seen(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        self.prune(
            "DELETE FROM seen_events WHERE key IN ( \
               SELECT key FROM seen_events WHERE seen_at < ? ORDER BY seen_at LIMIT ?)",
            before,
            limit,
        )
        .await
    }

    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        self.prune(
            "DELETE FROM outbox WHERE id IN ( \
               SELECT id FROM outbox WHERE status IN ('sent', 'failed') AND created_at < ? \
               ORDER BY created_at LIMIT ?)",
            before,
            limit,
        )
        .await
    }

    async fn prune_assessments(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        // "Not the latest": a later one of the same person exists, in the
        // order `latest_assessment` reads (time, then the row saved last).
        self.prune(
            "DELETE FROM assessments WHERE id IN ( \
               SELECT a.id FROM assessments a WHERE a.assessed_at < ? AND EXISTS ( \
                 SELECT 1 FROM assessments b WHERE b.person = a.person \
                   AND (b.assessed_at > a.assessed_at \
                        OR (b.assessed_at = a.assessed_at AND b.id > a.id))) \
               ORDER BY a.assessed_at LIMIT ?)",
            before,
            limit,
        )
        .await
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
        self.due_by_rows(now, after, limit).await
    }

    async fn advance_due(
        &self,
        person: &PersonId,
        row: &DueRow,
        from: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.advance_due_row(person, row, from).await
    }

    async fn due_rows(&self, person: &PersonId) -> StoreResult<Vec<DueRow>> {
        self.due_rows_of(person).await
    }
}

impl SqliteStore {
    /// One batch of a prune: `sql` deletes up to `limit` rows older than
    /// `before`, in one short write, so other writes queue behind it only
    /// briefly.
    async fn prune(
        &self,
        sql: &'static str,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(sql)
                    .bind(millis(before))
                    .bind(i64::from(limit))
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}

/// The statements of [`Store::outbox_defer`], in the caller's transaction.
async fn defer_rows(
    conn: &mut SqliteConnection,
    deferrals: &[(i64, DateTime<Utc>)],
) -> StoreResult<()> {
    for (id, not_before) in deferrals {
        sqlx::query(
            "UPDATE outbox SET lease_until = NULL, not_before = ? \
             WHERE id = ? AND status = 'pending'",
        )
        .bind(millis(*not_before))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The statements of [`Store::outbox_record`], each as in the one-row
/// methods, in the caller's transaction.
async fn record_rows(conn: &mut SqliteConnection, results: &[OutboxResult]) -> StoreResult<()> {
    for result in results {
        match result {
            OutboxResult::Sent {
                id,
                at,
                response,
                checkin,
            } => {
                sqlx::query(
                    "UPDATE outbox SET status = 'sent', attempts = attempts + 1, \
                     lease_until = NULL, response = ?, sent_at = ? WHERE id = ?",
                )
                .bind(response)
                .bind(millis(*at))
                .bind(id)
                .execute(&mut *conn)
                .await?;
                if let Some(m) = checkin {
                    sqlx::query("UPDATE checkins SET channel = ?, message_ts = ? WHERE id = ?")
                        .bind(&m.channel)
                        .bind(&m.ts)
                        .bind(m.checkin)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            OutboxResult::Retry {
                id,
                next_attempt,
                error,
            } => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, \
                     not_before = ?, last_error = ? WHERE id = ? AND status = 'pending'",
                )
                .bind(millis(*next_attempt))
                .bind(error)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            OutboxResult::Failed { id, error } => {
                sqlx::query(
                    "UPDATE outbox SET status = 'failed', attempts = attempts + 1, \
                     lease_until = NULL, last_error = ? WHERE id = ? AND status = 'pending'",
                )
                .bind(error)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// The statements of [`Store::forget`], in the caller's transaction.
async fn forget_rows(conn: &mut SqliteConnection, person: &PersonId) -> StoreResult<ForgetReport> {
    // The person's click ids name them; their id alone stays, as the
    // opt-out that keeps the roster from enrolling them again.
    let prefix = action_seen_prefix(person);
    let seen_events = sqlx::query("DELETE FROM seen_events WHERE substr(key, 1, length(?1)) = ?1")
        .bind(prefix)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("INSERT INTO opt_outs (person) VALUES (?) ON CONFLICT (person) DO NOTHING")
        .bind(person.as_str())
        .execute(&mut *conn)
        .await?;
    let id = person.as_str();
    // Children first, each counted, so the report is exact whatever the
    // cascade would have done. Outbox rows carry no foreign key (a
    // message may be about nobody) and go explicitly.
    let mut delete = async |sql: &'static str| -> StoreResult<u64> {
        Ok(sqlx::query(sql)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected())
    };
    Ok(ForgetReport {
        answers: delete("DELETE FROM answers WHERE person = ?").await?,
        checkins: delete("DELETE FROM checkins WHERE person = ?").await?,
        schedule_runs: delete("DELETE FROM schedule_runs WHERE person = ?").await?,
        assessments: delete("DELETE FROM assessments WHERE person = ?").await?,
        nudges: delete("DELETE FROM nudges WHERE person = ?").await?,
        outbox: delete("DELETE FROM outbox WHERE person = ?").await?,
        people: delete("DELETE FROM people WHERE id = ?").await?,
        seen_events,
    })
}

/// The statement of [`Store::record_inbound`], in the caller's
/// transaction: one round trip to the connection's thread, in a savepoint
/// so it is all or nothing.
///
/// The seen key is inserted last, and every write before it stands only
/// while the key is not yet recorded. The batch's transaction holds the
/// database's write lock throughout, so nothing can record the key between
/// those checks and the insert; the insert's `RETURNING 0` says whether it
/// was new. The redraw is gated on `changes()` of the answers' upsert,
/// which counts only answers written (a repeated option writes nothing).
async fn inbound_rows(
    conn: &mut SqliteConnection,
    write: &InboundWrite,
    now: DateTime<Utc>,
) -> StoreResult<InboundOutcome> {
    let answers = write.distinct_answers();
    let unseen = |query: &mut QueryBuilder<Sqlite>| match &write.seen_key {
        Some(key) => {
            query
                .push("NOT EXISTS (SELECT 1 FROM seen_events WHERE key = ")
                .push_bind(key.clone())
                .push(")");
        }
        None => {
            query.push("true");
        }
    };
    let mut query = QueryBuilder::<Sqlite>::new("SAVEPOINT job; ");
    if !answers.is_empty() {
        query.push(concat!(
            upsert_answers!(insert),
            "SELECT column1, column2, column3, column4, column5, column6, 1 FROM ("
        ));
        bind::answer_values(&mut query, &answers, write.source, now);
        query.push(") WHERE ");
        unseen(&mut query);
        query.push(concat!(upsert_answers!(on_conflict), "; "));
        if let Some(redraw) = &write.on_change {
            query.push(concat!(
                insert_outbox!(),
                "SELECT column1, column2, column3, column4, column5, column6, 'pending', 0, \
                 column7, column8 FROM ("
            ));
            bind::outbox_values(&mut query, &[redraw]);
            query.push(") WHERE changes() > 0 ON CONFLICT DO NOTHING; ");
        }
    }
    if !write.always.is_empty() {
        query.push(concat!(
            insert_outbox!(),
            "SELECT column1, column2, column3, column4, column5, column6, 'pending', 0, \
             column7, column8 FROM ("
        ));
        bind::outbox_values(&mut query, &write.always.iter().collect::<Vec<_>>());
        query.push(") WHERE ");
        unseen(&mut query);
        query.push(" ON CONFLICT DO NOTHING; ");
    }
    if let Some(key) = &write.seen_key {
        query
            .push("INSERT INTO seen_events (key, seen_at) VALUES (")
            .push_bind(key.clone())
            .push(", ")
            .push_bind(millis(now))
            .push(") ON CONFLICT (key) DO NOTHING RETURNING 0; ");
    }
    query.push("RELEASE job");
    // Every row, not the first: stopping early would leave statements
    // unrun. Revisions are 1 and up; the seen key's row is 0.
    let rows: Vec<i64> = match query.build_query_scalar().fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(e) => {
            let e = match answers.first() {
                Some(answer) => unknown_person(&answer.person)(e),
                None => StoreError::Database(e),
            };
            return writer::end_savepoint(conn, Err(e)).await;
        }
    };
    if write.seen_key.is_some() && !rows.contains(&0) {
        return Ok(InboundOutcome::Duplicate);
    }
    let changed = rows.iter().filter(|r| **r > 0).count();
    Ok(InboundOutcome::Recorded {
        changed,
        unchanged: answers.len() - changed,
    })
}
