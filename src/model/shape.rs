//! The shape of a resource, checked against its CRD's OpenAPI schema before it is typed.
//!
//! serde stops at the first problem and says it in Rust's terms, with the offending value
//! (`invalid type: string "hunter2", expected struct CredentialSource`). [`check`] instead walks
//! the whole object and reports every wrong type, unknown or missing field and value outside an
//! enum, each under its field path, in the manifest's terms (`must be a mapping with one of
//! value, secretKeyRef, file, got a string`), and never repeats a value: a credential written in
//! the wrong place must not be printed. [`describe_serde_error`] says what serde still finds (a
//! field the schema leaves open) in the same terms. Nothing here knows a resource kind: the
//! schema is the caller's.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::FieldError;

/// At most this many problems are reported for one object; the rest are counted.
pub const MAX_REPORTED: usize = 50;

/// Every problem of `value`'s shape against `schema` (an OpenAPI v3 structural schema, as in a
/// CRD). Fields that fail and that the schema does not require are removed from `value`, so
/// that the rest can still be typed and checked; returns whether `value` is still usable (no
/// required field failed).
pub fn check(value: &mut Value, schema: &Value) -> (Vec<FieldError>, bool) {
    let mut errors = Vec::new();
    let usable = walk(value, schema, "", false, &mut errors);
    (cap(errors), usable)
}

/// An object as far as it could be typed.
#[derive(Debug)]
pub struct Parsed<T> {
    /// `None` when the object cannot be typed at all (a required field failed).
    pub value: Option<T>,
    /// Every problem found, at most [`MAX_REPORTED`] (and a count of the rest).
    pub problems: Vec<FieldError>,
    /// Paths removed from the object because they were invalid (each reported in
    /// `problems`): `value`, if any, was typed without them.
    pub pruned: Vec<String>,
}

/// Checks `value` against `schema` (when there is one), then types what is left: every
/// problem of the object at once, and the object without its invalid fields when it can still
/// be typed, so that the caller's own rules can report the rest.
pub fn parse<T: DeserializeOwned>(mut value: Value, schema: Option<&Value>) -> Parsed<T> {
    let (mut problems, usable) = match schema {
        Some(schema) => check(&mut value, schema),
        None => (Vec::new(), true),
    };
    let pruned = problems.iter().map(|e| e.path.clone()).collect();
    let typed = if usable {
        serde_path_to_error::deserialize(value)
            .map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                let message = e.inner().to_string();
                // A missing field is named by its own path.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                problems.push(match missing {
                    Some(field) => FieldError::new(join(&path, field), "is required"),
                    None => FieldError::new(path, describe_serde_error(&message)),
                });
            })
            .ok()
    } else {
        None
    };
    Parsed {
        value: typed,
        problems,
        pruned,
    }
}

/// Keeps the first [`MAX_REPORTED`] problems and says how many more there were.
pub fn cap(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    if errors.len() > MAX_REPORTED {
        let more = errors.len() - MAX_REPORTED;
        errors.truncate(MAX_REPORTED);
        errors.push(FieldError::new(
            "",
            format!("{more} more problem(s) not shown; fix the ones above first"),
        ));
    }
    errors
}

fn join(path: &str, key: &str) -> String {
    // An empty (or null) key still names a field.
    let key = if key.is_empty() { "\"\"" } else { key };
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What a value is, never what it holds.
fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true or false",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn property_names(schema: &Value) -> Vec<&str> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// A credential source (`value`, `secretKeyRef`, `file`).
fn is_credential(schema: &Value) -> bool {
    let mut names = property_names(schema);
    names.sort_unstable();
    names == ["file", "secretKeyRef", "value"]
}

fn enum_values(schema: &Value) -> Option<String> {
    let values = schema.get("enum")?.as_array()?;
    let names: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    Some(names.join(", "))
}

/// What the schema expects, as the manifest's author would say it.
pub fn expected(schema: &Value) -> String {
    if flag(schema, "x-kubernetes-int-or-string") {
        return "an integer or a string".into();
    }
    if let Some(values) = enum_values(schema) {
        return format!("one of {values}");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "a string".into(),
        Some("integer") => match schema.get("format").and_then(Value::as_str) {
            Some("int32") => format!("an integer from {} to {}", i32::MIN, i32::MAX),
            _ => "an integer".into(),
        },
        Some("number") => "a number".into(),
        Some("boolean") => "true or false".into(),
        Some("array") => match schema.get("items") {
            Some(items) => format!("a list of {}", plural(&expected(items))),
            None => "a list".into(),
        },
        Some("object") if is_credential(schema) => {
            "a mapping with one of value, secretKeyRef, file".into()
        }
        Some("object") => match schema.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("a mapping of {}", plural(&expected(ap))),
            _ => {
                let names = property_names(schema);
                if names.is_empty() {
                    "a mapping".into()
                } else {
                    format!("a mapping with fields {}", names.join(", "))
                }
            }
        },
        _ => "a valid value".into(),
    }
}

