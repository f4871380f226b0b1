//! Parsed values every kind shares (Kafka topic names, Kubernetes names, field errors): raw
//! specs are checked once into these types, and everything downstream (planner, broker layer,
//! CLI, controllers) takes them, never the raw spec. Nothing here knows a resource kind.

mod field_error;
mod k8s_name;
pub mod shape;
pub mod topic_config;
mod topic_name;

pub use field_error::FieldError;
pub use k8s_name::{
    check_annotations_size, AnnotationsTooLarge, DataKey, DnsLabel, DnsSubdomain, LabelValue,
    NameError, PortName, QualifiedName, MAX_ANNOTATIONS_BYTES, MAX_DATA_KEY_LEN, MAX_DNS_LABEL_LEN,
    MAX_DNS_SUBDOMAIN_LEN, MAX_LABEL_VALUE_LEN, MAX_PORT_NAME_LEN,
};
pub use topic_name::TopicName;

/// Most partitions one topic may have: librdkafka, the client library, refuses more
/// (`RD_KAFKAP_PARTITIONS_MAX`) before anything is sent, and would fail the whole batch.
pub const MAX_PARTITIONS: i32 = 100_000;

/// Largest replication factor: librdkafka refuses more (`RD_KAFKAP_BROKERS_MAX`, below the
/// 16-bit integer Kafka stores it in) before anything is sent.
pub const MAX_REPLICATION_FACTOR: i32 = 10_000;
