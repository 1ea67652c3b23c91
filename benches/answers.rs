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
//! Each click is what Slack posts for a click on a seven-question prompt:
//! the `block_actions` payload with the whole clicked message, its blocks
//! rendered by nudged's own prompt renderer (`render::prompt`), about
//! 9–10 KB as a form body.
//!
//! The load generator runs on a runtime of its own (threads named
//! `bench-load`), so the server's CPU time per request is the process's
//! minus those threads'. Peak RSS is the whole process's (server and load
//! generator). The outbox is not delivered during the runs (there is no
//! Slack to send to).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nudged::app::App;
use nudged::clock::SystemClock;
use nudged::config::Settings;
use nudged::domain::{IsoWeek, PersonId, QuestionId};
use nudged::http::verify::sign;
use serde_json::json;

const SECRET: &str = "bench-signing-secret";
const CONNECTIONS: usize = 32;
const PEOPLE: usize = 1_000;
/// Requests of each kind, over all rounds.
const REQUESTS: usize = 40_000;
/// Rounds of each kind; a multiple of 2 so the order balances.
const ROUNDS: usize = 8;
/// Requests before the first round, to open the connections.
const WARM_UP: usize = 2_000;
/// The schedule whose prompt is clicked.
const SCHEDULE: &str = "weekly-checkin";
/// The load generator's threads, told apart from the server's by name.
const LOAD_THREADS: &str = "bench-load";

/// What the clicks are built from: the catalogue and the questions of the
/// clicked prompt.
struct Prompts {
    settings: Settings,
    questions: Vec<QuestionId>,
}

impl Prompts {
    /// A click by `clicker` on `owner`'s prompt for this week (the roster
    /// is in UTC; a click for another week is refused), on question and
    /// option picked by `n`, as Slack posts it: the form body with the
    /// `block_actions` payload carrying the whole rendered prompt. Each
    /// click has an `action_ts` of its own, so none is taken for a replay.
    fn click(&self, clicker: usize, owner: usize, n: usize) -> String {
        static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let week = IsoWeek::of(chrono::Utc::now().date_naive());
        let owner_id = PersonId::parse(&format!("U{owner:06}")).unwrap();
        let message = nudged::render::prompt(
            &self.settings.catalogue,
            &self.questions,
            &owner_id,
            week,
            SCHEDULE,
            &BTreeMap::new(),
        );
        let mut blocks = message.blocks;
        // Slack gives every block without one a `block_id` of its own.
        for (i, block) in blocks.iter_mut().enumerate() {
            if block.get("block_id").is_none() {
                block["block_id"] = json!(format!("b{i:04}"));
            }
        }
        // Each person's next click picks another option: a real write.
        let question_index = n % self.questions.len();
        let question = self
            .settings
            .catalogue
            .get(self.questions[question_index].as_str())
            .unwrap();
        let option = &question.options[(n / self.questions.len()) % question.options.len()];
        let action_id = format!("{}:{}", question.id, option.key);
        let value = format!(
            "v1|{week}|{}|{}|{owner_id}|{SCHEDULE}",
            question.id, option.key
        );
        let channel = format!("D{owner:08}");
        let message_ts = format!("1763568000.{owner:06}");
        let payload = json!({
            "type": "block_actions",
            "user": {
                "id": format!("U{clicker:06}"),
                "username": format!("user{clicker}"),
                "name": format!("user{clicker}"),
                "team_id": "T0BENCH01",
            },
            "api_app_id": "A0BENCHAPP",
            "token": "legacyVerificationToken",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": false,
            },
            "trigger_id": format!("{}.{}.{id:032x}", 1_000_000_000 + id, 2_000_000_000 + id),
            "team": { "id": "T0BENCH01", "domain": "bench" },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": channel, "name": "directmessage" },
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": message.text,
                "ts": message_ts,
                "bot_id": "B0BENCHBOT",
                "app_id": "A0BENCHAPP",
                "team": "T0BENCH01",
                "blocks": blocks,
            },
            "state": { "values": {} },
            "response_url": format!(
                "https://hooks.slack.com/actions/T0BENCH01/{}/aB3dE5gH7jK9mN1pQ3sT5vX7",
                5_000_000_000 + id
            ),
            "actions": [{
                "action_id": action_id,
                "block_id": format!("q:{}", question.id),
                "text": { "type": "plain_text", "text": option.label, "emoji": true },
                "value": value,
                "type": "button",
                "action_ts": format!("1763568360.{id:06}"),
            }],
        });
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    }
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

