//! `tributary operator` as a process (the binary, against the in-process API-server emulator
//! through a kubeconfig, and the test broker): its `/metrics`, `/healthz` and `/readyz`, its
//! JSON logs, and leader election between two replicas.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_emulator::ApiServer;
use serde_json::json;
use support::broker::{broker, free_port, unique};
use support::scenarios::{spec, Env};
use support::tools;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary::api::{crds, ConditionStatus, KafkaConsumer};

/// The tests start operators and time takeovers: one at a time, so they do not compete for
/// the two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LEASE: &str = "tributary-operator";
/// What `/readyz` says on a leader with synced caches (or without leader election).
const LEADER: &str = "ready: leader, caches synced";

struct Cluster {
    api: ApiServer,
    env: Env,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// Emulator, namespace, CRDs, a kubeconfig for the operators, and KafkaCluster `local`.
async fn cluster(namespace: &str) -> Cluster {
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    api.create_namespace(namespace);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig).unwrap();
    let env = Env {
        client: api.client(),
        namespace: namespace.into(),
        bootstrap: broker().bootstrap.clone(),
        patience: Duration::from_secs(30),
    };
    env.apply_cluster("local", &env.bootstrap).await;
    Cluster {
        api,
        env,
        dir,
        kubeconfig,
    }
}

/// A `tributary operator` child process, killed when dropped.
struct Operator {
    name: String,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Operator {
    fn start(c: &Cluster, name: &str, extra: &[&str]) -> Operator {
        let port = free_port();
        let log = c.dir.path().join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["--namespace", &c.env.namespace, "--log-format", "json"])
            .args(["--http-address", &format!("127.0.0.1:{port}")])
            .args(["--batch-window-ms", "50", "--probe-seconds", "2"])
            .args(extra)
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", &c.env.namespace)
            .env_remove("TRIBUTARY_LOG")
            .envs(std::env::var("OPERATOR_LOG").map(|l| ("TRIBUTARY_LOG", l)))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting tributary operator");
        Operator {
            name: name.into(),
            child,
            port,
            log,
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path).await
    }

    async fn metrics(&self) -> Metrics {
        let (status, body) = self
            .get("/metrics")
            .await
            .unwrap_or_else(|| panic!("{} serves no /metrics", self.name));
        assert_eq!(status, 200);
        Metrics(body)
    }

