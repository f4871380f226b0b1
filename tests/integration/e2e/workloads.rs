//! KafkaProducer and KafkaConsumer end to end: roll-out, secrets, consumer groups, scaling on lag.

use super::*;

use std::time::Duration;

use crate::support::broker::unique;
use crate::support::scenarios::spec;
use serde_json::json;
use tributary::api::ConditionStatus;

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

/// An autoscaled consumer with a backlog: `partitions` partitions, lag 40, threshold 10.
fn backlogged_consumer(name: &str, topic: &str, window: i32) -> tributary::api::KafkaConsumer {
    let scaling = json!({"autoscaling": {
        "minReplicas": 1, "maxReplicas": 10, "lagThreshold": 10,
        "scaleDownStabilizationSeconds": window, "pollIntervalSeconds": 1,
        "offsetResetPolicy": "earliest"
    }});
    consumer(name, &[topic], scaling)
}

/// A topic deleted on the broker under a consumer: its lag is unknown, not 0 — no lag in
/// status, a decision saying so — and the consumer holds its replicas, not Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_gone_from_the_broker_makes_the_lag_unknown_and_holds_the_replicas() {
    use tributary::kafka::{BrokerAdmin, NewTopic};
    let r = start().await;
    let env = &r.env;
    let topic = unique("raw-clicks");
    let name = unique("raw-analytics");
    let admin = env.admin();
    admin
        .create_topics(&[NewTopic {
            name: topic.clone(),
            partitions: 4,
            replication_factor: None,
            config: Vec::new(),
        }])
        .await
        .unwrap();
    produce(&env.bootstrap, &topic, 40).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &backlogged_consumer(&name, &topic, 1))
        .await
        .unwrap();
    env.eventually("lag 40 / 10 = 4 replicas", || async {
        deployment_replicas(env, &name).await == Some(4)
    })
    .await;
    assert_eq!(
        consumer_status(env, &name).await.unwrap().total_lag,
        Some(40)
    );

    admin
        .delete_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    env.eventually("the lag is unknown and the consumer not Ready", || async {
        consumer_status(env, &name).await.is_some_and(|s| {
            s.total_lag.is_none()
                && s.partitions.is_none()
                && s.topics.iter().all(|t| t.lag.is_none())
                && s.replica_decision
                    .is_some_and(|d| d.reason == "LagUnknown" && d.replicas == 4)
                && ready_reason(&s.conditions)
                    == Some((ConditionStatus::False, "TopicNotReady".into()))
        })
    })
    .await;
    let s = consumer_status(env, &name).await.unwrap();
    let decision = s.replica_decision.unwrap();
    assert!(
        decision.message.contains("lag unknown") && decision.message.contains(&topic),
        "{}",
        decision.message
    );
    // Well past the 1 s stabilization window: still held.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deployment_replicas(env, &name).await, Some(4));
    r.stop().await;
}

/// A KafkaTopic-managed topic deleted on the broker under a consumer: the consumer does not
/// trust the KafkaTopic's last Ready status — it holds its replicas (no scale-down to the
/// missing topic's 0 partitions) — and the KafkaTopic is reconciled and recreates the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_topic_gone_from_the_broker_holds_the_consumer() {
    use tributary::kafka::BrokerAdmin;
    let r = start().await;
    let env = &r.env;
    let topic = unique("orders");
    let name = unique("fulfilment");
    env.create_topic(&topic, spec("local", 4, &[])).await;
    env.eventually("topic Ready", || async {
        matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    produce(&env.bootstrap, &topic, 40).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &backlogged_consumer(&name, &topic, 60))
        .await
        .unwrap();
    env.eventually("lag 40 / 10 = 4 replicas", || async {
        deployment_replicas(env, &name).await == Some(4)
    })
    .await;

    env.admin()
        .delete_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let deleted = std::time::Instant::now();
    let mut recreated = false;
    while deleted.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            deployment_replicas(env, &name).await,
            Some(4),
            "scaled while the topic was missing: {:?}",
            consumer_status(env, &name).await
        );
        recreated = recreated || env.broker(&[&topic]).await.topics.contains_key(&topic);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recreated, "the KafkaTopic never recreated the topic");
    r.stop().await;
}

