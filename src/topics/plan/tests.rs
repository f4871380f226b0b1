//! Planner tests: one unit test per rule, then property tests against a small model broker.

use super::*;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::kafka::ObservedConfig;
use crate::model::topic_config;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn name(s: &str) -> TopicName {
    TopicName::parse(s).unwrap()
}

fn desired(n: &str, partitions: i32, rf: Option<i32>, config: &[(&str, &str)]) -> DesiredTopic {
    DesiredTopic {
        name: name(n),
        partitions,
        replication_factor: rf,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        deletion_policy: DeletionPolicy::Retain,
    }
}

fn dynamic(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: true,
        read_only: false,
    }
}

fn inherited(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: false,
        read_only: false,
    }
}

fn read_only(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: false,
        read_only: true,
    }
}

fn topic(partitions: i32, rf: i32, configs: &[(&str, ObservedConfig)]) -> ObservedTopic {
    ObservedTopic {
        topic_id: Some("id".into()),
        partitions,
        replication_factor: rf,
        configs: configs
            .iter()
            .map(|(k, c)| ((*k).to_owned(), c.clone()))
            .collect(),
    }
}

fn snapshot(topics: &[(&str, ObservedTopic)]) -> BrokerSnapshot {
    BrokerSnapshot {
        topics: topics
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.clone()))
            .collect(),
        known_config_keys: None,
    }
}

fn known(keys: &[&str]) -> Option<BTreeSet<String>> {
    Some(keys.iter().map(|k| (*k).to_owned()).collect())
}

fn removal(n: &str, policy: DeletionPolicy) -> Removal {
    Removal {
        name: name(n),
        policy,
    }
}

fn set(key: &str, from: Option<&str>, to: &str) -> ConfigChange {
    ConfigChange::Set {
        key: key.into(),
        from: from.map(str::to_owned),
        to: to.into(),
    }
}

fn reset(key: &str, from: &str) -> ConfigChange {
    ConfigChange::Reset {
        key: key.into(),
        from: from.into(),
    }
}

fn keys(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|k| (*k).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Unit tests: one per rule
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_topic_is_created_with_resolved_settings() {
    let d = desired(
        "orders",
        6,
        Some(3),
        &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
    );
    let p = plan(&[d], &[], &snapshot(&[]));
    assert_eq!(
        p.actions,
        vec![Action::Create {
            name: name("orders"),
            partitions: 6,
            replication_factor: Some(3),
            config: BTreeMap::from([
                ("cleanup.policy".to_owned(), "compact".to_owned()),
                ("retention.ms".to_owned(), "1000".to_owned()),
            ]),
        }]
    );
    assert!(p.retained.is_empty());
}

#[test]
fn missing_topic_without_replication_factor_leaves_it_to_the_broker() {
    let p = plan(&[desired("orders", 1, None, &[])], &[], &snapshot(&[]));
    assert_eq!(
        p.actions,
        vec![Action::Create {
            name: name("orders"),
            partitions: 1,
            replication_factor: None,
            config: BTreeMap::new(),
        }]
    );
}

#[test]
fn topic_equal_to_its_spec_needs_nothing() {
    let d = desired("orders", 3, Some(2), &[("retention.ms", "1000")]);
    let s = snapshot(&[("orders", topic(3, 2, &[("retention.ms", dynamic("1000"))]))]);
    let p = plan(&[d], &[], &s);
    assert!(p.is_empty(), "{p:?}");
    assert!(p.retained.is_empty());
}

#[test]
fn partitions_grow() {
    let d = desired("orders", 6, None, &[]);
    let s = snapshot(&[("orders", topic(3, 1, &[]))]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![Action::IncreasePartitions {
            name: name("orders"),
            from: 3,
            to: 6,
        }]
    );
}

#[test]
fn partition_decrease_is_refused_and_nothing_else_is_done() {
    // Configs differ too, but a refused topic gets no other action.
    let d = desired(
        "orders",
        3,
        None,
        &[("retention.ms", "1000"), ("segment.ms", "3600000")],
    );
    let s = snapshot(&[("orders", topic(6, 1, &[("retention.ms", dynamic("5"))]))]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![Refusal::PartitionDecrease {
                observed: 6,
                desired: 3,
            }],
        }]
    );
    assert_eq!(p.refusals().count(), 1);
}

#[test]
fn replication_factor_change_is_refused() {
    let d = desired("orders", 6, Some(3), &[("retention.ms", "1000")]);
    let s = snapshot(&[("orders", topic(3, 1, &[]))]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![Refusal::ReplicationFactorChange {
                observed: 1,
                desired: 3,
            }],
        }]
    );
}

#[test]
fn every_refusal_reason_is_reported_together() {
    let d = desired("orders", 1, Some(3), &[]);
    let s = snapshot(&[("orders", topic(4, 2, &[]))]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![
                Refusal::PartitionDecrease {
                    observed: 4,
                    desired: 1,
                },
                Refusal::ReplicationFactorChange {
                    observed: 2,
                    desired: 3,
                },
            ],
        }]
    );
}

