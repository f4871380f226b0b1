//! The operator at scale: 2,000 KafkaTopics created at once in the in-process Kubernetes
//! API-server emulator (crates/kube-emulator), reconciled by `tributary operator` (the
//! release binary, as a separate process) against a real Kafka-protocol broker.
//!
//! Printed (figures and targets; nothing is asserted on speed):
//!
//!   * time from the first create sent until every KafkaTopic has `Ready=True` (target < 30 s
//!     on a 2-core machine; Strimzi publishes 9.2 s for 250 topics), checked afterwards on the
//!     broker (one Metadata + DescribeConfigs snapshot: every topic, its partitions and config);
//!   * broker admin requests made until then, from the operator's JSON log lines "broker round
//!     trip" (`total_requests` of the last one; target <= topics / 100 + 10, i.e. batched),
//!     and the number of round trips;
//!   * the operator's peak RSS (VmHWM of /proc/PID/status; target < 150 MiB);
//!   * the cost of resyncing every topic: once all are Ready, the operator resyncs every topic
//!     each `--resync-seconds`; the round trips logged from then until every topic was
//!     resynced once give the broker requests (target: batched as above) and
//!     milliseconds (the sum of the round trips, and the wall span from the first one's start
//!     to the last one's end), and no KafkaTopic may change state (its status, condition
//!     messages aside; status writes are counted apart). The first resync after creation is
//!     reported apart from the next ones (steady state).
//!
//! Setup: the broker is `TRIBUTARY_TEST_BOOTSTRAP` if set, else a Tansu started here (see
//! tests/support/broker.rs). The operator binary is `TRIBUTARY_BIN`, else
//! `target/release/tributary` (built with `cargo build --release --bin tributary` first). It
//! runs with `operator --kubeconfig FILE --namespace bench --log-format json --resync-seconds R
//! --batch-window-ms W --probe-seconds 3600` and `TRIBUTARY_LOG=info` (the long probe interval
//! keeps the cluster probe's Metadata requests out of the counts, after the first one).
//!
//! Environment: `TRIBUTARY_BENCH_OPERATOR_TOPICS` (2000), `TRIBUTARY_BENCH_OPERATOR_RESYNC`
//! (resync seconds, 60; must exceed the time to Ready), `TRIBUTARY_BENCH_OPERATOR_WINDOW_MS`
//! (batch window, 100, the operator's default), `TRIBUTARY_BENCH_OPERATOR_IN_FLIGHT` (creates
//! in flight, 64), `TRIBUTARY_BENCH_OPERATOR_TIMEOUT` (seconds to wait for Ready, 300),
//! `TRIBUTARY_BENCH_OPERATOR_RESYNCS` (resyncs measured, 2), `TRIBUTARY_BENCH_OPERATOR_POLL`
//! (`list`, the default: list every KafkaTopic every 250 ms; `watch`: follow a watch instead,
//! which the emulator may deliver late under load),
//! `TRIBUTARY_BENCH_OPERATOR_LOG` (keep the operator's log at this path),
//! `TRIBUTARY_BENCH_KEEP_TOPICS` (leave the topics on a broker given by
//! `TRIBUTARY_TEST_BOOTSTRAP`; they are deleted otherwise).
//!
//! Also printed, to tell where the time goes: when the operator wrote the last Ready (the
//! conditions' `lastTransitionTime`), how long one API-server write takes with the store empty
//! and full (20 ConfigMap creates), and the API requests served until all were Ready, by kind.
//! Run with `scripts/bench.sh`, or `cargo bench --bench operator`.

#[path = "../tests/support/broker.rs"]
mod broker;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use tributary::api::{
    crds, ConditionStatus, DeletionPolicy, KafkaCluster, KafkaClusterSpec, KafkaTopic,
    KafkaTopicSpec, TopicDefaults,
};
use tributary::kafka::{BrokerAdmin, ClientSettings, RdKafkaAdmin};

const NAMESPACE: &str = "bench";
const CLUSTER: &str = "bench";
const RSS_TARGET_MIB: f64 = 150.0;
const READY_TARGET: Duration = Duration::from_secs(30);
/// The "small constant" of the request target: the cluster probe and a few stragglers.
const REQUEST_SLACK: u64 = 10;
const POLL: Duration = Duration::from_millis(250);

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The release binary: `TRIBUTARY_BIN`, else built (a no-op when fresh) into target/release.
fn tributary_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_BIN") {
        let p = PathBuf::from(p);
        let p = if p.is_relative() {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
        } else {
            p
        };
        assert!(
            p.exists(),
            "TRIBUTARY_BIN={} does not exist; run `cargo build --release --bin tributary`",
            p.display()
        );
        return p;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "tributary"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build --release --bin tributary failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release/tributary")
}

/// The `index`-th topic: 1 to 3 partitions and one config key.
fn topic_spec(index: usize) -> KafkaTopicSpec {
    KafkaTopicSpec {
        cluster_ref: CLUSTER.into(),
        topic_name: None,
        partitions: (index % 3) as i32 + 1,
        replication_factor: None,
        config: BTreeMap::from([("retention.ms".to_owned(), retention(index))]),
        deletion_policy: DeletionPolicy::Retain,
    }
}

