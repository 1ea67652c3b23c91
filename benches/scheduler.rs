//! The scheduler against the roster's size: rosters of 1,000, 10,000 and
//! 100,000 people in six time zones, the shipped schedules, a real SQLite
//! file (release build). `cargo bench --bench scheduler`;
//! `SCHEDULER_ROSTERS=1000,10000` for fewer sizes.
//!
//! Each start runs in a child process of its own (this binary again), as a
//! daemon's start would, so each peak RSS is that roster's and that
//! start's. Reported per roster:
//!
//! - start-up: from reading the configuration to `/healthz` answering, on
//!   a fresh database (first start) and again on the same one (restart);
//! - the first tick of each start (on the first, every due time is
//!   computed);
//! - the CPU time of a tick with nothing due (all threads of the process,
//!   from `/proc/self/task/*/schedstat`), averaged over [`IDLE_TICKS`];
//! - the Thursday 16:00 fan-out: one tick at 16:00 in each of the six
//!   zones, which between them enqueue one check-in for everyone;
//! - the larger of the two processes' peak resident memory (`VmHWM`).
//!
//! `SCHEDULER_PHASES=1` prints, to standard error, the memory after each
//! phase (peak, resident, and how much of it is heap or mapped files).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nudged::app::App;
use nudged::clock::ManualClock;
use nudged::config::Settings;
use nudged::scheduler::Dispatcher;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Rosters measured unless `SCHEDULER_ROSTERS` says otherwise.
const ROSTERS: [usize; 3] = [1_000, 10_000, 100_000];
/// Zones the roster is spread over, round robin.
const ZONES: [&str; 6] = [
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
];
/// Thursday 16:00 in each of [`ZONES`] on 2026-11-19, in UTC.
const FAN_OUT: [&str; 6] = [
    "2026-11-20T00:00:00Z",
    "2026-11-19T21:00:00Z",
    "2026-11-19T16:00:00Z",
    "2026-11-19T15:00:00Z",
    "2026-11-19T10:30:00Z",
    "2026-11-19T07:00:00Z",
];
/// Monday 00:00 UTC of that week: nothing is due before Thursday.
const MONDAY: &str = "2026-11-16T00:00:00Z";
/// Ticks with nothing due, averaged.
const IDLE_TICKS: u32 = 100;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

/// CPU time used so far by every thread of this process.
fn cpu() -> Duration {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path().join("schedstat");
        // A thread that ended meanwhile has no file any more.
        if let Ok(stat) = std::fs::read_to_string(path) {
            nanos += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(nanos)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib / 1024.0
}

/// The shipped configuration and schedules in `dir`, with a free port and
/// a roster of `people` in [`ZONES`].
fn installation(dir: &Path, people: usize) -> std::path::PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(repo.join("config.toml")).unwrap();
    let shipped = shipped.replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"");
    // The shipped demo person goes: the roster is the bench's.
    let mut config = shipped[..shipped.find("[[people]]").unwrap()].to_owned();
    for i in 0..people {
        config.push_str(&format!(
            "\n[[people]]\nid = \"U{i:07}\"\ntz = \"{}\"\n",
            ZONES[i % ZONES.len()]
        ));
    }
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let schedules = dir.join("schedules");
    std::fs::create_dir_all(&schedules).unwrap();
    for entry in std::fs::read_dir(repo.join("schedules")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, schedules.join(path.file_name().unwrap())).unwrap();
    }
    dir.join("config.toml")
}

/// A running daemon (HTTP only: the bench ticks the scheduler itself).
struct Started {
    dispatcher: Dispatcher,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// From reading the configuration to `/healthz` answering 200.
    startup: Duration,
}

/// With `SCHEDULER_PHASES` set, prints the memory figures after `name`.
fn phase(name: &str) {
    if std::env::var_os("SCHEDULER_PHASES").is_some() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let get = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap()
                .to_owned()
        };
        eprintln!(
            "{name:>20}: {} {} {} {}",
            get("VmHWM:"),
            get("VmRSS:"),
            get("RssAnon:"),
            get("RssFile:")
        );
    }
}

async fn start(config: &Path, clock: &ManualClock) -> Started {
    let begun = Instant::now();
    phase("before load");
    let settings = Settings::load_with_env(config, []).unwrap();
    phase("loaded");
    let app = App::build(settings, Arc::new(clock.clone()))
        .await
        .unwrap()
        .without_scheduler()
        .without_delivery();
    let dispatcher = Dispatcher::new(app.settings(), app.store());
    let url = format!("http://{}/healthz", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    Started {
        dispatcher,
        stop,
        running,
        startup: begun.elapsed(),
    }
}

impl Started {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.running.await.unwrap().unwrap();
    }
}

