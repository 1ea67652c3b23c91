//! The pure core stays pure: no async runtime, database, HTTP or clock in
//! `domain`, `model`, `reply`, `render`, `schedule` or the outbox's pacing.

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

/// Calls run down the layers (`lib.rs`: drivers → use cases → outbox
/// → chat adapters): the outbox and the adapters never call a use case.
const BELOW_USE_CASES: &[&str] = &["src/outbox.rs", "src/outbox", "src/chat"];
const USE_CASES: &[&str] = &[
    "crate::service",
    "crate::readiness",
    "crate::nudge",
    "crate::console_input",
    "crate::http",
    "crate::scheduler",
];

#[test]
fn the_outbox_and_the_chat_adapters_call_no_use_case() {
    let mut files = Vec::new();
    for p in BELOW_USE_CASES {
        rust_files(&repo().join(p), &mut files);
    }
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for layer in USE_CASES {
                assert!(
                    !code.contains(layer),
                    "{}:{}: calls up into {layer}: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

/// The top-level modules named by `crate::` paths in `code`, including each
/// member of a `crate::{a, b::c}` group.
fn crate_modules(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.push(ident(rest));
            continue;
        };
        // The first name of each member at the group's own depth.
        let mut depth = 1;
        let mut member_start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => member_start = true,
                c if member_start && !c.is_whitespace() => {
                    found.push(ident(&group[i..]));
                    member_start = false;
                }
                _ => {}
            }
        }
    }
    found
}

/// The pure core (`lib.rs`, "Layout") imports only itself, and `config`
/// only the core and the store's types: neither reaches up to a chat
/// adapter, a use case or a driver.
#[test]
fn the_pure_core_and_config_import_nothing_above_them() {
    const CORE: &[&str] = &["domain", "model", "reply", "render", "schedule"];
    let rules: [(&[&str], Vec<&str>); 2] = [
        (CORE, CORE.to_vec()),
        (&["config"], [CORE, &["config", "store"]].concat()),
    ];
    for (modules, allowed) in rules {
        let mut files = Vec::new();
        for module in modules {
            let dir = repo().join("src").join(module);
            if dir.is_dir() {
                rust_files(&dir, &mut files);
            } else {
                files.push(repo().join(format!("src/{module}.rs")));
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code: String = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for module in crate_modules(&code) {
                assert!(
                    allowed.contains(&module.as_str()),
                    "{} imports crate::{module}, above it",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn crate_paths_are_read_with_their_groups() {
    assert_eq!(
        crate_modules(
            "use crate::{\n    config::{A, B},\n    store,\n};\nlet x = crate::http::serve;"
        ),
        ["config", "store", "http"]
    );
}
