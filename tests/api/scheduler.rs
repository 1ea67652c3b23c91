//! The scheduler on a real SQLite file, ticked at instants the tests
//! choose: prompts in each person's own time, once per period, through DST,
//! downtime and a second scheduler; reminders, trend posts and the nudge.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use nudged::config::Settings;
use nudged::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};
use nudged::scheduler::{Dispatcher, TickReport};
use nudged::store::{self, NewPerson, Store};
use serde_json::json;

use crate::fake_slack::FakeSlack;
use crate::helpers::{BOT_TOKEN, TestEnv, WAIT, spawn_app, strong_history};

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn pid(id: &str) -> PersonId {
    PersonId::parse(id).unwrap()
}

/// One message the scheduler put in the outbox.
#[derive(Debug, Clone)]
struct Sent {
    person: String,
    kind: &'static str,
    at: DateTime<Utc>,
    payload: serde_json::Value,
}

/// A store, the shipped schedules, and people added at `start`.
struct World {
    env: TestEnv,
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    /// The next outbox id not yet read by [`World::sent`].
    next_row: i64,
}

impl World {
    async fn new(people: &[(&str, Option<&str>)], start: DateTime<Utc>) -> Self {
        let env = TestEnv::new();
        let settings = Arc::new(Settings::load_with_env(&env.config(), []).unwrap());
        let store = store::open(&settings.storage.url).await.unwrap();
        let world = Self {
            env,
            settings,
            store,
            next_row: 1,
        };
        for (id, tz) in people {
            world.add(id, *tz, start).await;
        }
        world
    }

    async fn add(&self, id: &str, tz: Option<&str>, now: DateTime<Utc>) {
        self.store
            .upsert_person(
                &NewPerson {
                    id: pid(id),
                    name: Some(format!("{id} name")),
                    tz: tz.map(|tz| tz.parse().expect("a zone")),
                    enrolled: true,
                },
                now,
            )
            .await
            .unwrap();
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.settings.clone(), self.store.clone())
    }

    async fn tick(&self, now: DateTime<Utc>) -> TickReport {
        self.dispatcher().tick(now).await.unwrap()
    }

    /// Ticks every `step` from `from` (inclusive) to `to` (exclusive).
    async fn tick_through(&self, from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) {
        let mut now = from;
        while now < to {
            self.tick(now).await;
            now += step;
        }
    }

    /// The outbox rows written since the last call.
    async fn sent(&mut self) -> Vec<Sent> {
        let counts = self.store.outbox_counts().await.unwrap();
        let total = (counts.pending + counts.sent + counts.failed) as i64;
        let mut out = Vec::new();
        while self.next_row <= total {
            let row = self.store.outbox_row(self.next_row).await.unwrap().unwrap();
            self.next_row += 1;
            let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap();
            let text = payload["text"].as_str().unwrap_or_default();
            let kind = if text.starts_with("Weekly check-in") {
                "checkin"
            } else if text.starts_with("Reminder") {
                "reminder"
            } else if text.starts_with("Your trend") {
                "trend"
            } else if text.starts_with("Your role has grown") {
                "nudge"
            } else {
                "other"
            };
            out.push(Sent {
                person: row.person.map(|p| p.to_string()).unwrap_or_default(),
                kind,
                at: row.created_at,
                payload,
            });
        }
        out
    }
}

async fn answer(store: &Arc<dyn Store>, person: &str, week: &str, question: &str, option: &str) {
    store
        .record_answer(
            &Answer {
                person: pid(person),
                week: week.parse().unwrap(),
                question: QuestionId::parse(question).unwrap(),
                option: OptionKey::parse(option).unwrap(),
            },
            nudged::store::AnswerSource::Button,
            at("2026-11-19T16:10:00Z"),
        )
        .await
        .unwrap();
}

/// The local times at which `person` got messages of `kind`.
fn local_times(sent: &[Sent], person: &str, kind: &str, tz: Tz) -> Vec<String> {
    sent.iter()
        .filter(|s| s.person == person && s.kind == kind)
        .map(|s| s.at.with_timezone(&tz).format("%a %F %R %Z").to_string())
        .collect()
}

fn berlin() -> Tz {
    "Europe/Berlin".parse().unwrap()
}

fn new_york() -> Tz {
    "America/New_York".parse().unwrap()
}

