//! Target: the input types of the event, interaction and command handlers:
//! `POST /slack/events` JSON ([`EventEnvelope`]), the interaction form and
//! its JSON ([`InteractionPayload`]) with prompt button values
//! ([`ButtonValue`]), and the `/pulse` form ([`SlashCommand`]).
//!
//! Besides "never panics": whatever parses holds exactly what was sent, a
//! well-formed payload always parses, and a button value reads back as
//! written.

use nudged::domain::{IsoWeek, OptionKey, PersonId, QuestionId};
use nudged::http::payloads::{Event, EventEnvelope, InteractionPayload, SlashCommand};
use nudged::render::ButtonValue;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::inputs::{damage, field, json_value, slack_text, slack_ts, user_id};
use crate::support::Target;

/// The form of `POST /slack/interactions`, as the handler reads it.
#[derive(Debug, Deserialize)]
struct InteractionForm {
    payload: String,
}

/// An object from `(name, value)` pairs; `None` leaves the field out.
fn object(fields: Vec<(&str, Option<Value>)>, extra: Map<String, Value>) -> Value {
    let mut map = extra;
    for (name, value) in fields {
        match value {
            Some(value) => map.insert(name.to_owned(), value),
            None => map.remove(name),
        };
    }
    Value::Object(map)
}

fn extra_fields() -> impl Strategy<Value = Map<String, Value>> + Clone {
    prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..3)
        .prop_map(|m| m.into_iter().collect())
}

fn one_of(names: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => prop::sample::select(names).prop_map(str::to_owned),
        1 => "[a-z_]{0,20}",
    ]
}

fn message_event() -> impl Strategy<Value = Value> + Clone {
    (
        field(one_of(&["message"])),
        field(user_id()),
        field(slack_text(30)),
        field("[CDG][0-9A-Z]{8}"),
        field(one_of(&["im", "channel", "group", "mpim"])),
        field(slack_ts()),
        field(slack_ts()),
        prop_oneof![3 => Just(None), 1 => field("B[0-9A-Z]{8}")],
        prop_oneof![3 => Just(None), 1 => field(one_of(&["message_changed", "bot_message", "channel_join"]))],
        extra_fields(),
    )
        .prop_map(|(kind, user, text, channel, channel_type, ts, thread_ts, bot_id, subtype, extra)| {
            object(
                vec![
                    ("type", kind),
                    ("user", user),
                    ("text", text),
                    ("channel", channel),
                    ("channel_type", channel_type),
                    ("ts", ts),
                    ("thread_ts", thread_ts),
                    ("bot_id", bot_id),
                    ("subtype", subtype),
                ],
                extra,
            )
        })
}

fn home_opened_event() -> impl Strategy<Value = Value> + Clone {
    (
        field(one_of(&["app_home_opened"])),
        field(user_id()),
        field(one_of(&["home", "messages", "about"])),
        extra_fields(),
    )
        .prop_map(|(kind, user, tab, extra)| {
            object(vec![("type", kind), ("user", user), ("tab", tab)], extra)
        })
}

/// An Events API envelope with every field possibly missing or mistyped.
pub fn envelope() -> impl Strategy<Value = Value> {
    (
        field(one_of(&[
            "url_verification",
            "event_callback",
            "app_rate_limited",
        ])),
        field(slack_text(8)),
        field("Ev[0-9A-Z]{8,10}"),
        prop_oneof![
            3 => message_event().prop_map(Some),
            2 => home_opened_event().prop_map(Some),
            1 => json_value().prop_map(Some),
            1 => Just(None),
        ],
        extra_fields(),
    )
        .prop_map(|(kind, challenge, event_id, event, extra)| {
            object(
                vec![
                    ("type", kind),
                    ("challenge", challenge),
                    ("event_id", event_id),
                    ("event", event),
                ],
                extra,
            )
        })
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |v, k| v.get(k))?.as_str()
}

/// Whether an optional string field reads as the JSON says: absent or null
/// is `None`, a string is itself.
fn same_optional(parsed: Option<&str>, json: &Value, path: &[&str]) -> bool {
    match path.iter().try_fold(json, |v, k| v.get(k)) {
        None | Some(Value::Null) => parsed.is_none(),
        Some(Value::String(s)) => parsed == Some(s.as_str()),
        Some(_) => false,
    }
}

