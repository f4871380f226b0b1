//! Field ownership (`metadata.managedFields`) and server-side apply (the other patch types are
//! in `patch`).
//!
//! A field set is a set of paths; a path element is a field name (`f:`), the key of an
//! element of a `x-kubernetes-list-type: map` list (`k:`), or the value of an element of a
//! `set` list (`v:`); no index (`i:`): lists without a list type, and maps with
//! `x-kubernetes-map-type: atomic`, are owned as a whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::registry::metadata_hints;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    Field(String),
    /// Canonical JSON of the key fields of a list-map element, e.g. `{"type":"Ready"}`.
    Key(String),
    /// Canonical JSON of a set element.
    Value(String),
}

pub type Path = Vec<PathElement>;
pub type FieldSet = BTreeSet<Path>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Apply,
    Update,
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: String,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: String,
    pub fields: FieldSet,
}

/// `metadata` fields never tracked in field sets.
const META_UNTRACKED: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

// ---------------------------------------------------------------------------------------------
// Schema navigation

/// The root schema with the hard-wired `metadata` hints put in.
pub fn effective_schema(schema: &Value) -> Value {
    let mut s = schema.clone();
    if !s.is_object() {
        s = json!({});
    }
    let props = s
        .as_object_mut()
        .unwrap()
        .entry("properties")
        .or_insert_with(|| json!({}));
    if let Some(p) = props.as_object_mut() {
        p.insert("metadata".into(), metadata_hints());
    }
    s
}

pub fn child<'a>(schema: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let s = schema?;
    if let Some(p) = s.get("properties").and_then(|p| p.get(field)) {
        return Some(p);
    }
    match s.get("additionalProperties") {
        Some(ap) if ap.is_object() => Some(ap),
        _ => None,
    }
}

pub fn items(schema: Option<&Value>) -> Option<&Value> {
    schema?.get("items")
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

pub fn list_type(schema: Option<&Value>) -> ListType {
    let Some(s) = schema else {
        return ListType::Atomic;
    };
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => {
            let keys: Vec<String> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                ListType::Atomic
            } else {
                ListType::Map(keys)
            }
        }
        _ => ListType::Atomic,
    }
}

fn atomic_map(schema: Option<&Value>) -> bool {
    schema
        .and_then(|s| s.get("x-kubernetes-map-type"))
        .and_then(Value::as_str)
        == Some("atomic")
}

/// Canonical JSON (serde_json's map is sorted).
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The key of a list-map element: its key fields that are present, as canonical JSON.
pub fn key_of(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut key = Map::new();
    for k in keys {
        if let Some(v) = obj.get(k) {
            key.insert(k.clone(), v.clone());
        }
    }
    if key.is_empty() {
        None
    } else {
        Some(canonical(&Value::Object(key)))
    }
}

// ---------------------------------------------------------------------------------------------
// Field sets

/// The fields an object sets, as server-side apply tracks them (`schema` from
/// [`effective_schema`]).
pub fn field_set(obj: &Value, schema: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return set;
    };
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        let path = vec![PathElement::Field(k.clone())];
        if k == "metadata" {
            if let Some(m) = v.as_object() {
                for (mk, mv) in m {
                    if META_UNTRACKED.contains(&mk.as_str()) {
                        continue;
                    }
                    let mut p = path.clone();
                    p.push(PathElement::Field(mk.clone()));
                    walk(mv, child(child(Some(schema), "metadata"), mk), p, &mut set);
                }
            }
            continue;
        }
        walk(v, child(Some(schema), k), path, &mut set);
    }
    set
}

fn walk(v: &Value, schema: Option<&Value>, path: Path, set: &mut FieldSet) {
    match v {
        Value::Object(m) if !atomic_map(schema) => {
            if m.is_empty() {
                set.insert(path);
                return;
            }
            for (k, cv) in m {
                let mut p = path.clone();
                p.push(PathElement::Field(k.clone()));
                walk(cv, child(schema, k), p, set);
            }
        }
        Value::Array(list) => match list_type(schema) {
            ListType::Map(keys) => {
                let item_schema = items(schema);
                for item in list {
                    let Some(key) = key_of(item, &keys) else {
                        set.insert(path.clone());
                        continue;
                    };
                    let mut p = path.clone();
                    p.push(PathElement::Key(key));
                    set.insert(p.clone());
                    if let Some(m) = item.as_object() {
                        for (k, cv) in m {
                            let mut cp = p.clone();
                            cp.push(PathElement::Field(k.clone()));
                            walk(cv, child(item_schema, k), cp, set);
                        }
                    }
                }
            }
            ListType::Set => {
                for item in list {
                    let mut p = path.clone();
                    p.push(PathElement::Value(canonical(item)));
                    set.insert(p);
                }
            }
            ListType::Atomic => {
                set.insert(path);
            }
        },
        _ => {
            set.insert(path);
        }
    }
}

