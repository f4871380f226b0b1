//! Tributary: a Kubernetes operator that manages streaming topology on Apache Kafka.
//!
//! The crate is laid out as one room per resource kind beside shared layers that know no kind
//! (see ARCHITECTURE.md). From the bottom up — a module imports only from those listed before
//! it:
//!
//! - [`api`]: the CRD types, one file per kind, and the condition reasons;
//! - [`model`]: parsed values every kind shares (names, field errors, the topic-config catalogue);
//! - [`kafka`]: broker access from a KafkaCluster's settings;
//! - [`runtime`]: what every controller shares (the Context, caches, metrics, error policy);
//! - the rooms, each a kind's pipeline end to end: [`clusters`], [`topics`], [`users`],
//!   [`workloads`], [`topologies`];
//! - [`manifest`]: manifests read from files, validated with the rooms' own rules;
//! - [`operator`]: the process (controllers registered per kind, leader election, HTTP);
//! - [`cli`]: the `tributary` command line.

pub mod api;
pub mod cli;
pub mod clusters;
pub mod kafka;
pub mod manifest;
pub mod model;
pub mod offsets;
pub mod operator;
pub mod runtime;
pub mod topics;
pub mod topologies;
pub mod users;
pub mod workloads;
