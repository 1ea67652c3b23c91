//! The rules behind sustained ownership (ARCHITECTURE.md, "The readiness model") and the capacity gate,
//! each as a [`Reason`] with its numbers.

use super::{Facts, NO_CAPACITY, Reason, Rule, Scored, slope};
use crate::domain::IsoWeek;

impl Scored<'_, '_> {
    /// The core rules at `current`; returns the reasons and whether all hold.
    pub(super) fn rules(&self, current: IsoWeek) -> (Vec<Reason>, bool) {
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
        let need = p.min_continuity_answers as usize;
        let anchored = total > 0 && total >= need && same as f64 >= p.min_same_share * total as f64;
        reasons.push(Reason {
            rule: Rule::Continuity,
            holds: anchored,
            detail: if total == 0 {
                format!(
                    "no answers about product continuity in the last {} weeks (need {need})",
                    p.continuity_window
                )
            } else if total < need {
                format!(
                    "same product {same} of {total} answered weeks in the last {}; {} more weeks answered needed (need {need})",
                    p.continuity_window,
                    need - total
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
                need: count(need),
            },
        });

        let all = reasons.iter().all(|r| r.holds);
        (reasons, all)
    }

    /// The capacity gate at `current` for a sustained person: `None` if
    /// they never answered the capacity question in the window.
    pub(super) fn capacity_gate(&self, current: IsoWeek) -> Option<Reason> {
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
pub(super) fn nudges_off_reason(off: bool) -> Reason {
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
pub(super) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
