//! The readiness nudge: the one message nudged exists to send. It
//! recognises a role that has already grown, names the step it is about —
//! structured product-owner training, as reinforcement of decisions the
//! person already makes — speaks to their timing in their own answer, says
//! why in their words ([`super::reasons`]), and can be answered with one
//! click (Interested, Not now, Not for me).
//!
//! [`nudge`] draws the message as stored with the nudge, without buttons;
//! [`with_answer`] adds the buttons and, once answered, what the answer
//! means, so the posted nudge and every redraw after a click are the same
//! message. Each button carries a [`NudgeButton`] in its `value`.

use std::fmt;

use serde_json::{Value, json};

use super::reasons::{in_words, room, signal_in_words, signal_is_strong};
use super::{DEFAULT_TRAINING, MAX_BUTTON_TEXT, Message, MessageSettings, escape, truncate};
use crate::domain::{Catalogue, IsoWeek, NudgeResponse, PersonId};
use crate::model::{Assessment, Facts, NO_CAPACITY, Rule};

/// What a nudge's answer button stands for, encoded as its `value`:
/// `n1|{week}|{response}|{person}`, the nudge being the one sent to
/// `person` in `week`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NudgeButton {
    pub week: IsoWeek,
    pub response: NudgeResponse,
    pub person: PersonId,
}

impl fmt::Display for NudgeButton {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n1|{}|{}|{}", self.week, self.response, self.person)
    }
}

impl NudgeButton {
    /// Reads a value written by its `Display`; `None` for
    /// anything else (a prompt's button, another app's).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(4, '|');
        if parts.next()? != "n1" {
            return None;
        }
        Some(Self {
            week: parts.next()?.parse().ok()?,
            response: parts.next()?.parse().ok()?,
            person: PersonId::parse(parts.next()?).ok()?,
        })
    }
}

/// The `block_id` of the nudge's row of answer buttons.
pub const ANSWER_BLOCK: &str = "nudge:answer";

/// Replaces each `{placeholder}` of `template` in one pass, so a value
/// that itself holds `{…}` (a name) is shown as written.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let known = after.find('}').and_then(|close| {
            let value = values.iter().find(|(k, _)| *k == &after[..close])?.1;
            Some((close, value))
        });
        match known {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn context(text: String) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": text }] })
}

/// The timing line: from the person's latest capacity answer in
/// `assessment`, or that the timing is theirs when they never gave one.
fn timing(assessment: &Assessment, messages: &MessageSettings, name: &str) -> String {
    let capacity = assessment
        .reasons
        .iter()
        .find(|r| r.rule == Rule::Capacity)
        .map(|r| &r.facts);
    match capacity {
        Some(Facts::Capacity {
            answer, held_weeks, ..
        }) if answer.as_str() == NO_CAPACITY => fill(
            &messages.nudge_timing_released,
            &[("name", name), ("weeks", &held_weeks.to_string())],
        ),
        Some(Facts::Capacity { answer, .. }) => fill(
            &messages.nudge_timing,
            &[
                ("name", name),
                ("room", room(answer.as_str()).unwrap_or("room")),
            ],
        ),
        _ => fill(&messages.nudge_timing_unknown, &[("name", name)]),
    }
}

/// Why now, in the person's words: the weeks that looked like ownership,
/// each signal that showed in most of its weeks, anchoring, and what
/// re-armed a second nudge. Timing has its own paragraph above, from the
/// same answer. The rules about enough data, the recent average and the
/// slope are left to the trend post: here they would say "sustained" three
/// more times.
fn why(assessment: &Assessment, catalogue: &Catalogue) -> Vec<String> {
    let held = |rule: Rule| {
        assessment
            .reasons
            .iter()
            .filter(move |r| r.rule == rule && r.holds)
            .map(|r| in_words(r, catalogue))
    };
    let window = assessment.weeks.len();
    let signals = assessment
        .signals
        .iter()
        .filter(|s| signal_is_strong(s))
        .filter_map(|s| signal_in_words(s, window, catalogue));
    held(Rule::StrongWeeks)
        .chain(signals)
        .chain(held(Rule::Continuity))
        .chain(held(Rule::Cooldown))
        .chain(held(Rule::NotNow))
        .chain(held(Rule::NudgesOff))
        .collect()
}

