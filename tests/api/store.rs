//! The store's contract, written once against `Arc<dyn Store>` in
//! [`contract`] and run by `contract_tests!` on every engine: a fresh real
//! SQLite file per test ([`on_sqlite`]) and a fresh database on a real
//! PostgreSQL server per test ([`on_postgres`]). Set-ups that only one
//! engine can make (tampering with tables, a trigger that refuses rows,
//! the migrations table) follow in [`on_sqlite_only`] and
//! [`on_postgres_only`].

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use nudged::store::{self, Store, StoreError};

use crate::helpers::{WAIT, test_now};

/// Handles opened onto one database by the concurrency tests, as separate
/// processes (the daemon, the CLI, replicas) would open it.
const HANDLES: usize = 4;

/// A fresh, empty database and the URL that opens it.
pub struct TestDb {
    pub url: String,
    /// Keeps a SQLite file's directory alive as long as the database.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A SQLite file that does not exist yet, in a directory that does not
    /// exist yet either.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/nudged.db").display());
        Self {
            url,
            _dir: Some(dir),
        }
    }

    /// A new empty database on the test process's PostgreSQL cluster, or
    /// `None` if PostgreSQL is neither installed nor required (see
    /// [`crate::postgres`]).
    pub async fn postgres() -> Option<Self> {
        let url = crate::postgres::cluster()?.create_database().await;
        Some(Self { url, _dir: None })
    }

    /// A new handle on the database, with its own connections, running
    /// migrations as every opener does.
    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url).await.unwrap()
    }
}

/// Fails the test instead of hanging it.
async fn within_time<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, test)
        .await
        .expect("store test did not finish in time")
}

/// One `#[tokio::test]` per behaviour of [`contract`], each on a fresh
/// database made by `$db`.
macro_rules! contract_tests {
    ($db:expr) => {
        contract_tests!(@one $db;
            upserting_a_person_keeps_what_they_chose_themselves,
            enrolment_and_pauses_change_only_known_people,
            an_answer_is_inserted_changed_or_left_unchanged,
            an_answer_for_an_unknown_person_is_refused,
            week_answers_are_one_persons_answers_for_one_week,
            import_adds_unknown_people_unenrolled_and_counts_what_it_did,
            reimporting_the_same_history_changes_nothing,
            a_hundred_thousand_answers_import_in_one_go,
            an_event_is_seen_once,
            the_last_run_is_the_newest_claimed_occurrence,
            a_checkin_is_recorded_once_and_found_where_its_prompt_landed,
            the_latest_assessment_wins,
            a_nudge_is_recorded_once_per_week,
            a_nudge_answer_is_stored_with_its_click_and_redraw_or_not_at_all,
            nudges_are_turned_off_and_on_for_known_people_only,
            an_outbox_message_is_deduplicated_by_its_key_only,
            a_waiting_row_covers_a_second_one_with_its_coalesce_key_until_claimed,
            a_click_and_its_redraw_are_stored_together_or_not_at_all,
            clicks_committed_together_succeed_or_fail_each_on_its_own,
            clicks_together_on_one_answer_count_as_one_after_another,
            an_inbound_write_is_stored_once_per_seen_key,
            an_inbound_write_for_an_unknown_person_stores_nothing_not_even_its_key,
            of_repeated_answers_in_one_write_the_last_counts,
            a_released_seen_key_is_new_again,
            a_forgotten_person_stays_out_until_their_opt_out_is_lifted,
            due_outbox_rows_are_claimed_oldest_first,
            a_leased_outbox_row_is_claimed_again_only_after_its_lease_expires,
            every_delivery_attempt_is_counted_and_clears_the_lease,
            a_paced_outbox_row_is_deferred_without_counting_an_attempt,
            send_slots_are_handed_out_once_from_now_and_after_a_pause,
            a_channel_is_reserved_for_one_send_at_a_time_and_after_a_pause,
            a_late_report_does_not_reopen_a_finished_row,
            a_batch_of_send_results_is_recorded_as_each_would_be_alone,
            forget_removes_every_row_of_one_person_and_nothing_of_another,
            forget_demo_removes_the_demo_answers_and_what_followed_them_only,
        );
        contract_tests!(@many $db;
            fifty_concurrent_claims_of_one_run_succeed_once,
            concurrent_outbox_claimers_never_share_a_row,
            concurrent_takers_of_send_slots_never_share_one,
            concurrent_reservations_of_one_channel_grant_it_once,
        );
        contract_tests!(@db $db;
            data_survives_closing_and_reopening,
            concurrent_first_opens_all_succeed,
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
            for _ in 0..HANDLES {
                handles.push(db.open().await);
            }
            within_time(contract::$name(handles)).await;
        }
    )*};
    (@db $db:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = $db;
            within_time(contract::$name(&db)).await;
        }
    )*};
}

mod on_sqlite {
    use super::*;

    contract_tests!(TestDb::sqlite());
}

mod on_postgres {
    use super::*;

    contract_tests!(match TestDb::postgres().await {
        Some(db) => db,
        None => return,
    });
}

