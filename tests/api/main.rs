//! The integration tests: the real binary, a real SQLite file, a real
//! PostgreSQL server, real HTTP on loopback.

mod chart;
mod cli;
mod console;
mod crash;
mod daemon;
mod delivery;
mod demo;
mod digest;
mod due;
mod edge;
mod fake_mattermost;
mod fake_slack;
mod fake_webhook;
mod forgotten;
mod health;
mod helpers;
mod layers;
mod manifest;
mod mattermost;
mod nudge;
mod online;
mod pacing;
mod personas;
mod pinning;
mod postgres;
mod purity;
mod replicas;
mod retention;
mod scheduler;
mod slack;
mod socket_mode;
mod store;
mod webhook;
