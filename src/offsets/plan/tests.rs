use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use super::*;

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_owned(), p)
}

fn now() -> Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

fn offsets(start: i64, end: i64, committed: Option<i64>) -> PartitionOffsets {
    PartitionOffsets {
        start,
        end,
        committed,
        at_timestamp: None,
    }
}

/// trips: p0 0..100 committed 80, p1 50..60 committed 20 (below its start), p2 10..10 never
/// committed.
fn observed() -> BTreeMap<TopicPartition, PartitionOffsets> {
    BTreeMap::from([
        (tp("trips", 0), offsets(0, 100, Some(80))),
        (tp("trips", 1), offsets(50, 60, Some(20))),
        (tp("trips", 2), offsets(10, 10, None)),
    ])
}

fn all() -> Vec<TopicPartition> {
    (0..3).map(|p| tp("trips", p)).collect()
}

fn afters(plan: &Plan) -> Vec<i64> {
    plan.changes.iter().map(|c| c.after).collect()
}

#[test]
fn earliest_and_latest_move_to_the_ends_and_count_what_is_reread_or_skipped() {
    let p = plan(&Target::Earliest, &all(), &observed(), now()).unwrap();
    assert_eq!(afters(&p), [0, 50, 10]);
    // p0: 80 -> 0 re-reads 80; p1 resumed at 50 (its committed 20 is gone): nothing; p2 never
    // committed: nothing counted.
    assert_eq!(p.reread(), 80);
    assert_eq!(p.skipped(), 0);
    let p = plan(&Target::Latest, &all(), &observed(), now()).unwrap();
    assert_eq!(afters(&p), [100, 60, 10]);
    assert_eq!((p.reread(), p.skipped()), (0, 20 + 10));
    assert_eq!(p.changes[0].before, Some(80));
    assert_eq!(
        p.offsets(),
        [
            (tp("trips", 0), 100),
            (tp("trips", 1), 60),
            (tp("trips", 2), 10)
        ]
    );
}

#[test]
fn a_timestamp_goes_to_the_first_record_at_or_after_it_or_the_end() {
    let mut o = observed();
    o.get_mut(&tp("trips", 0)).unwrap().at_timestamp = Some(40);
    o.get_mut(&tp("trips", 1)).unwrap().at_timestamp = None;
    o.get_mut(&tp("trips", 2)).unwrap().at_timestamp = None;
    let at = Target::Timestamp("2026-12-07T09:00:00Z".parse().unwrap());
    let p = plan(&at, &all(), &o, now()).unwrap();
    assert_eq!(afters(&p), [40, 60, 10]);
    assert_eq!(p.reread(), 40);
}

#[test]
fn a_timestamp_in_the_future_is_refused_before_anything_is_asked() {
    let at: Timestamp = "2026-12-08T00:00:00Z".parse().unwrap();
    let e = check_target(&Target::Timestamp(at), now()).unwrap_err();
    assert_eq!(e, PlanError::FutureTimestamp { at, now: now() });
    assert!(e.to_string().contains("use latest"), "{e}");
    assert!(plan(&Target::Timestamp(at), &all(), &observed(), now()).is_err());
    assert!(check_target(&Target::Timestamp(now()), now()).is_ok());
}

#[test]
fn shift_is_clamped_to_the_range_and_says_so() {
    let p = plan(&Target::ShiftBy(-10), &all()[..2], &observed(), now()).unwrap();
    assert_eq!(afters(&p), [70, 50]);
    assert_eq!(
        p.changes.iter().map(|c| c.clamped).collect::<Vec<_>>(),
        [false, true]
    );
    let p = plan(&Target::ShiftBy(1000), &all()[..1], &observed(), now()).unwrap();
    assert_eq!(afters(&p), [100]);
    assert!(p.changes[0].clamped);
    assert_eq!(p.skipped(), 20);
    // A partition never committed has nothing to shift from.
    let e = plan(&Target::ShiftBy(-1), &all(), &observed(), now()).unwrap_err();
    assert_eq!(
        e,
        [PlanError::NoCommittedOffset {
            topic: "trips".into(),
            partition: 2
        }]
    );
}

