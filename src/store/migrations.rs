//! Schema migrations, compiled into the binary.
//!
//! Each engine has its own SQL files under `migrations/<engine>/`; they are
//! embedded with `include_str!` and handed to sqlx's [`Migrator`] at run
//! time, so the binary needs no migrations directory on disk. sqlx records
//! every applied version with a checksum of its SQL in `_sqlx_migrations`:
//! re-running is a no-op, and a store whose applied file was later edited
//! refuses to open ([`MigrateError::VersionMismatch`]). So an applied file is
//! never edited; a change is a new file with the next version.
//!
//! [`MigrateError::VersionMismatch`]: sqlx::migrate::MigrateError::VersionMismatch

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// One migration file compiled into the binary.
pub(super) struct Embedded {
    /// The file's numeric prefix (`0001_init.sql` → 1); applied in order.
    /// Versions increase; a number may be skipped (a branch of the schema
    /// that was numbered elsewhere), never reused.
    pub version: i64,
    /// The rest of the file name, as recorded by sqlx.
    pub description: &'static str,
    pub sql: &'static str,
}

/// The SQLite schema, oldest first.
pub(super) const SQLITE: &[Embedded] = &[
    Embedded {
        version: 1,
        description: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Embedded {
        version: 2,
        description: "outbox coalesce",
        sql: include_str!("../../migrations/sqlite/0002_outbox_coalesce.sql"),
    },
    Embedded {
        version: 3,
        description: "opt outs",
        sql: include_str!("../../migrations/sqlite/0003_opt_outs.sql"),
    },
    Embedded {
        version: 4,
        description: "nudge answers",
        sql: include_str!("../../migrations/sqlite/0004_nudge_answers.sql"),
    },
    Embedded {
        version: 5,
        description: "health and retention",
        sql: include_str!("../../migrations/sqlite/0005_health_and_retention.sql"),
    },
    Embedded {
        version: 7,
        description: "schedule due",
        sql: include_str!("../../migrations/sqlite/0007_schedule_due.sql"),
    },
    Embedded {
        version: 8,
        description: "delivery rate",
        sql: include_str!("../../migrations/sqlite/0008_delivery_rate.sql"),
    },
    Embedded {
        version: 9,
        description: "channel pace",
        sql: include_str!("../../migrations/sqlite/0009_channel_pace.sql"),
    },
];

/// The PostgreSQL schema, oldest first: the same versions as [`SQLITE`],
/// one file per engine, so both stores always describe the same tables.
pub(super) const POSTGRES: &[Embedded] = &[
    Embedded {
        version: 1,
        description: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Embedded {
        version: 2,
        description: "outbox coalesce",
        sql: include_str!("../../migrations/postgres/0002_outbox_coalesce.sql"),
    },
    Embedded {
        version: 3,
        description: "opt outs",
        sql: include_str!("../../migrations/postgres/0003_opt_outs.sql"),
    },
    Embedded {
        version: 4,
        description: "nudge answers",
        sql: include_str!("../../migrations/postgres/0004_nudge_answers.sql"),
    },
    Embedded {
        version: 5,
        description: "health and retention",
        sql: include_str!("../../migrations/postgres/0005_health_and_retention.sql"),
    },
    Embedded {
        version: 7,
        description: "schedule due",
        sql: include_str!("../../migrations/postgres/0007_schedule_due.sql"),
    },
    Embedded {
        version: 8,
        description: "delivery rate",
        sql: include_str!("../../migrations/postgres/0008_delivery_rate.sql"),
    },
    Embedded {
        version: 9,
        description: "channel pace",
        sql: include_str!("../../migrations/postgres/0009_channel_pace.sql"),
    },
];

/// A migrator for one engine's embedded files. Each file runs in its own
/// transaction together with sqlx's bookkeeping row.
pub(super) fn migrator(files: &'static [Embedded]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|file| {
                Migration::new(
                    file.version,
                    Cow::Borrowed(file.description),
                    MigrationType::Simple,
                    AssertSqlSafe(file.sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase() {
        for files in [SQLITE, POSTGRES] {
            assert_eq!(files[0].version, 1);
            for pair in files.windows(2) {
                assert!(pair[0].version < pair[1].version, "{}", pair[1].description);
            }
            for file in files {
                assert!(!file.sql.trim().is_empty(), "{}", file.description);
            }
        }
    }

    #[test]
    fn both_engines_have_the_same_migrations() {
        let list = |files: &[Embedded]| -> Vec<(i64, &str)> {
            files.iter().map(|f| (f.version, f.description)).collect()
        };
        assert_eq!(list(SQLITE), list(POSTGRES));
    }
}
