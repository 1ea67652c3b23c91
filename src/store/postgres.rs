//! The PostgreSQL engine: one database shared by any number of replicas.
//!
//! The schema, the statements and their meaning are those of the SQLite
//! engine ([`super::sqlite`]); only the dialect differs (`$1` placeholders,
//! `BOOLEAN`, identity columns). Replicas coordinate through rows, never
//! through a protocol of their own:
//!
//! - every idempotent operation is one statement on a unique row (`INSERT …
//!   ON CONFLICT`), so of two replicas claiming one schedule run, recording
//!   one event id or one check-in, exactly one sees a row written;
//! - outbox rows are leased with `SELECT … FOR UPDATE SKIP LOCKED` inside the
//!   claiming `UPDATE`: concurrent claimers pass over each other's rows
//!   instead of waiting or taking them, and a row whose lease ran out (its
//!   replica died) is due again;
//! - migrations run under sqlx's advisory lock, so replicas starting at once
//!   apply each version once.
//!
//! Timestamps are `BIGINT` Unix milliseconds, as on SQLite, so both engines
//! round the same way.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::*;
use super::{bind, migrations};
use crate::domain::{Answer, IsoWeek, NudgeResponse, OptionKey, PersonId, QuestionId};

/// Connections per replica unless `storage.max_connections` says otherwise.
/// PostgreSQL serves writers concurrently, so a click burst is spread over
/// several connections; ten replicas stay well below the server's default
/// `max_connections` of 100.
const MAX_CONNECTIONS: u32 = 10;

/// Answers per `INSERT` statement in an import. Each row binds 6 values
/// (PostgreSQL allows 65 535 per statement).
const IMPORT_BATCH_ROWS: usize = 1000;

/// Shown as `application_name` in `pg_stat_activity`, so operators can tell
/// nudged's connections apart.
const APPLICATION_NAME: &str = "nudged";

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

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

mod due;

/// A PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database named by `postgres://USER:PASSWORD@HOST/DB`
    /// (or `postgresql://…`; libpq's query parameters such as `sslmode` are
    /// understood) and runs pending migrations. The database must exist; its
    /// tables are created here.
    ///
    /// Errors never contain the URL: sqlx's connection errors name neither
    /// the password nor the URL, and a URL this engine cannot parse is
    /// reported redacted.
    pub async fn open(url: &str, options: &StorageOptions) -> StoreResult<Self> {
        if !is_postgres_url(url) {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Database(sqlx::Error::Configuration(
                    format!("storage url {}: {e}", redact_url(url)).into(),
                ))
            })?
            .application_name(APPLICATION_NAME);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(MAX_CONNECTIONS))
            .acquire_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .connect_with(connect)
            .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests that inspect or tamper with tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Applies pending migrations.
///
/// sqlx's PostgreSQL migrator holds a session advisory lock (keyed by the
/// database name) from before it reads `_sqlx_migrations` until it is done,
/// so replicas starting at once wait for each other and the later ones find
/// nothing to do. Each migration runs in its own transaction.
///
/// The lock is released only on success; on failure the connection is
/// closed rather than returned to the pool, which ends the session and with
/// it the lock, so no other opener waits on a lock nobody will release.
async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let result = migrations::migrator(migrations::POSTGRES)
        .run_direct(None, &mut *conn, false)
        .await;
    if result.is_err() {
        conn.close_on_drop();
    }
    Ok(result?)
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
    row: &'r PgRow,
    table: &'static str,
}

impl<'r> Fields<'r> {
    fn of(table: &'static str, row: &'r PgRow) -> Self {
        Self { row, table }
    }