/// What every engine must do, whatever it is.
mod contract {
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};
    use nudged::domain::{Answer, NudgeResponse, OptionKey, PersonId, QuestionId};
    use nudged::store::{
        AnswerSource, AssessmentRow, CheckinMessage, CheckinRow, DemoForgetReport, ForgetReport,
        ImportOutcome, InboundOutcome, InboundWrite, NewOutbox, NewPerson, NudgeClick,
        NudgeClickOutcome, NudgeRow, OutboxResult, OutboxStatus, RecordOutcome, ScheduleRun, Store,
        StoreError, action_seen_key,
    };

    use super::TestDb;
    use crate::helpers::test_now;

    // ---- fixtures -------------------------------------------------------

    pub fn prompt(person: &str, period: DateTime<Utc>) -> NewOutbox {
        NewOutbox {
            dedupe_key: Some(format!("prompt:{person}:weekly-checkin:{period}")),
            coalesce_key: None,
            person: Some(pid(person)),
            kind: "post".into(),
            channel: person.into(),
            payload: "{}".into(),
            not_before: period,
            created_at: period,
        }
    }

    /// A click by `person` with its own id `key`, and the redraw it asks for.
    pub fn keyed_click(person: &str, key: &str) -> InboundWrite {
        InboundWrite {
            seen_key: Some(key.to_owned()),
            on_change: Some(NewOutbox {
                coalesce_key: Some(format!("prompt:D:{person}")),
                ..prompt(person, test_now())
            }),
            ..InboundWrite::answers(
                vec![answer(person, "2026-W47", "focus", "deciding")],
                AnswerSource::Button,
            )
        }
    }

    /// Sends every write at once through `store` and returns their outcomes
    /// in order. On the test's single-threaded runtime the writes are queued
    /// faster than the store's writers commit them, so they are committed in
    /// batches.
    pub async fn all_at_once(
        store: &Arc<dyn Store>,
        writes: Vec<InboundWrite>,
    ) -> Vec<Result<InboundOutcome, StoreError>> {
        let tasks: Vec<_> = writes
            .into_iter()
            .map(|write| {
                let store = store.clone();
                tokio::spawn(async move { store.record_inbound(&write, test_now()).await })
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    pub fn pid(id: &str) -> PersonId {
        PersonId::parse(id).unwrap()
    }

    pub fn answer(person: &str, week: &str, question: &str, option: &str) -> Answer {
        Answer {
            person: pid(person),
            week: week.parse().unwrap(),
            question: QuestionId::parse(question).unwrap(),
            option: OptionKey::parse(option).unwrap(),
        }
    }

    /// `n` answers of one person, each to a different question or week.
    pub fn history(person: &str, n: usize) -> Vec<Answer> {
        const QUESTIONS: [&str; 7] = [
            "decisions",
            "stakeholders",
            "tradeoffs",
            "focus",
            "reversibility",
            "continuity",
            "capacity",
        ];
        (2000..2100)
            .flat_map(|year| (1..=52).map(move |week| format!("{year}-W{week:02}")))
            .flat_map(|week| QUESTIONS.map(|q| answer(person, &week, q, "x")))
            .take(n)
            .collect()
    }

    pub async fn add(store: &dyn Store, id: &str) {
        store
            .upsert_person(
                &NewPerson {
                    id: pid(id),
                    name: Some(format!("{id} name")),
                    tz: Some(chrono_tz::Europe::Berlin),
                    enrolled: true,
                },
                test_now(),
            )
            .await
            .unwrap();
    }

    fn message(key: Option<&str>, person: Option<&str>, not_before: DateTime<Utc>) -> NewOutbox {
        NewOutbox {
            dedupe_key: key.map(str::to_owned),
            coalesce_key: None,
            person: person.map(pid),
            kind: "post".into(),
            channel: "D1".into(),
            payload: "{}".into(),
            not_before,
            created_at: test_now(),
        }
    }

    fn checkin(person: &str, period: DateTime<Utc>) -> CheckinRow {
        CheckinRow {
            id: 0,
            person: pid(person),
            schedule: "weekly-checkin".into(),
            period,
            week: "2026-W47".parse().unwrap(),
            channel: None,
            message_ts: None,
            created_at: test_now(),
        }
    }

    fn run(person: &str, schedule: &str, period: DateTime<Utc>) -> ScheduleRun {
        ScheduleRun {
            person: pid(person),
            schedule: schedule.into(),
            period,
        }
    }

    fn assessment(person: &str, state: &str, assessed_at: DateTime<Utc>) -> AssessmentRow {
        AssessmentRow {
            person: pid(person),
            week: "2026-W47".parse().unwrap(),
            state: state.into(),
            ewma: Some(0.5),
            detail: "{}".into(),
            assessed_at,
        }
    }

    fn nudge(person: &str, week: &str) -> NudgeRow {
        NudgeRow {
            person: pid(person),
            week: week.parse().unwrap(),
            sent_at: test_now(),
            reasons: "[]".into(),
            message: Some("{\"text\":\"t\",\"blocks\":[]}".into()),
            response: None,
            answered_at: None,
        }
    }

    async fn options(store: &dyn Store, person: &str) -> Vec<String> {
        store
            .answers(Some(&pid(person)))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.answer.option.as_str().to_owned())
            .collect()
    }

    // ---- people ---------------------------------------------------------

    pub async fn upserting_a_person_keeps_what_they_chose_themselves(store: Arc<dyn Store>) {
        add(store.as_ref(), "U1").await;
        let until = test_now() + Duration::days(14);
        assert!(
            store
                .set_paused_until(&pid("U1"), Some(until))
                .await
                .unwrap()
        );
        assert!(store.set_enrolled(&pid("U1"), false).await.unwrap());
        // The roster is synced again at the next start, with a new zone
        // and no name.
        store
            .upsert_person(
                &NewPerson {
                    id: pid("U1"),
                    name: None,
                    tz: Some(chrono_tz::America::New_York),
                    enrolled: true,
                },
                test_now() + Duration::days(1),
            )
            .await
            .unwrap();
        let person = store.person(&pid("U1")).await.unwrap().unwrap();
        assert!(!person.enrolled);
        assert_eq!(person.paused_until, Some(until));
        assert_eq!(person.tz, Some(chrono_tz::America::New_York));
        assert_eq!(person.name.as_deref(), Some("U1 name"));
        assert_eq!(person.created_at, test_now());
    }

    /// A stored zone no zone database knows (hand-edited) is read as no
    /// zone: the person and everyone else still read, nothing panics, and
    /// a zone given again replaces it.
    pub async fn an_unknown_stored_zone_reads_as_none<F, Fut>(store: Arc<dyn Store>, tamper: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        add(store.as_ref(), "U1").await;
        add(store.as_ref(), "U2").await;
        tamper().await;
        let person = store.person(&pid("U1")).await.unwrap().unwrap();
        assert_eq!(person.tz, None);
        assert_eq!(person.name.as_deref(), Some("U1 name"));
        let people = store.people().await.unwrap();
        let zones: Vec<_> = people.iter().map(|p| (p.id.as_str(), p.tz)).collect();
        assert_eq!(
            zones,
            [("U1", None), ("U2", Some(chrono_tz::Europe::Berlin))]
        );
        add(store.as_ref(), "U1").await;
        let person = store.person(&pid("U1")).await.unwrap().unwrap();
        assert_eq!(person.tz, Some(chrono_tz::Europe::Berlin));
    }

    pub async fn enrolment_and_pauses_change_only_known_people(store: Arc<dyn Store>) {
        add(store.as_ref(), "U2").await;
        add(store.as_ref(), "U1").await;
        assert!(!store.set_enrolled(&pid("U9"), true).await.unwrap());
        assert!(!store.set_paused_until(&pid("U9"), None).await.unwrap());
        assert!(store.person(&pid("U9")).await.unwrap().is_none());
        assert!(
            store
                .set_paused_until(&pid("U1"), Some(test_now()))
                .await
                .unwrap()
        );
        assert!(store.set_paused_until(&pid("U1"), None).await.unwrap());
        let people = store.people().await.unwrap();
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["U1", "U2"], "ordered by id");
        assert!(
            people
                .iter()
                .all(|p| p.enrolled && p.paused_until.is_none())
        );
    }

    // ---- answers --------------------------------------------------------

    pub async fn an_answer_is_inserted_changed_or_left_unchanged(store: Arc<dyn Store>) {
        add(store.as_ref(), "U1").await;
        let first = answer("U1", "2026-W47", "focus", "mixed");
        let now = test_now();
        let record = async |a: &Answer, source, at| store.record_answer(a, source, at).await;
        assert_eq!(
            record(&first, AnswerSource::Button, now).await.unwrap(),
            RecordOutcome::Inserted
        );
        assert_eq!(
            record(&first, AnswerSource::Text, now + Duration::minutes(1))
                .await
                .unwrap(),
            RecordOutcome::Unchanged
        );
        let rows = store.answers(Some(&pid("U1"))).await.unwrap();
        assert_eq!(
            (rows[0].source, rows[0].recorded_at),
            (AnswerSource::Button, now),
            "an unchanged answer writes nothing"
        );
        let second = answer("U1", "2026-W47", "focus", "deciding");
        let later = now + Duration::minutes(2);
        assert_eq!(
            record(&second, AnswerSource::Text, later).await.unwrap(),
            RecordOutcome::Changed
        );
        assert_eq!(
            record(&first, AnswerSource::Button, later).await.unwrap(),
            RecordOutcome::Changed,
            "changing back is a change too"
        );
        let rows = store.answers(Some(&pid("U1"))).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].answer, first);
        assert_eq!(
            (rows[0].source, rows[0].recorded_at),
            (AnswerSource::Button, later)
        );
    }

    pub async fn an_answer_for_an_unknown_person_is_refused(store: Arc<dyn Store>) {
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
        assert!(store.people().await.unwrap().is_empty());
    }

    pub async fn week_answers_are_one_persons_answers_for_one_week(store: Arc<dyn Store>) {
        for a in [
            answer("U1", "2026-W47", "focus", "mixed"),
            answer("U1", "2026-W47", "capacity", "yes"),
            answer("U1", "2026-W46", "focus", "tracking"),
            answer("U2", "2026-W47", "focus", "deciding"),
        ] {
            add(store.as_ref(), a.person.as_str()).await;
            store
                .record_answer(&a, AnswerSource::Button, test_now())
                .await
                .unwrap();
        }
        let mut week = store
            .week_answers(&pid("U1"), "2026-W47".parse().unwrap())
            .await
            .unwrap();
        week.sort();
        let week: Vec<(&str, &str)> = week.iter().map(|(q, o)| (q.as_str(), o.as_str())).collect();
        assert_eq!(week, [("capacity", "yes"), ("focus", "mixed")]);
        let all: Vec<String> = store
            .answers(None)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.answer.person, r.answer.week, r.answer.question
                )
            })
            .collect();
        assert_eq!(
            all,
            [
                "U1 2026-W46 focus",
                "U1 2026-W47 capacity",
                "U1 2026-W47 focus",
                "U2 2026-W47 focus"
            ],
            "ordered by person, week, question"
        );
    }

    // ---- import ---------------------------------------------------------

    pub async fn import_adds_unknown_people_unenrolled_and_counts_what_it_did(
        store: Arc<dyn Store>,
    ) {
        add(store.as_ref(), "U1").await;
        store
            .record_answer(
                &answer("U1", "2026-W46", "focus", "mixed"),
                AnswerSource::Button,
                test_now(),
            )
            .await
            .unwrap();
        let file = [
            answer("U1", "2026-W46", "focus", "deciding"),
            answer("U1", "2026-W46", "decisions", "3-5"),
            answer("U2", "2026-W46", "decisions", "0"),
            // The same key twice in one file: the later line wins.
            answer("U2", "2026-W47", "capacity", "none"),
            answer("U2", "2026-W47", "capacity", "yes"),
            answer("U3", "2026-W47", "capacity", "yes"),
            answer("U3", "2026-W47", "capacity", "yes"),
        ];
        let outcome = store.import_answers(&file, test_now()).await.unwrap();
        assert_eq!(
            outcome,
            ImportOutcome {
                inserted: 4,
                changed: 2,
                unchanged: 1,
                new_people: 2
            }
        );
        assert!(store.person(&pid("U1")).await.unwrap().unwrap().enrolled);
        for id in ["U2", "U3"] {
            let person = store.person(&pid(id)).await.unwrap().unwrap();
            assert!(!person.enrolled, "{id} is known from history only");
            assert_eq!(person.name, None);
        }
        assert_eq!(options(store.as_ref(), "U1").await, ["3-5", "deciding"]);
        assert_eq!(options(store.as_ref(), "U2").await, ["0", "yes"]);
        let sources: Vec<AnswerSource> = store
            .answers(Some(&pid("U2")))
            .await
            .unwrap()
            .iter()
            .map(|r| r.source)
            .collect();
        assert_eq!(sources, [AnswerSource::Import, AnswerSource::Import]);
        assert_eq!(
            store.import_answers(&[], test_now()).await.unwrap(),
            ImportOutcome::default()
        );
    }

    pub async fn reimporting_the_same_history_changes_nothing(store: Arc<dyn Store>) {
        let mut file = history("U1", 1200);
        file.extend(history("U2", 30));
        let first = store.import_answers(&file, test_now()).await.unwrap();
        assert_eq!((first.inserted, first.new_people), (1230, 2));
        let before = store.answers(None).await.unwrap();
        let again = store
            .import_answers(&file, test_now() + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(
            again,
            ImportOutcome {
                unchanged: 1230,
                ..ImportOutcome::default()
            }
        );
        assert_eq!(store.answers(None).await.unwrap(), before);
    }

    pub async fn a_hundred_thousand_answers_import_in_one_go(store: Arc<dyn Store>) {
        let file: Vec<Answer> = (0..100)
            .flat_map(|p| history(&format!("U{p}"), 1000))
            .collect();
        let outcome = store.import_answers(&file, test_now()).await.unwrap();
        assert_eq!((outcome.inserted, outcome.new_people), (100_000, 100));
        assert_eq!(store.answers(None).await.unwrap().len(), 100_000);
    }

    /// Call after arranging, by means of the engine, that the database
    /// refuses any answer of person `refused` (an import may fail midway
    /// for reasons outside the store's control: a full disk, a constraint).
    pub async fn a_failing_import_leaves_nothing_behind(store: Arc<dyn Store>, refused: &str) {
        add(store.as_ref(), "U1").await;
        store
            .record_answer(
                &answer("U1", "2026-W46", "focus", "mixed"),
                AnswerSource::Button,
                test_now(),
            )
            .await
            .unwrap();
        let mut file = vec![answer("U1", "2026-W46", "focus", "deciding")];
        file.extend(history("U2", 2000));
        file.push(answer(refused, "2026-W46", "focus", "mixed"));
        assert!(store.import_answers(&file, test_now()).await.is_err());
        assert_eq!(options(store.as_ref(), "U1").await, ["mixed"]);
        assert_eq!(store.answers(None).await.unwrap().len(), 1);
        let people: Vec<PersonId> = store
            .people()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(people, [pid("U1")]);
    }

    pub async fn an_event_is_seen_once(store: Arc<dyn Store>) {
        assert!(store.mark_seen("event:Ev1", test_now()).await.unwrap());
        assert!(!store.mark_seen("event:Ev1", test_now()).await.unwrap());
        assert!(store.mark_seen("event:Ev2", test_now()).await.unwrap());
    }

    pub async fn a_released_seen_key_is_new_again(store: Arc<dyn Store>) {
        assert!(store.mark_seen("command:T1", test_now()).await.unwrap());
        store.unmark_seen("command:T1").await.unwrap();
        assert!(store.mark_seen("command:T1", test_now()).await.unwrap());
        assert!(!store.mark_seen("command:T1", test_now()).await.unwrap());
        store.unmark_seen("command:never").await.unwrap();
    }

    // ---- schedules and check-ins ---------------------------------------

    pub async fn fifty_concurrent_claims_of_one_run_succeed_once(handles: Vec<Arc<dyn Store>>) {
        add(handles[0].as_ref(), "U1").await;
        let occurrence = run("U1", "weekly-checkin", test_now());
        let claims: Vec<_> = (0..50)
            .map(|i| {
                let store = handles[i % handles.len()].clone();
                let occurrence = occurrence.clone();
                tokio::spawn(async move { store.claim_run(&occurrence, test_now()).await })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            won += usize::from(claim.await.unwrap().unwrap());
        }
        assert_eq!(won, 1);
    }

    pub async fn the_last_run_is_the_newest_claimed_occurrence(store: Arc<dyn Store>) {
        add(store.as_ref(), "U1").await;
        add(store.as_ref(), "U2").await;
        let now = test_now();
        assert_eq!(store.last_run(&pid("U1"), "weekly").await.unwrap(), None);
        for period in [now, now + Duration::weeks(1), now - Duration::weeks(1)] {
            assert!(
                store
                    .claim_run(&run("U1", "weekly", period), now)
                    .await
                    .unwrap()
            );
        }
        assert!(
            store
                .claim_run(&run("U2", "weekly", now + Duration::weeks(5)), now)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_run(&run("U1", "trend", now + Duration::weeks(5)), now)
                .await
                .unwrap()
        );
        assert_eq!(
            store.last_run(&pid("U1"), "weekly").await.unwrap(),
            Some(now + Duration::weeks(1))
        );
        let err = store
            .claim_run(&run("U9", "weekly", now), now)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }

    pub async fn a_checkin_is_recorded_once_and_found_where_its_prompt_landed(
        store: Arc<dyn Store>,
    ) {
        add(store.as_ref(), "U1").await;
        let first = checkin("U1", test_now());
        let id = store.record_checkin(&first).await.unwrap().unwrap();
        assert_eq!(
            store.record_checkin(&first).await.unwrap(),
            None,
            "unique per person, schedule, period"
        );
        let next_week = checkin("U1", test_now() + Duration::weeks(1));
        let other = store.record_checkin(&next_week).await.unwrap().unwrap();
        assert_ne!(id, other);
        assert!(
            store
                .checkin_by_message("D1", "1.2")
                .await
                .unwrap()
                .is_none()
        );
        store.set_checkin_message(id, "D1", "1.2").await.unwrap();
        let found = store
            .checkin_by_message("D1", "1.2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found,
            CheckinRow {
                id,
                channel: Some("D1".into()),
                message_ts: Some("1.2".into()),
                ..first
            }
        );
        assert!(
            store
                .checkin_by_message("D2", "1.2")
                .await
                .unwrap()
                .is_none()
        );
    }

    // ---- assessments and nudges ----------------------------------------

    pub async fn the_latest_assessment_wins(store: Arc<dyn Store>) {
        add(store.as_ref(), "U1").await;
        add(store.as_ref(), "U2").await;
        let now = test_now();
        assert!(store.latest_assessment(&pid("U1")).await.unwrap().is_none());
        store
            .save_assessment(&assessment("U1", "building", now))
            .await
            .unwrap();
        let sustained = AssessmentRow {
            ewma: None,
            ..assessment("U1", "sustained", now + Duration::minutes(1))
        };
        store.save_assessment(&sustained).await.unwrap();
        // Same instant as the previous one: the one saved last wins.
        let nudged = assessment("U1", "nudged", now + Duration::minutes(1));
        store.save_assessment(&nudged).await.unwrap();
        store
            .save_assessment(&assessment("U2", "building", now + Duration::hours(1)))
            .await
            .unwrap();
        assert_eq!(
            store.latest_assessment(&pid("U1")).await.unwrap(),
            Some(nudged)
        );
    }

    pub async fn a_nudge_is_recorded_once_per_week(store: Arc<dyn Store>) {
        add(store.as_ref(), "U1").await;
        assert!(store.record_nudge(&nudge("U1", "2026-W47")).await.unwrap());
        let again = NudgeRow {
            reasons: "[\"other\"]".into(),
            ..nudge("U1", "2026-W47")
        };
        assert!(!store.record_nudge(&again).await.unwrap());
        let later = NudgeRow {
            sent_at: test_now() + Duration::weeks(20),
            ..nudge("U1", "2027-W15")
        };
        assert!(store.record_nudge(&later).await.unwrap());
        assert_eq!(
            store.nudges(&pid("U1")).await.unwrap(),
            [nudge("U1", "2026-W47"), later],
            "oldest first, the first record kept"
        );
        assert!(store.nudges(&pid("U2")).await.unwrap().is_empty());
    }

    pub async fn a_nudge_answer_is_stored_with_its_click_and_redraw_or_not_at_all(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        add(store.as_ref(), "U2").await;
        assert!(store.record_nudge(&nudge("U1", "2026-W47")).await.unwrap());
        let click = |response, key: &str, minutes| NudgeClick {
            person: pid("U1"),
            week: "2026-W47".parse().unwrap(),
            response,
            at: now + Duration::minutes(minutes),
            seen_key: Some(key.to_owned()),
        };
        let answer = async |click: &NudgeClick| {
            store
                .answer_nudge(click, Some(&redraw("nudge:D1:1", "U1")))
                .await
                .unwrap()
        };
        let stored = async |person: &str| {
            let n = store.nudges(&pid(person)).await.unwrap();
            (n[0].response, n[0].answered_at)
        };
        let off = async |person: &str| {
            store
                .person(&pid(person))
                .await
                .unwrap()
                .unwrap()
                .nudges_off_since
        };

        let not_now = click(NudgeResponse::NotNow, "k1", 1);
        assert_eq!(answer(&not_now).await, NudgeClickOutcome::Recorded);
        assert_eq!(
            stored("U1").await,
            (Some(NudgeResponse::NotNow), Some(not_now.at))
        );
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        // The same click delivered again: nothing.
        assert_eq!(answer(&not_now).await, NudgeClickOutcome::Duplicate);
        // Another click with the same answer: stored as it was.
        assert_eq!(
            answer(&click(NudgeResponse::NotNow, "k2", 2)).await,
            NudgeClickOutcome::Unchanged
        );
        assert_eq!(stored("U1").await.1, Some(not_now.at));
        assert_eq!(off("U1").await, None);

        // "Not for me": stored, nudges off since then; the waiting redraw
        // covers it.
        let not_for_me = click(NudgeResponse::NotForMe, "k3", 3);
        assert_eq!(answer(&not_for_me).await, NudgeClickOutcome::Recorded);
        assert_eq!(off("U1").await, Some(not_for_me.at));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        // Said again later: still off since the first time.
        assert_eq!(
            answer(&click(NudgeResponse::NotForMe, "k4", 4)).await,
            NudgeClickOutcome::Unchanged
        );
        assert_eq!(off("U1").await, Some(not_for_me.at));
        // Changed to "Interested": on again, and redrawn once claimed.
        store
            .claim_outbox(now, now + Duration::seconds(30), 10)
            .await
            .unwrap();
        assert_eq!(
            answer(&click(NudgeResponse::Interested, "k5", 5)).await,
            NudgeClickOutcome::Recorded
        );
        assert_eq!(off("U1").await, None);
        assert_eq!(stored("U1").await.0, Some(NudgeResponse::Interested));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);

        // A nudge that does not exist, or is someone else's week: nothing,
        // not even the click's key.
        let unknown = NudgeClick {
            week: "2026-W40".parse().unwrap(),
            ..click(NudgeResponse::NotForMe, "k6", 6)
        };
        assert_eq!(answer(&unknown).await, NudgeClickOutcome::UnknownNudge);
        assert!(store.mark_seen("k6", now).await.unwrap());
        let elsewhere = NudgeClick {
            person: pid("U2"),
            ..click(NudgeResponse::NotForMe, "k7", 7)
        };
        assert_eq!(
            store.answer_nudge(&elsewhere, None).await.unwrap(),
            NudgeClickOutcome::UnknownNudge
        );
        assert_eq!(off("U1").await, None);
        assert_eq!(off("U2").await, None);
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
        assert_eq!(stored("U1").await.0, Some(NudgeResponse::Interested));

        // Without a click key (and without a redraw): answered all the same.
        let keyless = NudgeClick {
            seen_key: None,
            ..click(NudgeResponse::NotNow, "", 8)
        };
        assert_eq!(
            store.answer_nudge(&keyless, None).await.unwrap(),
            NudgeClickOutcome::Recorded
        );
        assert_eq!(stored("U1").await.0, Some(NudgeResponse::NotNow));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
    }

    pub async fn nudges_are_turned_off_and_on_for_known_people_only(store: Arc<dyn Store>) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let off = async || {
            store
                .person(&pid("U1"))
                .await
                .unwrap()
                .unwrap()
                .nudges_off_since
        };
        assert_eq!(off().await, None);
        assert!(store.set_nudges_off(&pid("U1"), Some(now)).await.unwrap());
        assert_eq!(off().await, Some(now));
        // Off again later keeps the first instant.
        let later = now + Duration::days(3);
        assert!(store.set_nudges_off(&pid("U1"), Some(later)).await.unwrap());
        assert_eq!(off().await, Some(now));
        // The roster sync leaves it as the person set it.
        add(store.as_ref(), "U1").await;
        assert_eq!(off().await, Some(now));
        assert!(store.set_nudges_off(&pid("U1"), None).await.unwrap());
        assert_eq!(off().await, None);
        assert!(!store.set_nudges_off(&pid("U9"), Some(now)).await.unwrap());
        assert!(store.person(&pid("U9")).await.unwrap().is_none());
    }

    // ---- outbox ---------------------------------------------------------

    pub async fn an_outbox_message_is_deduplicated_by_its_key_only(store: Arc<dyn Store>) {
        let now = test_now();
        let first = store
            .enqueue(&message(Some("k1"), None, now))
            .await
            .unwrap();
        assert!(first.is_some());
        assert_eq!(
            store
                .enqueue(&message(Some("k1"), Some("U1"), now))
                .await
                .unwrap(),
            None
        );
        // Without a key nothing is a duplicate.
        let a = store.enqueue(&message(None, None, now)).await.unwrap();
        let b = store.enqueue(&message(None, None, now)).await.unwrap();
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(store.outbox_counts().await.unwrap().pending, 3);
        let row = store.outbox_row(first.unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.person, row.lease_until),
            (OutboxStatus::Pending, 0, None, None)
        );
        assert_eq!(row.dedupe_key.as_deref(), Some("k1"));
        assert!(store.outbox_row(i64::MAX).await.unwrap().is_none());
    }

    fn redraw(key: &str, person: &str) -> NewOutbox {
        NewOutbox {
            coalesce_key: Some(key.to_owned()),
            ..message(None, Some(person), test_now())
        }
    }

    pub async fn a_waiting_row_covers_a_second_one_with_its_coalesce_key_until_claimed(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        let first = store.enqueue(&redraw("prompt:D1:1", "U1")).await.unwrap();
        assert!(first.is_some());
        assert_eq!(
            store.enqueue(&redraw("prompt:D1:1", "U1")).await.unwrap(),
            None,
            "the waiting row already covers it"
        );
        // Another prompt is another key.
        let other = store.enqueue(&redraw("prompt:D1:2", "U1")).await.unwrap();
        assert!(other.is_some());
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);

        // Once claimed, the row is on its way with what it drew: a new
        // request needs a row of its own.
        let claimed = store
            .claim_outbox(now, now + Duration::seconds(30), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let again = store.enqueue(&redraw("prompt:D1:1", "U1")).await.unwrap();
        assert!(again.is_some() && again != first);
        assert_eq!(
            store.enqueue(&redraw("prompt:D1:1", "U1")).await.unwrap(),
            None
        );
        assert_eq!(store.outbox_counts().await.unwrap().pending, 3);
    }

    /// A click as the Slack handler writes it: one answer and its
    /// prompt's redraw.
    fn click(option: &str, person: &str, seen: Option<String>) -> InboundWrite {
        InboundWrite {
            seen_key: seen,
            on_change: Some(redraw(&format!("prompt:D:{person}"), person)),
            ..InboundWrite::answers(
                vec![answer(person, "2026-W47", "focus", option)],
                AnswerSource::Button,
            )
        }
    }

    fn recorded(changed: usize, unchanged: usize) -> InboundOutcome {
        InboundOutcome::Recorded { changed, unchanged }
    }

    pub async fn a_click_and_its_redraw_are_stored_together_or_not_at_all(store: Arc<dyn Store>) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let clicked =
            async |option: &str| store.record_inbound(&click(option, "U1", None), now).await;
        assert_eq!(clicked("mixed").await.unwrap(), recorded(1, 0));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        // The same click again changes nothing and queues nothing.
        assert_eq!(clicked("mixed").await.unwrap(), recorded(0, 1));
        // A changed answer is stored; the waiting redraw already covers it.
        assert_eq!(clicked("deciding").await.unwrap(), recorded(1, 0));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        assert_eq!(
            store
                .claim_outbox(now, now + Duration::seconds(30), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // Unchanged after the claim: still nothing new to draw.
        assert_eq!(clicked("deciding").await.unwrap(), recorded(0, 1));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        assert_eq!(clicked("tracking").await.unwrap(), recorded(1, 0));
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
        assert_eq!(options(store.as_ref(), "U1").await, ["tracking"]);

        // An unknown person's click stores nothing and queues nothing.
        let err = store
            .record_inbound(&click("mixed", "U9", None), now)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
        assert_eq!(store.answers(None).await.unwrap().len(), 1);
    }

    /// An event's answers, redraw and reply, with its id: a second delivery
    /// of the same id writes nothing, whatever it carries.
    pub async fn an_inbound_write_is_stored_once_per_seen_key(store: Arc<dyn Store>) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let event = |id: &str, options: [&str; 2], reply: &str| InboundWrite {
            seen_key: Some(format!("event:{id}")),
            answers: vec![
                answer("U1", "2026-W47", "focus", options[0]),
                answer("U1", "2026-W47", "capacity", options[1]),
            ],
            source: AnswerSource::Text,
            on_change: Some(redraw("prompt:D1:1", "U1")),
            always: vec![message(Some(reply), Some("U1"), now)],
        };
        let first = event("Ev1", ["mixed", "yes"], "reply:D1:1");
        assert_eq!(
            store.record_inbound(&first, now).await.unwrap(),
            recorded(2, 0)
        );
        assert_eq!(
            store.outbox_counts().await.unwrap().pending,
            2,
            "redraw and reply"
        );

        // Slack's retry, even one that would read differently now.
        let retry = event("Ev1", ["tracking", "none"], "reply:D1:2");
        for again in [&first, &retry] {
            assert_eq!(
                store.record_inbound(again, now).await.unwrap(),
                InboundOutcome::Duplicate
            );
        }
        assert_eq!(options(store.as_ref(), "U1").await, ["yes", "mixed"]);
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);

        // Another event saying the same, once the redraw is on its way
        // (claimed, so no longer covering a new one): its reply, and no
        // redraw.
        store
            .claim_outbox(now, now + Duration::seconds(30), 10)
            .await
            .unwrap();
        let same = event("Ev2", ["mixed", "yes"], "reply:D1:3");
        assert_eq!(
            store.record_inbound(&same, now).await.unwrap(),
            recorded(0, 2)
        );
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!(counts.pending, 3, "the two claimed and the new reply only");

        // A reply already queued under its key is not queued twice.
        let reply_only = InboundWrite {
            seen_key: Some("event:Ev3".into()),
            always: vec![message(Some("reply:D1:3"), Some("U1"), now)],
            ..InboundWrite::answers(Vec::new(), AnswerSource::Text)
        };
        assert_eq!(
            store.record_inbound(&reply_only, now).await.unwrap(),
            recorded(0, 0)
        );
        assert_eq!(store.outbox_counts().await.unwrap().pending, 3);
        assert_eq!(
            store.record_inbound(&reply_only, now).await.unwrap(),
            InboundOutcome::Duplicate
        );
    }

    /// A write that fails leaves its seen key unrecorded, so the retry is
    /// handled: here the person is unknown until the retry.
    pub async fn an_inbound_write_for_an_unknown_person_stores_nothing_not_even_its_key(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        let key = action_seen_key(&pid("U1"), "1763568360.111111");
        let write = click("mixed", "U1", Some(key));
        let err = store.record_inbound(&write, now).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        assert_eq!(store.outbox_counts().await.unwrap().pending, 0);
        add(store.as_ref(), "U1").await;
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            recorded(1, 0)
        );
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            InboundOutcome::Duplicate
        );
        assert_eq!(options(store.as_ref(), "U1").await, ["mixed"]);
    }

    /// What a write that fails part-way leaves: nothing, not even its seen
    /// key, so the same write is stored whole once the failure is gone.
    /// `refuse` makes the store refuse the reply's outbox row until it
    /// is called again (a trigger each engine sets up its own way).
    pub async fn a_failing_inbound_write_stores_nothing_not_even_its_key<F, Fut>(
        store: Arc<dyn Store>,
        lift: F,
    ) where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let write = InboundWrite {
            seen_key: Some("event:Ev1".into()),
            always: vec![message(Some("reply:D1:1"), Some("U1"), now)],
            ..click("mixed", "U1", None)
        };
        assert!(store.record_inbound(&write, now).await.is_err());
        assert!(store.answers(None).await.unwrap().is_empty());
        assert_eq!(store.outbox_counts().await.unwrap().pending, 0);
        lift().await;
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            recorded(1, 0)
        );
        assert_eq!(options(store.as_ref(), "U1").await, ["mixed"]);
        assert_eq!(store.outbox_counts().await.unwrap().pending, 2);
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            InboundOutcome::Duplicate
        );
    }

    pub async fn of_repeated_answers_in_one_write_the_last_counts(store: Arc<dyn Store>) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let write = InboundWrite::answers(
            vec![
                answer("U1", "2026-W47", "focus", "mixed"),
                answer("U1", "2026-W47", "capacity", "yes"),
                answer("U1", "2026-W47", "focus", "deciding"),
            ],
            AnswerSource::Command,
        );
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            recorded(2, 0)
        );
        assert_eq!(options(store.as_ref(), "U1").await, ["yes", "deciding"]);
        assert_eq!(
            store.record_inbound(&write, now).await.unwrap(),
            recorded(0, 2)
        );
    }

    pub async fn a_forgotten_person_stays_out_until_their_opt_out_is_lifted(store: Arc<dyn Store>) {
        add(store.as_ref(), "U2").await;
        add(store.as_ref(), "U1").await;
        assert!(store.opted_out().await.unwrap().is_empty());
        store.forget(&pid("U2")).await.unwrap();
        store.forget(&pid("U1")).await.unwrap();
        assert_eq!(store.opted_out().await.unwrap(), [pid("U1"), pid("U2")]);
        // The roster at the next start.
        add(store.as_ref(), "U1").await;
        assert!(store.person(&pid("U1")).await.unwrap().is_none());

        assert!(store.clear_opt_out(&pid("U1")).await.unwrap());
        assert!(!store.clear_opt_out(&pid("U1")).await.unwrap());
        assert_eq!(store.opted_out().await.unwrap(), [pid("U2")]);
        add(store.as_ref(), "U1").await;
        assert!(store.person(&pid("U1")).await.unwrap().is_some());
        assert!(store.person(&pid("U2")).await.unwrap().is_none());
    }

    pub async fn due_outbox_rows_are_claimed_oldest_first(store: Arc<dyn Store>) {
        let now = test_now();
        let mut ids = Vec::new();
        for minutes in [3, 1, 2, 10] {
            let id = store
                .enqueue(&message(None, None, now - Duration::minutes(10 - minutes)))
                .await
                .unwrap()
                .unwrap();
            ids.push(id);
        }
        let future = store
            .enqueue(&message(None, None, now + Duration::seconds(1)))
            .await
            .unwrap()
            .unwrap();
        let lease = now + Duration::seconds(30);
        let claimed: Vec<i64> = store
            .claim_outbox(now, lease, 2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(claimed, [ids[1], ids[2]], "the two longest due");
        let rest = store.claim_outbox(now, lease, 10).await.unwrap();
        assert_eq!(
            rest.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[0], ids[3]],
            "a row due exactly now is due; one due later is not"
        );
        assert!(rest.iter().all(|r| r.lease_until == Some(lease)));
        assert!(store.claim_outbox(now, lease, 0).await.unwrap().is_empty());
        let later = now + Duration::seconds(1);
        let last = store.claim_outbox(later, lease, 10).await.unwrap();
        assert_eq!(last.iter().map(|r| r.id).collect::<Vec<_>>(), [future]);
    }

    pub async fn a_leased_outbox_row_is_claimed_again_only_after_its_lease_expires(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        let id = store
            .enqueue(&message(None, None, now))
            .await
            .unwrap()
            .unwrap();
        let lease = now + Duration::seconds(30);
        assert_eq!(store.claim_outbox(now, lease, 10).await.unwrap().len(), 1);
        let almost = lease - Duration::milliseconds(1);
        assert!(
            store
                .claim_outbox(almost, almost + Duration::seconds(30), 10)
                .await
                .unwrap()
                .is_empty(),
            "still leased"
        );
        // The worker died: once the lease has run out the row is due again.
        let next_lease = lease + Duration::seconds(30);
        let again = store.claim_outbox(lease, next_lease, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id, again[0].lease_until, again[0].attempts),
            (id, Some(next_lease), 0)
        );
    }

    pub async fn a_paced_outbox_row_is_deferred_without_counting_an_attempt(store: Arc<dyn Store>) {
        let now = test_now();
        let lease = now + Duration::seconds(30);
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                store
                    .enqueue(&message(None, None, now))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert_eq!(store.claim_outbox(now, lease, 10).await.unwrap().len(), 3);
        store.outbox_sent(ids[2], now, "{}").await.unwrap();
        let (one, two) = (now + Duration::seconds(2), now + Duration::seconds(1));
        store
            .outbox_defer(&[(ids[0], one), (ids[1], two), (ids[2], two)])
            .await
            .unwrap();
        store.outbox_defer(&[]).await.unwrap();
        let row = store.outbox_row(ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.lease_until, row.not_before),
            (OutboxStatus::Pending, 0, None, one)
        );
        let sent = store.outbox_row(ids[2]).await.unwrap().unwrap();
        assert_eq!(
            sent.status,
            OutboxStatus::Sent,
            "a finished row stays finished"
        );
        assert!(store.claim_outbox(now, lease, 10).await.unwrap().is_empty());
        // Due again at their own instants, in that order, lease or not.
        let later = now + Duration::seconds(2);
        let due = store
            .claim_outbox(later, later + Duration::seconds(30), 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ids[1], ids[0]]
        );
    }

    pub async fn every_delivery_attempt_is_counted_and_clears_the_lease(store: Arc<dyn Store>) {
        let now = test_now();
        let lease = now + Duration::seconds(30);
        let retried = store
            .enqueue(&message(None, None, now))
            .await
            .unwrap()
            .unwrap();
        let failed = store
            .enqueue(&message(None, None, now))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.claim_outbox(now, lease, 10).await.unwrap().len(), 2);

        let next = now + Duration::minutes(1);
        store.outbox_retry(retried, next, "503").await.unwrap();
        let row = store.outbox_row(retried).await.unwrap().unwrap();
        assert_eq!(
            (
                row.status,
                row.attempts,
                row.lease_until,
                row.not_before,
                row.last_error.as_deref()
            ),
            (OutboxStatus::Pending, 1, None, next, Some("503"))
        );
        assert!(
            store.claim_outbox(now, lease, 10).await.unwrap().is_empty(),
            "not due before its next attempt"
        );
        store
            .outbox_failed(failed, now, "channel_not_found")
            .await
            .unwrap();

        let claimed = store.claim_outbox(next, next + Duration::seconds(30), 10);
        assert_eq!(claimed.await.unwrap().len(), 1);
        store
            .outbox_sent(retried, next, "{\"ts\":\"1.2\"}")
            .await
            .unwrap();
        let sent = store.outbox_row(retried).await.unwrap().unwrap();
        assert_eq!(
            (sent.status, sent.attempts, sent.lease_until, sent.sent_at),
            (OutboxStatus::Sent, 2, None, Some(next))
        );
        assert_eq!(sent.response.as_deref(), Some("{\"ts\":\"1.2\"}"));
        let failed = store.outbox_row(failed).await.unwrap().unwrap();
        assert_eq!(
            (
                failed.status,
                failed.attempts,
                failed.lease_until,
                failed.sent_at
            ),
            (OutboxStatus::Failed, 1, None, None)
        );
        assert_eq!(failed.last_error.as_deref(), Some("channel_not_found"));
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent, counts.failed), (0, 1, 1));
        let far = next + Duration::days(1);
        assert!(
            store
                .claim_outbox(far, far + Duration::seconds(30), 10)
                .await
                .unwrap()
                .is_empty(),
            "finished rows are never claimed"
        );
    }

    pub async fn a_late_report_does_not_reopen_a_finished_row(store: Arc<dyn Store>) {
        // A worker's lease ran out mid-send; another worker took the row and
        // delivered it. The first worker's late verdict changes nothing.
        let now = test_now();
        let id = store
            .enqueue(&message(None, None, now))
            .await
            .unwrap()
            .unwrap();
        store
            .claim_outbox(now, now + Duration::seconds(30), 1)
            .await
            .unwrap();
        store.outbox_sent(id, now, "{}").await.unwrap();
        store
            .outbox_retry(id, now + Duration::minutes(1), "timeout")
            .await
            .unwrap();
        store.outbox_failed(id, now, "timeout").await.unwrap();
        let row = store.outbox_row(id).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.last_error),
            (OutboxStatus::Sent, 1, None)
        );
    }

    pub async fn a_batch_of_send_results_is_recorded_as_each_would_be_alone(store: Arc<dyn Store>) {
        let now = test_now();
        add(store.as_ref(), "U1").await;
        let prompt = store
            .record_checkin(&checkin("U1", now))
            .await
            .unwrap()
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(
                store
                    .enqueue(&message(None, None, now))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let lease = now + Duration::seconds(30);
        assert_eq!(store.claim_outbox(now, lease, 10).await.unwrap().len(), 4);
        // The last row was finished by another worker meanwhile: a late
        // retry or failure must not reopen it.
        store.outbox_sent(ids[3], now, "{}").await.unwrap();

        let next = now + Duration::minutes(1);
        store
            .outbox_record(&[
                OutboxResult::Sent {
                    id: ids[0],
                    at: now,
                    response: "{\"ts\":\"1.2\"}".into(),
                    checkin: Some(CheckinMessage {
                        checkin: prompt,
                        channel: "D1".into(),
                        ts: "1.2".into(),
                    }),
                },
                OutboxResult::Retry {
                    id: ids[1],
                    next_attempt: next,
                    error: "rate limited".into(),
                },
                OutboxResult::Failed {
                    id: ids[2],
                    error: "channel_not_found".into(),
                },
                OutboxResult::Failed {
                    id: ids[3],
                    error: "timeout".into(),
                },
            ])
            .await
            .unwrap();
        store.outbox_record(&[]).await.unwrap();

        let row = |id| {
            let store = store.clone();
            async move { store.outbox_row(id).await.unwrap().unwrap() }
        };
        let sent = row(ids[0]).await;
        assert_eq!(
            (sent.status, sent.attempts, sent.lease_until, sent.sent_at),
            (OutboxStatus::Sent, 1, None, Some(now))
        );
        assert_eq!(sent.response.as_deref(), Some("{\"ts\":\"1.2\"}"));
        let found = store.checkin_by_message("D1", "1.2").await.unwrap();
        assert_eq!(found.map(|c| c.id), Some(prompt), "where the prompt landed");
        let retried = row(ids[1]).await;
        assert_eq!(
            (
                retried.status,
                retried.attempts,
                retried.lease_until,
                retried.not_before,
                retried.last_error.as_deref()
            ),
            (OutboxStatus::Pending, 1, None, next, Some("rate limited"))
        );
        let failed = row(ids[2]).await;
        assert_eq!(
            (failed.status, failed.attempts, failed.last_error.as_deref()),
            (OutboxStatus::Failed, 1, Some("channel_not_found"))
        );
        let other = row(ids[3]).await;
        assert_eq!(
            (other.status, other.attempts, other.last_error),
            (OutboxStatus::Sent, 1, None)
        );
    }

    pub async fn send_slots_are_handed_out_once_from_now_and_after_a_pause(store: Arc<dyn Store>) {
        let step = std::time::Duration::from_millis(10);
        let now = test_now();
        assert_eq!(store.take_send_slots(now, 3, step).await.unwrap(), now);
        // The next three follow the first three, though asked at the same
        // instant.
        let next = store.take_send_slots(now, 3, step).await.unwrap();
        assert_eq!(next, now + Duration::milliseconds(30));
        // Later than every slot handed out: from now.
        let later = now + Duration::seconds(5);
        assert_eq!(store.take_send_slots(later, 1, step).await.unwrap(), later);
        // A pause: nothing before its end; an earlier pause changes nothing.
        let until = later + Duration::seconds(2);
        store.pause_sends(until).await.unwrap();
        store.pause_sends(later).await.unwrap();
        assert_eq!(store.take_send_slots(later, 1, step).await.unwrap(), until);
    }

    pub async fn a_channel_is_reserved_for_one_send_at_a_time_and_after_a_pause(
        store: Arc<dyn Store>,
    ) {
        let spacing = std::time::Duration::from_secs(1);
        let s = Duration::seconds(1);
        let now = test_now();
        let wanted = |list: &[(&str, DateTime<Utc>)]| -> Vec<(String, DateTime<Utc>)> {
            list.iter().map(|(k, at)| (k.to_string(), *at)).collect()
        };
        // Two keys, one of them twice in the batch: both granted, the
        // second busy until a second after its last instant.
        let refused = store
            .reserve_channels(
                &wanted(&[("post:C1", now), ("post:C2", now), ("post:C2", now + s / 2)]),
                spacing,
            )
            .await
            .unwrap();
        assert_eq!(refused, []);
        // Too soon for either: refused, each with when it is free.
        let mut refused = store
            .reserve_channels(
                &wanted(&[("post:C1", now + s / 2), ("post:C2", now + s)]),
                spacing,
            )
            .await
            .unwrap();
        refused.sort();
        assert_eq!(
            refused,
            [
                ("post:C1".to_owned(), now + s),
                ("post:C2".to_owned(), now + s + s / 2)
            ]
        );
        // At the instant it is free: granted; another kind in the same
        // channel is paced apart.
        let refused = store
            .reserve_channels(
                &wanted(&[("post:C1", now + s), ("update:C1", now)]),
                spacing,
            )
            .await
            .unwrap();
        assert_eq!(refused, []);
        // A pause holds it until its end; an earlier one changes nothing.
        store.pause_channel("post:C1", now + s * 30).await.unwrap();
        store.pause_channel("post:C1", now + s * 5).await.unwrap();
        let refused = store
            .reserve_channels(&wanted(&[("post:C1", now + s * 10)]), spacing)
            .await
            .unwrap();
        assert_eq!(refused, [("post:C1".to_owned(), now + s * 30)]);
        // Free long ago: pruned, and free all the same.
        assert_eq!(store.prune_channel_pace(now + s * 60, 10).await.unwrap(), 3);
        let refused = store
            .reserve_channels(&wanted(&[("post:C1", now + s * 30)]), spacing)
            .await
            .unwrap();
        assert_eq!(refused, []);
    }

    pub async fn concurrent_reservations_of_one_channel_grant_it_once(
        handles: Vec<Arc<dyn Store>>,
    ) {
        let spacing = std::time::Duration::from_secs(1);
        let now = test_now();
        let tries: Vec<_> = (0..40)
            .map(|i| {
                let store = handles[i % handles.len()].clone();
                // Each asks for the channel and one of its own.
                let wanted = vec![("post:C1".to_owned(), now), (format!("post:D{i}"), now)];
                tokio::spawn(async move { store.reserve_channels(&wanted, spacing).await.unwrap() })
            })
            .collect();
        let mut granted = 0;
        for attempt in tries {
            let refused = attempt.await.unwrap();
            assert!(
                refused.iter().all(|(key, _)| key == "post:C1"),
                "{refused:?}"
            );
            if refused.is_empty() {
                granted += 1;
            }
        }
        assert_eq!(granted, 1, "the channel granted once among 40");
    }

    pub async fn concurrent_takers_of_send_slots_never_share_one(handles: Vec<Arc<dyn Store>>) {
        let step = std::time::Duration::from_millis(1);
        let now = test_now();
        let takes: Vec<_> = (0..40)
            .map(|i| {
                let store = handles[i % handles.len()].clone();
                tokio::spawn(async move { store.take_send_slots(now, 5, step).await.unwrap() })
            })
            .collect();
        let mut firsts = Vec::new();
        for take in takes {
            firsts.push(take.await.unwrap());
        }
        firsts.sort();
        let expected: Vec<_> = (0..40)
            .map(|i| now + Duration::milliseconds(5 * i))
            .collect();
        assert_eq!(firsts, expected, "40 batches of 5 slots, back to back");
    }

    pub async fn concurrent_outbox_claimers_never_share_a_row(handles: Vec<Arc<dyn Store>>) {
        let now = test_now();
        for _ in 0..200 {
            handles[0].enqueue(&message(None, None, now)).await.unwrap();
        }
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let store = handles[i % handles.len()].clone();
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
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.unwrap());
        }
        let claimed = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!((claimed, all.len()), (200, 200));
    }

    // ---- privacy --------------------------------------------------------

    pub async fn forget_demo_removes_the_demo_answers_and_what_followed_them_only(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        let before = now - Duration::days(1);
        for id in ["U1", "U2"] {
            add(store.as_ref(), id).await;
        }
        let real = answer("U1", "2026-W40", "focus", "mixed");
        store
            .record_answer(&real, AnswerSource::Button, before)
            .await
            .unwrap();
        store
            .save_assessment(&assessment("U1", "insufficient-data", before))
            .await
            .unwrap();
        let demo = vec![
            answer("U1", "2026-W44", "focus", "mixed"),
            answer("U1", "2026-W44", "capacity", "yes"),
            answer("U1", "2026-W45", "focus", "mixed"),
            answer("U2", "2026-W44", "focus", "mixed"),
        ];
        assert_eq!(store.import_demo(&demo, now).await.unwrap().inserted, 4);
        assert_eq!(
            store.import_demo(&demo, now).await.unwrap().unchanged,
            4,
            "a second run adds nothing"
        );
        let sources: Vec<AnswerSource> = store
            .answers(Some(&pid("U1")))
            .await
            .unwrap()
            .iter()
            .map(|row| row.source)
            .collect();
        assert_eq!(
            sources,
            [
                AnswerSource::Button,
                AnswerSource::Demo,
                AnswerSource::Demo,
                AnswerSource::Demo
            ]
        );
        // Typed later: a real answer replacing a demo one, the assessment
        // and the nudge the demo brought, and an unrelated message.
        let later = now + Duration::hours(1);
        let typed = answer("U1", "2026-W45", "focus", "deciding");
        store
            .record_answer(&typed, AnswerSource::Text, later)
            .await
            .unwrap();
        store
            .save_assessment(&assessment("U1", "sustained", later))
            .await
            .unwrap();
        store.record_nudge(&nudge("U1", "2026-W47")).await.unwrap();
        store
            .enqueue(&message(Some("nudge:U1:2026-W47"), Some("U1"), now))
            .await
            .unwrap();
        store
            .enqueue(&message(Some("checkin:U1:1"), Some("U1"), now))
            .await
            .unwrap();

        assert_eq!(
            store.forget_demo(&pid("U1")).await.unwrap(),
            DemoForgetReport {
                answers: 2,
                assessments: 1,
                nudges: 1,
                outbox: 1,
            }
        );
        let left: Vec<Answer> = store
            .answers(Some(&pid("U1")))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.answer)
            .collect();
        assert_eq!(left, [real, typed]);
        assert_eq!(
            store
                .latest_assessment(&pid("U1"))
                .await
                .unwrap()
                .unwrap()
                .state,
            "insufficient-data"
        );
        assert!(store.nudges(&pid("U1")).await.unwrap().is_empty());
        assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        assert_eq!(
            store.answers(Some(&pid("U2"))).await.unwrap().len(),
            1,
            "another person's demo stays"
        );
        assert_eq!(
            store.forget_demo(&pid("U1")).await.unwrap(),
            DemoForgetReport::default()
        );
    }

    pub async fn forget_removes_every_row_of_one_person_and_nothing_of_another(
        store: Arc<dyn Store>,
    ) {
        let now = test_now();
        for id in ["U1", "U2"] {
            add(store.as_ref(), id).await;
            for (question, option) in [("focus", "mixed"), ("capacity", "yes")] {
                store
                    .record_answer(
                        &answer(id, "2026-W47", question, option),
                        AnswerSource::Button,
                        now,
                    )
                    .await
                    .unwrap();
            }
            store
                .claim_run(&run(id, "weekly-checkin", now), now)
                .await
                .unwrap();
            store.record_checkin(&checkin(id, now)).await.unwrap();
            store
                .save_assessment(&assessment(id, "building", now))
                .await
                .unwrap();
            store.record_nudge(&nudge(id, "2026-W47")).await.unwrap();
            store.enqueue(&message(None, Some(id), now)).await.unwrap();
            // A click's id names its person.
            let key = action_seen_key(&pid(id), "1763568360.111111");
            assert!(store.mark_seen(&key, now).await.unwrap());
        }
        store.enqueue(&message(None, None, now)).await.unwrap();
        assert!(store.mark_seen("event:Ev1", now).await.unwrap());

        let report = store.forget(&pid("U1")).await.unwrap();
        assert_eq!(
            report,
            ForgetReport {
                people: 1,
                answers: 2,
                checkins: 1,
                schedule_runs: 1,
                assessments: 1,
                nudges: 1,
                outbox: 1,
                seen_events: 1,
            }
        );
        assert_eq!(report.total(), 9);
        let u1_click = action_seen_key(&pid("U1"), "1763568360.111111");
        let u2_click = action_seen_key(&pid("U2"), "1763568360.111111");
        assert!(
            store.mark_seen(&u1_click, now).await.unwrap(),
            "U1's click id went"
        );
        store.unmark_seen(&u1_click).await.unwrap();
        assert!(
            !store.mark_seen(&u2_click, now).await.unwrap(),
            "U2's stays"
        );
        assert!(!store.mark_seen("event:Ev1", now).await.unwrap());
        assert!(store.person(&pid("U1")).await.unwrap().is_none());
        assert!(store.answers(Some(&pid("U1"))).await.unwrap().is_empty());
        assert!(store.nudges(&pid("U1")).await.unwrap().is_empty());
        assert!(store.latest_assessment(&pid("U1")).await.unwrap().is_none());
        assert_eq!(
            store.last_run(&pid("U1"), "weekly-checkin").await.unwrap(),
            None
        );
        assert!(
            store.record_checkin(&checkin("U1", now)).await.is_err(),
            "unknown again"
        );

        assert!(store.person(&pid("U2")).await.unwrap().is_some());
        assert_eq!(store.answers(None).await.unwrap().len(), 2);
        assert_eq!(store.nudges(&pid("U2")).await.unwrap().len(), 1);
        assert!(store.latest_assessment(&pid("U2")).await.unwrap().is_some());
        assert_eq!(
            store.last_run(&pid("U2"), "weekly-checkin").await.unwrap(),
            Some(now)
        );
        assert_eq!(
            store.record_checkin(&checkin("U2", now)).await.unwrap(),
            None
        );
        assert_eq!(
            store.outbox_counts().await.unwrap().pending,
            2,
            "U2's message and the one about nobody"
        );
        assert_eq!(
            store.forget(&pid("U1")).await.unwrap(),
            ForgetReport::default()
        );
    }

    // ---- opening ----------------------------------------------------------

    pub async fn data_survives_closing_and_reopening(db: &TestDb) {
        let store = db.open().await;
        add(store.as_ref(), "U1").await;
        store
            .record_answer(
                &answer("U1", "2026-W47", "focus", "mixed"),
                AnswerSource::Button,
                test_now(),
            )
            .await
            .unwrap();
        let id = store.enqueue(&message(Some("k"), None, test_now())).await;
        let id = id.unwrap().unwrap();
        let answers = store.answers(None).await.unwrap();
        drop(store);

        // Opening again runs the migrations again: a no-op.
        let store = db.open().await;
        assert_eq!(store.answers(None).await.unwrap(), answers);
        assert!(store.person(&pid("U1")).await.unwrap().is_some());
        assert!(store.outbox_row(id).await.unwrap().is_some());
        assert_eq!(
            store
                .enqueue(&message(Some("k"), None, test_now()))
                .await
                .unwrap(),
            None
        );
    }

    pub async fn concurrent_first_opens_all_succeed(db: &TestDb) {
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { nudged::store::open(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
    }

    // ---- inbound writes arriving together -----------------------------------

    /// Many clicks arriving together are each stored and acknowledged, a
    /// click for an unknown person among them is refused alone with the
    /// error it gets on its own, and a click replayed among them counts
    /// once (whichever of the two commits first).
    pub async fn clicks_committed_together_succeed_or_fail_each_on_its_own(store: Arc<dyn Store>) {
        {
            for i in 0..30 {
                add(store.as_ref(), &format!("U{i}")).await;
            }
            // Every third click is by nobody; the last ten replay the first
            // ten's ids.
            let mut writes: Vec<InboundWrite> = (0..30)
                .map(|i| match i % 3 {
                    2 => keyed_click(&format!("X{i}"), &format!("action:X{i}")),
                    _ => keyed_click(&format!("U{i}"), &format!("action:U{i}")),
                })
                .collect();
            writes.extend(writes[..10].to_vec());
            let outcomes = all_at_once(&store, writes).await;
            let (firsts, replays) = outcomes.split_at(30);
            for (i, outcome) in firsts.iter().enumerate() {
                // The replays race the first ten: of each pair, whichever
                // commits first counts, the other is a duplicate.
                let replay = replays.get(i);
                match (outcome, replay) {
                    (Err(StoreError::NotFound(_)), None) if i % 3 == 2 => {}
                    (Err(StoreError::NotFound(_)), Some(Err(StoreError::NotFound(_))))
                        if i % 3 == 2 => {}
                    (Ok(InboundOutcome::Recorded { changed: 1, .. }), None) if i % 3 != 2 => {}
                    (
                        Ok(InboundOutcome::Recorded { changed: 1, .. }),
                        Some(Ok(InboundOutcome::Duplicate)),
                    )
                    | (
                        Ok(InboundOutcome::Duplicate),
                        Some(Ok(InboundOutcome::Recorded { changed: 1, .. })),
                    ) if i % 3 != 2 => {}
                    other => panic!("write {i} and its replay: {other:?}"),
                }
            }
            assert_eq!(store.answers(None).await.unwrap().len(), 20);
            assert_eq!(store.outbox_counts().await.unwrap().pending, 20);
        }
    }

    /// Clicks arriving together that touch one answer, or repeat each
    /// other's id, count as they would one after another: each click on a
    /// new option changes the answer, a replayed id is a duplicate, and a
    /// reply queued with answers goes out once per write.
    pub async fn clicks_together_on_one_answer_count_as_one_after_another(store: Arc<dyn Store>) {
        const ONE: InboundOutcome = InboundOutcome::Recorded {
            changed: 1,
            unchanged: 0,
        };
        {
            let people: Vec<String> = (0..10).map(|i| format!("U{i}")).collect();
            for id in &people {
                add(store.as_ref(), id).await;
            }
            let click = |id: &str, key: &str, option: &str| InboundWrite {
                answers: vec![answer(id, "2026-W47", "focus", option)],
                ..keyed_click(id, key)
            };
            let mut writes: Vec<InboundWrite> = Vec::new();
            for id in &people {
                writes.push(click(id, &format!("action:{id}:1"), "deciding"));
                writes.push(click(id, &format!("action:{id}:2"), "shipping"));
                writes.push(click(id, &format!("action:{id}:1"), "deciding"));
                // No id, a reply queued whatever the answers do.
                writes.push(InboundWrite {
                    always: vec![NewOutbox {
                        dedupe_key: Some(format!("reply:{id}")),
                        ..prompt(id, test_now())
                    }],
                    ..InboundWrite::answers(
                        vec![answer(id, "2026-W47", "load", "low")],
                        AnswerSource::Text,
                    )
                });
            }
            let outcomes: Vec<InboundOutcome> = all_at_once(&store, writes)
                .await
                .into_iter()
                .map(|outcome| outcome.unwrap())
                .collect();
            for (person, outcomes) in people.iter().zip(outcomes.chunks(4)) {
                let [first, second, replay, reply] = outcomes else {
                    unreachable!()
                };
                // Whichever of a click and its replay is applied first counts.
                let pair = [*first, *replay];
                assert!(
                    pair == [ONE, InboundOutcome::Duplicate]
                        || pair == [InboundOutcome::Duplicate, ONE],
                    "{person}: a click and its replay: {pair:?}"
                );
                assert_eq!(*second, ONE, "{person}: the other option");
                assert_eq!(*reply, ONE, "{person}: the reply's answer");
            }
            assert_eq!(store.answers(None).await.unwrap().len(), 20);
            // One redraw per person (its dedupe key), one reply each.
            assert_eq!(store.outbox_counts().await.unwrap().pending, 20);
        }
    }
}

/// Behaviours whose set-up needs SQLite itself.
mod on_sqlite_only {
    use nudged::store::sqlite::SqliteStore;
    use sqlx::Row;

    use super::*;

    /// A second, SQLite-typed handle on the same file, for tampering.
    async fn raw(db: &TestDb) -> SqliteStore {
        SqliteStore::open(&db.url).await.unwrap()
    }

    async fn exec(db: &SqliteStore, sql: &'static str) {
        sqlx::query(sql).execute(db.pool()).await.unwrap();
    }

    #[tokio::test]
    async fn an_unknown_stored_zone_reads_as_none() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        let raw = raw(&db).await;
        within_time(contract::an_unknown_stored_zone_reads_as_none(
            store,
            || {
                exec(
                    &raw,
                    "UPDATE people SET tz = 'Mars/Olympus_Mons' WHERE id = 'U1'",
                )
            },
        ))
        .await;
    }

    #[tokio::test]
    async fn a_failing_import_leaves_nothing_behind() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        exec(
            &raw(&db).await,
            "CREATE TRIGGER refuse_u3 BEFORE INSERT ON answers WHEN NEW.person = 'U3' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await;
        within_time(contract::a_failing_import_leaves_nothing_behind(
            store, "U3",
        ))
        .await;
    }

    #[tokio::test]
    async fn a_failing_inbound_write_stores_nothing_not_even_its_key() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        let raw = raw(&db).await;
        exec(
            &raw,
            "CREATE TRIGGER refuse_reply BEFORE INSERT ON outbox \
             WHEN NEW.dedupe_key LIKE 'reply:%' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await;
        within_time(
            contract::a_failing_inbound_write_stores_nothing_not_even_its_key(store, || {
                exec(&raw, "DROP TRIGGER refuse_reply")
            }),
        )
        .await;
    }

    #[tokio::test]
    async fn unparsable_stored_values_are_reported_as_corrupt() {
        let db = TestDb::sqlite();
        let store = db.open().await;
        contract::add(store.as_ref(), "U1").await;
        store
            .import_answers(&contract::history("U1", 1), test_now())
            .await
            .unwrap();
        let id = store
            .enqueue(&nudged::store::NewOutbox {
                dedupe_key: None,
                coalesce_key: None,
                person: None,
                kind: "post".into(),
                channel: "D1".into(),
                payload: "{}".into(),
                not_before: test_now(),
                created_at: test_now(),
            })
            .await
            .unwrap()
            .unwrap();
        let raw = raw(&db).await;
        exec(&raw, "UPDATE answers SET week = 'soon'").await;
        exec(&raw, "UPDATE people SET created_at = 'yesterday'").await;
        exec(&raw, "UPDATE outbox SET status = 'lost'").await;
        let corrupt = |e: StoreError, table: &str| match e {
            StoreError::Corrupt { table: t, problem } => {
                assert_eq!(t, table, "{problem}");
                problem
            }
            other => panic!("expected corrupt {table}, got {other}"),
        };
        let problem = corrupt(store.answers(None).await.unwrap_err(), "answers");
        assert!(problem.contains("soon"), "{problem}");
        corrupt(
            store.person(&contract::pid("U1")).await.unwrap_err(),
            "people",
        );
        corrupt(store.people().await.unwrap_err(), "people");
        corrupt(store.outbox_row(id).await.unwrap_err(), "outbox");
        corrupt(store.outbox_counts().await.unwrap_err(), "outbox");
        let claimed = store
            .claim_outbox(test_now(), test_now() + Duration::seconds(30), 10)
            .await;
        assert!(claimed.unwrap().is_empty(), "a lost status is not pending");
    }

    #[tokio::test]
    async fn reopening_applies_no_migration_twice() {
        let db = TestDb::sqlite();
        let schema = async |raw: &SqliteStore| -> Vec<String> {
            sqlx::query("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
                .fetch_all(raw.pool())
                .await
                .unwrap()
                .iter()
                .map(|row| row.get("sql"))
                .collect()
        };
        let first = raw(&db).await;
        let before = schema(&first).await;
        first.pool().close().await;
        let again = raw(&db).await;
        assert_eq!(schema(&again).await, before);
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(again.pool())
                .await
                .unwrap();
        assert_eq!(
            applied,
            [
                (1, true),
                (2, true),
                (3, true),
                (4, true),
                (5, true),
                (7, true),
                (8, true),
                (9, true)
            ]
        );
    }

    #[tokio::test]
    async fn a_store_whose_applied_migration_was_edited_refuses_to_open() {
        let db = TestDb::sqlite();
        exec(
            &raw(&db).await,
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
        )
        .await;
        let err = store::open(&db.url).await.err().unwrap();
        assert!(matches!(err, StoreError::Migrate(_)), "{err}");
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode_with_foreign_keys_on() {
        let db = TestDb::sqlite();
        let raw = raw(&db).await;
        let mut conn = raw.pool().acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), foreign_keys, synchronous), ("wal", 1, 1));
    }

    #[tokio::test]
    async fn only_a_sqlite_file_url_is_accepted() {
        for url in [
            "mysql://db/nudged",
            "sqlite::memory:",
            "sqlite://",
            "sqlite://nudged.db?mode=rwc",
        ] {
            let err = store::open(url).await.err().unwrap();
            assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{url}: {err}");
        }
    }
}