#[tokio::test]
async fn each_person_is_asked_at_16_00_their_time_once_a_week_with_reminder_and_trend() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(
        &[
            ("U1", Some("Europe/Berlin")),
            ("U2", Some("America/New_York")),
        ],
        start,
    )
    .await;
    world
        .tick_through(start, at("2026-11-21T00:00:00Z"), Duration::hours(1))
        .await;
    answer(&world.store, "U1", "2026-W47", "decisions", "3-5").await;
    world
        .tick_through(
            at("2026-11-21T00:00:00Z"),
            at("2026-11-30T12:00:00Z"),
            Duration::hours(1),
        )
        .await;
    let sent = world.sent().await;
    assert_eq!(
        local_times(&sent, "U1", "checkin", berlin()),
        ["Thu 2026-11-19 16:00 CET", "Thu 2026-11-26 16:00 CET"]
    );
    assert_eq!(
        local_times(&sent, "U2", "checkin", new_york()),
        ["Thu 2026-11-19 16:00 EST", "Thu 2026-11-26 16:00 EST"]
    );
    // Nobody answered, so both are reminded the next morning.
    assert_eq!(
        local_times(&sent, "U1", "reminder", berlin()),
        ["Fri 2026-11-20 11:00 CET", "Fri 2026-11-27 11:00 CET"]
    );
    // Trend posts from the first Monday after the start (already the 16th
    // in both zones: the start is Sunday evening in New York), but only once
    // there is something to show: U1 answers in W47, U2 never does.
    assert_eq!(
        local_times(&sent, "U2", "trend", new_york()),
        Vec::<String>::new()
    );
    assert_eq!(
        local_times(&sent, "U1", "trend", berlin()),
        ["Mon 2026-11-23 09:00 CET", "Mon 2026-11-30 09:00 CET"]
    );
    // Every message goes to the person's own DM, and the prompt asks about
    // the week it falls in.
    for s in &sent {
        assert_eq!(s.payload["channel"], s.person.as_str());
    }
    let first = sent.iter().find(|s| s.kind == "checkin").unwrap();
    assert!(first.payload["text"].as_str().unwrap().contains("2026-W47"));
}

/// Thursday 16:00 local, once per ISO week, for both zones, ticking every
/// hour through a DST change of each.
async fn checkins_through(from: &str, to: &str, weeks: usize) {
    let start = at(from);
    let mut world = World::new(
        &[
            ("U1", Some("Europe/Berlin")),
            ("U2", Some("America/New_York")),
        ],
        start,
    )
    .await;
    world.tick_through(start, at(to), Duration::hours(1)).await;
    let sent = world.sent().await;
    for (person, tz) in [("U1", berlin()), ("U2", new_york())] {
        let times = local_times(&sent, person, "checkin", tz);
        assert_eq!(times.len(), weeks, "{person}: {times:?}");
        for t in &times {
            assert!(
                t.starts_with("Thu ") && t.contains(" 16:00 "),
                "{person}: {t}"
            );
        }
        let weeks_asked: std::collections::BTreeSet<IsoWeek> = sent
            .iter()
            .filter(|s| s.person == person && s.kind == "checkin")
            .map(|s| IsoWeek::of(s.at.with_timezone(&tz).date_naive()))
            .collect();
        assert_eq!(weeks_asked.len(), weeks, "{person}: one per week");
    }
}

#[tokio::test]
async fn autumn_dst_weeks_neither_skip_nor_double() {
    // Berlin falls back on 2026-10-25, New York on 2026-11-01.
    checkins_through("2026-10-19T00:00:00Z", "2026-11-09T00:00:00Z", 3).await;
}

#[tokio::test]
async fn spring_dst_weeks_neither_skip_nor_double() {
    // New York springs forward on 2027-03-14, Berlin on 2027-03-28.
    checkins_through("2027-03-08T00:00:00Z", "2027-04-05T00:00:00Z", 4).await;
}

