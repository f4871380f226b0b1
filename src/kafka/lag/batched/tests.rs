//! The batched group requests against scripted brokers (`crate::kafka::wire::fake`): two
//! coordinator brokers, a coordinator that moves, a connection that breaks, errors for one
//! group, and a broker too old for batching.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator as Found;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::kafka::wire::fake::{body, modern, FakeBroker, Reply, Request};

/// Where each group's coordinator is, as the scripted brokers say.
type Placement = Arc<Mutex<BTreeMap<String, String>>>;

/// FindCoordinator's answer: each key's broker from `placement` (port from its address).
fn find(r: &Request, placement: &Placement) -> Reply {
    let q: FindCoordinatorRequest = r.decode();
    let placement = placement.lock().unwrap();
    let coordinators = q
        .coordinator_keys
        .iter()
        .map(|k| match placement.get(k.as_str()) {
            Some(address) => {
                let (host, port) = address.rsplit_once(':').unwrap();
                Found::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(port.parse::<i32>().unwrap()))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(port.parse().unwrap())
            }
            None => Found::default()
                .with_key(k.clone())
                .with_error_code(30)
                .with_error_message(Some(StrBytes::from_static_str(
                    "Not authorized to access group",
                ))),
        })
        .collect();
    body(
        &FindCoordinatorResponse::default().with_coordinators(coordinators),
        r.version,
    )
}

/// OffsetFetch's answer: offset 5 on partition 0 of every topic, nothing committed elsewhere;
/// `error(group)` overrides a group's error code.
fn offsets(r: &Request, error: impl Fn(&str) -> i16) -> Reply {
    let q: OffsetFetchRequest = r.decode();
    let groups = q
        .groups
        .iter()
        .map(|g| {
            let topics = g
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    OffsetFetchResponseTopics::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(if *p == 0 { 5 } else { -1 })
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_topics(topics)
                .with_error_code(error(g.group_id.0.as_str()))
        })
        .collect();
    body(
        &OffsetFetchResponse::default().with_groups(groups),
        r.version,
    )
}

fn describe(r: &Request) -> Reply {
    let q: DescribeGroupsRequest = r.decode();
    let groups = q
        .groups
        .iter()
        .map(|g| {
            DescribedGroup::default()
                .with_group_id(g.clone())
                .with_group_state(StrBytes::from_static_str("Stable"))
        })
        .collect();
    body(
        &DescribeGroupsResponse::default().with_groups(groups),
        r.version,
    )
}

/// The groups an OffsetFetch request asked for.
fn asked(r: &Request) -> Vec<String> {
    let q: OffsetFetchRequest = r.decode();
    q.groups.iter().map(|g| g.group_id.0.to_string()).collect()
}

fn partitions(groups: &[&str]) -> BTreeMap<String, Vec<(String, i32)>> {
    groups
        .iter()
        .map(|g| {
            (
                (*g).to_owned(),
                vec![("t".to_owned(), 0), ("t".to_owned(), 1)],
            )
        })
        .collect()
}

fn ids(groups: &[&str]) -> Vec<String> {
    groups.iter().map(|g| (*g).to_owned()).collect()
}

fn requests_of(settings_address: &str) -> GroupRequests {
    GroupRequests::new(&ClientSettings::plaintext(
        settings_address,
        Duration::from_secs(5),
    ))
}

fn by_api(tally: &RequestTally) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (api, _, n) in tally.counts() {
        *out.entry(api).or_insert(0) += n;
    }
    out
}

