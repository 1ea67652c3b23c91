use proptest::prelude::*;

use super::*;
use crate::domain::default_catalogue;
use crate::reply::{CommandError, MAX_ECHO_CHARS, PulseCommand, parse_command};

fn all_ids() -> Vec<QuestionId> {
    default_catalogue()
        .questions()
        .iter()
        .map(|q| q.id.clone())
        .collect()
}

fn ids(names: &[&str]) -> Vec<QuestionId> {
    names
        .iter()
        .map(|n| QuestionId::parse(n).unwrap())
        .collect()
}

fn reply(answers: &[(&str, &str)], skipped: &[&str]) -> ParsedReply {
    ParsedReply {
        answers: answers
            .iter()
            .map(|(q, o)| (QuestionId::parse(q).unwrap(), OptionKey::parse(o).unwrap()))
            .collect(),
        skipped: ids(skipped),
    }
}

fn parse(text: &str) -> Result<ParsedReply, ReplyError> {
    parse_answers(text, &default_catalogue(), &all_ids())
}

/// A table row: the text, the answers and the skipped questions.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

const FULL: [(&str, &str); 7] = [
    ("decisions", "3-5"),
    ("stakeholders", "4+"),
    ("tradeoffs", "once"),
    ("focus", "deciding"),
    ("reversibility", "hardly"),
    ("continuity", "same"),
    ("capacity", "yes"),
];

#[test]
fn the_design_examples_parse() {
    assert_eq!(
        parse("3-5, 4+, once, deciding, hardly, same, yes"),
        Ok(reply(&FULL, &[]))
    );
    assert_eq!(
        parse("decisions=3-5 capacity=none"),
        Ok(reply(&[("decisions", "3-5"), ("capacity", "none")], &[]))
    );
}

#[test]
fn positional_replies() {
    let table: &[Case] = &[
        ("3–5, 4+, once, deciding, hardly, same, yes.", &FULL, &[]),
        ("3—5; 4+; Once; DECIDING; hardly; same; yes!", &FULL, &[]),
        ("3-5\n4+\nonce\ndeciding\nhardly\nsame\nyes", &FULL, &[]),
        (
            "• 3-5\n• 4+\n• once\n• deciding\n• hardly\n• same\n• yes",
            &FULL,
            &[],
        ),
        (
            "1. 3-5\n2. 4+\n3. once\n4. deciding\n5. hardly\n6. same\n7. yes",
            &FULL,
            &[],
        ),
        ("3-5 4+ once deciding hardly same yes", &FULL, &[]),
        ("3-5, 4+, once, deciding, hardly, same, yes,", &FULL, &[]),
        (
            "  3 - 5 ,4 +,  \"once\"  ",
            &[
                ("decisions", "3-5"),
                ("stakeholders", "4+"),
                ("tradeoffs", "once"),
            ],
            &[],
        ),
        (
            "3-5, 4+",
            &[("decisions", "3-5"), ("stakeholders", "4+")],
            &[],
        ),
        ("6+", &[("decisions", "6+")], &[]),
        (
            "4, 7, ?",
            &[("decisions", "3-5"), ("stakeholders", "4+")],
            &["tradeoffs"],
        ),
        (
            "-, ?, skip, n/a, —, , yes",
            &[("capacity", "yes")],
            &[
                "decisions",
                "stakeholders",
                "tradeoffs",
                "focus",
                "reversibility",
                "continuity",
            ],
        ),
        (
            "3-5,, once",
            &[("decisions", "3-5"), ("tradeoffs", "once")],
            &["stakeholders"],
        ),
        (
            "3-5 - once",
            &[("decisions", "3-5"), ("tradeoffs", "once")],
            &["stakeholders"],
        ),
        (
            "1–2, 2–3, Several, Deciding what & why, Partly, Rotated, A little",
            &[
                ("decisions", "1-2"),
                ("stakeholders", "2-3"),
                ("tradeoffs", "several"),
                ("focus", "deciding"),
                ("reversibility", "partly"),
                ("continuity", "rotated"),
                ("capacity", "little"),
            ],
            &[],
        ),
        (
            "0, 0-1, none, tracking delivery, easily, same, a little",
            &[
                ("decisions", "0"),
                ("stakeholders", "0-1"),
                ("tradeoffs", "none"),
                ("focus", "tracking"),
                ("reversibility", "easily"),
                ("continuity", "same"),
                ("capacity", "little"),
            ],
            &[],
        ),
        (
            "<@U024BE7LH> 6+, 0-1",
            &[("decisions", "6+"), ("stakeholders", "0-1")],
            &[],
        ),
    ];
    for (text, answers, skipped) in table {
        assert_eq!(parse(text), Ok(reply(answers, skipped)), "{text:?}");
    }
}

