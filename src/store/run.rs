//! What scheduled runs write, committed together (ARCHITECTURE.md,
//! "Scheduling"): the check-in each asks and that check-in's prompt, the
//! claim of the run, and its due row moved on. A page of runs is written
//! in four multi-row statements in one savepoint (SQLite) or transaction
//! (PostgreSQL), not four writes per person: a fan-out to everyone costs
//! a few round trips per page, and no crash can leave a run half written.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{CheckinRow, DueRow, NewOutbox, ScheduleRun};
use crate::domain::PersonId;

/// The outbox row of a check-in's prompt, drawn once the check-in's id is
/// known (`None` when an earlier attempt recorded the check-in): the
/// prompt carries it, so where it lands is recorded on the check-in.
/// Shared, and callable more than once, so a batch that failed can be
/// written again run by run.
pub type DrawPrompt = Arc<dyn Fn(Option<i64>) -> NewOutbox + Send + Sync>;

/// A check-in and its prompt.
#[derive(Clone)]
pub struct PromptWrite {
    pub checkin: CheckinRow,
    pub draw: DrawPrompt,
}

impl std::fmt::Debug for PromptWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptWrite")
            .field("checkin", &self.checkin)
            .finish_non_exhaustive()
    }
}

/// A due row moved on from the time (and zone) a tick read, and only
/// from that ([`Store::record_runs`](super::Store::record_runs)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAdvance {
    pub person: PersonId,
    pub row: DueRow,
    pub from: DateTime<Utc>,
}

/// What [`Store::record_runs`](super::Store::record_runs) writes of one
/// run, in this order; any part may be absent (a prompt asked now claims
/// no run; a run that finds nothing due only moves its row on).
#[derive(Debug, Clone, Default)]
pub struct RunWrite {
    pub prompt: Option<PromptWrite>,
    pub claim: Option<ScheduleRun>,
    pub advance: Option<DueAdvance>,
}

/// What [`Store::record_runs`](super::Store::record_runs) did of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunRecorded {
    /// The prompt's outbox row is new (its dedupe key was not queued yet).
    pub queued: bool,
    /// This write claimed the run (no other had).
    pub claimed: bool,
    /// The due row moved on (it still read what the tick read).
    pub advanced: bool,
}
