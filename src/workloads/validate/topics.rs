//! `spec.topics`: references to `KafkaTopic`s of the workload's namespace or to broker topics,
//! and what they resolve to.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{KafkaTopic, MAX_TOPICS};
use crate::model::{FieldError, TopicName};

/// One entry of `spec.topics`: the name of a `KafkaTopic` in the resource's namespace, or else
/// a topic name as the broker knows it. Either way it is a legal Kafka topic name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicRef(TopicName);

impl TopicRef {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The broker topic: the `spec.topicName` of the `KafkaTopic` so named, else the name itself.
    pub fn resolve(&self, names: &TopicNames) -> TopicName {
        names.get(self.as_str()).unwrap_or(&self.0).clone()
    }
}

/// `KafkaTopic` name (in the workload's namespace) → broker topic name.
pub type TopicNames = BTreeMap<String, TopicName>;

/// The map rendering takes, from the `KafkaTopic`s of one namespace. Topics whose broker name
/// is not legal (they are refused elsewhere) are left out.
pub fn topic_names<'a>(topics: impl IntoIterator<Item = &'a KafkaTopic>) -> TopicNames {
    topics
        .into_iter()
        .filter_map(|t| {
            let name = t.metadata.name.clone()?;
            let broker = TopicName::parse(t.broker_topic_name()?).ok()?;
            Some((name, broker))
        })
        .collect()
}

/// The broker topics, in `spec.topics` order, each once (two references may name one topic).
pub fn broker_topics(refs: &[TopicRef], names: &TopicNames) -> Vec<TopicName> {
    let mut seen = BTreeSet::new();
    refs.iter()
        .map(|r| r.resolve(names))
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// A reference to a `KafkaTopic` that lives on another cluster than the workload: the
/// workload would connect to one cluster and look for the topic there, in vain.
pub fn check_topic_clusters<'a>(
    refs: &[TopicRef],
    cluster_ref: &str,
    topics: impl IntoIterator<Item = &'a KafkaTopic>,
) -> Vec<FieldError> {
    let by_name: BTreeMap<&str, &KafkaTopic> = topics
        .into_iter()
        .filter_map(|t| Some((t.metadata.name.as_deref()?, t)))
        .collect();
    refs.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let topic = by_name.get(r.as_str())?;
            (topic.spec.cluster_ref != cluster_ref).then(|| {
                FieldError::new(
                    format!("spec.topics[{i}]"),
                    format!(
                        "KafkaTopic '{}' lives on cluster '{}', not on '{cluster_ref}' (spec.clusterRef)",
                        r.as_str(),
                        topic.spec.cluster_ref
                    ),
                )
            })
        })
        .collect()
}

pub(super) fn check_topics(topics: &[String], errors: &mut Vec<FieldError>) -> Vec<TopicRef> {
    if topics.is_empty() {
        errors.push(FieldError::new(
            "spec.topics",
            "must name at least one topic",
        ));
    }
    if topics.len() > MAX_TOPICS {
        errors.push(FieldError::new(
            "spec.topics",
            format!("names {} topics; at most {MAX_TOPICS}", topics.len()),
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refs = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        let path = format!("spec.topics[{i}]");
        if topic.contains('/') {
            errors.push(FieldError::new(
                path,
                format!("'{topic}' is a topic in another namespace; only KafkaTopics of this namespace (or topic names without '/') can be used"),
            ));
            continue;
        }
        match TopicName::parse(topic) {
            Err(why) => errors.push(FieldError::new(path, why)),
            Ok(name) => {
                if let Some(first) = seen.get(topic.as_str()) {
                    errors.push(FieldError::new(
                        path,
                        format!("'{topic}' is already listed at spec.topics[{first}]"),
                    ));
                } else {
                    seen.insert(topic, i);
                    refs.push(TopicRef(name));
                }
            }
        }
    }
    refs
}
