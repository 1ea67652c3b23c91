//! Group commit: every write of a [`SqliteStore`](super::SqliteStore) goes
//! through one task that owns the store's one write connection.
//!
//! SQLite lets one connection write at a time. When several pooled
//! connections write at once, all but one wait for the file lock in SQLite's
//! busy handler, which sleeps in steps of 1, 2, 5, 10… ms instead of waking
//! when the lock is free: under load those sleeps are the tail latency. And
//! each write committed on its own appends its own copy of every page it
//! touched to the WAL.
//!
//! So the task takes every write queued so far (up to [`MAX_BATCH`]),
//! applies them in arrival order in one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller. A caller still hears
//! that its write succeeded only once it is committed; a commit that fails
//! fails every write in it, and each caller gets an error.
//!
//! One write failing on its own does not fail the others when SQLite undid
//! just that statement and kept the transaction (a constraint: an answer for
//! an unknown person). Any other error (I/O, a full disk, a trigger's
//! `RAISE`) may have ended the transaction, so the whole batch is rolled
//! back and every write in it fails. A write of several statements runs in
//! a savepoint ([`savepoint`]) so it never half-commits.
//!
//! Inbound writes (clicks, events) queued together are applied together:
//! each round of them ([`rounds`]) is one script ([`batch`]), one round trip
//! to the connection's thread rather than one per write. If SQLite refuses
//! a round for one write's sake (an answer for an unknown person), its
//! writes are applied again one by one, so only that one fails.
//!
//! Durability is the store's: WAL with `synchronous = NORMAL`, see
//! [`SqliteStore::open`](super::SqliteStore::open).

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use sqlx::error::ErrorKind;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use super::{batch, inbound};
use crate::store::shared::rounds::{Write as Round, rounds};
use crate::store::shared::{not_committed, queue_and_wait};
use crate::store::{InboundOutcome, InboundWrite, StoreError, StoreResult};

/// A boxed, sendable future borrowing for `'a`.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write: what runs on the write connection, inside the batch's
/// transaction, and returns a `T`.
pub(super) trait Apply<T>:
    for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}

impl<T, F> Apply<T> for F where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}

/// Most writes applied in one transaction. Batches are whatever is queued
/// when the previous commit returns, so they rarely reach this; it bounds
/// how long one commit keeps the callers in it waiting.
const MAX_BATCH: usize = 256;

/// Writes queued before callers wait to enqueue theirs (back-pressure, so
/// a stalled disk cannot grow the queue without bound).
const QUEUE: usize = 1024;

/// The sending side of the write queue; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Queued>,
}

impl Writer {
    /// Starts the task that owns `conn` and applies queued writes, waking
    /// `checkpointer` after each commit. It stops once every [`Writer`]
    /// handle is dropped and the queue is empty, then closes the connection.
    pub(super) fn start(conn: SqliteConnection, checkpointer: Checkpointer) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, queue, checkpointer));
        Self { jobs }
    }

    /// Queues `apply` and returns its result once the transaction it ran in
    /// is committed (or failed). `apply` runs on the write connection inside
    /// that transaction; it must not begin or end transactions itself (see
    /// [`savepoint`] for several statements).
    ///
    /// Dropping the returned future does not withdraw a queued write: it is
    /// applied all the same, like a statement already sent to a database.
    pub(super) async fn write<T: Send + 'static>(&self, apply: impl Apply<T>) -> StoreResult<T> {
        self.queue(apply).await
    }

    /// Queues an inbound write (a click, an event) and returns its outcome
    /// once committed, as [`Writer::write`]. Alone it is applied as
    /// [`inbound::record`]; with others queued beside it, in rounds of one
    /// script each ([`batch`]).
    pub(super) async fn record(
        &self,
        write: InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
        queue_and_wait(&self.jobs, |done| {
            Queued::Inbound(Box::new(Inbound { write, now, done }))
        })
        .await
    }

    async fn queue<T: Send + 'static>(&self, apply: impl Apply<T>) -> StoreResult<T> {
        queue_and_wait(&self.jobs, |done| {
            Queued::Job(Box::new(Write { apply, done }))
        })
        .await
    }
}

/// What the queue holds: any write, or an inbound one, which is applied
/// together with the inbound writes queued next to it.
enum Queued {
    Job(Box<dyn Job>),
    Inbound(Box<Inbound>),
}

impl Queued {
    fn abandon(self, error: &StoreError) {
        match self {
            Queued::Job(job) => job.abandon(error),
            Queued::Inbound(inbound) => {
                let _ = inbound.done.send(Err(not_committed(error)));
            }
        }
    }
}

/// A queued [`Writer::record`].
struct Inbound {
    write: InboundWrite,
    now: DateTime<Utc>,
    done: oneshot::Sender<StoreResult<InboundOutcome>>,
}

/// Starts a write of several statements that must stay in the batch's
/// transaction all together or not at all; end it with [`end_savepoint`].
pub(super) async fn savepoint(conn: &mut SqliteConnection) -> StoreResult<()> {
    execute(conn, "SAVEPOINT job").await
}

