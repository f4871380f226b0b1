//! Consumer-group lag through the real Kafka protocol: against Tansu started by the harness, or
//! any broker named by `TRIBUTARY_TEST_BOOTSTRAP`. Records are produced and consumed, and
//! offsets committed, by real rdkafka clients.
//!
//! Tansu 0.6.0 (memory storage) reports a partition's end offset as the base offset of its
//! last record batch + 1 (two batches of 5 records: end offset 6, while offsets 0..=9 are
//! consumable; its legacy watermark answer is the same). So the records here are produced one
//! per batch (`batch.num.messages=1`), where its end offsets are exact.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::broker::{broker, free_port, unique};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tributary::kafka::lag::batched::{Path, PER_GROUP_OFFSET_FETCH};
use tributary::kafka::lag::{
    GroupLag, GroupQuery, Lag, LagObserver, OffsetReset, RdKafkaLagObserver,
};
use tributary::kafka::{
    BrokerAdmin, BrokerError, ClientSettings, NewTopic, RdKafkaAdmin, RequestTally,
};
use tributary::runtime::instrumented::{counted, Counted};

fn settings() -> ClientSettings {
    ClientSettings::plaintext(&broker().bootstrap, Duration::from_secs(10))
}

fn observer() -> Counted<RdKafkaLagObserver> {
    counted(RdKafkaLagObserver::connect(&settings()).unwrap())
}

/// The Kafka APIs a lag pass needs, by key: Metadata, ListOffsets, OffsetFetch,
/// FindCoordinator.
const LAG_APIS: &[(i16, &str)] = &[
    (3, "Metadata"),
    (2, "ListOffsets"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
];

/// The APIs of [`LAG_APIS`] the test broker does not serve.
async fn missing_lag_apis() -> Vec<&'static str> {
    let apis = tributary::kafka::api_versions::probe(&broker().bootstrap, Duration::from_secs(5))
        .await
        .unwrap();
    LAG_APIS
        .iter()
        .filter(|(key, _)| !apis.contains_key(key))
        .map(|(_, name)| *name)
        .collect()
}

/// One pass; on a broker that lacks an API the pass needs, asserts the explicit
/// `BrokerUnsupported` error naming it and returns `None` (the caller stops there).
async fn observe(observer: &impl LagObserver, groups: &[GroupQuery]) -> Option<Vec<GroupLag>> {
    let missing = missing_lag_apis().await;
    check_supported(&missing, observer.observe(groups).await)
}

/// The requests of a tally by API, whatever their outcome.
fn by_api(tally: &RequestTally) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (api, _, n) in tally.counts() {
        *out.entry(api).or_insert(0) += n;
    }
    out
}

/// `result` of a pass on a broker that lacks `missing`: see [`observe`].
fn check_supported(
    missing: &[&str],
    result: Result<Vec<GroupLag>, BrokerError>,
) -> Option<Vec<GroupLag>> {
    if missing.is_empty() {
        return Some(result.unwrap_or_else(|e| panic!("the broker serves every API: {e}")));
    }
    match result {
        Err(e @ BrokerError::Unsupported { .. }) => {
            assert_eq!(e.reason(), "BrokerUnsupported");
            eprintln!("the broker lacks {missing:?}: {e}");
            None
        }
        other => panic!("the broker lacks {missing:?}, expected BrokerUnsupported: {other:?}"),
    }
}

fn lag(g: &GroupLag) -> &Lag {
    g.result
        .as_ref()
        .unwrap_or_else(|r| panic!("group {}: {r}", g.group_id))
}

