//! Target: loading `config.toml` with `NUDGED__…` overrides
//! ([`Settings::load_with_env`]). Starts from the shipped config and sets
//! real keys to near-valid or random values of every TOML type, drops them,
//! adds unknown ones, replaces the question catalogue and the roster, and
//! sets environment overrides; the shipped schedules sit next to it.
//!
//! Besides "never panics": an error names its key (unless the file is not
//! TOML, or the schedule directory itself is missing) and never shows a
//! secret; a config that loads holds validated values, and the readiness
//! model runs with it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use nudged::config::Settings;
use nudged::domain::{Answer, IsoWeek, PersonId, default_catalogue};
use nudged::model::{History, SentNudge, assess};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use secrecy::ExposeSecret;
use toml::{Table, Value};

use crate::inputs::{slack_text, user_id};
use crate::support::Target;

/// Put in every secret this target sets; must never appear in an error.
const SECRET: &str = "s3cr3t-fuzz-7d1e";

/// Every key of the config file a person may set, as (table, key).
const KEYS: &[(&str, &str)] = &[
    ("server", "bind"),
    ("storage", "url"),
    ("storage", "max_connections"),
    ("storage", "connect_timeout_secs"),
    ("chat", "platform"),
    ("chat.slack", "bot_token"),
    ("chat.slack", "signing_secret"),
    ("chat.slack", "api_base_url"),
    ("chat.webhook", "url"),
    ("chat.webhook", "flavor"),
    ("schedules", "dir"),
    ("schedules", "grace_hours"),
    ("delivery", "per_channel_per_sec"),
    ("delivery", "global_per_sec"),
    ("delivery", "concurrency"),
    ("delivery", "lease_secs"),
    ("messages", "nudge_title"),
    ("messages", "nudge_body"),
    ("model", "weights"),
    ("model", "high"),
    ("model", "low"),
    ("model", "window"),
    ("model", "min_weeks"),
    ("model", "min_strong_weeks"),
    ("model", "recent_weeks"),
    ("model", "alpha"),
    ("model", "slope_floor"),
    ("model", "continuity_window"),
    ("model", "min_same_share"),
    ("model", "min_continuity_answers"),
    ("model", "cooldown_days"),
    ("model", "capacity_hold_weeks"),
    ("model", "min_answered"),
];

fn strings(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop::sample::select(values)
        .prop_map(|s| Value::String(s.replace("{SECRET}", SECRET)))
        .boxed()
}

/// Integers around the bounds every count and duration key has.
fn count() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(&[0i64, 1, 2, 3, 4, 5, 8, 16, 52, 64, 65, 90, 520, 521, -1][..]),
        1 => prop::sample::select(&[u32::MAX as i64, u32::MAX as i64 + 1, i64::MAX, i64::MIN][..]),
        1 => any::<i64>(),
        1 => 0i64..1000,
    ]
    .prop_map(Value::Integer)
    .boxed()
}

/// Numbers around the bounds of rates, shares and thresholds, including
/// ones too small or large to divide by.
fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(&[
            0.0, -0.0, 1.0, 0.5, 0.4, 0.6, 1.0000001, -0.02, 1000.0, 1000.0001, 1e-300, 5e-324,
            1e-20, 1e-10, f64::MIN_POSITIVE, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e300,
        ][..]).prop_map(Value::Float),
        2 => (-30i32..10).prop_map(|e| Value::Float(10f64.powi(e))),
        1 => any::<f64>().prop_map(Value::Float),
        1 => count(),
    ]
    .boxed()
}

/// A TOML value of any type, a few levels deep.
fn any_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        slack_text(3).prop_map(Value::String),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Table(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn question_ids() -> Vec<&'static str> {
    vec![
        "decisions",
        "stakeholders",
        "tradeoffs",
        "focus",
        "reversibility",
        "continuity",
        "capacity",
        "mood",
        "Decisions",
        "",
    ]
}

