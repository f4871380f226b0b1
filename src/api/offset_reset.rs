//! `KafkaOffsetReset`: a consumer group's committed offsets moved as one declared, resumable
//! operation — the consumer held at zero replicas, the group emptied, the offsets written once
//! and read back, the consumer released.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A reset of a consumer group's offsets: the group of the KafkaConsumer `consumerRef` (held
/// at zero replicas meanwhile), or a raw `group` on the KafkaCluster `clusterRef`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaOffsetReset",
    derive = "PartialEq",
    namespaced,
    status = "KafkaOffsetResetStatus",
    shortname = "kor",
    category = "tributary",
    doc = "A declared, resumable reset of a consumer group's offsets: the KafkaConsumer held at zero replicas, the group emptied, the offsets written once and read back, the replicas restored.",
    printcolumn(name = "Group", type_ = "string", json_path = ".status.group"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Re-read",
        type_ = "integer",
        json_path = ".status.messagesReRead"
    ),
    printcolumn(
        name = "Skipped",
        type_ = "integer",
        json_path = ".status.messagesSkipped"
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
#[x_kube(validation = Rule::new("has(self.consumerRef) != has(self.group)").message("set exactly one of consumerRef and group"))]
#[x_kube(validation = Rule::new("has(self.group) == has(self.clusterRef)").message("clusterRef goes with group (a consumerRef brings its own cluster)"))]
#[x_kube(validation = Rule::new("self == oldSelf").message("a KafkaOffsetReset cannot be changed: create another one"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaOffsetResetSpec {
    /// The KafkaConsumer (same namespace) whose group is reset: it is held at zero replicas
    /// while the offsets are written. Exactly one of `consumerRef` and `group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub consumer_ref: Option<String>,
    /// A raw consumer group id, on `clusterRef`; its consumers are not Tributary's to stop, so
    /// the group must already be empty. Exactly one of `consumerRef` and `group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub group: Option<String>,
    /// The KafkaCluster (same namespace) of a raw `group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub cluster_ref: Option<String>,
    /// Topics to reset, as the broker names them (default: every topic the consumer reads, or
    /// every topic a raw group has committed on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 249)))]
    pub topics: Vec<String>,
    /// Partitions to reset, of each topic (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(range(min = 0)))]
    pub partitions: Vec<i32>,
    /// Where the offsets go: exactly one of its fields.
    pub target: ResetTarget,
    /// Compute and record the offsets, write nothing, scale nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Members the consumer's pods do not account for are waited out (up to the timeout)
    /// instead of refused (`ForeignMembers`).
    #[serde(default)]
    pub force: bool,
    /// How long the consumer's pods may take to go and the group to empty (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: Option<i64>,
}

/// The target of a reset: exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.earliest) ? 1 : 0) + (has(self.latest) ? 1 : 0) + (has(self.timestamp) ? 1 : 0) + (has(self.shiftBy) ? 1 : 0) + (has(self.offsets) ? 1 : 0) == 1").message("set exactly one of earliest, latest, timestamp, shiftBy and offsets"))]
#[x_kube(validation = Rule::new("(!has(self.earliest) || self.earliest) && (!has(self.latest) || self.latest)").message("earliest and latest can only be true: leave the field out instead"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetTarget {
    /// `true`: each partition's log start (everything retained is read again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<bool>,
    /// `true`: each partition's log end (the backlog is skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<bool>,
    /// An RFC 3339 date-time (`2026-12-07T08:00:00Z`): each partition's first record at or
    /// after it (the log end where none is that late). A time in the future is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timestamp: Option<String>,
    /// The committed offset moved by this many records (negative: back, re-reading),
    /// clamped to the partition's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_by: Option<i64>,
    /// These offsets, per partition; each must lie in the partition's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10000))]
    pub offsets: Option<Vec<PartitionOffset>>,
}

/// An explicit offset of one partition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartitionOffset {
    #[schemars(length(min = 1, max = 249))]
    pub topic: String,
    #[schemars(range(min = 0))]
    pub partition: i32,
    #[schemars(range(min = 0))]
    pub offset: i64,
}

/// The phases of a reset, in order; `Succeeded` and `Failed` are final.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum ResetPhase {
    Pending,
    ScalingDown,
    WaitingForEmptyGroup,
    Resetting,
    ScalingUp,
    Succeeded,
    Failed,
}

impl ResetPhase {
    pub fn is_final(self) -> bool {
        matches!(self, ResetPhase::Succeeded | ResetPhase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ResetPhase::Pending => "Pending",
            ResetPhase::ScalingDown => "ScalingDown",
            ResetPhase::WaitingForEmptyGroup => "WaitingForEmptyGroup",
            ResetPhase::Resetting => "Resetting",
            ResetPhase::ScalingUp => "ScalingUp",
            ResetPhase::Succeeded => "Succeeded",
            ResetPhase::Failed => "Failed",
        }
    }
}

/// Where the reset is: the status is its checkpoint, so a restarted operator resumes here.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaOffsetResetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ResetPhase>,
    /// When the current phase was entered (RFC 3339): the timeout counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<String>,
    /// The consumer group reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The consumer's replicas when it was held at zero: what it gets back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_to_restore: Option<i32>,
    /// The offsets computed, recorded before anything is written (so a restart never computes
    /// or writes them twice): before -> after per partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<PartitionReset>>,
    /// Records the group reads again, over every partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_re_read: Option<i64>,
    /// Records the group never reads, over every partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_skipped: Option<i64>,
    /// The offsets were written in one request and read back as written (RFC 3339 time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_at: Option<String>,
    /// Why the reset failed, a CamelCase word (`ForeignMembers`, `Timeout`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What failed, and the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One partition's move.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionReset {
    pub topic: String,
    pub partition: i32,
    /// The log start offset when planned.
    pub log_start: i64,
    /// The log end offset when planned.
    pub log_end: i64,
    /// The committed offset before (absent: the group never committed here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// The committed offset written.
    pub after: i64,
    pub re_read: i64,
    pub skipped: i64,
    /// `shiftBy` went beyond the partition's range and was clamped to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clamped: bool,
}

/// The annotation a reset puts on the KafkaConsumer it holds at zero replicas: its value is the
/// reset's name (same namespace). The consumer's reconcile renders zero replicas and pauses its
/// autoscaler while it is there.
pub const HOLD_ANNOTATION: &str = "tributary.io/held-by-offset-reset";