fn committed(facts: &GroupFacts, group: &str) -> BTreeMap<(String, i32), Option<i64>> {
    facts.commits[group]
        .as_ref()
        .unwrap_or_else(|r| panic!("{group}: {r}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap()))
        .collect()
}

#[tokio::test]
async fn each_coordinator_gets_one_request_for_all_its_groups_and_a_warm_pass_looks_up_none() {
    let placement = Placement::default();
    let b_asked: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let log = b_asked.clone();
    let b = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::OffsetFetch => {
            log.lock().unwrap().push(asked(r));
            offsets(r, |_| 0)
        }
        ApiKey::DescribeGroups => describe(r),
        _ => Reply::Close,
    })
    .await;
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        ApiKey::OffsetFetch => offsets(r, |_| 0),
        ApiKey::DescribeGroups => describe(r),
        _ => Reply::Close,
    })
    .await;
    let groups = ["g0", "g1", "g2", "g3", "g4"];
    for (i, g) in groups.iter().enumerate() {
        let at = if i % 2 == 0 { &a.address } else { &b.address };
        placement.lock().unwrap().insert((*g).into(), at.clone());
    }
    let requests = requests_of(&a.address);
    assert_eq!(requests.path().await.unwrap(), Path::Batched);

    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&groups), &ids(&groups), true, &mut tally)
        .await
        .unwrap();
    assert_eq!(
        by_api(&tally),
        BTreeMap::from([
            ("DescribeGroups", 2),
            ("FindCoordinator", 1),
            ("OffsetFetch", 2)
        ])
    );
    for g in groups {
        assert_eq!(
            committed(&facts, g),
            BTreeMap::from([(("t".into(), 0), Some(5)), (("t".into(), 1), None)])
        );
        assert_eq!(facts.members[g], Ok((0, "Stable".to_owned())));
    }
    assert_eq!(b_asked.lock().unwrap().clone(), [["g1", "g3"]]);
    assert_eq!(requests.cached_coordinators().await, 5);

    // Warm: no lookup, one OffsetFetch per coordinator.
    let mut tally = RequestTally::default();
    requests
        .fetch(&partitions(&groups), &ids(&groups), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(by_api(&tally), BTreeMap::from([("OffsetFetch", 2)]));
    assert_eq!(a.count(ApiKey::FindCoordinator), 1);
    assert_eq!(
        (a.count(ApiKey::OffsetFetch), b.count(ApiKey::OffsetFetch)),
        (2, 2)
    );
}

#[tokio::test]
async fn a_coordinator_that_moved_is_looked_up_again_within_the_pass() {
    let placement = Placement::default();
    let b = FakeBroker::start(modern(), |r| match r.key {
        ApiKey::OffsetFetch => offsets(r, |_| 0),
        _ => Reply::Close,
    })
    .await;
    let p = placement.clone();
    let (moved, to) = (placement.clone(), b.address.clone());
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        // Group "moving" moves to B as A is asked for it: A answers NOT_COORDINATOR.
        ApiKey::OffsetFetch => {
            moved.lock().unwrap().insert("moving".into(), to.clone());
            offsets(r, |g| if g == "moving" { 16 } else { 0 })
        }
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("moving".into(), a.address.clone());
    placement
        .lock()
        .unwrap()
        .insert("staying".into(), a.address.clone());
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let groups = ["moving", "staying"];
    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&groups), &ids(&groups), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(committed(&facts, "moving")[&("t".to_owned(), 0)], Some(5));
    assert_eq!(committed(&facts, "staying")[&("t".to_owned(), 0)], Some(5));
    assert_eq!(
        by_api(&tally),
        BTreeMap::from([("FindCoordinator", 2), ("OffsetFetch", 2)]),
        "the moved group is looked up again and asked of its new coordinator, in the same pass"
    );
    assert_eq!(
        (a.count(ApiKey::OffsetFetch), b.count(ApiKey::OffsetFetch)),
        (1, 1)
    );
    // Warm: straight to B for it, to A for the other.
    let mut tally = RequestTally::default();
    requests
        .fetch(&partitions(&groups), &ids(&groups), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(by_api(&tally), BTreeMap::from([("OffsetFetch", 2)]));
    assert_eq!(b.count(ApiKey::OffsetFetch), 2);
}

