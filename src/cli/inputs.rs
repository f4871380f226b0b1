//! Doubts about the CLI's input as a whole, which no single document shows: a path that holds
//! no manifest, and a `clusterRef` that names a `KafkaCluster` the manifests declare in another
//! namespace (a reference resolves in its own namespace only, as in the operator).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::api::KafkaCluster;
use crate::manifest::{Document, ManifestWarning, Source, ValidatedSet};

/// A warning for each path given that yielded no document: an empty file, a file of empty
/// documents, a directory without `*.yaml` / `*.yml` files. Such input would otherwise
/// validate as "valid: 0 …" and plan nothing, silently.
pub fn empty_paths(paths: &[PathBuf], docs: &[Document]) -> Vec<ManifestWarning> {
    paths
        .iter()
        .filter(|p| !docs.iter().any(|d| d.source.file.starts_with(p)))
        .map(|p| {
            let message = if p.is_dir() {
                "holds no manifest (no *.yaml or *.yml file with a document): nothing to check"
            } else {
                "holds no manifest (the file has no document): nothing to check"
            };
            ManifestWarning {
                file: p.clone(),
                document: None,
                path: String::new(),
                message: message.to_owned(),
            }
        })
        .collect()
}

/// How a namespace reads in a message.
pub fn namespace_text(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("namespace '{ns}'"),
        None => "no namespace".to_owned(),
    }
}

/// The `KafkaCluster`s named `cluster_ref` that the manifests declare outside `namespace`.
pub fn clusters_elsewhere<'a>(
    set: &'a ValidatedSet,
    namespace: Option<&str>,
    cluster_ref: &str,
) -> Vec<&'a (Source, KafkaCluster)> {
    set.clusters
        .iter()
        .filter(|(_, c)| {
            c.metadata.name.as_deref() == Some(cluster_ref)
                && c.metadata.namespace.as_deref() != namespace
        })
        .collect()
}

/// Why `clusterRef: cluster_ref` in `namespace` finds no cluster although the manifests hold
/// one of that name elsewhere; `None` when they hold none at all.
pub fn elsewhere_text(
    set: &ValidatedSet,
    namespace: Option<&str>,
    cluster_ref: &str,
) -> Option<String> {
    let others = clusters_elsewhere(set, namespace, cluster_ref);
    if others.is_empty() {
        return None;
    }
    let places: Vec<String> = others
        .iter()
        .map(|(source, c)| {
            format!(
                "{} ({source})",
                namespace_text(c.metadata.namespace.as_deref())
            )
        })
        .collect();
    Some(format!(
        "KafkaCluster '{cluster_ref}' is declared in {}, not in {}, where this clusterRef looks: a clusterRef names a KafkaCluster of its own namespace; put both in one namespace",
        places.join(" and "),
        namespace_text(namespace)
    ))
}

/// A warning for every resource whose `clusterRef` misses its namespace's clusters but names
/// one the manifests declare in another namespace (once per document: a topology's children
/// share their topology's).
pub fn misplaced_cluster_refs(set: &ValidatedSet) -> Vec<ManifestWarning> {
    let refs = set
        .topics
        .iter()
        .map(|t| (&t.source, t.namespace.as_deref(), t.cluster_ref.as_str()))
        .chain(
            set.consumers
                .iter()
                .map(|(s, c)| (s, c.owner.namespace.as_deref(), c.cluster_ref.as_str())),
        )
        .chain(
            set.producers
                .iter()
                .map(|(s, p)| (s, p.owner.namespace.as_deref(), p.cluster_ref.as_str())),
        );
    let mut seen = BTreeSet::new();
    let mut warnings = Vec::new();
    for (source, namespace, cluster_ref) in refs {
        let here = set.clusters.iter().any(|(_, c)| {
            c.metadata.name.as_deref() == Some(cluster_ref)
                && c.metadata.namespace.as_deref() == namespace
        });
        if here || !seen.insert(source.clone()) {
            continue;
        }
        if let Some(why) = elsewhere_text(set, namespace, cluster_ref) {
            warnings.push(ManifestWarning {
                file: source.file.clone(),
                document: Some(source.document),
                path: "spec.clusterRef".to_owned(),
                message: why,
            });
        }
    }
    warnings
}
