//! [`Store::record_inbound`](crate::store::Store::record_inbound) on SQLite: everything one inbound event or
//! action stores, sent to the database as one script in one round trip
//! to the write connection, in a savepoint so it is all or nothing.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::writer;
use crate::store::shared::{millis, unknown_person};
use crate::store::{InboundOutcome, InboundWrite, StoreError, StoreResult, bind};

/// The statement of [`Store::record_inbound`](crate::store::Store::record_inbound), in the caller's
/// transaction: one round trip to the connection's thread, in a savepoint
/// so it is all or nothing.
///
/// The seen key is inserted last, and every write before it stands only
/// while the key is not yet recorded. The batch's transaction holds the
/// database's write lock throughout, so nothing can record the key between
/// those checks and the insert; the insert's `RETURNING 0` says whether it
/// was new. The redraw is gated on `changes()` of the answers' upsert,
/// which counts only answers written (a repeated option writes nothing).
pub(super) async fn record(
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