#[test]
fn unset_replication_factor_is_never_refused() {
    for observed_rf in [1, 2, 3, 5] {
        let d = desired("orders", 4, None, &[]);
        let s = snapshot(&[("orders", topic(4, observed_rf, &[]))]);
        let p = plan(&[d], &[], &s);
        assert!(p.is_empty(), "rf {observed_rf}: {p:?}");
    }
    // ... and does not block growth either.
    let d = desired("orders", 8, None, &[]);
    let s = snapshot(&[("orders", topic(4, 7, &[]))]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![Action::IncreasePartitions {
            name: name("orders"),
            from: 4,
            to: 8,
        }]
    );
}

#[test]
fn config_diff_is_exact() {
    let d = desired(
        "orders",
        3,
        None,
        &[
            ("cleanup.policy", "compact"), // equal: no change
            ("retention.ms", "1000"),      // differs: set, from the old value
            ("segment.ms", "3600000"),     // absent: set, from nothing
            ("min.insync.replicas", "2"),  // inherited default differs: set
            ("compression.type", "zstd"),  // inherited and equal: no change
        ],
    );
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[
                ("cleanup.policy", dynamic("compact")),
                ("retention.ms", dynamic("5")),
                ("min.insync.replicas", inherited("1")),
                ("compression.type", inherited("zstd")),
                // Not in the spec: never touched, dynamic or not.
                ("segment.bytes", dynamic("1048576")),
                ("max.message.bytes", inherited("1048588")),
            ],
        ),
    )]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::AlterConfigs {
            name: name("orders"),
            changes: vec![
                set("min.insync.replicas", Some("1"), "2"),
                set("retention.ms", Some("5"), "1000"),
                set("segment.ms", None, "3600000"),
            ],
        }]
    );
}

#[test]
fn values_equal_by_meaning_need_no_change() {
    let d = desired(
        "orders",
        3,
        None,
        &[
            ("cleanup.policy", "delete,compact"),
            ("preallocate", "TRUE"),
            ("min.cleanable.dirty.ratio", "0.50"),
            ("retention.ms", " 1000"),
        ],
    );
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[
                ("cleanup.policy", dynamic("compact,delete")),
                ("preallocate", dynamic("true")),
                ("min.cleanable.dirty.ratio", dynamic("0.5")),
                ("retention.ms", dynamic("1000")),
            ],
        ),
    )]);
    let p = plan(&[d], &[], &s);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn released_keys_are_reset_only_when_dynamic() {
    let d = desired("orders", 3, None, &[("cleanup.policy", "compact")]);
    let released = keys(&[
        "retention.ms",        // dynamic: reset
        "segment.ms",          // inherited: nothing to reset
        "min.insync.replicas", // not on the broker at all: nothing
        "cleanup.policy",      // still managed: the spec wins, never reset
    ]);
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[
                ("retention.ms", dynamic("1000")),
                ("segment.ms", inherited("604800000")),
                ("cleanup.policy", dynamic("compact")),
                ("segment.bytes", dynamic("1048576")),
            ],
        ),
    )]);
    let intents = [TopicIntent {
        desired: &d,
        released_config_keys: &released,
    }];
    let p = plan_intents(&intents, &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::AlterConfigs {
            name: name("orders"),
            changes: vec![reset("retention.ms", "1000")],
        }]
    );
}

#[test]
fn released_keys_of_a_topic_to_create_are_ignored() {
    let d = desired("orders", 3, None, &[]);
    let released = keys(&["retention.ms"]);
    let intents = [TopicIntent {
        desired: &d,
        released_config_keys: &released,
    }];
    let p = plan_intents(&intents, &[], &snapshot(&[]));
    assert_eq!(
        p.actions,
        vec![Action::Create {
            name: name("orders"),
            partitions: 3,
            replication_factor: None,
            config: BTreeMap::new(),
        }]
    );
}

#[test]
fn unknown_config_is_refused_on_create() {
    let d = desired(
        "orders",
        3,
        None,
        &[("retention.ms", "1000"), ("segment.ms", "1")],
    );
    let mut s = snapshot(&[]);
    s.known_config_keys = known(&["retention.ms", "cleanup.policy"]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![Refusal::UnknownConfig {
                key: "segment.ms".into(),
            }],
        }]
    );
}

#[test]
fn unknown_config_is_refused_on_an_existing_topic() {
    // Partitions would grow too, but the refusal blocks everything.
    let d = desired(
        "orders",
        6,
        None,
        &[("retention.ms", "1000"), ("segment.ms", "1")],
    );
    let mut s = snapshot(&[("orders", topic(3, 1, &[("retention.ms", dynamic("5"))]))]);
    s.known_config_keys = known(&["retention.ms", "cleanup.policy"]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![Refusal::UnknownConfig {
                key: "segment.ms".into(),
            }],
        }]
    );
}