/// The nudge for `assessment` (a sustained one), as stored: title, body,
/// the next step with a link button to `messages.training_url` if set,
/// timing, the reasons, and the weeks they come from. No answer buttons:
/// [`with_answer`] adds them.
pub fn nudge(
    name: Option<&str>,
    messages: &MessageSettings,
    assessment: &Assessment,
    catalogue: &Catalogue,
) -> Message {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("there");
    let training = messages
        .training_name
        .as_deref()
        .unwrap_or(DEFAULT_TRAINING);
    // Filled first, escaped once: the name and the operator's wording are
    // both shown as written, never as markup.
    let title = escape(&fill(&messages.nudge_title, &[("name", name)]));
    let mut next_step = section(escape(&fill(
        &messages.nudge_next_step,
        &[("name", name), ("training", training)],
    )));
    if let Some(url) = &messages.training_url {
        let label = messages
            .training_name
            .as_deref()
            .unwrap_or("About the training");
        next_step["accessory"] = json!({
            "type": "button",
            "action_id": "nudge:training",
            "text": { "type": "plain_text", "text": truncate(label, MAX_BUTTON_TEXT), "emoji": true },
            "url": url,
        });
    }
    let counted: Vec<IsoWeek> = assessment
        .weeks
        .iter()
        .filter(|w| w.counted)
        .map(|w| w.week)
        .collect();
    let last = assessment.weeks.last().map(|w| w.week);
    let (from, to) = match (
        counted.first().or(last.as_ref()),
        counted.last().or(last.as_ref()),
    ) {
        (Some(from), Some(to)) => (from.to_string(), to.to_string()),
        _ => (String::new(), String::new()),
    };
    let reasons: Vec<String> = why(assessment, catalogue)
        .into_iter()
        .map(|line| format!("• {line}"))
        .collect();
    let blocks = vec![
        section(format!("*{title}*")),
        section(escape(&fill(&messages.nudge_body, &[("name", name)]))),
        next_step,
        section(escape(&timing(assessment, messages, name))),
        section(format!("*Why now*\n{}", reasons.join("\n"))),
        context(format!(
            "From your answers {from} to {to}. `/pulse trend` shows every week."
        )),
    ];
    Message {
        text: title,
        blocks,
    }
}

/// What an answer means, said under the buttons once it is given.
fn answered(response: NudgeResponse, not_now_weeks: u32) -> String {
    match response {
        NudgeResponse::Interested => "*You answered: Interested.* A word with your lead about \
             time and budget for it is a good next step."
            .to_owned(),
        NudgeResponse::NotNow => format!(
            "*You answered: Not now.* nudged asks again in about {not_now_weeks} weeks, if your \
             role still looks like this."
        ),
        NudgeResponse::NotForMe => "*You answered: Not for me.* No more nudges unless you ask: \
             `/pulse nudge on`."
            .to_owned(),
    }
}

