//! The HTTP edge under abuse, over raw loopback TCP: request heads that
//! never end, idle connections, more connections than the cap, and
//! unsigned requests with bodies they never send.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemon::Daemon;
use crate::helpers::{SIGNING_SECRET, TestApp, TestEnv, WAIT, http, spawn_app_with, test_now};

const HEADER_READ: &str = "NUDGED__SERVER__HEADER_READ_TIMEOUT_SECS";
const IDLE: &str = "NUDGED__SERVER__IDLE_TIMEOUT_SECS";
const MAX_CONNECTIONS: &str = "NUDGED__SERVER__MAX_CONNECTIONS";

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: nudged\r\n\r\n";

/// Reads until the server closes the connection (EOF or reset) and returns
/// what it sent; fails if that takes longer than [`WAIT`].
async fn until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server never closed the connection");
    seen
}

/// Reads one response's head and `Content-Length` body; returns its status
/// line and body.
async fn response(stream: &mut (impl AsyncRead + Unpin)) -> (String, String) {
    tokio::time::timeout(WAIT, async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&seen[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&seen[end + 4..end + 4 + length]);
                    let status = head.lines().next().unwrap_or_default().to_owned();
                    return (status, body.into_owned());
                }
            }
            let n = stream.read(&mut buf).await.expect("read a response");
            assert!(n > 0, "closed before a whole response: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no response in time")
}

async fn stop(app: TestApp) {
    app.stop().await;
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off_at_the_header_read_timeout() {
    let app = spawn_app_with(&[], &[(HEADER_READ, "1"), (IDLE, "60")], false).await;
    let started = Instant::now();
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // Slowloris: a head begun, then a header line now and then, never the
    // blank line that ends it.
    let dribble = tokio::spawn(async move {
        if write
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: nudged\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if write.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
        }
    });
    let sent = until_closed(&mut read).await;
    let elapsed = started.elapsed();
    assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    // Dribbling did not extend it: the clock ran from the connection.
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(10),
        "closed after {elapsed:?}"
    );
    dribble.abort();

    // The server is as responsive as before.
    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    stop(app).await;
}

#[tokio::test]
async fn a_connection_that_never_sends_anything_is_closed_at_the_header_read_timeout() {
    let app = spawn_app_with(&[], &[(HEADER_READ, "1"), (IDLE, "60")], false).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(10),
        "closed after {elapsed:?}"
    );
    stop(app).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let app = spawn_app_with(&[], &[(HEADER_READ, "60"), (IDLE, "1")], false).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // Kept alive: two requests on one connection.
    for _ in 0..2 {
        stream.write_all(HEALTHZ).await.unwrap();
        let (status, body) = response(&mut stream).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, "ok\n");
    }
    let idle_since = Instant::now();
    let sent = until_closed(&mut stream).await;
    let elapsed = idle_since.elapsed();
    assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));
    // The idle limit, not the 60 s header limit, closed it.
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(10),
        "closed after {elapsed:?} idle"
    );
    stop(app).await;
}

#[tokio::test]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room_for_a_new_one() {
    // Timeouts far off: only the cap is at work here.
    let app = spawn_app_with(
        &[],
        &[(HEADER_READ, "60"), (IDLE, "60"), (MAX_CONNECTIONS, "4")],
        false,
    )
    .await;
    // Four kept-alive connections fill the cap, oldest first.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(&mut stream).await.0, "HTTP/1.1 200 OK");
        held.push(stream);
    }
    // A fifth is served at once, not queued behind idle ones or refused.
    let started = Instant::now();
    let ok = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The oldest made room; the others still serve.
    until_closed(&mut held[0]).await;
    for stream in &mut held[2..] {
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(stream).await.0, "HTTP/1.1 200 OK");
    }
    stop(app).await;
}

/// Open files the daemon may have in the test below: low enough that 2,000
/// held connections would exhaust them.
#[cfg(target_os = "linux")]
const DAEMON_FILES: u64 = 256;

