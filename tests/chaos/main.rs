//! A seeded chaos run: the real `tributary operator` binary — two replicas with leader election
//! — against the in-process API-server emulator and a Tansu broker of its own, while a seeded
//! random schedule creates, edits, pauses and deletes KafkaTopics (both deletion policies),
//! StreamTopologies and KafkaConsumers, and injects faults: API-server 500s, 409s and 429s with
//! `Retry-After`, dropped watches, 410s (a compacted history), broker stops and restarts, and
//! SIGKILLs of the leader and of the standby.
//!
//! At the end, after a quiet period, it checks that the broker holds exactly the desired
//! topics, that every DeleteTopics the broker saw (read off the wire by [`proxy`]) was for a
//! topic whose KafkaTopic was deleted with `Delete`, that no topic was in two CreateTopics in
//! flight at once, that every resource is Ready or carries the right refusal, that once
//! converged the operator writes nothing, that its request rate stayed under the bounds of
//! [`BASE_PER_SECOND`] and [`WRITES_PER_OBJECT`], that after a dropped watch each kind is
//! watched once, and that no log line (trace level) carries the SASL password. It prints its
//! figures.
//!
//! Its own test binary: it starts, stops and restarts a broker of its own (the other test
//! binaries share one that must stay up), and it runs for a minute or more, alone.
//!
//! `cargo test --test chaos` runs the short seeded run (CI). The long run:
//! `CHAOS_SEED=7 CHAOS_SECONDS=480 cargo test --test chaos long_chaos_run -- --ignored
//! --nocapture` (`CHAOS_OPS` caps the steps; `CHAOS_KEEP=1` keeps the operators' logs).

#[path = "../support/broker.rs"]
mod broker;
mod proxy;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use kube_emulator::ApiServer;
use serde_json::{json, Value};
use tributary::api::{
    crds, ConditionStatus, KafkaCluster, KafkaConsumer, KafkaTopic, StreamTopology,
};
use tributary::kafka::{BrokerAdmin, ClientSettings, RdKafkaAdmin};

use wire::Topics;

const NAMESPACE: &str = "chaos";
const LEASE_SECONDS: u64 = 3;
/// The test's own API client says so, so that its requests are told apart from the operator's.
const TEST_AGENT: &str = "tributary-chaos-test";
/// The bounds on the operator's API requests (both replicas together, faults, restarts and
/// relists included). In any one second: `BASE_PER_SECOND`, plus `PER_WATCH_PER_SECOND` for each
/// resource the operator watches (a takeover or a dropped watch relists every one of them, on
/// both replicas), plus `PER_OBJECT_PER_SECOND` per object the test manages (at most, over the
/// run) — a change that reaches every object at
/// once (the broker coming back, a takeover) costs each a status write and an Event. And on
/// any one object, at most `WRITES_PER_OBJECT` writes in any `WINDOW`: a topology's status
/// follows each transition of each of its children (a long run saw 14 in 10 s while a
/// topology's topics and consumer came back together), but a retry storm (issue #11: failing
/// finalizer patches every 200 ms, 50 in 10 s per object, ~400 requests/s) breaks both.
const BASE_PER_SECOND: usize = 26;
const PER_WATCH_PER_SECOND: usize = 2;
const PER_OBJECT_PER_SECOND: usize = 3;
const WRITES_PER_OBJECT: usize = 25;
const WINDOW: Duration = Duration::from_secs(10);
/// How long the run may take to converge after its last fault.
const CONVERGE_WITHIN: Duration = Duration::from_secs(90);

/// SplitMix64: small, seeded, the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The broker, behind the proxy

/// Tansu on a port of its own, advertising the proxy's address, under the pipe guard.
struct Broker {
    listen: u16,
    advertised: SocketAddr,
    guard: Option<(Child, ChildStdin)>,
    /// When it last started.
    started: Instant,
}