fn plural(one: &str) -> String {
    for (a, many) in [
        ("a string", "strings"),
        ("an integer", "integers"),
        ("a number", "numbers"),
        ("a list", "lists"),
        ("a mapping", "mappings"),
    ] {
        if let Some(rest) = one.strip_prefix(a) {
            return format!("{many}{rest}");
        }
    }
    one.to_owned()
}

fn mismatch(path: &str, schema: &Value, value: &Value, errors: &mut Vec<FieldError>) -> bool {
    let message = if value.is_null() {
        format!("is empty; give {} or remove the field", expected(schema))
    } else {
        format!("must be {}, got {}", expected(schema), found(value))
    };
    errors.push(FieldError::new(path, message));
    false
}

/// Checks one value; returns whether it is acceptable. Removes failing optional fields from
/// mappings; a mapping with a failing required field fails itself.
/// `secret`: inside a credential source, where keys written by mistake are not repeated
/// either (a secret may sit in a key: `password: {hunter2}`).
fn walk(
    value: &mut Value,
    schema: &Value,
    path: &str,
    secret: bool,
    errors: &mut Vec<FieldError>,
) -> bool {
    if value.is_null() {
        return flag(schema, "nullable")
            || schema.get("type").is_none() && !flag(schema, "x-kubernetes-int-or-string")
            || mismatch(path, schema, value, errors);
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        let ok = value.is_string() || value.is_i64() || value.is_u64();
        return ok || mismatch(path, schema, value, errors);
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        Some("string") => match value {
            Value::String(s) => {
                let allowed = schema.get("enum").and_then(Value::as_array);
                if allowed.is_some_and(|a| !a.iter().any(|v| v.as_str() == Some(s))) {
                    errors.push(FieldError::new(
                        path,
                        format!("must be {}", expected(schema)),
                    ));
                    false
                } else {
                    true
                }
            }
            _ => mismatch(path, schema, value, errors),
        },
        Some("integer") => {
            let fits = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                _ => value.is_i64(),
            };
            fits || mismatch(path, schema, value, errors)
        }
        Some("number") => value.is_number() || mismatch(path, schema, value, errors),
        Some("boolean") => value.is_boolean() || mismatch(path, schema, value, errors),
        Some("array") => match value {
            Value::Array(items) => {
                let mut ok = within_bound(path, schema, "maxItems", items.len(), "entries", errors);
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        ok &= walk(item, item_schema, &format!("{path}[{i}]"), secret, errors);
                    }
                }
                ok
            }
            _ => mismatch(path, schema, value, errors),
        },
        Some("object") => match value {
            Value::Object(map) => walk_object(map, schema, path, secret, errors),
            _ => mismatch(path, schema, value, errors),
        },
        // No type (e.g. `x-kubernetes-preserve-unknown-fields` alone): anything goes.
        _ => true,
    };
    ok
}

fn walk_object(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    secret: bool,
    errors: &mut Vec<FieldError>,
) -> bool {
    // Inside a credential, or beside one (`sasl`, `tls`): a key written by mistake may be
    // the secret itself.
    let holds_credentials = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.values().any(is_credential));
    let secret = secret || is_credential(schema) || holds_credentials;
    let mut ok = within_bound(path, schema, "maxProperties", map.len(), "keys", errors);
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let open = flag(schema, "x-kubernetes-preserve-unknown-fields")
        || additional.and_then(Value::as_bool) == Some(true)
        || (properties.is_none() && additional.is_none());
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in &required {
        if !map.contains_key(*name) {
            errors.push(FieldError::new(join(path, name), "is required"));
            ok = false;
        }
    }
    let mut failed = Vec::new();
    let mut unknown = 0usize;
    for (key, child) in map.iter_mut() {
        let child_path = join(path, key);
        let child_ok = match (properties.and_then(|p| p.get(key)), additional) {
            (Some(s), _) => walk(child, s, &child_path, secret, errors),
            (None, Some(ap)) if ap.is_object() => walk(child, ap, &child_path, secret, errors),
            (None, _) if open => true,
            (None, _) if secret => {
                unknown += 1;
                false
            }
            (None, _) => {
                errors.push(FieldError::new(
                    child_path,
                    format!(
                        "unknown field; the fields here are {}",
                        property_names(schema).join(", ")
                    ),
                ));
                false
            }
        };
        if !child_ok {
            failed.push(key.clone());
        }
    }
    if unknown > 0 {
        errors.push(FieldError::new(
            path,
            format!(
                "{unknown} unknown field(s) (not repeated: this is a credential); the fields here are {}",
                property_names(schema).join(", ")
            ),
        ));
    }
    for key in failed {
        if required.contains(&key.as_str()) {
            ok = false;
        } else {
            map.remove(&key);
        }
    }
    ok
}