/// A coordinator that keeps refusing: the group fails this pass (once looked up again), with
/// a retriable code; the other groups do not.
#[tokio::test]
async fn a_coordinator_that_keeps_moving_fails_that_group_for_this_pass() {
    let placement = Placement::default();
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        ApiKey::OffsetFetch => offsets(r, |g| if g == "loading" { 14 } else { 0 }),
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("loading".into(), a.address.clone());
    placement
        .lock()
        .unwrap()
        .insert("ready".into(), a.address.clone());
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let groups = ["loading", "ready"];
    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&groups), &ids(&groups), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(
        facts.commits["loading"].as_ref().unwrap_err().code,
        "NotCoordinator"
    );
    assert!(facts.commits["ready"].is_ok());
    assert_eq!(a.count(ApiKey::FindCoordinator), 2);
    assert_eq!(
        requests.cached_coordinators().await,
        1,
        "only the group that answered"
    );
}

#[tokio::test]
async fn a_broken_coordinator_connection_is_dropped_and_its_groups_asked_again() {
    let placement = Placement::default();
    // B breaks its first connection at the first OffsetFetch, then answers.
    let b = FakeBroker::start(modern(), |r| match (r.key, r.connection) {
        (ApiKey::OffsetFetch, 0) => Reply::Close,
        (ApiKey::OffsetFetch, _) => offsets(r, |_| 0),
        _ => Reply::Close,
    })
    .await;
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("g".into(), b.address.clone());
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&["g"]), &ids(&["g"]), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(committed(&facts, "g")[&("t".to_owned(), 0)], Some(5));
    assert_eq!(a.count(ApiKey::FindCoordinator), 2, "looked up again");
    assert_eq!(b.count(ApiKey::OffsetFetch), 2);
    assert_eq!(b.count(ApiKey::ApiVersions), 2, "on a new connection");
    let labels: Vec<_> = tally.counts().collect();
    assert!(
        labels.contains(&("OffsetFetch", "unreachable", 1)),
        "{labels:?}"
    );
    assert!(labels.contains(&("OffsetFetch", "ok", 1)), "{labels:?}");
}

#[tokio::test]
async fn what_fails_for_one_group_fails_that_group_only() {
    let placement = Placement::default();
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        ApiKey::OffsetFetch => offsets(r, |g| if g == "denied" { 30 } else { 0 }),
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("fine".into(), a.address.clone());
    placement
        .lock()
        .unwrap()
        .insert("denied".into(), a.address.clone());
    // "unknown" has no placement: FindCoordinator refuses it.
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let groups = ["fine", "denied", "unknown"];
    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&groups), &ids(&groups), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(committed(&facts, "fine")[&("t".to_owned(), 0)], Some(5));
    let denied = facts.commits["denied"].as_ref().unwrap_err();
    assert_eq!(denied.code, "GroupAuthorizationFailed", "{denied:?}");
    assert!(denied.message.starts_with("OffsetFetch: "), "{denied:?}");
    let unknown = facts.commits["unknown"].as_ref().unwrap_err();
    assert_eq!(unknown.code, "GroupAuthorizationFailed");
    assert_eq!(
        unknown.message,
        "FindCoordinator: Not authorized to access group"
    );
}

