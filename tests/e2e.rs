//! The operator end to end: the real controllers (in process) against the in-process
//! Kubernetes API-server emulator and a real Kafka-protocol broker (Tansu from the harness, or
//! `TRIBUTARY_TEST_BOOTSTRAP`).

mod support;

use std::time::Duration;

use serde_json::json;
use support::apiserver::ApiServer;
use support::broker::{broker, free_port, spawn_guarded_tansu, stop_guarded, unique, wait_for};
use support::scenarios::{self, spec, Env};
use tokio::sync::oneshot;
use tributary::api::{crds, ConditionStatus};
use tributary::controller::{self, Options};

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
    let operator = tokio::spawn(controller::run(
        api.client(),
        options(),
        controller::rdkafka_connect(),
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
        support::apiserver::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}/status")),
        500,
        2,
    );
    r.api.fail_next(
        support::apiserver::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}?")),
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
