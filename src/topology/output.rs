//! What `tributary render` and `tributary graph` print for a validated set of manifests.

use std::fmt::Write as _;

use serde::Serialize;

use super::graph::Graph;
use super::graph_of;
use crate::manifest::{Resource, ValidatedSet};
use crate::workload::{
    consumer_deployment, producer_deployment, producer_service, topic_names, ConnectionFacts,
    Scaling,
};

/// Everything in the manifests drawn as one graph, titled with the topology's name when there
/// is exactly one.
pub fn manifest_graph(set: &ValidatedSet) -> Graph {
    let title = match set.topologies.as_slice() {
        [(_, only)] => only.name.clone(),
        _ => "tributary".to_owned(),
    };
    let resources = set.documents.iter().map(|d| &d.resource);
    let topics = resources.clone().filter_map(|r| match r {
        Resource::Topic(t) => Some(t),
        _ => None,
    });
    let producers = resources.clone().filter_map(|r| match r {
        Resource::Producer(p) => Some(p),
        _ => None,
    });
    let consumers = resources.filter_map(|r| match r {
        Resource::Consumer(c) => Some(c),
        _ => None,
    });
    graph_of(&title, topics, producers, consumers)
}

/// Why a workload could not be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderSkip {
    #[error("{kind} '{name}': KafkaCluster '{cluster}' is not among the manifests, so its connection cannot be rendered")]
    NoCluster {
        kind: &'static str,
        name: String,
        cluster: String,
    },
    #[error("{kind} '{name}': {why}")]
    Failed {
        kind: &'static str,
        name: String,
        why: String,
    },
}

/// The objects the operator would create, as a YAML stream: every topology's children (what
/// the StreamTopology controller applies) and, with `workloads`, the Deployments and Services
/// the consumer and producer controllers would apply for every consumer and producer whose
/// cluster is among the manifests (consumers at `replicas`, or `minReplicas` when
/// autoscaled, as the operator starts them). Owner references appear only on objects read
/// from a cluster, so nothing here carries one.
pub fn render_yaml(set: &ValidatedSet, workloads: bool) -> (String, Vec<RenderSkip>) {
    let mut out = String::new();
    let mut skipped = Vec::new();
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
    if !workloads {
        return (out, skipped);
    }
    let kafka_topics: Vec<_> = set
        .documents
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Topic(t) => Some(t),
            _ => None,
        })
        .collect();
    let facts = |namespace: &Option<String>, cluster: &str| {
        set.clusters
            .iter()
            .map(|(_, c)| c)
            .find(|c| &c.metadata.namespace == namespace && c.metadata.name.as_deref() == Some(cluster))
            .map(ConnectionFacts::from_cluster)
    };
    for (_, consumer) in &set.consumers {
        let names = topic_names(
            kafka_topics
                .iter()
                .copied()
                .filter(|t| t.metadata.namespace == consumer.owner.namespace),
        );
        let fail = |why: String| RenderSkip::Failed {
            kind: "KafkaConsumer",
            name: consumer.owner.name.clone(),
            why,
        };
        match facts(&consumer.owner.namespace, &consumer.cluster_ref) {
            None => skipped.push(RenderSkip::NoCluster {
                kind: "KafkaConsumer",
                name: consumer.owner.name.clone(),
                cluster: consumer.cluster_ref.clone(),
            }),
            Some(Err(errs)) => skipped.push(fail(joined(&errs))),
            Some(Ok(facts)) => {
                let replicas = match &consumer.scaling {
                    Scaling::Fixed(n) => *n,
                    Scaling::Autoscaled(p) => p.min_replicas,
                };
                match consumer_deployment(consumer, &facts, &names, replicas) {
                    Ok(d) => push(&mut out, &d),
                    Err(e) => skipped.push(fail(e.to_string())),
                }
            }
        }
    }
    for (_, producer) in &set.producers {
        let names = topic_names(
            kafka_topics
                .iter()
                .copied()
                .filter(|t| t.metadata.namespace == producer.owner.namespace),
        );
        let fail = |why: String| RenderSkip::Failed {
            kind: "KafkaProducer",
            name: producer.owner.name.clone(),
            why,
        };
        match facts(&producer.owner.namespace, &producer.cluster_ref) {
            None => skipped.push(RenderSkip::NoCluster {
                kind: "KafkaProducer",
                name: producer.owner.name.clone(),
                cluster: producer.cluster_ref.clone(),
            }),
            Some(Err(errs)) => skipped.push(fail(joined(&errs))),
            Some(Ok(facts)) => {
                match producer_deployment(producer, &facts, &names, producer.replicas) {
                    Ok(d) => push(&mut out, &d),
                    Err(e) => skipped.push(fail(e.to_string())),
                }
                match producer_service(producer) {
                    Ok(Some(s)) => push(&mut out, &s),
                    Ok(None) => {}
                    Err(e) => skipped.push(fail(e.to_string())),
                }
            }
        }
    }
    (out, skipped)
}

fn joined(errors: &[crate::model::FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Appends one YAML document.
fn push<T: Serialize>(out: &mut String, object: &T) {
    out.push_str("---\n");
    out.push_str(&serde_saphyr::to_string(object).expect("Kubernetes objects serialize"));
}
