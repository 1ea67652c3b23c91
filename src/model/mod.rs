//! The readiness model (DESIGN §2): from a person's weekly answers, the
//! weekly ownership index, its trend, and whether the role has crossed into
//! *sustained* ownership, with the reasons as data; and, from how the
//! person answered the nudges already sent ("Not now", "Not for me") and
//! whether they turned nudges off, whether another is due.
//!
//! Pure and deterministic: no IO, no clock (`today` is an argument), so the
//! daemon, `nudged trend` and `nudged replay` all get the same verdict.
//!
//! - `params.rs`: [`Params`], the `[model]` config section, and its validation.
//! - `trend.rs`: EWMA, least-squares slope, sparkline.
//! - this file: scoring weeks, the rules, the states, and replay.

mod params;
mod trend;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::{Answer, Catalogue, IsoWeek, NudgeResponse, OptionKey, QuestionId};

pub use params::{CAPACITY, CONTINUITY, NO_CAPACITY, Params, SAME};
pub use trend::{GAP, ewma, slope, sparkline};

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
    /// the last `window` weeks; `min_share` of them must be `same`.
    Continuity {
        same: u32,
        answered: u32,
        window: u32,
        min_share: f64,
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

/// A nudge replay would have sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayNudge {
    pub week: IsoWeek,
    pub reasons: Vec<Reason>,
}

/// A week in which a due nudge was held for capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayHold {
    pub week: IsoWeek,
    pub reason: Reason,
}

/// What replaying a history under some params shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replay {
    pub nudges: Vec<ReplayNudge>,
    pub held: Vec<ReplayHold>,
}

/// Walks `answers` week by week, from the first answered week to `until`'s
/// week, assessing at the end of each week (Sunday, or `until` itself) and
/// treating every simulated nudge as sent, so cooldown and hysteresis apply
/// as they would have live.
pub fn replay(
    answers: &[Answer],
    catalogue: &Catalogue,
    params: &Params,
    until: NaiveDate,
) -> Replay {
    let scored = Scored::new(answers, catalogue, params);
    let mut out = Replay::default();
    let Some(&first) = scored.weeks.first() else {
        return out;
    };
    let last = IsoWeek::of(until);
    let mut nudges = Vec::new();
    let mut week = first;
    while week <= last {
        let sunday = week.monday() + chrono::Duration::days(6);
        let day = sunday.min(until);
        let a = scored.assess(&nudges, false, day);
        match a.state {
            State::Sustained => {
                nudges.push(SentNudge::unanswered(day));
                out.nudges.push(ReplayNudge {
                    week,
                    reasons: a.reasons,
                });
            }
            State::WaitingForCapacity => {
                if let Some(reason) = a.reasons.into_iter().find(|r| r.rule == Rule::Capacity) {
                    out.held.push(ReplayHold { week, reason });
                }
            }
            _ => {}
        }
        week = week.plus(1);
    }
    out
}

/// String equality for ids of a few bytes: an inline byte loop, which beats
/// a call to `memcmp` at this length and dominates scoring otherwise.
#[inline]
fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// One week's answers by catalogue position: `option index + 1`, 0 if
/// unanswered. Positions keep scoring free of string work.
type WeekRow = [u8];

/// A person's history, scored once and assessable at any day.
struct Scored<'a, 'p> {
    catalogue: &'a Catalogue,
    params: &'p Params,
    /// (catalogue position, weight) of each weighted question.
    weights: Vec<(usize, f64)>,
    continuity: Option<usize>,
    capacity: Option<usize>,
    /// Questions in the catalogue: the length of each row.
    stride: usize,
    /// The answered weeks, ascending.
    weeks: Vec<IsoWeek>,
    /// `weeks.len()` rows of `stride` bytes, one per answered week.
    rows: Vec<u8>,
}

