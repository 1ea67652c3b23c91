//! When each outbox row may go out: Slack's per-channel rule (about one
//! message per second in a channel), a workspace-wide rate, and the pauses
//! Slack asks for with `Retry-After`. Pure: the time is an argument, there
//! is no IO, and the outbox worker is the only caller.
//!
//! A row whose channel is busy is *parked*: given the channel's next free
//! slot, written back to the store due at that slot, and forgotten until
//! then. Slots are handed out one interval apart, so a backlog of a thousand
//! messages to one channel is parked once, in order, at one second apart,
//! and never blocks other channels' rows nor gets re-read every second; ten
//! thousand messages to ten thousand DMs are limited only by the global
//! rate, and no store write is spent on them.
//!
//! With several processes on one database (PostgreSQL), a channel's pace
//! is also the store's: the worker plans each claimed row at its shared
//! slot with [`Pacer::plan`], the store reserves the channels for all of
//! them in one statement, and a channel it refuses is put back as it was
//! ([`Pacer::refused`]) and the row parked until the store says it is
//! free. A reservation lasts the interval plus [`Pacer::grace`], and rows
//! are not held behind rows they queued after, since another worker may
//! have taken those (ARCHITECTURE.md, "Outbox").
//!
//! Written here rather than with `governor`. A `governor` limiter answers
//! only `check()` and `check_n(n)`: "may one (or n) more go now?", and
//! consumes the cells when the answer is yes (a `StateSnapshot` of what is
//! left comes only with that answer, and the limiter's state cannot be
//! copied to ask a trial question). The outbox needs the workspace rate's answer *before* it
//! spends it: [`Pacer::global_budget`] sizes a claim (claiming more rows
//! than may go costs a store write per row sent back) and
//! [`Pacer::global_ready_at`] says when to claim next. With `check()`
//! alone a claim would have to take cells first, and lose them to rows
//! then parked by their channel or to claims that find fewer rows due.
//! The per-channel slots handed out to parked rows and the pauses
//! `Retry-After` asks for are not in its API either; each is a line or two
//! over "the next instant this channel is free".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};

use super::slots::Slots;

/// A 429 on a channel that carried another message within this long is
/// blamed on the channel's own rate; otherwise the channel's rate cannot
/// explain it, so it is the workspace's limit and every channel pauses.
pub const CHANNEL_WINDOW: Duration = Duration::seconds(2);
/// A parked row not seen again this long after its slot was taken by
/// another worker (or deleted); its slot is forgotten.
const FORGET_PARKED_AFTER: Duration = Duration::minutes(10);
/// A parked row at most this late still holds the rows queued behind it
/// in its channel: it is due, and the workspace rate may let it go only in
/// a later batch. Past this, it is taken to be gone (another worker sent
/// it, or it was deleted), and the channel moves on without it.
const QUEUE_GRACE: Duration = Duration::minutes(2);
/// How often idle channels and stale parked rows are dropped from memory.
const PRUNE_EVERY: Duration = Duration::seconds(10);
/// With the pace shared through the store, how long after its planned
/// instant a row may still go in the channel reserved for it (at most:
/// less when slots are usable for less long). A channel is reserved for
/// this much more than its interval, so a row sent late by up to this
/// still keeps the interval to the next reservation.
const SHARED_GRACE: Duration = Duration::milliseconds(250);

/// What to do with a row now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it now; its channel and the workspace allowance are taken.
    Send,
    /// Write it back, due at this instant.
    Park(DateTime<Utc>),
}

/// Who a 429 paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paused {
    Channel,
    Workspace,
}

#[derive(Debug, Clone)]
struct Channel {
    /// When this channel's last message went out.
    last_sent: Option<DateTime<Utc>>,
    /// When the message before that went out.
    sent_before: Option<DateTime<Utc>>,
    /// Slack asked this channel to wait until then.
    paused_until: Option<DateTime<Utc>>,
    /// The first slot not yet handed out to a parked row.
    tail: DateTime<Utc>,
    /// This channel's parked rows in the order they queued (by sequence
    /// number), with their slots.
    queue: BTreeMap<i64, DateTime<Utc>>,
}