/// `content` (as [`nudge`] drew it) with its row of answer buttons for
/// `person`'s nudge of `week`; with `answer`, that button marked and what
/// the answer means below. Another click changes the answer.
pub fn with_answer(
    content: &Message,
    person: &PersonId,
    week: IsoWeek,
    answer: Option<NudgeResponse>,
    not_now_weeks: u32,
) -> Message {
    let buttons: Vec<Value> = NudgeResponse::ALL
        .into_iter()
        .map(|response| {
            let value = NudgeButton {
                week,
                response,
                person: person.clone(),
            };
            let mut button = json!({
                "type": "button",
                "action_id": format!("nudge:{response}"),
                "text": { "type": "plain_text", "text": response.label(), "emoji": true },
                "value": value.to_string(),
            });
            if answer == Some(response) {
                button["style"] = json!("primary");
            }
            button
        })
        .collect();
    let mut blocks = content.blocks.clone();
    blocks.push(json!({ "type": "actions", "block_id": ANSWER_BLOCK, "elements": buttons }));
    if let Some(response) = answer {
        blocks.push(section(answered(response, not_now_weeks)));
    }
    Message {
        text: content.text.clone(),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Answer, OptionKey, QuestionId, default_catalogue};
    use crate::model::{History, Params, State, assess};
    use crate::render::MAX_BLOCKS;

    /// `weeks` weeks of strong, anchored answers ending in 2026-W47, each
    /// with capacity `capacity` except the last `last_capacity`.
    fn history(weeks: i64, capacity: &str, last_capacity: &str) -> Vec<Answer> {
        let end: IsoWeek = "2026-W47".parse().unwrap();
        let person = PersonId::parse("U1").unwrap();
        let mut answers = Vec::new();
        for i in (0..weeks).rev() {
            let capacity = if i == 0 { last_capacity } else { capacity };
            for (q, o) in [
                ("decisions", "3-5"),
                ("stakeholders", "4+"),
                ("tradeoffs", "several"),
                ("focus", "deciding"),
                ("reversibility", "hardly"),
                ("continuity", "same"),
                ("capacity", capacity),
            ] {
                answers.push(Answer {
                    person: person.clone(),
                    week: end.plus(-i),
                    question: QuestionId::parse(q).unwrap(),
                    option: OptionKey::parse(o).unwrap(),
                });
            }
        }
        answers
    }

    /// Sunday of 2026-W47.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn assessed(answers: &[Answer], catalogue: &Catalogue) -> Assessment<'static> {
        let catalogue: &'static Catalogue = Box::leak(Box::new(catalogue.clone()));
        let a = assess(
            &History {
                answers,
                nudges: &[],
                nudges_off: false,
            },
            catalogue,
            &Params::default(),
            today(),
        );
        assert_eq!(a.state, State::Sustained, "{:#?}", a.reasons);
        a
    }

    fn person() -> PersonId {
        PersonId::parse("U1").unwrap()
    }

    fn week() -> IsoWeek {
        "2026-W47".parse().unwrap()
    }

    /// The nudge as posted: content and unanswered buttons.
    fn posted(name: Option<&str>, messages: &MessageSettings, answers: &[Answer]) -> Message {
        let catalogue = default_catalogue();
        let a = assessed(answers, &catalogue);
        with_answer(
            &nudge(name, messages, &a, &catalogue),
            &person(),
            week(),
            None,
            8,
        )
    }

    fn linked() -> MessageSettings {
        MessageSettings {
            training_name: Some("CSPO at the Acme Academy".into()),
            training_url: Some("https://learning.example.com/cspo?x=1&y=2".into()),
            ..MessageSettings::default()
        }
    }

    #[test]
    fn the_default_nudge_names_the_training_speaks_to_timing_and_says_why() {
        let m = posted(
            Some("Ada"),
            &MessageSettings::default(),
            &history(10, "yes", "yes"),
        );
        insta::assert_json_snapshot!("nudge_default", m);
        let text = serde_json::to_string(&m.blocks).unwrap();
        assert!(
            text.contains("a Certified Scrum Product Owner (CSPO) course"),
            "{text}"
        );
        assert!(text.contains("not as a shortcut or a credential"), "{text}");
        assert!(
            text.contains("You said you have room to learn this month"),
            "{text}"
        );
        assert!(
            !text.contains("\"url\""),
            "no link unless configured: {text}"
        );
        assert!(
            !text.contains("index"),
            "the model's terms stay out: {text}"
        );
        assert!(m.blocks.len() <= MAX_BLOCKS);
    }

    #[test]
    fn a_configured_training_is_named_and_linked_as_a_button() {
        let m = posted(Some("Ada"), &linked(), &history(10, "yes", "little"));
        insta::assert_json_snapshot!("nudge_with_training_link", m);
        let next_step = &m.blocks[2];
        assert!(
            next_step["text"]["text"]
                .as_str()
                .unwrap()
                .contains("such as CSPO at the Acme Academy,")
        );
        assert_eq!(
            next_step["accessory"]["url"],
            "https://learning.example.com/cspo?x=1&y=2"
        );
        assert_eq!(
            next_step["accessory"]["text"]["text"],
            "CSPO at the Acme Academy"
        );
        assert!(
            m.blocks[3]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("You said you have a little room to learn this month")
        );
    }

    #[test]
    fn a_nudge_released_after_a_capacity_hold_says_the_timing_is_the_persons_call() {
        // "No room" for the last 7 weeks of a long sustained stretch: held
        // 6 weeks, then sent.
        let mut answers = history(16, "yes", "none");
        for a in answers.iter_mut() {
            if a.question.as_str() == "capacity" && a.week >= week().plus(-6) {
                a.option = OptionKey::parse("none").unwrap();
            }
        }
        let m = posted(None, &MessageSettings::default(), &answers);
        insta::assert_json_snapshot!("nudge_released_after_hold", m);
        let timing = m.blocks[3]["text"]["text"].as_str().unwrap();
        assert!(
            timing.starts_with("For 7 weeks you said there is no room"),
            "{timing}"
        );
        assert!(timing.contains("is your call"), "{timing}");
    }

    #[test]
    fn the_reasons_are_the_signals_in_the_persons_words() {
        let m = posted(
            Some("Ada"),
            &MessageSettings::default(),
            &history(14, "yes", "yes"),
        );
        let why = m.blocks[4]["text"]["text"].as_str().unwrap();
        for signal in [
            "*Week after week*",
            "*Decision load*: you made 3 or more priority calls others acted on in 8 of the last 8 weeks.",
            "*Ownership, not coordination*",
            "*Stakeholder pressure*",
            "*Consequences*",
            "*Trade-offs to defend*",
            "*Anchored to one product*: the same product 14 of the last 16 weeks.",
        ] {
            assert!(why.contains(signal), "{signal} missing from {why}");
        }
        assert!(!why.contains('✗') && !why.contains('≥'), "{why}");
        // Timing is said once, in its own paragraph.
        assert!(!why.contains("*Timing*"), "{why}");
    }

    #[test]
    fn the_name_and_the_wording_are_shown_as_written_never_as_markup() {
        let messages = MessageSettings {
            nudge_title: "Hi {name} <!channel>".into(),
            nudge_body: "Body for {name}".into(),
            training_name: Some("{name} & <b>".into()),
            ..MessageSettings::default()
        };
        let m = posted(
            Some("{training} <@U2>"),
            &messages,
            &history(10, "yes", "yes"),
        );
        assert_eq!(m.text, "Hi {training} &lt;@U2&gt; &lt;!channel&gt;");
        let next = m.blocks[2]["text"]["text"].as_str().unwrap();
        assert!(next.contains("such as {name} &amp; &lt;b&gt;,"), "{next}");
        let m = posted(None, &messages, &history(10, "yes", "yes"));
        assert_eq!(m.blocks[1]["text"]["text"], "Body for there");
    }

    #[test]
    fn each_answer_is_marked_and_explained_and_the_buttons_stay() {
        let catalogue = default_catalogue();
        let a = assessed(&history(10, "yes", "yes"), &catalogue);
        let content = nudge(Some("Ada"), &MessageSettings::default(), &a, &catalogue);
        for (response, says) in [
            (NudgeResponse::Interested, "A word with your lead"),
            (NudgeResponse::NotNow, "asks again in about 8 weeks"),
            (NudgeResponse::NotForMe, "`/pulse nudge on`"),
        ] {
            let m = with_answer(&content, &person(), week(), Some(response), 8);
            assert_eq!(m.text, content.text);
            let row = &m.blocks[content.blocks.len()];
            assert_eq!(row["block_id"], ANSWER_BLOCK);
            let buttons = row["elements"].as_array().unwrap();
            assert_eq!(buttons.len(), 3);
            for b in buttons {
                let value = NudgeButton::parse(b["value"].as_str().unwrap()).unwrap();
                assert_eq!(value.person, person());
                assert_eq!(b.get("style").is_some(), value.response == response, "{b}");
            }
            let note = m.blocks.last().unwrap()["text"]["text"].as_str().unwrap();
            assert!(
                note.contains(response.label()) && note.contains(says),
                "{note}"
            );
        }
    }

    #[test]
    fn nudge_button_values_round_trip_and_others_are_refused() {
        let v = NudgeButton {
            week: week(),
            response: NudgeResponse::NotNow,
            person: person(),
        };
        assert_eq!(v.to_string(), "n1|2026-W47|not-now|U1");
        assert_eq!(NudgeButton::parse(&v.to_string()), Some(v));
        for bad in [
            "",
            "v1|2026-W47|decisions|3-5|U1|weekly-checkin",
            "n1|2026-W47|maybe|U1",
            "n1|2026-W99|not-now|U1",
            "n1|2026-W47|not-now|",
            "n2|2026-W47|not-now|U1",
        ] {
            assert_eq!(NudgeButton::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fill_replaces_known_placeholders_once_and_keeps_the_rest() {
        assert_eq!(
            fill(
                "Hi {name}, {training}",
                &[("name", "{training}"), ("training", "T")]
            ),
            "Hi {training}, T"
        );
        assert_eq!(fill("{x} and { and }", &[("name", "A")]), "{x} and { and }");
    }
}
