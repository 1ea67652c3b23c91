//! Target: the real router in process (`tower::ServiceExt::oneshot`), with
//! the `slack` platform, a manual clock and a real SQLite file: requests to
//! Slack's three endpoints with valid-looking and damaged payloads from
//! enrolled, unknown and invalid people, signed correctly or not, and with
//! declared and real sizes around the limit.
//!
//! Besides "never panics": a request that is not correctly signed is always
//! refused (401, or 413 when too large) and a signed one is answered 200 or
//! 400, never 5xx; `/pulse` always answers ephemerally; the challenge is
//! echoed; and afterwards every stored answer is a real option and the
//! store still answers `/healthz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use nudged::app::App;
use nudged::clock::{Clock, ManualClock};
use nudged::config::Settings;
use nudged::domain::{IsoWeek, OptionKey, PersonId, QuestionId, default_catalogue};
use nudged::http::verify::{RETRY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use nudged::http::{AppState, MAX_BODY_BYTES, router};
use nudged::render::ButtonValue;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::inputs::{damage, slack_text, slack_ts};
use crate::payloads::{command_form, envelope, interaction};
use crate::reply::{command_text, default_reply};
use crate::support::Target;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Thursday 2026-11-19 16:05 UTC: inside ISO week 2026-W47.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-19T16:05:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// People in the roster (enrolled), and one who is not.
const PEOPLE: &[&str] = &["U1", "U2", "U3"];

fn person() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => prop::sample::select(PEOPLE).prop_map(str::to_owned),
        1 => crate::inputs::user_id(),
    ]
}

/// A DM or thread reply from someone, or App Home opened; event ids from a
/// small set so that repeats are common.
fn deep_event() -> BoxedStrategy<Value> {
    let message = (
        person(),
        default_reply(),
        prop::sample::select(&["im", "im", "channel", "group"][..]),
        slack_ts(),
        prop::option::of(slack_ts()),
    )
        .prop_map(|(user, text, channel_type, ts, thread_ts)| {
            json!({
                "type": "message", "user": user, "text": text, "channel": "D0001",
                "channel_type": channel_type, "ts": ts, "thread_ts": thread_ts,
            })
        });
    let home = (person(), prop::sample::select(&["home", "messages"][..]))
        .prop_map(|(user, tab)| json!({ "type": "app_home_opened", "user": user, "tab": tab }));
    (0u32..200, prop_oneof![4 => message, 1 => home]).prop_map(|(id, event)| {
        json!({ "type": "event_callback", "event_id": format!("Ev{id}"), "event": event })
    })
    .boxed()
}

/// A click on a prompt button: by its own person or another, for this week
/// or another, on any option of the catalogue or one it does not have.
fn deep_click() -> BoxedStrategy<Value> {
    let catalogue = default_catalogue();
    let pairs: Vec<(String, String)> = catalogue
        .questions()
        .iter()
        .flat_map(|q| {
            q.options
                .iter()
                .map(|o| (q.id.to_string(), o.key.to_string()))
        })
        .chain([
            ("mood".to_owned(), "good".to_owned()),
            ("capacity".to_owned(), "6+".to_owned()),
        ])
        .collect();
    let value = (
        prop::sample::select(PEOPLE),
        -3i64..=3,
        prop::sample::select(pairs),
        prop::sample::select(&["weekly-checkin", "reminder", "gone"][..]),
    )
        .prop_map(|(owner, weeks, (question, option), schedule)| ButtonValue {
            week: IsoWeek::of(now().date_naive()).plus(weeks),
            question: QuestionId::parse(&question).unwrap(),
            option: OptionKey::parse(&option).unwrap(),
            person: PersonId::parse(owner).unwrap(),
            schedule: schedule.to_owned(),
        });
    // The button's own action id, as a prompt renders it, or another's; the
    // click's own timestamp, which makes it a new click or a replay.
    let action = (
        value,
        prop_oneof![8 => Just(None), 1 => Just(Some("answer"))],
        slack_ts(),
    )
        .prop_map(|(value, action_id, ts)| {
            let action_id = action_id.map_or_else(|| value.action_id(), str::to_owned);
            json!({ "action_id": action_id, "value": value.to_string(), "action_ts": ts })
        });
    (
        person(),
        prop::collection::vec(action, 1..4),
        prop::option::of(slack_ts()),
    )
        .prop_map(|(clicker, actions, ts)| {
            json!({
                "type": "block_actions", "user": { "id": clicker }, "actions": actions,
                "container": { "message_ts": ts, "channel_id": "D0001" },
            })
        })
        .boxed()
}

fn pulse_form() -> impl Strategy<Value = Vec<(String, String)>> {
    (person(), command_text()).prop_map(|(user, text)| {
        vec![
            ("command".to_owned(), "/pulse".to_owned()),
            ("text".to_owned(), text),
            ("user_id".to_owned(), user),
            ("channel_id".to_owned(), "D0001".to_owned()),
        ]
    })
}

