//! What the daemon says about itself: `/healthz` (liveness: the process
//! answers) and `/readyz` (readiness: it is doing its work).
//!
//! [`Health`] holds the state of every supervised worker
//! ([`crate::supervisor`]): starting, running, restarting after a fault, or
//! stopped. A worker reports progress through its [`Heartbeat`]; one that
//! has a stall limit and has not reported within it counts as down, as
//! does one that is (re)starting and has not reported yet.
//!
//! [`check_ready`] adds what no worker can say about itself: that the
//! store takes a write (a real one, [`Store::probe_write`]), and that the
//! oldest message still waiting in the outbox has not waited longer than
//! `server.readyz_max_outbox_lag_secs`. Each problem is one line naming
//! its cause; details that could carry data (error texts, panic messages)
//! go to the log, not to the unauthenticated endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::time::Instant;

use tokio::sync::watch;

use crate::store::Store;

/// How long `/readyz` waits for the store's probe write before it reports
/// the store as unwritable: well inside a load balancer's usual probe
/// timeout, far above a healthy write.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Started (or restarted) and not yet reporting progress.
    Starting,
    /// Reporting progress.
    Running,
    /// Failed; waiting out its back-off before it starts again.
    Restarting,
    /// Finished for good: shutdown, or its input ended (the console).
    Stopped,
}

/// One worker as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    pub state: WorkerState,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Why it last failed: "panicked" or "failed" (details are logged).
    pub last_fault: Option<&'static str>,
    /// When it last reported progress.
    pub last_beat: Instant,
    /// Silence longer than this counts as down; `None` for workers that
    /// may wait indefinitely for input.
    pub stall_after: Option<Duration>,
}

/// The state of every supervised worker: cheap to clone, shared by the
/// supervisor, the workers' heartbeats and `/readyz`.
#[derive(Clone)]
pub struct Health {
    workers: Arc<watch::Sender<BTreeMap<&'static str, WorkerStatus>>>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            workers: Arc::new(watch::Sender::new(BTreeMap::new())),
        }
    }

    /// `name` as last reported, if it was ever started.
    pub fn status(&self, name: &str) -> Option<WorkerStatus> {
        self.workers.borrow().get(name).cloned()
    }

    /// Waits until `name`'s status satisfies `done` (tests and shutdown
    /// await state changes this way rather than polling).
    pub async fn wait_for(&self, name: &str, mut done: impl FnMut(&WorkerStatus) -> bool) {
        let mut changes = self.workers.subscribe();
        // Only fails once the sender is gone, and `self` holds it.
        let _ = changes
            .wait_for(|workers| workers.get(name).is_some_and(&mut done))
            .await;
    }

    /// One line per worker that keeps the daemon from being ready now.
    pub fn problems(&self) -> Vec<String> {
        self.problems_at(Instant::now())
    }

    /// [`Health::problems`] as of `now`.
    pub fn problems_at(&self, now: Instant) -> Vec<String> {
        self.workers
            .borrow()
            .iter()
            .filter_map(|(name, w)| {
                let fault = w.last_fault.unwrap_or("failed");
                let restarts = match w.restarts {
                    1 => "1 restart".to_owned(),
                    n => format!("{n} restarts"),
                };
                match w.state {
                    WorkerState::Restarting => Some(format!(
                        "worker {name}: down, restarting after it {fault} ({restarts})"
                    )),
                    WorkerState::Starting if w.restarts > 0 => Some(format!(
                        "worker {name}: restarted after it {fault} ({restarts}), no progress yet"
                    )),
                    WorkerState::Starting => Some(format!("worker {name}: starting")),
                    WorkerState::Running => {
                        let silent = now.saturating_duration_since(w.last_beat);
                        w.stall_after.filter(|limit| silent > *limit).map(|limit| {
                            format!(
                                "worker {name}: no progress for {} s (limit {} s)",
                                silent.as_secs(),
                                limit.as_secs()
                            )
                        })
                    }
                    WorkerState::Stopped => None,
                }
            })
            .collect()
    }

    /// A worker is being started: registered with its stall limit, not
    /// ready until its first beat.
    pub(crate) fn starting(&self, name: &'static str, stall_after: Option<Duration>) {
        self.workers.send_modify(|workers| {
            let worker = workers.entry(name).or_insert(WorkerStatus {
                state: WorkerState::Starting,
                restarts: 0,
                last_fault: None,
                last_beat: Instant::now(),
                stall_after,
            });
            worker.state = WorkerState::Starting;
            worker.last_beat = Instant::now();
        });
        metrics::gauge!("nudged_worker_up", "worker" => name).set(0.0);
    }

    /// A worker failed and will be started again after its back-off.
    pub(crate) fn failed(&self, name: &'static str, fault: &'static str) {
        self.workers.send_modify(|workers| {
            if let Some(worker) = workers.get_mut(name) {
                worker.state = WorkerState::Restarting;
                worker.restarts += 1;
                worker.last_fault = Some(fault);
            }
        });
        metrics::gauge!("nudged_worker_up", "worker" => name).set(0.0);
    }

    /// A worker finished for good.
    pub(crate) fn stopped(&self, name: &'static str) {
        self.workers.send_modify(|workers| {
            if let Some(worker) = workers.get_mut(name) {
                worker.state = WorkerState::Stopped;
            }
        });
        metrics::gauge!("nudged_worker_up", "worker" => name).set(0.0);
    }

    /// A worker reported progress. Watchers hear of it only when this
    /// changes its state, so a busy worker's beats cost no wake-ups.
    fn beat(&self, name: &'static str) {
        let started = self.workers.send_if_modified(|workers| {
            let Some(worker) = workers.get_mut(name) else {
                return false;
            };
            worker.last_beat = Instant::now();
            let started = worker.state == WorkerState::Starting;
            if started {
                worker.state = WorkerState::Running;
            }
            started
        });
        if started {
            metrics::gauge!("nudged_worker_up", "worker" => name).set(1.0);
        }
    }
}

