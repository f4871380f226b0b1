//! `KafkaConsumer` / `KafkaProducer`: applications as Kubernetes workloads. The pipeline:
//! validation of the spec into typed values, the connection facts a workload gets from its
//! `KafkaCluster`, pure rendering of the Deployment (and Service) each runs as, server-side
//! apply of what differs, consumer lag (batched per cluster) and the autoscaling decision, and
//! status. Validation and rendering do no I/O; the controllers ([`consumer`], [`producer`])
//! read the inputs, call them, and apply the result.
//!
//! What a rendered pod gets:
//! - labels `app.kubernetes.io/name`, `app.kubernetes.io/managed-by: tributary` and
//!   `tributary.io/consumer` / `tributary.io/producer` (the selector), plus `template.labels`;
//! - the connection as environment variables, before `template.env` (whose names may not
//!   collide with them: refused by validation): `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_GROUP_ID`
//!   (consumers), `KAFKA_TOPICS`, `KAFKA_SECURITY_PROTOCOL`, and with SASL
//!   `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, with TLS
//!   `KAFKA_SSL_CA_PEM`, `KAFKA_SSL_CERTIFICATE_PEM`, `KAFKA_SSL_KEY_PEM` — every secret
//!   through `valueFrom.secretKeyRef`;
//! - the annotation `tributary.io/connection-hash`, a stable hash of the connection settings
//!   and Secret references, so changing them rolls the pods.

mod applied;
mod apply;
pub mod autoscale;
mod connection;
mod consumer;
mod controller;
mod decisions;
mod env;
mod hash;
mod lag_batcher;
mod producer;
mod render;
mod validate;

pub use apply::{finish, joined, verdict, Outcome};

pub use connection::{ConnectionFacts, Credential, SaslRefs, SecurityProtocol, TlsRefs};
pub use controller::{CONSUMERS, PRODUCERS};
pub use env::{
    consumer_env_names, producer_env_names, ENV_BOOTSTRAP_SERVERS, ENV_GROUP_ID,
    ENV_SASL_MECHANISM, ENV_SASL_PASSWORD, ENV_SASL_USERNAME, ENV_SECURITY_PROTOCOL,
    ENV_SSL_CA_PEM, ENV_SSL_CERTIFICATE_PEM, ENV_SSL_KEY_PEM, ENV_TOPICS,
};
pub use hash::StableHasher;
pub use render::{
    connection_env, consumer_deployment, producer_deployment, producer_service, RenderError,
    CONSUMER_CONTAINER, PRODUCER_CONTAINER,
};
pub use validate::{
    broker_topics, check_topic_clusters, consumer_read_warnings, topic_names, validate_consumer,
    validate_producer, AutoscalingPolicy, KnownTopic, Owner, Scaling, TopicNames, TopicRef,
    ValidatedConsumer, ValidatedPort, ValidatedProducer, ValidatedService,
};

/// `app.kubernetes.io/name`: the resource's name.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/managed-by`: always [`MANAGER`].
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of `app.kubernetes.io/managed-by`, and the server-side-apply field manager.
pub const MANAGER: &str = "tributary";
/// Selector label of a consumer's pods: the `KafkaConsumer`'s name.
pub const LABEL_CONSUMER: &str = "tributary.io/consumer";
/// Selector label of a producer's pods: the `KafkaProducer`'s name.
pub const LABEL_PRODUCER: &str = "tributary.io/producer";
/// Pod-template annotation: [`ConnectionFacts::hash`].
pub const ANNOTATION_CONNECTION_HASH: &str = "tributary.io/connection-hash";

#[cfg(test)]
mod tests;
