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
//!
//! The drawing is made in steps, each in its own module: `picture` turns the [`Graph`] into
//! nodes and edges (the same for every format); `mermaid` and `dot` write them out; `layout`
//! places them for the SVG (with `order` choosing each column's vertical order) and `svg`
//! writes that; `escape` quotes text for each output language.

mod dot;
mod escape;
#[cfg(test)]
mod fixtures;
mod layout;
mod mermaid;
mod order;
mod picture;
mod svg;
#[cfg(test)]
mod xml;

use std::fmt;
use std::str::FromStr;

use super::Graph;
use layout::Layout;
use picture::Model;

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

/// Several graphs drawn as one document in `format`, under `title`: each graph in a frame of
/// its own, headed by its name (for `tributary graph` of manifests spanning several clusters:
/// one graph per cluster, so a topic of one name on two clusters is two nodes).
pub fn render_grouped(title: &str, groups: &[Graph], format: Format) -> String {
    let models: Vec<Model> = groups
        .iter()
        .enumerate()
        .map(|(g, graph)| Model::new(graph).prefixed(&format!("g{g}_")))
        .collect();
    match format {
        Format::Mermaid => Model::mermaid_grouped(title, &models),
        Format::Dot => Model::dot_grouped(title, &models),
        Format::Svg => Model::svg_grouped(title, &models),
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use fixtures::{big, consumer, graph, hostile, names, producer, ride_hailing, topic};
    use layout::tests::check_layout;
    use mermaid::tests::check_mermaid_is_safe;
    use order::{crossings, initial_order};
    use picture::{Kind, EMPTY_TEXT};
    use xml::parse_xml;

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
