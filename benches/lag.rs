//! Lag observation benchmark against a real Kafka-protocol broker: the lag of 200 consumer
//! groups, each reading its own 12-partition topic (2,400 partitions), observed by
//!
//!   a. `RdKafkaLagObserver::observe` with all 200 groups: one batched pass (cold: first pass
//!      of a new client; warm: best of the following rounds);
//!   b. the same observer, one pass per group, one group after the other;
//!   c. the naive way with rdkafka's safe API, per group: Metadata for its topic, the
//!      watermarks of each partition (`fetch_watermarks`: 2 ListOffsets requests each), and the
//!      committed offsets (`committed_offsets` of a consumer of that group — the safe API reads
//!      only a client's own group, so one client per group, created before the timing).
//!
//! Printed side by side: broker requests (a and b: the observer's, counted by a `Counted` wrapper; c: counted
//! by construction) and what librdkafka itself counted on the wire (a and b, from its
//! statistics: FindCoordinator lookups and metadata refreshes included, OffsetFetch excluded
//! — librdkafka leaves it out of an admin client's statistics), and wall time. Every
//! contender's lag is checked against what was seeded. Nothing is asserted on speed.
//!
//! Seeding: the topics are created in one CreateTopics, 4 records per partition produced one
//! per batch (Tansu 0.6.0 reports end offsets of multi-record batches wrong; see
//! tests/integration/lag.rs), and each group commits an offset on every partition with a
//! consumer of its own.
//!
//! Broker: `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here (see
//! tests/support/broker.rs). `TRIBUTARY_BENCH_GROUPS`, `TRIBUTARY_BENCH_PARTITIONS` and
//! `TRIBUTARY_BENCH_ROUNDS` change 200, 12 and 3. Run with `cargo bench --bench lag`.

#[path = "../tests/support/broker.rs"]
mod broker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tributary::kafka::lag::{GroupLag, GroupQuery, LagObserver, OffsetReset, RdKafkaLagObserver};
use tributary::kafka::{BrokerAdmin, ClientSettings, NewTopic, RdKafkaAdmin};
use tributary::runtime::instrumented::{counted, Counted};

const TIMEOUT: Duration = Duration::from_secs(60);
const RECORDS: i64 = 4;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Setup {
    bootstrap: String,
    groups: Vec<GroupQuery>,
    partitions: i32,
    /// group → expected total lag.
    expected: BTreeMap<String, u64>,
}

/// The offset group `g` commits on partition `p`: lag `RECORDS - committed` (1..=RECORDS).
fn committed(g: usize, p: i32) -> i64 {
    (g as i64 + p as i64) % RECORDS
}

async fn seed(bootstrap: &str, tag: &str, groups: usize, partitions: i32) -> Setup {
    let settings = ClientSettings::plaintext(bootstrap, TIMEOUT);
    let topics: Vec<String> = (0..groups).map(|g| format!("{tag}-t{g:03}")).collect();
    let start = Instant::now();
    let admin = RdKafkaAdmin::connect(&settings).unwrap();
    let created = admin
        .create_topics(
            &topics
                .iter()
                .map(|t| NewTopic {
                    name: t.clone(),
                    partitions,
                    replication_factor: Some(1),
                    config: Vec::new(),
                })
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert!(created.iter().all(|o| o.result.is_ok()), "{created:?}");
    let took_create = start.elapsed();

    let start = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for t in &topics {
        for p in 0..partitions {
            for i in 0..RECORDS {
                let payload = format!("{i}");
                let mut record = BaseRecord::to(t).partition(p).key("k").payload(&payload);
                while let Err((_, r)) = producer.send(record) {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
    }
    producer.flush(TIMEOUT).unwrap();
    let took_produce = start.elapsed();

    let start = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups {
                    break;
                }
                let consumer = group_consumer(bootstrap, &group_id(tag, g));
                let mut tpl = TopicPartitionList::new();
                for p in 0..partitions {
                    tpl.add_partition_offset(&topics[g], p, Offset::Offset(committed(g, p)))
                        .unwrap();
                }
                consumer.commit(&tpl, CommitMode::Sync).unwrap();
            });
        }
    });
    let took_commit = start.elapsed();
    println!(
        "seeding: {groups} topics created in {:.0} ms, {} records produced in {:.0} ms, {groups} groups committed in {:.0} ms",
        ms(took_create),
        groups as i64 * partitions as i64 * RECORDS,
        ms(took_produce),
        ms(took_commit)
    );

    let mut expected = BTreeMap::new();
    let queries = (0..groups)
        .map(|g| {
            let lag: i64 = (0..partitions).map(|p| RECORDS - committed(g, p)).sum();
            expected.insert(group_id(tag, g), lag as u64);
            GroupQuery::new(group_id(tag, g), &[&topics[g]], OffsetReset::Earliest)
        })
        .collect();
    Setup {
        bootstrap: bootstrap.to_owned(),
        groups: queries,
        partitions,
        expected,
    }
}

