//! Target: the reply grammar ([`parse_answers`], [`understood`],
//! [`help_text`]) and the `/pulse` parser ([`parse_command`]), fed token
//! soup made of the catalogue's own ids, keys and labels, the grammar's
//! separators and skip words, Slack markup and odd Unicode; with the default
//! catalogue and with random ones.
//!
//! Besides "never panics": a parsed reply names only real options, each
//! question at most once, in catalogue order; errors are one line and echo
//! at most [`MAX_ECHO_CHARS`] of the person's text; a pause is 1 to 365
//! days.

use nudged::domain::{
    Catalogue, OptionKey, Question, QuestionId, QuestionOption, default_catalogue,
};
use nudged::reply::{
    CommandError, MAX_ECHO_CHARS, MAX_PAUSE_DAYS, MAX_TEXT_CHARS, ParsedReply, PulseCommand,
    ReplyError, help_text, parse_answers, parse_command, understood,
};
use proptest::prelude::*;

use crate::inputs::{slack_text, tricky};
use crate::support::Target;

/// Words of the grammar that belong to no catalogue.
const GRAMMAR: &[&str] = &[
    "-", "--", "?", "skip", "SKIP", "n/a", "N/A", "=", ":", " = ", ": ", ", ", ",", ";", "\n", " ",
    "  ", "0", "1", "2", "4", "5", "7", "12", "999999", "1234567", "3 - 5", "6 +", "and", "a",
    "an", "the",
];

/// How a piece of the catalogue may be typed.
fn variants(text: &str) -> Vec<String> {
    vec![
        text.to_owned(),
        text.to_uppercase(),
        text.to_lowercase(),
        format!("\"{text}\""),
        format!("*{text}*"),
        format!("{text}."),
        text.replace('-', "–").replace("&", "and"),
        text.replace(' ', ""),
    ]
}

/// Every id, key and label of `catalogue`, in the ways people type them.
fn vocabulary(catalogue: &Catalogue) -> Vec<String> {
    let mut words: Vec<String> = GRAMMAR.iter().map(|w| (*w).to_owned()).collect();
    for q in catalogue.questions() {
        words.extend(variants(q.id.as_str()));
        for o in &q.options {
            words.extend(variants(o.key.as_str()));
            words.extend(variants(&o.label));
        }
    }
    words
}

/// A reply made of `vocabulary` words, separators and noise.
fn soup(vocabulary: Vec<String>, max: usize) -> impl Strategy<Value = String> + use<> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vocabulary),
            2 => tricky(),
            1 => slack_text(2),
        ],
        0..=max,
    )
    .prop_map(|words| words.concat())
}

/// Which questions the prompt asked: catalogue ids in any order, repeated,
/// or unknown.
fn asked(catalogue: &Catalogue) -> impl Strategy<Value = Vec<QuestionId>> + use<> {
    let mut ids: Vec<QuestionId> = catalogue.questions().iter().map(|q| q.id.clone()).collect();
    ids.push(QuestionId::parse("mood").unwrap());
    prop::collection::vec(prop::sample::select(ids), 0..9)
}

/// A catalogue a config file could define: unique ids, unique keys within
/// a question (keys that look alike across and within questions), labels
/// that collide, are empty or are noise.
fn catalogue() -> impl Strategy<Value = Catalogue> {
    let key = prop_oneof![
        3 => prop::sample::select(&[
            "0", "1", "2", "9", "1-2", "3-5", "0-1", "2-3", "6+", "4+", "2+", "10-20", "5-3",
            "none", "yes", "no", "a", "A", "skip", "n-a", "-", "+", "1-", "-1", "0-0",
        ][..]).prop_map(str::to_owned),
        1 => "[a-z0-9+_-]{1,16}",
    ];
    let label = prop_oneof![
        2 => prop::sample::select(&[
            "Yes", "yes", "A little", "a  little", "Deciding what & why",
            "deciding what and why", "", "  ", "-", "?", "3–5", "6+", "None", "Skip",
        ][..]).prop_map(str::to_owned),
        1 => slack_text(3),
    ];
    let option = (key, label, 0.0f64..=1.0);
    let question = (
        prop_oneof![
            3 => "[a-z][a-z0-9_-]{0,8}",
            1 => prop::sample::select(&["decisions", "skip", "n-a", "a", "yes", "0"][..]).prop_map(str::to_owned),
        ],
        prop::collection::vec(option, 1..6),
    );
    prop::collection::vec(question, 1..6).prop_map(|questions| {
        let mut out: Vec<Question> = Vec::new();
        for (id, options) in questions {
            let id = QuestionId::parse(&id).unwrap();
            if out.iter().any(|q| q.id == id) {
                continue;
            }
            let mut kept: Vec<QuestionOption> = Vec::new();
            for (key, label, score) in options {
                let key = OptionKey::parse(&key).unwrap();
                if !kept.iter().any(|o| o.key == key) {
                    kept.push(QuestionOption { key, label, score });
                }
            }
            out.push(Question {
                id,
                text: "?".into(),
                options: kept,
            });
        }
        Catalogue::new(out)
    })
}

