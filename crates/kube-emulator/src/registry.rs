//! The kinds the server serves: the built-in ones, and those registered by a
//! `CustomResourceDefinition`. Also the discovery documents built from them.

use std::sync::Arc;

use serde_json::{json, Map, Value};

/// One served resource at one version (`group/version/plural`).
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// The kind has a `/status` subresource: writes to the main resource ignore `.status`,
    /// writes to `/status` change only `.status`.
    pub status_subresource: bool,
    /// `metadata.generation` is kept (starts at 1, bumps on changes outside metadata/status).
    pub generation: bool,
    /// The `openAPIV3Schema` objects are validated against (custom resources only).
    pub schema: Option<Value>,
    /// What server-side apply and strategic merge read list and map types from: the
    /// validation schema for custom resources, a small hand-written one for built-ins.
    pub hints: Value,
    /// `PUT` without `metadata.resourceVersion` is allowed (built-ins) or refused (custom).
    pub allow_unconditional_update: bool,
    /// Field selector paths beyond `metadata.name` / `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// The CRD that registered this kind (`None` for built-ins).
    pub crd: Option<String>,
    /// The version objects of this kind are stored at (their `apiVersion` in history).
    pub storage_version: String,
    /// `DELETE` answers with the deleted object (true) or with a `Status` (false).
    pub return_deleted_object: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn storage_api_version(&self) -> String {
        if self.group.is_empty() {
            self.storage_version.clone()
        } else {
            format!("{}/{}", self.group, self.storage_version)
        }
    }

    /// `plural.group` (or `plural` in the core group), as the API server names a resource in
    /// messages: `kafkatopics.tributary.io "t1" not found`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group`, as validation messages name a kind: `KafkaTopic.tributary.io "t1" is invalid`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