fn step<'a>(v: &'a Value, pe: &PathElement) -> Option<&'a Value> {
    match pe {
        PathElement::Field(f) => v.as_object()?.get(f),
        PathElement::Key(k) => {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            v.as_array()?
                .iter()
                .find(|item| key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))
        }
        PathElement::Value(s) => v.as_array()?.iter().find(|item| canonical(item) == *s),
    }
}

pub fn get_at<'a>(v: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = step(cur, pe)?;
    }
    Some(cur)
}

fn step_mut<'a>(v: &'a mut Value, pe: &PathElement) -> Option<&'a mut Value> {
    match pe {
        PathElement::Field(f) => v.as_object_mut()?.get_mut(f),
        PathElement::Key(k) => {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            v.as_array_mut()?
                .iter_mut()
                .find(|item| key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))
        }
        PathElement::Value(s) => v
            .as_array_mut()?
            .iter_mut()
            .find(|item| canonical(item) == *s),
    }
}

/// Remove the node at `path`; true when something was removed.
pub fn remove_at(v: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for pe in parent_path {
        match step_mut(cur, pe) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    match last {
        PathElement::Field(f) => cur.as_object_mut().and_then(|m| m.remove(f)).is_some(),
        PathElement::Key(k) => {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return false;
            };
            let Some(list) = cur.as_array_mut() else {
                return false;
            };
            let before = list.len();
            list.retain(|item| !key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)));
            list.len() != before
        }
        PathElement::Value(s) => {
            let Some(list) = cur.as_array_mut() else {
                return false;
            };
            let before = list.len();
            list.retain(|item| canonical(item) != *s);
            list.len() != before
        }
    }
}

fn element_string(pe: &PathElement) -> String {
    match pe {
        PathElement::Field(f) => format!("f:{f}"),
        PathElement::Key(k) => format!("k:{k}"),
        PathElement::Value(v) => format!("v:{v}"),
    }
}

/// A path as the API server prints it in conflict messages: `.spec.partitions`,
/// `.status.conditions[type="Ready"].status`.
pub fn path_string(path: &[PathElement]) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            PathElement::Key(k) => {
                let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = key
                    .iter()
                    .map(|(kk, kv)| format!("{kk}={}", canonical(kv)))
                    .collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            PathElement::Value(v) => s.push_str(&format!("[={v}]")),
        }
    }
    s
}

/// The `fieldsV1` JSON of a field set.
pub fn fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(element_string(pe)).or_default();
        }
        node.member = true;
    }
    fn render(node: &Node) -> Value {
        let mut m = Map::new();
        if node.member && !node.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &node.children {
            m.insert(k.clone(), render(c));
        }
        Value::Object(m)
    }
    render(&root)
}

/// `metadata.managedFields` for the entries.
pub fn managed_fields_json(entries: &[ManagedEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut m = json!({
                    "manager": e.manager,
                    "operation": match e.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
                    "apiVersion": e.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(&e.fields),
                });
                if !e.subresource.is_empty() {
                    m["subresource"] = json!(e.subresource);
                }
                m
            })
            .collect(),
    )
}

fn is_prefix(prefix: &[PathElement], path: &[PathElement]) -> bool {
    path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

// ---------------------------------------------------------------------------------------------
// Ownership after writes

/// Record an `Update` (create, PUT, merge/JSON/strategic patch) by `manager`: it takes every
/// field whose value it changed, from whoever owned it.
#[allow(clippy::too_many_arguments)]
pub fn record_update(
    entries: &mut Vec<ManagedEntry>,
    old: Option<&Value>,
    new: &Value,
    schema: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    let new_set = field_set(new, schema);
    let old_set = old.map(|o| field_set(o, schema)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| match (old, p.last()) {
            (None, _) => true,
            (Some(_), Some(PathElement::Key(_) | PathElement::Value(_))) => !old_set.contains(*p),
            (Some(o), _) => get_at(o, p) != get_at(new, p),
        })
        .cloned()
        .collect();
    if !changed.is_empty() {
        for e in entries.iter_mut() {
            e.fields.retain(|p| !changed.contains(p));
        }
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == Operation::Update && e.subresource == subresource
        }) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_owned();
                e.api_version = api_version.to_owned();
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_owned(),
                operation: Operation::Update,
                api_version: api_version.to_owned(),
                time: now.to_owned(),
                subresource: subresource.to_owned(),
                fields: changed,
            }),
        }
    }
    prune_entries(entries, new);
}

