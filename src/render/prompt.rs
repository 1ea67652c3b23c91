//! The check-in prompt: one section and one row of buttons per question.
//!
//! Each button carries everything a click needs in its `value`
//! ([`ButtonValue`]): Slack signs the payload that echoes it back and users
//! cannot edit it, so a click is recorded without a lookup, and a click by
//! anyone but the prompt's own person is recognised and ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use super::{MAX_BUTTON_TEXT, MAX_BUTTON_VALUE, Message, escape, truncate};
use crate::domain::{Catalogue, IsoWeek, OptionKey, PersonId, QuestionId};

/// What a prompt button stands for, encoded as its `value`:
/// `v1|{week}|{question}|{option}|{person}|{schedule}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonValue {
    pub week: IsoWeek,
    pub question: QuestionId,
    pub option: OptionKey,
    pub person: PersonId,
    pub schedule: String,
}

impl fmt::Display for ButtonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v1|{}|{}|{}|{}|{}",
            self.week, self.question, self.option, self.person, self.schedule
        )
    }
}

impl ButtonValue {
    /// How every such value starts (its format's version), so a click
    /// handler can tell a prompt's buttons from others.
    pub const PREFIX: &'static str = "v1|";

    /// Reads a value written by [`ButtonValue::to_string`]; `None` for
    /// anything else (a button from another app, an old format).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.strip_prefix(Self::PREFIX)?.splitn(5, '|');
        Some(Self {
            week: parts.next()?.parse().ok()?,
            question: QuestionId::parse(parts.next()?).ok()?,
            option: OptionKey::parse(parts.next()?).ok()?,
            person: PersonId::parse(parts.next()?).ok()?,
            schedule: parts.next()?.to_owned(),
        })
    }

    /// The `action_id` of the button that carries this value:
    /// `{question}:{option}`.
    pub fn action_id(&self) -> String {
        format!("{}:{}", self.question, self.option)
    }
}

/// "N of M answered" for the prompt's questions.
pub fn prompt_progress(
    questions: &[QuestionId],
    answered: &BTreeMap<QuestionId, OptionKey>,
) -> (usize, usize) {
    let n = questions
        .iter()
        .filter(|q| answered.contains_key(*q))
        .count();
    (n, questions.len())
}

/// Renders the prompt for `person`'s `week`, marking what is already
/// `answered`. Questions unknown to the catalogue are left out.
pub fn prompt(
    catalogue: &Catalogue,
    questions: &[QuestionId],
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
    answered: &BTreeMap<QuestionId, OptionKey>,
) -> Message {
    titled(
        "Weekly check-in",
        catalogue,
        questions,
        person,
        week,
        schedule,
        answered,
    )
}

/// The reminder: the same prompt, headed as a second ask. Sent only to
/// people who have not answered the week yet.
pub fn reminder(
    catalogue: &Catalogue,
    questions: &[QuestionId],
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
    answered: &BTreeMap<QuestionId, OptionKey>,
) -> Message {
    titled(
        "Reminder: weekly check-in",
        catalogue,
        questions,
        person,
        week,
        schedule,
        answered,
    )
}