#[test]
fn positional_replies_follow_the_questions_asked() {
    let asked = ids(&["capacity", "focus"]);
    assert_eq!(
        parse_answers(
            "a little, deciding what and why",
            &default_catalogue(),
            &asked
        ),
        Ok(reply(&[("focus", "deciding"), ("capacity", "little")], &[]))
    );
    // Slack escapes `&` in message text.
    assert_eq!(
        parse_answers(
            "Deciding what &amp; why",
            &default_catalogue(),
            &ids(&["focus"])
        ),
        Ok(reply(&[("focus", "deciding")], &[]))
    );
    // Unknown and repeated ids in `questions` are ignored.
    let asked = ids(&["mood", "capacity", "capacity", "decisions"]);
    assert_eq!(
        parse_answers("yes, 0", &default_catalogue(), &asked),
        Ok(reply(&[("decisions", "0"), ("capacity", "yes")], &[]))
    );
}

#[test]
fn named_replies() {
    let table: &[Case] = &[
        (
            "decisions=3–5 capacity=none",
            &[("decisions", "3-5"), ("capacity", "none")],
            &[],
        ),
        (
            "Decisions: 3-5, Capacity: None.",
            &[("decisions", "3-5"), ("capacity", "none")],
            &[],
        ),
        (
            "decisions = 3-5\ncapacity = a little",
            &[("decisions", "3-5"), ("capacity", "little")],
            &[],
        ),
        (
            "capacity=a little focus=Deciding what & why decisions=6 +",
            &[
                ("decisions", "6+"),
                ("focus", "deciding"),
                ("capacity", "little"),
            ],
            &[],
        ),
        (
            "stakeholders=5; tradeoffs=-",
            &[("stakeholders", "4+")],
            &["tradeoffs"],
        ),
        ("focus: skip", &[], &["focus"]),
        (
            "• continuity=same\n• reversibility=hardly",
            &[("reversibility", "hardly"), ("continuity", "same")],
            &[],
        ),
        ("decisions＝3-5", &[("decisions", "3-5")], &[]),
    ];
    for (text, answers, skipped) in table {
        assert_eq!(parse(text), Ok(reply(answers, skipped)), "{text:?}");
    }
}

#[test]
fn emoji_carry_no_answer() {
    assert_eq!(
        parse("3-5, 4+ :tada::skin-tone-2:"),
        Ok(reply(&[("decisions", "3-5"), ("stakeholders", "4+")], &[]))
    );
    assert_eq!(
        parse("decisions=6+ 🎉 capacity: yes 👍🏽"),
        Ok(reply(&[("decisions", "6+"), ("capacity", "yes")], &[]))
    );
    assert_eq!(parse("👍"), Err(ReplyError::Empty));
    assert_eq!(parse(":+1:"), Err(ReplyError::Empty));
    assert_eq!(parse_command(":wave:"), Ok(PulseCommand::Help));
    assert_eq!(parse_command("now :pray:"), Ok(PulseCommand::Now));
}

#[test]
fn huge_input_is_refused_without_reading_it() {
    let huge = "3-5, ".repeat(1_000_000);
    assert_eq!(
        parse(&huge),
        Err(ReplyError::TooLong {
            max: MAX_TEXT_CHARS
        })
    );
    assert_eq!(
        parse_command(&huge),
        Err(CommandError::TooLong {
            max: MAX_TEXT_CHARS
        })
    );
    // Just under the cap is read, and refused for what it says.
    let long = "decisions=3-5 ".repeat(MAX_TEXT_CHARS / 14);
    assert!(matches!(parse(&long), Err(ReplyError::Duplicate { .. })));
}