/// How many files process `pid` has open.
#[cfg(target_os = "linux")]
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's fd directory")
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn two_thousand_held_connections_neither_exhaust_the_daemons_files_nor_keep_out_a_health_check()
 {
    use rustix::process::{Resource, Rlimit, setrlimit};

    let env = TestEnv::new();
    let mut command = tokio::process::Command::from(env.command(&["run"]));
    // SAFETY: between fork and exec the closure makes one system call and
    // allocates nothing.
    unsafe {
        command.pre_exec(|| {
            let limit = Rlimit {
                current: Some(DAEMON_FILES),
                maximum: Some(DAEMON_FILES),
            };
            setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)
        });
    }
    let daemon = Daemon::spawn(command).await;
    let pid = daemon.child.id().unwrap();
    let healthz = format!("http://{}/healthz", daemon.addr);
    // One request first, so the store's connections are open when counted.
    let warm_up = http().get(&healthz).send().await.unwrap();
    assert_eq!(warm_up.status(), 200);
    drop(warm_up);
    let before = open_files(pid);

    tokio::time::timeout(WAIT, async {
        // 2,000 connections that never send a byte, all held open here.
        let mut held = Vec::with_capacity(2000);
        for _ in 0..2000 {
            held.push(TcpStream::connect(&daemon.addr).await.unwrap());
        }
        let response = http().get(&healthz).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // At most the cap (128 = 256 less the files kept in reserve), the
        // one being accepted, and a few the store may have opened since:
        // the rest were closed to make room.
        let during = open_files(pid);
        assert!(
            during <= before + 128 + 16,
            "{during} files open, {before} before the flood"
        );
        drop(held);
    })
    .await
    .expect("the daemon did not answer /healthz under 2,000 held connections");

    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(
        log.contains("server.max_connections lowered to 128"),
        "{log}"
    );
}

// ---- requests without a signature ----------------------------------------

/// Sends a POST head declaring `length` bytes of body, and `sent` of them;
/// returns the status line the server answers with, without sending more.
async fn post_head(app: &TestApp, extra_headers: &str, length: usize, sent: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /slack/events HTTP/1.1\r\nHost: nudged\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra_headers}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let (status, _) = response(&mut stream).await;
    status
}

#[tokio::test]
async fn an_unsigned_request_is_refused_before_its_body_is_read() {
    let app = spawn_app_with(&["U0001"], &[], false).await;
    let now = test_now().timestamp();
    let stale = format!(
        "X-Slack-Request-Timestamp: {}\r\nX-Slack-Signature: v0=00\r\n",
        now - 3600
    );
    for (headers, length) in [
        // No signature, and a body far past the limit.
        ("", 10_000_000),
        // No signature, and a body within the limit that never comes.
        ("", 500_000),
        // A stale timestamp, and a body that never comes.
        (stale.as_str(), 500_000),
    ] {
        let started = Instant::now();
        let status = post_head(&app, headers, length, b"{\"type\":").await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{headers:?} {length}");
        // Well inside the 10 s a handler may take reading a body.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(app.answers().await.is_empty());
    stop(app).await;
}

#[tokio::test]
async fn a_signed_timestamp_half_the_clock_away_is_refused_not_overflowed() {
    let app = spawn_app_with(&["U0001"], &[], false).await;
    // now - ts = 2^63: it overflows i64, and wrapped it once passed as fresh.
    let ts = test_now().timestamp() + i64::MIN;
    let body = serde_json::json!({ "type": "url_verification", "challenge": "c" }).to_string();
    let signature = nudged::http::verify::sign(SIGNING_SECRET, ts, body.as_bytes());
    let response = app
        .client
        .post(app.url("/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(response.status(), 401);
    stop(app).await;
}

// ---- the read buffer -------------------------------------------------------

#[tokio::test]
async fn a_request_head_past_16_kib_is_answered_431_and_a_body_past_it_is_still_read() {
    let app = spawn_app_with(&["U0001"], &[], false).await;
    // A head of 20 KB: one header line of padding.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: nudged\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, _) = response(&mut stream).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");

    // The cap is on what a connection buffers, not on a body: a signed
    // body of 60 KB, read in several reads, is answered in full.
    let challenge = "c".repeat(60_000);
    let reply = app
        .event(&serde_json::json!({ "type": "url_verification", "challenge": challenge }))
        .await;
    assert_eq!(reply.status(), 200);
    assert!(reply.text().await.unwrap().contains(&challenge));
    stop(app).await;
}
