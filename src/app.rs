//! The composition root: [`App::build`] opens the store, enrols the roster
//! and binds the HTTP port; [`App::run_until`] runs the HTTP server, the
//! scheduler, the outbox delivery worker, the re-assessment worker, the
//! pruning worker and (with `chat.slack.socket_mode`) the Socket Mode
//! connection until shutdown, each worker under the [`Supervisor`].
//! Only this module sees every part at once.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::chat::{ChatApi, ConsoleChat, MattermostChat, SlackChat, WebhookChat};
use crate::clock::Clock;
use crate::config::{Platform, Settings};
use crate::domain::PersonId;
use crate::health::Health;
use crate::http::{self, AppState};
use crate::mattermost_ws;
use crate::outbox;
use crate::retention;
use crate::scheduler::{self, Dispatcher};
use crate::service::checkin::{self, AskedNow};
use crate::service::readiness::Assessor;
use crate::socket_mode::{self, SocketMode};
use crate::store::{self, NewPerson, Store};
use crate::supervisor::Supervisor;

/// A built, bound, not yet running daemon.
pub struct App {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    /// Where the outbox delivers; `None` runs no delivery worker.
    chat: Option<Arc<dyn ChatApi>>,
    /// Whether to run the scheduler (off in tests that tick it themselves).
    scheduler: bool,
    /// Re-assesses people after their answers, off the request path.
    assessor: Assessor,
    /// Runs and restarts the background workers; stops them once the HTTP
    /// server has stopped.
    supervisor: Supervisor,
}