#[test]
fn without_a_list_of_known_keys_nothing_is_unknown() {
    let d1 = desired("fresh", 1, None, &[("segment.ms", "1")]);
    let d2 = desired("orders", 3, None, &[("segment.ms", "1")]);
    let s = snapshot(&[("orders", topic(3, 1, &[]))]);
    assert_eq!(s.known_config_keys, None);
    let p = plan(&[d1, d2], &[], &s);
    assert_eq!(p.refusals().count(), 0, "{p:?}");
    assert_eq!(p.actions.len(), 2);
}

#[test]
fn read_only_config_is_refused() {
    let d = desired(
        "orders",
        3,
        None,
        &[("retention.ms", "1000"), ("message.format.version", "3.0")],
    );
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[
                ("retention.ms", dynamic("5")),
                ("message.format.version", read_only("2.8")),
            ],
        ),
    )]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("orders"),
            reasons: vec![Refusal::ReadOnlyConfig {
                key: "message.format.version".into(),
            }],
        }]
    );
    assert!(p.actions[0].to_string().contains("read-only"));
}

#[test]
fn read_only_config_already_equal_is_fine() {
    let d = desired("orders", 3, None, &[("message.format.version", "3.0")]);
    let s = snapshot(&[(
        "orders",
        topic(3, 1, &[("message.format.version", read_only("3.0"))]),
    )]);
    assert!(plan(&[d], &[], &s).is_empty());
}

#[test]
fn name_collision_is_refused() {
    let s = snapshot(&[("ride_requests", topic(3, 1, &[]))]);
    let p = plan(&[desired("ride.requests", 3, None, &[])], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("ride.requests"),
            reasons: vec![Refusal::NameCollision {
                existing: "ride_requests".into(),
            }],
        }]
    );

    // The other way round too.
    let s = snapshot(&[("ride.requests", topic(3, 1, &[]))]);
    let p = plan(&[desired("ride_requests", 3, None, &[])], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: name("ride_requests"),
            reasons: vec![Refusal::NameCollision {
                existing: "ride.requests".into(),
            }],
        }]
    );
    assert_eq!(
        p.actions[0].to_string(),
        "! refuse ride_requests: collides with existing topic 'ride.requests': Kafka treats '.' and '_' alike in topic names."
    );
}

#[test]
fn topics_that_differ_in_another_character_do_not_collide() {
    let s = snapshot(&[("ride-requests", topic(3, 1, &[]))]);
    let p = plan(&[desired("ride.requests", 3, None, &[])], &[], &s);
    assert!(
        matches!(p.actions.as_slice(), [Action::Create { .. }]),
        "{p:?}"
    );
}

/// Kafka refuses the second of two topics whose names differ only by '.' versus '_'. When both
/// are desired and neither exists, the plan must not try to create both: at least one of them
/// is refused, for a name collision (a batch with both creations would fail on the broker).
#[test]
fn desired_topics_colliding_with_each_other_are_not_both_created() {
    let p = plan(
        &[
            desired("ride.requests", 3, None, &[]),
            desired("ride_requests", 3, None, &[]),
        ],
        &[],
        &snapshot(&[]),
    );
    let created: Vec<&str> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Create { .. }))
        .map(|a| a.topic().as_str())
        .collect();
    assert!(
        created.len() <= 1,
        "both colliding topics are created: {created:?}"
    );
    assert_eq!(p.actions.len(), 2, "{p:?}");
    for a in &p.actions {
        if let Action::Refuse { name, reasons } = a {
            assert!(
                reasons.iter().all(|r| r.reason() == "TopicNameCollision"),
                "{name}: {reasons:?}"
            );
        }
    }
}

#[test]
fn removal_with_delete_policy_deletes_a_present_topic() {
    let s = snapshot(&[("orders", topic(3, 1, &[]))]);
    let p = plan(&[], &[removal("orders", DeletionPolicy::Delete)], &s);
    assert_eq!(
        p.actions,
        vec![Action::Delete {
            name: name("orders"),
        }]
    );
    assert!(p.retained.is_empty());
}

#[test]
fn removal_with_delete_policy_of_an_absent_topic_does_nothing() {
    let s = snapshot(&[("other", topic(3, 1, &[]))]);
    let p = plan(&[], &[removal("orders", DeletionPolicy::Delete)], &s);
    assert!(p.is_empty(), "{p:?}");
    assert!(p.retained.is_empty());
}

