//! The error of a schedule file: which file, which key, what is wrong.
//! Configuration turns it into its own error where it loads the schedule
//! directory, so the pure schedule code needs nothing from `config`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with a schedule file (or the schedule directory), printed on
/// one line as `file: key: problem`, so a person can go straight to the line
/// that needs fixing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScheduleError {
    /// The schedule file, or the directory when the problem is with it.
    pub file: PathBuf,
    /// The key in the file, e.g. `cron` or `questions[2]`; empty when the
    /// problem is with the file as a whole (TOML syntax, reading it).
    pub key: String,
    pub problem: String,
}

impl ScheduleError {
    pub fn new(file: &Path, key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.problem)
        }
    }
}
