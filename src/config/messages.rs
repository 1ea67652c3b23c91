//! `[messages]`: the nudge's wording checked before it is ever posted,
//! into [`MessageSettings`].

use super::validate::is_http_url;
use super::{MessageSettings, raw};

/// The longest template accepted: Slack's limit for a section's text,
/// less room for the name and the reasons.
const MAX_TEMPLATE_CHARS: usize = 2000;

/// The longest `messages.training_name`: it is shown inside a sentence and
/// on a button.
const MAX_TRAINING_NAME_CHARS: usize = 200;

/// The longest `messages.training_url`: Slack's limit for a button's URL.
const MAX_TRAINING_URL_CHARS: usize = 3000;

/// Checks a nudge template: not empty, not too long, and no placeholder
/// but `{name}` and those in `extra` (a typo would otherwise be posted
/// verbatim).
fn check_template(text: &str, extra: &[&str]) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("is longer than {MAX_TEMPLATE_CHARS} characters"));
    }
    let known = |p: &str| p == "name" || extra.contains(&p);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if known(&after[..close]) => rest = &after[close + 1..],
            Some(close) => {
                let allowed: Vec<String> = std::iter::once("name")
                    .chain(extra.iter().copied())
                    .map(|p| format!("{{{p}}}"))
                    .collect();
                return Err(format!(
                    "unknown placeholder {{{}}}; only {} {} replaced",
                    &after[..close],
                    allowed.join(" and "),
                    if allowed.len() == 1 { "is" } else { "are" }
                ));
            }
            None => return Err("has a `{` without a closing `}`".into()),
        }
    }
    Ok(())
}

/// Validates `[messages]`; on error returns (key, problem).
pub(super) fn message_settings(raw: raw::RawMessages) -> Result<MessageSettings, (String, String)> {
    for (key, text, extra) in [
        ("nudge_title", &raw.nudge_title, &[][..]),
        ("nudge_body", &raw.nudge_body, &[]),
        ("nudge_next_step", &raw.nudge_next_step, &["training"]),
        ("nudge_timing", &raw.nudge_timing, &["room"]),
        (
            "nudge_timing_released",
            &raw.nudge_timing_released,
            &["weeks"],
        ),
        ("nudge_timing_unknown", &raw.nudge_timing_unknown, &[]),
    ] {
        check_template(text, extra).map_err(|problem| (format!("messages.{key}"), problem))?;
    }
    let training_name = raw
        .training_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(name) = &training_name
        && name.chars().count() > MAX_TRAINING_NAME_CHARS
    {
        return Err((
            "messages.training_name".into(),
            format!("is longer than {MAX_TRAINING_NAME_CHARS} characters"),
        ));
    }
    let training_url = raw
        .training_url
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(url) = &training_url {
        if !is_http_url(url) {
            return Err((
                "messages.training_url".into(),
                format!("{url:?} is not an http:// or https:// link"),
            ));
        }
        if url.chars().count() > MAX_TRAINING_URL_CHARS {
            return Err((
                "messages.training_url".into(),
                format!("is longer than {MAX_TRAINING_URL_CHARS} characters"),
            ));
        }
    }
    Ok(MessageSettings {
        nudge_title: raw.nudge_title,
        nudge_body: raw.nudge_body,
        nudge_next_step: raw.nudge_next_step,
        nudge_timing: raw.nudge_timing,
        nudge_timing_released: raw.nudge_timing_released,
        nudge_timing_unknown: raw.nudge_timing_unknown,
        training_name,
        training_url,
    })
}