#[test]
fn removal_with_retain_policy_keeps_the_topic() {
    let s = snapshot(&[("orders", topic(3, 1, &[])), ("audit", topic(1, 1, &[]))]);
    let p = plan(
        &[],
        &[
            removal("orders", DeletionPolicy::Retain),
            removal("audit", DeletionPolicy::Retain),
        ],
        &s,
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(p.retained, vec![name("audit"), name("orders")]);
}

#[test]
fn actions_are_ordered_by_kind_then_topic_name() {
    let desired_topics = [
        desired("z-grow", 4, None, &[]),
        desired("m-create", 1, None, &[]),
        desired("y-refuse", 1, None, &[]),
        desired("b-alter", 1, None, &[("retention.ms", "1")]),
        desired("a-grow", 4, None, &[]),
        desired("c-create", 1, None, &[]),
        desired("a-alter", 1, None, &[("retention.ms", "1")]),
        desired("b-refuse", 1, Some(3), &[]),
    ];
    let s = snapshot(&[
        ("z-grow", topic(2, 1, &[])),
        ("a-grow", topic(2, 1, &[])),
        ("y-refuse", topic(2, 1, &[])),
        ("b-refuse", topic(1, 1, &[])),
        ("b-alter", topic(1, 1, &[])),
        ("a-alter", topic(1, 1, &[])),
        ("z-delete", topic(1, 1, &[])),
        ("d-delete", topic(1, 1, &[])),
    ]);
    let removals = [
        removal("z-delete", DeletionPolicy::Delete),
        removal("d-delete", DeletionPolicy::Delete),
    ];
    let p = plan(&desired_topics, &removals, &s);
    let order: Vec<(&str, &str)> = p
        .actions
        .iter()
        .map(|a| {
            let kind = match a {
                Action::Refuse { .. } => "refuse",
                Action::Create { .. } => "create",
                Action::IncreasePartitions { .. } => "grow",
                Action::AlterConfigs { .. } => "alter",
                Action::Delete { .. } => "delete",
            };
            (kind, a.topic().as_str())
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ("refuse", "b-refuse"),
            ("refuse", "y-refuse"),
            ("create", "c-create"),
            ("create", "m-create"),
            ("grow", "a-grow"),
            ("grow", "z-grow"),
            ("alter", "a-alter"),
            ("alter", "b-alter"),
            ("delete", "d-delete"),
            ("delete", "z-delete"),
        ]
    );
}

#[test]
fn a_topic_can_both_grow_and_be_reconfigured() {
    let d = desired("orders", 6, Some(1), &[("retention.ms", "1000")]);
    let s = snapshot(&[("orders", topic(3, 1, &[("retention.ms", dynamic("5"))]))]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![
            Action::IncreasePartitions {
                name: name("orders"),
                from: 3,
                to: 6,
            },
            Action::AlterConfigs {
                name: name("orders"),
                changes: vec![set("retention.ms", Some("5"), "1000")],
            },
        ]
    );
}

#[test]
fn actions_display_readably() {
    let grow = Action::IncreasePartitions {
        name: name("orders"),
        from: 3,
        to: 6,
    };
    assert_eq!(grow.to_string(), "~ grow orders: partitions 3 -> 6");

    let create = Action::Create {
        name: name("orders"),
        partitions: 6,
        replication_factor: Some(3),
        config: BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("retention.ms".to_owned(), "1000".to_owned()),
        ]),
    };
    assert_eq!(
        create.to_string(),
        "+ create orders: partitions=6 replicationFactor=3\n    cleanup.policy = compact\n    retention.ms = 1000"
    );

    let create_default = Action::Create {
        name: name("orders"),
        partitions: 1,
        replication_factor: None,
        config: BTreeMap::new(),
    };
    assert_eq!(
        create_default.to_string(),
        "+ create orders: partitions=1 replicationFactor=broker default"
    );

    let alter = Action::AlterConfigs {
        name: name("orders"),
        changes: vec![
            set("retention.ms", Some("5"), "1000"),
            set("segment.ms", None, "3600000"),
            reset("cleanup.policy", "compact"),
        ],
    };
    assert_eq!(
        alter.to_string(),
        "~ configure orders:\n    retention.ms: 5 -> 1000\n    segment.ms: (unset) -> 3600000\n    cleanup.policy: compact -> (broker default)"
    );

    assert_eq!(
        Action::Delete {
            name: name("orders")
        }
        .to_string(),
        "- delete orders"
    );

    let refuse = Action::Refuse {
        name: name("orders"),
        reasons: vec![
            Refusal::PartitionDecrease {
                observed: 6,
                desired: 3,
            },
            Refusal::UnknownConfig {
                key: "retention.msx".into(),
            },
        ],
    };
    assert_eq!(
        refuse.to_string(),
        "! refuse orders: partitions cannot decrease (6 on the broker, 3 desired): Kafka cannot remove partitions; create a new topic instead. the broker does not know topic config 'retention.msx'."
    );
}

#[test]
fn refusal_reasons_name_the_condition() {
    assert_eq!(
        Refusal::PartitionDecrease {
            observed: 2,
            desired: 1
        }
        .reason(),
        "PartitionDecrease"
    );
    assert_eq!(
        Refusal::ReplicationFactorChange {
            observed: 2,
            desired: 1
        }
        .reason(),
        "ReplicationFactorChange"
    );
    assert_eq!(
        Refusal::UnknownConfig { key: "x".into() }.reason(),
        "InvalidConfig"
    );
    assert_eq!(
        Refusal::ReadOnlyConfig { key: "x".into() }.reason(),
        "InvalidConfig"
    );
    assert_eq!(
        Refusal::NameCollision {
            existing: "x".into()
        }
        .reason(),
        "TopicNameCollision"
    );
}

