//! Planner benchmark: `plan` over 10,000 and over 50,000 desired topics against an observed
//! broker snapshot, in three scenarios. Prints median and min milliseconds per plan, the target
//! (under 50 ms for 10,000 topics), and each scenario's cost a topic at 50,000 against 10,000
//! (linear: within 1.5x). Run with `cargo bench --bench planner`.
//!
//! The figures are printed, never asserted: a slow machine reports MISS, it does not fail.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use tributary::api::DeletionPolicy;
use tributary::kafka::{BrokerSnapshot, ObservedConfig, ObservedTopic};
use tributary::model::{topic_config, TopicName};
use tributary::topics::plan::{plan, Action, Plan};
use tributary::topics::DesiredTopic;

/// The sizes planned: the target's, and five times it (the cost a topic must stay flat).
const SIZES: [usize; 2] = [10_000, 50_000];
/// The size the 50 ms target is for.
const TARGET_TOPICS: usize = 10_000;
const WARMUP: usize = 3;
const RUNS: usize = 20;
/// How much more a topic may cost at 50,000 than at 10,000 and still count as linear.
const LINEAR_RATIO: f64 = 1.5;
const TARGET_MS: f64 = 50.0;

/// Realistic topic configs: 3 to 5 keys each, varying with the topic's index.
fn config_for(i: usize) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    c.insert(
        "retention.ms".to_owned(),
        (86_400_000u64 * (1 + (i % 14) as u64)).to_string(),
    );
    c.insert(
        "cleanup.policy".to_owned(),
        if i.is_multiple_of(5) {
            "compact,delete"
        } else {
            "delete"
        }
        .to_owned(),
    );
    c.insert("min.insync.replicas".to_owned(), "2".to_owned());
    if i.is_multiple_of(2) {
        c.insert("compression.type".to_owned(), "zstd".to_owned());
    }
    if i.is_multiple_of(3) {
        c.insert("max.message.bytes".to_owned(), "2097152".to_owned());
    }
    c
}

/// Names like `orders.zone-17.events-00042`: dotted, as real topic names are.
fn desired_topics(count: usize) -> Vec<DesiredTopic> {
    (0..count)
        .map(|i| DesiredTopic {
            name: TopicName::parse(&format!("svc{}.zone-{}.events-{i:05}", i % 40, i % 17))
                .expect("valid name"),
            partitions: 6 + (i % 4) as i32 * 3,
            replication_factor: Some(3),
            config: config_for(i),
            deletion_policy: DeletionPolicy::Retain,
        })
        .collect()
}

/// What the broker would report for `d` once converged, as Apache Kafka lists it: every
/// topic config, the managed ones as dynamic overrides, the rest as defaults.
fn converged(d: &DesiredTopic) -> ObservedTopic {
    let mut configs: BTreeMap<String, ObservedConfig> = topic_config::known_keys()
        .map(|k| {
            (
                k.to_owned(),
                ObservedConfig {
                    value: Some("0".to_owned()),
                    dynamic: false,
                    read_only: false,
                },
            )
        })
        .collect();
    for (k, v) in &d.config {
        configs.insert(
            k.clone(),
            ObservedConfig {
                value: Some(v.clone()),
                dynamic: true,
                read_only: false,
            },
        );
    }
    ObservedTopic {
        topic_id: None,
        partitions: d.partitions,
        replication_factor: 3,
        configs,
    }
}

fn known_keys() -> Option<BTreeSet<String>> {
    Some(topic_config::known_keys().map(str::to_owned).collect())
}

/// A broker with a few unrelated topics (internal and other teams'), which every plan
/// still checks for name collisions.
fn unrelated_topics() -> BTreeMap<String, ObservedTopic> {
    (0..500)
        .map(|i| {
            (
                format!("other-team_{i}.stream"),
                ObservedTopic {
                    topic_id: None,
                    partitions: 12,
                    replication_factor: 3,
                    configs: BTreeMap::new(),
                },
            )
        })
        .chain(std::iter::once((
            "__consumer_offsets".to_owned(),
            ObservedTopic {
                topic_id: None,
                partitions: 50,
                replication_factor: 3,
                configs: BTreeMap::new(),
            },
        )))
        .collect()
}

fn empty_broker(_: &[DesiredTopic]) -> BrokerSnapshot {
    BrokerSnapshot {
        topics: unrelated_topics(),
        known_config_keys: known_keys(),
    }
}

