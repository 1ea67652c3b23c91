//! One assessment: the rules, the running EWMA, the nudges already sent
//! and how they were answered, the capacity gate, into a [`State`] with its
//! reasons and the window's weeks and signals.

use chrono::NaiveDate;

use super::rules::{count, nudges_off_reason};
use super::{
    Assessment, Facts, NudgeAnswer, Reason, Rule, SIGNAL_PRESENT, Scored, SentNudge, SignalTrend,
    State, WeekScore, slope, trend,
};
use crate::domain::{IsoWeek, NudgeResponse};

impl<'a> Scored<'a, '_> {
    pub(super) fn assess(
        &self,
        nudges: &[SentNudge],
        nudges_off: bool,
        today: NaiveDate,
    ) -> Assessment<'a> {
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
}
