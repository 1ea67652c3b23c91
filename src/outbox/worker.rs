//! The delivery worker: claims due rows, paces them ([`super::pacing`]),
//! draws redraws ([`super::redraw`]), hands them to the [`ChatApi`] and
//! records each result.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pacing::{Admission, Pacer, Paused, plus};
use super::queued::{Op, Queued, Redraw};
use super::redraw;
use super::{MAX_ATTEMPTS, MAX_DELAY, MIN_DELAY, POLL};
use crate::chat::{self, ChatApi, ChatError, Delivered, Outgoing};
use crate::clock::Clock;
use crate::config::{DeliverySettings, Settings};
use crate::health::Heartbeat;
use crate::store::{CheckinMessage, OutboxResult, OutboxRow, Store, StoreResult};

/// What to send for `queued`: a redraw drawn from what the store holds
/// now (the answers, or the nudge and its answer); any other message as
/// it is.
async fn draw<'m>(
    config: &Settings,
    store: &dyn Store,
    queued: &'m Queued,
) -> Result<Cow<'m, Outgoing>, ChatError> {
    let redraw = match &queued.op {
        Op::Send(message) => return Ok(Cow::Borrowed(message)),
        Op::Redraw(redraw) => redraw,
    };
    let (channel, ts, drawn) = match redraw {
        Redraw::RefreshPrompt {
            channel,
            ts,
            person,
            week,
            schedule,
        } => {
            let prompt = redraw::prompt(config, store, person, *week, schedule)
                .await
                .map_err(|e| ChatError::Transient {
                    reason: format!("could not draw the prompt: {e}"),
                })?;
            (channel, ts, prompt)
        }
        Redraw::RefreshNudge {
            channel,
            ts,
            person,
            week,
        } => {
            let nudge = redraw::nudge(config, store, person, *week)
                .await
                .map_err(|e| ChatError::Transient {
                    reason: format!("could not draw the nudge: {e}"),
                })?
                // Forgotten since, or posted before nudges had answers.
                .ok_or_else(|| ChatError::Permanent {
                    code: "nudge_not_stored".to_owned(),
                })?;
            (channel, ts, nudge)
        }
    };
    Ok(Cow::Owned(Outgoing::update(
        channel.clone(),
        ts.clone(),
        drawn,
    )))
}

/// What one [`Worker::deliver_due`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Held back by pacing: written back, due at their channel's next slot.
    pub deferred: usize,
}

impl DeliveryOutcome {
    /// Whether no row was due (or the workspace rate let none be claimed).
    pub fn is_idle(&self) -> bool {
        self.sent + self.retried + self.failed + self.deferred == 0
    }
}

/// How long [`Worker::run`] may go without turning its loop before
/// `/readyz` reports it stuck: twice the lease (a send is cut off after
/// half of it), and never less than a minute.
pub fn stall_limit(settings: &DeliverySettings) -> Duration {
    (settings.lease * 2).max(Duration::from_secs(60))
}

