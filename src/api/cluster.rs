//! `KafkaCluster`: how to reach an existing Kafka cluster, and the defaults its topics take.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// How to reach a Kafka cluster that already exists.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaCluster",
    derive = "PartialEq",
    namespaced,
    status = "KafkaClusterStatus",
    shortname = "kc",
    category = "tributary",
    doc = "How to reach an existing Kafka cluster (bootstrap servers, TLS, SASL) and the defaults its topics take.",
    printcolumn(
        name = "Bootstrap",
        type_ = "string",
        json_path = ".spec.bootstrapServers[0]"
    ),
    printcolumn(name = "Cluster ID", type_ = "string", json_path = ".status.clusterId"),
    printcolumn(name = "Brokers", type_ = "integer", json_path = ".status.brokers"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaClusterSpec {
    /// `host:port` of one or more brokers.
    #[schemars(length(min = 1))]
    pub bootstrap_servers: Vec<String>,
    /// TLS to the brokers; absent means plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// SASL authentication; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslSpec>,
    /// Extra librdkafka client properties (e.g. `client.id`). Security settings belong in
    /// `tls` and `sasl`, not here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_config: BTreeMap<String, String>,
    /// Seconds a broker request may take before it fails (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub request_timeout_seconds: Option<i32>,
    /// Defaults for the topics on this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_defaults: Option<TopicDefaults>,
}

/// Values a `KafkaTopic` takes when it does not set them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicDefaults {
    /// Replication factor of topics that leave `replicationFactor` unset. Unset here too:
    /// the broker's own `default.replication.factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub replication_factor: Option<i32>,
    /// Configs every topic gets unless it names the key itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// TLS settings. Certificates and keys are PEM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.clientCert) == has(self.clientKey)").message("tls.clientCert and tls.clientKey go together"))]
pub struct TlsSpec {
    /// CA bundle that signed the brokers' certificates; unset uses the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<CredentialSource>,
    /// Client certificate for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<CredentialSource>,
    /// Private key of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<CredentialSource>,
}

/// SASL mechanisms Tributary speaks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka and the Kafka protocol use.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaslSpec {
    pub mechanism: SaslMechanism,
    pub username: CredentialSource,
    /// Must come from a Secret or a file: an inline password is refused.
    #[x_kube(validation = Rule::new("!has(self.value)").message("sasl.password must come from secretKeyRef or file, never inline"))]
    pub password: CredentialSource,
}

/// Where a credential comes from: exactly one of `value` (only for non-secret values such as a
/// user name), `secretKeyRef` (a key of a Secret in the same namespace) or `file` (a path
/// readable by the operator or the CLI, e.g. a mounted Secret volume).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.value) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) + (has(self.file) ? 1 : 0) == 1").message("set exactly one of value, secretKeyRef, file"))]
pub struct CredentialSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeySelector {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub key: String,
}

/// What the last probe of the cluster found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<i32>,
    /// Admin APIs Tributary uses that the broker does not serve (from ApiVersions; not probed
    /// over TLS). Changes that need them are refused with `BrokerUnsupported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_apis: Vec<String>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
