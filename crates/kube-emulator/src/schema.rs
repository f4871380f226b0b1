//! Custom resources against their CRD's `openAPIV3Schema`: pruning of unknown fields,
//! defaulting, the OpenAPI value validations, and the CEL `x-kubernetes-validations` rules
//! (through `kube::core::cel`, the kube-cel engine).

use serde_json::Value;

/// One field error, as the API server lists them in an `Invalid` status.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// `spec.partitions`, `status.conditions[0].type`.
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// What follows `field: ` in the message: `Invalid value: 0: ... should be ...`.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &str, reason: &str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            reason: reason.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, value: &Value, message: &str) -> Self {
        Self::new(
            field,
            "FieldValueInvalid",
            format!("Invalid value: {}: {message}", short_json(value)),
        )
    }

    pub fn required(field: &str) -> Self {
        Self::new(field, "FieldValueRequired", "Required value")
    }

    pub fn forbidden(field: &str, message: &str) -> Self {
        Self::new(
            field,
            "FieldValueForbidden",
            format!("Forbidden: {message}"),
        )
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.detail)
        } else {
            write!(f, "{}: {}", self.field, self.detail)
        }
    }
}

fn short_json(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn embedded(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true)
}

// ---------------------------------------------------------------------------------------------
// Pruning

/// Remove the fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`),
/// returning their paths. At the root, `apiVersion`, `kind` and `metadata` always stay.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_node(obj, schema, "", true, &mut removed);
    removed
}

fn prune_node(v: &mut Value, schema: &Value, path: &str, root: bool, removed: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keep_unknown = preserves_unknown(schema)
                || matches!(additional, Some(Value::Bool(true)))
                || additional.is_some_and(Value::is_object);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub = join(path, &k);
                if (root || embedded(schema))
                    && (k == "apiVersion" || k == "kind" || k == "metadata")
                {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(&k)) {
                    prune_node(map.get_mut(&k).unwrap(), ps, &sub, false, removed);
                } else if let Some(ap) = additional.filter(|a| a.is_object()) {
                    prune_node(map.get_mut(&k).unwrap(), ap, &sub, false, removed);
                } else if !keep_unknown {
                    map.remove(&k);
                    removed.push(sub);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(item, is, &format!("{path}[{i}]"), false, removed);
                }
            }
        }
        _ => {}
    }
}

/// `metadata` keeps only the fields of `ObjectMeta`.
pub fn prune_metadata(obj: &mut Value) {
    const KNOWN: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    ];
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, v| KNOWN.contains(&k.as_str()) && !v.is_null());
    }
}

/// Schema defaults filled in (the API server defaults on every write).
pub fn apply_defaults(obj: &Value, schema: &Value) -> Value {
    kube::core::cel::apply_defaults(schema, obj)
}

// ---------------------------------------------------------------------------------------------
// Value validation

