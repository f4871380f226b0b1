//! What `tributary render` and `tributary graph` print for a validated set of manifests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::api::{KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::manifest::{Resource, Source, ValidatedSet};
use crate::topologies::graph::{render_grouped, Format, Graph};
use crate::topologies::graph_of;
use crate::workloads::{
    consumer_deployment, producer_deployment, producer_service, topic_names, ConnectionFacts,
    Owner, Scaling, TopicNames,
};

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
    type Members<'a> = (
        Vec<&'a KafkaTopic>,
        Vec<&'a KafkaProducer>,
        Vec<&'a KafkaConsumer>,
    );
    let mut groups: BTreeMap<Key, Members<'_>> = BTreeMap::new();
    for document in &set.documents {
        let meta = document.resource.metadata();
        let key = |cluster_ref: &str| (meta.namespace.clone(), cluster_ref.to_owned());
        match &document.resource {
            Resource::Topic(t) => groups
                .entry(key(&t.spec.cluster_ref))
                .or_default()
                .0
                .push(&**t),
            Resource::Producer(p) => groups
                .entry(key(&p.spec.cluster_ref))
                .or_default()
                .1
                .push(&**p),
            Resource::Consumer(c) => groups
                .entry(key(&c.spec.cluster_ref))
                .or_default()
                .2
                .push(&**c),
            Resource::Cluster(_)
            | Resource::Topology(_)
            | Resource::User(_)
            | Resource::OffsetReset(_) => {}
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

/// How far `render` follows what the operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// What the StreamTopology controller makes: every topology's KafkaTopics,
    /// KafkaProducers and KafkaConsumers.
    Children,
    /// Also what the consumer and producer controllers make of every consumer and producer,
    /// a topology's or standalone: their Deployments and Services.
    Workloads,
}

impl Depth {
    /// `--depth N`: 1 is [`Depth::Children`], 2 or more everything.
    pub fn from_level(level: u8) -> Self {
        if level <= 1 {
            Depth::Children
        } else {
            Depth::Workloads
        }
    }
}

/// Placeholder uid for rendering: the renderer needs an owner uid (the controllers always have
/// one); the owner references it ends up in are removed before printing.
const PREVIEW_UID: &str = "00000000-0000-0000-0000-000000000000";

/// The objects the operator would create for the manifests, as a YAML stream, and notes on
/// what could not be rendered (for standard error).
///
/// Every topology's children, exactly as the StreamTopology controller applies them; with
/// [`Depth::Workloads`], after each topology its consumers' and producers' Deployments and
/// Services, then those of the standalone consumers and producers, made by the very functions
/// the consumer and producer controllers call (`workloads::render`), with the connection of
/// the KafkaCluster the manifests declare. Differences from a live cluster, by necessity:
/// no object carries an owner reference (they need the uid the API server assigns), and an
/// autoscaled consumer is shown at `minReplicas` (where the autoscaler starts without lag).
pub fn render_yaml(set: &ValidatedSet, depth: Depth) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut notes = Vec::new();
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
        if depth == Depth::Workloads {
            render_workloads(set, |s| s == source, &mut out, &mut notes);
        }
    }
    if depth == Depth::Workloads {
        let standalone = |s: &Source| !set.topologies.iter().any(|(t, _)| t == s);
        let mut objects = String::new();
        render_workloads(set, standalone, &mut objects, &mut notes);
        if !objects.is_empty() {
            out.push_str("# KafkaProducers and KafkaConsumers\n");
            out.push_str(&objects);
        }
    }
    (out, notes)
}

/// The Deployments (and Services) of the producers and consumers from sources that `take`.
fn render_workloads(
    set: &ValidatedSet,
    take: impl Fn(&Source) -> bool,
    out: &mut String,
    notes: &mut Vec<String>,
) {
    for (source, producer) in set.producers.iter().filter(|(s, _)| take(s)) {
        let mut producer = producer.clone();
        producer.owner.uid = Some(PREVIEW_UID.to_owned());
        let Some((facts, names)) =
            connection(set, source, &producer.owner, &producer.cluster_ref, notes)
        else {
            continue;
        };
        let rendered = producer_deployment(&producer, &facts, &names, producer.replicas)
            .and_then(|d| Ok((d, producer_service(&producer)?)));
        match rendered {
            Ok((mut deployment, service)) => {
                deployment.metadata.owner_references = None;
                push(out, &deployment);
                if let Some(mut service) = service {
                    service.metadata.owner_references = None;
                    push(out, &service);
                }
            }
            Err(e) => notes.push(format!(
                "{source} KafkaProducer '{}': {e}",
                producer.owner.name
            )),
        }
    }
    for (source, consumer) in set.consumers.iter().filter(|(s, _)| take(s)) {
        let mut consumer = consumer.clone();
        consumer.owner.uid = Some(PREVIEW_UID.to_owned());
        let Some((facts, names)) =
            connection(set, source, &consumer.owner, &consumer.cluster_ref, notes)
        else {
            continue;
        };
        let replicas = match &consumer.scaling {
            Scaling::Fixed(n) => *n,
            Scaling::Autoscaled(policy) => policy.min_replicas,
        };
        match consumer_deployment(&consumer, &facts, &names, replicas) {
            Ok(mut deployment) => {
                deployment.metadata.owner_references = None;
                push(out, &deployment);
            }
            Err(e) => notes.push(format!(
                "{source} KafkaConsumer '{}': {e}",
                consumer.owner.name
            )),
        }
    }
}