#[test]
fn explicit_offsets_outside_the_range_are_refused_all_at_once() {
    let target = Target::Offsets(BTreeMap::from([
        (tp("trips", 0), 5),
        (tp("trips", 1), 61),
        (tp("trips", 2), 9),
    ]));
    let e = plan(&target, &all(), &observed(), now()).unwrap_err();
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0].to_string(),
        "offset 61 for trips/1 is outside the partition's range 50..=60: give an offset in it"
    );
    let ok = Target::Offsets(BTreeMap::from([(tp("trips", 0), 5)]));
    let p = plan(&ok, &all()[..1], &observed(), now()).unwrap();
    assert_eq!(afters(&p), [5]);
}

#[test]
fn selection_names_every_missing_topic_and_partition() {
    let topics = BTreeMap::from([
        ("trips".to_string(), Some(vec![0, 1, 2])),
        ("gone".to_string(), None),
    ]);
    let sel = Selection {
        topics: vec!["trips".into(), "gone".into()],
        partitions: vec![1, 5],
    };
    let names = topics_of("g", &sel, &Target::Earliest, &BTreeSet::new()).unwrap();
    let e = select(&names, &sel, &Target::Earliest, &topics).unwrap_err();
    assert_eq!(
        e,
        [
            PlanError::UnknownTopic {
                topic: "gone".into()
            },
            PlanError::UnknownPartition {
                topic: "trips".into(),
                partition: 5,
                count: 3
            },
        ]
    );
    assert_eq!(
        e[1].to_string(),
        "partition 5 of topic 'trips' does not exist (it has 3 partition(s), 0 to 2)"
    );
    let sel = Selection {
        topics: vec!["trips".into()],
        partitions: vec![],
    };
    assert_eq!(
        select(&["trips".into()], &sel, &Target::Latest, &topics).unwrap(),
        all()
    );
    // No topics named: those the group committed on; none at all is refused.
    let committed = BTreeSet::from([tp("trips", 0), tp("rides", 3)]);
    assert_eq!(
        topics_of("g", &Selection::default(), &Target::Latest, &committed).unwrap(),
        ["rides", "trips"]
    );
    assert_eq!(
        topics_of(
            "g",
            &Selection::default(),
            &Target::Latest,
            &BTreeSet::new()
        ),
        Err(PlanError::NoTopics { group: "g".into() })
    );
    // Explicit offsets name their partitions.
    let target = Target::Offsets(BTreeMap::from([(tp("trips", 2), 0), (tp("trips", 7), 0)]));
    let names = topics_of("g", &Selection::default(), &target, &BTreeSet::new()).unwrap();
    assert_eq!(
        select(&names, &Selection::default(), &target, &topics).unwrap_err(),
        [PlanError::UnknownPartition {
            topic: "trips".into(),
            partition: 7,
            count: 3
        }]
    );
}

#[test]
fn a_group_with_members_or_busy_or_unknown_is_refused() {
    use crate::kafka::offsets::{GroupDescription, Member};
    let group = |state: &str, members: usize| GroupDescription {
        group_id: "g".into(),
        state: state.into(),
        members: (0..members)
            .map(|i| Member {
                member_id: format!("m{i}"),
                client_id: "c".into(),
                host: "h".into(),
                assignment: Vec::new(),
            })
            .collect(),
    };
    assert!(check_empty(&group("Empty", 0)).is_ok());
    assert!(check_empty(&group("Dead", 0)).is_ok());
    assert_eq!(
        check_empty(&group("Stable", 2)),
        Err(PlanError::GroupNotEmpty {
            group: "g".into(),
            state: "Stable".into(),
            members: 2
        })
    );
    // A broker that lists no member of a Stable or rebalancing group: still busy.
    assert!(check_empty(&group("Stable", 0)).is_err());
    assert!(check_empty(&group("PreparingRebalance", 0)).is_err());
    assert!(check_known("g", true, true).is_ok());
    assert!(check_known("g", false, false).is_ok());
    assert_eq!(
        check_known("g", false, true),
        Err(PlanError::UnknownGroup { group: "g".into() })
    );
}

