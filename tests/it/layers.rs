//! The import rules of `src/`, checked on every `cargo test` (and so in `.ci/run`):
//!
//! 1. No import loop between the files of one top-level folder (`a.rs` imports `b.rs` imports
//!    `a.rs`, directly or around a longer cycle). A folder's `mod.rs` declaring and
//!    re-exporting its children (`mod x; pub use x::Y;`) is not an import; a child importing
//!    from its folder's `mod.rs` (`use super::Y`) is.
//! 2. A module imports only modules on a LOWER floor of [`LAYERS`]; modules on one floor do not
//!    import each other. [`ISOLATED`] modules are imported only by the modules named there.
//!
//! Imports are read from the text: every `use crate::…`/`use super::…`/`use self::…` statement
//! (brace groups expanded) and every inline `crate::…`/`super::…` path, outside comments and
//! outside `#[cfg(test)]` modules. A path resolves to the longest prefix that is a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floors, lowest first. Every top-level module of `src/` must be listed.
const LAYERS: &[(&str, u8)] = &[
    // Pure values and decisions: import nothing from the crate.
    ("policy", 0),
    ("tokens", 0),
    ("audit", 0),
    ("keys", 0),
    // Process-wide plumbing every layer may use: metrics series, shutdown phases.
    ("telemetry", 0),
    ("shutdown", 0),
    // The configuration (uses policy's `Role` and the token digest type).
    ("config", 1),
    // Per-principal bookkeeping for quotas and lifetimes (uses policy's quota decisions).
    ("usage", 1),
    // Shared state between replicas in Redis (`[cluster]`): connection, inbox, global limits.
    ("cluster", 2),
    // The Kasm client, then what is built on it.
    ("kasm", 2),
    ("relay", 3),
    // Background command jobs (records, windows, the store trait).
    ("jobs", 3),
    ("simulator", 3),
    // The OAuth resource server (token validation over HTTP, Kasm user lookups).
    ("oauth", 3),
    // The MCP protocol, then the tools that plug into it; HTTP building blocks beside them.
    ("mcp", 4),
    ("tools", 5),
    ("http", 5),
    // Endpoints, the assembled application, the commands.
    ("transport", 6),
    ("app", 7),
    ("launch", 8),
];

/// Modules that only the named modules may import.
const ISOLATED: &[(&str, &[&str])] = &[("simulator", &["launch"])];

type Module = Vec<String>;

/// One rule broken.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let modules: BTreeSet<Module> = files.iter().map(|(p, _)| module_of(p)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (path, text) in files {
        let from = module_of(path);
        let targets = edges.entry(from.clone()).or_default();
        for reference in references(&strip(text)) {
            if let Some(to) = resolve(&from, &reference, &modules)
                && to != from
                && !to.is_empty()
            {
                targets.insert(to);
            }
        }
    }
    let mut problems = Vec::new();
    // Rule 2: floors.
    let rank = |m: &Module| LAYERS.iter().find(|(n, _)| *n == m[0]).map(|(_, r)| *r);
    for m in &modules {
        if !m.is_empty() && rank(m).is_none() {
            problems.push(format!(
                "module `{}` has no floor: add it to LAYERS in tests/it/layers.rs",
                m[0]
            ));
        }
    }
    for (from, targets) in &edges {
        for to in targets {
            if from.is_empty() || from[0] == to[0] {
                continue;
            }
            if let Some((_, allowed)) = ISOLATED.iter().find(|(n, _)| *n == to[0])
                && !allowed.contains(&from[0].as_str())
            {
                problems.push(format!(
                    "{} imports {}: `{}` is isolated (only {:?} may import it)",
                    show(from),
                    show(to),
                    to[0],
                    allowed
                ));
            }
            if let (Some(a), Some(b)) = (rank(from), rank(to))
                && b >= a
            {
                problems.push(format!(
                    "{} (floor {a}) imports {} (floor {b}): a module imports only lower floors; move the shared item down",
                    show(from),
                    show(to)
                ));
            }
        }
    }
    // Rule 1: loops inside one top-level folder.
    for cycle in loops(&edges) {
        problems.push(format!(
            "import loop: {}: move the shared item into a file both import",
            cycle.iter().map(show).collect::<Vec<_>>().join(" -> ")
        ));
    }
    problems
}

