//! What `tributary render` and `tributary graph` print for a validated set of manifests.

use std::fmt::Write as _;

use serde::Serialize;

use crate::manifest::{Resource, ValidatedSet};
use crate::topologies::graph::Graph;
use crate::topologies::graph_of;

/// Everything in the manifests drawn as one graph, titled with the topology's name when there
/// is exactly one.
pub fn manifest_graph(set: &ValidatedSet) -> Graph {
    let title = match set.topologies.as_slice() {
        [(_, only)] => only.name.clone(),
        _ => "tributary".to_owned(),
    };
    let resources = set.documents.iter().map(|d| &d.resource);
    let topics = resources.clone().filter_map(|r| match r {
        Resource::Topic(t) => Some(&**t),
        _ => None,
    });
    let producers = resources.clone().filter_map(|r| match r {
        Resource::Producer(p) => Some(&**p),
        _ => None,
    });
    let consumers = resources.filter_map(|r| match r {
        Resource::Consumer(c) => Some(&**c),
        _ => None,
    });
    graph_of(&title, topics, producers, consumers)
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
        assert_eq!(manifest_graph(&set), set.topologies[0].1.graph());
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