impl Broker {
    fn start(&mut self) {
        assert!(self.guard.is_none());
        self.guard = Some(broker::spawn_guarded_tansu_at(
            self.listen,
            &self.advertised.to_string(),
        ));
        self.started = Instant::now();
        broker::wait_for(
            format!("127.0.0.1:{}", self.listen).parse().unwrap(),
            Duration::from_secs(20),
        );
    }
    fn stop(&mut self) {
        if let Some(guard) = self.guard.take() {
            broker::stop_guarded(guard);
        }
    }
    fn running(&self) -> bool {
        self.guard.is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Operator replicas

struct Operator {
    name: String,
    child: Child,
}

struct Replicas {
    kubeconfig: PathBuf,
    dir: PathBuf,
    started: usize,
    live: Vec<Operator>,
    logs: Vec<PathBuf>,
}

impl Replicas {
    fn start(&mut self) {
        self.started += 1;
        let name = format!("op-{}", self.started);
        let log = self.dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", NAMESPACE, "--log-format", "json"])
            .args([
                "--http-address",
                &format!("127.0.0.1:{}", broker::free_port()),
            ])
            .args(["--leader-elect", "--leader-election-lease-seconds"])
            .arg(LEASE_SECONDS.to_string())
            .args(["--batch-window-ms", "50", "--probe-seconds", "2"])
            .args(["--resync-seconds", "10", "--shutdown-grace-seconds", "2"])
            .env("POD_NAME", &name)
            .env("POD_NAMESPACE", NAMESPACE)
            // Everything at trace level (the check below greps it for the secret), but the
            // HTTP and TLS plumbing, which logs bytes and frames, not values.
            .env(
                "TRIBUTARY_LOG",
                std::env::var("CHAOS_LOG").unwrap_or_else(|_| {
                    "trace,hyper=debug,hyper_util=debug,h2=debug,tower=debug,rustls=debug".into()
                }),
            )
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting tributary operator");
        self.logs.push(log);
        self.live.push(Operator { name, child });
    }

    /// SIGKILLs the replica named `name`; false when it is not running.
    fn kill(&mut self, name: &str) -> bool {
        let Some(i) = self.live.iter().position(|o| o.name == name) else {
            return false;
        };
        let mut op = self.live.remove(i);
        let _ = op.child.kill();
        let _ = op.child.wait();
        true
    }

    /// Replicas that exited by themselves (a leader that lost its lease exits 1, by design).
    fn reap(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut gone = Vec::new();
        self.live
            .retain_mut(|op| match op.child.try_wait().unwrap() {
                Some(status) => {
                    gone.push((op.name.clone(), status));
                    false
                }
                None => true,
            });
        gone
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for op in &mut self.live {
            let _ = op.child.kill();
            let _ = op.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the test asked for

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Retain,
    Delete,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Policy::Retain => "Retain",
            Policy::Delete => "Delete",
        }
    }
}

#[derive(Clone, Debug)]
struct TopicModel {
    partitions: i32,
    retention: u64,
    policy: Policy,
    paused: bool,
}

#[derive(Clone, Debug)]
struct TopologyModel {
    /// Broker topic name -> deletion policy.
    topics: BTreeMap<String, Policy>,
    replicas: i32,
}

#[derive(Default)]
struct Model {
    topics: BTreeMap<String, TopicModel>,
    topologies: BTreeMap<String, TopologyModel>,
    consumers: BTreeMap<String, i32>,
    /// Topics whose KafkaTopic the test deleted (or made its topology drop) while its policy
    /// was `Delete`: the only topics the broker may ever be asked to delete.
    deletable: BTreeSet<String>,
    /// Topics whose KafkaTopic went with `Retain`: they may stay on the broker.
    retained: BTreeSet<String>,
    /// Numbers names, so that no name is ever used twice.
    next: usize,
    /// The most objects (KafkaTopics, topologies and their children, consumers) at once.
    peak_objects: usize,
}

/// Topics the consumers read: created first, never deleted.
const STABLE: [&str; 2] = ["stable-rides", "stable-payments"];

// ---------------------------------------------------------------------------------------------
// The test's own API calls: retried through the injected faults (which are not stored).

struct Ops {
    client: Client,
    done: BTreeMap<&'static str, usize>,
}

impl Ops {
    fn topics(&self) -> Api<KafkaTopic> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }
    fn topologies(&self) -> Api<StreamTopology> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }
    fn consumers(&self) -> Api<KafkaConsumer> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Runs `call` until it succeeds (or answers 404/409 AlreadyExists, which a retried call
    /// may see); panics after 60 attempts.
    async fn retry<T, F, Fut>(&mut self, what: &'static str, mut call: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        for _ in 0..60 {
            match call().await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 404 || s.reason == "AlreadyExists" => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        *self.done.entry(what).or_default() += 1;
    }

    async fn create_topic(&mut self, name: &str, t: &TopicModel) {
        let topic: KafkaTopic = serde_json::from_value(json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": name, "annotations": paused_annotation(t.paused)},
            "spec": {"clusterRef": "local", "partitions": t.partitions,
                     "config": {"retention.ms": t.retention.to_string()},
                     "deletionPolicy": t.policy.as_str()}
        }))
        .unwrap();
        let api = self.topics();
        let pp = PostParams::default();
        self.retry("create KafkaTopic", || api.create(&pp, &topic))
            .await;
    }

    async fn patch_topic(&mut self, what: &'static str, name: &str, patch: Value) {
        let api = self.topics();
        let (pp, patch) = (PatchParams::default(), Patch::Merge(patch));
        self.retry(what, || api.patch(name, &pp, &patch)).await;
    }

    async fn delete<K>(&mut self, what: &'static str, api: Api<K>, name: &str)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let dp = DeleteParams::default();
        self.retry(what, || api.delete(name, &dp)).await;
    }

    async fn apply_topology(&mut self, what: &'static str, name: &str, t: &TopologyModel) {
        let topics: Vec<Value> = t
            .topics
            .iter()
            .map(|(topic, policy)| json!({"name": topic, "deletionPolicy": policy.as_str()}))
            .collect();
        let first: Vec<&String> = t.topics.keys().take(1).collect();
        let body = json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
            "metadata": {"name": name},
            "spec": {"clusterRef": "local", "defaults": {"partitions": 1},
                     "topics": topics,
                     "consumers": [{"name": "sink", "topics": first, "replicas": t.replicas,
                                    "template": {"image": "ghcr.io/example/sink:1.0.0"}}]}
        });
        let api = self.topologies();
        let (pp, patch) = (PatchParams::apply(TEST_AGENT).force(), Patch::Apply(body));
        self.retry(what, || api.patch(name, &pp, &patch)).await;
    }

    async fn apply_consumer(&mut self, what: &'static str, name: &str, replicas: i32) {
        let body = json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaConsumer",
            "metadata": {"name": name},
            "spec": {"clusterRef": "local", "topics": STABLE, "replicas": replicas,
                     "template": {"image": "ghcr.io/example/billing:1.0.0"}}
        });
        let api = self.consumers();
        let (pp, patch) = (PatchParams::apply(TEST_AGENT).force(), Patch::Apply(body));
        self.retry(what, || api.patch(name, &pp, &patch)).await;
    }
}

