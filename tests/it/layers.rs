//! The layers of `src/` (ARCHITECTURE.md), enforced: a module may use modules of its own
//! layer or below, never above. A new module must be given a layer here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom up: each folder of `src/` is a layer; the files at the root are the root layer.
const LAYERS: &[&str] = &["model", "store", "wire", "persist", "http", "root"];

/// The files at the root of `src/`, and what they are.
const ROOT: &[&str] = &["cli", "logger", "lib", "main"];

/// Imports that still point up, each to go: the list may only shrink (it is empty).
const KNOWN_UPWARD: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    let name = if ROOT.contains(&module) {
        "root"
    } else {
        module
    };
    LAYERS.iter().position(|l| *l == name)
}

/// The `crate::<module>` names a file refers to, outside its unit tests.
fn references(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let path = e.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.push((path, text));
        }
    }
}

/// Every file of `src/` with the top-level module it belongs to (a file in a folder
/// belongs to the folder's module).
fn modules(src: &Path, out: &mut Vec<(String, String)>) {
    let mut files = Vec::new();
    sources(src, &mut files);
    for (path, text) in files {
        let rel = path.strip_prefix(src).expect("under src");
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("a name");
        out.push((module, text));
    }
}

#[test]
fn every_import_points_down_the_layers() {
    let mut files = Vec::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut upward = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for (module, text) in &files {
        let Some(own) = layer(module) else {
            unplaced.insert(module.clone());
            continue;
        };
        for used in references(text) {
            match layer(&used) {
                Some(l) if l > own => {
                    upward.insert((module.clone(), used));
                }
                Some(_) => {}
                None if used == "self" || used == "super" => {}
                None => {
                    unplaced.insert(used);
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules without a layer: {unplaced:?}");
    let known: BTreeSet<(String, String)> = KNOWN_UPWARD
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(new.is_empty(), "imports pointing up the layers: {new:?}");
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "{gone:?} no longer point up: take them off KNOWN_UPWARD"
    );
}

/// The framework and its runtime stay in `http/server/` (and the daemon, `main.rs`), so
/// that replacing them touches one folder.
#[test]
fn only_the_server_names_the_framework() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let server = src.join("http").join("server");
    let mut named = Vec::new();
    for (path, text) in &files {
        if path.starts_with(&server) || path.ends_with("main.rs") {
            continue;
        }
        for word in ["tide::", "hyper::", "async_std::"] {
            if text.contains(word) {
                named.push(format!("{} names {word}", path.display()));
            }
        }
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    assert!(named.is_empty(), "{named:?}");
}

#[test]
fn the_check_sees_an_upward_import() {
    let refs = references(
        "use crate::store::Store;\nfn f() { crate::http::x(); }\nuse crate::{a, b::c};\n#[cfg(test)]\nmod tests { use crate::cli; }",
    );
    let names: Vec<&str> = refs.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "http", "store"]);
    assert!(layer("http") > layer("store"));
}
