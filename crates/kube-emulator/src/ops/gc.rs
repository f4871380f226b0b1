//! The garbage collector and namespace controller, run to a fixed point after every write.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::object::{finalizers, is_deleting, meta, meta_mut, meta_str, set_finalizers};
use crate::store::{ChangeType, ObjKey, State, Stored};

impl State {
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

    pub(super) fn mark_or_remove(&mut self, key: &ObjKey) -> bool {
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

    pub(super) fn set_meta_and_commit(&mut self, key: &ObjKey, f: impl FnOnce(&mut Value)) -> bool {
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

    pub(super) fn gc_step(&mut self) -> bool {
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