fn paused_annotation(paused: bool) -> Value {
    if paused {
        json!({"tributary.io/paused": "true"})
    } else {
        json!({})
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct Figures {
    faults: BTreeMap<&'static str, usize>,
    broker_restarts: usize,
    leader_kills: usize,
    standby_kills: usize,
    self_exits: Vec<String>,
    last_fault: Instant,
}

impl Figures {
    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
        self.last_fault = Instant::now();
    }
}

async fn lease_holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    leases
        .get_opt("tributary-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

fn clusters_api(client: &Client) -> Api<KafkaCluster> {
    Api::namespaced(client.clone(), NAMESPACE)
}

fn test_client(api: &ApiServer) -> Client {
    let mut config = api.config();
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(TEST_AGENT),
    ));
    Client::try_from(config).unwrap()
}

async fn run(seed: u64, seconds: u64, max_ops: usize) {
    let started = Instant::now();
    let mut rng = Rng(seed);
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    api.create_namespace(NAMESPACE);
    let client = test_client(&api);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();

    // The broker listens on one port and advertises the proxy's, which forwards to it.
    let proxy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = broker::free_port();
    let mut tansu = Broker {
        listen,
        advertised: proxy_listener.local_addr().unwrap(),
        guard: None,
        started: Instant::now(),
    };
    tansu.start();
    let proxy = proxy::Proxy::start(
        proxy_listener,
        format!("127.0.0.1:{listen}").parse().unwrap(),
    );
    let bootstrap = proxy.addr.to_string();

    // KafkaCluster `local`; and `secured`, whose SASL password comes from a Secret — the
    // value no log line may carry.
    let password = format!("chaos-pw-{:016x}", Rng(seed ^ 0x5eed).next());
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kafka-credentials"},
        "stringData": {"password": password},
        "data": {"password": base64(password.as_bytes())}
    }))
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NAMESPACE);
    for (name, sasl) in [
        ("local", Value::Null),
        (
            "secured",
            json!({
        "mechanism": "PLAIN", "username": {"value": "chaos"},
        "password": {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}}}),
        ),
    ] {
        let mut spec = json!({"bootstrapServers": [bootstrap], "requestTimeoutSeconds": 3,
                              "topicDefaults": {"replicationFactor": 1}});
        if !sasl.is_null() {
            spec["sasl"] = sasl;
        }
        let cluster: KafkaCluster = serde_json::from_value(json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap();
        clusters
            .create(&PostParams::default(), &cluster)
            .await
            .unwrap();
    }

    let mut replicas = Replicas {
        kubeconfig,
        dir: dir.path().to_owned(),
        started: 0,
        live: Vec::new(),
        logs: Vec::new(),
    };
    replicas.start();
    replicas.start();

    let mut ops = Ops {
        client: client.clone(),
        done: BTreeMap::new(),
    };
    let mut model = Model::default();
    for name in STABLE {
        let t = TopicModel {
            partitions: 1,
            retention: 3_600_000,
            policy: Policy::Retain,
            paused: false,
        };
        ops.create_topic(name, &t).await;
        model.topics.insert(name.into(), t);
    }

    let mut figures = Figures {
        faults: BTreeMap::new(),
        broker_restarts: 0,
        leader_kills: 0,
        standby_kills: 0,
        self_exits: Vec::new(),
        last_fault: Instant::now(),
    };
    let mut broker_back_at: Option<Instant> = None;
    let mut replica_due: Vec<Instant> = Vec::new();

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut steps = 0;
    while Instant::now() < deadline && steps < max_ops {
        steps += 1;
        tokio::time::sleep(rng.millis(20, 300)).await;
        // Due restarts.
        if broker_back_at.is_some_and(|t| Instant::now() >= t) {
            tansu.start();
            broker_back_at = None;
            figures.broker_restarts += 1;
        }
        let now = Instant::now();
        let due = replica_due.iter().filter(|t| **t <= now).count();
        replica_due.retain(|t| *t > now);
        for _ in 0..due {
            replicas.start();
        }
        for (name, status) in replicas.reap() {
            figures.self_exits.push(format!("{name}: {status}"));
            replica_due.push(Instant::now() + rng.millis(200, 1500));
        }

        let roll = rng.below(100);
        if roll < 30 {
            inject(
                &mut rng,
                &api,
                &client,
                &mut tansu,
                &mut replicas,
                &mut figures,
                &mut broker_back_at,
                &mut replica_due,
            )
            .await;
            continue;
        }
        change(&mut rng, &mut ops, &mut model).await;
        let objects = model.topics.len()
            + model.consumers.len()
            + model
                .topologies
                .values()
                .map(|t| 2 + t.topics.len())
                .sum::<usize>();
        model.peak_objects = model.peak_objects.max(objects);
    }
    // The schedule is over: restart what is down, clear what is pending.
    api.clear_faults();
    if !tansu.running() {
        tansu.start();
        figures.broker_restarts += 1;
        figures.last_fault = Instant::now();
    }
    while replicas.live.len() < 2 {
        replicas.start();
    }
    let schedule_took = started.elapsed();

    // ------------------------------------------------------------------------------------
    // The quiet period: converge.
    let settings = ClientSettings::plaintext(&bootstrap, Duration::from_secs(5));
    let admin = RdKafkaAdmin::connect(&settings).unwrap();
    let converged_at = loop {
        // The test plays the kubelet: every Deployment's pods run.
        play_kubelet(&client).await;
        let created = created_since(&proxy.log.lock().unwrap().calls, tansu.started);
        // Converged: everything as desired, and the operator has written nothing (the Lease
        // aside) for a while — a status still settling (a retried write, a lag pass) is not
        // converged yet.
        let state = converged(&ops, &admin, &model, &created).await;
        let quiet = last_write(&api.requests()).is_none_or(|at| at.elapsed() >= QUIET);
        match state.and_then(|()| {
            if quiet {
                Ok(())
            } else {
                Err(format!("the operator wrote within the last {QUIET:?}"))
            }
        }) {
            Ok(()) => break Instant::now(),
            Err(why) => {
                let waited = figures.last_fault.elapsed();
                if waited > CONVERGE_WITHIN {
                    panic!(
                        "not converged {waited:?} after the last fault (seed {seed}): {why}\nlogs in {}",
                        dir.keep().display()
                    );
                }
            }
        }
        for (name, status) in replicas.reap() {
            figures.self_exits.push(format!("{name}: {status}"));
            replicas.start();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let converge_time = converged_at.duration_since(figures.last_fault);

    // Watches: drop them all; each kind is then watched once by the leader (every controller
    // that watches a kind shares one watch), and never by the standby.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mark = Instant::now();
    api.drop_watches();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let watches = watch_counts(&api.requests(), mark);
    // Converged means idle: from then on (the watches dropped and relisted included), no
    // write but the Lease's renewals.
    let idle_writes: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.at >= converged_at && r.user_agent != TEST_AGENT && r.method != "GET")
        .filter(|r| !r.path.contains("/leases/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();

    // ------------------------------------------------------------------------------------
    // Checks over the whole run.
    let requests = api.requests();
    let operator: Vec<_> = requests
        .iter()
        .filter(|r| r.user_agent != TEST_AGENT)
        .collect();
    let first = operator.first().map(|r| r.at).unwrap_or(mark);
    let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &operator {
        *per_second
            .entry(r.at.duration_since(first).as_secs())
            .or_default() += 1;
    }
    let (peak_second, peak) = per_second
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(s, n)| (*s, *n))
        .unwrap_or((0, 0));
    let injected_to_operator = operator.iter().filter(|r| r.injected).count();
    let injected_to_test = requests
        .iter()
        .filter(|r| r.injected && r.user_agent == TEST_AGENT)
        .count();

    let log = std::mem::take(&mut *proxy.log.lock().unwrap());
    let mut problems = Vec::new();
    if !log.undecodable.is_empty() {
        problems.push(format!("undecodable admin requests: {:?}", log.undecodable));
    }
    let (mut creates, mut deletes) = (0, 0);
    for call in &log.calls {
        if let Topics::Delete(names) = &call.topics {
            deletes += 1;
            for name in names {
                if !model.deletable.contains(name) {
                    let why = if model.retained.contains(name) || model.topics.contains_key(name) {
                        "its KafkaTopic is Retain or was never deleted"
                    } else {
                        "no KafkaTopic of it was deleted with Delete"
                    };
                    problems.push(format!("DeleteTopics v{} of {name}: {why}", call.version));
                }
            }
        }
    }
    let create_calls: Vec<(&Vec<String>, Instant, Instant)> = log
        .calls
        .iter()
        .filter_map(|c| match &c.topics {
            Topics::Create(names) => Some((names, c.sent, c.done.unwrap_or(converged_at))),
            _ => None,
        })
        .collect();
    for (i, (a, a_sent, a_done)) in create_calls.iter().enumerate() {
        creates += 1;
        for (b, b_sent, b_done) in &create_calls[i + 1..] {
            let overlap = a_sent < b_done && b_sent < a_done;
            for name in a.iter().filter(|n| overlap && b.contains(n)) {
                problems.push(format!("{name} in two CreateTopics in flight at once"));
            }
        }
    }
    // Every kind of the operator, and the Deployments and Services it owns.
    let watched = tributary::operator::KINDS.len() + 2;
    let max_per_second = BASE_PER_SECOND
        + PER_WATCH_PER_SECOND * watched
        + PER_OBJECT_PER_SECOND * model.peak_objects;
    if peak > max_per_second {
        problems.push(format!(
            "{peak} operator requests in second {peak_second} of the run (bound {max_per_second})"
        ));
    }
    let (busiest, busiest_writes) = busiest_object(&operator);
    if busiest_writes > WRITES_PER_OBJECT {
        problems.push(format!(
            "{busiest_writes} writes to {busiest} within {WINDOW:?} (bound {WRITES_PER_OBJECT})"
        ));
    }
    if !idle_writes.is_empty() {
        problems.push(format!("writes once converged: {idle_writes:?}"));
    }
    for (kind, n) in &watches {
        if *n != 1 {
            problems.push(format!(
                "{kind} watched {n} times after the watches were dropped"
            ));
        }
    }
    let mut log_bytes = 0;
    for path in &replicas.logs {
        let text = std::fs::read(path).unwrap();
        log_bytes += text.len();
        for secret in [password.as_bytes(), base64(password.as_bytes()).as_bytes()] {
            if text.windows(secret.len()).any(|w| w == secret) {
                problems.push(format!("{} carries the SASL password", path.display()));
            }
        }
    }
    let versions: Vec<String> = log
        .versions
        .iter()
        .filter(|(k, _)| [wire::CREATE_TOPICS, wire::DELETE_TOPICS].contains(k))
        .map(|(k, v)| {
            format!(
                "{}v{v}",
                if *k == wire::CREATE_TOPICS {
                    "CreateTopics "
                } else {
                    "DeleteTopics "
                }
            )
        })
        .collect();

    println!("chaos seed {seed}: {steps} steps in {schedule_took:?} (limit {seconds} s, {max_ops} steps)");
    println!("  operations: {:?}", ops.done);
    println!(
        "  faults: {:?}; requests answered with an injected error: {injected_to_operator} to the operator, {injected_to_test} to the test",
        figures.faults
    );
    println!(
        "  restarts survived: {} broker, {} leader SIGKILLs, {} standby SIGKILLs, {} replicas started; exits on their own: {:?}",
        figures.broker_restarts, figures.leader_kills, figures.standby_kills, replicas.started, figures.self_exits
    );
    println!("  converged {converge_time:?} after the last fault");
    let secured = clusters_api(&client).get("secured").await.unwrap();
    let reason = secured
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready");
    println!(
        "  KafkaCluster secured (SASL, password from a Secret): {:?}",
        reason.map(|c| format!("Ready {:?} {}: {}", c.status, c.reason, c.message))
    );
    println!(
        "  operator API requests: {} in all, peak {peak}/s (second {peak_second}; bound {max_per_second}/s for {} objects); most writes to one object within {WINDOW:?}: {busiest_writes} ({busiest}; bound {WRITES_PER_OBJECT})",
        operator.len(),
        model.peak_objects
    );
    println!("  watches per kind after dropping them all: {watches:?}");
    println!(
        "  writes in the {:?} after converging (watches dropped meanwhile): {}",
        Instant::now().duration_since(converged_at),
        idle_writes.len()
    );
    let mut peak_requests: BTreeMap<String, usize> = BTreeMap::new();
    for r in operator
        .iter()
        .filter(|r| r.at.duration_since(first).as_secs() == peak_second)
    {
        let path = r.path.split('?').next().unwrap_or("");
        let path = path.rsplit('/').take(2).collect::<Vec<_>>();
        let key = format!("{} {} -> {}", r.method, path.join("<"), r.status);
        *peak_requests.entry(key).or_default() += 1;
    }
    println!("  the peak second's requests: {peak_requests:?}");
    println!(
        "  broker: {creates} CreateTopics, {deletes} DeleteTopics ({}), {} connections through the proxy",
        versions.join(", "),
        log.connections
    );
    println!(
        "  logs: {} files, {} MB at trace level, searched for the SASL password",
        replicas.logs.len(),
        log_bytes / 1_000_000
    );
    if std::env::var_os("CHAOS_KEEP").is_some() {
        println!("  logs kept in {}", tempfile::TempDir::keep(dir).display());
        return;
    }
    assert!(
        problems.is_empty(),
        "seed {seed}:\n{}\nlogs in {}",
        problems.join("\n"),
        dir.keep().display()
    );
}

#[allow(clippy::too_many_arguments)]
async fn inject(
    rng: &mut Rng,
    api: &ApiServer,
    client: &Client,
    tansu: &mut Broker,
    replicas: &mut Replicas,
    figures: &mut Figures,
    broker_back_at: &mut Option<Instant>,
    replica_due: &mut Vec<Instant>,
) {
    let matchers = [
        ("*", ""),
        ("PATCH", ""),
        ("GET", "/kafkatopics"),
        ("*", "watch=true"),
        ("PUT", "/leases/"),
        ("PATCH", "/status"),
    ];
    match rng.below(10) {
        0 | 1 => {
            // A burst of up to 8 (3 on the lease: more and leadership is legitimately lost).
            let (m, p) = *rng.pick(&matchers).unwrap();
            let most = if p.is_empty() || p == "/leases/" {
                3
            } else {
                8
            };
            api.fail_next((m, p), 500, rng.range(1, most) as usize);
            figures.fault("500");
        }
        2 => {
            let (m, p) = *rng
                .pick(&[("PATCH", ""), ("PUT", ""), ("PATCH", "/status")])
                .unwrap();
            api.fail_next((m, p), 409, rng.range(1, 5) as usize);
            figures.fault("409");
        }
        3 => {
            let (m, p) = *rng.pick(&matchers).unwrap();
            api.fail_next_retry_after((m, p), 429, rng.range(1, 5) as usize, rng.range(1, 2));
            figures.fault("429+Retry-After");
        }
        4 => {
            api.drop_watches();
            figures.fault("dropped watches");
        }
        5 => {
            api.compact();
            api.drop_watches();
            figures.fault("410 (compacted, watches dropped)");
        }
        6 if tansu.running() && rng.chance(40) => {
            // The broker keeps topics in memory: the Retain topics no KafkaTopic manages go
            // with it (the others are recreated).
            tansu.stop();
            *broker_back_at = Some(Instant::now() + rng.millis(500, 5000));
            figures.fault("broker stop");
        }
        7 | 8 => {
            let holder = lease_holder(client).await;
            match holder {
                Some(h) if replicas.kill(&h) => {
                    figures.leader_kills += 1;
                    figures.fault("SIGKILL leader");
                }
                _ => return,
            }
            replica_due.push(Instant::now() + rng.millis(300, 3000));
        }
        9 => {
            let holder = lease_holder(client).await;
            let standby = replicas
                .live
                .iter()
                .map(|o| o.name.clone())
                .find(|n| Some(n) != holder.as_ref());
            if let Some(s) = standby {
                replicas.kill(&s);
                figures.standby_kills += 1;
                figures.fault("SIGKILL standby");
                replica_due.push(Instant::now() + rng.millis(300, 3000));
            }
        }
        _ => {}
    }
}

async fn change(rng: &mut Rng, ops: &mut Ops, model: &mut Model) {
    let policy = |rng: &mut Rng| {
        if rng.chance(50) {
            Policy::Delete
        } else {
            Policy::Retain
        }
    };
    let unpaused: Vec<String> = model
        .topics
        .iter()
        .filter(|(n, t)| !t.paused && !STABLE.contains(&n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    let all: Vec<String> = model
        .topics
        .keys()
        .filter(|n| !STABLE.contains(&n.as_str()))
        .cloned()
        .collect();
    match rng.below(16) {
        0..=3 if model.topics.len() < 40 => {
            model.next += 1;
            let name = format!("topic-{}", model.next);
            let t = TopicModel {
                partitions: rng.range(1, 3) as i32,
                retention: rng.range(1, 100) * 60_000,
                policy: policy(rng),
                paused: rng.chance(10),
            };
            ops.create_topic(&name, &t).await;
            model.topics.insert(name, t);
        }
        4..=6 => {
            let Some(name) = rng.pick(&all).cloned() else {
                return;
            };
            let t = model.topics.get_mut(&name).unwrap();
            t.retention = rng.range(1, 100) * 60_000;
            let mut patch = json!({"spec": {"config": {"retention.ms": t.retention.to_string()}}});
            if !t.paused && rng.chance(30) {
                t.policy = if t.policy == Policy::Delete {
                    Policy::Retain
                } else {
                    Policy::Delete
                };
                patch["spec"]["deletionPolicy"] = json!(t.policy.as_str());
            }
            ops.patch_topic("edit KafkaTopic", &name, patch).await;
        }
        7 | 8 => {
            let Some(name) = rng.pick(&unpaused).cloned() else {
                return;
            };
            let t = model.topics.remove(&name).unwrap();
            match t.policy {
                Policy::Delete => model.deletable.insert(name.clone()),
                Policy::Retain => model.retained.insert(name.clone()),
            };
            let api = ops.topics();
            ops.delete("delete KafkaTopic", api, &name).await;
        }
        9 => {
            let Some(name) = rng.pick(&all).cloned() else {
                return;
            };
            let t = model.topics.get_mut(&name).unwrap();
            t.paused = !t.paused;
            let what = if t.paused { "pause" } else { "unpause" };
            let value = if t.paused { json!("true") } else { Value::Null };
            ops.patch_topic(
                what,
                &name,
                json!({"metadata": {"annotations": {"tributary.io/paused": value}}}),
            )
            .await;
        }
        10 | 11 => {
            // Create a topology, or edit one: a topic added or removed, replicas changed.
            let names: Vec<String> = model.topologies.keys().cloned().collect();
            let existing = rng
                .pick(&names)
                .cloned()
                .filter(|_| rng.chance(60) || names.len() >= 6);
            let (name, mut t, what) = match existing {
                Some(n) => (
                    n.clone(),
                    model.topologies[&n].clone(),
                    "edit StreamTopology",
                ),
                None => {
                    model.next += 1;
                    let t = TopologyModel {
                        topics: BTreeMap::new(),
                        replicas: 1,
                    };
                    (format!("flow-{}", model.next), t, "create StreamTopology")
                }
            };
            if t.topics.len() > 1 && rng.chance(40) {
                let gone = rng
                    .pick(&t.topics.keys().cloned().collect::<Vec<_>>())
                    .cloned()
                    .unwrap();
                let p = t.topics.remove(&gone).unwrap();
                mark_gone(model, &gone, p);
            } else if t.topics.len() < 3 {
                model.next += 1;
                t.topics
                    .insert(format!("{name}-t{}", model.next), policy(rng));
            }
            t.replicas = rng.range(1, 3) as i32;
            ops.apply_topology(what, &name, &t).await;
            model.topologies.insert(name, t);
        }
        12 => {
            let names: Vec<String> = model.topologies.keys().cloned().collect();
            let Some(name) = rng.pick(&names).cloned() else {
                return;
            };
            let t = model.topologies.remove(&name).unwrap();
            for (topic, p) in t.topics {
                mark_gone(model, &topic, p);
            }
            let api = ops.topologies();
            ops.delete("delete StreamTopology", api, &name).await;
        }
        13 | 14 => {
            let names: Vec<String> = model.consumers.keys().cloned().collect();
            let existing = rng
                .pick(&names)
                .cloned()
                .filter(|_| rng.chance(50) || names.len() >= 4);
            let replicas = rng.range(1, 3) as i32;
            let (name, what) = match existing {
                Some(n) => (n, "edit KafkaConsumer"),
                None => {
                    model.next += 1;
                    (format!("reader-{}", model.next), "create KafkaConsumer")
                }
            };
            ops.apply_consumer(what, &name, replicas).await;
            model.consumers.insert(name, replicas);
        }
        15 => {
            let names: Vec<String> = model.consumers.keys().cloned().collect();
            let Some(name) = rng.pick(&names).cloned() else {
                return;
            };
            model.consumers.remove(&name);
            let api = ops.consumers();
            ops.delete("delete KafkaConsumer", api, &name).await;
        }
        _ => {}
    }
}

/// A topology's topic is no longer in its spec (or the topology is gone): its KafkaTopic goes
/// with the policy it had.
fn mark_gone(model: &mut Model, topic: &str, policy: Policy) {
    match policy {
        Policy::Delete => model.deletable.insert(topic.to_owned()),
        Policy::Retain => model.retained.insert(topic.to_owned()),
    };
}

/// Topics of the CreateTopics requests sent since `since` and answered.
fn created_since(calls: &[proxy::AdminCall], since: Instant) -> BTreeSet<String> {
    calls
        .iter()
        .filter(|c| c.sent > since && c.done.is_some())
        .filter_map(|c| match &c.topics {
            Topics::Create(names) => Some(names.iter().cloned()),
            Topics::Delete(_) => None,
        })
        .flatten()
        .collect()
}

/// Marks every Deployment's replicas ready, as the kubelet and the Deployment controller would.
async fn play_kubelet(client: &Client) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let Ok(list) = deployments.list(&ListParams::default()).await else {
        return;
    };
    for d in list.items {
        let replicas = d.spec.replicas.unwrap_or(1);
        let generation = d.metadata.generation;
        let status = d.status.clone().unwrap_or_default();
        if status.observed_generation == generation
            && status.available_replicas == Some(replicas)
            && status.ready_replicas == Some(replicas)
        {
            continue;
        }
        let patch = json!({"status": {"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}});
        let _ = deployments
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
    }
}

fn ready_of(
    conditions: &[tributary::api::Condition],
    generation: Option<i64>,
) -> Option<(ConditionStatus, String)> {
    let c = conditions.iter().find(|c| c.type_ == "Ready")?;
    (c.observed_generation.is_none() || c.observed_generation == generation)
        .then(|| (c.status, c.reason.clone()))
}

/// `Ok` once the broker holds exactly the desired topics and every resource is Ready or
/// carries the right refusal; else what is not so yet.
/// How long the operator must have written nothing for the run to count as converged.
const QUIET: Duration = Duration::from_secs(3);

/// When the operator last wrote anything but its Lease.
fn last_write(requests: &[kube_emulator::RequestRecord]) -> Option<Instant> {
    requests
        .iter()
        .filter(|r| r.user_agent != TEST_AGENT && r.method != "GET")
        .filter(|r| !r.path.contains("/leases/"))
        .map(|r| r.at)
        .max()
}

async fn converged(
    ops: &Ops,
    admin: &RdKafkaAdmin,
    model: &Model,
    created: &BTreeSet<String>,
) -> Result<(), String> {
    let err = |e: kube::Error| e.to_string();
    let topics = ops
        .topics()
        .list(&ListParams::default())
        .await
        .map_err(err)?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut paused_in_sync: BTreeSet<String> = BTreeSet::new();
    let mut expected_children = BTreeSet::new();
    for (name, t) in &model.topologies {
        for topic in t.topics.keys() {
            expected_children.insert(format!("{name}-{topic}"));
        }
    }
    for kt in &topics.items {
        let name = kt.name_any();
        names.insert(name.clone());
        let status = kt.status.clone().unwrap_or_default();
        if status.observed_generation != kt.metadata.generation {
            return Err(format!(
                "KafkaTopic {name} not observed at generation {:?}",
                kt.metadata.generation
            ));
        }
        let ready = ready_of(&status.conditions, kt.metadata.generation);
        let paused = model.topics.get(&name).is_some_and(|t| t.paused);
        if !model.topics.contains_key(&name) && !expected_children.contains(&name) {
            return Err(format!("KafkaTopic {name} still exists"));
        }
        match ready.as_ref().map(|(s, r)| (*s, r.as_str())) {
            // Paused and matching the spec (checked on the broker below), or paused with the
            // changes it holds back listed.
            Some((ConditionStatus::True, "Paused")) if paused => {
                paused_in_sync.insert(name.clone());
            }
            Some((ConditionStatus::False, "Paused"))
                if paused && !status.pending_actions.is_empty() => {}
            Some((ConditionStatus::True, "InSync")) if !paused => {}
            _ => {
                return Err(format!(
                    "KafkaTopic {name} (paused: {paused}): Ready {ready:?}, pending {:?}",
                    status.pending_actions
                ))
            }
        }
    }
    for name in model.topics.keys().chain(&expected_children) {
        if !names.contains(name) {
            return Err(format!("KafkaTopic {name} missing"));
        }
    }

    // The broker: exactly the desired topics, with their spec; the retained (and, paused
    // or lost with the broker's memory, maybe absent) ones besides.
    let listing = admin.snapshot(&[]).await.map_err(|e| e.to_string())?;
    let on_broker: BTreeSet<String> = listing
        .topics
        .keys()
        .filter(|n| !n.starts_with("__"))
        .cloned()
        .collect();
    let mut must: BTreeMap<String, Option<&TopicModel>> = BTreeMap::new();
    for (name, t) in &model.topics {
        if !t.paused || paused_in_sync.contains(name) {
            must.insert(name.clone(), Some(t));
        }
    }
    for t in model.topologies.values() {
        for topic in t.topics.keys() {
            must.insert(topic.clone(), None);
        }
    }
    for name in must.keys() {
        if !on_broker.contains(name) {
            return Err(format!("topic {name} not on the broker"));
        }
    }
    for name in &on_broker {
        let allowed = must.contains_key(name)
            || model.retained.contains(name)
            || model.topics.get(name).is_some_and(|t| t.paused);
        if !allowed {
            return Err(format!("topic {name} on the broker, no longer desired"));
        }
    }
    // A Retain topic created since the broker last started is there still (one whose
    // KafkaTopic went before it was created, or that a broker restart lost, may not be).
    for name in model.retained.intersection(created) {
        if !on_broker.contains(name) {
            return Err(format!("Retain topic {name} is gone from the broker"));
        }
    }
    let described: Vec<String> = must
        .iter()
        .filter(|(_, t)| t.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let snapshot = admin
        .snapshot(&described)
        .await
        .map_err(|e| e.to_string())?;
    for (name, t) in must.iter().filter_map(|(n, t)| Some((n, (*t)?))) {
        let observed = snapshot
            .topics
            .get(name)
            .ok_or(format!("{name} not described"))?;
        let retention = observed
            .configs
            .get("retention.ms")
            .and_then(|c| c.value.clone());
        if observed.partitions != t.partitions || retention != Some(t.retention.to_string()) {
            return Err(format!(
                "{name} on the broker: {} partitions, retention.ms {retention:?}; want {} and {}",
                observed.partitions, t.partitions, t.retention
            ));
        }
    }

    // Clusters, topologies, consumers.
    let clusters: Api<KafkaCluster> = Api::namespaced(ops.client.clone(), NAMESPACE);
    for c in clusters
        .list(&ListParams::default())
        .await
        .map_err(err)?
        .items
    {
        let status = c.status.clone().unwrap_or_default();
        let ready = ready_of(&status.conditions, c.metadata.generation);
        let ok = match c.name_any().as_str() {
            "local" => matches!(&ready, Some((ConditionStatus::True, r)) if r == "Connected"),
            // Tansu does not authenticate: the SASL handshake fails, and says so.
            _ => {
                matches!(&ready, Some((ConditionStatus::False, r)) if r == "BrokerUnreachable" || r == "BrokerRejected")
            }
        };
        if !ok {
            return Err(format!("KafkaCluster {}: Ready {ready:?}", c.name_any()));
        }
    }
    let topologies = ops
        .topologies()
        .list(&ListParams::default())
        .await
        .map_err(err)?;
    let live: BTreeSet<String> = topologies.items.iter().map(|t| t.name_any()).collect();
    let want: BTreeSet<String> = model.topologies.keys().cloned().collect();
    if live != want {
        return Err(format!("topologies {live:?}, want {want:?}"));
    }
    for t in &topologies.items {
        let status = t.status.clone().unwrap_or_default();
        let ready = ready_of(&status.conditions, t.metadata.generation);
        if status.observed_generation != t.metadata.generation
            || !matches!(&ready, Some((ConditionStatus::True, _)))
        {
            return Err(format!(
                "StreamTopology {}: Ready {ready:?}; children {:?}",
                t.name_any(),
                status.children
            ));
        }
    }
    let consumers = ops
        .consumers()
        .list(&ListParams::default())
        .await
        .map_err(err)?;
    let deployments: Api<Deployment> = Api::namespaced(ops.client.clone(), NAMESPACE);
    for c in &consumers.items {
        let name = c.name_any();
        let status = c.status.clone().unwrap_or_default();
        let ready = ready_of(&status.conditions, c.metadata.generation);
        if status.observed_generation != c.metadata.generation
            || !matches!(&ready, Some((ConditionStatus::True, r)) if r == "Available")
        {
            return Err(format!("KafkaConsumer {name}: Ready {ready:?}"));
        }
        if let Some(want) = model.consumers.get(&name) {
            let d = deployments.get_opt(&name).await.map_err(err)?;
            let replicas = d.and_then(|d| d.spec.replicas);
            if replicas != Some(*want) {
                return Err(format!(
                    "Deployment {name}: {replicas:?} replicas, want {want}"
                ));
            }
        }
    }
    let standalone: BTreeSet<String> = consumers
        .items
        .iter()
        .filter(|c| c.owner_references().is_empty())
        .map(|c| c.name_any())
        .collect();
    let want: BTreeSet<String> = model.consumers.keys().cloned().collect();
    if standalone != want {
        return Err(format!("consumers {standalone:?}, want {want:?}"));
    }
    Ok(())
}

/// The object written most often within any [`WINDOW`], and how often (not counting Events,
/// which are not addressed by object, nor the Lease, renewed every `LEASE_SECONDS / 5`).
fn busiest_object(requests: &[&kube_emulator::RequestRecord]) -> (String, usize) {
    let mut writes: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.method != "GET") {
        let path = r.path.split('?').next().unwrap_or("");
        let object = path.strip_suffix("/status").unwrap_or(path);
        // Events are not addressed by object; the Lease is renewed on a fixed period.
        if object.ends_with("/events") || object.contains("/leases/") {
            continue;
        }
        writes.entry(object.to_owned()).or_default().push(r.at);
    }
    let mut busiest = (String::new(), 0);
    for (object, times) in writes {
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) > WINDOW {
                start += 1;
            }
            if end - start + 1 > busiest.1 {
                busiest = (object.clone(), end - start + 1);
            }
        }
    }
    busiest
}

/// Watch requests per kind (the path's last segment) answered since `since`.
fn watch_counts(
    requests: &[kube_emulator::RequestRecord],
    since: Instant,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests
        .iter()
        .filter(|r| r.at >= since && r.user_agent != TEST_AGENT)
    {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        if query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1")
        {
            let kind = path.rsplit('/').next().unwrap_or("").to_owned();
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The short run CI does: a fixed seed, about 40 seconds of schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_chaos_run() {
    run(
        env_u64("CHAOS_SEED", 11),
        env_u64("CHAOS_SECONDS", 40),
        env_u64("CHAOS_OPS", 400) as usize,
    )
    .await;
}

/// The long run: `CHAOS_SEED=… CHAOS_SECONDS=600 cargo test --test chaos long_chaos_run --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the long chaos run: CHAOS_SEED and CHAOS_SECONDS (default 600)"]
async fn long_chaos_run() {
    run(
        env_u64("CHAOS_SEED", 1),
        env_u64("CHAOS_SECONDS", 600),
        env_u64("CHAOS_OPS", 100_000) as usize,
    )
    .await;
}