/// How a worker reports progress: it beats once it is in its loop and
/// again each time it gets something done (or finds nothing to do).
#[derive(Clone)]
pub struct Heartbeat {
    name: &'static str,
    health: Option<Health>,
}

impl Heartbeat {
    pub(crate) fn new(name: &'static str, health: Health) -> Self {
        Self {
            name,
            health: Some(health),
        }
    }

    /// A heartbeat nobody listens to, for a worker run on its own (tests
    /// that drive one directly).
    pub fn detached() -> Self {
        Self {
            name: "detached",
            health: None,
        }
    }

    /// The worker is alive and made progress just now.
    pub fn beat(&self) {
        if let Some(health) = &self.health {
            health.beat(self.name);
        }
    }
}

/// Why the daemon is not ready, one line per cause; empty when it is.
///
/// Checks, in order: the workers ([`Health::problems`]); that the store
/// takes a real write within [`PROBE_TIMEOUT`]; and that no message has
/// waited in the outbox longer than `max_outbox_lag` (measured from when
/// it was queued, so a message retried through an outage counts the
/// whole outage).
pub async fn check_ready(
    health: &Health,
    store: &dyn Store,
    now: DateTime<Utc>,
    max_outbox_lag: Duration,
) -> Vec<String> {
    let mut problems = health.problems();
    match tokio::time::timeout(PROBE_TIMEOUT, store.probe_write(now)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "readiness: the store cannot be written");
            problems.push("store: cannot be written".to_owned());
        }
        Err(_) => {
            tracing::error!("readiness: the store did not take a write in time");
            problems.push(format!(
                "store: a write took longer than {} s",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    }
    match store.oldest_pending_outbox().await {
        Ok(Some(queued)) => {
            let waited = (now - queued).to_std().unwrap_or(Duration::ZERO);
            if waited > max_outbox_lag {
                problems.push(format!(
                    "outbox: the oldest undelivered message has waited {} s (limit {} s)",
                    waited.as_secs(),
                    max_outbox_lag.as_secs()
                ));
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "readiness: cannot read the outbox");
            problems.push("outbox: cannot be read".to_owned());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_ready_from_its_first_beat_until_it_goes_silent_too_long() {
        let health = Health::new();
        health.starting("delivery", Some(Duration::from_secs(60)));
        assert_eq!(health.problems(), ["worker delivery: starting"]);
        let beat = Heartbeat::new("delivery", health.clone());
        beat.beat();
        let beaten = health.status("delivery").unwrap().last_beat;
        assert!(health.problems_at(beaten).is_empty());
        assert!(
            health
                .problems_at(beaten + Duration::from_secs(60))
                .is_empty()
        );
        assert_eq!(
            health.problems_at(beaten + Duration::from_secs(61)),
            ["worker delivery: no progress for 61 s (limit 60 s)"]
        );
    }

    #[test]
    fn a_worker_without_a_stall_limit_may_wait_for_input_forever() {
        let health = Health::new();
        health.starting("console", None);
        Heartbeat::new("console", health.clone()).beat();
        let day_later = Instant::now() + Duration::from_secs(86_400);
        assert!(health.problems_at(day_later).is_empty());
        health.stopped("console");
        assert!(health.problems().is_empty(), "its input ended");
    }

    #[test]
    fn a_failed_worker_is_down_until_it_reports_again() {
        let health = Health::new();
        health.starting("scheduler", None);
        health.failed("scheduler", "panicked");
        assert_eq!(
            health.problems(),
            ["worker scheduler: down, restarting after it panicked (1 restart)"]
        );
        health.starting("scheduler", None);
        assert_eq!(
            health.problems(),
            ["worker scheduler: restarted after it panicked (1 restart), no progress yet"]
        );
        Heartbeat::new("scheduler", health.clone()).beat();
        assert!(health.problems().is_empty());
        let status = health.status("scheduler").unwrap();
        assert_eq!((status.state, status.restarts), (WorkerState::Running, 1));
    }

    #[test]
    fn a_detached_heartbeat_reports_to_nobody() {
        Heartbeat::detached().beat();
    }
}