fn converged_broker(desired: &[DesiredTopic]) -> BrokerSnapshot {
    let mut topics = unrelated_topics();
    topics.extend(desired.iter().map(|d| (d.name.to_string(), converged(d))));
    BrokerSnapshot {
        topics,
        known_config_keys: known_keys(),
    }
}

/// A third missing, a third with drifted configs, a third with partitions to grow.
fn mixed_broker(desired: &[DesiredTopic]) -> BrokerSnapshot {
    let mut topics = unrelated_topics();
    for (i, d) in desired.iter().enumerate() {
        let mut t = converged(d);
        match i % 3 {
            0 => continue,
            1 => {
                let drifted = t.configs.get_mut("retention.ms").expect("managed key");
                drifted.value = Some("3600000".to_owned());
                t.configs.insert(
                    "cleanup.policy".to_owned(),
                    ObservedConfig {
                        value: Some("compact".to_owned()),
                        dynamic: true,
                        read_only: false,
                    },
                );
            }
            _ => t.partitions = d.partitions - 2,
        }
        topics.insert(d.name.to_string(), t);
    }
    BrokerSnapshot {
        topics,
        known_config_keys: known_keys(),
    }
}

/// Builds the observed snapshot of one scenario from the desired topics.
type Observe = fn(&[DesiredTopic]) -> BrokerSnapshot;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(p: &Plan) -> String {
    let count = |f: fn(&Action) -> bool| p.actions.iter().filter(|a| f(a)).count();
    format!(
        "{} create, {} grow, {} reconfigure, {} refused",
        count(|a| matches!(a, Action::Create { .. })),
        count(|a| matches!(a, Action::IncreasePartitions { .. })),
        count(|a| matches!(a, Action::AlterConfigs { .. })),
        count(|a| matches!(a, Action::Refuse { .. })),
    )
}

/// The median and minimum time of one plan of `desired` against `snapshot`, and the last plan.
fn time_plan(desired: &[DesiredTopic], snapshot: &BrokerSnapshot) -> (f64, f64, Plan) {
    let mut last = Plan::default();
    for _ in 0..WARMUP {
        last = black_box(plan(black_box(desired), &[], black_box(snapshot)));
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let p = plan(black_box(desired), &[], black_box(snapshot));
            let took = start.elapsed();
            // Dropping the plan is not part of planning.
            drop(black_box(p));
            took
        })
        .collect();
    times.sort();
    (ms(times[RUNS / 2]), ms(times[0]), last)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, selects scenarios by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let scenarios: [(&str, Observe); 3] = [
        ("empty broker", empty_broker),
        ("converged", converged_broker),
        ("mixed", mixed_broker),
    ];

    println!("planner: {WARMUP} warm-up + {RUNS} timed runs per scenario and size");
    println!(
        "{:>7} {:<14} {:>10} {:>10} {:>12} {:>8}  {:<14} actions",
        "topics", "scenario", "median ms", "min ms", "us a topic", "actions", "target < 50 ms"
    );
    let mut all_pass = true;
    // Median microseconds a topic, by scenario, at each size.
    let mut per_topic: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for size in SIZES {
        let desired = desired_topics(size);
        for (name, observe) in scenarios {
            if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let snapshot = observe(&desired);
            let (median, min, last) = time_plan(&desired, &snapshot);
            let verdict = if size == TARGET_TOPICS {
                let pass = median < TARGET_MS;
                all_pass &= pass;
                if pass {
                    "PASS"
                } else {
                    "MISS"
                }
            } else {
                "-"
            };
            let us = median * 1000.0 / size as f64;
            per_topic.entry(name).or_default().push(us);
            println!(
                "{:>7} {:<14} {:>10.2} {:>10.2} {:>12.2} {:>8}  {:<14} {}",
                size,
                name,
                median,
                min,
                us,
                last.actions.len(),
                verdict,
                summary(&last)
            );
        }
    }
    println!(
        "planner target (median < {TARGET_MS} ms per {TARGET_TOPICS}-topic plan): {}",
        if all_pass { "PASS" } else { "MISS" }
    );
    for (name, us) in &per_topic {
        if let [small, large] = us.as_slice() {
            let ratio = large / small;
            println!(
                "linear ({name}): a topic costs {ratio:.2}x at {} what it costs at {} (target <= {LINEAR_RATIO}x): {}",
                SIZES[1],
                SIZES[0],
                if ratio <= LINEAR_RATIO { "PASS" } else { "MISS" }
            );
        }
    }
}