/// Behaviours whose set-up needs PostgreSQL itself, and several replicas on
/// one database.
mod on_postgres_only {
    use chrono::{DateTime, Utc};
    use nudged::domain::PersonId;
    use nudged::store::postgres::PgStore;
    use nudged::store::{
        AnswerSource, InboundOutcome, InboundWrite, NewOutbox, OutboxStatus, ScheduleRun,
        StorageOptions,
    };

    use super::*;
    use crate::helpers::{HISTORY, TestEnv};

    /// A fresh database, or a return from the test when PostgreSQL is
    /// neither installed nor required.
    macro_rules! postgres_db {
        () => {
            match TestDb::postgres().await {
                Some(db) => db,
                None => return,
            }
        };
    }

    /// A second, PostgreSQL-typed handle on the same database, for tampering.
    async fn raw(db: &TestDb) -> PgStore {
        PgStore::open(&db.url, &StorageOptions::default())
            .await
            .unwrap()
    }

    async fn exec(db: &PgStore, sql: &'static str) {
        sqlx::raw_sql(sql).execute(db.pool()).await.unwrap();
    }

    #[tokio::test]
    async fn an_unknown_stored_zone_reads_as_none() {
        let db = postgres_db!();
        let store = db.open().await;
        let raw = raw(&db).await;
        within_time(contract::an_unknown_stored_zone_reads_as_none(
            store,
            || {
                exec(
                    &raw,
                    "UPDATE people SET tz = 'Mars/Olympus_Mons' WHERE id = 'U1'",
                )
            },
        ))
        .await;
    }

