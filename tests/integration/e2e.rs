//! The operator end to end: the real controllers (in process) against the in-process
//! Kubernetes API-server emulator and a real Kafka-protocol broker (Tansu from the harness, or
//! `TRIBUTARY_TEST_BOOTSTRAP`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::broker::{
    broker, free_port, spawn_guarded_tansu, stop_guarded, unique, wait_for,
};
use crate::support::scenarios::{self, spec, Env};
use kube_emulator::ApiServer;
use serde_json::json;
use tokio::sync::oneshot;
use tributary::api::{crds, ConditionStatus};
use tributary::operator;
use tributary::runtime::{self, Options};

const NAMESPACE: &str = "booking";

struct Running {
    api: ApiServer,
    env: Env,
    stop: Option<oneshot::Sender<()>>,
    operator: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.operator.take().unwrap())
            .await
            .expect("the operator shuts down gracefully")
            .unwrap();
    }
}

fn options() -> Options {
    Options {
        resync: Duration::from_secs(2),
        orphan_grace: Duration::from_secs(3),
        batch_window: Duration::from_millis(50),
        probe_interval: Duration::from_secs(2),
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Emulator + operator, with KafkaCluster `local` pointing at the test broker.
async fn start() -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    api.create_namespace(NAMESPACE);
    let env = Env {
        client: api.client(),
        namespace: NAMESPACE.into(),
        bootstrap: broker().bootstrap.clone(),
        patience: Duration::from_secs(30),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let operator = tokio::spawn(operator::run_controllers(
        api.client(),
        options(),
        runtime::rdkafka_connect(),
        async move {
            let _ = stopped.await;
        },
    ));
    env.apply_cluster("local", &env.bootstrap).await;
    Running {
        api,
        env,
        stop: Some(stop),
        operator: Some(operator),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_edited_and_reported_ready() {
    let r = start().await;
    scenarios::create_and_edit(&r.env, "local").await;
    let cluster = r.env.clusters().get("local").await.unwrap().status.unwrap();
    if broker().is_tansu {
        assert_eq!(
            cluster.unsupported_apis,
            ["CreatePartitions"],
            "the probe names what Tansu lacks"
        );
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_by_hand_is_repaired_at_resync() {
    let r = start().await;
    scenarios::drift_is_repaired(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_follows_the_policy_and_releases_the_finalizer() {
    let r = start().await;
    scenarios::delete_by_policy(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_dry_run_change_nothing_until_released() {
    let r = start().await;
    scenarios::pause_and_dry_run(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newer_of_two_claimants_gets_resource_conflict() {
    let r = start().await;
    scenarios::conflict(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_are_refused_by_the_schema() {
    let r = start().await;
    scenarios::invalid_object_is_refused(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_streams_miss_no_change() {
    let r = start().await;
    let env = &r.env;
    let name = unique("ride-requests");
    env.create_topic(&name, spec("local", 1, &[("retention.ms", "1000")]))
        .await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    for value in ["2000", "3000"] {
        r.api.drop_watches();
        env.topics()
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"config": {"retention.ms": value}}})),
            )
            .await
            .unwrap();
        env.eventually("the change made while the watch was down lands", || async {
            env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
                .value
                .as_deref()
                == Some(value)
        })
        .await;
    }
    r.stop().await;
}

/// A topic whose cluster vanished (or stays unreachable) with `Delete` is orphaned after the
/// grace period: the namespace never hangs on the finalizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_topic_of_an_unreachable_cluster_is_orphaned_after_the_grace_period() {
    let r = start().await;
    let env = &r.env;
    let dead = format!("127.0.0.1:{}", free_port());
    env.apply_cluster("gone", &dead).await;
    let name = unique("notifications");
    let mut s = spec("gone", 1, &[]);
    s.deletion_policy = tributary::api::DeletionPolicy::Delete;
    env.create_topic(&name, s).await;
    env.eventually("the topic reports the unreachable broker", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "BrokerUnreachable")
    })
    .await;
    env.topics()
        .delete(&name, &Default::default())
        .await
        .unwrap();
    env.eventually(
        "the finalizer is released after the grace period",
        || async { env.topics().get_opt(&name).await.unwrap().is_none() },
    )
    .await;
    env.eventually("a Warning says the topic was orphaned", || async {
        env.event_reasons(&name)
            .await
            .contains(&"Orphaned".to_string())
    })
    .await;
    r.stop().await;
}

/// Broker stopped: Ready=False with a reason, no crash; when it returns, the topic recovers.
/// Needs a broker the test can stop, so it starts its own Tansu.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_reported_and_recovered_from() {
    let r = start().await;
    let env = &r.env;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let tansu = spawn_guarded_tansu(port);
    wait_for(addr.parse().unwrap(), Duration::from_secs(20));
    env.apply_cluster("flaky", &addr).await;
    let name = unique("driver-status");
    env.create_topic(&name, spec("flaky", 2, &[])).await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;

    stop_guarded(tansu);
    env.eventually("the broker outage is reported", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "BrokerUnreachable")
    })
    .await;
    env.eventually("the KafkaCluster reports the outage too", || async {
        let cluster = env.clusters().get("flaky").await.unwrap();
        cluster.status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == ConditionStatus::False
                    && c.reason == "BrokerUnreachable"
            })
        })
    })
    .await;
    assert!(
        !r.operator.as_ref().unwrap().is_finished(),
        "the operator keeps running"
    );

    let tansu = spawn_guarded_tansu(port);
    wait_for(addr.parse().unwrap(), Duration::from_secs(20));
    env.eventually(
        "the topic is back (recreated on the empty broker) and Ready",
        || async { matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _))) },
    )
    .await;
    let admin_env = Env {
        client: env.client.clone(),
        namespace: env.namespace.clone(),
        bootstrap: addr.clone(),
        patience: env.patience,
    };
    assert_eq!(admin_env.broker(&[&name]).await.topics[&name].partitions, 2);
    stop_guarded(tansu);
    r.stop().await;
}