fn show(m: &Module) -> String {
    format!("crate::{}", m.join("::"))
}

/// `src/kasm/client.rs` → `kasm::client`; `src/kasm/mod.rs` → `kasm`; `src/lib.rs` → root.
fn module_of(path: &str) -> Module {
    let rel = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The text without comments, string and char literals, and `#[cfg(test)]` modules.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut in_test = false;
    let mut depth: i64 = 0;
    let mut pending_cfg_test = false;
    for line in code_only(text).lines() {
        let trimmed = line.trim();
        if in_test {
            depth += brace_balance(line);
            if depth <= 0 {
                in_test = false;
            }
            continue;
        }
        if trimmed == "#[cfg(test)]" {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test {
            pending_cfg_test = false;
            if trimmed.starts_with("mod ") || trimmed.starts_with("pub mod ") {
                if trimmed.ends_with(';') {
                    continue;
                }
                depth = brace_balance(line);
                in_test = depth > 0;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The text with comments removed and literals emptied (`"…"` → `""`), lines kept.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            continue;
        }
        let raw_start =
            c == 'r' && (i == 0 || !is_ident(chars[i - 1])) && matches!(next, Some('"' | '#'));
        if raw_start {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) == Some(&'"') {
                let mut j = i + 2 + hashes;
                while j < chars.len() {
                    if chars[j] == '"'
                        && chars[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                    {
                        break;
                    }
                    if chars[j] == '\n' {
                        out.push('\n');
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j + 1 + hashes;
                continue;
            }
        }
        if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                } else if chars[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1;
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '"'); otherwise a lifetime.
            if next == Some('\\') {
                let close = (i + 2..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .unwrap_or(chars.len());
                i = close + 1;
                continue;
            }
            if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn brace_balance(code: &str) -> i64 {
    code.chars().fold(0, |n, c| match c {
        '{' => n + 1,
        '}' => n - 1,
        _ => n,
    })
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that starts with `crate`, `super` or `self`: from `use` statements (brace groups
/// expanded) and inline.
fn references(code: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if at_word && starts_with(&chars, i, "use ") {
            let end = (i..chars.len())
                .find(|&j| chars[j] == ';')
                .unwrap_or(chars.len());
            let statement: String = chars[i + 4..end]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            expand("", &statement, &mut refs);
            i = end;
            continue;
        }
        if at_word
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|p| starts_with(&chars, i, p))
        {
            let end = (i..chars.len())
                .find(|&j| !(is_ident(chars[j]) || chars[j] == ':'))
                .unwrap_or(chars.len());
            refs.push(chars[i..end].iter().collect());
            i = end;
            continue;
        }
        i += 1;
    }
    refs
}

fn starts_with(chars: &[char], at: usize, word: &str) -> bool {
    word.chars()
        .enumerate()
        .all(|(k, w)| chars.get(at + k) == Some(&w))
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let braces = tree.find('{').zip(tree.rfind('}')).filter(|(o, c)| o < c);
    let Some((open, close)) = braces else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        out.push(format!("{prefix}{path}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..close];
    let mut depth = 0;
    let mut start = 0;
    for (k, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&head, &inner[start..k], out);
                start = k + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].is_empty() {
        expand(&head, &inner[start..], out);
    }
}

/// The file a path points into: the longest prefix that is a module of `src/`.
fn resolve(from: &Module, path: &str, modules: &BTreeSet<Module>) -> Option<Module> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let mut base: Module = match segments.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let rest: Vec<&str> = segments.collect();
    let mut rest = rest.as_slice();
    while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (*h, t)) {
        base.pop();
        rest = tail;
    }
    let mut full = base;
    full.extend(rest.iter().map(|s| s.to_string()));
    (0..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| modules.contains(m))
}

/// The import loops among the files of each top-level folder (one cycle per loop found).
fn loops(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let mut found: Vec<Vec<Module>> = Vec::new();
    let mut seen_sets: BTreeSet<BTreeSet<Module>> = BTreeSet::new();
    for start in edges.keys() {
        // Breadth-first search for the shortest way back to `start` inside its folder.
        let mut previous: BTreeMap<Module, Module> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut closed = None;
        while let Some(m) = queue.pop_front() {
            for next in edges.get(&m).into_iter().flatten() {
                if next.is_empty() || start.is_empty() || next[0] != start[0] {
                    continue;
                }
                if next == start {
                    closed = Some(m.clone());
                    break;
                }
                if !previous.contains_key(next) {
                    previous.insert(next.clone(), m.clone());
                    queue.push_back(next.clone());
                }
            }
            if closed.is_some() {
                break;
            }
        }
        if let Some(last) = closed {
            let mut cycle = vec![last.clone()];
            let mut at = last;
            while at != *start {
                at = previous[&at].clone();
                cycle.push(at.clone());
            }
            cycle.reverse();
            cycle.push(start.clone());
            let set: BTreeSet<Module> = cycle.iter().cloned().collect();
            if seen_sets.insert(set) {
                found.push(cycle);
            }
        }
    }
    found
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            // The binaries (`main.rs`, `bin/*`) import the library by name; `tests.rs` files
            // are `#[cfg(test)]` modules.
            if rel == "src/main.rs" || rel.starts_with("src/bin/") || rel.ends_with("/tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            out.push((rel, text));
        }
    }
}

#[test]
fn src_has_no_import_loops_and_no_upward_imports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), root, &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let problems = violations(&files);
    assert!(
        problems.is_empty(),
        "import rules broken (see tests/it/layers.rs):\n{}",
        problems.join("\n")
    );
}

fn file(path: &str, text: &str) -> (String, String) {
    (path.to_owned(), text.to_owned())
}

#[test]
fn the_check_reports_a_planted_loop_and_an_upward_import() {
    // A loop over three files of one folder, written three different ways.
    let files = vec![
        file(
            "src/mcp/mod.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub use a::A;\n",
        ),
        file("src/mcp/a.rs", "use super::b::B;\npub struct A;\n"),
        file(
            "src/mcp/b.rs",
            "use crate::{mcp::c::{self, C}, policy::Role};\npub struct B;\n",
        ),
        file(
            "src/mcp/c.rs",
            "pub struct C;\nfn f() { let _ = crate::mcp::a::A; }\n",
        ),
        file("src/policy/mod.rs", "pub struct Role;\n"),
    ];
    let problems = violations(&files);
    assert!(
        problems.iter().any(|p| p.contains("import loop")
            && p.contains("crate::mcp::a")
            && p.contains("crate::mcp::b")
            && p.contains("crate::mcp::c")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");

    // An import from a lower floor to a higher one, and one into the isolated simulator.
    let files = vec![
        file("src/kasm/mod.rs", "pub struct K;\n"),
        file("src/config/mod.rs", "use crate::kasm::K;\n"),
        file("src/simulator/mod.rs", "pub struct S;\n"),
        file("src/tools/mod.rs", "fn f() { crate::simulator::S; }\n"),
    ];
    let problems = violations(&files);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("crate::config (floor 1) imports crate::kasm (floor 2)")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("isolated")),
        "{problems:?}"
    );

    // What is not an import: comments, test modules, a mod.rs re-exporting its children.
    let files = vec![
        file(
            "src/policy/mod.rs",
            "// use crate::tools::X;\npub mod a;\npub use a::A;\n#[cfg(test)]\nmod tests {\n    use crate::tools::X;\n}\n",
        ),
        file("src/policy/a.rs", "pub struct A; // see crate::tools::X\n"),
        file(
            "src/tools/mod.rs",
            "use crate::policy::a::A;\npub struct X;\n",
        ),
    ];
    assert_eq!(violations(&files), Vec::<String>::new());
}

#[test]
fn every_top_level_module_has_a_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&root)
        .expect("src/ is readable")
        .flatten()
    {
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // `bin/` holds other binaries (the load generator), crates of their own.
        if ["lib", "main", "bin"].contains(&name.as_str()) {
            continue;
        }
        assert!(
            LAYERS.iter().any(|(n, _)| *n == name),
            "src/{name} has no floor in LAYERS"
        );
    }
}