fn group_id(tag: &str, g: usize) -> String {
    format!("{tag}-g{g:03}")
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

fn check(setup: &Setup, seen: &[GroupLag]) {
    assert_eq!(seen.len(), setup.groups.len());
    for g in seen {
        let lag = g
            .result
            .as_ref()
            .unwrap_or_else(|r| panic!("{}: {r}", g.group_id));
        assert_eq!(lag.total, setup.expected[&g.group_id], "{}", g.group_id);
        assert_eq!(lag.partition_count, setup.partitions);
    }
}

struct Row {
    label: String,
    requests: u64,
    wire: Option<BTreeMap<String, u64>>,
    took: Duration,
}

fn observer(bootstrap: &str) -> Counted<RdKafkaLagObserver> {
    let mut settings = ClientSettings::plaintext(bootstrap, TIMEOUT);
    settings
        .properties
        .insert("statistics.interval.ms".into(), "50".into());
    counted(RdKafkaLagObserver::connect(&settings).unwrap())
}

/// librdkafka's wire counters after the statistics caught up with the last request.
async fn wire(observer: &Counted<RdKafkaLagObserver>) -> BTreeMap<String, u64> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    observer.inner().wire_requests().unwrap_or_default()
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

async fn batched(setup: &Setup, rounds: usize) -> Vec<Row> {
    let observer = observer(&setup.bootstrap);
    let mut rows = Vec::new();
    for round in 0..=rounds {
        let before = wire(&observer).await;
        let requests = observer.requests_made();
        let start = Instant::now();
        let seen = observer.observe(&setup.groups).await.unwrap();
        let took = start.elapsed();
        check(setup, &seen);
        let row = Row {
            label: if round == 0 {
                "a. one batched pass (cold)".into()
            } else {
                format!("a. one batched pass (warm {round})")
            },
            requests: observer.requests_made() - requests,
            wire: Some(diff(&wire(&observer).await, &before)),
            took,
        };
        rows.push(row);
    }
    rows
}

async fn per_group(setup: &Setup) -> Row {
    let observer = observer(&setup.bootstrap);
    // Warm the connection first, as a long-running operator's would be.
    observer.observe(&setup.groups[..1]).await.unwrap();
    let before = wire(&observer).await;
    let requests = observer.requests_made();
    let start = Instant::now();
    let mut seen = Vec::new();
    for g in &setup.groups {
        seen.extend(observer.observe(std::slice::from_ref(g)).await.unwrap());
    }
    let took = start.elapsed();
    check(setup, &seen);
    Row {
        label: "b. one pass per group".into(),
        requests: observer.requests_made() - requests,
        wire: Some(diff(&wire(&observer).await, &before)),
        took,
    }
}

fn naive(setup: &Setup, consumers: &[BaseConsumer]) -> Row {
    let meta: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &setup.bootstrap)
        .create()
        .unwrap();
    meta.fetch_metadata(None, TIMEOUT).unwrap(); // connected, as a long-running client
    let mut requests = 0u64;
    let start = Instant::now();
    let mut totals = BTreeMap::new();
    for (q, consumer) in setup.groups.iter().zip(consumers) {
        let topic = &q.topics[0];
        let md = meta.fetch_metadata(Some(topic), TIMEOUT).unwrap();
        requests += 1;
        let partitions = md.topics()[0].partitions().len() as i32;
        let mut ends = Vec::new();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) = meta.fetch_watermarks(topic, p, TIMEOUT).unwrap();
            requests += 2; // rd_kafka_query_watermark_offsets: one ListOffsets for each end
            ends.push(high);
            tpl.add_partition(topic, p);
        }
        let committed = consumer.committed_offsets(tpl, TIMEOUT).unwrap();
        requests += 1; // OffsetFetch (the coordinator is known from seeding)
        let mut total = 0u64;
        for (p, end) in ends.iter().enumerate() {
            let c = committed
                .find_partition(topic, p as i32)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0)
                .unwrap_or(0);
            total += (end - c).max(0) as u64;
        }
        totals.insert(q.group_id.clone(), total);
    }
    let took = start.elapsed();
    assert_eq!(totals, setup.expected, "the naive reading agrees");
    Row {
        label: "c. naive, per group".into(),
        requests,
        wire: None,
        took,
    }
}

