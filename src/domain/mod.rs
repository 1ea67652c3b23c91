//! The vocabulary of nudged: who is asked ([`PersonId`]), what is asked
//! ([`QuestionId`], [`OptionKey`], the [`Catalogue`]), when ([`IsoWeek`]),
//! and how a nudge was answered ([`NudgeResponse`]).
//!
//! Pure: no IO, no clock. Every identifier that crosses a boundary (config,
//! CSV, Slack payloads, the store) is parsed into one of these newtypes first,
//! so the rest of the crate never handles a raw, unchecked string.

mod catalogue;
mod ids;
mod response;
mod week;

pub use catalogue::{Catalogue, Question, QuestionOption, default_catalogue};
pub use ids::{IdError, OptionKey, PersonId, QuestionId};
pub use response::NudgeResponse;
pub use week::{IsoWeek, WeekError};

/// One answer: a person's chosen option for one question in one ISO week.
///
/// This is the unit that is stored, imported, exported and assessed. A week
/// holds at most one answer per question; a later answer replaces it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Answer {
    pub person: PersonId,
    pub week: IsoWeek,
    pub question: QuestionId,
    pub option: OptionKey,
}
