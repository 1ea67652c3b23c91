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
//!   ([`Store::record_runs`], only if the row is unchanged since read);
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
//! key made of that triple, and the run is claimed as a unique row. A
//! check-in's prompt, the claim and the due row's move are one write
//! ([`Store::record_run`]); a trend post is enqueued by the readiness use
//! case before its claim is written. Two dispatchers acting on the same run
//! write one outbox row between them; a crash between a trend post's
//! enqueue and its claim re-enqueues the same key on the next tick, which
//! changes nothing, and then claims.
//!
//! A team digest is not per person and has no due rows: each tick reads its
//! newest occurrence within the grace period in the schedule's own zone and
//! enqueues it under the dedupe key `digest:{schedule}:{week}`, which makes
//! it one post however many dispatchers act on it.

use std::collections::{BTreeMap, HashMap, HashSet};
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
use crate::domain::{IsoWeek, OptionKey, PersonId, QuestionId};
use crate::health::Heartbeat;
use crate::schedule::{self, Schedule, ScheduleKind, ScheduleZone};
use crate::service::checkin;
use crate::service::digest::{self, Posted};
use crate::service::readiness;
use crate::store::{
    DueAdvance, DueEntry, DueRow, DueUpdate, NewPerson, PendingDue, PersonRow, PromptWrite,
    RunRecorded, RunWrite, ScheduleRun, Store,
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
}

/// Profile lookups per tick at most: Slack's `users.info` allows about
/// 100 a minute, and the heartbeat ticks once a minute.
const LOOKUPS_PER_TICK: usize = 50;

/// Due rows read per page of a tick: a fan-out to 100 000 people is 200
/// reads, and a page of people in memory stays well under a megabyte.
const DUE_PAGE: u32 = 500;

/// Due runs planned at once (each reads the person's answers for the
/// week): few enough to stay within a PostgreSQL replica's pool of 10
/// connections.
const RUNS_AT_ONCE: usize = 8;

/// Due runs written together ([`Store::record_runs`]): four statements and
/// one commit for this many people. Each holds its drawn prompt until the
/// write, so this also bounds the memory a fan-out takes.
const RUNS_PER_WRITE: usize = 100;

/// Marked people recomputed per page: one read and one write of the store
/// for each thousand.
const PENDING_PAGE: u32 = 1000;

/// Changes whenever how due times are computed changes, so the first start
/// of a new version recomputes every row even with the same schedules.
const DUE_INDEX_VERSION: &str = "due-index-1";

