//! The shared statements of the outbox, of forgetting a person and of
//! health and retention: more of [`Sql`](super::Sql), split from
//! `statements.rs` only to keep each file short.

use chrono::{DateTime, Utc};
use sqlx::{Executor, Row};

use super::{Fields, corrupt, millis};
use crate::domain::PersonId;
use crate::store::{
    DemoForgetReport, ForgetReport, NewOutbox, OutboxCounts, OutboxRow, OutboxStatus, StoreResult,
    action_seen_prefix, bind,
};

/// A `next_free` instant of `table` (`delivery_rate`, `channel_pace`), in
/// microseconds since the epoch.
pub(in crate::store) fn micros_instant(
    table: &'static str,
    micros: i64,
) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(table, format!("next_free {micros} out of range")))
}

shared_statements! {
    // ---- outbox -------------------------------------------------------

    /// [`Store::enqueue`](crate::store::Store::enqueue). Keys left NULL
    /// never conflict (NULLs are distinct); a conflict on either key adds
    /// nothing.
    pub async fn insert_outbox<'c, E>(exec: E, message: &NewOutbox) -> StoreResult<Option<i64>>
    where
        E: Executor<'c, Database = DB>,
    {
        let query = sqlx::query_scalar(concat!(
            insert_outbox!(),
            "VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8) \
             ON CONFLICT DO NOTHING RETURNING id"
        ));
        let id: Option<i64> = bind::outbox(query, message).fetch_optional(exec).await?;
        Ok(id)
    }

    /// [`Store::claim_outbox`](crate::store::Store::claim_outbox), in one
    /// statement ([`Engine::CLAIM_OUTBOX`]) so no two workers ever claim
    /// the same row.
    pub async fn claim_outbox<'c, E>(
        exec: E,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        let mut rows = sqlx::query(DB::CLAIM_OUTBOX)
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(exec)
            .await?
            .iter()
            .map(Fields::outbox_row)
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING comes back in no particular order.
        rows.sort_by_key(|r| (r.not_before, r.id));
        Ok(rows)
    }

    /// Recorded whatever the row's state: the message did go out, even if
    /// this worker's lease had expired meanwhile.
    pub async fn outbox_sent<'c, E>(
        exec: E,
        id: i64,
        at: DateTime<Utc>,
        response: &str,
    ) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, lease_until = NULL, \
                               response = $1, sent_at = $2 WHERE id = $3",
        )
        .bind(response)
        .bind(millis(at))
        .bind(id)
        .execute(exec)
        .await?;
        Ok(())
    }

    /// Only a pending row: a late report from a worker whose lease expired
    /// must not reopen a row another worker has since finished.
    pub async fn outbox_retry<'c, E>(
        exec: E,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, not_before = $1, \
                               last_error = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(millis(next_attempt))
        .bind(error)
        .bind(id)
        .execute(exec)
        .await?;
        Ok(())
    }

    /// Only a pending row: a row another worker delivered stays sent.
    pub async fn outbox_failed<'c, E>(exec: E, id: i64, error: &str) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, lease_until = NULL, \
                               last_error = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(exec)
        .await?;
        Ok(())
    }

    pub async fn outbox_row<'c, E>(exec: E, id: i64) -> StoreResult<Option<OutboxRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(outbox),
            " FROM outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(exec)
        .await?
        .as_ref()
        .map(Fields::outbox_row)
        .transpose()
    }

    pub async fn outbox_counts<'c, E>(exec: E) -> StoreResult<OutboxCounts>
    where
        E: Executor<'c, Database = DB>,
    {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
            .fetch_all(exec)
            .await?;
        let mut counts = OutboxCounts::default();
        for row in &rows {
            let f = Fields::<DB>::of("outbox", row);
            let n = f.big_count("n")?;
            match f.parsed("status", str::parse::<OutboxStatus>)? {
                OutboxStatus::Pending => counts.pending = n,
                OutboxStatus::Sent => counts.sent = n,
                OutboxStatus::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    // ---- privacy --------------------------------------------------------

    /// The statements of [`Store::forget`](crate::store::Store::forget), in
    /// the caller's transaction.
    pub async fn forget_rows(
        conn: &mut DB::Connection,
        person: &PersonId,
    ) -> StoreResult<ForgetReport> {
        // The person's click ids name them; their id alone stays, as the
        // opt-out that keeps the roster from enrolling them again.
        let done = sqlx::query("DELETE FROM seen_events WHERE substr(key, 1, length($1)) = $1")
            .bind(action_seen_prefix(person))
            .execute(&mut *conn)
            .await?;
        let seen_events = DB::rows_affected(&done);
        sqlx::query("INSERT INTO opt_outs (person) VALUES ($1) ON CONFLICT (person) DO NOTHING")
            .bind(person.as_str())
            .execute(&mut *conn)
            .await?;
        // Children first, each counted, so the report is exact whatever the
        // cascade would have done. Outbox rows carry no foreign key (a
        // message may be about nobody) and go explicitly.
        let mut delete = async |sql: &'static str| -> StoreResult<u64> {
            let done = sqlx::query(sql)
                .bind(person.as_str())
                .execute(&mut *conn)
                .await?;
            Ok(DB::rows_affected(&done))
        };
        Ok(ForgetReport {
            answers: delete("DELETE FROM answers WHERE person = $1").await?,
            checkins: delete("DELETE FROM checkins WHERE person = $1").await?,
            schedule_runs: delete("DELETE FROM schedule_runs WHERE person = $1").await?,
            assessments: delete("DELETE FROM assessments WHERE person = $1").await?,
            nudges: delete("DELETE FROM nudges WHERE person = $1").await?,
            outbox: delete("DELETE FROM outbox WHERE person = $1").await?,
            people: delete("DELETE FROM people WHERE id = $1").await?,
            seen_events,
        })
    }

    /// The statements of [`Store::forget_demo`](crate::store::Store::forget_demo),
    /// in the caller's transaction.
    pub async fn forget_demo_rows(
        conn: &mut DB::Connection,
        person: &PersonId,
    ) -> StoreResult<DemoForgetReport> {
        let since: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(recorded_at) FROM answers WHERE person = $1 AND source = 'demo'",
        )
        .bind(person.as_str())
        .fetch_one(&mut *conn)
        .await?;
        let Some(since) = since else {
            return Ok(DemoForgetReport::default());
        };
        // Everything the model decided while the demo history was stored
        // rests on it. The nudge's message goes with the nudge, or its
        // dedupe key would keep a real nudge of that week from being sent.
        let mut delete = async |sql: &'static str, key: Option<String>| -> StoreResult<u64> {
            let mut query = sqlx::query(sql).bind(person.as_str()).bind(since);
            if let Some(key) = key {
                query = query.bind(key);
            }
            let done = query.execute(&mut *conn).await?;
            Ok(DB::rows_affected(&done))
        };
        Ok(DemoForgetReport {
            outbox: delete(
                "DELETE FROM outbox WHERE person = $1 AND created_at >= $2 AND dedupe_key LIKE $3",
                Some(format!("nudge:{person}:%")),
            )
            .await?,
            nudges: delete(
                "DELETE FROM nudges WHERE person = $1 AND sent_at >= $2",
                None,
            )
            .await?,
            assessments: delete(
                "DELETE FROM assessments WHERE person = $1 AND assessed_at >= $2",
                None,
            )
            .await?,
            answers: delete(
                "DELETE FROM answers WHERE person = $1 AND source = 'demo' AND recorded_at >= $2",
                None,
            )
            .await?,
        })
    }

    pub async fn opted_out<'c, E>(exec: E) -> StoreResult<Vec<PersonId>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query("SELECT person FROM opt_outs ORDER BY person")
            .fetch_all(exec)
            .await?
            .iter()
            .map(|row| Fields::<DB>::of("opt_outs", row).person("person"))
            .collect()
    }

    pub async fn clear_opt_out<'c, E>(exec: E, person: &PersonId) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query("DELETE FROM opt_outs WHERE person = $1")
            .bind(person.as_str())
            .execute(exec)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    // ---- the shared send rate (delivery_rate) ----------------------------

    /// [`Store::take_send_slots`](crate::store::Store::take_send_slots):
    /// one upsert, so workers taking slots at once are served one after
    /// the other by the row's lock and never get the same slot.
    pub async fn take_send_slots<'c, E>(
        exec: E,
        now: DateTime<Utc>,
        count: u32,
        step: std::time::Duration,
    ) -> StoreResult<DateTime<Utc>>
    where
        E: Executor<'c, Database = DB>,
    {
        let step = i64::try_from(step.as_micros()).unwrap_or(i64::MAX);
        let span = step.saturating_mul(i64::from(count));
        let row = sqlx::query(
            "INSERT INTO delivery_rate (scope, next_free) VALUES ('workspace', $1 + $2) \
             ON CONFLICT (scope) DO UPDATE SET next_free = \
               CASE WHEN delivery_rate.next_free > $1 THEN delivery_rate.next_free ELSE $1 END + $2 \
             RETURNING next_free - $2 AS first",
        )
        .bind(now.timestamp_micros())
        .bind(span)
        .fetch_one(exec)
        .await?;
        micros_instant("delivery_rate", row.try_get("first")?)
    }

    /// [`Store::pause_sends`](crate::store::Store::pause_sends): no slot
    /// taken, the next free one moved to `until` if it is earlier.
    pub async fn pause_sends<'c, E>(exec: E, until: DateTime<Utc>) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        Self::take_send_slots(exec, until, 0, std::time::Duration::ZERO).await?;
        Ok(())
    }

    // ---- each channel's shared pace (channel_pace) ------------------------

    /// [`Store::reserve_channels`](crate::store::Store::reserve_channels)
    /// for one key, `first` and `last` its earliest and latest instants:
    /// `None` when granted, else the instant the key is free. Two
    /// statements, on one connection the caller keeps to itself (SQLite's
    /// writer); PostgreSQL reserves a whole batch in one statement of its
    /// own.
    pub async fn reserve_channel(
        conn: &mut DB::Connection,
        key: &str,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
        spacing: std::time::Duration,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let spacing = i64::try_from(spacing.as_micros()).unwrap_or(i64::MAX);
        let taken: Option<i64> = sqlx::query_scalar(
            "INSERT INTO channel_pace (key, next_free) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET next_free = excluded.next_free \
             WHERE channel_pace.next_free <= $3 RETURNING next_free",
        )
        .bind(key)
        .bind(last.timestamp_micros().saturating_add(spacing))
        .bind(first.timestamp_micros())
        .fetch_optional(&mut *conn)
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let free: i64 = sqlx::query_scalar("SELECT next_free FROM channel_pace WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        micros_instant("channel_pace", free).map(Some)
    }

    /// [`Store::pause_channel`](crate::store::Store::pause_channel): the
    /// key's next free instant moved to `until` if it is earlier.
    pub async fn pause_channel<'c, E>(exec: E, key: &str, until: DateTime<Utc>) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO channel_pace (key, next_free) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET next_free = \
               CASE WHEN channel_pace.next_free > $2 THEN channel_pace.next_free ELSE $2 END",
        )
        .bind(key)
        .bind(until.timestamp_micros())
        .execute(exec)
        .await?;
        Ok(())
    }

    /// One batch of [`Store::prune_channel_pace`](crate::store::Store::prune_channel_pace)
    /// (the engine's `PRUNE_CHANNEL_PACE`): its instants are microseconds.
    pub async fn prune_channel_pace<'c, E>(
        exec: E,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(DB::PRUNE_CHANNEL_PACE)
            .bind(before.timestamp_micros())
            .bind(i64::from(limit))
            .execute(exec)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    // ---- health and retention -------------------------------------------

    pub async fn probe_write<'c, E>(exec: E, now: DateTime<Utc>) -> StoreResult<()>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO readiness_probe (id, written_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        )
        .bind(millis(now))
        .execute(exec)
        .await?;
        Ok(())
    }

    pub async fn oldest_pending_outbox<'c, E>(exec: E) -> StoreResult<Option<DateTime<Utc>>>
    where
        E: Executor<'c, Database = DB>,
    {
        let row =
            sqlx::query("SELECT MIN(created_at) AS queued FROM outbox WHERE status = 'pending'")
                .fetch_one(exec)
                .await?;
        Fields::<DB>::of("outbox", &row).opt_time("queued")
    }

    /// One batch of a prune: `sql` (one of the engine's `PRUNE_*`) deletes
    /// up to `limit` rows older than `before` in one short statement.
    pub async fn prune<'c, E>(
        exec: E,
        sql: &'static str,
        before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(sql)
            .bind(millis(before))
            .bind(i64::from(limit))
            .execute(exec)
            .await?;
        Ok(DB::rows_affected(&done))
    }
}