fn retention(index: usize) -> String {
    (3_600_000 * (1 + index % 168)).to_string()
}

// ---------------------------------------------------------------------------------------------
// The operator's log.

/// One "broker round trip" line of the operator's JSON log.
#[derive(Clone, Debug)]
struct RoundTrip {
    at: Timestamp,
    intents: u64,
    requests: u64,
    total_requests: u64,
    elapsed_ms: u64,
    ok: bool,
}

/// Reads the operator's stderr as it grows.
struct Log {
    path: PathBuf,
    offset: u64,
    partial: String,
    trips: Vec<RoundTrip>,
    /// WARN and ERROR lines (their message and fields, as logged).
    problems: Vec<String>,
    lines: usize,
    unparsed: usize,
}

impl Log {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: String::new(),
            trips: Vec::new(),
            problems: Vec::new(),
            lines: 0,
            unparsed: 0,
        }
    }

    /// Reads what was appended since the last call.
    fn poll(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return;
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end());
        }
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            self.unparsed += 1;
            if self.problems.len() < 1000 {
                self.problems.push(format!("(not JSON) {line}"));
            }
            return;
        };
        let fields = &v["fields"];
        let level = v["level"].as_str().unwrap_or("");
        if fields["message"].as_str() == Some("broker round trip") {
            let n = |k: &str| fields[k].as_u64().unwrap_or(0);
            let at = v["timestamp"]
                .as_str()
                .and_then(|t| Timestamp::from_str(t).ok())
                .unwrap_or_else(Timestamp::now);
            self.trips.push(RoundTrip {
                at,
                intents: n("intents"),
                requests: n("requests"),
                total_requests: n("total_requests"),
                elapsed_ms: n("elapsed_ms"),
                ok: fields["ok"].as_bool().unwrap_or(true),
            });
        } else if matches!(level, "WARN" | "ERROR") && self.problems.len() < 1000 {
            self.problems.push(format!("{level} {fields}"));
        }
    }
}

/// Totals of a run of round trips.
struct Trips {
    count: usize,
    intents: u64,
    requests: u64,
    last_total: u64,
    failed: usize,
    max_intents: u64,
    elapsed_ms: u64,
    /// From the start of the first (its log time less its elapsed_ms) to the end of the last.
    span: Duration,
}

fn totals(trips: &[RoundTrip]) -> Trips {
    let span = match (trips.first(), trips.last()) {
        (Some(first), Some(last)) => {
            let start = first
                .at
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_millis(
                    first.elapsed_ms as i64,
                ))
                .unwrap_or(first.at);
            last.at.duration_since(start).unsigned_abs()
        }
        _ => Duration::ZERO,
    };
    Trips {
        count: trips.len(),
        intents: trips.iter().map(|t| t.intents).sum(),
        requests: trips.iter().map(|t| t.requests).sum(),
        last_total: trips.last().map_or(0, |t| t.total_requests),
        failed: trips.iter().filter(|t| !t.ok).count(),
        max_intents: trips.iter().map(|t| t.intents).max().unwrap_or(0),
        elapsed_ms: trips.iter().map(|t| t.elapsed_ms).sum(),
        span,
    }
}

// ---------------------------------------------------------------------------------------------
// The operator process.

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU seconds of a process (fields 14 and 15 of /proc/PID/stat).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    Some(ticks as f64 / hz)
}