#[test]
fn named_replies_may_answer_questions_not_asked() {
    assert_eq!(
        parse_answers("capacity=yes", &default_catalogue(), &ids(&["decisions"])),
        Ok(reply(&[("capacity", "yes")], &[]))
    );
}

#[test]
fn errors_name_the_problem() {
    let table: &[(&str, ReplyError, &str)] = &[
        (
            "lots",
            ReplyError::UnknownOption {
                question: QuestionId::parse("decisions").unwrap(),
                given: "lots".into(),
                options: vec!["0".into(), "1-2".into(), "3-5".into(), "6+".into()],
            },
            "\"lots\" is not an answer to decisions; try one of 0, 1-2, 3-5, 6+",
        ),
        (
            "3-5 lots",
            ReplyError::UnknownOption {
                question: QuestionId::parse("stakeholders").unwrap(),
                given: "lots".into(),
                options: vec!["0-1".into(), "2-3".into(), "4+".into()],
            },
            "\"lots\" is not an answer to stakeholders; try one of 0-1, 2-3, 4+",
        ),
        (
            "capacity=maybe",
            ReplyError::UnknownOption {
                question: QuestionId::parse("capacity").unwrap(),
                given: "maybe".into(),
                options: vec!["none".into(), "little".into(), "yes".into()],
            },
            "\"maybe\" is not an answer to capacity; try one of none, little, yes",
        ),
        (
            "mood=great",
            ReplyError::UnknownQuestion {
                given: "mood".into(),
                known: all_ids().iter().map(|q| q.to_string()).collect(),
            },
            "\"mood\" is not a question; use one of decisions, stakeholders, tradeoffs, \
             focus, reversibility, continuity, capacity",
        ),
        (
            "3-5, 4+, once, deciding, hardly, same, yes, 7",
            ReplyError::TooManyValues {
                given: 8,
                expected: 7,
            },
            "8 answers for 7 questions; give at most one per question, in order",
        ),
        (" ,. \n ! ", ReplyError::Empty, "that reply is empty"),
        (
            "decisions=3-5 Decisions=6+",
            ReplyError::Duplicate {
                question: QuestionId::parse("decisions").unwrap(),
            },
            "decisions is answered twice; give it once",
        ),
        (
            "3-5, capacity=none",
            ReplyError::Unreadable {
                fragment: "3-5".into(),
            },
            "couldn't read \"3-5\"; write name=value, or the answers in order separated by commas",
        ),
        (
            "decisions=",
            ReplyError::Unreadable {
                fragment: "decisions=".into(),
            },
            "couldn't read \"decisions=\"; write name=value, or the answers in order separated by commas",
        ),
        (
            "= 3-5",
            ReplyError::Unreadable {
                fragment: "= 3-5".into(),
            },
            "couldn't read \"= 3-5\"; write name=value, or the answers in order separated by commas",
        ),
    ];
    for (text, error, message) in table {
        let got = parse(text);
        assert_eq!(got.as_ref(), Err(error), "{text:?}");
        assert_eq!(error.to_string(), *message);
    }
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    assert_eq!(
        parse(&long),
        Err(ReplyError::TooLong {
            max: MAX_TEXT_CHARS
        })
    );
    assert_eq!(
        ReplyError::TooLong {
            max: MAX_TEXT_CHARS
        }
        .to_string(),
        "that reply is too long to read (over 4000 characters)"
    );
    assert_eq!(
        parse_answers("3-5", &default_catalogue(), &[]),
        Err(ReplyError::TooManyValues {
            given: 1,
            expected: 0
        })
    );
    assert_eq!(
        parse_answers("3-5, 4+", &default_catalogue(), &ids(&["decisions"]))
            .unwrap_err()
            .to_string(),
        "2 answers for 1 question; give one value"
    );
}