/// Ends what [`savepoint`] started: keeps its statements if `outcome` is a
/// success, else undoes them. Returns `outcome`.
pub(super) async fn end_savepoint<T>(
    conn: &mut SqliteConnection,
    outcome: StoreResult<T>,
) -> StoreResult<T> {
    let end = match &outcome {
        Ok(_) => execute(conn, "RELEASE job").await,
        Err(_) => match execute(conn, "ROLLBACK TO job").await {
            Ok(()) => execute(conn, "RELEASE job").await,
            Err(e) => Err(e),
        },
    };
    // Failing to end the savepoint leaves the transaction in doubt: report
    // that (it fails the batch) rather than the body's own outcome.
    end?;
    outcome
}

async fn execute(conn: &mut SqliteConnection, sql: &'static str) -> StoreResult<()> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

/// The task: one batch at a time, until every handle is gone.
async fn run(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<Queued>,
    checkpointer: Checkpointer,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&mut conn, &mut batch).await;
        checkpointer.committed();
    }
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the SQLite write connection failed");
    }
}

/// Applies and commits `batch` (emptying it), then answers every caller.
async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<Queued>) {
    if let [Queued::Inbound(_)] = batch.as_slice()
        && let Some(Queued::Inbound(inbound)) = batch.pop()
    {
        // Alone: one script in a savepoint, its first statement a write,
        // all or nothing without a transaction of the batch's, so one
        // round trip to the connection's thread rather than three
        // (`BEGIN`, the write, `COMMIT`).
        let outcome = inbound::record(conn, &inbound.write, inbound.now).await;
        let done = Box::new(Applied {
            outcome,
            done: inbound.done,
        });
        if done.breaks_batch() {
            // It may have left its savepoint's transaction open.
            rollback(conn).await;
        }
        return done.finish(None);
    }
    commit_transaction(conn, batch).await;
}

/// Applies `batch` (emptying it) in one transaction and commits it, then
/// answers every caller.
async fn commit_transaction(conn: &mut SqliteConnection, batch: &mut Vec<Queued>) {
    if let Err(e) = execute(conn, "BEGIN IMMEDIATE").await {
        // A transaction left open by an earlier failure would make every
        // later BEGIN fail too: make sure none is.
        rollback(conn).await;
        for job in batch.drain(..) {
            job.abandon(&e);
        }
        return;
    }
    let mut applied: Vec<Box<dyn Done>> = Vec::with_capacity(batch.len());
    let mut broken = Vec::new();
    let mut jobs = batch.drain(..).peekable();
    while let Some(job) = jobs.next() {
        let done = match job {
            Queued::Job(job) => vec![job.apply(conn).await],
            Queued::Inbound(first) => {
                let mut together = vec![*first];
                while let Some(Queued::Inbound(_)) = jobs.peek() {
                    if let Some(Queued::Inbound(next)) = jobs.next() {
                        together.push(*next);
                    }
                }
                apply_inbound(conn, together).await
            }
        };
        let (breaking, fine): (Vec<_>, Vec<_>) = done.into_iter().partition(|d| d.breaks_batch());
        applied.extend(fine);
        if !breaking.is_empty() {
            broken = breaking;
            break;
        }
    }
    let rolled_back = !broken.is_empty();
    let failure = if rolled_back {
        rollback(conn).await;
        for culprit in broken {
            culprit.finish(None);
        }
        Some(StoreError::Database(sqlx::Error::Io(
            std::io::Error::other("rolled back with a write that failed in the same transaction"),
        )))
    } else {
        execute(conn, "COMMIT").await.err().inspect(|e| {
            tracing::error!(error = %e, "SQLite commit failed; the batch is rolled back");
        })
    };
    if let Some(e) = &failure {
        if !rolled_back {
            rollback(conn).await;
        }
        for job in jobs {
            job.abandon(e);
        }
    }
    for done in applied {
        done.finish(failure.as_ref());
    }
}

/// Applies inbound writes queued together, in the batch's transaction: a
/// round of one write alone ([`inbound::record`]), a larger one as one
/// script ([`batch::apply`]) in a savepoint, and if SQLite refuses that for
/// one write's sake, each of its writes alone. Stops at an error that may
/// have ended the transaction, which every write not yet applied shares.
async fn apply_inbound(conn: &mut SqliteConnection, together: Vec<Inbound>) -> Vec<Box<dyn Done>> {
    let writes: Vec<Round<'_>> = together.iter().map(|i| (&i.write, i.now)).collect();
    let mut outcomes: Vec<Option<StoreResult<InboundOutcome>>> = std::iter::repeat_with(|| None)
        .take(together.len())
        .collect();
    let mut broken = false;
    for places in rounds(&writes) {
        let mut round = Vec::with_capacity(places.len());
        if let [place] = places.as_slice() {
            let (write, now) = writes[*place];
            round.push((*place, inbound::record(conn, write, now).await));
        } else {
            match batch::apply(conn, &writes, &places).await {
                Ok(done) => round.extend(places.iter().copied().zip(done.into_iter().map(Ok))),
                Err(e) => match end_savepoint::<()>(conn, Err(StoreError::Database(e))).await {
                    Err(e) if breaks_batch(&e) => {
                        round.extend(places.iter().map(|place| (*place, Err(not_committed(&e)))));
                    }
                    _ => {
                        for place in &places {
                            let (write, now) = writes[*place];
                            round.push((*place, inbound::record(conn, write, now).await));
                        }
                    }
                },
            }
        }
        for (place, outcome) in round {
            broken |= outcome.as_ref().err().is_some_and(breaks_batch);
            outcomes[place] = Some(outcome);
        }
        if broken {
            break;
        }
    }
    drop(writes);
    together
        .into_iter()
        .zip(outcomes)
        .map(|(inbound, outcome)| {
            let outcome = outcome
                .unwrap_or_else(|| Err(not_committed(&"an earlier write of its batch failed")));
            Box::new(Applied {
                outcome,
                done: inbound.done,
            }) as Box<dyn Done>
        })
        .collect()
}