fn partition() -> impl Strategy<Value = PartitionOffsets> {
    (
        0i64..1000,
        0i64..1000,
        proptest::option::of(0i64..3000),
        proptest::option::of(0i64..3000),
    )
        .prop_map(|(start, len, committed, at)| PartitionOffsets {
            start,
            end: start + len,
            committed,
            at_timestamp: at.map(|a| start + a % (len + 1)),
        })
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Earliest),
        Just(Target::Latest),
        Just(Target::Timestamp("2026-01-01T00:00:00Z".parse().unwrap())),
        (-3000i64..3000).prop_map(Target::ShiftBy),
    ]
}

proptest! {
    /// Whatever the target, every new offset lies in its partition's range, the counts add up
    /// to the move, and clamping is reported exactly when the shift left the range.
    #[test]
    fn new_offsets_stay_in_range_and_the_counts_add_up(
        parts in proptest::collection::vec(partition(), 1..6),
        target in target(),
    ) {
        let names: Vec<TopicPartition> = (0..parts.len() as i32).map(|p| tp("t", p)).collect();
        let observed: BTreeMap<_, _> = names.iter().cloned().zip(parts.iter().copied()).collect();
        match plan(&target, &names, &observed, now()) {
            Ok(p) => {
                prop_assert_eq!(p.changes.len(), parts.len());
                for (c, o) in p.changes.iter().zip(&parts) {
                    prop_assert!((o.start..=o.end).contains(&c.after));
                    prop_assert_eq!(c.before, o.committed);
                    if let Some(b) = c.before {
                        let resume = b.clamp(o.start, o.end);
                        prop_assert_eq!(
                            c.reread() as i64 - c.skipped() as i64,
                            resume - c.after
                        );
                        if let Target::ShiftBy(n) = target {
                            prop_assert_eq!(c.clamped, resume + n != c.after);
                        }
                    } else {
                        prop_assert_eq!((c.reread(), c.skipped()), (0, 0));
                    }
                    if !matches!(target, Target::ShiftBy(_)) {
                        prop_assert!(!c.clamped);
                    }
                }
            }
            Err(errors) => {
                // Only a shift of a partition never committed is refused here.
                prop_assert!(matches!(target, Target::ShiftBy(_)));
                prop_assert_eq!(
                    errors.len(),
                    parts.iter().filter(|o| o.committed.is_none()).count()
                );
            }
        }
    }

    /// Shifting by 0 keeps every committed offset that is in range; shifting back and then
    /// forward by the same amount returns there when neither move was clamped.
    #[test]
    fn shifting_by_zero_or_there_and_back_changes_nothing(
        o in partition(),
        n in 0i64..500,
    ) {
        let o = PartitionOffsets { committed: Some(o.committed.unwrap_or(o.start).clamp(o.start, o.end)), ..o };
        let names = [tp("t", 0)];
        let observed = BTreeMap::from([(tp("t", 0), o)]);
        let p = plan(&Target::ShiftBy(0), &names, &observed, now()).unwrap();
        prop_assert_eq!(p.changes[0].after, o.committed.unwrap());
        let back = plan(&Target::ShiftBy(-n), &names, &observed, now()).unwrap();
        let moved = PartitionOffsets { committed: Some(back.changes[0].after), ..o };
        let forth = plan(&Target::ShiftBy(n), &names, &BTreeMap::from([(tp("t", 0), moved)]), now()).unwrap();
        if !back.changes[0].clamped {
            prop_assert_eq!(forth.changes[0].after, o.committed.unwrap());
        }
    }

    /// Explicit offsets are taken as given when in range, and refused (nothing planned) when any
    /// is not.
    #[test]
    fn explicit_offsets_in_range_are_taken_as_given(
        o in partition(),
        offset in -10i64..2100,
    ) {
        let names = [tp("t", 0)];
        let observed = BTreeMap::from([(tp("t", 0), o)]);
        let target = Target::Offsets(BTreeMap::from([(tp("t", 0), offset)]));
        match plan(&target, &names, &observed, now()) {
            Ok(p) => {
                prop_assert!((o.start..=o.end).contains(&offset));
                prop_assert_eq!(p.changes[0].after, offset);
            }
            Err(e) => {
                prop_assert!(!(o.start..=o.end).contains(&offset));
                prop_assert_eq!(e.len(), 1);
            }
        }
    }
}
