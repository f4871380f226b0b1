//! What each request does to the store, with the API server's semantics: create, get, list,
//! update, the patch types, server-side apply, delete (finalizers, propagation), the status
//! subresource, generation, managedFields, validation, CRD registration and garbage
//! collection (owner references, namespaces).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::registry::{crd_status, types_from_crd, ResourceType};
use crate::schema::{self, FieldError};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::ssa::{self, ManagedEntry};
use crate::store::{new_uid, now, random_suffix, ChangeType, ObjKey, State, Stored};

// ---------------------------------------------------------------------------------------------
// Errors

/// A failed request, answered with a `Status`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn details_for(rt: &ResourceType, name: &str) -> Value {
        json!({"name": name, "group": rt.group, "kind": rt.plural})
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_plural()),
        )
        .with_details(Self::details_for(rt, name))
    }

    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
            .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
        )
        .with_details(Self::details_for(rt, name))
    }

    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_plural()
            ),
        )
        .with_details(Self::details_for(rt, name))
    }

    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> Self {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.detail, "field": e.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", rt.qualified_kind()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

type Result<T> = std::result::Result<T, ApiError>;

// ---------------------------------------------------------------------------------------------
// Parameters

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// What every write carries from the query string and headers.
#[derive(Clone, Debug)]
pub struct WriteParams {
    /// `fieldManager`, else the User-Agent's product name.
    pub manager: String,
    pub explicit_manager: bool,
    pub dry_run: bool,
    pub force: bool,
    pub field_validation: FieldValidation,
}

/// A successful answer.
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Reply {
    fn ok(code: u16, body: Value) -> Self {
        Reply {
            code,
            body,
            warnings: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// `DeleteOptions` as far as they matter here.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_body(body: &Value) -> Self {
        let mut o = DeleteOptions {
            propagation: body
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned),
            precondition_uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
            precondition_rv: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            dry_run: body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
        };
        if o.propagation.is_none() {
            if let Some(orphan) = body.get("orphanDependents").and_then(Value::as_bool) {
                o.propagation = Some(if orphan { "Orphan" } else { "Background" }.into());
            }
        }
        o
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn meta<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get("metadata").and_then(|m| m.get(field))
}

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    meta(v, field).and_then(Value::as_str)
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
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

fn finalizers(v: &Value) -> Vec<String> {
    meta(v, "finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(v: &mut Value, list: &[String]) {
    let m = meta_mut(v);
    if list.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(list));
    }
}

fn is_deleting(v: &Value) -> bool {
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

fn name_errors(rt: &ResourceType, name: &str) -> Vec<FieldError> {
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
const SYSTEM_META: &[&str] = &[
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
fn spec_part(rt: &ResourceType, v: &Value) -> Value {
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

fn without_volatile(v: &Value) -> Value {
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

fn same_ownership(a: &[ManagedEntry], b: &[ManagedEntry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.subresource == y.subresource
                && x.fields == y.fields
        })
}

fn parse_rv(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The request's view of the object for the status subresource or the main resource.
pub enum Target {
    Main,
    Status,
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Main => "",
            Target::Status => "status",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

impl State {
    fn key(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> ObjKey {
        ObjKey {
            group: rt.group.clone(),
            resource: rt.plural.clone(),
            namespace: if rt.namespaced {
                ns.unwrap_or("").to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    fn check_namespace(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<()> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        let key = ObjKey {
            group: String::new(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_owned(),
        };
        match self.objects.get(&key) {
            None => Err(ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
                .with_details(json!({"name": ns, "kind": "namespaces"}))),
            Some(s) if is_deleting(&s.value) => Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.qualified_plural()
            ))
            .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}))),
            Some(_) => Ok(()),
        }
    }

    /// Check `apiVersion` / `kind` / namespace of a request body against the URL.
    fn check_body(&self, rt: &ResourceType, ns: Option<&str>, body: &Value) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            if kind != rt.kind {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({})",
                    format_args!(
                        "{}, Kind={kind}",
                        body.get("apiVersion").and_then(Value::as_str).unwrap_or("")
                    ),
                    format_args!("{}, Kind={}", rt.api_version(), rt.kind)
                )));
            }
        }
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str) {
            // Any served version of the kind will do (the object is stored once).
            let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
            if group != rt.group || self.registry.find(group, version, &rt.plural).is_none() {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    rt.api_version()
                )));
            }
        }
        if rt.namespaced {
            if let (Some(body_ns), Some(ns)) = (meta_str(body, "namespace"), ns) {
                if !body_ns.is_empty() && body_ns != ns {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        Ok(())
    }

    fn hints(rt: &ResourceType) -> Value {
        ssa::effective_schema(&rt.hints)
    }

    /// Prune, default, and (for custom resources) validate a new object state.
    fn normalize(
        &self,
        rt: &ResourceType,
        name: &str,
        obj: &mut Value,
        params: &WriteParams,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        schema::prune_metadata(obj);
        if let Some(s) = &rt.schema {
            let removed = schema::prune(obj, s);
            if !removed.is_empty() {
                match params.field_validation {
                    FieldValidation::Strict => {
                        let list: Vec<String> = removed
                            .iter()
                            .map(|p| format!("unknown field \"{p}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                            rt.kind,
                            rt.api_version(),
                            rt.kind,
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(removed.iter().map(|p| format!("unknown field \"{p}\"")));
                    }
                    FieldValidation::Ignore => {}
                }
            }
            *obj = schema::apply_defaults(obj, s);
        }
        let _ = name;
        Ok(())
    }

    fn validate_object(
        &self,
        rt: &ResourceType,
        name: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<()> {
        let mut errors = Vec::new();
        if old.is_none() {
            errors.extend(name_errors(rt, name));
        }
        if let Some(s) = &rt.schema {
            errors.extend(schema::validate(obj, old, s));
        }
        if let Some(old) = old {
            if is_deleting(old) {
                let before = finalizers(old);
                let added: Vec<String> = finalizers(obj)
                    .into_iter()
                    .filter(|f| !before.contains(f))
                    .collect();
                if !added.is_empty() {
                    errors.push(FieldError::forbidden(
                        "metadata.finalizers",
                        &format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                    ));
                }
            }
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            match types_from_crd(obj) {
                Err(errs) => errors.extend(
                    errs.iter()
                        .map(|(f, d)| FieldError::new(f, "FieldValueInvalid", d.clone())),
                ),
                Ok(types) => {
                    for t in &types {
                        if let Some(s) = &t.schema {
                            for e in schema::cel_compile_errors(s) {
                                errors.push(FieldError::invalid(
                                    &format!(
                                        "spec.validation.openAPIV3Schema (version {})",
                                        t.version
                                    ),
                                    &json!("object"),
                                    &format!("compilation failed: {e}"),
                                ));
                            }
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(rt, name, &errors))
        }
    }

    /// After a CRD is stored or removed, serve (or stop serving) its kinds.
    fn crd_changed(&mut self, crd: &Value, removed: bool) {
        let name = meta_str(crd, "name").unwrap_or("").to_owned();
        if removed {
            self.registry.remove_crd(&name);
        } else if let Ok(types) = types_from_crd(crd) {
            self.registry.set_crd_types(&name, types);
        }
    }

    fn is_crd(rt: &ResourceType) -> bool {
        rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
    }

    fn is_namespace(rt: &ResourceType) -> bool {
        rt.group.is_empty() && rt.plural == "namespaces"
    }

    // ----- create

    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        mut body: Value,
        params: &WriteParams,
    ) -> Result<Reply> {
        self.check_body(rt, ns, &body)?;
        let mut name = meta_str(&body, "name").unwrap_or("").to_owned();
        if name.is_empty() {
            match meta_str(&body, "generateName") {
                Some(prefix) if !prefix.is_empty() => loop {
                    let candidate = format!("{prefix}{}", random_suffix());
                    if !self.objects.contains_key(&self.key(rt, ns, &candidate)) {
                        name = candidate;
                        break;
                    }
                },
                _ => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        &[FieldError::new(
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )],
                    ))
                }
            }
        }
        self.check_namespace(rt, ns, &name)?;
        let key = self.key(rt, ns, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        if meta_str(&body, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            // What the storage layer answers, as an internal error.
            return Err(ApiError::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut warnings = Vec::new();
        if rt.status_subresource {
            if let Some(o) = body.as_object_mut() {
                o.remove("status");
            }
        }
        self.normalize(rt, &name, &mut body, params, &mut warnings)?;
        self.init_system_fields(rt, ns, &name, &mut body);
        self.validate_object(rt, &name, &body, None)?;
        let schema = Self::hints(rt);
        let mut managed = Vec::new();
        ssa::record_update(
            &mut managed,
            None,
            &body,
            &schema,
            &params.manager,
            &rt.api_version(),
            "",
            &now(),
        );
        let reply = self.store_new(rt, key, body, managed, params.dry_run)?;
        Ok(Reply {
            code: 201,
            body: reply,
            warnings,
        })
    }

    fn init_system_fields(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        body: &mut Value,
    ) {
        let is_ns = Self::is_namespace(rt);
        let m = meta_mut(body);
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns.unwrap_or("")));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now()));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        m.remove("selfLink");
        m.remove("managedFields");
        if rt.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        if is_ns {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            body["spec"] = json!({"finalizers": ["kubernetes"]});
            body["status"] = json!({"phase": "Active"});
        }
        if let Some(o) = body.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.storage_api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
    }

    /// Store a new object (server-computed status for CRDs), run the GC, answer with it.
    fn store_new(
        &mut self,
        rt: &Arc<ResourceType>,
        key: ObjKey,
        mut body: Value,
        managed: Vec<ManagedEntry>,
        dry_run: bool,
    ) -> Result<Value> {
        if Self::is_crd(rt) {
            body["status"] = crd_status(&body, &now());
        }
        meta_mut(&mut body).insert("managedFields".into(), ssa::managed_fields_json(&managed));
        if dry_run {
            return Ok(present(rt, body));
        }
        let stored = self.commit(
            key,
            ChangeType::Added,
            Stored {
                value: body,
                managed,
            },
            None,
        );
        if Self::is_crd(rt) {
            self.crd_changed(&stored, false);
        }
        self.collect_garbage();
        Ok(present(rt, stored))
    }

    // ----- get / list

    pub fn get(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> Result<Value> {
        self.objects
            .get(&self.key(rt, ns, name))
            .map(|s| present(rt, s.value.clone()))
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
        resource_version: Option<&str>,
        exact: bool,
    ) -> Result<Value> {
        let (at, after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut parts = token.splitn(3, ':');
                let rv = parts.next().and_then(parse_rv);
                let ns = parts.next().and_then(unhex);
                let name = parts.next().and_then(unhex);
                match (rv, ns, name) {
                    (Some(rv), Some(ns), Some(name)) => (rv, Some((ns, name))),
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid continue token {token:?}"
                        )))
                    }
                }
            }
            None => {
                let at = match resource_version.filter(|r| !r.is_empty() && *r != "0") {
                    Some(r) => {
                        let n = parse_rv(r).ok_or_else(|| {
                            ApiError::bad_request(format!("invalid resource version {r:?}"))
                        })?;
                        if exact {
                            n
                        } else {
                            self.rv.max(n)
                        }
                    }
                    None => self.rv,
                };
                (at.min(self.rv), None)
            }
        };
        let objects = if at == self.rv {
            self.objects
                .iter()
                .filter(|(k, _)| k.group == rt.group && k.resource == rt.plural)
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect()
        } else {
            match self.snapshot(&rt.group, &rt.plural, at) {
                Some(o) => o,
                None if continue_token.is_some() => {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ))
                }
                None => {
                    return Err(ApiError::gone(format!("too old resource version: {at} ({})", self.compacted + 1)))
                }
            }
        };
        let selected: Vec<(ObjKey, Value)> = objects
            .into_iter()
            .filter(|(k, _)| !rt.namespaced || ns.is_none_or(|n| k.namespace == n))
            .filter(|(k, _)| {
                after
                    .as_ref()
                    .is_none_or(|(ans, aname)| (&k.namespace, &k.name) > (ans, aname))
            })
            .filter(|(_, v)| labels.matches(v) && fields.matches(v))
            .collect();
        let total = selected.len();
        let page: Vec<(ObjKey, Value)> = match limit.filter(|l| *l > 0) {
            Some(l) => selected.into_iter().take(l).collect(),
            None => selected,
        };
        let mut list_meta = json!({"resourceVersion": at.to_string()});
        if page.len() < total {
            let (last, _) = page.last().unwrap();
            list_meta["continue"] =
                json!(format!("{at}:{}:{}", hex(&last.namespace), hex(&last.name)));
            list_meta["remainingItemCount"] = json!(total - page.len());
        }
        let items: Vec<Value> = page.into_iter().map(|(_, v)| present(rt, v)).collect();
        Ok(json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": list_meta,
            "items": items,
        }))
    }

    // ----- update / patch / apply

    /// Finish a write to an existing object: subresource rules, system metadata, pruning,
    /// defaulting, validation, generation, managedFields, no-op detection, commit.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &mut self,
        rt: &Arc<ResourceType>,
        key: ObjKey,
        old: Stored,
        mut new: Value,
        target: &Target,
        applied_entries: Option<Vec<ManagedEntry>>,
        params: &WriteParams,
    ) -> Result<Reply> {
        let name = key.name.clone();
        // Subresource rules.
        match target {
            Target::Status => {
                let status = new.get("status").cloned();
                new = old.value.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            Target::Main => {
                if rt.status_subresource {
                    let status = old.value.get("status").cloned();
                    let o = new.as_object_mut().unwrap();
                    match status {
                        Some(s) => {
                            o.insert("status".into(), s);
                        }
                        None => {
                            o.remove("status");
                        }
                    }
                }
            }
        }
        // System metadata comes from the stored object.
        {
            let old_meta = old.value.get("metadata").cloned().unwrap_or(json!({}));
            let m = meta_mut(&mut new);
            for f in SYSTEM_META {
                match old_meta.get(*f) {
                    Some(v) => {
                        m.insert((*f).into(), v.clone());
                    }
                    None => {
                        m.remove(*f);
                    }
                }
            }
            m.insert("name".into(), json!(key.name));
            if rt.namespaced {
                m.insert("namespace".into(), json!(key.namespace));
            }
            m.remove("managedFields");
        }
        if let Some(o) = new.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.storage_api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        let mut warnings = Vec::new();
        self.normalize(rt, &name, &mut new, params, &mut warnings)?;
        if Self::is_namespace(rt) {
            new["spec"] = old.value.get("spec").cloned().unwrap_or(json!({}));
        }
        if Self::is_crd(rt) {
            new["status"] = crd_status(&new, &now());
        }
        self.validate_object(rt, &name, &new, Some(&old.value))?;
        if rt.generation && spec_part(rt, &new) != spec_part(rt, &old.value) {
            let g = meta(&old.value, "generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        let schema = Self::hints(rt);
        let managed = match applied_entries {
            Some(mut entries) => {
                ssa::prune_entries(&mut entries, &new);
                entries
            }
            None => {
                let mut entries = old.managed.clone();
                let mut old_cmp = old.value.clone();
                if let Some(m) = old_cmp.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("managedFields");
                }
                ssa::record_update(
                    &mut entries,
                    Some(&old_cmp),
                    &new,
                    &schema,
                    &params.manager,
                    &rt.api_version(),
                    target.name(),
                    &now(),
                );
                entries
            }
        };
        // A write that changes nothing is not a write: no new resourceVersion, no event.
        if without_volatile(&new) == without_volatile(&old.value)
            && same_ownership(&managed, &old.managed)
        {
            return Ok(Reply {
                code: 200,
                body: present(rt, old.value),
                warnings,
            });
        }
        meta_mut(&mut new).insert("managedFields".into(), ssa::managed_fields_json(&managed));
        if params.dry_run {
            return Ok(Reply {
                code: 200,
                body: present(rt, new),
                warnings,
            });
        }
        let finished = is_deleting(&new) && finalizers(&new).is_empty() && !Self::is_namespace(rt);
        let typ = if finished {
            ChangeType::Deleted
        } else {
            ChangeType::Modified
        };
        // An update that empties the finalizers of an object being deleted is not stored: the
        // object is deleted as it was (the DELETED event and the answer show that last state,
        // finalizers included, as etcd's previous value does on the real server).
        let value = if finished { old.value.clone() } else { new };
        let stored = self.commit(key, typ, Stored { value, managed }, Some(old.value));
        if Self::is_crd(rt) {
            self.crd_changed(&stored, finished);
            if finished {
                self.drop_custom_objects(&stored);
            }
        }
        self.collect_garbage();
        Ok(Reply {
            code: 200,
            body: present(rt, stored),
            warnings,
        })
    }

    fn existing(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(ObjKey, Stored)> {
        let key = self.key(rt, ns, name);
        match self.objects.get(&key) {
            Some(s) => Ok((key, s.clone())),
            None => Err(ApiError::not_found(rt, name)),
        }
    }

    /// `PUT` of the main resource or of `/status`.
    pub fn update(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        body: Value,
        target: Target,
        params: &WriteParams,
    ) -> Result<Reply> {
        self.check_body(rt, ns, &body)?;
        if let Some(body_name) = meta_str(&body, "name") {
            if body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        let (key, old) = self.existing(rt, ns, name)?;
        match meta_str(&body, "resourceVersion").filter(|r| !r.is_empty()) {
            Some(rv) if Some(rv) != meta_str(&old.value, "resourceVersion") => {
                return Err(ApiError::stale(rt, name))
            }
            Some(_) => {}
            None if !rt.allow_unconditional_update => {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    &[FieldError::invalid(
                        "metadata.resourceVersion",
                        &json!("0x0"),
                        "must be specified for an update",
                    )],
                ))
            }
            None => {}
        }
        if let Some(uid) = meta_str(&body, "uid").filter(|u| !u.is_empty()) {
            let current = meta_str(&old.value, "uid").unwrap_or("");
            if uid != current {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current}"),
                ));
            }
        }
        self.finish_update(rt, key, old, body, &target, None, params)
    }

    /// `PATCH` of the main resource or of `/status`.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        target: Target,
        params: &WriteParams,
    ) -> Result<Reply> {
        if patch_type == PatchType::Apply {
            return self.apply(rt, ns, name, patch, target, params);
        }
        if params.force {
            return Err(ApiError::bad_request(
                "force is only allowed for apply patches",
            ));
        }
        let (key, old) = self.existing(rt, ns, name)?;
        let mut doc = old.value.clone();
        if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        match patch_type {
            PatchType::Merge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                ssa::merge_patch(&mut doc, &patch)
            }
            PatchType::Json if !patch.is_array() => {
                return Err(ApiError::bad_request(
                    "a JSON patch must be an array of operations",
                ))
            }
            PatchType::Json => {
                ssa::json_patch(&mut doc, &patch).map_err(|e| ApiError::new(422, "Invalid", e))?
            }
            PatchType::Strategic => {
                if rt.is_custom() {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                let hints = Self::hints(rt);
                ssa::strategic_merge(&mut doc, &patch, Some(&hints))
            }
            PatchType::Apply => unreachable!(),
        }
        if !doc.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        if meta_str(&doc, "name") != Some(name) {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        match meta_str(&doc, "resourceVersion") {
            Some(rv) if Some(rv) != meta_str(&old.value, "resourceVersion") => {
                return Err(ApiError::stale(rt, name))
            }
            _ => {}
        }
        if let Some(uid) = meta_str(&doc, "uid") {
            if Some(uid) != meta_str(&old.value, "uid") {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    "Precondition failed: UID in precondition does not match the object",
                ));
            }
        }
        self.finish_update(rt, key, old, doc, &target, None, params)
    }

    /// Server-side apply (`application/apply-patch+yaml`).
    fn apply(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        mut applied: Value,
        target: Target,
        params: &WriteParams,
    ) -> Result<Reply> {
        if !params.explicit_manager || params.manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
            ));
        }
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        let av = applied
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = applied
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if av.is_empty() || kind.is_empty() {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind must be set in the applied configuration",
            ));
        }
        self.check_body(rt, ns, &applied)?;
        match meta_str(&applied, "name") {
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            // As on the real server, the URL names the object when the configuration does not.
            None => {
                meta_mut(&mut applied).insert("name".into(), json!(name));
            }
        }
        let key = self.key(rt, ns, name);
        let old = self.objects.get(&key).cloned();
        if let (Some(rv), Some(old)) = (meta_str(&applied, "resourceVersion"), &old) {
            if Some(rv) != meta_str(&old.value, "resourceVersion") {
                return Err(ApiError::stale(rt, name));
            }
        }
        // Cut the applied configuration down to what this endpoint may change.
        {
            let m = meta_mut(&mut applied);
            for f in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            ] {
                m.remove(f);
            }
            m.retain(|_, v| !v.is_null());
        }
        match target {
            Target::Main if rt.status_subresource => {
                applied.as_object_mut().unwrap().remove("status");
            }
            Target::Status => {
                let status = applied.get("status").cloned();
                let mut scoped =
                    json!({"apiVersion": av, "kind": kind, "metadata": {"name": name}});
                if let Some(s) = status {
                    scoped["status"] = s;
                }
                applied = scoped;
            }
            Target::Main => {}
        }
        let mut warnings = Vec::new();
        schema::prune_metadata(&mut applied);
        if let Some(s) = &rt.schema {
            let removed = schema::prune(&mut applied, s);
            if !removed.is_empty() {
                match params.field_validation {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "failed to create typed patch object ({}/{}; {}): {}",
                            key.namespace,
                            name,
                            rt.api_version(),
                            removed
                                .iter()
                                .map(|p| format!(".{p}: field not declared in schema"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                    FieldValidation::Warn => {
                        warnings.extend(removed.iter().map(|p| format!("unknown field \"{p}\"")))
                    }
                    FieldValidation::Ignore => {}
                }
            }
        }
        let schema = Self::hints(rt);
        let time = now();
        let mut entries = old.as_ref().map(|o| o.managed.clone()).unwrap_or_default();
        let base = json!({"apiVersion": rt.storage_api_version(), "kind": rt.kind, "metadata": {"name": name}});
        let merged = ssa::apply(
            old.as_ref().map(|o| &o.value),
            base,
            &applied,
            &schema,
            &mut entries,
            &params.manager,
            &rt.api_version(),
            target.name(),
            params.force,
            &time,
        )
        .map_err(|conflicts| {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({
                        "reason": "FieldManagerConflict",
                        "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                        "field": ssa::path_string(&c.path),
                    })
                })
                .collect();
            let lines: Vec<String> = conflicts
                .iter()
                .map(|c| format!("- conflict with \"{}\" using {}: {}", c.manager, c.api_version, ssa::path_string(&c.path)))
                .collect();
            let message = if conflicts.len() == 1 {
                format!(
                    "Apply failed with 1 conflict: conflict with \"{}\" using {}: {}",
                    conflicts[0].manager,
                    conflicts[0].api_version,
                    ssa::path_string(&conflicts[0].path)
                )
            } else {
                format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
            };
            ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
        })?;
        match old {
            Some(old) => {
                let mut reply =
                    self.finish_update(rt, key, old, merged, &target, Some(entries), params)?;
                reply.warnings.extend(warnings);
                Ok(reply)
            }
            None => {
                if let Target::Status = target {
                    return Err(ApiError::not_found(rt, name));
                }
                let mut body = merged;
                self.check_namespace(rt, ns, name)?;
                self.normalize(rt, name, &mut body, params, &mut warnings)?;
                self.init_system_fields(rt, ns, name, &mut body);
                self.validate_object(rt, name, &body, None)?;
                ssa::prune_entries(&mut entries, &body);
                let reply = self.store_new(rt, key, body, entries, params.dry_run)?;
                Ok(Reply {
                    code: 201,
                    body: reply,
                    warnings,
                })
            }
        }
    }

    // ----- delete

    pub fn delete(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Reply> {
        let (key, old) = self.existing(rt, ns, name)?;
        if let Some(uid) = &opts.precondition_uid {
            let current = meta_str(&old.value, "uid").unwrap_or("");
            if uid != current {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {current}"),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            let current = meta_str(&old.value, "resourceVersion").unwrap_or("");
            if rv != current {
                return Err(ApiError::conflict(
                    rt,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {current}"),
                ));
            }
        }
        let (value, deleted_now) =
            self.delete_object(rt, key, old, opts.propagation.as_deref(), opts.dry_run);
        self.collect_garbage();
        if deleted_now && !rt.return_deleted_object {
            let uid = meta_str(&value, "uid").unwrap_or("").to_owned();
            return Ok(Reply::ok(
                200,
                json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": uid},
                }),
            ));
        }
        Ok(Reply::ok(200, present(rt, value)))
    }

    /// Delete one object: with finalizers (or a propagation that needs them) it is only
    /// marked (`deletionTimestamp`); without, it is removed. Returns its last state and whether
    /// it is gone.
    fn delete_object(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        old: Stored,
        propagation: Option<&str>,
        dry_run: bool,
    ) -> (Value, bool) {
        let mut new = old.value.clone();
        let mut fins = finalizers(&new);
        match propagation {
            Some("Orphan") if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
            Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.push("foregroundDeletion".into())
            }
            _ => {}
        }
        let is_ns = Self::is_namespace(rt);
        if fins.is_empty() && !is_ns {
            if dry_run {
                return (new, true);
            }
            let value = self.commit(
                key.clone(),
                ChangeType::Deleted,
                old.clone(),
                Some(old.value),
            );
            if Self::is_crd(rt) {
                self.crd_changed(&value, true);
                self.drop_custom_objects(&value);
            }
            return (value, true);
        }
        if is_deleting(&old.value) && fins == finalizers(&old.value) {
            return (old.value, false);
        }
        set_finalizers(&mut new, &fins);
        {
            let m = meta_mut(&mut new);
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(g) = m.get("generation").and_then(Value::as_i64) {
                    m.insert("generation".into(), json!(g + 1));
                }
            }
        }
        if is_ns {
            new["status"] = json!({"phase": "Terminating"});
        }
        if dry_run {
            return (new, false);
        }
        let stored = Stored {
            value: new,
            managed: old.managed.clone(),
        };
        (
            self.commit(key, ChangeType::Modified, stored, Some(old.value)),
            false,
        )
    }

    pub fn delete_collection(
        &mut self,
        rt: &Arc<ResourceType>,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOptions,
    ) -> Result<Reply> {
        let keys: Vec<ObjKey> = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.resource == rt.plural)
            .filter(|(k, _)| !rt.namespaced || ns.is_none_or(|n| k.namespace == n))
            .filter(|(_, s)| labels.matches(&s.value) && fields.matches(&s.value))
            .map(|(k, _)| k.clone())
            .collect();
        let mut items = Vec::new();
        for key in keys {
            if let Some(old) = self.objects.get(&key).cloned() {
                let (v, _) =
                    self.delete_object(rt, key, old, opts.propagation.as_deref(), opts.dry_run);
                items.push(present(rt, v));
            }
        }
        self.collect_garbage();
        Ok(Reply::ok(
            200,
            json!({
                "apiVersion": rt.api_version(),
                "kind": format!("{}List", rt.kind),
                "metadata": {"resourceVersion": self.rv.to_string()},
                "items": items,
            }),
        ))
    }

    /// A removed CRD takes its custom objects with it.
    fn drop_custom_objects(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let keys: Vec<ObjKey> = self
            .objects
            .keys()
            .filter(|k| k.group == group && k.resource == plural)
            .cloned()
            .collect();
        for key in keys {
            if let Some(old) = self.objects.get(&key).cloned() {
                self.commit(key, ChangeType::Deleted, old.clone(), Some(old.value));
            }
        }
    }

    // ----- garbage collection

    /// What the garbage collector and namespace controller do, run to a fixed point after
    /// every write: delete objects all of whose owners are gone (background propagation),
    /// finish foreground and orphan deletions, empty and remove terminating namespaces.
    pub fn collect_garbage(&mut self) {
        if !self.gc_pending {
            return;
        }
        for _ in 0..1000 {
            if !self.gc_step() {
                self.gc_pending = false;
                return;
            }
        }
    }

    fn mark_or_remove(&mut self, key: &ObjKey) -> bool {
        let Some(old) = self.objects.get(key).cloned() else {
            return false;
        };
        if is_deleting(&old.value) {
            return false;
        }
        let Some(rt) = self.registry.find_any_version(&key.group, &key.resource) else {
            let value = old.value.clone();
            self.commit(key.clone(), ChangeType::Deleted, old, Some(value));
            return true;
        };
        self.delete_object(&rt, key.clone(), old, None, false);
        true
    }

    fn set_meta_and_commit(&mut self, key: &ObjKey, f: impl FnOnce(&mut Value)) -> bool {
        let Some(old) = self.objects.get(key).cloned() else {
            return false;
        };
        let mut new = old.value.clone();
        f(&mut new);
        if new == old.value {
            return false;
        }
        let finished =
            is_deleting(&new) && finalizers(&new).is_empty() && key.resource != "namespaces";
        let typ = if finished {
            ChangeType::Deleted
        } else {
            ChangeType::Modified
        };
        let value = if finished { old.value.clone() } else { new };
        self.commit(
            key.clone(),
            typ,
            Stored {
                value,
                managed: old.managed,
            },
            Some(old.value),
        );
        true
    }

    fn gc_step(&mut self) -> bool {
        let uids = self.uids();
        let by_uid: BTreeMap<String, ObjKey> = self
            .objects
            .iter()
            .filter_map(|(k, s)| meta_str(&s.value, "uid").map(|u| (u.to_owned(), k.clone())))
            .collect();
        // Dependents.
        let dependents: Vec<(ObjKey, Vec<String>)> = self
            .objects
            .iter()
            .filter_map(|(k, s)| {
                let refs = meta(&s.value, "ownerReferences").and_then(Value::as_array)?;
                let uids: Vec<String> = refs
                    .iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                (!uids.is_empty()).then(|| (k.clone(), uids))
            })
            .collect();
        for (key, owner_uids) in dependents {
            let all_gone = owner_uids.iter().all(|u| !uids.contains(u));
            let owner_in_foreground = owner_uids.iter().any(|u| {
                by_uid
                    .get(u)
                    .and_then(|k| self.objects.get(k))
                    .is_some_and(|o| {
                        is_deleting(&o.value)
                            && finalizers(&o.value)
                                .iter()
                                .any(|f| f == "foregroundDeletion")
                    })
            });
            if (all_gone || owner_in_foreground) && self.mark_or_remove(&key) {
                return true;
            }
        }
        // Owners being deleted with the orphan / foregroundDeletion finalizers.
        let deleting: Vec<(ObjKey, Stored)> = self
            .objects
            .iter()
            .filter(|(_, s)| is_deleting(&s.value))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (key, s) in deleting {
            let uid = meta_str(&s.value, "uid").unwrap_or("").to_owned();
            let fins = finalizers(&s.value);
            let dependents: Vec<ObjKey> = self
                .objects
                .iter()
                .filter(|(_, d)| {
                    meta(&d.value, "ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter()
                                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                        })
                })
                .map(|(k, _)| k.clone())
                .collect();
            if fins.iter().any(|f| f == "orphan") {
                for d in &dependents {
                    let uid = uid.clone();
                    self.set_meta_and_commit(d, |v| {
                        let m = meta_mut(v);
                        if let Some(refs) =
                            m.get_mut("ownerReferences").and_then(Value::as_array_mut)
                        {
                            refs.retain(|r| {
                                r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                            });
                            if refs.is_empty() {
                                m.remove("ownerReferences");
                            }
                        }
                    });
                }
                return self.set_meta_and_commit(&key, |v| {
                    let rest: Vec<String> = finalizers(v)
                        .into_iter()
                        .filter(|f| f != "orphan")
                        .collect();
                    set_finalizers(v, &rest);
                });
            }
            if fins.iter().any(|f| f == "foregroundDeletion") && dependents.is_empty() {
                return self.set_meta_and_commit(&key, |v| {
                    let rest: Vec<String> = finalizers(v)
                        .into_iter()
                        .filter(|f| f != "foregroundDeletion")
                        .collect();
                    set_finalizers(v, &rest);
                });
            }
        }
        // Terminating namespaces.
        let terminating: Vec<(ObjKey, Stored)> = self
            .objects
            .iter()
            .filter(|(k, s)| {
                k.group.is_empty() && k.resource == "namespaces" && is_deleting(&s.value)
            })
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        for (key, s) in terminating {
            let content: Vec<ObjKey> = self
                .objects
                .keys()
                .filter(|k| k.namespace == key.name && !k.namespace.is_empty())
                .cloned()
                .collect();
            let mut progressed = false;
            for k in &content {
                progressed |= self.mark_or_remove(k);
            }
            if progressed {
                return true;
            }
            if content.is_empty() {
                if finalizers(&s.value).is_empty() {
                    let value = s.value.clone();
                    self.commit(key, ChangeType::Deleted, s, Some(value));
                    return true;
                }
                let had_spec = s
                    .value
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                if had_spec {
                    return self.set_meta_and_commit(&key, |v| {
                        v["spec"] = json!({});
                    });
                }
            }
        }
        false
    }
}
