//! From resources to a [`Graph`]: the one place that decides what a drawing shows, used by
//! `tributary graph` (for every resource in the manifests) and by the operator (for one
//! topology's children, into its status).

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use super::{ConsumerNode, Graph, ProducerNode, TopicNode};
use crate::api::{KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::topologies::{Expansion, ENTRY_LABEL};

/// Draws producers → topics → consumer groups. Topics are shown by their broker names;
/// children of a topology by their entry's name (`fraud-checker`, not
/// `bus-ticketing-fraud-checker`); a reference to a `KafkaTopic` resolves to its broker topic.
pub fn graph_of<'a>(
    title: &str,
    topics: impl IntoIterator<Item = &'a KafkaTopic>,
    producers: impl IntoIterator<Item = &'a KafkaProducer>,
    consumers: impl IntoIterator<Item = &'a KafkaConsumer>,
) -> Graph {
    let topics: Vec<&KafkaTopic> = topics.into_iter().collect();
    // KafkaTopic name (per namespace) → broker topic name.
    let broker: BTreeMap<(Option<&str>, &str), &str> = topics
        .iter()
        .filter_map(|t| {
            Some((
                (t.metadata.namespace.as_deref(), t.metadata.name.as_deref()?),
                t.broker_topic_name()?,
            ))
        })
        .collect();
    let resolve = |meta: &ObjectMeta, refs: &[String]| -> Vec<String> {
        refs.iter()
            .map(|r| {
                broker
                    .get(&(meta.namespace.as_deref(), r.as_str()))
                    .map_or_else(|| r.clone(), |b| (*b).to_owned())
            })
            .collect()
    };
    Graph {
        name: title.to_owned(),
        topics: topics
            .iter()
            .filter_map(|t| {
                Some(TopicNode {
                    name: t.broker_topic_name()?.to_owned(),
                    partitions: Some(t.spec.partitions),
                    retention_ms: t.spec.config.get("retention.ms").cloned(),
                })
            })
            .collect(),
        producers: producers
            .into_iter()
            .map(|p| ProducerNode {
                name: display_name(&p.metadata),
                topics: resolve(&p.metadata, &p.spec.topics),
            })
            .collect(),
        consumers: consumers
            .into_iter()
            .map(|c| ConsumerNode {
                name: display_name(&c.metadata),
                group: c
                    .spec
                    .group_id
                    .clone()
                    .or_else(|| c.metadata.name.clone())
                    .unwrap_or_default(),
                topics: resolve(&c.metadata, &c.spec.topics),
            })
            .collect(),
    }
}

/// A topology child by its entry's name; anything else by its own.
fn display_name(meta: &ObjectMeta) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(ENTRY_LABEL))
        .or(meta.name.as_ref())
        .cloned()
        .unwrap_or_default()
}

impl Expansion {
    /// The topology drawn: its children, titled with its name.
    pub fn graph(&self) -> Graph {
        graph_of(&self.name, &self.topics, &self.producers, &self.consumers)
    }
}