/// API-server errors (500 on status writes, 409 on the finalizer patch) are retried with
/// backoff; the topic still converges and other topics are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_are_retried() {
    let r = start().await;
    let env = &r.env;
    let flaky = unique("clicks");
    let healthy = unique("inventory");
    r.api.fail_next(
        kube_emulator::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}/status")),
        500,
        2,
    );
    r.api.fail_next(
        kube_emulator::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}?")),
        409,
        1,
    );
    env.create_topic(&flaky, spec("local", 1, &[])).await;
    env.create_topic(&healthy, spec("local", 1, &[])).await;
    for name in [&healthy, &flaky] {
        env.eventually("Ready despite injected errors", || async {
            matches!(env.ready(name).await, Some((ConditionStatus::True, _, _)))
        })
        .await;
    }
    let injected = r.api.requests().iter().filter(|q| q.injected).count();
    assert_eq!(injected, 3, "every injected failure was hit");
    r.stop().await;
}

fn producer(name: &str, cluster: &str, topics: &[&str]) -> tributary::api::KafkaProducer {
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaProducer",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "clusterRef": cluster,
            "topics": topics,
            "replicas": 2,
            "template": {"image": "ghcr.io/example/order-service:3.2.1"},
            "service": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }
    }))
    .unwrap()
}

async fn producer_status(env: &Env, name: &str) -> Option<tributary::api::KafkaProducerStatus> {
    let api: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.status)
}

fn ready_reason(conditions: &[tributary::api::Condition]) -> Option<(ConditionStatus, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status, c.reason.clone()))
}

