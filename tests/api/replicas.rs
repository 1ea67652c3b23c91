//! Two real `nudged run` processes on one PostgreSQL database, each with its
//! own HTTP port, both delivering to one fake Slack: the set-up of issue 6's
//! "two replicas behind a load balancer". Each replica signs its Slack calls
//! with a bot token of its own, so the fake Slack can tell who sent what.
//!
//! What the store promises replicas (outbox claims with `FOR UPDATE SKIP
//! LOCKED` and a lease, unique answer rows, unique outbox keys and schedule
//! claims) is
//! tested on the store itself in `store.rs` and with two in-process
//! dispatchers in `postgres.rs`; here the same promises are held to with
//! whole processes, one of which dies by SIGKILL.
//!
//! Like every PostgreSQL test, each one returns at once when PostgreSQL is
//! neither installed nor required (see [`crate::postgres`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;

use chrono::{Duration, Timelike, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;

use crate::fake_slack::{Call, FakeSlack};
use crate::helpers::{SIGNING_SECRET, TestEnv, WAIT, http, repo, roster_id};
use crate::store::TestDb;

/// `delivery.concurrency` of both replicas: at most this many sends of one
/// replica are in flight at any moment.
const CONCURRENCY: usize = 4;

/// `delivery.lease_secs`: how long a claimed outbox row stays with the
/// replica that claimed it. A send is given up after half of it, so it must
/// outlast the moments a test holds Slack's answers back; and a dead
/// replica's rows wait this long before the other takes them.
const LEASE_SECS: u64 = 8;

/// One `nudged run` child process.
struct Replica {
    name: &'static str,
    /// The bot token it sends with, so its calls at the fake are its own.
    token: &'static str,
    child: Child,
    /// Where its HTTP server listens.
    addr: SocketAddr,
    /// Its log lines, as they are written.
    lines: mpsc::UnboundedReceiver<String>,
}

impl Replica {
    /// Starts `nudged ARGS` from `env` on the database at `db`, delivering
    /// to `slack` as `token`, and returns once it serves HTTP. Its log goes
    /// to `NAME.log` in the installation's directory, for failure messages.
    async fn start(
        env: &TestEnv,
        db: &TestDb,
        slack: &FakeSlack,
        (name, token): (&'static str, &'static str),
        args: &[&str],
    ) -> Self {
        let mut child = env
            .daemon(slack, token, args)
            .env("NUDGED__STORAGE__URL", &db.url)
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nudged");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut file =
            std::fs::File::create(env.dir.path().join(format!("{name}.log"))).expect("log file");
        let (tx, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let listening = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.recv().await {
                if let Some((_, rest)) = line.split_once("nudged listening on http://") {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    return addr.parse().ok();
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = listening else {
            panic!("replica {name} did not start serving\n{}", log(env, name));
        };
        Self {
            name,
            token,
            child,
            addr,
            lines,
        }
    }

    /// Whether this replica made `call`.
    fn made(&self, call: &Call) -> bool {
        call.auth
            .as_deref()
            .is_some_and(|auth| auth == format!("Bearer {}", self.token))
    }

    /// SIGKILL: the process ends where it is, recording nothing more.
    async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM, then waits for a clean exit: the HTTP server stops, the
    /// scheduler finishes its tick and the outbox worker records its sends.
    async fn stop(&mut self, env: &TestEnv) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("replica {} ignored SIGTERM", self.name))
            .expect("wait");
        // Read to the end, so the log file is complete for any message.
        while self.lines.recv().await.is_some() {}
        assert!(exit.success(), "{}", log(env, self.name));
    }

    /// POSTs a `block_actions` click with `payload`, signed as Slack signs
    /// it, now.
    async fn click(&self, client: &reqwest::Client, payload: &Value) -> u16 {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = Utc::now().timestamp();
        let signature = nudged::http::verify::sign(SIGNING_SECRET, ts, body.as_bytes());
        client
            .post(format!("http://{}/slack/interactions", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .expect("click")
            .status()
            .as_u16()
    }

    /// The value of `nudged_answers_recorded_total{source="button"}` in this
    /// process's `/metrics` (0 before the first answer).
    async fn answers_recorded(&self, client: &reqwest::Client) -> u64 {
        let text = client
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix("nudged_answers_recorded_total{source=\"button\"} "))
            .map_or(0, |value| value.trim().parse().expect("a counter"))
    }
}

fn log(env: &TestEnv, name: &str) -> String {
    std::fs::read_to_string(env.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

fn channel(call: &Call) -> String {
    call.body["channel"].as_str().expect("channel").to_owned()
}

/// Prompts received per person.
fn tally<'a>(calls: impl IntoIterator<Item = &'a Call>) -> BTreeMap<String, usize> {
    let mut per_person = BTreeMap::new();
    for call in calls {
        assert_eq!(call.method, "chat.postMessage", "{call:?}");
        *per_person.entry(channel(call)).or_insert(0) += 1;
    }
    per_person
}

/// Runs `test` under the suite's timeout, with the replicas' logs in the
/// message if it hangs.
async fn within_time<T>(env: &TestEnv, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, test).await.unwrap_or_else(|_| {
        panic!(
            "the replicas did not finish in time\n--- a ---\n{}\n--- b ---\n{}",
            log(env, "a"),
            log(env, "b")
        )
    })
}

/// Replica A runs `--ask-now` for 300 people while replica B delivers
/// beside it. With A's sends in flight, A dies by SIGKILL.
/// B delivers the rest, and once their lease has run out the rows A had
/// claimed: everyone is prompted, and only the sends A had in flight go out
/// twice, since Slack never told A whether they arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_fan_out_loses_nothing_and_the_other_delivers_the_rest() {
    const PEOPLE: usize = 300;
    /// Prompts Slack answers before it holds every answer back. Late in
    /// the fan-out, so that the hold starts with A's worker sending (B,
    /// already running, takes rows as A queues them), and early enough that
    /// rows remain for A to claim once it does.
    const ANSWERED: usize = 240;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::fleet(PEOPLE, CONCURRENCY, LEASE_SECS);
    let mut slack = FakeSlack::start().await;
    within_time(&env, async {
        slack.hold_after(ANSWERED);
        let mut b = Replica::start(&env, &db, &slack, ("b", "xoxb-replica-b"), &["run"]).await;
        let mut a = Replica::start(
            &env,
            &db,
            &slack,
            ("a", "xoxb-replica-a"),
            &["run", "--ask-now"],
        )
        .await;

        // Both replicas have been delivering, and A is mid fan-out with all
        // its sends in flight and none of them answered. Killed at once:
        // a held send gives up after half the lease, and one that gave up
        // would be tried again, beyond what was in flight.
        let mut calls = Vec::new();
        let held_by_a = |calls: &[Call]| calls.iter().filter(|c| c.held && a.made(c)).count();
        while held_by_a(&calls) < CONCURRENCY || !calls.iter().any(|c| b.made(c)) {
            calls.push(slack.next_call().await);
        }
        a.kill().await;
        let killed_at = calls.len();
        slack.release();

        // Delivered: answered by Slack to a replica still alive to record
        // it. A's unanswered sends count only once B has sent them again.
        let delivered = |calls: &[Call]| -> BTreeSet<String> {
            calls
                .iter()
                .filter(|c| !(c.held && a.made(c)))
                .map(channel)
                .collect()
        };
        while delivered(&calls).len() < PEOPLE {
            calls.push(slack.next_call().await);
        }
        b.stop(&env).await;
        calls.extend(slack.received());

        let per_person = tally(&calls);
        assert_eq!(per_person.len(), PEOPLE, "everyone prompted");
        let in_flight_at_kill: BTreeSet<String> = calls
            .iter()
            .filter(|c| c.held && a.made(c))
            .map(channel)
            .collect();
        assert!(
            in_flight_at_kill.len() <= CONCURRENCY,
            "A had {} sends in flight; at most {CONCURRENCY} may be",
            in_flight_at_kill.len()
        );
        assert!(
            calls[killed_at..].iter().all(|c| b.made(c)),
            "only B sends after A's death"
        );
        let twice: BTreeSet<String> = per_person
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(p, _)| p.clone())
            .collect();
        assert_eq!(
            calls.len() - PEOPLE,
            twice.len(),
            "nobody prompted three times"
        );
        assert_eq!(
            twice, in_flight_at_kill,
            "exactly the sends A had in flight go out twice, sent again by B"
        );
        // B took A's rows over only once A's lease on them had run out (less
        // a margin for the moments between A's claim and its send).
        for held in calls.iter().filter(|c| c.held && a.made(c)) {
            let again = calls
                .iter()
                .find(|c| b.made(c) && channel(c) == channel(held))
                .expect("sent again by B");
            let waited = again.at - held.at;
            assert!(
                waited >= std::time::Duration::from_secs(LEASE_SECS - 1),
                "B sent A's leased row again after {waited:?}"
            );
        }

        let store = nudged::store::open(&db.url).await.unwrap();
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!(
            (counts.pending, counts.sent, counts.failed),
            (0, PEOPLE as u64, 0)
        );
    })
    .await;
}

/// `user`'s click on `option` of `question` in this week's check-in (the
/// replicas run on the system clock, and the roster is in UTC), with an
/// `action_ts` of its own: each call is another click.
fn click(user: &str, question: &str, option: &str) -> Value {
    static CLICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = CLICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let week = nudged::domain::IsoWeek::of(Utc::now().date_naive());
    let path = repo().join("tests/data/slack/block_actions.json");
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    payload["user"]["id"] = json!(user);
    payload["actions"][0]["action_id"] = json!(format!("{question}:{option}"));
    payload["actions"][0]["value"] = json!(format!(
        "v1|{week}|{question}|{option}|{user}|weekly-checkin"
    ));
    payload["actions"][0]["action_ts"] = json!(format!("1763568360.{n:06}"));
    payload
}

/// The next `chat.update` at the fake Slack.
async fn next_update(slack: &mut FakeSlack) -> Call {
    loop {
        let call = slack.next_call().await;
        if call.method == "chat.update" {
            return call;
        }
    }
}

/// A click reaches both replicas twice at once (a load balancer spreading
/// Slack's retries): the answer is stored once, counted once, and the
/// prompt updated once. A changed click at the other replica then
/// overwrites it, as it would at one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_at_either_replica_counts_once_and_a_changed_one_overwrites() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::fleet(2, CONCURRENCY, LEASE_SECS);
    let mut slack = FakeSlack::start().await;
    let client = http();
    within_time(&env, async {
        let (mut a, mut b) = tokio::join!(
            Replica::start(&env, &db, &slack, ("a", "xoxb-replica-a"), &["run"]),
            Replica::start(&env, &db, &slack, ("b", "xoxb-replica-b"), &["run"]),
        );
        let store = nudged::store::open(&db.url).await.unwrap();
        let answers = async || -> Vec<String> {
            let rows = store.answers(None).await.unwrap();
            rows.into_iter()
                .map(|r| {
                    format!(
                        "{},{},{}",
                        r.answer.person, r.answer.question, r.answer.option
                    )
                })
                .collect()
        };
        let outbox_rows = async || {
            let counts = store.outbox_counts().await.unwrap();
            counts.pending + counts.sent + counts.failed
        };
        let recorded =
            async || a.answers_recorded(&client).await + b.answers_recorded(&client).await;

        // One click, delivered four times.
        let first = click("U00000", "focus", "mixed");
        let statuses = tokio::join!(
            a.click(&client, &first),
            b.click(&client, &first),
            a.click(&client, &first),
            b.click(&client, &first),
        );
        assert_eq!(statuses, (200, 200, 200, 200));
        // Each replica acks only after storing the answer and queueing the
        // update, so this is the final count.
        assert_eq!(answers().await, ["U00000,focus,mixed"]);
        assert_eq!(recorded().await, 1, "answers recorded, over both replicas");
        assert_eq!(outbox_rows().await, 1, "one prompt update queued");
        let update = next_update(&mut slack).await;
        assert_eq!(update.body["channel"], "D0001");

        let changed = click("U00000", "focus", "deciding");
        assert_eq!(b.click(&client, &changed).await, 200);
        assert_eq!(answers().await, ["U00000,focus,deciding"]);
        assert_eq!(recorded().await, 2);
        assert_eq!(outbox_rows().await, 2);
        next_update(&mut slack).await;

        a.stop(&env).await;
        b.stop(&env).await;
        let late_updates = slack
            .received()
            .into_iter()
            .filter(|c| c.method == "chat.update")
            .count();
        assert_eq!(late_updates, 0, "no update beyond the two");
    })
    .await;
}

