//! The team digest, end to end: a schedule file, people and answers in a
//! real SQLite store, the dispatcher ticked at chosen instants, and the
//! outbox delivered over loopback to the fake Slack, which records the
//! channel post.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nudged::config::Settings;
use nudged::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use nudged::outbox::Worker;
use nudged::scheduler::{Dispatcher, TickReport};
use nudged::service::readiness;
use nudged::store::{self, AnswerSource, NewPerson, Store};

use crate::fake_slack::{Call, FakeSlack};
use crate::helpers::{BOT_TOKEN, SIGNING_SECRET, TestEnv, WAIT, slack_chat, strong_history};

/// Friday 2026-11-20 15:00 in Berlin: the example schedule's run in 2026-W47.
fn friday() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T14:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn week() -> IsoWeek {
    "2026-W47".parse().unwrap()
}

/// Every option key the people below answered with.
const OPTIONS: [&str; 13] = [
    "6+", "4+", "several", "deciding", "hardly", "same", "yes", "0", "1-2", "2-3", "once", "mixed",
    "none",
];

struct Team {
    _env: TestEnv,
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    slack: FakeSlack,
    worker: Worker,
    dispatcher: Dispatcher,
}

impl Team {
    /// The example digest (with `min_group`) as the only schedule, posting
    /// to the fake Slack.
    async fn new(min_group: u32) -> Self {
        let env = TestEnv::new();
        let dir = env.config().with_file_name("schedules");
        for file in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(file.unwrap().path()).unwrap();
        }
        let example = std::fs::read_to_string(
            crate::helpers::repo().join("schedules/team-digest.toml.example"),
        )
        .unwrap();
        env.file(
            "schedules/team-digest.toml",
            &example
                .replace("C0123456789", "C0TEAM")
                .replace("min_group = 5", &format!("min_group = {min_group}")),
        );
        let slack = FakeSlack::start().await;
        let settings = Arc::new(
            Settings::load_with_env(
                &env.config(),
                [
                    ("NUDGED__CHAT__PLATFORM", "slack"),
                    ("NUDGED__CHAT__SLACK__BOT_TOKEN", BOT_TOKEN),
                    ("NUDGED__CHAT__SLACK__SIGNING_SECRET", SIGNING_SECRET),
                    ("NUDGED__CHAT__SLACK__API_BASE_URL", slack.base_url.as_str()),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            )
            .unwrap(),
        );
        let store = store::open(&settings.storage.url).await.unwrap();
        let worker = Worker::new(store.clone(), slack_chat(&slack), settings.clone());
        let dispatcher = Dispatcher::new(settings.clone(), store.clone());
        Self {
            dispatcher,
            _env: env,
            settings,
            store,
            slack,
            worker,
        }
    }

