//! The store's contract, written once against `Arc<dyn Store>` and run on a
//! real SQLite file per test (and on any other engine opened the same way).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nudged::domain::{Answer, PersonId};
use nudged::store::{
    self, AnswerSource, AssessmentRow, CheckinRow, NewOutbox, NewPerson, NudgeRow, OutboxStatus,
    RecordOutcome, ScheduleRun, Store, StoreError,
};

use crate::helpers::test_now;

/// A fresh SQLite store in its own temp directory (kept alive with it).
async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nudged.db").display());
    let store = store::open(&url).await.unwrap();
    (dir, store)
}

fn pid(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

fn answer(person: &str, week: &str, question: &str, option: &str) -> Answer {
    Answer {
        person: pid(person),
        week: week.parse().unwrap(),
        question: nudged::domain::QuestionId::parse(question).unwrap(),
        option: nudged::domain::OptionKey::parse(option).unwrap(),
    }
}

async fn add(store: &dyn Store, id: &str) {
    store
        .upsert_person(
            &NewPerson {
                id: pid(id),
                name: Some(format!("{id} name")),
                tz: Some("Europe/Berlin".into()),
                enrolled: true,
            },
            test_now(),
        )
        .await
        .unwrap();
}

fn outbox_message(key: Option<&str>, person: Option<&str>, not_before: DateTime<Utc>) -> NewOutbox {
    NewOutbox {
        dedupe_key: key.map(str::to_owned),
        person: person.map(pid),
        kind: "post".into(),
        channel: "D1".into(),
        payload: "{}".into(),
        not_before,
        created_at: test_now(),
    }
}

#[tokio::test]
async fn upserting_a_person_keeps_what_they_chose_themselves() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    let until = test_now() + Duration::days(14);
    assert!(
        store
            .set_paused_until(&pid("U1"), Some(until))
            .await
            .unwrap()
    );
    assert!(store.set_enrolled(&pid("U1"), false).await.unwrap());
    // The roster is synced again at the next start, with a new zone.
    store
        .upsert_person(
            &NewPerson {
                id: pid("U1"),
                name: None,
                tz: Some("America/New_York".into()),
                enrolled: true,
            },
            test_now(),
        )
        .await
        .unwrap();
    let p = store.person(&pid("U1")).await.unwrap().unwrap();
    assert!(!p.enrolled);
    assert_eq!(p.paused_until, Some(until));
    assert_eq!(p.tz.as_deref(), Some("America/New_York"));
    assert_eq!(p.name.as_deref(), Some("U1 name"));
    assert!(!store.set_enrolled(&pid("U9"), true).await.unwrap());
    assert!(store.person(&pid("U9")).await.unwrap().is_none());
}

#[tokio::test]
async fn an_answer_is_inserted_changed_or_left_unchanged() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    let a = answer("U1", "2026-W47", "focus", "mixed");
    let now = test_now();
    assert_eq!(
        store
            .record_answer(&a, AnswerSource::Button, now)
            .await
            .unwrap(),
        RecordOutcome::Inserted
    );
    assert_eq!(
        store
            .record_answer(&a, AnswerSource::Button, now)
            .await
            .unwrap(),
        RecordOutcome::Unchanged
    );
    let b = answer("U1", "2026-W47", "focus", "deciding");
    assert_eq!(
        store
            .record_answer(&b, AnswerSource::Text, now)
            .await
            .unwrap(),
        RecordOutcome::Changed
    );
    let rows = store.answers(Some(&pid("U1"))).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].answer, b);
    assert_eq!(rows[0].source, AnswerSource::Text);
}