/// Drop owned paths that no longer exist, and entries left empty.
pub fn prune_entries(entries: &mut Vec<ManagedEntry>, obj: &Value) {
    for e in entries.iter_mut() {
        e.fields.retain(|p| get_at(obj, p).is_some());
    }
    entries.retain(|e| !e.fields.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Server-side apply

/// One conflict: another manager owns `path` with a different value.
#[derive(Clone, Debug)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub path: Path,
}

/// Apply `applied` (already cut down to what the subresource may change) onto `live` (or
/// onto `base` when the object does not exist yet) as `manager`. On success, returns the new
/// object; `entries` is updated.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    base: Value,
    applied: &Value,
    schema: &Value,
    entries: &mut Vec<ManagedEntry>,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let applied_set = field_set(applied, schema);
    let is_me = |e: &ManagedEntry| {
        e.manager == manager && e.operation == Operation::Apply && e.subresource == subresource
    };
    let previous: FieldSet = entries
        .iter()
        .find(|e| is_me(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    // Conflicts: another manager owns a leaf the applied config sets to a different value.
    let mut conflicts = Vec::new();
    if let Some(live) = live {
        for e in entries.iter().filter(|e| !is_me(e)) {
            for p in applied_set.intersection(&e.fields) {
                if matches!(p.last(), Some(PathElement::Key(_) | PathElement::Value(_))) {
                    continue;
                }
                let (Some(ours), Some(theirs)) = (get_at(applied, p), get_at(live, p)) else {
                    continue;
                };
                if ours != theirs {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        api_version: e.api_version.clone(),
                        path: p.clone(),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflicts);
        }
        for c in &conflicts {
            for e in entries
                .iter_mut()
                .filter(|e| e.manager == c.manager && !is_me(e))
            {
                e.fields.remove(&c.path);
            }
        }
    }

    let mut obj = live.cloned().unwrap_or(base);

    // Fields this manager applied before and no longer applies, owned by nobody else.
    let owned_by_others = |p: &[PathElement]| {
        entries
            .iter()
            .filter(|e| !is_me(e))
            .any(|e| e.fields.iter().any(|q| is_prefix(p, q)))
    };
    let mut dropped: Vec<&Path> = previous.difference(&applied_set).collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        if owned_by_others(p) {
            continue;
        }
        // Never strip the key fields of a list-map element that stays.
        if let (Some(PathElement::Field(f)), Some(PathElement::Key(k))) =
            (p.last(), p.len().checked_sub(2).map(|i| &p[i]))
        {
            if serde_json::from_str::<Map<String, Value>>(k).is_ok_and(|key| key.contains_key(f)) {
                continue;
            }
        }
        if remove_at(&mut obj, p) {
            // Prune parents the removal left empty and nobody owns.
            let mut parent = p.clone();
            while parent.len() > 1 {
                parent.pop();
                let empty = match get_at(&obj, &parent) {
                    Some(Value::Object(m)) => m.is_empty(),
                    Some(Value::Array(a)) => a.is_empty(),
                    _ => false,
                };
                let owned =
                    owned_by_others(&parent) || applied_set.iter().any(|q| is_prefix(&parent, q));
                if empty && !owned {
                    remove_at(&mut obj, &parent);
                } else {
                    break;
                }
            }
        }
    }

    merge_applied(&mut obj, applied, Some(schema), true);

    entries.retain(|e| !is_me(e) || !applied_set.is_empty());
    match entries.iter_mut().find(|e| is_me(e)) {
        Some(e) => {
            if e.fields != applied_set {
                e.time = now.to_owned();
            }
            e.fields = applied_set;
            e.api_version = api_version.to_owned();
        }
        None if !applied_set.is_empty() => entries.push(ManagedEntry {
            manager: manager.to_owned(),
            operation: Operation::Apply,
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            subresource: subresource.to_owned(),
            fields: applied_set,
        }),
        None => {}
    }
    prune_entries(entries, &obj);
    Ok(obj)
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Merge an applied configuration into an object: maps field by field, list-maps element by
/// key, sets by union, everything else replaced.
fn merge_applied(dst: &mut Value, src: &Value, schema: Option<&Value>, root: bool) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) if !atomic_map(schema) => {
            for (k, sv) in s {
                if root && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                if sv.is_null() {
                    d.remove(k);
                    continue;
                }
                match d.get_mut(k) {
                    Some(dv) => merge_applied(dv, sv, child(schema, k), false),
                    None => {
                        d.insert(k.clone(), strip_nulls(sv));
                    }
                }
            }
        }
        (dst @ Value::Array(_), Value::Array(s)) => match list_type(schema) {
            ListType::Map(keys) => {
                let item_schema = items(schema);
                let d = dst.as_array_mut().unwrap();
                for item in s {
                    let key = key_of(item, &keys);
                    let existing = key.as_ref().and_then(|key| {
                        d.iter_mut()
                            .find(|x| key_of(x, &keys).as_ref() == Some(key))
                    });
                    match existing {
                        Some(x) => merge_applied(x, item, item_schema, false),
                        None => d.push(strip_nulls(item)),
                    }
                }
            }
            ListType::Set => {
                let d = dst.as_array_mut().unwrap();
                for item in s {
                    if !d.contains(item) {
                        d.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *dst = strip_nulls(src),
        },
        (dst, src) => *dst = strip_nulls(src),
    }
}
