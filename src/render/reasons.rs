//! The model's reasons in the person's words. The model states each rule
//! with its numbers ([`Facts`]) and counts, per question, the weeks its
//! answer showed the signal ([`SignalTrend`]); here each becomes one
//! sentence that names the signal it stands for (decision load, ownership
//! rather than coordination, stakeholder pressure, trade-offs to defend,
//! consequences, anchoring, timing) and says what the person answered, not
//! what the model computed. The numbers stay in `trend --json`.
//!
//! Every sentence starts with the signal's name in bold (Slack mrkdwn) and
//! is escaped: nothing the person or the operator wrote becomes markup.

use chrono::Duration;

use super::escape;
use crate::domain::{Catalogue, Question};
use crate::model::{CAPACITY, CONTINUITY, Facts, NO_CAPACITY, Reason, SIGNAL_PRESENT, SignalTrend};

/// One reason in plain words.
pub fn in_words(reason: &Reason, catalogue: &Catalogue) -> String {
    let holds = reason.holds;
    match &reason.facts {
        Facts::EnoughData {
            counted,
            window,
            need,
        } => {
            if holds {
                format!(
                    "*Enough to go on*: you answered enough to count in {counted} of the last {window} weeks."
                )
            } else {
                format!(
                    "*Not enough to go on yet*: {counted} of the last {window} weeks were answered enough to count; {need} are needed."
                )
            }
        }
        Facts::StrongWeeks {
            strong,
            window,
            need,
            ..
        } => {
            let verdict = if holds {
                format!("({need} needed)")
            } else {
                format!("— {need} are needed")
            };
            format!(
                "*Week after week*: {strong} of the last {window} weeks looked like product ownership {verdict}."
            )
        }
        Facts::RecentAverage {
            weeks,
            need_weeks,
            average,
            ..
        } => match average {
            _ if holds => format!("*Still so lately*: your last {weeks} weeks were as strong."),
            Some(_) if weeks >= need_weeks => {
                format!("*Lately*: your last {weeks} weeks were lighter.")
            }
            Some(_) => {
                format!("*Lately*: only {weeks} recent weeks to go on; {need_weeks} are needed.")
            }
            None => "*Lately*: no recent weeks to go on.".to_owned(),
        },
        Facts::Slope { slope, .. } => match slope {
            _ if holds => "*Not fading*: your weeks are holding steady or growing.".to_owned(),
            Some(_) => "*Fading*: your weeks have been getting lighter.".to_owned(),
            None => "*Direction*: too few weeks yet to see one.".to_owned(),
        },
        Facts::Continuity {
            same,
            answered,
            window,
            min_share,
            need,
        } => {
            if holds {
                format!(
                    "*Anchored to one product*: the same product {same} of the last {window} weeks."
                )
            } else if *answered == 0 {
                format!(
                    "*Anchored to one product?* No answers about staying on the same product in the last {window} weeks."
                )
            } else if answered < need {
                format!(
                    "*Anchored to one product?* {answered} weeks answered about staying on the same product in the last {window}; {} more are needed to tell.",
                    need - answered
                )
            } else {
                format!(
                    "*Anchored to one product?* The same product {same} of the last {window} weeks; it takes {:.0}% of the weeks you answered.",
                    min_share * 100.0
                )
            }
        }
        Facts::Capacity {
            answer,
            held_weeks,
            hold_weeks,
            ..
        } => {
            if answer.as_str() == NO_CAPACITY {
                if holds {
                    format!(
                        "*Timing*: for {held_weeks} weeks you said there is no room to learn right now; after {hold_weeks} weeks of waiting, the timing is your call."
                    )
                } else {
                    format!(
                        "*Timing*: you said there is no room to learn right now, so the nudge waits (week {held_weeks} of at most {hold_weeks})."
                    )
                }
            } else {
                match room(answer.as_str()) {
                    Some(room) => {
                        format!("*Timing*: you said you have {room} to learn this month.")
                    }
                    None => format!(
                        "*Timing*: you answered “{}” about room to learn this month.",
                        escape(&option_label(catalogue, CAPACITY, answer.as_str()))
                    ),
                }
            }
        }
        Facts::Cooldown {
            nudged_on,
            days,
            cooldown_days,
            ..
        } => {
            if holds {
                format!(
                    "*Your last nudge* came {days} days ago and your weeks eased off since, so another may come."
                )
            } else {
                format!(
                    "*Your last nudge* came on {nudged_on}; another comes only after {cooldown_days} days and a lighter stretch."
                )
            }
        }
        Facts::NotNow {
            answered_on,
            weeks,
            not_now_weeks,
        } => {
            if holds {
                format!(
                    "*You said “Not now”* on {answered_on}, {weeks} weeks ago: after {not_now_weeks} weeks it is asked again, since your role still looks like this."
                )
            } else {
                let again = *answered_on + Duration::weeks(i64::from(*not_now_weeks));
                format!(
                    "*You said “Not now”* on {answered_on}: it is asked again from {again} if your role still looks like this."
                )
            }
        }
        Facts::NudgesOff { off } => {
            if *off {
                "*Nudges are off*: you said the nudge is not for you. `/pulse nudge on` to hear about it again.".to_owned()
            } else {
                "*Nudges back on*: you asked to hear about it again after saying “Not for me”."
                    .to_owned()
            }
        }
    }
}