/// A value meant for `table.key`: of its type and near its bounds.
fn near_valid(table: &str, key: &str) -> BoxedStrategy<Value> {
    match (table, key) {
        ("server", "bind") => strings(&[
            "127.0.0.1:0",
            "0.0.0.0:3000",
            "[::1]:80",
            " 127.0.0.1:0 ",
            "localhost:3000",
            "127.0.0.1",
            "127.0.0.1:99999",
            ":3000",
            "",
        ]),
        ("storage", "url") => strings(&[
            "sqlite://data/nudged.db",
            "sqlite://",
            "sqlite:///tmp/x.db",
            " sqlite://a.db ",
            "postgres://u:{SECRET}@h/db",
            "mysql://u:{SECRET}@h/db",
            "mysql://h/db?password={SECRET}",
            "sqlite:relative",
            "",
        ]),
        ("chat", "platform") => strings(&["console", "slack", "webhook", "Slack", "irc", ""]),
        ("chat.slack", "bot_token" | "signing_secret") => {
            strings(&["xoxb-{SECRET}", "{SECRET}", "", "   "])
        }
        ("chat.slack", "api_base_url") => strings(&[
            "https://slack.com/api",
            "http://127.0.0.1:1/",
            "https://slack.com/api///",
            "ftp://slack.com",
            "slack.com/api",
            "",
            "https://",
        ]),
        ("chat.webhook", "url") => strings(&[
            "https://hooks.example/{SECRET}",
            "http://h/{SECRET}",
            "https:///{SECRET}",
            "https://h/ {SECRET}",
            "{SECRET}",
            "",
            "  ",
        ]),
        ("chat.webhook", "flavor") => strings(&[
            "slack",
            "mattermost",
            "rocketchat",
            "Mattermost",
            "teams",
            "",
        ]),
        ("schedules", "dir") => {
            strings(&["schedules", "schedules/", "./schedules", "missing", "", "."])
        }
        ("messages", _) => prop_oneof![
            strings(&[
                "Hi {name}",
                "{name}",
                "",
                "  ",
                "{",
                "}",
                "{nam}",
                "{{name}}",
                "{name",
                "é{name}é"
            ]),
            (0usize..2100).prop_map(|n| Value::String("x".repeat(n))),
            slack_text(6).prop_map(Value::String),
        ]
        .boxed(),
        ("model", "weights") => prop::collection::btree_map(
            prop::sample::select(question_ids()).prop_map(str::to_owned),
            number(),
            0..6,
        )
        .prop_map(|m| Value::Table(m.into_iter().collect()))
        .boxed(),
        ("delivery", "per_channel_per_sec" | "global_per_sec")
        | ("model", "high" | "low" | "alpha" | "slope_floor" | "min_same_share") => number(),
        _ => count(),
    }
}

