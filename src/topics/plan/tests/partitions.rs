//! Partitions and replication factor: growth, and the changes that are refused.

use super::*;

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
