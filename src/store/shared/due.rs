//! The due index's statements both engines run alike (ARCHITECTURE.md,
//! "Scheduling"): reading due rows and moving one on. The batch writes,
//! which bind lists the engines' own ways (`IN (…)` on SQLite, arrays on
//! PostgreSQL), stay in each engine's `due.rs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Executor, QueryBuilder};

use super::{Fields, millis};
use crate::domain::PersonId;
use crate::store::{
    DUE_BATCH_ROWS, DueAdvance, DueCursor, DueEntry, DueRow, NewOutbox, PendingDue, PromptWrite,
    RunRecorded, RunWrite, ScheduleRun, StoreResult, bind,
};

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

    /// [`Store::due_by`](crate::store::Store::due_by), with each row's last
    /// claimed run read by the primary key's prefix.
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
            ", schedule, zone, due_at, \
             (SELECT MAX(period) FROM schedule_runs \
              WHERE schedule_runs.person = schedule_due.person \
              AND schedule_runs.schedule = schedule_due.schedule) AS last_run \
             FROM schedule_due JOIN people ON people.id = schedule_due.person \
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
                last_run: f.opt_time("last_run")?,
            })
        })
        .collect()
    }

    /// [`Store::record_runs`](crate::store::Store::record_runs), in the
    /// caller's transaction or savepoint: one multi-row statement for each
    /// kind of write, each saying by `RETURNING` which of its rows it wrote.
    pub async fn record_runs(
        conn: &mut DB::Connection,
        runs: &[RunWrite],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RunRecorded>> {
        let mut recorded = vec![RunRecorded::default(); runs.len()];
        let prompts: Vec<(usize, &PromptWrite)> = runs
            .iter()
            .enumerate()
            .filter_map(|(i, run)| Some((i, run.prompt.as_ref()?)))
            .collect();
        let ids = Self::insert_checkins(&mut *conn, &prompts).await?;
        let drawn: Vec<(usize, NewOutbox)> = prompts
            .iter()
            .map(|(i, prompt)| {
                let c = &prompt.checkin;
                let id = ids
                    .get(&(c.person.to_string(), c.schedule.clone(), millis(c.period)))
                    .copied();
                (*i, (prompt.draw)(id))
            })
            .collect();
        let queued = Self::insert_prompts(&mut *conn, &drawn).await?;
        for (i, row) in &drawn {
            recorded[*i].queued = row.dedupe_key.as_ref().is_none_or(|k| queued.contains(k));
        }
        let claimed = Self::insert_claims(&mut *conn, runs, now).await?;
        let advanced = Self::advance_rows(&mut *conn, runs).await?;
        for (run, done) in runs.iter().zip(&mut recorded) {
            if let Some(c) = &run.claim {
                done.claimed =
                    claimed.contains(&(c.person.to_string(), c.schedule.clone(), millis(c.period)));
            }
            if let Some(a) = &run.advance {
                done.advanced = advanced.contains(&(a.person.to_string(), a.row.schedule.clone()));
            }
        }
        Ok(recorded)
    }

    /// The check-ins of `prompts`; returns the ids of those new, by
    /// (person, schedule, period).
    async fn insert_checkins(
        conn: &mut DB::Connection,
        prompts: &[(usize, &PromptWrite)],
    ) -> StoreResult<HashMap<(String, String, i64), i64>> {
        let mut ids = HashMap::new();
        for chunk in prompts.chunks(DUE_BATCH_ROWS) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO checkins (person, schedule, period, week, channel, message_ts, created_at) ",
            );
            insert.push_values(chunk, |mut row, (_, prompt)| {
                let c = &prompt.checkin;
                row.push_bind(c.person.to_string())
                    .push_bind(c.schedule.clone())
                    .push_bind(millis(c.period))
                    .push_bind(c.week.to_string())
                    .push_bind(c.channel.clone())
                    .push_bind(c.message_ts.clone())
                    .push_bind(millis(c.created_at));
            });
            insert.push(
                " ON CONFLICT (person, schedule, period) DO NOTHING \
                 RETURNING id, person, schedule, period",
            );
            let rows = insert.build().persistent(false).fetch_all(&mut *conn).await?;
            for row in &rows {
                let f = Fields::<DB>::of("checkins", row);
                ids.insert(
                    (f.get("person")?, f.get("schedule")?, f.get("period")?),
                    f.get("id")?,
                );
            }
        }
        Ok(ids)
    }

    /// The prompts' outbox rows; returns the dedupe keys of those new.
    async fn insert_prompts(
        conn: &mut DB::Connection,
        drawn: &[(usize, NewOutbox)],
    ) -> StoreResult<HashSet<String>> {
        let mut queued = HashSet::new();
        for chunk in drawn.chunks(DUE_BATCH_ROWS) {
            let rows: Vec<&NewOutbox> = chunk.iter().map(|(_, row)| row).collect();
            let mut insert = QueryBuilder::<DB>::new(concat!(
                insert_outbox!(),
                "SELECT column1, column2, column3, column4, column5, column6, 'pending', 0, \
                 column7, column8 FROM ("
            ));
            bind::outbox_values(&mut insert, &rows);
            // `WHERE true`: SQLite reads `ON` right after a `FROM` as a
            // join's unless a `WHERE` comes between.
            insert.push(") AS v WHERE true ON CONFLICT DO NOTHING RETURNING dedupe_key");
            for key in insert.build_query_scalar::<Option<String>>().persistent(false).fetch_all(&mut *conn).await? {
                queued.extend(key);
            }
        }
        Ok(queued)
    }

    /// The runs' claims; returns those this write made, by (person,
    /// schedule, period).
    async fn insert_claims(
        conn: &mut DB::Connection,
        runs: &[RunWrite],
        now: DateTime<Utc>,
    ) -> StoreResult<HashSet<(String, String, i64)>> {
        let claims: Vec<&ScheduleRun> = runs.iter().filter_map(|r| r.claim.as_ref()).collect();
        let mut claimed = HashSet::new();
        for chunk in claims.chunks(DUE_BATCH_ROWS) {
            let mut insert = QueryBuilder::<DB>::new(
                "INSERT INTO schedule_runs (person, schedule, period, claimed_at) ",
            );
            insert.push_values(chunk, |mut row, run| {
                row.push_bind(run.person.to_string())
                    .push_bind(run.schedule.clone())
                    .push_bind(millis(run.period))
                    .push_bind(millis(now));
            });
            insert.push(" ON CONFLICT DO NOTHING RETURNING person, schedule, period");
            for row in &insert.build().persistent(false).fetch_all(&mut *conn).await? {
                let f = Fields::<DB>::of("schedule_runs", row);
                claimed.insert((f.get("person")?, f.get("schedule")?, f.get("period")?));
            }
        }
        Ok(claimed)
    }

    /// The runs' due rows moved on, each only if it still reads the time
    /// and zone the tick read; returns those moved, by (person, schedule).
    async fn advance_rows(
        conn: &mut DB::Connection,
        runs: &[RunWrite],
    ) -> StoreResult<HashSet<(String, String)>> {
        let moves: Vec<&DueAdvance> = runs.iter().filter_map(|r| r.advance.as_ref()).collect();
        let mut advanced = HashSet::new();
        for chunk in moves.chunks(DUE_BATCH_ROWS) {
            // `columnN` are the names both engines give a `VALUES` list's
            // columns.
            let mut update = QueryBuilder::<DB>::new("UPDATE schedule_due SET due_at = v.column1 FROM (");
            update.push_values(chunk, |mut row, advance| {
                row.push_bind(advance.row.due_at.map(millis))
                    .push_bind(advance.person.to_string())
                    .push_bind(advance.row.schedule.clone())
                    .push_bind(millis(advance.from))
                    .push_bind(advance.row.zone.clone());
            });
            update.push(
                ") AS v WHERE schedule_due.person = v.column2 AND schedule_due.schedule = v.column3 \
                 AND schedule_due.due_at = v.column4 AND schedule_due.zone = v.column5 \
                 RETURNING schedule_due.person, schedule_due.schedule",
            );
            for row in &update.build().persistent(false).fetch_all(&mut *conn).await? {
                let f = Fields::<DB>::of("schedule_due", row);
                advanced.insert((f.get("person")?, f.get("schedule")?));
            }
        }
        Ok(advanced)
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
