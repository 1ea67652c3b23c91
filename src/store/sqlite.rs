//! The SQLite engine: the embedded default.
//!
//! One file, WAL journal (readers never block the writer, so the CLI can
//! read while the daemon runs), foreign keys on, a busy timeout so two
//! processes wait for each other instead of failing. Migrations are embedded
//! in the binary and run when the store opens. Queries are plain runtime SQL
//! (no compile-time checking), written to port to PostgreSQL unchanged where
//! that costs nothing.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};

use super::*;
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};

/// The migrations, oldest first, compiled into the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/sqlite/0001_init.sql"),
)];

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool. SQLite has one writer at a time; a few readers
/// beside it is all concurrency buys.
const MAX_CONNECTIONS: u32 = 4;

/// A SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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

fn time(table: &'static str, ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(table, format!("bad timestamp {ms}")))
}

fn opt_time(table: &'static str, ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(|ms| time(table, ms)).transpose()
}

fn person_id(table: &'static str, s: &str) -> StoreResult<PersonId> {
    PersonId::parse(s).map_err(|e| corrupt(table, format!("person {s:?} {e}")))
}

fn week(table: &'static str, s: &str) -> StoreResult<IsoWeek> {
    s.parse().map_err(|e| corrupt(table, e))
}

impl SqliteStore {
    /// Opens (creating if needed) the database named by `sqlite://PATH` and
    /// runs pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_owned()))?;
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                )))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses nothing when the process crashes; only
            // a power cut may drop the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&pool).await?;
        Ok(Self { pool })
    }

    /// The connection pool, for tests that inspect tables directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn person_row(row: &SqliteRow) -> StoreResult<PersonRow> {
    const T: &str = "people";
    Ok(PersonRow {
        id: person_id(T, row.try_get("id")?)?,
        name: row.try_get("name")?,
        tz: row.try_get("tz")?,
        enrolled: row.try_get::<i64, _>("enrolled")? != 0,
        paused_until: opt_time(T, row.try_get("paused_until")?)?,
        created_at: time(T, row.try_get("created_at")?)?,
    })
}

fn answer_row(row: &SqliteRow) -> StoreResult<AnswerRow> {
    const T: &str = "answers";
    let question: &str = row.try_get("question")?;
    let option: &str = row.try_get("option")?;
    let source: &str = row.try_get("source")?;
    Ok(AnswerRow {
        answer: Answer {
            person: person_id(T, row.try_get("person")?)?,
            week: week(T, row.try_get("week")?)?,
            question: QuestionId::parse(question).map_err(|e| corrupt(T, e))?,
            option: OptionKey::parse(option).map_err(|e| corrupt(T, e))?,
        },
        source: AnswerSource::from_str(source).map_err(|e| corrupt(T, e))?,
        recorded_at: time(T, row.try_get("recorded_at")?)?,
    })
}

fn checkin_row(row: &SqliteRow) -> StoreResult<CheckinRow> {
    const T: &str = "checkins";
    Ok(CheckinRow {
        id: row.try_get("id")?,
        person: person_id(T, row.try_get("person")?)?,
        schedule: row.try_get("schedule")?,
        period: time(T, row.try_get("period")?)?,
        week: week(T, row.try_get("week")?)?,
        channel: row.try_get("channel")?,
        message_ts: row.try_get("message_ts")?,
        created_at: time(T, row.try_get("created_at")?)?,
    })
}

fn outbox_row(row: &SqliteRow) -> StoreResult<OutboxRow> {
    const T: &str = "outbox";
    let person: Option<&str> = row.try_get("person")?;
    let status: &str = row.try_get("status")?;
    Ok(OutboxRow {
        id: row.try_get("id")?,
        dedupe_key: row.try_get("dedupe_key")?,
        person: person.map(|p| person_id(T, p)).transpose()?,
        kind: row.try_get("kind")?,
        channel: row.try_get("channel")?,
        payload: row.try_get("payload")?,
        status: OutboxStatus::from_str(status).map_err(|e| corrupt(T, e))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).map_err(|e| corrupt(T, e))?,
        not_before: time(T, row.try_get("not_before")?)?,
        lease_until: opt_time(T, row.try_get("lease_until")?)?,
        last_error: row.try_get("last_error")?,
        response: row.try_get("response")?,
        created_at: time(T, row.try_get("created_at")?)?,
        sent_at: opt_time(T, row.try_get("sent_at")?)?,
    })
}

