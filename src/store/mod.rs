//! Durable state behind one trait, [`Store`], so the daemon, the CLI and the
//! tests see the same operations whatever the engine.
//!
//! The store owns people (and the ids of those who opted out by being
//! forgotten), answers (and the chat event/action ids already seen),
//! check-ins, schedule runs, assessments, nudges and the outbox.
//! Idempotency is always a unique row: callers insert and branch on whether a
//! row was written, never read-then-write. Migrations run when a store opens.
//!
//! Engines: SQLite ([`sqlite`], the embedded default, WAL) and PostgreSQL
//! ([`postgres`], for several replicas on one database). Both run the same
//! statements on the same unique keys, so they behave identically: the
//! statements and the decoding of rows are written once (`shared`), and
//! each engine file holds only what differs.

mod bind;
mod due;
mod migrations;
mod run;
#[macro_use]
mod shared;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};

pub use due::{DUE_BATCH_ROWS, DueCursor, DueEntry, DueRow, DueUpdate, PendingDue};
pub use rows::*;
pub use run::{DrawPrompt, DueAdvance, PromptWrite, RunRecorded, RunWrite};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `storage.url` names an engine this build cannot open. Holds the URL
    /// with any password removed ([`redact_url`]).
    #[error(
        "unsupported storage url {0:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
    /// A referenced row does not exist (e.g. an answer for an unknown person).
    #[error("{0}")]
    NotFound(String),
    /// A stored value no longer parses (hand-edited database, or a bug).
    #[error("corrupt row in {table}: {problem}")]
    Corrupt {
        table: &'static str,
        problem: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long opening a connection, or waiting for a free one in the pool, may
/// take before the operation fails, unless `storage.connect_timeout_secs`
/// says otherwise. sqlx's own default; long enough for a database that is
/// restarting, short enough that an unreachable one is reported.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a store connects: the `storage.*` keys besides the URL. `None` leaves
/// the engine's own default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageOptions {
    /// Connections in the pool at most (SQLite 2 readers beside its one writer;
    /// PostgreSQL 10 per replica).
    pub max_connections: Option<u32>,
    /// Limit on opening a connection or waiting for a free one
    /// ([`DEFAULT_CONNECT_TIMEOUT`] if unset).
    pub connect_timeout: Option<Duration>,
}

/// Opens the store named by `url` with each engine's default pool; see
/// [`open_with`].
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    open_with(url, &StorageOptions::default()).await
}

