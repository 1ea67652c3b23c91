//! The schedule file format (README, "Schedules"): one TOML file per schedule,
//! deserialized strictly into [`RawSchedule`] and then validated into a
//! [`Schedule`].
//!
//! Every problem becomes a [`ScheduleError`] naming the schedule file, the key
//! (`cron`, `questions[2]`, …; empty for TOML syntax) and what is wrong, so
//! `nudged check` points a person at the line to fix.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::de::{DeTable, DeValue};

use super::{
    Audience, DEFAULT_MIN_GROUP, Digest, MIN_GROUP_FLOOR, Schedule, ScheduleError, ScheduleKind,
    ScheduleZone,
};
use crate::domain::{Catalogue, PersonId};

/// The `timezone` value meaning "each person's own zone".
const PERSON_ZONE: &str = "person";

/// The zone used for a person with no known zone when `timezone = "person"`
/// and the file sets no `fallback_timezone`.
const DEFAULT_FALLBACK: Tz = Tz::UTC;

/// A schedule file as written. Strings stay strings here: validation turns
/// them into typed values with messages that name the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: String,
    cron: String,
    timezone: String,
    kind: String,
    #[serde(default)]
    questions: Vec<String>,
    audience: RawAudience,
    fallback_timezone: Option<String>,
    /// Only for `kind = "team-digest"`.
    channel: Option<String>,
    /// Only for `kind = "team-digest"`.
    min_group: Option<i64>,
}

/// `audience = "all"` or `audience = ["U024BE7LH", …]`.
#[derive(Debug)]
enum RawAudience {
    All,
    People(Vec<String>),
}

impl<'de> Deserialize<'de> for RawAudience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Hand-written rather than `#[serde(untagged)]`, whose error ("data
        // did not match any variant") would not tell a person what to write.
        struct AudienceVisitor;

        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = RawAudience;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""all" or a list of person ids"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAudience, E> {
                if v.trim() == "all" {
                    Ok(RawAudience::All)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawAudience, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    ids.push(id);
                }
                Ok(RawAudience::People(ids))
            }
        }

        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// Loads every `*.toml` file in `dir`, in file-name order, and checks that
/// schedule names are unique across them.
///
/// A missing or unreadable directory is an error naming the directory.
/// Hidden files (`.name.toml`, editor leftovers) and subdirectories are
/// ignored. An empty directory
/// yields no schedules: nudged then only asks when someone types `/pulse now`.
pub fn load_dir(dir: &Path, catalogue: &Catalogue) -> Result<Vec<Schedule>, ScheduleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::NotFound => "schedule directory not found".to_owned(),
            _ => format!("cannot read the schedule directory: {e}"),
        };
        ScheduleError::new(dir, "", problem)
    })?;

    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            ScheduleError::new(dir, "", format!("cannot read the schedule directory: {e}"))
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        files.push(path);
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut schedules: Vec<Schedule> = Vec::with_capacity(files.len());
    // Name → the file that used it first, for the duplicate message.
    let mut names: HashMap<String, &Path> = HashMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ScheduleError::new(file, "", format!("cannot read the file: {e}")))?;
        let schedule = parse(&text, file, catalogue)?;
        if let Some(first) = names.insert(schedule.name.clone(), file) {
            return Err(ScheduleError::new(
                file,
                "name",
                format!(
                    "{:?} is already the name of {}; schedule names must be unique",
                    schedule.name,
                    first.display()
                ),
            ));
        }
        schedules.push(schedule);
    }
    Ok(schedules)
}

/// Parses and validates the text of one schedule file; `file` is only used
/// to name it in errors.
pub fn parse(text: &str, file: &Path, catalogue: &Catalogue) -> Result<Schedule, ScheduleError> {
    let table = DeTable::parse(text).map_err(|e| {
        let problem = format!(
            "not valid TOML{}: {}",
            e.span()
                .map(|s| position(text, s.start))
                .unwrap_or_default(),
            one_line(e.message())
        );
        ScheduleError::new(file, "", problem)
    })?;
    let keys = KeySpans::of(table.get_ref());
    let raw = RawSchedule::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| serde_error(file, &keys, &e))?;
    validate(raw, catalogue).map_err(|(key, problem)| ScheduleError::new(file, key, problem))
}

