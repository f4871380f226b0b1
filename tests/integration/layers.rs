//! The layout ARCHITECTURE.md draws, held against the code: every module of `src/` imports only
//! from the layers below its own (or from itself), so data flows one way and no two modules
//! import each other. Test code (a file's `#[cfg(test)]` tail, `tests.rs` files) may reach
//! across; production code may not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first: a module may import from a lower layer, never from its own (other
/// than itself) or a higher one. The order ARCHITECTURE.md gives.
const LAYERS: &[&[&str]] = &[
    &["api", "model"],
    &["kafka"],
    &["runtime"],
    &["clusters"],
    &["topics", "users"],
    &["workloads"],
    &["topologies", "offsets"],
    &["manifest", "operator"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production lines of a file: up to its first `#[cfg(test)]`, comments left out.
fn production_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// The production lines as statements: a line that opens a `crate::{` group is joined with
/// the lines up to the group's end, so a group rustfmt spread over lines is seen whole.
fn statements(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (n, line) in production_lines(text) {
        if open {
            let last = out.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            out.push((n, line.to_owned()));
        }
        let current = &out.last().unwrap().1;
        open = current
            .rfind("crate::{")
            .is_some_and(|i| !current[i..].contains('}'));
    }
    out
}

/// Every `crate::<module>` a line names, `crate::{a, b::c}` included.
fn crate_modules(line: &str) -> Vec<&str> {
    let ident = |text: &str| -> usize {
        text.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(text.len())
    };
    line.match_indices("crate::")
        .filter(|(i, _)| !line[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .flat_map(|(i, m)| {
            let rest = &line[i + m.len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    // A group may span lines: the caller passes the whole production text.
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    group
                        .split(',')
                        .map(str::trim)
                        .map(|item| &item[..ident(item)])
                        .filter(|name| !name.is_empty())
                        .collect::<Vec<_>>()
                }
                None => vec![&rest[..ident(rest)]],
            }
        })
        .collect()
}

#[test]
fn every_module_imports_only_from_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unknown = BTreeMap::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(first) = relative.components().next() else {
            continue;
        };
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main"].contains(&module.as_str()) || relative.ends_with("tests.rs") {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            unknown.insert(module.clone(), relative.display().to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in statements(&text) {
            for imported in crate_modules(&line) {
                if imported == module {
                    continue;
                }
                match layer_of(imported) {
                    Some(layer) if layer < own => {}
                    _ => upward.push(format!(
                        "src/{}:{}: {module} names crate::{imported}",
                        relative.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from the layers (add them here and to ARCHITECTURE.md): {unknown:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that run up or sideways (see ARCHITECTURE.md):\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    assert_eq!(
        crate_modules("use crate::topics::plan::Action;"),
        ["topics"]
    );
    assert_eq!(
        crate_modules("    let x = crate::runtime::status::now(); // crate::cli"),
        ["runtime", "cli"]
    );
    assert!(crate_modules("use tributary_crate::x;").is_empty());
    assert_eq!(
        crate_modules("use crate::{clusters, topics::KIND, workloads};"),
        ["clusters", "topics", "workloads"]
    );
    assert!(layer_of("kafka") < layer_of("topics"));
    let text = "use crate::api::X;\n// crate::cli in a comment\n#[cfg(test)]\nmod tests { use crate::cli; }\n";
    let named: Vec<&str> = production_lines(text)
        .flat_map(|(_, l)| crate_modules(l))
        .collect();
    assert_eq!(named, ["api"]);
    let spread = "use crate::{\n    clusters,\n    topics::KIND,\n};\nuse crate::api;\n";
    let named: Vec<String> = statements(spread)
        .iter()
        .flat_map(|(_, l)| {
            crate_modules(l)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(named, ["clusters", "topics", "api"]);
}