/// A producer waits for a missing topic, then rolls out (Deployment with the connection
/// injected, and its Service) once the topic is Ready; Ready once the Deployment is available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_waits_for_its_topic_then_rolls_out() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    let r = start().await;
    let env = &r.env;
    let topic = unique("orders");
    let name = unique("order-service");
    let api: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &producer(&name, "local", &[&topic]))
        .await
        .unwrap();
    env.eventually("the producer waits for its topic", || async {
        producer_status(env, &name).await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::False, "WaitingForTopics".into()))
                && s.waiting_for_topics.iter().any(|w| w.starts_with(&topic))
        })
    })
    .await;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    assert!(
        deployments.get_opt(&name).await.unwrap().is_none(),
        "not rolled out while waiting"
    );

    env.create_topic(&topic, spec("local", 3, &[])).await;
    env.eventually("the Deployment appears once the topic is Ready", || async {
        deployments.get_opt(&name).await.unwrap().is_some()
    })
    .await;
    let deployment = deployments.get(&name).await.unwrap();
    let pod = deployment.spec.template.spec.as_ref().unwrap();
    let envs: std::collections::BTreeMap<String, Option<String>> = pod.containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    assert_eq!(
        envs["KAFKA_BOOTSTRAP_SERVERS"].as_deref(),
        Some(env.bootstrap.as_str())
    );
    assert_eq!(envs["KAFKA_TOPICS"].as_deref(), Some(topic.as_str()));
    assert_eq!(
        envs["KAFKA_SECURITY_PROTOCOL"].as_deref(),
        Some("PLAINTEXT")
    );
    assert_eq!(
        deployment.metadata.owner_references.as_ref().unwrap()[0].kind,
        "KafkaProducer"
    );
    let services: kube::Api<Service> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    assert!(
        services.get_opt(&name).await.unwrap().is_some(),
        "the Service is applied too"
    );
    env.eventually("Progressing until the Deployment is available", || async {
        producer_status(env, &name).await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::False, "Progressing".into()))
        })
    })
    .await;

    // The emulator runs no Deployment controller: report the rollout as one would.
    let generation = deployment.metadata.generation;
    deployments
        .patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(json!({
            "status": {"observedGeneration": generation, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2}
        })))
        .await
        .unwrap();
    env.eventually("Ready once available", || async {
        producer_status(env, &name).await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::True, "Available".into()))
                && s.ready_replicas == Some(2)
        })
    })
    .await;
    assert!(env
        .event_reasons(&name)
        .await
        .contains(&"RolledOut".to_string()));

    // A hand edit to a field Tributary does not manage survives the next rollout.
    deployments
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"team.example/owner": "checkout"}}}),
            ),
        )
        .await
        .unwrap();
    api.patch(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    env.eventually("the new replica count is applied", || async {
        deployments.get(&name).await.unwrap().spec.replicas == Some(3)
    })
    .await;
    let annotations = deployments
        .get(&name)
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations.get("team.example/owner").map(String::as_str),
        Some("checkout"),
        "hand edit kept"
    );

    // Deleting the producer removes its Deployment and Service (owner references).
    api.delete(&name, &Default::default()).await.unwrap();
    env.eventually("the Deployment and Service go with it", || async {
        deployments.get_opt(&name).await.unwrap().is_none()
            && services.get_opt(&name).await.unwrap().is_none()
    })
    .await;
    r.stop().await;
}

/// A Secret the pods would read is missing: Ready=False with the exact reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_reported_by_the_producer() {
    let r = start().await;
    let env = &r.env;
    let clusters = env.clusters();
    let cluster: tributary::api::KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "secured", "namespace": NAMESPACE},
        "spec": {
            "bootstrapServers": [env.bootstrap],
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": {"value": "svc"},
                     "password": {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}}}
        }
    }))
    .unwrap();
    clusters
        .create(&Default::default(), &cluster)
        .await
        .unwrap();
    let name = unique("inventory-service");
    let api: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(
        &Default::default(),
        &producer(&name, "secured", &["inventory"]),
    )
    .await
    .unwrap();
    env.eventually("SecretNotFound with the Secret's name", || async {
        producer_status(env, &name).await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.reason == "SecretNotFound"
                    && c.message.contains("kafka-credentials")
            })
        })
    })
    .await;
    r.stop().await;
}

fn consumer(
    name: &str,
    topics: &[&str],
    scaling: serde_json::Value,
) -> tributary::api::KafkaConsumer {
    let mut spec = json!({
        "clusterRef": "local",
        "topics": topics,
        "template": {"image": "ghcr.io/example/analytics:2.0.0"}
    });
    spec.as_object_mut()
        .unwrap()
        .extend(scaling.as_object().unwrap().clone());
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaConsumer",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec
    }))
    .unwrap()
}

async fn consumer_status(env: &Env, name: &str) -> Option<tributary::api::KafkaConsumerStatus> {
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.status)
}

async fn deployment_replicas(env: &Env, name: &str) -> Option<i32> {
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|d| d.spec.replicas)
}