fn main() {
    let groups = env_usize("TRIBUTARY_BENCH_GROUPS", 200);
    let partitions = env_usize("TRIBUTARY_BENCH_PARTITIONS", 12) as i32;
    let rounds = env_usize("TRIBUTARY_BENCH_ROUNDS", 3);
    let b = broker::broker();
    let label = if b.is_tansu {
        format!(
            "Tansu {} (memory storage, started by the bench)",
            broker::tansu_binary().display()
        )
    } else {
        "TRIBUTARY_TEST_BOOTSTRAP".to_owned()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tag = format!("lagbench{}", std::process::id());
    println!(
        "lag: {groups} consumer groups, each on its own {partitions}-partition topic ({} partitions), {RECORDS} records per partition",
        groups as i64 * partitions as i64
    );
    println!("broker: {} ({label})", b.bootstrap);
    let setup = runtime.block_on(seed(&b.bootstrap, &tag, groups, partitions));

    let mut rows = runtime.block_on(batched(&setup, rounds));
    rows.push(runtime.block_on(per_group(&setup)));
    let consumers: Vec<BaseConsumer> = setup
        .groups
        .iter()
        .map(|q| group_consumer(&setup.bootstrap, &q.group_id))
        .collect();
    rows.push(naive(&setup, &consumers));
    drop(consumers);

    println!();
    println!(
        "{:<34} {:>9} {:>11}   on the wire (librdkafka's statistics; + OffsetFetch, 1 per group)",
        "contender", "requests", "wall ms"
    );
    for r in &rows {
        let wire = r
            .wire
            .as_ref()
            .map(|w| {
                w.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "(by construction: Metadata 1 + ListOffsets 2 per partition + OffsetFetch 1, per group)".into());
        println!(
            "{:<34} {:>9} {:>11.1}   {}",
            r.label,
            r.requests,
            ms(r.took),
            wire
        );
    }
    let best = rows
        .iter()
        .filter(|r| r.label.starts_with("a. one batched pass (warm"))
        .min_by_key(|r| r.took);
    if let (Some(best), Some(naive)) = (best, rows.last()) {
        println!(
            "\nbatched (best warm) vs naive: {:.0}x fewer requests, {:.1}x less wall time",
            naive.requests as f64 / best.requests as f64,
            naive.took.as_secs_f64() / best.took.as_secs_f64()
        );
    }
}
