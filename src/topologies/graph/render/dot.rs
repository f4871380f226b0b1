//! The picture as Graphviz DOT.

use std::fmt::Write as _;

use super::escape::dot_quote;
use super::picture::{Kind, Model, COLUMNS, EMPTY_TEXT, MUTED_COLOR, TEXT_COLOR};

impl Model {
    pub(super) fn dot(&self) -> String {
        let mut out = dot_header(&self.title);
        if self.nodes.is_empty() {
            let _ = writeln!(
                out,
                "    empty [label={}, shape=plaintext];",
                dot_quote(EMPTY_TEXT)
            );
        }
        self.dot_columns(&mut out, "    ", "");
        self.dot_edges(&mut out);
        out.push_str("}\n");
        out
    }

    /// Several pictures in one digraph, each in a cluster labelled with its title (their node
    /// ids already told apart, see [`Model::prefixed`]).
    pub(super) fn dot_grouped(title: &str, groups: &[Model]) -> String {
        let mut out = dot_header(title);
        for (g, model) in groups.iter().enumerate() {
            let _ = writeln!(out, "    subgraph cluster_g{g} {{");
            let _ = writeln!(out, "        label={};", dot_quote(&model.title));
            out.push_str("        color=\"#4a5568\";\n");
            if model.nodes.is_empty() {
                let _ = writeln!(
                    out,
                    "        g{g}_empty [label={}, shape=plaintext];",
                    dot_quote(EMPTY_TEXT)
                );
            }
            model.dot_columns(&mut out, "        ", &format!("g{g}_"));
            out.push_str("    }\n");
        }
        for model in groups {
            model.dot_edges(&mut out);
        }
        out.push_str("}\n");
        out
    }

    /// A cluster per column, indented by `indent`, its id prefixed by `prefix`.
    fn dot_columns(&self, out: &mut String, indent: &str, prefix: &str) {
        for (column, (id, heading)) in COLUMNS.iter().enumerate() {
            let members = self.column(column);
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{indent}subgraph cluster_{prefix}{id} {{");
            let _ = writeln!(out, "{indent}    label={};", dot_quote(heading));
            let _ = writeln!(out, "{indent}    style=dashed;");
            let _ = writeln!(out, "{indent}    color=\"#a0aec0\";");
            let _ = writeln!(out, "{indent}    rank=same;");
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
                    "{indent}    {} [label={}, shape={shape}, style=\"{fill}\", fillcolor=\"{}\", color=\"{}\"];",
                    dot_quote(&node.id),
                    dot_quote(&label.join("\n")),
                    style.fill,
                    style.stroke
                );
            }
            let _ = writeln!(out, "{indent}}}");
        }
    }

    fn dot_edges(&self, out: &mut String) {
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
    }
}

fn dot_header(title: &str) -> String {
    const FONT: &str = "Helvetica,Arial,sans-serif";
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_quote(title));
    out.push_str("    rankdir=LR;\n");
    if !title.is_empty() {
        let _ = writeln!(out, "    label={};", dot_quote(title));
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
    out
}

#[cfg(test)]
mod tests {
    use crate::topologies::graph::render::fixtures::{hostile, ride_hailing};

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
}