/// Kills the operator if the bench ends early (a panic included).
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM, then wait (SIGKILL after 30 s); how long it took and how it ended.
fn stop(child: &mut Child) -> (Duration, String) {
    let start = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (start.elapsed(), status.to_string()),
            Ok(None) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return (start.elapsed(), format!("killed after 30 s ({status})"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes side.

fn is_ready(conditions: &[tributary::api::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
}

/// Every KafkaTopic of the namespace: name -> (ready, resourceVersion, status JSON).
async fn list_topics(
    api: &Api<KafkaTopic>,
) -> kube::Result<HashMap<String, (bool, String, Value)>> {
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .map(|t| {
            let ready = t.status.as_ref().is_some_and(|s| is_ready(&s.conditions));
            let rv = t.resource_version().unwrap_or_default();
            let status = serde_json::to_value(&t.status).unwrap_or(Value::Null);
            (t.name_any(), (ready, rv, status))
        })
        .collect())
}

/// When the Ready condition (True) of a status last changed.
fn ready_since(status: &Value) -> Option<Timestamp> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")?["lastTransitionTime"]
        .as_str()
        .and_then(|t| Timestamp::from_str(t).ok())
}

/// A summary of why topics are not Ready: reason -> count.
fn not_ready_reasons(topics: &HashMap<String, (bool, String, Value)>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, _, status) in topics.values().filter(|t| !t.0) {
        let reason = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| {
                format!(
                    "{}: {}",
                    c["reason"].as_str().unwrap_or("?"),
                    c["message"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "no Ready condition yet".into());
        *out.entry(reason).or_insert(0) += 1;
    }
    out
}

async fn wait_cluster_ready(api: &Api<KafkaCluster>, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match api.get_opt(CLUSTER).await {
            Ok(Some(c)) if c.status.as_ref().is_some_and(|s| is_ready(&s.conditions)) => {
                return Ok(start.elapsed())
            }
            Ok(c) if start.elapsed() > limit => {
                return Err(format!(
                    "KafkaCluster {CLUSTER} not Ready after {limit:?}: {:?}",
                    c.and_then(|c| c.status)
                ))
            }
            Err(e) if start.elapsed() > limit => {
                return Err(format!("reading the KafkaCluster: {e}"))
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Creates every topic, `in_flight` at a time (each retried twice on an error).
async fn create_all(
    api: Api<KafkaTopic>,
    names: Vec<String>,
    in_flight: usize,
) -> Result<(), String> {
    let results: Vec<Result<(), String>> = futures::stream::iter(names.into_iter().enumerate())
        .map(move |(i, name)| {
            let api = api.clone();
            async move {
                let topic = KafkaTopic::new(&name, topic_spec(i));
                let mut last = String::new();
                for _ in 0..3 {
                    match api.create(&PostParams::default(), &topic).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 409 => return Ok(()),
                        Err(e) => last = e.to_string(),
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(format!("creating KafkaTopic {name}: {last}"))
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    match errors.first() {
        None => Ok(()),
        Some(first) => Err(format!("{} creates failed; first: {first}", errors.len())),
    }
}

/// What the broker has of the bench's topics: (present with the right partition count,
/// present with the config value, missing or wrong examples).
async fn verify_broker(
    bootstrap: &str,
    names: &[String],
) -> Result<(usize, usize, Vec<String>), String> {
    let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        bootstrap,
        Duration::from_secs(60),
    ))
    .map_err(|e| e.to_string())?;
    let snapshot = admin.snapshot(names).await.map_err(|e| e.to_string())?;
    let (mut partitions_ok, mut config_ok, mut wrong) = (0, 0, Vec::new());
    for (i, name) in names.iter().enumerate() {
        let want = topic_spec(i);
        match snapshot.topics.get(name) {
            None => wrong.push(format!("{name}: missing")),
            Some(t) => {
                if t.partitions == want.partitions {
                    partitions_ok += 1;
                } else {
                    wrong.push(format!(
                        "{name}: {} partitions, want {}",
                        t.partitions, want.partitions
                    ));
                }
                let value = t.configs.get("retention.ms").and_then(|c| c.value.clone());
                if value.as_deref() == Some(retention(i).as_str()) {
                    config_ok += 1;
                } else {
                    wrong.push(format!(
                        "{name}: retention.ms {value:?}, want {}",
                        retention(i)
                    ));
                }
            }
        }
    }
    Ok((partitions_ok, config_ok, wrong))
}

/// Deletes the bench's topics from a broker the bench did not start (untimed).
async fn cleanup_broker(bootstrap: &str, names: &[String]) {
    let Ok(admin) = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        bootstrap,
        Duration::from_secs(60),
    )) else {
        return;
    };
    if let Err(e) = admin.delete_topics(names).await {
        eprintln!("note: deleting the bench's topics from the broker failed: {e}");
    }
}

// ---------------------------------------------------------------------------------------------

/// How the bench follows the KafkaTopics until all are Ready.
enum Tracker {
    Watch {
        stream: futures::stream::BoxStream<'static, watcher::Result<watcher::Event<KafkaTopic>>>,
        ready: HashMap<String, bool>,
    },
    List,
}

/// The median and largest time of `n` ConfigMap creates (then deleted), one after the other:
/// what one write costs the API server now (the operator does not watch ConfigMaps).
async fn write_latency(
    client: &Client,
    tag: &str,
    n: usize,
) -> Result<(Duration, Duration), String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("latency-{tag}-{i}"));
        let start = Instant::now();
        api.create(&PostParams::default(), &cm)
            .await
            .map_err(|e| format!("creating a ConfigMap: {e}"))?;
        took.push(start.elapsed());
    }
    for i in 0..n {
        let _ = api
            .delete(&format!("latency-{tag}-{i}"), &DeleteParams::default())
            .await;
    }
    took.sort();
    Ok((took[took.len() / 2], took[took.len() - 1]))
}

/// `METHOD resource[/subresource][ list| watch]` of a request path.
fn classify(method: &str, path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let base = match segs.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => return format!("{method} {path}"),
    };
    let mut rest = segs.get(base..).unwrap_or(&[]);
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        rest = &rest[2..];
    }
    let Some(resource) = rest.first() else {
        return format!("{method} {path}");
    };
    let sub = rest.get(2).map(|s| format!("/{s}")).unwrap_or_default();
    let kind = if query
        .split('&')
        .any(|q| q == "watch=true" || q == "watch=1")
    {
        " watch"
    } else if method == "GET" && rest.len() == 1 {
        " list"
    } else {
        ""
    };
    format!("{method} {resource}{sub}{kind}")
}

struct Row {
    metric: String,
    value: String,
    target: String,
    verdict: &'static str,
}

fn row(
    metric: impl Into<String>,
    value: impl Into<String>,
    target: impl Into<String>,
    verdict: &'static str,
) -> Row {
    Row {
        metric: metric.into(),
        value: value.into(),
        target: target.into(),
        verdict,
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// One resync of every topic.
struct Resync {
    trips: Trips,
    /// Every topic was resynced (the round trips carried as many intents as there are topics).
    complete: bool,
    wait: Duration,
    /// KafkaTopics whose status changed beyond condition messages.
    state_changed: usize,
    /// KafkaTopics written (new resourceVersion).
    rewritten: usize,
    still_ready: usize,
    /// One changed KafkaTopic, before and after.
    example: Option<String>,
}

/// A topic's state: its status without the conditions' human-readable messages.
fn state_of(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions {
            if let Some(c) = c.as_object_mut() {
                c.remove("message");
            }
        }
    }
    status
}

/// What the run found; printed at the end whatever happened.
#[derive(Default)]
struct Results {
    cluster_ready: Option<Duration>,
    created: Option<Duration>,
    ready: Option<Duration>,
    ready_count: usize,
    not_ready: BTreeMap<String, usize>,
    broker_partitions_ok: Option<usize>,
    broker_config_ok: Option<usize>,
    broker_wrong: Vec<String>,
    until_ready: Option<Trips>,
    resyncs: Vec<Resync>,
    /// Topics a list saw Ready and a later list saw not Ready (name and status).
    flaps: Vec<String>,
    /// How long each of the bench's lists of every KafkaTopic took (list polling).
    list_times: Vec<Duration>,
    /// From the first create to the latest Ready lastTransitionTime (+0.5 s: whole seconds).
    last_ready_transition: Option<Duration>,
    /// ConfigMap create latency (median, max) with the store empty and with every topic.
    write_latency_empty: Option<(Duration, Duration)>,
    write_latency_full: Option<(Duration, Duration)>,
    /// API requests served from the first create until all were Ready, by kind.
    api_requests: BTreeMap<String, (usize, usize)>,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    api: &kube_emulator::ApiServer,
    client: Client,
    bootstrap: String,
    names: Vec<String>,
    in_flight: usize,
    resync: Duration,
    resyncs: usize,
    timeout: Duration,
    list_poll: bool,
    log: &mut Log,
    operator_pid: u32,
    out: &mut Results,
) -> Result<(), String> {
    let count = names.len();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NAMESPACE);
    let topics: Api<KafkaTopic> = Api::namespaced(client.clone(), NAMESPACE);

    let cluster = KafkaCluster::new(
        CLUSTER,
        KafkaClusterSpec {
            bootstrap_servers: vec![bootstrap.clone()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: Some(30),
            topic_defaults: Some(TopicDefaults {
                replication_factor: Some(1),
                config: BTreeMap::new(),
            }),
        },
    );
    clusters
        .patch(
            CLUSTER,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&cluster),
        )
        .await
        .map_err(|e| format!("creating the KafkaCluster: {e}"))?;
    // The operator connects and probes first, so its cluster status write (which wakes every
    // topic of the cluster) happens before the topics exist.
    out.cluster_ready = Some(wait_cluster_ready(&clusters, Duration::from_secs(60)).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    log.poll();
    let trips_before = log.trips.len();

    let mut tracker = if list_poll {
        Tracker::List
    } else {
        Tracker::Watch {
            stream: watcher(topics.clone(), watcher::Config::default())
                .default_backoff()
                .boxed(),
            ready: HashMap::new(),
        }
    };
    let write_empty = write_latency(&client, "empty", 20).await?;
    out.write_latency_empty = Some(write_empty);
    api.clear_requests();

    // The clock starts as the first create is sent.
    let start = Instant::now();
    let start_wall = Timestamp::now();
    let creating = {
        let topics = topics.clone();
        let names = names.clone();
        tokio::spawn(async move {
            let r = create_all(topics, names, in_flight).await;
            (r, start.elapsed())
        })
    };
    let mut creating = Some(creating);
    let mut last_report = Instant::now();
    let mut last_list = Instant::now();
    // Topics seen Ready by a list, and the list that found all of them Ready.
    let mut seen_ready: std::collections::HashSet<String> = Default::default();
    let mut last_state: Option<HashMap<String, (bool, String, Value)>> = None;
    let mut created: usize;
    loop {
        // Either a list of the namespace's KafkaTopics every 250 ms (the default), or
        // (TRIBUTARY_BENCH_OPERATOR_POLL=watch) a watch of them: cheaper for the API server,
        // but the emulator's watch streams fall behind under load (then a list is made every
        // 5 s to show by how much).
        let ready = match &mut tracker {
            Tracker::Watch { stream, ready } => {
                match tokio::time::timeout(POLL, stream.next()).await {
                    Ok(Some(Ok(event))) => match event {
                        watcher::Event::Apply(t) | watcher::Event::InitApply(t) => {
                            let r = t.status.as_ref().is_some_and(|s| is_ready(&s.conditions));
                            ready.insert(t.name_any(), r);
                        }
                        watcher::Event::Delete(t) => {
                            ready.remove(&t.name_any());
                        }
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    },
                    Ok(Some(Err(e))) => eprintln!("  note: the bench's watch: {e}"),
                    Ok(None) => return Err("the bench's watch ended".into()),
                    Err(_) => {}
                }
                created = ready.len();
                ready.values().filter(|r| **r).count()
            }
            Tracker::List => {
                // One every 250 ms (back to back when a list takes longer).
                tokio::time::sleep(POLL.saturating_sub(last_list.elapsed())).await;
                last_list = Instant::now();
                let listed = list_topics(&topics).await;
                out.list_times.push(last_list.elapsed());
                match listed {
                    Ok(state) => {
                        created = state.len();
                        for (name, t) in &state {
                            if t.0 {
                                seen_ready.insert(name.clone());
                            } else if seen_ready.remove(name) {
                                out.flaps.push(format!("{name}: {}", t.2));
                            }
                        }
                        let ready = state.values().filter(|t| t.0).count();
                        last_state = Some(state);
                        ready
                    }
                    Err(e) => {
                        eprintln!("  note: listing KafkaTopics failed: {e}");
                        continue;
                    }
                }
            }
        };
        if creating.as_ref().is_some_and(|c| c.is_finished()) {
            let (r, took) = creating.take().unwrap().await.map_err(|e| e.to_string())?;
            r?;
            out.created = Some(took);
        }
        out.ready_count = ready;
        if creating.is_none() && created == count && ready == count {
            out.ready = Some(start.elapsed());
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            log.poll();
            // What the store holds now, against what the watch has delivered so far.
            let listed = match &tracker {
                Tracker::Watch { .. } => match list_topics(&topics).await {
                    Ok(state) => format!(
                        " (a list now: {} created, {} Ready)",
                        state.len(),
                        state.values().filter(|t| t.0).count()
                    ),
                    Err(e) => format!(" (list failed: {e})"),
                },
                Tracker::List => String::new(),
            };
            println!(
                "  {:>5.1} s: {created} created, {ready} Ready{listed}, {} round trips",
                start.elapsed().as_secs_f64(),
                log.trips.len() - trips_before
            );
        }
        if start.elapsed() > timeout {
            if let Ok(state) = list_topics(&topics).await {
                out.not_ready = not_ready_reasons(&state);
            }
            log.poll();
            out.until_ready = Some(totals(&log.trips[trips_before..]));
            return Err(format!(
                "only {ready} of {count} KafkaTopics Ready after {timeout:?}"
            ));
        }
    }
    drop(tracker);
    for r in api.requests() {
        let e = out
            .api_requests
            .entry(classify(&r.method, &r.path))
            .or_insert((0, 0));
        e.0 += 1;
        if r.status >= 400 {
            e.1 += 1;
        }
    }
    let ready_at = out.ready.unwrap();
    log.poll();
    let trips_at_ready = log.trips.len();
    out.until_ready = Some(totals(&log.trips[trips_before..trips_at_ready]));
    println!(
        "  {:>5.1} s: all {count} Ready ({} round trips); checking the broker",
        ready_at.as_secs_f64(),
        trips_at_ready - trips_before
    );
    out.write_latency_full = Some(write_latency(&client, "full", 20).await?);
    if ready_at >= resync {
        eprintln!("note: Ready took longer than the resync period ({resync:?}): resyncs already ran while topics were being created (in the figures until Ready), and the first resync below may be mixed with them");
    }

    match verify_broker(&bootstrap, &names).await {
        Ok((p, c, wrong)) => {
            out.broker_partitions_ok = Some(p);
            out.broker_config_ok = Some(c);
            out.broker_wrong = wrong;
        }
        Err(e) => out.broker_wrong = vec![format!("snapshot failed: {e}")],
    }

    // Steady state: the topics' requeues fire `resync` after their last reconcile. The first
    // resync after creation and the next ones are measured apart (the first may still rewrite
    // statuses whose wording depended on what creation did).
    let mut before = list_topics(&topics)
        .await
        .map_err(|e| format!("listing: {e}"))?;
    // When the operator wrote the last Ready (the conditions' lastTransitionTime, whole
    // seconds), in the list that found every topic Ready.
    let at_ready = match &last_state {
        Some(state) => state,
        None => &before,
    };
    out.last_ready_transition = at_ready
        .values()
        .filter_map(|t| ready_since(&t.2))
        .max()
        .map(|last| {
            let d = last.duration_since(start_wall).as_secs_f64() + 0.5;
            Duration::from_secs_f64(d.max(0.0))
        });
    let mut mark = trips_at_ready;
    for round in 1..=resyncs {
        println!(
            "  waiting for resync {round} (resync period {:.0} s; operator RSS now {:.1} MiB)",
            resync.as_secs_f64(),
            proc_status_kib(operator_pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0
        );
        let wait_start = Instant::now();
        let wait_limit = resync + ready_at + Duration::from_secs(120);
        let mut quiet_since = Instant::now();
        let mut seen = log.trips.len();
        let mut complete = false;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            log.poll();
            if log.trips.len() != seen {
                seen = log.trips.len();
                quiet_since = Instant::now();
            }
            let intents: u64 = log.trips[mark..].iter().map(|t| t.intents).sum();
            // Every topic resynced once; the quiet period lets a round trip whose intents were
            // gathered but not yet logged land (when the resync is spread wider than the
            // resync period, round trips never stop: then the count alone decides).
            if intents >= count as u64
                && (quiet_since.elapsed() >= Duration::from_secs(3)
                    || ready_at + Duration::from_secs(3) >= resync)
            {
                complete = true;
                break;
            }
            if wait_start.elapsed() > wait_limit {
                break;
            }
        }
        let trips = totals(&log.trips[mark..]);
        mark = log.trips.len();
        let after = list_topics(&topics)
            .await
            .map_err(|e| format!("listing: {e}"))?;
        let differs = |n: &String, f: &dyn Fn(&(bool, String, Value)) -> Value| match (
            before.get(n),
            after.get(n),
        ) {
            (Some(b), Some(a)) => f(b) != f(a),
            _ => true,
        };
        let state_changed: Vec<&String> = names
            .iter()
            .filter(|n| differs(n, &|t| state_of(&t.2)))
            .collect();
        let rewritten = names
            .iter()
            .filter(|n| differs(n, &|t| Value::String(t.1.clone())))
            .count();
        let example = state_changed
            .first()
            .copied()
            .or_else(|| {
                names
                    .iter()
                    .find(|n| differs(n, &|t| Value::String(t.1.clone())))
            })
            .map(|name| {
                let show = |t: Option<&(bool, String, Value)>| {
                    t.map(|t| format!("resourceVersion {}, status {}", t.1, t.2))
                        .unwrap_or_else(|| "missing".into())
                };
                format!(
                    "{name}\n    before: {}\n    after:  {}",
                    show(before.get(name)),
                    show(after.get(name))
                )
            });
        out.resyncs.push(Resync {
            trips,
            complete,
            wait: wait_start.elapsed(),
            state_changed: state_changed.len(),
            rewritten,
            still_ready: after.values().filter(|t| t.0).count(),
            example,
        });
        before = after;
    }
    Ok(())
}

fn main() {
    let count = env_u64("TRIBUTARY_BENCH_OPERATOR_TOPICS", 2000) as usize;
    let resync = Duration::from_secs(env_u64("TRIBUTARY_BENCH_OPERATOR_RESYNC", 60));
    let window_ms = env_u64("TRIBUTARY_BENCH_OPERATOR_WINDOW_MS", 100);
    let in_flight = env_u64("TRIBUTARY_BENCH_OPERATOR_IN_FLIGHT", 64) as usize;
    let timeout = Duration::from_secs(env_u64("TRIBUTARY_BENCH_OPERATOR_TIMEOUT", 300));
    let resyncs = env_u64("TRIBUTARY_BENCH_OPERATOR_RESYNCS", 2) as usize;
    let list_poll =
        !std::env::var("TRIBUTARY_BENCH_OPERATOR_POLL").is_ok_and(|v| v.trim() == "watch");
    let bin = tributary_bin();
    let b = broker::broker();
    let bootstrap = b.bootstrap.clone();
    let broker_label = if b.is_tansu {
        format!(
            "Tansu {} (memory storage, started by the bench)",
            broker::tansu_binary().display()
        )
    } else {
        "TRIBUTARY_TEST_BOOTSTRAP".to_owned()
    };

    let api = kube_emulator::ApiServer::start_blocking(kube_emulator::Options {
        // Room for every write of the run (create, finalizer, status, Events) in the watch
        // history, so no watch of the operator is sent back to relist.
        history_limit: (count * 10).max(10_000),
        ..Default::default()
    });
    api.register_crds(&crds::all());
    api.create_namespace(NAMESPACE);
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .expect("writing the kubeconfig");
    let log_path = std::env::var_os("TRIBUTARY_BENCH_OPERATOR_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("operator.log"));
    let stderr = std::fs::File::create(&log_path).expect("creating the operator's log");

    let tag = format!("op{}", std::process::id());
    let names: Vec<String> = (0..count).map(|i| format!("{tag}-t{i:04}")).collect();

    println!("operator: {count} KafkaTopics created at once ({in_flight} creates in flight; 1-3 partitions, retention.ms each)");
    println!("broker: {bootstrap} ({broker_label})");
    println!(
        "API server: {} (crates/kube-emulator, in this process)",
        api.url()
    );
    println!(
        "tributary: {} operator --resync-seconds {} --batch-window-ms {window_ms}",
        bin.display(),
        resync.as_secs()
    );
    println!("operator log: {}", log_path.display());

    let child = Command::new(&bin)
        .arg("operator")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NAMESPACE, "--log-format", "json"])
        .args(["--resync-seconds", &resync.as_secs().to_string()])
        .args(["--batch-window-ms", &window_ms.to_string()])
        .args(["--probe-seconds", "3600"])
        .args(["--http-address", "127.0.0.1:0"])
        .env("TRIBUTARY_LOG", "info")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let pid = child.id();
    let mut guard = Guard(Some(child));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _entered = runtime.enter();
    let mut log = Log::new(log_path.clone());
    let mut results = Results::default();
    let outcome = runtime.block_on(run(
        &api,
        api.client(),
        bootstrap.clone(),
        names.clone(),
        in_flight,
        resync,
        resyncs,
        timeout,
        list_poll,
        &mut log,
        pid,
        &mut results,
    ));
    if let Err(e) = outcome {
        results.error = Some(e);
    }
    let mut child = guard.0.take().expect("the operator");
    let exited_early = child.try_wait().ok().flatten();
    let peak_rss = proc_status_kib(pid, "VmHWM:").map(|k| k as f64 / 1024.0);
    let rss_now = proc_status_kib(pid, "VmRSS:").map(|k| k as f64 / 1024.0);
    let cpu = cpu_seconds(pid);
    let (stop_took, exit) = stop(&mut child);
    log.poll();
    if !b.is_tansu && std::env::var_os("TRIBUTARY_BENCH_KEEP_TOPICS").is_none() {
        runtime.block_on(cleanup_broker(&bootstrap, &names));
    }

    // --- The table.
    let n = count as u64;
    let request_target = n / 100 + REQUEST_SLACK;
    let mut rows = Vec::new();
    match results.ready {
        Some(t) => rows.push(row(
            format!("time until all {count} Ready"),
            format!("{:.2} s", t.as_secs_f64()),
            format!("< {} s", READY_TARGET.as_secs()),
            verdict(t < READY_TARGET),
        )),
        None => rows.push(row(
            format!("time until all {count} Ready"),
            format!("> {} s ({} Ready)", timeout.as_secs(), results.ready_count),
            format!("< {} s", READY_TARGET.as_secs()),
            "MISS",
        )),
    }
    if let Some(t) = results.last_ready_transition {
        rows.push(row(
            "  last Ready written (status lastTransitionTime)",
            format!("{:.1} s (+/- 0.5 s)", t.as_secs_f64()),
            "-",
            "info",
        ));
    }
    if let Some(t) = results.created {
        rows.push(row(
            "  of which: all creates answered",
            format!("{:.2} s", t.as_secs_f64()),
            "-",
            "info",
        ));
    }
    if let Some(u) = &results.until_ready {
        rows.push(row(
            "broker admin requests until Ready",
            format!("{} ({} in topic round trips)", u.last_total, u.requests),
            format!("<= {n} / 100 + {REQUEST_SLACK} = {request_target}"),
            verdict(results.ready.is_some() && u.last_total <= request_target),
        ));
        rows.push(row(
            "  broker round trips until Ready",
            format!(
                "{} (largest {} intents, {} failed)",
                u.count, u.max_intents, u.failed
            ),
            "-",
            "info",
        ));
        rows.push(row(
            "  intents / broker ms until Ready",
            format!("{} / {} ms", u.intents, u.elapsed_ms),
            "-",
            "info",
        ));
    }
    rows.push(
        match (results.broker_partitions_ok, results.broker_config_ok) {
            (Some(p), Some(c)) => row(
                "topics on the broker (partitions / config)",
                format!("{p} / {c} of {count}"),
                format!("{count} / {count}"),
                verdict(p == count && c == count),
            ),
            _ => row(
                "topics on the broker",
                "not checked",
                format!("{count}"),
                "MISS",
            ),
        },
    );
    rows.push(match peak_rss {
        Some(mib) => row(
            "operator peak RSS (VmHWM)",
            format!("{mib:.1} MiB"),
            format!("< {RSS_TARGET_MIB:.0} MiB"),
            verdict(mib < RSS_TARGET_MIB),
        ),
        None => row(
            "operator peak RSS (VmHWM)",
            "unknown",
            format!("< {RSS_TARGET_MIB:.0} MiB"),
            "MISS",
        ),
    });
    for (i, r) in results.resyncs.iter().enumerate() {
        let label = match i {
            0 => "first resync".to_owned(),
            _ => format!("steady-state resync {i}"),
        };
        let t = &r.trips;
        let complete = if r.complete {
            String::new()
        } else {
            format!(" (INCOMPLETE: {} of {count} intents)", t.intents)
        };
        rows.push(row(
            format!("{label}: broker requests"),
            format!("{} in {} round trips{complete}", t.requests, t.count),
            format!("<= {request_target}"),
            verdict(r.complete && t.requests <= request_target && t.failed == 0),
        ));
        rows.push(row(
            format!("{label}: broker ms"),
            format!("{} ms (sum of round trips)", t.elapsed_ms),
            "-",
            "info",
        ));
        rows.push(row(
            format!("{label}: wall span"),
            format!("{:.0} ms (first start to last end)", ms(t.span)),
            "-",
            "info",
        ));
        rows.push(row(
            format!("{label}: topics changed / rewritten"),
            format!(
                "{} / {} ({} Ready)",
                r.state_changed, r.rewritten, r.still_ready
            ),
            format!("0 / - ({count} Ready)"),
            verdict(r.state_changed == 0 && r.still_ready == count),
        ));
    }
    if let Some(cpu) = cpu {
        rows.push(row(
            "operator CPU time (user + system)",
            format!("{cpu:.2} s"),
            "-",
            "info",
        ));
    }
    if let Some(mib) = rss_now {
        rows.push(row(
            "operator RSS at the end",
            format!("{mib:.1} MiB"),
            "-",
            "info",
        ));
    }
    rows.push(row(
        "operator shutdown on SIGTERM",
        format!("{:.0} ms ({exit})", ms(stop_took)),
        "-",
        "info",
    ));

    println!();
    println!(
        "{:<44} {:>44} {:>24} {:>6}",
        "metric", "value", "target", ""
    );
    for r in &rows {
        println!(
            "{:<44} {:>44} {:>24} {:>6}",
            r.metric, r.value, r.target, r.verdict
        );
    }
    println!();
    println!("(requests: `total_requests` of the operator's last \"broker round trip\" log line before all were Ready, i.e. every counted request of its admin client: Metadata, DescribeConfigs, CreateTopics, ... and the cluster probe's Metadata; resync: the round trips logged after all were Ready (or after the previous resync) until every topic was resynced once; changed: status other than condition messages; rewritten: new resourceVersion)");
    if let Some(status) = exited_early {
        println!("the operator had exited before the end: {status}");
    }
    for (i, r) in results.resyncs.iter().enumerate() {
        println!(
            "resync {}: waited {:.1} s for it; {} KafkaTopics changed state, {} got a status write",
            i + 1,
            r.wait.as_secs_f64(),
            r.state_changed,
            r.rewritten
        );
        if let Some(example) = &r.example {
            println!("  e.g. {example}");
        }
    }
    if !results.flaps.is_empty() {
        println!(
            "{} times a KafkaTopic seen Ready was later seen not Ready, e.g. {}",
            results.flaps.len(),
            results.flaps[0]
        );
    }
    if let Some(t) = results.cluster_ready {
        println!(
            "KafkaCluster Ready {:.0} ms after it was applied (operator start, connection, probe)",
            ms(t)
        );
    }
    if !results.list_times.is_empty() {
        let mut t = results.list_times.clone();
        t.sort();
        println!(
            "bench: {} lists of the KafkaTopics until all Ready, {:.1} ms median, {:.1} ms max each",
            t.len(),
            ms(t[t.len() / 2]),
            ms(t[t.len() - 1])
        );
    }
    if let (Some(empty), Some(full)) = (results.write_latency_empty, results.write_latency_full) {
        println!(
            "API server: one write (ConfigMap create) takes {:.1} ms median, {:.1} ms max with the store empty; {:.1} ms / {:.1} ms once every KafkaTopic exists",
            ms(empty.0),
            ms(empty.1),
            ms(full.0),
            ms(full.1)
        );
    }
    if !results.api_requests.is_empty() {
        let total: usize = results.api_requests.values().map(|v| v.0).sum();
        println!(
            "API requests from the first create until all Ready (operator and bench): {total}"
        );
        for (kind, (n, failed)) in &results.api_requests {
            let failed = if *failed > 0 {
                format!(" ({failed} answered >= 400)")
            } else {
                String::new()
            };
            println!("  {n:>7}  {kind}{failed}");
        }
    }
    if !results.not_ready.is_empty() {
        println!("not Ready, by reason:");
        for (reason, n) in &results.not_ready {
            println!("  {n:>6}  {reason}");
        }
    }
    if !results.broker_wrong.is_empty() {
        println!(
            "broker check ({} problems), first:",
            results.broker_wrong.len()
        );
        for w in results.broker_wrong.iter().take(5) {
            println!("  {w}");
        }
    }
    if !log.problems.is_empty() {
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for p in &log.problems {
            let key: String = p.chars().take(160).collect();
            *kinds.entry(key).or_insert(0) += 1;
        }
        println!(
            "operator warnings/errors: {} lines ({} distinct starts), most frequent:",
            log.problems.len(),
            kinds.len()
        );
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (k, n) in kinds.iter().take(8) {
            println!("  {n:>6}  {k}");
        }
    }
    println!(
        "operator log: {} lines ({} not JSON)",
        log.lines, log.unparsed
    );
    if let Some(e) = &results.error {
        println!("ERROR: {e}");
    }
    drop(api);
}
