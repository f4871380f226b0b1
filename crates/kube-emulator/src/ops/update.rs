//! Writes to an existing object: `PUT`, the patch types and what every one of them (server-side
//! apply included) finishes with: subresource rules, generation, managedFields, no-op detection,
//! the last finalizer's removal.

use std::sync::Arc;

use serde_json::{json, Value};

use super::object::{
    finalizers, is_deleting, meta, meta_mut, meta_str, present, same_ownership, spec_part,
    without_volatile, SYSTEM_META,
};
use super::{ApiError, PatchType, Reply, Result, Target, WriteParams};
use crate::patch;
use crate::registry::{crd_status, ResourceType};
use crate::schema::FieldError;
use crate::ssa::{self, ManagedEntry};
use crate::store::{now, ChangeType, ObjKey, State, Stored};

impl State {
    /// Finish a write to an existing object: subresource rules, system metadata, pruning,
    /// defaulting, validation, generation, managedFields, no-op detection, commit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_update(
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

    pub(super) fn existing(
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
                patch::merge_patch(&mut doc, &patch)
            }
            PatchType::Json if !patch.is_array() => {
                return Err(ApiError::bad_request(
                    "a JSON patch must be an array of operations",
                ))
            }
            PatchType::Json => {
                patch::json_patch(&mut doc, &patch).map_err(|e| ApiError::new(422, "Invalid", e))?
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
                patch::strategic_merge(&mut doc, &patch, Some(&hints))
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
}
