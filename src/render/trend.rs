//! The weekly trend post and the readiness nudge, rendered from the model's
//! [`Assessment`]: what a person reads at a glance on Monday morning, and the
//! one message that says their role has grown, with the reasons.

use serde_json::{Value, json};

use super::{Message, escape};
use crate::domain::{Catalogue, IsoWeek};
use crate::model::{Assessment, Reason, State};

/// A slope smaller than this (index points per week, either way) reads as
/// flat: week-to-week noise, not a direction.
const FLAT: f64 = 0.01;

/// The arrow for a per-week slope: `↗` rising, `↘` falling, `→` flat,
/// `·` not enough weeks to tell.
pub fn arrow(slope: Option<f64>) -> &'static str {
    match slope {
        Some(s) if s >= FLAT => "↗",
        Some(s) if s <= -FLAT => "↘",
        Some(_) => "→",
        None => "·",
    }
}

/// What a state means, in the person's words.
fn state_line(state: State) -> &'static str {
    match state {
        State::InsufficientData => "not enough weeks answered yet to see a trend",
        State::Building => "building: some signs of ownership are not there yet",
        State::Sustained => "sustained ownership, week after week",
        State::WaitingForCapacity => {
            "sustained ownership; the nudge waits until you have room to learn"
        }
        State::Nudged => "recognised: your readiness nudge was sent",
    }
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn context(text: String) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": text }] })
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

/// The weekly trend post for the week `week` (the person's current week):
/// sparkline, index and slope, one arrow per signal, the state and the
/// reasons behind it.
pub fn trend_post(assessment: &Assessment, catalogue: &Catalogue, week: IsoWeek) -> Message {
    let a = assessment;
    let answered = a.weeks.iter().filter(|w| w.counted).count();
    let headline = format!(
        "Your trend for {week}: {} {}",
        a.sparkline,
        a.state.as_str()
    );
    let mut blocks = vec![section(format!(
        "*Your trend for {week}*\n`{}`  index {}  {} {}/week\n_{} of the last {} weeks with enough answers to count_",
        a.sparkline,
        number(a.ewma),
        arrow(a.slope),
        a.slope
            .map_or_else(|| "–".to_owned(), |s| format!("{s:+.3}")),
        answered,
        a.weeks.len(),
    ))];
    let signals: Vec<String> = a
        .signals
        .iter()
        .filter(|s| catalogue.get(s.question.as_str()).is_some())
        .map(|s| format!("{} {} {}", arrow(s.slope), s.question, number(s.ewma)))
        .collect();
    if !signals.is_empty() {
        blocks.push(section(signals.join("   ")));
    }
    let reasons: Vec<String> = a
        .reasons
        .iter()
        .map(|r| format!("{} {}", if r.holds { "✓" } else { "✗" }, escape(&r.detail)))
        .collect();
    blocks.push(section(format!(
        "*State:* {}\n{}",
        state_line(a.state),
        reasons.join("\n")
    )));
    blocks.push(context(
        "Answers stay yours: `/pulse export` shows them, `/pulse forget` deletes them.".into(),
    ));
    Message {
        text: headline,
        blocks,
    }
}

/// Replaces `{name}` in a template (the only placeholder config accepts).
fn fill(template: &str, name: &str) -> String {
    template.replace("{name}", name)
}

