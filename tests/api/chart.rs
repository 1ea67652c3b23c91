//! The trend chart on Slack: a trend post goes through the outbox as the
//! text post, then the chart's PNG uploaded into the same DM; when the
//! upload fails the text post stands and is not sent twice.

use nudged::domain::PersonId;

use crate::fake_slack::{Call, Reply};
use crate::helpers::{TestApp, WAIT, spawn_app, strong_history, test_now};

/// A strong history for U0001 and its weekly trend post in the outbox: no
/// room to learn this week, so the nudge waits and the post is alone.
async fn trend_post_queued(app: &TestApp) {
    let id = PersonId::parse("U0001").unwrap();
    app.store
        .import_answers(
            &strong_history("U0001", "2026-W47".parse().unwrap(), 10, "none"),
            test_now(),
        )
        .await
        .unwrap();
    let person = app.store.person(&id).await.unwrap().unwrap();
    let done = nudged::service::readiness::reassess(
        &app.settings,
        app.store.as_ref(),
        &person,
        test_now(),
        Some("trend:U0001:2026-W47"),
    )
    .await
    .unwrap();
    assert!(done.trend_posted);
}

/// The next call, which must be to `method`.
async fn next(app: &mut TestApp, method: &str) -> Call {
    let call = app.slack.next_call().await;
    assert_eq!(call.method, method, "{call:?}");
    call
}

#[tokio::test]
async fn a_trend_post_on_slack_carries_its_chart_uploaded_into_the_dm() {
    let mut app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT * 2, async {
        trend_post_queued(&app).await;
        app.deliver().await;
        assert_eq!(app.outbox().await.len(), 1);
        let post = next(&mut app, "chat.postMessage").await;
        assert!(
            post.body["text"]
                .as_str()
                .unwrap()
                .starts_with("Your trend")
        );
        assert_eq!(post.body["channel"], "U0001");

        let url = next(&mut app, "files.getUploadURLExternal").await;
        assert_eq!(url.body["filename"], "trend-2026-W47.png");
        let upload = next(&mut app, "upload").await;
        // The signed URL gets the bytes, never the bot token.
        assert_eq!(upload.auth, None);
        assert_eq!(upload.content_type.as_deref(), Some("image/png"));
        assert_eq!(url.body["length"], upload.bytes.len().to_string());
        let reader = png::Decoder::new(std::io::Cursor::new(&upload.bytes))
            .read_info()
            .unwrap();
        assert_eq!((reader.info().width, reader.info().height), (640, 320));

        let complete = next(&mut app, "files.completeUploadExternal").await;
        assert_eq!(complete.body["channel_id"], "D0001", "into the DM");
        assert_eq!(complete.body["files"][0]["id"], upload.body["file_id"]);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}

#[tokio::test]
async fn when_the_upload_fails_the_text_post_stands_and_is_not_sent_again() {
    let mut app = spawn_app(&["U0001"]).await;
    tokio::time::timeout(WAIT * 2, async {
        trend_post_queued(&app).await;
        let outbox = app.outbox().await;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0]["op"], "trend_post");
        // The trend post is answered; the upload URL is refused.
        app.slack
            .script([Reply::Normal, Reply::Error("internal_error")]);
        app.deliver().await;
        let calls = app.slack.received();
        let trend_posts = calls
            .iter()
            .filter(|c| {
                c.method == "chat.postMessage"
                    && c.body["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Your trend"))
            })
            .count();
        assert_eq!(trend_posts, 1, "{calls:?}");
        assert!(
            calls
                .iter()
                .any(|c| c.method == "files.getUploadURLExternal")
        );
        let methods: Vec<_> = calls.iter().map(|c| (c.method.as_str(), c.ok)).collect();
        assert!(
            calls
                .iter()
                .all(|c| c.method != "upload" && c.method != "files.completeUploadExternal"),
            "{methods:?}"
        );
        assert_eq!(
            app.store.outbox_counts().await.unwrap().pending,
            0,
            "the trend post counts as delivered"
        );
        assert_eq!(app.counter("nudged_chart_uploads_failed_total").await, 1);
    })
    .await
    .expect("test timed out");
    app.stop().await;
}
