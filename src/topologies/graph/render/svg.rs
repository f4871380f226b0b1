//! The picture as a standalone SVG document, drawn where the [`Layout`] placed it.

use std::fmt::Write as _;

use super::escape::xml_escape;
use super::layout::{
    text_top, Badge, Layout, DETAIL_SIZE, FONT_SIZE, HEADING_SIZE, LABEL_PAD_Y, LABEL_SIZE, LID,
    LINE_HEIGHT, MARGIN, PAD_Y, TITLE_SIZE,
};
use super::picture::{Kind, Model, EMPTY_TEXT, MUTED_COLOR, TEXT_COLOR};

impl Model {
    /// Several pictures in one SVG document, stacked top to bottom under `title`, each laid out
    /// on its own (and titled with its own title) as a nested `<svg>`.
    pub(super) fn svg_grouped(title: &str, groups: &[Model]) -> String {
        let drawn: Vec<(Layout, String)> = groups
            .iter()
            .map(|model| {
                let layout = Layout::new(model);
                let svg = model.svg(&layout);
                let body = svg
                    .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
                    .unwrap_or(&svg)
                    .to_owned();
                (layout, body)
            })
            .collect();
        let band = MARGIN + TITLE_SIZE + MARGIN / 2.0;
        let width = drawn.iter().map(|(l, _)| l.width).fold(
            MARGIN * 2.0 + title.chars().count() as f64 * TITLE_SIZE * 0.6,
            f64::max,
        );
        let height = band + drawn.iter().map(|(l, _)| l.height).sum::<f64>();
        let (w, h) = (num(width), num(height));
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"{}\" role=\"img\">",
            num(FONT_SIZE)
        );
        let _ = writeln!(out, "<title>{}</title>", xml_escape(title));
        let _ = writeln!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>"
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" font-weight=\"bold\" fill=\"{TEXT_COLOR}\">{}</text>",
            num(MARGIN),
            num(MARGIN + TITLE_SIZE),
            num(TITLE_SIZE),
            xml_escape(title)
        );
        let mut y = band;
        for (layout, body) in &drawn {
            // A nested <svg> is placed by x and y; the rest of its opening tag stays as is.
            let placed = body.replacen("<svg ", &format!("<svg x=\"0\" y=\"{}\" ", num(y)), 1);
            out.push_str(&placed);
            y += layout.height;
        }
        out.push_str("</svg>\n");
        out
    }

    pub(super) fn svg(&self, layout: &Layout) -> String {
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
    use std::collections::HashSet;

    use super::*;
    use crate::topologies::graph::render::fixtures::{big, hostile, names, producer, ride_hailing};
    use crate::topologies::graph::render::layout::{Rect, MARGIN};
    use crate::topologies::graph::render::xml::parse_xml;
    use crate::topologies::graph::Graph;

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
}
