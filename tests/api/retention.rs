//! Bounded growth and the store's part in `/readyz`, on both engines (a
//! fresh SQLite file, a fresh PostgreSQL database): pruning deletes what
//! is no longer needed and never what is; the probe write proves the store
//! takes writes, and fails when it does not.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nudged::domain::PersonId;
use nudged::retention::{self, PRUNE_BATCH, PruneOutcome};
use nudged::store::{
    AnswerSource, AssessmentRow, NewOutbox, NewPerson, NudgeRow, OutboxResult, OutboxStatus, Store,
};

use crate::helpers::{WAIT, test_now};
use crate::store::TestDb;

/// `storage.retention_days` as shipped.
const RETENTION: Duration = Duration::days(90);

fn pid(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

async fn add(store: &dyn Store, id: &str) {
    let person = NewPerson {
        id: pid(id),
        name: None,
        tz: None,
        enrolled: true,
    };
    store.upsert_person(&person, test_now()).await.unwrap();
}

/// A post queued at `at`; returns its id.
async fn queue(store: &dyn Store, at: DateTime<Utc>) -> i64 {
    let message = NewOutbox {
        dedupe_key: None,
        coalesce_key: None,
        person: Some(pid("U1")),
        kind: "post".into(),
        channel: "D1".into(),
        payload: "{}".into(),
        not_before: at,
        created_at: at,
    };
    store.enqueue(&message).await.unwrap().unwrap()
}

/// Assesses `person` at `at`, the detail naming it so a test can tell rows
/// apart.
async fn assess(store: &dyn Store, person: &str, at: DateTime<Utc>, detail: &str) {
    let row = AssessmentRow {
        person: pid(person),
        week: "2026-W47".parse().unwrap(),
        state: "building".into(),
        ewma: Some(0.5),
        detail: detail.into(),
        assessed_at: at,
    };
    store.save_assessment(&row).await.unwrap();
}

/// The latest assessment's detail.
async fn latest(store: &dyn Store, person: &str) -> Option<String> {
    let row = store.latest_assessment(&pid(person)).await.unwrap();
    row.map(|r| r.detail)
}

/// The contract, once per engine.
macro_rules! retention_tests {
    ($db:expr) => {
        retention_tests!(@one $db;
            pruning_deletes_what_is_no_longer_needed_and_nothing_else,
            each_prune_statement_deletes_at_most_its_batch,
            the_probe_write_succeeds_again_and_again,
            the_oldest_pending_message_is_what_readyz_measures,
        );
    };
    (@one $db:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let db = $db;
            tokio::time::timeout(WAIT, super::$name(db.open().await))
                .await
                .expect("store test did not finish in time");
        }
    )*};
}

mod on_sqlite {
    use super::*;

    retention_tests!(TestDb::sqlite());

    #[tokio::test]
    async fn a_probe_write_that_fails_is_an_error() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        let raw = nudged::store::sqlite::SqliteStore::open(&db.url)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON readiness_probe \
               BEGIN SELECT RAISE(ABORT, 'read-only'); END",
        )
        .execute(raw.pool())
        .await
        .unwrap();
        super::a_probe_write_that_fails_is_an_error(store).await;
    }
}

mod on_postgres {
    use super::*;

    retention_tests!(match TestDb::postgres().await {
        Some(db) => db,
        None => return,
    });

    #[tokio::test]
    async fn a_probe_write_that_fails_is_an_error() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let store = db.open().await;
        let raw = nudged::store::postgres::PgStore::open(&db.url, &Default::default())
            .await
            .unwrap();
        // As a server in read-only mode (a standby after a failover) does.
        sqlx::raw_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN RAISE EXCEPTION 'cannot execute INSERT in a read-only transaction'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON readiness_probe \
               FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .execute(raw.pool())
        .await
        .unwrap();
        super::a_probe_write_that_fails_is_an_error(store).await;
    }
}

