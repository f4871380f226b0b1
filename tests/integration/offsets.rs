//! Consumer-group offsets read and reset through the real Kafka protocol — the kafka layer's
//! [`RdKafkaGroupAdmin`] and the `tributary offsets` commands — against Tansu started by the
//! harness or the broker named by `TRIBUTARY_TEST_BOOTSTRAP`. 1,000 real records are produced,
//! consumed and committed by rdkafka's own clients, and a consumer started after each reset
//! shows what the group reads from there.
//!
//! Records are produced one per batch (see `lag.rs`: Tansu's end offsets are exact only then).

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::broker::{broker, unique};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tributary::kafka::offsets::{
    GroupAdmin, GroupDeletion, OffsetSpec, RdKafkaGroupAdmin, TopicPartition,
};
use tributary::kafka::RequestTally;
use tributary::kafka::{BrokerAdmin, BrokerError, ClientSettings, NewTopic, RdKafkaAdmin};
use tributary::offsets::{self, PlanError, Request, ResetError, Selection, Target};

const PARTITIONS: i32 = 4;
const RECORDS: i64 = 1000;

fn settings() -> ClientSettings {
    ClientSettings::plaintext(&broker().bootstrap, Duration::from_secs(10))
}

fn admin() -> RdKafkaGroupAdmin {
    RdKafkaGroupAdmin::connect(&settings()).unwrap()
}

/// The Kafka APIs reading and resetting offsets needs, by key.
const APIS: &[(i16, &str)] = &[
    (2, "ListOffsets"),
    (3, "Metadata"),
    (8, "OffsetCommit"),
    (9, "OffsetFetch"),
    (10, "FindCoordinator"),
    (15, "DescribeGroups"),
    (42, "DeleteGroups"),
];

/// The APIs of [`APIS`] the test broker does not serve.
async fn missing_apis() -> Vec<&'static str> {
    let apis = tributary::kafka::api_versions::probe(&broker().bootstrap, Duration::from_secs(5))
        .await
        .unwrap();
    APIS.iter()
        .filter(|(key, _)| !apis.contains_key(key))
        .map(|(_, name)| *name)
        .collect()
}

/// On a broker lacking one of [`APIS`], a call fails with `BrokerUnsupported` naming it; the
/// test stops there (true).
async fn lacks_apis() -> bool {
    let missing = missing_apis().await;
    if missing.is_empty() {
        return false;
    }
    let err = admin()
        .describe_group("any", &mut RequestTally::default())
        .await
        .err();
    eprintln!("the broker lacks {missing:?}: {err:?}");
    true
}

async fn create_topic(name: &str) {
    let admin = RdKafkaAdmin::connect(&settings()).unwrap();
    let outcomes = admin
        .create_topics(&[NewTopic {
            name: name.to_owned(),
            partitions: PARTITIONS,
            replication_factor: Some(1),
            config: Vec::new(),
        }])
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
}

