//! Serving HTTP connections within limits, so that connections cannot
//! exhaust the daemon: a request head must arrive within
//! `server.header_read_timeout_secs`, a keep-alive connection may wait for
//! its next request `server.idle_timeout_secs`, and at most
//! `server.max_connections` are open at once.
//!
//! `axum::serve` has none of these knobs, and hyper's own
//! `header_read_timeout` also runs while a kept-alive connection waits for
//! its next request, so it cannot give that wait a limit of its own. Here
//! each connection has a small watch: its phase (waiting for a request,
//! reading a head, handling a request) set by its socket's reads and by the
//! router's calls, and a deadline per phase. A request being handled has no
//! connection deadline; the router's own timeout bounds it.
//!
//! At the cap, a new connection is not refused: the connection that has
//! waited longest without a request in flight is closed to make room (an
//! idle keep-alive connection is closed cleanly; one that is still sending
//! its head never had a request dispatched). Only when every connection is
//! handling a request does the new one wait, in the kernel's backlog, for
//! the first to finish. Held-open sockets therefore cost at most
//! `max_connections` file descriptors and cannot keep a health check out.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::ConnectionLimits;

/// File descriptors kept for everything but client connections: the
/// listener, the store's pool and files, outgoing HTTPS, logs.
pub const RESERVED_FDS: u64 = 128;

/// The most a connection's read buffer grows to, which is also the most a
/// request's head may take (a larger one is answered 431). hyper starts at
/// 8 KiB and doubles a buffer a read filled; its default cap of 400 KiB let
/// a connection that had carried a 10 KB click keep 24 KiB or more.
const READ_BUFFER: usize = 16 * 1024;

/// How long to wait after `accept` fails for a reason other than the
/// client's (the process is out of file descriptors or memory), so the
/// loop does not spin while it lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Raises the process's soft limit on open files to its hard limit, as a
/// server that holds a socket per client should, and returns the soft limit
/// now in force (`None` where it cannot be read). Many systems start
/// processes at a soft limit of 1024 with a far higher hard limit.
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
        }
    }
    // `None` is unlimited.
    Some(limit.current.unwrap_or(u64::MAX))
}

/// See the Unix version; elsewhere the limit is left as it is.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