/// What the capacity answer `key` says about room to learn, for the keys
/// of the default catalogue that leave some.
pub fn room(key: &str) -> Option<&'static str> {
    match key {
        "yes" => Some("room"),
        "little" => Some("a little room"),
        _ => None,
    }
}

/// What one question showed over the last `window` weeks, in plain words:
/// in how many weeks its answer reached [`SIGNAL_PRESENT`]. `None` for the
/// questions with rules of their own (continuity, capacity) and for one
/// never answered in the window.
pub fn signal_in_words(
    signal: &SignalTrend,
    window: usize,
    catalogue: &Catalogue,
) -> Option<String> {
    let id = signal.question.as_str();
    if id == CONTINUITY || id == CAPACITY || signal.answered_weeks == 0 {
        return None;
    }
    let question = catalogue.get(id)?;
    let n = signal.present_weeks;
    let when = format!("in {n} of the last {window} weeks");
    Some(match id {
        "decisions" => format!(
            "*Decision load*: you made {} priority calls others acted on {when}.",
            at_least(question)
        ),
        "focus" => format!(
            "*Ownership, not coordination*: at least half your time went to deciding what and why rather than tracking delivery {when}."
        ),
        "stakeholders" => format!(
            "*Stakeholder pressure*: {} stakeholders pulled your product in different directions {when}.",
            at_least(question)
        ),
        "tradeoffs" => {
            format!("*Trade-offs to defend*: you had to justify trade-offs to others {when}.")
        }
        "reversibility" => {
            format!("*Consequences*: your decisions could not easily be undone next sprint {when}.")
        }
        _ => format!(
            "*{}*: a strong answer {when}.",
            escape(question.text.trim_end_matches(['.', '?']))
        ),
    })
}

/// Whether a signal was there in most of the weeks it was answered: then
/// the nudge names it as a reason.
pub fn signal_is_strong(signal: &SignalTrend) -> bool {
    signal.present_weeks > 0 && 2 * signal.present_weeks >= signal.answered_weeks
}

/// The least answer that reaches [`SIGNAL_PRESENT`], as "3 or more" when
/// its label starts with a number (`3–5`), else as "“Label” or more".
fn at_least(question: &Question) -> String {
    let least = question
        .options
        .iter()
        .filter(|o| o.score >= SIGNAL_PRESENT)
        .min_by(|a, b| a.score.total_cmp(&b.score));
    let Some(least) = least else {
        return "some".to_owned();
    };
    let digits: String = least
        .label
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        format!("“{}” or more", escape(&least.label))
    } else {
        format!("{digits} or more")
    }
}

