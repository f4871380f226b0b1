//! `KafkaConsumer`: a consumer-group application, deployed and scaled on its lag.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, WorkloadTemplate};

/// A consumer-group application: a Deployment wired to the cluster named by `clusterRef`,
/// reading `topics` as group `groupId`, with fixed `replicas` or scaled on consumer lag.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaConsumer",
    derive = "PartialEq",
    namespaced,
    status = "KafkaConsumerStatus",
    shortname = "kcon",
    category = "tributary",
    doc = "A consumer-group application: a Deployment wired to a KafkaCluster, reading topics as one consumer group, with fixed replicas or scaled on consumer lag.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(name = "Group", type_ = "string", json_path = ".status.groupId"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(
        name = "Available",
        type_ = "integer",
        json_path = ".status.readyReplicas"
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
        name = "Scaling",
        type_ = "string",
        json_path = ".status.replicaDecision.reason",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.replicas) != has(self.autoscaling)").message("set exactly one of replicas and autoscaling"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaConsumerSpec {
    /// Name of the `KafkaCluster` (same namespace) to read from.
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// Consumer group id; defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub group_id: Option<String>,
    /// Topics to read: names of `KafkaTopic`s in this namespace (their `spec.topicName` is
    /// used), or else topic names as the broker knows them. Another namespace's topic
    /// (`namespace/name`) is refused.
    #[x_kube(validation = Rule::new("self.all(t, !t.contains('/'))").message("a topic in another namespace ('namespace/name') is refused: name a KafkaTopic of this namespace, or a topic name without '/'"))]
    #[schemars(length(min = 1, max = 256), inner(length(min = 1, max = 253)))]
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
    /// What deleting this KafkaConsumer does to its consumer group: `Retain` (default) leaves
    /// the group and its committed offsets on the broker; `Delete` scales the consumer to 0
    /// and deletes the group (DeleteGroups) once it has no member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_deletion_policy: Option<GroupDeletionPolicy>,
}

/// What deleting a KafkaConsumer does to its consumer group.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum GroupDeletionPolicy {
    /// The group and its committed offsets stay on the broker.
    #[default]
    Retain,
    /// The group is deleted once it has no member.
    Delete,
}

/// Scaling on consumer lag: `ceil(totalLag / lagThreshold)` replicas, kept within
/// `minReplicas..=maxReplicas` and never above the partitions that can be assigned.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("minReplicas must be <= maxReplicas"))]
pub struct Autoscaling {
    /// Fewest replicas (default 1; 0 lets an idle group scale to zero).
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 0))]
    pub min_replicas: i32,
    /// Most replicas. Replicas beyond the partition count would sit idle, so the operator
    /// never scales past it either.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Lag (messages not yet consumed) one replica is expected to handle.
    #[x_kube(validation = Rule::new("self > 0").message("must be > 0 (messages per replica)"))]
    pub lag_threshold: i64,
    /// Seconds the lag must stay low before replicas are removed (default 300).
    #[serde(default = "default_stabilization")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: i32,
    /// Seconds between lag measurements (default 30).
    #[serde(default = "default_poll_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub poll_interval_seconds: i32,
    /// Count only partitions that have lag when capping the replicas (default false: every
    /// partition of the topics).
    #[serde(default)]
    pub limit_to_partitions_with_lag: bool,
    /// How a partition without a committed offset counts: `latest` (default) as no lag,
    /// `earliest` as its whole log.
    #[serde(default)]
    pub offset_reset_policy: OffsetResetPolicy,
    /// The consumer's partition assignment strategy (`partition.assignment.strategy`), which
    /// sets how many replicas can get a partition: `range` (default, as in librdkafka and the
    /// Java client) divides each topic separately, so the most partitions of any one topic;
    /// `roundrobin` and `cooperative-sticky` spread the partitions of all topics together.
    #[serde(default)]
    pub assignment_strategy: AssignmentStrategy,
}