impl ConnectionLimits {
    /// These limits with the connection cap lowered, with a warning, to
    /// what `fd_limit` open files allow after [`RESERVED_FDS`]: past it,
    /// `accept` and the store would fail with "Too many open files".
    pub fn within_fd_limit(self, fd_limit: Option<u64>) -> Self {
        let Some(fd_limit) = fd_limit else {
            return self;
        };
        let room =
            usize::try_from(fd_limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
        if self.max_connections <= room {
            return self;
        }
        tracing::warn!(
            max_connections = self.max_connections,
            open_files_limit = fd_limit,
            "server.max_connections lowered to {room}: the process may open only \
             {fd_limit} files (raise `ulimit -n` to serve more)"
        );
        Self {
            max_connections: room,
            ..self
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`
/// resolves; then stops accepting, lets requests in flight finish, closes
/// idle connections and returns once every connection is closed (a client
/// still sending its head gets at most the header read timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let table = Arc::new(Table::new(limits.max_connections));
    let closing = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The client gave up before we took its connection.
            Err(e) if is_client_error(&e) => continue,
            Err(e) => {
                metrics::counter!("nudged_http_accept_errors_total").increment(1);
                tracing::error!(error = %e, "cannot accept a connection; retrying in a second");
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = table.slot() => slot,
        };
        let watch = table.open();
        tasks.spawn(serve_connection(
            stream,
            router.clone(),
            watch,
            slot,
            limits,
            closing.clone(),
        ));
    }
    // New clients are refused from here on rather than queued.
    drop(listener);
    closing.cancel();
    tasks.close();
    tasks.wait().await;
}

/// Errors of one connection that says nothing about the listener.
fn is_client_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, times out, is evicted, or (after
/// shutdown) finishes its request in flight.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    watch: Arc<Watch>,
    _slot: OwnedSemaphorePermit,
    limits: ConnectionLimits,
    closing: CancellationToken,
) {
    let _open = OpenGuard::new(watch.clone());
    let io = TokioIo::new(Watched {
        inner: stream,
        watch: watch.clone(),
    });
    let router = TowerToHyperService::new(router);
    let handling = watch.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = handling.begin_request();
        let response = hyper::service::Service::call(&router, request);
        async move {
            let response = response.await;
            drop(busy);
            response
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watch keeps the time; hyper's timer would also run between
    // requests (see the module docs).
    http.header_read_timeout(None);
    http.max_buf_size(READ_BUFFER);
    let mut connection = pin!(http.serve_connection(io, service));
    let mut draining = false;
    loop {
        let phase = watch.phase();
        let deadline = phase.deadline(&limits);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = watch.wake.notified() => {
                if watch.evicted.load(Ordering::Acquire) && !draining {
                    metrics::counter!("nudged_http_connections_closed_total", "reason" => "evicted")
                        .increment(1);
                    if matches!(watch.phase(), Phase::ReadingHead { .. }) {
                        // No request was dispatched: nothing to finish.
                        return;
                    }
                    // Closes now if idle, else after the response in flight.
                    connection.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
            () = closing.cancelled(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = sleep_until(deadline) => {
                // The phase may have moved on as the timer fired.
                if watch.phase() == phase {
                    let reason = match phase {
                        Phase::Waiting { first: false, .. } => "idle_timeout",
                        _ => "header_read_timeout",
                    };
                    metrics::counter!("nudged_http_connections_closed_total", "reason" => reason)
                        .increment(1);
                    tracing::debug!(reason, "connection closed");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing of a request has arrived: since the connection opened
    /// (`first`) or since its last response.
    Waiting { since: Instant, first: bool },
    /// Part of a request head has arrived; the header clock runs `since`.
    ReadingHead { since: Instant },
    /// A request is in the router.
    Handling,
}

impl Phase {
    fn deadline(self, limits: &ConnectionLimits) -> Option<Instant> {
        match self {
            Self::Waiting { since, first: true } | Self::ReadingHead { since } => {
                Some(since + limits.header_read_timeout)
            }
            Self::Waiting {
                since,
                first: false,
            } => Some(since + limits.idle_timeout),
            Self::Handling => None,
        }
    }
}

/// One connection's shared state.
struct Watch {
    id: u64,
    phase: Mutex<Phase>,
    /// Wakes the connection's task: its phase changed or it was evicted.
    wake: Notify,
    evicted: AtomicBool,
    table: Arc<Table>,
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Phase> {
        // A phase is a plain value; a panic elsewhere cannot leave it torn.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn phase(&self) -> Phase {
        *self.lock()
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
        self.wake.notify_one();
    }

    /// Bytes arrived: a waiting connection is now reading a head. The
    /// header clock of a new connection runs from when it connected.
    fn received(&self) {
        let mut phase = self.lock();
        if let Phase::Waiting { since, first } = *phase {
            let since = if first { since } else { Instant::now() };
            *phase = Phase::ReadingHead { since };
            drop(phase);
            self.wake.notify_one();
        }
    }

    /// A request head was read and handed to the router, until the guard
    /// is dropped with its response.
    fn begin_request(self: &Arc<Self>) -> Busy {
        self.set(Phase::Handling);
        Busy(self.clone())
    }
}

/// Marks a connection's request as finished when dropped.
struct Busy(Arc<Watch>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(Phase::Waiting {
            since: Instant::now(),
            first: false,
        });
        // An accept waiting for room may take this connection's.
        self.0.table.request_done.notify_one();
    }
}

/// Removes a connection from the table when its task ends.
struct OpenGuard(Arc<Watch>);

impl OpenGuard {
    fn new(watch: Arc<Watch>) -> Self {
        metrics::gauge!("nudged_http_connections_open").increment(1);
        Self(watch)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        metrics::gauge!("nudged_http_connections_open").decrement(1);
        self.0.table.lock().remove(&self.0.id);
    }
}

/// The open connections and the slots they hold.
struct Table {
    slots: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Watch>>>,
    next_id: AtomicU64,
    /// Notified when a request finishes, so an accept that found every
    /// connection busy can look again for one to close.
    request_done: Notify,
}

impl Table {
    fn new(max_connections: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_connections)),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            request_done: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Watch>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a newly accepted connection.
    fn open(self: &Arc<Self>) -> Arc<Watch> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let watch = Arc::new(Watch {
            id,
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                first: true,
            }),
            wake: Notify::new(),
            evicted: AtomicBool::new(false),
            table: self.clone(),
        });
        self.lock().insert(id, watch.clone());
        watch
    }

    /// A slot for one more connection: free, or made by closing the
    /// connection that has waited longest without a request in flight, or
    /// (when all are handling requests) the first that finishes.
    async fn slot(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return slot;
            }
            let request_done = self.request_done.notified();
            let evicted = self.evict_longest_waiting();
            tokio::select! {
                slot = self.slots.clone().acquire_owned() => {
                    return slot.expect("the slots semaphore is never closed");
                }
                () = request_done, if !evicted => {}
            }
        }
    }

    /// Asks the connection that has waited longest without a request in
    /// flight to close; false if every connection is handling one.
    fn evict_longest_waiting(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|w| !w.evicted.load(Ordering::Acquire))
            .filter_map(|w| match w.phase() {
                Phase::Waiting { since, .. } | Phase::ReadingHead { since } => Some((since, w)),
                Phase::Handling => None,
            })
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, watch)) => {
                watch.evicted.store(true, Ordering::Release);
                watch.wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A socket that tells its watch when bytes arrive.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evicted(watch: &Watch) -> bool {
        watch.evicted.load(Ordering::Acquire)
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_waiting_connection_makes_room_never_one_handling_a_request() {
        let table = Arc::new(Table::new(3));
        let _slots = [table.slot().await, table.slot().await, table.slot().await];
        let oldest = table.open();
        let middle = table.open();
        let newest = table.open();
        let busy = oldest.begin_request();

        assert!(table.evict_longest_waiting());
        assert!(!evicted(&oldest), "it is handling a request");
        assert!(evicted(&middle));
        assert!(!evicted(&newest));

        assert!(table.evict_longest_waiting());
        assert!(evicted(&newest));
        assert!(!table.evict_longest_waiting(), "only a busy one is left");

        drop(busy);
        assert!(table.evict_longest_waiting());
        assert!(evicted(&oldest));
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_a_new_one_waits_for_the_first_to_finish() {
        let table = Arc::new(Table::new(1));
        let slot = table.slot().await;
        let only = table.open();
        let busy = only.begin_request();
        let waiting = tokio::spawn({
            let table = table.clone();
            async move { table.slot().await }
        });
        // The waiting accept runs (single-threaded runtime) and finds
        // nothing it may close.
        tokio::task::yield_now().await;
        assert!(!evicted(&only));
        assert!(!waiting.is_finished());

        // The request ends: the connection is idle now, and is asked to close.
        drop(busy);
        tokio::time::timeout(Duration::from_secs(30), async {
            while !evicted(&only) {
                only.wake.notified().await;
            }
        })
        .await
        .expect("the idle connection was not asked to close");
        // It closes, and its slot goes to the new connection.
        drop(slot);
        let _slot = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .expect("the new connection got no slot")
            .unwrap();
    }
}
