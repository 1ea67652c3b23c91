//! A throwaway PostgreSQL server for the tests, and the daemon's scheduler
//! run by two replicas on one PostgreSQL database ([`replicas`]; the store's
//! own behaviours on PostgreSQL are in `store.rs`).
//!
//! The first test that asks for a database starts one cluster for the whole
//! test process: `initdb` into a temporary directory, then `pg_ctl start` on
//! a free loopback port with its socket in that directory, durability off
//! (a test database never outlives the process). Every test then gets a
//! database of its own (`CREATE DATABASE t_<n>`), so tests stay isolated and
//! run in parallel.
//!
//! Clean-up cannot rely on destructors: statics are not dropped at exit, and
//! a test process may be killed. So a small watchdog shell is started first,
//! in its own process group, reading its standard input from a pipe whose
//! only writer is this process. When the process ends, however it ends, the
//! kernel closes the pipe, the watchdog's `cat` returns, and it stops the
//! server (`pg_ctl stop -m immediate`) and removes the directory.
//!
//! `initdb` refuses to run as root, so as root every PostgreSQL program runs
//! as the `postgres` user through `runuser`, on a directory owned by it.
//!
//! With `NUDGED_TEST_POSTGRES=1` (as in CI) any failure to find or start
//! PostgreSQL fails the tests. Without it, and with no PostgreSQL programs
//! installed, each PostgreSQL test returns at once and the process prints one
//! line saying why. Programs that are installed but fail to start always
//! fail the tests: that is a broken set-up, not a missing one.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use sqlx::Connection;

/// Set to `1` to make any failure to run PostgreSQL fail the tests.
pub const REQUIRE_ENV: &str = "NUDGED_TEST_POSTGRES";

/// Attempts to start the server, each on a fresh free port: another process
/// may take the port between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;

/// Seconds `pg_ctl start` waits for the server to accept connections.
const START_TIMEOUT_SECS: &str = "60";

/// Server settings for tests: nothing is fsynced (a crash loses a test
/// database, which nobody needs), and connections enough for many tests
/// each opening several pools at once.
const SERVER_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=32MB",
];

/// A running throwaway cluster.
pub struct Cluster {
    port: u16,
    /// Numbers the per-test databases.
    next_db: AtomicU32,
    /// The write end of the watchdog's standard input: never written, only
    /// held, so that it closes exactly when this process ends.
    _watchdog: Mutex<ChildStdin>,
}

impl Cluster {
    /// The URL of database `name` as the superuser (trust authentication on
    /// loopback: no password).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("t_{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        self.url(&name)
    }
}

/// Why the cluster is not running.
struct Unavailable {
    /// No PostgreSQL programs were found (as opposed to: found, but broken).
    missing: bool,
    reason: String,
}

/// The cluster of this test process, started on first use; `None` if
/// PostgreSQL is not installed and not required (see the module docs).
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, Unavailable>> = OnceLock::new();
    let state = CLUSTER.get_or_init(|| {
        let started = start();
        if let Err(why) = &started
            && why.missing
            && !required()
        {
            // Straight to stderr: the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "PostgreSQL tests did not run: {}. Install PostgreSQL \
                 (Debian: apt-get install postgresql) or set {REQUIRE_ENV}=1 to require them.",
                why.reason
            );
        }
        started
    });
    match state {
        Ok(cluster) => Some(cluster),
        Err(why) if why.missing && !required() => None,
        Err(why) => panic!("PostgreSQL for the tests: {}", why.reason),
    }
}

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

