//! The scheduler (ARCHITECTURE.md, "Scheduling"): a minute heartbeat and a dispatcher that
//! keeps all scheduling truth in the store.
//!
//! tokio-cron-scheduler only wakes the dispatcher once a minute (UTC, ticks
//! coalesced). It is not trusted with anything else: its per-job zones drift
//! by an hour after a DST change, and it forgets everything on restart. On
//! start and on every tick, [`Dispatcher::tick`] reads from the store's due
//! index the (person, schedule) pairs due by now, computes for each the
//! occurrences since that person's last claimed run, read in the person's
//! own zone ([`schedule::due`]), and acts on the newest one within the
//! grace period. A person's zone is the roster's `tz`, else their chat
//! profile's (read once with [`ChatApi::user_tz`] and stored), else the
//! schedule's fallback.
//!
//! The due index (`schedule_due`) holds each enrolled person's next
//! occurrence of each schedule in their audience, so a tick costs what is
//! due, not what is enrolled. It is kept by three moves, all computed here
//! with croner and written by the store:
//!
//! - a claimed run moves its row on to the next occurrence after it
//!   ([`Store::advance_due`], only if the row is unchanged since read);
//! - people the database marked (added; zone, enrolment or pause changed)
//!   are recomputed from their last claimed runs at the start of the next
//!   tick, before anything due is read ([`Store::pending_due`]);
//! - a schedule set different from the one the index was computed for (its
//!   fingerprint is stored) marks everyone, once per dispatcher start.
//!
//! A due time that is too early costs one look and is corrected by it; one
//! that is too late would lose a run, which the conditional writes prevent.
//!
//! Exactly once per (person, schedule, period), across restarts and
//! replicas, without locks: the outgoing message is enqueued under a dedupe
//! key made of that triple, and the run is then claimed as a unique row. Two
//! dispatchers acting on the same run write one outbox row between them; a
//! crash between enqueue and claim re-enqueues the same key on the next tick,
//! which changes nothing, and then claims.
//!
//! A team digest is not per person and has no due rows: each tick reads its
//! newest occurrence within the grace period in the schedule's own zone and
//! enqueues it under the dedupe key `digest:{schedule}:{week}`, which makes
//! it one post however many dispatchers act on it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::chat::{ChatApi, ChatError};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{IsoWeek, PersonId};
use crate::health::Heartbeat;
use crate::schedule::{self, Schedule, ScheduleKind, ScheduleZone};
use crate::service::checkin::{self, Asked};
use crate::service::digest::{self, Posted};
use crate::service::readiness;
use crate::store::{
    DueEntry, DueRow, DueUpdate, NewPerson, PendingDue, PersonRow, ScheduleRun, Store,
};

/// The heartbeat: second 0 of every minute, UTC.
const HEARTBEAT: &str = "0 * * * * *";

/// What one person's run of one schedule came to at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A message was put in the outbox by this dispatcher.
    Sent,
    /// Another dispatcher (or an earlier attempt) already did it.
    AlreadyDone,
    /// Due, but nothing to send: a reminder to someone who answered.
    NotNeeded,
    /// Due while the person had paused.
    Paused,
    /// Missed while the daemon was down and older than the grace period.
    TooLate,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::AlreadyDone => "already_done",
            Self::NotNeeded => "not_needed",
            Self::Paused => "paused",
            Self::TooLate => "too_late",
        }
    }
}

/// What a tick did, summed over schedules and people.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Messages this tick put in the outbox (prompts, reminders, trend posts).
    pub sent: usize,
    /// Runs that were due but needed nothing from this dispatcher: done by
    /// another, a reminder to someone who answered, a paused person.
    pub passed: usize,
    /// Occurrences missed while the daemon was down and not caught up.
    pub skipped: usize,
    /// People whose run failed (logged); retried on the next tick.
    pub failed: usize,
}

impl TickReport {
    fn is_quiet(&self) -> bool {
        *self == Self::default()
    }

