//! Drawing a topology: producers → topics → consumer groups, as Mermaid, Graphviz DOT and a
//! self-contained SVG laid out here (no external tool).
//!
//! All three renderers draw the same picture, built once from the [`Graph`]:
//!
//! - one node per producer, per topic and per consumer, in the order the [`Graph`] gives them;
//!   a topic that an edge names but [`Graph::topics`] does not declare is still drawn, dashed
//!   and marked "undeclared topic", after the declared ones (in order of first mention);
//! - one edge per (producer, topic written) and per (topic, consumer reading it), labelled with
//!   the topic's partitions when they are known (duplicates are drawn once);
//! - a topic shows its partitions and retention (see [`format_retention`]), a consumer its group.
//!
//! The SVG is laid out here, in three columns (producers | topics | consumer groups) sized from
//! an estimate of the text's width. The vertical order within each column is chosen to reduce
//! edge crossings (barycenter sweeps, then swaps of neighbours), starting from the input order
//! and never ending with more crossings than it has. Edges are curves with arrowheads, and a
//! topic's partitions are shown as a badge on each side where its edges meet it.
//!
//! Output is deterministic: the same graph always gives the same bytes (no hash-map order leaks).

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// What a drawing shows: the nodes and the edges between them. Built from an expanded
/// topology (`crate::topologies`), or from any set of manifests.
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

/// An output format of `tributary graph`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// A Mermaid `flowchart LR`, for a README or a pull request (the default).
    #[default]
    Mermaid,
    /// Graphviz DOT, for `dot -Tsvg` and friends.
    Dot,
    /// A standalone SVG image, laid out here.
    Svg,
}

impl Format {
    /// Every format, in the order a help text lists them.
    pub const ALL: [Format; 3] = [Format::Mermaid, Format::Dot, Format::Svg];

    /// The name the command line uses: "mermaid", "dot" or "svg".
    pub fn name(self) -> &'static str {
        match self {
            Format::Mermaid => "mermaid",
            Format::Dot => "dot",
            Format::Svg => "svg",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is none of "mermaid", "dot" or "svg".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown graph format {:?}: expected mermaid, dot or svg",
            self.0
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Parses a format name, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

impl Graph {
    /// The graph in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Mermaid => self.mermaid(),
            Format::Dot => self.dot(),
            Format::Svg => self.svg(),
        }
    }

    /// A Mermaid `flowchart LR`: producers (rectangles), topics (cylinders) and consumer
    /// groups (stadiums) in three subgraphs, the topology's name as the front-matter title.
    /// Node ids are made of `[A-Za-z0-9_]` only; every label is quoted, and any ASCII
    /// character other than letters, digits, space and `.-_/:,+=@` is written as a Mermaid
    /// entity (`#quot;`, `#lt;`, `#59;`, …), so no name can break or inject into the diagram.
    pub fn mermaid(&self) -> String {
        Model::new(self).mermaid()
    }

    /// Graphviz DOT: `digraph "name" { rankdir=LR; … }` with one cluster per column
    /// (producers as boxes, topics as cylinders, consumer groups as ellipses).
    pub fn dot(&self) -> String {
        Model::new(self).dot()
    }

    /// A standalone SVG document (no external fonts, scripts or style sheets), laid out in
    /// three columns — producers, topics, consumer groups — with the vertical order of each
    /// column chosen to reduce edge crossings.
    pub fn svg(&self) -> String {
        let model = Model::new(self);
        let layout = Layout::new(&model);
        model.svg(&layout)
    }
}

/// A `retention.ms` value for people: "604800000" → "7d", "3600000" → "1h", "90000" → "90s",
/// "1500" → "1500ms", "0" → "0ms", "-1" → "unlimited".
///
/// The value is always exact, never rounded: it is written in the largest unit among days,
/// hours, minutes, seconds and milliseconds that divides it (so 5400000 is "90m", not "1.5h").
/// Anything that is not a whole number of milliseconds ≥ 0, or -1, gives `None`
/// (surrounding whitespace is ignored).
pub fn format_retention(ms: &str) -> Option<String> {
    let ms = ms.trim();
    if ms == "-1" {
        return Some("unlimited".to_string());
    }
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = ms.parse().ok()?;
    if value == 0 {
        return Some("0ms".to_string());
    }
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    let (size, unit) = UNITS
        .into_iter()
        .find(|(size, _)| value.is_multiple_of(*size))
        .unwrap_or((1, "ms"));
    Some(format!("{}{unit}", value / size))
}

/// "1 partition", "12 partitions"; `None` when unknown (absent, zero or negative).
fn partitions_text(partitions: Option<i32>) -> Option<String> {
    match partitions {
        Some(1) => Some("1 partition".to_string()),
        Some(n) if n > 1 => Some(format!("{n} partitions")),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The picture, independent of the output format.
// ---------------------------------------------------------------------------------------------

/// What a node stands for; decides its column, shape and colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Producer,
    Topic,
    /// A topic named by a producer or consumer but missing from [`Graph::topics`].
    UndeclaredTopic,
    Consumer,
}

impl Kind {
    /// The column (layer) the node is drawn in: 0 producers, 1 topics, 2 consumer groups.
    fn column(self) -> usize {
        match self {
            Kind::Producer => 0,
            Kind::Topic | Kind::UndeclaredTopic => 1,
            Kind::Consumer => 2,
        }
    }

    /// The Mermaid/SVG class name.
    fn class(self) -> &'static str {
        match self {
            Kind::Producer => "producer",
            Kind::Topic => "topic",
            Kind::UndeclaredTopic => "undeclared",
            Kind::Consumer => "consumer",
        }
    }

    fn style(self) -> &'static Style {
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
struct Style {
    fill: &'static str,
    stroke: &'static str,
    dashed: bool,
}

/// Colour of node text in every format (dark on the light fills, also in dark themes).
const TEXT_COLOR: &str = "#1a202c";
/// Colour of secondary text and edges.
const MUTED_COLOR: &str = "#4a5568";

/// The columns: id (Mermaid subgraph / DOT cluster), heading.
const COLUMNS: [(&str, &str); 3] = [
    ("producers", "Producers"),
    ("topics", "Topics"),
    ("consumers", "Consumer groups"),
];

/// What an empty graph shows instead of nodes.
const EMPTY_TEXT: &str = "empty topology: no producers, topics or consumers";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// Unique, `[A-Za-z0-9_]+`: `p_`, `t_` or `c_` and the sanitized name.
    id: String,
    kind: Kind,
    /// The name as given.
    name: String,
    /// Lines under the name: details such as "24 partitions · 7d retention".
    details: Vec<String>,
}

impl Node {
    /// Every line of the label, the name first.
    fn lines(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.details.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Edge {
    /// Index into [`Model::nodes`].
    from: usize,
    to: usize,
    /// The topic's partitions, when known.
    label: Option<String>,
    /// An edge to or from an undeclared topic.
    dashed: bool,
}

/// The picture: nodes grouped by column (producers, then topics, then consumers, each in the
/// graph's order) and edges (producers' in order, then consumers').
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    title: String,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
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
    fn new(graph: &Graph) -> Model {
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
    fn column(&self, column: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].kind.column() == column)
            .collect()
    }

    // --- Mermaid -------------------------------------------------------------------------------

