//! Someone who asked to be forgotten stays forgotten: `nudged run` at its
//! next start does not enrol them again from the roster (it warns the
//! operator instead), until they `/pulse join` themselves. Real `nudged
//! run` processes, stopped and started again on one SQLite file.

use std::process::Stdio;

use chrono::Utc;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::fake_slack::FakeSlack;
use crate::helpers::{BOT_TOKEN, SIGNING_SECRET, TestEnv, WAIT, http, roster_id};

/// A running `nudged run`: its address and what it logged while starting.
struct Daemon {
    child: Child,
    addr: String,
    /// Every line logged before it served HTTP (the roster sync among them).
    start_log: String,
}

impl Daemon {
    async fn start(env: &TestEnv, slack: &FakeSlack) -> Self {
        let mut child = env
            .daemon(slack, BOT_TOKEN, &["run"])
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nudged run");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut start_log = String::new();
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read the log") {
                start_log.push_str(&line);
                start_log.push('\n');
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    return rest.split_whitespace().next().expect("address").to_owned();
                }
            }
            panic!("nudged run exited before listening:\n{start_log}");
        })
        .await
        .expect("nudged run did not start in time");
        // Keep draining the log so the daemon never blocks writing it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            addr,
            start_log,
        }
    }

    /// `/pulse TEXT` from `user`, signed now; returns the ephemeral reply.
    async fn pulse(&self, user: &str, text: &str) -> String {
        let trigger = format!("trigger-{user}-{}", text.replace(' ', "-"));
        let body = serde_urlencoded::to_string([
            ("command", "/pulse"),
            ("text", text),
            ("user_id", user),
            ("trigger_id", &trigger),
        ])
        .unwrap();
        let ts = Utc::now().timestamp();
        let response = http()
            .post(format!("http://{}/slack/commands", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header(
                "x-slack-signature",
                nudged::http::verify::sign(SIGNING_SECRET, ts, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .expect("command");
        assert_eq!(response.status(), 200);
        let json: Value = response.json().await.unwrap();
        json["text"].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("stops on SIGTERM")
            .unwrap();
        assert!(exit.success());
    }
}

/// Who is stored, enrolled or not, read from the daemon's file.
async fn people(env: &TestEnv) -> Vec<(String, bool)> {
    let store = nudged::store::open(&format!("sqlite://{}", env.db().display()))
        .await
        .unwrap();
    store
        .people()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id.to_string(), p.enrolled))
        .collect()
}

fn stored(ids: &[(&str, bool)]) -> Vec<(String, bool)> {
    ids.iter().map(|(id, e)| (id.to_string(), *e)).collect()
}

#[tokio::test]
async fn a_person_who_asked_to_be_forgotten_is_not_enrolled_again_until_they_join() {
    let env = TestEnv::fleet(2, 1, 60);
    let slack = FakeSlack::start().await;
    let (ana, bo) = (roster_id(0), roster_id(1));
    let warning =
        |id: &str| format!("{id} asked to be forgotten and is not enrolled from the roster");

    let first = Daemon::start(&env, &slack).await;
    let reply = first.pulse(&ana, "forget confirm").await;
    assert!(reply.starts_with("Done"), "{reply}");
    first.stop().await;
    assert_eq!(people(&env).await, stored(&[(&bo, true)]));

    // Started again with ana still on the roster: she stays out, and the
    // operator is told to take her off it.
    let second = Daemon::start(&env, &slack).await;
    assert!(
        second.start_log.contains(&warning(&ana)),
        "{}",
        second.start_log
    );
    assert!(second.start_log.contains("remove them from [[people]]"));
    assert_eq!(people(&env).await, stored(&[(&bo, true)]));
    // Until she asks to come back.
    let reply = second.pulse(&ana, "join").await;
    assert!(reply.starts_with("You're in"), "{reply}");
    second.stop().await;

    // The operator forgets bo: the same holds for him.
    let out = env.ok(&["forget", &bo]);
    assert!(out.contains("stays opted out"), "{out}");
    assert!(out.contains("still on the roster"), "{out}");

    let third = Daemon::start(&env, &slack).await;
    assert!(
        !third.start_log.contains(&warning(&ana)),
        "{}",
        third.start_log
    );
    assert!(
        third.start_log.contains(&warning(&bo)),
        "{}",
        third.start_log
    );
    third.stop().await;
    assert_eq!(people(&env).await, stored(&[(&ana, true)]));
}
