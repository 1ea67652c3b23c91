//! A local fake incoming webhook: answers like Slack, Mattermost or
//! Rocket.Chat, records every post, and can be told to fail the next posts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nudged::config::WebhookFlavor;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::WAIT;

/// The secret part of the fake's URL; tests check it never leaks.
pub const HOOK_KEY: &str = "s3cr3t-hook-key-T0123-B0456";

/// One post the fake received.
#[derive(Debug, Clone)]
pub struct Post {
    pub content_type: Option<String>,
    pub body: Value,
}

/// A scripted answer for the next post.
#[derive(Debug, Clone)]
pub enum Answer {
    /// HTTP 429 with `Retry-After: secs`.
    TooManyRequests(u64),
    /// A status with a body, as the servers send them (`no_service`, JSON, …).
    Status(u16, &'static str),
}

#[derive(Clone)]
struct Shared {
    flavor: WebhookFlavor,
    posts: mpsc::UnboundedSender<Post>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

/// The running fake.
pub struct FakeWebhook {
    /// The webhook URL, secret key included.
    pub url: String,
    posts: mpsc::UnboundedReceiver<Post>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl FakeWebhook {
    pub async fn start(flavor: WebhookFlavor) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Shared {
            flavor,
            posts: tx,
            script: script.clone(),
        };
        let app = Router::new()
            .route("/hooks/{key}", post(handle))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/{HOOK_KEY}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            posts: rx,
            script,
        }
    }

    /// Answers the next posts with `answers`, in order, then normally.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.script.lock().unwrap().extend(answers);
    }

    /// The next post, waiting for it under the suite's timeout.
    pub async fn next_post(&mut self) -> Post {
        tokio::time::timeout(WAIT, self.posts.recv())
            .await
            .expect("no post reached the fake webhook in time")
            .expect("fake webhook stopped")
    }

    /// Every post received so far, without waiting.
    pub fn received(&mut self) -> Vec<Post> {
        let mut posts = Vec::new();
        while let Ok(post) = self.posts.try_recv() {
            posts.push(post);
        }
        posts
    }
}

async fn handle(
    State(shared): State<Shared>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    // An unknown key is what Slack calls a missing service.
    if key != HOOK_KEY {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    }
    let _ = shared.posts.send(Post {
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let scripted = shared.script.lock().unwrap().pop_front();
    match scripted {
        Some(Answer::TooManyRequests(secs)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            "",
        )
            .into_response(),
        Some(Answer::Status(code, body)) => {
            (StatusCode::from_u16(code).unwrap(), body).into_response()
        }
        None => match shared.flavor {
            WebhookFlavor::Rocketchat => {
                axum::Json(serde_json::json!({ "success": true })).into_response()
            }
            WebhookFlavor::Slack | WebhookFlavor::Mattermost => "ok".into_response(),
        },
    }
}