#[tokio::test]
async fn without_a_roster_zone_the_slack_profile_zone_is_used_and_stored() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", None), ("U2", None), ("U3", Some("UTC"))], start).await;
    let slack = FakeSlack::start().await;
    slack.add_user("U1", Some("Asia/Tokyo"));
    // U2 is unknown to Slack (`user_not_found`): the fallback zone, UTC.
    let chat = nudged::chat::SlackChat::new(&slack.base_url, &BOT_TOKEN.to_owned().into()).unwrap();
    let dispatcher = world.dispatcher().with_profiles(Arc::new(chat));
    let mut now = start;
    while now < at("2026-11-20T00:00:00Z") {
        dispatcher.tick(now).await.unwrap();
        now += Duration::hours(1);
    }
    let sent = world.sent().await;
    let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
    assert_eq!(
        local_times(&sent, "U1", "checkin", tokyo),
        ["Thu 2026-11-19 16:00 JST"]
    );
    assert_eq!(
        local_times(&sent, "U2", "checkin", Tz::UTC),
        ["Thu 2026-11-19 16:00 UTC"]
    );
    let stored = world.store.person(&pid("U1")).await.unwrap().unwrap();
    assert_eq!(stored.tz, Some(chrono_tz::Asia::Tokyo));
    assert_eq!(stored.name.as_deref(), Some("U1 name"), "the name is kept");
    // Each profile was read once, not once a tick; U3's zone was known.
    let mut slack = slack;
    let lookups: Vec<String> = slack
        .received()
        .into_iter()
        .filter(|c| c.method == "users.info")
        .map(|c| c.body["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lookups, ["U1", "U2"]);
}

#[tokio::test]
async fn nothing_from_before_the_first_start_is_caught_up() {
    // First start half an hour after Thursday's 16:00 UTC check-in.
    let start = at("2026-11-19T16:30:00Z");
    let mut world = World::new(&[("U1", Some("UTC"))], start).await;
    let report = world.tick(start).await;
    assert_eq!(report, TickReport::default());
    assert!(world.sent().await.is_empty());
}

#[tokio::test]
async fn after_downtime_only_the_newest_run_within_the_grace_period_is_caught_up() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", Some("UTC"))], start).await;
    world.tick(at("2026-11-19T16:00:00Z")).await;
    assert_eq!(
        local_times(&world.sent().await, "U1", "checkin", Tz::UTC),
        ["Thu 2026-11-19 16:00 UTC"]
    );

    // Down from Thursday evening until Friday morning two weeks later: the
    // W48 check-in is skipped, W49's (18 h ago) is caught up, once.
    let back = at("2026-12-04T10:00:00Z");
    let report = world.tick(back).await;
    assert!(report.skipped >= 1, "{report:?}");
    world.tick(back + Duration::minutes(1)).await;
    let sent = world.sent().await;
    let caught_up: Vec<_> = sent.iter().filter(|s| s.kind == "checkin").collect();
    assert_eq!(caught_up.len(), 1, "{sent:?}");
    assert_eq!(caught_up[0].at, back);
    assert!(
        caught_up[0].payload["text"]
            .as_str()
            .unwrap()
            .contains("2026-W49")
    );

    // Down again for longer than the grace period: nothing is caught up.
    let report = world.tick(at("2026-12-11T17:00:00Z")).await;
    let sent = world.sent().await;
    assert!(local_times(&sent, "U1", "checkin", Tz::UTC).is_empty());
    assert!(report.skipped >= 1, "{report:?}");
}

#[tokio::test]
async fn two_schedulers_on_one_store_send_each_prompt_once() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[], start).await;
    for i in 0..50 {
        world.add(&format!("U{i:03}"), Some("UTC"), start).await;
    }
    // A second process: its own handle on the same file.
    let other_store = store::open(&world.settings.storage.url).await.unwrap();
    let other = Dispatcher::new(world.settings.clone(), other_store);
    let ours = world.dispatcher();
    let now = at("2026-11-19T16:00:30Z");
    let (a, b) = tokio::join!(ours.tick(now), other.tick(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 50, "{a:?} {b:?}");
    // And each ticks again, as a heartbeat would.
    let (a2, b2) = tokio::join!(ours.tick(now), other.tick(now + Duration::minutes(1)));
    assert_eq!(a2.unwrap().sent + b2.unwrap().sent, 0);

    let sent = world.sent().await;
    let mut per_person: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sent.iter().filter(|s| s.kind == "checkin") {
        *per_person.entry(&s.person).or_default() += 1;
    }
    assert_eq!(per_person.len(), 50);
    assert!(per_person.values().all(|n| *n == 1), "{per_person:?}");
}

