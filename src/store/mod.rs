//! Durable state behind one trait, [`Store`], so the daemon, the CLI and the
//! tests see the same operations whatever the engine.
//!
//! The store owns people, answers (and the chat event/action ids already
//! seen), check-ins, schedule runs, assessments, nudges and the outbox.
//! Idempotency is always a unique row: callers insert and branch on whether a
//! row was written, never read-then-write. Migrations run when a store opens.
//!
//! Engines: SQLite ([`sqlite`], the embedded default, WAL). PostgreSQL follows
//! behind the same trait.

mod migrations;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Answer, IsoWeek, OptionKey, PersonId, QuestionId};

pub use rows::*;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `storage.url` names an engine this build cannot open.
    #[error("unsupported storage url {0:?}: use sqlite://PATH")]
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

/// Opens the store named by `url` (`sqlite://PATH`, created with its parent
/// directory if missing) and runs pending migrations.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Every durable operation nudged performs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- people -------------------------------------------------------

    /// Inserts the person or updates name and zone (never `enrolled` or
    /// `paused_until`, which people change themselves at run time).
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

    // ---- answers ------------------------------------------------------

    /// Stores one answer, replacing that person's answer to that question in
    /// that week. The person must exist ([`StoreError::NotFound`] otherwise).
    async fn record_answer(
        &self,
        answer: &Answer,
        source: AnswerSource,
        now: DateTime<Utc>,
    ) -> StoreResult<RecordOutcome>;

    /// Imports answers in one transaction: all or nothing. People not yet
    /// known are added, not enrolled. Answers identical to the stored ones are
    /// counted as unchanged, so importing the same file twice changes nothing.
    async fn import_answers(
        &self,
        answers: &[Answer],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportOutcome>;

    /// Answers, of one person or everyone, ordered by person, week, question.
    async fn answers(&self, person: Option<&PersonId>) -> StoreResult<Vec<AnswerRow>>;

    /// One person's answers for one week, by question.
    async fn week_answers(
        &self,
        person: &PersonId,
        week: IsoWeek,
    ) -> StoreResult<Vec<(QuestionId, OptionKey)>>;

    /// Records that an inbound chat event or action (`key`, e.g. Slack's
    /// `event_id`) was handled. Returns true the first time only.
    async fn mark_seen(&self, key: &str, now: DateTime<Utc>) -> StoreResult<bool>;

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

    // ---- outbox -------------------------------------------------------

    /// Adds a message to the outbox. With a `dedupe_key` that is already
    /// present, nothing is added and `None` is returned.
    async fn enqueue(&self, message: &NewOutbox) -> StoreResult<Option<i64>>;

    /// Claims up to `limit` pending rows due at `now` (oldest first), leasing
    /// them until `lease_until` so no other worker takes them meanwhile. A row
    /// whose lease expired (its worker died) is due again.
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

    /// Marks a row permanently failed with its error.
    async fn outbox_failed(&self, id: i64, now: DateTime<Utc>, error: &str) -> StoreResult<()>;

    async fn outbox_row(&self, id: i64) -> StoreResult<Option<OutboxRow>>;

    /// How many rows are in each status.
    async fn outbox_counts(&self) -> StoreResult<OutboxCounts>;

    // ---- privacy --------------------------------------------------------

    /// Removes every row about `person` in every table, in one transaction,
    /// and says how many rows went from each.
    async fn forget(&self, person: &PersonId) -> StoreResult<ForgetReport>;
}
