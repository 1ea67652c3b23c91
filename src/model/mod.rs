//! The readiness model (ARCHITECTURE.md, "The readiness model"): from a person's weekly answers, the
//! weekly ownership index, its trend, and whether the role has crossed into
//! *sustained* ownership, with the reasons as data; and, from how the
//! person answered the nudges already sent ("Not now", "Not for me") and
//! whether they turned nudges off, whether another is due.
//!
//! Pure and deterministic: no IO, no clock (`today` is an argument), so the
//! daemon, `nudged trend` and `nudged replay` all get the same verdict.
//!
//! - `chart.rs`: the data of the trend chart.
//! - `params.rs`: [`Params`], the `[model]` config section, and its validation.
//! - `trend.rs`: EWMA, least-squares slope, sparkline.
//! - `scored.rs`: a history scored once into per-week rows.
//! - `rules.rs`: the rules behind sustained ownership and the capacity gate.
//! - `verdict.rs`: the state and reasons of one assessment, nudges included.
//! - `replay.rs`: when nudges would have fired over a whole history.
//! - this file: the types of an assessment and [`assess`].

mod chart;
mod params;
mod replay;
mod rules;
mod scored;
mod trend;
mod verdict;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::{Answer, Catalogue, IsoWeek, NudgeResponse, OptionKey, QuestionId};

pub use chart::{CHART_WEEKS_BEFORE, Chart, ChartWeek, chart};
pub use params::{CAPACITY, CONTINUITY, NO_CAPACITY, Params, SAME};
pub use replay::{Replay, ReplayHold, ReplayNudge, replay};
pub use trend::{GAP, ewma, slope, sparkline};

use scored::Scored;

/// Where a person stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Fewer than `min_weeks` counted weeks in the window.
    InsufficientData,
    /// Enough data; not (yet) sustained ownership.
    Building,
    /// Sustained ownership: the nudge is due.
    Sustained,
    /// Sustained, but the latest capacity answer is "none": the nudge waits.
    WaitingForCapacity,
    /// A nudge was sent and the model has not re-armed.
    Nudged,
    /// Sustained (a nudge would be due), but the person said the nudge is
    /// not for them, or turned nudges off: none is sent until they turn
    /// them back on (`/pulse nudge on`).
    Declined,
}

impl State {
    /// The stable name used in JSON, the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsufficientData => "insufficient-data",
            Self::Building => "building",
            Self::Sustained => "sustained",
            Self::WaitingForCapacity => "waiting-for-capacity",
            Self::Nudged => "nudged",
            Self::Declined => "declined",
        }
    }
}

/// Which rule a [`Reason`] reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    EnoughData,
    StrongWeeks,
    RecentAverage,
    Slope,
    Continuity,
    Capacity,
    Cooldown,
    /// The last nudge was answered "Not now": it re-arms after
    /// `not_now_weeks`.
    NotNow,
    /// The person turned nudges off (or back on after "Not for me").
    NudgesOff,
}

/// One rule's verdict: its numbers as data ([`Facts`]) and as a sentence
/// with the model's terms (`detail`). Messages to the person are worded
/// from the facts (`render`); `trend --json` shows both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub rule: Rule,
    pub holds: bool,
    pub detail: String,
    pub facts: Facts,
}

/// The numbers behind one [`Reason`], one variant per [`Rule`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Facts {
    /// [`Rule::EnoughData`]: counted weeks in the window, of `window`;
    /// `need` are needed.
    EnoughData {
        counted: u32,
        window: u32,
        need: u32,
    },
    /// [`Rule::StrongWeeks`]: weeks with index ≥ `high` in the window.
    StrongWeeks {
        strong: u32,
        window: u32,
        need: u32,
        high: f64,
    },
    /// [`Rule::RecentAverage`]: the mean index of the last `weeks` counted
    /// weeks (`need_weeks` are looked at), if there were any.
    RecentAverage {
        weeks: u32,
        need_weeks: u32,
        average: Option<f64>,
        high: f64,
    },
    /// [`Rule::Slope`]: the least-squares slope per week, if there were
    /// enough weeks.
    Slope { slope: Option<f64>, floor: f64 },
    /// [`Rule::Continuity`]: `same` of `answered` continuity answers over
    /// the last `window` weeks; at least `need` answers are needed, and
    /// `min_share` of them must be `same`.
    Continuity {
        same: u32,
        answered: u32,
        window: u32,
        min_share: f64,
        need: u32,
    },
    /// [`Rule::Capacity`]: the latest capacity answer (`answer`, in
    /// `week`). With `none`, `held_weeks` in a row so far, of at most
    /// `hold_weeks`; 0 otherwise.
    Capacity {
        week: IsoWeek,
        answer: OptionKey,
        held_weeks: u32,
        hold_weeks: u32,
    },
    /// [`Rule::Cooldown`]: the last nudge, `days` ago.
    Cooldown {
        nudged_on: NaiveDate,
        days: i64,
        cooldown_days: u32,
        low: f64,
        dipped: bool,
    },
    /// [`Rule::NotNow`]: "Not now" answered on `answered_on`, `weeks` full
    /// weeks ago; asked again after `not_now_weeks`.
    NotNow {
        answered_on: NaiveDate,
        weeks: i64,
        not_now_weeks: u32,
    },
    /// [`Rule::NudgesOff`]: `off` while nudges are off; `false` when the
    /// person turned them back on after answering "Not for me".
    NudgesOff { off: bool },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// One ISO week of the window. Borrows ids from the catalogue, so an
