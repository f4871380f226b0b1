//! The plan as a whole: the order of its actions, how they display, what refusals name.

use super::*;

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