/// The `[[questions]]` catalogue: the default one edited, or random.
fn questions() -> BoxedStrategy<Option<Value>> {
    let option = (
        prop_oneof![4 => prop::sample::select(&["none", "some", "yes", "0", "1-2", "6+", ""][..]).prop_map(str::to_owned), 1 => slack_text(2)],
        prop_oneof![3 => Just(None), 1 => slack_text(3).prop_map(Some)],
        number(),
    )
        .prop_map(|(key, label, score)| {
            let mut t = Table::new();
            t.insert("key".into(), Value::String(key));
            if let Some(label) = label {
                t.insert("label".into(), Value::String(label));
            }
            t.insert("score".into(), score);
            Value::Table(t)
        });
    let question = (
        prop::sample::select(question_ids()),
        prop_oneof![4 => Just("How?".to_owned()), 1 => slack_text(2)],
        prop::collection::vec(option, 0..4),
    )
        .prop_map(|(id, text, options)| {
            let mut t = Table::new();
            t.insert("id".into(), Value::String(id.to_owned()));
            t.insert("text".into(), Value::String(text));
            t.insert("options".into(), Value::Array(options));
            Value::Table(t)
        });
    let default = Value::try_from(
        default_catalogue()
            .questions()
            .iter()
            .map(|q| {
                let mut t = Table::new();
                t.insert("id".into(), Value::String(q.id.to_string()));
                t.insert("text".into(), Value::String(q.text.clone()));
                let options = q.options.iter().map(|o| {
                    let mut t = Table::new();
                    t.insert("key".into(), Value::String(o.key.to_string()));
                    t.insert("label".into(), Value::String(o.label.clone()));
                    t.insert("score".into(), Value::Float(o.score));
                    Value::Table(t)
                });
                t.insert("options".into(), Value::Array(options.collect()));
                Value::Table(t)
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    prop_oneof![
        6 => Just(None),
        2 => (Just(default), any::<prop::sample::Index>(), prop::option::of(question.clone()))
            .prop_map(|(default, at, replacement)| {
                let Value::Array(mut questions) = default else { unreachable!() };
                let at = at.index(questions.len());
                match replacement {
                    Some(q) => questions[at] = q,
                    None => {
                        questions.remove(at);
                    }
                }
                Some(Value::Array(questions))
            }),
        1 => prop::collection::vec(question, 0..4).prop_map(|q| Some(Value::Array(q))),
    ]
    .boxed()
}

/// The `[[people]]` roster.
fn people() -> BoxedStrategy<Value> {
    let person = (
        prop_oneof![4 => prop::sample::select(&["U1", "U2", "demo"][..]).prop_map(str::to_owned), 1 => user_id()],
        prop::option::of(slack_text(2)),
        prop::option::of(prop::sample::select(&["UTC", "Europe/Berlin", "europe/berlin", " UTC", "Mars/Base", ""][..])),
    )
        .prop_map(|(id, name, tz)| {
            let mut t = Table::new();
            t.insert("id".into(), Value::String(id));
            if let Some(name) = name {
                t.insert("name".into(), Value::String(name));
            }
            if let Some(tz) = tz {
                t.insert("tz".into(), Value::String(tz.to_owned()));
            }
            Value::Table(t)
        });
    prop::collection::vec(person, 0..4)
        .prop_map(Value::Array)
        .boxed()
}

/// What happens to one key.
#[derive(Debug, Clone)]
enum Edit {
    Remove,
    Set(Value),
}

/// A few keys of the config changed: most inputs differ from a valid
/// config in one or two places, so they get past the first check.
fn edits() -> impl Strategy<Value = Vec<(usize, Edit)>> {
    let edit = prop::sample::select((0..KEYS.len()).collect::<Vec<_>>()).prop_flat_map(|i| {
        let (table, key) = KEYS[i];
        let edit = prop_oneof![
            1 => Just(Edit::Remove),
            6 => near_valid(table, key).prop_map(Edit::Set),
            1 => any_value().prop_map(Edit::Set),
        ];
        (Just(i), edit)
    });
    prop::collection::vec(edit, 0..4)
}

/// `NUDGED__…` variables: real keys with string values (that is all the
/// environment holds), unknown keys and malformed names, and the secrets.
fn env() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(|(table, key)| {
            format!("NUDGED__{}__{}", table.replace('.', "__"), key).to_uppercase()
        }),
        1 => prop::sample::select(&[
            "NUDGED__SERVER__PORT", "NUDGED__", "NUDGED____X", "NUDGED__chat__platform",
            "NUDGED__CHAT", "NUDGED__MODEL__WEIGHTS__DECISIONS", "NUDGED__PEOPLE",
            "NUDGED_SERVER__BIND", "NUDGED__QUESTIONS",
        ][..]).prop_map(str::to_owned),
    ];
    let value = prop_oneof![
        3 => prop::sample::select(&[
            "0", "1", "-1", "64", "1000", "1e-300", "nan", "inf", "true", "slack", "webhook",
            "console", "127.0.0.1:0", "https://h/x", "", " ", "[1,2]", "4294967296",
            "18446744073709551616",
        ][..]).prop_map(str::to_owned),
        1 => slack_text(3),
    ];
    let secret = (
        prop::sample::select(
            &[
                "NUDGED__CHAT__SLACK__BOT_TOKEN",
                "NUDGED__CHAT__SLACK__SIGNING_SECRET",
                "NUDGED__CHAT__WEBHOOK__URL",
            ][..],
        ),
        prop::sample::select(
            &[
                "{SECRET}",
                "xoxb-{SECRET}",
                "https://h/{SECRET}",
                "https://h/ {SECRET}",
            ][..],
        ),
    )
        .prop_map(|(name, value)| (name.to_owned(), value.replace("{SECRET}", SECRET)));
    prop::collection::vec(prop_oneof![4 => (name, value), 1 => secret], 1..3)
}

/// The shipped config as a table.
fn shipped() -> Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

/// The table at dotted `path`, made if missing; `None` when something that
/// is not a table is in the way.
fn table_at<'t>(root: &'t mut Table, path: &str) -> Option<&'t mut Table> {
    path.split('.').try_fold(root, |t, part| {
        t.entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
    })
}

/// A scratch install: `config.toml` (rewritten per input) and the shipped
/// schedules.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let schedules = dir.path().join("schedules");
    std::fs::create_dir(&schedules).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, schedules.join(path.file_name().unwrap())).unwrap();
    }
    let file = dir.path().join("config.toml");
    (dir, file)
}

