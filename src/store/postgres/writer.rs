//! Group commit for inbound writes (clicks and events) on PostgreSQL.
//!
//! Each [`Store::record_inbound`](crate::store::Store::record_inbound)
//! committed on its own waits for its own WAL flush. So inbound writes are
//! queued, and [`WRITERS`] tasks each take whatever is queued when they are
//! free (up to [`MAX_BATCH`]), apply it in one transaction on one pooled
//! connection, commit once, and only then answer each caller: a caller hears
//! that its write succeeded only once it is committed. A write that arrives
//! while a writer is idle is applied at once, alone, in one autocommitted
//! statement (no added latency); batches are only what arrived meanwhile.
//!
//! A batch goes to the server as one statement ([`batch`]), or one per
//! round where writes share a key, so it costs one round trip and one
//! commit, not one of each per write. PostgreSQL ends a statement (and a
//! transaction) at any error, so one failing write (an answer for an
//! unknown person) would take its batch-mates down: if the server refuses
//! the batch for a write's sake (a foreign key, a trigger), the writes are
//! applied again one by one, each in a savepoint in one transaction, so the
//! refused one gets its error and the others commit.
//!
//! Two replicas can take the same seen keys in different orders in their
//! batches: each waits on the other's unique-index entry, and PostgreSQL
//! aborts one transaction (deadlock, or a serialization failure). Nothing of
//! it was committed, so its writes are applied again, each alone in its own
//! statement, as without batching: the keys the other replica committed are
//! then duplicates. Any other failure of a batch (a lost connection, a
//! failed `COMMIT`) fails every write in it; none is acknowledged.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Acquire;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::batch;
use crate::store::shared::{not_committed, queue_and_wait, unknown_person};
use crate::store::{InboundOutcome, InboundWrite, StoreError, StoreResult};

/// Batches applied at once, each on its own pooled connection: while one
/// waits for its commit's WAL flush, the next is being applied.
pub(super) const WRITERS: usize = 2;

/// Most writes in one transaction: bounds how long one commit keeps the
/// callers in it waiting. Batches are whatever is queued when a writer is
/// free, so they rarely reach this.
const MAX_BATCH: usize = 64;

/// Writes queued before callers wait to enqueue theirs (back-pressure, so a
/// stalled database cannot grow the queue without bound).
const QUEUE: usize = 1024;

/// The sending side of the queue; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts [`WRITERS`] tasks applying queued writes on connections from
    /// `pool`. They stop once every [`Writer`] handle is dropped and the
    /// queue is empty.
    pub(super) fn start(pool: PgPool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..WRITERS {
            tokio::spawn(run(pool.clone(), Arc::clone(&queue)));
        }
        Self { jobs }
    }

    /// Queues `write` and returns its outcome once the transaction it ran in
    /// is committed (or failed). Dropping the returned future does not
    /// withdraw a queued write: it is applied all the same, like a statement
    /// already sent to the database.
    pub(super) async fn record(
        &self,
        write: InboundWrite,
        now: DateTime<Utc>,
    ) -> StoreResult<InboundOutcome> {
        queue_and_wait(&self.jobs, |done| Job { write, now, done }).await
    }
}

/// One queued inbound write and the caller waiting for it.
struct Job {
    write: InboundWrite,
    now: DateTime<Utc>,
    done: oneshot::Sender<StoreResult<InboundOutcome>>,
}

impl Job {
    /// Runs the write's statement on `conn`, in whatever transaction is open.
    async fn apply(&self, conn: &mut PgConnection) -> Result<InboundOutcome, sqlx::Error> {
        super::apply_inbound(conn, &self.write, self.now).await
    }

    /// Answers the caller with the write's committed outcome or its own
    /// error (a foreign-key failure names the unknown person, as without
    /// batching).
    fn answer(self, outcome: Result<InboundOutcome, sqlx::Error>) {
        let outcome = outcome.map_err(|e| match self.write.distinct_answers().first() {
            Some(answer) => unknown_person(&answer.person)(e),
            None => StoreError::Database(e),
        });
        // The caller may have gone away; nobody is left to tell.
        let _ = self.done.send(outcome);
    }

    /// Answers the caller of a write whose batch failed as a whole.
    fn fail(self, error: &sqlx::Error) {
        let _ = self.done.send(Err(not_committed(error)));
    }
}

/// A writer task: one batch at a time, until every handle is gone.
async fn run(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Only the writer holding the lock waits for jobs; the others wait
        // for it, so a job arriving is taken by a free writer at once.
        let taken = queue.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        match pool.acquire().await {
            Ok(mut conn) => commit(&mut conn, jobs).await,
            Err(e) => jobs.into_iter().for_each(|job| job.fail(&e)),
        }
    }
}

