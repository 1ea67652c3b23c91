//! The durable outbox: every message nudged sends is a row first.
//!
//! [`Queued`] is what a row holds: a [`chat::Outgoing`](crate::chat::Outgoing)
//! to send as it is, or a redraw of a posted prompt or nudge
//! ([`refresh_prompt`], [`refresh_nudge`]) that the worker draws from the
//! store when it sends; [`enqueue`] writes it; [`Worker::deliver_due`] claims due rows (with a lease, so a
//! crashed worker's rows are taken over), paces them per channel and across
//! the workspace ([`pacing`]), hands up to `delivery.concurrency` at once to
//! the [`ChatApi`](crate::chat::ChatApi) and records each result: sent, retried later
//! (exponential back-off with jitter, or Slack's `Retry-After`, which
//! pauses the channel or the workspace), or failed for good. A crash
//! between deciding to send and sending loses nothing; a message is sent
//! twice only if the process died between the send and its record, so at
//! most the sends in flight.

pub mod pacing;
mod queued;
pub mod redraw;
pub mod slots;
mod worker;

use std::time::Duration;

pub use queued::{Op, PromptRow, Queued, Redraw, enqueue, refresh_nudge, refresh_prompt, row};
pub use worker::{DeliveryOutcome, Worker, backoff, stall_limit};

/// How often the worker looks for new rows when nothing is due sooner.
pub const POLL: Duration = Duration::from_secs(1);
/// Attempts before a message that keeps failing transiently is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// First retry delay; doubles per attempt, with jitter, up to [`MAX_DELAY`].
pub const MIN_DELAY: Duration = Duration::from_secs(2);
/// Longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
