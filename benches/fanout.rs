//! Fan-out: prompts to every person on a roster, delivered by the daemon's
//! outbox (release build, real SQLite file) to a local fake Slack over
//! loopback. `cargo bench --bench fanout`; `FANOUT_MESSAGES=2000` for a
//! quicker run.
//!
//! `NUDGED__STORAGE__URL=postgres://…` (an empty database) runs it on
//! PostgreSQL instead, and `FANOUT_REPLICAS=2` with it runs two daemons
//! (two `App`s, each with its own pool and delivery worker) on that one
//! database, as two replicas would: they share the workspace rate through
//! the store, so the limit and the bound below are the same as for one.
//!
//! The fake answers each call after 20 ms and enforces Slack's rules
//! strictly: one message per second per channel, and at most
//! [`WORKSPACE_PER_SEC`] accepted in any one-second window across the
//! workspace; a call over either limit is answered 429 with
//! `Retry-After: 1` and not posted. Each person's prompt goes to their own
//! DM, so the workspace limit is the bound: the fastest possible drain is
//! `messages / WORKSPACE_PER_SEC` seconds.
//!
//! Reported: drain time (from the delivery worker's start to the last
//! prompt accepted) against that bound, the share of calls answered 429,
//! and the process's peak resident memory (`VmHWM`; daemon and fake
//! together).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nudged::app::App;
use nudged::clock::SystemClock;
use nudged::config::Settings;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The fake's workspace-wide limit, messages per second.
const WORKSPACE_PER_SEC: usize = 100;
/// What the daemon is configured with: its workspace rate, and sends in
/// flight (which are also what may leave at one instant). Their sum stays
/// within the fake's limit in any one-second window.
const GLOBAL_PER_SEC: usize = 96;
const CONCURRENCY: usize = 4;
const LATENCY: Duration = Duration::from_millis(20);
const DEFAULT_MESSAGES: usize = 10_000;

#[derive(Default)]
struct Limits {
    /// When each channel last had a message accepted.
    channels: HashMap<String, Instant>,
    /// Acceptances in the last second, oldest first.
    window: VecDeque<Instant>,
    accepted: usize,
    refused: usize,
}

#[derive(Clone)]
struct Fake {
    limits: Arc<Mutex<Limits>>,
    target: usize,
    done: Arc<Notify>,
}

async fn handle(State(fake): State<Fake>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    let now = Instant::now();
    let accepted = {
        let mut limits = fake.limits.lock().unwrap();
        while limits
            .window
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            limits.window.pop_front();
        }
        let channel_busy = limits
            .channels
            .get(&channel)
            .is_some_and(|at| now.duration_since(*at) < Duration::from_secs(1));
        if channel_busy || limits.window.len() >= WORKSPACE_PER_SEC {
            limits.refused += 1;
            false
        } else {
            limits.window.push_back(now);
            limits.channels.insert(channel.clone(), now);
            limits.accepted += 1;
            if limits.accepted == fake.target {
                fake.done.notify_one();
            }
            true
        }
    };
    tokio::time::sleep(LATENCY).await;
    if accepted {
        axum::Json(json!({ "ok": true, "channel": channel, "ts": "1763568000.000100" }))
            .into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
    }
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A scratch installation: the shipped config and schedules, a roster of
/// `people`, and the daemon's delivery settings.
fn installation(dir: &std::path::Path, people: usize) -> std::path::PathBuf {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(repo.join("config.toml")).unwrap();
    let shipped = shipped
        .replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"")
        .replace(
            "global_per_sec = 5",
            &format!("global_per_sec = {GLOBAL_PER_SEC}"),
        )
        .replace("concurrency = 4", &format!("concurrency = {CONCURRENCY}"));
    let cut = shipped.find("[[people]]").unwrap();
    let mut config = shipped[..cut].to_owned();
    for i in 0..people {
        config.push_str(&format!("\n[[people]]\nid = \"U{i:06}\"\ntz = \"UTC\"\n"));
    }
    std::fs::write(dir.join("config.toml"), config).unwrap();
    std::fs::create_dir(dir.join("schedules")).unwrap();
    for entry in std::fs::read_dir(repo.join("schedules")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("schedules").join(path.file_name().unwrap())).unwrap();
    }
    dir.join("config.toml")
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let messages: usize = std::env::var("FANOUT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MESSAGES);

    let fake = Fake {
        limits: Arc::new(Mutex::new(Limits::default())),
        target: messages,
        done: Arc::new(Notify::new()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/api", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/api/{method}", post(handle))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let replicas: usize = std::env::var("FANOUT_REPLICAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let config = installation(dir.path(), messages);
    let storage = std::env::vars().filter(|(key, _)| key == "NUDGED__STORAGE__URL");
    let settings = Settings::load_with_env(
        &config,
        [
            ("NUDGED__CHAT__PLATFORM", "slack"),
            ("NUDGED__CHAT__SLACK__BOT_TOKEN", "xoxb-bench"),
            (
                "NUDGED__CHAT__SLACK__SIGNING_SECRET",
                "bench-signing-secret",
            ),
            ("NUDGED__CHAT__SLACK__API_BASE_URL", base_url.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into_iter()
        .chain(storage),
    )
    .unwrap();
    let engine = if settings.storage.url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    assert!(
        replicas == 1 || engine == "PostgreSQL",
        "FANOUT_REPLICAS needs NUDGED__STORAGE__URL=postgres://… (replicas share a database)"
    );

    let mut apps = Vec::new();
    for _ in 0..replicas {
        apps.push(
            App::build(settings.clone(), Arc::new(SystemClock))
                .await
                .unwrap(),
        );
    }
    let enqueue = Instant::now();
    apps[0].ask_roster_now().await.unwrap();
    let enqueued = enqueue.elapsed();

    let mut running = Vec::new();
    let mut stops = Vec::new();
    let started = Instant::now();
    for app in apps {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        running.push(tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        })));
    }
    fake.done.notified().await;
    let drain = started.elapsed();
    for stop in stops {
        let _ = stop.send(());
    }
    for replica in running {
        replica.await.unwrap().unwrap();
    }

    let (accepted, refused) = {
        let limits = fake.limits.lock().unwrap();
        (limits.accepted, limits.refused)
    };
    let calls = accepted + refused;
    let fastest = Duration::from_secs_f64(messages as f64 / WORKSPACE_PER_SEC as f64);
    println!(
        "fan-out of {messages} prompts to {messages} DMs; fake Slack: {} ms per call, 1/s per channel, {WORKSPACE_PER_SEC}/s per workspace",
        LATENCY.as_millis()
    );
    println!(
        "daemon: {replicas} replica(s) on {engine}, delivery.global_per_sec = {GLOBAL_PER_SEC}, \
         delivery.concurrency = {CONCURRENCY}"
    );
    println!("enqueued in {:.1} s", enqueued.as_secs_f64());
    println!(
        "drained in {:.1} s; fastest the limits allow {:.1} s: {:.1} % of it",
        drain.as_secs_f64(),
        fastest.as_secs_f64(),
        100.0 * fastest.as_secs_f64() / drain.as_secs_f64()
    );
    println!(
        "calls: {calls}, answered 429: {refused} ({:.2} %)",
        100.0 * refused as f64 / calls.max(1) as f64
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS: {mib:.0} MiB"),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}
