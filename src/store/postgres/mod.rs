//! The PostgreSQL engine: one database shared by any number of replicas.
//!
//! The schema, the statements and their meaning are those of the SQLite
//! engine ([`super::sqlite`]), and most statements are the same text
//! (`store::shared`); the schema differs only in dialect (`BOOLEAN`,
//! identity columns). This file keeps what differs: row locks, and writes
//! of several rows done in one statement. Replicas coordinate through
//! rows, never through a protocol of their own:
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

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Postgres, QueryBuilder};

use super::shared::{Engine, millis};
use super::*;
use super::{bind, migrations};
use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};

/// Connections per replica unless `storage.max_connections` says otherwise.
/// PostgreSQL serves writers concurrently, so a click burst is spread over
/// several connections; ten replicas stay well below the server's default
/// `max_connections` of 100.
const MAX_CONNECTIONS: u32 = 10;

/// Shown as `application_name` in `pg_stat_activity`, so operators can tell
/// nudged's connections apart.
const APPLICATION_NAME: &str = "nudged";

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

mod batch;
mod due;
mod writer;

/// A PostgreSQL-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Inbound writes (clicks, events), committed in groups.
    writer: writer::Writer,
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
        let writer = writer::Writer::start(pool.clone());
        Ok(Self { pool, writer })
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

/// The statements this engine shares with SQLite.
type Sql = shared::Sql<Postgres>;

impl Engine for Postgres {
    /// Each row binds 6 values (PostgreSQL allows 65 535 per statement).
    const IMPORT_BATCH_ROWS: usize = 1000;
    const INTEGER_FLAGS: bool = false;
    // `FOR UPDATE SKIP LOCKED`: rows another replica is claiming at this
    // moment are passed over rather than waited for, and a row it claimed
    // just before is re-checked against the lease after its lock is
    // released, so no row is ever claimed by two workers.
    const CLAIM_OUTBOX: &'static str = locking_statements!(claim_outbox, " FOR UPDATE SKIP LOCKED");
    // Locks the nudge: a concurrent click on it waits for this one.
    const NUDGE_RESPONSE: &'static str = locking_statements!(nudge_response, " FOR UPDATE");
    // Each prune batch locks the rows it picks with `SKIP LOCKED`: replicas
    // pruning at once take different rows instead of waiting on each other.
    const PRUNE_SEEN: &'static str = locking_statements!(prune_seen, " FOR UPDATE SKIP LOCKED");
    const PRUNE_OUTBOX: &'static str = locking_statements!(prune_outbox, " FOR UPDATE SKIP LOCKED");
    const PRUNE_ASSESSMENTS: &'static str =
        locking_statements!(prune_assessments, " FOR UPDATE OF a SKIP LOCKED");
    const PRUNE_CHANNEL_PACE: &'static str =
        locking_statements!(prune_channel_pace, " FOR UPDATE SKIP LOCKED");

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()> {
        Sql::upsert_person(&self.pool, person, now).await
    }

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>> {
        Sql::person(&self.pool, id).await
    }

    async fn people(&self) -> StoreResult<Vec<PersonRow>> {
        Sql::people(&self.pool).await
    }

    async fn set_enrolled(&self, id: &PersonId, enrolled: bool) -> StoreResult<bool> {
        Sql::set_enrolled(&self.pool, id, enrolled).await
    }

    async fn set_paused_until(
        &self,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        Sql::set_paused_until(&self.pool, id, until).await
    }

    async fn set_nudges_off(
        &self,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        Sql::set_nudges_off(&self.pool, id, since).await
    }

    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome> {
        Sql::upsert_answer(&self.pool, answer, source, now).await
    }