/// Produces records `from..to` (payload `trip N`) round-robin over the partitions, one per
/// batch.
fn produce(topic: &str, from: i64, to: i64) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for i in from..to {
        let payload = format!("trip {i}");
        let mut record = BaseRecord::to(topic)
            .partition((i % PARTITIONS as i64) as i32)
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
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// [`RECORDS`] records in two halves a second apart on each side of the returned instant
/// (milliseconds): the first half is older, the second younger, whether the broker keeps the
/// producer's timestamps or stamps records as it appends them.
async fn produce_halves(topic: &str) -> i64 {
    produce(topic, 0, RECORDS / 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let middle = now_ms();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    produce(topic, RECORDS / 2, RECORDS);
    middle
}

/// Whether the broker looks offsets up by timestamp. Tansu 0.6 answers every such lookup with
/// the log start offset: that is reported as `BrokerUnsupported` naming ListOffsets (never
/// used); any other broker must do the lookup.
async fn looks_up_timestamps(admin: &RdKafkaGroupAdmin, ps: &[TopicPartition], at: i64) -> bool {
    match admin
        .list_offsets(ps, OffsetSpec::Timestamp(at), &mut RequestTally::default())
        .await
    {
        Ok(_) => true,
        Err(
            e @ BrokerError::Unsupported {
                api: "ListOffsets", ..
            },
        ) if broker().is_tansu => {
            assert_eq!(e.reason(), "BrokerUnsupported");
            assert!(
                e.to_string()
                    .contains("does not implement ListOffsets by timestamp"),
                "{e}"
            );
            eprintln!("Tansu does not look offsets up by timestamp: {e}");
            false
        }
        Err(e) => panic!("lookup by timestamp: {e}"),
    }
}

fn partitions(topic: &str) -> Vec<TopicPartition> {
    (0..PARTITIONS).map(|p| (topic.to_owned(), p)).collect()
}

/// A consumer of `group` started now: assigned every partition at the group's committed offset,
/// it reads until it has seen nothing for 3 s; what it read per partition, and it commits.
fn consume(group: &str, topic: &str) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Stored).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut read: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < deadline, "still reading after 90 s");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                read.entry(m.partition()).or_default().push(payload);
                idle_since = Instant::now();
            }
            Some(Err(e)) => panic!("consuming: {e}"),
            None => {}
        }
    }
    if read.values().any(|v| !v.is_empty()) {
        consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    }
    read
}

fn total(read: &BTreeMap<i32, Vec<String>>) -> usize {
    read.values().map(Vec::len).sum()
}

async fn committed(group: &str, topic: &str) -> BTreeMap<TopicPartition, i64> {
    admin()
        .committed(
            group,
            Some(&partitions(topic)),
            &mut RequestTally::default(),
        )
        .await
        .unwrap()
}

fn tributary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn now_ms() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_millisecond()
}

/// A topic of 1,000 records (in two halves, see [`produce_halves`]) consumed and committed by
/// `group`; the topic and the instant between the halves.
async fn consumed_topic(prefix: &str, group: &str) -> (String, i64) {
    let topic = unique(prefix);
    create_topic(&topic).await;
    let middle = produce_halves(&topic).await;
    let read = consume(group, &topic);
    assert_eq!(
        total(&read),
        RECORDS as usize,
        "the first consumer reads all"
    );
    assert_eq!(
        committed(group, &topic).await,
        partitions(&topic)
            .into_iter()
            .map(|tp| (tp, RECORDS / PARTITIONS as i64))
            .collect()
    );
    (topic, middle)
}

