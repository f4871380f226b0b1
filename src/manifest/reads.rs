//! Warnings about standalone `KafkaConsumer`s, from the same check a topology's consumers get
//! ([`consumer_read_warnings`]): a topic no manifest declares, more replicas than partitions.

use super::{at, Document, ManifestWarning, Resource, ValidatedSet};
use crate::api::KafkaTopic;
use crate::workloads::{consumer_read_warnings, KnownTopic, TopicRef, ValidatedConsumer};

/// The warnings of every valid consumer of `set` that no topology made (a topology's are part
/// of its expansion). A consumer's topic is known when a `KafkaTopic` of its namespace (a
/// topology's child included) has that name, or lives on the consumer's cluster under that
/// broker name.
pub fn standalone_consumer_warnings(docs: &[Document], set: &ValidatedSet) -> Vec<ManifestWarning> {
    let topics: Vec<&KafkaTopic> = docs
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Topic(t) => Some(&**t),
            _ => None,
        })
        .collect();
    set.consumers
        .iter()
        .filter(|(source, _)| !set.topologies.iter().any(|(s, _)| s == source))
        .flat_map(|(source, consumer)| {
            let known: Vec<Option<KnownTopic>> = consumer
                .topics
                .iter()
                .map(|r| known_topic(consumer, r, &topics))
                .collect();
            consumer_read_warnings(consumer, &known)
                .into_iter()
                .map(|w| at(source, w))
        })
        .collect()
}

fn known_topic(
    consumer: &ValidatedConsumer,
    reference: &TopicRef,
    topics: &[&KafkaTopic],
) -> Option<KnownTopic> {
    let namespace = &consumer.owner.namespace;
    let mine = || topics.iter().filter(|t| &t.metadata.namespace == namespace);
    let topic = mine()
        .find(|t| t.metadata.name.as_deref() == Some(reference.as_str()))
        .or_else(|| {
            mine().find(|t| {
                t.spec.cluster_ref == consumer.cluster_ref
                    && t.broker_topic_name() == Some(reference.as_str())
            })
        })?;
    Some(KnownTopic {
        name: topic.broker_topic_name()?.to_owned(),
        partitions: topic.spec.partitions,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::{load_str, validate};

    fn warnings(text: &str) -> Vec<String> {
        let (docs, errors) = load_str(Path::new("grid.yaml"), text);
        assert!(errors.is_empty(), "{errors:?}");
        let set = validate(docs, None).unwrap_or_else(|e| panic!("{e:?}"));
        set.warnings.iter().map(ToString::to_string).collect()
    }

    const TOPIC: &str = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata: {name: meter-readings}\nspec: {clusterRef: local, partitions: 4, topicName: meter.readings}\n";

    fn consumer(topics: &str, scaling: &str) -> String {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaConsumer\nmetadata: {{name: billing}}\nspec:\n  clusterRef: local\n  topics: {topics}\n  template: {{image: ghcr.io/acme/billing:1}}\n  {scaling}\n")
    }

    /// Issue 13, defect 9: a standalone consumer gets the warnings a topology's consumer gets.
    #[test]
    fn more_replicas_than_partitions_by_kafka_topic_or_broker_name() {
        for topics in ["[meter-readings]", "[meter.readings]"] {
            assert_eq!(
                warnings(&format!("{TOPIC}{}", consumer(topics, "replicas: 5"))),
                ["grid.yaml#2 spec.replicas: 5 exceeds the 4 partition(s) of its topics (meter.readings): replicas beyond 4 get no partition and sit idle"],
                "{topics}"
            );
        }
        assert_eq!(
            warnings(&format!(
                "{TOPIC}{}",
                consumer("[meter-readings]", "autoscaling: {maxReplicas: 9, lagThreshold: 100}")
            )),
            ["grid.yaml#2 spec.autoscaling.maxReplicas: 9 exceeds the 4 partition(s) of its topics (meter.readings): replicas beyond 4 get no partition and sit idle"]
        );
        assert!(warnings(&format!(
            "{TOPIC}{}",
            consumer("[meter-readings]", "replicas: 4")
        ))
        .is_empty());
    }

    #[test]
    fn a_topic_nobody_declared() {
        assert_eq!(
            warnings(&format!("{TOPIC}{}", consumer("[meter-readings, tariffs]", "replicas: 9"))),
            ["grid.yaml#2 spec.topics[1]: reads topic 'tariffs', which no KafkaTopic or StreamTopology among the manifests declares: the group waits for a topic that may never exist (declare it, unless something else creates it)"],
            "the partitions of an unknown topic are unknown: no replica warning"
        );
    }

    #[test]
    fn a_topic_of_another_namespace_is_not_declared_here() {
        let elsewhere = TOPIC.replace(
            "{name: meter-readings}",
            "{name: meter-readings, namespace: other}",
        );
        assert_eq!(
            warnings(&format!(
                "{elsewhere}{}",
                consumer("[meter.readings]", "replicas: 1")
            ))
            .len(),
            1
        );
    }
}
