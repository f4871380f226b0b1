//! The patch types other than server-side apply: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and an approximation of strategic merge patch (merge patch, plus list-map merge by
//! the keys the schema hints name, and `$patch: delete|replace`).

use serde_json::{Map, Value};

use crate::ssa::{child, items, key_of, list_type, ListType};

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {pointer:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn resolve_mut<'a>(doc: &'a mut Value, parts: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(p)
                .ok_or_else(|| format!("doc is missing path: {p:?}"))?,
            Value::Array(a) => {
                let i: usize = p
                    .parse()
                    .map_err(|_| format!("invalid array index {p:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} out of bounds"))?
            }
            _ => return Err(format!("doc is missing path: {p:?}")),
        };
    }
    Ok(cur)
}

fn json_patch_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let parts = pointer_parts(path)?;
    let Some((last, parent)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    match resolve_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid array index {last:?}"))?;
                if i > a.len() {
                    return Err(format!("array index {i} out of bounds"));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(format!("cannot add at {path:?}: parent is not a container")),
    }
    Ok(())
}

fn json_patch_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let parts = pointer_parts(path)?;
    let Some((last, parent)) = parts.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match resolve_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of bounds"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove {path:?}")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation has no \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation has no \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind} operation has no \"value\""))
        };
        match kind {
            "add" => json_patch_add(doc, path, value()?)?,
            "remove" => {
                json_patch_remove(doc, path)?;
            }
            "replace" => {
                let parts = pointer_parts(path)?;
                *resolve_mut(doc, &parts)? = value()?;
            }
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("move has no \"from\"")?;
                let v = json_patch_remove(doc, from)?;
                json_patch_add(doc, path, v)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("copy has no \"from\"")?;
                let v = resolve_mut(doc, &pointer_parts(from)?)?.clone();
                json_patch_add(doc, path, v)?;
            }
            "test" => {
                let expected = value()?;
                // As the API server's json-patch library: a missing path tests equal to null.
                match resolve_mut(doc, &pointer_parts(path)?) {
                    Ok(actual) if *actual == expected => {}
                    Err(_) if expected.is_null() => {}
                    _ => return Err(format!("testing value {path} failed: test failed")),
                }
            }
            other => return Err(format!("unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// An approximation of strategic merge patch for built-in kinds: a merge patch whose lists
/// of the known list-map / set types merge by key / by value, with `$patch: delete` and
/// `$patch: replace`; other directives are ignored.
pub fn strategic_merge(target: &mut Value, patch: &Value, schema: Option<&Value>) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete") {
            t.remove(k);
            continue;
        }
        let cs = child(schema, k);
        match (t.get_mut(k), v) {
            (Some(Value::Array(existing)), Value::Array(items_patch)) => match list_type(cs) {
                ListType::Map(keys) => {
                    let item_schema = items(cs);
                    for item in items_patch {
                        let key = key_of(item, &keys);
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        let pos = key.as_ref().and_then(|key| {
                            existing
                                .iter()
                                .position(|x| key_of(x, &keys).as_ref() == Some(key))
                        });
                        match (pos, delete) {
                            (Some(i), true) => {
                                existing.remove(i);
                            }
                            (Some(i), false) => {
                                strategic_merge(&mut existing[i], item, item_schema)
                            }
                            (None, true) => {}
                            (None, false) => existing.push(strip_directives(item)),
                        }
                    }
                }
                ListType::Set => {
                    for item in items_patch {
                        if !existing.contains(item) {
                            existing.push(item.clone());
                        }
                    }
                }
                ListType::Atomic => {
                    t.insert(k.clone(), strip_directives(v));
                }
            },
            (Some(existing), Value::Object(_)) => strategic_merge(existing, v, cs),
            _ => {
                t.insert(k.clone(), strip_directives(v));
            }
        }
    }
}