#[tokio::test]
async fn reset_to_earliest_replays_all_1000_records_and_a_dry_run_changes_nothing() {
    if lacks_apis().await {
        return;
    }
    let group = unique("analytics");
    let (topic, _) = consumed_topic("trip-events", &group).await;
    let before = committed(&group, &topic).await;
    let bootstrap = &broker().bootstrap;

    let out = tributary(&[
        "offsets",
        "reset",
        "--bootstrap",
        bootstrap,
        "--group",
        &group,
        "--topic",
        &topic,
        "--to",
        "earliest",
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("dry run, nothing written"), "{stdout}");
    assert!(
        stdout.contains("4 partition(s): 1000 message(s) to re-read, 0 to skip"),
        "{stdout}"
    );
    assert_eq!(
        committed(&group, &topic).await,
        before,
        "a dry run writes nothing"
    );

    let out = tributary(&[
        "offsets",
        "reset",
        "--bootstrap",
        bootstrap,
        "--group",
        &group,
        "--topic",
        &topic,
        "--to",
        "earliest",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("read back: as written"), "{stdout}");
    assert!(committed(&group, &topic).await.values().all(|o| *o == 0));
    let again = consume(&group, &topic);
    assert_eq!(total(&again), RECORDS as usize, "all 1,000 read again");

    // `show` prints the group as kafka-consumer-groups --describe does: caught up again.
    let out = tributary(&[
        "offsets",
        "show",
        "--bootstrap",
        bootstrap,
        "--group",
        &group,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("CURRENT-OFFSET  LOG-END-OFFSET  LAG"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with(&topic)).collect();
    assert_eq!(rows.len(), PARTITIONS as usize, "{stdout}");
    for row in rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[2..5], ["250", "250", "0"], "{row}");
    }
}

#[tokio::test]
async fn reset_to_a_timestamp_reads_exactly_the_records_after_it() {
    if lacks_apis().await {
        return;
    }
    let group = unique("analytics");
    let (topic, middle) = consumed_topic("trip-events", &group).await;
    let middle = k8s_openapi::jiff::Timestamp::from_millisecond(middle).unwrap();
    if !looks_up_timestamps(&admin(), &partitions(&topic), middle.as_millisecond()).await {
        // The command refuses, naming the API, and writes nothing.
        let before = committed(&group, &topic).await;
        let out = tributary(&[
            "offsets",
            "reset",
            "--bootstrap",
            &broker().bootstrap,
            "--group",
            &group,
            "--to",
            &middle.to_string(),
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stderr.contains("the broker does not support ListOffsets"),
            "{stderr}"
        );
        assert_eq!(committed(&group, &topic).await, before);
        return;
    }
    let out = tributary(&[
        "offsets",
        "reset",
        "--bootstrap",
        &broker().bootstrap,
        "--group",
        &group,
        "--topic",
        &topic,
        "--to",
        &middle.to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("500 message(s) to re-read"),
        "the second half: {stdout}"
    );
    let read = consume(&group, &topic);
    assert_eq!(total(&read), (RECORDS / 2) as usize);
    // Exactly the records stamped after the middle: the second half, trips 500..1000.
    let mut trips: Vec<i64> = read
        .values()
        .flatten()
        .map(|p| p.trim_start_matches("trip ").parse().unwrap())
        .collect();
    trips.sort_unstable();
    assert_eq!(trips, (RECORDS / 2..RECORDS).collect::<Vec<_>>());
}

#[tokio::test]
async fn shift_by_minus_10_rereads_10_records_per_partition() {
    if lacks_apis().await {
        return;
    }
    let group = unique("analytics");
    let (topic, _) = consumed_topic("trip-events", &group).await;
    let admin = admin();
    let mut tally = RequestTally::default();
    let request = Request {
        group: group.clone(),
        selection: Selection::default(),
        target: Target::ShiftBy(-10),
        must_exist: true,
    };
    let prepared = offsets::prepare(
        &admin,
        &request,
        k8s_openapi::jiff::Timestamp::now(),
        &mut tally,
    )
    .await
    .unwrap();
    assert!(prepared.group.members.is_empty());
    assert_eq!(prepared.plan.reread(), 10 * PARTITIONS as u64);
    let held = offsets::write(&admin, &group, &prepared.plan, &mut tally)
        .await
        .unwrap();
    assert_eq!(
        held,
        partitions(&topic)
            .into_iter()
            .map(|tp| (tp, 250 - 10))
            .collect()
    );
    let counts = tally
        .counts()
        .map(|(api, _, n)| (api, n))
        .collect::<BTreeMap<_, _>>();
    assert_eq!(
        counts["OffsetCommit"], 1,
        "the offsets are written in one request"
    );
    let read = consume(&group, &topic);
    assert!(read.values().all(|v| v.len() == 10), "{read:?}");
    assert_eq!(total(&read), 40);

    // The same group through a KafkaConsumer manifest (`-f`): its group, its topics, its
    // KafkaCluster. A KafkaTopic names the broker topic.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        format!(
            "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: local, namespace: rides}}\nspec: {{bootstrapServers: [\"{}\"]}}\n---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: trips, namespace: rides}}\nspec: {{clusterRef: local, topicName: {topic}, partitions: 4}}\n---\napiVersion: tributary.io/v1alpha1\nkind: KafkaConsumer\nmetadata: {{name: analytics, namespace: rides}}\nspec:\n  clusterRef: local\n  groupId: {group}\n  topics: [trips]\n  template: {{image: ghcr.io/acme/ride-analytics:3.0.5}}\n  replicas: 1\n",
            broker().bootstrap
        ),
    )
    .unwrap();
    let files = dir.path().to_str().unwrap();
    let out = tributary(&["offsets", "show", "-f", files]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("group '{group}': state Empty")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with(&topic)).count(),
        4,
        "{stdout}"
    );
    let out = tributary(&[
        "offsets",
        "reset",
        "-f",
        files,
        "--to",
        "latest",
        "--dry-run",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("4 partition(s): 0 message(s) to re-read, 0 to skip"),
        "caught up after reading the 40: {stdout}"
    );

    // Beyond the range: clamped to the start, and said so.
    let request = Request {
        target: Target::ShiftBy(-1000),
        ..request
    };
    let prepared = offsets::prepare(
        &admin,
        &request,
        k8s_openapi::jiff::Timestamp::now(),
        &mut tally,
    )
    .await
    .unwrap();
    assert!(prepared
        .plan
        .changes
        .iter()
        .all(|c| c.clamped && c.after == 0));
}

#[tokio::test]
async fn a_reset_is_refused_while_the_group_has_members_and_bad_input_changes_nothing() {
    if lacks_apis().await {
        return;
    }
    let group = unique("analytics");
    let (topic, _) = consumed_topic("trip-events", &group).await;
    let before = committed(&group, &topic).await;
    let bootstrap = broker().bootstrap.clone();

    // A live member: a consumer subscribed to the topic (it joins the group).
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = member.poll(Duration::from_millis(200));
        let g = admin()
            .describe_group(&group, &mut RequestTally::default())
            .await
            .unwrap();
        if !g.is_empty() {
            // Tansu 0.6 describes the group as Stable without listing its member.
            if let Some(m) = g.members.first() {
                assert_eq!(m.assignment.len(), PARTITIONS as usize);
                assert_eq!(m.client_id, "rdkafka");
            }
            break;
        }
        assert!(Instant::now() < deadline, "the member never joined: {g:?}");
    }
    let out = tributary(&[
        "offsets",
        "reset",
        "--bootstrap",
        &bootstrap,
        "--group",
        &group,
        "--to",
        "earliest",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("is not empty (state ") && stderr.contains("stop its consumers first"),
        "{stderr}"
    );
    let out = tributary(&[
        "offsets",
        "show",
        "--bootstrap",
        &bootstrap,
        "--group",
        &group,
    ]);
    let (stdout, _) = text(&out);
    assert!(!stdout.contains("state Empty"), "{stdout}");
    // Bad input, each refused with the fix, nothing written.
    let future = k8s_openapi::jiff::Timestamp::from_millisecond(now_ms() + 86_400_000).unwrap();
    for (args, expected) in [
        (
            vec!["--group", "no-such-group-anywhere", "--to", "earliest"],
            "unknown to the broker",
        ),
        (
            vec!["--group", &group, "--to", &future.to_string()],
            "is in the future",
        ),
        (
            vec![
                "--group",
                &group,
                "--topic",
                &topic,
                "--partition",
                "9",
                "--to",
                "latest",
            ],
            "partition 9 of topic",
        ),
        (
            vec![
                "--group",
                &group,
                "--topic",
                "no-such-topic",
                "--to",
                "latest",
            ],
            "topic 'no-such-topic' does not exist",
        ),
    ] {
        let mut all = vec!["offsets", "reset", "--bootstrap", &bootstrap];
        all.extend(args.iter().copied());
        let out = tributary(&all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{all:?}: {stderr}");
        assert!(stderr.contains("nothing was written"), "{stderr}");
    }
    let out = tributary(&[
        "offsets",
        "reset",
        "--bootstrap",
        &bootstrap,
        "--group",
        &group,
        "--to",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(64), "a bad --to is a usage error");
    assert_eq!(committed(&group, &topic).await, before);

    // DeleteGroups: Kafka refuses a group with members (NonEmptyGroup); Tansu 0.6 deletes it
    // anyway — which is why the operator checks the group is empty before asking.
    let live = admin()
        .delete_group(&group, &mut RequestTally::default())
        .await;
    match &live {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "NonEmptyGroup"),
        Ok(GroupDeletion::Deleted) if broker().is_tansu => {}
        other => panic!("deleting a group with a member: {other:?}"),
    }
    drop(member);
    // Once the member has left, the group can be deleted, offsets and all.
    let deadline = Instant::now() + Duration::from_secs(60);
    while live.is_err() {
        match admin()
            .delete_group(&group, &mut RequestTally::default())
            .await
        {
            Ok(GroupDeletion::Deleted) => break,
            other => {
                assert!(Instant::now() < deadline, "never deleted: {other:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    assert!(committed(&group, &topic).await.is_empty());
    // Deleting it again: Kafka answers GroupIdNotFound (Tansu 0.6 answers success).
    let again = admin()
        .delete_group(&group, &mut RequestTally::default())
        .await
        .unwrap();
    if !broker().is_tansu {
        assert_eq!(again, GroupDeletion::NotFound);
    }
}

#[tokio::test]
async fn offsets_by_spec_on_the_broker() {
    if lacks_apis().await {
        return;
    }
    let topic = unique("trip-events");
    create_topic(&topic).await;
    let before_all = now_ms() - 1000;
    let middle = produce_halves(&topic).await;
    let admin = admin();
    let mut tally = RequestTally::default();
    let ps = partitions(&topic);
    let at = |spec| {
        let admin = &admin;
        let ps = &ps;
        async move {
            admin
                .list_offsets(ps, spec, &mut RequestTally::default())
                .await
                .unwrap()
                .into_values()
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(at(OffsetSpec::Earliest).await, [Some(0); 4]);
    assert_eq!(at(OffsetSpec::Latest).await, [Some(250); 4]);
    if looks_up_timestamps(&admin, &ps, middle).await {
        assert_eq!(at(OffsetSpec::Timestamp(before_all)).await, [Some(0); 4]);
        assert_eq!(at(OffsetSpec::Timestamp(middle)).await, [Some(125); 4]);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Later than every record: no offset (Tansu 0.6 answers offset 0 with timestamp -1
        // there, which is refused as not implementing the lookup).
        let after_all = admin
            .list_offsets(
                &ps,
                OffsetSpec::Timestamp(now_ms()),
                &mut RequestTally::default(),
            )
            .await;
        match after_all {
            Ok(o) => assert!(o.values().all(Option::is_none), "{o:?}"),
            Err(e @ BrokerError::Unsupported { .. }) if broker().is_tansu => {
                assert!(e.to_string().contains("timestamp -1"), "{e}")
            }
            Err(e) => panic!("{e}"),
        }
    }
    let live = admin
        .topic_partitions(&[topic.clone(), unique("absent")], &mut tally)
        .await
        .unwrap();
    assert_eq!(live[&topic], Some(vec![0, 1, 2, 3]));
    assert_eq!(live.values().filter(|v| v.is_none()).count(), 1);
    let unknown = offsets::prepare(
        &admin,
        &Request {
            group: unique("never-ran"),
            selection: Selection::default(),
            target: Target::Earliest,
            must_exist: true,
        },
        k8s_openapi::jiff::Timestamp::now(),
        &mut tally,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&unknown, ResetError::Refused(e) if matches!(e[..], [PlanError::UnknownGroup { .. }])),
        "{unknown}"
    );
}
