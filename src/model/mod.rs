//! Parsed values every kind shares: raw specs are checked once into these types, and everything
//! downstream (planner, broker layer, CLI, controllers) takes them, never the raw spec. Nothing
//! here knows a resource kind.

mod field_error;
pub mod topic_config;
mod topic_name;

pub use field_error::FieldError;
pub use topic_name::TopicName;

/// Kafka stores a replication factor as a 16-bit integer.
pub const MAX_REPLICATION_FACTOR: i32 = i16::MAX as i32;