/// Turns a raw schedule into a [`Schedule`], or says which key is wrong.
fn validate(raw: RawSchedule, catalogue: &Catalogue) -> Result<Schedule, (String, String)> {
    let err = |key: &str, problem: String| (key.to_owned(), problem);

    let name = raw.name.trim();
    if name.is_empty() {
        return Err(err("name", "must not be empty".into()));
    }

    let cron_text = raw.cron.trim();
    let cron = parse_cron(cron_text).map_err(|problem| err("cron", problem))?;

    let zone = if raw.timezone.trim() == PERSON_ZONE {
        let fallback = match raw.fallback_timezone.as_deref() {
            Some(tz) => parse_tz(tz).map_err(|problem| err("fallback_timezone", problem))?,
            None => DEFAULT_FALLBACK,
        };
        ScheduleZone::Person { fallback }
    } else {
        let tz = parse_tz(&raw.timezone).map_err(|problem| {
            err(
                "timezone",
                format!("{problem}, or \"{PERSON_ZONE}\" for each person's own"),
            )
        })?;
        // A fallback next to a fixed zone would silently do nothing; say so
        // rather than let someone believe it applies.
        if raw.fallback_timezone.is_some() {
            return Err(err(
                "fallback_timezone",
                format!("only applies with timezone = \"{PERSON_ZONE}\""),
            ));
        }
        ScheduleZone::Fixed(tz)
    };

    let kind = ScheduleKind::from_name(raw.kind.trim()).ok_or_else(|| {
        let known: Vec<_> = ScheduleKind::ALL.iter().map(|k| k.as_str()).collect();
        err(
            "kind",
            format!(
                "unknown kind {:?}; use one of {}",
                raw.kind,
                known.join(", ")
            ),
        )
    })?;

    let mut questions = Vec::with_capacity(raw.questions.len());
    for (i, id) in raw.questions.iter().enumerate() {
        let key = format!("questions[{i}]");
        let Some(question) = catalogue.get(id.trim()) else {
            let known: Vec<_> = catalogue
                .questions()
                .iter()
                .map(|q| q.id.as_str())
                .collect();
            return Err(err(
                &key,
                format!("unknown question {id:?}; known: {}", known.join(", ")),
            ));
        };
        if questions.contains(&question.id) {
            return Err(err(&key, format!("{id:?} is listed twice")));
        }
        questions.push(question.id.clone());
    }
    if questions.is_empty() && kind.needs_questions() {
        return Err(err(
            "questions",
            format!("a {kind} schedule needs at least one question to ask"),
        ));
    }

    let digest = digest(&raw, kind, zone, &questions)?;

    let audience = match raw.audience {
        RawAudience::All => Audience::All,
        RawAudience::People(ids) => {
            if ids.is_empty() {
                return Err(err(
                    "audience",
                    "is an empty list, so nobody would be asked; use \"all\" or list person ids"
                        .into(),
                ));
            }
            let mut people: Vec<PersonId> = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                let key = format!("audience[{i}]");
                let person =
                    PersonId::parse(id.trim()).map_err(|e| err(&key, format!("{id:?} {e}")))?;
                if people.contains(&person) {
                    return Err(err(&key, format!("{person} is listed twice")));
                }
                people.push(person);
            }
            Audience::People(people)
        }
    };

    Ok(Schedule {
        name: name.to_owned(),
        cron,
        cron_text: cron_text.to_owned(),
        zone,
        kind,
        questions,
        audience,
        digest,
    })
}

/// The team digest's settings: required for that kind, refused for others
/// (they would silently do nothing).
fn digest(
    raw: &RawSchedule,
    kind: ScheduleKind,
    zone: ScheduleZone,
    questions: &[crate::domain::QuestionId],
) -> Result<Option<Digest>, (String, String)> {
    let err = |key: &str, problem: String| (key.to_owned(), problem);
    if kind != ScheduleKind::TeamDigest {
        for (key, set) in [
            ("channel", raw.channel.is_some()),
            ("min_group", raw.min_group.is_some()),
        ] {
            if set {
                return Err(err(
                    key,
                    format!(
                        "only applies to kind = \"{}\"",
                        ScheduleKind::TeamDigest.as_str()
                    ),
                ));
            }
        }
        return Ok(None);
    }
    // One post for the whole team has one time: "each person's own" has
    // no meaning for it.
    if matches!(zone, ScheduleZone::Person { .. }) {
        return Err(err(
            "timezone",
            format!(
                "a {kind} schedule posts once for everybody; use an IANA zone, not \"{PERSON_ZONE}\""
            ),
        ));
    }
    if !questions.is_empty() {
        return Err(err(
            "questions",
            format!("a {kind} schedule asks nothing; remove the key"),
        ));
    }
    let Some(channel) = raw.channel.as_deref().map(str::trim) else {
        return Err(err(
            "channel",
            format!("is required for a {kind} schedule: the channel id it posts to (C…)"),
        ));
    };
    if channel.is_empty() || !channel.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(err(
            "channel",
            format!("{channel:?} is not a channel id; use the id (C…), not the name"),
        ));
    }
    let min_group = match raw.min_group {
        None => DEFAULT_MIN_GROUP,
        Some(n) if n < i64::from(MIN_GROUP_FLOOR) => {
            return Err(err(
                "min_group",
                format!(
                    "is {n}; must be at least {MIN_GROUP_FLOOR}, so no count or median points at one person"
                ),
            ));
        }
        Some(n) => u32::try_from(n).map_err(|_| err("min_group", format!("{n} is too large")))?,
    };
    Ok(Some(Digest {
        channel: channel.to_owned(),
        min_group,
    }))
}

