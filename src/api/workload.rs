//! What `KafkaConsumer` and `KafkaProducer` share: the pod template of the application the
//! operator deploys, and the status of its replicas.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvFromSource, EnvVar, ResourceRequirements, Toleration};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The most topics one consumer or producer names (keeps the CEL rules over `topics` cheap).
pub const MAX_TOPICS: usize = 256;

/// The application's pod: one container, wired to the Kafka cluster by the operator. The
/// connection (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPICS`, credentials, ...) is injected as
/// environment variables; `env` may not set those names itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadTemplate {
    /// Container image, e.g. `ghcr.io/acme/analytics:1.4.2`.
    #[x_kube(validation = Rule::new("self.trim().size() > 0").message("must name a container image"))]
    #[schemars(length(max = 1024))]
    pub image: String,
    /// Entrypoint; unset runs the image's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables, after the injected connection settings. A name the operator
    /// injects (`KAFKA_BOOTSTRAP_SERVERS`, ...) is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Vec<EnvVar>,
    /// Environment from ConfigMaps and Secrets. Explicit and injected variables win over these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// CPU and memory requests and limits of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Labels added to the pods (not to the selector). Keys the operator sets are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the pods. Keys under `tributary.io/` are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// ServiceAccount the pods run as; unset: the namespace's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Node labels the pods must be scheduled on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}