/// Ends any open transaction. An error means there was none (SQLite may
/// already have rolled back after an I/O error): nothing to do.
async fn rollback(conn: &mut SqliteConnection) {
    let _ = execute(conn, "ROLLBACK").await;
}

/// Whether `e` may have ended the transaction. SQLite undoes only the
/// failing statement for a constraint violation, and errors found while
/// reading a row back are ours; anything else is assumed to have ended it.
fn breaks_batch(e: &StoreError) -> bool {
    match e {
        StoreError::NotFound(_) | StoreError::Corrupt { .. } => false,
        StoreError::Database(sqlx::Error::Database(db)) => !matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        StoreError::Database(
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::Decode(_),
        ) => false,
        _ => true,
    }
}

/// A queued write, with its result type erased so one queue holds them all.
trait Job: Send {
    /// Runs the write inside the batch's transaction.
    fn apply<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Box<dyn Done>>;
    /// Answers the caller of a write that was never applied.
    fn abandon(self: Box<Self>, error: &StoreError);
}

/// An applied write waiting for its batch's fate.
trait Done: Send {
    fn breaks_batch(&self) -> bool;
    /// Answers the caller: the write's own result if the batch committed
    /// (`failure` is `None`), else the write's own error or `failure`.
    fn finish(self: Box<Self>, failure: Option<&StoreError>);
}

struct Write<F, T> {
    apply: F,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> Job for Write<F, T>
where
    T: Send + 'static,
    F: Apply<T>,
{
    fn apply<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Box<dyn Done>> {
        let Write { apply, done } = *self;
        Box::pin(async move {
            let outcome = apply(conn).await;
            Box::new(Applied { outcome, done }) as Box<dyn Done>
        })
    }

    fn abandon(self: Box<Self>, error: &StoreError) {
        // The caller may have gone away; nobody is left to tell.
        let _ = self.done.send(Err(not_committed(error)));
    }
}

struct Applied<T> {
    outcome: StoreResult<T>,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send> Done for Applied<T> {
    fn breaks_batch(&self) -> bool {
        self.outcome.as_ref().err().is_some_and(breaks_batch)
    }

    fn finish(self: Box<Self>, failure: Option<&StoreError>) {
        let outcome = match (self.outcome, failure) {
            (Ok(_), Some(e)) => Err(not_committed(e)),
            (outcome, _) => outcome,
        };
        let _ = self.done.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use crate::domain::{Answer, OptionKey, PersonId, QuestionId};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AnswerSource, NewPerson, RecordOutcome, Store, StoreError};

    fn answer(person: &str, option: &str) -> Answer {
        Answer {
            person: PersonId::parse(person).unwrap(),
            week: "2026-W47".parse().unwrap(),
            question: QuestionId::parse("decisions").unwrap(),
            option: OptionKey::parse(option).unwrap(),
        }
    }

    /// Writes sent together share transactions; an answer for an unknown
    /// person must fail alone, never taking the others in its batch down.
    #[tokio::test]
    async fn a_refused_write_fails_alone_among_concurrent_writes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("n.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let now = Utc::now();
        for i in 0..20 {
            let id = PersonId::parse(&format!("U{i}")).unwrap();
            let person = NewPerson {
                id,
                name: None,
                tz: None,
                enrolled: true,
            };
            store.upsert_person(&person, now).await.unwrap();
        }
        let writes = (0..40).map(|i| {
            let store = store.clone();
            // Even i: a known person; odd i: nobody.
            let person = if i % 2 == 0 {
                format!("U{}", i / 2)
            } else {
                format!("X{i}")
            };
            tokio::spawn(async move {
                store
                    .record_answer(&answer(&person, "3-5"), AnswerSource::Button, now)
                    .await
            })
        });
        let outcomes: Vec<_> = futures_join(writes.collect()).await;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(RecordOutcome::Inserted) if i % 2 == 0 => {}
                Err(StoreError::NotFound(_)) if i % 2 == 1 => {}
                other => panic!("write {i}: {other:?}"),
            }
        }
        assert_eq!(store.answers(None).await.unwrap().len(), 20);
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