/// The schema's bound on a list's entries or a mapping's keys (against hostile input: a
/// topology of 10,000 entries the API server's schema would have refused).
fn within_bound(
    path: &str,
    schema: &Value,
    bound: &str,
    len: usize,
    what: &str,
    errors: &mut Vec<FieldError>,
) -> bool {
    match schema.get(bound).and_then(Value::as_u64) {
        Some(max) if len as u64 > max => {
            errors.push(FieldError::new(
                path,
                format!("has {len} {what}; at most {max}"),
            ));
            false
        }
        _ => true,
    }
}

/// serde's message for a value it could not take, in the manifest's terms and without the
/// value: `invalid type: string "x", expected u16` becomes `must be an integer from 0 to 65535,
/// got a string`.
pub fn describe_serde_error(message: &str) -> String {
    // serde_path_to_error and some deserializers append a position.
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (got, want) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
        return format!(
            "must be {}, got {}",
            rust_terms(want),
            serde_unexpected(got)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        let want = rest
            .rsplit_once(", expected ")
            .map(|(_, w)| w)
            .unwrap_or("");
        return format!("must be {}", rust_terms(want));
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let want = rest
            .rsplit_once(", expected ")
            .map(|(_, w)| w)
            .unwrap_or("");
        return format!(
            "has the wrong number of entries; expected {}",
            rust_terms(want)
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let names = rest.split_once(", expected ").map(|(_, w)| w).unwrap_or("");
        return format!("unknown field; the fields here are {}", unquote(names));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let names = rest.split_once(", expected ").map(|(_, w)| w).unwrap_or("");
        return format!("must be {}", unquote(names));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return format!("field {} is required", rest.trim_end_matches('`'));
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        return format!("field {} is given twice", rest.trim_end_matches('`'));
    }
    "is not valid here".into()
}

fn unquote(names: &str) -> String {
    let names = names.strip_prefix("one of ").unwrap_or(names);
    let names = names.replace('`', "");
    if names.contains(',') {
        format!("one of {names}")
    } else {
        names
    }
}

/// What serde found (`string "…"`, `integer `5``, `map`…), without the value.
fn serde_unexpected(got: &str) -> &'static str {
    let word = got.split([' ', '`']).next().unwrap_or("");
    match word {
        "string" | "character" => "a string",
        "integer" => "an integer",
        "floating" => "a decimal number",
        "boolean" => "true or false",
        "map" => "a mapping",
        "sequence" => "a list",
        "null" | "unit" | "Option" => "nothing",
        _ => "something else",
    }
}

