//! `KafkaTopic`: one broker topic kept equal to its spec. The pipeline, in data-flow order:
//! [`desired`] (spec → validated topic with the cluster's defaults), the broker snapshot
//! ([`crate::kafka`]), [`plan`] (pure: desired × observed → actions), [`execute`] (one batched
//! request per kind of change), [`batcher`] (many reconciles of one cluster → one round trip),
//! [`status`] (pure: outcome → kstatus conditions) and [`reconcile`] (the controller), which
//! asks [`claims`] (an index of the KafkaTopic watch) whether another KafkaTopic owns its topic.

mod batch_size;
pub mod batcher;
mod claims;
mod controller;
mod desired;
pub mod execute;
pub mod plan;
mod reconcile;
pub mod status;

pub use claims::{conflict_owner, Claims};
pub use controller::KIND;
pub use desired::{resolve_topic, DesiredTopic};
pub use reconcile::{reconcile, trigger_hash, TOPIC_FINALIZER};

#[cfg(test)]
mod tests;
