//! The weekly trend post, rendered from the model's [`Assessment`]: what a
//! person reads at a glance on Monday morning, with the reasons for their
//! state in their own words ([`super::reasons`]) and how they answered
//! their last nudge.

use serde_json::{Value, json};

use super::Message;
use super::reasons::in_words;
use crate::domain::{Catalogue, IsoWeek};
use crate::model::{Assessment, SentNudge, State};

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
        State::Declined => {
            "sustained ownership; no nudge, as you asked (`/pulse nudge on` to change that)"
        }
    }
}

/// The last nudge and its answer, in a line.
fn nudge_line(nudge: &SentNudge) -> String {
    match nudge.answer {
        Some(answer) => format!(
            "*Your nudge* of {}: you answered “{}” on {}.",
            nudge.sent_on,
            answer.response.label(),
            answer.on
        ),
        None => format!(
            "*Your nudge* of {}: not answered yet; its buttons still work.",
            nudge.sent_on
        ),
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
        .map(|r| {
            format!(
                "{} {}",
                if r.holds { "✓" } else { "✗" },
                in_words(r, catalogue)
            )
        })
        .collect();
    blocks.push(section(format!(
        "*State:* {}\n{}",
        state_line(a.state),
        reasons.join("\n")
    )));
    if let Some(nudge) = &a.nudge {
        blocks.push(section(nudge_line(nudge)));
    }
    blocks.push(context(
        "Answers stay yours: `/pulse export` shows them, `/pulse forget` deletes them.".into(),
    ));
    Message {
        text: headline,
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
                nudges_off: false,
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
    fn a_trend_post_shows_how_the_last_nudge_was_answered() {
        use crate::domain::NudgeResponse;
        use crate::model::{NudgeAnswer, SentNudge};
        let catalogue = default_catalogue();
        let answers = strong_history(10);
        let sent = today() - chrono::Duration::days(9);
        let line = |nudges: &[SentNudge], off| {
            let a = assess(
                &History {
                    answers: &answers,
                    nudges,
                    nudges_off: off,
                },
                &catalogue,
                &Params::default(),
                today(),
            );
            let m = trend_post(&a, &catalogue, "2026-W48".parse().unwrap());
            (a.state, serde_json::to_string(&m.blocks).unwrap())
        };
        let (state, text) = line(&[SentNudge::unanswered(sent)], false);
        assert_eq!(state, State::Nudged);
        assert!(
            text.contains("*Your nudge* of 2026-11-14: not answered yet"),
            "{text}"
        );
        let not_for_me = SentNudge {
            sent_on: sent,
            answer: Some(NudgeAnswer {
                response: NudgeResponse::NotForMe,
                on: sent + chrono::Duration::days(1),
            }),
        };
        let (_, text) = line(&[not_for_me], true);
        assert!(
            text.contains("*Your nudge* of 2026-11-14: you answered “Not for me” on 2026-11-15."),
            "{text}"
        );
        assert!(text.contains("`/pulse nudge on`"), "{text}");
        // Never nudged, nudges turned off: declined, and it says so.
        let (state, text) = line(&[], true);
        assert_eq!(state, State::Declined);
        assert!(text.contains("no nudge, as you asked"), "{text}");
        assert!(!text.contains("*Your nudge*"), "{text}");
    }

    #[test]
    fn a_trend_post_without_data_says_so() {
        let catalogue = default_catalogue();
        let a = assess(
            &History {
                answers: &[],
                nudges: &[],
                nudges_off: false,
            },
            &catalogue,
            &Params::default(),
            today(),
        );
        let m = trend_post(&a, &catalogue, "2026-W48".parse().unwrap());
        insta::assert_json_snapshot!("trend_post_empty", m);
    }
}