/// The OpenAPI value validations (types, required, bounds, lengths, patterns, enums, list
/// types, junctors) followed, when those pass, by the CEL rules. `old` is the stored object
/// on update (transition rules run only then).
pub fn validate(obj: &Value, old: Option<&Value>, schema: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_node(obj, schema, "", true, &mut errors);
    if errors.is_empty() {
        errors.extend(validate_cel(obj, old, schema));
    }
    errors
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_ok(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn num(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn validate_node(v: &Value, schema: &Value, path: &str, root: bool, errors: &mut Vec<FieldError>) {
    let shown = if path.is_empty() { "<root>" } else { path };
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    let ty = schema.get("type").and_then(Value::as_str);

    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(ty) = ty {
            errors.push(FieldError::invalid(
                path,
                &Value::String("null".into()),
                &format!("{shown} in body must be of type {ty}: \"null\""),
            ));
        }
        return;
    }

    if int_or_string {
        if !(is_integer(v) || v.is_string()) {
            errors.push(FieldError::invalid(
                path,
                &Value::String(json_type(v).into()),
                &format!(
                    "{shown} in body must be of type integer,string: \"{}\"",
                    json_type(v)
                ),
            ));
            return;
        }
    } else if let Some(ty) = ty {
        if !type_ok(v, ty) {
            errors.push(FieldError::invalid(
                path,
                &Value::String(json_type(v).into()),
                &format!("{shown} in body must be of type {ty}: \"{}\"", json_type(v)),
            ));
            return;
        }
    }

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            errors.push(FieldError::new(
                path,
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {}: supported values: {}",
                    v,
                    list.join(", ")
                ),
            ));
        }
    }

    match v {
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if let Some(min) = num(schema, "minLength") {
                if len < min {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!(
                            "{shown} in body should be at least {} chars long",
                            fmt_num(min)
                        ),
                    ));
                }
            }
            if let Some(max) = num(schema, "maxLength") {
                if len > max {
                    errors.push(FieldError::new(
                        path,
                        "FieldValueTooLong",
                        format!("Too long: may not be more than {} bytes", fmt_num(max)),
                    ));
                }
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{shown} in body should match '{pattern}'"),
                    )),
                    Ok(_) => {}
                    Err(e) => errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("invalid pattern {pattern:?}: {e}"),
                    )),
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_min = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            let excl_max = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if let Some(min) = num(schema, "minimum") {
                if excl_min && x <= min {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{shown} in body should be greater than {}", fmt_num(min)),
                    ));
                } else if x < min {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!(
                            "{shown} in body should be greater than or equal to {}",
                            fmt_num(min)
                        ),
                    ));
                }
            }
            if let Some(max) = num(schema, "maximum") {
                if excl_max && x >= max {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{shown} in body should be less than {}", fmt_num(max)),
                    ));
                } else if x > max {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!(
                            "{shown} in body should be less than or equal to {}",
                            fmt_num(max)
                        ),
                    ));
                }
            }
            if let Some(m) = num(schema, "multipleOf") {
                if m != 0.0 && (x / m).fract() != 0.0 {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{shown} in body should be a multiple of {}", fmt_num(m)),
                    ));
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if let Some(min) = num(schema, "minItems") {
                if len < min {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!(
                            "{shown} in body should have at least {} items",
                            fmt_num(min)
                        ),
                    ));
                }
            }
            if let Some(max) = num(schema, "maxItems") {
                if len > max {
                    errors.push(FieldError::new(
                        path,
                        "FieldValueTooMany",
                        format!(
                            "Too many: {}: must have at most {} items",
                            items.len(),
                            fmt_num(max)
                        ),
                    ));
                }
            }
            let unique = schema.get("uniqueItems").and_then(Value::as_bool) == Some(true);
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => {
                    let keys: Vec<String> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut seen = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let key: serde_json::Map<String, Value> = keys
                            .iter()
                            .filter_map(|k| item.get(k).map(|kv| (k.clone(), kv.clone())))
                            .collect();
                        let key = Value::Object(key);
                        if seen.contains(&key) {
                            errors.push(FieldError::new(
                                &format!("{path}[{i}]"),
                                "FieldValueDuplicate",
                                format!("Duplicate value: {key}"),
                            ));
                        } else {
                            seen.push(key);
                        }
                    }
                }
                Some("set") => {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            errors.push(FieldError::new(
                                &format!("{path}[{i}]"),
                                "FieldValueDuplicate",
                                format!("Duplicate value: {item}"),
                            ));
                        }
                    }
                }
                _ if unique
                    && items
                        .iter()
                        .enumerate()
                        .any(|(i, item)| items[..i].contains(item)) =>
                {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!("{shown} in body shouldn't contain duplicates"),
                    ));
                }
                _ => {}
            }
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_node(item, is, &format!("{path}[{i}]"), false, errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errors.push(FieldError::required(&join(path, r)));
                    }
                }
            }
            let n = map.len() as f64;
            if let Some(min) = num(schema, "minProperties") {
                if n < min {
                    errors.push(FieldError::invalid(
                        path,
                        v,
                        &format!(
                            "{shown} in body should have at least {} properties",
                            fmt_num(min)
                        ),
                    ));
                }
            }
            if let Some(max) = num(schema, "maxProperties") {
                if n > max {
                    errors.push(FieldError::new(
                        path,
                        "FieldValueTooMany",
                        format!(
                            "Too many: {}: must have at most {} items",
                            map.len(),
                            fmt_num(max)
                        ),
                    ));
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, cv) in map {
                if (root || embedded(schema))
                    && (k == "apiVersion" || k == "kind" || k == "metadata")
                {
                    if let Some(ps) = props.and_then(|p| p.get(k)) {
                        if k != "metadata" {
                            validate_node(cv, ps, &join(path, k), false, errors);
                        }
                    }
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate_node(cv, ps, &join(path, k), false, errors);
                } else if let Some(ap) = additional {
                    validate_node(cv, ap, &join(path, k), false, errors);
                }
            }
        }
        _ => {}
    }

    // Junctors (value validations only, as structural schemas allow).
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate_node(v, s, path, root, errors);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            validate_node(v, s, path, root, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(FieldError::invalid(
                path,
                v,
                &format!("{shown} in body must validate at least one schema (anyOf)"),
            ));
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one
            .iter()
            .filter(|s| {
                let mut e = Vec::new();
                validate_node(v, s, path, root, &mut e);
                e.is_empty()
            })
            .count();
        if n != 1 {
            errors.push(FieldError::invalid(
                path,
                v,
                &format!("{shown} in body must validate one and only one schema (oneOf)"),
            ));
        }
    }
    if let Some(not) = schema.get("not") {
        let mut e = Vec::new();
        validate_node(v, not, path, root, &mut e);
        if e.is_empty() {
            errors.push(FieldError::invalid(
                path,
                v,
                &format!("{shown} in body must not validate the schema (not)"),
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CEL

fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    if path.is_empty() {
        return Some(cur);
    }
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            cur = match idx.parse::<usize>() {
                Ok(i) => cur.get(i)?,
                Err(_) => cur.get(idx.trim_matches(|c| c == '\'' || c == '"'))?,
            };
        }
    }
    Some(cur)
}

thread_local! {
    /// Compiled CEL rules by schema text: compiling is far dearer than evaluating, and a CRD's
    /// schema changes rarely.
    static COMPILED: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<kube::core::cel::CompiledSchema>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn compiled_schema(schema: &Value) -> std::rc::Rc<kube::core::cel::CompiledSchema> {
    let key = schema.to_string();
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 64 {
            cache.clear();
        }
        cache
            .entry(key)
            .or_insert_with(|| std::rc::Rc::new(kube::core::cel::compile_schema(schema)))
            .clone()
    })
}

