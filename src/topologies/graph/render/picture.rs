//! The picture, independent of the output format: one node per producer, topic and consumer,
//! one edge per (producer, topic written) and (topic, consumer reading it), with the colours
//! and column headings every format shares.

use std::collections::{HashMap, HashSet};

use super::format_retention;
use crate::topologies::graph::Graph;

/// "1 partition", "12 partitions"; `None` when unknown (absent, zero or negative).
fn partitions_text(partitions: Option<i32>) -> Option<String> {
    match partitions {
        Some(1) => Some("1 partition".to_string()),
        Some(n) if n > 1 => Some(format!("{n} partitions")),
        _ => None,
    }
}

/// What a node stands for; decides its column, shape and colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Producer,
    Topic,
    /// A topic named by a producer or consumer but missing from [`Graph::topics`].
    UndeclaredTopic,
    Consumer,
}

impl Kind {
    /// The column (layer) the node is drawn in: 0 producers, 1 topics, 2 consumer groups.
    pub(super) fn column(self) -> usize {
        match self {
            Kind::Producer => 0,
            Kind::Topic | Kind::UndeclaredTopic => 1,
            Kind::Consumer => 2,
        }
    }

    /// The Mermaid/SVG class name.
    pub(super) fn class(self) -> &'static str {
        match self {
            Kind::Producer => "producer",
            Kind::Topic => "topic",
            Kind::UndeclaredTopic => "undeclared",
            Kind::Consumer => "consumer",
        }
    }

    pub(super) fn style(self) -> &'static Style {
        match self {
            Kind::Producer => &Style {
                fill: "#ebf4ff",
                stroke: "#3c6fb4",
                dashed: false,
            },
            Kind::Topic => &Style {
                fill: "#fff7e6",
                stroke: "#c4761b",
                dashed: false,
            },
            Kind::UndeclaredTopic => &Style {
                fill: "#fff5f5",
                stroke: "#c53030",
                dashed: true,
            },
            Kind::Consumer => &Style {
                fill: "#e9f7ef",
                stroke: "#2f855a",
                dashed: false,
            },
        }
    }
}

/// Colours of a kind of node, shared by the three formats.
pub(super) struct Style {
    pub(super) fill: &'static str,
    pub(super) stroke: &'static str,
    pub(super) dashed: bool,
}

/// Colour of node text in every format (dark on the light fills, also in dark themes).
pub(super) const TEXT_COLOR: &str = "#1a202c";
/// Colour of secondary text and edges.
pub(super) const MUTED_COLOR: &str = "#4a5568";

/// The columns: id (Mermaid subgraph / DOT cluster), heading.
pub(super) const COLUMNS: [(&str, &str); 3] = [
    ("producers", "Producers"),
    ("topics", "Topics"),
    ("consumers", "Consumer groups"),
];

/// What an empty graph shows instead of nodes.
pub(super) const EMPTY_TEXT: &str = "empty topology: no producers, topics or consumers";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// Unique, `[A-Za-z0-9_]+`: `p_`, `t_` or `c_` and the sanitized name.
    pub(super) id: String,
    pub(super) kind: Kind,
    /// The name as given.
    pub(super) name: String,
    /// Lines under the name: details such as "24 partitions · 7d retention".
    pub(super) details: Vec<String>,
}

impl Node {
    /// Every line of the label, the name first.
    pub(super) fn lines(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.details.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Edge {
    /// Index into [`Model::nodes`].
    pub(super) from: usize,
    pub(super) to: usize,
    /// The topic's partitions, when known.
    pub(super) label: Option<String>,
    /// An edge to or from an undeclared topic.
    pub(super) dashed: bool,
}

/// The picture: nodes grouped by column (producers, then topics, then consumers, each in the
/// graph's order) and edges (producers' in order, then consumers').
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Model {
    pub(super) title: String,
    pub(super) nodes: Vec<Node>,
    pub(super) edges: Vec<Edge>,
}

/// Hands out node ids: a kind prefix and the name with every character outside
/// `[A-Za-z0-9_]` replaced by `_`; a clash gets `_2`, `_3`, … appended.
#[derive(Default)]
struct Ids {
    used: HashSet<String>,
}

impl Ids {
    fn allocate(&mut self, prefix: &str, name: &str) -> String {
        let base: String = prefix
            .chars()
            .chain(name.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            }))
            .collect();
        let mut id = base.clone();
        let mut n = 2;
        while !self.used.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        id
    }
}