/// The lag pass that finds a KafkaTopic's topic missing on the broker has the KafkaTopic
/// reconciled at once: with a resync of five minutes, the topic is back within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_the_lag_pass_finds_missing_is_recreated_before_any_resync() {
    use tributary::kafka::BrokerAdmin;
    let r = super::start_with(
        &tributary::api::crds::all(),
        tributary::runtime::Options {
            resync: Duration::from_secs(300),
            ..super::options()
        },
    )
    .await;
    let env = &r.env;
    let topic = unique("dispatch");
    let name = unique("dispatcher");
    env.create_topic(&topic, spec("local", 2, &[])).await;
    env.eventually("topic Ready", || async {
        matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    produce(&env.bootstrap, &topic, 10).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &backlogged_consumer(&name, &topic, 60))
        .await
        .unwrap();
    env.eventually("the consumer's lag is known", || async {
        consumer_status(env, &name)
            .await
            .is_some_and(|s| s.total_lag.is_some())
    })
    .await;

    env.admin()
        .delete_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    let deleted = std::time::Instant::now();
    let mut gone_seen = false;
    loop {
        let on_broker = env.broker(&[&topic]).await.topics.contains_key(&topic);
        gone_seen |= !on_broker;
        if gone_seen && on_broker {
            break;
        }
        assert!(
            deleted.elapsed() < Duration::from_secs(20),
            "the topic was not recreated within 20 s (the resync is 300 s away)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.stop().await;
}

/// The notes of the Events about `object` with `reason`, oldest series first.
async fn event_notes(env: &Env, object: &str, reason: &str) -> Vec<String> {
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let mut found: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect();
    found.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    found.into_iter().filter_map(|e| e.note).collect()
}

/// Each scaling transition is an Event of its own with its own note, and the last one stays in
/// status (what, from, to, why, when) after later polls have found nothing to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scaling_transition_has_its_event_and_the_last_one_stays_in_status() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("views");
    let name = unique("recommender");
    env.create_topic(&topic, spec("local", 8, &[])).await;
    env.eventually("topic Ready", || async {
        matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    produce(&env.bootstrap, &topic, 20).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &backlogged_consumer(&name, &topic, 60))
        .await
        .unwrap();
    env.eventually("lag 20 / 10 = 2 replicas", || async {
        deployment_replicas(env, &name).await == Some(2)
    })
    .await;
    produce(&env.bootstrap, &topic, 40).await;
    env.eventually("lag 60 / 10 = 6 replicas", || async {
        deployment_replicas(env, &name).await == Some(6)
    })
    .await;
    // Several polls later (1 s apart) the decision is Steady; the scaling is still there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = consumer_status(env, &name).await.unwrap();
    assert_eq!(s.replica_decision.unwrap().reason, "Steady");
    // The 40 records arrive one by one: a poll may see part of them (2 -> 4 -> 6).
    let last = s.last_scaling.expect("the last scaling is kept");
    assert_eq!((last.to, last.reason.as_str()), (6, "ScaledUp"), "{last:?}");
    assert!((2..6).contains(&last.from), "{last:?}");
    assert!(
        last.message.starts_with("lag ") && last.message.contains(" / threshold 10 = 6"),
        "{}",
        last.message
    );
    assert!(last.time.is_some());
    let notes = event_notes(env, &name, "ScaledUp").await;
    assert!(notes.len() >= 2, "{notes:?}");
    assert!(notes[0].starts_with("replicas 0 -> 2: "), "{notes:?}");
    let final_note = format!("replicas {} -> 6: ", last.from);
    assert!(notes.last().unwrap().starts_with(&final_note), "{notes:?}");
    let distinct: std::collections::BTreeSet<_> = notes.iter().collect();
    assert_eq!(distinct.len(), notes.len(), "{notes:?}");
    r.stop().await;
}

/// A group reading a 6- and a 2-partition topic with lag 80 (threshold 10): with the range
/// assignor (the default) only 6 members get a partition, with roundrobin all 8 do — and the
/// decision says which it counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partition_ceiling_follows_the_assignment_strategy() {
    let r = start().await;
    let env = &r.env;
    let (large, small) = (unique("rides"), unique("tips"));
    env.create_topic(&large, spec("local", 6, &[])).await;
    env.create_topic(&small, spec("local", 2, &[])).await;
    for t in [&large, &small] {
        env.eventually("topic Ready", || async {
            matches!(env.ready(t).await, Some((ConditionStatus::True, _, _)))
        })
        .await;
    }
    produce(&env.bootstrap, &large, 60).await;
    produce(&env.bootstrap, &small, 20).await;
    let api: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let scaling = |strategy: Option<&str>| {
        let mut autoscaling = json!({
            "minReplicas": 1, "maxReplicas": 20, "lagThreshold": 10,
            "scaleDownStabilizationSeconds": 60, "pollIntervalSeconds": 1,
            "offsetResetPolicy": "earliest"
        });
        if let Some(s) = strategy {
            autoscaling["assignmentStrategy"] = json!(s);
        }
        json!({ "autoscaling": autoscaling })
    };
    let (ranged, spread) = (unique("dispatch"), unique("payouts"));
    api.create(
        &Default::default(),
        &consumer(&ranged, &[&large, &small], scaling(None)),
    )
    .await
    .unwrap();
    api.create(
        &Default::default(),
        &consumer(&spread, &[&large, &small], scaling(Some("roundrobin"))),
    )
    .await
    .unwrap();
    env.eventually("range: 6 replicas; roundrobin: 8", || async {
        deployment_replicas(env, &ranged).await == Some(6)
            && deployment_replicas(env, &spread).await == Some(8)
            && consumer_status(env, &ranged)
                .await
                .is_some_and(|s| s.total_lag == Some(80))
    })
    .await;
    let s = consumer_status(env, &ranged).await.unwrap();
    assert_eq!(s.partitions, Some(6));
    let message = s.replica_decision.unwrap().message;
    assert_eq!(
        message,
        "lag 80 / threshold 10 = 8, capped at 6 partitions (range assignor: the largest topic's)"
    );
    let s = consumer_status(env, &spread).await.unwrap();
    assert_eq!(s.partitions, Some(8));
    r.stop().await;
}
