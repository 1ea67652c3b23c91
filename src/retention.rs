//! Bounded growth: what is no longer needed is deleted in the background,
//! so the store follows the roster's size, not the daemon's age.
//!
//! [`prune`] is the whole of it, a plain function of the time; the pruning
//! worker ([`run`]) calls it at start and then every [`PRUNE_EVERY`]:
//!
//! - inbound event and action ids ([`Store::mark_seen`]) after
//!   [`SEEN_RETENTION`]: they only catch Slack's retries and double
//!   deliveries, which come within minutes, and a request older than five
//!   minutes fails its signature check anyway;
//! - delivered and failed outbox rows after `storage.retention_days`;
//! - assessments after `storage.retention_days`, except each person's
//!   latest, which is always kept.
//! - channel paces shared by replicas (`channel_pace`) free for more than
//!   [`CHANNEL_PACE_RETENTION`]: a channel with none stored is free, so
//!   they are only kept from growing with every channel ever written to.
//!
//! Never pending or in-flight outbox rows, nudges, answers or check-ins:
//! those are the history and the promises the daemon keeps. Rows go in
//! batches of [`PRUNE_BATCH`], each its own short statement, so a first
//! prune of a large store never holds the write lock (SQLite) or many row
//! locks (PostgreSQL) for long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::health::Heartbeat;
use crate::store::{Store, StoreResult};

/// How long an inbound event or action id is kept: a day, far past the
/// hour over which Slack retries an event.
pub const SEEN_RETENTION: chrono::Duration = chrono::Duration::days(1);

/// How long past its next free instant a channel's shared pace is kept.
/// Any time would do (it is free either way); an hour keeps the rows of
/// channels written to every few minutes from being deleted and written
/// again.
pub const CHANNEL_PACE_RETENTION: chrono::Duration = chrono::Duration::hours(1);

/// Rows deleted per statement: small enough that other writes wait at
/// most a few milliseconds behind one, large enough that a year of rows
/// goes in a few hundred statements.
pub const PRUNE_BATCH: u32 = 500;

/// How often the pruning worker runs: rows become prunable by the day, so
/// hourly keeps each run small without doing work for nothing.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// What one [`prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    pub seen_events: u64,
    pub outbox: u64,
    pub assessments: u64,
    pub channel_pace: u64,
}

impl PruneOutcome {
    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Deletes what is no longer needed at `now` (see the module doc):
/// seen ids older than [`SEEN_RETENTION`], and finished outbox rows and
/// superseded assessments older than `retention`, channel paces free for
/// longer than [`CHANNEL_PACE_RETENTION`]. Batch after batch until none is
/// left.
pub async fn prune(
    store: &dyn Store,
    retention: chrono::Duration,
    now: DateTime<Utc>,
) -> StoreResult<PruneOutcome> {
    let before = |age| {
        now.checked_sub_signed(age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let outcome = PruneOutcome {
        seen_events: drain("seen_events", || {
            store.prune_seen(before(SEEN_RETENTION), PRUNE_BATCH)
        })
        .await?,
        outbox: drain("outbox", || {
            store.prune_outbox(before(retention), PRUNE_BATCH)
        })
        .await?,
        assessments: drain("assessments", || {
            store.prune_assessments(before(retention), PRUNE_BATCH)
        })
        .await?,
        channel_pace: drain("channel_pace", || {
            store.prune_channel_pace(before(CHANNEL_PACE_RETENTION), PRUNE_BATCH)
        })
        .await?,
    };
    Ok(outcome)
}

/// Runs `batch` until one deletes less than a full batch; returns the
/// rows deleted in all.
async fn drain<F, Fut>(table: &'static str, batch: F) -> StoreResult<u64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        metrics::counter!("nudged_pruned_rows_total", "table" => table).increment(deleted);
        if deleted < u64::from(PRUNE_BATCH) {
            return Ok(total);
        }
        // Let the requests being answered have the store between batches.
        tokio::task::yield_now().await;
    }
}

/// The pruning worker: prunes at start and every [`PRUNE_EVERY`] until
/// `stop`. A failed prune (the store unreachable, say) is logged and tried
/// again at the next round; the rows wait, nothing is lost.
pub async fn run(
    store: std::sync::Arc<dyn Store>,
    retention: chrono::Duration,
    clock: std::sync::Arc<dyn Clock>,
    stop: CancellationToken,
    beat: Heartbeat,
) -> anyhow::Result<()> {
    loop {
        beat.beat();
        let pruned = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            pruned = prune(store.as_ref(), retention, clock.now()) => pruned,
        };
        match pruned {
            Ok(outcome) if !outcome.is_empty() => tracing::info!(?outcome, "pruned old rows"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed; trying again in an hour"),
        }
        beat.beat();
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}
