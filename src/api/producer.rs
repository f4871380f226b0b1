//! `KafkaProducer`: a service that writes to topics, deployed once its topics are Ready.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, WorkloadTemplate};

/// A producer service: a Deployment (and optionally a Service) wired to the cluster named by
/// `clusterRef`, rolled out once the topics it writes are Ready.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaProducer",
    derive = "PartialEq",
    namespaced,
    status = "KafkaProducerStatus",
    shortname = "kprod",
    category = "tributary",
    doc = "A producer service: a Deployment (and optionally a Service) wired to a KafkaCluster, rolled out once the topics it writes are Ready.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.readyReplicas"
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
        name = "Waiting For",
        type_ = "string",
        json_path = ".status.waitingForTopics",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaProducerSpec {
    /// Name of the `KafkaCluster` (same namespace) to write to.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// Topics the service writes: names of `KafkaTopic`s in this namespace (their
    /// `spec.topicName` is used), or else topic names as the broker knows them. Another
    /// namespace's topic (`namespace/name`) is refused.
    #[x_kube(validation = Rule::new("self.all(t, !t.contains('/'))").message("a topic in another namespace ('namespace/name') is refused: name a KafkaTopic of this namespace, or a topic name without '/'"))]
    #[schemars(length(min = 1, max = 256), inner(length(min = 1, max = 253)))]
    pub topics: Vec<String>,
    /// The application's pod.
    pub template: WorkloadTemplate,
    /// Number of replicas (default 1).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// A Service in front of the pods; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ProducerService>,
}

fn default_replicas() -> i32 {
    1
}

/// The Service in front of a producer's pods. Each port is also declared on the container
/// (named after the port), so the Service reaches the pods by it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProducerService {
    /// `ClusterIP` (default), `NodePort` or `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// At least one port; names are unique.
    #[schemars(length(min = 1))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub ports: Vec<ServicePort>,
}

/// How the Service is exposed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// One port of the Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// A lowercase IANA service name (at most 15 characters), e.g. `http`.
    #[schemars(length(min = 1, max = 15))]
    pub name: String,
    /// Port the Service listens on.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Port the container listens on (a number; declared on the container under `name`).
    /// Defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default)]
    pub protocol: PortProtocol,
}

/// Transport protocol of a port.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum PortProtocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

impl PortProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PortProtocol::Tcp => "TCP",
            PortProtocol::Udp => "UDP",
            PortProtocol::Sctp => "SCTP",
        }
    }
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaProducerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Topics not Ready yet (broker names); the Deployment waits for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for_topics: Vec<String>,
    /// Replicas the Deployment was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Replicas ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