/// The CEL rules of the schema; transition rules (`oldSelf`) only when `old` is given.
pub fn validate_cel(obj: &Value, old: Option<&Value>, schema: &Value) -> Vec<FieldError> {
    let validator = kube::core::cel::Validator::new();
    let compiled = compiled_schema(schema);
    match validator.validate_compiled(&compiled, obj, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| {
                let reason = e
                    .reason
                    .clone()
                    .unwrap_or_else(|| "FieldValueInvalid".into());
                let ty = value_at(obj, &e.field_path)
                    .map(json_type)
                    .unwrap_or("object");
                let detail = match reason.as_str() {
                    "FieldValueForbidden" => format!("Forbidden: {}", e.message),
                    "FieldValueRequired" => format!("Required value: {}", e.message),
                    "FieldValueDuplicate" => format!("Duplicate value: {}", e.message),
                    _ => format!("Invalid value: \"{ty}\": {}", e.message),
                };
                FieldError {
                    field: e.field_path.clone(),
                    reason,
                    detail,
                }
            })
            .collect(),
    }
}

/// CEL rules of a CRD schema that do not compile (the API server refuses such a CRD).
pub fn cel_compile_errors(schema: &Value) -> Vec<String> {
    fn walk(c: &kube::core::cel::CompiledSchema, out: &mut Vec<String>) {
        out.extend(c.compilation_errors().iter().map(|e| e.to_string()));
        for p in c.properties.values() {
            walk(p, out);
        }
        if let Some(i) = &c.items {
            walk(i, out);
        }
        if let Some(a) = &c.additional_properties {
            walk(a, out);
        }
        for b in c.all_of.iter().chain(&c.one_of).chain(&c.any_of) {
            walk(b, out);
        }
    }
    let compiled = kube::core::cel::compile_schema(schema);
    let mut out = Vec::new();
    walk(&compiled, &mut out);
    out
}