    /// Waits until `/readyz` answers 200 with a body starting with `expected`; returns the body.
    async fn wait_ready(&self, expected: &str, patience: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some((200, body)) = self.get("/readyz").await {
                if body.starts_with(expected) {
                    return body;
                }
            }
            self.assert_running();
            assert!(
                start.elapsed() < patience,
                "{} not ready after {patience:?}; log:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn wait_exit(&mut self, patience: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < patience,
                "{} still running after {patience:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn assert_running(&self) {
        let mut probe = Command::new("kill");
        let alive = probe
            .args(["-0", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(alive, "{} exited; log:\n{}", self.name, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:port: `(status, body)`, or `None` when nothing answers.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// A `/metrics` scrape.
struct Metrics(String);

impl Metrics {
    /// The sum of the samples of `name` that carry every label of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (metric, rest) = match series.split_once('{') {
                    Some((m, rest)) => (m, rest),
                    None => (series, ""),
                };
                (metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().unwrap())
            })
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.lines().any(|l| {
            l.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
    }

    fn broker_requests(&self, api: &str) -> f64 {
        self.sum("tributary_broker_requests_total", &[("api", api)])
    }

    fn all_broker_requests(&self) -> f64 {
        self.sum("tributary_broker_requests_total", &[])
    }
}

async fn lease_holder(c: &Cluster) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(c.env.client.clone(), &c.env.namespace);
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

async fn wait_ready_topic(env: &Env, name: &str) {
    env.eventually(&format!("{name} Ready"), || async {
        matches!(env.ready(name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
}

async fn wait_holder(c: &Cluster, who: &str, patience: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if lease_holder(c).await.as_deref() == Some(who) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "{who} does not hold the lease after {patience:?} (holder: {:?})",
            lease_holder(c).await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn count(reasons: &[String], reason: &str) -> usize {
    reasons.iter().filter(|r| *r == reason).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_reconciles_broker_requests_topics_and_lag() {
    let _serial = SERIAL.lock().await;
    let c = cluster("metrics").await;
    let op = Operator::start(
        &c,
        "op-metrics",
        &["--log-level", "info,tributary=debug,kube_client=debug"],
    );
    op.wait_ready(LEADER, Duration::from_secs(30)).await;
    let before = op.metrics().await;
    assert_eq!(before.sum("tributary_leader", &[]), 1.0);

    let env = &c.env;
    let (orders, refunds) = (unique("orders"), unique("refunds"));
    env.create_topic(&orders, spec("local", 2, &[("retention.ms", "60000")]))
        .await;
    env.create_topic(&refunds, spec("local", 1, &[])).await;
    let group = unique("billing");
    let consumers: Api<KafkaConsumer> = Api::namespaced(env.client.clone(), &env.namespace);
    let consumer: KafkaConsumer = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaConsumer",
        "metadata": {"name": "billing", "namespace": env.namespace},
        "spec": {"clusterRef": "local", "topics": [orders], "groupId": group, "replicas": 1,
                 "template": {"image": "ghcr.io/example/billing:1.0.0"}}
    }))
    .unwrap();
    consumers
        .create(&Default::default(), &consumer)
        .await
        .unwrap();
    wait_ready_topic(env, &orders).await;
    wait_ready_topic(env, &refunds).await;
    env.eventually("the consumer's lag is observed", || async {
        consumers
            .get_opt("billing")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.status?.total_lag)
            .is_some()
    })
    .await;
    // A config edit: DescribeConfigs, then IncrementalAlterConfigs.
    env.topics()
        .patch(
            &orders,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"config": {"retention.ms": "120000"}}})),
        )
        .await
        .unwrap();
    env.eventually("the edit is applied", || async {
        matches!(
            env.ready(&orders).await,
            Some((ConditionStatus::True, _, Some(2)))
        )
    })
    .await;

    let m = op.metrics().await;
    let ok = |api| {
        m.sum(
            "tributary_broker_requests_total",
            &[("api", api), ("result", "ok")],
        )
    };
    assert!(
        m.sum(
            "tributary_reconciles_total",
            &[("kind", "KafkaTopic"), ("result", "success")]
        ) >= 2.0,
        "{}",
        m.0
    );
    for kind in ["KafkaCluster", "KafkaConsumer"] {
        assert!(
            m.sum("tributary_reconciles_total", &[("kind", kind)]) >= 1.0,
            "{kind}"
        );
    }
    assert!(
        m.sum(
            "tributary_reconcile_duration_seconds_count",
            &[("kind", "KafkaTopic")]
        ) >= 2.0
    );
    assert!(m.has(
        "tributary_reconcile_duration_seconds_bucket",
        &[("kind", "KafkaTopic"), ("le", "+Inf")]
    ));
    // The two topics were created in one batched round trip, or two.
    let creates = ok("CreateTopics");
    assert!((1.0..=2.0).contains(&creates), "CreateTopics: {creates}");
    assert!(ok("Metadata") >= 1.0);
    assert!(ok("DescribeConfigs") >= 1.0, "{}", m.0);
    assert!(ok("IncrementalAlterConfigs") >= 1.0, "{}", m.0);
    assert!(ok("ListOffsets") >= 1.0, "lag observation: {}", m.0);
    assert!(ok("OffsetFetch") >= 1.0, "lag observation: {}", m.0);
    assert_eq!(
        m.sum(
            "tributary_managed_topics",
            &[("namespace", "metrics"), ("ready", "true")]
        ),
        2.0
    );
    assert!(m.has(
        "tributary_consumer_lag",
        &[
            ("namespace", "metrics"),
            ("name", "billing"),
            ("group", &group)
        ]
    ));
    for queue in ["topics", "lag"] {
        assert!(
            m.has("tributary_queue_depth", &[("queue", queue)]),
            "{queue}"
        );
    }
    assert!(m.has("tributary_build_info", &[]));
    for line in m.0.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("tributary_"), "{line}");
    }

    // A deleted topic is no longer counted.
    env.topics()
        .delete(&refunds, &Default::default())
        .await
        .unwrap();
    env.eventually("the deleted topic leaves the gauge", || async {
        op.metrics()
            .await
            .sum("tributary_managed_topics", &[("namespace", "metrics")])
            == 1.0
    })
    .await;

    env.eventually("no topic reconcile waits for the broker", || async {
        op.metrics()
            .await
            .sum("tributary_queue_depth", &[("queue", "topics")])
            == 0.0
    })
    .await;

