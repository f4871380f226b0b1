//! Names that collide on the broker ('.' versus '_') are refused.

use super::*;

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