/// Whether `json` is an event envelope nudged must accept: known tags, every
/// field it reads present (where required) and a string (or null where
/// optional).
fn well_formed_envelope(json: &Value) -> bool {
    let string = |path: &[&str]| str_at(json, path).is_some();
    let optional = |path: &[&str]| {
        matches!(
            path.iter().try_fold(json, |v, k| v.get(k)),
            None | Some(Value::Null) | Some(Value::String(_))
        )
    };
    match str_at(json, &["type"]) {
        Some("url_verification") => string(&["challenge"]),
        Some("event_callback") => {
            string(&["event_id"])
                && match str_at(json, &["event", "type"]) {
                    Some("message") => {
                        string(&["event", "channel"])
                            && string(&["event", "ts"])
                            && [
                                "user",
                                "text",
                                "channel_type",
                                "thread_ts",
                                "bot_id",
                                "subtype",
                            ]
                            .iter()
                            .all(|f| optional(&["event", f]))
                    }
                    Some("app_home_opened") => {
                        string(&["event", "user"]) && optional(&["event", "tab"])
                    }
                    Some(_) => json["event"].is_object(),
                    None => false,
                }
        }
        Some(_) => true,
        None => false,
    }
}

/// Whatever parsed holds exactly what the JSON said.
fn check_envelope(parsed: &EventEnvelope, json: &Value) -> Result<(), TestCaseError> {
    match parsed {
        EventEnvelope::UrlVerification { challenge } => {
            prop_assert_eq!(str_at(json, &["challenge"]), Some(challenge.as_str()));
        }
        EventEnvelope::EventCallback {
            event_id,
            event,
            team_id,
            api_app_id,
        } => {
            prop_assert_eq!(str_at(json, &["event_id"]), Some(event_id.as_str()));
            prop_assert_eq!(str_at(json, &["team_id"]), team_id.as_deref());
            prop_assert_eq!(str_at(json, &["api_app_id"]), api_app_id.as_deref());
            match event {
                Event::Message(m) => {
                    prop_assert_eq!(
                        str_at(json, &["event", "channel"]),
                        Some(m.channel.as_str())
                    );
                    prop_assert_eq!(str_at(json, &["event", "ts"]), Some(m.ts.as_str()));
                    for (name, value) in [
                        ("user", &m.user),
                        ("text", &m.text),
                        ("channel_type", &m.channel_type),
                        ("thread_ts", &m.thread_ts),
                        ("bot_id", &m.bot_id),
                        ("subtype", &m.subtype),
                    ] {
                        prop_assert!(
                            same_optional(value.as_deref(), json, &["event", name]),
                            "{}",
                            name
                        );
                    }
                }
                Event::AppHomeOpened { user, tab } => {
                    prop_assert_eq!(str_at(json, &["event", "user"]), Some(user.as_str()));
                    prop_assert!(same_optional(tab.as_deref(), json, &["event", "tab"]));
                }
                Event::Other => {}
            }
        }
        EventEnvelope::Other => {}
    }
    Ok(())
}

#[test]
fn event_payloads_parse_faithfully_or_are_refused() {
    let target = Target {
        name: "payloads/events",
        regressions: "tests/fuzz/regressions/payloads-events.txt",
        per_mille: 1000,
    };
    target.run((envelope(), damage()), |(json, damage)| {
        let bytes = damage.apply(serde_json::to_vec(&json).unwrap());
        let parsed = serde_json::from_slice::<EventEnvelope>(&bytes);
        if damage.is_none() {
            if well_formed_envelope(&json) {
                prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
            }
            if let Ok(parsed) = &parsed {
                check_envelope(parsed, &json)?;
            }
        }
        Ok(())
    });
}

/// A week that exists.
fn week() -> impl Strategy<Value = IsoWeek> + Clone {
    (0i32..=9999, 1u32..=53)
        .prop_map(|(y, w)| IsoWeek::new(y, w).unwrap_or_else(|_| IsoWeek::new(y, 52).unwrap()))
}

