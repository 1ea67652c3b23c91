//! The records the store reads and writes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{Answer, IsoWeek, NudgeResponse, PersonId};

/// A person as given by the roster or `/pulse join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    pub id: PersonId,
    pub name: Option<String>,
    /// IANA zone from the roster, or learned from the chat platform.
    /// `None` keeps the zone already stored.
    pub tz: Option<Tz>,
    /// Whether a new row starts enrolled (roster and join: yes; import: no).
    pub enrolled: bool,
}

/// A stored person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: PersonId,
    pub name: Option<String>,
    /// Where they live: the zone their weeks and schedules are counted in.
    /// Kept from the roster at every start, else learned from the chat
    /// platform; `None` if neither gave one (or the stored name is no
    /// zone this build knows, which is logged), and then callers use UTC
    /// or a schedule's fallback.
    pub tz: Option<Tz>,
    /// Receives prompts. False after `/pulse leave`, or for people known only
    /// from imported history.
    pub enrolled: bool,
    /// No prompts before this instant (`/pulse pause`).
    pub paused_until: Option<DateTime<Utc>>,
    /// Since when they want no readiness nudge ("Not for me", `/pulse
    /// nudge off`); `None` while nudges are on.
    pub nudges_off_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerSource {
    Button,
    Text,
    Command,
    Import,
    /// The demo history of `nudged run --demo`, removed again by
    /// `nudged forget --demo`.
    Demo,
}

impl AnswerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Button => "button",
            Self::Text => "text",
            Self::Command => "command",
            Self::Import => "import",
            Self::Demo => "demo",
        }
    }
}

impl fmt::Display for AnswerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AnswerSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "button" => Self::Button,
            "text" => Self::Text,
            "command" => Self::Command,
            "import" => Self::Import,
            "demo" => Self::Demo,
            other => return Err(format!("unknown answer source {other:?}")),
        })
    }
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRow {
    pub answer: Answer,
    pub source: AnswerSource,
    pub recorded_at: DateTime<Utc>,
}

/// What [`Store::record_answer`](super::Store::record_answer) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// First answer to that question that week.
    Inserted,
    /// Replaced a different earlier answer.
    Changed,
    /// Same option as already stored: nothing written.
    Unchanged,
}

/// Everything one inbound chat event or action stores, written by
/// [`Store::record_inbound`](super::Store::record_inbound) in one
/// transaction: either all of it is committed, its seen key included, or
/// none of it is, so a retry of something that failed is done again rather
/// than taken for a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundWrite {
    /// The event's or action's id (Slack's `event:{event_id}`,
    /// `action:{user}:{action_ts}`). If it was recorded before, nothing is
    /// written. `None` for input that has no id (the console).
    pub seen_key: Option<String>,
    /// Answers to store; of several for one (person, week, question), the
    /// last counts.
    pub answers: Vec<Answer>,
    /// Where the answers came from.
    pub source: AnswerSource,
    /// Queued only if an answer was new or changed (a prompt's redraw).
    pub on_change: Option<NewOutbox>,
    /// Queued whatever the answers did (the reply to a message).
    pub always: Vec<NewOutbox>,
}

impl InboundWrite {
    /// A write of `answers` from `source` and nothing else.
    pub fn answers(answers: Vec<Answer>, source: AnswerSource) -> Self {
        Self {
            seen_key: None,
            answers,
            source,
            on_change: None,
            always: Vec::new(),
        }
    }

    /// The answers to store: the last of each (person, week, question), in
    /// the order given. Both engines store exactly these, so they count
    /// alike (PostgreSQL cannot touch one row twice in one statement).
    pub fn distinct_answers(&self) -> Vec<&Answer> {
        let mut distinct: Vec<&Answer> = Vec::with_capacity(self.answers.len());
        for answer in &self.answers {
            let same = |a: &&Answer| {
                a.person == answer.person && a.week == answer.week && a.question == answer.question
            };
            match distinct.iter_mut().find(|a| same(a)) {
                Some(slot) => *slot = answer,
                None => distinct.push(answer),
            }
        }
        distinct
    }
}

/// What [`Store::record_inbound`](super::Store::record_inbound) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// Its seen key was already recorded: nothing was written.
    Duplicate,
    /// Written: `changed` answers were new or different (and `on_change`
    /// was queued if there was one), `unchanged` were as stored.
    Recorded { changed: usize, unchanged: usize },
}

/// What an import did, in answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub inserted: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// People who were not known before.
    pub new_people: u64,
}

/// One claimed occurrence of a schedule for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    pub person: PersonId,
    pub schedule: String,
    /// The occurrence instant; unique with person and schedule.
    pub period: DateTime<Utc>,
}

