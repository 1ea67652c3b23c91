//! Shared set-up: a scratch directory with its own config, schedules and
//! SQLite file, and the real `nudged` binary run against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Every test that waits on another process gives up after this long, so a
/// hang fails with context instead of stalling the suite.
pub const WAIT: Duration = Duration::from_secs(30);

/// The repository root (where the shipped config and schedules live).
/// The id of person `i` of a [`TestEnv::fleet`] roster.
pub fn roster_id(i: usize) -> String {
    format!("U{i:05}")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch nudged installation.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    /// The shipped `config.toml` and `schedules/`, copied into a fresh
    /// directory, with the HTTP port set to 0 (any free port).
    pub fn new() -> Self {
        Self::with_config(|shipped| {
            shipped.replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"")
        })
    }

    /// Like [`TestEnv::new`], with the shipped config text edited by `edit`.
    pub fn with_config(edit: impl FnOnce(&str) -> String) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let shipped = std::fs::read_to_string(repo().join("config.toml")).expect("shipped config");
        std::fs::write(dir.path().join("config.toml"), edit(&shipped)).expect("write config");
        let schedules = dir.path().join("schedules");
        std::fs::create_dir(&schedules).expect("schedules dir");
        for entry in std::fs::read_dir(repo().join("schedules")).expect("shipped schedules") {
            let path = entry.expect("dir entry").path();
            std::fs::copy(&path, schedules.join(path.file_name().expect("file name")))
                .expect("copy schedule");
        }
        Self { dir }
    }

    /// A roster of `people` ([`roster_id`]) in UTC that delivers fast: a
    /// workspace rate far above what a test sends, `concurrency` sends at
    /// once and a lease of `lease_secs`, so a dead daemon's rows are taken
    /// over soon.
    pub fn fleet(people: usize, concurrency: usize, lease_secs: u64) -> Self {
        let roster: String = (0..people)
            .map(|i| format!("\n[[people]]\nid = \"{}\"\ntz = \"UTC\"\n", roster_id(i)))
            .collect();
        Self::with_config(|c| {
            let c = c
                .replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"")
                .replace("global_per_sec = 5", "global_per_sec = 1000")
                .replace("concurrency = 4", &format!("concurrency = {concurrency}"))
                .replace("lease_secs = 60", &format!("lease_secs = {lease_secs}"));
            let cut = c.find("[[people]]").expect("shipped roster");
            format!("{}{roster}", &c[..cut])
        })
    }

    /// `nudged ARGS` as a child process on the slack platform, sending to
    /// `slack` with bot token `token`; no input, no output kept, killed when
    /// dropped. Its stderr is the caller's to direct.
    pub fn daemon(
        &self,
        slack: &crate::fake_slack::FakeSlack,
        token: &str,
        args: &[&str],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(self.command(args));
        command
            .env("NUDGED__CHAT__PLATFORM", "slack")
            .env("NUDGED__CHAT__SLACK__BOT_TOKEN", token)
            .env("NUDGED__CHAT__SLACK__SIGNING_SECRET", SIGNING_SECRET)
            .env("NUDGED__CHAT__SLACK__API_BASE_URL", &slack.base_url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/nudged.db")
    }

    /// Writes `text` to `name` in the scratch directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// A `nudged` command with `--config` pointing here, run from here.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudged"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        for (key, _) in std::env::vars() {
            if key.starts_with("NUDGED__") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs `nudged ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nudged")
    }

    /// Runs `nudged ARGS`, asserting success, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nudged {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs `nudged ARGS`, asserting exit code 1, and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "nudged {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }
}

/// A small history: two people, two weeks.
pub const HISTORY: &str = "person,week,question,option
U1,2026-W46,decisions,3-5
U1,2026-W46,stakeholders,4+
U1,2026-W46,capacity,yes
U1,2026-W47,decisions,6+
U1,2026-W47,focus,deciding
U2,2026-W47,decisions,0
U2,2026-W47,continuity,rotated
";

/// An HTTP client for talking to the daemon over loopback.
pub fn http() -> reqwest::Client {
    // reqwest is built without a default TLS provider; install ours (the
    // same one the binary installs) before building a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("http client")
}

/// The bot token the in-process app is configured with.
pub const BOT_TOKEN: &str = "xoxb-test-token";

/// The signing secret the in-process app is configured with.
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A daemon running inside the test process on a loopback port, with a
/// manual clock, the `slack` platform and a real SQLite file.
pub struct TestApp {
    /// Kept alive for the app's files; dropped with it.
    pub _env: TestEnv,
    pub addr: std::net::SocketAddr,
    pub store: std::sync::Arc<dyn nudged::store::Store>,
    pub clock: nudged::clock::ManualClock,
    pub client: reqwest::Client,
    /// The fake Slack Web API the app's messages are delivered to.
    pub slack: crate::fake_slack::FakeSlack,
    /// Every re-assessment the app's worker completes.
    pub assessed: tokio::sync::broadcast::Receiver<nudged::service::readiness::Reassessed>,
    /// The app's settings, for a delivery worker of a test's own.
    pub settings: std::sync::Arc<nudged::config::Settings>,
    /// The app's supervisor, for workers of a test's own.
    pub supervisor: nudged::supervisor::Supervisor,
    /// Delivers the outbox when a test says so; see [`TestApp::deliver`].
    worker: tokio::sync::Mutex<nudged::outbox::Worker>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Thursday 2026-11-19 16:05 UTC: inside ISO week 2026-W47.
pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-19T16:05:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Starts the app with the shipped config, platform `slack`, and a roster
/// of `people` (ids) in UTC; no scheduler and no delivery worker, so each
/// test ticks and delivers itself.
pub async fn spawn_app(people: &[&str]) -> TestApp {
    spawn_app_with(people, &[], false).await
}

/// Like [`spawn_app`], with more `NUDGED__…` settings, and with this
/// week's check-in put in the outbox for everyone when `ask_now`.
pub async fn spawn_app_with(people: &[&str], overrides: &[(&str, &str)], ask_now: bool) -> TestApp {
    // First: it installs the TLS provider every HTTP client here needs.
    let client = http();
    let roster: String = people
        .iter()
        .map(|id| format!("\n[[people]]\nid = \"{id}\"\ntz = \"UTC\"\n"))
        .collect();
    let env = TestEnv::with_config(|c| {
        let c = c.replace("bind = \"127.0.0.1:3000\"", "bind = \"127.0.0.1:0\"");
        let cut = c.find("[[people]]").expect("shipped roster");
        format!("{}{roster}", &c[..cut])
    });
    let slack = crate::fake_slack::FakeSlack::start().await;
    let settings = nudged::config::Settings::load_with_env(
        &env.config(),
        [
            ("NUDGED__CHAT__PLATFORM", "slack"),
            ("NUDGED__CHAT__SLACK__BOT_TOKEN", BOT_TOKEN),
            ("NUDGED__CHAT__SLACK__SIGNING_SECRET", SIGNING_SECRET),
            ("NUDGED__CHAT__SLACK__API_BASE_URL", slack.base_url.as_str()),
        ]
        .into_iter()
        .chain(overrides.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .expect("test config");
    let config = std::sync::Arc::new(settings.clone());
    let clock = nudged::clock::ManualClock::new(test_now());
    let app = nudged::app::App::build(settings, std::sync::Arc::new(clock.clone()))
        .await
        .expect("build app")
        .without_delivery()
        .without_scheduler();
    if ask_now {
        app.ask_roster_now().await.expect("ask the roster");
    }
    let addr = app.local_addr();
    let assessed = app.assessor().subscribe();
    let store = app.store();
    let supervisor = app.supervisor();
    let health = app.health();
    let worker = nudged::outbox::Worker::new(store.clone(), slack_chat(&slack), config.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    // Ready once its workers are: each has reported from its loop.
    tokio::time::timeout(WAIT, async {
        for worker in ["reassessment", "pruning"] {
            health
                .wait_for(worker, |w| w.state == nudged::health::WorkerState::Running)
                .await;
        }
    })
    .await
    .expect("the app's workers start");
    TestApp {
        _env: env,
        addr,
        store,
        clock,
        client,
        slack,
        assessed,
        settings: config,
        supervisor,
        worker: tokio::sync::Mutex::new(worker),
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// The real Slack adapter, pointed at `slack`.
pub fn slack_chat(slack: &crate::fake_slack::FakeSlack) -> std::sync::Arc<nudged::chat::SlackChat> {
    // As in `http()`: reqwest needs a TLS provider installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::sync::Arc::new(
        nudged::chat::SlackChat::new(&slack.base_url, &BOT_TOKEN.to_owned().into())
            .expect("slack client"),
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `path` signed as Slack signs it, at the app's clock.
    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> reqwest::Response {
        let ts = self.clock_now().timestamp();
        let signature = nudged::http::verify::sign(SIGNING_SECRET, ts, body.as_bytes());
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn event(&self, json: &serde_json::Value) -> reqwest::Response {
        self.post_signed("/slack/events", "application/json", &json.to_string())
            .await
    }

    pub async fn interaction(&self, json: &serde_json::Value) -> reqwest::Response {
        let body = serde_urlencoded::to_string([("payload", json.to_string())]).unwrap();
        self.post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    /// `/pulse TEXT` from `user`, a new invocation each time (a
    /// `trigger_id` of its own); returns the ephemeral reply text.
    pub async fn pulse(&self, user: &str, text: &str) -> String {
        static TRIGGERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = TRIGGERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = self
            .command(user, text, &format!("8096483200.{n}.5c2e3a"))
            .await;
        assert_eq!(response.status(), 200);
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["response_type"], "ephemeral");
        json["text"].as_str().unwrap().to_owned()
    }

    /// POSTs `/pulse TEXT` from `user` with `trigger_id` (the same one again
    /// is a replay), signed at the app's clock.
    pub async fn command(&self, user: &str, text: &str, trigger_id: &str) -> reqwest::Response {
        let body = serde_urlencoded::to_string([
            ("command", "/pulse"),
            ("text", text),
            ("user_id", user),
            ("channel_id", "D0001"),
            ("trigger_id", trigger_id),
        ])
        .unwrap();
        self.post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await
    }

    /// Slack's retry number `n` of `event`: the same body, signed at the
    /// app's clock, with `X-Slack-Retry-Num`.
    pub async fn event_retry(&self, event: &serde_json::Value, n: u32) -> reqwest::Response {
        let body = event.to_string();
        let ts = self.clock_now().timestamp();
        self.client
            .post(self.url("/slack/events"))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts.to_string())
            .header(
                "x-slack-signature",
                nudged::http::verify::sign(SIGNING_SECRET, ts, body.as_bytes()),
            )
            .header("x-slack-retry-num", n.to_string())
            .header("x-slack-retry-reason", "http_error")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Runs `sql` on the app's SQLite file through a connection of its
    /// own, as an operator's tool would: to make the store fail on purpose.
    pub async fn sqlite(&self, sql: &str) {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", self._env.db().display()))
                .await
                .expect("open the app's database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect("run sql");
        conn.close().await.expect("close");
    }

    /// The value of the counter `series` (name and labels, as
    /// `/metrics` prints them), 0 if absent.
    pub async fn counter(&self, series: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Runs one delivery pass of the outbox against the fake Slack, at the
    /// app's clock. Passes share one worker, so pacing carries over.
    pub async fn deliver(&self) -> nudged::outbox::DeliveryOutcome {
        self.worker
            .lock()
            .await
            .deliver_due(self.clock_now())
            .await
            .expect("deliver")
    }

    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use nudged::clock::Clock;
        self.clock.now()
    }

    /// Every stored answer as `person,week,question,option` lines.
    pub async fn answers(&self) -> Vec<String> {
        self.store
            .answers(None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let a = r.answer;
                format!("{},{},{},{}", a.person, a.week, a.question, a.option)
            })
            .collect()
    }

    /// Every outbox payload, oldest first, as JSON.
    pub async fn outbox(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut id = 1;
        let counts = self.store.outbox_counts().await.unwrap();
        let total = counts.pending + counts.sent + counts.failed;
        while (out.len() as u64) < total && id < 10_000 {
            if let Some(row) = self.store.outbox_row(id).await.unwrap() {
                out.push(serde_json::from_str(&row.payload).unwrap());
            }
            id += 1;
        }
        out
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("app stops")
                .unwrap()
                .unwrap();
        }
    }
}

/// `weeks` weeks of strong, anchored answers for `person` ending in `last`,
/// with room to learn in each but the last, whose capacity answer is
/// `last_capacity`: a history the model finds sustained.
pub fn strong_history(
    person: &str,
    last: nudged::domain::IsoWeek,
    weeks: i64,
    last_capacity: &str,
) -> Vec<nudged::domain::Answer> {
    use nudged::domain::{Answer, OptionKey, PersonId, QuestionId};
    let mut answers = Vec::new();
    for i in (0..weeks).rev() {
        for (q, o) in [
            ("decisions", "6+"),
            ("stakeholders", "4+"),
            ("tradeoffs", "several"),
            ("focus", "deciding"),
            ("reversibility", "hardly"),
            ("continuity", "same"),
            ("capacity", if i == 0 { last_capacity } else { "yes" }),
        ] {
            answers.push(Answer {
                person: PersonId::parse(person).unwrap(),
                week: last.plus(-i),
                question: QuestionId::parse(q).unwrap(),
                option: OptionKey::parse(o).unwrap(),
            });
        }
    }
    answers
}
