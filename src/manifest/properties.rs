//! Random mutations of the valid manifests the project ships (`examples/`, `tests/fixtures/`)
//! through the loader and the validators: nothing panics, every error names its field (or is
//! about the document or the file as a whole), and no message speaks Rust (`expected i32`,
//! `struct …`, `a sequence`) or repeats a value written into a credential.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{load_str, validate, ManifestError};

/// What a mutation writes into a credential field: must never be printed.
const SECRET: &str = "S3cr3tValue";

fn shipped_documents() -> &'static [Value] {
    static DOCS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    DOCS.get_or_init(read_shipped)
}

fn read_shipped() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "tests/fixtures"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "yaml") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    let docs: Vec<Value> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            serde_saphyr::from_multiple::<Value>(&text).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect();
    assert!(docs.len() >= 10, "the shipped manifests were found");
    docs
}

/// Every value of the tree with its path (keys and indexes), the root first.
fn nodes(value: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match value {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            let mut p = path.clone();
            p.push(k.clone());
            nodes(v, p, out);
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
            let mut p = path.clone();
            p.push(i.to_string());
            nodes(v, p, out);
        }),
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |v, k| match v {
        Value::Object(m) => m.get_mut(k).unwrap(),
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => unreachable!("paths come from the tree"),
    })
}

/// One mutation of the node at `path`, chosen by `how`.
fn mutate(doc: &mut Value, path: &[String], how: u8, size: usize) {
    let credential = path
        .iter()
        .any(|k| ["sasl", "tls", "password", "username"].contains(&k.as_str()));
    // Outside credentials a value may be repeated (a bad topic name, a host:port, a map key).
    let text = if credential { SECRET } else { "plain" };
    let node = at(doc, path);
    *node = match how % 12 {
        0 => json!(text),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(1.5),
        4 => json!(true),
        5 => Value::Null,
        6 => json!([text]),
        7 => json!({ text: text }),
        8 => json!(0),
        // Grow a list or a map far past any bound.
        9 => match node.take() {
            Value::Array(a) if !a.is_empty() => {
                Value::Array(a.iter().cycle().take(size).cloned().collect())
            }
            Value::Object(m) => Value::Object(
                (0..size)
                    .map(|i| (format!("k{i}"), json!(i)))
                    .chain(m)
                    .collect(),
            ),
            other => other,
        },
        10 => match node.take() {
            Value::Object(mut m) => {
                let first = m.keys().next().cloned();
                if let Some(k) = first {
                    m.remove(&k);
                }
                Value::Object(m)
            }
            other => other,
        },
        _ => match node.take() {
            Value::Object(mut m) => {
                m.insert("unknownField".into(), json!(text));
                Value::Object(m)
            }
            Value::String(s) => json!(format!("{s}.x_")),
            other => other,
        },
    };
}

fn check(errors: &[ManifestError]) -> Result<(), TestCaseError> {
    for e in errors {
        let line = e.to_string();
        prop_assert!(
            !e.path.is_empty()
                || e.document.is_none()
                || e.message.starts_with("a document must be a mapping")
                || e.message.contains("more problem(s) not shown")
                || e.message.starts_with("line "),
            "names no field: {line}"
        );
        if line.contains("YAML syntax error") {
            // The parser's own words ("did not find expected key"), about the file.
            prop_assert!(e.path.is_empty() && e.document.is_none(), "{line}");
            continue;
        }
        for rust in [
            "expected",
            "struct ",
            "i32",
            "u16",
            "i64",
            "a sequence",
            "invalid type",
            "Some(",
            "{ ",
        ] {
            // The message, not the path: a mangled document's own keys may hold anything.
            prop_assert!(!e.message.contains(rust), "speaks Rust ({rust}): {line}");
        }
        prop_assert!(!line.contains(SECRET), "repeats a value: {line}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn mutated_manifests_fail_plainly_and_name_their_fields(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        size in 1usize..1500,
    ) {
        let docs = shipped_documents();
        let mut doc = pick.get(docs).clone();
        for (node, how) in mutations {
            let mut all = Vec::new();
            nodes(&doc, Vec::new(), &mut all);
            let path = node.get(&all).clone();
            mutate(&mut doc, &path, how, size);
        }
        let text = serde_saphyr::to_string(&doc).unwrap();
        let (loaded, mut errors) = load_str(Path::new("m.yaml"), &text);
        check(&errors)?;
        errors.extend(validate(loaded, None).err().unwrap_or_default());
        check(&errors)?;
    }

    /// Text edits that break the YAML itself: the loader still answers plainly.
    #[test]
    fn mangled_yaml_fails_plainly(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec!["", ":", "- ", "\n  ", "{", "]", "&a ", "*a", "'", "\t", "? "]),
        cut in 0usize..4,
    ) {
        let docs = shipped_documents();
        let mut text = serde_saphyr::to_string(pick.get(docs)).unwrap();
        let mut i = at.index(text.len());
        while !text.is_char_boundary(i) { i -= 1; }
        let end = (i + cut).min(text.len());
        let end = (end..=text.len()).find(|e| text.is_char_boundary(*e)).unwrap();
        text.replace_range(i..end, insert);
        let (loaded, mut errors) = load_str(Path::new("m.yaml"), &text);
        errors.extend(validate(loaded, None).err().unwrap_or_default());
        check(&errors)?;
    }
}
