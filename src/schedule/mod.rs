//! Schedules: when nudged asks, reminds and posts trends (ARCHITECTURE.md, "Scheduling").
//!
//! Pure: nothing here reads the clock, and the only IO is reading the
//! schedule files in [`load_dir`]. The daemon's dispatcher owns the rest.
//!
//! # Layout
//!
//! - this file: the validated [`Schedule`] and the small types it is made of.
//! - `file.rs`: the schedule file format: a strict raw struct read from TOML,
//!   validated into a [`Schedule`], with every problem a [`ScheduleError`]
//!   that names the file and the key.
//! - `error.rs`: [`ScheduleError`], which `config` maps to its own error.
//! - `due.rs`: when a schedule is due: [`occurrences`], [`due`] and
//!   [`next_runs`], computed with croner in a person's wall-clock zone and
//!   returned as instants, so a DST change neither skips nor doubles a run.

mod due;
mod error;
mod file;

use chrono_tz::Tz;

use crate::domain::{PersonId, QuestionId};

pub use due::{Due, SKIP_COUNT_LIMIT, due, next_runs, occurrences};
pub use error::ScheduleError;
pub use file::{load_dir, parse};

/// One validated schedule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Unique across the schedule files; claimed runs are stored under it,
    /// so renaming a schedule makes it start afresh.
    pub name: String,
    /// The parsed `cron` expression, evaluated in wall-clock time of a zone.
    pub cron: croner::Cron,
    /// `cron` as written, for `nudged check` and log lines.
    pub cron_text: String,
    /// Whose wall clock `cron` is read in.
    pub zone: ScheduleZone,
    pub kind: ScheduleKind,
    /// The questions asked, in file order; each exists in the catalogue.
    /// Never empty for [`ScheduleKind::Checkin`] and
    /// [`ScheduleKind::Reminder`]; may be empty for a trend post.
    pub questions: Vec<QuestionId>,
    pub audience: Audience,
    /// Where and how a [`ScheduleKind::TeamDigest`] posts; `Some` exactly
    /// for that kind.
    pub digest: Option<Digest>,
}

/// The settings of a team digest (README, "Schedules").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The chat channel the digest is posted to (`C…` on Slack).
    pub channel: String,
    /// Fewer people than this answered: the digest says only that the group
    /// is too small, so no count or median can point at one person.
    pub min_group: u32,
}

/// `min_group` when the file sets none.
pub const DEFAULT_MIN_GROUP: u32 = 5;

/// The smallest `min_group` accepted: with two, each of them could read
/// the other's answer off the median.
pub const MIN_GROUP_FLOOR: u32 = 3;

/// The time zone a schedule's `cron` is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleZone {
    /// `timezone = "person"`: each person's own zone, so "Thursday 16:00" is
    /// 16:00 where each person is. `fallback` is used for people whose zone
    /// is unknown (no `tz` in the roster, none from the chat profile).
    Person { fallback: Tz },
    /// One IANA zone for everybody.
    Fixed(Tz),
}

/// What a schedule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleKind {
    /// Asks the schedule's questions for the current week.
    Checkin,
    /// Asks again, but only people who have not answered that week.
    Reminder,
    /// Re-assesses each person and posts their weekly trend.
    TrendPost,
    /// Posts one team digest to a channel: counts and medians only.
    TeamDigest,
}

impl ScheduleKind {
    /// Every kind, in the order the file format documents them.
    pub const ALL: [ScheduleKind; 4] = [
        Self::Checkin,
        Self::Reminder,
        Self::TrendPost,
        Self::TeamDigest,
    ];

    /// The name used in schedule files and logs: `checkin`, `reminder`,
    /// `trend-post`, `team-digest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checkin => "checkin",
            Self::Reminder => "reminder",
            Self::TrendPost => "trend-post",
            Self::TeamDigest => "team-digest",
        }
    }

    /// The kind named `name` in a schedule file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the kind is meaningless without questions to ask.
    pub fn needs_questions(self) -> bool {
        matches!(self, Self::Checkin | Self::Reminder)
    }

    /// Whether the kind runs once per person (kept in the due index) rather
    /// than once for the whole team.
    pub fn is_per_person(self) -> bool {
        self != Self::TeamDigest
    }
}

impl std::fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a schedule addresses (for a team digest: whom it counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Everyone enrolled, including people who `/pulse join` later.
    All,
    /// Only these people (non-empty, no repeats); others are never asked.
    People(Vec<PersonId>),
}

impl Schedule {
    /// The zone whose wall clock decides when this schedule is due for a
    /// person whose own zone is `person_tz` (from the roster or the chat
    /// profile, if known).
    pub fn zone_for(&self, person_tz: Option<Tz>) -> Tz {
        match self.zone {
            ScheduleZone::Person { fallback } => person_tz.unwrap_or(fallback),
            ScheduleZone::Fixed(tz) => tz,
        }
    }

    /// Whether `person` is in this schedule's audience.
    pub fn includes(&self, person: &PersonId) -> bool {
        match &self.audience {
            Audience::All => true,
            Audience::People(people) => people.contains(person),
        }
    }
}
