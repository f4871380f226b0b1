//! A topology's graph: producers → topics → consumer groups. `build` makes a [`Graph`] from
//! resources (a topology's children, or any set of manifests); `render` draws it as Mermaid,
//! Graphviz DOT or a self-contained SVG.

mod build;
mod render;

pub use build::graph_of;
pub use render::{format_retention, render_grouped, Format, UnknownFormat};

/// What a drawing shows: the nodes and the edges between them. Built by [`graph_of`] from an
/// expanded topology's children, or from any set of manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    /// The topology's name (title of the drawing).
    pub name: String,
    pub topics: Vec<TopicNode>,
    pub producers: Vec<ProducerNode>,
    pub consumers: Vec<ConsumerNode>,
}

/// A topic: its name as the broker knows it, partitions and retention when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicNode {
    pub name: String,
    pub partitions: Option<i32>,
    /// `retention.ms` as configured (a number of milliseconds, or "-1" for unlimited).
    pub retention_ms: Option<String>,
}

/// A producer service and the topics it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerNode {
    pub name: String,
    pub topics: Vec<String>,
}

/// A consumer application, its group and the topics it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerNode {
    pub name: String,
    pub group: String,
    pub topics: Vec<String>,
}