/// Both replicas run the scheduler, and both tick as they start. A daily
/// check-in fell due ten minutes ago for people enrolled two days ago: the
/// two dispatchers race for the same runs, and everyone gets exactly one
/// prompt. (The race of two dispatchers ticking at the same instant, for
/// 1,000 people, is in `postgres.rs`; here it is two processes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_replicas_schedule_and_each_person_is_asked_once() {
    const PEOPLE: usize = 40;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let env = TestEnv::fleet(PEOPLE, CONCURRENCY, LEASE_SECS);
    // Only this schedule: the shipped ones may or may not have fallen due
    // in the last two days, depending on the day the test runs.
    let schedules = env.dir.path().join("schedules");
    for entry in std::fs::read_dir(&schedules).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let now = Utc::now();
    let due = now - Duration::minutes(10);
    let shipped = std::fs::read_to_string(repo().join("schedules/weekly-checkin.toml")).unwrap();
    let daily = shipped
        .replace("name = \"weekly-checkin\"", "name = \"daily\"")
        .replace(
            "cron = \"0 0 16 * * THU\"",
            &format!("cron = \"0 {} {} * * *\"", due.minute(), due.hour()),
        );
    std::fs::write(schedules.join("daily.toml"), daily).unwrap();

    // Enrolled two days ago, so today's run is theirs; the daemons' own
    // roster sync keeps this date.
    let store = nudged::store::open(&db.url).await.unwrap();
    for i in 0..PEOPLE {
        let new = nudged::store::NewPerson {
            id: nudged::domain::PersonId::parse(&roster_id(i)).unwrap(),
            name: None,
            tz: Some(chrono_tz::UTC),
            enrolled: true,
        };
        store
            .upsert_person(&new, now - Duration::days(2))
            .await
            .unwrap();
    }

    let mut slack = FakeSlack::start().await;
    within_time(&env, async {
        let (mut a, mut b) = tokio::join!(
            Replica::start(&env, &db, &slack, ("a", "xoxb-replica-a"), &["run"]),
            Replica::start(&env, &db, &slack, ("b", "xoxb-replica-b"), &["run"]),
        );
        let mut calls = Vec::new();
        while tally(&calls).len() < PEOPLE {
            calls.push(slack.next_call().await);
        }
        // A stopping dispatcher finishes its tick first, so after this both
        // have ticked on start whatever the order.
        a.stop(&env).await;
        b.stop(&env).await;
        calls.extend(slack.received());

        let per_person = tally(&calls);
        assert_eq!(per_person.len(), PEOPLE);
        assert!(
            per_person.values().all(|n| *n == 1),
            "someone was asked twice: {per_person:?}"
        );
        let counts = store.outbox_counts().await.unwrap();
        assert_eq!(
            counts.pending + counts.sent + counts.failed,
            PEOPLE as u64,
            "one prompt queued per person"
        );
        let period = due.with_second(0).unwrap().with_nanosecond(0).unwrap();
        for i in 0..PEOPLE {
            let id = nudged::domain::PersonId::parse(&roster_id(i)).unwrap();
            assert_eq!(store.last_run(&id, "daily").await.unwrap(), Some(period));
        }
    })
    .await;
}
