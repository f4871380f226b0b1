//! `StreamTopology`: expansion into child resources (with the graph's validation), the
//! controller that applies and prunes them and aggregates their status, and drawing it.

mod controller;
mod expand;
pub mod graph;
mod reconcile;
#[cfg(test)]
pub(crate) mod tests;

pub use controller::KIND;
pub use expand::{
    child_name, expand, topic_child_name, Expansion, DESCRIPTION_ANNOTATION, ENTRY_LABEL,
    KEY_ANNOTATION, SCHEMA_ANNOTATION, TOPOLOGY_LABEL,
};
pub use graph::graph_of;
pub use reconcile::{reconcile, Children};