/// Applies `jobs` and answers each caller after its transaction's fate is
/// known.
async fn commit(conn: &mut PgConnection, jobs: Vec<Job>) {
    if jobs.len() == 1 {
        return each_alone(conn, jobs).await;
    }
    let aborted = match together(conn, &jobs).await {
        Ok(outcomes) => return answer_all(jobs, outcomes.into_iter().map(Ok).collect()),
        // Some write was refused; a savepoint around each finds which.
        Err(Abort::Refused(_)) => match with_savepoints(conn, &jobs).await {
            Ok(outcomes) => return answer_all(jobs, outcomes),
            Err(abort) => abort,
        },
        Err(abort) => abort,
    };
    match aborted {
        Abort::Conflict(e) => {
            tracing::debug!(error = %e, jobs = jobs.len(), "batch aborted by a concurrent one; applying its writes one by one");
            each_alone(conn, jobs).await;
        }
        // Savepoints keep a write's own failure inside the batch, so a
        // refusal is only reached without them, and handled above.
        Abort::Refused(e) | Abort::Failed(e) => {
            tracing::error!(error = %e, jobs = jobs.len(), "PostgreSQL batch failed; none of its writes is committed");
            jobs.into_iter().for_each(|job| job.fail(&e));
        }
    }
}

/// Applies each job in its own autocommitted statement.
async fn each_alone(conn: &mut PgConnection, jobs: Vec<Job>) {
    for job in jobs {
        let outcome = job.apply(conn).await;
        job.answer(outcome);
    }
}

fn answer_all(jobs: Vec<Job>, outcomes: Vec<Result<InboundOutcome, sqlx::Error>>) {
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        job.answer(outcome);
    }
}

/// Why a batch's transaction ended without committing.
enum Abort {
    /// A write failed on its own (which one is not known).
    Refused(sqlx::Error),
    /// A deadlock or serialization failure with another transaction.
    Conflict(sqlx::Error),
    /// Anything else, including a failed `BEGIN` or `COMMIT`.
    Failed(sqlx::Error),
}

impl Abort {
    fn of(e: sqlx::Error) -> Self {
        match failure(&e) {
            Failure::Own => Self::Refused(e),
            Failure::Conflict => Self::Conflict(e),
            Failure::Other => Self::Failed(e),
        }
    }
}

/// Applies `jobs` in as few statements as their keys allow
/// ([`batch::rounds`]): one, autocommitted, when no two share a key, else
/// one per round in one transaction. All or nothing: any write refused
/// fails them all.
async fn together(conn: &mut PgConnection, jobs: &[Job]) -> Result<Vec<InboundOutcome>, Abort> {
    let writes: Vec<batch::Write<'_>> = jobs.iter().map(|job| (&job.write, job.now)).collect();
    let rounds = batch::rounds(&writes);
    let mut outcomes = vec![InboundOutcome::Duplicate; jobs.len()];
    let mut place = |round: &[usize], done: Vec<InboundOutcome>| {
        for (i, outcome) in round.iter().zip(done) {
            outcomes[*i] = outcome;
        }
    };
    if let [round] = rounds.as_slice() {
        let done = batch::apply(conn, &writes, round)
            .await
            .map_err(Abort::of)?;
        place(round, done);
    } else {
        let mut tx = conn.begin().await.map_err(Abort::Failed)?;
        for round in &rounds {
            match batch::apply(&mut tx, &writes, round).await {
                Ok(done) => place(round, done),
                Err(e) => {
                    // The transaction is over; end it before reusing the
                    // connection (an error here is the connection's, and
                    // the pool drops a broken one).
                    let _ = tx.rollback().await;
                    return Err(Abort::of(e));
                }
            }
        }
        tx.commit().await.map_err(Abort::Failed)?;
    }
    Ok(outcomes)
}

/// Applies `jobs` in order in one transaction, each in a savepoint, and
/// commits it, returning each write's outcome: a write failing on its own
/// is undone alone and its error is its outcome.
async fn with_savepoints(
    conn: &mut PgConnection,
    jobs: &[Job],
) -> Result<Vec<Result<InboundOutcome, sqlx::Error>>, Abort> {
    let mut tx = conn.begin().await.map_err(Abort::Failed)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut savepoint = tx.begin().await.map_err(Abort::Failed)?;
        let outcome = job.apply(&mut savepoint).await;
        let end = match outcome {
            Ok(_) => savepoint.commit().await,
            Err(_) => savepoint.rollback().await,
        };
        end.map_err(Abort::Failed)?;
        match outcome {
            Ok(done) => outcomes.push(Ok(done)),
            Err(e) => match Abort::of(e) {
                Abort::Refused(e) => outcomes.push(Err(e)),
                abort => {
                    let _ = tx.rollback().await;
                    return Err(abort);
                }
            },
        }
    }
    tx.commit().await.map_err(Abort::Failed)?;
    Ok(outcomes)
}

/// What a failed statement says about its transaction.
enum Failure {
    /// The write's own: an error the server reported for its statement (a
    /// constraint, a value, a trigger's `RAISE`), which rolling back to a
    /// savepoint undoes, or a row read back that could not be decoded.
    Own,
    /// Deadlock or serialization failure: another transaction's fault, and
    /// worth retrying.
    Conflict,
    /// The connection's (I/O, protocol): the transaction is lost.
    Other,
}

fn failure(e: &sqlx::Error) -> Failure {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => Failure::Conflict,
            _ => Failure::Own,
        },
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::Decode(_) => Failure::Own,
        _ => Failure::Other,
    }
}