    fn get<T>(&self, column: &str) -> StoreResult<T>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        self.row.try_get(column).map_err(|e| match e {
            // Columns are typed here, but a hand-altered table may hold a
            // NULL where a value belongs, or another type.
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

    /// An `INTEGER` column holding a count (never negative).
    fn count(&self, column: &str) -> StoreResult<u32> {
        let n: i32 = self.get(column)?;
        u32::try_from(n).map_err(|_| corrupt(self.table, format!("{column} {n}: not a count")))
    }

    /// A `BIGINT` aggregate such as `COUNT(*)`.
    fn big_count(&self, column: &str) -> StoreResult<u64> {
        let n: i64 = self.get(column)?;
        u64::try_from(n).map_err(|_| corrupt(self.table, format!("{column} {n}: not a count")))
    }
}

fn person_row(row: &PgRow) -> StoreResult<PersonRow> {
    let f = Fields::of("people", row);
    Ok(PersonRow {
        id: f.person("id")?,
        name: f.get("name")?,
        tz: f.get("tz")?,
        enrolled: f.get("enrolled")?,
        paused_until: f.opt_time("paused_until")?,
        nudges_off_since: f.opt_time("nudges_off_since")?,
        created_at: f.time("created_at")?,
    })
}

fn answer_row(row: &PgRow) -> StoreResult<AnswerRow> {
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

fn checkin_row(row: &PgRow) -> StoreResult<CheckinRow> {
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

fn assessment_row(row: &PgRow) -> StoreResult<AssessmentRow> {
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

fn nudge_row(row: &PgRow) -> StoreResult<NudgeRow> {
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

fn outbox_row(row: &PgRow) -> StoreResult<OutboxRow> {
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
/// nothing. So one statement both stores and says what it did.
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

/// The statement of [`Store::set_nudges_off`], on `conn` (in a
/// transaction or not).
async fn set_nudges_off(
    conn: &mut sqlx::PgConnection,
    id: &PersonId,
    since: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE people SET nudges_off_since = CASE WHEN $1::BIGINT IS NULL THEN NULL \
         ELSE COALESCE(nudges_off_since, $1::BIGINT) END WHERE id = $2",
    )
    .bind(since.map(millis))
    .bind(id.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

fn outcome_of(revision: Option<i32>) -> RecordOutcome {
    match revision {
        None => RecordOutcome::Unchanged,
        Some(1) => RecordOutcome::Inserted,
        Some(_) => RecordOutcome::Changed,
    }
}

/// Splits an import into statements of at most [`IMPORT_BATCH_ROWS`]
/// answers in which no (person, week, question) repeats: PostgreSQL refuses
/// to let one `ON CONFLICT DO UPDATE` touch a row twice, and cutting the
/// batch where a key repeats keeps the file's order, so a repeated key
/// counts exactly as it would one statement at a time.
fn import_batches(answers: &[Answer]) -> Vec<&[Answer]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut keys = HashSet::new();
    for (i, a) in answers.iter().enumerate() {
        let key = (&a.person, a.week, &a.question);
        if i - start == IMPORT_BATCH_ROWS || !keys.insert(key) {
            batches.push(&answers[start..i]);
            start = i;
            keys.clear();
            keys.insert(key);
        }
    }
    if start < answers.len() {
        batches.push(&answers[start..]);
    }
    batches
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()> {
        // One statement, so a person forgotten meanwhile is never inserted
        // again.
        sqlx::query(
            "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
             SELECT $1, $2, $3, $4, NULL, $5 \
             WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE person = $1) \
             ON CONFLICT (id) DO UPDATE SET \
               name = COALESCE(excluded.name, people.name), \
               tz = COALESCE(excluded.tz, people.tz)",
        )
        .bind(person.id.as_str())
        .bind(person.name.as_deref())
        .bind(person.tz.as_deref())
        .bind(person.enrolled)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            " FROM people WHERE id = $1"
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
        let done = sqlx::query("UPDATE people SET enrolled = $1 WHERE id = $2")
            .bind(enrolled)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_paused_until(
        &self,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE people SET paused_until = $1 WHERE id = $2")
            .bind(until.map(millis))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_nudges_off(
        &self,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        set_nudges_off(&mut conn, id, since).await
    }

    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome> {
        // The foreign key refuses an unknown person: no read before the write.
        let query = sqlx::query_scalar(concat!(
            upsert_answers!(insert),
            "VALUES ($1, $2, $3, $4, $5, $6, 1)",
            upsert_answers!(on_conflict)
        ));
        let revision: Option<i32> = bind::answer(query, answer, source, now)
            .fetch_optional(&self.pool)
            .await
            .map_err(unknown_person(&answer.person))?;
        Ok(outcome_of(revision))
    }

    async fn record_inbound(
        &self,
        write: &InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
        let answers = write.distinct_answers();
        let mut query = inbound_statement(write, &answers, now);
        let (fresh, changed): (i64, i64) = query
            .build_query_as()
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match answers.first() {
                Some(answer) => unknown_person(&answer.person)(e),
                None => StoreError::Database(e),
            })?;
        if fresh == 0 {
            return Ok(InboundOutcome::Duplicate);
        }
        let changed = usize::try_from(changed).unwrap_or_default();
        Ok(InboundOutcome::Recorded {
            changed,
            unchanged: answers.len().saturating_sub(changed),
        })
    }

    async fn import_answers(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        let mut outcome = ImportOutcome::default();
        if answers.is_empty() {
            return Ok(outcome);
        }
        let now = millis(now);
        let people: Vec<&str> = answers
            .iter()
            .map(|a| a.person.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Dropping the transaction on any error rolls everything back.
        let mut tx = self.pool.begin().await?;
        for chunk in people.chunks(IMPORT_BATCH_ROWS) {
            let mut insert = QueryBuilder::<Postgres>::new(
                "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) ",
            );
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(*id)
                    .push("NULL, NULL, FALSE, NULL")
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            outcome.new_people += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        for batch in import_batches(answers) {
            let mut upsert = QueryBuilder::<Postgres>::new(upsert_answers!(insert));
            upsert.push_values(batch, |mut row, answer| {
                row.push_bind(answer.person.as_str())
                    .push_bind(answer.week.to_string())
                    .push_bind(answer.question.as_str())
                    .push_bind(answer.option.as_str())
                    .push_bind(AnswerSource::Import.as_str())
                    .push_bind(now)
                    .push("1");
            });
            upsert.push(upsert_answers!(on_conflict));
            let written: Vec<i32> = upsert.build_query_scalar().fetch_all(&mut *tx).await?;
            for revision in &written {
                match outcome_of(Some(*revision)) {
                    RecordOutcome::Inserted => outcome.inserted += 1,
                    _ => outcome.changed += 1,
                }
            }
            outcome.unchanged += (batch.len() - written.len()) as u64;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>> {
        let query = match person {
            Some(p) => sqlx::query(concat!(
                "SELECT ",
                columns!(answers),
                " FROM answers WHERE person = $1 ORDER BY person, week, question"
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
            "SELECT question, option FROM answers WHERE person = $1 AND week = $2 ORDER BY question",
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
        let done = sqlx::query(
            "INSERT INTO seen_events (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn unmark_seen(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM seen_events WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO schedule_runs (person, schedule, period, claimed_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (person, schedule, period) DO NOTHING",
        )
        .bind(run.person.as_str())
        .bind(&run.schedule)
        .bind(millis(run.period))
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(unknown_person(&run.person))?;
        Ok(done.rows_affected() == 1)
    }

    async fn last_run(
        &self,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT MAX(period) AS period FROM schedule_runs WHERE person = $1 AND schedule = $2",
        )
        .bind(person.as_str())
        .bind(schedule)
        .fetch_one(&self.pool)
        .await?;
        Fields::of("schedule_runs", &row).opt_time("period")
    }

    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>> {
        let id = sqlx::query_scalar(
            "INSERT INTO checkins (person, schedule, period, week, channel, message_ts, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (person, schedule, period) DO NOTHING \
             RETURNING id",
        )
        .bind(checkin.person.as_str())
        .bind(&checkin.schedule)
        .bind(millis(checkin.period))
        .bind(checkin.week.to_string())
        .bind(checkin.channel.as_deref())
        .bind(checkin.message_ts.as_deref())
        .bind(millis(checkin.created_at))
        .fetch_optional(&self.pool)
        .await
        .map_err(unknown_person(&checkin.person))?;
        Ok(id)
    }

    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE checkins SET channel = $1, message_ts = $2 WHERE id = $3")
            .bind(channel)
            .bind(message_ts)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn checkin_by_message(
        &self,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(checkins),
            " FROM checkins WHERE channel = $1 AND message_ts = $2 ORDER BY id DESC LIMIT 1"
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
        sqlx::query(
            "INSERT INTO assessments (person, week, state, ewma, detail, assessed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(row.person.as_str())
        .bind(row.week.to_string())
        .bind(&row.state)
        .bind(row.ewma)
        .bind(&row.detail)
        .bind(millis(row.assessed_at))
        .execute(&self.pool)
        .await
        .map_err(unknown_person(&row.person))?;
        Ok(())
    }

    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>> {
        // Ties on the instant go to the row saved last.
        sqlx::query(concat!(
            "SELECT ",
            columns!(assessments),
            " FROM assessments WHERE person = $1 ORDER BY assessed_at DESC, id DESC LIMIT 1"
        ))
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(assessment_row)
        .transpose()
    }

    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO nudges (person, week, sent_at, reasons, message, response, answered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (person, week) DO NOTHING",
        )
        .bind(nudge.person.as_str())
        .bind(nudge.week.to_string())
        .bind(millis(nudge.sent_at))
        .bind(&nudge.reasons)
        .bind(nudge.message.as_deref())
        .bind(nudge.response.map(NudgeResponse::as_str))
        .bind(nudge.answered_at.map(millis))
        .execute(&self.pool)
        .await
        .map_err(unknown_person(&nudge.person))?;
        Ok(done.rows_affected() == 1)
    }

    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(nudges),
            " FROM nudges WHERE person = $1 ORDER BY sent_at, week"
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
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await?;
        let week = click.week.to_string();
        // Locks the nudge: a concurrent click on it waits for this one.
        let stored: Option<Option<String>> = sqlx::query_scalar(
            "SELECT response FROM nudges WHERE person = $1 AND week = $2 FOR UPDATE",
        )
        .bind(click.person.as_str())
        .bind(&week)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            return Ok(NudgeClickOutcome::UnknownNudge);
        };
        if let Some(key) = &click.seen_key {
            let seen = sqlx::query(
                "INSERT INTO seen_events (key, seen_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(millis(click.at))
            .execute(&mut *tx)
            .await?;
            if seen.rows_affected() == 0 {
                return Ok(NudgeClickOutcome::Duplicate);
            }
        }
        let changed = stored.as_deref() != Some(click.response.as_str());
        if changed {
            sqlx::query(
                "UPDATE nudges SET response = $1, answered_at = $2 WHERE person = $3 AND week = $4",
            )
            .bind(click.response.as_str())
            .bind(millis(click.at))
            .bind(click.person.as_str())
            .bind(&week)
            .execute(&mut *tx)
            .await?;
            if let Some(message) = on_change {
                let query = sqlx::query_scalar::<_, i64>(concat!(
                    insert_outbox!(),
                    "VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8) \
                     ON CONFLICT DO NOTHING RETURNING id"
                ));
                bind::outbox(query, message)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
        }
        let off = (click.response == NudgeResponse::NotForMe).then_some(click.at);
        set_nudges_off(&mut tx, &click.person, off).await?;
        tx.commit().await?;
        Ok(if changed {
            NudgeClickOutcome::Recorded
        } else {
            NudgeClickOutcome::Unchanged
        })
    }

    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>> {
        // Keys left NULL never conflict (NULLs are distinct); a conflict on
        // either key adds nothing.
        let query = sqlx::query_scalar(concat!(
            insert_outbox!(),
            "VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8) \
             ON CONFLICT DO NOTHING RETURNING id"
        ));
        let id: Option<i64> = bind::outbox(query, message)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id)
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        // `FOR UPDATE SKIP LOCKED`: rows another replica is claiming at this
        // moment are passed over rather than waited for, and a row it
        // claimed just before is re-checked against the lease after its
        // lock is released, so no row is ever claimed by two workers.
        let mut rows = sqlx::query(concat!(
            "UPDATE outbox SET lease_until = $1, coalesce_key = NULL WHERE id IN ( \
                 SELECT id FROM outbox \
                 WHERE status = 'pending' AND not_before <= $2 \
                   AND (lease_until IS NULL OR lease_until <= $2) \
                 ORDER BY not_before, id LIMIT $3 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING ",
            columns!(outbox)
        ))
        .bind(millis(lease_until))
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_row)
        .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING comes back in no particular order.
        rows.sort_by_key(|r| (r.not_before, r.id));
        Ok(rows)
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()> {
        // Recorded whatever the row's state: the message did go out, even
        // if this worker's lease had expired meanwhile.
        sqlx::query(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, lease_until = NULL, \
                               response = $1, sent_at = $2 WHERE id = $3",
        )
        .bind(response)
        .bind(millis(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        // Only a pending row: a late report from a worker whose lease
        // expired must not reopen a row another worker has since finished.
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, not_before = $1, \
                               last_error = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(millis(next_attempt))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_defer(&self, deferrals: &[(i64, DateTime<Utc>)]) -> StoreResult<()> {
        if deferrals.is_empty() {
            return Ok(());
        }
        // One statement for the batch: ids and instants as parallel arrays.
        let ids: Vec<i64> = deferrals.iter().map(|(id, _)| *id).collect();
        let due: Vec<i64> = deferrals.iter().map(|(_, at)| millis(*at)).collect();
        sqlx::query(
            "UPDATE outbox SET lease_until = NULL, not_before = d.not_before \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS d(id, not_before) \
             WHERE outbox.id = d.id AND outbox.status = 'pending'",
        )
        .bind(&ids)
        .bind(&due)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_record(&self, results: &[OutboxResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        // One transaction, one statement per kind of result: each kind's
        // rows as parallel arrays, with the conditions of the one-row
        // methods above.
        let (mut sent, mut at, mut response) = (Vec::new(), Vec::new(), Vec::new());
        let (mut checkin, mut channel, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        let (mut retried, mut next, mut retry_error) = (Vec::new(), Vec::new(), Vec::new());
        let (mut failed, mut fail_error) = (Vec::new(), Vec::new());
        for result in results {
            match result {
                OutboxResult::Sent {
                    id,
                    at: sent_at,
                    response: answer,
                    checkin: message,
                } => {
                    sent.push(*id);
                    at.push(millis(*sent_at));
                    response.push(answer.as_str());
                    if let Some(m) = message {
                        checkin.push(m.checkin);
                        channel.push(m.channel.as_str());
                        ts.push(m.ts.as_str());
                    }
                }
                OutboxResult::Retry {
                    id,
                    next_attempt,
                    error,
                } => {
                    retried.push(*id);
                    next.push(millis(*next_attempt));
                    retry_error.push(error.as_str());
                }
                OutboxResult::Failed { id, error } => {
                    failed.push(*id);
                    fail_error.push(error.as_str());
                }
            }
        }
        let mut tx = self.pool.begin().await?;
        if !sent.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, lease_until = NULL, \
                                   response = d.response, sent_at = d.sent_at \
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS d(id, sent_at, response) \
                 WHERE outbox.id = d.id",
            )
            .bind(&sent)
            .bind(&at)
            .bind(&response)
            .execute(&mut *tx)
            .await?;
        }
        if !checkin.is_empty() {
            sqlx::query(
                "UPDATE checkins SET channel = d.channel, message_ts = d.ts \
                 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[]) AS d(id, channel, ts) \
                 WHERE checkins.id = d.id",
            )
            .bind(&checkin)
            .bind(&channel)
            .bind(&ts)
            .execute(&mut *tx)
            .await?;
        }
        if !retried.is_empty() {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, \
                                   not_before = d.not_before, last_error = d.error \
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS d(id, not_before, error) \
                 WHERE outbox.id = d.id AND outbox.status = 'pending'",
            )
            .bind(&retried)
            .bind(&next)
            .bind(&retry_error)
            .execute(&mut *tx)
            .await?;
        }
        if !failed.is_empty() {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, lease_until = NULL, \
                                   last_error = d.error \
                 FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS d(id, error) \
                 WHERE outbox.id = d.id AND outbox.status = 'pending'",
            )
            .bind(&failed)
            .bind(&fail_error)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_failed(&self, id: i64, _now: DateTime<Utc>, error: &str) -> StoreResult<()> {
        // Only a pending row: a row another worker delivered stays sent.
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, lease_until = NULL, \
                               last_error = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(outbox),
            " FROM outbox WHERE id = $1"
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
            let n = f.big_count("n")?;
            match f.parsed("status", OutboxStatus::from_str)? {
                OutboxStatus::Pending => counts.pending = n,
                OutboxStatus::Sent => counts.sent = n,
                OutboxStatus::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport> {
        let mut tx = self.pool.begin().await?;
        let id = person.as_str();
        // The person's click ids name them; their id alone stays, as the
        // opt-out that keeps the roster from enrolling them again.
        let seen_events = sqlx::query("DELETE FROM seen_events WHERE starts_with(key, $1)")
            .bind(action_seen_prefix(person))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("INSERT INTO opt_outs (person) VALUES ($1) ON CONFLICT (person) DO NOTHING")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // Children first, each counted, so the report is exact whatever the
        // cascade would have done. Outbox rows carry no foreign key (a
        // message may be about nobody) and go explicitly.
        let mut delete = async |sql: &'static str| -> StoreResult<u64> {
            Ok(sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected())
        };
        let report = ForgetReport {
            answers: delete("DELETE FROM answers WHERE person = $1").await?,
            checkins: delete("DELETE FROM checkins WHERE person = $1").await?,
            schedule_runs: delete("DELETE FROM schedule_runs WHERE person = $1").await?,
            assessments: delete("DELETE FROM assessments WHERE person = $1").await?,
            nudges: delete("DELETE FROM nudges WHERE person = $1").await?,
            outbox: delete("DELETE FROM outbox WHERE person = $1").await?,
            people: delete("DELETE FROM people WHERE id = $1").await?,
            seen_events,
        };
        tx.commit().await?;
        Ok(report)
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
        let done = sqlx::query("DELETE FROM opt_outs WHERE person = $1")
            .bind(person.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO readiness_probe (id, written_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        )
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn oldest_pending_outbox(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row =
            sqlx::query("SELECT MIN(created_at) AS queued FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Fields::of("outbox", &row).opt_time("queued")
    }

    // Each prune batch locks the rows it picks with `SKIP LOCKED`: replicas
    // pruning at once take different rows instead of waiting on each other.

    async fn prune_seen(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        self.prune(
            "DELETE FROM seen_events WHERE key IN ( \
               SELECT key FROM seen_events WHERE seen_at < $1 ORDER BY seen_at LIMIT $2 \
               FOR UPDATE SKIP LOCKED)",
            before,
            limit,
        )
        .await
    }

    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        self.prune(
            "DELETE FROM outbox WHERE id IN ( \
               SELECT id FROM outbox WHERE status IN ('sent', 'failed') AND created_at < $1 \
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
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
               SELECT a.id FROM assessments a WHERE a.assessed_at < $1 AND EXISTS ( \
                 SELECT 1 FROM assessments b WHERE b.person = a.person \
                   AND (b.assessed_at > a.assessed_at \
                        OR (b.assessed_at = a.assessed_at AND b.id > a.id))) \
               ORDER BY a.assessed_at LIMIT $2 FOR UPDATE OF a SKIP LOCKED)",
            before,
            limit,
        )
        .await
    }

    // ---- due index: in `postgres/due.rs` ----

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

/// The one statement of [`Store::record_inbound`]: data-modifying `WITH`
/// clauses, so it commits or fails as a whole in one round trip. The seen
/// key is inserted first and every other write stands only if it was new
/// (`EXISTS (SELECT 1 FROM seen)`): a replica handling the same event at
/// once waits on the key's unique index, then writes nothing. The redraw
/// is queued only if the upsert returned a row (an answer was written).
/// Returns `(fresh, changed)`.
fn inbound_statement(
    write: &InboundWrite,
    answers: &[&Answer],
    now: DateTime<Utc>,
) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::<Postgres>::new("WITH seen AS (");
    match &write.seen_key {
        Some(key) => {
            query
                .push("INSERT INTO seen_events (key, seen_at) VALUES (")
                .push_bind(key.clone())
                .push(", ")
                .push_bind(millis(now))
                .push(") ON CONFLICT (key) DO NOTHING RETURNING 1");
        }
        None => {
            query.push("SELECT 1");
        }
    }
    query.push("), answer AS (");
    if answers.is_empty() {
        query.push("SELECT 1 AS revision WHERE false");
    } else {
        query.push(concat!(
            upsert_answers!(insert),
            "SELECT v.person, v.week, v.question, v.option, v.source, v.recorded_at, 1 FROM ("
        ));
        bind::answer_values(&mut query, answers, write.source, now);
        query.push(concat!(
            ") AS v (person, week, question, option, source, recorded_at) \
             WHERE EXISTS (SELECT 1 FROM seen)",
            upsert_answers!(on_conflict)
        ));
    }
    query.push(")");
    // Outbox rows as `SELECT`s of a `VALUES` list, gated by `gate`.
    let queue = |query: &mut QueryBuilder<Postgres>, name, rows: &[&NewOutbox], gate| {
        query.push(format_args!(", {name} AS ("));
        query.push(concat!(
            insert_outbox!(),
            "SELECT v.dedupe_key, v.coalesce_key, v.person, v.kind, v.channel, v.payload, \
             'pending', 0, v.not_before, v.created_at FROM ("
        ));
        bind::outbox_values(query, rows);
        query.push(format_args!(
            ") AS v (dedupe_key, coalesce_key, person, kind, channel, payload, not_before, \
             created_at) WHERE EXISTS (SELECT 1 FROM {gate}) ON CONFLICT DO NOTHING)"
        ));
    };
    if let Some(redraw) = &write.on_change
        && !answers.is_empty()
    {
        queue(&mut query, "redrawn", &[redraw], "answer");
    }
    if !write.always.is_empty() {
        let always: Vec<&NewOutbox> = write.always.iter().collect();
        queue(&mut query, "queued", &always, "seen");
    }
    query.push(" SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM answer)");
    query
}

impl PgStore {
    /// One batch of a prune: `sql` deletes up to `limit` rows older than
    /// `before` in one short statement.
    async fn prune(
        &self,
        sql: &'static str,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let done = sqlx::query(sql)
            .bind(millis(before))
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(person: &str, week: &str, question: &str) -> Answer {
        Answer {
            person: PersonId::parse(person).unwrap(),
            week: week.parse().unwrap(),
            question: QuestionId::parse(question).unwrap(),
            option: OptionKey::parse("x").unwrap(),
        }
    }

    #[test]
    fn an_import_batch_is_cut_where_a_key_repeats_and_keeps_the_order() {
        let file = [
            answer("U1", "2026-W01", "focus"),
            answer("U1", "2026-W01", "capacity"),
            answer("U1", "2026-W01", "focus"),
            answer("U2", "2026-W01", "focus"),
            answer("U1", "2026-W01", "focus"),
        ];
        let lens: Vec<usize> = import_batches(&file).iter().map(|b| b.len()).collect();
        assert_eq!(lens, [2, 2, 1]);
        assert_eq!(import_batches(&file).concat(), file);
    }

    #[test]
    fn an_import_batch_holds_at_most_the_batch_size() {
        let file: Vec<Answer> = (0..2 * IMPORT_BATCH_ROWS + 1)
            .map(|i| answer(&format!("U{i}"), "2026-W01", "focus"))
            .collect();
        let lens: Vec<usize> = import_batches(&file).iter().map(|b| b.len()).collect();
        assert_eq!(lens, [IMPORT_BATCH_ROWS, IMPORT_BATCH_ROWS, 1]);
        assert!(import_batches(&[]).is_empty());
    }
}
