//! WAL checkpoints off the write path.
//!
//! A checkpoint copies committed pages from the WAL back into the database
//! file and, with `synchronous = NORMAL`, is where SQLite calls `fsync`.
//! Left to SQLite, the commit that pushes the WAL past its auto-checkpoint
//! size runs the checkpoint itself: the writer (and every caller waiting on
//! its batch) stalls for the copy and two `fsync`s. Here a task with its own
//! connection runs `PASSIVE` checkpoints instead, which never block the
//! writer or readers, at most every [`INTERVAL`] while writes are happening.
//! The writer keeps SQLite's auto-checkpoint at [`WRITER_AUTOCHECKPOINT`]
//! pages as a backstop, should this task fall behind.
//!
//! Durability is unchanged: a commit is in the WAL either way, and the WAL
//! is synced before its pages are copied.

use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::sync::mpsc;

/// Least time between two checkpoints while writes keep coming. Frequent
/// enough to keep the WAL to a few MB at thousands of writes a second, rare
/// enough that the `fsync`s cost little.
const INTERVAL: Duration = Duration::from_millis(200);

/// WAL size, in pages, at which the writer's own commit checkpoints
/// (SQLite's default is 1000): only reached if the checkpoint task lags.
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 16_000;

/// Wakes the checkpoint task after commits; cheap to call after each one.
#[derive(Debug)]
pub(super) struct Checkpointer {
    /// Holds at most one wake-up: commits meanwhile are folded into it.
    wake: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the task on `conn`. Once the [`Checkpointer`] is dropped, the
    /// task runs a last checkpoint and closes its connection.
    pub(super) fn start(conn: SqliteConnection) -> Self {
        let (wake, woken) = mpsc::channel(1);
        tokio::spawn(run(conn, woken));
        Self { wake }
    }

    /// Tells the task that the WAL has grown.
    pub(super) fn committed(&self) {
        // Full means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }
}

async fn run(mut conn: SqliteConnection, mut woken: mpsc::Receiver<()>) {
    while woken.recv().await.is_some() {
        checkpoint(&mut conn).await;
        tokio::time::sleep(INTERVAL).await;
    }
    checkpoint(&mut conn).await;
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the SQLite checkpoint connection failed");
    }
}

async fn checkpoint(conn: &mut SqliteConnection) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(conn)
        .await
    {
        // The writer's auto-checkpoint still bounds the WAL.
        tracing::warn!(error = %e, "WAL checkpoint failed; retrying after the next write");
    }
}