    async fn record_inbound(
        &self,
        write: &InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
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
        // Dropping the transaction on any error rolls everything back.
        let mut tx = self.pool.begin().await?;
        let outcome = Sql::import_rows(&mut tx, answers, AnswerSource::Import, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn import_demo(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome> {
        if answers.is_empty() {
            return Ok(ImportOutcome::default());
        }
        let mut tx = self.pool.begin().await?;
        let outcome = Sql::import_rows(&mut tx, answers, AnswerSource::Demo, now).await?;
        tx.commit().await?;
        Ok(outcome)
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
        Sql::mark_seen(&self.pool, key, now).await
    }

    async fn unmark_seen(&self, key: &str) -> StoreResult<()> {
        Sql::unmark_seen(&self.pool, key).await
    }

    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool> {
        Sql::claim_run(&self.pool, run, now).await
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
        // Dropping the transaction on any error rolls everything back.
        let mut tx = self.pool.begin().await?;
        let recorded = Sql::record_runs(&mut tx, runs, now).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>> {
        Sql::record_checkin(&self.pool, checkin).await
    }

    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()> {
        Sql::set_checkin_message(&self.pool, id, channel, message_ts).await
    }

    async fn checkin_by_message(
        &self,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>> {
        Sql::checkin_by_message(&self.pool, channel, message_ts).await
    }

    async fn save_assessment(&self, row: &AssessmentRow) -> StoreResult<()> {
        Sql::save_assessment(&self.pool, row).await
    }

    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>> {
        Sql::latest_assessment(&self.pool, person).await
    }

    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool> {
        Sql::record_nudge(&self.pool, nudge).await
    }

    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>> {
        Sql::nudges(&self.pool, person).await
    }

    async fn answer_nudge(
        &self,
        click: &NudgeClick,
        on_change: Option<&NewOutbox>,
    ) -> StoreResult<NudgeClickOutcome> {
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await?;
        let outcome = Sql::nudge_click(&mut tx, click, on_change).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>> {
        Sql::insert_outbox(&self.pool, message).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        Sql::claim_outbox(&self.pool, now, lease_until, limit).await
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()> {
        Sql::outbox_sent(&self.pool, id, now, response).await
    }

    async fn outbox_retry(
        &self,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        Sql::outbox_retry(&self.pool, id, next_attempt, error).await
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
        Sql::outbox_failed(&self.pool, id, error).await
    }

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>> {
        Sql::outbox_row(&self.pool, id).await
    }

    async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
        Sql::outbox_counts(&self.pool).await
    }

    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport> {
        let mut tx = self.pool.begin().await?;
        let report = Sql::forget_rows(&mut tx, person).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn forget_demo(&self, person: &PersonId) -> StoreResult<DemoForgetReport> {
        let mut tx = self.pool.begin().await?;
        let report = Sql::forget_demo_rows(&mut tx, person).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn opted_out(&self) -> StoreResult<Vec<PersonId>> {
        Sql::opted_out(&self.pool).await
    }

    async fn clear_opt_out(&self, person: &PersonId) -> StoreResult<bool> {
        Sql::clear_opt_out(&self.pool, person).await
    }

    fn shares_send_rate(&self) -> bool {
        true
    }

    async fn take_send_slots(
        &self,
        now: DateTime<Utc>,
        count: u32,
        step: std::time::Duration,
    ) -> StoreResult<DateTime<Utc>> {
        Sql::take_send_slots(&self.pool, now, count, step).await
    }

    async fn pause_sends(&self, until: DateTime<Utc>) -> StoreResult<()> {
        Sql::pause_sends(&self.pool, until).await
    }

    async fn reserve_channels(
        &self,
        planned: &[(String, DateTime<Utc>)],
        spacing: std::time::Duration,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        if planned.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = planned.iter().map(|(key, _)| key.as_str()).collect();
        let at: Vec<i64> = planned
            .iter()
            .map(|(_, at)| at.timestamp_micros())
            .collect();
        let spacing = i64::try_from(spacing.as_micros()).unwrap_or(i64::MAX);
        // One statement for the batch. Each key once (an upsert may not
        // touch a row twice), its instants folded into the first and the
        // last; keys taken in order, so two replicas reserving the same
        // keys at once wait on each other rather than deadlock. A key
        // refused is read as this statement's snapshot saw it: a replica
        // that moved it on meanwhile only makes the row come back early
        // and be refused again.
        let refused: Vec<(String, i64)> = sqlx::query_as(
            "WITH wanted AS ( \
               SELECT key, MIN(at) AS first, MAX(at) AS last \
               FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS w(key, at) GROUP BY key), \
             taken AS ( \
               INSERT INTO channel_pace (key, next_free) \
               SELECT key, last + $3 FROM wanted ORDER BY key \
               ON CONFLICT (key) DO UPDATE SET next_free = excluded.next_free \
               WHERE channel_pace.next_free <= \
                 (SELECT w.first FROM wanted w WHERE w.key = excluded.key) \
               RETURNING key) \
             SELECT w.key, COALESCE(c.next_free, w.last + $3) \
             FROM wanted w LEFT JOIN channel_pace c ON c.key = w.key \
             WHERE w.key NOT IN (SELECT key FROM taken)",
        )
        .bind(&keys)
        .bind(&at)
        .bind(spacing)
        .fetch_all(&self.pool)
        .await?;
        refused
            .into_iter()
            .map(|(key, free)| Ok((key, shared::micros_instant("channel_pace", free)?)))
            .collect()
    }

    async fn pause_channel(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        Sql::pause_channel(&self.pool, key, until).await
    }

    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()> {
        Sql::probe_write(&self.pool, now).await
    }

    async fn oldest_pending_outbox(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Sql::oldest_pending_outbox(&self.pool).await
    }

    async fn prune_seen(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        Sql::prune(&self.pool, Postgres::PRUNE_SEEN, before, limit).await
    }

    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        Sql::prune(&self.pool, Postgres::PRUNE_OUTBOX, before, limit).await
    }

    async fn prune_assessments(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        Sql::prune(&self.pool, Postgres::PRUNE_ASSESSMENTS, before, limit).await
    }

    async fn prune_channel_pace(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        Sql::prune_channel_pace(&self.pool, before, limit).await
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
        Sql::due_by(&self.pool, now, after, limit).await
    }

    async fn due_rows(&self, person: &PersonId) -> StoreResult<Vec<DueRow>> {
        Sql::due_rows(&self.pool, person).await
    }
}

/// Runs [`inbound_statement`] on `conn`, in whatever transaction is open
/// there. Errors are sqlx's own, for the caller to classify (see `writer`).
async fn apply_inbound(
    conn: &mut sqlx::PgConnection,
    write: &InboundWrite,
    now: DateTime<Utc>,
) -> Result<InboundOutcome, sqlx::Error> {
    let answers = write.distinct_answers();
    let mut query = inbound_statement(write, &answers, now);
    let (fresh, changed): (i64, i64) = query.build_query_as().fetch_one(conn).await?;
    if fresh == 0 {
        return Ok(InboundOutcome::Duplicate);
    }
    let changed = usize::try_from(changed).unwrap_or_default();
    Ok(InboundOutcome::Recorded {
        changed,
        unchanged: answers.len().saturating_sub(changed),
    })
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
