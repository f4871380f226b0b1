//! Parsed, validated values: raw specs are checked once into these types, and everything
//! downstream (planner, broker layer, CLI, controllers) takes them, never the raw spec.

mod desired;
mod field_error;
mod observed;
pub mod topic_config;
mod topic_name;

pub use desired::{resolve_topic, validate_cluster, DesiredTopic};
pub use field_error::FieldError;
pub use observed::{BrokerSnapshot, ObservedConfig, ObservedTopic};
pub use topic_name::TopicName;
