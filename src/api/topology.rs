//! `StreamTopology`: a whole event-driven system — topics, the services that write them and
//! the consumer groups that read them — in one resource, expanded by the operator into owned
//! `KafkaTopic`, `KafkaProducer` and `KafkaConsumer` children.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Autoscaling, Condition, DeletionPolicy, ProducerService, WorkloadTemplate};

/// A whole event-driven system: topics, producers and consumer groups, and the edges between
/// them.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "StreamTopology",
    derive = "PartialEq",
    namespaced,
    status = "StreamTopologyStatus",
    shortname = "st",
    category = "tributary",
    doc = "A whole event-driven system in one resource: topics, the producers that write them and the consumer groups that read them. The operator creates one owned KafkaTopic, KafkaProducer or KafkaConsumer per entry, named <topology>-<entry>.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(
        name = "Children",
        type_ = "string",
        json_path = ".status.readyChildren"
    ),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.totalLag"),
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamTopologySpec {
    /// Name of the `KafkaCluster` (same namespace) every topic and workload of the topology
    /// lives on.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterRef is immutable: a topology's topics cannot move between clusters"))]
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// What every topic takes unless it says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<TopologyDefaults>,
    /// The topics. Each becomes a `KafkaTopic` named `<topology>-<name>` whose broker topic is
    /// `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub topics: Vec<TopologyTopic>,
    /// Services that write topics. Each becomes a `KafkaProducer` named `<topology>-<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub producers: Vec<TopologyProducer>,
    /// Consumer groups that read topics. Each becomes a `KafkaConsumer` named
    /// `<topology>-<name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub consumers: Vec<TopologyConsumer>,
}

/// Topic settings shared by the topology's topics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopologyDefaults {
    /// Partitions of a topic that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: Option<i32>,
    /// Replication factor of a topic that does not set its own (unset: the cluster's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replication_factor: Option<i32>,
    /// Topic configs every topic gets; a topic's own `config` wins key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// What happens to a topic's data when it leaves the topology (default `Retain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// One topic of the topology.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopologyTopic {
    /// The topic's name on the broker, e.g. `ride.requests`.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub name: String,
    /// Partitions (default: `spec.defaults.partitions`; one of the two is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: Option<i32>,
    /// Replication factor (default: `spec.defaults.replicationFactor`, else the cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replication_factor: Option<i32>,
    /// Topic configs, over `spec.defaults.config`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// What happens to the data when the topic leaves the topology (default:
    /// `spec.defaults.deletionPolicy`, else `Retain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Documentation: what the message key is, e.g. `city zone id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Documentation: where the value's schema lives, e.g. a schema-registry subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Documentation: what the topic carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A service that writes topics of the topology.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopologyProducer {
    /// The service's name within the topology (a DNS label).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Topics it writes: names from `spec.topics`.
    #[schemars(length(min = 1, max = 256))]
    pub topics: Vec<String>,
    /// The application's pod.
    pub template: WorkloadTemplate,
    /// Number of replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// A Service in front of the pods; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ProducerService>,
}

/// A consumer group that reads topics of the topology.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.replicas) != has(self.autoscaling)").message("set exactly one of replicas and autoscaling"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopologyConsumer {
    /// The application's name within the topology (a DNS label).
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Consumer group id (default: `<topology>-<name>`, the child's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub group: Option<String>,
    /// Topics it reads: names from `spec.topics`.
    #[schemars(length(min = 1, max = 256))]
    pub topics: Vec<String>,
    /// The application's pod.
    pub template: WorkloadTemplate,
    /// A fixed number of replicas. Exactly one of `replicas` and `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Scale on consumer lag. Exactly one of `replicas` and `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

/// One child of the topology, as last seen.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildStatus {
    /// `KafkaTopic`, `KafkaProducer` or `KafkaConsumer`.
    pub kind: String,
    /// The child resource's name (`<topology>-<entry>`).
    pub name: String,
    /// Whether its `Ready` condition is `True` (for the generation it last observed).
    pub ready: bool,
    /// Its `Ready` reason, or `Pending` before it reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Consumers: the group's total lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTopologyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `ready/total` children, e.g. `7/9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_children: Option<String>,
    /// Every child, in spec order (topics, producers, consumers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildStatus>,
    /// Sum of the consumer groups' lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_lag: Option<i64>,
    /// Problems that do not stop the topology (a topic nobody reads, more replicas than
    /// partitions, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The topology drawn as a Mermaid flowchart (producers → topics → consumer groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