    #[tokio::test]
    async fn a_failing_import_leaves_nothing_behind() {
        let db = postgres_db!();
        let store = db.open().await;
        exec(
            &raw(&db).await,
            "CREATE FUNCTION refuse_u3() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
             CREATE TRIGGER refuse_u3 BEFORE INSERT ON answers \
               FOR EACH ROW WHEN (NEW.person = 'U3') EXECUTE FUNCTION refuse_u3();",
        )
        .await;
        within_time(contract::a_failing_import_leaves_nothing_behind(
            store, "U3",
        ))
        .await;
    }

    #[tokio::test]
    async fn a_failing_inbound_write_stores_nothing_not_even_its_key() {
        let db = postgres_db!();
        let store = db.open().await;
        let raw = raw(&db).await;
        exec(
            &raw,
            "CREATE FUNCTION refuse_reply() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
             CREATE TRIGGER refuse_reply BEFORE INSERT ON outbox \
               FOR EACH ROW WHEN (NEW.dedupe_key LIKE 'reply:%') EXECUTE FUNCTION refuse_reply();",
        )
        .await;
        within_time(
            contract::a_failing_inbound_write_stores_nothing_not_even_its_key(store, || {
                exec(&raw, "DROP TRIGGER refuse_reply ON outbox")
            }),
        )
        .await;
    }