// ---------------------------------------------------------------------------------------------
// Model broker
// ---------------------------------------------------------------------------------------------

/// Replication factor the model broker gives a topic created without one.
const BROKER_DEFAULT_RF: i32 = 1;

/// The broker-wide default of a config key, reported (non-dynamic) after a reset.
fn broker_default(key: &str) -> Option<&'static str> {
    Some(match key {
        "retention.ms" => "604800000",
        "cleanup.policy" => "delete",
        "segment.ms" => "604800000",
        "min.insync.replicas" => "1",
        "preallocate" => "false",
        "compression.type" => "producer",
        _ => return None,
    })
}

fn known_to(snapshot: &BrokerSnapshot, key: &str) -> bool {
    snapshot
        .known_config_keys
        .as_ref()
        .is_none_or(|known| known.contains(key))
}

/// Executes a plan the way a (strict) broker would, failing on anything a broker would reject.
fn apply(snapshot: &BrokerSnapshot, plan: &Plan) -> Result<BrokerSnapshot, String> {
    let mut s = snapshot.clone();
    for action in &plan.actions {
        match action {
            Action::Create {
                name,
                partitions,
                replication_factor,
                config,
            } => {
                if s.topics.contains_key(name.as_str()) {
                    return Err(format!("create {name}: topic exists"));
                }
                if let Some(other) = s
                    .topics
                    .keys()
                    .find(|t| t.replace('.', "_") == name.collision_key())
                {
                    return Err(format!("create {name}: collides with {other}"));
                }
                if *partitions < 1 {
                    return Err(format!("create {name}: {partitions} partitions"));
                }
                if let Some(key) = config.keys().find(|k| !known_to(&s, k)) {
                    return Err(format!("create {name}: unknown config {key}"));
                }
                s.topics.insert(
                    name.as_str().to_owned(),
                    ObservedTopic {
                        topic_id: Some(format!("id-{name}")),
                        partitions: *partitions,
                        replication_factor: replication_factor.unwrap_or(BROKER_DEFAULT_RF),
                        configs: config
                            .iter()
                            .map(|(k, v)| (k.clone(), dynamic(v)))
                            .collect(),
                    },
                );
            }
            Action::IncreasePartitions { name, from, to } => {
                let t = s
                    .topics
                    .get_mut(name.as_str())
                    .ok_or_else(|| format!("grow {name}: no such topic"))?;
                if t.partitions != *from || to <= from {
                    return Err(format!(
                        "grow {name}: {from} -> {to} but the topic has {}",
                        t.partitions
                    ));
                }
                t.partitions = *to;
            }
            Action::AlterConfigs { name, changes } => {
                if changes.is_empty() {
                    return Err(format!("configure {name}: no changes"));
                }
                let known = s.known_config_keys.clone();
                let t = s
                    .topics
                    .get_mut(name.as_str())
                    .ok_or_else(|| format!("configure {name}: no such topic"))?;
                for change in changes {
                    let key = change.key();
                    if known.as_ref().is_some_and(|k| !k.contains(key)) {
                        return Err(format!("configure {name}: unknown config {key}"));
                    }
                    if t.configs.get(key).is_some_and(|c| c.read_only) {
                        return Err(format!("configure {name}: {key} is read-only"));
                    }
                    match change {
                        ConfigChange::Set { key, to, .. } => {
                            t.configs.insert(key.clone(), dynamic(to));
                        }
                        ConfigChange::Reset { key, .. } => match broker_default(key) {
                            Some(v) => {
                                t.configs.insert(key.clone(), inherited(v));
                            }
                            None => {
                                t.configs.remove(key);
                            }
                        },
                    }
                }
            }
            Action::Delete { name } => {
                if s.topics.remove(name.as_str()).is_none() {
                    return Err(format!("delete {name}: no such topic"));
                }
            }
            Action::Refuse { .. } => {}
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Topic names, several of which collide ('.' versus '_') on purpose.
const POOL: &[&str] = &[
    "a", "b", "ab", "a.b", "a_b", "b.c", "b_c", "c.a.b", "c_a.b", "c_a_b", "e-d", "ed",
];

/// Real topic config keys used by the generators.
const KEYS: &[&str] = &[
    "retention.ms",
    "cleanup.policy",
    "segment.ms",
    "min.insync.replicas",
    "preallocate",
    "compression.type",
];

/// Valid values per key, including pairs that are equal by meaning.
fn values(key: &str) -> &'static [&'static str] {
    match key {
        "retention.ms" => &["1000", "01000", "86400000", "-1", "604800000"],
        "cleanup.policy" => &["delete", "compact", "compact,delete", "delete, compact"],
        "segment.ms" => &["3600000", "604800000"],
        "min.insync.replicas" => &["1", "2", " 2"],
        "preallocate" => &["true", "false", "TRUE"],
        "compression.type" => &["zstd", "lz4", "producer"],
        _ => unreachable!("{key}"),
    }
}

fn pick(key: &str, i: usize) -> &'static str {
    let vs = values(key);
    vs[i % vs.len()]
}

/// A value of `key` equal by meaning to `want` (possibly spelt differently).
fn equivalent(key: &str, want: &str, i: usize) -> &'static str {
    let same: Vec<&'static str> = values(key)
        .iter()
        .copied()
        .filter(|v| topic_config::same_value(key, v, want))
        .collect();
    same[i % same.len()]
}

