//! `KafkaTopic`: one topic on one `KafkaCluster`, kept equal to its spec.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// What happens to the topic on the broker when its `KafkaTopic` is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the topic and its data (the default: nothing is ever lost by deleting a manifest).
    #[default]
    Retain,
    /// Delete the topic and its data from the broker.
    Delete,
}

/// A Kafka topic, declared.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaTopic",
    derive = "PartialEq",
    namespaced,
    status = "KafkaTopicStatus",
    shortname = "kt",
    category = "tributary",
    doc = "A Kafka topic, kept equal to its spec on the cluster named by clusterRef.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".status.topicName"),
    printcolumn(name = "Partitions", type_ = "integer", json_path = ".spec.partitions"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.replicationFactor"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message("spec.topicName is immutable: create a new KafkaTopic for a new topic"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaTopicSpec {
    /// Name of the `KafkaCluster` (same namespace) the topic lives on.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterRef is immutable: a topic cannot move between clusters"))]
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// Name of the topic on the broker; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub topic_name: Option<String>,
    /// Number of partitions; may grow, never shrink.
    #[x_kube(validation = Rule::new("self >= oldSelf").message("spec.partitions cannot decrease: Kafka cannot remove partitions"))]
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: i32,
    /// Replicas per partition; unset takes the cluster's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replication_factor: Option<i32>,
    /// Topic-level configs (`retention.ms`, `cleanup.policy`, ...). Values are strings.
    /// With the cluster's `topicDefaults.config`, these are the topic's overrides on the broker:
    /// any other override (one removed from here, or set by hand) is reset to the broker's
    /// default, except the replication throttles Kafka's reassignment tools set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// `Retain` (default) keeps the topic when this resource is deleted; `Delete` deletes it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Actions computed but not executed (dry-run or paused), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_actions: Vec<String>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl KafkaTopic {
    /// The topic's name on the broker: `spec.topicName`, else `metadata.name`.
    pub fn broker_topic_name(&self) -> Option<&str> {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
    }
}
