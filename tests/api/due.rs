//! The due index's part of the store contract ([`Store::upsert_people`],
//! [`Store::pending_due`], [`Store::set_due`], [`Store::due_by`],
//! [`Store::record_runs`],
//! [`Store::sync_schedule_set`]), run on a fresh
//! real SQLite file and a fresh PostgreSQL database per test, as
//! `store.rs` runs the rest.

use std::future::Future;

use crate::helpers::WAIT;
use crate::store::TestDb;

async fn within_time<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, test)
        .await
        .expect("store test did not finish in time")
}

macro_rules! due_tests {
    ($db:expr) => {
        due_tests!(@one $db;
            a_new_person_is_marked_until_a_current_update_settles_them,
            an_update_read_before_a_newer_change_writes_nothing,
            zone_enrolment_and_pause_mark_a_person_and_nothing_else_does,
            a_kept_mark_stays_for_the_next_tick,
            a_marked_person_comes_with_their_last_run_of_each_schedule,
            due_rows_are_read_up_to_now_for_enrolled_people_in_pages,
            a_due_row_moves_on_only_from_what_was_read,
            a_different_schedule_set_marks_everyone_once_and_drops_gone_schedules,
            a_roster_of_ten_thousand_is_upserted_in_bulk_keeping_what_people_chose,
            forgetting_a_person_removes_their_due_rows_and_mark,
            a_page_of_runs_is_written_together_and_says_what_each_did,
            a_page_of_runs_with_one_for_an_unknown_person_writes_nothing,
        );
        due_tests!(@many $db;
            of_concurrent_recomputations_of_one_mark_one_applies,
        );
    };
    (@one $db:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let db = $db;
            within_time(contract::$name(db.open().await)).await;
        }
    )*};
    (@many $db:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = $db;
            let mut handles = Vec::new();
            for _ in 0..4 {
                handles.push(db.open().await);
            }
            within_time(contract::$name(handles)).await;
        }
    )*};
}

mod on_sqlite {
    use super::*;

    due_tests!(TestDb::sqlite());
}

mod on_postgres {
    use super::*;

    due_tests!(match TestDb::postgres().await {
        Some(db) => db,
        None => return,
    });
}