/// A prompt posted to a person for a week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinRow {
    /// Assigned by the store; ignored on insert.
    pub id: i64,
    pub person: PersonId,
    pub schedule: String,
    pub period: DateTime<Utc>,
    pub week: IsoWeek,
    /// Where the prompt landed, once known.
    pub channel: Option<String>,
    pub message_ts: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A snapshot of the readiness model's verdict for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentRow {
    pub person: PersonId,
    pub week: IsoWeek,
    /// The state's stable name (`building`, `sustained`, …).
    pub state: String,
    pub ewma: Option<f64>,
    /// The whole assessment as JSON, for the trend post and App Home.
    pub detail: String,
    pub assessed_at: DateTime<Utc>,
}

/// A readiness nudge that was posted.
#[derive(Debug, Clone, PartialEq)]
pub struct NudgeRow {
    pub person: PersonId,
    pub week: IsoWeek,
    pub sent_at: DateTime<Utc>,
    /// The reasons it was sent, as JSON.
    pub reasons: String,
    /// The nudge as posted, less its buttons (a rendered message as JSON),
    /// to redraw it with the person's answer. `None` for nudges recorded
    /// before nudges could be answered.
    pub message: Option<String>,
    /// The person's latest answer, once they gave one.
    pub response: Option<NudgeResponse>,
    /// When they gave it.
    pub answered_at: Option<DateTime<Utc>>,
}

/// A click on one of a nudge's answer buttons, to record with
/// [`Store::answer_nudge`](super::Store::answer_nudge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NudgeClick {
    /// The nudge's person: only they answer it.
    pub person: PersonId,
    /// The week of the nudge answered.
    pub week: IsoWeek,
    pub response: NudgeResponse,
    pub at: DateTime<Utc>,
    /// The click's own key (Slack's user and `action_ts`): recorded with
    /// the answer, so the same click delivered twice counts once.
    pub seen_key: Option<String>,
}

/// What [`Store::answer_nudge`](super::Store::answer_nudge) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NudgeClickOutcome {
    /// A new or different answer was stored.
    Recorded,
    /// The same answer was already stored; nothing changed but the
    /// person's nudges setting, which follows the answer.
    Unchanged,
    /// This click was already recorded: nothing changed.
    Duplicate,
    /// No such nudge for that person: nothing changed.
    UnknownNudge,
}

/// A message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    /// Unique if set: a second enqueue with the same key adds nothing.
    pub dedupe_key: Option<String>,
    /// Unique among rows not yet claimed: while one waits, a second enqueue
    /// with the same key adds nothing. Cleared when a worker claims the
    /// row, so a message drawn at send time (a prompt's redraw) is asked
    /// for again only once the waiting one is on its way.
    pub coalesce_key: Option<String>,
    /// The person it is about, so `forget` can remove it.
    pub person: Option<PersonId>,
    /// What to do (`post`, `update`, `publish_home`, …), for the worker.
    pub kind: String,
    /// Where pacing applies: the chat channel or person.
    pub channel: String,
    /// The message, as JSON.
    pub payload: String,
    pub not_before: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The result of one send, as recorded on its outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxResult {
    /// Delivered at `at`; `response` is what the platform answered. A
    /// posted prompt also records where it landed on its check-in.
    Sent {
        id: i64,
        at: DateTime<Utc>,
        response: String,
        checkin: Option<CheckinMessage>,
    },
    /// Refused for now: pending again, due at `next_attempt`.
    Retry {
        id: i64,
        next_attempt: DateTime<Utc>,
        error: String,
    },
    /// Refused for good.
    Failed { id: i64, error: String },
}

/// Where a check-in's prompt landed, so clicks and replies find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinMessage {
    pub checkin: i64,
    pub channel: String,
    pub ts: String,
}

/// Delivery state of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for OutboxStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            other => return Err(format!("unknown outbox status {other:?}")),
        })
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub dedupe_key: Option<String>,
    pub person: Option<PersonId>,
    pub kind: String,
    pub channel: String,
    pub payload: String,
    pub status: OutboxStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    pub not_before: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Rows per outbox status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

/// What `forget` removed, table by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub people: u64,
    pub answers: u64,
    pub checkins: u64,
    pub schedule_runs: u64,
    pub assessments: u64,
    pub nudges: u64,
    pub outbox: u64,
    /// Ids of the person's clicks kept to recognise repeats (they hold the
    /// person's id).
    pub seen_events: u64,
}

/// What [`Store::forget_demo`](super::Store::forget_demo) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DemoForgetReport {
    /// Demo answers (a real answer that replaced one is kept).
    pub answers: u64,
    /// Assessments made while the demo history was stored.
    pub assessments: u64,
    /// Nudges sent while the demo history was stored.
    pub nudges: u64,
    /// Those nudges' messages in the outbox.
    pub outbox: u64,
}

impl ForgetReport {
    pub fn total(&self) -> u64 {
        self.people
            + self.answers
            + self.checkins
            + self.schedule_runs
            + self.assessments
            + self.nudges
            + self.outbox
            + self.seen_events
    }
}