#[test]
fn an_echoed_value_is_clipped() {
    let text = format!("capacity={}", "ä".repeat(500));
    let Err(ReplyError::UnknownOption { given, .. }) = parse(&text) else {
        panic!("expected UnknownOption");
    };
    assert_eq!(given.chars().count(), MAX_ECHO_CHARS);
    assert!(given.ends_with('…'));
}

#[test]
fn ambiguous_labels_are_not_accepted() {
    use crate::domain::{Catalogue, Question, QuestionOption};
    let option = |key: &str, label: &str| QuestionOption {
        key: OptionKey::parse(key).unwrap(),
        label: label.into(),
        score: 0.0,
    };
    let catalogue = Catalogue::new(vec![Question {
        id: QuestionId::parse("mood").unwrap(),
        text: "Mood?".into(),
        options: vec![
            option("up", "Fine"),
            option("flat", "fine"),
            option("down", "Low"),
        ],
    }]);
    let asked = ids(&["mood"]);
    assert!(matches!(
        parse_answers("fine", &catalogue, &asked),
        Err(ReplyError::UnknownOption { .. })
    ));
    assert_eq!(
        parse_answers("low", &catalogue, &asked),
        Ok(reply(&[("mood", "down")], &[]))
    );
}

#[test]
fn understood_uses_labels() {
    let catalogue = default_catalogue();
    let parsed = parse("decisions=3-5 stakeholders=4+ capacity=yes").unwrap();
    assert_eq!(
        understood(&parsed, &catalogue),
        "Got it: decisions 3–5, stakeholders 4+, capacity yes."
    );
    let parsed = parse("-, -, -, deciding, , , a little").unwrap();
    assert_eq!(
        understood(&parsed, &catalogue),
        "Got it: focus deciding what & why, capacity a little; \
         skipped decisions, stakeholders, tradeoffs, reversibility, continuity."
    );
    assert_eq!(
        understood(&parse("capacity=-").unwrap(), &catalogue),
        "Got it: skipped capacity."
    );
    assert_eq!(
        understood(&ParsedReply::default(), &catalogue),
        "Got it, but there was nothing to record."
    );
}

#[test]
fn help_text_shows_both_forms_with_real_keys() {
    let catalogue = default_catalogue();
    assert_eq!(
        help_text(&catalogue, &all_ids()),
        "Reply with answers in order, like `3-5, 2-3, once, mixed, partly, partly, little` \
         (`-` skips one), or by name, like `decisions=3-5 capacity=little`.\n\
         Options · decisions: 0, 1-2, 3-5, 6+ · stakeholders: 0-1, 2-3, 4+ · \
         tradeoffs: none, once, several · focus: tracking, mixed, deciding · \
         reversibility: easily, partly, hardly · continuity: rotated, partly, same · \
         capacity: none, little, yes"
    );
    let one = help_text(&catalogue, &ids(&["capacity"]));
    assert!(
        one.contains("`little`") && one.contains("`capacity=little`"),
        "{one}"
    );
    assert_eq!(
        help_text(&catalogue, &[]),
        help_text(&catalogue, &all_ids())
    );
    // Every example in the help text parses.
    for example in help_text(&catalogue, &all_ids())
        .split('`')
        .skip(1)
        .step_by(2)
    {
        assert!(parse(example).is_ok(), "{example}");
    }
}

/// How one question appears in a generated reply.
#[derive(Debug, Clone)]
enum Slot {
    Omitted,
    Skipped(&'static str),
    Answered {
        option: usize,
        as_label: bool,
        shout: bool,
    },
}

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        1 => Just(Slot::Omitted),
        1 => prop::sample::select(vec!["-", "?", "skip", "Skip", "–", "n/a"]).prop_map(Slot::Skipped),
        4 => (0usize..8, any::<bool>(), any::<bool>())
            .prop_map(|(option, as_label, shout)| Slot::Answered { option, as_label, shout }),
    ]
}