fn form(pairs: &[(String, String)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs).unwrap().into_bytes()
}

/// The path and body of a request.
// Strategies are boxed here: the generated values' trees are otherwise
// nested so deep in their types that a debug build overflows a test
// thread's stack building them.
fn endpoint_and_body() -> BoxedStrategy<(&'static str, Vec<u8>)> {
    let json_bytes = |v: Value| serde_json::to_vec(&v).unwrap();
    let interaction_bytes = |v: Value| form(&[("payload".to_owned(), v.to_string())]);
    prop_oneof![
        3 => deep_event().prop_map(move |v| ("/slack/events", json_bytes(v))),
        1 => envelope().boxed().prop_map(move |v| ("/slack/events", json_bytes(v))),
        3 => deep_click().prop_map(move |v| ("/slack/interactions", interaction_bytes(v))),
        1 => interaction().boxed().prop_map(move |v| ("/slack/interactions", interaction_bytes(v))),
        3 => pulse_form().boxed().prop_map(|f| ("/slack/commands", form(&f))),
        1 => command_form().boxed().prop_map(|f| ("/slack/commands", form(&f))),
        1 => (
            prop::sample::select(&["/slack/events", "/slack/interactions", "/slack/commands"][..]),
            prop::collection::vec(any::<u8>(), 0..256),
        ),
    ]
    .boxed()
}

/// How the request is signed.
#[derive(Debug, Clone)]
enum Signing {
    Valid,
    /// Signed at this many seconds from the clock (refused past 5 minutes).
    Skewed(i64),
    WrongSecret,
    /// The body changed after signing.
    Tampered,
    Unsigned,
    Garbage(String, String),
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        30 => Just(Signing::Valid),
        1 => (-900i64..=900).prop_map(Signing::Skewed),
        1 => Just(Signing::WrongSecret),
        1 => Just(Signing::Tampered),
        1 => Just(Signing::Unsigned),
        1 => ("v0=[0-9a-f]{0,64}", "[0-9]{0,12}").prop_map(|(s, t)| Signing::Garbage(s, t)),
    ]
}

/// What `Content-Length` says.
#[derive(Debug, Clone)]
enum Declared {
    Nothing,
    Truth,
    Huge,
}

#[derive(Debug, Clone)]
struct Input {
    path: &'static str,
    body: Vec<u8>,
    signing: Signing,
    declared: Declared,
    content_type: &'static str,
    retry: Option<String>,
}

fn input() -> BoxedStrategy<Input> {
    (
        prop_oneof![
            40 => endpoint_and_body(),
            // Past the body limit, by one byte or more.
            1 => (prop::sample::select(&["/slack/events", "/slack/commands"][..]), 1usize..64)
                .prop_map(|(path, extra)| (path, vec![b'a'; MAX_BODY_BYTES + extra])),
        ],
        damage(),
        signing(),
        prop_oneof![12 => Just(Declared::Truth), 2 => Just(Declared::Nothing), 1 => Just(Declared::Huge)],
        prop::sample::select(&["application/json", "application/x-www-form-urlencoded", "text/plain", ""][..]),
        prop::option::of(prop_oneof!["[0-9]{1,3}", slack_text(2)]),
    )
        .prop_map(|((path, body), damage, signing, declared, content_type, retry)| Input {
            path,
            body: damage.apply(body),
            signing,
            declared,
            content_type,
            retry,
        })
        .boxed()
}

/// The daemon's HTTP side, in process.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    router: Router,
    clock: ManualClock,
    app: App,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read_to_string(repo.join("config.toml")).unwrap();
        let cut = shipped.find("[[people]]").unwrap();
        let roster: String = PEOPLE[..2]
            .iter()
            .map(|id| format!("\n[[people]]\nid = \"{id}\"\ntz = \"UTC\"\n"))
            .collect();
        let config = format!("{}{roster}", &shipped[..cut])
            .replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"");
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::create_dir(dir.path().join("schedules")).unwrap();
        for entry in std::fs::read_dir(repo.join("schedules")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path().join("schedules").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        let settings = Settings::load_with_env(
            &dir.path().join("config.toml"),
            [
                ("NUDGED__CHAT__PLATFORM", "slack"),
                ("NUDGED__CHAT__SLACK__BOT_TOKEN", "xoxb-fuzz"),
                ("NUDGED__CHAT__SLACK__SIGNING_SECRET", SIGNING_SECRET),
                // Nothing is delivered: the outbox only fills.
                ("NUDGED__CHAT__SLACK__API_BASE_URL", "http://127.0.0.1:9"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = ManualClock::new(now());
        let app = runtime
            .block_on(App::build(settings, Arc::new(clock.clone())))
            .unwrap()
            .without_delivery()
            .without_scheduler();
        let router = router(AppState {
            store: app.store(),
            clock: app.clock(),
            settings: app.settings(),
            metrics: None,
            assessor: app.assessor(),
            health: app.health(),
        });
        Self {
            runtime,
            router,
            clock,
            app,
            _dir: dir,
        }
    }

    fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body.to_vec())
        })
    }
}

