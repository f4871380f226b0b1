//! What `tributary render` and `tributary graph` print for a validated set of manifests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::api::{KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::manifest::{Resource, ValidatedSet};
use crate::topologies::graph::{render_grouped, Format, Graph};
use crate::topologies::graph_of;

/// What `tributary graph` draws: one graph, or one per cluster.
pub enum Drawing {
    /// Every resource names one cluster (of one namespace): one graph, titled with the
    /// topology's name when there is exactly one.
    One(Graph),
    /// Resources of several clusters (or of one cluster name in several namespaces, which are
    /// different clusters): a graph per cluster, each headed by its cluster and namespace,
    /// under a title that names none of them.
    PerCluster { title: String, groups: Vec<Graph> },
}

impl Drawing {
    pub fn render(&self, format: Format) -> String {
        match self {
            Drawing::One(graph) => graph.render(format),
            Drawing::PerCluster { title, groups } => render_grouped(title, groups, format),
        }
    }
}

/// Everything in the manifests, drawn per cluster: a resource belongs to the `clusterRef` of
/// its namespace.
pub fn manifest_graph(set: &ValidatedSet) -> Drawing {
    type Key = (Option<String>, String);
    let mut groups: BTreeMap<Key, (Vec<&KafkaTopic>, Vec<&KafkaProducer>, Vec<&KafkaConsumer>)> =
        BTreeMap::new();
    for document in &set.documents {
        let meta = document.resource.metadata();
        let key = |cluster_ref: &str| (meta.namespace.clone(), cluster_ref.to_owned());
        match &document.resource {
            Resource::Topic(t) => groups
                .entry(key(&t.spec.cluster_ref))
                .or_default()
                .0
                .push(t),
            Resource::Producer(p) => groups
                .entry(key(&p.spec.cluster_ref))
                .or_default()
                .1
                .push(p),
            Resource::Consumer(c) => groups
                .entry(key(&c.spec.cluster_ref))
                .or_default()
                .2
                .push(c),
            Resource::Cluster(_) | Resource::Topology(_) => {}
        }
    }
    if groups.len() <= 1 {
        let title = match set.topologies.as_slice() {
            [(_, only)] => only.name.clone(),
            _ => "tributary".to_owned(),
        };
        let (topics, producers, consumers) = groups.into_values().next().unwrap_or_default();
        return Drawing::One(graph_of(&title, topics, producers, consumers));
    }
    let title = format!("tributary: {} clusters", groups.len());
    let groups = groups
        .into_iter()
        .map(|((namespace, cluster), (topics, producers, consumers))| {
            let heading = match namespace {
                Some(ns) => format!("cluster {cluster} · namespace {ns}"),
                None => format!("cluster {cluster}"),
            };
            graph_of(&heading, topics, producers, consumers)
        })
        .collect();
    Drawing::PerCluster { title, groups }
}

/// The objects the operator would create for the topologies among the manifests, as a YAML
/// stream: every topology's children, exactly as the StreamTopology controller applies them
/// (owner references appear only on objects made from a topology read from a cluster, so
/// nothing here carries one). The Deployments and Services of those children are made later by
/// the consumer and producer controllers, owned by the children, and are not part of this.
pub fn render_yaml(set: &ValidatedSet) -> String {
    let mut out = String::new();
    for (source, expansion) in &set.topologies {
        let _ = writeln!(out, "# StreamTopology {} ({source})", expansion.name);
        for t in &expansion.topics {
            push(&mut out, t);
        }
        for p in &expansion.producers {
            push(&mut out, p);
        }
        for c in &expansion.consumers {
            push(&mut out, c);
        }
    }
    out
}

/// Appends one YAML document.
fn push<T: Serialize>(out: &mut String, object: &T) {
    out.push_str("---\n");
    out.push_str(&serde_saphyr::to_string(object).expect("Kubernetes objects serialize"));
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::topologies::tests::{check_set, TOPOLOGY};

    #[test]
    fn the_manifest_graph_is_the_topology_graph() {
        let set = check_set(TOPOLOGY).unwrap();
        let Drawing::One(graph) = manifest_graph(&set) else {
            panic!("one cluster, one graph")
        };
        assert_eq!(graph, set.topologies[0].1.graph());
    }

    fn golden(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name)
    }

    /// The expansion, byte for byte (`UPDATE_GOLDEN=1 cargo test --lib output` rewrites it).
    #[test]
    fn expansion_golden() {
        let set = check_set(TOPOLOGY).unwrap();
        let rendered = render_yaml(&set);
        let path = golden("topology-rides.yaml");
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::write(&path, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            rendered == expected,
            "{} differs from the expansion; if intended, run `UPDATE_GOLDEN=1 cargo test --lib output` and review\n{rendered}",
            path.display()
        );
    }
}