/// Opens the store named by `url` and runs pending migrations:
/// `sqlite://PATH` (created with its parent directory if missing), or
/// `postgres://…` / `postgresql://…` (the database must exist).
pub async fn open_with(url: &str, options: &StorageOptions) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::open_with(url, options).await?,
        ))
    } else if postgres::is_postgres_url(url) {
        Ok(Arc::new(postgres::PgStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// `url` fit to show in an error or a log line: the user and password
/// (`scheme://USER:PASSWORD@host`) and any query string (libpq also takes
/// `?password=…`) are replaced by `[REDACTED]`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?[REDACTED]"),
        None => (url, ""),
    };
    let base = match base.split_once("://") {
        // The last `@`, not the first `/`: a password with an unescaped
        // `/` or `@` in it must not show either.
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => format!("{scheme}://[REDACTED]@{}", &rest[at + 1..]),
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    base + query
}

/// The seen key of a chat action (a button click) by `person` at the
/// platform's `action_ts`: recorded with the answer it brings
/// ([`InboundWrite::seen_key`]) so a replay of the same click is
/// recognised. It names the person, so [`Store::forget`] removes it.
pub fn action_seen_key(person: &PersonId, action_ts: &str) -> String {
    format!("{}{action_ts}", action_seen_prefix(person))
}

/// The start of every [`action_seen_key`] of `person`.
fn action_seen_prefix(person: &PersonId) -> String {
    format!("action:{person}:")
}

/// Every durable operation nudged performs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- people -------------------------------------------------------

    /// Inserts the person or updates name and zone (never `enrolled` or
    /// `paused_until`, which people change themselves at run time). A
    /// person who opted out ([`Store::forget`]) is not inserted: they come
    /// back only through [`Store::clear_opt_out`].
    async fn upsert_person(&self, person: &NewPerson, now: DateTime<Utc>) -> StoreResult<()>;

    async fn person(&self, id: &PersonId) -> StoreResult<Option<PersonRow>>;

    /// All known people, ordered by id.
    async fn people(&self) -> StoreResult<Vec<PersonRow>>;

    /// `/pulse join` and `/pulse leave`. Returns false if the person is unknown.
    async fn set_enrolled(&self, id: &PersonId, enrolled: bool) -> StoreResult<bool>;

    /// `/pulse pause 2w` (`Some(until)`) and `/pulse resume` (`None`).
    /// Returns false if the person is unknown.
    async fn set_paused_until(
        &self,
        id: &PersonId,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;

    /// `/pulse nudge off` (`Some(since)`; a person already off keeps their
    /// first instant) and `/pulse nudge on` (`None`). Returns false if the
    /// person is unknown.
    async fn set_nudges_off(
        &self,
        id: &PersonId,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;

    // ---- answers ------------------------------------------------------

    /// Stores one answer, replacing that person's answer to that question in
    /// that week. The person must exist ([`StoreError::NotFound`] otherwise).
    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome>;

    /// Stores what one inbound event or action brings, in one transaction:
    /// its seen key ([`InboundWrite::seen_key`]), its answers (as
    /// [`record_answer`](Store::record_answer) would), its `on_change` row
    /// if an answer changed and its `always` rows (as
    /// [`enqueue`](Store::enqueue) would). A seen key recorded before makes
    /// it [`InboundOutcome::Duplicate`] and writes nothing; a failure (an
    /// unknown person: [`StoreError::NotFound`]) writes nothing either, seen
    /// key included, so a retry is handled afresh.
    async fn record_inbound(
        &self,
        write: &InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome>;

    /// Imports answers in one transaction: all or nothing. People not yet
    /// known are added, not enrolled. Answers identical to the stored ones are
    /// counted as unchanged, so importing the same file twice changes nothing.
    async fn import_answers(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome>;

    /// Imports answers as [`import_answers`](Store::import_answers) does,
    /// marked as [`AnswerSource::Demo`] so that
    /// [`forget_demo`](Store::forget_demo) finds exactly them.
    async fn import_demo(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome>;

    /// Answers, of one person or everyone, ordered by person, week, question.
    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>>;

    /// The answers of each of `people` for one week, by person then
    /// question: a scheduled fan-out reads a page of people at once.
    /// At most [`DUE_BATCH_ROWS`] people per call.
    async fn answers_of_week(
        &self,
        people: &[PersonId],
        week: IsoWeek,
    ) -> StoreResult<Vec<(PersonId, QuestionId, OptionKey)>>;

    /// One person's answers for one week, by question.
    async fn week_answers(
        &self,
        person: &PersonId,
        week: IsoWeek,
    ) -> StoreResult<Vec<(QuestionId, OptionKey)>> {
        let answers = self
            .answers_of_week(std::slice::from_ref(person), week)
            .await?;
        Ok(answers.into_iter().map(|(_, q, o)| (q, o)).collect())
    }

    /// Records that an inbound chat event or action (`key`, e.g. Slack's
    /// `event_id`) was handled. Returns true the first time only.
    async fn mark_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Removes a key recorded by [`Store::mark_seen`], for a request whose
    /// handling failed after it was marked: a retry is then handled again.
    async fn unmark_seen(&self, key: &str) -> StoreResult<()>;

    // ---- schedules and check-ins ---------------------------------------

    /// Claims one scheduled occurrence for one person. Returns true for the
    /// one caller (in any process) that inserted the row; false if it was
    /// already claimed.
    async fn claim_run(&self, run: &ScheduleRun, now: DateTime<Utc>) -> StoreResult<bool>;

    /// The newest claimed occurrence of `schedule` for `person`.
    async fn last_run(
        &self,
        person: &PersonId,
        schedule: &str,
    ) -> StoreResult<Option<DateTime<Utc>>>;

    /// Writes what scheduled runs (or a prompt asked now) store, all or
    /// nothing, one result per run in order. Of each run, in
    /// [`RunWrite`]'s order: the check-in and its prompt's outbox row, the
    /// claim, the due row moved on, each as [`Store::record_checkin`] then
    /// [`Store::enqueue`] and [`Store::claim_run`] would write it, and the
    /// due row only if it still reads the time and zone the tick read (a
    /// row rewritten meanwhile, by a changed zone recomputed or another
    /// replica, is left alone). A failure fails every run: the caller may write
    /// them again one by one, so one bad run fails alone.
    async fn record_runs(
        &self,
        runs: &[RunWrite],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RunRecorded>>;

    /// Records a prompt about to be posted, so a click or thread reply on
    /// it can be traced back to its person and week. Unique per
    /// (person, schedule, period): returns the new row's id, or `None` if
    /// it was already recorded.
    async fn record_checkin(&self, checkin: &CheckinRow) -> StoreResult<Option<i64>>;

    /// Sets the chat location of a posted prompt once the chat platform has
    /// answered with it.
    async fn set_checkin_message(
        &self,
        id: i64,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<()>;

    /// The check-in posted as message `message_ts` in `channel`.
    async fn checkin_by_message(
        &self,
        channel: &str,
        message_ts: &str,
    ) -> StoreResult<Option<CheckinRow>>;

    // ---- assessments and nudges ----------------------------------------

    async fn save_assessment(&self, row: &AssessmentRow) -> StoreResult<()>;

    /// The most recent assessment of a person.
    async fn latest_assessment(&self, person: &PersonId) -> StoreResult<Option<AssessmentRow>>;

    /// Records a readiness nudge. Unique per (person, week): returns false
    /// if one was already recorded for that week.
    async fn record_nudge(&self, nudge: &NudgeRow) -> StoreResult<bool>;

    /// The person's nudges, oldest first.
    async fn nudges(&self, person: &PersonId) -> StoreResult<Vec<NudgeRow>>;

    /// Records a click on an answer button of `click.person`'s nudge of
    /// `click.week`, all in one transaction: the click's `seen_key` (a
    /// click seen before changes nothing); the response with its time
    /// (the latest click wins); the person's nudges setting, which follows
    /// the answer (off since now for "Not for me", unless already off; on
    /// for any other); and, if the response changed, `on_change` (the
    /// nudge's redraw) as [`enqueue`](Store::enqueue) would add it. A
    /// click on a nudge that does not exist changes nothing.
    async fn answer_nudge(
        &self,
        click: &NudgeClick,
        on_change: Option<&NewOutbox>,
    ) -> StoreResult<NudgeClickOutcome>;

    // ---- outbox -------------------------------------------------------

    /// Adds a message to the outbox. With a `dedupe_key` that is already
    /// present, or a `coalesce_key` of a row not yet claimed, nothing is
    /// added and `None` is returned.
    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>>;

    /// Claims up to `limit` pending rows due at `now` (oldest first), leasing
    /// them until `lease_until` so no other worker takes them meanwhile. A row
    /// whose lease expired (its worker died) is due again. A claimed row's
    /// `coalesce_key` is cleared.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>>;

    /// Marks a row delivered, storing what the platform answered (for a
    /// posted prompt, where it landed).
    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>, response: &str) -> StoreResult<()>;

    /// Puts a row back as pending, due again at `next_attempt`, counting the
    /// attempt and remembering the error.
    async fn outbox_retry(
        &self,
        id: i64,
        next_attempt: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;

    /// Puts claimed rows back as pending, each due again at its instant,
    /// without counting an attempt: the row was held back by pacing, not
    /// refused. Rows no longer pending are left as they are.
    async fn outbox_defer(&self, deferrals: &[(i64, DateTime<Utc>)]) -> StoreResult<()>;

    /// Records the results of several sends in one transaction, as
    /// [`Store::outbox_sent`] (and [`Store::set_checkin_message`]),
    /// [`Store::outbox_retry`] and [`Store::outbox_failed`] would one by
    /// one: a worker with sends in flight records what finished together
    /// in one round trip rather than a commit per row.
    async fn outbox_record(&self, results: &[OutboxResult]) -> StoreResult<()>;

    /// Marks a row permanently failed with its error.
    async fn outbox_failed(&self, id: i64, now: DateTime<Utc>, error: &str) -> StoreResult<()>;

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>>;

    /// How many rows are in each status.
    async fn outbox_counts(&self) -> StoreResult<OutboxCounts>;

    // ---- the shared send rate -------------------------------------------

    /// Whether several processes may deliver from this store at once
    /// (PostgreSQL), so the workspace's send rate is shared through
    /// [`Store::take_send_slots`]; if not (SQLite: one process), the
    /// outbox paces in memory (ARCHITECTURE.md, "Outbox").
    fn shares_send_rate(&self) -> bool;

    /// Takes `count` consecutive send slots of the workspace's rate, `step`
    /// apart, for this process alone, and returns the first: the later of
    /// `now` and the first slot not handed out yet, which moves on past the
    /// last one taken, in one statement. Slots are handed out once, whoever
    /// asks; a slot its taker never uses is lost, so a process that dies
    /// holds back nobody.
    async fn take_send_slots(
        &self,
        now: DateTime<Utc>,
        count: u32,
        step: Duration,
    ) -> StoreResult<DateTime<Utc>>;

    /// Hands out no send slot before `until`: the platform asked the
    /// whole workspace to wait (a 429's `Retry-After`).
    async fn pause_sends(&self, until: DateTime<Utc>) -> StoreResult<()>;

    /// Reserves channels' paces for sends planned at given instants: each
    /// `(key, at)` asks that a message go into channel `key` at `at`. A
    /// key is granted when its next free instant is not after the first
    /// of its instants here, and is then busy until `spacing` after the
    /// last; a key that is busy is left as it is. In one statement on
    /// PostgreSQL, so replicas reserving at once never both get a key.
    /// Returns the keys refused, each with the instant it is free (as far
    /// as was seen; another replica may have moved it on meanwhile).
    async fn reserve_channels(
        &self,
        planned: &[(String, DateTime<Utc>)],
        spacing: Duration,
    ) -> StoreResult<Vec<(String, DateTime<Utc>)>>;

    /// Lets no message go into channel `key` before `until`: the platform
    /// asked that channel to wait (a 429's `Retry-After`).
    async fn pause_channel(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()>;

    // ---- privacy --------------------------------------------------------

    /// Removes every row about `person` in every table, in one transaction,
    /// and says how many rows went from each. Their id alone is kept as an
    /// opt-out, so [`Store::upsert_person`] (the roster at start) does not
    /// bring them back.
    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport>;

    /// Removes `person`'s demo answers (source [`AnswerSource::Demo`]) and
    /// what they caused: the assessments and nudges recorded since the
    /// first of them was stored, and those nudges' outbox messages, in one
    /// transaction. Answers of any other source stay, a real answer that
    /// replaced a demo one included.
    async fn forget_demo(&self, person: &PersonId) -> StoreResult<DemoForgetReport>;

    /// Everyone who opted out by being forgotten, ordered by id.
    async fn opted_out(&self) -> StoreResult<Vec<PersonId>>;

    /// Lifts `person`'s opt-out (`/pulse join`). Returns false if there was
    /// none.
    async fn clear_opt_out(&self, person: &PersonId) -> StoreResult<bool>;

    // ---- health and retention -------------------------------------------

    /// Proves that the store takes a write: upserts the one
    /// `readiness_probe` row with `now`, by the path every write takes.
    async fn probe_write(&self, now: DateTime<Utc>) -> StoreResult<()>;

    /// When the oldest message still waiting in the outbox (pending, in
    /// flight or not) was queued; `None` when nothing waits.
    async fn oldest_pending_outbox(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Deletes up to `limit` of the inbound event and action ids recorded
    /// before `before`, oldest first; returns how many went.
    async fn prune_seen(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` delivered or failed outbox rows queued before
    /// `before`, oldest first; returns how many went. Rows still pending
    /// (waiting or in flight) are never deleted.
    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` assessments made before `before` that are not
    /// their person's latest; returns how many went. Each person's latest
    /// assessment ([`Store::latest_assessment`]) is always kept.
    async fn prune_assessments(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` channel paces ([`Store::reserve_channels`])
    /// free since before `before`; returns how many went. A channel with
    /// no pace stored is free, so this changes nothing but the size.
    async fn prune_channel_pace(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64>;

    // ---- due index (schedule_due; see `due.rs`) --------------------------

    /// [`Store::upsert_person`] for many people at once, in a few
    /// multi-row statements ([`DUE_BATCH_ROWS`] each) rather than one per
    /// person: the roster at start. A person whose name and zone are
    /// unchanged is not written at all. Of repeated ids the last counts.
    async fn upsert_people(&self, people: &[NewPerson], now: DateTime<Utc>) -> StoreResult<()>;

    /// Records that the due index is computed for the schedule set
    /// `fingerprint` (names `schedules`). If the stored fingerprint differs
    /// (or none is stored), in one transaction: deletes the due rows of
    /// schedules not in `schedules`, marks every enrolled person for
    /// recomputation and stores `fingerprint`; returns true. Returns false
    /// and changes nothing if it is the same.
    async fn sync_schedule_set(&self, fingerprint: &str, schedules: &[String])
    -> StoreResult<bool>;

    /// Up to `limit` people marked for recomputation whose id is after
    /// `after`, ordered by id, with their mark and last claimed runs.
    async fn pending_due(
        &self,
        after: Option<&PersonId>,
        limit: u32,
    ) -> StoreResult<Vec<PendingDue>>;

    /// Applies recomputed due rows, in one transaction: for each update
    /// whose person still carries `stamp`, replaces all their due rows by
    /// `rows` and, if `settle`, clears the mark. Updates whose mark changed
    /// meanwhile (or went) are skipped. Returns how many were applied.
    async fn set_due(&self, updates: &[DueUpdate]) -> StoreResult<usize>;

    /// Up to `limit` due rows with a due time at or before `now`, of
    /// enrolled people, ordered by (due time, person, schedule) and
    /// starting after `after`; each with its person. Read by index: the
    /// cost follows what is due, not the roster.
    async fn due_by(
        &self,
        now: DateTime<Utc>,
        after: Option<&DueCursor>,
        limit: u32,
    ) -> StoreResult<Vec<DueEntry>>;

    /// One person's due rows, by schedule (diagnostics, tests).
    async fn due_rows(&self, person: &PersonId) -> StoreResult<Vec<DueRow>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_engine_host_and_database_only() {
        for (url, shown) in [
            (
                "postgres://nudged:hunter2@db.internal:5432/nudged",
                "postgres://[REDACTED]@db.internal:5432/nudged",
            ),
            (
                "postgresql://db/nudged?user=nudged&password=hunter2",
                "postgresql://db/nudged?[REDACTED]",
            ),
            ("mysql://root:p@ss@db/x", "mysql://[REDACTED]@db/x"),
            ("sqlite://data/nudged.db", "sqlite://data/nudged.db"),
            ("postgres://u:pa/ss@db/x", "postgres://[REDACTED]@db/x"),
            ("nonsense", "nonsense"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }
}