fn echo_ok(given: &str) -> bool {
    given.chars().count() <= MAX_ECHO_CHARS
}

/// What every result of [`parse_answers`] must satisfy.
fn check_reply(
    result: &Result<ParsedReply, ReplyError>,
    text: &str,
    catalogue: &Catalogue,
) -> Result<(), TestCaseError> {
    if text.chars().count() > MAX_TEXT_CHARS {
        prop_assert_eq!(
            result,
            &Err(ReplyError::TooLong {
                max: MAX_TEXT_CHARS
            })
        );
    }
    match result {
        Ok(reply) => {
            let position = |q: &QuestionId| catalogue.position(q.as_str());
            for (question, option) in &reply.answers {
                let q = catalogue.get(question.as_str());
                prop_assert!(q.is_some(), "answered an unknown question {}", question);
                prop_assert!(
                    q.unwrap().option(option.as_str()).is_some(),
                    "{} is no option of {}",
                    option,
                    question
                );
            }
            for question in &reply.skipped {
                prop_assert!(
                    position(question).is_some(),
                    "skipped an unknown question {}",
                    question
                );
            }
            let mut mentioned: Vec<&QuestionId> = reply
                .answers
                .iter()
                .map(|(q, _)| q)
                .chain(&reply.skipped)
                .collect();
            let before = mentioned.len();
            mentioned.sort();
            mentioned.dedup();
            prop_assert_eq!(before, mentioned.len(), "a question is mentioned twice");
            prop_assert!(reply.answers.is_sorted_by_key(|(q, _)| position(q)));
            prop_assert!(reply.skipped.is_sorted_by_key(position));
            let said = understood(reply, catalogue);
            prop_assert!(said.starts_with("Got it"), "{}", said);
        }
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(
                !shown.is_empty() && !shown.contains(['\n', '\r']),
                "{:?}",
                shown
            );
            match e {
                ReplyError::UnknownOption { given, .. }
                | ReplyError::UnknownQuestion { given, .. } => {
                    prop_assert!(echo_ok(given), "{:?}", given)
                }
                ReplyError::Unreadable { fragment } => {
                    prop_assert!(echo_ok(fragment), "{:?}", fragment)
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A reply to the default catalogue's prompt.
pub fn default_reply() -> impl Strategy<Value = String> {
    soup(vocabulary(&default_catalogue()), 24)
}

#[test]
fn replies_to_the_default_catalogue() {
    let target = Target {
        name: "reply/default-catalogue",
        regressions: "tests/fuzz/regressions/reply-default.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    let inputs = (default_reply(), asked(&catalogue));
    target.run(inputs, |(text, asked)| {
        let result = parse_answers(&text, &catalogue, &asked);
        check_reply(&result, &text, &catalogue)?;
        prop_assert!(!help_text(&catalogue, &asked).is_empty());
        Ok(())
    });
}

#[test]
fn replies_to_random_catalogues() {
    let target = Target {
        name: "reply/random-catalogues",
        regressions: "tests/fuzz/regressions/reply-random.txt",
        per_mille: 1000,
    };
    let inputs = catalogue().prop_flat_map(|catalogue| {
        let words = soup(vocabulary(&catalogue), 16);
        let asked = asked(&catalogue);
        (Just(catalogue), words, asked)
    });
    target.run(inputs, |(catalogue, text, asked)| {
        let result = parse_answers(&text, &catalogue, &asked);
        check_reply(&result, &text, &catalogue)?;
        prop_assert!(!help_text(&catalogue, &asked).is_empty());
        Ok(())
    });
}

/// Words of `/pulse` and its arguments, and near misses of them.
const COMMAND_WORDS: &[&str] = &[
    "/pulse",
    "/PULSE",
    "/pulsé",
    "/pulsex",
    "/",
    "help",
    "-h",
    "--help",
    "?",
    "now",
    "NOW",
    "trend",
    "pause",
    "Pause",
    "resume",
    "join",
    "leave",
    "export",
    "forget",
    "nudge",
    "nudges",
    "on",
    "off",
    "OFF.",
    "confirm",
    "confirm.",
    "confirm!",
    "please",
    "for",
    "a",
    "an",
    "one",
    "week",
    "weeks",
    "w",
    "wk",
    "wks",
    "d",
    "day",
    "days",
    "2w",
    "10d",
    "0w",
    "52w",
    "53w",
    "365d",
    "366d",
    "0",
    "1",
    "52",
    "365",
    "366",
    "999999",
    "4294967296",
    "1e3",
    "-1",
    "+2",
    "٣",
    "２",
    "decisions=3-5",
    "capacity:",
    "3-5,",
    "4+",
    ";",
    ",",
    ".",
    "!",
    " ",
    "  ",
    "\n",
    "\t",
    "\u{A0}",
];

/// Text after `/pulse`: its words and near misses, any Unicode, and text
/// around the length limit.
pub fn command_text() -> impl Strategy<Value = String> {
    let words: Vec<String> = COMMAND_WORDS.iter().map(|w| (*w).to_owned()).collect();
    prop_oneof![
        8 => prop::collection::vec(
            prop_oneof![
                6 => prop::sample::select(words),
                1 => Just(" ".to_owned()),
                1 => tricky(),
            ],
            0..8,
        )
        .prop_map(|w| w.concat()),
        1 => any::<String>(),
        // Past the length limit, sometimes by one character.
        1 => (MAX_TEXT_CHARS - 2..MAX_TEXT_CHARS + 3, prop::sample::select(&["a", "é", " ", "\n", "🎉"][..]))
            .prop_map(|(n, c)| format!("now {}", c.repeat(n))),
    ]
}

#[test]
fn pulse_commands() {
    let target = Target {
        name: "reply/pulse-commands",
        regressions: "tests/fuzz/regressions/reply-pulse.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    target.run(command_text(), |text| {
        let result = parse_command(&text);
        if text.chars().count() > MAX_TEXT_CHARS {
            prop_assert_eq!(
                &result,
                &Err(CommandError::TooLong {
                    max: MAX_TEXT_CHARS
                })
            );
        }
        match result {
            Ok(PulseCommand::Pause { days }) => {
                prop_assert!((1..=MAX_PAUSE_DAYS).contains(&days), "{}", days)
            }
            Ok(PulseCommand::Answer(answer)) => {
                prop_assert!(!answer.trim().is_empty());
                let asked: Vec<QuestionId> =
                    catalogue.questions().iter().map(|q| q.id.clone()).collect();
                let reply = parse_answers(&answer, &catalogue, &asked);
                check_reply(&reply, &answer, &catalogue)?;
            }
            Ok(_) => {}
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(!shown.contains(['\n', '\r']), "{:?}", shown);
                match &e {
                    CommandError::Unknown { given }
                    | CommandError::BadPause { given }
                    | CommandError::UnexpectedArgument { given, .. } => {
                        prop_assert!(echo_ok(given), "{:?}", given)
                    }
                    CommandError::TooLong { .. } | CommandError::BadNudge => {}
                }
            }
        }
        Ok(())
    });
}

#[test]
fn replies_of_any_unicode() {
    let target = Target {
        name: "reply/raw",
        regressions: "tests/fuzz/regressions/reply-raw.txt",
        per_mille: 1000,
    };
    let catalogue = default_catalogue();
    let asked: Vec<QuestionId> = catalogue.questions().iter().map(|q| q.id.clone()).collect();
    target.run(any::<String>(), |text| {
        check_reply(&parse_answers(&text, &catalogue, &asked), &text, &catalogue)?;
        let _ = parse_command(&text);
        Ok(())
    });
}
