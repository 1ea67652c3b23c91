//! A person's history scored once: one row of option positions per
//! answered week, so the rules can look at any window without string work.

use super::{CAPACITY, CONTINUITY, Params, SAME};
use crate::domain::{Answer, Catalogue, IsoWeek, OptionKey};

/// String equality for ids of a few bytes: an inline byte loop, which beats
/// a call to `memcmp` at this length and dominates scoring otherwise.
#[inline]
fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// One week's answers by catalogue position: `option index + 1`, 0 if
/// unanswered. Positions keep scoring free of string work.
pub(super) type WeekRow = [u8];

/// A person's history, scored once and assessable at any day.
pub(super) struct Scored<'a, 'p> {
    pub(super) catalogue: &'a Catalogue,
    pub(super) params: &'p Params,
    /// (catalogue position, weight) of each weighted question.
    weights: Vec<(usize, f64)>,
    continuity: Option<usize>,
    capacity: Option<usize>,
    /// Questions in the catalogue: the length of each row.
    stride: usize,
    /// The answered weeks, ascending.
    pub(super) weeks: Vec<IsoWeek>,
    /// `weeks.len()` rows of `stride` bytes, one per answered week.
    rows: Vec<u8>,
}

impl<'a, 'p> Scored<'a, 'p> {
    /// Scores `answers`, in any order.
    pub(super) fn new(answers: &[Answer], catalogue: &'a Catalogue, params: &'p Params) -> Self {
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
    pub(super) fn counted_weeks(&self) -> usize {
        (0..self.weeks.len())
            .filter(|&k| self.index(self.row(k)).1)
            .count()
    }

    /// Answered weeks in `[from, to]` with their rows, oldest first.
    pub(super) fn range(
        &self,
        from: IsoWeek,
        to: IsoWeek,
    ) -> impl DoubleEndedIterator<Item = (IsoWeek, &WeekRow)> + '_ {
        let lo = self.weeks.partition_point(|w| *w < from);
        let hi = self.weeks.partition_point(|w| *w <= to);
        (lo..hi.max(lo)).map(move |k| (self.weeks[k], self.row(k)))
    }

    pub(super) fn row(&self, k: usize) -> &WeekRow {
        &self.rows[k * self.stride..(k + 1) * self.stride]
    }

    /// The row of `week`, if it was answered.
    pub(super) fn get(&self, week: IsoWeek) -> Option<&WeekRow> {
        self.weeks.binary_search(&week).ok().map(|k| self.row(k))
    }

    pub(super) fn score(&self, row: &WeekRow, q: usize) -> Option<f64> {
        let o = usize::from(*row.get(q)?).checked_sub(1)?;
        Some(self.catalogue.questions()[q].options.get(o)?.score)
    }

    pub(super) fn option_key(&self, row: &WeekRow, q: usize) -> Option<&'a OptionKey> {
        let o = usize::from(*row.get(q)?).checked_sub(1)?;
        Some(&self.catalogue.questions()[q].options.get(o)?.key)
    }

    /// (index, counted) of one week.
    pub(super) fn index(&self, row: &WeekRow) -> (Option<f64>, bool) {
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
    pub(super) fn counted(&self, from: IsoWeek, to: IsoWeek) -> Vec<(IsoWeek, f64)> {
        self.range(from, to)
            .filter_map(|(w, row)| match self.index(row) {
                (Some(i), true) => Some((w, i)),
                _ => None,
            })
            .collect()
    }

    /// (`same` answers, continuity answers) over the continuity window.
    pub(super) fn continuity_share(&self, current: IsoWeek) -> (usize, usize) {
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
    pub(super) fn latest_capacity(&self, current: IsoWeek) -> Option<(IsoWeek, &'a OptionKey)> {
        let q = self.capacity?;
        let start = current.plus(1 - i64::from(self.params.window));
        self.range(start, current)
            .rev()
            .find_map(|(w, row)| self.option_key(row, q).map(|k| (w, k)))
    }
}