/// How a consumer group spreads its topics' partitions over its members.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AssignmentStrategy {
    /// Each topic divided separately (the default of librdkafka and the Java client).
    #[default]
    #[serde(rename = "range")]
    Range,
    #[serde(rename = "roundrobin")]
    RoundRobin,
    #[serde(rename = "cooperative-sticky")]
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// As `partition.assignment.strategy` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::RoundRobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether every topic is divided separately (only the largest topic bounds the members
    /// that get a partition) rather than all topics' partitions together.
    pub fn per_topic(self) -> bool {
        self == AssignmentStrategy::Range
    }
}

fn default_min_replicas() -> i32 {
    1
}
fn default_stabilization() -> i32 {
    300
}
fn default_poll_interval() -> i32 {
    30
}

/// Where a consumer without a committed offset starts, for the lag computation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OffsetResetPolicy {
    /// From the start of the log: the whole log is lag.
    Earliest,
    /// From the end of the log: no lag until something is committed.
    #[default]
    Latest,
}

impl OffsetResetPolicy {
    /// As Kafka's `auto.offset.reset` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetResetPolicy::Earliest => "earliest",
            OffsetResetPolicy::Latest => "latest",
        }
    }
}

/// What the operator observed and decided.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConsumerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The consumer group id in use (`spec.groupId`, else `metadata.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Replicas the Deployment was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Replicas ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Lag summed over every partition of every topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_lag: Option<i64>,
    /// How many replicas can get a partition (more would sit idle): for an autoscaled
    /// consumer with the range assignor the largest topic's partitions, otherwise the
    /// partitions of all topics together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Members of the consumer group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<i32>,
    /// Lag per topic, merged by `name` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub topics: Vec<TopicLag>,
    /// The replicas the consumer had when a KafkaOffsetReset held it at zero (annotation
    /// `tributary.io/held-by-offset-reset`): where it resumes when the hold is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_replicas: Option<i32>,
    /// The last replica decision and why it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_decision: Option<ReplicaDecision>,
    /// The last change of the replicas (from, to, why, when), until the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scaling: Option<LastScaling>,
    /// Recent replica recommendations, kept for the scale-down stabilization window so a
    /// restart of the operator does not forget them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_history: Option<ScaleHistory>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The lag of the group on one topic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicLag {
    /// Topic name on the broker.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Partitions whose lag is above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_with_lag: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
}

/// How many replicas the operator chose, and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaDecision {
    pub replicas: i32,
    /// A CamelCase word a machine can match on, e.g. `Fixed` (spec.replicas), `ScaledUp`,
    /// `ScaledDown`, `Steady`, `LagUnknown`.
    pub reason: String,
    /// How the number was reached, for a person, e.g.
    /// `lag 12000 / threshold 1000 = 12, capped at 6 partitions (range assignor: the largest
    /// topic's)`.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// The last time the operator changed the replicas, and why: kept until the next change (the
/// replica decision itself is remade at every poll).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastScaling {
    /// Replicas before the change.
    pub from: i32,
    /// Replicas after it.
    pub to: i32,
    /// `ScaledUp` or `ScaledDown`.
    pub reason: String,
    /// How the new number was reached (the replica decision's message then).
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl KafkaConsumer {
    /// The consumer group id: `spec.groupId`, else `metadata.name`.
    pub fn group_id(&self) -> Option<&str> {
        self.spec
            .group_id
            .as_deref()
            .or(self.metadata.name.as_deref())
    }
}

/// One past recommendation.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// When it was last made, in milliseconds since the Unix epoch; for the last entry (the
    /// recommendation in force), since when it has been made at every decision.
    pub at_unix_ms: i64,
    pub replicas: i32,
}

/// The state kept between decisions. Start with `ScaleHistory::default()`; store
/// [`Decision::history`] and pass it to the next decision.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleHistory {
    /// Oldest first, strictly decreasing replicas. It changes only when the recommendation
    /// does or an entry leaves the window, not with every lag poll.
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
}