/// serde's `expected` in the manifest's terms: no Rust type names.
fn rust_terms(want: &str) -> String {
    let range = |min: i128, max: i128| format!("an integer from {min} to {max}");
    match want.trim() {
        "i8" => range(i8::MIN.into(), i8::MAX.into()),
        "i16" => range(i16::MIN.into(), i16::MAX.into()),
        "i32" => range(i32::MIN.into(), i32::MAX.into()),
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" => range(0, u32::MAX.into()),
        "i64" | "u64" | "isize" | "usize" | "i128" | "u128" | "an integer" => "an integer".into(),
        "f32" | "f64" | "a number" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "a borrowed string" | "a character" | "char" => "a string".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        w if w.starts_with("struct ") => "a mapping".into(),
        w if w.starts_with("enum ") => "one of the documented values".into(),
        w if w.starts_with("a sequence of ") || w.starts_with("an array of ") => "a list".into(),
        w if w.starts_with("one of ") => unquote(w),
        // Anything else may name a Rust type; say only that the value is not valid.
        _ => "a valid value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credential() -> Value {
        json!({"type": "object", "properties": {
            "value": {"type": "string", "nullable": true},
            "secretKeyRef": {"type": "object", "nullable": true, "required": ["name", "key"],
                "properties": {"name": {"type": "string"}, "key": {"type": "string"}}},
            "file": {"type": "string", "nullable": true}}})
    }

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
        "spec": {"type": "object", "required": ["partitions"], "properties": {
            "partitions": {"type": "integer", "format": "int32"},
            "policy": {"type": "string", "enum": ["Retain", "Delete"]},
            "config": {"type": "object", "additionalProperties": {"type": "string"}},
            "sasl": {"type": "object", "properties": {"password": credential()}},
            "servers": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "port": {"x-kubernetes-int-or-string": true}
        }}}})
    }

    fn problems(mut value: Value) -> (Vec<String>, bool, Value) {
        let (errors, usable) = check(&mut value, &schema());
        (
            errors.iter().map(ToString::to_string).collect(),
            usable,
            value,
        )
    }

    #[test]
    fn reports_every_problem_without_values() {
        let (e, usable, pruned) = problems(json!({"spec": {
            "partitions": 6, "policy": "Purge", "config": {"a": 5, "b": "x"},
            "sasl": {"password": "hunter2"}, "servers": "h:1", "port": true, "extra": 1}}));
        assert_eq!(
            e,
            [
                "spec.config.a: must be a string, got an integer",
                "spec.extra: unknown field; the fields here are config, partitions, policy, port, sasl, servers",
                "spec.policy: must be one of Retain, Delete",
                "spec.port: must be an integer or a string, got true or false",
                "spec.sasl.password: must be a mapping with one of value, secretKeyRef, file, got a string",
                "spec.servers: must be a list of strings, got a string",
            ]
        );
        assert!(usable);
        assert_eq!(
            pruned,
            json!({"spec": {"partitions": 6, "config": {"b": "x"}, "sasl": {}}})
        );
        assert!(!e.iter().any(|e| e.contains("hunter2")));
    }

    #[test]
    fn a_failing_required_field_makes_the_object_unusable() {
        let (e, usable, _) = problems(json!({"spec": {"partitions": 3_000_000_000i64}}));
        assert_eq!(
            e,
            ["spec.partitions: must be an integer from -2147483648 to 2147483647, got an integer"]
        );
        assert!(!usable);
        let (e, usable, _) = problems(json!({"spec": {}}));
        assert_eq!(e, ["spec.partitions: is required"]);
        assert!(!usable);
    }

    #[test]
    fn keys_under_a_credential_are_not_repeated() {
        let (e, _, _) =
            problems(json!({"spec": {"partitions": 1, "sasl": {"password": {"hunter2": null}}}}));
        assert_eq!(e.len(), 1);
        assert!(!e[0].contains("hunter2"), "{e:?}");
        assert!(
            e[0].starts_with("spec.sasl.password: 1 unknown field(s)"),
            "{e:?}"
        );
    }

    #[test]
    fn lists_longer_than_the_schema_allows() {
        let servers: Vec<String> = (0..10_000).map(|i| format!("h{i}:9092")).collect();
        let (e, usable, _) = problems(json!({"spec": {"partitions": 1, "servers": servers}}));
        assert_eq!(e, ["spec.servers: has 10000 entries; at most 3"]);
        assert!(usable);
    }

    #[test]
    fn keys_beside_a_credential_are_not_repeated() {
        let schema = json!({"type": "object", "properties": {"sasl": {"type": "object",
            "properties": {"mechanism": {"type": "string"}, "password": credential()}}}});
        let mut value = json!({"sasl": {"hunter2": 1, "mechanism": "PLAIN"}});
        let (e, _) = check(&mut value, &schema);
        assert_eq!(
            e,
            [FieldError::new(
                "sasl",
                "1 unknown field(s) (not repeated: this is a credential); the fields here are mechanism, password"
            )]
        );
    }

    #[test]
    fn null_where_a_value_is_expected() {
        let (e, _, _) = problems(json!({"spec": {"partitions": 1, "config": null}}));
        assert_eq!(
            e,
            ["spec.config: is empty; give a mapping of strings or remove the field"]
        );
    }

    #[test]
    fn too_many_problems_are_counted() {
        let config: Map<String, Value> = (0..80).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let mut value = json!({"spec": {"partitions": 1, "config": config}});
        let (e, _) = check(&mut value, &schema());
        assert_eq!(e.len(), MAX_REPORTED + 1);
        assert_eq!(
            e[MAX_REPORTED].message,
            "30 more problem(s) not shown; fix the ones above first"
        );
    }

    #[test]
    fn serde_messages_lose_values_and_rust_types() {
        for (serde, ours) in [
            (
                "invalid type: string \"hunter2\", expected struct CredentialSource",
                "must be a mapping, got a string",
            ),
            (
                "invalid type: string \"six\", expected i32",
                "must be an integer from -2147483648 to 2147483647, got a string",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                "must be an integer from 0 to 65535",
            ),
            (
                "invalid type: map, expected a sequence",
                "must be a list, got a mapping",
            ),
            (
                "unknown variant `Purge`, expected `Retain` or `Delete`",
                "must be Retain or Delete",
            ),
            ("missing field `key`", "field key is required"),
            ("something about secret s3cr3t", "is not valid here"),
        ] {
            let said = describe_serde_error(serde);
            assert_eq!(said, ours, "{serde}");
            for rust in ["i32", "u16", "struct", "sequence", "hunter2", "s3cr3t"] {
                assert!(!said.contains(rust), "{said}");
            }
        }
    }
}
