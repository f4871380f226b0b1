//! Removed topics: deleted only under the delete policy.

use super::*;

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
