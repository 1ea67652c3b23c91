//! The runner every target shares: how many inputs to run, where failing
//! seeds are kept, and the line each target prints when it is done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseResult, TestError, TestRunner,
};

/// Environment variable: how many inputs a target with the full share
/// (1000 per mille) runs.
pub const CASES_VAR: &str = "NUDGED_FUZZ_CASES";

/// [`CASES_VAR`] when unset: enough to catch a regression in CI, small
/// enough that the whole binary takes seconds in a debug build.
pub const DEFAULT_CASES: u64 = 1_000;

/// One fuzz target.
pub struct Target {
    /// Shown in the summary line.
    pub name: &'static str,
    /// Where the seeds of failing inputs are appended (relative to the
    /// crate root, where `cargo test` runs).
    pub regressions: &'static str,
    /// Share of [`CASES_VAR`] this target runs, per mille: targets that
    /// touch files or a database cost far more per input than a parser.
    pub per_mille: u64,
}

impl Target {
    /// How many inputs this target runs.
    pub fn cases(&self) -> u32 {
        let base = match std::env::var(CASES_VAR) {
            Err(_) => DEFAULT_CASES,
            Ok(v) => v
                .trim()
                .replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{CASES_VAR} must be a whole number, got {v:?}")),
        };
        let cases = (base.saturating_mul(self.per_mille) / 1000).max(1);
        u32::try_from(cases).unwrap_or(u32::MAX)
    }

    /// Runs `test` on [`Target::cases`] inputs from `strategy`; a panic or
    /// a failed property fails the test with the shrunk input.
    pub fn run<S: Strategy>(&self, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) {
        let cases = self.cases();
        let config = Config {
            cases,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(self.regressions))),
            // Generous: a structured input may be thrown away when it
            // happens to be valid where the target wants invalid ones.
            max_global_rejects: cases / 10 + 1_000,
            max_local_rejects: cases / 10 + 65_536,
            ..Config::default()
        };
        let ran = AtomicU64::new(0);
        let started = Instant::now();
        let result = TestRunner::new(config).run(&strategy, |input| {
            ran.fetch_add(1, Ordering::Relaxed);
            test(input)
        });
        match result {
            Ok(()) => eprintln!(
                "fuzz {}: {} inputs, none panicked, every property held ({:.1} s)",
                self.name,
                ran.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            ),
            Err(TestError::Abort(why)) => panic!("fuzz {}: aborted: {why}", self.name),
            Err(TestError::Fail(why, input)) => {
                panic!("fuzz {}: {why}\nminimal input: {input:#?}", self.name)
            }
        }
    }
}