/// The label of `key` in `question`, or the key itself.
fn option_label(catalogue: &Catalogue, question: &str, key: &str) -> String {
    catalogue
        .get(question)
        .and_then(|q| q.option(key))
        .map_or_else(|| key.to_owned(), |o| o.label.clone())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{OptionKey, QuestionId, QuestionOption, default_catalogue};
    use crate::model::Rule;

    fn reason(rule: Rule, holds: bool, facts: Facts) -> Reason {
        Reason {
            rule,
            holds,
            detail: String::new(),
            facts,
        }
    }

    fn words(rule: Rule, holds: bool, facts: Facts) -> String {
        in_words(&reason(rule, holds, facts), &default_catalogue())
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn enough_data_in_words() {
        let facts = |counted| Facts::EnoughData {
            counted,
            window: 8,
            need: 4,
        };
        assert_eq!(
            words(Rule::EnoughData, true, facts(7)),
            "*Enough to go on*: you answered enough to count in 7 of the last 8 weeks."
        );
        assert_eq!(
            words(Rule::EnoughData, false, facts(2)),
            "*Not enough to go on yet*: 2 of the last 8 weeks were answered enough to count; 4 are needed."
        );
    }

    #[test]
    fn strong_weeks_in_words_say_ownership_not_index() {
        let facts = |strong| Facts::StrongWeeks {
            strong,
            window: 8,
            need: 5,
            high: 0.6,
        };
        let held = words(Rule::StrongWeeks, true, facts(6));
        assert_eq!(
            held,
            "*Week after week*: 6 of the last 8 weeks looked like product ownership (5 needed)."
        );
        assert!(!held.contains("index") && !held.contains("0.6"));
        assert_eq!(
            words(Rule::StrongWeeks, false, facts(3)),
            "*Week after week*: 3 of the last 8 weeks looked like product ownership — 5 are needed."
        );
    }

    #[test]
    fn the_recent_average_in_words() {
        let facts = |weeks, average| Facts::RecentAverage {
            weeks,
            need_weeks: 3,
            average,
            high: 0.6,
        };
        assert_eq!(
            words(Rule::RecentAverage, true, facts(3, Some(0.8))),
            "*Still so lately*: your last 3 weeks were as strong."
        );
        assert_eq!(
            words(Rule::RecentAverage, false, facts(3, Some(0.4))),
            "*Lately*: your last 3 weeks were lighter."
        );
        assert_eq!(
            words(Rule::RecentAverage, false, facts(2, Some(0.9))),
            "*Lately*: only 2 recent weeks to go on; 3 are needed."
        );
        assert_eq!(
            words(Rule::RecentAverage, false, facts(0, None)),
            "*Lately*: no recent weeks to go on."
        );
    }

    #[test]
    fn the_slope_in_words() {
        let facts = |slope| Facts::Slope {
            slope,
            floor: -0.02,
        };
        assert_eq!(
            words(Rule::Slope, true, facts(Some(0.0))),
            "*Not fading*: your weeks are holding steady or growing."
        );
        assert_eq!(
            words(Rule::Slope, false, facts(Some(-0.1))),
            "*Fading*: your weeks have been getting lighter."
        );
        assert_eq!(
            words(Rule::Slope, false, facts(None)),
            "*Direction*: too few weeks yet to see one."
        );
    }

    #[test]
    fn continuity_in_words_is_anchoring_to_one_product() {
        let facts = |same, answered| Facts::Continuity {
            same,
            answered,
            window: 16,
            min_share: 0.8,
            need: 8,
        };
        assert_eq!(
            words(Rule::Continuity, true, facts(14, 14)),
            "*Anchored to one product*: the same product 14 of the last 16 weeks."
        );
        assert_eq!(
            words(Rule::Continuity, false, facts(5, 10)),
            "*Anchored to one product?* The same product 5 of the last 16 weeks; it takes 80% of the weeks you answered."
        );
        assert_eq!(
            words(Rule::Continuity, false, facts(5, 5)),
            "*Anchored to one product?* 5 weeks answered about staying on the same product in the last 16; 3 more are needed to tell."
        );
        assert_eq!(
            words(Rule::Continuity, false, facts(0, 0)),
            "*Anchored to one product?* No answers about staying on the same product in the last 16 weeks."
        );
    }

    #[test]
    fn capacity_in_words_is_timing_in_the_persons_own_answer() {
        let facts = |answer: &str, held_weeks| Facts::Capacity {
            week: "2026-W47".parse().unwrap(),
            answer: OptionKey::parse(answer).unwrap(),
            held_weeks,
            hold_weeks: 6,
        };
        assert_eq!(
            words(Rule::Capacity, true, facts("yes", 0)),
            "*Timing*: you said you have room to learn this month."
        );
        assert_eq!(
            words(Rule::Capacity, true, facts("little", 0)),
            "*Timing*: you said you have a little room to learn this month."
        );
        assert_eq!(
            words(Rule::Capacity, false, facts("none", 2)),
            "*Timing*: you said there is no room to learn right now, so the nudge waits (week 2 of at most 6)."
        );
        assert_eq!(
            words(Rule::Capacity, true, facts("none", 7)),
            "*Timing*: for 7 weeks you said there is no room to learn right now; after 6 weeks of waiting, the timing is your call."
        );
        // An option of a reworded catalogue: its label, escaped.
        let mut questions = default_catalogue().questions().to_vec();
        let capacity = questions
            .iter_mut()
            .find(|q| q.id.as_str() == CAPACITY)
            .unwrap();
        capacity.options.push(QuestionOption {
            key: OptionKey::parse("plenty").unwrap(),
            label: "Plenty <really>".into(),
            score: 1.0,
        });
        let catalogue = Catalogue::new(questions);
        assert_eq!(
            in_words(
                &reason(Rule::Capacity, true, facts("plenty", 0)),
                &catalogue
            ),
            "*Timing*: you answered “Plenty &lt;really&gt;” about room to learn this month."
        );
    }

    #[test]
    fn the_cooldown_in_words() {
        let facts = |days, dipped| Facts::Cooldown {
            nudged_on: day("2026-08-01"),
            days,
            cooldown_days: 90,
            low: 0.4,
            dipped,
        };
        assert_eq!(
            words(Rule::Cooldown, false, facts(30, false)),
            "*Your last nudge* came on 2026-08-01; another comes only after 90 days and a lighter stretch."
        );
        assert_eq!(
            words(Rule::Cooldown, true, facts(120, true)),
            "*Your last nudge* came 120 days ago and your weeks eased off since, so another may come."
        );
    }

    #[test]
    fn not_now_in_words_says_when_it_is_asked_again() {
        let facts = |weeks| Facts::NotNow {
            answered_on: day("2026-09-01"),
            weeks,
            not_now_weeks: 8,
        };
        assert_eq!(
            words(Rule::NotNow, false, facts(3)),
            "*You said “Not now”* on 2026-09-01: it is asked again from 2026-10-27 if your role still looks like this."
        );
        assert_eq!(
            words(Rule::NotNow, true, facts(8)),
            "*You said “Not now”* on 2026-09-01, 8 weeks ago: after 8 weeks it is asked again, since your role still looks like this."
        );
    }

    #[test]
    fn nudges_off_in_words_say_how_to_turn_them_on() {
        let off = words(Rule::NudgesOff, false, Facts::NudgesOff { off: true });
        assert!(
            off.contains("not for you") && off.contains("`/pulse nudge on`"),
            "{off}"
        );
        assert_eq!(
            words(Rule::NudgesOff, true, Facts::NudgesOff { off: false }),
            "*Nudges back on*: you asked to hear about it again after saying “Not for me”."
        );
    }

    fn signal(
        question: &'static QuestionId,
        present_weeks: u32,
        answered_weeks: u32,
    ) -> SignalTrend<'static> {
        SignalTrend {
            question,
            ewma: None,
            slope: None,
            answered_weeks,
            present_weeks,
        }
    }

    #[test]
    fn each_index_signal_is_named_and_counted_in_the_persons_words() {
        let catalogue = default_catalogue();
        let words = |id: &str| {
            let q: &'static QuestionId = Box::leak(Box::new(QuestionId::parse(id).unwrap()));
            signal_in_words(&signal(q, 6, 8), 8, &catalogue)
        };
        assert_eq!(
            words("decisions").unwrap(),
            "*Decision load*: you made 3 or more priority calls others acted on in 6 of the last 8 weeks."
        );
        assert_eq!(
            words("stakeholders").unwrap(),
            "*Stakeholder pressure*: 2 or more stakeholders pulled your product in different directions in 6 of the last 8 weeks."
        );
        assert_eq!(
            words("tradeoffs").unwrap(),
            "*Trade-offs to defend*: you had to justify trade-offs to others in 6 of the last 8 weeks."
        );
        assert_eq!(
            words("focus").unwrap(),
            "*Ownership, not coordination*: at least half your time went to deciding what and why rather than tracking delivery in 6 of the last 8 weeks."
        );
        assert_eq!(
            words("reversibility").unwrap(),
            "*Consequences*: your decisions could not easily be undone next sprint in 6 of the last 8 weeks."
        );
        // Anchoring and timing have rules of their own.
        assert_eq!(words("continuity"), None);
        assert_eq!(words("capacity"), None);
    }

    #[test]
    fn a_signal_is_a_reason_when_it_showed_in_most_answered_weeks() {
        let q: &'static QuestionId = Box::leak(Box::new(QuestionId::parse("decisions").unwrap()));
        assert!(signal_is_strong(&signal(q, 4, 8)));
        assert!(signal_is_strong(&signal(q, 3, 3)));
        assert!(!signal_is_strong(&signal(q, 3, 8)));
        assert!(!signal_is_strong(&signal(q, 0, 0)));
    }
}
