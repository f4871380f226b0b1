//! What a consumer reads, held against what is known of its topics: the doubts that do not
//! make it invalid. One function for a standalone `KafkaConsumer` among manifests and for a
//! consumer of a `StreamTopology` (its graph validation), so both get the same warnings.

use super::{Scaling, ValidatedConsumer};
use crate::model::FieldError;

/// A topic a consumer reads, as far as it is known: the name to show (the broker topic, or the
/// topology's entry) and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTopic {
    pub name: String,
    pub partitions: i32,
}

/// Warnings about `consumer`'s reading; `known[j]` is what is known of `spec.topics[j]`
/// (`None`: no topic among the input declares it). Paths are the consumer's own
/// (`spec.topics[1]`, `spec.replicas`, `spec.autoscaling.maxReplicas`).
///
/// - a topic nobody declared: the consumer may wait for a topic that never comes;
/// - more replicas (or `maxReplicas`) than the partitions of all its topics, when every one is
///   known: a group member beyond the partitions gets none and sits idle.
pub fn consumer_read_warnings(
    consumer: &ValidatedConsumer,
    known: &[Option<KnownTopic>],
) -> Vec<FieldError> {
    let mut warnings = Vec::new();
    for (j, (topic, known)) in consumer.topics.iter().zip(known).enumerate() {
        if known.is_none() {
            warnings.push(FieldError::new(
                format!("spec.topics[{j}]"),
                format!(
                    "reads topic '{}', which no KafkaTopic or StreamTopology among the manifests declares: the group waits for a topic that may never exist (declare it, unless something else creates it)",
                    topic.as_str()
                ),
            ));
        }
    }
    let Some(known) = known.iter().cloned().collect::<Option<Vec<KnownTopic>>>() else {
        return warnings;
    };
    let total: i32 = known.iter().map(|t| t.partitions).sum();
    let (most, path) = match &consumer.scaling {
        Scaling::Autoscaled(policy) => (policy.max_replicas, "spec.autoscaling.maxReplicas"),
        Scaling::Fixed(replicas) => (*replicas, "spec.replicas"),
    };
    if most > total {
        let names: Vec<&str> = known.iter().map(|t| t.name.as_str()).collect();
        warnings.push(FieldError::new(
            path,
            format!(
                "{most} exceeds the {total} partition(s) of its topics ({}): replicas beyond {total} get no partition and sit idle",
                names.join(", ")
            ),
        ));
    }
    warnings
}