    #[tokio::test]
    async fn unparsable_stored_values_are_reported_as_corrupt() {
        let db = postgres_db!();
        let store = db.open().await;
        contract::add(store.as_ref(), "U1").await;
        store
            .import_answers(&contract::history("U1", 1), test_now())
            .await
            .unwrap();
        let id = store
            .enqueue(&contract::prompt("U1", test_now()))
            .await
            .unwrap();
        let id = id.unwrap();
        let raw = raw(&db).await;
        exec(&raw, "UPDATE answers SET week = 'soon'").await;
        // Columns are typed here: the nearest to a wrong type is a number
        // that is no instant.
        exec(&raw, "UPDATE people SET created_at = 9223372036854775807").await;
        exec(&raw, "UPDATE outbox SET status = 'lost'").await;
        let corrupt = |e: StoreError, table: &str| match e {
            StoreError::Corrupt { table: t, problem } => {
                assert_eq!(t, table, "{problem}");
                problem
            }
            other => panic!("expected corrupt {table}, got {other}"),
        };
        let problem = corrupt(store.answers(None).await.unwrap_err(), "answers");
        assert!(problem.contains("soon"), "{problem}");
        let problem = corrupt(
            store.person(&contract::pid("U1")).await.unwrap_err(),
            "people",
        );
        assert!(problem.contains("created_at"), "{problem}");
        corrupt(store.people().await.unwrap_err(), "people");
        corrupt(store.outbox_row(id).await.unwrap_err(), "outbox");
        corrupt(store.outbox_counts().await.unwrap_err(), "outbox");
        let claimed = store
            .claim_outbox(test_now(), test_now() + Duration::seconds(30), 10)
            .await;
        assert!(claimed.unwrap().is_empty(), "a lost status is not pending");
    }

