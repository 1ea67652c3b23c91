//! The data of a person's trend chart: the weekly index over the window and
//! some weeks before it, the running EWMA, and the `high` threshold. Pure:
//! `render::chart` draws it; building it here keeps the numbers the same as
//! the assessment's.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Params, Scored};
use crate::domain::{Answer, Catalogue, IsoWeek};

/// Weeks shown before the assessment window: enough to see where the trend
/// came from, few enough for a phone's width.
pub const CHART_WEEKS_BEFORE: u32 = 8;

/// One week of the chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartWeek {
    pub week: IsoWeek,
    /// The week's index, if it counted.
    pub index: Option<f64>,
    /// Whether the week counted (answered, with enough index questions).
    pub counted: bool,
    /// The EWMA after this week (carried over weeks that did not count);
    /// `None` before the first counted week.
    pub ewma: Option<f64>,
}

/// What the trend chart shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Oldest first, ending with today's week.
    pub weeks: Vec<ChartWeek>,
    /// How many of the last weeks are the assessment window.
    pub window: u32,
    /// The `high` threshold: a week at or above it is strong.
    pub high: f64,
}

impl Chart {
    /// Whether any week counted: a chart without one shows nothing.
    pub fn is_empty(&self) -> bool {
        !self.weeks.iter().any(|w| w.counted)
    }
}

/// The chart of `answers` (sorted or not) as of `today`.
pub fn chart(
    answers: &[Answer],
    catalogue: &Catalogue,
    params: &Params,
    today: NaiveDate,
) -> Chart {
    let scored = Scored::new(answers, catalogue, params);
    let current = IsoWeek::of(today);
    let shown = params.window + CHART_WEEKS_BEFORE;
    let start = current.plus(1 - i64::from(shown));
    // The EWMA runs over the whole counted history, as in the assessment.
    let mut running: Option<f64> = None;
    let first = scored.weeks.first().copied().unwrap_or(current).min(start);
    let mut weeks = Vec::with_capacity(shown as usize);
    let mut week = first;
    while week <= current {
        let (index, counted) = scored
            .get(week)
            .map_or((None, false), |row| scored.index(row));
        let index = index.filter(|_| counted);
        if let Some(i) = index {
            running = Some(running.map_or(i, |e| params.alpha * i + (1.0 - params.alpha) * e));
        }
        if week >= start {
            weeks.push(ChartWeek {
                week,
                index,
                counted,
                ewma: running,
            });
        }
        week = week.plus(1);
    }
    Chart {
        weeks,
        window: params.window,
        high: params.high,
    }
}