/// Parses a croner expression: 6 fields with seconds or 5 without. A year
/// field is refused, as the file format does not document one.
fn parse_cron(text: &str) -> Result<Cron, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = parser
        .parse(text)
        .map_err(|e| format!("{text:?} is not a valid cron expression: {e}"))?;
    // Croner accepts dates that never exist (`0 0 12 31 2 *`); such a
    // schedule would silently never fire. One search from a fixed instant
    // catches it. A pattern so rare that croner's search gives up before
    // finding a date is refused too: it would not fire in practice either.
    let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
    if let Some(reference) = reference
        && cron.find_next_occurrence(&reference, false).is_err()
    {
        return Err(format!(
            "{text:?} never matches: no date that exists fits it (February 30, say)"
        ));
    }
    Ok(cron)
}

/// Parses an IANA zone name, with the same wording as the roster's `tz`.
fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim())
        .map_err(|_| format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin"))
}

/// Where each top-level key and its value sit in the text, so that a serde
/// error (which carries only a byte span) can name its key.
struct KeySpans {
    entries: Vec<KeySpan>,
}

struct KeySpan {
    key: String,
    key_span: Range<usize>,
    value_span: Range<usize>,
    /// Spans of the elements when the value is an array: `questions[2]`.
    elements: Vec<Range<usize>>,
}

impl KeySpans {
    fn of(table: &DeTable<'_>) -> Self {
        let entries = table
            .iter()
            .map(|(k, v)| KeySpan {
                key: k.get_ref().to_string(),
                key_span: k.span(),
                value_span: v.span(),
                elements: match v.get_ref() {
                    DeValue::Array(a) => a.iter().map(|e| e.span()).collect(),
                    _ => Vec::new(),
                },
            })
            .collect();
        Self { entries }
    }

    /// The key (with an element index where it applies) whose text holds
    /// the byte `offset`.
    fn key_at(&self, offset: usize) -> Option<String> {
        self.entries.iter().find_map(|e| {
            if e.key_span.contains(&offset) {
                return Some(e.key.clone());
            }
            if !e.value_span.contains(&offset) {
                return None;
            }
            Some(match e.elements.iter().position(|s| s.contains(&offset)) {
                Some(i) => format!("{}[{i}]", e.key),
                None => e.key.clone(),
            })
        })
    }
}

/// Maps a serde error from the strict raw struct to a [`ScheduleError`].
fn serde_error(file: &Path, keys: &KeySpans, e: &toml::de::Error) -> ScheduleError {
    let message = one_line(e.message());
    // serde's wording is stable; naming the key first and then the problem
    // reads better than its message verbatim.
    if let Some(field) = backticked(&message, "missing field ") {
        return ScheduleError::new(file, field, "is required");
    }
    let key = e
        .span()
        .filter(|s| !s.is_empty())
        .and_then(|s| keys.key_at(s.start))
        .unwrap_or_default();
    if let Some(field) = backticked(&message, "unknown field ") {
        let expected = message.split_once(", ").map(|(_, rest)| rest).unwrap_or("");
        let key = if key.is_empty() {
            field.to_owned()
        } else {
            key
        };
        return ScheduleError::new(file, key, format!("unknown key; {expected}"));
    }
    ScheduleError::new(file, key, message)
}

/// `name` out of "missing field `name`…" when `message` starts with `prefix`.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(field, _)| field)
}

/// ` at line L, column C` for a byte offset, 1-based as editors count.
fn position(text: &str, offset: usize) -> String {
    // toml's spans fall on character boundaries; `get` keeps this total anyway.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" at line {line}, column {column}")
}

/// A [`ScheduleError`] is printed on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