fn request(input: &Input, now: i64) -> Request<Body> {
    let mut builder = Request::post(input.path);
    let (secret, ts, signed): (&str, i64, &[u8]) = match &input.signing {
        Signing::Skewed(by) => (SIGNING_SECRET, now + by, &input.body),
        Signing::WrongSecret => ("another secret", now, &input.body),
        Signing::Tampered => (SIGNING_SECRET, now, b"the body as first sent"),
        _ => (SIGNING_SECRET, now, &input.body),
    };
    match &input.signing {
        Signing::Unsigned => {}
        Signing::Garbage(signature, timestamp) => {
            builder = builder
                .header(SIGNATURE_HEADER, signature)
                .header(TIMESTAMP_HEADER, timestamp);
        }
        _ => {
            builder = builder
                .header(SIGNATURE_HEADER, sign(secret, ts, signed))
                .header(TIMESTAMP_HEADER, ts.to_string());
        }
    }
    if !input.content_type.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, input.content_type);
    }
    match input.declared {
        Declared::Nothing => {}
        Declared::Truth => builder = builder.header(header::CONTENT_LENGTH, input.body.len()),
        Declared::Huge => builder = builder.header(header::CONTENT_LENGTH, MAX_BODY_BYTES + 1),
    }
    if let Some(retry) = &input.retry
        && let Ok(value) = header::HeaderValue::from_str(retry)
    {
        builder = builder.header(RETRY_HEADER, value);
    }
    builder.body(Body::from(input.body.clone())).unwrap()
}

#[test]
fn the_router_refuses_or_answers_and_never_fails() {
    let target = Target {
        name: "router/slack-endpoints",
        regressions: "tests/fuzz/regressions/router.txt",
        per_mille: 100,
    };
    let daemon = Daemon::start();
    let now = daemon.clock.now().timestamp();
    // (endpoint, status) → how many: shows the inputs reach past the checks.
    let outcomes = Mutex::new(BTreeMap::<(&str, u16), u64>::new());
    target.run(input(), |input| {
        let (status, body) = daemon.send(request(&input, now));
        *outcomes
            .lock()
            .unwrap()
            .entry((input.path, status.as_u16()))
            .or_default() += 1;
        let shown = String::from_utf8_lossy(&body);
        let too_large =
            input.body.len() > MAX_BODY_BYTES || matches!(input.declared, Declared::Huge);
        let signed = match input.signing {
            Signing::Valid => true,
            Signing::Skewed(by) => by.abs() <= 300,
            _ => false,
        };
        // Both headers present and the timestamp within the window: checked
        // before the body's size, so an unsigned request is refused unread.
        let fresh = match &input.signing {
            Signing::Valid | Signing::WrongSecret | Signing::Tampered => true,
            Signing::Skewed(by) => by.abs() <= 300,
            Signing::Unsigned => false,
            Signing::Garbage(_, timestamp) => timestamp
                .parse::<i64>()
                .is_ok_and(|ts| ts.abs_diff(now) <= 300),
        };
        if !fresh {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", shown);
        } else if too_large {
            prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", shown);
        } else if !signed {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", shown);
        } else {
            prop_assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{} for a signed request: {}",
                status,
                shown
            );
        }
        if status == StatusCode::OK && input.path == "/slack/commands" {
            let reply: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(&reply["response_type"], "ephemeral");
            prop_assert!(reply["text"].as_str().is_some_and(|t| !t.is_empty()));
        }
        if status == StatusCode::OK
            && input.path == "/slack/events"
            && let Ok(sent) = serde_json::from_slice::<Value>(&input.body)
            && sent["type"] == "url_verification"
        {
            let reply: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(&reply["challenge"], &sent["challenge"]);
        }
        Ok(())
    });

    // Whatever was accepted, the store holds only real answers and still
    // answers.
    let catalogue = default_catalogue();
    let store = daemon.app.store();
    let answers = daemon.runtime.block_on(store.answers(None)).unwrap();
    for row in &answers {
        let a = &row.answer;
        let question = catalogue.get(a.question.as_str());
        assert!(
            question.is_some_and(|q| q.option(a.option.as_str()).is_some()),
            "{a:?}"
        );
    }
    let health = Request::get("/healthz").body(Body::empty()).unwrap();
    assert_eq!(daemon.send(health).0, StatusCode::OK);
    eprintln!(
        "fuzz router/slack-endpoints: {} answers stored; (endpoint, status) counts: {:?}",
        answers.len(),
        outcomes.into_inner().unwrap()
    );
}