fn button_value() -> impl Strategy<Value = ButtonValue> + Clone {
    (
        week(),
        "[a-z0-9_-]{1,24}",
        "[a-z0-9+_-]{1,16}",
        "[A-Za-z0-9_.@-]{1,64}",
        slack_text(6),
    )
        .prop_map(|(week, question, option, person, schedule)| ButtonValue {
            week,
            question: QuestionId::parse(&question).unwrap(),
            option: OptionKey::parse(&option).unwrap(),
            person: PersonId::parse(&person).unwrap(),
            schedule,
        })
}

/// A button's `value`: one nudged wrote, one with a piece changed, or text.
fn button_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => button_value().prop_map(|b| b.to_string()),
        2 => (button_value(), any::<prop::sample::Index>(), slack_text(2)).prop_map(|(b, at, piece)| {
            let text = b.to_string();
            let at = text.char_indices().map(|(i, _)| i).nth(at.index(text.chars().count())).unwrap_or(0);
            format!("{}{piece}{}", &text[..at], &text[at..])
        }),
        1 => slack_text(10),
    ]
}

#[test]
fn button_values_read_back_as_written() {
    let target = Target {
        name: "payloads/button-values",
        regressions: "tests/fuzz/regressions/payloads-buttons.txt",
        per_mille: 1000,
    };
    target.run((button_value(), button_text()), |(value, text)| {
        prop_assert_eq!(ButtonValue::parse(&value.to_string()), Some(value));
        // Whatever a changed value reads as, it writes back to itself.
        if let Some(read) = ButtonValue::parse(&text) {
            prop_assert_eq!(ButtonValue::parse(&read.to_string()), Some(read));
        }
        Ok(())
    });
}

pub fn interaction() -> impl Strategy<Value = Value> {
    let action = (
        field("[a-z_]{1,20}"),
        field(button_text()),
        field(slack_ts()),
        extra_fields(),
    )
        .prop_map(|(id, value, ts, extra)| {
            object(
                vec![("action_id", id), ("value", value), ("action_ts", ts)],
                extra,
            )
        });
    (
        field(one_of(&["block_actions", "view_submission", "shortcut"])),
        field(user_id()).prop_map(|id| Some(json!({ "id": id }))),
        prop_oneof![
            4 => prop::collection::vec(action, 0..4).prop_map(|a| Some(Value::Array(a))),
            1 => json_value().prop_map(Some),
        ],
        (field(slack_ts()), field("[CD][0-9A-Z]{8}")).prop_map(|(ts, channel)| {
            Some(object(
                vec![("message_ts", ts), ("channel_id", channel)],
                Map::new(),
            ))
        }),
        field("[CD][0-9A-Z]{8}").prop_map(|id| id.map(|id| json!({ "id": id }))),
    )
        .prop_map(|(kind, user, actions, container, channel)| {
            object(
                vec![
                    ("type", kind),
                    ("user", user),
                    ("actions", actions),
                    ("container", container),
                    ("channel", channel),
                ],
                Map::new(),
            )
        })
}

#[test]
fn interaction_forms_parse_faithfully_or_are_refused() {
    let target = Target {
        name: "payloads/interactions",
        regressions: "tests/fuzz/regressions/payloads-interactions.txt",
        per_mille: 1000,
    };
    target.run((interaction(), damage()), |(json, damage)| {
        let form = serde_urlencoded::to_string([("payload", json.to_string())]).unwrap();
        let bytes = damage.apply(form.into_bytes());
        let Ok(form) = serde_urlencoded::from_bytes::<InteractionForm>(&bytes) else {
            prop_assert!(!damage.is_none(), "an encoded form must read back");
            return Ok(());
        };
        let Ok(payload) = serde_json::from_str::<InteractionPayload>(&form.payload) else {
            return Ok(());
        };
        for action in &payload.actions {
            if let Some(value) = action.value.as_deref().and_then(ButtonValue::parse) {
                prop_assert_eq!(ButtonValue::parse(&value.to_string()), Some(value));
            }
        }
        if damage.is_none() {
            prop_assert_eq!(str_at(&json, &["type"]), Some(payload.kind.as_str()));
            prop_assert_eq!(
                str_at(&json, &["user", "id"]),
                Some(payload.user.id.as_str())
            );
            prop_assert_eq!(
                payload.actions.len(),
                json["actions"].as_array().map_or(0, Vec::len)
            );
            for (i, action) in payload.actions.iter().enumerate() {
                // serde also reads a struct from an array of its fields in
                // order; only the object form is compared by name.
                let sent = &json["actions"][i];
                if sent.is_object() {
                    prop_assert_eq!(sent["action_id"].as_str(), Some(action.action_id.as_str()));
                    prop_assert!(same_optional(action.value.as_deref(), sent, &["value"]));
                }
            }
        }
        Ok(())
    });
}

