//! nudged: weekly micro-check-ins in chat, a per-person ownership trend, and
//! one readiness nudge once that trend shows sustained product ownership.
//!
//! # Layout
//!
//! ARCHITECTURE.md is the map: the flows, the layers and the invariants.
//! Calls run one way: drivers (`http`, `socket_mode`, `mattermost_ws`, `scheduler`, `cli`,
//! `console_input`, `retention`) → use cases ([`service`]) → [`outbox`] → [`chat`]
//! adapters; [`store`], [`config`], [`clock`], [`health`] and
//! [`supervisor`] beside them; the pure core below all. A test
//! (`tests/api/layers.rs`) fails on an import up a layer.
//!
//! Pure core (no IO, time passed in):
//! - [`domain`]: ids, ISO weeks, answers and the question catalogue.
//! - [`model`]: the readiness model: `assess()` and replay.
//! - [`schedule`]: schedule files and when each occurrence is due.
//! - [`reply`]: text replies and `/pulse` arguments → typed answers and commands.
//! - [`render`]: prompts and other messages → neutral messages with Block Kit.
//! - [`history`]: CSV/JSON forms of answers, for import and export.
//!
//! Beside:
//! - [`config`]: `config.toml` + `NUDGED__` environment → validated [`config::Settings`].
//! - [`clock`]: where "now" comes from; a manual clock for tests.
//! - [`store`]: the [`store::Store`] trait and its SQLite and PostgreSQL engines.
//! - [`health`]: the workers' state, `/healthz` and `/readyz`'s checks.
//! - [`supervisor`]: runs the workers and restarts them after a fault.
//!
//! Chat adapters and the outbox:
//! - [`chat`]: the [`chat::ChatApi`] port and its [`chat::Outgoing`] message:
//!   Slack's Web API, Mattermost's REST API, an incoming webhook, the console.
//! - [`outbox`]: outgoing messages as durable rows ([`outbox::Queued`]),
//!   their paced delivery, and redraws drawn at send time.
//!
//! Use cases:
//! - [`service`]: answers, check-ins, `/pulse`, readiness (trend post,
//!   nudge, App Home), answers to the nudge, history.
//!
//! Drivers:
//! - [`http`]: the axum router: Slack's and Mattermost's endpoints (verified), `/healthz`, `/readyz`, `/metrics`;
//!   connections served within the `[server]` timeouts and cap.
//! - [`scheduler`]: the minute heartbeat and the dispatcher that claims due runs.
//! - [`console_input`]: typed lines read as the first roster person's replies.
//! - [`mattermost_ws`]: DM replies read from Mattermost's WebSocket.
//! - [`retention`]: pruning what is no longer needed, in the background.
//! - [`socket_mode`]: Slack's Socket Mode driver: envelopes over a WebSocket, through
//!   `http`'s handlers, acknowledged once committed.
//! - [`manifest`]: the Slack app manifest `nudged manifest` prints.
//! - [`online_check`]: `nudged check --online`: the tokens, scopes and Socket Mode, asked of Slack.
//! - [`app`]: the composition root: build everything, run until shutdown.
//! - [`cli`]: the `nudged` commands.

pub mod app;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console_input;
pub mod domain;
pub mod health;
pub mod history;
pub mod http;
pub mod manifest;
pub mod mattermost_ws;
pub mod model;
pub mod online_check;
pub mod outbox;
pub mod render;
pub mod reply;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod socket_mode;
pub mod store;
pub mod supervisor;
