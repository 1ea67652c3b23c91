//! `[model]` in config.toml: every threshold of the readiness model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::Catalogue;

/// The question whose `same` answers say the role is anchored.
pub const CONTINUITY: &str = "continuity";
/// The question whose `none` answer holds a due nudge.
pub const CAPACITY: &str = "capacity";
/// The continuity option that counts as anchored.
pub const SAME: &str = "same";
/// The capacity option that holds a nudge.
pub const NO_CAPACITY: &str = "none";

/// Thresholds and windows of the readiness model (ARCHITECTURE.md, "The readiness model").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Weight of each index question; questions without a weight are not
    /// part of the ownership index.
    pub weights: BTreeMap<String, f64>,
    /// A week with index at or above this is strong.
    pub high: f64,
    /// After a nudge, the model re-arms only once the EWMA has fallen below this.
    pub low: f64,
    /// ISO weeks assessed, ending with the current week.
    pub window: u32,
    /// Counted weeks needed in the window to assess at all.
    pub min_weeks: u32,
    /// Strong weeks needed in the window.
    pub min_strong_weeks: u32,
    /// The last this-many counted weeks must average at least `high`.
    pub recent_weeks: u32,
    /// EWMA smoothing factor, in (0, 1].
    pub alpha: f64,
    /// The least-squares slope per week must be at least this.
    pub slope_floor: f64,
    /// Weeks over which anchoring (continuity) is judged.
    pub continuity_window: u32,
    /// Share of `same` continuity answers needed in that window.
    pub min_same_share: f64,
    /// Continuity answers needed in that window before the share counts:
    /// with few answers, "5 of 5 weeks on the same product" passes by luck
    /// for people who rotate between products (ARCHITECTURE.md, "The readiness model").
    pub min_continuity_answers: u32,
    /// Days after a nudge before another may be sent.
    pub cooldown_days: u32,
    /// Weeks a due nudge is held while capacity is `none`.
    pub capacity_hold_weeks: u32,
    /// Weeks after a "Not now" answer to a nudge before it is asked again,
    /// if the role still shows sustained ownership then: an answer about
    /// timing, not about the role, so it waits about two months rather than
    /// the `cooldown_days` and the dip that follow any other answer.
    pub not_now_weeks: u32,
    /// Index questions a week needs answered to count.
    pub min_answered: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            weights: [
                ("decisions", 0.25),
                ("stakeholders", 0.20),
                ("tradeoffs", 0.20),
                ("focus", 0.20),
                ("reversibility", 0.15),
            ]
            .into_iter()
            .map(|(q, w)| (q.to_owned(), w))
            .collect(),
            high: 0.6,
            low: 0.4,
            window: 8,
            min_weeks: 4,
            min_strong_weeks: 5,
            recent_weeks: 3,
            alpha: 0.4,
            slope_floor: -0.02,
            continuity_window: 16,
            min_same_share: 0.8,
            min_continuity_answers: 8,
            cooldown_days: 90,
            capacity_hold_weeks: 6,
            not_now_weeks: 8,
            min_answered: 3,
        }
    }
}

/// The longest window accepted, in weeks (ten years): bounds the work of
/// one assessment.
const MAX_WEEKS: u32 = 520;

/// Below this weight a week's contribution to the EWMA is negligible: the
/// EWMA is a value in [0, 1] shown to two decimals, so leaving such weeks
/// out moves it by less than 0.0001.
const EWMA_NEGLIGIBLE: f64 = 1e-4;

impl Params {
    /// Weeks after which a value's weight in the EWMA, `(1 - alpha)^n`, is
    /// below 0.0001: older weeks need not be read.
    pub fn ewma_horizon_weeks(&self) -> u32 {
        if self.alpha >= 1.0 {
            return 1;
        }
        let n = (EWMA_NEGLIGIBLE.ln() / (1.0 - self.alpha).ln()).ceil();
        if n.is_finite() {
            (n as u32).clamp(1, MAX_WEEKS)
        } else {
            MAX_WEEKS
        }
    }

    /// How far back one assessment reads: the longest of the windows
    /// (including the weeks a capacity hold looks back) and the EWMA horizon.
    pub fn lookback_weeks(&self) -> u32 {
        (self.window + self.capacity_hold_weeks + 1)
            .max(self.continuity_window)
            .max(self.ewma_horizon_weeks())
    }

    /// Checks every value; on error returns (`model.KEY`, problem).
    pub fn validate(&self, catalogue: &Catalogue) -> Result<(), (String, String)> {
        let err = |key: &str, problem: String| Err((format!("model.{key}"), problem));
        if self.weights.is_empty() {
            return err("weights", "needs at least one question".into());
        }
        for (question, weight) in &self.weights {
            if catalogue.get(question).is_none() {
                return err(
                    &format!("weights.{question}"),
                    format!("unknown question {question:?}"),
                );
            }
            if !weight.is_finite() || *weight < 0.0 {
                return err(
                    &format!("weights.{question}"),
                    format!("must be a non-negative number, got {weight}"),
                );
            }
        }
        if self.weights.values().all(|w| *w == 0.0) {
            return err("weights", "cannot all be zero".into());
        }
        for (key, value) in [
            ("high", self.high),
            ("low", self.low),
            ("min_same_share", self.min_same_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return err(key, format!("must be between 0 and 1, got {value}"));
            }
        }
        if self.low >= self.high {
            return err(
                "low",
                format!("must be below model.high ({}), got {}", self.high, self.low),
            );
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return err("alpha", format!("must be in (0, 1], got {}", self.alpha));
        }
        if !self.slope_floor.is_finite() {
            return err("slope_floor", "must be a number".into());
        }
        for (key, value) in [
            ("window", self.window),
            ("min_weeks", self.min_weeks),
            ("recent_weeks", self.recent_weeks),
            ("continuity_window", self.continuity_window),
            ("not_now_weeks", self.not_now_weeks),
            ("min_answered", self.min_answered),
            ("min_continuity_answers", self.min_continuity_answers),
        ] {
            if value == 0 || value > MAX_WEEKS {
                return err(
                    key,
                    format!("must be between 1 and {MAX_WEEKS}, got {value}"),
                );
            }
        }
        for (key, value) in [
            ("min_weeks", self.min_weeks),
            ("min_strong_weeks", self.min_strong_weeks),
            ("recent_weeks", self.recent_weeks),
        ] {
            if value > self.window {
                return err(
                    key,
                    format!(
                        "must be at most model.window ({}), got {value}",
                        self.window
                    ),
                );
            }
        }
        if self.min_continuity_answers > self.continuity_window {
            return err(
                "min_continuity_answers",
                format!(
                    "must be at most model.continuity_window ({}), got {}",
                    self.continuity_window, self.min_continuity_answers
                ),
            );
        }
        if self.min_answered as usize > self.weights.len() {
            return err(
                "min_answered",
                format!(
                    "must be at most the number of weighted questions ({}), got {}",
                    self.weights.len(),
                    self.min_answered
                ),
            );
        }
        // 0 is a choice (never hold); past the longest window, the weeks an
        // assessment reads back would run off the calendar.
        if self.capacity_hold_weeks > MAX_WEEKS {
            return err(
                "capacity_hold_weeks",
                format!(
                    "must be at most {MAX_WEEKS}, got {}",
                    self.capacity_hold_weeks
                ),
            );
        }
        for question in [CONTINUITY, CAPACITY] {
            if catalogue.get(question).is_none() {
                return Err((
                    "questions".into(),
                    format!("the readiness model needs a {question:?} question"),
                ));
            }
        }
        Ok(())
    }
}
