//! The due index's statements both engines run alike (ARCHITECTURE.md,
//! "Scheduling"): reading due rows and moving one on. The batch writes,
//! which bind lists the engines' own ways (`IN (…)` on SQLite, arrays on
//! PostgreSQL), stay in each engine's `due.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Executor;

use super::{Fields, millis};
use crate::domain::PersonId;
use crate::store::{DueCursor, DueEntry, DueRow, PendingDue, StoreResult};

shared_statements! {
    /// One `schedule_due` row.
    pub fn due_row(row: &DB::Row) -> StoreResult<DueRow> {
        let f = Fields::<DB>::of("schedule_due", row);
        Ok(DueRow {
            schedule: f.get("schedule")?,
            zone: f.get("zone")?,
            due_at: f.opt_time("due_at")?,
        })
    }

    /// The first page of [`Store::pending_due`](crate::store::Store::pending_due)
    /// after `after`, without their last runs ([`Sql::with_last_runs`]
    /// adds those, from the rows each engine reads its own way).
    pub async fn pending_marks<'c, E>(
        exec: E,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PendingDue>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            ", stamp FROM due_pending JOIN people ON people.id = due_pending.person \
             WHERE due_pending.person > $1 ORDER BY due_pending.person LIMIT $2"
        ))
        .bind(after.map_or("", PersonId::as_str))
        .bind(i64::from(limit))
        .fetch_all(exec)
        .await?
        .iter()
        .map(|row| {
            Ok(PendingDue {
                person: Fields::<DB>::person_row(row)?,
                stamp: Fields::<DB>::of("due_pending", row).get("stamp")?,
                last_runs: Vec::new(),
            })
        })
        .collect()
    }

    /// Gives each of `pending` its last run of each schedule, from `runs`:
    /// rows of `person, schedule, MAX(period) AS period`.
    pub fn with_last_runs(pending: &mut [PendingDue], runs: &[DB::Row]) -> StoreResult<()> {
        let mut last: HashMap<String, Vec<(String, DateTime<Utc>)>> = HashMap::new();
        for row in runs {
            let f = Fields::<DB>::of("schedule_runs", row);
            last.entry(f.get("person")?)
                .or_default()
                .push((f.get("schedule")?, f.time("period")?));
        }
        for p in pending {
            p.last_runs = last.remove(p.person.id.as_str()).unwrap_or_default();
        }
        Ok(())
    }

    /// [`Store::due_by`](crate::store::Store::due_by).
    pub async fn due_by<'c, E>(
        exec: E,
        now: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: u32,
    ) -> StoreResult<Vec<DueEntry>>
    where
        E: Executor<'c, Database = DB>,
    {
        let (at, person, schedule) = match after {
            Some(c) => (millis(c.due_at), c.person.as_str(), c.schedule.as_str()),
            None => (i64::MIN, "", ""),
        };
        sqlx::query(concat!(
            "SELECT ",
            columns!(people),
            ", schedule, zone, due_at FROM schedule_due JOIN people ON people.id = schedule_due.person \
             WHERE due_at <= $1 AND (due_at, person, schedule) > ($2, $3, $4) AND enrolled \
             ORDER BY due_at, person, schedule LIMIT $5"
        ))
        .bind(millis(now))
        .bind(at)
        .bind(person)
        .bind(schedule)
        .bind(i64::from(limit))
        .fetch_all(exec)
        .await?
        .iter()
        .map(|row| {
            let f = Fields::<DB>::of("schedule_due", row);
            Ok(DueEntry {
                person: Fields::<DB>::person_row(row)?,
                schedule: f.get("schedule")?,
                zone: f.get("zone")?,
                due_at: f.time("due_at")?,
            })
        })
        .collect()
    }

    /// [`Store::advance_due`](crate::store::Store::advance_due): only from
    /// the time and zone the tick read.
    pub async fn advance_due<'c, E>(
        exec: E,
        person: &PersonId,
        row: &DueRow,
        from: DateTime<Utc>,
    ) -> StoreResult<bool>
    where
        E: Executor<'c, Database = DB>,
    {
        let done = sqlx::query(
            "UPDATE schedule_due SET due_at = $1 \
             WHERE person = $2 AND schedule = $3 AND due_at = $4 AND zone = $5",
        )
        .bind(row.due_at.map(millis))
        .bind(person.as_str())
        .bind(row.schedule.as_str())
        .bind(millis(from))
        .bind(row.zone.as_str())
        .execute(exec)
        .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// [`Store::due_rows`](crate::store::Store::due_rows).
    pub async fn due_rows<'c, E>(exec: E, person: &PersonId) -> StoreResult<Vec<DueRow>>
    where
        E: Executor<'c, Database = DB>,
    {
        sqlx::query(
            "SELECT schedule, zone, due_at FROM schedule_due WHERE person = $1 ORDER BY schedule",
        )
        .bind(person.as_str())
        .fetch_all(exec)
        .await?
        .iter()
        .map(Self::due_row)
        .collect()
    }
}
