//! `nudged run` as a real child process.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TestEnv, WAIT, http};

/// A running `nudged run` and the address it logged.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    stderr: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
}

impl Daemon {
    /// Starts the daemon and waits for its "listening on" line.
    pub async fn start(env: &TestEnv) -> Self {
        Self::spawn(Command::from(env.command(&["run"]))).await
    }

    /// Starts `command` (a `nudged run`) and waits for its "listening on" line.
    pub async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn nudged run");
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = stderr.next_line().await.unwrap() {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("nudged run exited before listening");
        })
        .await
        .expect("nudged run did not log its address in time");
        Self {
            child,
            addr,
            stderr,
        }
    }

    /// Sends SIGTERM and returns the exit status and the rest of stderr.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut rest = String::new();
        let status = tokio::time::timeout(WAIT, async {
            while let Some(line) = self.stderr.next_line().await.unwrap() {
                rest.push_str(&line);
                rest.push('\n');
            }
            self.child.wait().await.unwrap()
        })
        .await
        .expect("nudged run did not stop after SIGTERM");
        (status, rest)
    }
}

#[tokio::test]
async fn run_answers_healthz_and_exits_cleanly_on_sigterm() {
    let env = TestEnv::new();
    let daemon = Daemon::start(&env).await;

    let client = http();
    let response = client
        .get(format!("http://{}/healthz", daemon.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().trim(), "ok");
    let missing = client
        .get(format!("http://{}/nope", daemon.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The roster was enrolled, so the demo person is known to the CLI.
    assert!(env.db().is_file());

    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("nudged stopped"), "{log}");
}

#[tokio::test]
async fn run_ask_now_prints_the_prompt_on_the_console() {
    let env = TestEnv::new();
    let mut child = Command::from(env.command(&["run", "--ask-now"]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            let done = line.starts_with("Type your answers");
            seen.push(line);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no prompt on the console; saw: {seen:#?}"));
    assert!(seen.iter().any(|l| l == "── to demo ──"), "{seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("Weekly check-in for ") && l.ends_with("0 of 7 answered")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l == "    0 · 1-2 · 3-5 · 6+"),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(|l| l == "    rotated · partly · same"),
        "{seen:#?}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn run_refuses_an_address_in_use_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let env = TestEnv::with_config(|c| c.replace("127.0.0.1:3000", &addr));
    let out = Command::from(env.command(&["run"]))
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr} (server.bind)")),
        "{err}"
    );
}

#[tokio::test]
async fn sigterm_sent_as_soon_as_it_listens_stops_it_cleanly() {
    // The signal races the daemon's start-up; a few rounds make a lost
    // race show.
    for _ in 0..5 {
        let env = TestEnv::new();
        let daemon = Daemon::start(&env).await;
        let (status, log) = daemon.terminate().await;
        assert!(status.success(), "exit {status}; log:\n{log}");
        assert!(log.contains("nudged stopped"), "{log}");
    }
}

#[tokio::test]
async fn with_log_format_json_each_log_line_is_a_json_object() {
    let env = TestEnv::new();
    let mut command = Command::from(env.command(&["run"]));
    command
        .env("NUDGED__LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn nudged run");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = tokio::time::timeout(WAIT, async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(
                entry["timestamp"].is_string() && entry["level"].is_string(),
                "{line}"
            );
            let message = entry["fields"]["message"].as_str().unwrap_or_default();
            if message.contains("listening on") {
                return entry;
            }
        }
        panic!("nudged run exited before listening");
    })
    .await
    .expect("nudged run did not log its address in time");
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["fields"]["platform"], "console");
    child.kill().await.unwrap();

    let mut command = env.command(&["check"]);
    let unknown = command.env("NUDGED__LOG__FORMAT", "xml").output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert!(stderr.contains("log.format"), "{stderr}");
}
