//! Graphs the renderers' tests draw: hand-made ones and random ones.

use proptest::prelude::*;

use crate::topologies::graph::{ConsumerNode, Graph, ProducerNode, TopicNode};

pub(super) fn topic(name: &str, partitions: Option<i32>, retention_ms: Option<&str>) -> TopicNode {
    TopicNode {
        name: name.to_string(),
        partitions,
        retention_ms: retention_ms.map(str::to_string),
    }
}

pub(super) fn producer(name: &str, topics: &[&str]) -> ProducerNode {
    ProducerNode {
        name: name.to_string(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
    }
}

pub(super) fn consumer(name: &str, group: &str, topics: &[&str]) -> ConsumerNode {
    ConsumerNode {
        name: name.to_string(),
        group: group.to_string(),
        topics: topics.iter().map(|t| t.to_string()).collect(),
    }
}

pub(super) fn ride_hailing() -> Graph {
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
pub(super) fn hostile() -> Graph {
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
pub(super) fn names(graph: &Graph) -> Vec<&str> {
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

/// A larger topology, with fan-in, fan-out and an undeclared topic.
pub(super) fn big() -> Graph {
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

/// Names from a small pool, so that graphs share, duplicate and leave topics undeclared, with
/// characters that need escaping.
pub(super) fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "c.d", "c-d", "c_d", "e\"f", "<g>", "h&i", "j k", "l|m", "end", "o", "x", "#1;",
        "ü", "流",
    ])
    .prop_map(str::to_string)
}

pub(super) fn graph() -> impl Strategy<Value = Graph> {
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
    (name(), topics, producers, consumers).prop_map(|(name, topics, producers, consumers)| Graph {
        name,
        topics,
        producers,
        consumers,
    })
}
