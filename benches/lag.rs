//! Lag observation benchmark against a real Kafka-protocol broker: the lag of 200 consumer
//! groups, each reading its own 12-partition topic (2,400 partitions), observed by
//!
//!   a. `RdKafkaLagObserver::observe` with the first 20 groups, then (a new observer) with all
//!      200: one batched pass each (cold: first pass of a new client; warm: the following
//!      rounds) — a warm pass makes the same requests for 20 groups as for 200;
//!   b. the same observer, one pass per group, one group after the other;
//!   c. the naive way with rdkafka's safe API, per group: Metadata for its topic, the
//!      watermarks of each partition (`fetch_watermarks`: 2 ListOffsets requests each), and the
//!      committed offsets (`committed_offsets` of a consumer of that group — the safe API reads
//!      only a client's own group, so one client per group, created before the timing).
//!
//! Printed side by side: broker requests (a and b: the observer's, counted by a `Counted`
//! wrapper; c: counted by construction), the requests the broker received during each pass,
//! counted on the wire by a proxy (`tests/support/kafka_proxy.rs`) in front of the bench's own
//! Tansu, which advertises it — librdkafka's own lookups and refreshes and the batched group
//! requests' connection included — and wall time. Against `TRIBUTARY_TEST_BOOTSTRAP` (whose
//! advertised address the bench cannot choose) the wire column is librdkafka's statistics
//! instead (OffsetFetch and the batched requests not included). Every contender's lag is
//! checked against what was seeded. Nothing is asserted on speed.
//!
//! Seeding: the topics are created in one CreateTopics, 4 records per partition produced one
//! per batch (Tansu 0.6.0 reports end offsets of multi-record batches wrong; see
//! tests/integration/lag.rs), and each group commits an offset on every partition with a
//! consumer of its own.
//!
//! Broker: `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here behind the counting
//! proxy (see tests/support/broker.rs). `TRIBUTARY_BENCH_GROUPS`,
//! `TRIBUTARY_BENCH_PARTITIONS` and `TRIBUTARY_BENCH_ROUNDS` change 200, 12 and 3. Run with
//! `cargo bench --bench lag` (or, small and unoptimised, `TRIBUTARY_BENCH_PARTITIONS=2 cargo
//! test --bench lag`).

#[path = "../tests/support/broker.rs"]
mod broker;
#[path = "../tests/support/kafka_proxy.rs"]
mod kafka_proxy;

use std::collections::BTreeMap;
use std::net::TcpListener;
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

