//! Custom resource types of the `tributary.io/v1alpha1` API, one file per kind.

mod cluster;
mod conditions;
mod consumer;
pub mod crds;
mod offset_reset;
mod producer;
mod topic;
mod topology;
mod user;
mod workload;

pub use cluster::{
    CredentialSource, KafkaCluster, KafkaClusterSpec, KafkaClusterStatus, SaslMechanism, SaslSpec,
    SecretKeySelector, TlsSpec, TopicDefaults,
};
pub use conditions::{Condition, ConditionStatus, Reason};
pub use consumer::{
    AssignmentStrategy, Autoscaling, GroupDeletionPolicy, KafkaConsumer, KafkaConsumerSpec,
    KafkaConsumerStatus, LastScaling, OffsetResetPolicy, Recommendation, ReplicaDecision,
    ScaleHistory, TopicLag,
};
pub use offset_reset::{
    KafkaOffsetReset, KafkaOffsetResetSpec, KafkaOffsetResetStatus, PartitionOffset,
    PartitionReset, ResetPhase, ResetTarget, HOLD_ANNOTATION,
};
pub use producer::{
    KafkaProducer, KafkaProducerSpec, KafkaProducerStatus, PortProtocol, ProducerService,
    ServicePort, ServiceType,
};
pub use topic::{DeletionPolicy, KafkaTopic, KafkaTopicSpec, KafkaTopicStatus};
pub use topology::{
    ChildStatus, StreamTopology, StreamTopologySpec, StreamTopologyStatus, TopologyConsumer,
    TopologyDefaults, TopologyProducer, TopologyTopic,
};
pub use user::{
    AclOperation, AclPatternType, AclPermission, AclResource, AclResourceType, AclRule,
    AuthenticationType, KafkaUser, KafkaUserSpec, KafkaUserStatus, PasswordSource,
    UserAuthentication, UserAuthorization,
};
pub use workload::{WorkloadTemplate, MAX_TOPICS};

/// The API group of every Tributary kind.
pub const GROUP: &str = "tributary.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "tributary.io/v1alpha1";
