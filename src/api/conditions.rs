//! kstatus-style conditions shared by every kind (`Ready`, `Reconciling`, `Stalled`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The three values a condition's status takes, as Kubernetes spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One observation about a resource, in the shape GitOps tools (kstatus, Argo CD, Flux) read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// A CamelCase word a machine can match on, e.g. `ResourceConflict`, `BrokerUnsupported`.
    pub reason: String,
    /// What a person needs to know, including the broker's own error text where there is one.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
