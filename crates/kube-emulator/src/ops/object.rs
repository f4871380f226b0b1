//! Reading and changing an object's JSON: metadata, finalizers, names, the parts that decide
//! a generation bump or a no-op write, continue tokens.

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;
use crate::schema::FieldError;
use crate::ssa::ManagedEntry;

pub(super) fn meta<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get("metadata").and_then(|m| m.get(field))
}

pub(super) fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    meta(v, field).and_then(Value::as_str)
}

pub(super) fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    let obj = v.as_object_mut().unwrap();
    let m = obj.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().unwrap()
}

pub(super) fn finalizers(v: &Value) -> Vec<String> {
    meta(v, "finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn set_finalizers(v: &mut Value, list: &[String]) {
    let m = meta_mut(v);
    if list.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(list));
    }
}

pub(super) fn is_deleting(v: &Value) -> bool {
    meta(v, "deletionTimestamp").is_some_and(|t| !t.is_null())
}

/// The object as served at the requested version.
pub fn present(rt: &ResourceType, mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), json!(rt.api_version()));
        o.insert("kind".into(), json!(rt.kind));
    }
    v
}

fn dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && dns_subdomain(name)
}

pub(super) fn name_errors(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    if rt.group.is_empty() && rt.plural == "namespaces" {
        if !dns_label(name) {
            return vec![FieldError::invalid(
                "metadata.name",
                &json!(name),
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )];
        }
    } else if !dns_subdomain(name) {
        return vec![FieldError::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )];
    }
    Vec::new()
}

/// `metadata` fields the server owns: kept from the stored object on every update.
pub(super) const SYSTEM_META: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "resourceVersion",
    "selfLink",
];

/// What decides a generation bump: everything but metadata (and status, when it is a
/// subresource).
pub(super) fn spec_part(rt: &ResourceType, v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("metadata");
        o.remove("apiVersion");
        o.remove("kind");
        if rt.status_subresource {
            o.remove("status");
        }
    }
    c
}

pub(super) fn without_volatile(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    if let Some(o) = c.as_object_mut() {
        o.remove("apiVersion");
    }
    c
}

pub(super) fn same_ownership(a: &[ManagedEntry], b: &[ManagedEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.subresource == y.subresource
                && x.fields == y.fields
        })
}

pub(super) fn parse_rv(s: &str) -> Option<u64> {
    s.parse().ok()
}

pub(super) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
