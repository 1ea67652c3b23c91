//! The due index on PostgreSQL ([`crate::store::due`]): the roster's bulk
//! upsert and the `schedule_due` / `due_pending` / `schedule_set` tables.
//!
//! Lists travel as arrays (`= ANY($1)`, `UNNEST`), so a batch of any size
//! is one statement. Replicas recomputing the same people at once lock
//! their marks in id order before writing: the one that comes second
//! waits, then finds the marks settled and writes nothing.

use std::collections::HashMap;

use super::*;
use crate::store::due::{current, distinct_people};

impl PgStore {
    pub(super) async fn upsert_people_rows(
        &self,
        people: &[NewPerson],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        for chunk in distinct_people(people).chunks(DUE_BATCH_ROWS) {
            let ids: Vec<&str> = chunk.iter().map(|p| p.id.as_str()).collect();
            let names: Vec<Option<&str>> = chunk.iter().map(|p| p.name.as_deref()).collect();
            let zones: Vec<Option<&str>> = chunk.iter().map(|p| p.tz.map(|tz| tz.name())).collect();
            let enrolled: Vec<bool> = chunk.iter().map(|p| p.enrolled).collect();
            // As `upsert_person`, many rows at once; the `WHERE` of the
            // update leaves an unchanged person unwritten (and unmarked).
            sqlx::query(
                "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
                 SELECT v.id, v.name, v.tz, v.enrolled, NULL, $5 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[]) \
                   AS v(id, name, tz, enrolled) \
                 WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE person = v.id) \
                 ON CONFLICT (id) DO UPDATE SET \
                   name = COALESCE(excluded.name, people.name), \
                   tz = COALESCE(excluded.tz, people.tz) \
                 WHERE people.name IS DISTINCT FROM COALESCE(excluded.name, people.name) \
                    OR people.tz IS DISTINCT FROM COALESCE(excluded.tz, people.tz)",
            )
            .bind(ids)
            .bind(names)
            .bind(zones)
            .bind(enrolled)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub(super) async fn sync_schedule_set_rows(
        &self,
        fingerprint: &str,
        schedules: &[String],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Inserted or changed only if different; a second replica with the
        // same set waits on the row, then finds it equal.
        let changed = sqlx::query(
            "INSERT INTO schedule_set (id, fingerprint) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint \
             WHERE schedule_set.fingerprint <> excluded.fingerprint",
        )
        .bind(fingerprint)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if !changed {
            return Ok(false);
        }
        sqlx::query("DELETE FROM schedule_due WHERE NOT (schedule = ANY($1))")
            .bind(schedules)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO due_pending (person, stamp) \
             SELECT id, nextval('due_pending_stamp') FROM people \
             WHERE enrolled OR EXISTS (SELECT 1 FROM schedule_due WHERE person = people.id) \
             ORDER BY id \
             ON CONFLICT (person) DO UPDATE SET stamp = excluded.stamp",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn pending_due_rows(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PendingDue>> {
        let mut pending = Sql::pending_marks(&self.pool, after, limit).await?;
        if pending.is_empty() {
            return Ok(pending);
        }
        let ids: Vec<&str> = pending.iter().map(|p| p.person.id.as_str()).collect();
        let runs = sqlx::query(
            "SELECT person, schedule, MAX(period) AS period FROM schedule_runs \
             WHERE person = ANY($1) GROUP BY person, schedule",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Sql::with_last_runs(&mut pending, &runs)?;
        Ok(pending)
    }

    pub(super) async fn set_due_rows(&self, updates: &[DueUpdate]) -> StoreResult<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        // Locked in id order, so two replicas on overlapping batches queue
        // rather than deadlock.
        let ids: Vec<&str> = updates.iter().map(|u| u.person.as_str()).collect();
        let marks: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT person, stamp FROM due_pending WHERE person = ANY($1) \
             ORDER BY person FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let current = current(updates, &marks);
        if current.is_empty() {
            return Ok(0);
        }
        let settled: Vec<&str> = current
            .iter()
            .filter(|u| u.settle)
            .map(|u| u.person.as_str())
            .collect();
        sqlx::query("DELETE FROM due_pending WHERE person = ANY($1)")
            .bind(settled)
            .execute(&mut *tx)
            .await?;
        let people: Vec<&str> = current.iter().map(|u| u.person.as_str()).collect();
        sqlx::query("DELETE FROM schedule_due WHERE person = ANY($1)")
            .bind(people)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(&PersonId, &DueRow)> = current
            .iter()
            .flat_map(|u| u.rows.iter().map(move |r| (&u.person, r)))
            .collect();
        sqlx::query(
            "INSERT INTO schedule_due (person, schedule, zone, due_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) \
             ON CONFLICT (person, schedule) DO UPDATE SET \
               zone = excluded.zone, due_at = excluded.due_at",
        )
        .bind(rows.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|(_, r)| r.schedule.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, r)| r.zone.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|(_, r)| r.due_at.map(millis))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(current.len())
    }
}