/// One due run being planned.
type PlanFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Planned>> + Send + 'a>>;

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
            let runs: Vec<_> = runs.collect();
            for chunk in runs.chunks(RUNS_PER_WRITE) {
                self.run_chunk(chunk, now, &mut report).await;
            }
            if page.len() < DUE_PAGE as usize {
                break;
            }
            after = page.last().map(DueEntry::cursor);
        }
        self.team_digests(now, &mut report).await?;
        Ok(report)
    }

    /// Plans a chunk of due runs, writes them together, and reports each.
    /// The chunk's check-ins read their people's answers in one statement
    /// per week asked about; trend posts (which read a person's history)
    /// are planned several at once.
    async fn run_chunk(
        &self,
        chunk: &[(&Schedule, &DueEntry)],
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) {
        let dues: Vec<DueOf> = chunk
            .iter()
            .map(|(schedule, entry)| self.due_of(schedule, entry, now))
            .collect();
        let mut asked: BTreeMap<IsoWeek, Vec<PersonId>> = BTreeMap::new();
        for ((schedule, entry), due) in chunk.iter().zip(&dues) {
            if let Some(week) = Self::asks_about(schedule, entry, due) {
                asked.entry(week).or_default().push(entry.person.id.clone());
            }
        }
        let mut answers = Answers::new();
        let mut unread = None;
        for (week, people) in asked {
            match self.store.answers_of_week(&people, week).await {
                Ok(rows) => {
                    for (person, question, option) in rows {
                        answers
                            .entry((person, week))
                            .or_default()
                            .insert(question, option);
                    }
                }
                Err(e) => unread = Some(e),
            }
        }
        if let Some(e) = unread {
            // Asking without them would show answers as missing: retried
            // on the next tick, as a failed run is.
            report.failed += chunk.len();
            tracing::error!(error = %e, runs = chunk.len(), "cannot read answers for due check-ins; retried on the next tick");
            return;
        }
        let answers = &answers;
        // Boxed with their lifetime spelled out: the compiler cannot prove
        // an unboxed closure's future `Send` for every lifetime.
        let plans: Vec<PlanFuture<'_>> = chunk
            .iter()
            .zip(dues)
            .map(|(&(schedule, entry), due)| -> PlanFuture<'_> {
                Box::pin(async move { self.plan(schedule, entry, due, answers, now).await })
            })
            .collect();
        let plans: Vec<anyhow::Result<Planned>> = futures_util::stream::iter(plans)
            .buffered(RUNS_AT_ONCE)
            .collect()
            .await;
        // The planned runs' writes, moved out for the store; what each
        // came to stays with its entry.
        let mut writes = Vec::with_capacity(plans.len());
        let plans: Vec<anyhow::Result<Option<PlannedRun>>> = plans
            .into_iter()
            .map(|plan| {
                plan.map(|planned| {
                    writes.push(planned.write);
                    planned.run
                })
            })
            .collect();
        let mut written = self.write(&writes, now).await.into_iter();
        for (&(schedule, entry), plan) in chunk.iter().zip(plans) {
            let outcome = plan.and_then(|run| {
                // `write` answers once per write, in order.
                let recorded = written
                    .next()
                    .unwrap_or_else(|| Err(anyhow::anyhow!("no result for this run")))?;
                if let Some(run) = &run {
                    Self::finish(schedule, entry, run, recorded, report);
                }
                Ok(())
            });
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

    /// What is due of one schedule for one person, computed without the
    /// store.
    fn due_of(&self, schedule: &Schedule, entry: &DueEntry, now: DateTime<Utc>) -> DueOf {
        let person = &entry.person;
        let zone = schedule.zone_for(person.tz);
        // A person with no run of this schedule starts from when they were
        // added: nothing from before is caught up. The last run was read
        // with the row; one claimed since by another dispatcher makes this
        // run's enqueue and claim no-ops, and its row has moved on.
        let since = entry.last_run.unwrap_or(person.created_at);
        let due = schedule::due(schedule, zone, since, now, self.settings.schedules.grace);
        DueOf { zone, since, due }
    }

    /// The week a check-in or reminder due now asks about, in the person's
    /// zone; `None` if nothing is to be asked.
    fn asks_about(schedule: &Schedule, entry: &DueEntry, due: &DueOf) -> Option<IsoWeek> {
        let run = due.due.run?;
        let asks = matches!(
            schedule.kind,
            ScheduleKind::Checkin | ScheduleKind::Reminder
        );
        let paused = entry.person.paused_until.is_some_and(|until| until > run);
        (asks && !paused).then(|| IsoWeek::of(run.with_timezone(&due.zone).date_naive()))
    }

    /// What one schedule's due run for one person writes, and what it
    /// came to unless that depends on the write. `answers` holds the
    /// person's answers for the week a check-in asks about.
    async fn plan(
        &self,
        schedule: &Schedule,
        entry: &DueEntry,
        due: DueOf,
        answers: &Answers,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Planned> {
        let person = &entry.person;
        let DueOf { zone, since, due } = due;
        // The row moves on to the first occurrence after what is now done:
        // after the run claimed below, or after `since` if the row was
        // early (nothing fell due).
        let advance = DueAdvance {
            person: person.id.clone(),
            row: DueRow {
                schedule: schedule.name.clone(),
                zone: zone.name().to_owned(),
                due_at: next_after(schedule, zone, due.latest.unwrap_or(since)),
            },
            from: entry.due_at,
        };
        let Some(latest) = due.latest else {
            return Ok(Planned {
                write: RunWrite {
                    advance: Some(advance),
                    ..RunWrite::default()
                },
                run: None,
            });
        };
        if due.skipped > 0 {
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
        let acted = match due.run {
            None => Acted::Done(Outcome::TooLate),
            Some(run) if person.paused_until.is_some_and(|until| until > run) => {
                Acted::Done(Outcome::Paused)
            }
            Some(run) => self.act(schedule, person, zone, run, answers, now).await?,
        };
        // The prompt (if any), the claim and the row's move commit
        // together. Losing the claim to another dispatcher is fine:
        // whichever of the two enqueued first sent the one message, the
        // other's enqueue was a no-op (see the module doc).
        let (prompt, outcome) = match acted {
            Acted::Prompt(prompt) => (Some(prompt), None),
            Acted::Done(outcome) => (None, Some(outcome)),
        };
        Ok(Planned {
            write: RunWrite {
                prompt,
                claim: Some(ScheduleRun {
                    person: person.id.clone(),
                    schedule: schedule.name.clone(),
                    period: latest,
                }),
                advance: Some(advance),
            },
            run: Some(PlannedRun {
                local: latest.with_timezone(&zone),
                skipped: due.skipped,
                outcome,
            }),
        })
    }

    /// Writes the planned runs of a page together; if that fails, each
    /// alone, so one bad run (its person just removed, say) fails only
    /// itself.
    async fn write(
        &self,
        writes: &[RunWrite],
        now: DateTime<Utc>,
    ) -> Vec<anyhow::Result<RunRecorded>> {
        if writes.is_empty() {
            return Vec::new();
        }
        match self.store.record_runs(writes, now).await {
            Ok(recorded) => return recorded.into_iter().map(Ok).collect(),
            Err(e) if writes.len() > 1 => {
                tracing::warn!(error = %e, runs = writes.len(), "writing a page of runs failed; writing them one by one");
            }
            Err(e) => return vec![Err(e.into())],
        }
        let mut recorded = Vec::with_capacity(writes.len());
        for write in writes {
            let one = self
                .store
                .record_runs(std::slice::from_ref(write), now)
                .await;
            recorded.push(one.map_err(anyhow::Error::from).and_then(|r| {
                r.first()
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("no result"))
            }));
        }
        recorded
    }

    /// Reports what a written run came to.
    fn finish(
        schedule: &Schedule,
        entry: &DueEntry,
        run: &PlannedRun,
        recorded: RunRecorded,
        report: &mut TickReport,
    ) {
        report.skipped += run.skipped;
        let outcome = run.outcome.unwrap_or(if recorded.queued {
            Outcome::Sent
        } else {
            Outcome::AlreadyDone
        });
        match outcome {
            Outcome::Sent => {
                report.sent += 1;
                tracing::info!(
                    schedule = %schedule.name,
                    kind = %schedule.kind,
                    person = %entry.person.id,
                    local = %run.local,
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
    }

    /// What the run does: a check-in's prompt to write with its claim, or
    /// what it came to (a trend post is queued by the readiness use case).
    async fn act(
        &self,
        schedule: &Schedule,
        person: &PersonRow,
        zone: Tz,
        run: DateTime<Utc>,
        answers: &Answers,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Acted> {
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
                let answered = answers
                    .get(&(person.id.clone(), week))
                    .unwrap_or(&NO_ANSWERS);
                match checkin::prompt(settings, ask, answered, now) {
                    Some(prompt) => Acted::Prompt(prompt),
                    None => Acted::Done(Outcome::NotNeeded),
                }
            }
            // Not per person: never in the due index (see `team_digests`).
            ScheduleKind::TeamDigest => Acted::Done(Outcome::NotNeeded),
            ScheduleKind::TrendPost => {
                // The nudge that may come with it has its own key.
                let done = readiness::reassess(settings, store, person, now, Some(&key)).await?;
                Acted::Done(if done.trend_posted {
                    Outcome::Sent
                } else {
                    Outcome::AlreadyDone
                })
            }
        })
    }
}

/// What acting on a due run came to before its claim is written.
enum Acted {
    /// A check-in's prompt, written with the claim; sent if its dedupe key
    /// was new.
    Prompt(PromptWrite),
    /// Nothing left to write but the claim.
    Done(Outcome),
}

/// What is due of one schedule for one person at a tick.
struct DueOf {
    /// The zone the schedule is read in for them.
    zone: Tz,
    /// What the occurrences are counted from.
    since: DateTime<Utc>,
    due: schedule::Due,
}

/// Answers for the week asked about, by person and week.
type Answers = HashMap<(PersonId, IsoWeek), BTreeMap<QuestionId, OptionKey>>;

/// What someone who has answered nothing has answered.
static NO_ANSWERS: BTreeMap<QuestionId, OptionKey> = BTreeMap::new();

/// What a due run writes, and what is known of it before the write.
struct Planned {
    write: RunWrite,
    /// `None` when nothing fell due: the row only moves on.
    run: Option<PlannedRun>,
}

struct PlannedRun {
    /// The occurrence claimed, in the zone it was read in.
    local: DateTime<Tz>,
    /// Occurrences before it missed while the daemon was down.
    skipped: usize,
    /// What it came to; `None` if a prompt that is sent only if its
    /// dedupe key was new.
    outcome: Option<Outcome>,
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
