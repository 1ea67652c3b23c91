//! The records of the due index (ARCHITECTURE.md, "Scheduling"): each (person, schedule)'s next
//! due time, kept in `schedule_due` so a scheduler tick reads only what is
//! due by now, and the people whose due times must be recomputed.
//!
//! The database marks a person for recomputation itself (triggers on
//! `people`, migration 0007) whenever they are added or their zone,
//! enrolment or pause changes; the dispatcher recomputes marked people at
//! its next tick and moves a row on when it claims that row's run. A due
//! time that is too early costs one look at the person and is corrected
//! then; one that is too late would lose a run, so every write that could
//! race a newer change is conditional (see [`DueUpdate::stamp`] and
//! [`Store::record_runs`](super::Store::record_runs)).

use chrono::{DateTime, Utc};

use super::PersonRow;
use crate::domain::PersonId;

/// Rows per multi-row statement of the due index and of
/// [`Store::upsert_people`](super::Store::upsert_people): at most 6 values
/// each, far below either engine's limit on bound values (SQLite 32 766,
/// PostgreSQL 65 535), and few enough round trips that 100 000 rows take
/// a hundred statements.
pub const DUE_BATCH_ROWS: usize = 1000;

/// A person whose due rows must be recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDue {
    pub person: PersonRow,
    /// The mark this recomputation answers: settling it
    /// ([`Store::set_due`](super::Store::set_due)) succeeds only while no
    /// newer change has marked the person again.
    pub stamp: i64,
    /// The newest claimed run of each schedule the person has one of.
    pub last_runs: Vec<(String, DateTime<Utc>)>,
}

/// One schedule's next due time for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    pub schedule: String,
    /// The IANA zone the schedule's cron was read in.
    pub zone: String,
    /// The first occurrence after the last claimed run; `None` if the
    /// schedule never fires again.
    pub due_at: Option<DateTime<Utc>>,
}

/// The recomputed due rows of one marked person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueUpdate {
    pub person: PersonId,
    /// The mark read with the person ([`PendingDue::stamp`]). If the person
    /// was marked again since, the update is stale and nothing is written.
    pub stamp: i64,
    /// Every due row the person should have: their others are deleted.
    pub rows: Vec<DueRow>,
    /// Whether to clear the mark. `false` keeps the person marked, so they
    /// are recomputed again at the next tick (their zone is still to be
    /// read from their chat profile).
    pub settle: bool,
}

/// A (person, schedule) due by some instant, read with the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub person: PersonRow,
    pub schedule: String,
    pub zone: String,
    pub due_at: DateTime<Utc>,
    /// The newest run of this schedule claimed for this person when the
    /// row was read; `None` before the first.
    pub last_run: Option<DateTime<Utc>>,
}

/// Where a page of [`Store::due_by`](super::Store::due_by) resumes: after
/// this (due time, person, schedule), the order rows are read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub due_at: DateTime<Utc>,
    pub person: PersonId,
    pub schedule: String,
}

impl DueEntry {
    /// The cursor that resumes after this entry.
    pub fn cursor(&self) -> DueCursor {
        DueCursor {
            due_at: self.due_at,
            person: self.person.id.clone(),
            schedule: self.schedule.clone(),
        }
    }
}

/// `people` without repeated ids, the last of each kept in place of the
/// first: one statement may not write a row twice (PostgreSQL refuses it).
pub(super) fn distinct_people(people: &[super::NewPerson]) -> Vec<&super::NewPerson> {
    let mut last = std::collections::HashMap::new();
    for (i, person) in people.iter().enumerate() {
        last.insert(&person.id, i);
    }
    people
        .iter()
        .enumerate()
        .filter(|(i, p)| last[&p.id] == *i)
        .map(|(_, p)| p)
        .collect()
}

/// Which of `updates` still carry their mark, by the marks stored now.
pub(super) fn current<'u>(
    updates: &'u [DueUpdate],
    marks: &std::collections::HashMap<String, i64>,
) -> Vec<&'u DueUpdate> {
    updates
        .iter()
        .filter(|u| marks.get(u.person.as_str()) == Some(&u.stamp))
        .collect()
}
