//! Where the SVG draws everything: three columns (producers | topics | consumer groups) sized
//! from an estimate of the text's width, each column's nodes stacked in the order `order`
//! chose, edge ends spread along the sides of their nodes and partition badges beside topics.

use super::order::order_columns;
use super::picture::{Edge, Kind, Model, Node, COLUMNS, EMPTY_TEXT};

/// Font sizes (px) and the approximate text metrics derived from them.
pub(super) const FONT_SIZE: f64 = 12.0;
pub(super) const DETAIL_SIZE: f64 = 11.0;
pub(super) const TITLE_SIZE: f64 = 16.0;
pub(super) const HEADING_SIZE: f64 = 11.0;
pub(super) const LABEL_SIZE: f64 = 10.0;
/// Distance between two baselines of a node's label.
pub(super) const LINE_HEIGHT: f64 = 16.0;
/// Padding around a node's text.
const PAD_X: f64 = 12.0;
pub(super) const PAD_Y: f64 = 8.0;
/// Half the height of a topic cylinder's lid (and of its rounded bottom).
pub(super) const LID: f64 = 6.0;
const MIN_NODE_WIDTH: f64 = 90.0;
/// Vertical space between two nodes of a column.
const NODE_GAP: f64 = 18.0;
/// Around the whole drawing.
pub(super) const MARGIN: f64 = 24.0;
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
pub(super) const LABEL_PAD_Y: f64 = 3.0;
/// Vertical distance between the ends of two edges on the same side of a node.
const PORT_GAP: f64 = 8.0;

/// An axis-aligned box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rect {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) w: f64,
    pub(super) h: f64,
}

impl Rect {
    pub(super) fn right(self) -> f64 {
        self.x + self.w
    }
    pub(super) fn bottom(self) -> f64 {
        self.y + self.h
    }
    pub(super) fn cx(self) -> f64 {
        self.x + self.w / 2.0
    }
    pub(super) fn cy(self) -> f64 {
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
pub(super) struct EdgeGeometry {
    /// Index into [`Model::edges`].
    pub(super) edge: usize,
    /// On the right side of the source node.
    pub(super) start: (f64, f64),
    /// On the left side of the target node (the arrow's tip).
    pub(super) end: (f64, f64),
    /// The badge showing the edge's label: index into [`Layout::labels`].
    pub(super) label: Option<usize>,
}

/// An edge label drawn as a badge. Every edge of a topic carries the same label (its
/// partitions), so rather than one per edge there is one badge where the edges into a topic
/// converge (left of it, clear of the arrowheads) and one where the edges out of it start.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Badge {
    pub(super) text: String,
    pub(super) rect: Rect,
}

/// Positions of everything the SVG draws, in user units.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    pub(super) width: f64,
    pub(super) height: f64,
    /// Baseline start of the title, when the graph has a name.
    pub(super) title: Option<(f64, f64)>,
    /// Column headings: text, centre, baseline.
    pub(super) headings: Vec<(&'static str, f64, f64)>,
    /// Baseline start of the "empty topology" note.
    pub(super) empty: Option<(f64, f64)>,
    /// The box of each node, indexed like [`Model::nodes`].
    pub(super) boxes: Vec<Rect>,
    /// The nodes of each column, top to bottom.
    pub(super) order: [Vec<usize>; 3],
    pub(super) edges: Vec<EdgeGeometry>,
    pub(super) labels: Vec<Badge>,
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
pub(super) fn text_top(kind: Kind, r: Rect) -> f64 {
    match kind {
        Kind::Topic | Kind::UndeclaredTopic => r.y + 2.0 * LID,
        Kind::Producer | Kind::Consumer => r.y,
    }
}

impl Layout {
    pub(super) fn new(model: &Model) -> Layout {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::topologies::graph::render::fixtures::{big, hostile, producer, ride_hailing, topic};
    use crate::topologies::graph::Graph;

    /// Boxes do not overlap one another, nor the labels, title or headings; labels do not
    /// overlap one another; node text fits its box; edges run left to right.
    pub(in crate::topologies::graph::render) fn check_layout(model: &Model, layout: &Layout) {
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
}