    #[tokio::test]
    async fn reopening_applies_no_migration_twice() {
        let db = postgres_db!();
        let schema = async |raw: &PgStore| -> Vec<(String, String, String)> {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 ORDER BY table_name, column_name",
            )
            .fetch_all(raw.pool())
            .await
            .unwrap()
        };
        let first = raw(&db).await;
        let before = schema(&first).await;
        assert!(before.len() > 40, "{before:?}");
        first.pool().close().await;
        let again = raw(&db).await;
        assert_eq!(schema(&again).await, before);
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(again.pool())
                .await
                .unwrap();
        assert_eq!(
            applied,
            [
                (1, true),
                (2, true),
                (3, true),
                (4, true),
                (5, true),
                (7, true),
                (8, true),
                (9, true)
            ]
        );
    }

    #[tokio::test]
    async fn a_store_whose_applied_migration_was_edited_refuses_to_open() {
        let db = postgres_db!();
        exec(
            &raw(&db).await,
            "UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 1",
        )
        .await;
        let err = store::open(&db.url).await.err().unwrap();
        assert!(matches!(err, StoreError::Migrate(_)), "{err}");
        // The failed opener's migration lock died with its connection: a
        // later opener is refused for the same reason, not left waiting.
        let err = within_time(store::open(&db.url)).await.err().unwrap();
        assert!(matches!(err, StoreError::Migrate(_)), "{err}");
    }

    #[tokio::test]
    async fn the_pool_is_sized_by_the_options() {
        let db = postgres_db!();
        let options = StorageOptions {
            max_connections: Some(3),
            connect_timeout: None,
        };
        let store = PgStore::open(&db.url, &options).await.unwrap();
        assert_eq!(store.pool().options().get_max_connections(), 3);
        let store = raw(&db).await;
        assert_eq!(store.pool().options().get_max_connections(), 10);
    }

    /// Needs no server: nothing listens on port 1.
    #[tokio::test]
    async fn an_unreachable_server_fails_in_time_and_never_shows_the_password() {
        let options = StorageOptions {
            max_connections: None,
            connect_timeout: Some(std::time::Duration::from_secs(2)),
        };
        for url in [
            "postgres://nudged:hunter2@127.0.0.1:1/nudged",
            "postgresql://nudged:hunter2@127.0.0.1:notaport/nudged",
            "postgres://127.0.0.1:1/nudged?password=hunter2&sslmode=sometimes",
            "mysql://nudged:hunter2@127.0.0.1/nudged",
        ] {
            let err = within_time(store::open_with(url, &options))
                .await
                .err()
                .unwrap();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("hunter2"), "{url}: {shown}");
        }
    }

    /// How long an outbox claim is leased for, as the daemon's worker does.
    const LEASE: Duration = Duration::seconds(60);

    /// An outbox worker of one replica: claims due rows at `at` and reports
    /// each sent, until none is left or after `batches` claims.
    async fn deliver(store: Arc<dyn Store>, at: DateTime<Utc>, batches: Option<usize>) -> Vec<i64> {
        let mut sent = Vec::new();
        for _ in 0..batches.unwrap_or(usize::MAX) {
            let batch = store.claim_outbox(at, at + LEASE, 7).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for row in batch {
                store
                    .outbox_sent(row.id, at, "{\"ok\":true}")
                    .await
                    .unwrap();
                sent.push(row.id);
            }
        }
        sent
    }

    /// Two replicas fan out the same occurrence to 1,000 people at once and
    /// deliver it together; one dies holding leased rows. Every person still
    /// gets exactly one prompt: claims and dedupe keys are unique rows, and
    /// the dead replica's rows are taken over once their lease has expired.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_send_one_prompt_per_person_and_survive_losing_one() {
        const PEOPLE: usize = 1000;
        let db = postgres_db!();
        within_time(async {
            let (a, b) = (db.open().await, db.open().await);
            let now = test_now();
            let people: Vec<String> = (0..PEOPLE).map(|i| format!("U{i:04}")).collect();
            for id in &people {
                contract::add(a.as_ref(), id).await;
            }

            // Both replicas' schedulers fire at once, in opposite orders.
            let fan_out = |store: Arc<dyn Store>, order: Vec<String>| {
                tokio::spawn(async move {
                    let mut prompts = 0;
                    for id in order {
                        let run = ScheduleRun {
                            person: PersonId::parse(&id).unwrap(),
                            schedule: "weekly-checkin".into(),
                            period: now,
                        };
                        if store.claim_run(&run, now).await.unwrap() {
                            let queued = store.enqueue(&contract::prompt(&id, now)).await.unwrap();
                            assert!(queued.is_some(), "{id}: claimed but already queued");
                            prompts += 1;
                        }
                    }
                    prompts
                })
            };
            let reversed = people.iter().rev().cloned().collect();
            let by_a = fan_out(a.clone(), people.clone());
            let by_b = fan_out(b.clone(), reversed);
            let (by_a, by_b) = (by_a.await.unwrap(), by_b.await.unwrap());
            assert_eq!(by_a + by_b, PEOPLE);
            assert_eq!(a.outbox_counts().await.unwrap().pending, PEOPLE as u64);

            // Replica A claims a batch and dies before reporting on it;
            // before that, its worker delivers a few batches alongside B's.
            let held = a.claim_outbox(now, now + LEASE, 10).await.unwrap();
            assert_eq!(held.len(), 10);
            let by_a = tokio::spawn(deliver(a.clone(), now, Some(5)));
            let by_b = tokio::spawn(deliver(b.clone(), now, None));
            let (by_a, by_b) = (by_a.await.unwrap(), by_b.await.unwrap());
            drop(a);
            assert_eq!(by_a.len() + by_b.len(), PEOPLE - held.len());
            let mut taken_over = deliver(b.clone(), now + LEASE, None).await;
            taken_over.sort_unstable();
            let held: Vec<i64> = held.iter().map(|r| r.id).collect();
            assert_eq!(taken_over, held, "the dead replica's rows, once each");

            let counts = b.outbox_counts().await.unwrap();
            assert_eq!((counts.sent, counts.pending), (PEOPLE as u64, 0));
            let mut prompted = Vec::new();
            for id in by_a.iter().chain(&by_b).chain(&taken_over) {
                let row = b.outbox_row(*id).await.unwrap().unwrap();
                assert_eq!((row.status, row.attempts), (OutboxStatus::Sent, 1));
                prompted.push(row.person.unwrap().as_str().to_owned());
            }
            prompted.sort_unstable();
            assert_eq!(prompted, people, "one prompt for each person");
        })
        .await;
    }

    /// The same click or event delivered to both replicas (Slack retries, a
    /// double click behind a load balancer) counts once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn clicks_and_events_at_either_replica_count_once() {
        let db = postgres_db!();
        within_time(async {
            let replicas = [db.open().await, db.open().await];
            contract::add(replicas[0].as_ref(), "U1").await;
            let click = InboundWrite {
                seen_key: Some("action:U1:1700000000.1".into()),
                on_change: Some(NewOutbox {
                    coalesce_key: Some("prompt:D1:1".into()),
                    ..contract::prompt("U1", test_now())
                }),
                ..InboundWrite::answers(
                    vec![contract::answer("U1", "2026-W47", "focus", "deciding")],
                    AnswerSource::Button,
                )
            };
            let tasks: Vec<_> = (0..40)
                .map(|i| {
                    let store = replicas[i % 2].clone();
                    let click = click.clone();
                    tokio::spawn(async move { store.record_inbound(&click, test_now()).await })
                })
                .collect();
            let (mut recorded, mut duplicates) = (0, 0);
            for task in tasks {
                match task.await.unwrap().unwrap() {
                    InboundOutcome::Recorded {
                        changed: 1,
                        unchanged: 0,
                    } => recorded += 1,
                    InboundOutcome::Duplicate => duplicates += 1,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!((recorded, duplicates), (1, 39));
            let answers = replicas[1].answers(None).await.unwrap();
            assert_eq!(answers.len(), 1);
            assert_eq!(replicas[0].outbox_counts().await.unwrap().pending, 1);
        })
        .await;
    }

    /// Two replicas taking the same click ids in opposite orders, in
    /// batches, may wait on each other's keys until PostgreSQL aborts one
    /// transaction as a deadlock; its clicks are then applied again rather
    /// than failed. Either way every click is acknowledged and each id
    /// counts once.
    #[tokio::test]
    async fn replicas_batching_the_same_clicks_in_opposite_orders_store_each_once() {
        const CLICKS: usize = 40;
        const ROUNDS: usize = 10;
        let db = postgres_db!();
        within_time(async {
            let (a, b) = (db.open().await, db.open().await);
            let people: Vec<String> = (0..CLICKS).map(|i| format!("U{i}")).collect();
            for id in &people {
                contract::add(a.as_ref(), id).await;
            }
            // Each round's ids are new, so both replicas race for every one.
            for round in 0..ROUNDS {
                let clicks: Vec<InboundWrite> = people
                    .iter()
                    .map(|id| contract::keyed_click(id, &format!("action:{id}:{round}")))
                    .collect();
                let reversed = clicks.iter().rev().cloned().collect();
                let (by_a, mut by_b) = tokio::join!(
                    contract::all_at_once(&a, clicks),
                    contract::all_at_once(&b, reversed)
                );
                by_b.reverse();
                for (i, (by_a, by_b)) in by_a.into_iter().zip(by_b).enumerate() {
                    let recorded = [by_a, by_b]
                        .into_iter()
                        .map(|outcome| match outcome {
                            Ok(InboundOutcome::Recorded { .. }) => 1,
                            Ok(InboundOutcome::Duplicate) => 0,
                            Err(e) => panic!("round {round}, click {i} not acknowledged: {e}"),
                        })
                        .sum::<usize>();
                    assert_eq!(recorded, 1, "round {round}, click {i}");
                }
            }
            assert_eq!(a.answers(None).await.unwrap().len(), CLICKS);
        })
        .await;
    }

    /// The daemon's own commands, unchanged, on PostgreSQL: the URL (with
    /// its password) comes from the environment.
    #[test]
    fn the_cli_imports_and_exports_through_postgres() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let Some(db) = runtime.block_on(TestDb::postgres()) else {
            return;
        };
        let env = TestEnv::new();
        let history = env.file("history.csv", HISTORY);
        let nudged = |args: &[&str], url: Option<&str>| {
            let mut cmd = env.command(args);
            if let Some(url) = url {
                cmd.env("NUDGED__STORAGE__URL", url);
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "nudged {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        nudged(&["import", history.to_str().unwrap()], Some(&db.url));
        assert!(!env.db().exists(), "nothing went to SQLite");
        let exported = nudged(&["export"], Some(&db.url));
        assert_eq!(exported.lines().count(), HISTORY.lines().count());
        // The same history through SQLite prints the same, byte for byte.
        nudged(&["import", history.to_str().unwrap()], None);
        assert_eq!(exported, nudged(&["export"], None));
    }
}
