//! The team digest (README, "Schedules"): how many were asked and answered,
//! how the team's readiness states are spread, and how the team's median
//! weekly index moved. Rendered from counts and medians only: nothing here
//! can name a person, an answer or one person's state.

use serde_json::{Value, json};

use super::Message;
use crate::domain::IsoWeek;
use crate::model::State;

/// What a team digest shows: aggregates, never a person.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestData {
    /// The week reported on.
    pub week: IsoWeek,
    /// People enrolled in the schedule's audience.
    pub asked: usize,
    /// Of those, people who answered in `week`.
    pub answered: usize,
    /// Below this many answers only "too small" is posted.
    pub min_group: u32,
    /// How many of those who answered are in each state, in
    /// [`STATE_ORDER`]; states nobody is in are left out.
    pub states: Vec<(State, usize)>,
    /// The median weekly index of those who answered, this week.
    pub median: Option<f64>,
    /// The same people's median index the week before (those of them with
    /// a counted week then).
    pub median_before: Option<f64>,
}

/// The order states are listed in: from just started to past the nudge.
pub const STATE_ORDER: [State; 6] = [
    State::InsufficientData,
    State::Building,
    State::Sustained,
    State::WaitingForCapacity,
    State::Nudged,
    State::Declined,
];

/// A state as the team reads it.
fn state_label(state: State) -> &'static str {
    match state {
        State::InsufficientData => "not enough weeks yet",
        State::Building => "building",
        State::Sustained => "sustained ownership",
        State::WaitingForCapacity => "sustained, waiting for room to learn",
        State::Nudged => "nudged",
        State::Declined => "sustained, no nudge wanted",
    }
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn context(text: String) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": text }] })
}

/// The median change, signed, or why there is none.
fn change_line(data: &DigestData) -> String {
    match (data.median, data.median_before) {
        (Some(now), Some(before)) => format!(
            "Median weekly index: {now:.2} ({:+.2} on the week before, {before:.2})",
            now - before
        ),
        (Some(now), None) => {
            format!("Median weekly index: {now:.2} (no counted week before to compare)")
        }
        (None, _) => "Median weekly index: – (no week counted yet)".to_owned(),
    }
}

/// The digest for `data.week`, or only "too small" when fewer than
/// `min_group` answered.
pub fn team_digest(data: &DigestData) -> Message {
    let headline = format!(
        "Team digest for {}: {} of {} answered",
        data.week, data.answered, data.asked
    );
    if data.answered < data.min_group as usize {
        let text = format!(
            "{headline}. Too few answered to report more (fewer than {}), so that no one stands out.",
            data.min_group
        );
        return Message {
            blocks: vec![section(format!("*{}*", text))],
            text,
        };
    }
    let states: Vec<String> = data
        .states
        .iter()
        .map(|(state, n)| format!("{}: {n}", state_label(*state)))
        .collect();
    let states = format!("Readiness: {}", states.join(" · "));
    let change = change_line(data);
    let note = "Counts and medians only: no one's answers or state are shown.".to_owned();
    Message {
        text: format!("{headline}. {states}. {change}."),
        blocks: vec![
            section(format!("*{headline}*")),
            section(format!("{states}\n{change}")),
            context(note),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(answered: usize) -> DigestData {
        DigestData {
            week: IsoWeek::of(chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            asked: 7,
            answered,
            min_group: 5,
            states: vec![(State::Building, 4), (State::Sustained, 2)],
            median: Some(0.62),
            median_before: Some(0.5),
        }
    }

    #[test]
    fn a_digest_shows_counts_states_and_the_median_change() {
        let m = team_digest(&data(6));
        assert!(m.text.contains("6 of 7 answered"), "{}", m.text);
        assert!(
            m.text.contains("building: 4 · sustained ownership: 2"),
            "{}",
            m.text
        );
        assert!(m.text.contains("0.62 (+0.12"), "{}", m.text);
        assert_eq!(m.blocks.len(), 3);
        assert!(m.to_mrkdwn().contains("+0.12"));
    }

    #[test]
    fn a_small_group_gets_only_the_counts() {
        let m = team_digest(&data(4));
        assert!(m.text.contains("Too few answered"), "{}", m.text);
        assert!(!m.text.contains("building"), "{}", m.text);
        assert!(!m.text.contains("0.62"), "{}", m.text);
        assert_eq!(m.blocks.len(), 1);
    }

    #[test]
    fn a_missing_week_before_is_said() {
        let mut d = data(5);
        d.median_before = None;
        assert!(team_digest(&d).text.contains("no counted week before"));
        d.median = None;
        assert!(team_digest(&d).text.contains("no week counted yet"));
    }
}