fn titled(
    title: &str,
    catalogue: &Catalogue,
    questions: &[QuestionId],
    person: &PersonId,
    week: IsoWeek,
    schedule: &str,
    answered: &BTreeMap<QuestionId, OptionKey>,
) -> Message {
    let (done, total) = prompt_progress(questions, answered);
    let headline = format!("{title} for {week}: {done} of {total} answered");
    let mut blocks = vec![json!({
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": format!(
                "*{}*\nOne click per question, or reply in this thread like `3-5, 4+, once, …`.",
                escape(&headline)
            ),
        },
    })];
    for question in questions.iter().filter_map(|id| catalogue.get(id.as_str())) {
        let chosen = answered.get(&question.id);
        let mark = match chosen.and_then(|key| question.option(key.as_str())) {
            Some(option) => format!("  ✓ _{}_", escape(&option.label)),
            None => String::new(),
        };
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("{}{mark}", escape(&question.text)) },
        }));
        let buttons: Vec<serde_json::Value> = question
            .options
            .iter()
            .map(|option| {
                let value = ButtonValue {
                    week,
                    question: question.id.clone(),
                    option: option.key.clone(),
                    person: person.clone(),
                    schedule: schedule.to_owned(),
                };
                let action_id = value.action_id();
                let value = value.to_string();
                debug_assert!(value.len() <= MAX_BUTTON_VALUE);
                let mut button = json!({
                    "type": "button",
                    "action_id": action_id,
                    "text": { "type": "plain_text", "text": truncate(&option.label, MAX_BUTTON_TEXT), "emoji": true },
                    "value": value,
                });
                if chosen == Some(&option.key) {
                    button["style"] = json!("primary");
                }
                button
            })
            .collect();
        blocks.push(json!({
            "type": "actions",
            "block_id": format!("q:{}", question.id),
            "elements": buttons,
        }));
    }
    Message {
        text: headline,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::default_catalogue;
    use crate::render::MAX_BLOCKS;

    fn ids(c: &Catalogue) -> Vec<QuestionId> {
        c.questions().iter().map(|q| q.id.clone()).collect()
    }

    #[test]
    fn button_values_round_trip_and_foreign_values_are_refused() {
        let v = ButtonValue {
            week: "2026-W47".parse().unwrap(),
            question: QuestionId::parse("decisions").unwrap(),
            option: OptionKey::parse("6+").unwrap(),
            person: PersonId::parse("U024BE7LH").unwrap(),
            schedule: "weekly-checkin".into(),
        };
        assert_eq!(
            v.to_string(),
            "v1|2026-W47|decisions|6+|U024BE7LH|weekly-checkin"
        );
        assert_eq!(ButtonValue::parse(&v.to_string()), Some(v));
        for bad in [
            "",
            "v2|2026-W47|decisions|6+|U1|s",
            "v1|2026-W99|decisions|6+|U1|s",
            "v1|2026-W47|decisions|6 +|U1|s",
            "v1|2026-W47",
        ] {
            assert_eq!(ButtonValue::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_prompt_has_a_button_row_per_question_within_slacks_limits() {
        let c = default_catalogue();
        let person = PersonId::parse("U1").unwrap();
        let week = "2026-W47".parse().unwrap();
        let m = prompt(
            &c,
            &ids(&c),
            &person,
            week,
            "weekly-checkin",
            &BTreeMap::new(),
        );
        assert!(m.blocks.len() <= MAX_BLOCKS);
        let rows: Vec<_> = m.blocks.iter().filter(|b| b["type"] == "actions").collect();
        assert_eq!(rows.len(), 7);
        for row in rows {
            for button in row["elements"].as_array().unwrap() {
                assert!(
                    button["text"]["text"].as_str().unwrap().chars().count() <= MAX_BUTTON_TEXT
                );
                let value = button["value"].as_str().unwrap();
                assert!(value.len() <= MAX_BUTTON_VALUE);
                assert!(ButtonValue::parse(value).is_some(), "{value}");
            }
        }
        assert_eq!(m.text, "Weekly check-in for 2026-W47: 0 of 7 answered");
    }

    #[test]
    fn prompt_and_reminder_render_as_block_kit() {
        let c = default_catalogue();
        let ids: Vec<QuestionId> = ["decisions", "capacity"]
            .map(|q| QuestionId::parse(q).unwrap())
            .into();
        let mut answered = BTreeMap::new();
        answered.insert(ids[1].clone(), OptionKey::parse("little").unwrap());
        let person = PersonId::parse("U024BE7LH").unwrap();
        let week = "2026-W47".parse().unwrap();
        insta::assert_json_snapshot!(
            "prompt",
            prompt(&c, &ids, &person, week, "weekly-checkin", &answered)
        );
        let r = reminder(&c, &ids, &person, week, "reminder", &BTreeMap::new());
        assert_eq!(
            r.text,
            "Reminder: weekly check-in for 2026-W47: 0 of 2 answered"
        );
        insta::assert_json_snapshot!("reminder", r);
    }

    #[test]
    fn answered_questions_are_marked_and_counted() {
        let c = default_catalogue();
        let mut answered = BTreeMap::new();
        answered.insert(
            QuestionId::parse("focus").unwrap(),
            OptionKey::parse("deciding").unwrap(),
        );
        let m = prompt(
            &c,
            &ids(&c),
            &PersonId::parse("U1").unwrap(),
            "2026-W47".parse().unwrap(),
            "weekly-checkin",
            &answered,
        );
        assert!(m.text.contains("1 of 7 answered"));
        let text = serde_json::to_string(&m.blocks).unwrap();
        assert!(text.contains("✓ _Deciding what &amp; why_"), "{text}");
        let primary = text.matches("\"primary\"").count();
        assert_eq!(primary, 1);
    }
}
