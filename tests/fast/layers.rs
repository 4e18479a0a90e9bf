//! The library's modules import each other without circles: a module that needs another's
//! work may use it, but is never used back by it, so each can be read (and tested) from the
//! bottom up, and a change low down cannot depend on what sits above it. A module that joins
//! a circle fails this test, which names the arrows that close it.
//!
//! The graph is read from the sources (`src/**/*.rs` outside `src/bin/`; comments and test
//! modules left out): an arrow for every `crate::a::b` path, to the longest module it names,
//! and for every `super::x` that names a sibling module; a module's own parts and its parents
//! are not arrows.
//!
//! The modules also sit in layers ([`LAYERS`], lowest first), and no arrow points up them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
pub(crate) fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/repository/layout.rs` → `repository::layout`; `src/broker/mod.rs` → `broker`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The identifier paths after `prefix` in `code`: `crate::a::b::C` gives `[a, b, C]`; a use
/// group `crate::a::{b, c::D}` gives `[a, b]` and `[a, c, D]`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut path = Vec::new();
        let mut tail = rest;
        loop {
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if end == 0 {
                break;
            }
            path.push(tail[..end].to_string());
            tail = &tail[end..];
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => break,
            }
        }
        if let Some(group) = tail.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let mut full = path.clone();
                full.extend(
                    item.split("::")
                        .map(|w| w.split_whitespace().next().unwrap_or("").to_string())
                        .filter(|w| !w.is_empty()),
                );
                out.push(full);
            }
        } else if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

/// The module graph: each module and the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    let code: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // Test modules may use anything; a comment's link is no arrow.
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => &text[..i],
                None => &text,
            };
            let text: String = text
                .lines()
                .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
                .collect::<Vec<_>>()
                .join("\n");
            (module_of(&src, f), text)
        })
        .collect();
    let modules: BTreeSet<&str> = code.keys().map(String::as_str).collect();
    let longest = |path: &[String]| {
        (1..=path.len())
            .rev()
            .map(|k| path[..k].join("::"))
            .find(|m| modules.contains(m.as_str()))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &code {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut named: Vec<String> = paths_after(text, "crate::")
            .iter()
            .filter_map(|p| longest(p))
            .collect();
        for path in paths_after(text, "super::") {
            let mut full: Vec<String> = parent
                .split("::")
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            full.extend(path);
            named.extend(longest(&full));
        }
        let entry = edges.entry(module.clone()).or_default();
        for target in named {
            // A module's own parts, and the parent that declares it, are not arrows.
            let own = target == *module || target.starts_with(&format!("{module}::"));
            if !own && !module.starts_with(&format!("{target}::")) {
                entry.insert(target);
            }
        }
    }
    edges
}

/// The modules that are in a circle (Tarjan's strongly connected components of more than one).
fn tangled(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

#[test]
fn no_module_joins_an_import_circle() {
    let edges = graph();
    assert!(edges.len() > 40, "only {} modules read", edges.len());
    let mut report = String::new();
    for circle in tangled(&edges) {
        report.push_str("a circle:\n");
        for module in &circle {
            let arrows: Vec<&String> = edges[module]
                .iter()
                .filter(|t| circle.contains(*t))
                .collect();
            report.push_str(&format!("  {module} uses {arrows:?}\n"));
        }
    }
    assert!(
        report.is_empty(),
        "{report}break each circle: move what both sides need below them both"
    );
    let arrows: usize = edges.values().map(BTreeSet::len).sum();
    eprintln!("{} modules, {arrows} arrows, no circle", edges.len());
}

/// The layers, lowest first: each module's layer is the first whose prefixes name it (a
/// module path, or its parent's). A module may use its own layer and those below; an arrow
/// to a higher layer points up. The crate's error type (`error`) sits outside: every layer
/// returns it, and it names every layer's failures.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "model: the TUF types, canonical JSON, keys and the signing seam, bins, no I/O; and \
         the logs, progress and metrics every layer reports to",
        &[
            "canonical",
            "bins",
            "role",
            "schema",
            "keys",
            "failpoint",
            "provenance",
            "logging",
            "progress",
            "metrics",
        ],
    ),
    (
        "verify: signed files against their delegators, and the client's trusted set",
        &[
            "verify",
            "updater::metadata",
            "updater::trusted_set",
            "updater::config",
            "updater::error",
            "updater::delegation",
        ],
    ),
    (
        "store: durable writes, the repository's files, the pin and what it trusts there, a \
         signer's health record",
        &[
            "durable",
            "repository",
            "high_water",
            "pin",
            "trusted",
            "health",
        ],
    ),
    (
        "work: the jobs a role takes, and the submissions they come in",
        &["jobs", "submission"],
    ),
    (
        "roles: what each online role does to the repository",
        &["roles"],
    ),
    (
        "transport and worker: the broker or the inbox, the loop that feeds a role",
        &["broker", "worker", "signer"],
    ),
    ("client and ops", &["client", "ops", "cli", "updater"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, prefixes)| {
        prefixes
            .iter()
            .any(|p| module == *p || module.starts_with(&format!("{p}::")))
    })
}

#[test]
fn arrows_point_down_the_layers() {
    let edges = graph();
    let mut unplaced = Vec::new();
    let mut upward = Vec::new();
    for (module, targets) in &edges {
        if module == "error" || module.is_empty() {
            continue;
        }
        let Some(from) = layer_of(module) else {
            unplaced.push(module.clone());
            continue;
        };
        for target in targets.iter().filter(|t| *t != "error") {
            match layer_of(target) {
                Some(to) if to > from => upward.push(format!(
                    "  {module} ({}) uses {target} ({})",
                    LAYERS[from].0.split(':').next().unwrap(),
                    LAYERS[to].0.split(':').next().unwrap()
                )),
                Some(_) => {}
                None => unplaced.push(target.clone()),
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS): {unplaced:?}"
    );
    // Each arrow named, to be moved below its user (or the user above it).
    assert!(
        upward.is_empty(),
        "{} arrow(s) point up the layers:\n{}",
        upward.len(),
        upward.join("\n")
    );
}