fn start() -> Result<Cluster, Unavailable> {
    let broken = |reason: String| Unavailable {
        missing: false,
        reason,
    };
    let bin = find_bindir().ok_or_else(|| Unavailable {
        missing: true,
        reason: "no initdb and pg_ctl found (looked at `pg_config --bindir`, \
                 /usr/lib/postgresql/*/bin and PATH)"
            .into(),
    })?;
    let user = ServerUser::detect().map_err(broken)?;
    let dir = tempfile::Builder::new()
        .prefix("nudged-pg-")
        .tempdir()
        .map_err(|e| broken(format!("temporary directory: {e}")))?
        .keep();
    let data = dir.join("data");
    // Started before anything else, so the directory goes whatever happens.
    let watchdog = user.watchdog(&bin, &data, &dir).map_err(broken)?;
    user.own(&dir).map_err(broken)?;

    run(user
        .command(&bin.join("initdb"))
        .arg("--pgdata")
        .arg(&data)
        .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
        .args(["--no-locale", "--no-sync"]))
    .map_err(broken)?;

    let log = dir.join("server.log");
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port().map_err(broken)?;
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            dir.display()
        );
        for setting in SERVER_SETTINGS {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let started = run(user
            .command(&bin.join("pg_ctl"))
            .args(["start", "--wait", "--timeout", START_TIMEOUT_SECS])
            .arg("--pgdata")
            .arg(&data)
            .arg("--log")
            .arg(&log)
            .arg("-o")
            .arg(options));
        match started {
            Ok(()) => {
                return Ok(Cluster {
                    port,
                    next_db: AtomicU32::new(0),
                    _watchdog: Mutex::new(watchdog),
                });
            }
            Err(e) => failures.push(e),
        }
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    Err(broken(format!(
        "pg_ctl start failed {START_ATTEMPTS} times: {}; server log ends: {}",
        failures.join("; "),
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    )))
}

/// The directory holding `initdb` and `pg_ctl`: the one `pg_config` names,
/// else the newest Debian versioned directory, else one on `PATH`.
fn find_bindir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    from_pg_config
        .into_iter()
        .chain(debian.into_iter().map(|(_, dir)| dir))
        .chain(on_path)
        .find(|dir| has_programs(dir))
}

/// Who runs the server: this process's user, or `postgres` when that is
/// root (which PostgreSQL refuses to run as).
enum ServerUser {
    Current,
    Postgres { uid: u32, gid: u32 },
}

impl ServerUser {
    fn detect() -> Result<Self, String> {
        if id(&["-u"])? != 0 {
            return Ok(Self::Current);
        }
        let missing = |e: String| {
            format!("running as root, and no `postgres` user to run PostgreSQL as: {e}")
        };
        Ok(Self::Postgres {
            uid: id(&["-u", "postgres"]).map_err(missing)?,
            gid: id(&["-g", "postgres"]).map_err(missing)?,
        })
    }

    /// A command running `program` as this user.
    fn command(&self, program: &Path) -> Command {
        match self {
            Self::Current => Command::new(program),
            Self::Postgres { .. } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        }
    }

    /// Gives `dir` to this user.
    fn own(&self, dir: &Path) -> Result<(), String> {
        match self {
            Self::Current => Ok(()),
            Self::Postgres { uid, gid } => std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .map_err(|e| format!("chown {} to postgres: {e}", dir.display())),
        }
    }

    /// Starts the watchdog that stops the server in `data` and removes `dir`
    /// once this process has ended (see the module docs).
    fn watchdog(&self, bin: &Path, data: &Path, dir: &Path) -> Result<ChildStdin, String> {
        let stop = self.command(&bin.join("pg_ctl"));
        let mut argv: Vec<&std::ffi::OsStr> = vec![stop.get_program()];
        argv.extend(stop.get_args());
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                r#"cat >/dev/null; dir=$1; data=$2; shift 2
                "$@" stop --silent --mode immediate --pgdata "$data" >/dev/null 2>&1
                rm -rf "$dir""#,
            )
            .arg("nudged-pg-watchdog")
            .arg(dir)
            .arg(data)
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's process group: Ctrl-C on the tests must
            // not kill the watchdog before it has cleaned up.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the clean-up watchdog: {e}"))?;
        child
            .stdin
            .take()
            .ok_or_else(|| "the watchdog has no standard input".to_owned())
    }
}

