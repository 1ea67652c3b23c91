//! `/healthz` and `/readyz` over HTTP: liveness stays `ok`; readiness
//! names each cause that keeps the daemon from doing its work (a worker
//! down, a store that takes no writes, messages waiting too long), and
//! recovers when the cause does.

use chrono::Duration;
use nudged::health::WorkerState;
use nudged::store::sqlite::SqliteStore;

use crate::fake_slack::Reply;
use crate::helpers::{TestApp, WAIT, spawn_app};

/// `GET path`: the status and the body.
async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.client.get(app.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// A second handle on the app's SQLite file, for tampering.
async fn raw(app: &TestApp) -> SqliteStore {
    let url = format!("sqlite://{}", app._env.db().display());
    SqliteStore::open(&url).await.expect("open the app's store")
}

#[tokio::test]
async fn a_running_app_is_live_and_ready() {
    let app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        assert_eq!(get(&app, "/healthz").await, (200, "ok\n".to_owned()));
        assert_eq!(get(&app, "/readyz").await, (200, "ready\n".to_owned()));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn readyz_names_a_store_that_takes_no_writes_while_healthz_stays_ok() {
    let app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        let raw = raw(&app).await;
        // Every write of the probe row fails, as on a full or read-only disk.
        sqlx::raw_sql(
            "CREATE TRIGGER no_insert BEFORE INSERT ON readiness_probe \
               BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END; \
             CREATE TRIGGER no_update BEFORE UPDATE ON readiness_probe \
               BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;",
        )
        .execute(raw.pool())
        .await
        .unwrap();
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!((status, body.as_str()), (503, "store: cannot be written\n"));
        assert!(
            !body.contains("disk I/O"),
            "details stay in the log: {body}"
        );
        assert_eq!(get(&app, "/healthz").await, (200, "ok\n".to_owned()));

        sqlx::raw_sql("DROP TRIGGER no_insert; DROP TRIGGER no_update;")
            .execute(raw.pool())
            .await
            .unwrap();
        assert_eq!(get(&app, "/readyz").await, (200, "ready\n".to_owned()));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn readyz_names_the_outbox_lag_once_the_chat_server_is_down_long_enough() {
    let app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT, async {
        app.pulse("U0001", "now").await;
        // Slack is down: every call answers 503 until the script runs out.
        app.slack
            .script(std::iter::repeat_n(Reply::Status(503), 100));
        assert_eq!(app.deliver().await.retried, 1);
        assert_eq!(get(&app, "/readyz").await.0, 200, "a retry is no lag yet");

        // Retried through ten minutes of outage: still within the limit.
        for _ in 0..10 {
            app.clock.advance(Duration::minutes(1));
            app.deliver().await;
        }
        assert_eq!(get(&app, "/readyz").await, (200, "ready\n".to_owned()));

        app.clock.advance(Duration::seconds(1));
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (
                503,
                "outbox: the oldest undelivered message has waited 601 s (limit 600 s)\n"
            )
        );
        assert_eq!(get(&app, "/healthz").await, (200, "ok\n".to_owned()));

        // Slack is back: once the prompt is delivered, the daemon is ready.
        app.slack.clear_script();
        app.clock.advance(Duration::minutes(20));
        assert_eq!(app.deliver().await.sent, 1);
        assert_eq!(get(&app, "/readyz").await, (200, "ready\n".to_owned()));
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn a_worker_that_panics_is_restarted_and_readyz_names_it_until_it_runs_again() {
    let app = spawn_app(&[]).await;
    let health = app.supervisor.health();
    let (healed, heal) = tokio::sync::watch::channel(false);
    let mut starts = 0;
    app.supervisor.spawn("flaky", None, move |heartbeat, stop| {
        starts += 1;
        let first = starts == 1;
        let mut heal = heal.clone();
        async move {
            if first {
                panic!("a fault in the worker's first run");
            }
            // The restarted worker reports progress when the test says so.
            let _ = heal.wait_for(|healed| *healed).await;
            heartbeat.beat();
            stop.cancelled().await;
            Ok(())
        }
    });
    tokio::time::timeout(WAIT, async {
        health
            .wait_for("flaky", |w| {
                w.restarts == 1 && w.state == WorkerState::Starting
            })
            .await;
        let (status, body) = get(&app, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (
                503,
                "worker flaky: restarted after it panicked (1 restart), no progress yet\n"
            )
        );
        assert_eq!(get(&app, "/healthz").await.0, 200);

        healed.send_replace(true);
        health
            .wait_for("flaky", |w| w.state == WorkerState::Running)
            .await;
        assert_eq!(get(&app, "/readyz").await, (200, "ready\n".to_owned()));
        let (_, metrics) = get(&app, "/metrics").await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "nudged_worker_restarts_total{worker=\"flaky\"} 1"),
            "{metrics}"
        );
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