    fn add(&mut self, other: Self) {
        self.sent += other.sent;
        self.passed += other.passed;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// Profile lookups per tick at most: Slack's `users.info` allows about
/// 100 a minute, and the heartbeat ticks once a minute.
const LOOKUPS_PER_TICK: usize = 50;

/// Due rows read per page of a tick: a fan-out to 100 000 people is 200
/// reads, and a page of people in memory stays well under a megabyte.
const DUE_PAGE: u32 = 500;

/// Due runs acted on at once: enough for the store's group commit to
/// batch their writes, few enough to stay within a PostgreSQL replica's
/// pool of 10 connections.
const RUNS_AT_ONCE: usize = 8;

/// Marked people recomputed per page: one read and one write of the store
/// for each thousand.
const PENDING_PAGE: u32 = 1000;

/// Changes whenever how due times are computed changes, so the first start
/// of a new version recomputes every row even with the same schedules.
const DUE_INDEX_VERSION: &str = "due-index-1";

/// One due run being acted on, and what it came to.
type RunFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = (&'a Schedule, &'a DueEntry, TickReport, anyhow::Result<()>),
            > + Send
            + 'a,
    >,
>;

/// Decides what is due and puts it in the outbox.
pub struct Dispatcher {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    /// Where people's profile time zones come from, when the roster gives
    /// none (Slack's `users.info`); `None` to use the schedules' fallback.
    profiles: Option<Arc<dyn ChatApi>>,
    /// People whose profile was read by this process (found a zone or not),
    /// so each is asked once per start, not once a minute.
    looked_up: Mutex<HashSet<PersonId>>,
    /// Whether this dispatcher has compared the schedule set with the one
    /// the due index was computed for.
    schedule_set_synced: AtomicBool,
    /// Dedupe keys of the team digests this dispatcher has queued or found
    /// queued, so the ticks after a run do not gather them again.
    digests_done: Mutex<HashSet<String>>,
}

impl Dispatcher {
    pub fn new(settings: Arc<Settings>, store: Arc<dyn Store>) -> Self {
        Self {
            settings,
            store,
            profiles: None,
            looked_up: Mutex::new(HashSet::new()),
            schedule_set_synced: AtomicBool::new(false),
            digests_done: Mutex::new(HashSet::new()),
        }
    }

    /// Reads the time zone of people without one from their chat profile
    /// (stored, so the roster and later starts see it too).
    pub fn with_profiles(mut self, chat: Arc<dyn ChatApi>) -> Self {
        self.profiles = Some(chat);
        self
    }

    /// Acts on everything due at `now`. Safe to call at any moment, any
    /// number of times, from any number of processes on one store.
    pub async fn tick(&self, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
        self.sync_schedule_set().await?;
        self.recompute_marked().await?;
        let mut report = TickReport::default();
        let mut after = None;
        loop {
            let page = self.store.due_by(now, after.as_ref(), DUE_PAGE).await?;
            // A row of a schedule no longer loaded goes at the next
            // schedule-set sync; an audience change marks everyone.
            let runs = page.iter().filter_map(|entry| {
                self.settings
                    .schedules
                    .list
                    .iter()
                    .find(|s| {
                        s.name == entry.schedule
                            && s.kind.is_per_person()
                            && s.includes(&entry.person.id)
                    })
                    .map(|schedule| (schedule, entry))
            });
            // Runs are independent (each on its own unique rows), so several
            // go at once: their writes share the store's commits.
            // Boxed with their lifetime spelled out: the compiler cannot
            // prove an unboxed closure's future `Send` for every lifetime.
            let runs: Vec<RunFuture<'_>> = runs
                .map(|(schedule, entry)| -> RunFuture<'_> {
                    Box::pin(async move {
                        let mut run = TickReport::default();
                        let outcome = self.run_for(schedule, entry, now, &mut run).await;
                        (schedule, entry, run, outcome)
                    })
                })
                .collect();
            let mut done = futures_util::stream::iter(runs).buffer_unordered(RUNS_AT_ONCE);
            while let Some((schedule, entry, run, outcome)) = done.next().await {
                report.add(run);
                if let Err(e) = outcome {
                    report.failed += 1;
                    tracing::error!(
                        schedule = %schedule.name,
                        person = %entry.person.id,
                        error = %e,
                        "scheduled run failed; retried on the next tick"
                    );
                }
            }
            if page.len() < DUE_PAGE as usize {
                break;
            }
            after = page.last().map(DueEntry::cursor);
        }
        self.team_digests(now, &mut report).await?;
        Ok(report)
    }

    /// Posts each team digest whose newest occurrence within the grace
    /// period this dispatcher has not acted on yet.
    async fn team_digests(
        &self,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        // The digest's outbox row is what makes it once: an occurrence is
        // only acted on while that row is surely still kept (rows are
        // pruned `retention` after they were written, which was after the
        // occurrence), so a restart never posts a week twice.
        let window = self
            .settings
            .schedules
            .grace
            .min(self.settings.storage.retention);
        for schedule in self
            .settings
            .schedules
            .list
            .iter()
            .filter(|s| !s.kind.is_per_person())
        {
            // Validation keeps team digests on a fixed zone.
            let zone = schedule.zone_for(None);
            let Some(run) = schedule::due(schedule, zone, now - window, now, window).run else {
                continue;
            };
            let today = run.with_timezone(&zone).date_naive();
            let key = digest::dedupe_key(schedule, IsoWeek::of(today));
            // Remembered in memory only to spare the ticks after the run
            // gathering it again; after a restart it is gathered once more
            // and its enqueue adds nothing.
            if self.digests_done.lock().expect("lock").contains(&key) {
                continue;
            }
            let outcome =
                digest::post(&self.settings, self.store.as_ref(), schedule, today, now).await;
            let outcome = match outcome {
                Ok(Some(Posted::Queued)) => {
                    report.sent += 1;
                    tracing::info!(schedule = %schedule.name, kind = %schedule.kind, local = %run.with_timezone(&zone), "team digest");
                    Outcome::Sent
                }
                Ok(_) => {
                    report.passed += 1;
                    Outcome::AlreadyDone
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::error!(schedule = %schedule.name, error = %e, "team digest failed; retried on the next tick");
                    continue;
                }
            };
            self.digests_done.lock().expect("lock").insert(key);
            metrics::counter!(
                "nudged_schedule_runs_total",
                "kind" => schedule.kind.as_str(),
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        Ok(())
    }

    /// Once per dispatcher: if the schedules differ from those the due
    /// index was computed for, the store marks everyone for recomputation.
    async fn sync_schedule_set(&self) -> anyhow::Result<()> {
        if self.schedule_set_synced.load(Ordering::Acquire) {
            return Ok(());
        }
        let schedules = &self.settings.schedules.list;
        let names: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
        if self
            .store
            .sync_schedule_set(&fingerprint(schedules), &names)
            .await?
        {
            tracing::info!(
                schedules = names.len(),
                "schedules changed since the due times were computed; recomputing them"
            );
        }
        self.schedule_set_synced.store(true, Ordering::Release);
        Ok(())
    }

    /// Recomputes the due rows of everyone the store has marked, page by
    /// page, reading missing zones from chat profiles on the way.
    async fn recompute_marked(&self) -> anyhow::Result<()> {
        let mut after: Option<PersonId> = None;
        let mut lookups = 0;
        loop {
            let mut page = self.store.pending_due(after.as_ref(), PENDING_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.person.id.clone());
            let mut people: Vec<PersonRow> = page.iter().map(|p| p.person.clone()).collect();
            let unsettled = self.look_up_zones(&mut people, &mut lookups).await;
            let updates: Vec<DueUpdate> = page
                .iter_mut()
                .zip(people)
                .map(|(pending, person)| {
                    pending.person = person;
                    DueUpdate {
                        person: pending.person.id.clone(),
                        stamp: pending.stamp,
                        rows: self.due_rows(pending),
                        settle: !unsettled.contains(&pending.person.id),
                    }
                })
                .collect();
            self.store.set_due(&updates).await?;
            if page.len() < PENDING_PAGE as usize {
                return Ok(());
            }
        }
    }

    /// The due rows `pending.person` should have: for each schedule whose
    /// audience holds them (none if not enrolled), the first occurrence
    /// after their last claimed run of it, or after they were added.
    fn due_rows(&self, pending: &PendingDue) -> Vec<DueRow> {
        let person = &pending.person;
        if !person.enrolled {
            return Vec::new();
        }
        let tz = person.tz;
        self.settings
            .schedules
            .list
            .iter()
            .filter(|s| s.kind.is_per_person() && s.includes(&person.id))
            .map(|schedule| {
                let zone = schedule.zone_for(tz);
                let since = pending
                    .last_runs
                    .iter()
                    .find(|(name, _)| *name == schedule.name)
                    .map_or(person.created_at, |(_, at)| *at);
                DueRow {
                    schedule: schedule.name.clone(),
                    zone: zone.name().to_owned(),
                    due_at: next_after(schedule, zone, since),
                }
            })
            .collect()
    }

    /// Fills in the zone of enrolled people who have none from their chat
    /// profile, up to [`LOOKUPS_PER_TICK`] (`lookups` counts them over the
    /// tick). A failed lookup is retried on a later tick; until then the
    /// schedule's fallback zone applies. Returns who is still to be looked
    /// up: they stay marked, so the next tick tries again.
    async fn look_up_zones(
        &self,
        people: &mut [PersonRow],
        lookups: &mut usize,
    ) -> HashSet<PersonId> {
        let mut unsettled = HashSet::new();
        let Some(chat) = &self.profiles else {
            return unsettled;
        };
        let per_person = self
            .settings
            .schedules
            .list
            .iter()
            .any(|s| matches!(s.zone, ScheduleZone::Person { .. }));
        if !per_person {
            return unsettled;
        }
        for person in people.iter_mut().filter(|p| p.enrolled && p.tz.is_none()) {
            if self.looked_up.lock().expect("lock").contains(&person.id) {
                continue;
            }
            if *lookups == LOOKUPS_PER_TICK {
                unsettled.insert(person.id.clone());
                continue;
            }
            *lookups += 1;
            let tz = match chat.user_tz(&person.id).await {
                Ok(tz) => tz,
                // `user_not_found` and the like: asking again will not help.
                Err(e @ ChatError::Permanent { .. }) => {
                    tracing::warn!(person = %person.id, error = %e, "no chat profile; the schedules' fallback zone applies");
                    None
                }
                Err(e) => {
                    tracing::warn!(person = %person.id, error = %e, "cannot read the profile time zone; retrying later");
                    unsettled.insert(person.id.clone());
                    continue;
                }
            };
            self.looked_up
                .lock()
                .expect("lock")
                .insert(person.id.clone());
            let Some(tz) = tz else { continue };
            let saved = self
                .store
                .upsert_person(
                    &NewPerson {
                        id: person.id.clone(),
                        name: None,
                        tz: Some(tz),
                        enrolled: person.enrolled,
                    },
                    person.created_at,
                )
                .await;
            match saved {
                Ok(()) => {
                    tracing::info!(person = %person.id, zone = tz.name(), "time zone from the chat profile");
                    person.tz = Some(tz);
                }
                Err(e) => {
                    tracing::warn!(person = %person.id, error = %e, "cannot store the profile time zone")
                }
            }
        }
        unsettled
    }

    /// One schedule for one person, whose due row says it is due.
    async fn run_for(
        &self,
        schedule: &Schedule,
        entry: &DueEntry,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        let person = &entry.person;
        let zone = schedule.zone_for(person.tz);
        // A person with no run of this schedule starts from when they were
        // added: nothing from before is caught up.
        let since = self
            .store
            .last_run(&person.id, &schedule.name)
            .await?
            .unwrap_or(person.created_at);
        let due = schedule::due(schedule, zone, since, now, self.settings.schedules.grace);
        // The row moves on to the first occurrence after what is now done:
        // after the run claimed below, or after `since` if the row was
        // early (nothing fell due).
        let advance = DueRow {
            schedule: schedule.name.clone(),
            zone: zone.name().to_owned(),
            due_at: next_after(schedule, zone, due.latest.unwrap_or(since)),
        };
        let Some(latest) = due.latest else {
            self.store
                .advance_due(&person.id, &advance, entry.due_at)
                .await?;
            return Ok(());
        };
        if due.skipped > 0 {
            report.skipped += due.skipped;
            metrics::counter!("nudged_schedule_runs_skipped_total", "schedule" => schedule.name.clone())
                .increment(due.skipped as u64);
            tracing::info!(
                schedule = %schedule.name,
                person = %person.id,
                missed = due.skipped,
                oldest = ?due.oldest_skipped,
                grace_hours = self.settings.schedules.grace.num_hours(),
                "skipped runs missed while nudged was down"
            );
        }
        let outcome = match due.run {
            None => Outcome::TooLate,
            Some(run) if person.paused_until.is_some_and(|until| until > run) => Outcome::Paused,
            Some(run) => self.act(schedule, person, zone, run, now).await?,
        };
        // Claimed after acting: see the module doc for why that order loses
        // nothing and sends nothing twice.
        let run = ScheduleRun {
            person: person.id.clone(),
            schedule: schedule.name.clone(),
            period: latest,
        };
        // Losing the claim to another dispatcher is fine: whichever of the
        // two enqueued first sent the one message, the other's was a no-op.
        self.store.claim_run(&run, now).await?;
        self.store
            .advance_due(&person.id, &advance, entry.due_at)
            .await?;
        match outcome {
            Outcome::Sent => {
                report.sent += 1;
                tracing::info!(
                    schedule = %schedule.name,
                    kind = %schedule.kind,
                    person = %person.id,
                    local = %latest.with_timezone(&zone),
                    "scheduled run"
                );
            }
            Outcome::TooLate => {}
            _ => report.passed += 1,
        }
        if outcome != Outcome::TooLate {
            metrics::counter!(
                "nudged_schedule_runs_total",
                "kind" => schedule.kind.as_str(),
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        Ok(())
    }

    /// Puts the run's message in the outbox under the run's dedupe key.
    async fn act(
        &self,
        schedule: &Schedule,
        person: &PersonRow,
        zone: Tz,
        run: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let key = format!(
            "run:{}:{}:{}",
            schedule.name,
            person.id,
            run.timestamp_millis()
        );
        let store = self.store.as_ref();
        let settings = self.settings.as_ref();
        let week = IsoWeek::of(run.with_timezone(&zone).date_naive());
        Ok(match schedule.kind {
            ScheduleKind::Checkin | ScheduleKind::Reminder => {
                let ask = checkin::Ask {
                    person: &person.id,
                    schedule,
                    week,
                    period: run,
                    dedupe_key: Some(key),
                };
                match checkin::ask(settings, store, ask, now).await? {
                    Asked::Queued => Outcome::Sent,
                    Asked::AlreadyQueued => Outcome::AlreadyDone,
                    Asked::NotNeeded => Outcome::NotNeeded,
                }
            }
            // Not per person: never in the due index (see `team_digests`).
            ScheduleKind::TeamDigest => Outcome::NotNeeded,
            ScheduleKind::TrendPost => {
                // The nudge that may come with it has its own key.
                let done = readiness::reassess(settings, store, person, now, Some(&key)).await?;
                if done.trend_posted {
                    Outcome::Sent
                } else {
                    Outcome::AlreadyDone
                }
            }
        })
    }
}

/// The first occurrence of `schedule` strictly after `after`, read in
/// `zone`; `None` if it never fires again.
fn next_after(schedule: &Schedule, zone: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule::occurrences(schedule, zone, after, DateTime::<Utc>::MAX_UTC).next()
}

/// What the due index was computed from: every schedule's name, cron,
/// zone and audience (not its kind or questions, which change nothing of
/// when it is due), in name order, and [`DUE_INDEX_VERSION`].
fn fingerprint(schedules: &[Schedule]) -> String {
    use sha2::{Digest, Sha256};
    let mut parts: Vec<String> = schedules
        .iter()
        .map(|s| {
            format!(
                "{}\n{}\n{:?}\n{:?}",
                s.name, s.cron_text, s.zone, s.audience
            )
        })
        .collect();
    parts.sort();
    let mut hash = Sha256::new();
    hash.update(DUE_INDEX_VERSION);
    for part in parts {
        hash.update([0]);
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// A tick missed this many times over is a scheduler that stopped making
/// progress: `/readyz` reports it (ten heartbeats; a tick of a large
/// roster may take a while, ten minutes it should not).
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The minute heartbeat: tokio-cron-scheduler waking the dispatcher. It
/// outlives the dispatcher's restarts, so a restart never leaves a second
/// heartbeat running.
pub struct Ticker {
    jobs: JobScheduler,
    wake: Arc<Notify>,
}

impl Ticker {
    /// Starts the heartbeat.
    pub async fn start() -> anyhow::Result<Self> {
        let wake = Arc::new(Notify::new());
        let jobs = JobScheduler::new().await?;
        let beat = wake.clone();
        jobs.add(Job::new_async(HEARTBEAT, move |_, _| {
            // `notify_one` keeps one permit: ticks that arrive while the
            // dispatcher is busy coalesce into one.
            beat.notify_one();
            Box::pin(async {})
        })?)
        .await?;
        jobs.start().await?;
        Ok(Self { jobs, wake })
    }

    /// What the heartbeat wakes.
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops the heartbeat.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.jobs.shutdown().await?;
        Ok(())
    }
}

/// Runs the dispatcher on start and whenever `wake` is notified, until
/// `stop`; beats `heartbeat` after every tick.
pub async fn run(
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    heartbeat: Heartbeat,
) -> anyhow::Result<()> {
    loop {
        match dispatcher.tick(clock.now()).await {
            Ok(report) if !report.is_quiet() => tracing::info!(?report, "scheduler tick"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "scheduler tick failed; retrying next minute"),
        }
        heartbeat.beat();
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = wake.notified() => {}
        }
    }
}