    // Lines logged during a reconcile — ours and the libraries' — carry the reconcile's span:
    // the object's kind, namespace and name.
    let log = op.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of_orders = |span: &serde_json::Value| {
        span["name"] == "reconcile"
            && span["kind"] == "KafkaTopic"
            && span["namespace"] == "metrics"
            && span["object"] == orders.as_str()
    };
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "reconciled" && of_orders(&l["span"])),
        "no 'reconciled' line of {orders}; log:\n{log}"
    );
    let status_write = format!("/kafkatopics/{orders}/status");
    let writes: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["target"] == "kube_client::client::builder"
                && l["span"]["http.url"]
                    .as_str()
                    .is_some_and(|u| u.contains(&status_write))
        })
        .collect();
    assert!(!writes.is_empty(), "no status write of {orders} logged");
    for line in writes {
        let spans = line["spans"].as_array().unwrap();
        assert!(spans.iter().any(of_orders), "{line}");
    }
    for line in lines.iter().filter(|l| l["span"]["name"] == "reconcile") {
        assert!(line["span"]["namespace"].is_string() && line["span"]["object"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_caches_and_healthz_does_not() {
    let _serial = SERIAL.lock().await;
    let c = cluster("health").await;
    // The first list of KafkaTopics is held back: the caches cannot sync meanwhile.
    c.api
        .set_delay(("GET", "/kafkatopics"), Duration::from_secs(4));
    let op = Operator::start(&c, "op-health", &[]);
    let start = Instant::now();
    loop {
        if let Some((status, _)) = op.get("/healthz").await {
            assert_eq!(status, 200);
            break;
        }
        op.assert_running();
        assert!(start.elapsed() < Duration::from_secs(20), "no /healthz");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = op.get("/readyz").await.unwrap();
    assert_eq!(
        (status, body.trim()),
        (503, "not ready: leader, caches not synced yet")
    );
    assert_eq!(op.get("/nothing-here").await.unwrap().0, 404);
    c.api.clear_faults();
    let body = op.wait_ready(LEADER, Duration::from_secs(30)).await;
    assert_eq!(body.trim(), "ready: leader, caches synced");
    assert_eq!(op.get("/healthz").await.unwrap(), (200, "ok\n".into()));
}

/// Two replicas: one leads and alone touches the broker; SIGTERM hands over at once, and no
/// topic is created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_a_standby_takes_over_on_sigterm() {
    let _serial = SERIAL.lock().await;
    let c = cluster("election").await;
    let env = &c.env;
    let lease = ["--leader-elect", "--leader-election-lease-seconds", "5"];
    let mut a = Operator::start(&c, "op-a", &lease);
    wait_holder(&c, "op-a", Duration::from_secs(30)).await;
    assert_eq!(
        a.wait_ready(LEADER, Duration::from_secs(30)).await.trim(),
        "ready: leader, caches synced"
    );
    let b = Operator::start(&c, "op-b", &lease);
    b.wait_ready("ready: standby, leader is op-a", Duration::from_secs(30))
        .await;

    let first = unique("payments");
    env.create_topic(&first, spec("local", 1, &[])).await;
    wait_ready_topic(env, &first).await;
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    assert_eq!(ma.sum("tributary_leader", &[]), 1.0);
    assert_eq!(mb.sum("tributary_leader", &[]), 0.0);
    assert_eq!(ma.broker_requests("CreateTopics"), 1.0, "{}", ma.0);
    assert_eq!(
        mb.all_broker_requests(),
        0.0,
        "the standby touched the broker: {}",
        mb.0
    );
    assert_eq!(mb.sum("tributary_reconciles_total", &[]), 0.0);

    // SIGTERM: the leader stops its controllers, releases the lease, exits 0; the standby
    // takes over at its next look, well within the lease duration.
    let stopped = Instant::now();
    a.signal("-TERM");
    wait_holder(&c, "op-b", Duration::from_secs(5)).await;
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(5), "takeover took {took:?}");
    assert!(a.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        a.log_text().contains("released the leader-election lease"),
        "{}",
        a.log_text()
    );
    println!("takeover after SIGTERM: {took:?}");
    b.wait_ready(LEADER, Duration::from_secs(30)).await;

    let second = unique("payouts");
    env.create_topic(&second, spec("local", 1, &[])).await;
    wait_ready_topic(env, &second).await;
    let mb = b.metrics().await;
    assert_eq!(mb.sum("tributary_leader", &[]), 1.0);
    assert_eq!(
        mb.broker_requests("CreateTopics"),
        1.0,
        "the new leader creates only the new topic: {}",
        mb.0
    );
    // Each topic was created once: one Created event each, and no broker refusal.
    for topic in [&first, &second] {
        let reasons = env.event_reasons(topic).await;
        assert_eq!(count(&reasons, "Created"), 1, "{topic}: {reasons:?}");
        assert!(
            reasons.iter().all(|r| r == "Created"),
            "{topic}: {reasons:?}"
        );
    }
    let snapshot = env.broker(&[&first, &second]).await;
    assert!(snapshot.topics.contains_key(first.as_str()));
    assert!(snapshot.topics.contains_key(second.as_str()));
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let spec = leases.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(5));
}

/// A leader killed outright (no release): the standby waits for the lease to expire, and takes
/// over within the lease duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_duration() {
    let _serial = SERIAL.lock().await;
    let c = cluster("failover").await;
    let env = &c.env;
    let seconds = 3;
    let lease = [
        "--leader-elect",
        "--leader-election-lease-seconds",
        &seconds.to_string(),
    ];
    let lease: Vec<&str> = lease.iter().map(|s| s.as_ref()).collect();
    let mut a = Operator::start(&c, "op-a", &lease);
    wait_holder(&c, "op-a", Duration::from_secs(30)).await;
    a.wait_ready(LEADER, Duration::from_secs(30)).await;
    let b = Operator::start(&c, "op-b", &lease);
    b.wait_ready("ready: standby", Duration::from_secs(30))
        .await;
    let first = unique("rides");
    env.create_topic(&first, spec("local", 1, &[])).await;
    wait_ready_topic(env, &first).await;

    a.signal("-KILL");
    let killed = Instant::now();
    a.wait_exit(Duration::from_secs(5)).await;
    wait_holder(&c, "op-b", Duration::from_secs(seconds + 5)).await;
    let took = killed.elapsed();
    println!("takeover after kill -9: {took:?} (lease {seconds} s)");
    let duration = Duration::from_secs(seconds);
    assert!(
        took <= duration + Duration::from_secs(1),
        "took {took:?}, lease duration {duration:?}"
    );
    // It did wait for the lease to expire: the last renewal was at most a fifth of the
    // duration before the kill.
    assert!(took >= duration / 2, "took over after only {took:?}");

    let second = unique("fares");
    env.create_topic(&second, spec("local", 1, &[])).await;
    wait_ready_topic(env, &second).await;
    let mb = b.metrics().await;
    assert_eq!(mb.broker_requests("CreateTopics"), 1.0, "{}", mb.0);
    assert_eq!(count(&env.event_reasons(&first).await, "Created"), 1);
}