/// assessment allocates no strings for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekScore<'a> {
    pub week: IsoWeek,
    /// The ownership index over the index questions answered, if any were.
    pub index: Option<f64>,
    /// Whether enough index questions were answered for the week to count.
    pub counted: bool,
    /// The week's answers in catalogue order; serialized as an object.
    #[serde(serialize_with = "as_map")]
    pub answers: Vec<(&'a QuestionId, &'a OptionKey)>,
}

fn as_map<S: serde::Serializer>(
    pairs: &[(&QuestionId, &OptionKey)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().copied())
}

/// A week's answer to a question counts as showing its signal (a decision
/// load, stakeholder pressure, …) when it scores at least this: half-way up
/// the question's scale (`3-5` decisions, `2-3` stakeholders, a trade-off
/// justified `once`, time `mixed`, decisions undone only `partly`).
pub const SIGNAL_PRESENT: f64 = 0.5;

/// The trend of one question's score over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalTrend<'a> {
    pub question: &'a QuestionId,
    pub ewma: Option<f64>,
    pub slope: Option<f64>,
    /// Weeks of the window in which it was answered.
    pub answered_weeks: u32,
    /// Of those, the weeks whose answer scored at least [`SIGNAL_PRESENT`].
    pub present_weeks: u32,
}

/// A readiness nudge that was sent, and how the person answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SentNudge {
    /// The day it was sent.
    pub sent_on: NaiveDate,
    /// The person's answer, if any (the latest, when they changed it).
    pub answer: Option<NudgeAnswer>,
}

/// A person's answer to a nudge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NudgeAnswer {
    pub response: NudgeResponse,
    /// The day they answered.
    pub on: NaiveDate,
}

impl SentNudge {
    /// A nudge sent on `day` and not answered.
    pub fn unanswered(day: NaiveDate) -> Self {
        Self {
            sent_on: day,
            answer: None,
        }
    }
}

/// The model's verdict for one person on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment<'a> {
    /// The `window` ISO weeks ending with today's week, oldest first.
    pub weeks: Vec<WeekScore<'a>>,
    /// EWMA of the counted weekly index up to today. Weeks older than
    /// [`Params::ewma_horizon_weeks`] weigh less than 0.0001 and are left
    /// out.
    pub ewma: Option<f64>,
    /// Least-squares slope of the counted index over the window, per week.
    pub slope: Option<f64>,
    pub state: State,
    pub reasons: Vec<Reason>,
    /// One bar per week of the window; `·` where a week did not count.
    pub sparkline: String,
    /// Per question, over the window.
    pub signals: Vec<SignalTrend<'a>>,
    /// The latest nudge sent by today, with the answer given by today.
    pub nudge: Option<SentNudge>,
}

/// One person's history.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Their answers, sorted by week (as [`crate::store::Store::answers`]
    /// returns them): [`assess`] reads only the recent weeks it needs.
    pub answers: &'a [Answer],
    /// The readiness nudges sent to them, and their answers.
    pub nudges: &'a [SentNudge],
    /// Whether they turned nudges off ("Not for me", `/pulse nudge off`):
    /// then no nudge is due, whatever the answers say.
    pub nudges_off: bool,
}

/// Assesses `history` as of `today`.
pub fn assess<'c>(
    history: &History<'_>,
    catalogue: &'c Catalogue,
    params: &Params,
    today: NaiveDate,
) -> Assessment<'c> {
    let current = IsoWeek::of(today);
    let mut from = current.plus(-i64::from(params.lookback_weeks()));
    if let Some(nudged) = history
        .nudges
        .iter()
        .map(|n| n.sent_on)
        .filter(|d| *d <= today)
        .max()
    {
        from = from.min(IsoWeek::of(nudged).plus(-i64::from(params.ewma_horizon_weeks())));
    }
    debug_assert!(
        history.answers.is_sorted_by_key(|a| a.week),
        "History::answers must be sorted by week"
    );
    // Scan back from the newest answer: the weeks needed are at the end,
    // and reading them in order is cheaper than a binary search's jumps
    // through a history that is not in cache.
    let first = history
        .answers
        .iter()
        .rposition(|a| a.week < from)
        .map_or(0, |i| i + 1);
    let mut scored = Scored::new(&history.answers[first..], catalogue, params);
    // The EWMA decays per counted week: with gaps, the recent weeks may hold
    // too few of them for older ones to be negligible. Read everything then.
    if first > 0 && scored.counted_weeks() < params.ewma_horizon_weeks() as usize {
        scored = Scored::new(history.answers, catalogue, params);
    }
    scored.assess(history.nudges, history.nudges_off, today)
}

#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;