    fn mermaid(&self) -> String {
        let mut out = String::new();
        if !self.title.is_empty() {
            out.push_str("---\ntitle: ");
            out.push_str(&yaml_quote(&self.title));
            out.push_str("\n---\n");
        }
        out.push_str("flowchart LR\n");
        if self.nodes.is_empty() {
            let _ = writeln!(out, "    empty[\"{}\"]", mermaid_text(EMPTY_TEXT));
            return out;
        }
        for (column, (id, heading)) in COLUMNS.iter().enumerate() {
            let members = self.column(column);
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "    subgraph {id} [\"{heading}\"]");
            for i in members {
                let node = &self.nodes[i];
                let (open, close) = match node.kind {
                    Kind::Producer => ("[", "]"),
                    Kind::Topic | Kind::UndeclaredTopic => ("[(", ")]"),
                    Kind::Consumer => ("([", "])"),
                };
                let label: Vec<String> = node.lines().map(mermaid_text).collect();
                let _ = writeln!(
                    out,
                    "        {}{open}\"{}\"{close}",
                    node.id,
                    label.join("<br/>")
                );
            }
            out.push_str("    end\n");
        }
        for edge in &self.edges {
            let arrow = if edge.dashed { "-.->" } else { "-->" };
            let label = match &edge.label {
                Some(label) => format!("|{}|", mermaid_text(label)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "    {} {arrow}{label} {}",
                self.nodes[edge.from].id, self.nodes[edge.to].id
            );
        }
        for kind in [
            Kind::Producer,
            Kind::Topic,
            Kind::UndeclaredTopic,
            Kind::Consumer,
        ] {
            let members: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| n.kind == kind)
                .map(|n| n.id.as_str())
                .collect();
            if members.is_empty() {
                continue;
            }
            let style = kind.style();
            let dash = if style.dashed {
                ",stroke-dasharray:5 5"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    classDef {} fill:{},stroke:{},color:{TEXT_COLOR}{dash}",
                kind.class(),
                style.fill,
                style.stroke
            );
            let _ = writeln!(out, "    class {} {}", members.join(","), kind.class());
        }
        out
    }

    // --- DOT -----------------------------------------------------------------------------------

    fn dot(&self) -> String {
        const FONT: &str = "Helvetica,Arial,sans-serif";
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_quote(&self.title));
        out.push_str("    rankdir=LR;\n");
        if !self.title.is_empty() {
            let _ = writeln!(out, "    label={};", dot_quote(&self.title));
            out.push_str("    labelloc=t;\n");
        }
        let _ = writeln!(out, "    fontname=\"{FONT}\";");
        let _ = writeln!(
            out,
            "    node [fontname=\"{FONT}\", fontsize=11, fontcolor=\"{TEXT_COLOR}\"];"
        );
        let _ = writeln!(
            out,
            "    edge [fontname=\"{FONT}\", fontsize=10, color=\"{MUTED_COLOR}\", fontcolor=\"{MUTED_COLOR}\"];"
        );
        if self.nodes.is_empty() {
            let _ = writeln!(
                out,
                "    empty [label={}, shape=plaintext];",
                dot_quote(EMPTY_TEXT)
            );
        }
        for (column, (id, heading)) in COLUMNS.iter().enumerate() {
            let members = self.column(column);
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "    subgraph cluster_{id} {{");
            let _ = writeln!(out, "        label={};", dot_quote(heading));
            out.push_str("        style=dashed;\n");
            out.push_str("        color=\"#a0aec0\";\n");
            out.push_str("        rank=same;\n");
            for i in members {
                let node = &self.nodes[i];
                let style = node.kind.style();
                let shape = match node.kind {
                    Kind::Producer => "box",
                    Kind::Topic | Kind::UndeclaredTopic => "cylinder",
                    Kind::Consumer => "ellipse",
                };
                let fill = match (node.kind, style.dashed) {
                    (Kind::Producer, _) => "rounded,filled",
                    (_, true) => "dashed,filled",
                    (_, false) => "filled",
                };
                let label: Vec<&str> = node.lines().collect();
                let _ = writeln!(
                    out,
                    "        {} [label={}, shape={shape}, style=\"{fill}\", fillcolor=\"{}\", color=\"{}\"];",
                    dot_quote(&node.id),
                    dot_quote(&label.join("\n")),
                    style.fill,
                    style.stroke
                );
            }
            out.push_str("    }\n");
        }
        for edge in &self.edges {
            let mut attrs = Vec::new();
            if let Some(label) = &edge.label {
                attrs.push(format!("label={}", dot_quote(label)));
            }
            if edge.dashed {
                attrs.push("style=dashed".to_string());
            }
            let attrs = if attrs.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attrs.join(", "))
            };
            let _ = writeln!(
                out,
                "    {} -> {}{attrs};",
                dot_quote(&self.nodes[edge.from].id),
                dot_quote(&self.nodes[edge.to].id)
            );
        }
        out.push_str("}\n");
        out
    }

    // --- SVG -----------------------------------------------------------------------------------

    fn svg(&self, layout: &Layout) -> String {
        let mut out = String::new();
        let (w, h) = (num(layout.width), num(layout.height));
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"{}\" role=\"img\">",
            num(FONT_SIZE)
        );
        let title = if self.title.is_empty() {
            "topology"
        } else {
            &self.title
        };
        let _ = writeln!(out, "<title>{}</title>", xml_escape(title));
        let _ = writeln!(
            out,
            "<defs>\n<marker id=\"tributary-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{MUTED_COLOR}\"/></marker>\n</defs>"
        );
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>"
        );
        if let Some((x, y)) = layout.title {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" font-size=\"{}\" font-weight=\"bold\" fill=\"{TEXT_COLOR}\">{}</text>",
                num(x),
                num(y),
                num(TITLE_SIZE),
                xml_escape(&self.title)
            );
        }
        for (text, x, y) in &layout.headings {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" fill=\"#718096\">{}</text>",
                num(*x),
                num(*y),
                num(HEADING_SIZE),
                xml_escape(text)
            );
        }
        if let Some((x, y)) = layout.empty {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"{MUTED_COLOR}\">{}</text>",
                num(x),
                num(y),
                xml_escape(EMPTY_TEXT)
            );
        }

        out.push_str("<g class=\"edges\" fill=\"none\">\n");
        for geometry in &layout.edges {
            let edge = &self.edges[geometry.edge];
            let (from, to) = (&self.nodes[edge.from], &self.nodes[edge.to]);
            let ((x1, y1), (x2, y2)) = (geometry.start, geometry.end);
            let bend = (x2 - x1) / 2.0;
            let tooltip = match &edge.label {
                Some(label) => format!("{} → {} ({label})", from.name, to.name),
                None => format!("{} → {}", from.name, to.name),
            };
            let _ = writeln!(
                out,
                "<g class=\"edge\" data-source=\"{}\" data-target=\"{}\"><title>{}</title><path d=\"M{},{} C{},{} {},{} {},{}\" stroke=\"{MUTED_COLOR}\" stroke-width=\"1.5\"{} marker-end=\"url(#tributary-arrow)\"/></g>",
                from.id,
                to.id,
                xml_escape(&tooltip),
                num(x1),
                num(y1),
                num(x1 + bend),
                num(y1),
                num(x2 - bend),
                num(y2),
                num(x2),
                num(y2),
                if edge.dashed {
                    " stroke-dasharray=\"5 4\""
                } else {
                    ""
                }
            );
        }
        out.push_str("</g>\n");

        out.push_str("<g class=\"edge-labels\">\n");
        for Badge { text, rect } in &layout.labels {
            let _ = writeln!(
                out,
                "<g class=\"edge-label\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"#ffffff\" stroke=\"#e2e8f0\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" fill=\"{MUTED_COLOR}\">{}</text></g>",
                num(rect.x),
                num(rect.y),
                num(rect.w),
                num(rect.h),
                num(rect.cx()),
                num(rect.y + rect.h - LABEL_PAD_Y - 1.0),
                num(LABEL_SIZE),
                xml_escape(text)
            );
        }
        out.push_str("</g>\n");

        out.push_str("<g class=\"nodes\">\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let r = layout.boxes[i];
            let style = node.kind.style();
            let paint = format!(
                "fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"{}",
                style.fill,
                style.stroke,
                if style.dashed {
                    " stroke-dasharray=\"5 4\""
                } else {
                    ""
                }
            );
            let _ = write!(
                out,
                "<g class=\"node {}\" data-id=\"{}\"><title>{}</title>",
                node.kind.class(),
                node.id,
                xml_escape(&node.lines().collect::<Vec<_>>().join(" — "))
            );
            match node.kind {
                Kind::Producer => {
                    let _ = write!(
                        out,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" {paint}/>",
                        num(r.x),
                        num(r.y),
                        num(r.w),
                        num(r.h)
                    );
                }
                Kind::Consumer => {
                    let _ = write!(
                        out,
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" {paint}/>",
                        num(r.x),
                        num(r.y),
                        num(r.w),
                        num(r.h),
                        num(r.h / 2.0)
                    );
                }
                Kind::Topic | Kind::UndeclaredTopic => {
                    // A cylinder: the body with a rounded bottom, then the lid's ellipse.
                    let (rx, ry) = (r.w / 2.0, LID);
                    let _ = write!(
                        out,
                        "<path d=\"M{},{} L{},{} A{},{} 0 0 0 {},{} L{},{} A{},{} 0 0 0 {},{} Z\" {paint}/><ellipse cx=\"{}\" cy=\"{}\" rx=\"{}\" ry=\"{}\" {paint}/>",
                        num(r.x),
                        num(r.y + ry),
                        num(r.x),
                        num(r.bottom() - ry),
                        num(rx),
                        num(ry),
                        num(r.right()),
                        num(r.bottom() - ry),
                        num(r.right()),
                        num(r.y + ry),
                        num(rx),
                        num(ry),
                        num(r.x),
                        num(r.y + ry),
                        num(r.cx()),
                        num(r.y + ry),
                        num(rx),
                        num(ry)
                    );
                }
            }
            let _ = write!(
                out,
                "<text x=\"{}\" text-anchor=\"middle\" fill=\"{TEXT_COLOR}\">",
                num(r.cx())
            );
            let mut baseline = text_top(node.kind, r) + PAD_Y + LINE_HEIGHT * 0.75;
            for (k, line) in node.lines().enumerate() {
                let attrs = if k == 0 {
                    " font-weight=\"bold\"".to_string()
                } else {
                    format!(" font-size=\"{}\" fill=\"{MUTED_COLOR}\"", num(DETAIL_SIZE))
                };
                let _ = write!(
                    out,
                    "<tspan x=\"{}\" y=\"{}\"{attrs}>{}</tspan>",
                    num(r.cx()),
                    num(baseline),
                    xml_escape(line)
                );
                baseline += LINE_HEIGHT;
            }
            out.push_str("</text></g>\n");
        }
        out.push_str("</g>\n</svg>\n");
        out
    }
}

// ---------------------------------------------------------------------------------------------
// SVG layout.
// ---------------------------------------------------------------------------------------------

/// Font sizes (px) and the approximate text metrics derived from them.
const FONT_SIZE: f64 = 12.0;
const DETAIL_SIZE: f64 = 11.0;
const TITLE_SIZE: f64 = 16.0;
const HEADING_SIZE: f64 = 11.0;
const LABEL_SIZE: f64 = 10.0;
/// Distance between two baselines of a node's label.
const LINE_HEIGHT: f64 = 16.0;
/// Padding around a node's text.
const PAD_X: f64 = 12.0;
const PAD_Y: f64 = 8.0;
/// Half the height of a topic cylinder's lid (and of its rounded bottom).
const LID: f64 = 6.0;
const MIN_NODE_WIDTH: f64 = 90.0;
/// Vertical space between two nodes of a column.
const NODE_GAP: f64 = 18.0;
/// Around the whole drawing.
const MARGIN: f64 = 24.0;
/// Height of the title row and of the column headings row.
const TITLE_HEIGHT: f64 = 32.0;
const HEADING_HEIGHT: f64 = 24.0;
/// Horizontal space between columns: at least this, more when edge labels need it.
const MIN_COLUMN_GAP: f64 = 90.0;
/// Free space kept on each side of an edge label inside a column gap (room for the arrow).
const LABEL_CLEARANCE: f64 = 20.0;
/// Between an incoming badge and its topic (room for the arrowheads).
const ARROW_ROOM: f64 = 14.0;
/// Between a topic and its outgoing badge.
const BADGE_OFFSET: f64 = 6.0;
const LABEL_PAD_X: f64 = 5.0;
const LABEL_PAD_Y: f64 = 3.0;
/// Vertical distance between the ends of two edges on the same side of a node.
const PORT_GAP: f64 = 8.0;
/// Rounds of barycenter sweeps (down then up) when ordering the columns.
const SWEEPS: usize = 8;