#[tokio::test]
async fn an_answer_for_an_unknown_person_is_refused() {
    let (_dir, store) = sqlite().await;
    let err = store
        .record_answer(
            &answer("U9", "2026-W47", "focus", "mixed"),
            AnswerSource::Button,
            test_now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store.answers(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn import_adds_people_unenrolled_and_reimport_changes_nothing() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    let history = vec![
        answer("U1", "2026-W46", "decisions", "3-5"),
        answer("U2", "2026-W46", "decisions", "0"),
        answer("U2", "2026-W47", "capacity", "none"),
    ];
    let first = store.import_answers(&history, test_now()).await.unwrap();
    assert_eq!(
        (
            first.inserted,
            first.changed,
            first.unchanged,
            first.new_people
        ),
        (3, 0, 0, 1)
    );
    let again = store.import_answers(&history, test_now()).await.unwrap();
    assert_eq!(
        (
            again.inserted,
            again.changed,
            again.unchanged,
            again.new_people
        ),
        (0, 0, 3, 0)
    );
    assert!(!store.person(&pid("U2")).await.unwrap().unwrap().enrolled);
    assert!(store.person(&pid("U1")).await.unwrap().unwrap().enrolled);
}

#[tokio::test]
async fn a_failing_import_leaves_nothing_behind() {
    let (_dir, store) = sqlite().await;
    // Make the second person's insert fail inside the transaction: a
    // trigger stands in for any constraint a real database could hit.
    let nudged_store = nudged::store::sqlite::SqliteStore::open(&format!(
        "sqlite://{}",
        _dir.path().join("nudged.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER refuse_u3 BEFORE INSERT ON answers WHEN NEW.person = 'U3' BEGIN SELECT RAISE(ABORT, 'refused'); END")
        .execute(nudged_store.pool())
        .await
        .unwrap();
    let history = vec![
        answer("U2", "2026-W46", "decisions", "0"),
        answer("U3", "2026-W46", "decisions", "0"),
    ];
    assert!(store.import_answers(&history, test_now()).await.is_err());
    assert!(store.answers(None).await.unwrap().is_empty());
    assert!(store.people().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_event_is_seen_once() {
    let (_dir, store) = sqlite().await;
    assert!(store.mark_seen("event:Ev1", test_now()).await.unwrap());
    assert!(!store.mark_seen("event:Ev1", test_now()).await.unwrap());
    assert!(store.mark_seen("event:Ev2", test_now()).await.unwrap());
}

#[tokio::test]
async fn fifty_concurrent_claims_of_one_run_succeed_once() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    let run = ScheduleRun {
        person: pid("U1"),
        schedule: "weekly-checkin".into(),
        period: test_now(),
    };
    let claims = (0..50).map(|_| {
        let store = store.clone();
        let run = run.clone();
        tokio::spawn(async move { store.claim_run(&run, test_now()).await.unwrap() })
    });
    let mut won = 0;
    for claim in claims {
        won += usize::from(claim.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.last_run(&pid("U1"), "weekly-checkin").await.unwrap(),
        Some(test_now())
    );
    let later = ScheduleRun {
        period: test_now() + Duration::weeks(1),
        ..run
    };
    assert!(store.claim_run(&later, test_now()).await.unwrap());
    assert_eq!(
        store.last_run(&pid("U1"), "weekly-checkin").await.unwrap(),
        Some(later.period)
    );
    assert_eq!(store.last_run(&pid("U1"), "reminder").await.unwrap(), None);
}

#[tokio::test]
async fn a_checkin_is_found_by_where_its_prompt_landed() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    let checkin = CheckinRow {
        id: 0,
        person: pid("U1"),
        schedule: "weekly-checkin".into(),
        period: test_now(),
        week: "2026-W47".parse().unwrap(),
        channel: None,
        message_ts: None,
        created_at: test_now(),
    };
    assert_eq!(store.record_checkin(&checkin).await.unwrap(), Some(1));
    assert!(
        store.record_checkin(&checkin).await.unwrap().is_none(),
        "unique per person, schedule, period"
    );
    assert!(
        store
            .checkin_by_message("D1", "1.2")
            .await
            .unwrap()
            .is_none()
    );
    // The first check-in row has id 1.
    store.set_checkin_message(1, "D1", "1.2").await.unwrap();
    let found = store
        .checkin_by_message("D1", "1.2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.person, pid("U1"));
    assert_eq!(found.week.to_string(), "2026-W47");
}

#[tokio::test]
async fn the_latest_assessment_wins_and_nudges_are_unique_per_week() {
    let (_dir, store) = sqlite().await;
    add(store.as_ref(), "U1").await;
    for (i, state) in ["building", "sustained"].iter().enumerate() {
        store
            .save_assessment(&AssessmentRow {
                person: pid("U1"),
                week: "2026-W47".parse().unwrap(),
                state: (*state).into(),
                ewma: Some(0.5 + i as f64 / 10.0),
                detail: "{}".into(),
                assessed_at: test_now() + Duration::minutes(i as i64),
            })
            .await
            .unwrap();
    }
    let latest = store.latest_assessment(&pid("U1")).await.unwrap().unwrap();
    assert_eq!(latest.state, "sustained");
    assert_eq!(latest.ewma, Some(0.6));

    let nudge = NudgeRow {
        person: pid("U1"),
        week: "2026-W47".parse().unwrap(),
        sent_at: test_now(),
        reasons: "[]".into(),
    };
    assert!(store.record_nudge(&nudge).await.unwrap());
    assert!(!store.record_nudge(&nudge).await.unwrap());
    assert_eq!(store.nudges(&pid("U1")).await.unwrap(), vec![nudge]);
}

#[tokio::test]
async fn the_outbox_dedupes_respects_not_before_and_leases() {
    let (_dir, store) = sqlite().await;
    let now = test_now();
    let a = store
        .enqueue(&outbox_message(Some("k1"), None, now))
        .await
        .unwrap();
    assert!(a.is_some());
    assert_eq!(
        store
            .enqueue(&outbox_message(Some("k1"), None, now))
            .await
            .unwrap(),
        None
    );
    let later = store
        .enqueue(&outbox_message(None, None, now + Duration::minutes(5)))
        .await
        .unwrap()
        .unwrap();

    let lease = now + Duration::seconds(30);
    let claimed = store.claim_outbox(now, lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![a.unwrap()]
    );
    assert!(
        store.claim_outbox(now, lease, 10).await.unwrap().is_empty(),
        "leased"
    );
    // The worker died: after the lease the row is due again.
    let again = store
        .claim_outbox(lease, lease + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);

    store
        .outbox_retry(again[0].id, now + Duration::minutes(1), "503")
        .await
        .unwrap();
    let row = store.outbox_row(again[0].id).await.unwrap().unwrap();
    assert_eq!(
        (row.attempts, row.last_error.as_deref(), row.lease_until),
        (1, Some("503"), None)
    );

    let at = now + Duration::minutes(10);
    let due = store
        .claim_outbox(at, at + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    store
        .outbox_sent(due[0].id, at, "{\"ok\":true}")
        .await
        .unwrap();
    store
        .outbox_failed(later, at, "channel_not_found")
        .await
        .unwrap();
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 1));
    let failed = store.outbox_row(later).await.unwrap().unwrap();
    assert_eq!(failed.status, OutboxStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("channel_not_found"));
}

#[tokio::test]
async fn concurrent_outbox_claimers_never_share_a_row() {
    let (_dir, store) = sqlite().await;
    let now = test_now();
    for _ in 0..100 {
        store
            .enqueue(&outbox_message(None, None, now))
            .await
            .unwrap();
    }
    let workers = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_outbox(now, now + Duration::minutes(1), 7)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|r| r.id));
            }
        })
    });
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 100);
    assert_eq!(all.len(), 100);
}