/// The delay before retry number `attempt` (1-based) after a transient
/// failure.
pub fn backoff(attempt: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(MAX_DELAY)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// What a row is paced by: its operation and channel. Slack's one message
/// per second per channel is a rule of `chat.postMessage`; updates of
/// posted messages and App Home views have limits of their own, so each
/// kind is paced in each channel separately.
fn pacing_key(row: &OutboxRow) -> String {
    format!("{}:{}", row.kind, row.channel)
}

/// A send that finished: its row, its message and what the platform said.
type Finished = (OutboxRow, Queued, Result<Delivered, ChatError>);

/// With the workspace rate shared: a row claimed ahead of its slot, the
/// instant it is planned at, for which its channel is reserved in the
/// store.
#[derive(Debug)]
struct Held {
    row: OutboxRow,
    at: DateTime<Utc>,
}

/// Delivers the outbox: claims due rows, paces them ([`pacing`](super::pacing)), keeps up
/// to `concurrency` sends in flight and records each outcome. One per
/// process; its pacing state lives as long as it does.
pub struct Worker {
    store: Arc<dyn Store>,
    chat: Arc<dyn ChatApi>,
    /// The catalogue and schedules, to draw a [`Redraw`].
    config: Arc<Settings>,
    settings: DeliverySettings,
    pacer: Pacer,
    /// Sends started and not yet recorded. They outlive a claim: a new row
    /// is claimed as soon as one finishes and pacing allows, rather than
    /// once every send of a batch has, so one slow answer does not hold
    /// back the workspace rate.
    in_flight: JoinSet<Finished>,
    /// The last claim took as many rows as it asked for (or the workspace
    /// rate let it ask for none): more may be due at once.
    backlog: bool,
    /// With the workspace rate shared: rows claimed for the slots this
    /// worker holds, their channels reserved, not yet sent, in the order
    /// they go.
    held: VecDeque<Held>,
    /// Told at every turn of [`Worker::run`]'s loop, so a worker stuck in
    /// one is reported by `/readyz`.
    heartbeat: Heartbeat,
}

impl Worker {
    /// A worker sending through `chat` at the rates of `config.delivery`.
    pub fn new(store: Arc<dyn Store>, chat: Arc<dyn ChatApi>, config: Arc<Settings>) -> Self {
        let settings = config.delivery;
        let burst = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
        // Several processes may deliver from the store: the workspace rate
        // is then shared through it (ARCHITECTURE.md, "Outbox").
        let pacer = if store.shares_send_rate() {
            Pacer::shared
        } else {
            Pacer::new
        };
        let pacer = pacer(
            settings.per_channel_interval,
            settings.global_interval,
            burst,
        );
        Self {
            store,
            chat,
            config,
            pacer,
            settings,
            in_flight: JoinSet::new(),
            backlog: false,
            held: VecDeque::new(),
            heartbeat: Heartbeat::detached(),
        }
    }

    /// Reports the worker's progress through `heartbeat` when it runs.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Delivers what is due at `now` and may go at `now`, each row once,
    /// and records each outcome before returning. Rows whose channel is
    /// busy are written back due at their slot; nothing here waits for a
    /// rate, so tests drive it with a manual clock.
    pub async fn deliver_due(&mut self, now: DateTime<Utc>) -> StoreResult<DeliveryOutcome> {
        let mut outcome = self.start_due(now).await?;
        let mut finished = Vec::new();
        while let Some(joined) = self.in_flight.join_next().await {
            finished.extend(joined_send(joined));
        }
        self.record(finished, now, &mut outcome).await?;
        Ok(outcome)
    }

    /// Sends that may start now: `concurrency` less those in flight.
    fn free_permits(&self) -> usize {
        self.settings
            .concurrency
            .max(1)
            .saturating_sub(self.in_flight.len())
    }

    /// Claims what is due at `now` and may go at `now`, as many rows as
    /// there are free permits and the workspace rate allows, and starts
    /// their sends without waiting for them. Rows held back by pacing are
    /// written back (counted as deferred), unreadable ones marked failed.
    async fn start_due(&mut self, now: DateTime<Utc>) -> StoreResult<DeliveryOutcome> {
        let mut outcome = DeliveryOutcome::default();
        let mut deferrals = Vec::new();
        let shared = self.pacer.is_shared();
        let mut rows = if shared {
            self.due_in_slots(now, &mut deferrals).await?
        } else {
            let budget = self.pacer.global_budget(now).min(self.free_permits());
            if budget == 0 {
                self.backlog = true;
                return Ok(outcome);
            }
            let rows = self.claim(now, budget).await?;
            self.backlog = rows.len() >= budget;
            rows
        };
        // Parked rows first, in the order they queued; the sort is stable,
        // so new rows keep the store's oldest-first order.
        rows.sort_by_key(|row| self.pacer.queue_position(row.id));

        let mut unreadable = Vec::new();
        for row in rows {
            let message: Queued = match serde_json::from_str(&row.payload) {
                Ok(message) => message,
                Err(e) => {
                    tracing::error!(outbox_id = row.id, error = %e, "unreadable outbox payload; marked failed");
                    unreadable.push(OutboxResult::Failed {
                        id: row.id,
                        error: format!("unreadable payload: {e}"),
                    });
                    continue;
                }
            };
            if shared {
                // Its channel was reserved when it was claimed, for this
                // slot ([`Worker::plan_held`]).
                if self.pacer.use_slot(now) {
                    self.spawn_send(row, message);
                } else {
                    deferrals.push((row.id, now));
                }
                continue;
            }
            match self.pacer.admit(row.id, &pacing_key(&row), now) {
                Admission::Send => self.spawn_send(row, message),
                Admission::Park(at) => deferrals.push((row.id, at)),
            }
        }
        self.store.outbox_record(&unreadable).await?;
        outcome.failed = unreadable.len();
        metrics::counter!("nudged_outbox_failed_total").increment(unreadable.len() as u64);
        self.store.outbox_defer(&deferrals).await?;
        outcome.deferred = deferrals.len();
        metrics::counter!("nudged_outbox_deferred_total").increment(deferrals.len() as u64);
        Ok(outcome)
    }

    /// Claims up to `limit` rows due at `now`.
    async fn claim(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<OutboxRow>> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.store
            .claim_outbox(now, plus(now, to_chrono(self.settings.lease)), limit)
            .await
    }

    /// With the workspace rate shared: the rows that may go at `now`, in
    /// the slots this worker holds. Slots are taken from the store a batch
    /// at a time ([`Worker::take_slots`]), and rows for every slot held are
    /// claimed together, ahead of the slots' instants, their channels
    /// reserved at those instants ([`Worker::plan_held`]), and kept in
    /// [`Worker::held`]: a worker woken at a slot sends at once, with no
    /// round trip to the store between the wake and the send, so it uses
    /// its slots in time rather than dropping them (ARCHITECTURE.md,
    /// "Outbox"). Rows to write back are added to `deferrals`.
    async fn due_in_slots(
        &mut self,
        now: DateTime<Utc>,
        deferrals: &mut Vec<(i64, DateTime<Utc>)>,
    ) -> StoreResult<Vec<OutboxRow>> {
        // A row is sent only while its lease outlasts the send, which is
        // cut off after half of it; one held longer (the store was
        // unreachable) is left to its lease and claimed again.
        let half_lease = to_chrono(self.settings.lease / 2);
        self.held.retain(|held| {
            held.row
                .lease_until
                .is_some_and(|until| until >= plus(now, half_lease))
        });
        if let Some(batch) = self.pacer.slots_wanted(now) {
            match self.take_slots(now, batch).await? {
                Some(rows) => self.plan_held(rows, now, deferrals).await?,
                None => return Ok(Vec::new()),
            }
        }
        // With a backlog, rows for every slot held; without, only for the
        // slots usable now (rows parked here, or new ones since the poll).
        let free = self.free_slots(now);
        let wanted = if self.backlog {
            free.len()
        } else {
            let usable = free.iter().take_while(|at| **at <= now).count();
            usable.min(self.free_permits().saturating_sub(self.held.len()))
        };
        if wanted > 0 {
            let rows = self.claim(now, wanted).await?;
            self.backlog = rows.len() >= wanted;
            self.plan_held(rows, now, deferrals).await?;
        }
        let budget = self.pacer.global_budget(now).min(self.free_permits());
        let grace = self.pacer.grace();
        let mut due = Vec::new();
        while due.len() < budget
            && let Some(held) = self.held.front()
            && held.at <= now
        {
            let Some(held) = self.held.pop_front() else {
                break;
            };
            if now - held.at > grace {
                // Too late for its reservation: it could go less than an
                // interval before the channel's next one. Back to the
                // store, due when its reservation ends, to be reserved
                // anew.
                let spacing = to_chrono(self.pacer.channel_spacing());
                deferrals.push((held.row.id, plus(held.at, spacing)));
                continue;
            }
            due.push(held.row);
        }
        Ok(due)
    }

    /// Takes `batch` slots of the shared workspace rate from the store,
    /// with no slot in hand. When no backlog is known, claims first and
    /// takes slots only for what was found, so an idle worker's polls
    /// spend none of the rate; `None` when nothing was found, else the
    /// rows claimed first, to plan in the slots.
    async fn take_slots(
        &mut self,
        now: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<Option<Vec<OutboxRow>>> {
        let step = self.pacer.slot_step();
        let mut wanted = batch;
        let mut rows = Vec::new();
        if !self.backlog && self.held.is_empty() {
            let permits = self.free_permits();
            rows = self.claim(now, permits).await?;
            if rows.is_empty() {
                return Ok(None);
            }
            self.backlog = rows.len() >= permits;
            let found = u32::try_from(rows.len()).unwrap_or(u32::MAX);
            wanted = if self.backlog {
                batch.max(found)
            } else {
                found
            };
        }
        let first = self.store.take_send_slots(now, wanted, step).await?;
        self.pacer.add_slots(first, wanted);
        Ok(Some(rows))
    }

    /// The shared slots still usable at `now` that no held row is planned
    /// in: those after the last held row's.
    fn free_slots(&self, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.pacer
            .slots_after(self.held.back().map(|held| held.at), now)
    }

    /// Plans `rows`, just claimed, in the slots held after the rows
    /// already held, one each in the order they queued, and reserves their
    /// channels at those instants in one store statement, so no other
    /// worker sends into a channel less than its interval from them
    /// (ARCHITECTURE.md, "Outbox"). A row whose channel this worker knows
    /// to be busy takes no slot; it and a row whose channel the store
    /// refused are parked (added to `deferrals`), due when the channel is
    /// free. Rows beyond the slots go back as they were.
    async fn plan_held(
        &mut self,
        mut rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
        deferrals: &mut Vec<(i64, DateTime<Utc>)>,
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by_key(|row| self.pacer.queue_position(row.id));
        let mut slots = self.free_slots(now).into_iter().peekable();
        let mut planned = Vec::new();
        for row in rows {
            let Some(&at) = slots.peek() else {
                deferrals.push((row.id, row.not_before));
                continue;
            };
            match self.pacer.plan(row.id, &pacing_key(&row), at) {
                Admission::Send => {
                    slots.next();
                    planned.push(Held { row, at });
                }
                Admission::Park(until) => deferrals.push((row.id, until)),
            }
        }
        let wanted: Vec<(String, DateTime<Utc>)> = planned
            .iter()
            .map(|held| (pacing_key(&held.row), held.at))
            .collect();
        let reserved = self
            .store
            .reserve_channels(&wanted, self.pacer.channel_spacing())
            .await;
        let refused: HashMap<String, DateTime<Utc>> = match reserved {
            Ok(refused) => refused.into_iter().collect(),
            Err(e) => {
                // The rows stay leased until their lease ends; the
                // channels stay taken here meanwhile, which only delays.
                self.pacer.granted();
                return Err(e);
            }
        };
        for (held, (key, _)) in planned.into_iter().zip(wanted) {
            match refused.get(&key) {
                Some(free) => {
                    let at = self.pacer.refused(held.row.id, &key, *free);
                    deferrals.push((held.row.id, at));
                }
                None => self.held.push_back(held),
            }
        }
        self.pacer.granted();
        Ok(())
    }

    /// Writes the rows claimed ahead of their slots back, due as they
    /// were, so any worker may take them now: this one stops, or the
    /// workspace is paused for longer than they should stay leased.
    async fn release_held(&mut self) -> StoreResult<()> {
        let rows: Vec<(i64, DateTime<Utc>)> = self
            .held
            .drain(..)
            .map(|held| (held.row.id, held.row.not_before))
            .collect();
        self.store.outbox_defer(&rows).await
    }

    /// Starts one send, bounded by half the lease so the row is still this
    /// worker's when its result is recorded.
    fn spawn_send(&mut self, row: OutboxRow, message: Queued) {
        let timeout = self.settings.lease / 2;
        let chat = self.chat.clone();
        let store = self.store.clone();
        let config = self.config.clone();
        self.in_flight.spawn(async move {
            let send = async {
                let drawn = draw(&config, store.as_ref(), &message).await?;
                chat.send(&drawn).await
            };
            let result = match tokio::time::timeout(timeout, send).await {
                Ok(result) => result,
                Err(_) => Err(ChatError::Transient {
                    reason: format!("no answer within {timeout:?}"),
                }),
            };
            (row, message, result)
        });
    }

    /// When to claim next, after a claim at `now`: at once while a backlog
    /// is due (as soon as the workspace rate allows), else at the next
    /// parked slot, else after [`POLL`] for new rows.
    pub fn next_call(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let ready = self.pacer.global_ready_at(now);
        if let Some(held) = self.held.front() {
            return ready.max(held.at);
        }
        if self.backlog {
            return ready;
        }
        let poll = plus(now, to_chrono(POLL));
        self.pacer
            .next_slot()
            .map_or(poll, |slot| slot.min(poll))
            .max(ready)
    }

    /// Delivers until `stop`, then returns once the sends in flight are
    /// recorded. Sends stay in flight across claims: whenever a permit is
    /// free and pacing allows, the next row is claimed and started, and
    /// sends that finished together are recorded together.
    pub async fn run(mut self, clock: Arc<dyn Clock>, stop: CancellationToken) {
        let mut next = clock.now();
        while !stop.is_cancelled() {
            self.heartbeat.beat();
            let now = clock.now();
            if now >= next && self.free_permits() > 0 {
                next = match self.start_due(now).await {
                    Ok(_) => self.next_call(now),
                    Err(e) => {
                        tracing::error!(error = %e, "outbox delivery failed; retrying");
                        plus(now, to_chrono(POLL))
                    }
                };
                if next <= now && self.free_permits() > 0 {
                    tokio::task::yield_now().await;
                    continue;
                }
            }
            // With every permit taken only a finished send (or `stop`)
            // can let more go.
            let wait = (self.free_permits() > 0).then(|| {
                (next - clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(POLL)
            });
            tokio::select! {
                () = stop.cancelled() => break,
                Some(joined) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    let mut finished: Vec<Finished> = joined_send(joined).into_iter().collect();
                    while let Some(joined) = self.in_flight.try_join_next() {
                        finished.extend(joined_send(joined));
                    }
                    self.record_logged(finished, clock.now()).await;
                }
                () = tokio::time::sleep(wait.unwrap_or(POLL)), if wait.is_some() => {}
            }
        }
        let mut finished = Vec::new();
        while let Some(joined) = self.in_flight.join_next().await {
            finished.extend(joined_send(joined));
        }
        self.record_logged(finished, clock.now()).await;
        if let Err(e) = self.release_held().await {
            // They are taken up again once their lease ends.
            tracing::error!(error = %e, "releasing rows claimed ahead failed");
        }
    }

    /// Records finished sends before the loop goes on. Written in the
    /// loop, not beside it: a send Slack has answered counts as sent only
    /// once recorded, and a replica killed before that would have it sent
    /// again by another, so the loop starts nothing new meanwhile.
    async fn record_logged(&mut self, finished: Vec<Finished>, now: DateTime<Utc>) {
        let mut outcome = DeliveryOutcome::default();
        if let Err(e) = self.record(finished, now, &mut outcome).await {
            // The rows stay leased and are taken up again once the lease
            // ends.
            tracing::error!(error = %e, "recording outbox sends failed");
        }
    }

    /// Records finished sends in one store round trip, and tells the pacer
    /// of the 429s among them. A 429 that paused the whole workspace holds
    /// every process sharing the rate, not only this one, and the rows
    /// claimed ahead go back to the store for the meantime.
    async fn record(
        &mut self,
        finished: Vec<Finished>,
        now: DateTime<Utc>,
        outcome: &mut DeliveryOutcome,
    ) -> StoreResult<()> {
        let paused_before = self.pacer.workspace_paused_until();
        let mut channels_paused = Vec::new();
        let results: Vec<OutboxResult> = finished
            .into_iter()
            .map(|(row, message, result)| {
                self.result(&row, &message, result, now, outcome, &mut channels_paused)
            })
            .collect();
        self.store.outbox_record(&results).await?;
        // A channel's pause holds every process's sends into it. Rare (a
        // 429 on a busy channel): a statement each.
        if self.pacer.is_shared() {
            for (key, until) in channels_paused {
                self.store.pause_channel(&key, until).await?;
            }
        }
        let paused = self.pacer.workspace_paused_until();
        if let Some(until) = paused
            && self.pacer.is_shared()
            && paused != paused_before
        {
            self.store.pause_sends(until).await?;
            self.release_held().await?;
        }
        Ok(())
    }

    /// What to record for one send, with its log line and metrics.
    #[tracing::instrument(skip_all, fields(outbox_id = row.id, kind = %row.kind))]
    fn result(
        &mut self,
        row: &OutboxRow,
        message: &Queued,
        result: Result<Delivered, ChatError>,
        now: DateTime<Utc>,
        outcome: &mut DeliveryOutcome,
        channels_paused: &mut Vec<(String, DateTime<Utc>)>,
    ) -> OutboxResult {
        match result {
            Ok(delivered) => {
                let response = serde_json::to_string(&delivered).unwrap_or_default();
                let checkin = match (message.checkin, delivered.channel, delivered.ts) {
                    (Some(checkin), Some(channel), Some(ts)) => Some(CheckinMessage {
                        checkin,
                        channel,
                        ts,
                    }),
                    _ => None,
                };
                metrics::counter!("nudged_outbox_sent_total").increment(1);
                outcome.sent += 1;
                OutboxResult::Sent {
                    id: row.id,
                    at: now,
                    response,
                    checkin,
                }
            }
            Err(ChatError::RateLimited { retry_after }) => {
                // Bounded here too: any adapter may say how long to wait,
                // and no answer may stall a channel for longer.
                let retry_after = retry_after.min(chat::MAX_RETRY_AFTER);
                let (paused, until) =
                    self.pacer
                        .rate_limited(row.id, &pacing_key(row), now, retry_after);
                let scope = match paused {
                    Paused::Channel => {
                        channels_paused.push((pacing_key(row), until));
                        "channel"
                    }
                    Paused::Workspace => "workspace",
                };
                tracing::info!(
                    ?retry_after,
                    paused = scope,
                    "rate limited; pausing for the platform's delay"
                );
                metrics::counter!("nudged_outbox_retried_total", "reason" => "rate_limited")
                    .increment(1);
                metrics::counter!("nudged_outbox_paused_total", "scope" => scope).increment(1);
                outcome.retried += 1;
                OutboxResult::Retry {
                    id: row.id,
                    next_attempt: until,
                    error: "rate limited".to_owned(),
                }
            }
            Err(ChatError::Transient { reason }) if row.attempts + 1 < MAX_ATTEMPTS => {
                let delay = backoff(row.attempts + 1);
                tracing::warn!(%reason, ?delay, attempt = row.attempts + 1, "delivery failed; will retry");
                metrics::counter!("nudged_outbox_retried_total", "reason" => "transient")
                    .increment(1);
                outcome.retried += 1;
                OutboxResult::Retry {
                    id: row.id,
                    next_attempt: plus(now, to_chrono(delay)),
                    error: reason,
                }
            }
            Err(error) => {
                tracing::error!(%error, attempts = row.attempts + 1, "delivery failed for good");
                metrics::counter!("nudged_outbox_failed_total").increment(1);
                outcome.failed += 1;
                OutboxResult::Failed {
                    id: row.id,
                    error: error.to_string(),
                }
            }
        }
    }
}

/// A send task's result; a task that panicked or was cancelled leaves its
/// row leased, to be taken up again once the lease ends.
fn joined_send(joined: Result<Finished, tokio::task::JoinError>) -> Option<Finished> {
    joined
        .inspect_err(|e| tracing::error!(error = %e, "a send task failed"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d >= MIN_DELAY && d <= MAX_DELAY * 2, "{attempt}: {d:?}");
        }
        assert!(backoff(8) > backoff(1));
    }
}