/// An axis-aligned box.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn right(self) -> f64 {
        self.x + self.w
    }
    fn bottom(self) -> f64 {
        self.y + self.h
    }
    fn cx(self) -> f64 {
        self.x + self.w / 2.0
    }
    fn cy(self) -> f64 {
        self.y + self.h / 2.0
    }
    /// Whether the two boxes share any interior point.
    #[cfg(test)]
    fn overlaps(self, other: Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }
}

/// Where an edge starts and ends, and where its label sits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EdgeGeometry {
    /// Index into [`Model::edges`].
    edge: usize,
    /// On the right side of the source node.
    start: (f64, f64),
    /// On the left side of the target node (the arrow's tip).
    end: (f64, f64),
    /// The badge showing the edge's label: index into [`Layout::labels`].
    label: Option<usize>,
}

/// An edge label drawn as a badge. Every edge of a topic carries the same label (its
/// partitions), so rather than one per edge there is one badge where the edges into a topic
/// converge (left of it, clear of the arrowheads) and one where the edges out of it start.
#[derive(Debug, Clone, PartialEq)]
struct Badge {
    text: String,
    rect: Rect,
}

/// Positions of everything the SVG draws, in user units.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    width: f64,
    height: f64,
    /// Baseline start of the title, when the graph has a name.
    title: Option<(f64, f64)>,
    /// Column headings: text, centre, baseline.
    headings: Vec<(&'static str, f64, f64)>,
    /// Baseline start of the "empty topology" note.
    empty: Option<(f64, f64)>,
    /// The box of each node, indexed like [`Model::nodes`].
    boxes: Vec<Rect>,
    /// The nodes of each column, top to bottom.
    order: [Vec<usize>; 3],
    edges: Vec<EdgeGeometry>,
    labels: Vec<Badge>,
}

/// The approximate width of `text` at `size` px in a Helvetica-like font (in em per character:
/// narrow punctuation and `ijlft` less, `mw` and capitals more, CJK and emoji a full em).
fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.3,
            'f' | 't' | 'r' | ' ' | '(' | ')' | '[' | ']' | '-' | '/' => 0.4,
            'm' | 'w' => 0.85,
            'M' | 'W' => 0.95,
            'A'..='Z' => 0.72,
            c if c.is_ascii() => 0.6,
            c if is_wide(c) => 1.0,
            _ => 0.65,
        })
        .sum();
    em * size
}

/// East Asian wide characters and emoji, which take about a full em.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD)
}

/// The width a node's text needs (the name is bold, hence a little wider).
fn label_width(node: &Node) -> f64 {
    node.lines()
        .enumerate()
        .map(|(k, line)| {
            if k == 0 {
                text_width(line, FONT_SIZE) * 1.1
            } else {
                text_width(line, DETAIL_SIZE)
            }
        })
        .fold(0.0, f64::max)
}

/// Extra height a shape needs besides its text and padding (a topic's lid and bottom).
fn shape_extra_height(kind: Kind) -> f64 {
    match kind {
        Kind::Topic | Kind::UndeclaredTopic => 3.0 * LID,
        Kind::Producer | Kind::Consumer => 0.0,
    }
}

/// Where the padded text area of a node starts (below a topic's lid).
fn text_top(kind: Kind, r: Rect) -> f64 {
    match kind {
        Kind::Topic | Kind::UndeclaredTopic => r.y + 2.0 * LID,
        Kind::Producer | Kind::Consumer => r.y,
    }
}

/// The nodes of each column in model (= input) order.
fn initial_order(model: &Model) -> [Vec<usize>; 3] {
    [model.column(0), model.column(1), model.column(2)]
}

/// Number of pairs of edges that cross when the columns are ordered as in `order`.
/// Edges only join neighbouring columns, so two edges cross when they join the same pair of
/// columns and their ends are in opposite orders.
fn crossings(model: &Model, order: &[Vec<usize>; 3]) -> usize {
    let pos = positions(model, order);
    let ends: Vec<(usize, usize, usize)> = model
        .edges
        .iter()
        .map(|e| (model.nodes[e.from].kind.column(), pos[e.from], pos[e.to]))
        .collect();
    let mut count = 0;
    for (i, a) in ends.iter().enumerate() {
        for b in &ends[i + 1..] {
            if a.0 == b.0 && ((a.1 < b.1 && a.2 > b.2) || (a.1 > b.1 && a.2 < b.2)) {
                count += 1;
            }
        }
    }
    count
}

/// Each node's index within its column.
fn positions(model: &Model, order: &[Vec<usize>; 3]) -> Vec<usize> {
    let mut pos = vec![0; model.nodes.len()];
    for column in order {
        for (p, &node) in column.iter().enumerate() {
            pos[node] = p;
        }
    }
    pos
}

/// Orders each column to reduce edge crossings: barycenter sweeps (each node moves to the mean
/// position of its neighbours in the column just ordered; nodes without such neighbours keep
/// their place), alternately down (producers → consumers) and up, keeping the best order
/// seen, then swaps of adjacent nodes while a swap removes crossings. Starts from the input
/// order, so the result never has more crossings than the input.
fn order_columns(model: &Model) -> [Vec<usize>; 3] {
    let mut neighbours = vec![Vec::new(); model.nodes.len()];
    for edge in &model.edges {
        neighbours[edge.from].push(edge.to);
        neighbours[edge.to].push(edge.from);
    }
    let mut current = initial_order(model);
    let mut best = current.clone();
    let mut best_crossings = crossings(model, &best);
    for _ in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let passes: [&[(usize, usize)]; 2] = [&[(1, 0), (2, 1)], &[(1, 2), (0, 1)]];
        for pass in passes {
            for &(column, reference) in pass {
                barycenter(model, &neighbours, &mut current, column, reference);
            }
            let c = crossings(model, &current);
            if c < best_crossings {
                best_crossings = c;
                best = current.clone();
            }
        }
    }
    transpose(model, &neighbours, &mut best);
    best
}

/// Reorders `column` by the mean position of each node's neighbours in `reference`.
fn barycenter(
    model: &Model,
    neighbours: &[Vec<usize>],
    order: &mut [Vec<usize>; 3],
    column: usize,
    reference: usize,
) {
    let pos = positions(model, order);
    let mut movable: Vec<(f64, usize, usize)> = Vec::new(); // (barycenter, slot, node)
    for (slot, &node) in order[column].iter().enumerate() {
        let (sum, n) = neighbours[node]
            .iter()
            .filter(|&&nb| model.nodes[nb].kind.column() == reference)
            .fold((0usize, 0usize), |(sum, n), &nb| (sum + pos[nb], n + 1));
        if n > 0 {
            movable.push((sum as f64 / n as f64, slot, node));
        }
    }
    let slots: Vec<usize> = movable.iter().map(|m| m.1).collect();
    movable.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (slot, (_, _, node)) in slots.into_iter().zip(movable) {
        order[column][slot] = node;
    }
}