impl Channel {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            last_sent: None,
            sent_before: None,
            paused_until: None,
            tail: now,
            queue: BTreeMap::new(),
        }
    }

    /// The earliest instant the channel's rate and pause let a message go.
    fn free(&self, now: DateTime<Utc>, per_channel: Duration) -> DateTime<Utc> {
        self.last_sent
            .map(|at| plus(at, per_channel))
            .into_iter()
            .chain(self.paused_until)
            .fold(now, DateTime::max)
    }
}

/// A row this worker parked: where it waits and its place in its channel.
#[derive(Debug, Clone)]
struct Parked {
    channel: String,
    seq: i64,
    slot: DateTime<Utc>,
}

/// Per-channel and workspace-wide pacing state of one worker.
#[derive(Debug, Clone)]
pub struct Pacer {
    per_channel: Duration,
    global: Duration,
    /// Sends allowed at one instant by the workspace rate: the number of
    /// sends a worker has in flight at once.
    burst: u32,
    channels: HashMap<String, Channel>,
    /// Theoretical arrival time of the workspace limiter (GCRA): one
    /// interval further per send.
    global_tat: Option<DateTime<Utc>>,
    global_paused_until: Option<DateTime<Utc>>,
    /// With several processes on one database, the workspace rate is the
    /// store's, and this worker sends only in the slots it took from it
    /// (`global_tat` is then unused).
    shared: Option<Slots>,
    /// Channels as they were before [`Pacer::plan`] took them for sends
    /// the store has not granted yet, to put back if it refuses
    /// ([`Pacer::refused`]); `None`: the channel was not tracked.
    planned: HashMap<String, Option<Channel>>,
    /// Rows parked by this worker.
    parked: HashMap<i64, Parked>,
    /// Their slots, ordered, to know when the next one falls due.
    slots: BTreeSet<(DateTime<Utc>, i64)>,
    /// Next sequence number at the back of a channel's queue, and (counting
    /// down) at its front.
    back: i64,
    front: i64,
    last_prune: Option<DateTime<Utc>>,
}

fn to_chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// How late a row may go in the channel reserved for it: a slot's
/// lateness, at most [`SHARED_GRACE`].
fn shared_grace(slots: &Slots) -> Duration {
    slots.late().min(SHARED_GRACE)
}

/// `a + b`, saturating instead of overflowing.
fn plus_duration(a: Duration, b: Duration) -> Duration {
    a.checked_add(&b).unwrap_or(Duration::MAX)
}

