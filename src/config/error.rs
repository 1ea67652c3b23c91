//! The one error type of configuration: which file, which key, what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem, printed on one line as `file: key: problem`, so a
/// person can go straight to the line that needs fixing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the key was read from (or would have been: a key set from
    /// the environment still names the config file it overrides).
    pub file: PathBuf,
    /// Dotted key path, e.g. `chat.platform` or `people[2].tz`.
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(file: &Path, key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.problem)
        }
    }
}

/// A schedule file's problem, as loading the configuration reports it: the
/// same file, key and wording.
impl From<crate::schedule::ScheduleError> for ConfigError {
    fn from(e: crate::schedule::ScheduleError) -> Self {
        Self {
            file: e.file,
            key: e.key,
            problem: e.problem,
        }
    }
}