#[tokio::test]
async fn a_fan_out_to_a_thousand_people_gives_exactly_one_prompt_each() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[], start).await;
    for i in 0..1000 {
        world.add(&format!("U{i:04}"), None, start).await;
    }
    let report = world.tick(at("2026-11-19T16:00:00Z")).await;
    assert_eq!(report.sent, 1000, "{report:?}");
    assert_eq!(world.tick(at("2026-11-19T16:01:00Z")).await.sent, 0);
    let sent = world.sent().await;
    let channels: std::collections::BTreeSet<_> = sent
        .iter()
        .filter(|s| s.kind == "checkin")
        .map(|s| s.payload["channel"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 1000);
    assert_eq!(channels.len(), 1000);
}

#[tokio::test]
async fn reminders_go_only_to_people_who_have_not_answered() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", Some("UTC")), ("U2", Some("UTC"))], start).await;
    world.tick(at("2026-11-19T16:00:00Z")).await;
    answer(&world.store, "U1", "2026-W47", "decisions", "3-5").await;
    let report = world.tick(at("2026-11-20T11:00:00Z")).await;
    assert_eq!((report.sent, report.passed), (1, 1), "{report:?}");
    let sent = world.sent().await;
    let reminded: Vec<_> = sent
        .iter()
        .filter(|s| s.kind == "reminder")
        .map(|s| s.person.as_str())
        .collect();
    assert_eq!(reminded, ["U2"]);
    // Its buttons answer the same week.
    let value = sent
        .iter()
        .find(|s| s.kind == "reminder")
        .unwrap()
        .payload["blocks"][2]["elements"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(value.starts_with("v1|2026-W47|"), "{value}");
}

#[tokio::test]
async fn paused_people_and_people_who_left_get_nothing() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(
        &[
            ("U1", Some("UTC")),
            ("U2", Some("UTC")),
            ("U3", Some("UTC")),
        ],
        start,
    )
    .await;
    world
        .store
        .set_paused_until(&pid("U1"), Some(at("2026-12-01T00:00:00Z")))
        .await
        .unwrap();
    world.store.set_enrolled(&pid("U2"), false).await.unwrap();
    world
        .tick_through(start, at("2026-12-04T00:00:00Z"), Duration::hours(1))
        .await;
    let sent = world.sent().await;
    let u1 = local_times(&sent, "U1", "checkin", Tz::UTC);
    assert_eq!(
        u1,
        ["Thu 2026-12-03 16:00 UTC"],
        "asked again once the pause ended"
    );
    assert!(sent.iter().all(|s| s.person != "U2"));
    assert_eq!(local_times(&sent, "U3", "checkin", Tz::UTC).len(), 3);
}

#[tokio::test]
async fn a_sustained_history_gets_one_nudge_with_its_reasons_and_never_a_second() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", Some("UTC")), ("U2", Some("UTC"))], start).await;
    world
        .store
        .import_answers(
            &strong_history("U1", "2026-W47".parse().unwrap(), 10, "yes"),
            start,
        )
        .await
        .unwrap();
    // Importing posts nothing by itself.
    world.tick(at("2026-11-22T00:00:00Z")).await;
    assert!(world.sent().await.iter().all(|s| s.kind != "nudge"));

    world.tick(at("2026-11-23T09:00:00Z")).await;
    let sent = world.sent().await;
    let nudges: Vec<_> = sent.iter().filter(|s| s.kind == "nudge").collect();
    assert_eq!(nudges.len(), 1, "{sent:?}");
    assert_eq!(nudges[0].person, "U1");
    let why = nudges[0].payload["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Why now*"))
        .unwrap();
    assert!(why.contains("same product"), "{why}");
    assert_eq!(local_times(&sent, "U1", "trend", Tz::UTC).len(), 1);
    assert!(local_times(&sent, "U2", "trend", Tz::UTC).is_empty());
    assert_eq!(world.store.nudges(&pid("U1")).await.unwrap().len(), 1);

    // Still strong next week: a trend post, no second nudge.
    world
        .store
        .import_answers(
            &strong_history("U1", "2026-W48".parse().unwrap(), 10, "yes"),
            start,
        )
        .await
        .unwrap();
    world.tick(at("2026-11-30T09:00:00Z")).await;
    let sent = world.sent().await;
    assert_eq!(local_times(&sent, "U1", "trend", Tz::UTC).len(), 1);
    assert!(sent.iter().all(|s| s.kind != "nudge"), "{sent:?}");
    let state = world
        .store
        .latest_assessment(&pid("U1"))
        .await
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state, "nudged");
}

