//! `KafkaUser`: an application's Kafka identity. [`validate`] checks a spec offline (the CLI
//! and the controller call the same function).

pub mod validate;

pub use validate::validate_user;
