//! The picture as a Mermaid `flowchart LR`.

use std::fmt::Write as _;

use super::escape::{mermaid_text, yaml_quote};
use super::picture::{Kind, Model, COLUMNS, EMPTY_TEXT, TEXT_COLOR};

impl Model {
    pub(super) fn mermaid(&self) -> String {
        let mut out = mermaid_header(&self.title);
        if self.nodes.is_empty() {
            let _ = writeln!(out, "    empty[\"{}\"]", mermaid_text(EMPTY_TEXT));
            return out;
        }
        self.mermaid_columns(&mut out, "    ", "");
        self.mermaid_edges(&mut out);
        mermaid_classes(&mut out, &[self]);
        out
    }

    /// Several pictures in one flowchart, each in a subgraph headed by its title (their node
    /// ids already told apart, see [`Model::prefixed`]).
    pub(super) fn mermaid_grouped(title: &str, groups: &[Model]) -> String {
        let mut out = mermaid_header(title);
        for (g, model) in groups.iter().enumerate() {
            let _ = writeln!(
                out,
                "    subgraph g{g} [\"{}\"]",
                mermaid_text(&model.title)
            );
            if model.nodes.is_empty() {
                let _ = writeln!(out, "        g{g}_empty[\"{}\"]", mermaid_text(EMPTY_TEXT));
            }
            model.mermaid_columns(&mut out, "        ", &format!("g{g}_"));
            out.push_str("    end\n");
        }
        for model in groups {
            model.mermaid_edges(&mut out);
        }
        mermaid_classes(&mut out, &groups.iter().collect::<Vec<_>>());
        out
    }

    /// A subgraph per column, indented by `indent`, its id prefixed by `prefix`.
    fn mermaid_columns(&self, out: &mut String, indent: &str, prefix: &str) {
        for (column, (id, heading)) in COLUMNS.iter().enumerate() {
            let members = self.column(column);
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{indent}subgraph {prefix}{id} [\"{heading}\"]");
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
                    "{indent}    {}{open}\"{}\"{close}",
                    node.id,
                    label.join("<br/>")
                );
            }
            let _ = writeln!(out, "{indent}end");
        }
    }

    fn mermaid_edges(&self, out: &mut String) {
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
    }
}

fn mermaid_header(title: &str) -> String {
    let mut out = String::new();
    if !title.is_empty() {
        out.push_str("---\ntitle: ");
        out.push_str(&yaml_quote(title));
        out.push_str("\n---\n");
    }
    out.push_str("flowchart LR\n");
    out
}

/// A class per kind of node, and its members among every model's nodes.
fn mermaid_classes(out: &mut String, models: &[&Model]) {
    for kind in [
        Kind::Producer,
        Kind::Topic,
        Kind::UndeclaredTopic,
        Kind::Consumer,
    ] {
        let members: Vec<&str> = models
            .iter()
            .flat_map(|m| m.nodes.iter())
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
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::topologies::graph::render::fixtures::{
        consumer, hostile, producer, ride_hailing, topic,
    };
    use crate::topologies::graph::Graph;

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
    pub(in crate::topologies::graph::render) fn check_mermaid_is_safe(mermaid: &str) {
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
}