fn check(setup: &Setup, queries: &[GroupQuery], seen: &[GroupLag]) {
    assert_eq!(seen.len(), queries.len());
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

/// Where the requests on the wire are counted.
enum Wire {
    /// The proxy in front of the bench's Tansu: everything the broker received.
    Proxy(kafka_proxy::CountingProxy),
    /// librdkafka's statistics of the observer (an external broker).
    Statistics,
}

impl Wire {
    async fn snapshot(
        &self,
        observer: &Counted<RdKafkaLagObserver>,
    ) -> Result<kafka_proxy::Counts, BTreeMap<String, u64>> {
        match self {
            Wire::Proxy(p) => Ok(p.counts()),
            Wire::Statistics => Err(wire(observer).await),
        }
    }

    async fn since(
        &self,
        observer: &Counted<RdKafkaLagObserver>,
        before: &Result<kafka_proxy::Counts, BTreeMap<String, u64>>,
    ) -> BTreeMap<String, u64> {
        match (self, before) {
            (Wire::Proxy(p), Ok(before)) => p.counts().since(before),
            (_, Err(before)) => diff(&wire(observer).await, before),
            (Wire::Statistics, Ok(_)) => unreachable!("a snapshot of the same kind"),
        }
    }
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

async fn batched(setup: &Setup, rounds: usize, counter: &Wire) -> Vec<Row> {
    let mut rows = Vec::new();
    let small = setup.groups.len().min(20);
    for queries in [&setup.groups[..small], &setup.groups[..]] {
        let observer = observer(&setup.bootstrap);
        let n = queries.len();
        for round in 0..=rounds {
            let before = counter.snapshot(&observer).await;
            let requests = observer.requests_made();
            let start = Instant::now();
            let seen = observer.observe(queries).await.unwrap();
            let took = start.elapsed();
            check(setup, queries, &seen);
            rows.push(Row {
                label: if round == 0 {
                    format!("a. batched pass, {n} groups (cold)")
                } else {
                    format!("a. batched pass, {n} groups (warm {round})")
                },
                requests: observer.requests_made() - requests,
                wire: Some(counter.since(&observer, &before).await),
                took,
            });
        }
    }
    rows
}

async fn per_group(setup: &Setup, counter: &Wire) -> Row {
    let observer = observer(&setup.bootstrap);
    // Warm the connection first, as a long-running operator's would be.
    observer.observe(&setup.groups[..1]).await.unwrap();
    let before = counter.snapshot(&observer).await;
    let requests = observer.requests_made();
    let start = Instant::now();
    let mut seen = Vec::new();
    for g in &setup.groups {
        seen.extend(observer.observe(std::slice::from_ref(g)).await.unwrap());
    }
    let took = start.elapsed();
    check(setup, &setup.groups, &seen);
    Row {
        label: "b. one pass per group".into(),
        requests: observer.requests_made() - requests,
        wire: Some(counter.since(&observer, &before).await),
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
    let external = std::env::var("TRIBUTARY_TEST_BOOTSTRAP").is_ok_and(|b| !b.trim().is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tag = format!("lagbench{}", std::process::id());
    println!(
        "lag: {groups} consumer groups, each on its own {partitions}-partition topic ({} partitions), {RECORDS} records per partition",
        groups as i64 * partitions as i64
    );
    // The bench's own Tansu behind the counting proxy it advertises, unless told otherwise.
    let mut _tansu = None;
    let (bootstrap, counter) = if external {
        let b = broker::broker();
        println!("broker: {} (TRIBUTARY_TEST_BOOTSTRAP)", b.bootstrap);
        (b.bootstrap.clone(), Wire::Statistics)
    } else {
        let tansu_port = broker::free_port();
        let proxy = kafka_proxy::CountingProxy::start(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            format!("127.0.0.1:{tansu_port}").parse().unwrap(),
        );
        _tansu = Some(broker::spawn_guarded_tansu_at(
            tansu_port,
            &proxy.addr.to_string(),
        ));
        broker::wait_for(
            format!("127.0.0.1:{tansu_port}").parse().unwrap(),
            Duration::from_secs(20),
        );
        println!(
            "broker: Tansu {} (memory storage, started by the bench) behind a counting proxy at {}",
            broker::tansu_binary().display(),
            proxy.addr
        );
        (proxy.addr.to_string(), Wire::Proxy(proxy))
    };
    let setup = runtime.block_on(seed(&bootstrap, &tag, groups, partitions));

    let mut rows = runtime.block_on(batched(&setup, rounds, &counter));
    rows.push(runtime.block_on(per_group(&setup, &counter)));
    let consumers: Vec<BaseConsumer> = setup
        .groups
        .iter()
        .map(|q| group_consumer(&setup.bootstrap, &q.group_id))
        .collect();
    rows.push(naive(&setup, &consumers));
    drop(consumers);
    if let Some(tansu) = _tansu.take() {
        broker::stop_guarded(tansu);
    }

    println!();
    println!(
        "{:<38} {:>9} {:>11}   {}",
        "contender",
        "requests",
        "wall ms",
        match counter {
            Wire::Proxy(_) => "on the wire (counted by the proxy: everything the broker received)",
            Wire::Statistics =>
                "on the wire (librdkafka's statistics: its own requests, OffsetFetch excluded)",
        }
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
            "{:<38} {:>9} {:>11.1}   {}",
            r.label,
            r.requests,
            ms(r.took),
            wire
        );
    }
    let best = rows
        .iter()
        .filter(|r| {
            r.label
                .starts_with(&format!("a. batched pass, {groups} groups (warm"))
        })
        .min_by_key(|r| r.took);
    if let (Some(best), Some(naive)) = (best, rows.last()) {
        println!(
            "\nbatched (best warm) vs naive: {:.0}x fewer requests, {:.1}x less wall time",
            naive.requests as f64 / best.requests as f64,
            naive.took.as_secs_f64() / best.took.as_secs_f64()
        );
    }
}
