//! Create: `generateName`, system fields, the first `Update` ownership entry, a CRD's status.

use std::sync::Arc;

use serde_json::{json, Value};

use super::object::{meta_mut, meta_str, present};
use super::{ApiError, Reply, Result, WriteParams};
use crate::registry::{crd_status, ResourceType};
use crate::schema::FieldError;
use crate::ssa::{self, ManagedEntry};
use crate::store::{new_uid, now, random_suffix, ChangeType, ObjKey, State, Stored};

impl State {
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

    pub(super) fn init_system_fields(
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
    pub(super) fn store_new(
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
}
