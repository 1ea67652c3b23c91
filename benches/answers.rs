//! Inbound load: signed `block_actions` clicks over loopback against the
//! daemon (release build, real SQLite file, durable writes), from 32
//! concurrent connections. `cargo bench --bench answers`.
//!
//! Two kinds of load on the same server: every click recorded (the answer
//! and its prompt's redraw committed before the 200), and every click on
//! someone else's prompt, which is verified and parsed exactly the same
//! way but refused before the store is touched: the server's rate with the
//! store write skipped. They alternate in rounds (skipped, durable,
//! durable, skipped, …) so that a change in the machine's speed during
//! the run weighs on both alike; each figure is over all rounds of its kind.
//!
//! The outbox is not delivered during the runs (there is no Slack to send
//! to); each line also shows the process's CPU time per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nudged::app::App;
use nudged::clock::SystemClock;
use nudged::config::Settings;
use nudged::http::verify::sign;

const SECRET: &str = "bench-signing-secret";
const CONNECTIONS: usize = 32;
const PEOPLE: usize = 1_000;
/// Requests of each kind, over all rounds.
const REQUESTS: usize = 40_000;
/// Rounds of each kind; a multiple of 2 so the order balances.
const ROUNDS: usize = 8;
/// Requests before the first round, to open the connections.
const WARM_UP: usize = 2_000;
const OPTIONS: [&str; 4] = ["0", "1-2", "3-5", "6+"];

/// A click on this week's prompt (the roster is in UTC; a click for
/// another week is refused), with an `action_ts` of its own so no two
/// clicks are taken for a replay.
fn click(clicker: usize, owner: usize, n: usize) -> String {
    static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let week = nudged::domain::IsoWeek::of(chrono::Utc::now().date_naive());
    let option = OPTIONS[n % OPTIONS.len()];
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": format!("U{clicker:06}") },
        "container": { "type": "message", "message_ts": "1763568000.000100", "channel_id": "D0001" },
        "actions": [{
            "action_id": format!("decisions:{option}"),
            "value": format!("v1|{week}|decisions|{option}|U{owner:06}|weekly-checkin"),
            "action_ts": format!("1763568360.{id:06}"),
        }],
    });
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

/// What the rounds of one kind measured, added up.
#[derive(Default)]
struct Run {
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time of the whole process (server and load generator), where
    /// the OS reports it: less sensitive than the rate to other work on
    /// the machine, so runs on a busy machine still compare.
    cpu: Option<Duration>,
    /// Each round's rate, for the spread.
    rates: Vec<f64>,
}

impl Run {
    fn add(&mut self, round: Run) {
        self.rates
            .push(round.latencies.len() as f64 / round.elapsed.as_secs_f64());
        self.elapsed += round.elapsed;
        self.latencies.extend(round.latencies);
        self.cpu = if self.rates.len() == 1 {
            round.cpu
        } else {
            self.cpu.zip(round.cpu).map(|(total, cpu)| total + cpu)
        };
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn at(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        self.latencies[((n as f64 * q) as usize).min(n - 1)]
    }
}

/// User plus system CPU time of this process so far, from `/proc` (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux platform Rust targets.
    Some(Duration::from_millis(ticks * 10))
}

