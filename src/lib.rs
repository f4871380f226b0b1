//! Tributary: a Kubernetes operator that manages streaming topology on Apache Kafka.
//!
//! Data flows one way: manifests → validated model → broker snapshot → plan (pure) →
//! batched execution → report.

pub mod api;
pub mod autoscale;
pub mod cli;
pub mod controller;
pub mod execute;
pub mod health;
pub mod kafka;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod operate;
pub mod plan;
pub mod rbac;
pub mod topology;
pub mod workload;
