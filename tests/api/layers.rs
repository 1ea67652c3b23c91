//! Calls run one way (ARCHITECTURE.md, "Layers"): a module imports only
//! from its own layer or the layers below, and the modules of one layer
//! import each other without a cycle. A new top-level module must be given
//! a layer here before the test passes, so its place is decided once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::helpers::repo;

/// Every top-level module of `src/` and its layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "pure core",
        &["domain", "model", "reply", "render", "schedule", "history"],
    ),
    (
        "beside",
        &["clock", "config", "store", "health", "supervisor"],
    ),
    ("chat adapters", &["chat"]),
    ("outbox", &["outbox"]),
    ("use cases", &["service"]),
    (
        "drivers",
        &[
            "http",
            "socket_mode",
            "manifest",
            "online_check",
            "scheduler",
            "console_input",
            "mattermost_ws",
            "retention",
            "cli",
            "app",
            "lib",
            "main",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level module a source file belongs to: `src/outbox/worker.rs`
/// → `outbox`, `src/cli.rs` → `cli`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules `text` names as `crate::x` or in a
/// `crate::{x, y::z}` group (or `nudged::…`, in the binary) in code, not
/// in comments.
fn references(text: &str) -> BTreeSet<String> {
    // The code without its comments, as one text: a `use` group may span
    // lines.
    let code: String = text
        .lines()
        .map(|line| line.trim_start())
        .filter(|line| !line.starts_with("//"))
        .map(|line| line.split(" //").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found: BTreeSet<String> = crate_modules(&code.replace("nudged::", "crate::"))
        .into_iter()
        .collect();
    found.retain(|name| !name.is_empty());
    found
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

/// Every import that breaks the rule, as a readable line; `files` are
/// (path under `src/`, text) pairs.
fn violations(files: &[(std::path::PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let from = module_of(path);
        let Some(from_layer) = layer_of(&from) else {
            problems.push(format!(
                "src/{}: module `{from}` has no layer in tests/api/layers.rs",
                path.display()
            ));
            continue;
        };
        for to in references(text) {
            if to == from {
                continue;
            }
            let Some(to_layer) = layer_of(&to) else {
                continue; // a macro or an item of the crate root
            };
            if to_layer > from_layer {
                problems.push(format!(
                    "src/{}: `{from}` ({}) imports `{to}` ({}), a layer above it",
                    path.display(),
                    LAYERS[from_layer].0,
                    LAYERS[to_layer].0
                ));
            } else if to_layer == from_layer {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Within a layer: no cycle (a depth-first search for a back edge).
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        problems: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            problems.push(format!("import cycle: {}", cycle.join(" → ")));
            return;
        }
        if !done.insert(node.to_owned()) {
            return;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, problems);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut problems);
    }
    problems
}

fn sources() -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
            }
        }
    }
    let root = repo().join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files
}

#[test]
fn every_module_imports_only_its_own_layer_or_those_below() {
    let files = sources();
    assert!(files.len() > 40, "{} files", files.len());
    let problems = violations(&files);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn an_import_up_a_layer_or_a_cycle_is_caught() {
    let file = |path: &str, text: &str| (Path::new(path).to_path_buf(), text.to_owned());
    let up = violations(&[file(
        "model/mod.rs",
        "use crate::{\n    domain::PersonId,\n    store::Store,\n};\n// crate::http in a comment is fine\n",
    )]);
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(
        up[0].contains("`model` (pure core) imports `store` (beside)"),
        "{up:?}"
    );

    let cycle = violations(&[
        file("health.rs", "use crate::supervisor::Supervisor;"),
        file("supervisor.rs", "use crate::health::Health;"),
    ]);
    assert!(
        cycle.iter().any(|p| p.starts_with("import cycle: ")),
        "{cycle:?}"
    );

    let unplaced = violations(&[file("gadget.rs", "")]);
    assert!(unplaced[0].contains("has no layer"), "{unplaced:?}");

    let fine = violations(&[
        file(
            "service/pulse.rs",
            "use crate::store::Store; use crate::outbox;",
        ),
        file("chat/slack.rs", "use crate::render::Message;"),
    ]);
    assert!(fine.is_empty(), "{fine:?}");
}