#[derive(Debug, Clone)]
struct ObservedSpec {
    partition_delta: i32,
    rf: i32,
    /// Per key of [`KEYS`]: (0 absent | 1 equal to desired | 2.. random, value index, dynamic,
    /// read-only).
    configs: Vec<(u8, usize, bool, bool)>,
}

#[derive(Debug, Clone)]
struct Entry {
    desired: bool,
    partitions: i32,
    /// 0: unset, 1: as observed, 2: `random_rf`.
    rf_choice: u8,
    random_rf: i32,
    config: Vec<Option<usize>>,
    released: BTreeSet<&'static str>,
    removal: Option<DeletionPolicy>,
    observed: Option<ObservedSpec>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let observed = (
        -2..=2i32,
        1..=3i32,
        prop::collection::vec(
            (0..4u8, 0..8usize, any::<bool>(), prop::bool::weighted(0.05)),
            KEYS.len(),
        ),
    )
        .prop_map(|(partition_delta, rf, configs)| ObservedSpec {
            partition_delta,
            rf,
            configs,
        });
    (
        prop::bool::weighted(0.6),
        1..=6i32,
        0..3u8,
        1..=3i32,
        prop::collection::vec(prop::option::weighted(0.5, 0..8usize), KEYS.len()),
        prop::collection::btree_set(prop::sample::select(KEYS), 0..=3),
        prop::option::weighted(
            0.35,
            prop_oneof![Just(DeletionPolicy::Retain), Just(DeletionPolicy::Delete)],
        ),
        prop::option::weighted(0.6, observed),
    )
        .prop_map(
            |(desired, partitions, rf_choice, random_rf, config, released, removal, observed)| {
                Entry {
                    desired,
                    partitions,
                    rf_choice,
                    random_rf,
                    config,
                    released,
                    removal,
                    observed,
                }
            },
        )
}

/// One planning problem: desired topics (with released keys), removals and a broker snapshot.
#[derive(Debug, Clone)]
struct Scenario {
    desired: Vec<DesiredTopic>,
    released: Vec<BTreeSet<String>>,
    removals: Vec<Removal>,
    observed: BrokerSnapshot,
}

impl Scenario {
    fn intents(&self) -> Vec<TopicIntent<'_>> {
        self.desired
            .iter()
            .zip(&self.released)
            .map(|(desired, released_config_keys)| TopicIntent {
                desired,
                released_config_keys,
            })
            .collect()
    }

    fn plan_against(&self, observed: &BrokerSnapshot) -> Plan {
        plan_intents(&self.intents(), &self.removals, observed)
    }

    fn plan(&self) -> Plan {
        self.plan_against(&self.observed)
    }

    fn desired_named(&self, n: &str) -> Option<(&DesiredTopic, &BTreeSet<String>)> {
        self.desired
            .iter()
            .zip(&self.released)
            .find(|(d, _)| d.name.as_str() == n)
    }
}

fn build(order: &[usize], entries: &[Entry], known_keys: Option<Option<usize>>) -> Scenario {
    let mut sc = Scenario {
        desired: Vec::new(),
        released: Vec::new(),
        removals: Vec::new(),
        observed: BrokerSnapshot {
            topics: BTreeMap::new(),
            known_config_keys: known_keys.map(|drop| {
                topic_config::known_keys()
                    .filter(|k| drop.is_none_or(|i| *k != KEYS[i]))
                    .map(str::to_owned)
                    .collect()
            }),
        },
    };
    for &i in order {
        let e = &entries[i];
        let n = POOL[i];
        let config: BTreeMap<String, String> = KEYS
            .iter()
            .zip(&e.config)
            .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), pick(k, v).to_owned())))
            .collect();
        if let Some(o) = &e.observed {
            let configs = KEYS
                .iter()
                .zip(&o.configs)
                .filter_map(|(k, &(choice, v, dynamic, read_only))| {
                    let value = match (choice, config.get(*k)) {
                        (0, _) => return None,
                        (1, Some(want)) => equivalent(k, want, v),
                        _ => pick(k, v),
                    };
                    Some((
                        (*k).to_owned(),
                        ObservedConfig {
                            value: Some(value.to_owned()),
                            dynamic: dynamic && !read_only,
                            read_only,
                        },
                    ))
                })
                .collect();
            sc.observed.topics.insert(
                n.to_owned(),
                ObservedTopic {
                    topic_id: Some(format!("id-{n}")),
                    partitions: (e.partitions + o.partition_delta).max(1),
                    replication_factor: o.rf,
                    configs,
                },
            );
        }
        if e.desired {
            let replication_factor = match e.rf_choice {
                0 => None,
                1 => Some(e.observed.as_ref().map_or(e.random_rf, |o| o.rf)),
                _ => Some(e.random_rf),
            };
            sc.desired.push(DesiredTopic {
                name: name(n),
                partitions: e.partitions,
                replication_factor,
                config,
                deletion_policy: e.removal.unwrap_or_default(),
            });
            sc.released
                .push(e.released.iter().map(|k| (*k).to_owned()).collect());
        }
        if let Some(policy) = e.removal {
            sc.removals.push(Removal {
                name: name(n),
                policy,
            });
        }
    }
    sc
}

