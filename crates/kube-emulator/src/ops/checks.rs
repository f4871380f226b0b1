//! What every write goes through: keys, the namespace and body checks, pruning and defaulting,
//! validation (schema, CEL, names, finalizers, CRDs), and serving a stored or removed CRD's kinds.

use serde_json::{json, Value};

use super::object::{finalizers, is_deleting, meta_str, name_errors};
use super::{ApiError, FieldValidation, Result, WriteParams};
use crate::registry::{types_from_crd, ResourceType};
use crate::schema::{self, FieldError};
use crate::ssa;
use crate::store::{ObjKey, State};

impl State {
    pub(super) fn key(&self, rt: &ResourceType, ns: Option<&str>, name: &str) -> ObjKey {
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

    pub(super) fn check_namespace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<()> {
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
    pub(super) fn check_body(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        body: &Value,
    ) -> Result<()> {
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

    pub(super) fn hints(rt: &ResourceType) -> Value {
        ssa::effective_schema(&rt.hints)
    }

    /// Prune, default, and (for custom resources) validate a new object state.
    pub(super) fn normalize(
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

    pub(super) fn validate_object(
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
    pub(super) fn crd_changed(&mut self, crd: &Value, removed: bool) {
        let name = meta_str(crd, "name").unwrap_or("").to_owned();
        if removed {
            self.registry.remove_crd(&name);
        } else if let Ok(types) = types_from_crd(crd) {
            self.registry.set_crd_types(&name, types);
        }
    }

    pub(super) fn is_crd(rt: &ResourceType) -> bool {
        rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
    }

    pub(super) fn is_namespace(rt: &ResourceType) -> bool {
        rt.group.is_empty() && rt.plural == "namespaces"
    }
}