/// What a workload's pods get from its KafkaCluster, and the broker names of the KafkaTopics
/// of its namespace; `None` (with a note) when the manifests do not declare its cluster.
fn connection(
    set: &ValidatedSet,
    source: &Source,
    owner: &Owner,
    cluster_ref: &str,
    notes: &mut Vec<String>,
) -> Option<(ConnectionFacts, TopicNames)> {
    let cluster = set.clusters.iter().map(|(_, c)| c).find(|c| {
        c.metadata.namespace == owner.namespace && c.metadata.name.as_deref() == Some(cluster_ref)
    });
    let Some(cluster) = cluster else {
        notes.push(format!(
            "{source} {} '{}': KafkaCluster '{cluster_ref}' is not among the manifests, so its Deployment is not rendered (add the KafkaCluster's manifest to -f)",
            owner.kind, owner.name
        ));
        return None;
    };
    let facts = match ConnectionFacts::from_cluster(cluster) {
        Ok(facts) => facts,
        Err(errors) => {
            let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
            notes.push(format!(
                "{source} {} '{}': KafkaCluster '{cluster_ref}' cannot be handed to a workload: {}",
                owner.kind,
                owner.name,
                why.join("; ")
            ));
            return None;
        }
    };
    let topics = set.documents.iter().filter_map(|d| match &d.resource {
        Resource::Topic(t) if t.metadata.namespace == owner.namespace => Some(&**t),
        _ => None,
    });
    Some((facts, topic_names(topics)))
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

    const CLUSTER_AND_STANDALONE: &str = r#"
---
apiVersion: tributary.io/v1alpha1
kind: KafkaCluster
metadata: {name: local, namespace: city}
spec:
  bootstrapServers: ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]
  sasl:
    mechanism: SCRAM-SHA-512
    username: {value: rides}
    password: {secretKeyRef: {name: kafka-rides, key: password}}
---
apiVersion: tributary.io/v1alpha1
kind: KafkaConsumer
metadata: {name: fares, namespace: city}
spec:
  clusterRef: local
  topics: [rides-ride-requests]
  template: {image: ghcr.io/acme/fares:1.0}
  autoscaling: {minReplicas: 2, maxReplicas: 6, lagThreshold: 500}
---
apiVersion: tributary.io/v1alpha1
kind: KafkaProducer
metadata: {name: surge, namespace: city}
spec:
  clusterRef: local
  topics: [driver_status]
  template: {image: ghcr.io/acme/surge:1.0}
  service:
    ports: [{name: http, port: 80, targetPort: 8080}]
"#;

    fn check_golden(name: &str, rendered: &str) {
        let path = golden(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
            std::fs::write(&path, rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            rendered == expected,
            "{} differs from the rendering; if intended, run `UPDATE_GOLDEN=1 cargo test --lib output` and review\n{rendered}",
            path.display()
        );
    }

    /// Everything down to the Deployments and Services, byte for byte: a topology's children
    /// and what its consumers and producers run as, then standalone ones; secrets referenced,
    /// never inlined; no owner references.
    #[test]
    fn render_to_the_last_level_golden() {
        let set = check_set(&format!("{TOPOLOGY}{CLUSTER_AND_STANDALONE}")).unwrap();
        let (rendered, notes) = render_yaml(&set, Depth::Workloads);
        assert_eq!(notes, Vec::<String>::new());
        check_golden("render-rides-workloads.yaml", &rendered);
        assert!(!rendered.contains("ownerReferences"));
        let (children, _) = render_yaml(&set, Depth::Children);
        assert!(
            rendered.starts_with(&children),
            "depth 1 is a prefix of the full rendering"
        );
    }

    /// A Deployment rendered here is the consumer controller's, field for field, but for the
    /// owner reference (which needs the uid the API server assigns).
    #[test]
    fn a_rendered_deployment_is_the_controllers() {
        let set = check_set(&format!("{TOPOLOGY}{CLUSTER_AND_STANDALONE}")).unwrap();
        let (rendered, _) = render_yaml(&set, Depth::Workloads);
        let docs: Vec<k8s_openapi::api::apps::v1::Deployment> = serde_saphyr::from_multiple(
            &rendered
                .split("---\n")
                .filter(|d| d.contains("kind: Deployment"))
                .collect::<Vec<_>>()
                .join("---\n"),
        )
        .unwrap();
        let (_, fares) = set
            .consumers
            .iter()
            .find(|(_, c)| c.owner.name == "fares")
            .unwrap();
        let mut owned = fares.clone();
        owned.owner.uid = Some("uid-1".into());
        let cluster = &set.clusters[0].1;
        let topics = set.documents.iter().filter_map(|d| match &d.resource {
            Resource::Topic(t) => Some(&**t),
            _ => None,
        });
        let mut expected = consumer_deployment(
            &owned,
            &ConnectionFacts::from_cluster(cluster).unwrap(),
            &topic_names(topics),
            2,
        )
        .unwrap();
        expected.metadata.owner_references = None;
        let found = docs
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some("fares"))
            .unwrap();
        assert_eq!(found, &expected);
    }

    /// The expansion, byte for byte (`UPDATE_GOLDEN=1 cargo test --lib output` rewrites it).
    #[test]
    fn expansion_golden() {
        let set = check_set(TOPOLOGY).unwrap();
        let (rendered, _) = render_yaml(&set, Depth::Children);
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
