//! Fuzz targets for everything nudged reads from outside: property-based
//! (proptest) so they run on stable Rust and inside `cargo test`.
//!
//! Each target feeds one parser or entry point a mix of *structured* inputs
//! (valid-looking Slack payloads with mutated fields, correctly signed random
//! bodies, near-valid reply grammar, CSV rows with near-valid weeks and ids,
//! schedule and config files with random values for real keys) and raw
//! arbitrary strings or bytes, and asserts that nothing panics plus a
//! property of the result (a wrong signature is always refused, a parsed
//! answer is a real option, a config error names its key, …).
//!
//! `cargo test` runs 1,000 inputs per target (100 for the config and router
//! targets, which touch files and a database). For a long run:
//!
//! ```sh
//! NUDGED_FUZZ_CASES=1000000 nice cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! Every target prints how many inputs it ran. A failing input is shrunk,
//! printed, and its seed saved under `tests/fuzz/regressions/`, so the next
//! run tries it first.

mod inputs;
mod support;

mod config;
mod csv;
mod payloads;
mod reply;
mod router;
mod schedule;
mod verify;