/// Produces `count` messages spread over the topic's partitions.
async fn produce(bootstrap: &str, topic: &str, count: usize) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for i in 0..count {
        let key = format!("order-{i}");
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload("{}"),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

/// Consumes `count` messages as `group` and commits them.
fn consume_and_commit(bootstrap: &str, group: &str, topic: &str, count: usize) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < count {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed only {seen} of {count}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.unwrap();
            seen += 1;
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
}

/// A consumer gets a Deployment wired to its cluster, group and topics, with fixed replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_gets_a_deployment_wired_to_its_group() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("inventory");
    let name = unique("inventory-management");
    env.create_topic(&topic, spec("local", 3, &[])).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(
        &Default::default(),
        &consumer(&name, &[&topic], json!({"replicas": 2})),
    )
    .await
    .unwrap();
    env.eventually("the Deployment is applied with 2 replicas", || async {
        deployment_replicas(env, &name).await == Some(2)
    })
    .await;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let d = deployments.get(&name).await.unwrap();
    let envs: std::collections::BTreeMap<String, Option<String>> =
        d.spec.template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect();
    assert_eq!(envs["KAFKA_GROUP_ID"].as_deref(), Some(name.as_str()));
    assert_eq!(envs["KAFKA_TOPICS"].as_deref(), Some(topic.as_str()));
    assert_eq!(
        envs["KAFKA_BOOTSTRAP_SERVERS"].as_deref(),
        Some(env.bootstrap.as_str())
    );
    env.eventually("status reports the group's partitions and lag", || async {
        consumer_status(env, &name).await.is_some_and(|s| {
            s.partitions == Some(3)
                && s.total_lag == Some(0)
                && s.replica_decision.is_some_and(|d| d.reason == "Fixed")
        })
    })
    .await;
    r.stop().await;
}

/// Lag scales the consumer up at once — never above the partitions — and back down only after
/// the stabilization window once a real consumer has committed the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_scales_on_lag_within_its_partitions() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("clicks");
    let name = unique("analytics");
    env.create_topic(&topic, spec("local", 4, &[])).await;
    env.eventually("topic Ready", || async {
        matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    produce(&env.bootstrap, &topic, 200).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let scaling = json!({"autoscaling": {
        "minReplicas": 1, "maxReplicas": 10, "lagThreshold": 10,
        "scaleDownStabilizationSeconds": 4, "pollIntervalSeconds": 1, "offsetResetPolicy": "earliest"
    }});
    api.create(&Default::default(), &consumer(&name, &[&topic], scaling))
        .await
        .unwrap();
    env.eventually(
        "lag 200 / 10 = 20 replicas, capped at the 4 partitions",
        || async { deployment_replicas(env, &name).await == Some(4) },
    )
    .await;
    let s = consumer_status(env, &name).await.unwrap();
    assert_eq!(s.total_lag, Some(200));
    let decision = s.replica_decision.unwrap();
    assert!(
        decision.message.contains("capped at 4 partitions"),
        "{}",
        decision.message
    );

    let (bootstrap, group, t) = (env.bootstrap.clone(), name.clone(), topic.clone());
    tokio::task::spawn_blocking(move || consume_and_commit(&bootstrap, &group, &t, 200))
        .await
        .unwrap();
    env.eventually("the committed backlog shows as lag 0", || async {
        consumer_status(env, &name)
            .await
            .is_some_and(|s| s.total_lag == Some(0))
    })
    .await;
    let lag_zero_seen = std::time::Instant::now();
    assert_eq!(
        deployment_replicas(env, &name).await,
        Some(4),
        "no scale-down inside the stabilization window"
    );
    env.eventually("scaled down to min after the window", || async {
        deployment_replicas(env, &name).await == Some(1)
    })
    .await;
    assert!(
        lag_zero_seen.elapsed() >= Duration::from_secs(2),
        "the scale-down waited for the window"
    );
    let reasons = env.event_reasons(&name).await;
    assert!(
        reasons.contains(&"ScaledUp".to_string()) && reasons.contains(&"ScaledDown".to_string()),
        "{reasons:?}"
    );
    r.stop().await;
}

// ---------------------------------------------------------------------------------------------
// StreamTopology

/// examples/bus-ticketing/topology.yaml in the test namespace, its broker topics suffixed so
/// tests sharing a broker (or a long-lived TRIBUTARY_TEST_BOOTSTRAP) never meet.
fn bus_ticketing(suffix: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/bus-ticketing/topology.yaml");
    let mut t: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["metadata"]["namespace"] = json!(NAMESPACE);
    let rename = |v: &mut serde_json::Value| {
        *v = json!(format!("{}-{suffix}", v.as_str().unwrap()));
    };
    for topic in t["spec"]["topics"].as_array_mut().unwrap() {
        rename(&mut topic["name"]);
    }
    for kind in ["producers", "consumers"] {
        for entry in t["spec"][kind].as_array_mut().unwrap() {
            for topic in entry["topics"].as_array_mut().unwrap() {
                rename(topic);
            }
        }
    }
    t
}

fn topologies(env: &Env) -> kube::Api<tributary::api::StreamTopology> {
    kube::Api::namespaced(env.client.clone(), NAMESPACE)
}

async fn topology_status(env: &Env, name: &str) -> Option<tributary::api::StreamTopologyStatus> {
    topologies(env)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|t| t.status)
}