async fn pruning_deletes_what_is_no_longer_needed_and_nothing_else(store: Arc<dyn Store>) {
    let now = test_now();
    let store = store.as_ref();
    for id in ["U1", "U2", "U3"] {
        add(store, id).await;
    }

    // Event ids: kept a day.
    assert!(
        store
            .mark_seen("old", now - Duration::hours(25))
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_seen("recent", now - Duration::hours(23))
            .await
            .unwrap()
    );

    // Outbox rows: finished and old go; waiting or in flight stay,
    // however old.
    let long_ago = now - RETENTION - Duration::days(1);
    let sent_old = queue(store, long_ago).await;
    let failed_old = queue(store, long_ago).await;
    let sent_recent = queue(store, now - RETENTION + Duration::days(1)).await;
    let waiting_old = queue(store, long_ago).await;
    let in_flight_old = queue(store, long_ago).await;
    let claimed = store
        .claim_outbox(now, now + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    store
        .outbox_record(&[
            OutboxResult::Sent {
                id: sent_old,
                at: long_ago,
                response: "{}".into(),
                checkin: None,
            },
            OutboxResult::Failed {
                id: failed_old,
                error: "channel_not_found".into(),
            },
            OutboxResult::Sent {
                id: sent_recent,
                at: now,
                response: "{}".into(),
                checkin: None,
            },
            OutboxResult::Retry {
                id: waiting_old,
                next_attempt: now + Duration::minutes(5),
                error: "HTTP 503".into(),
            },
        ])
        .await
        .unwrap();

    // Channels' shared paces: those long free go; a pause still running
    // or just ended stays.
    store
        .pause_channel("post:C1", now - Duration::hours(2))
        .await
        .unwrap();
    store
        .pause_channel("post:C2", now - Duration::minutes(1))
        .await
        .unwrap();
    store
        .pause_channel("post:C3", now + Duration::minutes(5))
        .await
        .unwrap();

    // Assessments: old ones go, except each person's latest.
    assess(store, "U1", now - Duration::days(200), "U1 oldest").await;
    assess(store, "U1", now - Duration::days(100), "U1 old").await;
    assess(store, "U1", now - Duration::days(1), "U1 latest").await;
    assess(store, "U2", now - Duration::days(300), "U2 only, old").await;
    // Two at the same instant: the one saved last is the latest.
    assess(store, "U3", now - Duration::days(120), "U3 saved first").await;
    assess(store, "U3", now - Duration::days(120), "U3 saved last").await;

    // History and promises are never pruned, however old.
    let answer = nudged::domain::Answer {
        person: pid("U1"),
        week: "2020-W01".parse().unwrap(),
        question: nudged::domain::QuestionId::parse("focus").unwrap(),
        option: nudged::domain::OptionKey::parse("deciding").unwrap(),
    };
    store
        .record_answer(&answer, AnswerSource::Button, long_ago)
        .await
        .unwrap();
    let nudge = NudgeRow {
        person: pid("U1"),
        week: "2020-W01".parse().unwrap(),
        sent_at: long_ago,
        reasons: "[]".into(),
        message: None,
        response: None,
        answered_at: None,
    };
    assert!(store.record_nudge(&nudge).await.unwrap());

    let outcome = retention::prune(store, RETENTION, now).await.unwrap();
    assert_eq!(
        outcome,
        PruneOutcome {
            seen_events: 1,
            outbox: 2,
            assessments: 3,
            channel_pace: 1,
        }
    );

    assert!(store.mark_seen("old", now).await.unwrap(), "forgotten");
    assert!(!store.mark_seen("recent", now).await.unwrap(), "still seen");
    for id in [sent_old, failed_old] {
        assert!(store.outbox_row(id).await.unwrap().is_none(), "row {id}");
    }
    for (id, status) in [
        (sent_recent, OutboxStatus::Sent),
        (waiting_old, OutboxStatus::Pending),
        (in_flight_old, OutboxStatus::Pending),
    ] {
        let row = store.outbox_row(id).await.unwrap().expect("kept");
        assert_eq!(row.status, status, "row {id}");
    }
    assert_eq!(latest(store, "U1").await.as_deref(), Some("U1 latest"));
    assert_eq!(latest(store, "U2").await.as_deref(), Some("U2 only, old"));
    assert_eq!(latest(store, "U3").await.as_deref(), Some("U3 saved last"));
    assert_eq!(store.answers(Some(&pid("U1"))).await.unwrap().len(), 1);
    assert_eq!(store.nudges(&pid("U1")).await.unwrap().len(), 1);

    // Nothing else is prunable: a second run deletes nothing.
    let again = retention::prune(store, RETENTION, now).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

async fn each_prune_statement_deletes_at_most_its_batch(store: Arc<dyn Store>) {
    let now = test_now();
    let old = now - Duration::days(2);
    let total = 2 * PRUNE_BATCH as usize + 17;
    for i in 0..total {
        store.mark_seen(&format!("event-{i}"), old).await.unwrap();
    }
    let before = now - retention::SEEN_RETENTION;
    let mut batches = Vec::new();
    loop {
        let deleted = store.prune_seen(before, PRUNE_BATCH).await.unwrap();
        batches.push(deleted);
        if deleted == 0 {
            break;
        }
    }
    let full = u64::from(PRUNE_BATCH);
    assert_eq!(batches, [full, full, 17, 0]);

    // The prune itself loops over the batches until none is left.
    for i in 0..total {
        store.mark_seen(&format!("event-{i}"), old).await.unwrap();
    }
    let outcome = retention::prune(store.as_ref(), RETENTION, now)
        .await
        .unwrap();
    assert_eq!(outcome.seen_events, total as u64);
}

async fn the_probe_write_succeeds_again_and_again(store: Arc<dyn Store>) {
    for minutes in 0..3 {
        store
            .probe_write(test_now() + Duration::minutes(minutes))
            .await
            .unwrap();
    }
}

async fn a_probe_write_that_fails_is_an_error(store: Arc<dyn Store>) {
    let refused = store.probe_write(test_now()).await;
    assert!(refused.is_err(), "{refused:?}");
    let health = nudged::health::Health::new();
    let problems = nudged::health::check_ready(
        &health,
        store.as_ref(),
        test_now(),
        std::time::Duration::from_secs(600),
    )
    .await;
    assert_eq!(problems, ["store: cannot be written"]);
}

async fn the_oldest_pending_message_is_what_readyz_measures(store: Arc<dyn Store>) {
    let now = test_now();
    assert_eq!(store.oldest_pending_outbox().await.unwrap(), None);
    let first = queue(store.as_ref(), now - Duration::minutes(30)).await;
    queue(store.as_ref(), now - Duration::minutes(20)).await;
    assert_eq!(
        store.oldest_pending_outbox().await.unwrap(),
        Some(now - Duration::minutes(30))
    );
    // In flight counts as waiting; delivered does not.
    store
        .claim_outbox(now, now + Duration::minutes(1), 1)
        .await
        .unwrap();
    assert_eq!(
        store.oldest_pending_outbox().await.unwrap(),
        Some(now - Duration::minutes(30))
    );
    store.outbox_sent(first, now, "{}").await.unwrap();
    assert_eq!(
        store.oldest_pending_outbox().await.unwrap(),
        Some(now - Duration::minutes(20))
    );
    let problems = nudged::health::check_ready(
        &nudged::health::Health::new(),
        store.as_ref(),
        now,
        std::time::Duration::from_secs(600),
    )
    .await;
    assert_eq!(
        problems,
        ["outbox: the oldest undelivered message has waited 1200 s (limit 600 s)"]
    );
}