/// The text for an answered slot, and the key it stands for.
fn render(question: &Question, option: usize, as_label: bool, shout: bool) -> (String, String) {
    let option = &question.options[option % question.options.len()];
    let text = if as_label {
        option.label.clone()
    } else {
        option.key.to_string()
    };
    let text = if shout { text.to_uppercase() } else { text };
    (text, option.key.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_answers_never_panics(text in any::<String>()) {
        let _ = parse_answers(&text, &default_catalogue(), &all_ids());
    }

    #[test]
    fn parse_answers_never_panics_on_near_misses(
        text in "[a-z0-9 =:,;.?!*+&<>@•\\-–—\n\"'`]{0,120}"
    ) {
        let _ = parse_answers(&text, &default_catalogue(), &all_ids());
    }

    #[test]
    fn named_replies_round_trip(
        slots in prop::collection::vec(slot(), 7),
        order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        separator in prop::sample::select(vec![" ", ", ", "\n", "; ", " ,  "]),
        assign in prop::sample::select(vec!["=", ": ", " = ", ":"]),
    ) {
        let catalogue = default_catalogue();
        let questions = catalogue.questions();
        let mut parts = Vec::new();
        let mut expected = ParsedReply::default();
        for &i in &order {
            let question = &questions[i];
            match &slots[i] {
                Slot::Omitted => {}
                Slot::Skipped(word) => {
                    parts.push(format!("{}{assign}{word}", question.id));
                }
                &Slot::Answered { option, as_label, shout } => {
                    let (text, key) = render(question, option, as_label, shout);
                    parts.push(format!("{}{assign}{text}", question.id));
                    expected.answers.push((question.id.clone(), OptionKey::parse(&key).unwrap()));
                }
            }
        }
        for (i, s) in slots.iter().enumerate() {
            if matches!(s, Slot::Skipped(_)) {
                expected.skipped.push(questions[i].id.clone());
            }
        }
        expected.answers.sort_by_key(|(q, _)| catalogue.position(q.as_str()));
        prop_assume!(!parts.is_empty());
        let text = parts.join(separator);
        prop_assert_eq!(parse_answers(&text, &catalogue, &all_ids()), Ok(expected), "{:?}", text);
    }

    #[test]
    fn positional_replies_round_trip(
        slots in prop::collection::vec(slot(), 7),
        order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        asked_count in 1usize..=7,
        separator in prop::sample::select(vec![", ", ",", "; ", "\n", " ,  "]),
    ) {
        let catalogue = default_catalogue();
        let questions = catalogue.questions();
        let asked: Vec<QuestionId> =
            order[..asked_count].iter().map(|&i| questions[i].id.clone()).collect();
        // Omitted slots become blanks in the middle; values stop at the
        // last slot that says something.
        let said = slots[..asked_count]
            .iter()
            .rposition(|s| !matches!(s, Slot::Omitted))
            .map_or(0, |last| last + 1);
        prop_assume!(said > 0);
        let mut values = Vec::new();
        let mut expected = ParsedReply::default();
        for (slot, id) in slots[..said].iter().zip(&asked) {
            let question = catalogue.get(id.as_str()).unwrap();
            match slot {
                Slot::Omitted => {
                    values.push(String::new());
                    expected.skipped.push(id.clone());
                }
                Slot::Skipped(word) => {
                    values.push((*word).to_owned());
                    expected.skipped.push(id.clone());
                }
                &Slot::Answered { option, as_label, shout } => {
                    let (text, key) = render(question, option, as_label, shout);
                    values.push(text);
                    expected.answers.push((id.clone(), OptionKey::parse(&key).unwrap()));
                }
            }
        }
        // A blank line is no value, so newline-separated replies say
        // `-` where the other forms leave a slot empty.
        if separator == "\n" {
            for value in &mut values {
                if value.is_empty() {
                    *value = "-".into();
                }
            }
        }
        expected.answers.sort_by_key(|(q, _)| catalogue.position(q.as_str()));
        expected.skipped.sort_by_key(|q| catalogue.position(q.as_str()));
        let text = values.join(separator);
        prop_assert_eq!(parse_answers(&text, &catalogue, &asked), Ok(expected), "{:?}", text);
    }
}