/// The emulator runs no Deployment controller: report every Deployment as rolled out.
async fn roll_out_all(env: &Env) {
    use k8s_openapi::api::apps::v1::Deployment;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    for d in deployments.list(&Default::default()).await.unwrap() {
        let replicas = d.spec.replicas.unwrap_or(1);
        let status = json!({"status": {"observedGeneration": d.metadata.generation, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}});
        deployments
            .patch_status(
                &d.metadata.name.unwrap(),
                &Default::default(),
                &kube::api::Patch::Merge(status),
            )
            .await
            .unwrap();
    }
}

/// The bus-ticketing topology end to end: every topic on the broker, every Deployment present,
/// Ready once every child is; a consumer removed from the spec takes its Deployment with it; a
/// Retain topic removed from the spec stays on the broker and leaves the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_is_expanded_aggregated_and_pruned() {
    use k8s_openapi::api::apps::v1::Deployment;
    let r = start().await;
    let env = &r.env;
    let suffix = unique("t");
    let topology = bus_ticketing(&suffix);
    let name = topology["metadata"]["name"].as_str().unwrap().to_owned();
    let topic_names: Vec<String> = topology["spec"]["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let workloads: Vec<String> = ["producers", "consumers"]
        .iter()
        .flat_map(|k| topology["spec"][*k].as_array().unwrap().iter())
        .map(|e| format!("{name}-{}", e["name"].as_str().unwrap()))
        .collect();
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology.clone()).unwrap(),
        )
        .await
        .unwrap();

    let refs: Vec<&str> = topic_names.iter().map(String::as_str).collect();
    env.eventually("every topic exists on the broker", || async {
        let snapshot = env.broker(&refs).await;
        refs.iter().all(|r| snapshot.topics.contains_key(*r))
    })
    .await;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    env.eventually("a Deployment per producer and consumer", || async {
        let have: Vec<String> = deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect();
        workloads.iter().all(|w| have.contains(w))
    })
    .await;
    let status = topology_status(env, &name).await.unwrap();
    assert!(
        status
            .graph
            .as_deref()
            .is_some_and(|g| g.contains("flowchart LR") && g.contains("booking-service")),
        "the graph is in the status: {:?}",
        status.graph
    );
    assert_eq!(
        ready_reason(&status.conditions).map(|r| r.0),
        Some(ConditionStatus::False),
        "not Ready while Deployments are not available"
    );

    roll_out_all(env).await;
    let total = topic_names.len() + workloads.len();
    env.eventually("Ready once every child is", || async {
        topology_status(env, &name).await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::True, "AllChildrenReady".into()))
                && s.ready_children == Some(format!("{total}/{total}"))
                && s.children.iter().all(|c| c.ready)
        })
    })
    .await;

    // Settled: the children are not re-applied while nothing changes (resyncs included).
    r.api.clear_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rewrites: Vec<String> = r
        .api
        .requests()
        .into_iter()
        .filter(|q| {
            q.method == "PATCH"
                && !q.path.contains("/status")
                && ["/kafkatopics/", "/kafkaproducers/", "/kafkaconsumers/"]
                    .iter()
                    .any(|kind| q.path.contains(kind))
        })
        .map(|q| q.path)
        .collect();
    assert!(
        rewrites.is_empty(),
        "children re-applied while nothing changed: {rewrites:?}"
    );

    // A consumer leaves the spec: its KafkaConsumer goes, and its Deployment with it.
    let mut edited = topology.clone();
    let consumers = edited["spec"]["consumers"].as_array_mut().unwrap();
    let gone = consumers.remove(0);
    let gone = format!("{name}-{}", gone["name"].as_str().unwrap());
    // A Retain topic leaves too (with the references to it).
    let topics = edited["spec"]["topics"].as_array_mut().unwrap();
    let at = topics
        .iter()
        .position(|t| t.get("deletionPolicy").is_none())
        .expect("a topic that takes the default Retain");
    let retained = topics.remove(at)["name"].as_str().unwrap().to_owned();
    for kind in ["producers", "consumers"] {
        let entries = edited["spec"][kind].as_array_mut().unwrap();
        for e in entries.iter_mut() {
            e["topics"]
                .as_array_mut()
                .unwrap()
                .retain(|t| t != &json!(retained));
        }
        entries.retain(|e| !e["topics"].as_array().unwrap().is_empty());
    }
    topologies(env)
        .patch(
            &name,
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": edited["spec"]})),
        )
        .await
        .unwrap();
    env.eventually("the removed consumer's Deployment goes", || async {
        deployments.get_opt(&gone).await.unwrap().is_none()
    })
    .await;
    let retained_child = format!("{name}-{retained}");
    env.eventually(
        "the removed topic leaves the status and its KafkaTopic goes",
        || async {
            let child_gone = env
                .topics()
                .get_opt(&retained_child)
                .await
                .unwrap()
                .is_none();
            child_gone
                && topology_status(env, &name).await.is_some_and(|s| {
                    !s.children
                        .iter()
                        .any(|c| c.name == retained_child || c.name == gone)
                })
        },
    )
    .await;
    let on_broker: Vec<String> = env
        .broker(&[])
        .await
        .topics
        .into_keys()
        .map(|t| t.to_string())
        .collect();
    assert!(
        on_broker.contains(&retained),
        "a Retain topic stays on the broker: {retained} not in {on_broker:?}"
    );
    assert!(env
        .event_reasons(&name)
        .await
        .contains(&"ChildRemoved".to_string()));
    r.stop().await;
}