/// A `/pulse` form: its fields in any order, each possibly missing,
/// repeated or joined by one Slack never sends.
pub fn command_form() -> impl Strategy<Value = Vec<(String, String)>> {
    let known = prop_oneof![
        Just("command".to_owned()),
        Just("text".to_owned()),
        Just("user_id".to_owned()),
        Just("channel_id".to_owned()),
        Just("response_url".to_owned()),
        "[a-z_]{1,12}",
    ];
    (
        "(/pulse|/PULSE|/other|)",
        slack_text(20),
        user_id(),
        "[CD][0-9A-Z]{8}",
        prop::collection::vec((known, slack_text(6)), 0..3),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(|(command, text, user, channel, extra, at, keep)| {
            let mut pairs: Vec<(String, String)> = [
                ("command", command),
                ("text", text),
                ("user_id", user),
                ("channel_id", channel),
            ]
            .into_iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|((k, v), _)| (k.to_owned(), v))
            .collect();
            for pair in extra {
                let at = at.index(pairs.len() + 1);
                pairs.insert(at, pair);
            }
            pairs
        })
}

#[test]
fn command_forms_parse_faithfully_or_are_refused() {
    let target = Target {
        name: "payloads/commands",
        regressions: "tests/fuzz/regressions/payloads-commands.txt",
        per_mille: 1000,
    };
    target.run((command_form(), damage()), |(pairs, damage)| {
        let bytes = damage.apply(serde_urlencoded::to_string(&pairs).unwrap().into_bytes());
        let parsed = serde_urlencoded::from_bytes::<SlashCommand>(&bytes);
        if !damage.is_none() {
            return Ok(());
        }
        let value = |name: &str| {
            let mut found = pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str());
            let first = found.next();
            (first, found.next().is_some())
        };
        let fields = ["command", "text", "user_id", "channel_id"].map(value);
        let repeated = fields.iter().any(|(_, twice)| *twice);
        match parsed {
            Ok(command) => {
                prop_assert!(!repeated);
                prop_assert_eq!(fields[0].0, Some(command.command.as_str()));
                prop_assert_eq!(fields[1].0.unwrap_or(""), command.text.as_str());
                prop_assert_eq!(fields[2].0, Some(command.user_id.as_str()));
                prop_assert_eq!(fields[3].0, command.channel_id.as_deref());
            }
            Err(_) => prop_assert!(repeated || fields[0].0.is_none() || fields[2].0.is_none()),
        }
        Ok(())
    });
}

#[test]
fn raw_bytes_are_refused_without_panic() {
    let target = Target {
        name: "payloads/raw",
        regressions: "tests/fuzz/regressions/payloads-raw.txt",
        per_mille: 1000,
    };
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        slack_text(40).prop_map(String::into_bytes),
        "[\\[\\]{}\",:0-9a-z_=&%+ ]{0,200}".prop_map(String::into_bytes),
    ];
    target.run(bytes, |bytes| {
        if let Ok(envelope) = serde_json::from_slice::<EventEnvelope>(&bytes) {
            let json: Value = serde_json::from_slice(&bytes).unwrap();
            check_envelope(&envelope, &json)?;
        }
        let _ = serde_json::from_slice::<InteractionPayload>(&bytes);
        let _ = serde_urlencoded::from_bytes::<InteractionForm>(&bytes);
        let _ = serde_urlencoded::from_bytes::<SlashCommand>(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(value) = ButtonValue::parse(&text) {
            prop_assert_eq!(ButtonValue::parse(&value.to_string()), Some(value));
        }
        Ok(())
    });
}
