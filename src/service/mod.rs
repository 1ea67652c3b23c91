//! Use cases: what nudged does, whoever asks (ARCHITECTURE.md, "Layers").
//! The drivers (`http`, `scheduler`, `cli`, `console_input`) call these;
//! these call the store, the pure core and the outbox, never a driver or
//! an adapter.
//!
//! - [`answers`]: a click on a prompt, a text reply (Slack DM, thread,
//!   console) — stored with the prompt's redraw and the reply, together.
//! - [`checkin`]: a check-in or reminder put in the outbox, for the
//!   scheduler, `/pulse now` and `run --ask-now` alike.
//! - [`digest`]: the team digest, counts and medians posted to a channel.
//! - [`pulse`]: the `/pulse` subcommands.
//! - [`readiness`]: re-assessment, the trend post, the readiness nudge,
//!   the App Home; and the background re-assessment worker.
//! - [`nudge`]: answers to the readiness nudge.
//! - [`history`]: what the model and the exports read about a person.
//! - [`demo`]: the demo history of `run --demo`, and its removal.
//!
//! Each returns a typed outcome; failures are an [`Error`], whose
//! [`Error::Store`] a driver answers as "try again" (HTTP 503).

pub mod answers;
pub mod checkin;
pub mod demo;
pub mod digest;
pub mod history;
pub mod nudge;
pub mod pulse;
pub mod readiness;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::domain::IsoWeek;
use crate::store::{PersonRow, Store, StoreError};
use readiness::Assessor;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not read or commit: nothing was done, and the
    /// same request may be tried again.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value nudged builds could not be encoded for storage.
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// An export could not be written.
    #[error("cannot write the export: {0}")]
    Export(String),
}

impl Error {
    pub(crate) fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Self::Encode { what, source }
    }
}

/// A use case's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the use cases that answer people work with: the settings, the
/// store, the re-assessment worker and the instant the driver read from
/// its clock.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub store: &'a dyn Store,
    pub assessor: &'a Assessor,
    pub now: DateTime<Utc>,
}

/// The ISO week `now` falls in, in the person's zone (UTC if unknown).
pub fn current_week(person: Option<&PersonRow>, now: DateTime<Utc>) -> IsoWeek {
    let tz = person.and_then(|p| p.tz).unwrap_or(Tz::UTC);
    IsoWeek::of(now.with_timezone(&tz).date_naive())
}