#[tokio::test]
async fn forget_removes_every_row_of_one_person_and_nothing_of_another() {
    let (_dir, store) = sqlite().await;
    let now = test_now();
    for id in ["U1", "U2"] {
        add(store.as_ref(), id).await;
        store
            .record_answer(
                &answer(id, "2026-W47", "focus", "mixed"),
                AnswerSource::Button,
                now,
            )
            .await
            .unwrap();
        store
            .record_answer(
                &answer(id, "2026-W47", "capacity", "yes"),
                AnswerSource::Button,
                now,
            )
            .await
            .unwrap();
        store
            .claim_run(
                &ScheduleRun {
                    person: pid(id),
                    schedule: "s".into(),
                    period: now,
                },
                now,
            )
            .await
            .unwrap();
        store
            .record_checkin(&CheckinRow {
                id: 0,
                person: pid(id),
                schedule: "s".into(),
                period: now,
                week: "2026-W47".parse().unwrap(),
                channel: None,
                message_ts: None,
                created_at: now,
            })
            .await
            .unwrap();
        store
            .save_assessment(&AssessmentRow {
                person: pid(id),
                week: "2026-W47".parse().unwrap(),
                state: "building".into(),
                ewma: None,
                detail: "{}".into(),
                assessed_at: now,
            })
            .await
            .unwrap();
        store
            .record_nudge(&NudgeRow {
                person: pid(id),
                week: "2026-W47".parse().unwrap(),
                sent_at: now,
                reasons: "[]".into(),
            })
            .await
            .unwrap();
        store
            .enqueue(&outbox_message(None, Some(id), now))
            .await
            .unwrap();
    }
    let report = store.forget(&pid("U1")).await.unwrap();
    assert_eq!(
        (
            report.people,
            report.answers,
            report.checkins,
            report.schedule_runs,
            report.assessments,
            report.nudges,
            report.outbox
        ),
        (1, 2, 1, 1, 1, 1, 1)
    );
    assert_eq!(report.total(), 8);
    assert!(store.person(&pid("U1")).await.unwrap().is_none());
    assert!(store.answers(Some(&pid("U1"))).await.unwrap().is_empty());
    assert!(store.nudges(&pid("U1")).await.unwrap().is_empty());
    assert_eq!(store.answers(Some(&pid("U2"))).await.unwrap().len(), 2);
    assert_eq!(store.nudges(&pid("U2")).await.unwrap().len(), 1);
    assert!(store.latest_assessment(&pid("U2")).await.unwrap().is_some());
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
    assert_eq!(store.forget(&pid("U1")).await.unwrap().total(), 0);
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_rerun_as_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("sub/dir/nudged.db").display()
    );
    {
        let store = store::open(&url).await.unwrap();
        add(store.as_ref(), "U1").await;
        store
            .record_answer(
                &answer("U1", "2026-W47", "focus", "mixed"),
                AnswerSource::Button,
                test_now(),
            )
            .await
            .unwrap();
    }
    let store = store::open(&url).await.unwrap();
    assert_eq!(store.answers(None).await.unwrap().len(), 1);
    assert!(store.person(&pid("U1")).await.unwrap().is_some());
}

#[tokio::test]
async fn an_unsupported_url_is_refused() {
    let err = store::open("mysql://db/nudged").await.err().unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
}