impl App {
    /// Opens the store (running migrations), adds or updates the roster's
    /// people, and binds `server.bind` (port 0 picks a free port).
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        sync_roster(&settings, store.as_ref(), clock.as_ref()).await?;
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {} (server.bind)", settings.server.bind))?;
        let chat = chat_adapter(&settings)?;
        let settings = Arc::new(settings);
        let supervisor = Supervisor::new();
        let assessor = Assessor::start(&supervisor, settings.clone(), store.clone(), clock.clone());
        Ok(Self {
            settings,
            store,
            clock,
            listener,
            chat,
            scheduler: true,
            assessor,
            supervisor,
        })
    }

    /// Puts this week's check-in for every enrolled roster person in the
    /// outbox (`nudged run --ask-now`).
    pub async fn ask_roster_now(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        for entry in &self.settings.people {
            let Some(person) = self.store.person(&entry.id).await? else {
                continue;
            };
            if person.enrolled {
                match checkin::ask_now(&self.settings, self.store.as_ref(), &person, now).await? {
                    AskedNow::Queued(week) => {
                        tracing::info!(person = %person.id, %week, "check-in asked now");
                    }
                    AskedNow::NoCheckinSchedule => {
                        anyhow::bail!("--ask-now: no checkin schedule is configured")
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs without the delivery worker, so a test can drive
    /// [`outbox::Worker::deliver_due`] step by step.
    pub fn without_delivery(mut self) -> Self {
        self.chat = None;
        self
    }

    /// Runs without the scheduler, so a test can call
    /// [`scheduler::Dispatcher::tick`] at the instants it chooses.
    pub fn without_scheduler(mut self) -> Self {
        self.scheduler = false;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The re-assessment worker, e.g. to await the re-assessments that
    /// answers cause.
    pub fn assessor(&self) -> Assessor {
        self.assessor.clone()
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.clone()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Runs background work of the caller's (the console reader) under the
    /// app's supervision: restarted after a fault, shown by `/readyz`,
    /// stopped at shutdown.
    pub fn supervisor(&self) -> Supervisor {
        self.supervisor.clone()
    }

    /// The state of the supervised workers, as `/readyz` reads it.
    pub fn health(&self) -> Health {
        self.supervisor.health()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(
            %addr,
            platform = self.settings.chat.platform.as_str(),
            schedules = self.settings.schedules.list.len(),
            people = self.settings.people.len(),
            "nudged listening on http://{addr}"
        );
        let supervisor = self.supervisor;
        let state = AppState {
            store: self.store.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
            metrics: metrics_handle(),
            assessor: self.assessor.clone(),
            health: supervisor.health(),
        };
        // Envelopes go through the same handlers as HTTP requests.
        let slack = &self.settings.chat.slack;
        let socket_driver = (self.settings.chat.platform == Platform::Slack && slack.socket_mode)
            .then(|| SocketMode::new(state.clone()))
            .transpose()?;
        // First, so a heartbeat that cannot start leaves no worker behind.
        let ticker = if self.scheduler {
            let ticker = scheduler::Ticker::start()
                .await
                .context("cannot start the scheduler's heartbeat")?;
            Some(ticker)
        } else {
            None
        };
        if let Some(chat) = &self.chat {
            let (store, chat, settings, clock) = (
                self.store.clone(),
                chat.clone(),
                self.settings.clone(),
                self.clock.clone(),
            );
            let stall_after = outbox::stall_limit(&self.settings.delivery);
            supervisor.spawn("delivery", Some(stall_after), move |heartbeat, stop| {
                let worker = outbox::Worker::new(store.clone(), chat.clone(), settings.clone())
                    .with_heartbeat(heartbeat);
                let clock = clock.clone();
                async move {
                    worker.run(clock, stop).await;
                    Ok(())
                }
            });
        }
        if let Some(ticker) = &ticker {
            let (store, chat, settings, clock, wake) = (
                self.store.clone(),
                self.chat.clone(),
                self.settings.clone(),
                self.clock.clone(),
                ticker.wake(),
            );
            supervisor.spawn(
                "scheduler",
                Some(scheduler::STALL_AFTER),
                move |heartbeat, stop| {
                    // A fresh dispatcher per start: nothing a failed one
                    // held is trusted.
                    let mut dispatcher = Dispatcher::new(settings.clone(), store.clone());
                    if let Some(chat) = &chat {
                        dispatcher = dispatcher.with_profiles(chat.clone());
                    }
                    scheduler::run(dispatcher, clock.clone(), wake.clone(), stop, heartbeat)
                },
            );
        }
        if self.settings.chat.platform == Platform::Mattermost {
            mattermost_ws::spawn(
                &supervisor,
                self.settings.clone(),
                self.store.clone(),
                self.clock.clone(),
                self.assessor.clone(),
            )?;
        }
        if let Some(handle) = state.metrics.clone() {
            supervisor.spawn("metrics", None, move |heartbeat, stop| {
                metrics_upkeep(handle.clone(), stop, heartbeat)
            });
        }
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let retention_period = self.settings.storage.retention;
        supervisor.spawn("pruning", None, move |heartbeat, stop| {
            retention::run(
                store.clone(),
                retention_period,
                clock.clone(),
                stop,
                heartbeat,
            )
        });
        // Each connection holds a file descriptor: allow as many as the
        // system lets this process have, and no more connections than fit.
        let limits = self
            .settings
            .server
            .limits
            .within_fd_limit(http::serve::raise_fd_limit());
        if let Some(driver) = socket_driver {
            supervisor.spawn(
                "socket_mode",
                Some(socket_mode::STALL_AFTER),
                move |heartbeat, stop| driver.clone().run(stop, heartbeat),
            );
        }
        let router = http::router(state);
        http::serve::serve(self.listener, router, limits, shutdown).await;
        // The workers finish what they are doing (the delivery worker
        // records the send in flight), then stop.
        supervisor.shutdown().await;
        if let Some(ticker) = ticker {
            ticker
                .stop()
                .await
                .context("cannot stop the scheduler's heartbeat")?;
        }
        tracing::info!("nudged stopped");
        Ok(())
    }
}

/// The process-wide Prometheus recorder, installed on first use. `None` if
/// another recorder was installed first (an embedding program's own).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .inspect_err(|e| tracing::warn!(error = %e, "metrics disabled"))
                .ok()
        })
        .clone()
}

/// How often the recorder's histograms are folded into their buckets. The
/// samples wait in memory until then: eight bytes per request, so at
/// 12,000 clicks a second a five-second wait held up to half a megabyte.
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds the latency samples recorded since the last upkeep into the
/// histograms' buckets. The recorder keeps every sample until then, so
/// without it a daemon nobody scrapes would hold one per request forever.
async fn metrics_upkeep(
    handle: PrometheusHandle,
    stop: tokio_util::sync::CancellationToken,
    heartbeat: crate::health::Heartbeat,
) -> anyhow::Result<()> {
    loop {
        heartbeat.beat();
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(METRICS_UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}

/// Histogram buckets for request latency, in seconds: fine below Slack's
/// 3 s deadline, where it matters.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The adapter `chat.platform` names.
fn chat_adapter(settings: &Settings) -> anyhow::Result<Option<Arc<dyn ChatApi>>> {
    Ok(match settings.chat.platform {
        Platform::Console => Some(Arc::new(ConsoleChat)),
        Platform::Slack => {
            let token = settings
                .chat
                .slack
                .bot_token
                .as_ref()
                .context("chat.slack.bot_token is required for the slack platform")?;
            Some(Arc::new(SlackChat::new(
                &settings.chat.slack.api_base_url,
                token,
            )?))
        }
        Platform::Mattermost => Some(Arc::new(MattermostChat::from_settings(
            &settings.chat.mattermost,
        )?)),
        Platform::Webhook => {
            let url = settings
                .chat
                .webhook
                .url
                .as_ref()
                .context("chat.webhook.url is required for the webhook platform")?;
            Some(Arc::new(WebhookChat::new(
                url,
                settings.chat.webhook.flavor,
            )?))
        }
    })
}

/// Opens the configured store with a message that names the key.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    store::open_with(&settings.storage.url, &settings.storage.options)
        .await
        .with_context(|| {
            format!(
                "cannot open the store (storage.url in {})",
                settings.file.display()
            )
        })
}

/// Makes sure everyone on the roster exists in the store and is up to date,
/// except people who asked to be forgotten: they stay out, with a warning
/// for the operator, until they `/pulse join` again. One bulk upsert, so a
/// roster of thousands costs a few statements, and unchanged people are not
/// written (nor their due times recomputed).
async fn sync_roster(
    settings: &Settings,
    store: &dyn Store,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let now = clock.now();
    let opted_out: HashSet<PersonId> = store
        .opted_out()
        .await
        .context("cannot read who opted out")?
        .into_iter()
        .collect();
    let mut people = Vec::with_capacity(settings.people.len());
    for person in &settings.people {
        if opted_out.contains(&person.id) {
            tracing::warn!(
                person = %person.id,
                "{} asked to be forgotten and is not enrolled from the roster; remove them from [[people]] in {}",
                person.id,
                settings.file.display()
            );
            continue;
        }
        people.push(NewPerson {
            id: person.id.clone(),
            name: person.name.clone(),
            tz: person.tz,
            enrolled: true,
        });
    }
    store
        .upsert_people(&people, now)
        .await
        .with_context(|| format!("cannot enrol the roster ({} people)", people.len()))?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal sent as soon as
/// the daemon says it is listening must stop it gracefully, not kill it.
/// Must be called within the tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |installed: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match installed {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C received, shutting down"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
}
