//! The due index on SQLite ([`crate::store::due`]): the roster's bulk
//! upsert and the `schedule_due` / `due_pending` / `schedule_set` tables.
//! Writes go through the group-committing writer like every other write;
//! several statements run in one savepoint.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::*;
use crate::store::due::{current, distinct_people};

/// Pushes `(?, ?, …)` binding each of `ids`.
fn push_ids<'a>(query: &mut QueryBuilder<Sqlite>, ids: impl IntoIterator<Item = &'a str>) {
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    list.push_unseparated(")");
}

async fn upsert_rows(
    conn: &mut SqliteConnection,
    people: &[NewPerson],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in distinct_people(people).chunks(DUE_BATCH_ROWS) {
        // As `upsert_person`, many rows at once; the `WHERE` of the update
        // leaves an unchanged person unwritten (and unmarked).
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO people (id, name, tz, enrolled, paused_until, created_at) \
             SELECT column1, column2, column3, column4, NULL, column5 FROM (",
        );
        query.push_values(chunk, |mut row, person| {
            row.push_bind(person.id.as_str())
                .push_bind(person.name.as_deref())
                .push_bind(person.tz.map(|tz| tz.name()))
                .push_bind(i64::from(person.enrolled))
                .push_bind(millis(now));
        });
        query.push(
            ") WHERE NOT EXISTS (SELECT 1 FROM opt_outs WHERE person = column1) \
             ON CONFLICT (id) DO UPDATE SET \
               name = COALESCE(excluded.name, people.name), \
               tz = COALESCE(excluded.tz, people.tz) \
             WHERE people.name IS NOT COALESCE(excluded.name, people.name) \
                OR people.tz IS NOT COALESCE(excluded.tz, people.tz)",
        );
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn schedule_set_rows(
    conn: &mut SqliteConnection,
    fingerprint: &str,
    schedules: &[String],
) -> StoreResult<bool> {
    // Inserted or changed only if different: the row says whether to act.
    let changed = sqlx::query(
        "INSERT INTO schedule_set (id, fingerprint) VALUES (1, ?) \
         ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint \
         WHERE schedule_set.fingerprint <> excluded.fingerprint",
    )
    .bind(fingerprint)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if !changed {
        return Ok(false);
    }
    let mut gone = QueryBuilder::<Sqlite>::new("DELETE FROM schedule_due");
    if !schedules.is_empty() {
        gone.push(" WHERE schedule NOT IN ");
        push_ids(&mut gone, schedules.iter().map(String::as_str));
    }
    gone.build().persistent(false).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO due_pending (person, stamp) \
         SELECT id, random() FROM people \
         WHERE enrolled OR EXISTS (SELECT 1 FROM schedule_due WHERE person = people.id) \
         ON CONFLICT (person) DO UPDATE SET stamp = excluded.stamp",
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

async fn set_due_rows(conn: &mut SqliteConnection, updates: &[DueUpdate]) -> StoreResult<usize> {
    let mut applied = 0;
    for chunk in updates.chunks(DUE_BATCH_ROWS) {
        let mut read =
            QueryBuilder::<Sqlite>::new("SELECT person, stamp FROM due_pending WHERE person IN ");
        push_ids(&mut read, chunk.iter().map(|u| u.person.as_str()));
        let marks: HashMap<String, i64> = read
            .build_query_as::<(String, i64)>()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let current = current(chunk, &marks);
        if current.is_empty() {
            continue;
        }
        let settled: Vec<&str> = current
            .iter()
            .filter(|u| u.settle)
            .map(|u| u.person.as_str())
            .collect();
        if !settled.is_empty() {
            let mut settle =
                QueryBuilder::<Sqlite>::new("DELETE FROM due_pending WHERE person IN ");
            push_ids(&mut settle, settled);
            settle.build().persistent(false).execute(&mut *conn).await?;
        }
        let mut clear = QueryBuilder::<Sqlite>::new("DELETE FROM schedule_due WHERE person IN ");
        push_ids(&mut clear, current.iter().map(|u| u.person.as_str()));
        clear.build().persistent(false).execute(&mut *conn).await?;
        let rows: Vec<(&PersonId, &DueRow)> = current
            .iter()
            .flat_map(|u| u.rows.iter().map(move |r| (&u.person, r)))
            .collect();
        for rows in rows.chunks(DUE_BATCH_ROWS) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO schedule_due (person, schedule, zone, due_at) ",
            );
            insert.push_values(rows, |mut row, (person, due)| {
                row.push_bind(person.as_str())
                    .push_bind(due.schedule.as_str())
                    .push_bind(due.zone.as_str())
                    .push_bind(due.due_at.map(millis));
            });
            insert.push(
                " ON CONFLICT (person, schedule) DO UPDATE SET \
                 zone = excluded.zone, due_at = excluded.due_at",
            );
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        applied += current.len();
    }
    Ok(applied)
}

impl SqliteStore {
    pub(super) async fn upsert_people_rows(
        &self,
        people: &[NewPerson],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if people.is_empty() {
            return Ok(());
        }
        let people = people.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = upsert_rows(conn, &people, now).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }

    pub(super) async fn sync_schedule_set_rows(
        &self,
        fingerprint: &str,
        schedules: &[String],
    ) -> StoreResult<bool> {
        let (fingerprint, schedules) = (fingerprint.to_owned(), schedules.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = schedule_set_rows(conn, &fingerprint, &schedules).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
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
        let mut runs = QueryBuilder::<Sqlite>::new(
            "SELECT person, schedule, MAX(period) AS period FROM schedule_runs WHERE person IN ",
        );
        push_ids(&mut runs, pending.iter().map(|p| p.person.id.as_str()));
        runs.push(" GROUP BY person, schedule");
        let runs = runs.build().persistent(false).fetch_all(&self.pool).await?;
        Sql::with_last_runs(&mut pending, &runs)?;
        Ok(pending)
    }

    pub(super) async fn set_due_rows(&self, updates: &[DueUpdate]) -> StoreResult<usize> {
        if updates.is_empty() {
            return Ok(0);
        }
        let updates = updates.to_vec();
        self.write(move |conn| {
            Box::pin(async move {
                writer::savepoint(conn).await?;
                let outcome = set_due_rows(conn, &updates).await;
                writer::end_savepoint(conn, outcome).await
            })
        })
        .await
    }
}