/// The scenario the real-cluster suite runs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_follows_its_spec() {
    let r = start().await;
    scenarios::topology_follows_its_spec(&r.env, "local").await;
    r.stop().await;
}

/// A topology whose child would take over a resource it does not own stops before changing
/// anything; an invalid one is refused with the entry's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_never_takes_over_and_refuses_a_broken_graph() {
    let r = start().await;
    let env = &r.env;
    let suffix = unique("c");
    let mut topology = bus_ticketing(&suffix);
    topology["metadata"]["name"] = json!("buses");
    let first = topology["spec"]["topics"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    env.create_topic(&format!("buses-{first}"), spec("local", 1, &[]))
        .await;
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology.clone()).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("ChildConflict, naming the entry", || async {
        topology_status(env, "buses").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.reason == "ChildConflict"
                    && c.message.starts_with(&format!("spec.topics[0].name: KafkaTopic 'buses-{first}' already exists and is not owned by this topology"))
            })
        })
    })
    .await;
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    assert!(
        producers
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was created"
    );

    let mut broken = topology.clone();
    broken["metadata"]["name"] = json!("broken");
    broken["spec"]["consumers"][0]["topics"] = json!(["no-such-topic"]);
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(broken).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("InvalidSpec with the field path", || async {
        topology_status(env, "broken").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Stalled"
                    && c.status == ConditionStatus::True
                    && c.reason == "InvalidSpec"
                    && c.message.contains("spec.consumers[0].topics[0]: reads topic 'no-such-topic', which is not declared in spec.topics")
            })
        })
    })
    .await;
    assert!(
        env.topics()
            .get_opt(&format!("broken-{first}"))
            .await
            .unwrap()
            .is_none(),
        "an invalid topology creates nothing"
    );
    r.stop().await;
}

/// What a child's own rules refuse (partitions never decrease) is reported against the entry,
/// with the API server's words, and the topic is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_refused_by_its_rules_is_reported_at_the_entry() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("zones");
    let topology = json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "rides", "namespace": NAMESPACE},
        "spec": {"clusterRef": "local", "topics": [{"name": topic, "partitions": 4}]}
    });
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology).unwrap(),
        )
        .await
        .unwrap();
    let child = format!("rides-{topic}");
    env.eventually("the topic is Ready", || async {
        env.ready(&child)
            .await
            .is_some_and(|(s, _, _)| s == ConditionStatus::True)
    })
    .await;
    topologies(env)
        .patch(
            "rides",
            &Default::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"topics": [{"name": topic, "partitions": 2}]}}),
            ),
        )
        .await
        .unwrap();
    env.eventually("ChildRejected at spec.topics[0]", || async {
        topology_status(env, "rides").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.reason == "ChildRejected"
                    && c.message.starts_with(&format!(
                        "spec.topics[0]: KafkaTopic '{child}' was refused by the API server:"
                    ))
                    && c.message.contains("cannot decrease")
            })
        })
    })
    .await;
    assert_eq!(env.topics().get(&child).await.unwrap().spec.partitions, 4);
    assert_eq!(
        env.broker(&[topic.as_str()]).await.topics[&topic].partitions,
        4
    );
    r.stop().await;
}

