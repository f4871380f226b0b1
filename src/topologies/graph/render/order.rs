//! The vertical order of each column, chosen to reduce edge crossings.

use super::picture::Model;

/// Rounds of barycenter sweeps (down then up) when ordering the columns.
const SWEEPS: usize = 8;

/// The nodes of each column in model (= input) order.
pub(super) fn initial_order(model: &Model) -> [Vec<usize>; 3] {
    [model.column(0), model.column(1), model.column(2)]
}

/// Number of pairs of edges that cross when the columns are ordered as in `order`.
/// Edges only join neighbouring columns, so two edges cross when they join the same pair of
/// columns and their ends are in opposite orders.
pub(super) fn crossings(model: &Model, order: &[Vec<usize>; 3]) -> usize {
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
pub(super) fn order_columns(model: &Model) -> [Vec<usize>; 3] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topologies::graph::render::fixtures::{
        big, consumer, producer, ride_hailing, topic,
    };
    use crate::topologies::graph::render::layout::{tests::check_layout, Layout};
    use crate::topologies::graph::Graph;

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
}