/// `at + d`, saturating at the latest instant chrono can hold instead of
/// panicking. Durations here come from the config and from platforms'
/// answers; whatever their value, the worker must go on.
pub fn plus(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    at.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Pacer {
    /// At most one message per `per_channel` in a channel, one per `global`
    /// on average across the workspace, and `burst` at the same instant.
    pub fn new(per_channel: std::time::Duration, global: std::time::Duration, burst: u32) -> Self {
        Self {
            per_channel: to_chrono(per_channel),
            global: to_chrono(global),
            burst: burst.clamp(1, i32::MAX as u32),
            channels: HashMap::new(),
            global_tat: None,
            global_paused_until: None,
            shared: None,
            planned: HashMap::new(),
            parked: HashMap::new(),
            slots: BTreeSet::new(),
            back: 0,
            front: -1,
            last_prune: None,
        }
    }

    /// As [`Pacer::new`], but the workspace rate is shared with other
    /// processes through the store: a message goes only in a slot given by
    /// [`Pacer::add_slots`] (see [`Slots`]).
    pub fn shared(
        per_channel: std::time::Duration,
        global: std::time::Duration,
        burst: u32,
    ) -> Self {
        let mut pacer = Self::new(per_channel, global, burst);
        let slots = Slots::new(pacer.global, pacer.burst);
        // A channel's pace is then the store's too, which spaces its
        // reservations by the interval and the grace (see `plan`).
        pacer.per_channel = plus_duration(pacer.per_channel, shared_grace(&slots));
        pacer.shared = Some(slots);
        pacer
    }

    /// With the rate shared: how long after its planned instant a row may
    /// still be sent in the channel reserved for it (ARCHITECTURE.md,
    /// "Outbox"); zero otherwise.
    pub fn grace(&self) -> Duration {
        self.shared.as_ref().map_or(Duration::zero(), shared_grace)
    }

    /// The time a channel is kept for one message: the per-channel
    /// interval, and with the rate shared the grace on top.
    pub fn channel_spacing(&self) -> std::time::Duration {
        self.per_channel.to_std().unwrap_or_default()
    }

    /// The shared slots still usable at `now` that come after `after`
    /// (all of them when `None`), in order: the instants rows claimed
    /// now are planned at.
    pub fn slots_after(
        &self,
        after: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        match &self.shared {
            Some(slots) => slots.after(after, now),
            None => Vec::new(),
        }
    }

    /// Uses one shared slot at `now` for a row planned in it; false when
    /// none is usable (not shared, none held, or the workspace paused).
    pub fn use_slot(&mut self, now: DateTime<Utc>) -> bool {
        if self.global_paused_until.is_some_and(|until| until > now) {
            return false;
        }
        self.shared.as_mut().is_some_and(|slots| slots.take(now))
    }

    /// With the rate shared: whether row `id` to `channel` may go at `at`
    /// (the slot it is planned in) as far as this worker knows its
    /// channel, taking the channel at `at` if so; the store then reserves
    /// it for all workers. As [`Pacer::admit`] without the workspace rate,
    /// which the slot already answers.
    pub fn plan(&mut self, id: i64, channel: &str, at: DateTime<Utc>) -> Admission {
        self.prune(at);
        if !self.planned.contains_key(channel) {
            let before = self.channels.get(channel).cloned();
            self.planned.insert(channel.to_owned(), before);
        }
        self.admit_channel(id, channel, at, at)
    }

    /// The store granted the channels planned since the last call, but
    /// those [`Pacer::refused`]: they stay taken as planned.
    pub fn granted(&mut self) {
        self.planned.clear();
    }

    /// Row `id` to `channel`, planned by [`Pacer::plan`], was refused by
    /// the store, whose record says the channel is free at `free`: the
    /// channel is put back as it was before this batch's plans (it was not
    /// taken), and the row parked at `free` or, behind the rows this
    /// worker parked before in that channel, later. Returns when it is
    /// due.
    pub fn refused(&mut self, id: i64, channel: &str, free: DateTime<Utc>) -> DateTime<Utc> {
        if let Some(before) = self.planned.remove(channel) {
            match before {
                Some(state) => self.channels.insert(channel.to_owned(), state),
                None => self.channels.remove(channel),
            };
        }
        let per_channel = self.per_channel;
        let state = self
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel::new(free));
        let at = state.tail.max(free);
        state.tail = plus(at, per_channel);
        let seq = self.back;
        self.back += 1;
        self.hold(id, channel, seq, at);
        at
    }

    /// How many slots to take from the store now, if the workspace rate
    /// is shared and this worker holds none it could still use (and is
    /// not paused): a batch.
    pub fn slots_wanted(&self, now: DateTime<Utc>) -> Option<u32> {
        let slots = self.shared.as_ref()?;
        let paused = self.global_paused_until.is_some_and(|until| until > now);
        (!paused && slots.next(now).is_none()).then(|| slots.batch())
    }

    /// The interval between two slots of the shared workspace rate.
    pub fn slot_step(&self) -> std::time::Duration {
        self.global.to_std().unwrap_or_default()
    }

    /// Adds `count` slots of the shared workspace rate, taken from the
    /// store, the first at `first`. Ignored if the rate is not shared.
    pub fn add_slots(&mut self, first: DateTime<Utc>, count: u32) {
        if let Some(slots) = &mut self.shared {
            slots.add(first, count);
        }
    }

    /// Until when Slack asked the whole workspace to wait, if it did.
    pub fn workspace_paused_until(&self) -> Option<DateTime<Utc>> {
        self.global_paused_until
    }

    /// Whether the workspace rate is shared through the store.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn tolerance(&self) -> Duration {
        self.global * (self.burst as i32 - 1)
    }

    /// How many messages the workspace rate lets go at `now`, at most
    /// `burst`.
    pub fn global_budget(&self, now: DateTime<Utc>) -> usize {
        if self.global_paused_until.is_some_and(|until| until > now) {
            return 0;
        }
        if let Some(slots) = &self.shared {
            return slots.usable(now).min(self.burst as usize);
        }
        let tolerance = self.tolerance();
        let tat = self.global_tat.map_or(now, |tat| tat.max(now));
        let ahead = tat - now;
        if ahead > tolerance {
            return 0;
        }
        let spare = (tolerance - ahead).num_microseconds().unwrap_or(i64::MAX);
        let step = self.global.num_microseconds().unwrap_or(i64::MAX).max(1);
        usize::try_from(spare / step + 1)
            .unwrap_or(usize::MAX)
            .min(self.burst as usize)
    }

    /// The earliest instant the workspace rate lets one message go. With
    /// a shared rate and no slot left, `now`: slots are to be taken.
    pub fn global_ready_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let by_rate = match &self.shared {
            Some(slots) => slots.next(now).unwrap_or(now),
            None => self.global_tat.map_or(now, |tat| tat - self.tolerance()),
        };
        by_rate
            .max(now)
            .max(self.global_paused_until.unwrap_or(now))
    }

    /// Where row `id` stands in its channel's queue, for sorting a batch
    /// so parked rows are admitted in the order they queued; rows new to
    /// this worker come after them.
    pub fn queue_position(&self, id: i64) -> i64 {
        self.parked.get(&id).map_or(i64::MAX, |p| p.seq)
    }

    /// The earliest slot of a row this worker parked, if any.
    pub fn next_slot(&self) -> Option<DateTime<Utc>> {
        self.slots.first().map(|(at, _)| *at)
    }

    /// Decides whether row `id` to `channel` goes at `now` or waits, and
    /// takes the channel's and the workspace's allowance if it goes.
    pub fn admit(&mut self, id: i64, channel: &str, now: DateTime<Utc>) -> Admission {
        self.prune(now);
        let global_ready = match &self.shared {
            // No slot left: the next batch starts one interval on at the
            // earliest.
            Some(slots) if slots.next(now).is_none() => {
                plus(self.global_ready_at(now), self.global)
            }
            _ => self.global_ready_at(now),
        };
        let admission = self.admit_channel(id, channel, now, global_ready);
        if admission == Admission::Send {
            match &mut self.shared {
                Some(slots) => {
                    slots.take(now);
                }
                None => {
                    self.global_tat = Some(plus(
                        self.global_tat.map_or(now, |tat| tat.max(now)),
                        self.global,
                    ));
                }
            }
        }
        admission
    }

    /// The channel's part of [`Pacer::admit`]: whether row `id` goes at
    /// `now` given the workspace lets one go at `global_ready`, taking the
    /// channel if so, else parking the row.
    fn admit_channel(
        &mut self,
        id: i64,
        channel: &str,
        now: DateTime<Utc>,
        global_ready: DateTime<Utc>,
    ) -> Admission {
        let per_channel = self.per_channel;
        let shared = self.shared.is_some();
        let held = self.parked.get(&id).map(|p| (p.seq, p.slot));
        let state = self
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel::new(now));
        let free = state.free(now, per_channel);
        let (seq, slot) = match held {
            // Already parked: it keeps its place in the channel's queue.
            Some(held) => held,
            // New to this worker: the channel's next slot not given out yet.
            None => {
                let seq = self.back;
                self.back += 1;
                (seq, state.tail)
            }
        };
        // Behind the rows queued before it, even late ones: they may be in
        // the next batch. One whose slot passed long ago without it coming
        // back (another worker took it) no longer holds the rest. With the
        // pace shared, other workers take this worker's parked rows as a
        // matter of course, and the store keeps the channel's pace: a row
        // goes as soon as the channel is free.
        let ahead = state
            .queue
            .range(..seq)
            .map(|(_, at)| *at)
            .filter(|at| now - *at < QUEUE_GRACE && !shared)
            .max();
        let slot = slot
            .max(free)
            .max(ahead.map_or(now, |at| plus(at.max(now), per_channel)));
        if slot <= now && global_ready <= now {
            state.sent_before = state.last_sent;
            state.last_sent = Some(now);
            state.tail = state.tail.max(plus(now, per_channel));
            self.release(id);
            Admission::Send
        } else {
            let at = slot.max(global_ready);
            state.tail = state.tail.max(plus(at, per_channel));
            self.hold(id, channel, seq, at);
            Admission::Park(at)
        }
    }

    /// Slack answered row `id` to `channel` with 429 at `now`: pauses the
    /// channel, or every channel when the channel's own rate cannot explain
    /// it, for `retry_after`. The row goes first in its channel when the
    /// pause ends, which is returned with who was paused.
    pub fn rate_limited(
        &mut self,
        id: i64,
        channel: &str,
        now: DateTime<Utc>,
        retry_after: std::time::Duration,
    ) -> (Paused, DateTime<Utc>) {
        let until = plus(now, to_chrono(retry_after));
        let state = self
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel::new(now));
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        let busy = matches!(
            (state.sent_before, state.last_sent),
            (Some(before), Some(last)) if last - before < CHANNEL_WINDOW
        );
        let paused = if busy {
            Paused::Channel
        } else {
            self.global_paused_until =
                Some(self.global_paused_until.map_or(until, |p| p.max(until)));
            Paused::Workspace
        };
        let seq = self.front;
        self.front -= 1;
        self.hold(id, channel, seq, until);
        (paused, until)
    }

    /// Forgets row `id`'s place: it was delivered, failed, or is retried
    /// after a failure on its own schedule.
    pub fn release(&mut self, id: i64) {
        if let Some(p) = self.parked.remove(&id) {
            self.slots.remove(&(p.slot, id));
            if let Some(state) = self.channels.get_mut(&p.channel) {
                state.queue.remove(&p.seq);
            }
        }
    }

    fn hold(&mut self, id: i64, channel: &str, seq: i64, slot: DateTime<Utc>) {
        self.release(id);
        if let Some(state) = self.channels.get_mut(channel) {
            state.queue.insert(seq, slot);
        }
        self.slots.insert((slot, id));
        self.parked.insert(
            id,
            Parked {
                channel: channel.to_owned(),
                seq,
                slot,
            },
        );
    }

    /// Drops channels idle long enough to be as good as new, and parked
    /// rows that never came back, so memory follows the backlog rather
    /// than history.
    fn prune(&mut self, now: DateTime<Utc>) {
        if self.last_prune.is_some_and(|at| now - at < PRUNE_EVERY) {
            return;
        }
        self.last_prune = Some(now);
        while let Some(&(at, id)) = self.slots.first() {
            if now - at < FORGET_PARKED_AFTER {
                break;
            }
            self.release(id);
        }
        self.channels.retain(|_, c| {
            !c.queue.is_empty()
                || now - c.tail < CHANNEL_WINDOW
                || c.paused_until.is_some_and(|p| p > now)
        });
    }

    /// Channels and parked rows held in memory.
    pub fn tracked(&self) -> (usize, usize) {
        (self.channels.len(), self.parked.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-19T16:05:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ms(n: i64) -> Duration {
        Duration::milliseconds(n)
    }

    #[test]
    fn a_shared_rate_sends_only_in_the_slots_taken_from_the_store() {
        let mut p = Pacer::shared(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(100),
            2,
        );
        assert!(p.is_shared());
        assert_eq!(p.global_budget(t0()), 0, "no slot yet");
        assert_eq!(p.slots_wanted(t0()), Some(2));
        assert!(matches!(p.admit(1, "C1", t0()), Admission::Park(_)));
        p.add_slots(t0() + ms(50), 2);
        assert_eq!(p.slots_wanted(t0()), None, "slots still to come");
        assert_eq!(p.global_ready_at(t0()), t0() + ms(50));
        assert_eq!(p.global_budget(t0() + ms(50)), 1);
        assert_eq!(p.admit(2, "C2", t0() + ms(50)), Admission::Send);
        // A channel's pace holds as before: C2 is busy for a second, and
        // the grace a shared pace adds (a slot's lateness, 100 ms here).
        assert_eq!(p.grace(), ms(100));
        assert_eq!(
            p.admit(3, "C2", t0() + ms(150)),
            Admission::Park(t0() + ms(1150))
        );
        assert_eq!(p.admit(4, "C3", t0() + ms(150)), Admission::Send);
        assert_eq!(p.global_budget(t0() + ms(150)), 0);
        assert_eq!(p.slots_wanted(t0() + ms(150)), Some(2));
        // A 429 that pauses the workspace: no slot is wanted meanwhile.
        p.rate_limited(4, "C3", t0() + ms(200), std::time::Duration::from_secs(1));
        assert_eq!(p.slots_wanted(t0() + ms(500)), None);
        assert_eq!(p.slots_wanted(t0() + ms(1200)), Some(2));
    }

    #[test]
    fn a_channel_the_store_refused_is_put_back_and_its_row_parked_when_free() {
        let mut p = Pacer::shared(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(100),
            2,
        );
        let spacing = ms(1100);
        assert_eq!(p.channel_spacing(), spacing.to_std().unwrap());
        // A batch: C1 planned in its slot, a second row to it waits here.
        assert_eq!(p.plan(1, "C1", t0()), Admission::Send);
        assert_eq!(
            p.plan(2, "C1", t0() + ms(100)),
            Admission::Park(t0() + spacing)
        );
        assert_eq!(p.plan(3, "C2", t0() + ms(100)), Admission::Send);
        // The store refuses C1 (another worker has it until t0 + 3 s):
        // C1 is as it was, not taken at t0, and row 1 waits for it.
        assert_eq!(p.refused(1, "C1", t0() + ms(3000)), t0() + ms(3000));
        p.granted();
        // C2 was granted and stays taken.
        assert_eq!(
            p.plan(4, "C2", t0() + ms(200)),
            Admission::Park(t0() + ms(100) + spacing)
        );
        p.granted();
        // Row 2 back at its slot finds C1 free here: the store answers
        // for the channel, not rows this worker parked before it.
        assert_eq!(p.plan(2, "C1", t0() + spacing), Admission::Send);
    }

    #[test]
    fn an_unused_shared_slot_is_dropped_once_too_late() {
        let mut p = Pacer::shared(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_millis(100),
            2,
        );
        p.add_slots(t0(), 1);
        assert_eq!(p.global_budget(t0() + ms(100)), 1, "one step late: usable");
        assert_eq!(p.global_budget(t0() + ms(101)), 0);
        assert_eq!(p.slots_wanted(t0() + ms(101)), Some(2));
    }

    fn pacer(per_channel_ms: u64, global_ms: u64, burst: u32) -> Pacer {
        Pacer::new(
            std::time::Duration::from_millis(per_channel_ms),
            std::time::Duration::from_millis(global_ms),
            burst,
        )
    }

    #[test]
    fn a_second_message_to_a_channel_waits_for_the_next_slot() {
        let mut p = pacer(1000, 1, 10);
        let now = t0();
        assert_eq!(p.admit(1, "C1", now), Admission::Send);
        assert_eq!(p.admit(2, "C1", now), Admission::Park(now + ms(1000)));
        assert_eq!(p.admit(3, "C1", now), Admission::Park(now + ms(2000)));
        assert_eq!(
            p.admit(4, "C2", now),
            Admission::Send,
            "another channel goes"
        );
        assert_eq!(p.next_slot(), Some(now + ms(1000)));
        // Back at their slots, in order, each goes.
        assert_eq!(p.admit(2, "C1", now + ms(1000)), Admission::Send);
        assert_eq!(p.admit(3, "C1", now + ms(2000)), Admission::Send);
        assert_eq!(p.next_slot(), None);
    }

    #[test]
    fn a_late_parked_row_keeps_its_place_ahead_of_later_ones() {
        let mut p = pacer(1000, 1, 10);
        let now = t0();
        assert_eq!(p.admit(1, "C1", now), Admission::Send);
        assert_eq!(p.admit(2, "C1", now), Admission::Park(now + ms(1000)));
        assert_eq!(p.admit(3, "C1", now), Admission::Park(now + ms(2000)));
        // Row 2 went 300 ms late: row 3, due at its slot, waits a full
        // interval after it, and still ahead of a row parked after it.
        assert_eq!(p.admit(2, "C1", now + ms(1300)), Admission::Send);
        assert_eq!(
            p.admit(3, "C1", now + ms(2000)),
            Admission::Park(now + ms(2300))
        );
        assert_eq!(
            p.admit(4, "C1", now + ms(2000)),
            Admission::Park(now + ms(3300))
        );
    }

    #[test]
    fn the_workspace_rate_allows_a_burst_then_one_per_interval() {
        let mut p = pacer(1000, 100, 3);
        let now = t0();
        assert_eq!(p.global_budget(now), 3);
        for (id, channel) in [(1, "C1"), (2, "C2"), (3, "C3")] {
            assert_eq!(p.admit(id, channel, now), Admission::Send);
        }
        assert_eq!(p.global_budget(now), 0);
        assert_eq!(p.global_ready_at(now), now + ms(100));
        assert_eq!(p.admit(4, "C4", now), Admission::Park(now + ms(100)));
        assert_eq!(p.global_budget(now + ms(150)), 1);
        assert_eq!(p.global_budget(now + ms(300)), 3);
        assert_eq!(
            p.global_budget(now + ms(10_000)),
            3,
            "no more than the burst"
        );
    }

    #[test]
    fn a_429_after_a_quiet_channel_pauses_the_workspace() {
        let mut p = pacer(1000, 1, 10);
        let now = t0();
        assert_eq!(p.admit(1, "C1", now), Admission::Send);
        let (who, until) = p.rate_limited(1, "C1", now, std::time::Duration::from_secs(5));
        assert_eq!((who, until), (Paused::Workspace, now + ms(5000)));
        assert_eq!(p.global_budget(now + ms(4999)), 0);
        assert_eq!(p.admit(2, "C2", now + ms(10)), Admission::Park(until));
        assert_eq!(
            p.admit(1, "C1", until),
            Admission::Send,
            "retried when it ends"
        );
        assert_eq!(p.admit(2, "C2", until), Admission::Send);
    }

    #[test]
    fn a_429_on_a_busy_channel_pauses_only_that_channel() {
        let mut p = pacer(1000, 1, 10);
        let now = t0();
        assert_eq!(p.admit(1, "C1", now), Admission::Send);
        let next = now + ms(1000);
        assert_eq!(p.admit(2, "C1", next), Admission::Send);
        let (who, until) = p.rate_limited(2, "C1", next, std::time::Duration::from_secs(3));
        assert_eq!((who, until), (Paused::Channel, next + ms(3000)));
        assert_eq!(p.admit(3, "C2", next), Admission::Send, "others go on");
        // A row that comes later queues behind the one that was refused.
        assert_eq!(
            p.admit(4, "C1", next + ms(1000)),
            Admission::Park(until + ms(1000))
        );
        assert_eq!(p.admit(2, "C1", until), Admission::Send);
        assert_eq!(p.admit(4, "C1", until + ms(1000)), Admission::Send);
    }

    #[test]
    fn a_pause_past_the_end_of_the_calendar_saturates_instead_of_panicking() {
        let mut p = pacer(1000, 1, 10);
        let now = t0();
        assert_eq!(p.admit(1, "C1", now), Admission::Send);
        let forever = std::time::Duration::from_secs(u64::MAX);
        let (who, until) = p.rate_limited(1, "C1", now, forever);
        assert_eq!((who, until), (Paused::Workspace, DateTime::<Utc>::MAX_UTC));
        assert_eq!(p.admit(2, "C2", now), Admission::Park(until));
        assert_eq!(p.global_budget(now), 0);
    }

    #[test]
    fn idle_channels_and_stale_parked_rows_are_forgotten() {
        let mut p = pacer(1000, 1, 200);
        let now = t0();
        for id in 0..100 {
            assert_eq!(p.admit(id, &format!("D{id}"), now), Admission::Send);
        }
        assert_eq!(p.admit(100, "D0", now), Admission::Park(now + ms(1000)));
        assert_eq!(p.tracked(), (100, 1));
        p.admit(101, "C", now + Duration::minutes(20));
        assert_eq!(p.tracked(), (1, 0));
    }

    proptest! {
        /// Whatever the order rows come back in, a channel never carries two
        /// messages less than an interval apart, the workspace never more
        /// than its rate and burst allow, and every row is eventually sent.
        #[test]
        fn limits_hold_and_every_row_goes(
            rows in proptest::collection::vec(0u8..6, 1..60),
            steps in proptest::collection::vec(1u16..700, 1..400),
            burst in 1u32..4,
        ) {
            let per_channel = ms(1000);
            let global = ms(250);
            let mut p = pacer(1000, 250, burst);
            let mut now = t0();
            // id -> due
            let mut due: Vec<(i64, String, DateTime<Utc>)> = rows
                .iter()
                .enumerate()
                .map(|(i, c)| (i as i64, format!("C{c}"), now))
                .collect();
            let mut sent: Vec<(DateTime<Utc>, String, i64)> = Vec::new();
            let mut step = steps.iter().cycle();
            for _ in 0..100_000 {
                if due.is_empty() {
                    break;
                }
                // As the outbox does: claim what is due, oldest first, as many
                // as the workspace rate allows; admit in queue order.
                due.sort_by_key(|(id, _, at)| (*at, *id));
                let budget = p.global_budget(now);
                let ready = due.iter().take_while(|(_, _, at)| *at <= now).count();
                let mut claimed: Vec<_> = due.drain(..ready.min(budget)).collect();
                claimed.sort_by_key(|(id, _, _)| p.queue_position(*id));
                let mut next = std::mem::take(&mut due);
                for (id, channel, _) in claimed {
                    match p.admit(id, &channel, now) {
                        Admission::Send => sent.push((now, channel, id)),
                        Admission::Park(until) => {
                            prop_assert!(until > now);
                            next.push((id, channel, until));
                        }
                    }
                }
                due = next;
                now += ms(i64::from(*step.next().unwrap()));
            }
            prop_assert!(due.is_empty(), "rows left: {}", due.len());
            prop_assert_eq!(sent.len(), rows.len());
            let mut last: HashMap<&str, (DateTime<Utc>, i64)> = HashMap::new();
            for (at, channel, id) in &sent {
                if let Some((prev, prev_id)) = last.insert(channel, (*at, *id)) {
                    prop_assert!(*at - prev >= per_channel, "{channel}: {prev} then {at}");
                    prop_assert!(prev_id < *id, "{channel}: row {id} overtook row {prev_id}");
                }
            }
            for (i, (start, _, _)) in sent.iter().enumerate() {
                let window = ms(1000);
                let within = sent[i..].iter().take_while(|(at, _, _)| *at - *start < window).count();
                let allowed = (window.num_milliseconds() / global.num_milliseconds()) as usize
                    + burst as usize;
                prop_assert!(within <= allowed, "{within} sends in a second from {start}");
            }
        }
    }
}
