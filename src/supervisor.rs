//! Supervision of the long-running workers: outbox delivery, the
//! scheduler's dispatcher, re-assessment, pruning, the console reader and
//! the Socket Mode connection.
//!
//! [`Supervisor::spawn`] runs each worker in a task of its own. When the
//! worker panics or returns an error, the cause is logged, counted in
//! `nudged_worker_restarts_total{worker}`, shown by `/readyz` (through
//! [`Health`]), and the worker is started again after a back-off: 1 s,
//! doubling up to [`MAX_RESTART_DELAY`]. A fault that passes is recovered
//! from within a second; one that repeats costs a restart and a log line
//! every 30 s rather than a hot loop that floods the log and the store. A
//! worker that returns `Ok` has finished for good (shutdown, or its input
//! ended) and is not restarted.
//!
//! A small loop of our own rather than backon's `Retryable`: a panic is
//! not an `Err` to retry on, the wait between restarts must end at once
//! on shutdown, and the back-off starts over after a worker has run well
//! for a while ([`HEALTHY_RUN`]); backon only supplies the delays.
//!
//! Shutdown ([`Supervisor::shutdown`]) cancels the token every worker
//! watches, lets each finish what it is doing (the delivery worker records
//! its sends in flight), and returns once all have stopped.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::{Health, Heartbeat};

/// First wait before a failed worker starts again.
pub const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between two restarts of a worker that keeps failing.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A worker that ran at least this long before failing starts its back-off
/// over: its fault is a new one, not the one that kept repeating.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Starts, watches and restarts the daemon's workers; cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    tracker: TaskTracker,
    stop: CancellationToken,
    health: Health,
    first_delay: Duration,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self {
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            health: Health::new(),
            first_delay: FIRST_RESTART_DELAY,
        }
    }

    /// The state of the workers, as `/readyz` reads it.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Runs the worker that `start` makes, as `name`, until shutdown:
    /// `start` is called again for each restart, with the worker's
    /// heartbeat and the token that tells it to stop. A worker with
    /// `stall_after` counts as down when it has not beaten for that long.
    pub fn spawn<F, Fut>(&self, name: &'static str, stall_after: Option<Duration>, start: F)
    where
        F: FnMut(Heartbeat, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.health.starting(name, stall_after);
        self.tracker.spawn(supervise(
            Job {
                name,
                stall_after,
                health: self.health.clone(),
                stop: self.stop.clone(),
                first_delay: self.first_delay,
            },
            start,
        ));
    }

    /// Tells every worker to stop and returns once all have finished what
    /// they were doing.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// One supervised worker's settings.
struct Job {
    name: &'static str,
    stall_after: Option<Duration>,
    health: Health,
    stop: CancellationToken,
    first_delay: Duration,
}

/// Runs, and restarts, one worker until it finishes or shutdown.
async fn supervise<F, Fut>(job: Job, mut start: F)
where
    F: FnMut(Heartbeat, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let Job {
        name,
        stall_after,
        health,
        stop,
        first_delay,
    } = job;
    let backoff = backon::ExponentialBuilder::default()
        .with_min_delay(first_delay)
        .with_max_delay(MAX_RESTART_DELAY)
        .without_max_times();
    let mut delays = backoff.build();
    loop {
        health.starting(name, stall_after);
        let started = Instant::now();
        // A task of its own, so a panic ends it and not the supervisor.
        let run = tokio::spawn(start(Heartbeat::new(name, health.clone()), stop.clone()));
        let (fault, cause) = match run.await {
            Ok(Ok(())) => {
                tracing::info!(worker = name, "worker finished");
                health.stopped(name);
                return;
            }
            Ok(Err(e)) => ("failed", format!("{e:#}")),
            Err(e) if e.is_panic() => ("panicked", panic_message(e.into_panic())),
            // Cancelled: the runtime itself is shutting down.
            Err(_) => {
                health.stopped(name);
                return;
            }
        };
        if stop.is_cancelled() {
            tracing::error!(worker = name, %cause, "worker {fault} while stopping");
            health.stopped(name);
            return;
        }
        if started.elapsed() >= HEALTHY_RUN {
            delays = backoff.build();
        }
        let delay = delays.next().unwrap_or(MAX_RESTART_DELAY);
        tracing::error!(worker = name, %cause, ?delay, "worker {fault}; restarting");
        metrics::counter!("nudged_worker_restarts_total", "worker" => name).increment(1);
        health.failed(name, fault);
        tokio::select! {
            () = stop.cancelled() => {
                health.stopped(name);
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// What a panic said, when it said it with a string (as `panic!`,
/// `expect` and overflow checks do).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::health::WorkerState;

    /// Every test gives up after this long rather than hang.
    const WAIT: Duration = Duration::from_secs(30);

    fn quick() -> Supervisor {
        Supervisor {
            first_delay: Duration::from_millis(10),
            ..Supervisor::new()
        }
    }

    #[tokio::test]
    async fn a_worker_that_panics_or_fails_is_restarted_and_down_meanwhile() {
        let supervisor = quick();
        let health = supervisor.health();
        let starts = Arc::new(AtomicU32::new(0));
        let (healed, heal) = tokio::sync::watch::channel(false);
        let counted = starts.clone();
        supervisor.spawn("flaky", None, move |beat, stop| {
            let start = counted.fetch_add(1, Ordering::SeqCst);
            let mut heal = heal.clone();
            async move {
                match start {
                    0 => panic!("the first start panics"),
                    1 => anyhow::bail!("the second fails"),
                    _ => {
                        // Reports progress only once the test says so.
                        let _ = heal.wait_for(|healed| *healed).await;
                        beat.beat();
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, async {
            health
                .wait_for("flaky", |w| {
                    w.restarts == 2 && w.state == WorkerState::Starting
                })
                .await;
            assert_eq!(
                health.problems(),
                ["worker flaky: restarted after it failed (2 restarts), no progress yet"]
            );
            healed.send_replace(true);
            health
                .wait_for("flaky", |w| w.state == WorkerState::Running)
                .await;
            assert!(health.problems().is_empty());
            supervisor.shutdown().await;
        })
        .await
        .expect("supervised in time");
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        assert_eq!(
            health.status("flaky").map(|w| w.state),
            Some(WorkerState::Stopped)
        );
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_before_a_restart() {
        let supervisor = Supervisor::new();
        let health = supervisor.health();
        supervisor.spawn("broken", None, |_, _| async { anyhow::bail!("always") });
        tokio::time::timeout(WAIT, async {
            health
                .wait_for("broken", |w| w.state == WorkerState::Restarting)
                .await;
            // Its next start is a second away; shutdown does not wait for it.
            supervisor.shutdown().await;
        })
        .await
        .expect("shut down at once");
        let status = health.status("broken").unwrap();
        assert_eq!((status.state, status.restarts), (WorkerState::Stopped, 1));
    }

    #[tokio::test]
    async fn a_worker_that_finishes_is_not_restarted() {
        let supervisor = quick();
        let health = supervisor.health();
        supervisor.spawn("once", None, |beat, _| async move {
            beat.beat();
            Ok(())
        });
        tokio::time::timeout(WAIT, async {
            health
                .wait_for("once", |w| w.state == WorkerState::Stopped)
                .await;
            supervisor.shutdown().await;
        })
        .await
        .expect("finished in time");
        assert_eq!(health.status("once").unwrap().restarts, 0);
        assert!(health.problems().is_empty());
    }

    #[test]
    fn a_panic_message_is_read_from_either_string_form() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(7)), "a panic without a message");
    }
}