/// Anything goes: a name may be desired and removed at once, and desired names may collide.
fn any_scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(entry(), POOL.len()),
        Just((0..POOL.len()).collect::<Vec<_>>()).prop_shuffle(),
        prop_oneof![
            Just(None),
            Just(Some(None)),
            (0..KEYS.len()).prop_map(|i| Some(Some(i)))
        ],
    )
        .prop_map(|(entries, order, known_keys)| build(&order, &entries, known_keys))
}

/// A consistent scenario: desired names do not collide with each other, and a removed topic is
/// neither desired nor colliding with a desired one (so deleting it cannot lift a refusal).
/// Desired topics may still collide with other topics on the broker.
fn consistent_scenario() -> impl Strategy<Value = Scenario> {
    any_scenario().prop_map(|mut sc| {
        let mut taken = BTreeSet::new();
        let mut keep = Vec::new();
        for (d, r) in sc.desired.drain(..).zip(sc.released.drain(..)) {
            if taken.insert(d.name.collision_key()) {
                keep.push((d, r));
            }
        }
        (sc.desired, sc.released) = keep.into_iter().unzip();
        sc.removals
            .retain(|r| !taken.contains(&r.name.collision_key()));
        sc
    })
}

fn is_refused(plan: &Plan, n: &TopicName) -> bool {
    plan.refusals().any(|a| a.topic() == n)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The model broker accepts every plan, and afterwards every desired topic that was not
    /// refused matches its spec.
    #[test]
    fn applied_plan_reaches_the_desired_state(sc in consistent_scenario()) {
        let p = sc.plan();
        let after = apply(&sc.observed, &p);
        prop_assert!(after.is_ok(), "broker rejected the plan: {:?}\n{:?}", after, p);
        let after = after.unwrap();
        for d in &sc.desired {
            if is_refused(&p, &d.name) {
                // Nothing happened to it.
                prop_assert_eq!(
                    after.topics.get(d.name.as_str()),
                    sc.observed.topics.get(d.name.as_str())
                );
                continue;
            }
            let t = after.topics.get(d.name.as_str());
            prop_assert!(t.is_some(), "{} missing after {:?}", d.name, p);
            let t = t.unwrap();
            prop_assert_eq!(t.partitions, d.partitions, "{}", d.name);
            if let Some(rf) = d.replication_factor {
                prop_assert_eq!(t.replication_factor, rf, "{}", d.name);
            }
            for (key, want) in &d.config {
                let have = t.configs.get(key).and_then(|c| c.value.as_deref());
                prop_assert!(
                    have.is_some_and(|h| topic_config::same_value(key, h, want)),
                    "{} {}: have {:?}, want {:?}", d.name, key, have, want
                );
            }
        }
    }

    /// Planning again after applying yields the same refusals and nothing else.
    #[test]
    fn planning_is_idempotent(sc in consistent_scenario()) {
        let first = sc.plan();
        let after = apply(&sc.observed, &first).unwrap();
        let second = sc.plan_against(&after);
        let refusals: Vec<Action> = first.refusals().cloned().collect();
        prop_assert_eq!(&second.actions, &refusals, "first plan: {:?}", first);
        prop_assert_eq!(&second.retained, &first.retained);
        // And it stays there.
        prop_assert_eq!(apply(&after, &second).unwrap(), after);
    }

    /// Deletions happen only for removed topics whose policy is `Delete` and which exist; a
    /// topic that is desired and not removed is never deleted; `Retain` removals are listed.
    #[test]
    fn only_removals_with_delete_policy_are_deleted(sc in any_scenario()) {
        let p = sc.plan();
        for a in &p.actions {
            if let Action::Delete { name } = a {
                prop_assert!(sc.observed.topics.contains_key(name.as_str()), "{}", name);
                prop_assert!(
                    sc.removals.iter().any(|r| &r.name == name && r.policy == DeletionPolicy::Delete),
                    "{} deleted without a Delete removal", name
                );
                prop_assert!(
                    !sc.removals.iter().any(|r| &r.name == name && r.policy == DeletionPolicy::Retain),
                    "{} has a Retain removal but is deleted", name
                );
            }
        }
        for d in &sc.desired {
            if !sc.removals.iter().any(|r| r.name == d.name) {
                prop_assert!(
                    !p.actions.iter().any(|a| matches!(a, Action::Delete { name } if name == &d.name)),
                    "desired {} is deleted", d.name
                );
            }
        }
        let mut retained: Vec<TopicName> = sc
            .removals
            .iter()
            .filter(|r| r.policy == DeletionPolicy::Retain)
            .map(|r| r.name.clone())
            .collect();
        retained.sort();
        prop_assert_eq!(&p.retained, &retained);
    }

    /// Config keys on the broker that are neither managed nor released are never touched.
    #[test]
    fn unmanaged_keys_are_never_touched(sc in consistent_scenario()) {
        let p = sc.plan();
        for a in &p.actions {
            if let Action::AlterConfigs { name, changes } = a {
                let (d, released) = sc.desired_named(name.as_str()).expect("alter of a desired topic");
                for c in changes {
                    prop_assert!(
                        d.config.contains_key(c.key()) || released.contains(c.key()),
                        "{}: {:?} is neither managed nor released", name, c
                    );
                    if let ConfigChange::Reset { key, .. } = c {
                        prop_assert!(!d.config.contains_key(key), "{}: managed {} reset", name, key);
                        prop_assert!(
                            sc.observed.topics[name.as_str()].configs[key].dynamic,
                            "{}: non-dynamic {} reset", name, key
                        );
                    }
                }
            }
        }
        let after = apply(&sc.observed, &p).unwrap();
        for (n, before) in &sc.observed.topics {
            let Some(now) = after.topics.get(n) else { continue };
            let (managed, released) = match sc.desired_named(n) {
                Some((d, r)) => (d.config.keys().cloned().collect::<BTreeSet<_>>(), r.clone()),
                None => (BTreeSet::new(), BTreeSet::new()),
            };
            for (key, c) in &before.configs {
                if !managed.contains(key) && !released.contains(key) {
                    prop_assert_eq!(now.configs.get(key), Some(c), "{} {}", n, key);
                }
            }
        }
    }

    /// Structural invariants of any plan: sorted by kind then name, a refused topic gets no
    /// other action (unless it is also removed), at most one action of each kind per topic, no empty refusals or changes,
    /// and config changes are exact (a Set always changes the meaning of the value).
    #[test]
    fn plans_are_well_formed(sc in any_scenario()) {
        let p = sc.plan();
        let ranks: Vec<(u8, &TopicName)> = p.actions.iter().map(|a| (a.rank(), a.topic())).collect();
        prop_assert!(ranks.windows(2).all(|w| w[0] < w[1]), "unsorted or duplicated: {:?}", ranks);
        for a in &p.actions {
            let removed = sc.removals.iter().any(|r| &r.name == a.topic());
            if is_refused(&p, a.topic()) && !removed {
                prop_assert!(matches!(a, Action::Refuse { .. }), "refused topic also gets {:?}", a);
            }
            match a {
                Action::Refuse { reasons, .. } => prop_assert!(!reasons.is_empty()),
                Action::AlterConfigs { name, changes } => {
                    prop_assert!(!changes.is_empty());
                    let observed = &sc.observed.topics[name.as_str()];
                    for c in changes {
                        if let ConfigChange::Set { key, from, to } = c {
                            let have = observed.configs.get(key).and_then(|c| c.value.clone());
                            prop_assert_eq!(from, &have);
                            prop_assert!(
                                !from.as_deref().is_some_and(|f| topic_config::same_value(key, f, to)),
                                "{}: no-op set {:?}", name, c
                            );
                        }
                    }
                }
                Action::IncreasePartitions { name, from, to } => {
                    prop_assert!(from < to);
                    prop_assert_eq!(*from, sc.observed.topics[name.as_str()].partitions);
                }
                Action::Create { name, .. } => {
                    prop_assert!(!sc.observed.topics.contains_key(name.as_str()));
                }
                Action::Delete { .. } => {}
            }
        }
        // No creation collides with a topic on the broker or with another creation.
        let mut created = BTreeSet::new();
        for a in &p.actions {
            if let Action::Create { name, .. } = a {
                prop_assert!(
                    !sc.observed.topics.keys().any(|t| t.replace('.', "_") == name.collision_key()),
                    "{} collides with a topic on the broker", name
                );
                prop_assert!(created.insert(name.collision_key()), "{} collides with another creation", name);
            }
        }
        // Every desired topic that is missing gets either a creation or a refusal.
        for d in &sc.desired {
            if !sc.observed.topics.contains_key(d.name.as_str()) {
                prop_assert!(
                    p.actions.iter().any(|a| a.topic() == &d.name
                        && matches!(a, Action::Create { .. } | Action::Refuse { .. })),
                    "missing {} neither created nor refused", d.name
                );
            }
        }
    }
}

#[test]
fn generator_values_are_valid_configs() {
    for key in KEYS {
        for v in values(key) {
            assert_eq!(topic_config::check(key, v), Ok(()), "{key}={v}");
        }
        if let Some(v) = broker_default(key) {
            assert_eq!(topic_config::check(key, v), Ok(()), "{key}={v}");
        }
    }
    for n in POOL {
        name(n);
    }
}