/// Wall and CPU time of `ticks` at the instants given.
async fn ticks(dispatcher: &Dispatcher, instants: &[DateTime<Utc>]) -> (Duration, Duration, usize) {
    let (wall, before) = (Instant::now(), cpu());
    let mut sent = 0;
    for now in instants {
        sent += dispatcher.tick(*now).await.unwrap().sent;
    }
    (wall.elapsed(), cpu() - before, sent)
}

/// The first start on a fresh database and its first tick (on which every
/// due time is computed), then the process's peak RSS.
async fn first_start(config: &Path) -> Vec<f64> {
    let clock = ManualClock::new(at(MONDAY));
    let first = start(config, &clock).await;
    phase("started");
    let (tick, _, _) = ticks(&first.dispatcher, &[at(MONDAY)]).await;
    phase("first tick");
    let startup = first.startup;
    first.stop().await;
    vec![ms(startup), ms(tick), peak_rss_mib()]
}

/// A restart on the same database, its first tick, [`IDLE_TICKS`] ticks
/// with nothing due, and the Thursday 16:00 fan-out, then the peak RSS.
async fn restart(config: &Path, people: usize) -> Vec<f64> {
    let monday = at(MONDAY);
    let clock = ManualClock::new(monday);
    let again = start(config, &clock).await;
    let (tick, _, _) = ticks(&again.dispatcher, &[monday]).await;
    phase("restarted");
    let idle: Vec<_> = (1..=IDLE_TICKS)
        .map(|m| monday + chrono::Duration::minutes(i64::from(m)))
        .collect();
    let (_, idle_cpu, idle_sent) = ticks(&again.dispatcher, &idle).await;
    assert_eq!(idle_sent, 0);
    phase("idle");

    let mut fan_out: Vec<_> = FAN_OUT.iter().map(|t| at(t)).collect();
    fan_out.sort();
    let (fan_wall, fan_cpu, sent) = ticks(&again.dispatcher, &fan_out).await;
    assert_eq!(sent, people, "one check-in each");
    phase("fan-out");
    let startup = again.startup;
    again.stop().await;
    vec![
        ms(startup),
        ms(tick),
        ms(idle_cpu) / f64::from(IDLE_TICKS),
        fan_wall.as_secs_f64(),
        fan_cpu.as_secs_f64(),
        peak_rss_mib(),
    ]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs this binary again as `--stage STAGE` on `config`, and reads the
/// figures it prints on its last line.
fn stage(stage: &str, config: &Path, people: usize) -> Vec<f64> {
    let me = std::env::current_exe().unwrap();
    let out = std::process::Command::new(me)
        .args([
            "--stage",
            stage,
            "--roster",
            &people.to_string(),
            "--config",
        ])
        .arg(config)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{stage} with {people}: {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("figures")
        .split_whitespace()
        .map(|f| f.parse().expect("a figure"))
        .collect()
}

/// Measures one roster, each start in a process of its own as a daemon's
/// would be, and prints one line of the table.
fn measure(people: usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = installation(dir.path(), people);
    let first = stage("first", &config, people);
    let again = stage("restart", &config, people);
    println!(
        "| {people:>7} | {:>7.0} ms | {:>7.0} ms | {:>7.0} ms | {:>7.0} ms | {:>8.2} ms | {:>7.1} s ({:.1} s CPU) | {:>5.0} MiB |",
        first[0],
        first[1],
        again[0],
        again[1],
        again[2],
        again[3],
        again[4],
        first[2].max(again[5]),
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        let i = args.iter().position(|a| a == name)?;
        args.get(i + 1).cloned()
    };
    if let Some(stage) = arg("--stage") {
        let people: usize = arg("--roster").unwrap().parse().expect("--roster N");
        let config = std::path::PathBuf::from(arg("--config").unwrap());
        // What the daemon logs, to standard error, as `RUST_LOG` asks (none
        // by default).
        let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
            .ok()
            .and_then(|directives| directives.parse().ok())
            .unwrap_or_default();
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let figures = match stage.as_str() {
            "first" => runtime.block_on(first_start(&config)),
            _ => runtime.block_on(restart(&config, people)),
        };
        let figures: Vec<String> = figures.iter().map(f64::to_string).collect();
        println!("{}", figures.join(" "));
        return;
    }
    let rosters: Vec<usize> = match std::env::var("SCHEDULER_ROSTERS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("SCHEDULER_ROSTERS: numbers"))
            .collect(),
        Err(_) => ROSTERS.to_vec(),
    };
    println!(
        "| people  | first start | its first tick | restart | its first tick | CPU per idle tick | Thursday 16:00 fan-out | peak RSS |"
    );
    println!("|--------:|--------:|--------:|--------:|--------:|---------:|-----------:|------:|");
    for people in rosters {
        measure(people);
    }
}