impl Model {
    /// This model with every node id prefixed by `prefix`, so that several drawn in one
    /// document keep distinct ids (the same topic on two clusters is two nodes).
    pub(super) fn prefixed(mut self, prefix: &str) -> Model {
        for node in &mut self.nodes {
            node.id = format!("{prefix}{}", node.id);
        }
        self
    }

    pub(super) fn new(graph: &Graph) -> Model {
        let mut ids = Ids::default();
        let mut nodes = Vec::new();

        for producer in &graph.producers {
            nodes.push(Node {
                id: ids.allocate("p_", &producer.name),
                kind: Kind::Producer,
                name: producer.name.clone(),
                details: Vec::new(),
            });
        }

        // Declared topics (the first of duplicate names wins: an edge cannot tell them apart),
        // then the undeclared ones in order of first mention.
        let mut topic_index: HashMap<&str, usize> = HashMap::new();
        for topic in &graph.topics {
            if topic_index.contains_key(topic.name.as_str()) {
                continue;
            }
            topic_index.insert(&topic.name, nodes.len());
            let details: Vec<String> = [
                partitions_text(topic.partitions),
                topic
                    .retention_ms
                    .as_deref()
                    .and_then(format_retention)
                    .map(|r| format!("{r} retention")),
            ]
            .into_iter()
            .flatten()
            .collect();
            nodes.push(Node {
                id: ids.allocate("t_", &topic.name),
                kind: Kind::Topic,
                name: topic.name.clone(),
                details: if details.is_empty() {
                    Vec::new()
                } else {
                    vec![details.join(" · ")]
                },
            });
        }
        let mentioned = graph
            .producers
            .iter()
            .flat_map(|p| &p.topics)
            .chain(graph.consumers.iter().flat_map(|c| &c.topics));
        for name in mentioned {
            if topic_index.contains_key(name.as_str()) {
                continue;
            }
            topic_index.insert(name, nodes.len());
            nodes.push(Node {
                id: ids.allocate("t_", name),
                kind: Kind::UndeclaredTopic,
                name: name.clone(),
                details: vec!["undeclared topic".to_string()],
            });
        }

        let first_consumer = nodes.len();
        for consumer in &graph.consumers {
            nodes.push(Node {
                id: ids.allocate("c_", &consumer.name),
                kind: Kind::Consumer,
                name: consumer.name.clone(),
                details: if consumer.group.is_empty() {
                    Vec::new()
                } else {
                    vec![format!("group: {}", consumer.group)]
                },
            });
        }

        let partitions: HashMap<&str, Option<i32>> = graph
            .topics
            .iter()
            .rev() // so that the first of duplicate names wins
            .map(|t| (t.name.as_str(), t.partitions))
            .collect();
        let mut edges = Vec::new();
        let mut seen = HashSet::new();
        let mut add = |from: usize, to: usize, topic: &str| {
            if seen.insert((from, to)) {
                let declared = partitions.get(topic);
                edges.push(Edge {
                    from,
                    to,
                    label: declared.and_then(|p| partitions_text(*p)),
                    dashed: declared.is_none(),
                });
            }
        };
        for (i, producer) in graph.producers.iter().enumerate() {
            for topic in &producer.topics {
                add(i, topic_index[topic.as_str()], topic);
            }
        }
        for (i, consumer) in graph.consumers.iter().enumerate() {
            for topic in &consumer.topics {
                add(topic_index[topic.as_str()], first_consumer + i, topic);
            }
        }

        Model {
            title: graph.name.clone(),
            nodes,
            edges,
        }
    }

    /// The indices of the nodes of `column`, in model order.
    pub(super) fn column(&self, column: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].kind.column() == column)
            .collect()
    }
}
