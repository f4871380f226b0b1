//! Topics missing from the broker are created; topics equal to their spec need nothing.

use super::*;

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
