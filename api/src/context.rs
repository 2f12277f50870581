//! Request-scoped values: the request's id and the organization a response was served for.
//!
//! A leaf: it imports nothing of the crate but the id types of `domain`, so every module (the
//! error envelope, auth, the middleware, the dialects, storage's log lines) can read the request
//! id without importing the layer that sets it. The import graph among the modules that serve a
//! request has no cycle (each arrow is "imports"):
//!
//! ```text
//! context                   -> domain::ids                      (a leaf)
//! error                     -> context, db, repo::idempotency, schema, domain
//! auth                      -> error, domain   (takes the pool and its caches, never AppState)
//! state                     -> auth (KeyCache, KeyUsage), config, instance, metrics, rate_limit, service
//! dialects::native::errors  -> error, payload  (the one poem::Error -> envelope mapper)
//! middleware::tenant        -> auth, context, error, dialects::native::errors, rate_limit, state
//! middleware::request_id    -> context, error, dialects::native::errors, metrics, payload, state
//! ```
//!
//! The test below reads every module's `crate::` paths and fails on a cycle through any of
//! them.
//!
//! It must never hold anything but values of the request being served.

use std::future::Future;

use crate::domain::ids::OrgId;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served (empty outside a request, e.g. in the CLI).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `serve` as the request `id`: `request_id()` inside it answers `id`.
pub async fn with_request_id<F: Future>(id: String, serve: F) -> F::Output {
    REQUEST_ID.scope(id, serve).await
}

/// The organization a response was served for, for the request log.
#[derive(Clone, Copy, Debug)]
pub struct ServedOrg(pub OrgId);

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The modules that serve every request, which must import each other without a cycle.
    const REQUEST_MODULES: [&str; 7] = [
        "context",
        "error",
        "auth",
        "state",
        "middleware::request_id",
        "middleware::tenant",
        "dialects::native::errors",
    ];

    /// `crate::a::b` paths (and `use crate::{a, b}` groups) of one file, test modules left out.
    fn references(source: &str) -> BTreeSet<String> {
        let source = source
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(source);
        let mut out = BTreeSet::new();
        for (i, _) in source.match_indices("crate::") {
            let rest = &source[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or("");
                out.extend(
                    group
                        .split(',')
                        .map(|item| item.trim().split("::").next().unwrap_or("").to_string())
                        .filter(|m| m.starts_with(|c: char| c.is_ascii_lowercase())),
                );
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                .collect();
            out.insert(path.trim_end_matches(':').to_string());
        }
        out
    }

    fn collect(dir: &Path, root: &Path, modules: &mut BTreeMap<String, BTreeSet<String>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, root, modules);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                let source = std::fs::read_to_string(&path).unwrap();
                modules.insert(parts.join("::"), references(&source));
            }
        }
    }

    #[test]
    fn the_request_serving_modules_import_each_other_without_a_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut modules = BTreeMap::new();
        collect(&root, &root, &mut modules);
        let names: Vec<String> = modules.keys().filter(|m| !m.is_empty()).cloned().collect();
        // The longest module name a path starts with.
        let resolve = |path: &str| -> Option<String> {
            names
                .iter()
                .filter(|m| path == m.as_str() || path.starts_with(&format!("{m}::")))
                .max_by_key(|m| m.len())
                .cloned()
        };
        let graph: BTreeMap<String, BTreeSet<String>> = modules
            .iter()
            .map(|(m, refs)| {
                let edges = refs
                    .iter()
                    .filter_map(|r| resolve(r))
                    .filter(|r| r != m)
                    .collect();
                (m.clone(), edges)
            })
            .collect();
        assert!(
            graph["context"].iter().all(|m| m.starts_with("domain")),
            "context must stay a leaf: it imports {:?}",
            graph["context"]
        );
        for start in REQUEST_MODULES {
            assert!(graph.contains_key(start), "no module {start}");
            // Depth-first from `start`: reaching it again is a cycle.
            let mut stack = vec![(start.to_string(), vec![start.to_string()])];
            let mut seen = BTreeSet::new();
            while let Some((node, path)) = stack.pop() {
                for next in graph.get(&node).into_iter().flatten() {
                    assert!(
                        next != start,
                        "import cycle: {} -> {start}",
                        path.join(" -> ")
                    );
                    if seen.insert(next.clone()) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
}