mod contract {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};
    use chrono_tz::Tz;
    use nudged::domain::PersonId;
    use nudged::store::{
        CheckinRow, DueAdvance, DueRow, DueUpdate, NewOutbox, NewPerson, PendingDue, PromptWrite,
        RunRecorded, RunWrite, ScheduleRun, Store,
    };

    use crate::helpers::test_now;

    fn pid(id: &str) -> PersonId {
        PersonId::parse(id).unwrap()
    }

    fn person(id: &str, tz: Option<&str>) -> NewPerson {
        NewPerson {
            id: pid(id),
            name: Some(format!("{id} name")),
            tz: tz.map(|tz| tz.parse().expect("a zone")),
            enrolled: true,
        }
    }

    fn row(schedule: &str, zone: &str, due_at: Option<DateTime<Utc>>) -> DueRow {
        DueRow {
            schedule: schedule.to_owned(),
            zone: zone.to_owned(),
            due_at,
        }
    }

    async fn pending(store: &dyn Store) -> Vec<PendingDue> {
        store.pending_due(None, 1000).await.unwrap()
    }

    fn ids(pending: &[PendingDue]) -> Vec<String> {
        pending.iter().map(|p| p.person.id.to_string()).collect()
    }

    /// Settles every marked person with `rows` each; returns how many.
    async fn settle_all(store: &dyn Store, rows: &[DueRow]) -> usize {
        let updates: Vec<DueUpdate> = pending(store)
            .await
            .into_iter()
            .map(|p| DueUpdate {
                person: p.person.id,
                stamp: p.stamp,
                rows: rows.to_vec(),
                settle: true,
            })
            .collect();
        store.set_due(&updates).await.unwrap()
    }

    pub async fn a_new_person_is_marked_until_a_current_update_settles_them(store: Arc<dyn Store>) {
        let now = test_now();
        store
            .upsert_person(&person("U1", Some("UTC")), now)
            .await
            .unwrap();
        let marked = pending(store.as_ref()).await;
        assert_eq!(ids(&marked), ["U1"]);
        assert_eq!(marked[0].person.tz, Some(Tz::UTC));
        let rows = [
            row("checkin", "UTC", Some(now + Duration::days(1))),
            row("reminder", "UTC", None),
        ];
        assert_eq!(settle_all(store.as_ref(), &rows).await, 1);
        assert!(pending(store.as_ref()).await.is_empty());
        assert_eq!(store.due_rows(&pid("U1")).await.unwrap(), rows);
        // A second update replaces every row, not only those it names.
        store
            .upsert_person(&person("U1", Some("Asia/Tokyo")), now)
            .await
            .unwrap();
        let tokyo = [row("checkin", "Asia/Tokyo", Some(now))];
        assert_eq!(settle_all(store.as_ref(), &tokyo).await, 1);
        assert_eq!(store.due_rows(&pid("U1")).await.unwrap(), tokyo);
    }

    pub async fn an_update_read_before_a_newer_change_writes_nothing(store: Arc<dyn Store>) {
        let now = test_now();
        store
            .upsert_person(&person("U1", Some("UTC")), now)
            .await
            .unwrap();
        let stale = pending(store.as_ref()).await;
        // The zone changes while the recomputation runs.
        store
            .upsert_person(&person("U1", Some("Europe/Berlin")), now)
            .await
            .unwrap();
        let update = DueUpdate {
            person: pid("U1"),
            stamp: stale[0].stamp,
            rows: vec![row("checkin", "UTC", Some(now))],
            settle: true,
        };
        assert_eq!(store.set_due(&[update]).await.unwrap(), 0);
        assert!(store.due_rows(&pid("U1")).await.unwrap().is_empty());
        let marked = pending(store.as_ref()).await;
        assert_eq!(ids(&marked), ["U1"], "still to be recomputed");
        assert_ne!(marked[0].stamp, stale[0].stamp);
        assert_eq!(marked[0].person.tz, Some(chrono_tz::Europe::Berlin));
        // Nor does an update for someone never marked, or unknown.
        let unknown = DueUpdate {
            person: pid("U9"),
            stamp: 1,
            rows: vec![row("checkin", "UTC", Some(now))],
            settle: true,
        };
        assert_eq!(store.set_due(&[unknown]).await.unwrap(), 0);
    }

    pub async fn zone_enrolment_and_pause_mark_a_person_and_nothing_else_does(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        let u1 = pid("U1");
        store
            .upsert_person(&person("U1", Some("UTC")), now)
            .await
            .unwrap();
        settle_all(store.as_ref(), &[]).await;

        // Neither a new name, the same zone again, nudges off, nor an answer
        // changes when anything is due.
        let mut renamed = person("U1", Some("UTC"));
        renamed.name = Some("Someone else".into());
        store.upsert_person(&renamed, now).await.unwrap();
        store.upsert_people(&[renamed], now).await.unwrap();
        store.set_nudges_off(&u1, Some(now)).await.unwrap();
        store.set_enrolled(&u1, true).await.unwrap();
        assert!(pending(store.as_ref()).await.is_empty());

        for change in ["zone", "leave", "pause", "resume"] {
            match change {
                "zone" => store
                    .upsert_person(&person("U1", Some("Europe/Berlin")), now)
                    .await
                    .unwrap(),
                "leave" => assert!(store.set_enrolled(&u1, false).await.unwrap()),
                "pause" => assert!(
                    store
                        .set_paused_until(&u1, Some(now + Duration::weeks(2)))
                        .await
                        .unwrap()
                ),
                _ => assert!(store.set_paused_until(&u1, None).await.unwrap()),
            }
            assert_eq!(ids(&pending(store.as_ref()).await), ["U1"], "{change}");
            settle_all(store.as_ref(), &[]).await;
        }
        // Joining again marks them too.
        store.set_enrolled(&u1, true).await.unwrap();
        assert_eq!(ids(&pending(store.as_ref()).await), ["U1"]);
    }

    pub async fn a_kept_mark_stays_for_the_next_tick(store: Arc<dyn Store>) {
        let now = test_now();
        store.upsert_person(&person("U1", None), now).await.unwrap();
        let marked = pending(store.as_ref()).await;
        let rows = vec![row("checkin", "UTC", Some(now))];
        let keep = DueUpdate {
            person: pid("U1"),
            stamp: marked[0].stamp,
            rows: rows.clone(),
            settle: false,
        };
        assert_eq!(store.set_due(&[keep]).await.unwrap(), 1);
        assert_eq!(store.due_rows(&pid("U1")).await.unwrap(), rows);
        assert_eq!(pending(store.as_ref()).await, marked);
    }

    pub async fn a_marked_person_comes_with_their_last_run_of_each_schedule(store: Arc<dyn Store>) {
        let now = test_now();
        for id in ["U1", "U2"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        for (schedule, days) in [("checkin", 1), ("checkin", 8), ("reminder", 2)] {
            let run = ScheduleRun {
                person: pid("U1"),
                schedule: schedule.to_owned(),
                period: now + Duration::days(days),
            };
            store.claim_run(&run, now).await.unwrap();
        }
        let marked = pending(store.as_ref()).await;
        let mut runs = marked[0].last_runs.clone();
        runs.sort();
        assert_eq!(
            runs,
            [
                ("checkin".to_owned(), now + Duration::days(8)),
                ("reminder".to_owned(), now + Duration::days(2)),
            ]
        );
        assert!(marked[1].last_runs.is_empty());
        // Pages follow the ids.
        let first = store.pending_due(None, 1).await.unwrap();
        assert_eq!(ids(&first), ["U1"]);
        let next = store
            .pending_due(Some(&first[0].person.id), 1)
            .await
            .unwrap();
        assert_eq!(ids(&next), ["U2"]);
    }

    pub async fn due_rows_are_read_up_to_now_for_enrolled_people_in_pages(store: Arc<dyn Store>) {
        let now = test_now();
        for id in ["U1", "U2", "U3"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        let minutes = |m: i64| Some(now + Duration::minutes(m));
        let rows = |id: &str| match id {
            "U1" => vec![
                row("checkin", "UTC", minutes(-10)),
                row("trend", "UTC", None),
            ],
            "U2" => vec![
                row("checkin", "UTC", minutes(0)),
                row("reminder", "UTC", minutes(1)),
            ],
            _ => vec![row("checkin", "UTC", minutes(-20))],
        };
        let updates: Vec<DueUpdate> = pending(store.as_ref())
            .await
            .into_iter()
            .map(|p| DueUpdate {
                rows: rows(p.person.id.as_str()),
                person: p.person.id,
                stamp: p.stamp,
                settle: true,
            })
            .collect();
        assert_eq!(store.set_due(&updates).await.unwrap(), 3);

        let due = store.due_by(now, None, 10).await.unwrap();
        let read: Vec<(String, String)> = due
            .iter()
            .map(|d| (d.person.id.to_string(), d.schedule.clone()))
            .collect();
        let expect = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(p, s)| (p.to_string(), s.to_string()))
                .collect()
        };
        assert_eq!(
            read,
            expect(&[("U3", "checkin"), ("U1", "checkin"), ("U2", "checkin")])
        );
        assert_eq!(due[0].due_at, now - Duration::minutes(20));
        assert_eq!(due[0].person.name.as_deref(), Some("U3 name"));

        // Page by page, the same rows.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.due_by(now, after.as_ref(), 1).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            paged.extend(
                page.iter()
                    .map(|d| (d.person.id.to_string(), d.schedule.clone())),
            );
        }
        assert_eq!(paged, read);

        // Someone who left is not read, even before being recomputed.
        store.set_enrolled(&pid("U1"), false).await.unwrap();
        let due = store.due_by(now, None, 10).await.unwrap();
        assert!(due.iter().all(|d| d.person.id.as_str() != "U1"), "{due:?}");
        assert!(
            store
                .due_by(now - Duration::hours(1), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Moves `person`'s due row on as a tick does, alone; whether it moved.
    async fn advance(
        store: &dyn Store,
        person: &PersonId,
        row: &DueRow,
        from: DateTime<Utc>,
    ) -> bool {
        let run = RunWrite {
            advance: Some(DueAdvance {
                person: person.clone(),
                row: row.clone(),
                from,
            }),
            ..RunWrite::default()
        };
        store.record_runs(&[run], from).await.unwrap()[0].advanced
    }

    pub async fn a_due_row_moves_on_only_from_what_was_read(store: Arc<dyn Store>) {
        let now = test_now();
        let u1 = pid("U1");
        store.upsert_person(&person("U1", None), now).await.unwrap();
        settle_all(store.as_ref(), &[row("checkin", "UTC", Some(now))]).await;
        let next = row("checkin", "UTC", Some(now + Duration::weeks(1)));

        let earlier = now - Duration::weeks(1);
        assert!(
            !advance(store.as_ref(), &u1, &next, earlier).await,
            "other time"
        );
        let berlin = row("checkin", "Europe/Berlin", next.due_at);
        assert!(
            !advance(store.as_ref(), &u1, &berlin, now).await,
            "other zone"
        );
        let other = row("reminder", "UTC", next.due_at);
        assert!(
            !advance(store.as_ref(), &u1, &other, now).await,
            "no such row"
        );
        assert_eq!(
            store.due_rows(&u1).await.unwrap(),
            [row("checkin", "UTC", Some(now))]
        );

        assert!(advance(store.as_ref(), &u1, &next, now).await);
        assert!(!advance(store.as_ref(), &u1, &next, now).await, "once");
        assert_eq!(
            store.due_rows(&u1).await.unwrap(),
            std::slice::from_ref(&next)
        );
        // A schedule that never fires again leaves the row, never read.
        let never = row("checkin", "UTC", None);
        assert!(advance(store.as_ref(), &u1, &never, next.due_at.unwrap()).await);
        assert!(
            store
                .due_by(DateTime::<Utc>::MAX_UTC, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn a_different_schedule_set_marks_everyone_once_and_drops_gone_schedules(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        for id in ["U1", "U2"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        let names = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
        let both = names(&["checkin", "reminder"]);
        assert!(store.sync_schedule_set("a", &both).await.unwrap());
        settle_all(
            store.as_ref(),
            &[
                row("checkin", "UTC", Some(now)),
                row("reminder", "UTC", Some(now)),
            ],
        )
        .await;
        // The same set again: nothing to do, on any handle.
        assert!(!store.sync_schedule_set("a", &both).await.unwrap());
        assert!(pending(store.as_ref()).await.is_empty());

        store.set_enrolled(&pid("U2"), false).await.unwrap();
        settle_all(store.as_ref(), &[]).await;
        assert!(
            store
                .sync_schedule_set("b", &names(&["checkin"]))
                .await
                .unwrap()
        );
        assert_eq!(ids(&pending(store.as_ref()).await), ["U1"], "the enrolled");
        assert_eq!(
            store.due_rows(&pid("U1")).await.unwrap(),
            [row("checkin", "UTC", Some(now))],
            "the reminder's row went with its schedule"
        );
        assert!(
            !store
                .sync_schedule_set("b", &names(&["checkin"]))
                .await
                .unwrap()
        );
        // No schedules at all: no rows.
        assert!(store.sync_schedule_set("c", &[]).await.unwrap());
        assert!(store.due_rows(&pid("U1")).await.unwrap().is_empty());
    }

    pub async fn a_roster_of_ten_thousand_is_upserted_in_bulk_keeping_what_people_chose(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        // One who chose to leave, one who paused, one who asked to be
        // forgotten, before the roster is read again.
        for id in ["U00001", "U00002", "U00003"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        store.set_enrolled(&pid("U00001"), false).await.unwrap();
        let until = now + Duration::weeks(1);
        store
            .set_paused_until(&pid("U00002"), Some(until))
            .await
            .unwrap();
        store.forget(&pid("U00003")).await.unwrap();
        settle_all(store.as_ref(), &[]).await;

        let zones = ["UTC", "Europe/Berlin", "America/New_York"];
        let mut roster: Vec<NewPerson> = (0..10_000)
            .map(|i| person(&format!("U{i:05}"), Some(zones[i % 3])))
            .collect();
        // A repeated id: the last one counts.
        roster.push(person("U00004", Some("Asia/Tokyo")));
        let later = now + Duration::hours(1);
        store.upsert_people(&roster, later).await.unwrap();

        let people = store.people().await.unwrap();
        assert_eq!(people.len(), 9_999, "all but the forgotten one");
        let find = |id: &str| people.iter().find(|p| p.id.as_str() == id).unwrap();
        assert!(!find("U00001").enrolled, "leaving is theirs to undo");
        assert_eq!(find("U00001").tz, Some(chrono_tz::Europe::Berlin));
        assert_eq!(find("U00002").paused_until, Some(until));
        assert_eq!(find("U00001").created_at, now);
        assert_eq!(find("U00004").tz, Some(chrono_tz::Asia::Tokyo));
        assert_eq!(find("U09999").created_at, later);
        assert!(find("U09999").enrolled);
        assert_eq!(find("U09999").name.as_deref(), Some("U09999 name"));

        // Everyone new or changed is marked; the same roster again changes
        // nothing and marks nobody.
        let mut marked = 0;
        let mut after = None;
        loop {
            let page = store.pending_due(after.as_ref(), 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.person.id.clone());
            marked += page.len();
            let updates: Vec<DueUpdate> = page
                .into_iter()
                .map(|p| DueUpdate {
                    person: p.person.id,
                    stamp: p.stamp,
                    rows: Vec::new(),
                    settle: true,
                })
                .collect();
            store.set_due(&updates).await.unwrap();
        }
        assert_eq!(marked, 9_999);
        store.upsert_people(&roster, later).await.unwrap();
        assert!(pending(store.as_ref()).await.is_empty());
        // A roster without a zone keeps the one learned from the profile.
        store
            .upsert_people(&[person("U00005", None)], later)
            .await
            .unwrap();
        assert_eq!(
            store.person(&pid("U00005")).await.unwrap().unwrap().tz,
            Some(chrono_tz::America::New_York)
        );
        store.upsert_people(&[], later).await.unwrap();
    }

    pub async fn forgetting_a_person_removes_their_due_rows_and_mark(store: Arc<dyn Store>) {
        let now = test_now();
        for id in ["U1", "U2"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        settle_all(store.as_ref(), &[row("checkin", "UTC", Some(now))]).await;
        store.set_enrolled(&pid("U1"), false).await.unwrap();
        store.forget(&pid("U1")).await.unwrap();
        assert!(store.due_rows(&pid("U1")).await.unwrap().is_empty());
        assert!(pending(store.as_ref()).await.is_empty());
        let due = store.due_by(now, None, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].person.id.as_str(), "U2");
    }

    pub async fn of_concurrent_recomputations_of_one_mark_one_applies(
        handles: Vec<Arc<dyn Store>>,
    ) {
        let now = test_now();
        for i in 0..200 {
            handles[0]
                .upsert_person(&person(&format!("U{i:03}"), None), now)
                .await
                .unwrap();
        }
        let marked = pending(handles[0].as_ref()).await;
        let tasks: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let store = store.clone();
                // Each handle recomputes everyone, in its own order.
                let mut updates: Vec<DueUpdate> = marked
                    .iter()
                    .map(|p| DueUpdate {
                        person: p.person.id.clone(),
                        stamp: p.stamp,
                        rows: vec![row(
                            "checkin",
                            "UTC",
                            Some(now + Duration::minutes(i as i64)),
                        )],
                        settle: true,
                    })
                    .collect();
                if i % 2 == 1 {
                    updates.reverse();
                }
                tokio::spawn(async move { store.set_due(&updates).await.unwrap() })
            })
            .collect();
        let mut applied = 0;
        for task in tasks {
            applied += task.await.unwrap();
        }
        assert_eq!(applied, 200);
        assert!(pending(handles[0].as_ref()).await.is_empty());
        for p in &marked {
            assert_eq!(handles[1].due_rows(&p.person.id).await.unwrap().len(), 1);
        }
    }

    /// A scheduled check-in's run for `id` at `period`: its check-in, a
    /// prompt whose payload names the check-in's id, the claim and the
    /// due row moved on a week from `from`.
    fn checkin_run(id: &str, period: DateTime<Utc>, from: DateTime<Utc>) -> RunWrite {
        let key = format!("run:checkin:{id}:{}", period.timestamp_millis());
        let person = pid(id);
        RunWrite {
            prompt: Some(PromptWrite {
                checkin: CheckinRow {
                    id: 0,
                    person: person.clone(),
                    schedule: "checkin".into(),
                    period,
                    week: nudged::domain::IsoWeek::of(period.date_naive()),
                    channel: None,
                    message_ts: None,
                    created_at: period,
                },
                draw: Arc::new(move |checkin| NewOutbox {
                    dedupe_key: Some(key.clone()),
                    coalesce_key: None,
                    person: Some(person.clone()),
                    kind: "post".into(),
                    channel: person.to_string(),
                    payload: format!("{{\"checkin\":{}}}", checkin.map_or(-1, |c| c)),
                    not_before: period,
                    created_at: period,
                }),
            }),
            claim: Some(ScheduleRun {
                person: pid(id),
                schedule: "checkin".into(),
                period,
            }),
            advance: Some(DueAdvance {
                person: pid(id),
                row: row("checkin", "UTC", Some(period + Duration::weeks(1))),
                from,
            }),
        }
    }

    pub async fn a_page_of_runs_is_written_together_and_says_what_each_did(store: Arc<dyn Store>) {
        let now = test_now();
        for id in ["U1", "U2", "U3"] {
            store.upsert_person(&person(id, None), now).await.unwrap();
        }
        settle_all(store.as_ref(), &[row("checkin", "UTC", Some(now))]).await;
        // U1's prompt was queued by an earlier attempt; U2's run was
        // claimed by another dispatcher; U3's row was read before it moved.
        let u1 = checkin_run("U1", now, now);
        let earlier = (u1.prompt.as_ref().unwrap().draw)(None);
        store.enqueue(&earlier).await.unwrap().unwrap();
        let u2 = checkin_run("U2", now, now);
        assert!(
            store
                .claim_run(u2.claim.as_ref().unwrap(), now)
                .await
                .unwrap()
        );
        let u3 = checkin_run("U3", now, now - Duration::weeks(1));

        let recorded = store.record_runs(&[u1, u2, u3], now).await.unwrap();
        let did = |queued, claimed, advanced| RunRecorded {
            queued,
            claimed,
            advanced,
        };
        assert_eq!(
            recorded,
            [
                did(false, true, true),
                did(true, false, true),
                did(true, true, false)
            ]
        );

        // Every check-in is recorded once; the new prompts name theirs.
        for id in ["U1", "U2", "U3"] {
            let again = checkin_run(id, now, now);
            let checkin = &again.prompt.as_ref().unwrap().checkin;
            assert_eq!(store.record_checkin(checkin).await.unwrap(), None, "{id}");
        }
        let queued = store
            .claim_outbox(now, now + Duration::minutes(1), 10)
            .await
            .unwrap();
        let payloads: Vec<(String, String)> = queued
            .iter()
            .map(|r| (r.channel.clone(), r.payload.clone()))
            .collect();
        assert_eq!(payloads.len(), 3, "{payloads:?}");
        assert_eq!(payloads[0], ("U1".into(), r#"{"checkin":-1}"#.into()));
        for (channel, payload) in &payloads[1..] {
            assert!(!payload.contains("-1"), "{channel}: {payload}");
        }
        let next = Some(now + Duration::weeks(1));
        assert_eq!(
            store.due_rows(&pid("U1")).await.unwrap(),
            [row("checkin", "UTC", next)]
        );
        assert_eq!(
            store.due_rows(&pid("U2")).await.unwrap(),
            [row("checkin", "UTC", next)]
        );
        assert_eq!(
            store.due_rows(&pid("U3")).await.unwrap(),
            [row("checkin", "UTC", Some(now))]
        );
        for id in ["U1", "U2", "U3"] {
            assert_eq!(
                store.last_run(&pid(id), "checkin").await.unwrap(),
                Some(now)
            );
        }
    }

    pub async fn a_page_of_runs_with_one_for_an_unknown_person_writes_nothing(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        store.upsert_person(&person("U1", None), now).await.unwrap();
        settle_all(store.as_ref(), &[row("checkin", "UTC", Some(now))]).await;
        let runs = [checkin_run("U1", now, now), checkin_run("U404", now, now)];
        assert!(store.record_runs(&runs, now).await.is_err());
        assert!(
            store
                .claim_outbox(now, now + Duration::minutes(1), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.last_run(&pid("U1"), "checkin").await.unwrap(), None);
        assert_eq!(
            store.due_rows(&pid("U1")).await.unwrap(),
            [row("checkin", "UTC", Some(now))]
        );
        // Written alone, U1's run goes through.
        let recorded = store.record_runs(&runs[..1], now).await.unwrap();
        assert!(recorded[0].queued && recorded[0].claimed && recorded[0].advanced);
    }
}
