//! `KafkaCluster`: how to reach a Kafka cluster. Validation of the spec (shared with every kind
//! that refers to a cluster) and the probe that reports the cluster's facts in status.

mod controller;
mod reconcile;
mod validate;

pub use controller::KIND;
pub use reconcile::reconcile;
pub use validate::validate_cluster;