/// User plus system CPU time of `stat` (a `/proc/…/stat` line) and, for
/// a thread, its name.
fn stat_cpu(stat: &str) -> Option<(Duration, &str)> {
    // Fields after the command name, which is in parentheses.
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux platform Rust targets.
    Some((Duration::from_millis(ticks * 10), name))
}

/// CPU time of the server so far: the process's (`/proc`, Linux), less
/// that of the load generator's threads, which live as long as the bench.
fn server_cpu_time() -> Option<Duration> {
    let (process, _) = stat_cpu(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut load = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("stat")) else {
            continue;
        };
        if let Some((cpu, name)) = stat_cpu(&stat)
            && name.starts_with(LOAD_THREADS)
        {
            load += cpu;
        }
    }
    Some(process.saturating_sub(load))
}

/// A line of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `requests` clicks from [`CONNECTIONS`] connections; click numbers
/// start at `first`, so each round goes on where the last one stopped.
async fn load(
    load_runtime: &tokio::runtime::Handle,
    prompts: &Arc<Prompts>,
    client: &reqwest::Client,
    url: &str,
    own_prompt: bool,
    first: usize,
    requests: usize,
) -> Run {
    let per_connection = requests / CONNECTIONS;
    let started = Instant::now();
    let cpu_before = server_cpu_time();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|w| {
            let client = client.clone();
            let url = url.to_owned();
            let prompts = prompts.clone();
            load_runtime.spawn(async move {
                let mut latencies = Vec::with_capacity(per_connection);
                for i in 0..per_connection {
                    let n = first + w * per_connection + i;
                    let clicker = n % PEOPLE;
                    let owner = if own_prompt {
                        clicker
                    } else {
                        (clicker + 1) % PEOPLE
                    };
                    let body = prompts.click(clicker, owner, n / PEOPLE);
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
    let cpu = server_cpu_time()
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

    let prompts = Arc::new(Prompts {
        questions: settings.questions_for(Some(SCHEDULE)),
        settings: settings.clone(),
    });
    let sample = prompts.click(0, 0, 0);
    let durable_name = if settings.storage.url.starts_with("sqlite:") {
        "durable (SQLite, WAL)"
    } else {
        "durable (PostgreSQL)"
    };

    // The server on a runtime like the daemon's; the load generator on
    // one of its own, whose threads are named so their CPU time is told
    // apart from the server's.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let load_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOAD_THREADS)
        .enable_all()
        .build()
        .unwrap();
    let load_handle = load_runtime.handle().clone();
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

        let idle_kib = status_kib("VmRSS:");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .unwrap();
        load(&load_handle, &prompts, &client, &url, false, 0, WARM_UP).await;
        let per_round = REQUESTS / ROUNDS;
        let (mut skipped, mut durable) = (Run::default(), Run::default());
        for round in 0..ROUNDS {
            let first = WARM_UP + round * per_round;
            // skipped, durable, durable, skipped, skipped, durable, …
            for own_prompt in [round % 2 == 1, round % 2 == 0] {
                let run = load(&load_handle, &prompts, &client, &url, own_prompt, first, per_round).await;
                if own_prompt { durable.add(run) } else { skipped.add(run) }
            }
        }
        let stored = store.answers(None).await.unwrap().len();

        let _ = stop.send(());
        server.await.unwrap().unwrap();

        println!(
            "{REQUESTS} signed block_actions clicks of each kind in {ROUNDS} rounds, \
             {CONNECTIONS} connections, loopback, release build; \
             a click's form body is {} bytes",
            sample.len()
        );
        let ratio = durable.rate() / skipped.rate();
        for (name, run) in [(durable_name, &mut durable), ("store write skipped", &mut skipped)] {
            let cpu = run.cpu.map_or_else(String::new, |cpu| {
                format!(
                    "   server CPU {:>4.0} µs/request",
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
        let mib = |kib: Option<u64>| kib.map_or_else(|| "?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        println!(
            "RSS of the process (server and load generator): {} MiB before the load, peak {} MiB",
            mib(idle_kib),
            mib(status_kib("VmHWM:"))
        );
    });
}