/// Every served resource type.
#[derive(Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        Registry {
            types: builtins().into_iter().map(Arc::new).collect(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Any served version of `group/plural` (used for objects of other versions).
    pub fn find_any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
    }

    /// Replace every type registered by the CRD `crd_name` with `types`.
    pub fn set_crd_types(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
        self.types.extend(types.into_iter().map(Arc::new));
    }

    pub fn remove_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
    }

    /// Groups in first-registered order, each with its versions in order.
    fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => groups.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| compare_versions(b, a));
        }
        groups
    }

    fn group_entry(group: &str, versions: &[String]) -> Value {
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": versions,
            "preferredVersion": versions[0],
        })
    }

    /// `GET /api`.
    pub fn core_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    /// `GET /apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .iter()
            .map(|(g, vs)| Self::group_entry(g, vs))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/GROUP`.
    pub fn group(&self, group: &str) -> Option<Value> {
        let groups = self.groups();
        let (g, vs) = groups.iter().find(|(g, _)| g == group)?;
        let mut entry = Self::group_entry(g, vs);
        entry["kind"] = json!("APIGroup");
        entry["apiVersion"] = json!("v1");
        Some(entry)
    }

    /// `GET /api/v1` or `GET /apis/GROUP/VERSION`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let types: Vec<&Arc<ResourceType>> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if types.is_empty() {
            return None;
        }
        let mut resources = Vec::new();
        for t in types {
            let mut r = json!({
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            });
            if !t.short_names.is_empty() {
                r["shortNames"] = json!(t.short_names);
            }
            if !t.categories.is_empty() {
                r["categories"] = json!(t.categories);
            }
            resources.push(r);
            if t.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) for `/api`
    /// (core) or `/apis` (every other group).
    pub fn aggregated(&self, core: bool) -> Value {
        let groups: Vec<(String, Vec<String>)> = if core {
            vec![(String::new(), vec!["v1".to_owned()])]
        } else {
            self.groups()
        };
        let items: Vec<Value> = groups
            .iter()
            .map(|(g, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = self
                            .types
                            .iter()
                            .filter(|t| t.group == *g && t.version == *v)
                            .map(|t| {
                                let mut r = json!({
                                    "resource": t.plural,
                                    "responseKind": {"group": g, "version": v, "kind": t.kind},
                                    "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                    "singularResource": t.singular,
                                    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                });
                                if !t.short_names.is_empty() {
                                    r["shortNames"] = json!(t.short_names);
                                }
                                if !t.categories.is_empty() {
                                    r["categories"] = json!(t.categories);
                                }
                                if t.status_subresource {
                                    r["subresources"] = json!([{
                                        "subresource": "status",
                                        "responseKind": {"group": g, "version": v, "kind": t.kind},
                                        "verbs": ["get", "patch", "update"],
                                    }]);
                                }
                                r
                            })
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g}, "versions": versions})
            })
            .collect();
        json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        })
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (u8, u64, u64) {
        let rest = v.strip_prefix('v').unwrap_or(v);
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: u64 = match digits.parse() {
            Ok(n) => n,
            Err(_) => return (0, 0, 0),
        };
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return (3, major, 0);
        }
        for (prefix, rank) in [("beta", 2), ("alpha", 1)] {
            if let Some(n) = tail.strip_prefix(prefix) {
                if let Ok(n) = n.parse() {
                    return (rank, major, n);
                }
            }
        }
        (0, 0, 0)
    }
    key(a).cmp(&key(b)).then_with(|| b.cmp(a))
}

/// `metadata` as server-side apply sees it: labels and annotations are granular maps,
/// finalizers a set, ownerReferences a map keyed by uid.
pub fn metadata_hints() -> Value {
    json!({
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "ownerReferences": {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["uid"],
            },
        },
    })
}

fn keyed(keys: &[&str]) -> Value {
    json!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": keys,
    })
}

/// List types of the built-ins' most used lists, from their Go struct tags.
fn builtin_hints(kind: &str) -> Value {
    let conditions = json!({"properties": {"conditions": keyed(&["type"])}, "x-kubernetes-preserve-unknown-fields": true});
    let containers = json!({
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"env": keyed(&["name"]), "ports": keyed(&["containerPort", "protocol"]), "volumeMounts": keyed(&["mountPath"])},
        },
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    });
    let pod_spec = json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"containers": containers, "initContainers": containers, "volumes": keyed(&["name"])},
    });
    let spec = match kind {
        "Pod" => pod_spec,
        "Deployment" => json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"template": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"spec": pod_spec}}},
        }),
        "Service" => json!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"ports": keyed(&["port", "protocol"])},
        }),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"spec": spec, "status": conditions},
    })
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short_names: &[&str],
    status_subresource: bool,
    generation: bool,
    selectable_fields: &[&str],
    return_deleted_object: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        status_subresource,
        generation,
        schema: None,
        hints: builtin_hints(kind),
        allow_unconditional_update: true,
        selectable_fields: selectable_fields.iter().map(|s| s.to_string()).collect(),
        crd: None,
        storage_version: version.into(),
        return_deleted_object,
    }
}

fn builtins() -> Vec<ResourceType> {
    let core_event_fields = [
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    let events_fields = [
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    ];
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        true,
        true,
        &[],
        true,
    );
    crd.categories = vec!["api-extensions".into()];
    vec![
        builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            true,
            false,
            &["status.phase"],
            true,
        ),
        builtin(
            "",
            "v1",
            "Secret",
            "secrets",
            true,
            &[],
            false,
            false,
            &["type"],
            false,
        ),
        builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            false,
            &[],
            false,
        ),
        builtin(
            "",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            false,
            &core_event_fields,
            false,
        ),
        builtin(
            "",
            "v1",
            "Service",
            "services",
            true,
            &["svc"],
            true,
            false,
            &[],
            true,
        ),
        builtin(
            "",
            "v1",
            "Pod",
            "pods",
            true,
            &["po"],
            true,
            true,
            &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            true,
        ),
        builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            true,
            &[],
            false,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            false,
            &events_fields,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
            false,
            &[],
            false,
        ),
        crd,
    ]
}

/// The resource types a CRD serves (one per served version), or an error message for an
/// invalid CRD.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let names = spec.get("names").cloned().unwrap_or(Value::Null);
    let plural = names.get("plural").and_then(Value::as_str).unwrap_or("");
    let kind = names.get("kind").and_then(Value::as_str).unwrap_or("");
    if group.is_empty() {
        errors.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errors.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errors.push(("spec.names.kind".into(), "Required value".into()));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = spec.get("scope").and_then(Value::as_str).unwrap_or("");
    if scope != "Namespaced" && scope != "Cluster" {
        errors.push((
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errors.push((
            "spec.versions".into(),
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage: Vec<&Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let storage_version = storage[0]
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let str_list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut types = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .or_else(|| spec.pointer("/validation/openAPIV3Schema"))
            .cloned();
        let schema = match schema {
            Some(s) => s,
            None => {
                errors.push((
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    "Required value: schemas are required".into(),
                ));
                continue;
            }
        };
        let status_subresource = v.pointer("/subresources/status").is_some()
            || spec.pointer("/subresources/status").is_some();
        let selectable_fields = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| p.trim_start_matches('.').to_owned())
                    .collect()
            })
            .unwrap_or_default();
        types.push(ResourceType {
            group: group.into(),
            version,
            kind: kind.into(),
            plural: plural.into(),
            singular: names
                .get("singular")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| kind.to_lowercase()),
            namespaced: scope == "Namespaced",
            short_names: str_list(names.get("shortNames")),
            categories: str_list(names.get("categories")),
            status_subresource,
            generation: true,
            hints: schema.clone(),
            schema: Some(schema),
            allow_unconditional_update: false,
            selectable_fields,
            crd: Some(name.to_owned()),
            storage_version: storage_version.clone(),
            return_deleted_object: true,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(types)
}

/// The status a CRD gets when it is accepted: established, names accepted.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = Map::new();
    if let Some(obj) = names.as_object() {
        accepted = obj.clone();
    }
    if !accepted.contains_key("singular") {
        if let Some(kind) = names.get("kind").and_then(Value::as_str) {
            accepted.insert("singular".into(), json!(kind.to_lowercase()));
        }
    }
    if !accepted.contains_key("listKind") {
        if let Some(kind) = names.get("kind").and_then(Value::as_str) {
            accepted.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored_versions: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in stored {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored_versions,
    })
}