/// `requests` clicks from [`CONNECTIONS`] connections; click numbers
/// start at `first`, so each round goes on where the last one stopped.
async fn load(
    client: &reqwest::Client,
    url: &str,
    own_prompt: bool,
    first: usize,
    requests: usize,
) -> Run {
    let per_connection = requests / CONNECTIONS;
    let started = Instant::now();
    let cpu_before = cpu_time();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|w| {
            let client = client.clone();
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_connection);
                for i in 0..per_connection {
                    let n = first + w * per_connection + i;
                    let clicker = n % PEOPLE;
                    let owner = if own_prompt {
                        clicker
                    } else {
                        (clicker + 1) % PEOPLE
                    };
                    // Each person's next click picks another option: a real write.
                    let body = click(clicker, owner, n / PEOPLE);
                    let ts = chrono::Utc::now().timestamp();
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("x-slack-request-timestamp", ts.to_string())
                        .header("x-slack-signature", sign(SECRET, ts, body.as_bytes()))
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    Run {
        elapsed,
        latencies,
        cpu,
        rates: Vec::new(),
    }
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("schedules")).unwrap();
    for entry in std::fs::read_dir(repo.join("schedules")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path().join("schedules").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let roster: String = (0..PEOPLE)
        .map(|p| format!("[[people]]\nid = \"U{p:06}\"\ntz = \"UTC\"\n"))
        .collect();
    std::fs::write(
        dir.path().join("config.toml"),
        format!("[server]\nbind = \"127.0.0.1:0\"\n[chat]\nplatform = \"slack\"\n{roster}"),
    )
    .unwrap();
    // `NUDGED__STORAGE__URL=postgres://…` runs the same load against an
    // empty PostgreSQL database instead of a SQLite file in the temp dir.
    let storage = std::env::vars().filter(|(key, _)| key == "NUDGED__STORAGE__URL");
    let settings = Settings::load_with_env(
        &dir.path().join("config.toml"),
        [
            (
                "NUDGED__CHAT__SLACK__BOT_TOKEN".to_owned(),
                "xoxb-bench".to_owned(),
            ),
            (
                "NUDGED__CHAT__SLACK__SIGNING_SECRET".to_owned(),
                SECRET.to_owned(),
            ),
        ]
        .into_iter()
        .chain(storage),
    )
    .unwrap();

    let durable_name = if settings.storage.url.starts_with("sqlite:") {
        "durable (SQLite, WAL)"
    } else {
        "durable (PostgreSQL)"
    };

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // No delivery worker: this measures the inbound path. The prompt
        // updates are committed to the outbox all the same; sending them is
        // paced by Slack's rate limits, not by this path.
        let app = App::build(settings, Arc::new(SystemClock))
            .await
            .unwrap()
            .without_delivery();
        let url = format!("http://{}/slack/interactions", app.local_addr());
        let store = app.store();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .unwrap();
        load(&client, &url, false, 0, WARM_UP).await;
        let per_round = REQUESTS / ROUNDS;
        let (mut skipped, mut durable) = (Run::default(), Run::default());
        for round in 0..ROUNDS {
            let first = WARM_UP + round * per_round;
            // skipped, durable, durable, skipped, skipped, durable, …
            for own_prompt in [round % 2 == 1, round % 2 == 0] {
                let run = load(&client, &url, own_prompt, first, per_round).await;
                if own_prompt { durable.add(run) } else { skipped.add(run) }
            }
        }
        let stored = store.answers(None).await.unwrap().len();

        let _ = stop.send(());
        server.await.unwrap().unwrap();

        println!(
            "{REQUESTS} signed block_actions clicks of each kind in {ROUNDS} rounds, \
             {CONNECTIONS} connections, loopback, release build"
        );
        let ratio = durable.rate() / skipped.rate();
        for (name, run) in [(durable_name, &mut durable), ("store write skipped", &mut skipped)] {
            let cpu = run.cpu.map_or_else(String::new, |cpu| {
                format!(
                    "   CPU {:>4.0} µs/request",
                    cpu.as_secs_f64() * 1e6 / run.latencies.len() as f64
                )
            });
            let (low, high) = run
                .rates
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
            println!(
                "{name:<22} {:>8.0} answers/s ({low:.0}–{high:.0} by round)   p50 {:>6.2} ms   p99 {:>6.2} ms{cpu}",
                run.rate(),
                run.at(0.50).as_secs_f64() * 1e3,
                run.at(0.99).as_secs_f64() * 1e3
            );
        }
        println!("durable / skipped: {ratio:.2}");
        println!("answers stored: {stored} (one per person and question)");
    });
}