    /// Adds an enrolled person, with `answers` stored and assessed.
    async fn person(&self, id: &str, answers: &[Answer]) {
        let created = friday() - chrono::Duration::weeks(10);
        self.store
            .upsert_person(
                &NewPerson {
                    id: PersonId::parse(id).unwrap(),
                    name: Some(format!("Person {id}")),
                    tz: None,
                    enrolled: true,
                },
                created,
            )
            .await
            .unwrap();
        for answer in answers {
            self.store
                .record_answer(answer, AnswerSource::Button, created)
                .await
                .unwrap();
        }
        let row = self
            .store
            .person(&PersonId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        readiness::reassess(&self.settings, self.store.as_ref(), &row, friday(), None)
            .await
            .unwrap();
    }

    /// Ticks at `now`, delivers, and returns what reached the team channel
    /// (the people's own nudges go to their DMs).
    async fn tick(&mut self, now: DateTime<Utc>) -> (TickReport, Vec<Call>) {
        let report = self.dispatcher.tick(now).await.unwrap();
        self.worker.deliver_due(now).await.unwrap();
        let calls = self.slack.received();
        let to_team = calls
            .into_iter()
            .filter(|c| c.body["channel"] == "C0TEAM")
            .collect();
        (report, to_team)
    }

    /// A new dispatcher on the same store: a restart, or a second replica.
    fn restart(&mut self) {
        self.dispatcher = Dispatcher::new(self.settings.clone(), self.store.clone());
    }
}

/// Two weeks of middling answers for `id`, ending in this week.
fn middling(id: &str) -> Vec<Answer> {
    let mut out = Vec::new();
    for (w, decisions) in [(week().plus(-1), "0"), (week(), "1-2")] {
        for (q, o) in [
            ("decisions", decisions),
            ("stakeholders", "2-3"),
            ("tradeoffs", "once"),
            ("focus", "mixed"),
            ("capacity", "none"),
        ] {
            out.push(Answer {
                person: PersonId::parse(id).unwrap(),
                week: w,
                question: QuestionId::parse(q).unwrap(),
                option: OptionKey::parse(o).unwrap(),
            });
        }
    }
    out
}

fn text_of(call: &Call) -> String {
    format!("{} {}", call.body["text"], call.body["blocks"])
}

#[tokio::test]
async fn a_digest_posts_counts_and_a_median_and_never_a_person() {
    tokio::time::timeout(WAIT * 4, async {
        let mut team = Team::new(5).await;
        let ids = [
            "U0DIG01", "U0DIG02", "U0DIG03", "U0DIG04", "U0DIG05", "U0DIG06", "U0DIG07",
        ];
        for id in &ids[..3] {
            team.person(id, &strong_history(id, week(), 8, "yes")).await;
        }
        for id in &ids[3..6] {
            team.person(id, &middling(id)).await;
        }
        // Asked, never answered.
        team.person(ids[6], &[]).await;

        let (report, calls) = team.tick(friday()).await;
        assert_eq!(report.sent, 1);
        assert_eq!(calls.len(), 1, "{calls:?}");
        let call = &calls[0];
        assert_eq!(call.method, "chat.postMessage");
        assert_eq!(call.body["channel"], "C0TEAM");
        let text = text_of(call);
        assert!(text.contains("2026-W47: 6 of 7 answered"), "{text}");
        assert!(text.contains("Median weekly index:"), "{text}");
        assert!(text.contains("on the week before"), "{text}");
        assert!(!text.contains("+0.00"), "the median moved: {text}");
        assert!(text.contains("Readiness:"), "{text}");
        for id in ids {
            assert!(!text.contains(id), "{id} in {text}");
            assert!(!text.contains(&format!("Person {id}")), "{text}");
        }
        for option in OPTIONS {
            assert!(!text.contains(&format!("{option:?}")), "{option} in {text}");
            assert!(!text.contains(&format!(" {option} ")), "{option} in {text}");
        }

        // Not per person: the due index holds nothing for it.
        let due = team
            .store
            .due_rows(&PersonId::parse(ids[0]).unwrap())
            .await
            .unwrap();
        assert!(due.is_empty(), "{due:?}");

        // A minute later: nothing more, without gathering it again.
        let (report, calls) = team.tick(friday() + chrono::Duration::minutes(1)).await;
        assert_eq!(report, TickReport::default());
        assert!(calls.is_empty(), "{calls:?}");
        // From a second dispatcher (a restart, a replica): found queued.
        team.restart();
        let (report, calls) = team.tick(friday() + chrono::Duration::minutes(2)).await;
        assert_eq!((report.sent, report.passed), (0, 1));
        assert!(calls.is_empty(), "{calls:?}");
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_small_group_gets_only_too_small() {
    tokio::time::timeout(WAIT * 4, async {
        let mut team = Team::new(5).await;
        for id in ["U0SML01", "U0SML02", "U0SML03"] {
            team.person(id, &strong_history(id, week(), 8, "yes")).await;
        }
        // Before the run: nothing is due.
        let (report, calls) = team.tick(friday() - chrono::Duration::minutes(1)).await;
        assert_eq!((report.sent, calls.len()), (0, 0));

        let (report, calls) = team.tick(friday()).await;
        assert_eq!(report.sent, 1);
        assert_eq!(calls.len(), 1);
        let text = text_of(&calls[0]);
        assert!(text.contains("3 of 3 answered"), "{text}");
        assert!(text.contains("Too few answered"), "{text}");
        assert!(!text.contains("Median"), "{text}");
        assert!(!text.contains("Readiness"), "{text}");
        assert!(!text.contains("U0SML"), "{text}");

        team.restart();
        let (report, calls) = team.tick(friday() + chrono::Duration::hours(1)).await;
        assert_eq!((report.sent, calls.len()), (0, 0));
    })
    .await
    .expect("in time");
}
