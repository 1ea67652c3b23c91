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
//! Durability is the store's: WAL with `synchronous = NORMAL`, see
//! [`SqliteStore::open`](super::SqliteStore::open).

use std::future::Future;
use std::pin::Pin;

use sqlx::SqliteConnection;
use sqlx::error::ErrorKind;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpointer;
use crate::store::shared::{not_committed, writer_stopped};
use crate::store::{StoreError, StoreResult};

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
    jobs: mpsc::Sender<Box<dyn Job>>,
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
        self.queue(apply, false).await
    }

    /// As [`Writer::write`], for a write that is all or nothing by itself
    /// (one script in a [`savepoint`] whose first statement writes): when
    /// nothing else is queued with it, it runs without a transaction of
    /// the batch's, its savepoint being the transaction, so a lone write
    /// costs one round trip to the connection's thread rather than three
    /// (`BEGIN`, the write, `COMMIT`).
    pub(super) async fn write_atomic<T: Send + 'static>(
        &self,
        apply: impl Apply<T>,
    ) -> StoreResult<T> {
        self.queue(apply, true).await
    }

    async fn queue<T: Send + 'static>(&self, apply: impl Apply<T>, atomic: bool) -> StoreResult<T> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Box::new(Write {
                apply,
                done,
                atomic,
            }))
            .await
            .map_err(|_| writer_stopped())?;
        outcome.await.map_err(|_| writer_stopped())?
    }
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
    mut queue: mpsc::Receiver<Box<dyn Job>>,
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
async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<Box<dyn Job>>) {
    if let [job] = batch.as_slice()
        && job.atomic()
    {
        let Some(job) = batch.pop() else { return };
        let done = job.apply(conn).await;
        if done.breaks_batch() {
            // It may have left its savepoint's transaction open.
            rollback(conn).await;
        }
        return done.finish(None);
    }
    if let Err(e) = execute(conn, "BEGIN IMMEDIATE").await {
        // A transaction left open by an earlier failure would make every
        // later BEGIN fail too: make sure none is.
        rollback(conn).await;
        for job in batch.drain(..) {
            job.abandon(&e);
        }
        return;
    }
    let mut applied = Vec::with_capacity(batch.len());
    let mut jobs = batch.drain(..);
    let mut broken = None;
    for job in jobs.by_ref() {
        let done = job.apply(conn).await;
        if done.breaks_batch() {
            broken = Some(done);
            break;
        }
        applied.push(done);
    }
    let rolled_back = broken.is_some();
    let failure = match broken {
        Some(culprit) => {
            rollback(conn).await;
            let e = StoreError::Database(sqlx::Error::Io(std::io::Error::other(
                "rolled back with a write that failed in the same transaction",
            )));
            culprit.finish(None);
            Some(e)
        }
        None => execute(conn, "COMMIT").await.err().inspect(|e| {
            tracing::error!(error = %e, "SQLite commit failed; the batch is rolled back");
        }),
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
    /// Whether the write is all or nothing without the batch's transaction
    /// ([`Writer::write_atomic`]).
    fn atomic(&self) -> bool;
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
    atomic: bool,
}

impl<F, T> Job for Write<F, T>
where
    T: Send + 'static,
    F: Apply<T>,
{
    fn atomic(&self) -> bool {
        self.atomic
    }

    fn apply<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Box<dyn Done>> {
        let Write { apply, done, .. } = *self;
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
