//! The room's pipeline (observe → plan → write) against the in-memory broker.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::kafka::offsets::{Member, MemoryGroupAdmin};
use crate::kafka::{BrokerError, RequestTally};

fn now() -> Timestamp {
    "2026-12-07T12:00:00Z".parse().unwrap()
}

fn ms(t: &str) -> i64 {
    t.parse::<Timestamp>().unwrap().as_millisecond()
}

/// trip-events: 2 partitions of 10 records, the first 5 of each at 08:00, the rest at 10:00;
/// group `analytics` committed at the end of both.
fn broker() -> MemoryGroupAdmin {
    let b = MemoryGroupAdmin::new();
    b.create_topic("trip-events", 2);
    for p in 0..2 {
        let stamps: Vec<i64> = (0..10)
            .map(|i| {
                ms(if i < 5 {
                    "2026-12-07T08:00:00Z"
                } else {
                    "2026-12-07T10:00:00Z"
                })
            })
            .collect();
        b.produce("trip-events", p, &stamps);
        b.commit("analytics", "trip-events", p, 10);
    }
    b
}

fn request(target: Target) -> Request {
    Request {
        group: "analytics".into(),
        selection: Selection::default(),
        target,
        must_exist: true,
    }
}

#[tokio::test]
async fn a_reset_to_a_time_is_planned_written_once_and_read_back() {
    let b = broker();
    let mut tally = RequestTally::default();
    let target = Target::Timestamp("2026-12-07T09:00:00Z".parse().unwrap());
    let prepared = prepare(&b, &request(target), now(), &mut tally)
        .await
        .unwrap();
    assert!(prepared.group.is_empty());
    assert_eq!(prepared.plan.reread(), 10);
    let held = write(&b, "analytics", &prepared.plan, &mut tally)
        .await
        .unwrap();
    assert_eq!(
        held,
        BTreeMap::from([
            (("trip-events".to_string(), 0), 5),
            (("trip-events".to_string(), 1), 5)
        ])
    );
    assert_eq!(b.alter_calls(), 1);
    // Describe, committed, metadata, 3 ListOffsets, the write and its read-back.
    assert_eq!(tally.total(), 8);
}

#[tokio::test]
async fn refusals_are_made_before_anything_is_written() {
    let b = broker();
    let mut tally = RequestTally::default();
    // A timestamp in the future: refused before any request.
    let future = Target::Timestamp("2026-12-08T00:00:00Z".parse().unwrap());
    let e = prepare(&b, &request(future), now(), &mut tally)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ResetError::Refused(v) if matches!(v[..], [PlanError::FutureTimestamp { .. }])),
        "{e}"
    );
    assert_eq!(tally.total(), 0, "nothing was asked");
    // A group the broker does not know: refused for a raw id, planned for a declared consumer.
    let mut unknown = request(Target::Earliest);
    unknown.group = "analytcs".into();
    unknown.selection.topics = vec!["trip-events".into()];
    let e = prepare(&b, &unknown, now(), &mut tally).await.unwrap_err();
    assert_eq!(e.to_string(), "group 'analytcs' is unknown to the broker (no members, no committed offsets): check the group id");
    unknown.must_exist = false;
    assert!(prepare(&b, &unknown, now(), &mut tally).await.is_ok());
    // A partition the topic does not have.
    let mut r = request(Target::Latest);
    r.selection.partitions = vec![2];
    let e = prepare(&b, &r, now(), &mut tally).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("partition 2 of topic 'trip-events' does not exist"),
        "{e}"
    );
    assert_eq!(b.alter_calls(), 0);
}

#[tokio::test]
async fn a_group_with_members_is_seen_and_the_broker_refuses_the_write() {
    let b = broker();
    b.set_members(
        "analytics",
        vec![Member {
            member_id: "m-1".into(),
            client_id: "ride-analytics".into(),
            host: "/10.0.0.7".into(),
            assignment: vec![("trip-events".into(), 0), ("trip-events".into(), 1)],
        }],
    );
    let mut tally = RequestTally::default();
    let prepared = prepare(&b, &request(Target::Earliest), now(), &mut tally)
        .await
        .unwrap();
    let e = plan::check_empty(&prepared.group).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("group 'analytics' is not empty (state Stable, 1 member(s))"),
        "{e}"
    );
    // Written anyway, the broker refuses it: nothing changes.
    let e = write(&b, "analytics", &prepared.plan, &mut tally)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ResetError::Broker(BrokerError::Rejected { .. })),
        "{e}"
    );
    assert_eq!(b.commits("analytics")[&("trip-events".to_string(), 0)], 10);
    // `show` lists who reads what.
    let view = show(&b, "analytics", &[], &mut tally).await.unwrap();
    assert_eq!(view.rows.len(), 2);
    assert_eq!(view.rows[0].lag(), Some(0));
    assert_eq!(view.rows[0].member.as_ref().unwrap().2, "ride-analytics");
}

#[tokio::test]
async fn a_broker_without_an_api_fails_the_reset_naming_it() {
    let b = broker();
    b.fail(
        "ListOffsets",
        Some(BrokerError::Unsupported {
            api: "ListOffsets",
            message: "no".into(),
        }),
    );
    let e = prepare(
        &b,
        &request(Target::Earliest),
        now(),
        &mut RequestTally::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        ResetError::Broker(BrokerError::Unsupported {
            api: "ListOffsets",
            message: "no".into()
        })
    );
    assert_eq!(e.to_string(), "the broker does not support ListOffsets: no");
}
