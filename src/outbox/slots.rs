//! The workspace's send slots a worker took from the store, when several
//! processes deliver from one database and share the workspace rate
//! (ARCHITECTURE.md, "Outbox"). Pure: the time is an argument.
//!
//! The store hands out slots one workspace interval apart, each once,
//! whoever asks ([`Store::take_send_slots`]): a GCRA whose "next free
//! slot" is a row, moved on by a batch of [`Slots::batch`] slots per round
//! trip so the database is not asked per message. A worker sends one
//! message per slot, at or after the slot's instant, and drops a slot it
//! could not use within [`Slots::late`] of it: so however many workers
//! share the rate, the sends in any one-second window are at most the
//! slots in a window of one second plus that lateness, the workspace rate
//! plus `burst` (the same bound the in-memory pacer keeps for one
//! process). A worker that dies takes at most one batch of slots with it.
//!
//! [`Store::take_send_slots`]: crate::store::Store::take_send_slots

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// How much of the rate one round trip takes: 200 ms of slots. Shorter
/// costs more round trips; longer leaves the other workers idle longer
/// behind a batch, and loses more when a worker dies holding it.
const TAKE_SPAN: Duration = Duration::milliseconds(200);
/// At most this many slots per round trip, whatever the rate.
const MAX_BATCH: i64 = 64;

/// Slots taken and not used yet, earliest first.
#[derive(Debug, Clone)]
pub struct Slots {
    step: Duration,
    late: Duration,
    stock: VecDeque<DateTime<Utc>>,
}

impl Slots {
    /// Slots `step` apart (the workspace interval), each usable until
    /// `burst - 1` steps after its instant (at least half a step, so a
    /// worker that wakes a moment late still uses it).
    pub fn new(step: Duration, burst: u32) -> Self {
        let step = step.max(Duration::microseconds(1));
        let late = (step * (burst.max(1) as i32 - 1)).max(step / 2);
        Self {
            step,
            late,
            stock: VecDeque::new(),
        }
    }

    /// The interval between two slots, as the store is asked for them.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// How late after its instant a slot may still be used.
    pub fn late(&self) -> Duration {
        self.late
    }

    /// How many slots to take per round trip.
    pub fn batch(&self) -> u32 {
        let span = TAKE_SPAN.num_microseconds().unwrap_or(i64::MAX);
        let step = self.step.num_microseconds().unwrap_or(i64::MAX).max(1);
        u32::try_from((span / step).clamp(1, MAX_BATCH)).unwrap_or(1)
    }

    /// Adds `count` slots taken from the store, the first at `first`.
    pub fn add(&mut self, first: DateTime<Utc>, count: u32) {
        let mut at = first;
        for _ in 0..count {
            // Slots come in order, batch after batch.
            if self.stock.back().is_none_or(|last| *last < at) {
                self.stock.push_back(at);
            }
            at = match at.checked_add_signed(self.step) {
                Some(next) => next,
                None => return,
            };
        }
    }

    fn live(&self, now: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let oldest = now - self.late;
        self.stock
            .iter()
            .copied()
            .skip_while(move |at| *at < oldest)
    }

    /// Slots that may be used at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> usize {
        self.live(now).take_while(|at| *at <= now).count()
    }

    /// The slots usable at `now` or later that come after `after` (all of
    /// them when `None`), in order.
    pub fn after(&self, after: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.live(now)
            .filter(|at| after.is_none_or(|after| *at > after))
            .collect()
    }

    /// The earliest slot not too late to use at `now`, if any is left.
    pub fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.live(now).next()
    }

    /// Uses the earliest slot usable at `now`; false if there is none.
    /// Slots too late by now are dropped.
    pub fn take(&mut self, now: DateTime<Utc>) -> bool {
        let oldest = now - self.late;
        while self.stock.front().is_some_and(|at| *at < oldest) {
            self.stock.pop_front();
        }
        if self.stock.front().is_some_and(|at| *at <= now) {
            self.stock.pop_front();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_763_568_000_000 + ms).unwrap()
    }

    #[test]
    fn a_slot_is_used_once_from_its_instant_until_it_is_too_late() {
        let mut slots = Slots::new(Duration::milliseconds(100), 3);
        assert_eq!(slots.late(), Duration::milliseconds(200));
        slots.add(at(0), 4);
        assert_eq!(slots.usable(at(-1)), 0);
        assert_eq!(slots.next(at(-1)), Some(at(0)));
        assert_eq!(slots.usable(at(150)), 2);
        assert!(slots.take(at(150)));
        assert!(slots.take(at(150)));
        assert!(!slots.take(at(150)), "the third is not due yet");
        // At 450 the slot of 200 is more than 200 ms late: dropped.
        assert_eq!(slots.usable(at(450)), 1);
        assert!(slots.take(at(450)));
        assert_eq!(slots.next(at(450)), None);
    }

    #[test]
    fn a_single_burst_still_tolerates_half_a_step() {
        let slots = Slots::new(Duration::milliseconds(10), 1);
        assert_eq!(slots.late(), Duration::milliseconds(5));
    }

    #[test]
    fn a_batch_is_two_hundred_milliseconds_of_slots_within_bounds() {
        assert_eq!(Slots::new(Duration::microseconds(10_417), 4).batch(), 19);
        assert_eq!(Slots::new(Duration::milliseconds(200), 4).batch(), 1);
        assert_eq!(Slots::new(Duration::seconds(5), 4).batch(), 1);
        assert_eq!(Slots::new(Duration::microseconds(1), 4).batch(), 64);
    }

    /// However the slots are spread over workers and however late each
    /// is used, no one-second window holds more sends than the rate plus
    /// the burst.
    #[test]
    fn sends_in_any_second_stay_within_the_rate_plus_the_burst() {
        let step = Duration::milliseconds(10); // 100/s
        let burst = 4;
        let mut workers = [Slots::new(step, burst), Slots::new(step, burst)];
        let mut next_free = at(0);
        let mut sends = Vec::new();
        // Each worker wakes every 7 ms (the other offset by 3 ms) and
        // uses what it can; it takes a batch when its stock is empty.
        for tick in 0..3_000 {
            for (i, worker) in workers.iter_mut().enumerate() {
                let now = at(tick * 7 + i as i64 * 3);
                if worker.next(now).is_none() {
                    let first = next_free.max(now);
                    worker.add(first, worker.batch());
                    next_free = first + step * worker.batch() as i32;
                }
                while worker.take(now) {
                    sends.push(now);
                }
            }
        }
        sends.sort();
        let most = sends
            .iter()
            .enumerate()
            .map(|(i, start)| {
                sends[i..]
                    .iter()
                    .take_while(|t| **t < *start + Duration::seconds(1))
                    .count()
            })
            .max()
            .unwrap();
        assert!(most <= 100 + burst as usize, "{most} in one second");
        let span = (*sends.last().unwrap() - sends[0]).num_milliseconds() as f64 / 1000.0;
        let rate = sends.len() as f64 / span;
        assert!(rate > 95.0, "{rate:.1}/s");
    }
}