/// Inserts or updates one answer in a single statement, so the write lock
/// is held for one round trip. `revision` counts the writes of a row: 1 on
/// insert, +1 on each change; no row comes back when the option was already
/// stored. An unknown person fails the foreign key.
async fn upsert_answer<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    answer: &Answer,
    source: AnswerSource,
    now: DateTime<Utc>,
) -> StoreResult<RecordOutcome> {
    let revision: Option<i64> = sqlx::query_scalar(
        "INSERT INTO answers (person, week, question, option, source, recorded_at, revision) \
         VALUES (?, ?, ?, ?, ?, ?, 1) \
         ON CONFLICT (person, week, question) DO UPDATE SET \
           option = excluded.option, source = excluded.source, \
           recorded_at = excluded.recorded_at, revision = answers.revision + 1 \
         WHERE answers.option <> excluded.option \
         RETURNING revision",
    )
    .bind(answer.person.as_str())
    .bind(answer.week.to_string())
    .bind(answer.question.as_str())
    .bind(answer.option.as_str())
    .bind(source.as_str())
    .bind(millis(now))
    .fetch_optional(executor)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound(format!("unknown person {}", answer.person))
        }
        _ => StoreError::Database(e),
    })?;
    Ok(match revision {
        None => RecordOutcome::Unchanged,
        Some(1) => RecordOutcome::Inserted,
        Some(_) => RecordOutcome::Changed,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
             VALUES (?, ?, ?, ?, NULL, ?) \
             ON CONFLICT (id) DO UPDATE SET \
               name = COALESCE(excluded.name, people.name), \
               tz = COALESCE(excluded.tz, people.tz)",
        )
        .bind(person.id.as_str())
        .bind(person.name.as_deref())
        .bind(person.tz.as_deref())
        .bind(i64::from(person.enrolled))
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>> {
        sqlx::query("SELECT * FROM people WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(person_row)
            .transpose()
    }

    async fn people(&self) -> StoreResult<Vec<PersonRow>> {
        sqlx::query("SELECT * FROM people ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(person_row)
            .collect()
    }

    async fn set_enrolled(&self, id: &PersonId, enrolled: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE people SET enrolled = ? WHERE id = ?")
            .bind(i64::from(enrolled))
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
        let done = sqlx::query("UPDATE people SET paused_until = ? WHERE id = ?")
            .bind(until.map(millis))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome> {
        upsert_answer(&self.pool, answer, source, now).await
    }

    async fn import_answers(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        let mut tx = self.pool.begin().await?;
        let mut outcome = ImportOutcome::default();
        let mut people: Vec<&PersonId> = answers.iter().map(|a| &a.person).collect();
        people.sort();
        people.dedup();
        for person in people {
            let inserted = sqlx::query(
                "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
                 VALUES (?, NULL, NULL, 0, NULL, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(person.as_str())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            outcome.new_people += inserted.rows_affected();
        }
        for answer in answers {
            match upsert_answer(&mut *tx, answer, AnswerSource::Import, now).await? {
                RecordOutcome::Inserted => outcome.inserted += 1,
                RecordOutcome::Changed => outcome.changed += 1,
                RecordOutcome::Unchanged => outcome.unchanged += 1,
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>> {
        let rows = match person {
            Some(p) => {
                sqlx::query(
                    "SELECT * FROM answers WHERE person = ? ORDER BY person, week, question",
                )
                .bind(p.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM answers ORDER BY person, week, question")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(answer_row).collect()
    }

    async fn week_answers(
        &self,
        person: &PersonId,
        week: IsoWeek,
    ) -> StoreResult<Vec<(QuestionId, OptionKey)>> {
        const T: &str = "answers";
        sqlx::query("SELECT question, option FROM answers WHERE person = ? AND week = ?")
            .bind(person.as_str())
            .bind(week.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let question: &str = row.try_get("question")?;
                let option: &str = row.try_get("option")?;
                Ok((
                    QuestionId::parse(question).map_err(|e| corrupt(T, e))?,
                    OptionKey::parse(option).map_err(|e| corrupt(T, e))?,
                ))
            })
            .collect()
    }

    async fn mark_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO schedule_runs (person, schedule, period, claimed_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (person, schedule, period) DO NOTHING",
        )
        .bind(run.person.as_str())
        .bind(&run.schedule)
        .bind(millis(run.period))
        .bind(millis(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn last_run(
        &self,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(period) FROM schedule_runs WHERE person = ? AND schedule = ?",
        )
        .bind(person.as_str())
        .bind(schedule)
        .fetch_one(&self.pool)
        .await?;
        opt_time("schedule_runs", last)
    }

    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>> {
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE checkins SET channel = ?, message_ts = ? WHERE id = ?")
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
        sqlx::query("SELECT * FROM checkins WHERE channel = ? AND message_ts = ?")
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
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(row.person.as_str())
        .bind(row.week.to_string())
        .bind(&row.state)
        .bind(row.ewma)
        .bind(&row.detail)
        .bind(millis(row.assessed_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>> {
        const T: &str = "assessments";
        let row = sqlx::query(
            "SELECT * FROM assessments WHERE person = ? ORDER BY assessed_at DESC, id DESC LIMIT 1",
        )
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AssessmentRow {
                person: person_id(T, row.try_get("person")?)?,
                week: week(T, row.try_get("week")?)?,
                state: row.try_get("state")?,
                ewma: row.try_get("ewma")?,
                detail: row.try_get("detail")?,
                assessed_at: time(T, row.try_get("assessed_at")?)?,
            })
        })
        .transpose()
    }

    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO nudges (person, week, sent_at, reasons) VALUES (?, ?, ?, ?) \
             ON CONFLICT (person, week) DO NOTHING",
        )
        .bind(nudge.person.as_str())
        .bind(nudge.week.to_string())
        .bind(millis(nudge.sent_at))
        .bind(&nudge.reasons)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>> {
        const T: &str = "nudges";
        sqlx::query("SELECT * FROM nudges WHERE person = ? ORDER BY sent_at, week")
            .bind(person.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(NudgeRow {
                    person: person_id(T, row.try_get("person")?)?,
                    week: week(T, row.try_get("week")?)?,
                    sent_at: time(T, row.try_get("sent_at")?)?,
                    reasons: row.try_get("reasons")?,
                })
            })
            .collect()
    }

    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO outbox (dedupe_key, person, kind, channel, payload, status, attempts, \
                                 not_before, created_at) \
             VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) \
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(message.dedupe_key.as_deref())
        .bind(message.person.as_ref().map(PersonId::as_str))
        .bind(&message.kind)
        .bind(&message.channel)
        .bind(&message.payload)
        .bind(millis(message.not_before))
        .bind(millis(message.created_at))
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
        // One statement: SQLite runs it under the write lock, so two
        // workers can never claim the same row.
        let mut rows: Vec<OutboxRow> = sqlx::query(
            "UPDATE outbox SET lease_until = ? WHERE id IN ( \
                 SELECT id FROM outbox \
                 WHERE status = 'pending' AND not_before <= ? \
                   AND (lease_until IS NULL OR lease_until <= ?) \
                 ORDER BY not_before, id LIMIT ?) \
             RETURNING *",
        )
        .bind(millis(lease_until))
        .bind(millis(now))
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_row)
        .collect::<StoreResult<_>>()?;
        rows.sort_by_key(|r| (r.not_before, r.id));
        Ok(rows)
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, lease_until = NULL, \
                               response = ?, sent_at = ? WHERE id = ?",
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
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, not_before = ?, \
                               last_error = ? WHERE id = ?",
        )
        .bind(millis(next_attempt))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_failed(&self, id: i64, _now: DateTime<Utc>, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, lease_until = NULL, \
                               last_error = ? WHERE id = ?",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>> {
        sqlx::query("SELECT * FROM outbox WHERE id = ?")
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
        for row in rows {
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            match OutboxStatus::from_str(row.try_get("status")?) {
                Ok(OutboxStatus::Pending) => counts.pending = n,
                Ok(OutboxStatus::Sent) => counts.sent = n,
                Ok(OutboxStatus::Failed) => counts.failed = n,
                Err(e) => return Err(corrupt("outbox", e)),
            }
        }
        Ok(counts)
    }

    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport> {
        let mut tx = self.pool.begin().await?;
        let id = person.as_str();
        // Children first, each counted, so the report is exact whatever the
        // cascade would have done.
        let mut delete = async |sql: &'static str| -> StoreResult<u64> {
            Ok(sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected())
        };
        let report = ForgetReport {
            answers: delete("DELETE FROM answers WHERE person = ?").await?,
            checkins: delete("DELETE FROM checkins WHERE person = ?").await?,
            schedule_runs: delete("DELETE FROM schedule_runs WHERE person = ?").await?,
            assessments: delete("DELETE FROM assessments WHERE person = ?").await?,
            nudges: delete("DELETE FROM nudges WHERE person = ?").await?,
            outbox: delete("DELETE FROM outbox WHERE person = ?").await?,
            people: delete("DELETE FROM people WHERE id = ?").await?,
        };
        tx.commit().await?;
        Ok(report)
    }
}
