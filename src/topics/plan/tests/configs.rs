//! Topic configs: the exact diff, values equal by meaning, undeclared overrides, unknown and
//! read-only keys.

use super::*;

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
                // Not in the spec and inherited: nothing to do.
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
fn an_override_nobody_declares_is_reset() {
    // The manifest had max.message.bytes; it was removed. Someone also set segment.ms by hand.
    let d = desired("orders", 3, None, &[("cleanup.policy", "compact")]);
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[
                ("max.message.bytes", dynamic("2097152")), // removed from the manifest: reset
                ("segment.ms", dynamic("3600000")),        // set by hand: reset
                ("retention.ms", inherited("604800000")),  // the broker's default: nothing
                ("cleanup.policy", dynamic("compact")),    // declared and equal: nothing
                ("message.format.version", read_only("3.0")), // read-only: cannot be reset
                // Set by Kafka's reassignment tool while it moves replicas: left alone.
                ("leader.replication.throttled.replicas", dynamic("0:1")),
            ],
        ),
    )]);
    let p = plan(&[d], &[], &s);
    assert_eq!(
        p.actions,
        vec![Action::AlterConfigs {
            name: name("orders"),
            changes: vec![
                reset("max.message.bytes", "2097152"),
                reset("segment.ms", "3600000"),
            ],
        }]
    );
    assert_eq!(
        p.actions[0].to_string(),
        "~ configure orders:\n    max.message.bytes: 2097152 -> (broker default)\n    segment.ms: 3600000 -> (broker default)"
    );
}

#[test]
fn a_declared_throttle_is_managed_like_any_key() {
    let d = desired(
        "orders",
        3,
        None,
        &[("follower.replication.throttled.replicas", "0:2")],
    );
    let s = snapshot(&[(
        "orders",
        topic(
            3,
            1,
            &[("follower.replication.throttled.replicas", dynamic("0:1"))],
        ),
    )]);
    assert_eq!(
        plan(&[d], &[], &s).actions,
        vec![Action::AlterConfigs {
            name: name("orders"),
            changes: vec![set(
                "follower.replication.throttled.replicas",
                Some("0:1"),
                "0:2"
            )],
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
