//! The Mattermost platform against a fake Mattermost server over loopback
//! (REST and WebSocket): prompts reach each person's DM with signed
//! buttons, a click is recorded and redraws the prompt, forged clicks and
//! commands change nothing, DM replies read from the WebSocket count once
//! across a reconnect, and a 429 is waited out.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nudged::chat::MattermostChat;
use nudged::chat::mattermost::Actions;
use nudged::clock::{Clock, ManualClock};
use nudged::config::Settings;
use nudged::outbox::{DeliveryOutcome, Worker};
use nudged::scheduler::Dispatcher;
use nudged::store::Store;
use serde_json::{Value, json};

use crate::fake_mattermost::{self, BOT_ID, BOT_TOKEN, FakeMattermost, Reply};
use crate::helpers::{TestEnv, WAIT, http, test_now};

const ACTION_SECRET: &str = "mm-action-secret-0123456789";
const COMMAND_TOKEN: &str = "mm-command-token";
const ALICE: &str = "alice000000000000000000000";
const BOB: &str = "bob00000000000000000000000";

/// nudged on the mattermost platform, in process, with a manual clock and
/// its WebSocket reader running; the outbox is delivered when a test says.
struct MmApp {
    _env: TestEnv,
    addr: std::net::SocketAddr,
    store: Arc<dyn Store>,
    clock: ManualClock,
    client: reqwest::Client,
    mm: FakeMattermost,
    settings: Arc<Settings>,
    health: nudged::health::Health,
    assessed: tokio::sync::broadcast::Receiver<nudged::service::readiness::Reassessed>,
    worker: Worker,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// `people` on the roster, with a roster zone when given one.
async fn spawn(people: &[(&str, Option<&str>)], now: DateTime<Utc>) -> MmApp {
    spawn_with_token(people, now, BOT_TOKEN).await
}

/// Like [`spawn`], with the bot token `token`.
async fn spawn_with_token(
    people: &[(&str, Option<&str>)],
    now: DateTime<Utc>,
    token: &str,
) -> MmApp {
    let client = http();
    let roster: String = people
        .iter()
        .map(|(id, tz)| match tz {
            Some(tz) => format!("\n[[people]]\nid = \"{id}\"\ntz = \"{tz}\"\n"),
            None => format!("\n[[people]]\nid = \"{id}\"\n"),
        })
        .collect();
    let env = TestEnv::with_config(|c| {
        let c = c.replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"");
        let cut = c.find("[[people]]").expect("shipped roster");
        format!("{}{roster}", &c[..cut])
    });
    let mm = FakeMattermost::start().await;
    let settings = Settings::load_with_env(
        &env.config(),
        [
            ("NUDGED__CHAT__PLATFORM", "mattermost"),
            ("NUDGED__CHAT__MATTERMOST__URL", mm.url.as_str()),
            ("NUDGED__CHAT__MATTERMOST__BOT_TOKEN", token),
            ("NUDGED__CHAT__MATTERMOST__ACTION_SECRET", ACTION_SECRET),
            ("NUDGED__CHAT__MATTERMOST__COMMAND_TOKEN", COMMAND_TOKEN),
            (
                "NUDGED__CHAT__MATTERMOST__PUBLIC_URL",
                "http://nudged.test:3000",
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config");
    let clock = ManualClock::new(now);
    let app = nudged::app::App::build(settings, Arc::new(clock.clone()))
        .await
        .expect("build app")
        .without_delivery()
        .without_scheduler();
    let settings = app.settings();
    let health = app.health();
    let (addr, store, assessed) = (app.local_addr(), app.store(), app.assessor().subscribe());
    let chat = MattermostChat::from_settings(&settings.chat.mattermost).expect("adapter");
    let worker = Worker::new(store.clone(), Arc::new(chat), settings.clone());
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    MmApp {
        _env: env,
        addr,
        store,
        clock,
        client,
        mm,
        settings,
        health,
        assessed,
        worker,
        shutdown,
        task,
    }
}

impl MmApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn deliver(&mut self) -> DeliveryOutcome {
        self.worker
            .deliver_due(self.clock.now())
            .await
            .expect("deliver")
    }

    /// A click on `action` (as nudged drew it) by `user`, as Mattermost
    /// sends it.
    async fn click(&self, user: &str, context: &Value) -> reqwest::Response {
        let body = json!({
            "user_id": user,
            "user_name": user,
            "channel_id": format!("dm{user}"),
            "post_id": "post0000000000000000000001",
            "trigger_id": "trigger",
            "type": "",
            "context": context,
        });
        self.client
            .post(self.url("/mattermost/actions"))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// `/pulse TEXT` from `user` with the command `token`.
    async fn command(&self, user: &str, text: &str, token: &str) -> reqwest::Response {
        let body = serde_urlencoded::to_string([
            ("channel_id", format!("dm{user}").as_str()),
            ("command", "/pulse"),
            ("text", text),
            ("token", token),
            ("trigger_id", "trigger"),
            ("user_id", user),
            ("user_name", user),
        ])
        .unwrap();
        self.client
            .post(self.url("/mattermost/commands"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Asks `user` this week's check-in through `/pulse now`, delivers it
    /// and returns the post as the fake received it.
    async fn prompt_for(&mut self, user: &str) -> Value {
        let response = self.command(user, "now", COMMAND_TOKEN).await;
        assert_eq!(response.status(), 200);
        assert_eq!(self.deliver().await.sent, 1);
        let post = self
            .mm
            .received()
            .into_iter()
            .find(|c| c.route == "POST /posts")
            .expect("the prompt was posted");
        post.body
    }

    async fn answers(&self) -> Vec<String> {
        self.store
            .answers(None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let a = r.answer;
                format!("{},{},{},{}", a.person, a.week, a.question, a.option)
            })
            .collect()
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("app stops")
            .unwrap()
            .unwrap();
    }
}

/// The context of button `option` of question number `question` in a
/// drawn post.
fn context(post: &Value, question: usize, option: usize) -> Value {
    post["props"]["attachments"][question]["actions"][option]["integration"]["context"].clone()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_scheduled_prompt_reaches_the_dm_in_the_profiles_zone_with_signed_buttons() {
    let start = at("2026-11-19T13:00:00Z");
    let mut app = spawn(&[(ALICE, None)], start).await;
    app.mm.add_user(ALICE, "Europe/Berlin");
    let chat = MattermostChat::from_settings(&app.settings.chat.mattermost).unwrap();
    let dispatcher =
        Dispatcher::new(app.settings.clone(), app.store.clone()).with_profiles(Arc::new(chat));
    tokio::time::timeout(WAIT, async {
        // 16:00 in Berlin is 15:00 UTC: nothing at 14:00, the prompt at 15:00.
        assert_eq!(
            dispatcher
                .tick(at("2026-11-19T14:00:00Z"))
                .await
                .unwrap()
                .sent,
            0
        );
        assert_eq!(
            dispatcher
                .tick(at("2026-11-19T15:00:00Z"))
                .await
                .unwrap()
                .sent,
            1
        );
        let person = app
            .store
            .person(&nudged::domain::PersonId::parse(ALICE).unwrap())
            .await
            .unwrap();
        assert_eq!(person.unwrap().tz, Some(chrono_tz::Europe::Berlin));
        app.clock.set(at("2026-11-19T15:00:00Z"));
        assert_eq!(app.deliver().await.sent, 1);

        // The WebSocket reader reads the bot's id too, at its own pace.
        let calls: Vec<_> = app
            .mm
            .received()
            .into_iter()
            .filter(|c| c.route != "GET /users/me")
            .collect();
        let routes: Vec<&str> = calls.iter().map(|c| c.route.as_str()).collect();
        assert_eq!(
            routes,
            [
                format!("GET /users/{ALICE}").as_str(),
                "POST /channels/direct",
                "POST /posts"
            ]
        );
        for call in &calls {
            assert_eq!(
                call.auth.as_deref(),
                Some(format!("Bearer {BOT_TOKEN}").as_str())
            );
        }
        assert_eq!(calls[1].body, json!([BOT_ID, ALICE]));
        let post = &calls[2].body;
        assert_eq!(post["channel_id"], format!("dm{ALICE}"));
        let message = post["message"].as_str().unwrap();
        assert!(
            message.starts_with("**Weekly check-in for 2026-W47: 0 of 7 answered**"),
            "{message}"
        );
        let attachments = post["props"]["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 7, "one per question");
        let button = &attachments[0]["actions"][0];
        assert_eq!(
            button["integration"]["url"],
            "http://nudged.test:3000/mattermost/actions"
        );
        let context = &button["integration"]["context"];
        assert_eq!(context["person"], ALICE);
        assert_eq!(context["week"], "2026-W47");
        assert_eq!(context["schedule"], "weekly-checkin");
        assert!(context["sig"].as_str().is_some_and(|s| s.len() == 64));
        // No secret is drawn into a post.
        assert!(!post.to_string().contains(ACTION_SECRET));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_click_records_the_answer_and_the_answer_redraws_the_prompt() {
    let mut app = spawn(&[(ALICE, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        let post = app.prompt_for(ALICE).await;
        // Question 1 (decisions), option 3 (6+).
        let response = app.click(ALICE, &context(&post, 0, 3)).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        let message = answer["update"]["message"].as_str().unwrap();
        assert!(message.contains("1 of 7 answered"), "{message}");
        let chosen = &answer["update"]["props"]["attachments"][0]["actions"][3];
        assert_eq!(chosen["style"], "primary");
        assert_eq!(
            app.answers().await,
            [format!("{ALICE},2026-W47,decisions,6+")]
        );
        // The same click again changes nothing and shows the same.
        let again: Value = app
            .click(ALICE, &context(&post, 0, 3))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["update"]["message"], message);
        assert_eq!(app.answers().await.len(), 1);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_forged_or_tampered_click_is_refused_and_changes_nothing() {
    let mut app = spawn(&[(ALICE, Some("UTC")), (BOB, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        let post = app.prompt_for(ALICE).await;
        let genuine = context(&post, 0, 3);

        let mut tampered = genuine.clone();
        tampered["option"] = json!("0");
        let mut other_person = genuine.clone();
        other_person["person"] = json!(BOB);
        let mut unsigned = genuine.clone();
        unsigned.as_object_mut().unwrap().remove("sig");
        let forged = {
            let fields = [BOB, "2026-W47", "decisions", "6+", "weekly-checkin"];
            let other_key =
                Actions::new("http://x", &"another-secret-0123456789".to_owned().into());
            json!({
                "person": BOB, "week": "2026-W47", "question": "decisions",
                "option": "6+", "schedule": "weekly-checkin", "sig": other_key.sign(&fields),
            })
        };
        for (what, context) in [
            ("a changed option", &tampered),
            ("another person", &other_person),
            ("no signature", &unsigned),
            ("signed with another key", &forged),
        ] {
            let response = app.click(ALICE, context).await;
            assert_eq!(response.status(), 403, "{what}");
        }
        // The signature is checked before anything else: a wrong one is
        // refused even where the rest could not be read.
        let response = app.click("not a user id!", &tampered).await;
        assert_eq!(response.status(), 403);
        let response = app
            .client
            .post(app.url("/mattermost/actions"))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        // A genuine context clicked by someone else is not theirs to answer.
        let response = app.click(BOB, &genuine).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert!(answer.get("update").is_none(), "{answer}");

        assert!(app.answers().await.is_empty(), "nothing was recorded");
        assert_eq!(
            app.deliver().await,
            DeliveryOutcome::default(),
            "nothing to send"
        );
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn the_nudge_is_answered_by_its_buttons_and_a_tampered_one_changes_nothing() {
    let mut app = spawn(&[(ALICE, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        let person = nudged::domain::PersonId::parse(ALICE).unwrap();
        let now = app.clock.now();
        let week = nudged::domain::IsoWeek::of(now.date_naive());
        app.store
            .import_answers(&crate::helpers::strong_history(ALICE, week, 16, "yes"), now)
            .await
            .unwrap();
        let row = app.store.person(&person).await.unwrap().unwrap();
        let assessed = nudged::service::readiness::reassess(
            &app.settings,
            app.store.as_ref(),
            &row,
            now,
            None,
        )
        .await
        .unwrap();
        assert!(assessed.nudged);
        app.deliver().await;
        let nudge = app
            .mm
            .received()
            .into_iter()
            .map(|c| c.body)
            .find(|b| {
                b["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Your role has grown"))
            })
            .expect("the nudge was posted");
        let buttons = nudge["props"]["attachments"][0]["actions"]
            .as_array()
            .unwrap();
        let context = |response: &str| {
            buttons
                .iter()
                .map(|b| b["integration"]["context"].clone())
                .find(|c| c["response"] == response)
                .expect("a button per answer")
        };
        let mut tampered = context("interested");
        tampered["response"] = json!("not-for-me");
        assert_eq!(app.click(ALICE, &tampered).await.status(), 403);
        let response = app.click(ALICE, &context("interested")).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        let chosen: Vec<&Value> = answer["update"]["props"]["attachments"][0]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["style"] == "primary")
            .collect();
        assert_eq!(chosen.len(), 1);
        assert_eq!(
            chosen[0]["integration"]["context"]["response"],
            "interested"
        );
        let nudges = app.store.nudges(&person).await.unwrap();
        assert_eq!(
            nudges[0].response,
            Some(nudged::domain::NudgeResponse::Interested)
        );
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn pulse_with_a_wrong_token_is_refused_and_the_right_one_answers_ephemerally() {
    let app = spawn(&[(ALICE, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        for token in ["", "mm-command-tokeN", "mm-command-token-and-more"] {
            let response = app.command(ALICE, "leave", token).await;
            assert_eq!(response.status(), 403, "{token:?}");
        }
        let person = app
            .store
            .person(&nudged::domain::PersonId::parse(ALICE).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(person.enrolled, "still enrolled");

        let response = app.command(ALICE, "leave", COMMAND_TOKEN).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["response_type"], "ephemeral");
        assert!(!answer["text"].as_str().unwrap().is_empty());
        let person = app
            .store
            .person(&nudged::domain::PersonId::parse(ALICE).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!person.enrolled, "left through /pulse leave");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_dm_reply_is_recorded_once_across_a_reconnect() {
    let mut app = spawn(&[(ALICE, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        let post = app.prompt_for(ALICE).await;
        let socket = app.mm.next_socket().await;
        socket.send(fake_mattermost::posted(
            ALICE,
            "replypost00000000000000001",
            "",
            "decisions=3-5",
        ));
        app.assessed.recv().await.unwrap();
        assert_eq!(
            app.answers().await,
            [format!("{ALICE},2026-W47,decisions,3-5")]
        );
        // The bot's own posts are not read as answers.
        socket.send(fake_mattermost::posted(
            BOT_ID,
            "botpost000000000000000001",
            "",
            "decisions=0",
        ));

        // Then Alice changes her answer with a click.
        assert_eq!(app.click(ALICE, &context(&post, 0, 3)).await.status(), 200);
        app.assessed.recv().await.unwrap();

        // The connection drops; on the next one the server delivers the
        // first post again, then a new one.
        socket.drop_connection();
        let socket = app.mm.next_socket().await;
        socket.send(fake_mattermost::posted(
            ALICE,
            "replypost00000000000000001",
            "",
            "decisions=3-5",
        ));
        socket.send(fake_mattermost::posted(
            ALICE,
            "replypost00000000000000002",
            "",
            "capacity=none",
        ));
        app.assessed.recv().await.unwrap();

        let mut answers = app.answers().await;
        answers.sort();
        assert_eq!(
            answers,
            [
                format!("{ALICE},2026-W47,capacity,none"),
                format!("{ALICE},2026-W47,decisions,6+"),
            ],
            "the repeated post did not undo the click"
        );
        // One reply per post, each in the post's thread in Alice's DM
        // (paced: one message to a channel at a time).
        for _ in 0..3 {
            app.clock.advance(Duration::minutes(1));
            app.deliver().await;
        }
        let replies: Vec<Value> = app
            .mm
            .received()
            .into_iter()
            .filter(|c| c.route == "POST /posts" && c.body["root_id"].is_string())
            .map(|c| c.body)
            .collect();
        let roots: Vec<&str> = replies
            .iter()
            .map(|r| r["root_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            roots,
            ["replypost00000000000000001", "replypost00000000000000002"]
        );
        for reply in &replies {
            assert_eq!(reply["channel_id"], format!("dm{ALICE}"));
        }
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_bot_token_shows_in_readyz() {
    let app = spawn_with_token(&[(ALICE, Some("UTC"))], test_now(), "a-revoked-token").await;
    tokio::time::timeout(WAIT, async {
        app.health
            .wait_for("mattermost", |w| w.last_fault.is_some())
            .await;
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        let body = response.text().await.unwrap();
        assert!(body.contains("mattermost"), "{body}");
        assert!(!body.contains("a-revoked-token"), "{body}");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let mut app = spawn(&[(ALICE, Some("UTC"))], test_now()).await;
    tokio::time::timeout(WAIT, async {
        // The reader has read the bot's id once it is connected: from
        // here on, every call is the delivery's.
        let _socket = app.mm.next_socket().await;
        app.mm.received();
        assert_eq!(app.command(ALICE, "now", COMMAND_TOKEN).await.status(), 200);
        let retried = DeliveryOutcome {
            retried: 1,
            ..DeliveryOutcome::default()
        };
        app.mm.script([Reply::TooManyRequests(7)]);
        assert_eq!(app.deliver().await, retried);
        app.clock.advance(Duration::seconds(6));
        assert_eq!(
            app.deliver().await,
            DeliveryOutcome::default(),
            "not before 7 s"
        );
        app.clock.advance(Duration::seconds(1));
        // Mattermost's own header when there is no Retry-After.
        app.mm
            .script([Reply::Ok, Reply::Ok, Reply::RateLimitReset(30)]);
        assert_eq!(app.deliver().await, retried);
        app.clock.advance(Duration::seconds(29));
        assert_eq!(
            app.deliver().await,
            DeliveryOutcome::default(),
            "not before 30 s"
        );
        app.clock.advance(Duration::seconds(1));
        let sent = DeliveryOutcome {
            sent: 1,
            ..DeliveryOutcome::default()
        };
        assert_eq!(app.deliver().await, sent);
        let calls: Vec<(String, bool)> = app
            .mm
            .received()
            .into_iter()
            .map(|c| (c.route, c.ok))
            .collect();
        let expected = [
            ("GET /users/me", false),
            ("GET /users/me", true),
            ("POST /channels/direct", true),
            ("POST /posts", false),
            ("POST /posts", true),
        ]
        .map(|(r, ok)| (r.to_owned(), ok));
        assert_eq!(calls, expected, "one call per attempt, the DM opened once");
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