/// How the Lease is taken away from its holder by hand.
#[derive(Clone, Copy, Debug)]
enum Interference {
    Delete,
    ClearHolder,
}

/// When each operator process wrote anything but the Lease (status patches, Events, topic
/// finalizers), from the emulator's request log: `(first, last)` per process, told apart by
/// the identity in their User-Agent.
fn write_windows(api: &ApiServer, who: &[&str]) -> Vec<Option<(Instant, Instant)>> {
    let requests = api.requests();
    who.iter()
        .map(|name| {
            let mine = format!("({name})");
            let times: Vec<Instant> = requests
                .iter()
                .filter(|r| r.method != "GET" && !r.path.contains("/leases"))
                .filter(|r| r.user_agent.contains(&mine))
                .map(|r| r.answered)
                .collect();
            Some((*times.iter().min()?, *times.iter().max()?))
        })
        .collect()
}

/// The Lease deleted or cleared by hand under a leader that keeps reconciling (a topic edited
/// every 100 ms): the standby takes over only once the old leader has stopped writing.
async fn no_two_leaders_when_the_lease_is(interference: Interference) {
    let _serial = SERIAL.lock().await;
    let c = cluster(&format!("handover-{interference:?}").to_lowercase()).await;
    let env = &c.env;
    let seconds = 3;
    let lease = ["--leader-elect", "--leader-election-lease-seconds", "3"];
    let mut a = Operator::start(&c, "op-a", &lease);
    wait_holder(&c, "op-a", Duration::from_secs(30)).await;
    a.wait_ready(LEADER, Duration::from_secs(30)).await;
    let b = Operator::start(&c, "op-b", &lease);
    b.wait_ready("ready: standby, leader is op-a", Duration::from_secs(30))
        .await;
    let name = unique("handover");
    env.create_topic(&name, spec("local", 1, &[("retention.ms", "100000")]))
        .await;
    wait_ready_topic(env, &name).await;

    // The leader keeps writing: every edit is reconciled (config changed on the broker, a
    // status patch, an Event).
    let editing = {
        let topics = env.topics();
        let name = name.clone();
        tokio::spawn(async move {
            for i in 1.. {
                let patch =
                    json!({"spec": {"config": {"retention.ms": format!("{}", 100000 + i)}}});
                let _ = topics
                    .patch(
                        &name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.api.clear_requests();
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let interfered = Instant::now();
    match interference {
        Interference::Delete => {
            leases.delete(LEASE, &Default::default()).await.unwrap();
        }
        Interference::ClearHolder => {
            let patch = json!({"spec": {"holderIdentity": null}});
            leases
                .patch(
                    LEASE,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await
                .unwrap();
        }
    }
    let took = wait_holder(&c, "op-b", Duration::from_secs(seconds + 10)).await;
    println!("takeover after {interference:?}: {took:?}");
    // The new leader reconciles the edits that keep coming.
    tokio::time::sleep(Duration::from_secs(2)).await;
    editing.abort();

    let windows = write_windows(&c.api, &["op-a", "op-b"]);
    let (old, new) = (windows[0], windows[1]);
    let new = new.unwrap_or_else(|| panic!("op-b never wrote after taking over: {windows:?}"));
    if let Some(old) = old {
        assert!(
            old.1 < new.0,
            "two leaders: op-a wrote until {:?} after the {interference:?}, op-b from {:?}",
            old.1 - interfered,
            new.0 - interfered,
        );
    }
    // The old leader stopped at once, and the standby waited a whole lease duration for it.
    let status = a.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(1), "{}", a.log_text());
    assert!(
        a.log_text().contains("lost the leader-election lease"),
        "{}",
        a.log_text()
    );
    assert!(
        took >= Duration::from_secs(seconds) * 8 / 10,
        "op-b took the Lease after only {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lease_never_gives_two_leaders() {
    no_two_leaders_when_the_lease_is(Interference::Delete).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_cleared_by_hand_never_gives_two_leaders() {
    no_two_leaders_when_the_lease_is(Interference::ClearHolder).await;
}

/// A leader that cannot renew its lease stops reconciling: it exits non-zero before the lease
/// could be taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_exits() {
    let _serial = SERIAL.lock().await;
    let c = cluster("renewal").await;
    let mut a = Operator::start(
        &c,
        "op-a",
        &["--leader-elect", "--leader-election-lease-seconds", "2"],
    );
    wait_holder(&c, "op-a", Duration::from_secs(30)).await;
    a.wait_ready(LEADER, Duration::from_secs(30)).await;
    c.api.fail_next(("PUT", "/leases/"), 500, 1000);
    let failing = Instant::now();
    let status = a.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(1), "{}", a.log_text());
    // Renewal is due every 400 ms and given up 1 s after the last success.
    assert!(
        failing.elapsed() < Duration::from_secs(2),
        "{:?}",
        failing.elapsed()
    );
    assert!(
        a.log_text().contains("lost the leader-election lease"),
        "{}",
        a.log_text()
    );
}

#[test]
fn operator_flags_and_their_defaults() {
    use clap::Parser;
    use tributary::cli::{Cli, Command};
    let parse = |args: &[&str]| {
        let mut all = vec!["tributary", "operator"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all).map(|c| c.command) {
            Ok(Command::Operator(args)) => Ok(args),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.to_string()),
        }
    };
    let defaults = parse(&[]).unwrap();
    assert_eq!(defaults.http_address.to_string(), "0.0.0.0:8080");
    assert_eq!(defaults.log_level, "info");
    assert!(!defaults.leader_elect);
    assert_eq!(defaults.leader_election_lease_name, "tributary-operator");
    assert_eq!(defaults.leader_election_lease_seconds, 15);
    if std::env::var_os("POD_NAMESPACE").is_none() {
        assert_eq!(defaults.leader_election_namespace, "default");
    }
    let set = parse(&[
        "--http-address",
        ":9090",
        "--log-level",
        "debug",
        "--leader-elect",
        "--leader-election-namespace",
        "platform",
        "--leader-election-lease-name",
        "tributary-leader",
        "--leader-election-lease-seconds",
        "30",
    ])
    .unwrap();
    assert_eq!(set.http_address.to_string(), "0.0.0.0:9090");
    assert_eq!(set.log_level, "debug");
    assert!(set.leader_elect);
    assert_eq!(set.leader_election_namespace, "platform");
    assert_eq!(set.leader_election_lease_name, "tributary-leader");
    assert_eq!(set.leader_election_lease_seconds, 30);
    assert!(parse(&["--http-address", "localhost"]).is_err());
    assert!(parse(&["--leader-election-lease-seconds", "0"]).is_err());
}

/// An operator whose in-flight reconcile hangs on the API server (its status write never
/// answered), for the shutdown tests: returns once the write is hanging.
async fn operator_with_a_hanging_write(c: &Cluster, name: &str, grace: &str) -> Operator {
    let op = Operator::start(c, name, &["--shutdown-grace-seconds", grace]);
    op.wait_ready(LEADER, Duration::from_secs(30)).await;
    let topic = unique("hang");
    c.env.create_topic(&topic, spec("local", 1, &[])).await;
    wait_ready_topic(&c.env, &topic).await;
    // From now on the operator's status writes hang; the edit below (a PUT) still lands.
    c.api
        .set_delay(("PATCH", "/kafkatopics/"), Duration::from_secs(3600));
    let mut edited = c.env.topics().get(&topic).await.unwrap();
    edited
        .spec
        .config
        .insert("retention.ms".into(), "3600000".into());
    c.env
        .topics()
        .replace(&topic, &Default::default(), &edited)
        .await
        .unwrap();
    // The reconcile of the edit changes the broker, then reaches its status write, which
    // never returns.
    let start = Instant::now();
    loop {
        let snapshot = c.env.broker(&[&topic]).await;
        let applied = snapshot.topics.get(&topic).is_some_and(|t| {
            t.configs
                .get("retention.ms")
                .and_then(|v| v.value.as_deref())
                == Some("3600000")
        });
        if applied {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the edit never reached the broker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    op
}

/// SIGTERM ends the operator within its shutdown grace even while a reconcile hangs on the
/// API server: it exits 1 after the grace instead of running on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_while_the_api_server_hangs() {
    let _serial = SERIAL.lock().await;
    let c = cluster("shutdown").await;
    let mut op = operator_with_a_hanging_write(&c, "op-shutdown", "2").await;
    let asked = Instant::now();
    op.signal("-TERM");
    let status = op.wait_exit(Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(1), "{}", op.log_text());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM with a 2 s grace"
    );
    assert!(
        op.log_text()
            .contains("did not finish within its grace period"),
        "{}",
        op.log_text()
    );
}

/// A second signal exits at once, however long the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let _serial = SERIAL.lock().await;
    let c = cluster("second-signal").await;
    let mut op = operator_with_a_hanging_write(&c, "op-second", "600").await;
    op.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    op.assert_running();
    let asked = Instant::now();
    op.signal("-INT");
    let status = op.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(1), "{}", op.log_text());
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        op.log_text().contains("second shutdown signal"),
        "{}",
        op.log_text()
    );
}

/// A `prometheus` server (Debian's package) scraping one operator every second, killed when
/// dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(binary: &std::path::Path, dir: &std::path::Path, target_port: u16) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: tributary\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
                tools::rules_path().display()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting prometheus");
        Prometheus { child, port, log }
    }

    /// `GET /api/v1/<path>?<query>` (HTTP/1.0: no chunked answer), the `data` of a success.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .ok()?;
            let request = format!("GET /api/v1/{path}?{query} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok()?;
            Some(response.split_once("\r\n\r\n")?.1.to_owned())
        };
        let body = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| format!("prometheus does not answer /api/v1/{path}"))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if v["status"] == "success" {
            Ok(v["data"].clone())
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// The series an instant query returns.
    async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        let data = self.api("query", &[("query", expr)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

/// A Grafana query as Prometheus takes it (the dashboard's only variable is the rate window).
fn grafana_to_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
}

/// The dashboard and the alert rules against a real Prometheus scraping the running operator:
/// every panel query returns series, every alert expression parses and reads metrics the
/// scrape has, and Prometheus evaluates every rule without error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_evaluates_every_panel_and_alert_on_the_operators_metrics() {
    let Some(prometheus) = tools::tool(
        "prometheus",
        "prometheus",
        "a_real_prometheus_evaluates_every_panel_and_alert_on_the_operators_metrics",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let c = cluster("prometheus").await;
    let op = Operator::start(&c, "op-prometheus", &[]);
    op.wait_ready(LEADER, Duration::from_secs(30)).await;
    let prom = Prometheus::start(&prometheus, c.dir.path(), op.port);

    // What the panels show: a Ready topic, one that is not (no such cluster), and an autoscaled
    // consumer with its lag, replicas and partitions.
    let env = &c.env;
    let (orders, lost) = (unique("orders"), unique("lost"));
    env.create_topic(&orders, spec("local", 2, &[])).await;
    env.create_topic(&lost, spec("missing", 1, &[])).await;
    wait_ready_topic(env, &orders).await;
    let consumers: Api<KafkaConsumer> = Api::namespaced(env.client.clone(), &env.namespace);
    let consumer: KafkaConsumer = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaConsumer",
        "metadata": {"name": "billing", "namespace": env.namespace},
        "spec": {"clusterRef": "local", "topics": [orders], "groupId": unique("billing"),
                 "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "lagThreshold": 100, "pollIntervalSeconds": 1},
                 "template": {"image": "ghcr.io/example/billing:1.0.0"}}
    }))
    .unwrap();
    consumers
        .create(&Default::default(), &consumer)
        .await
        .unwrap();
    env.eventually(
        "the consumer's lag, replicas and partitions are in its status",
        || async {
            consumers
                .get_opt("billing")
                .await
                .ok()
                .flatten()
                .and_then(|c| c.status)
                .is_some_and(|s| {
                    s.total_lag.is_some() && s.replicas.is_some() && s.partitions.is_some()
                })
        },
    )
    .await;

    // Every panel has data (within a minute of scraping every second).
    let panels = tools::panel_queries();
    let start = Instant::now();
    let empty = loop {
        let mut empty = Vec::new();
        for (title, expr) in &panels {
            match prom.query(&grafana_to_promql(expr)).await {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => empty.push(format!("{title}: no series from {expr}")),
                Err(e) => panic!("panel {title}: {expr} is refused: {e}"),
            }
        }
        if empty.is_empty() || start.elapsed() > Duration::from_secs(60) {
            break empty;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        empty.is_empty(),
        "panels with no data:\n{}\nprometheus log:\n{}",
        empty.join("\n"),
        std::fs::read_to_string(&prom.log).unwrap_or_default()
    );

    // Every alert expression parses, and reads only metrics the scrape has (by name, in the
    // scraped metadata: a family without samples yet, such as conflicts, counts too).
    let metadata = prom
        .api(
            "targets/metadata",
            &[("match_target", "{job=\"tributary\"}")],
        )
        .await
        .unwrap();
    let scraped: std::collections::BTreeSet<String> = metadata
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["metric"].as_str().map(str::to_owned))
        .collect();
    assert!(
        scraped.contains("tributary_object_not_ready"),
        "{scraped:?}"
    );
    let alerts = tools::alerts();
    for (alert, rule) in &alerts {
        let expr = rule["expr"].as_str().unwrap();
        prom.query(expr)
            .await
            .unwrap_or_else(|e| panic!("{alert}: {expr} is refused: {e}"));
        for name in tools::metric_names(expr) {
            let family = ["_bucket", "_count", "_sum", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| scraped.contains(*f))
                .map_or(name.clone(), str::to_owned);
            assert!(
                scraped.contains(&family),
                "{alert}: {name} is not in the scrape ({scraped:?})"
            );
        }
    }
    // The one object that is not Ready is there, named: what the object alerts fire on.
    let not_ready = prom
        .query(r#"tributary_object_not_ready{kind="KafkaTopic"}"#)
        .await
        .unwrap();
    assert!(
        not_ready
            .iter()
            .any(|s| s["metric"]["name"] == lost.as_str()
                && s["metric"]["reason"] == "ClusterNotFound"
                && s["metric"]["namespace"] == "prometheus"),
        "{not_ready:?}"
    );
    // Prometheus loaded the rule file and evaluates every rule without error.
    env.eventually("every rule evaluated", || async {
        let rules = prom.api("rules", &[]).await.unwrap();
        let rules: Vec<serde_json::Value> = rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        assert_eq!(rules.len(), alerts.len());
        for r in &rules {
            assert_ne!(r["health"], "err", "{r}");
        }
        rules.iter().all(|r| r["health"] == "ok")
    })
    .await;
}