/// The readiness nudge: the configured title and body, then the reasons it
/// was sent (the rules that held), so it is never a verdict without why.
pub fn nudge(
    name: Option<&str>,
    title: &str,
    body: &str,
    reasons: &[Reason],
    from: IsoWeek,
    to: IsoWeek,
) -> Message {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("there");
    // Filled first, escaped once: the name and the operator's wording are
    // both shown as written, never as markup.
    let title = escape(&fill(title, name));
    let why: Vec<String> = reasons
        .iter()
        .filter(|r| r.holds)
        .map(|r| format!("• {}", escape(&r.detail)))
        .collect();
    let blocks = vec![
        section(format!("*{title}*")),
        section(escape(&fill(body, name))),
        section(format!("*Why now*\n{}", why.join("\n"))),
        context(format!(
            "From your answers {from} to {to}. `/pulse trend` shows every week; \
             you get this message once."
        )),
    ];
    Message {
        text: title,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Answer, OptionKey, PersonId, QuestionId, default_catalogue};
    use crate::model::{History, Params, assess};

    /// `weeks` weeks of strong, anchored answers ending in 2026-W47.
    fn strong_history(weeks: i64) -> Vec<Answer> {
        let end: IsoWeek = "2026-W47".parse().unwrap();
        let person = PersonId::parse("U1").unwrap();
        let mut answers = Vec::new();
        for i in (0..weeks).rev() {
            for (q, o) in [
                ("decisions", "6+"),
                ("stakeholders", "4+"),
                ("tradeoffs", "several"),
                ("focus", "deciding"),
                ("reversibility", "hardly"),
                ("continuity", "same"),
                ("capacity", "yes"),
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

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn arrows_read_the_slope_with_a_flat_band() {
        assert_eq!(arrow(Some(0.05)), "↗");
        assert_eq!(arrow(Some(-0.05)), "↘");
        assert_eq!(arrow(Some(0.001)), "→");
        assert_eq!(arrow(None), "·");
    }

    #[test]
    fn a_trend_post_shows_sparkline_signals_state_and_reasons() {
        let catalogue = default_catalogue();
        let answers = strong_history(10);
        let a = assess(
            &History {
                answers: &answers,
                nudges: &[],
            },
            &catalogue,
            &Params::default(),
            today(),
        );
        let week: IsoWeek = "2026-W48".parse().unwrap();
        let m = trend_post(&a, &catalogue, week);
        insta::assert_json_snapshot!("trend_post_sustained", m);
        assert!(m.text.contains(&a.sparkline));
        assert!(m.blocks.len() <= super::super::MAX_BLOCKS);
    }

    #[test]
    fn a_trend_post_without_data_says_so() {
        let catalogue = default_catalogue();
        let a = assess(
            &History {
                answers: &[],
                nudges: &[],
            },
            &catalogue,
            &Params::default(),
            today(),
        );
        let m = trend_post(&a, &catalogue, "2026-W48".parse().unwrap());
        insta::assert_json_snapshot!("trend_post_empty", m);
    }

    #[test]
    fn the_nudge_names_the_person_and_lists_only_the_reasons_that_held() {
        let catalogue = default_catalogue();
        let answers = strong_history(10);
        let a = assess(
            &History {
                answers: &answers,
                nudges: &[],
            },
            &catalogue,
            &Params::default(),
            today(),
        );
        assert_eq!(a.state, State::Sustained);
        let m = nudge(
            Some("Ada <script>"),
            crate::config::DEFAULT_NUDGE_TITLE,
            crate::config::DEFAULT_NUDGE_BODY,
            &a.reasons,
            "2026-W40".parse().unwrap(),
            "2026-W47".parse().unwrap(),
        );
        insta::assert_json_snapshot!("nudge_default", m);
        assert_eq!(m.text, "Your role has grown, Ada &lt;script&gt;");
        let why = m.blocks[2]["text"]["text"].as_str().unwrap();
        assert_eq!(
            why.lines().count() - 1,
            a.reasons.iter().filter(|r| r.holds).count()
        );
        assert!(!why.contains('✗'));
    }

    #[test]
    fn a_nudge_to_someone_without_a_name_greets_them_anyway() {
        let m = nudge(
            None,
            "Hi {name}",
            "Body for {name}",
            &[],
            "2026-W40".parse().unwrap(),
            "2026-W47".parse().unwrap(),
        );
        assert_eq!(m.text, "Hi there");
        assert_eq!(m.blocks[1]["text"]["text"], "Body for there");
    }
}
