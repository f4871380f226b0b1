//! From a raw `KafkaTopic` spec to the validated topic the planner takes.

use std::collections::BTreeMap;

use crate::api::{DeletionPolicy, KafkaTopic, TopicDefaults};
use crate::model::{topic_config, FieldError, TopicName, MAX_PARTITIONS, MAX_REPLICATION_FACTOR};

/// A topic as it should be on the broker, with the cluster's defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: TopicName,
    pub partitions: i32,
    /// `None` leaves the choice to the broker (`default.replication.factor`).
    pub replication_factor: Option<i32>,
    /// The topic's overrides: the cluster's default configs overlaid with the topic's own.
    pub config: BTreeMap<String, String>,
    pub deletion_policy: DeletionPolicy,
}

/// Validates one `KafkaTopic` and resolves it against its cluster's topic defaults.
/// Every problem is reported, not just the first.
pub fn resolve_topic(
    topic: &KafkaTopic,
    defaults: Option<&TopicDefaults>,
) -> Result<DesiredTopic, Vec<FieldError>> {
    let spec = &topic.spec;
    let mut errors = Vec::new();

    let name_path = if spec.topic_name.is_some() {
        "spec.topicName"
    } else {
        "metadata.name"
    };
    let name = match topic.broker_topic_name() {
        None => {
            errors.push(FieldError::new(
                "metadata.name",
                "is required (or set spec.topicName)",
            ));
            None
        }
        Some(raw) => TopicName::parse(raw)
            .map_err(|why| errors.push(FieldError::new(name_path, why)))
            .ok(),
    };

    if spec.cluster_ref.trim().is_empty() {
        errors.push(FieldError::new(
            "spec.clusterRef",
            "must name the KafkaCluster this topic lives on",
        ));
    }
    if spec.partitions < 1 {
        errors.push(FieldError::new(
            "spec.partitions",
            format!("must be >= 1, got {}", spec.partitions),
        ));
    } else if spec.partitions > MAX_PARTITIONS {
        errors.push(FieldError::new(
            "spec.partitions",
            format!(
                "must be at most {MAX_PARTITIONS} (the Kafka client library refuses more), got {}",
                spec.partitions
            ),
        ));
    }
    let replication_factor = spec
        .replication_factor
        .or_else(|| defaults.and_then(|d| d.replication_factor));
    if let Some(rf) = spec.replication_factor {
        if !(1..=MAX_REPLICATION_FACTOR).contains(&rf) {
            errors.push(FieldError::new(
                "spec.replicationFactor",
                format!("must be between 1 and {MAX_REPLICATION_FACTOR}, got {rf} (or leave it unset for the cluster default)"),
            ));
        }
    }

    for (key, value) in &spec.config {
        if let Err(why) = topic_config::check(key, value) {
            errors.push(FieldError::new(format!("spec.config.{key}"), why));
        }
    }
    let mut config = defaults.map(|d| d.config.clone()).unwrap_or_default();
    config.extend(spec.config.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (key, why) in topic_config::check_together(&config) {
        errors.push(FieldError::new(format!("spec.config.{key}"), why));
    }

    if let (Some(rf), Some(min_isr)) = (
        replication_factor,
        config
            .get("min.insync.replicas")
            .and_then(|v| v.trim().parse::<i32>().ok()),
    ) {
        if min_isr > rf {
            let path = if spec.config.contains_key("min.insync.replicas") {
                "spec.config.min.insync.replicas"
            } else {
                "spec.replicationFactor"
            };
            errors.push(FieldError::new(
                path,
                format!("min.insync.replicas {min_isr} exceeds the replication factor {rf}: producers using acks=all could never write; lower min.insync.replicas or raise replicationFactor"),
            ));
        }
    }

    match (name, errors.is_empty()) {
        (Some(name), true) => Ok(DesiredTopic {
            name,
            partitions: spec.partitions,
            replication_factor,
            config,
            deletion_policy: spec.deletion_policy,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::KafkaTopicSpec;

    fn topic(name: &str, partitions: i32) -> KafkaTopic {
        KafkaTopic::new(
            name,
            KafkaTopicSpec {
                cluster_ref: "local".into(),
                topic_name: None,
                partitions,
                replication_factor: None,
                config: BTreeMap::new(),
                deletion_policy: DeletionPolicy::Retain,
            },
        )
    }

    #[test]
    fn resolves_defaults_and_overrides() {
        let mut t = topic("bookings", 6);
        t.spec.config.insert("retention.ms".into(), "1000".into());
        let defaults = TopicDefaults {
            replication_factor: Some(3),
            config: BTreeMap::from([
                ("retention.ms".into(), "5".into()),
                ("min.insync.replicas".into(), "2".into()),
            ]),
        };
        let d = resolve_topic(&t, Some(&defaults)).unwrap();
        assert_eq!(d.name.as_str(), "bookings");
        assert_eq!(d.replication_factor, Some(3));
        assert_eq!(d.config["retention.ms"], "1000");
        assert_eq!(d.config["min.insync.replicas"], "2");
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let mut t = topic("bad/name", 0);
        t.spec.replication_factor = Some(0);
        t.spec.config.insert("retention.ms".into(), "soon".into());
        let errs = resolve_topic(&t, None).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "spec.partitions",
                "spec.replicationFactor",
                "spec.config.retention.ms"
            ]
        );
        assert_eq!(errs[1].to_string(), "spec.partitions: must be >= 1, got 0");
    }

    #[test]
    fn what_the_client_library_or_kafka_refuses_is_refused_offline() {
        let mut t = topic("huge", 1_000_000_000);
        t.spec.replication_factor = Some(20_000);
        t.spec
            .config
            .insert("compression.gzip.level".into(), "12".into());
        t.spec
            .config
            .insert("min.compaction.lag.ms".into(), "5000".into());
        t.spec
            .config
            .insert("max.compaction.lag.ms".into(), "1000".into());
        let errs = resolve_topic(&t, None).unwrap_err();
        let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "spec.partitions: must be at most 100000 (the Kafka client library refuses more), got 1000000000",
                "spec.replicationFactor: must be between 1 and 10000, got 20000 (or leave it unset for the cluster default)",
                "spec.config.compression.gzip.level: must be between 1 and 9 (or -1 for the codec's default), got 12",
                "spec.config.min.compaction.lag.ms: 5000 exceeds max.compaction.lag.ms 1000: Kafka refuses a minimum above the maximum",
            ]
        );
        assert!(resolve_topic(&topic("largest", MAX_PARTITIONS), None).is_ok());
    }

    #[test]
    fn min_insync_above_replication_is_refused() {
        let mut t = topic("orders", 3);
        t.spec.replication_factor = Some(1);
        t.spec
            .config
            .insert("min.insync.replicas".into(), "2".into());
        let errs = resolve_topic(&t, None).unwrap_err();
        assert_eq!(errs[0].path, "spec.config.min.insync.replicas");
    }
}