/// Swaps neighbouring nodes of a column while that removes crossings.
fn transpose(model: &Model, neighbours: &[Vec<usize>], order: &mut [Vec<usize>; 3]) {
    let mut pos = positions(model, order);
    // Crossings between the edges of `u` and those of `v` when `u` is above `v`.
    let pair = |pos: &[usize], u: usize, v: usize| -> usize {
        let mut count = 0;
        for &a in &neighbours[u] {
            for &b in &neighbours[v] {
                let same_column = model.nodes[a].kind.column() == model.nodes[b].kind.column();
                if same_column && pos[a] > pos[b] {
                    count += 1;
                }
            }
        }
        count
    };
    for _ in 0..4 * model.nodes.len().max(1) {
        let mut improved = false;
        for column in order.iter_mut() {
            for k in 1..column.len() {
                let (u, v) = (column[k - 1], column[k]);
                if pair(&pos, v, u) < pair(&pos, u, v) {
                    column.swap(k - 1, k);
                    pos.swap(u, v);
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

impl Layout {
    fn new(model: &Model) -> Layout {
        let order = order_columns(model);
        let mut boxes = vec![
            Rect {
                x: 0.0,
                y: 0.0,
                w: 0.0,
                h: 0.0
            };
            model.nodes.len()
        ];

        // Widths: every node of a column is as wide as the widest label (or heading) there.
        let mut widths = [0.0f64; 3];
        for (column, members) in order.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let heading = text_width(COLUMNS[column].1, HEADING_SIZE);
            widths[column] = members
                .iter()
                .map(|&i| {
                    let node = &model.nodes[i];
                    let round_ends = if node.kind == Kind::Consumer {
                        2.0 * PAD_X
                    } else {
                        0.0
                    };
                    label_width(node) + 2.0 * PAD_X + round_ends
                })
                .fold(MIN_NODE_WIDTH.max(heading), f64::max);
        }
        for (i, node) in model.nodes.iter().enumerate() {
            let lines = node.lines().count() as f64;
            boxes[i].w = widths[node.kind.column()];
            boxes[i].h = lines * LINE_HEIGHT + 2.0 * PAD_Y + shape_extra_height(node.kind);
        }

        // Columns left to right; a gap wide enough for the widest edge label in it.
        let label_size = |edge: &Edge| {
            edge.label.as_ref().map(|label| {
                (
                    text_width(label, LABEL_SIZE) + 2.0 * LABEL_PAD_X,
                    LABEL_SIZE + 2.0 * LABEL_PAD_Y,
                )
            })
        };
        let mut xs = [MARGIN; 3];
        let mut x = MARGIN;
        let mut previous: Option<usize> = None;
        for column in 0..3 {
            if order[column].is_empty() {
                continue;
            }
            if let Some(prev) = previous {
                let widest_label = model
                    .edges
                    .iter()
                    .filter(|e| model.nodes[e.from].kind.column() == prev)
                    .filter_map(label_size)
                    .map(|(w, _)| w)
                    .fold(0.0, f64::max);
                x += widths[prev] + MIN_COLUMN_GAP.max(widest_label + 2.0 * LABEL_CLEARANCE);
            }
            xs[column] = x;
            previous = Some(column);
        }
        let content_right = previous.map_or(MARGIN, |c| xs[c] + widths[c]);

        // Rows: each column stacked top to bottom, centred on the tallest.
        let title = (!model.title.is_empty()).then_some((MARGIN, MARGIN + TITLE_SIZE));
        let mut top = MARGIN + if title.is_some() { TITLE_HEIGHT } else { 0.0 };
        let headings: Vec<(&'static str, f64, f64)> = (0..3)
            .filter(|&c| !order[c].is_empty())
            .map(|c| (COLUMNS[c].1, xs[c] + widths[c] / 2.0, top + HEADING_SIZE))
            .collect();
        if !headings.is_empty() {
            top += HEADING_HEIGHT;
        }
        let heights: Vec<f64> = order
            .iter()
            .map(|members| {
                let nodes: f64 = members.iter().map(|&i| boxes[i].h).sum();
                nodes + NODE_GAP * members.len().saturating_sub(1) as f64
            })
            .collect();
        let tallest = heights.iter().copied().fold(0.0, f64::max);
        for (column, members) in order.iter().enumerate() {
            let mut y = top + (tallest - heights[column]) / 2.0;
            for &i in members {
                boxes[i].x = xs[column];
                boxes[i].y = y;
                y += boxes[i].h + NODE_GAP;
            }
        }
        let empty = model.nodes.is_empty().then_some((MARGIN, top + FONT_SIZE));
        let mut bottom = top + tallest;
        let mut right = content_right;
        if empty.is_some() {
            bottom = top + LINE_HEIGHT;
            right = right.max(MARGIN + text_width(EMPTY_TEXT, FONT_SIZE));
        }
        if title.is_some() {
            right = right.max(MARGIN + text_width(&model.title, TITLE_SIZE) * 1.1);
        }

        // Edge ends: the edges leaving (entering) a node are spread along its right (left)
        // side, in the vertical order of their other ends, so they fan out without tangling.
        let mut starts = vec![(0.0, 0.0); model.edges.len()];
        let mut ends = vec![(0.0, 0.0); model.edges.len()];
        for (i, r) in boxes.iter().enumerate() {
            let spread = |edges: Vec<usize>, other: &dyn Fn(usize) -> usize| -> Vec<(usize, f64)> {
                let mut edges = edges;
                edges.sort_by(|&a, &b| {
                    boxes[other(a)]
                        .cy()
                        .total_cmp(&boxes[other(b)].cy())
                        .then(a.cmp(&b))
                });
                let n = edges.len();
                let span = (PORT_GAP * n.saturating_sub(1) as f64).min(r.h / 2.0);
                edges
                    .into_iter()
                    .enumerate()
                    .map(|(k, e)| {
                        let offset = if n > 1 {
                            -span / 2.0 + span * k as f64 / (n - 1) as f64
                        } else {
                            0.0
                        };
                        (e, r.cy() + offset)
                    })
                    .collect()
            };
            let outgoing = (0..model.edges.len()).filter(|&e| model.edges[e].from == i);
            for (e, y) in spread(outgoing.collect(), &|e| model.edges[e].to) {
                starts[e] = (r.right(), y);
            }
            let incoming = (0..model.edges.len()).filter(|&e| model.edges[e].to == i);
            for (e, y) in spread(incoming.collect(), &|e| model.edges[e].from) {
                ends[e] = (r.x, y);
            }
        }
        // Badges: for each topic, one on each side where a labelled edge meets it.
        let mut labels: Vec<Badge> = Vec::new();
        let mut edge_labels = vec![None; model.edges.len()];
        for (i, r) in boxes.iter().enumerate() {
            if model.nodes[i].kind != Kind::Topic {
                continue;
            }
            for incoming in [true, false] {
                let mut badge = None;
                for (e, edge) in model.edges.iter().enumerate() {
                    let topic = if incoming { edge.to } else { edge.from };
                    let (Some(text), Some((w, h))) = (&edge.label, label_size(edge)) else {
                        continue;
                    };
                    if topic != i {
                        continue;
                    }
                    let index = *badge.get_or_insert_with(|| {
                        let x = if incoming {
                            r.x - ARROW_ROOM - w
                        } else {
                            r.right() + BADGE_OFFSET
                        };
                        let rect = Rect {
                            x,
                            y: r.cy() - h / 2.0,
                            w,
                            h,
                        };
                        labels.push(Badge {
                            text: text.clone(),
                            rect,
                        });
                        labels.len() - 1
                    });
                    edge_labels[e] = Some(index);
                }
            }
        }
        let edges = (0..model.edges.len())
            .map(|e| EdgeGeometry {
                edge: e,
                start: starts[e],
                end: ends[e],
                label: edge_labels[e],
            })
            .collect();

        Layout {
            width: right + MARGIN,
            height: bottom + MARGIN,
            title,
            headings,
            empty,
            boxes,
            order,
            edges,
            labels,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping.
// ---------------------------------------------------------------------------------------------

/// Text for inside a quoted Mermaid label: ASCII letters, digits, space and `.-_/:,+=@` as is,
/// `"` `&` `<` `>` as named entities (`#quot;` …), any other ASCII character (`#`, brackets,
/// pipes, backticks, `;`, `%`, control characters…) as a numeric one (`#59;`); non-ASCII text
/// (names in any script, the `·` separator) as is. Mermaid turns both back into the character.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | ' '
            | '.'
            | '-'
            | '_'
            | '/'
            | ':'
            | ','
            | '+'
            | '='
            | '@' => out.push(c),
            '"' => out.push_str("#quot;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c if c.is_ascii() => {
                let _ = write!(out, "#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar (for Mermaid's front-matter title).
fn yaml_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A DOT double-quoted string. Backslashes and quotes are escaped, a newline becomes `\n`
/// (Graphviz's line break) and `&` becomes `&amp;`, since Graphviz reads HTML entities such
/// as `&lt;` in labels; every other character is kept as is.
fn dot_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for XML content or a quoted attribute value; characters XML 1.0 does not allow
/// (most control characters) become U+FFFD.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with at most one decimal ("12", "12.5").
fn num(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- Fixtures ------------------------------------------------------------------------------

    fn topic(name: &str, partitions: Option<i32>, retention_ms: Option<&str>) -> TopicNode {
        TopicNode {
            name: name.to_string(),
            partitions,
            retention_ms: retention_ms.map(str::to_string),
        }
    }

    fn producer(name: &str, topics: &[&str]) -> ProducerNode {
        ProducerNode {
            name: name.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn consumer(name: &str, group: &str, topics: &[&str]) -> ConsumerNode {
        ConsumerNode {
            name: name.to_string(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn ride_hailing() -> Graph {
        Graph {
            name: "ride-hailing".to_string(),
            topics: vec![
                topic("ride-requests", Some(24), Some("604800000")),
                topic("driver-status", Some(12), Some("3600000")),
                topic("location-telemetry", Some(48), Some("3600000")),
            ],
            producers: vec![
                producer("ride-api", &["ride-requests"]),
                producer("driver-app", &["driver-status", "location-telemetry"]),
            ],
            consumers: vec![
                consumer(
                    "dispatch",
                    "dispatch",
                    &["ride-requests", "driver-status", "location-telemetry"],
                ),
                consumer(
                    "analytics",
                    "analytics",
                    &["ride-requests", "location-telemetry"],
                ),
                consumer("notifications", "notifications", &["ride-requests"]),
            ],
        }
    }

    /// Names that mean something to Mermaid, DOT, YAML or XML; a topic nobody declared; a
    /// producer and a consumer without topics.
    fn hostile() -> Graph {
        Graph {
            name: "evil \"name\" <x> & y: #1".to_string(),
            topics: vec![
                topic("a<b>&c.d", Some(3), Some("abc")),
                topic("quote\"d", None, Some("-1")),
                topic("back\\slash", Some(1), None),
            ],
            producers: vec![
                producer(
                    "say \"hi\" | [x] end",
                    &["a<b>&c.d", "quote\"d", "ghost.topic"],
                ),
                producer("lonely", &[]),
            ],
            consumers: vec![
                consumer("c#1;`md`", "g%%{init}%%", &["a<b>&c.d", "back\\slash"]),
                consumer("o", "", &["ghost.topic"]),
                consumer("&lt;b&gt;", "x", &[]),
            ],
        }
    }

    /// All the names a graph mentions: producers, declared and referenced topics, consumers.
    fn names(graph: &Graph) -> Vec<&str> {
        let mut names: Vec<&str> = graph.producers.iter().map(|p| p.name.as_str()).collect();
        names.extend(graph.topics.iter().map(|t| t.name.as_str()));
        names.extend(
            graph
                .producers
                .iter()
                .flat_map(|p| &p.topics)
                .map(String::as_str),
        );
        names.extend(
            graph
                .consumers
                .iter()
                .flat_map(|c| &c.topics)
                .map(String::as_str),
        );
        names.extend(graph.consumers.iter().map(|c| c.name.as_str()));
        names
    }

    // --- A minimal XML reader, to check the SVG is well-formed -----------------------------------

    /// An element with its attributes (entities decoded), child elements and direct text.
    #[derive(Debug, Default)]
    struct Element {
        name: String,
        attributes: Vec<(String, String)>,
        children: Vec<Element>,
        text: String,
    }

    impl Element {
        fn attr(&self, name: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// This element and all below it, in document order.
        fn descendants(&self) -> Vec<&Element> {
            let mut all = vec![self];
            for child in &self.children {
                all.extend(child.descendants());
            }
            all
        }

        /// The elements below this one (or itself) with this name and `class` among their
        /// classes.
        fn find(&self, name: &str, class: &str) -> Vec<&Element> {
            self.descendants()
                .into_iter()
                .filter(|e| {
                    e.name == name
                        && e.attr("class")
                            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
                })
                .collect()
        }

        /// The direct text of each `tspan` (or of a `text` without one) below this element.
        fn texts(&self) -> Vec<&str> {
            self.descendants()
                .into_iter()
                .filter(|e| e.name == "tspan" || (e.name == "text" && e.children.is_empty()))
                .map(|e| e.text.as_str())
                .collect()
        }
    }

    const WHITE_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

    /// Reads an XML document: an optional declaration, comments, exactly one root element;
    /// tags must nest and match, attribute values be quoted, unique and free of `<`, and every
    /// `&` start one of the five predefined entities or a character reference.
    fn parse_xml(input: &str) -> Result<Element, String> {
        let bad = input.chars().find(|&c| {
            matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
        });
        if let Some(c) = bad {
            return Err(format!("character {c:?} is not allowed in XML"));
        }
        let mut reader = XmlReader { rest: input };
        if reader.rest.starts_with("<?xml") {
            let end = reader
                .rest
                .find("?>")
                .ok_or("unterminated XML declaration")?;
            reader.rest = &reader.rest[end + 2..];
        }
        reader.misc()?;
        let root = reader.element()?;
        reader.misc()?;
        if !reader.rest.is_empty() {
            return Err(format!(
                "content after the root element: {:?}",
                reader.head()
            ));
        }
        Ok(root)
    }

    struct XmlReader<'a> {
        rest: &'a str,
    }

    impl XmlReader<'_> {
        fn head(&self) -> String {
            self.rest.chars().take(40).collect()
        }

        fn skip_white_space(&mut self) -> bool {
            let trimmed = self.rest.trim_start_matches(WHITE_SPACE);
            let skipped = trimmed.len() != self.rest.len();
            self.rest = trimmed;
            skipped
        }

        fn expect(&mut self, token: &str) -> Result<(), String> {
            self.rest = self
                .rest
                .strip_prefix(token)
                .ok_or_else(|| format!("expected {token:?} at {:?}", self.head()))?;
            Ok(())
        }

        /// White space and comments.
        fn misc(&mut self) -> Result<(), String> {
            loop {
                self.skip_white_space();
                if !self.rest.starts_with("<!--") {
                    return Ok(());
                }
                self.comment()?;
            }
        }

        fn comment(&mut self) -> Result<(), String> {
            let end = self.rest[4..].find("-->").ok_or("unterminated comment")?;
            self.rest = &self.rest[4 + end + 3..];
            Ok(())
        }

        fn name(&mut self) -> Result<String, String> {
            let end = self
                .rest
                .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
                .unwrap_or(self.rest.len());
            let name = &self.rest[..end];
            if !name.starts_with(|c: char| c.is_alphabetic() || c == '_' || c == ':') {
                return Err(format!("expected a name at {:?}", self.head()));
            }
            self.rest = &self.rest[end..];
            Ok(name.to_string())
        }

        fn element(&mut self) -> Result<Element, String> {
            self.expect("<")?;
            let mut element = Element {
                name: self.name()?,
                ..Element::default()
            };
            loop {
                let spaced = self.skip_white_space();
                if let Some(rest) = self.rest.strip_prefix("/>") {
                    self.rest = rest;
                    return Ok(element);
                }
                if let Some(rest) = self.rest.strip_prefix('>') {
                    self.rest = rest;
                    break;
                }
                if !spaced {
                    return Err(format!("expected white space at {:?}", self.head()));
                }
                let name = self.name()?;
                self.skip_white_space();
                self.expect("=")?;
                self.skip_white_space();
                let quote = self
                    .rest
                    .chars()
                    .next()
                    .filter(|&c| c == '"' || c == '\'')
                    .ok_or_else(|| format!("unquoted value of {name}"))?;
                let end = self.rest[1..]
                    .find(quote)
                    .ok_or_else(|| format!("unterminated value of {name}"))?;
                let raw = &self.rest[1..1 + end];
                if raw.contains('<') {
                    return Err(format!("'<' in the value of {name}"));
                }
                if element.attributes.iter().any(|(n, _)| *n == name) {
                    return Err(format!("duplicate attribute {name}"));
                }
                element.attributes.push((name, decode_xml(raw)?));
                self.rest = &self.rest[2 + end..];
            }
            loop {
                if let Some(rest) = self.rest.strip_prefix("</") {
                    self.rest = rest;
                    let name = self.name()?;
                    if name != element.name {
                        return Err(format!("</{name}> closes <{}>", element.name));
                    }
                    self.skip_white_space();
                    self.expect(">")?;
                    return Ok(element);
                } else if self.rest.starts_with("<!--") {
                    self.comment()?;
                } else if self.rest.starts_with('<') {
                    element.children.push(self.element()?);
                } else if self.rest.is_empty() {
                    return Err(format!("<{}> is never closed", element.name));
                } else {
                    let end = self.rest.find('<').unwrap_or(self.rest.len());
                    let raw = &self.rest[..end];
                    if raw.contains("]]>") {
                        return Err("\"]]>\" in text".to_string());
                    }
                    element.text.push_str(&decode_xml(raw)?);
                    self.rest = &self.rest[end..];
                }
            }
        }
    }

    fn decode_xml(raw: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let end = rest[amp..].find(';').ok_or("'&' without ';'")?;
            let entity = &rest[amp + 1..amp + end];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(decimal) = entity.strip_prefix('#') {
                        decimal.parse().ok()
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                        .ok_or_else(|| format!("unknown entity &{entity};"))?
                }
            };
            out.push(c);
            rest = &rest[amp + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    #[test]
    fn the_xml_reader_rejects_malformed_documents() {
        assert!(
            parse_xml("<?xml version=\"1.0\"?>\n<a x=\"1\" y='2'><b/>t &amp; &#60;</a>\n").is_ok()
        );
        for bad in [
            "<a><b></a>",
            "<a x=\"1\"y=\"2\"/>",
            "<a x=1/>",
            "<a x=\"<\"/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a>&foo;</a>",
            "<a>x & y</a>",
            "<a/><b/>",
            "<a>",
            "<a>\u{1}</a>",
        ] {
            assert!(parse_xml(bad).is_err(), "{bad:?} was accepted");
        }
    }

    // --- format_retention and Format ------------------------------------------------------------

    #[test]
    fn retention_is_written_exactly_in_the_largest_unit_that_divides_it() {
        let cases = [
            ("604800000", Some("7d")),
            ("86400000", Some("1d")),
            ("3600000", Some("1h")),
            ("7200000", Some("2h")),
            ("5400000", Some("90m")),
            ("60000", Some("1m")),
            ("90000", Some("90s")),
            ("1000", Some("1s")),
            ("1500", Some("1500ms")),
            ("1", Some("1ms")),
            ("0", Some("0ms")),
            ("-1", Some("unlimited")),
            (" 3600000 ", Some("1h")),
            ("31536000000", Some("365d")),
            ("", None),
            ("-2", None),
            ("+5", None),
            ("1.5", None),
            ("1h", None),
            ("abc", None),
            ("99999999999999999999999", None),
        ];
        for (input, expected) in cases {
            assert_eq!(format_retention(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn formats_have_names_both_ways() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
        }
        assert_eq!("mermaid".parse(), Ok(Format::Mermaid));
        assert_eq!("dot".parse(), Ok(Format::Dot));
        assert_eq!(" SVG ".parse(), Ok(Format::Svg));
        assert_eq!(Format::default(), Format::Mermaid);
        let error = "png".parse::<Format>().unwrap_err();
        assert_eq!(error, UnknownFormat("png".to_string()));
        assert_eq!(
            error.to_string(),
            "unknown graph format \"png\": expected mermaid, dot or svg"
        );
    }

    #[test]
    fn render_picks_the_format() {
        let graph = ride_hailing();
        assert_eq!(graph.render(Format::Mermaid), graph.mermaid());
        assert_eq!(graph.render(Format::Dot), graph.dot());
        assert_eq!(graph.render(Format::Svg), graph.svg());
    }

    // --- Mermaid -------------------------------------------------------------------------------

    #[test]
    fn mermaid_of_a_ride_hailing_topology() {
        let expected = r#"---
title: "ride-hailing"
---
flowchart LR
    subgraph producers ["Producers"]
        p_ride_api["ride-api"]
        p_driver_app["driver-app"]
    end
    subgraph topics ["Topics"]
        t_ride_requests[("ride-requests<br/>24 partitions · 7d retention")]
        t_driver_status[("driver-status<br/>12 partitions · 1h retention")]
        t_location_telemetry[("location-telemetry<br/>48 partitions · 1h retention")]
    end
    subgraph consumers ["Consumer groups"]
        c_dispatch(["dispatch<br/>group: dispatch"])
        c_analytics(["analytics<br/>group: analytics"])
        c_notifications(["notifications<br/>group: notifications"])
    end
    p_ride_api -->|24 partitions| t_ride_requests
    p_driver_app -->|12 partitions| t_driver_status
    p_driver_app -->|48 partitions| t_location_telemetry
    t_ride_requests -->|24 partitions| c_dispatch
    t_driver_status -->|12 partitions| c_dispatch
    t_location_telemetry -->|48 partitions| c_dispatch
    t_ride_requests -->|24 partitions| c_analytics
    t_location_telemetry -->|48 partitions| c_analytics
    t_ride_requests -->|24 partitions| c_notifications
    classDef producer fill:#ebf4ff,stroke:#3c6fb4,color:#1a202c
    class p_ride_api,p_driver_app producer
    classDef topic fill:#fff7e6,stroke:#c4761b,color:#1a202c
    class t_ride_requests,t_driver_status,t_location_telemetry topic
    classDef consumer fill:#e9f7ef,stroke:#2f855a,color:#1a202c
    class c_dispatch,c_analytics,c_notifications consumer
"#;
        assert_eq!(ride_hailing().mermaid(), expected);
    }

    #[test]
    fn mermaid_escapes_names_and_draws_undeclared_topics_dashed() {
        let expected = r##"---
title: "evil \"name\" <x> & y: #1"
---
flowchart LR
    subgraph producers ["Producers"]
        p_say__hi_____x__end["say #quot;hi#quot; #124; #91;x#93; end"]
        p_lonely["lonely"]
    end
    subgraph topics ["Topics"]
        t_a_b__c_d[("a#lt;b#gt;#amp;c.d<br/>3 partitions")]
        t_quote_d[("quote#quot;d<br/>unlimited retention")]
        t_back_slash[("back#92;slash<br/>1 partition")]
        t_ghost_topic[("ghost.topic<br/>undeclared topic")]
    end
    subgraph consumers ["Consumer groups"]
        c_c_1__md_(["c#35;1#59;#96;md#96;<br/>group: g#37;#37;#123;init#125;#37;#37;"])
        c_o(["o"])
        c__lt_b_gt_(["#amp;lt#59;b#amp;gt#59;<br/>group: x"])
    end
    p_say__hi_____x__end -->|3 partitions| t_a_b__c_d
    p_say__hi_____x__end --> t_quote_d
    p_say__hi_____x__end -.-> t_ghost_topic
    t_a_b__c_d -->|3 partitions| c_c_1__md_
    t_back_slash -->|1 partition| c_c_1__md_
    t_ghost_topic -.-> c_o
    classDef producer fill:#ebf4ff,stroke:#3c6fb4,color:#1a202c
    class p_say__hi_____x__end,p_lonely producer
    classDef topic fill:#fff7e6,stroke:#c4761b,color:#1a202c
    class t_a_b__c_d,t_quote_d,t_back_slash topic
    classDef undeclared fill:#fff5f5,stroke:#c53030,color:#1a202c,stroke-dasharray:5 5
    class t_ghost_topic undeclared
    classDef consumer fill:#e9f7ef,stroke:#2f855a,color:#1a202c
    class c_c_1__md_,c_o,c__lt_b_gt_ consumer
"##;
        assert_eq!(hostile().mermaid(), expected);
    }

    /// Whatever the names, a node line is `id`, an opening bracket, a quoted label free of
    /// quotes, brackets, pipes, `<` (but for `<br/>`) and `;` outside entities, and the closing
    /// bracket; ids are unique and made of `[A-Za-z0-9_]`.
    fn check_mermaid_is_safe(mermaid: &str) {
        let mut ids = HashSet::new();
        for line in mermaid.lines().skip_while(|l| *l != "flowchart LR").skip(1) {
            let line = line.trim();
            if line.starts_with("subgraph ") || line == "end" || line.starts_with("class") {
                continue;
            }
            if line.contains("-->") || line.contains("-.->") {
                let (from, rest) = line.split_once(' ').unwrap();
                let (arrow, to) = rest.rsplit_once(' ').unwrap();
                assert!(ids.contains(from) && ids.contains(to), "{line}");
                assert!(
                    ["-->", "-.->"].iter().any(|a| arrow.starts_with(a)),
                    "{line}"
                );
                continue;
            }
            let open = line
                .find('"')
                .unwrap_or_else(|| panic!("unquoted label: {line}"));
            let id = line[..open].trim_end_matches(['[', '(']);
            assert!(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert!(ids.insert(id.to_string()), "duplicate id {id}");
            let close = line.rfind('"').unwrap();
            let label = line[open + 1..close].replace("<br/>", "\n");
            let unsafe_char = label.chars().find(|c| {
                matches!(
                    c,
                    '"' | '<' | '>' | '[' | ']' | '(' | ')' | '{' | '}' | '|' | '`' | '%' | '\\'
                )
            });
            assert_eq!(unsafe_char, None, "{line}");
            // Every `;` closes an entity `#name;` or `#123;`.
            for (i, _) in label.match_indices(';') {
                let start = label[..i].rfind('#').expect(line);
                assert!(
                    label[start + 1..i]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric()),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn mermaid_ids_are_safe_and_unique_even_when_sanitized_names_clash() {
        let graph = Graph {
            name: String::new(),
            topics: vec![
                topic("a.b", None, None),
                topic("a-b", None, None),
                topic("a_b", None, None),
                topic("a_b_2", None, None),
            ],
            producers: vec![producer("a.b", &["a.b"]), producer("a b", &["a-b"])],
            consumers: vec![
                consumer("", "", &["a_b"]),
                consumer("é", "g", &["a_b_2"]),
                consumer("?", "g", &[]),
            ],
        };
        let model = Model::new(&graph);
        let ids: Vec<&str> = model.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "p_a_b",
                "p_a_b_2",
                "t_a_b",
                "t_a_b_2",
                "t_a_b_3",
                "t_a_b_2_2",
                "c_",
                "c__",
                "c___2"
            ]
        );
        let mermaid = graph.mermaid();
        assert!(
            mermaid.starts_with("flowchart LR\n"),
            "no title without a name"
        );
        assert!(mermaid.contains("    p_a_b_2 --> t_a_b_2\n"));
        assert!(mermaid.contains("    t_a_b_2_2 --> c__\n"));
        check_mermaid_is_safe(&mermaid);
        check_mermaid_is_safe(&hostile().mermaid());
        check_mermaid_is_safe(&ride_hailing().mermaid());
    }

    #[test]
    fn partitions_and_retention_are_left_out_when_unknown() {
        let graph = Graph {
            name: "t".to_string(),
            topics: vec![
                topic("one", Some(1), None),
                topic("none", None, None),
                topic("zero", Some(0), Some("garbage")),
                topic("kept", None, Some("0")),
            ],
            producers: vec![producer("p", &["one", "none", "zero", "kept"])],
            consumers: vec![],
        };
        let mermaid = graph.mermaid();
        for line in [
            "        t_one[(\"one<br/>1 partition\")]\n",
            "        t_none[(\"none\")]\n",
            "        t_zero[(\"zero\")]\n",
            "        t_kept[(\"kept<br/>0ms retention\")]\n",
            "    p_p -->|1 partition| t_one\n",
            "    p_p --> t_none\n",
            "    p_p --> t_zero\n",
        ] {
            assert!(mermaid.contains(line), "{line} missing from\n{mermaid}");
        }
        assert!(!mermaid.contains("subgraph consumers"));
    }

    // --- DOT -----------------------------------------------------------------------------------

    #[test]
    fn dot_of_a_ride_hailing_topology() {
        let expected = r##"digraph "ride-hailing" {
    rankdir=LR;
    label="ride-hailing";
    labelloc=t;
    fontname="Helvetica,Arial,sans-serif";
    node [fontname="Helvetica,Arial,sans-serif", fontsize=11, fontcolor="#1a202c"];
    edge [fontname="Helvetica,Arial,sans-serif", fontsize=10, color="#4a5568", fontcolor="#4a5568"];
    subgraph cluster_producers {
        label="Producers";
        style=dashed;
        color="#a0aec0";
        rank=same;
        "p_ride_api" [label="ride-api", shape=box, style="rounded,filled", fillcolor="#ebf4ff", color="#3c6fb4"];
        "p_driver_app" [label="driver-app", shape=box, style="rounded,filled", fillcolor="#ebf4ff", color="#3c6fb4"];
    }
    subgraph cluster_topics {
        label="Topics";
        style=dashed;
        color="#a0aec0";
        rank=same;
        "t_ride_requests" [label="ride-requests\n24 partitions · 7d retention", shape=cylinder, style="filled", fillcolor="#fff7e6", color="#c4761b"];
        "t_driver_status" [label="driver-status\n12 partitions · 1h retention", shape=cylinder, style="filled", fillcolor="#fff7e6", color="#c4761b"];
        "t_location_telemetry" [label="location-telemetry\n48 partitions · 1h retention", shape=cylinder, style="filled", fillcolor="#fff7e6", color="#c4761b"];
    }
    subgraph cluster_consumers {
        label="Consumer groups";
        style=dashed;
        color="#a0aec0";
        rank=same;
        "c_dispatch" [label="dispatch\ngroup: dispatch", shape=ellipse, style="filled", fillcolor="#e9f7ef", color="#2f855a"];
        "c_analytics" [label="analytics\ngroup: analytics", shape=ellipse, style="filled", fillcolor="#e9f7ef", color="#2f855a"];
        "c_notifications" [label="notifications\ngroup: notifications", shape=ellipse, style="filled", fillcolor="#e9f7ef", color="#2f855a"];
    }
    "p_ride_api" -> "t_ride_requests" [label="24 partitions"];
    "p_driver_app" -> "t_driver_status" [label="12 partitions"];
    "p_driver_app" -> "t_location_telemetry" [label="48 partitions"];
    "t_ride_requests" -> "c_dispatch" [label="24 partitions"];
    "t_driver_status" -> "c_dispatch" [label="12 partitions"];
    "t_location_telemetry" -> "c_dispatch" [label="48 partitions"];
    "t_ride_requests" -> "c_analytics" [label="24 partitions"];
    "t_location_telemetry" -> "c_analytics" [label="48 partitions"];
    "t_ride_requests" -> "c_notifications" [label="24 partitions"];
}
"##;
        assert_eq!(ride_hailing().dot(), expected);
    }

    #[test]
    fn dot_escapes_names_and_draws_undeclared_topics_dashed() {
        let dot = hostile().dot();
        for line in [
            "digraph \"evil \\\"name\\\" <x> &amp; y: #1\" {\n",
            "    label=\"evil \\\"name\\\" <x> &amp; y: #1\";\n",
            "        \"p_say__hi_____x__end\" [label=\"say \\\"hi\\\" | [x] end\", shape=box, style=\"rounded,filled\", fillcolor=\"#ebf4ff\", color=\"#3c6fb4\"];\n",
            "        \"t_a_b__c_d\" [label=\"a<b>&amp;c.d\\n3 partitions\", shape=cylinder, style=\"filled\", fillcolor=\"#fff7e6\", color=\"#c4761b\"];\n",
            "        \"t_back_slash\" [label=\"back\\\\slash\\n1 partition\", shape=cylinder, style=\"filled\", fillcolor=\"#fff7e6\", color=\"#c4761b\"];\n",
            "        \"t_ghost_topic\" [label=\"ghost.topic\\nundeclared topic\", shape=cylinder, style=\"dashed,filled\", fillcolor=\"#fff5f5\", color=\"#c53030\"];\n",
            "        \"c__lt_b_gt_\" [label=\"&amp;lt;b&amp;gt;\\ngroup: x\", shape=ellipse, style=\"filled\", fillcolor=\"#e9f7ef\", color=\"#2f855a\"];\n",
            "        \"c_o\" [label=\"o\", shape=ellipse, style=\"filled\", fillcolor=\"#e9f7ef\", color=\"#2f855a\"];\n",
            "        \"p_lonely\" [label=\"lonely\", shape=box, style=\"rounded,filled\", fillcolor=\"#ebf4ff\", color=\"#3c6fb4\"];\n",
            "    \"p_say__hi_____x__end\" -> \"t_quote_d\";\n",
            "    \"p_say__hi_____x__end\" -> \"t_ghost_topic\" [style=dashed];\n",
            "    \"t_ghost_topic\" -> \"c_o\" [style=dashed];\n",
        ] {
            assert!(dot.contains(line), "{line} missing from\n{dot}");
        }
        // Every quoted string is closed: outside `\x` escapes, quotes pair up on each line.
        for line in dot.lines() {
            let unescaped = line.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
        }
    }

    // --- Empty, undeclared, duplicates, determinism ---------------------------------------------

    #[test]
    fn an_empty_graph_says_so_in_every_format() {
        let empty = Graph::default();
        assert_eq!(
            empty.mermaid(),
            "flowchart LR\n    empty[\"empty topology: no producers, topics or consumers\"]\n"
        );
        let dot = empty.dot();
        assert!(
            dot.starts_with("digraph \"\" {\n    rankdir=LR;\n"),
            "{dot}"
        );
        assert!(dot.contains(
            "    empty [label=\"empty topology: no producers, topics or consumers\", shape=plaintext];\n"
        ));
        assert!(!dot.contains("cluster_"));
        let svg = parse_xml(&empty.svg()).unwrap();
        assert_eq!(svg.find("g", "node").len(), 0);
        assert!(svg.texts().contains(&EMPTY_TEXT));
    }

    #[test]
    fn producers_and_consumers_without_topics_still_appear() {
        let graph = Graph {
            name: "idle".to_string(),
            topics: vec![],
            producers: vec![producer("writer", &[])],
            consumers: vec![consumer("reader", "readers", &[])],
        };
        let mermaid = graph.mermaid();
        assert!(mermaid.contains("        p_writer[\"writer\"]\n"));
        assert!(mermaid.contains("        c_reader([\"reader<br/>group: readers\"])\n"));
        assert!(!mermaid.contains("subgraph topics"));
        assert!(!mermaid.contains("-->"));
        let dot = graph.dot();
        assert!(dot.contains("\"p_writer\" [label=\"writer\""));
        assert!(dot.contains("\"c_reader\" [label=\"reader\\ngroup: readers\""));
        let svg = parse_xml(&graph.svg()).unwrap();
        let ids: Vec<&str> = svg
            .find("g", "node")
            .iter()
            .filter_map(|n| n.attr("data-id"))
            .collect();
        assert_eq!(ids, ["p_writer", "c_reader"]);
    }

    #[test]
    fn undeclared_topics_are_drawn_once_in_order_of_first_mention() {
        let graph = Graph {
            name: "t".to_string(),
            topics: vec![topic("known", Some(6), None)],
            producers: vec![producer("p", &["later", "known", "first"])],
            consumers: vec![consumer("c", "g", &["first", "other", "later"])],
        };
        let model = Model::new(&graph);
        let topics: Vec<(&str, Kind)> = model
            .nodes
            .iter()
            .filter(|n| n.kind.column() == 1)
            .map(|n| (n.name.as_str(), n.kind))
            .collect();
        assert_eq!(
            topics,
            [
                ("known", Kind::Topic),
                ("later", Kind::UndeclaredTopic),
                ("first", Kind::UndeclaredTopic),
                ("other", Kind::UndeclaredTopic),
            ]
        );
        assert_eq!(model.edges.iter().filter(|e| e.dashed).count(), 5);
        let svg = graph.svg();
        let root = parse_xml(&svg).unwrap();
        let undeclared = root.find("g", "undeclared");
        assert_eq!(undeclared.len(), 3);
        for node in undeclared {
            assert_eq!(node.texts()[1], "undeclared topic");
            assert!(node
                .descendants()
                .iter()
                .any(|e| e.attr("stroke-dasharray").is_some()));
        }
    }

    #[test]
    fn duplicate_topics_and_references_are_drawn_once() {
        let graph = Graph {
            name: "t".to_string(),
            topics: vec![topic("a", Some(2), None), topic("a", Some(9), None)],
            producers: vec![producer("p", &["a", "a"])],
            consumers: vec![consumer("c", "g", &["a", "a"])],
        };
        assert_eq!(
            graph.mermaid(),
            "---\ntitle: \"t\"\n---\nflowchart LR\n    subgraph producers [\"Producers\"]\n        p_p[\"p\"]\n    end\n    subgraph topics [\"Topics\"]\n        t_a[(\"a<br/>2 partitions\")]\n    end\n    subgraph consumers [\"Consumer groups\"]\n        c_c([\"c<br/>group: g\"])\n    end\n    p_p -->|2 partitions| t_a\n    t_a -->|2 partitions| c_c\n    classDef producer fill:#ebf4ff,stroke:#3c6fb4,color:#1a202c\n    class p_p producer\n    classDef topic fill:#fff7e6,stroke:#c4761b,color:#1a202c\n    class t_a topic\n    classDef consumer fill:#e9f7ef,stroke:#2f855a,color:#1a202c\n    class c_c consumer\n"
        );
    }

    #[test]
    fn output_is_deterministic() {
        for graph in [ride_hailing(), hostile(), big()] {
            for format in Format::ALL {
                let first = graph.render(format);
                for _ in 0..5 {
                    // Each Model builds fresh hash maps with fresh random seeds.
                    assert_eq!(graph.render(format), first, "{format}");
                }
            }
        }
    }

    // --- SVG -----------------------------------------------------------------------------------

    /// A larger topology, with fan-in, fan-out and an undeclared topic.
    fn big() -> Graph {
        Graph {
            name: "bus-ticketing".to_string(),
            topics: vec![
                topic("bookings", Some(12), Some("604800000")),
                topic("cancellations", Some(6), Some("604800000")),
                topic("refunds", Some(6), Some("2592000000")),
                topic("schedule-updates", Some(3), Some("-1")),
                topic("fraud-alerts", Some(3), Some("86400000")),
            ],
            producers: vec![
                producer("schedule-service", &["schedule-updates"]),
                producer("booking-service", &["bookings", "refunds"]),
                producer("cancellation-service", &["cancellations", "refunds"]),
                producer("fraud-checker", &["fraud-alerts", "audit"]),
            ],
            consumers: vec![
                consumer(
                    "notifications",
                    "notify",
                    &["fraud-alerts", "refunds", "bookings"],
                ),
                consumer("fraud-checker", "fraud", &["bookings", "cancellations"]),
                consumer(
                    "availability",
                    "seats",
                    &["schedule-updates", "bookings", "cancellations"],
                ),
                consumer("auditor", "audit", &["audit"]),
            ],
        }
    }

    #[test]
    fn svg_is_well_formed_and_draws_every_node_and_edge() {
        for graph in [ride_hailing(), hostile(), big()] {
            let svg = graph.svg();
            assert!(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
            let root = parse_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
            assert_eq!(root.name, "svg");
            assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
            let model = Model::new(&graph);

            // Every node, with its label lines in order, the name first.
            let nodes = root.find("g", "node");
            assert_eq!(nodes.len(), model.nodes.len());
            for (drawn, node) in nodes.iter().zip(&model.nodes) {
                assert_eq!(drawn.attr("data-id"), Some(node.id.as_str()));
                assert_eq!(
                    drawn.attr("class"),
                    Some(format!("node {}", node.kind.class()).as_str())
                );
                assert_eq!(drawn.texts(), node.lines().collect::<Vec<_>>());
            }
            let drawn_names: HashSet<&str> = nodes.iter().map(|n| n.texts()[0]).collect();
            for name in names(&graph) {
                assert!(drawn_names.contains(name), "{name:?} not drawn");
            }

            // Every edge, from and to the right nodes, with an arrowhead.
            let edges = root.find("g", "edge");
            assert_eq!(edges.len(), model.edges.len());
            for (drawn, edge) in edges.iter().zip(&model.edges) {
                assert_eq!(
                    drawn.attr("data-source"),
                    Some(model.nodes[edge.from].id.as_str())
                );
                assert_eq!(
                    drawn.attr("data-target"),
                    Some(model.nodes[edge.to].id.as_str())
                );
                let path = drawn.children.iter().find(|c| c.name == "path").unwrap();
                assert_eq!(path.attr("marker-end"), Some("url(#tributary-arrow)"));
                assert!(path.attr("d").unwrap().starts_with('M'));
            }

            // Every label, once per topic side.
            let layout = Layout::new(&model);
            let labels: Vec<&str> = root
                .find("g", "edge-label")
                .iter()
                .map(|l| l.texts()[0])
                .collect();
            assert_eq!(
                labels,
                layout
                    .labels
                    .iter()
                    .map(|b| b.text.as_str())
                    .collect::<Vec<_>>()
            );
            for (geometry, edge) in layout.edges.iter().zip(&model.edges) {
                let badge = geometry.label.map(|i| layout.labels[i].text.as_str());
                assert_eq!(badge, edge.label.as_deref());
            }

            // Self-contained: nothing is fetched.
            for element in root.descendants() {
                assert!(!["script", "image", "use", "foreignObject", "style", "a"]
                    .contains(&element.name.as_str()));
                for (name, value) in &element.attributes {
                    assert!(
                        !name.contains("href")
                            && !value.contains("http:")
                            && !value.contains("https:")
                            || name == "xmlns",
                        "{name}={value}"
                    );
                }
            }
        }
    }

    #[test]
    fn svg_escapes_text() {
        let svg = hostile().svg();
        assert!(svg.contains("<title>evil &quot;name&quot; &lt;x&gt; &amp; y: #1</title>"));
        assert!(svg.contains(">a&lt;b&gt;&amp;c.d</tspan>"));
        assert!(svg.contains(">&amp;lt;b&amp;gt;</tspan>"));
        assert!(svg.contains(">say &quot;hi&quot; | [x] end</tspan>"));
        let control = Graph {
            producers: vec![producer("bell\u{7}", &[])],
            ..Graph::default()
        };
        let root = parse_xml(&control.svg()).unwrap();
        assert_eq!(root.find("g", "node")[0].texts(), ["bell\u{FFFD}"]);
    }

    #[test]
    fn the_view_box_is_sized_to_the_content() {
        for graph in [ride_hailing(), hostile(), big()] {
            let model = Model::new(&graph);
            let layout = Layout::new(&model);
            let root = parse_xml(&model.svg(&layout)).unwrap();
            let (w, h) = (num(layout.width), num(layout.height));
            assert_eq!(root.attr("viewBox"), Some(format!("0 0 {w} {h}").as_str()));
            assert_eq!(root.attr("width"), Some(w.as_str()));
            let inside = |r: Rect| {
                r.x >= MARGIN - 0.01
                    && r.y >= 0.0
                    && r.right() <= layout.width - MARGIN + 0.01
                    && r.bottom() <= layout.height - MARGIN + 0.01
            };
            for r in layout
                .boxes
                .iter()
                .chain(layout.labels.iter().map(|b| &b.rect))
            {
                assert!(
                    inside(*r),
                    "{r:?} outside {} × {}",
                    layout.width,
                    layout.height
                );
            }
            // No more than a margin of blank space on the right and at the bottom.
            let right = layout.boxes.iter().map(|r| r.right()).fold(0.0, f64::max);
            let bottom = layout.boxes.iter().map(|r| r.bottom()).fold(0.0, f64::max);
            assert!(layout.width - right <= MARGIN + 0.01 || graph.name.len() > 20);
            assert!((layout.height - bottom - MARGIN).abs() < 0.01);
        }
    }

    /// Boxes do not overlap one another, nor the labels, title or headings; labels do not
    /// overlap one another; node text fits its box; edges run left to right.
    fn check_layout(model: &Model, layout: &Layout) {
        let boxes = &layout.boxes;
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.w > 0.0 && a.h > 0.0);
            assert!(label_width(&model.nodes[i]) + 2.0 * PAD_X <= a.w);
            for b in &boxes[i + 1..] {
                assert!(!a.overlaps(*b), "{a:?} overlaps {b:?}");
            }
            for badge in &layout.labels {
                assert!(!a.overlaps(badge.rect), "{a:?} overlaps label {badge:?}");
            }
            let header_bottom = layout.headings.first().map_or(0.0, |h| h.2);
            assert!(a.y > header_bottom, "{a:?} overlaps the headings");
            if let Some((_, title)) = layout.title {
                assert!(a.y > title);
            }
        }
        for (i, a) in layout.labels.iter().enumerate() {
            for b in &layout.labels[i + 1..] {
                assert!(!a.rect.overlaps(b.rect), "{a:?} overlaps {b:?}");
            }
        }
        for geometry in &layout.edges {
            assert!(geometry.start.0 < geometry.end.0, "{geometry:?}");
            let edge = &model.edges[geometry.edge];
            let (from, to) = (boxes[edge.from], boxes[edge.to]);
            assert_eq!(geometry.start.0, from.right());
            assert_eq!(geometry.end.0, to.x);
            assert!(from.y < geometry.start.1 && geometry.start.1 < from.bottom());
            assert!(to.y < geometry.end.1 && geometry.end.1 < to.bottom());
        }
        // The columns hold the right nodes, each exactly once, in left-to-right order.
        let mut seen: Vec<usize> = layout.order.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..model.nodes.len()).collect::<Vec<_>>());
        for (column, members) in layout.order.iter().enumerate() {
            for &i in members {
                assert_eq!(model.nodes[i].kind.column(), column);
            }
            for pair in members.windows(2) {
                assert!(boxes[pair[0]].bottom() < boxes[pair[1]].y);
            }
        }
    }

    #[test]
    fn nodes_labels_and_headings_do_not_overlap() {
        for graph in [ride_hailing(), hostile(), big(), Graph::default()] {
            let model = Model::new(&graph);
            check_layout(&model, &Layout::new(&model));
        }
    }

    #[test]
    fn node_sizes_follow_their_text() {
        let graph = Graph {
            name: String::new(),
            topics: vec![
                topic("t", None, None),
                topic(
                    "a-much-longer-topic-name-than-the-others",
                    Some(3),
                    Some("60000"),
                ),
            ],
            producers: vec![producer("p", &["t"])],
            consumers: vec![],
        };
        let model = Model::new(&graph);
        let layout = Layout::new(&model);
        let (producer, short, long) = (layout.boxes[0], layout.boxes[1], layout.boxes[2]);
        assert_eq!(producer.w, MIN_NODE_WIDTH);
        assert!(long.w > 250.0, "{long:?}");
        assert_eq!(short.w, long.w, "a column is as wide as its widest node");
        assert!(long.h > short.h, "two lines are taller than one");
        assert!(layout.title.is_none());
    }

    #[test]
    fn the_layout_removes_crossings_the_input_order_has() {
        // a → z, b → y, c → x and x → u, y → v, z → w: 3 crossings in the given order, none
        // once topics and consumers are reversed.
        let graph = Graph {
            name: "crossed".to_string(),
            topics: ["x", "y", "z"]
                .iter()
                .map(|t| topic(t, Some(1), None))
                .collect(),
            producers: vec![
                producer("a", &["z"]),
                producer("b", &["y"]),
                producer("c", &["x"]),
            ],
            consumers: vec![
                consumer("u", "u", &["x"]),
                consumer("v", "v", &["y"]),
                consumer("w", "w", &["z"]),
            ],
        };
        let model = Model::new(&graph);
        assert_eq!(crossings(&model, &initial_order(&model)), 3);
        let layout = Layout::new(&model);
        assert_eq!(crossings(&model, &layout.order), 0);
        check_layout(&model, &layout);
        // Topics and consumers drawn bottom to top: x, y, z and u, v, w.
        let y = |i: usize| layout.boxes[i].y;
        assert!(y(3) > y(4) && y(4) > y(5), "topics");
        assert!(y(6) > y(7) && y(7) > y(8), "consumers");

        // An order without crossings is kept as given.
        let model = Model::new(&ride_hailing());
        let layout = Layout::new(&model);
        assert!(crossings(&model, &layout.order) <= crossings(&model, &initial_order(&model)));
        let model = Model::new(&big());
        let before = crossings(&model, &initial_order(&model));
        let after = crossings(&model, &Layout::new(&model).order);
        assert!(
            after < before,
            "{after} crossings, {before} in the input order"
        );
    }

    // --- Random graphs -------------------------------------------------------------------------

    /// Names from a small pool, so that graphs share, duplicate and leave topics undeclared, with
    /// characters that need escaping.
    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "c.d", "c-d", "c_d", "e\"f", "<g>", "h&i", "j k", "l|m", "end", "o", "x",
            "#1;", "ü", "流",
        ])
        .prop_map(str::to_string)
    }

    fn graph() -> impl Strategy<Value = Graph> {
        let topics = prop::collection::vec(
            (
                name(),
                prop::option::of(-1..100i32),
                prop::option::of("-1|0|3600000|1500|x"),
            ),
            0..7,
        )
        .prop_map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions, retention_ms)| TopicNode {
                    name,
                    partitions,
                    retention_ms,
                })
                .collect()
        });
        let producers = prop::collection::vec((name(), prop::collection::vec(name(), 0..4)), 0..6)
            .prop_map(|ps| {
                ps.into_iter()
                    .map(|(name, topics)| ProducerNode { name, topics })
                    .collect()
            });
        let consumers =
            prop::collection::vec((name(), name(), prop::collection::vec(name(), 0..4)), 0..6)
                .prop_map(|cs| {
                    cs.into_iter()
                        .map(|(name, group, topics)| ConsumerNode {
                            name,
                            group,
                            topics,
                        })
                        .collect()
                });
        (name(), topics, producers, consumers).prop_map(|(name, topics, producers, consumers)| {
            Graph {
                name,
                topics,
                producers,
                consumers,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_graph_draws_safely(graph in graph()) {
            let model = Model::new(&graph);
            let layout = Layout::new(&model);
            check_layout(&model, &layout);
            prop_assert!(crossings(&model, &layout.order) <= crossings(&model, &initial_order(&model)));

            let svg = model.svg(&layout);
            let root = parse_xml(&svg).map_err(|e| TestCaseError::fail(format!("{e}\n{svg}")))?;
            let drawn: HashSet<&str> = root.find("g", "node").iter().map(|n| n.texts()[0]).collect();
            for name in names(&graph) {
                prop_assert!(drawn.contains(name), "{:?} not drawn", name);
            }
            prop_assert_eq!(root.find("g", "edge").len(), model.edges.len());

            let mermaid = graph.mermaid();
            check_mermaid_is_safe(&mermaid);
            prop_assert_eq!(mermaid.matches(" --> ").count() + mermaid.matches(" -.-> ").count()
                + mermaid.matches(" -->|").count() + mermaid.matches(" -.->|").count(), model.edges.len());
            prop_assert_eq!(&graph.mermaid(), &mermaid);
            prop_assert_eq!(graph.dot(), graph.dot());
        }
    }
}
