//! Delete and delete-collection: preconditions, finalizers and propagation (`Orphan`,
//! `Foreground`, `Background`), a CRD's objects going with it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::object::{finalizers, is_deleting, meta_mut, meta_str, present, set_finalizers};
use super::{ApiError, DeleteOptions, Reply, Result};
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{now, ChangeType, ObjKey, State, Stored};

impl State {
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
    pub(super) fn delete_object(
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
    pub(super) fn drop_custom_objects(&mut self, crd: &Value) {
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
}
