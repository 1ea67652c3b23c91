//! The pure core stays pure: no async runtime, database, HTTP or clock in
//! `domain`, `model`, `reply`, `render`, `schedule` or the outbox's pacing.
//! Which way modules may import each other is `layers.rs`'s.

use crate::helpers::repo;

const PURE: &[&str] = &[
    "src/domain",
    "src/model",
    "src/reply",
    "src/render",
    "src/schedule",
    "src/outbox/pacing.rs",
];
const FORBIDDEN: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "axum",
    "hyper",
    "Utc::now",
    "SystemTime",
    "Instant::now",
];

fn rust_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn the_pure_modules_use_no_runtime_database_http_or_clock() {
    let mut files = Vec::new();
    for p in PURE {
        rust_files(&repo().join(p), &mut files);
    }
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                assert!(
                    !code.contains(word),
                    "{}:{}: uses {word}: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}