impl<'a, 'p> Scored<'a, 'p> {
    /// Scores `answers`, in any order.
    fn new(answers: &[Answer], catalogue: &'a Catalogue, params: &'p Params) -> Self {
        let questions = catalogue.questions();
        let stride = questions.len();
        // (week, question, option + 1), without any per-week allocation.
        let mut cells: Vec<(IsoWeek, usize, u8)> = Vec::with_capacity(answers.len());
        let mut next_q = 0;
        for a in answers {
            // Answers usually arrive in catalogue order: try the next
            // position before searching.
            let question = a.question.as_str();
            let q = match questions.get(next_q) {
                Some(expected) if short_eq(expected.id.as_str(), question) => next_q,
                _ => match questions
                    .iter()
                    .position(|q| short_eq(q.id.as_str(), question))
                {
                    Some(q) => q,
                    None => continue,
                },
            };
            next_q = (q + 1) % stride.max(1);
            let option = a.option.as_str();
            let Some(o) = questions[q]
                .options
                .iter()
                .position(|o| short_eq(o.key.as_str(), option))
            else {
                continue;
            };
            cells.push((a.week, q, u8::try_from(o + 1).unwrap_or(0)));
        }
        if !cells.is_sorted_by_key(|c| c.0) {
            cells.sort_by_key(|c| c.0);
        }
        let mut weeks: Vec<IsoWeek> = Vec::new();
        let mut rows = Vec::new();
        for (week, q, o) in cells {
            if weeks.last() != Some(&week) {
                weeks.push(week);
                rows.resize(rows.len() + stride, 0);
            }
            let row = rows.len() - stride;
            rows[row + q] = o;
        }
        let weights = params
            .weights
            .iter()
            .filter(|(_, w)| **w > 0.0)
            .filter_map(|(q, w)| catalogue.position(q).map(|p| (p, *w)))
            .collect();
        Self {
            catalogue,
            params,
            weights,
            continuity: catalogue.position(CONTINUITY),
            capacity: catalogue.position(CAPACITY),
            stride,
            weeks,
            rows,
        }
    }

    /// How many answered weeks count.
    fn counted_weeks(&self) -> usize {
        (0..self.weeks.len())
            .filter(|&k| self.index(self.row(k)).1)
            .count()
    }