#[tokio::test]
async fn a_group_error_for_an_unsupported_version_fails_the_pass() {
    let placement = Placement::default();
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match r.key {
        ApiKey::FindCoordinator => find(r, &p),
        ApiKey::OffsetFetch => offsets(r, |_| 35),
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("g".into(), a.address.clone());
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let err = requests
        .fetch(
            &partitions(&["g"]),
            &ids(&["g"]),
            false,
            &mut RequestTally::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "BrokerUnsupported", "{err:?}");
}

#[tokio::test]
async fn a_broker_without_find_coordinator_v4_and_offset_fetch_v8_keeps_to_librdkafka() {
    let old = vec![
        (ApiKey::ApiVersions, (0, 3)),
        (ApiKey::FindCoordinator, (0, 3)),
        (ApiKey::OffsetFetch, (0, 7)),
    ];
    let a = FakeBroker::start(old, |_| Reply::Close).await;
    let requests = requests_of(&a.address);
    let Path::PerGroup(reason) = requests.path().await.unwrap() else {
        panic!("an old broker cannot batch")
    };
    assert_eq!(
        reason,
        "the broker serves FindCoordinator up to v3 and OffsetFetch up to v7; one request for many groups needs FindCoordinator v4 and OffsetFetch v8"
    );
    // Decided once: no second connection.
    requests.path().await.unwrap();
    assert_eq!(a.count(ApiKey::ApiVersions), 1);
    // And for settings this client cannot honour, without contacting the broker.
    let mut settings = ClientSettings::plaintext(&a.address, Duration::from_secs(5));
    settings
        .properties
        .insert("ssl.ca.location".into(), "/etc/ssl/ca.pem".into());
    let Path::PerGroup(reason) = GroupRequests::new(&settings).path().await.unwrap() else {
        panic!("settings only librdkafka implements")
    };
    assert!(reason.contains("ssl.ca.location"), "{reason}");
    assert_eq!(a.count(ApiKey::ApiVersions), 1);
}

#[test]
fn the_path_follows_the_versions() {
    let versions = |find: i16, fetch: i16| {
        BTreeMap::from([
            (ApiKey::FindCoordinator as i16, (0, find)),
            (ApiKey::OffsetFetch as i16, (0, fetch)),
        ])
    };
    assert_eq!(decide(&versions(4, 8)), Path::Batched);
    assert_eq!(decide(&versions(6, 9)), Path::Batched);
    assert!(matches!(decide(&versions(3, 9)), Path::PerGroup(_)));
    assert!(matches!(decide(&versions(4, 7)), Path::PerGroup(_)));
    assert!(matches!(decide(&BTreeMap::new()), Path::PerGroup(r) if r.contains("not at all")));
}

/// A connection the broker closed between passes (idle, restarted) costs one failed request,
/// not the pass: the lookup is sent again on a new connection.
#[tokio::test]
async fn a_connection_the_broker_closed_is_replaced_within_the_pass() {
    let placement = Placement::default();
    let p = placement.clone();
    let a = FakeBroker::start(modern(), move |r| match (r.key, r.connection) {
        // The connection that decided the path is gone by the first lookup.
        (ApiKey::FindCoordinator, 0) => Reply::Close,
        (ApiKey::FindCoordinator, _) => find(r, &p),
        (ApiKey::OffsetFetch, _) => offsets(r, |_| 0),
        _ => Reply::Close,
    })
    .await;
    placement
        .lock()
        .unwrap()
        .insert("g".into(), a.address.clone());
    let requests = requests_of(&a.address);
    requests.path().await.unwrap();
    let mut tally = RequestTally::default();
    let facts = requests
        .fetch(&partitions(&["g"]), &ids(&["g"]), false, &mut tally)
        .await
        .unwrap();
    assert_eq!(committed(&facts, "g")[&("t".to_owned(), 0)], Some(5));
    let labels: Vec<_> = tally.counts().collect();
    assert!(
        labels.contains(&("FindCoordinator", "unreachable", 1)),
        "{labels:?}"
    );
    assert!(labels.contains(&("FindCoordinator", "ok", 1)), "{labels:?}");
}

/// Where our own connection cannot be made as librdkafka's is (here a CA that is no
/// certificate), the pass keeps to librdkafka, which reports its own error if it has one.
#[tokio::test]
async fn our_connection_failing_where_librdkafkas_may_not_keeps_to_librdkafka() {
    let a = FakeBroker::start(modern(), |_| Reply::Close).await;
    let mut settings = ClientSettings::plaintext(&a.address, Duration::from_secs(5));
    settings
        .properties
        .insert("security.protocol".into(), "ssl".into());
    settings
        .properties
        .insert("ssl.ca.pem".into(), "not a certificate".into());
    let Path::PerGroup(reason) = GroupRequests::new(&settings).path().await.unwrap() else {
        panic!("keeps to librdkafka")
    };
    assert!(reason.contains("spec.tls.caCert"), "{reason}");
}
