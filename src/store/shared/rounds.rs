//! Inbound writes (clicks, events) arriving together, in rounds that can
//! each be applied as one statement: both engines' group commits send a
//! round in one round trip, not one per write.
//!
//! One statement cannot touch one row twice (PostgreSQL refuses an
//! `ON CONFLICT DO UPDATE` that does; SQLite's checks made before a round's
//! inserts would not see them), and two writes of one key must count as
//! two (the second a duplicate). So writes that share a seen key or an
//! answer's (person, week, question) go in separate rounds, applied in
//! order in one transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::store::{InboundOutcome, InboundWrite};

/// One write of a batch and the time it arrived.
pub(in crate::store) type Write<'a> = (&'a InboundWrite, DateTime<Utc>);

/// The batch's writes (by place) in rounds: no two writes of a round share
/// a seen key or an answer's (person, week, question). A write goes in the
/// first round it fits, so a batch without such pairs is one round, and
/// of two writes of one key the earlier is applied first.
pub(in crate::store) fn rounds(writes: &[Write<'_>]) -> Vec<Vec<usize>> {
    struct Round<'a> {
        places: Vec<usize>,
        keys: HashSet<&'a str>,
        answers: HashSet<(&'a str, String, &'a str)>,
    }
    let mut rounds: Vec<Round<'_>> = Vec::new();
    for (place, (write, _)) in writes.iter().enumerate() {
        let answers: Vec<_> = write
            .distinct_answers()
            .into_iter()
            .map(|a| (a.person.as_str(), a.week.to_string(), a.question.as_str()))
            .collect();
        let fits = |round: &Round<'_>| {
            write
                .seen_key
                .as_deref()
                .is_none_or(|key| !round.keys.contains(key))
                && answers.iter().all(|a| !round.answers.contains(a))
        };
        let round = match rounds.iter().position(fits) {
            Some(i) => &mut rounds[i],
            None => {
                rounds.push(Round {
                    places: Vec::new(),
                    keys: HashSet::new(),
                    answers: HashSet::new(),
                });
                rounds.last_mut().expect("just pushed")
            }
        };
        round.places.push(place);
        round.keys.extend(write.seen_key.as_deref());
        round.answers.extend(answers);
    }
    rounds.into_iter().map(|round| round.places).collect()
}

/// What a round did for `write`: nothing if its seen key was not new
/// (`fresh`), else how many of its answers it wrote (`changed`) and left
/// as they were.
pub(in crate::store) fn outcome(
    write: &InboundWrite,
    fresh: bool,
    changed: usize,
) -> InboundOutcome {
    if write.seen_key.is_some() && !fresh {
        return InboundOutcome::Duplicate;
    }
    InboundOutcome::Recorded {
        changed,
        unchanged: write.distinct_answers().len().saturating_sub(changed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PersonId;
    use crate::store::AnswerSource;

    fn click(person: &str, key: Option<&str>, question: &str) -> InboundWrite {
        InboundWrite {
            seen_key: key.map(str::to_owned),
            ..InboundWrite::answers(
                vec![crate::domain::Answer {
                    person: PersonId::parse(person).unwrap(),
                    week: "2026-W47".parse().unwrap(),
                    question: crate::domain::QuestionId::parse(question).unwrap(),
                    option: crate::domain::OptionKey::parse("deciding").unwrap(),
                }],
                AnswerSource::Button,
            )
        }
    }

    fn rounds_of(writes: &[InboundWrite]) -> Vec<Vec<usize>> {
        let now = Utc::now();
        let writes: Vec<Write<'_>> = writes.iter().map(|w| (w, now)).collect();
        rounds(&writes)
    }

    #[test]
    fn writes_sharing_nothing_are_one_round() {
        let writes = [
            click("U1", Some("a"), "focus"),
            click("U2", Some("b"), "focus"),
            click("U1", None, "load"),
        ];
        assert_eq!(rounds_of(&writes), [vec![0, 1, 2]]);
    }

    #[test]
    fn a_repeated_key_or_answer_waits_for_a_later_round() {
        let writes = [
            click("U1", Some("a"), "focus"),
            click("U2", Some("a"), "focus"),
            click("U1", Some("b"), "focus"),
            click("U3", Some("c"), "focus"),
            click("U1", None, "focus"),
        ];
        // Each in the first round that has neither its key nor its answer.
        assert_eq!(rounds_of(&writes), [vec![0, 3], vec![1, 2], vec![4]]);
    }
}
