//! Messages as text, for targets that show no Block Kit: the console, and
//! the Mattermost and Rocket.Chat flavours of the webhook.
//!
//! Rendering works on the stored message (its `text` and `blocks`), so any
//! outbox row can be shown, whoever enqueued it. A prompt (a message with
//! rows of answer buttons) becomes its headline, each question, and below
//! each question its option keys, which is what a person types to answer;
//! the prompt's Block Kit intro, which speaks of clicking, is left out.
//! Where a button's label says more than its key (`deciding` for "Deciding
//! what & why"), the label follows in brackets.
//!
//! Slack's mrkdwn is converted to the target's [`Markup`]: `*bold*` stays
//! for Slack and Rocket.Chat, becomes `**bold**` for Markdown (Mattermost),
//! and loses its markers as plain text (the console). Only Slack needs
//! `&amp;`, `&lt;` and `&gt;`; every other target gets the characters.

use serde_json::Value;

use super::ButtonValue;

/// How emphasis is written on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Slack's mrkdwn: `*bold*`, `_italic_`, `&amp;` for `&`.
    Mrkdwn,
    /// Rocket.Chat's markdown: `*bold*` as in Slack, plain `&`.
    RocketChat,
    /// CommonMark as Mattermost reads it: `**bold**`, `_italic_`, plain `&`.
    Markdown,
    /// A terminal: no markers, plain `&`.
    Plain,
}

/// Whether `blocks` hold rows of answer buttons, i.e. the message is a
/// check-in prompt.
pub fn is_prompt(blocks: &[Value]) -> bool {
    blocks.iter().any(is_answer_row)
}

/// A row of prompt buttons: an `actions` block whose buttons carry
/// [`ButtonValue`]s.
fn is_answer_row(block: &Value) -> bool {
    block["type"] == "actions"
        && block["elements"]
            .as_array()
            .is_some_and(|buttons| buttons.iter().any(|b| answer_key(b).is_some()))
}

/// The option key a prompt button stands for.
fn answer_key(button: &Value) -> Option<String> {
    let value = ButtonValue::parse(button["value"].as_str()?)?;
    Some(value.option.to_string())
}

