//! Server-side apply: the applied configuration cut to the endpoint, pruned, merged by field
//! ownership (409 on conflicts unless forced), creating a missing object.

use std::sync::Arc;

use serde_json::{json, Value};

use super::object::{meta_mut, meta_str};
use super::{ApiError, FieldValidation, Reply, Result, Target, WriteParams};
use crate::registry::ResourceType;
use crate::schema;
use crate::ssa;
use crate::store::{now, State};

impl State {
    /// Server-side apply (`application/apply-patch+yaml`).
    pub(super) fn apply(
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
}
