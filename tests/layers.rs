//! The core's architecture, checked: every folder of `src/` is a layer, and imports only point
//! down the list below; and no two files import each other, directly or through others. Imports
//! are read from the source text (`crate::` and `super::` paths, a `mod.rs`'s own children, and
//! `pub use` re-exports followed to where the item lives); test modules are left out.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test: unreadable sources fail it loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first: a module may import from its own folder and from folders above it in this list.
const LAYERS: &[&[&str]] = &[
    &["error", "ports", "task_model"],
    &["http"],
    &["rules"],
    &["chat", "access"],
    &["settings", "decide"],
    &["providers"],
    &["stream"],
    &["record"],
    &["dispatch"],
    &["fronts"],
    &["gateway"],
    &["shell"],
    &["lib"],
];

struct Module {
    /// `decide::route`, or `providers` for `providers/mod.rs`.
    path: String,
    /// The source, without comments and test modules.
    code: String,
    is_folder: bool,
}

fn modules() -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let root = stack[0].clone();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_folder = parts.last().is_some_and(|p| p == "mod");
            if is_folder {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = strip(&text);
            let path = parts.join("::");
            out.insert(
                path.clone(),
                Module {
                    path,
                    code,
                    is_folder,
                },
            );
        }
    }
    out
}

/// The code without line comments and without what follows the first test module.
fn strip(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    body.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the code names from `prefix` (`crate::`, `super::`), with brace groups expanded one
/// level: `crate::a::{b, c::d}` gives `a::b` and `a::c::d`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let head = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |j| end + j);
            for item in rest[end + 1..close].split(',') {
                let item = item.trim().split(" as ").next().unwrap_or("").trim();
                if !item.is_empty() && item != "self" {
                    out.push(format!("{head}::{item}"));
                }
            }
        }
        out.push(head);
    }
    out
}

/// The module a path lands in: the longest module prefix, following a `pub use` re-export of the
/// next segment when that module has one.
fn resolve(mods: &BTreeMap<String, Module>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    for n in (1..=parts.len()).rev() {
        let candidate = parts[..n].join("::");
        let Some(m) = mods.get(&candidate) else {
            continue;
        };
        if let Some(item) = parts.get(n) {
            if let Some(target) = reexport(mods, m, item) {
                return Some(target);
            }
        }
        return Some(candidate);
    }
    None
}

/// Where a `pub use` in `m` takes `item` from.
fn reexport(mods: &BTreeMap<String, Module>, m: &Module, item: &str) -> Option<String> {
    for line in m.code.split(';') {
        let line = line.trim();
        let Some(used) = line.strip_prefix("pub use ") else {
            continue;
        };
        let names_item = used.ends_with(&format!("::{item}"))
            || (used.contains('{')
                && used
                    .split(['{', '}', ','])
                    .any(|p| p.trim() == item || p.trim().ends_with(&format!("::{item}"))));
        if !names_item {
            continue;
        }
        let base = used.split('{').next().unwrap_or(used).trim_end_matches(':');
        let base = base.strip_prefix("crate::").map_or_else(
            || format!("{}::{}", m.path, base),
            std::string::ToString::to_string,
        );
        return resolve(mods, &format!("{base}::{item}"));
    }
    None
}

fn imports(mods: &BTreeMap<String, Module>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in mods.values() {
        let mut named = paths_after(&m.code, "crate::");
        let parent = match m.is_folder {
            true => m.path.rsplit_once("::").map_or("", |(p, _)| p),
            false => m.path.rsplit_once("::").map_or("", |(p, _)| p),
        };
        for p in paths_after(&m.code, "super::") {
            named.push(match parent {
                "" => p,
                parent => format!("{parent}::{p}"),
            });
        }
        if m.is_folder {
            // A folder's own file naming its children (`api::ProviderApi`, `anthropic::Anthropic`).
            for child in mods
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{}::", m.path)))
            {
                if !child.contains("::") && m.code.contains(&format!("{child}::")) {
                    named.push(format!("{}::{child}", m.path));
                }
            }
        }
        let out = edges.entry(m.path.clone()).or_default();
        for p in named {
            if let Some(target) = resolve(mods, &p) {
                if target != m.path {
                    out.insert(target);
                }
            }
        }
    }
    edges
}

fn layer(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("{module} is in no layer: add its folder to LAYERS"))
}

#[test]
fn imports_point_down_the_layers() {
    let mods = modules();
    let mut wrong = Vec::new();
    for (from, targets) in imports(&mods) {
        for to in targets {
            let same_folder = from.split("::").next() == to.split("::").next();
            if !same_folder && layer(&to) >= layer(&from) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn no_file_imports_itself_through_others() {
    let edges = imports(&modules());
    // Depth-first search; a back edge closes a circle.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        trail: &mut Vec<String>,
        circles: &mut Vec<String>,
    ) {
        state.insert(node.to_string(), 1);
        trail.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = trail.iter().position(|n| n == next).unwrap_or(0);
                    circles.push(format!("{} -> {next}", trail[start..].join(" -> ")));
                }
                Some(_) => {}
                None => visit(next, edges, state, trail, circles),
            }
        }
        trail.pop();
        state.insert(node.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_checker_sees_imports() {
    // Guards the two tests above against passing because they read nothing.
    let edges = imports(&modules());
    let of = |m: &str| edges.get(m).cloned().unwrap_or_default();
    assert!(of("gateway").contains("dispatch::fallback"));
    assert!(of("dispatch::fallback").contains("dispatch::attempt"));
    // Through the `pub use` in rules/mod.rs to where `Rules` lives.
    assert!(of("decide::plan").contains("rules::model"));
    assert!(of("providers").contains("providers::anthropic"));
    assert!(of("providers::azure_openai").contains("providers::openai_compatible"));
}