#[tokio::test]
async fn a_nudge_held_for_capacity_is_released_by_the_capacity_click() {
    let app = spawn_app(&["U0001"]).await;
    let mut assessed = app.assessed.resubscribe();
    app.store
        .import_answers(
            &strong_history("U0001", "2026-W47".parse().unwrap(), 10, "none"),
            crate::helpers::test_now(),
        )
        .await
        .unwrap();
    let click = |option: &str| {
        json!({
            "type": "block_actions",
            "user": { "id": "U0001" },
            "container": { "type": "message", "message_ts": "1763568000.000100", "channel_id": "D0001" },
            "actions": [{
                "action_id": format!("capacity:{option}"),
                "value": format!("v1|2026-W47|capacity|{option}|U0001|weekly-checkin"),
                "action_ts": "1763568360.111111",
            }],
        })
    };
    tokio::time::timeout(WAIT, async {
        // Still no room: a changed answer is re-assessed, and held.
        let focus = json!({
            "type": "block_actions",
            "user": { "id": "U0001" },
            "actions": [{
                "action_id": "focus:mixed",
                "value": "v1|2026-W47|focus|mixed|U0001|weekly-checkin",
            }],
        });
        assert_eq!(app.interaction(&focus).await.status(), 200);
        let done = assessed.recv().await.unwrap();
        assert_eq!(done.state, nudged::model::State::WaitingForCapacity);
        assert!(!done.nudged);

        assert_eq!(app.interaction(&click("yes")).await.status(), 200);
        let done = assessed.recv().await.unwrap();
        assert_eq!(done.state, nudged::model::State::Sustained);
        assert!(done.nudged);
    })
    .await
    .expect("re-assessed in time");
    let nudges: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|p| {
            p["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Your role has grown"))
        })
        .collect();
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0]["channel"], "U0001");
    app.stop().await;
}

#[tokio::test]
async fn someone_who_moves_zone_is_asked_at_16_00_in_the_new_one() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", Some("America/New_York"))], start).await;
    world.tick(start).await;
    // On Tuesday their profile moves them to Berlin, five hours earlier
    // than what was due for them in New York.
    world
        .add("U1", Some("Europe/Berlin"), at("2026-11-17T09:00:00Z"))
        .await;
    world
        .tick_through(
            at("2026-11-17T09:00:00Z"),
            at("2026-11-20T00:00:00Z"),
            Duration::minutes(30),
        )
        .await;
    let sent = world.sent().await;
    assert_eq!(
        local_times(&sent, "U1", "checkin", berlin()),
        ["Thu 2026-11-19 16:00 CET"]
    );
}

#[tokio::test]
async fn a_changed_schedule_file_takes_effect_at_the_next_start() {
    let start = at("2026-11-16T00:00:00Z");
    let mut world = World::new(&[("U1", Some("UTC")), ("U2", Some("UTC"))], start).await;
    world.tick(start).await;
    // The check-in moves from Thursday 16:00 to Thursday 09:00, and the
    // reminder goes: the daemon restarts with the new files.
    let shipped = std::fs::read_to_string(
        world
            .env
            .config()
            .with_file_name("schedules/weekly-checkin.toml"),
    )
    .unwrap();
    world.env.file(
        "schedules/weekly-checkin.toml",
        &shipped.replace("cron = \"0 0 16 * * THU\"", "cron = \"0 0 9 * * THU\""),
    );
    std::fs::remove_file(world.env.config().with_file_name("schedules/reminder.toml")).unwrap();
    world.settings = Arc::new(Settings::load_with_env(&world.env.config(), []).unwrap());
    world
        .tick_through(
            at("2026-11-16T01:00:00Z"),
            at("2026-11-21T00:00:00Z"),
            Duration::hours(1),
        )
        .await;
    let sent = world.sent().await;
    for person in ["U1", "U2"] {
        assert_eq!(
            local_times(&sent, person, "checkin", Tz::UTC),
            ["Thu 2026-11-19 09:00 UTC"]
        );
        assert!(local_times(&sent, person, "reminder", Tz::UTC).is_empty());
    }
}