/// A number printed by `id ARGS`.
fn id(args: &[&str]) -> Result<u32, String> {
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("id {}: {e}", args.join(" ")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "id {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// A loopback port nothing listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Runs `cmd` to completion; its output becomes the error if it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    // Out of the terminal's process group, like the watchdog, so that
    // Ctrl-C leaves the server to the watchdog's orderly stop.
    let out = cmd
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} {:?} exited with {}: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two replicas' schedulers on one PostgreSQL database.
mod replicas {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::{DateTime, Duration, Utc};
    use nudged::chat::Outgoing;
    use nudged::clock::{Clock, ManualClock};
    use nudged::config::Settings;
    use nudged::domain::PersonId;
    use nudged::outbox;
    use nudged::render::Message;
    use nudged::scheduler::Dispatcher;
    use nudged::store::{self, NewPerson, Store};

    use crate::fake_slack::{FakeSlack, Reply};
    use crate::helpers::{TestEnv, WAIT, slack_chat};
    use crate::store::TestDb;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Both replicas' heartbeats fire at the same instant for 1,000 people
    /// (the shipped weekly check-in, Thursday 16:00 in each person's zone):
    /// between them they enqueue exactly one prompt per person, and their
    /// next heartbeats add nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_fan_out_exactly_one_prompt_per_person() {
        const PEOPLE: usize = 1000;
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let env = TestEnv::new();
        let settings = Settings::load_with_env(
            &env.config(),
            [("NUDGED__STORAGE__URL".to_owned(), db.url.clone())],
        )
        .unwrap();
        let settings = Arc::new(settings);
        let test = async {
            let (a, b) = two_replicas(&settings).await;
            let start = at("2026-11-16T00:00:00Z");
            for i in 0..PEOPLE {
                let person = NewPerson {
                    id: PersonId::parse(&format!("U{i:04}")).unwrap(),
                    name: None,
                    tz: None,
                    enrolled: true,
                };
                a.upsert_person(&person, start).await.unwrap();
            }
            let (ours, theirs) = (
                Dispatcher::new(settings.clone(), a.clone()),
                Dispatcher::new(settings.clone(), b.clone()),
            );

            let now = at("2026-11-19T16:00:00Z");
            let (x, y) = tokio::join!(ours.tick(now), theirs.tick(now));
            let (x, y) = (x.unwrap(), y.unwrap());
            assert_eq!(
                (x.sent + y.sent, x.failed + y.failed),
                (PEOPLE, 0),
                "{x:?} {y:?}"
            );
            let later = now + Duration::minutes(1);
            let (x, y) = tokio::join!(ours.tick(later), theirs.tick(later));
            assert_eq!(x.unwrap().sent + y.unwrap().sent, 0);

            // Every queued message, whichever replica queued it.
            let rows = b
                .claim_outbox(later, later + Duration::minutes(1), 10 * PEOPLE as u32)
                .await
                .unwrap();
            let mut per_person: BTreeMap<String, usize> = BTreeMap::new();
            for row in &rows {
                *per_person
                    .entry(row.person.as_ref().unwrap().to_string())
                    .or_default() += 1;
            }
            assert_eq!(per_person.len(), PEOPLE);
            assert!(per_person.values().all(|n| *n == 1), "{per_person:?}");
        };
        tokio::time::timeout(WAIT * 2, test)
            .await
            .expect("the replicas did not finish in time");
    }

    /// Two replicas on a fresh PostgreSQL database sending at most `rate`
    /// a second and `concurrency` at once ([`paced`]), each with a delivery
    /// worker (`ours` on `a`, `theirs` on `b`) sending to one fake Slack.
    struct PacedReplicas {
        a: Arc<dyn Store>,
        b: Arc<dyn Store>,
        ours: outbox::Worker,
        theirs: outbox::Worker,
        slack: FakeSlack,
        settings: Arc<Settings>,
        _env: TestEnv,
        _db: TestDb,
    }

    impl PacedReplicas {
        /// `None` when PostgreSQL is neither installed nor required.
        async fn start(rate: usize, concurrency: usize) -> Option<Self> {
            let db = TestDb::postgres().await?;
            let env = TestEnv::new();
            let settings = paced(&env, &db, rate, concurrency);
            let slack = FakeSlack::start().await;
            let (a, b) = two_replicas(&settings).await;
            let (ours, theirs) = workers(&a, &b, &slack, &settings);
            Some(Self {
                a,
                b,
                ours,
                theirs,
                slack,
                settings,
                _env: env,
                _db: db,
            })
        }
    }

    /// Each replica's delivery worker, sending to `slack`.
    fn workers(
        a: &Arc<dyn Store>,
        b: &Arc<dyn Store>,
        slack: &FakeSlack,
        settings: &Arc<Settings>,
    ) -> (outbox::Worker, outbox::Worker) {
        let worker = |store: &Arc<dyn Store>| {
            outbox::Worker::new(store.clone(), slack_chat(slack), settings.clone())
        };
        (worker(a), worker(b))
    }

    /// Runs a test of two replicas, failing it if they take too long.
    async fn replicas_within_time(test: impl std::future::Future<Output = ()>) {
        tokio::time::timeout(WAIT * 4, test)
            .await
            .expect("the replicas did not finish in time");
    }

    /// Two replicas' stores on the database of `settings`.
    async fn two_replicas(settings: &Settings) -> (Arc<dyn Store>, Arc<dyn Store>) {
        let open = || store::open_with(&settings.storage.url, &settings.storage.options);
        (open().await.unwrap(), open().await.unwrap())
    }

    /// The test installation's settings on `db`, sending at most `rate` a
    /// second and `concurrency` at once.
    fn paced(env: &TestEnv, db: &TestDb, rate: usize, concurrency: usize) -> Arc<Settings> {
        let settings = Settings::load_with_env(
            &env.config(),
            [
                ("NUDGED__STORAGE__URL", db.url.clone()),
                ("NUDGED__DELIVERY__GLOBAL_PER_SEC", rate.to_string()),
                ("NUDGED__DELIVERY__CONCURRENCY", concurrency.to_string()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        )
        .unwrap();
        Arc::new(settings)
    }

    /// Queues `count` posts due at `at`, each to a channel of its own.
    async fn enqueue_posts(store: &dyn Store, count: usize, at: DateTime<Utc>) {
        for i in 0..count {
            enqueue_to(store, &format!("D{i:04}"), 1, at).await;
        }
    }

    /// Queues `count` posts due at `at`, all to `channel`.
    async fn enqueue_to(store: &dyn Store, channel: &str, count: usize, at: DateTime<Utc>) {
        for i in 0..count {
            let message = Outgoing::post(
                channel.to_owned(),
                None,
                Message {
                    text: format!("message {i} to {channel}"),
                    blocks: vec![],
                },
            );
            outbox::enqueue(store, &message.into(), None, None, at)
                .await
                .unwrap();
        }
    }

    /// Lets `worker` deliver what is due at the clock's time, and adds the
    /// posts the fake Slack received meanwhile to `sends`, as (instant,
    /// channel, answered normally): a worker's sends are all answered
    /// before it returns, so they went at that instant.
    async fn step(
        worker: &mut outbox::Worker,
        clock: &ManualClock,
        slack: &mut FakeSlack,
        sends: &mut Vec<(DateTime<Utc>, String, bool)>,
    ) -> outbox::DeliveryOutcome {
        let now = clock.now();
        let outcome = worker.deliver_due(now).await.unwrap();
        for call in slack.received() {
            if call.method == "chat.postMessage" {
                let channel = call.body["channel"].as_str().unwrap_or_default();
                sends.push((now, channel.to_owned(), call.ok));
            }
        }
        outcome
    }

    /// The shortest time between two posts into `channel` among `sends`.
    fn closest(sends: &[(DateTime<Utc>, String, bool)], channel: &str) -> Option<Duration> {
        let times: Vec<DateTime<Utc>> = sends
            .iter()
            .filter(|(_, c, _)| c == channel)
            .map(|(at, _, _)| *at)
            .collect();
        times.windows(2).map(|pair| pair[1] - pair[0]).min()
    }

    /// The most sends among `sends` (instants, sorted) in any one-second
    /// window.
    fn busiest_second(sends: &[DateTime<Utc>]) -> usize {
        sends
            .iter()
            .enumerate()
            .map(|(i, start)| {
                sends[i..]
                    .iter()
                    .take_while(|at| **at < *start + Duration::seconds(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// A worker with a backlog claims the rows for every slot it takes
    /// together with the slots, so sending in a slot needs nothing from
    /// the store at its instant: here every other due row is locked by
    /// another transaction from the first slot on (as another replica's
    /// claim locks the rows it takes), and the worker still sends in each
    /// slot it holds rather than letting them pass unused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_worker_sends_in_each_slot_it_holds_without_a_claim_at_its_instant() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let env = TestEnv::new();
        // 20/s: slots 50 ms apart, four per batch of 200 ms.
        let settings = paced(&env, &db, 20, 2);
        let mut slack = FakeSlack::start().await;
        let test = async {
            let store = store::open_with(&settings.storage.url, &settings.storage.options)
                .await
                .unwrap();
            let start = at("2026-11-19T16:00:00Z");
            enqueue_posts(store.as_ref(), 10, start).await;
            let mut worker =
                outbox::Worker::new(store.clone(), slack_chat(&slack), settings.clone());
            assert_eq!(worker.deliver_due(start).await.unwrap().sent, 1);

            let other = sqlx::PgPool::connect(&db.url).await.unwrap();
            let mut locking = other.begin().await.unwrap();
            let locked = sqlx::query(
                "SELECT id FROM outbox WHERE status = 'pending' AND lease_until IS NULL FOR UPDATE",
            )
            .fetch_all(&mut *locking)
            .await
            .unwrap();
            assert!(!locked.is_empty());
            let step = Duration::milliseconds(50);
            for slot in 1..4 {
                let outcome = worker.deliver_due(start + step * slot).await.unwrap();
                assert_eq!(outcome.sent, 1, "slot {slot} of the batch: {outcome:?}");
            }
            locking.rollback().await.unwrap();
            assert_eq!(slack.received().len(), 4);
        };
        tokio::time::timeout(WAIT * 4, test)
            .await
            .expect("the worker did not finish in time");
    }

    /// Two replicas' delivery workers on one database, stepped through
    /// time together by a manual clock, with a backlog to a channel per
    /// message: between them they never send more in any one second than
    /// `delivery.global_per_sec` (and the `delivery.concurrency` sends one
    /// instant may carry, as for one process), yet drain at close to that
    /// rate; once one of them stops, the other alone sends at the whole
    /// rate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_share_the_workspace_rate_and_one_takes_it_all_when_the_other_stops() {
        const RATE: usize = 20;
        const CONCURRENCY: usize = 2;
        const MESSAGES: usize = 400;
        const SECONDS: i64 = 8;
        // The fake Slack is bound to be kept: the workers send to it.
        let Some(PacedReplicas {
            a,
            mut ours,
            mut theirs,
            slack: _slack,
            _env,
            _db,
            ..
        }) = PacedReplicas::start(RATE, CONCURRENCY).await
        else {
            return;
        };
        let test = async {
            let start = at("2026-11-19T16:00:00Z");
            enqueue_posts(a.as_ref(), MESSAGES, start).await;

            // Both replicas, every 10 ms, in turn.
            let (mut both, mut by_theirs) = (Vec::new(), 0);
            let tick = Duration::milliseconds(10);
            let mut now = start;
            while now < start + Duration::seconds(SECONDS) {
                let sent = ours.deliver_due(now).await.unwrap().sent;
                both.extend(std::iter::repeat_n(now, sent));
                let sent = theirs.deliver_due(now).await.unwrap().sent;
                both.extend(std::iter::repeat_n(now, sent));
                by_theirs += sent;
                now += tick;
            }
            let most = busiest_second(&both);
            assert!(
                most <= RATE + CONCURRENCY,
                "{most} sends in one second by two replicas"
            );
            // After the first second's burst, at the rate.
            let steady = both
                .iter()
                .filter(|at| **at >= start + Duration::seconds(1))
                .count();
            let allowed = RATE * (SECONDS as usize - 1);
            assert!(
                steady * 100 >= allowed * 95,
                "{steady} sent in {} s by two replicas sharing {RATE}/s",
                SECONDS - 1
            );
            assert!(
                by_theirs > 0 && by_theirs < both.len(),
                "both replicas sent: {by_theirs} of {}",
                both.len()
            );

            // One replica stops: the other alone takes the whole rate.
            drop(theirs);
            let stopped = now;
            let mut alone = Vec::new();
            while now < stopped + Duration::seconds(SECONDS) {
                let sent = ours.deliver_due(now).await.unwrap().sent;
                alone.extend(std::iter::repeat_n(now, sent));
                now += tick;
            }
            let mut all = both.clone();
            all.extend(&alone);
            let most = busiest_second(&all);
            assert!(most <= RATE + CONCURRENCY, "{most} sends in one second");
            let steady = alone
                .iter()
                .filter(|at| **at >= stopped + Duration::seconds(1))
                .count();
            assert!(
                steady * 100 >= allowed * 95,
                "{steady} sent in {} s by the replica left",
                SECONDS - 1
            );
        };
        replicas_within_time(test).await;
    }

    /// Two replicas' delivery workers on one database, stepped through
    /// time by a manual clock, with a backlog queued to one channel:
    /// between them they never post into it twice less than
    /// `delivery.per_channel_interval` apart (Slack's one message a second
    /// in a channel), and every message is delivered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_keep_one_channels_pace_between_them() {
        const MESSAGES: usize = 12;
        let Some(PacedReplicas {
            a,
            mut ours,
            mut theirs,
            mut slack,
            settings,
            _env,
            _db,
            ..
        }) = PacedReplicas::start(20, 2).await
        else {
            return;
        };
        let interval = Duration::from_std(settings.delivery.per_channel_interval).unwrap();
        let test = async {
            let start = at("2026-11-19T16:00:00Z");
            enqueue_to(a.as_ref(), "C0PACE", MESSAGES, start).await;

            // Both replicas, every 10 ms, each first every other time,
            // until all is sent.
            let clock = ManualClock::new(start);
            let (mut sends, mut by_theirs) = (Vec::new(), 0);
            let mut turn = 0;
            while sends.len() < MESSAGES && clock.now() < start + Duration::seconds(60) {
                if turn % 2 == 0 {
                    step(&mut ours, &clock, &mut slack, &mut sends).await;
                }
                by_theirs += step(&mut theirs, &clock, &mut slack, &mut sends).await.sent;
                if turn % 2 == 1 {
                    step(&mut ours, &clock, &mut slack, &mut sends).await;
                }
                turn += 1;
                clock.advance(Duration::milliseconds(10));
            }
            assert_eq!(sends.len(), MESSAGES, "all delivered: {sends:?}");
            let closest = closest(&sends, "C0PACE").unwrap();
            assert!(
                closest >= interval,
                "two posts into one channel {} ms apart: {sends:?}",
                closest.num_milliseconds()
            );
            assert_eq!(a.outbox_counts().await.unwrap().sent, MESSAGES as u64);
            assert!(
                by_theirs > 0 && by_theirs < MESSAGES,
                "both replicas posted: {by_theirs} of {MESSAGES} by theirs"
            );
            // Close to the channel's pace, not slowed by the replicas
            // taking turns at it.
            let span = sends[MESSAGES - 1].0 - sends[0].0;
            assert!(
                span <= interval * (MESSAGES as i32 - 1) * 3 / 2,
                "{MESSAGES} posts took {} ms: {sends:?}",
                span.num_milliseconds()
            );
        };
        replicas_within_time(test).await;
    }

    /// A 429 one replica gets on a busy channel (it posted there a moment
    /// before) pauses that channel for the other replica too: the other
    /// posts into it only once the `Retry-After` has passed, while it
    /// posts elsewhere at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_channel_paused_by_one_replica_holds_the_others_posts_into_it() {
        const RETRY_AFTER: i64 = 30;
        let Some(PacedReplicas {
            a,
            b,
            mut ours,
            mut theirs,
            mut slack,
            _env,
            _db,
            ..
        }) = PacedReplicas::start(20, 2).await
        else {
            return;
        };
        let test = async {
            let start = at("2026-11-19T16:00:00Z");
            let clock = ManualClock::new(start);
            enqueue_to(a.as_ref(), "C0BUSY", 2, start).await;

            // Ours posts twice into the channel; Slack refuses the second.
            slack.script([Reply::Normal, Reply::TooManyRequests(RETRY_AFTER as u64)]);
            let mut sends = Vec::new();
            let mut paused_at = None;
            while paused_at.is_none() && clock.now() < start + Duration::seconds(5) {
                if step(&mut ours, &clock, &mut slack, &mut sends)
                    .await
                    .retried
                    > 0
                {
                    paused_at = Some(clock.now());
                }
                clock.advance(Duration::milliseconds(10));
            }
            let paused_at = paused_at.expect("Slack's 429 reached ours");
            let until = paused_at + Duration::seconds(RETRY_AFTER);
            assert_eq!(sends.len(), 2, "{sends:?}");

            // Theirs, alone from now on, has one more for that channel
            // and one for another.
            let now = clock.now();
            enqueue_to(b.as_ref(), "C0BUSY", 1, now).await;
            enqueue_to(b.as_ref(), "D0ELSE", 1, now).await;
            let mut theirs_sent = Vec::new();
            while theirs_sent.len() < 3 && clock.now() < until + Duration::seconds(10) {
                step(&mut theirs, &clock, &mut slack, &mut theirs_sent).await;
                clock.advance(Duration::milliseconds(10));
            }
            let elsewhere: Vec<_> = theirs_sent.iter().filter(|s| s.1 == "D0ELSE").collect();
            assert!(
                elsewhere.len() == 1 && elsewhere[0].0 < now + Duration::seconds(1),
                "posted elsewhere at once: {theirs_sent:?}"
            );
            let busy: Vec<_> = theirs_sent.iter().filter(|s| s.1 == "C0BUSY").collect();
            assert_eq!(
                busy.len(),
                2,
                "both posts into the paused channel: {theirs_sent:?}"
            );
            assert!(
                busy.iter().all(|(at, _, ok)| *at >= until && *ok),
                "posted into the channel before {until}: {theirs_sent:?}"
            );
        };
        replicas_within_time(test).await;
    }
}