/// How to answer a prompt by typing, with its own questions and keys:
/// the middle option of each as a neutral example (as in
/// [`crate::reply::help_text`]). `None` for a message that is no prompt.
pub fn typing_hint(blocks: &[Value]) -> Option<String> {
    let rows: Vec<Vec<ButtonValue>> = blocks
        .iter()
        .filter(|b| is_answer_row(b))
        .map(|row| {
            row["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| ButtonValue::parse(b["value"].as_str()?))
                .collect()
        })
        .collect();
    let examples: Vec<&ButtonValue> = rows
        .iter()
        .filter_map(|row| row.get(row.len() / 2))
        .collect();
    let first = examples.first()?;
    let positional: Vec<String> = examples.iter().map(|v| v.option.to_string()).collect();
    Some(format!(
        "Type your answers in order, like `{}` (`-` skips one), or by name, like `{}={}`. \
         `/pulse help` lists the commands.",
        positional.join(", "),
        first.question,
        first.option
    ))
}

/// The option keys of one row of answer buttons, as a person types them:
/// `0 · 1-2 · 3-5 · 6+`, or `tracking (Tracking delivery) · …`.
pub fn option_line(row: &Value) -> String {
    let Some(buttons) = row["elements"].as_array() else {
        return String::new();
    };
    let options: Vec<String> = buttons
        .iter()
        .filter_map(|button| {
            let key = answer_key(button)?;
            let label = button["text"]["text"].as_str().unwrap_or_default();
            Some(if says_no_more_than(label, &key) {
                key
            } else {
                format!("{key} ({label})")
            })
        })
        .collect();
    options.join(" · ")
}

/// Whether a label is its key in other typography (`1–2` for `1-2`, `None`
/// for `none`).
fn says_no_more_than(label: &str, key: &str) -> bool {
    let normal: String = label
        .chars()
        .map(|c| match c {
            '–' | '—' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    normal.is_empty() || normal == key.to_ascii_lowercase()
}

/// `text` and `blocks` rendered as text in `markup`. Without blocks the
/// text is the message; with blocks the text is only Slack's notification
/// preview, except for a prompt, whose headline it is.
pub fn to_text(text: &str, blocks: &[Value], markup: Markup) -> String {
    if blocks.is_empty() {
        return convert(text, markup);
    }
    let prompt = is_prompt(blocks);
    let mut lines: Vec<String> = Vec::new();
    if prompt {
        lines.push(convert(&format!("*{}*", text.trim()), markup));
    }
    // In a prompt, sections before the first question are the intro.
    let first_question = blocks
        .windows(2)
        .position(|pair| pair[0]["type"] == "section" && is_answer_row(&pair[1]));
    for (i, block) in blocks.iter().enumerate() {
        if prompt && first_question.is_some_and(|first| i < first) {
            continue;
        }
        match block["type"].as_str() {
            Some("section" | "header") => {
                if let Some(text) = block["text"]["text"].as_str() {
                    let text = if block["type"] == "header" {
                        format!("*{text}*")
                    } else {
                        text.to_owned()
                    };
                    lines.push(convert(&text, markup));
                }
                if let Some(fields) = block["fields"].as_array() {
                    for field in fields.iter().filter_map(|f| f["text"].as_str()) {
                        lines.push(convert(field, markup));
                    }
                }
                // A link button (the nudge's training) as its label and
                // address, which every target can show.
                if let Some(url) = block["accessory"]["url"].as_str() {
                    let label = block["accessory"]["text"]["text"]
                        .as_str()
                        .unwrap_or("Link");
                    lines.push(format!("{label}: {url}"));
                }
            }
            Some("context") => {
                let parts: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["text"].as_str())
                    .map(|t| convert(t, markup))
                    .collect();
                if !parts.is_empty() {
                    lines.push(parts.join(" "));
                }
            }
            Some("actions") if is_answer_row(block) => {
                lines.push(format!("    {}", option_line(block)));
            }
            Some("actions") => {
                let labels: Vec<&str> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["text"]["text"].as_str())
                    .collect();
                if !labels.is_empty() {
                    lines.push(format!("  [{}]", labels.join("] [")));
                }
            }
            Some("divider") => lines.push("───".to_owned()),
            _ => {}
        }
    }
    lines.join("\n")
}

/// Converts Slack mrkdwn emphasis (and, for plain text, entities) to `markup`.
pub fn convert(mrkdwn: &str, markup: Markup) -> String {
    match markup {
        Markup::Mrkdwn => mrkdwn.to_owned(),
        Markup::RocketChat => unescape(mrkdwn),
        Markup::Markdown => unescape(&rewrite_emphasis(mrkdwn, '*', "**")),
        Markup::Plain => {
            let text = rewrite_emphasis(mrkdwn, '*', "");
            unescape(&rewrite_emphasis(&text, '_', ""))
        }
    }
}

/// Undoes [`super::escape`].
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Replaces each `marker` pair that Slack reads as emphasis (`*bold*`: the
/// opening marker at a word's start, the closing one at a word's end, on
/// one line) by `with` on both sides; every other marker stays as it is.
fn rewrite_emphasis(text: &str, marker: char, with: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let boundary = |c: Option<&char>| c.is_none_or(|c| !c.is_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let opens = chars[i] == marker
            && boundary(i.checked_sub(1).and_then(|j| chars.get(j)))
            && chars
                .get(i + 1)
                .is_some_and(|c| !c.is_whitespace() && *c != marker);
        let close = opens
            .then(|| {
                (i + 2..chars.len())
                    .take_while(|&j| chars[j] != '\n')
                    .find(|&j| {
                        chars[j] == marker
                            && !chars[j - 1].is_whitespace()
                            && boundary(chars.get(j + 1))
                    })
            })
            .flatten();
        match close {
            Some(j) => {
                out.push_str(with);
                out.extend(&chars[i + 1..j]);
                out.push_str(with);
                i = j + 1;
            }
            None => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::domain::{OptionKey, PersonId, QuestionId, default_catalogue};
    use crate::render::prompt;

    fn sample_prompt() -> crate::render::Message {
        let catalogue = default_catalogue();
        let questions: Vec<QuestionId> =
            catalogue.questions().iter().map(|q| q.id.clone()).collect();
        let mut answered = BTreeMap::new();
        answered.insert(
            QuestionId::parse("focus").unwrap(),
            OptionKey::parse("deciding").unwrap(),
        );
        prompt(
            &catalogue,
            &questions,
            &PersonId::parse("U1").unwrap(),
            "2026-W47".parse().unwrap(),
            "weekly-checkin",
            &answered,
        )
    }

    #[test]
    fn a_prompt_reads_as_questions_with_the_keys_to_type() {
        let m = sample_prompt();
        let text = to_text(&m.text, &m.blocks, Markup::Plain);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0], "Weekly check-in for 2026-W47: 1 of 7 answered",
            "{text}"
        );
        assert_eq!(
            lines[1],
            "Backlog priority calls you made this week that others acted on"
        );
        assert_eq!(lines[2], "    0 · 1-2 · 3-5 · 6+");
        assert!(
            text.contains(
                "    tracking (Tracking delivery) · mixed · deciding (Deciding what & why)"
            ),
            "{text}"
        );
        assert!(
            text.contains("Where your time went  ✓ Deciding what & why"),
            "{text}"
        );
        assert!(
            text.contains("    none · little (A little) · yes"),
            "{text}"
        );
        assert!(
            !text.contains("click"),
            "the intro speaks of clicking: {text}"
        );
        assert_eq!(lines.len(), 1 + 7 * 2, "{text}");
    }

    #[test]
    fn a_prompt_says_how_to_answer_by_typing() {
        let m = sample_prompt();
        assert_eq!(
            typing_hint(&m.blocks).as_deref(),
            Some(
                "Type your answers in order, like `3-5, 2-3, once, mixed, partly, partly, little` \
                 (`-` skips one), or by name, like `decisions=3-5`. `/pulse help` lists the commands."
            )
        );
        assert_eq!(typing_hint(&[]), None);
    }

    #[test]
    fn each_markup_writes_emphasis_its_own_way() {
        let m = sample_prompt();
        let md = to_text(&m.text, &m.blocks, Markup::Markdown);
        assert!(
            md.starts_with("**Weekly check-in for 2026-W47: 1 of 7 answered**\n"),
            "{md}"
        );
        assert!(md.contains("_Deciding what & why_"), "{md}");
        let slack = to_text(&m.text, &m.blocks, Markup::Mrkdwn);
        assert!(
            slack.starts_with("*Weekly check-in for 2026-W47: 1 of 7 answered*\n"),
            "{slack}"
        );
        assert!(slack.contains("_Deciding what &amp; why_"), "{slack}");
        let rocket = to_text(&m.text, &m.blocks, Markup::RocketChat);
        assert!(rocket.starts_with("*Weekly check-in"), "{rocket}");
        assert!(rocket.contains("_Deciding what & why_"), "{rocket}");
    }

    #[test]
    fn emphasis_is_only_rewritten_where_slack_reads_it() {
        let cases = [
            ("*bold* and *more bold*", "**bold** and **more bold**"),
            ("2*3*4 stays", "2*3*4 stays"),
            ("a * b * c", "a * b * c"),
            ("*open only", "*open only"),
            ("*across\nlines*", "*across\nlines*"),
            ("(*in brackets*)", "(**in brackets**)"),
            ("**", "**"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(convert(input, Markup::Markdown), expected, "{input:?}");
        }
        assert_eq!(
            convert("*Hi* _there_ user_id &lt;x&gt; &amp;", Markup::Plain),
            "Hi there user_id <x> &"
        );
    }

    #[test]
    fn text_only_messages_and_other_blocks() {
        assert_eq!(to_text("Got *it*", &[], Markup::Plain), "Got it");
        let blocks = vec![
            serde_json::json!({"type": "header", "text": {"type": "plain_text", "text": "Trend"}}),
            serde_json::json!({"type": "divider"}),
            serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "*a*"}, {"type": "mrkdwn", "text": "b"}]}),
            serde_json::json!({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "value": "x"}]}),
            serde_json::json!({"type": "image"}),
        ];
        assert_eq!(
            to_text("preview", &blocks, Markup::Markdown),
            "**Trend**\n───\n**a** b\n  [Open]"
        );
        assert!(!is_prompt(&blocks));
    }

    #[test]
    fn a_link_button_beside_a_section_is_shown_as_its_label_and_address() {
        let blocks = vec![serde_json::json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Try *training*"},
            "accessory": {"type": "button", "text": {"type": "plain_text", "text": "CSPO"},
                          "url": "https://learning.example.com/cspo"},
        })];
        assert_eq!(
            to_text("preview", &blocks, Markup::Plain),
            "Try training\nCSPO: https://learning.example.com/cspo"
        );
    }

    /// Blocks of the kinds messages use, with arbitrary text in them.
    fn any_block() -> impl Strategy<Value = Value> {
        let kind = prop::sample::select(vec![
            "section", "header", "context", "actions", "divider", "image", "",
        ]);
        (kind, "\\PC{0,30}", "\\PC{0,30}", any::<bool>()).prop_map(
            |(kind, text, value, with_fields)| {
                let mut block = serde_json::json!({
                    "type": kind,
                    "text": { "type": "mrkdwn", "text": text },
                    "elements": [
                        { "type": "button", "text": { "type": "plain_text", "text": text }, "value": value },
                        { "type": "mrkdwn", "text": value },
                    ],
                });
                if with_fields {
                    block["fields"] = serde_json::json!([{ "type": "mrkdwn", "text": value }, 7]);
                }
                block
            },
        )
    }

    proptest! {
        #[test]
        fn conversion_never_panics_and_keeps_every_word(text in "\\PC{0,60}") {
            let words = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).count();
            prop_assert_eq!(words(&convert(&text, Markup::Mrkdwn)), words(&text));
            let unescaped = unescape(&text);
            for markup in [Markup::RocketChat, Markup::Markdown] {
                prop_assert_eq!(words(&convert(&text, markup)), words(&unescaped));
            }
            let _ = convert(&text, Markup::Plain);
        }

        #[test]
        fn any_blocks_render_without_panicking(
            blocks in prop::collection::vec(any_block(), 0..8),
            text in "\\PC{0,30}",
        ) {
            for markup in [Markup::Mrkdwn, Markup::RocketChat, Markup::Markdown, Markup::Plain] {
                let _ = to_text(&text, &blocks, markup);
            }
        }
    }
}