/// What a loaded config must hold, and that the model runs with it.
fn check_loaded(settings: &Settings) -> TestCaseResult {
    let d = &settings.delivery;
    prop_assert!((1..=64).contains(&d.concurrency));
    prop_assert!(!d.per_channel_interval.is_zero() && !d.global_interval.is_zero());
    prop_assert!(d.lease.as_secs() >= 2);
    prop_assert!(settings.schedules.grace >= chrono::Duration::hours(1));
    let mut ids: Vec<&PersonId> = settings.people.iter().map(|p| &p.id).collect();
    ids.sort();
    ids.dedup();
    prop_assert_eq!(ids.len(), settings.people.len());
    let catalogue = &settings.catalogue;
    prop_assert!(!catalogue.questions().is_empty());
    prop_assert!(
        settings
            .model
            .weights
            .keys()
            .all(|q| catalogue.get(q).is_some())
    );
    // A week of the best answers, and a nudge sent: the model reads both.
    let person = PersonId::parse("U1").unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
    let answers: Vec<Answer> = catalogue
        .questions()
        .iter()
        .filter_map(|q| {
            Some(Answer {
                person: person.clone(),
                week: IsoWeek::of(today),
                question: q.id.clone(),
                option: q.options.last()?.key.clone(),
            })
        })
        .collect();
    let nudges = [SentNudge {
        sent_on: today - chrono::Duration::days(30),
        answer: None,
    }];
    let assessment = assess(
        &History {
            answers: &answers,
            nudges: &nudges,
            nudges_off: false,
        },
        catalogue,
        &settings.model,
        today,
    );
    prop_assert!(!assessment.reasons.is_empty());
    Ok(())
}

#[test]
fn configs_load_validated_or_name_the_key() {
    let target = Target {
        name: "config/files-and-env",
        regressions: "tests/fuzz/regressions/config.txt",
        per_mille: 100,
    };
    let (dir, file) = scratch();
    let base = shipped();
    let loaded = AtomicU64::new(0);
    let unknown = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "server",
                    "chat",
                    "chat.slack",
                    "model",
                    "delivery",
                    "storage",
                ][..],
            ),
            prop::sample::select(&["port", "token", "weights_x", "verbose", "Bind"][..]),
            any_value(),
        ),
        1..2,
    );
    let sections = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    "server",
                    "storage",
                    "chat",
                    "delivery",
                    "model",
                    "messages",
                    "schedules",
                ][..],
            ),
            any_value(),
        ),
        0..2,
    );
    let inputs = (
        edits(),
        questions(),
        prop_oneof![3 => Just(None), 1 => people().prop_map(Some)],
        prop_oneof![8 => Just(Vec::new()), 1 => unknown],
        prop_oneof![12 => Just(Vec::new()), 1 => sections],
        prop_oneof![2 => Just(Vec::new()), 1 => env()],
    );
    target.run(
        inputs,
        |(edits, questions, people, unknown, sections, env)| {
            let mut config = base.clone();
            for (i, edit) in edits {
                let (table, key) = KEYS[i];
                let Some(t) = table_at(&mut config, table) else {
                    continue;
                };
                match edit {
                    Edit::Remove => {
                        t.remove(key);
                    }
                    Edit::Set(value) => {
                        t.insert(key.to_owned(), value);
                    }
                }
            }
            if let Some(questions) = questions {
                config.insert("questions".into(), questions);
            }
            if let Some(people) = people {
                config.insert("people".into(), people);
            }
            for (table, key, value) in unknown {
                if let Some(t) = table_at(&mut config, table) {
                    t.insert(key.to_owned(), value);
                }
            }
            for (section, value) in sections {
                config.insert(section.to_owned(), value);
            }
            let text = toml::to_string(&config).unwrap();
            std::fs::write(&file, &text).unwrap();
            match Settings::load_with_env(&file, env.clone()) {
                Ok(settings) => {
                    loaded.fetch_add(1, Ordering::Relaxed);
                    for secret in [
                        &settings.chat.slack.bot_token,
                        &settings.chat.slack.signing_secret,
                        &settings.chat.webhook.url,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        prop_assert!(!secret.expose_secret().trim().is_empty());
                    }
                    check_loaded(&settings)?;
                }
                Err(e) => {
                    let shown = e.to_string();
                    prop_assert!(
                        !shown.contains(SECRET),
                        "an error shows a secret: {}",
                        shown
                    );
                    let about_schedules = e.file != file;
                    if about_schedules {
                        // The directory itself (missing), or one of its files.
                        prop_assert!(e.file.starts_with(dir.path()), "{}", shown);
                    } else if !e.problem.starts_with("not valid TOML") {
                        prop_assert!(!e.key.is_empty(), "names no key: {}", shown);
                    }
                }
            }
            Ok(())
        },
    );
    eprintln!(
        "fuzz config/files-and-env: {} of them loaded",
        loaded.load(Ordering::Relaxed)
    );
}