    /// Answered weeks in `[from, to]` with their rows, oldest first.
    fn range(
        &self,
        from: IsoWeek,
        to: IsoWeek,
    ) -> impl DoubleEndedIterator<Item = (IsoWeek, &WeekRow)> + '_ {
        let lo = self.weeks.partition_point(|w| *w < from);
        let hi = self.weeks.partition_point(|w| *w <= to);
        (lo..hi.max(lo)).map(move |k| (self.weeks[k], self.row(k)))
    }

    fn row(&self, k: usize) -> &WeekRow {
        &self.rows[k * self.stride..(k + 1) * self.stride]
    }

    /// The row of `week`, if it was answered.
    fn get(&self, week: IsoWeek) -> Option<&WeekRow> {
        self.weeks.binary_search(&week).ok().map(|k| self.row(k))
    }

    fn score(&self, row: &WeekRow, q: usize) -> Option<f64> {
        let o = usize::from(*row.get(q)?).checked_sub(1)?;
        Some(self.catalogue.questions()[q].options.get(o)?.score)
    }

    fn option_key(&self, row: &WeekRow, q: usize) -> Option<&'a OptionKey> {
        let o = usize::from(*row.get(q)?).checked_sub(1)?;
        Some(&self.catalogue.questions()[q].options.get(o)?.key)
    }

    /// (index, counted) of one week.
    fn index(&self, row: &WeekRow) -> (Option<f64>, bool) {
        let (mut sum, mut total, mut answered) = (0.0, 0.0, 0u32);
        for &(q, w) in &self.weights {
            if let Some(s) = self.score(row, q) {
                sum += w * s;
                total += w;
                answered += 1;
            }
        }
        let index = (total > 0.0).then(|| sum / total);
        (
            index,
            index.is_some() && answered >= self.params.min_answered,
        )
    }

    /// Counted (week, index) pairs in `[from, to]`, oldest first.
    fn counted(&self, from: IsoWeek, to: IsoWeek) -> Vec<(IsoWeek, f64)> {
        self.range(from, to)
            .filter_map(|(w, row)| match self.index(row) {
                (Some(i), true) => Some((w, i)),
                _ => None,
            })
            .collect()
    }

    /// The core rules at `current`; returns the reasons and whether all hold.
    fn rules(&self, current: IsoWeek) -> (Vec<Reason>, bool) {
        let p = self.params;
        let start = current.plus(1 - i64::from(p.window));
        let counted = self.counted(start, current);
        let n = counted.len();
        let mut reasons = Vec::with_capacity(7);

        let enough = n >= p.min_weeks as usize;
        reasons.push(Reason {
            rule: Rule::EnoughData,
            holds: enough,
            detail: format!(
                "{n} of the last {} weeks answered (need {})",
                p.window, p.min_weeks
            ),
            facts: Facts::EnoughData {
                counted: count(n),
                window: p.window,
                need: p.min_weeks,
            },
        });

        let strong = counted.iter().filter(|(_, i)| *i >= p.high).count();
        reasons.push(Reason {
            rule: Rule::StrongWeeks,
            holds: strong >= p.min_strong_weeks as usize,
            detail: format!(
                "index ≥ {} in {strong} of the last {} weeks (need {})",
                p.high, p.window, p.min_strong_weeks
            ),
            facts: Facts::StrongWeeks {
                strong: count(strong),
                window: p.window,
                need: p.min_strong_weeks,
                high: p.high,
            },
        });

        let recent_n = p.recent_weeks as usize;
        let recent = &counted[n.saturating_sub(recent_n)..];
        let recent_avg = (!recent.is_empty())
            .then(|| recent.iter().map(|(_, i)| i).sum::<f64>() / recent.len() as f64);
        reasons.push(Reason {
            rule: Rule::RecentAverage,
            holds: recent.len() >= recent_n && recent_avg.is_some_and(|a| a >= p.high),
            detail: match recent_avg {
                Some(a) => format!(
                    "last {} answered weeks average {a:.2} (need ≥ {})",
                    recent.len(),
                    p.high
                ),
                None => "no answered weeks to average".to_owned(),
            },
            facts: Facts::RecentAverage {
                weeks: count(recent.len()),
                need_weeks: p.recent_weeks,
                average: recent_avg,
                high: p.high,
            },
        });

        let points: Vec<(f64, f64)> = counted
            .iter()
            .map(|(w, i)| (w.weeks_since(start) as f64, *i))
            .collect();
        let s = slope(&points);
        reasons.push(Reason {
            rule: Rule::Slope,
            holds: s.is_some_and(|s| s >= p.slope_floor),
            detail: match s {
                Some(s) => format!("trend {s:+.3} per week (floor {:+.3})", p.slope_floor),
                None => "too few answered weeks for a trend".to_owned(),
            },
            facts: Facts::Slope {
                slope: s,
                floor: p.slope_floor,
            },
        });

        let (same, total) = self.continuity_share(current);
        let anchored = total > 0 && same as f64 >= p.min_same_share * total as f64;
        reasons.push(Reason {
            rule: Rule::Continuity,
            holds: anchored,
            detail: if total == 0 {
                format!(
                    "no answers about product continuity in the last {} weeks",
                    p.continuity_window
                )
            } else {
                format!(
                    "same product {same} of {total} answered weeks in the last {} (need {:.0}%)",
                    p.continuity_window,
                    p.min_same_share * 100.0
                )
            },
            facts: Facts::Continuity {
                same: count(same),
                answered: count(total),
                window: p.continuity_window,
                min_share: p.min_same_share,
            },
        });

        let all = reasons.iter().all(|r| r.holds);
        (reasons, all)
    }

    /// (`same` answers, continuity answers) over the continuity window.
    fn continuity_share(&self, current: IsoWeek) -> (usize, usize) {
        let Some(q) = self.continuity else {
            return (0, 0);
        };
        let start = current.plus(1 - i64::from(self.params.continuity_window));
        self.range(start, current)
            .filter_map(|(_, row)| self.option_key(row, q))
            .fold((0, 0), |(same, total), key| {
                (same + usize::from(key.as_str() == SAME), total + 1)
            })
    }

    /// The newest capacity answer in the window ending at `current`.
    fn latest_capacity(&self, current: IsoWeek) -> Option<(IsoWeek, &'a OptionKey)> {
        let q = self.capacity?;
        let start = current.plus(1 - i64::from(self.params.window));
        self.range(start, current)
            .rev()
            .find_map(|(w, row)| self.option_key(row, q).map(|k| (w, k)))
    }

    fn assess(&self, nudges: &[SentNudge], nudges_off: bool, today: NaiveDate) -> Assessment<'a> {
        let p = self.params;
        let current = IsoWeek::of(today);
        let start = current.plus(1 - i64::from(p.window));

        // Running EWMA over the whole counted history up to today.
        let mut running = None;
        let mut ewma_by_week = Vec::new();
        let first = self.weeks.first().copied().unwrap_or(current);
        for (w, row) in self.range(first, current) {
            if let (Some(i), true) = self.index(row) {
                running = Some(running.map_or(i, |e: f64| p.alpha * i + (1.0 - p.alpha) * e));
                ewma_by_week.push((w, running.unwrap_or(i)));
            }
        }

        let (mut reasons, sustained) = self.rules(current);
        let enough = reasons[0].holds;

        // The latest nudge sent by today, with the answer given by today:
        // an assessment of an earlier day does not see later clicks.
        let last_nudge = nudges
            .iter()
            .filter(|n| n.sent_on <= today)
            .max_by_key(|n| n.sent_on)
            .map(|n| SentNudge {
                answer: n.answer.filter(|a| a.on <= today),
                ..*n
            });
        let mut state = match (enough, sustained) {
            (false, _) => State::InsufficientData,
            (true, false) => State::Building,
            (true, true) => State::Sustained,
        };

        if let Some(nudge) = last_nudge {
            let nudged_on = nudge.sent_on;
            let days = (today - nudged_on).num_days();
            let cooled = days >= i64::from(p.cooldown_days);
            let nudge_week = IsoWeek::of(nudged_on);
            let dipped = ewma_by_week
                .iter()
                .any(|(w, e)| *w > nudge_week && *e < p.low);
            let mut rearmed = cooled && dipped;
            reasons.push(Reason {
                rule: Rule::Cooldown,
                holds: rearmed,
                detail: format!(
                    "nudged on {nudged_on} ({days} days ago); another only after {} days and once the trend has dropped below {}{}",
                    p.cooldown_days,
                    p.low,
                    if dipped { " (it has)" } else { "" }
                ),
                facts: Facts::Cooldown {
                    nudged_on,
                    days,
                    cooldown_days: p.cooldown_days,
                    low: p.low,
                    dipped,
                },
            });
            match nudge.answer {
                // An answer about timing: asked again once the weeks are
                // up, if the role still shows sustained ownership.
                Some(NudgeAnswer {
                    response: NudgeResponse::NotNow,
                    on,
                }) => {
                    let waited = (today - on).num_days();
                    let due = waited >= 7 * i64::from(p.not_now_weeks);
                    rearmed |= due;
                    reasons.push(Reason {
                        rule: Rule::NotNow,
                        holds: due,
                        detail: format!(
                            "answered \"not now\" on {on} ({} weeks ago); asked again after {} weeks",
                            waited / 7,
                            p.not_now_weeks
                        ),
                        facts: Facts::NotNow {
                            answered_on: on,
                            weeks: waited / 7,
                            not_now_weeks: p.not_now_weeks,
                        },
                    });
                }
                // "Not for me", and since then the person turned nudges
                // back on: they asked for it, so it may come again now.
                Some(NudgeAnswer {
                    response: NudgeResponse::NotForMe,
                    ..
                }) if !nudges_off => {
                    rearmed = true;
                    reasons.push(nudges_off_reason(false));
                }
                _ => {}
            }
            if !rearmed {
                state = State::Nudged;
            }
        }

        if state == State::Sustained
            && let Some(reason) = self.capacity_gate(current)
        {
            if !reason.holds {
                state = State::WaitingForCapacity;
            }
            reasons.push(reason);
        }

        if nudges_off {
            if matches!(state, State::Sustained | State::WaitingForCapacity) {
                state = State::Declined;
            }
            reasons.push(nudges_off_reason(true));
        }

        let weeks: Vec<WeekScore> = (0..p.window)
            .map(|k| {
                let week = start.plus(i64::from(k));
                match self.get(week) {
                    Some(row) => {
                        let (index, counted) = self.index(row);
                        let answers = row
                            .iter()
                            .enumerate()
                            .filter_map(|(q, o)| {
                                let question = &self.catalogue.questions()[q];
                                let option =
                                    question.options.get(usize::from(*o).checked_sub(1)?)?;
                                Some((&question.id, &option.key))
                            })
                            .collect();
                        WeekScore {
                            week,
                            index,
                            counted,
                            answers,
                        }
                    }
                    None => WeekScore {
                        week,
                        index: None,
                        counted: false,
                        answers: Vec::new(),
                    },
                }
            })
            .collect();
        let sparkline = trend::sparkline(weeks.iter().map(|w| w.index.filter(|_| w.counted)));
        let points: Vec<(f64, f64)> = weeks
            .iter()
            .enumerate()
            .filter_map(|(k, w)| w.index.filter(|_| w.counted).map(|i| (k as f64, i)))
            .collect();
        let signals = self
            .catalogue
            .questions()
            .iter()
            .enumerate()
            .map(|(q, question)| {
                let series: Vec<(f64, f64)> = self
                    .range(start, current)
                    .filter_map(|(w, row)| {
                        self.score(row, q).map(|s| (w.weeks_since(start) as f64, s))
                    })
                    .collect();
                SignalTrend {
                    question: &question.id,
                    ewma: trend::ewma(series.iter().map(|p| p.1), p.alpha),
                    slope: slope(&series),
                    answered_weeks: count(series.len()),
                    present_weeks: count(
                        series.iter().filter(|(_, s)| *s >= SIGNAL_PRESENT).count(),
                    ),
                }
            })
            .collect();

        Assessment {
            weeks,
            ewma: running,
            slope: slope(&points),
            state,
            reasons,
            sparkline,
            signals,
            nudge: last_nudge,
        }
    }

    /// The capacity gate at `current` for a sustained person: `None` if
    /// they never answered the capacity question in the window.
    fn capacity_gate(&self, current: IsoWeek) -> Option<Reason> {
        let p = self.params;
        let (week, key) = self.latest_capacity(current)?;
        let facts = |held_weeks| Facts::Capacity {
            week,
            answer: key.clone(),
            held_weeks,
            hold_weeks: p.capacity_hold_weeks,
        };
        if key.as_str() != NO_CAPACITY {
            return Some(Reason {
                rule: Rule::Capacity,
                holds: true,
                detail: format!("room to learn: {key} ({week})"),
                facts: facts(0),
            });
        }
        // How many weeks in a row, ending now, the nudge has been held.
        let mut held = 1;
        while held <= p.capacity_hold_weeks {
            let earlier = current.plus(-i64::from(held));
            let still_held = self.rules(earlier).1
                && self
                    .latest_capacity(earlier)
                    .is_some_and(|(_, k)| k.as_str() == NO_CAPACITY);
            if !still_held {
                break;
            }
            held += 1;
        }
        Some(if held > p.capacity_hold_weeks {
            Reason {
                rule: Rule::Capacity,
                holds: true,
                detail: format!(
                    "no room to learn for {held} weeks; sent anyway after {} weeks held: the timing is your call",
                    p.capacity_hold_weeks
                ),
                facts: facts(held),
            }
        } else {
            Reason {
                rule: Rule::Capacity,
                holds: false,
                detail: format!(
                    "no room to learn right now ({week}); held {held} of at most {} weeks",
                    p.capacity_hold_weeks
                ),
                facts: facts(held),
            }
        })
    }
}

/// The reason about nudges being turned off (`off`), or back on after "Not
/// for me".
fn nudges_off_reason(off: bool) -> Reason {
    Reason {
        rule: Rule::NudgesOff,
        holds: !off,
        detail: if off {
            "nudges are off (answered \"not for me\" or `/pulse nudge off`); none is sent until `/pulse nudge on`".to_owned()
        } else {
            "nudges turned back on after \"not for me\"".to_owned()
        },
        facts: Facts::NudgesOff { off },
    }
}

/// A count of weeks or answers as stored in [`Facts`]: windows are at most
/// a few hundred weeks, so it always fits.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
