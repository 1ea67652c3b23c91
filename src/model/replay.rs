//! Replay: walking a whole history week by week under some params, to see
//! when nudges would have fired (`nudged replay`).

use chrono::NaiveDate;
use serde::Serialize;

use super::{Params, Reason, Rule, Scored, SentNudge, State};
use crate::domain::{Answer, Catalogue, IsoWeek};

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