async fn create_topic(name: &str, partitions: i32) {
    let admin = RdKafkaAdmin::connect(&settings()).unwrap();
    let outcomes = admin
        .create_topics(&[NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor: Some(1),
            config: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
}

/// Produces `counts[p]` records to partition `p`, one record per batch.
fn produce(topic: &str, counts: &[i64]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for (p, n) in counts.iter().enumerate() {
        for i in 0..*n {
            let payload = format!("record {i}");
            let mut record = BaseRecord::to(topic)
                .partition(p as i32)
                .key("k")
                .payload(&payload);
            while let Err((e, r)) = producer.send(record) {
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "{e}"
                );
                producer.poll(Duration::from_millis(20));
                record = r;
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A consumer of `group` that commits only when told to.
fn consumer(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

/// Assigns the partitions from their beginning, reads exactly `n` records and commits the
/// position (synchronously); returns the records read per partition.
fn consume_and_commit(
    group: &str,
    partitions: &[(&str, i32)],
    n: usize,
) -> BTreeMap<(String, i32), i64> {
    let consumer = consumer(group);
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition_offset(t, *p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut read = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = 0;
    while got < n {
        assert!(Instant::now() < deadline, "read only {got} of {n} records");
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                *read
                    .entry((m.topic().to_owned(), m.partition()))
                    .or_insert(0) += 1;
                got += 1;
            }
            Some(Err(e)) => panic!("consuming: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    read
}

fn per_partition(lag: &Lag, topic: &str) -> Vec<u64> {
    lag.partitions
        .iter()
        .filter(|p| p.topic == topic)
        .map(|p| p.lag)
        .collect()
}

/// Leader brokers of the cluster (ListOffsets goes once to each leader).
async fn brokers() -> u64 {
    let info = RdKafkaAdmin::connect(&settings())
        .unwrap()
        .cluster_info()
        .await
        .unwrap();
    info.brokers.len() as u64
}

#[tokio::test]
async fn a_group_that_never_committed_lags_by_its_reset_policy() {
    let topic = unique("bookings");
    create_topic(&topic, 4).await;
    produce(&topic, &[5, 10, 0, 3]);
    let observer = observer();
    let groups = [
        GroupQuery::new(unique("fresh-earliest"), &[&topic], OffsetReset::Earliest),
        GroupQuery::new(unique("fresh-latest"), &[&topic], OffsetReset::Latest),
    ];
    let missing = missing_lag_apis().await;
    let mut tally = RequestTally::default();
    let result = observer.inner().observe_tallied(&groups, &mut tally).await;
    let Some(seen) = check_supported(&missing, result) else {
        return;
    };
    let leaders = brokers().await;
    let by_api = by_api(&tally);
    assert_eq!(by_api["Metadata"], 1, "{by_api:?}");
    assert_eq!(by_api["ListOffsets"], 2 * leaders, "end + start per leader");
    if let Path::PerGroup(why) = observer.inner().path().await.unwrap() {
        // A broker older than Kafka 3.0 (TRIBUTARY_TEST_BOOTSTRAP): one request per group.
        eprintln!("per group: {why}");
        assert_eq!(by_api[PER_GROUP_OFFSET_FETCH], 2, "{by_api:?}");
    } else {
        assert_eq!(
            by_api["FindCoordinator"], 1,
            "both groups' coordinators in one request"
        );
        assert!(
            (1..=leaders.min(2)).contains(&by_api["OffsetFetch"]),
            "one OffsetFetch per coordinator broker: {by_api:?}"
        );
    }

    let earliest = lag(&seen[0]);
    assert_eq!(earliest.total, 18, "earliest: every record is lag");
    assert_eq!(per_partition(earliest, &topic), [5, 10, 0, 3]);
    assert_eq!(earliest.partition_count, 4);
    assert_eq!(earliest.partitions_with_lag, 3);
    assert!(!earliest.has_committed);
    assert!(earliest.partitions.iter().all(|p| p.committed.is_none()));
    assert_eq!(
        earliest
            .partitions
            .iter()
            .map(|p| p.log_end)
            .collect::<Vec<_>>(),
        [5, 10, 0, 3]
    );
    assert_eq!(earliest.topics.len(), 1);
    assert_eq!(
        (
            earliest.topics[0].lag,
            earliest.topics[0].partitions,
            earliest.topics[0].partitions_with_lag
        ),
        (18, 4, 3)
    );
    assert_eq!(earliest.members, None, "not asked for");

    let latest = lag(&seen[1]);
    assert_eq!(
        latest.total, 0,
        "latest: a group that never committed starts at the end"
    );
    assert_eq!(latest.partitions_with_lag, 0);
    assert_eq!(latest.partition_count, 4);
    assert!(!latest.has_committed);
}

#[tokio::test]
async fn committing_part_of_the_backlog_lowers_the_lag_by_exactly_that_much() {
    let topic = unique("payments");
    create_topic(&topic, 3).await;
    produce(&topic, &[6, 4, 5]);
    let group = unique("payments-app");
    let observer = observer();
    let query = [GroupQuery::new(
        group.clone(),
        &[&topic],
        OffsetReset::Earliest,
    )];
    let Some(before) = observe(&observer, &query).await else {
        return;
    };
    let before = lag(&before[0]).clone();
    assert_eq!(before.total, 15);

    let read = consume_and_commit(&group, &[(&topic, 0), (&topic, 1), (&topic, 2)], 7);
    assert_eq!(read.values().sum::<i64>(), 7);

    let after = observer.observe(&query).await.unwrap();
    let after = lag(&after[0]);
    assert_eq!(
        after.total,
        15 - 7,
        "exactly the 7 records read and committed"
    );
    assert!(after.has_committed);
    for (p, produced) in [6u64, 4, 5].into_iter().enumerate() {
        let part = &after.partitions[p];
        let read = read.get(&(topic.clone(), p as i32)).copied().unwrap_or(0);
        assert_eq!(part.lag, produced - read as u64, "partition {p}");
        assert_eq!(
            part.committed,
            (read > 0).then_some(read),
            "partition {p}: the committed position"
        );
    }
    assert_eq!(
        after.partitions_with_lag,
        after.partitions.iter().filter(|p| p.lag > 0).count() as i32
    );

    // Latest: partitions never committed count as caught up, the committed ones as committed.
    let latest = [GroupQuery::new(
        group.clone(),
        &[&topic],
        OffsetReset::Latest,
    )];
    let latest = observer.observe(&latest).await.unwrap();
    let expected: u64 = [6u64, 4, 5]
        .into_iter()
        .enumerate()
        .filter_map(|(p, produced)| {
            read.get(&(topic.clone(), p as i32))
                .map(|r| produced - *r as u64)
        })
        .sum();
    assert_eq!(lag(&latest[0]).total, expected);

    // More records arrive: the lag grows by as many.
    produce(&topic, &[0, 2, 0]);
    let grown = observer.observe(&query).await.unwrap();
    assert_eq!(lag(&grown[0]).total, 15 - 7 + 2);
}

#[tokio::test]
async fn a_group_reading_two_topics_and_an_absent_one() {
    let (a, b) = (unique("rides"), unique("drivers"));
    create_topic(&a, 3).await;
    create_topic(&b, 2).await;
    produce(&a, &[2, 3, 4]);
    produce(&b, &[10, 1]);
    let group = unique("dispatch");
    let read = consume_and_commit(&group, &[(&b, 0)], 10);
    assert_eq!(read[&(b.clone(), 0)], 10);

    let absent = unique("not-created");
    let observer = observer();
    let query = [GroupQuery::new(
        group,
        &[&a, &b, &absent],
        OffsetReset::Earliest,
    )];
    let Some(seen) = observe(&observer, &query).await else {
        return;
    };
    let l = lag(&seen[0]);
    assert_eq!(l.total, 9 + 1);
    assert_eq!(
        l.partition_count, 5,
        "3 + 2 live partitions; the absent topic has none"
    );
    assert_eq!(l.partitions_with_lag, 3 + 1);
    assert_eq!(l.missing_topics, std::slice::from_ref(&absent));
    assert!(l.has_committed);
    let topics: Vec<(&str, bool, i32, u64, i32)> = l
        .topics
        .iter()
        .map(|t| {
            (
                t.topic.as_str(),
                t.exists,
                t.partitions,
                t.lag,
                t.partitions_with_lag,
            )
        })
        .collect();
    assert_eq!(
        topics,
        [
            (a.as_str(), true, 3, 9, 3),
            (b.as_str(), true, 2, 1, 1),
            (absent.as_str(), false, 0, 0, 0)
        ]
    );
    assert_eq!(per_partition(l, &a), [2, 3, 4]);
    assert_eq!(per_partition(l, &b), [0, 1]);
    assert_eq!(l.partitions[3].committed, Some(10));
}

#[tokio::test]
async fn many_groups_are_observed_in_one_batched_pass() {
    let (a, b) = (unique("orders"), unique("refunds"));
    create_topic(&a, 6).await;
    create_topic(&b, 2).await;
    produce(&a, &[1, 2, 3, 4, 5, 6]);
    produce(&b, &[7, 8]);
    let mut settings = settings();
    // librdkafka's own request counters, to see what it sends besides ours.
    settings
        .properties
        .insert("statistics.interval.ms".into(), "100".into());
    let observer = counted(RdKafkaLagObserver::connect(&settings).unwrap());
    let groups: Vec<GroupQuery> = (0..30)
        .map(|i| {
            let topics: &[&str] = if i % 3 == 0 { &[&a, &b] } else { &[&a] };
            GroupQuery::new(unique("batch-group"), topics, OffsetReset::Earliest)
        })
        .collect();
    let missing = missing_lag_apis().await;
    let mut tally = RequestTally::default();
    let result = observer.inner().observe_tallied(&groups, &mut tally).await;
    let Some(seen) = check_supported(&missing, result) else {
        return;
    };
    let leaders = brokers().await;
    let first = by_api(&tally);
    for (g, q) in seen.iter().zip(&groups) {
        assert_eq!(g.group_id, q.group_id, "results in query order");
        let expected = if q.topics.len() == 2 { 21 + 15 } else { 21 };
        assert_eq!(lag(g).total, expected);
    }
    if let Path::PerGroup(why) = observer.inner().path().await.unwrap() {
        // A broker older than Kafka 3.0 (TRIBUTARY_TEST_BOOTSTRAP): one request per group.
        eprintln!("per group: {why}");
        assert_eq!(first[PER_GROUP_OFFSET_FETCH], 30, "{first:?}");
        return;
    }
    assert_eq!(
        first["FindCoordinator"], 1,
        "30 groups, one lookup: {first:?}"
    );
    assert!(
        first["OffsetFetch"] <= leaders,
        "one OffsetFetch per coordinator broker, not per group: {first:?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let wire = observer
        .inner()
        .wire_requests()
        .expect("statistics were enabled");
    eprintln!("librdkafka's count of what it sent: {wire:?}");
    assert_eq!(
        wire.get("ListOffsets").copied(),
        Some(2 * leaders),
        "{wire:?}"
    );
    // The group requests go on Tributary's own connections: librdkafka looks up no
    // coordinator at all.
    assert_eq!(wire.get("FindCoordinator"), None, "{wire:?}");
    assert!(
        wire.get("Metadata").copied().unwrap_or(0) <= 3,
        "no metadata request per group or partition: {wire:?}"
    );

    // Again: the coordinators are cached now.
    let before = observer.inner().wire_requests().unwrap();
    let mut tally = RequestTally::default();
    observer
        .inner()
        .observe_tallied(&groups, &mut tally)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = observer.inner().wire_requests().unwrap();
    let delta =
        |api: &str| after.get(api).copied().unwrap_or(0) - before.get(api).copied().unwrap_or(0);
    let second = by_api(&tally);
    eprintln!(
        "second pass: ours {second:?}; librdkafka's on the wire: Metadata {}, ListOffsets {}",
        delta("Metadata"),
        delta("ListOffsets"),
    );
    assert_eq!(second.get("FindCoordinator"), None, "cached: {second:?}");
    assert!(second["OffsetFetch"] <= leaders, "{second:?}");
    assert_eq!(delta("FindCoordinator"), 0);
    assert_eq!(delta("ListOffsets"), 2 * leaders);
    assert!(delta("Metadata") <= 2);
}

#[tokio::test]
async fn member_counts_of_live_groups() {
    let topic = unique("tickets");
    create_topic(&topic, 2).await;
    produce(&topic, &[1, 1]);
    let group = unique("ticketing");
    let observer = RdKafkaLagObserver::connect(&settings())
        .unwrap()
        .describe_members(true);
    let query = [GroupQuery::new(
        group.clone(),
        &[&topic],
        OffsetReset::Earliest,
    )];
    let Some(seen) = observe(&observer, &query).await else {
        return;
    };
    assert_eq!(
        lag(&seen[0]).members,
        Some(0),
        "an unknown group has no members"
    );

    // A short session: with librdkafka's default (45 s) Tansu takes ~23 s to complete the
    // first rebalance, with 6 s about 3 s.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "the consumer never joined");
        let _ = member.poll(Duration::from_millis(200));
    }
    let seen = observer.observe(&query).await.unwrap();
    let l = lag(&seen[0]);
    assert_eq!(l.state.as_deref(), Some("Stable"), "{l:?}");
    // The classic DescribeGroups, batched per coordinator. (librdkafka 2.12 asked
    // ConsumerGroupDescribe (KIP-848) first, which Tansu 0.6.0 answered as a Stable group with
    // no members.)
    assert_eq!(l.members, Some(1), "{l:?}");
    drop(member);
}

#[tokio::test]
async fn an_unreachable_cluster_fails_the_pass_within_the_timeout() {
    let port = free_port();
    let observer = RdKafkaLagObserver::connect(&ClientSettings::plaintext(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(2),
    ))
    .unwrap();
    let start = Instant::now();
    let err = observer
        .observe(&[GroupQuery::new("g", &["t"], OffsetReset::Latest)])
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}

/// The operator observes lag through its admin's librdkafka client (one client per cluster):
/// both work over it, interleaved.
#[tokio::test]
async fn the_admins_client_observes_lag_too() {
    let topic = unique("shared");
    let admin = RdKafkaAdmin::connect(&settings()).unwrap();
    let outcomes = admin
        .create_topics(&[NewTopic {
            name: topic.clone(),
            partitions: 2,
            replication_factor: Some(1),
            config: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    produce(&topic, &[3, 4]);
    let observer = admin.lag_observer();
    let query = [GroupQuery::new(
        unique("shared-group"),
        &[&topic],
        OffsetReset::Earliest,
    )];
    let Some(seen) = observe(&observer, &query).await else {
        return;
    };
    assert_eq!(lag(&seen[0]).total, 7);
    assert_eq!(lag(&seen[0]).partition_count, 2);
    let snapshot = admin.snapshot(std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(snapshot.topics[&topic].partitions, 2);
    drop(admin);
    // The observer keeps the shared client alive.
    let again = observer.observe(&query).await.unwrap();
    assert_eq!(lag(&again[0]).total, 7);
}

#[tokio::test]
async fn no_groups_make_no_request() {
    let observer = observer();
    assert!(observer.observe(&[]).await.unwrap().is_empty());
    let seen = observer
        .observe(&[GroupQuery::new("idle", &[], OffsetReset::Latest)])
        .await
        .unwrap();
    assert_eq!(lag(&seen[0]), &Lag::default());
    assert_eq!(observer.requests_made(), 0);
}

/// A broker of an old Kafka: it serves ApiVersions and Metadata (v0-1) only — no ListOffsets,
/// OffsetFetch or FindCoordinator. Returns its port; one topic, `legacy`, with 2 partitions.
fn start_old_broker() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve_old_broker(stream, port));
        }
    });
    port
}

fn serve_old_broker(mut stream: std::net::TcpStream, port: u16) {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        let key = i16::from_be_bytes([request[0], request[1]]);
        let version = i16::from_be_bytes([request[2], request[3]]);
        let correlation = &request[4..8];
        let client_id_len = i16::from_be_bytes([request[8], request[9]]).max(0) as usize;
        let body = &request[10 + client_id_len..];
        let mut response = correlation.to_vec();
        match key {
            18 => {
                // ApiVersions: newer versions get UNSUPPORTED_VERSION (the client retries v0).
                let apis: &[(i16, i16, i16)] = if version > 0 {
                    response.extend_from_slice(&35i16.to_be_bytes());
                    &[(18, 0, 0)]
                } else {
                    response.extend_from_slice(&0i16.to_be_bytes());
                    &[(18, 0, 0), (3, 0, 1)]
                };
                response.extend_from_slice(&(apis.len() as i32).to_be_bytes());
                for (k, min, max) in apis {
                    for v in [k, min, max] {
                        response.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            3 => {
                // Metadata v0/v1: the requested topics (`legacy` exists, others do not).
                let count = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let mut names = Vec::new();
                let mut at = 4;
                for _ in 0..count.max(0) {
                    let len = i16::from_be_bytes([body[at], body[at + 1]]) as usize;
                    names.push(String::from_utf8_lossy(&body[at + 2..at + 2 + len]).into_owned());
                    at += 2 + len;
                }
                if count < 0 {
                    names.push("legacy".into());
                }
                response.extend_from_slice(&1i32.to_be_bytes()); // one broker
                response.extend_from_slice(&1i32.to_be_bytes());
                string(&mut response, "127.0.0.1");
                response.extend_from_slice(&i32::from(port).to_be_bytes());
                if version >= 1 {
                    response.extend_from_slice(&(-1i16).to_be_bytes()); // rack: null
                    response.extend_from_slice(&1i32.to_be_bytes()); // controller
                }
                response.extend_from_slice(&(names.len() as i32).to_be_bytes());
                for name in &names {
                    let exists = name == "legacy";
                    response.extend_from_slice(&(if exists { 0i16 } else { 3 }).to_be_bytes());
                    string(&mut response, name);
                    if version >= 1 {
                        response.push(0); // not internal
                    }
                    let partitions: i32 = if exists { 2 } else { 0 };
                    response.extend_from_slice(&partitions.to_be_bytes());
                    for p in 0..partitions {
                        response.extend_from_slice(&0i16.to_be_bytes());
                        response.extend_from_slice(&p.to_be_bytes());
                        response.extend_from_slice(&1i32.to_be_bytes()); // leader
                        for _ in 0..2 {
                            response.extend_from_slice(&1i32.to_be_bytes()); // [1]
                            response.extend_from_slice(&1i32.to_be_bytes());
                        }
                    }
                }
            }
            _ => return, // never advertised
        }
        let mut framed = (response.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&response);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// A broker that lacks the offset APIs fails the pass with `BrokerUnsupported` and
/// librdkafka's text naming the API; nothing is skipped, no lag of 0 is made up. (Tansu serves
/// every API a pass needs; the tests above cover it.)
#[tokio::test]
async fn a_broker_without_the_offset_apis_is_reported_unsupported() {
    let port = start_old_broker();
    let observer = RdKafkaLagObserver::connect(&ClientSettings::plaintext(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(5),
    ))
    .unwrap();
    let start = Instant::now();
    let err = observer
        .observe(&[GroupQuery::new(
            "legacy-app",
            &["legacy"],
            OffsetReset::Earliest,
        )])
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.reason(), "BrokerUnsupported", "{err:?}");
    match &err {
        BrokerError::Unsupported { api, message } => {
            assert!(["ListOffsets", "OffsetFetch"].contains(api), "{err}");
            assert!(
                message.contains("not supported"),
                "the broker's or client's text: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let Path::PerGroup(why) = observer.path().await.unwrap() else {
        panic!("an old broker's groups cannot be batched")
    };
    assert!(why.contains("OffsetFetch not at all"), "{why}");
}