/// `tributary.io/paused` on a topology: nothing is created or changed until it is lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_topology_changes_nothing_until_released() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("alerts");
    let topology = json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "news", "namespace": NAMESPACE, "annotations": {"tributary.io/paused": "true"}},
        "spec": {"clusterRef": "local", "topics": [{"name": topic, "partitions": 1}]}
    });
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("Paused", || async {
        topology_status(env, "news").await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::False, "Paused".into()))
                && s.ready_children.as_deref() == Some("0/1")
        })
    })
    .await;
    let child = format!("news-{topic}");
    assert!(
        env.topics().get_opt(&child).await.unwrap().is_none(),
        "nothing created while paused"
    );
    topologies(env)
        .patch(
            "news",
            &Default::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"tributary.io/paused": null}}}),
            ),
        )
        .await
        .unwrap();
    env.eventually("created once released", || async {
        env.ready(&child)
            .await
            .is_some_and(|(s, _, _)| s == ConditionStatus::True)
    })
    .await;
    env.eventually("Ready once its child is", || async {
        topology_status(env, "news").await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::True, "AllChildrenReady".into()))
        })
    })
    .await;
    r.stop().await;
}

/// Every kind the controllers read — their own, what they own, what they look at — is watched
/// once: one watch stream per kind, shared by every controller that needs it (before the shared
/// watches: KafkaTopic four times, KafkaCluster, KafkaProducer, KafkaConsumer and Deployment
/// twice each). Owned Deployments and Services are watched as metadata only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_is_watched_once() {
    let r = start().await;
    r.api.wait_for_watches(7).await;
    // Let any second watch of a kind show up, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut watches: BTreeMap<String, usize> = BTreeMap::new();
    for request in r.api.requests() {
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if request.method == "GET" && query.split('&').any(|p| p == "watch=true") {
            let resource = path.rsplit('/').next().unwrap_or_default().to_owned();
            *watches.entry(resource).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = [
        "deployments",
        "kafkaclusters",
        "kafkaconsumers",
        "kafkaproducers",
        "kafkatopics",
        "services",
        "streamtopologies",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), 1))
    .collect();
    assert_eq!(watches, expected, "watch requests per resource");
    assert_eq!(r.api.open_watches(), 7, "open watch streams");
    r.stop().await;
}

/// Idle means zero writes: once a producer (Deployment and Service) and a consumer (Deployment)
/// are Ready, the reconciles that keep coming (lag polls, resyncs) compare what they would apply
/// with what is there and write nothing — no apply, no status, no Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workloads_write_nothing() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("idle");
    env.create_topic(&topic, spec("local", 2, &[])).await;
    let producer_name = unique("idle-producer");
    let consumer_name = unique("idle-consumer");
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    producers
        .create(
            &Default::default(),
            &producer(&producer_name, "local", &[&topic]),
        )
        .await
        .unwrap();
    let consumers: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let scaling = json!({"replicas": 1});
    consumers
        .create(
            &Default::default(),
            &consumer(&consumer_name, &[&topic], scaling),
        )
        .await
        .unwrap();
    env.eventually("both Deployments exist", || async {
        deployment_replicas(env, &producer_name).await.is_some()
            && deployment_replicas(env, &consumer_name).await.is_some()
    })
    .await;
    roll_out_all(env).await;
    env.eventually("both Ready", || async {
        let p = producer_status(env, &producer_name).await;
        let c = consumer_status(env, &consumer_name).await;
        p.is_some_and(|s| {
            ready_reason(&s.conditions).is_some_and(|(s, _)| s == ConditionStatus::True)
        }) && c.is_some_and(|s| {
            ready_reason(&s.conditions).is_some_and(|(s, _)| s == ConditionStatus::True)
        })
    })
    .await;
    // Let the last writes of the roll-out settle, then watch: several lag polls and resyncs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.api.clear_requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let requests = r.api.requests();
    let writes: Vec<String> = requests
        .iter()
        .filter(|q| q.method != "GET")
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    let reads = requests.len() - writes.len();
    assert!(
        reads > 0,
        "the workloads kept reconciling (no request at all in 6 s)"
    );
    assert!(writes.is_empty(), "writes while idle: {writes:#?}");
    r.stop().await;
}
