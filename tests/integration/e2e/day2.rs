//! The statuses the operator writes, captured for the day-2 checks (Argo CD's Lua health
//! checks and the kstatus rules Flux reads, in `tests/integration/day2.rs`): one object per
//! state a platform team meets, each waited for until the operator has written that state,
//! then compared with `tests/fixtures/status/<case>.json` — or written there with
//! `TRIBUTARY_UPDATE_FIXTURES=1`. What is compared is what the health checks read (kind,
//! generation, `observedGeneration`, each condition's type, status, reason and
//! `observedGeneration`), so the fixtures cannot drift from the code; messages, times and
//! names may differ between runs and brokers.

use super::*;

use crate::support::broker::{free_port, unique};
use crate::support::scenarios::spec;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::Value;
use tributary::api::KafkaTopic;

/// The directory of the captured statuses.
pub fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/status")
}

/// `(case, kind, Ready status, Ready reason)`: each case's object and the state it is captured in.
pub const CASES: &[(&str, &str, &str, &str)] = &[
    ("cluster-connected", "KafkaCluster", "True", "Connected"),
    (
        "cluster-unreachable",
        "KafkaCluster",
        "False",
        "BrokerUnreachable",
    ),
    ("topic-in-sync", "KafkaTopic", "True", "InSync"),
    ("topic-paused", "KafkaTopic", "False", "Paused"),
    ("topic-dry-run", "KafkaTopic", "False", "DryRun"),
    ("topic-conflict", "KafkaTopic", "False", "ResourceConflict"),
    (
        "topic-cluster-not-found",
        "KafkaTopic",
        "False",
        "ClusterNotFound",
    ),
    (
        "topic-unreachable",
        "KafkaTopic",
        "False",
        "BrokerUnreachable",
    ),
    ("consumer-available", "KafkaConsumer", "True", "Available"),
    (
        "consumer-topic-not-ready",
        "KafkaConsumer",
        "False",
        "TopicNotReady",
    ),
    (
        "consumer-rolling-out",
        "KafkaConsumer",
        "False",
        "Progressing",
    ),
    ("producer-available", "KafkaProducer", "True", "Available"),
    (
        "producer-waiting-for-topics",
        "KafkaProducer",
        "False",
        "WaitingForTopics",
    ),
    (
        "topology-children-not-ready",
        "StreamTopology",
        "False",
        "ChildrenNotReady",
    ),
    (
        "topology-all-children-ready",
        "StreamTopology",
        "True",
        "AllChildrenReady",
    ),
];

/// What the health checks read of an object.
pub fn projection(object: &Value) -> Value {
    let conditions: Vec<Value> = object["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({
                        "type": c["type"], "status": c["status"], "reason": c["reason"],
                        "observedGeneration": c["observedGeneration"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": object["kind"],
        "generation": object["metadata"]["generation"],
        "observedGeneration": object["status"]["observedGeneration"],
        "conditions": conditions,
    })
}

fn resource(kind: &str) -> ApiResource {
    let plural = crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD of kind {kind}"))
        .spec
        .names
        .plural;
    ApiResource {
        group: "tributary.io".into(),
        version: "v1alpha1".into(),
        api_version: "tributary.io/v1alpha1".into(),
        kind: kind.into(),
        plural,
    }
}

/// The object as read back, with what differs between runs left out of `metadata`.
async fn read(env: &Env, kind: &str, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource(kind));
    let object = api.get_opt(name).await.ok().flatten()?;
    let mut value = serde_json::to_value(object).unwrap();
    let metadata = &value["metadata"];
    let kept = json!({
        "name": metadata["name"], "namespace": metadata["namespace"],
        "generation": metadata["generation"], "annotations": metadata["annotations"],
    });
    value["metadata"] = kept;
    value["apiVersion"] = json!("tributary.io/v1alpha1");
    value["kind"] = json!(kind);
    Some(value)
}

fn ready_of(object: &Value) -> Option<(String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// Waits until the object is in the case's state (and its status has seen its generation).
async fn settled(env: &Env, case: &str, name: &str) -> Value {
    let &(_, kind, status, reason) = CASES.iter().find(|c| c.0 == case).unwrap();
    let mut last = None;
    let start = std::time::Instant::now();
    loop {
        if let Some(object) = read(env, kind, name).await {
            let current =
                object["status"]["observedGeneration"] == object["metadata"]["generation"];
            if current && ready_of(&object) == Some((status.into(), reason.into())) {
                return object;
            }
            last = Some(object);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{case}: {kind} {name} never reached Ready={status} ({reason}); last: {last:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Server-side applies `object` (any of Tributary's kinds).
async fn apply(env: &Env, object: Value) {
    let kind = object["kind"].as_str().unwrap().to_owned();
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource(&kind));
    api.patch(
        &name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap();
}

fn workload(kind: &str, name: &str, topics: &[&str]) -> Value {
    let mut spec = json!({
        "clusterRef": "local", "topics": topics, "replicas": 1,
        "template": {"image": "ghcr.io/example/app:1.0.0"},
    });
    if kind == "KafkaConsumer" {
        spec["groupId"] = json!(name);
    }
    json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec,
    })
}

/// Every case of [`CASES`] is reached and captured; the captures match the fixtures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statuses_the_operator_writes_are_the_fixtures_of_the_health_checks() {
    let r = start().await;
    let env = &r.env;
    let mut captured: Vec<(&str, Value)> = Vec::new();

    // Clusters: `local` (the test broker) and one nobody answers at.
    captured.push((
        "cluster-connected",
        settled(env, "cluster-connected", "local").await,
    ));
    env.apply_cluster("nowhere", &format!("127.0.0.1:{}", free_port()))
        .await;
    captured.push((
        "cluster-unreachable",
        settled(env, "cluster-unreachable", "nowhere").await,
    ));

    // Topics.
    let orders = unique("orders");
    env.create_topic(&orders, spec("local", 2, &[])).await;
    captured.push((
        "topic-in-sync",
        settled(env, "topic-in-sync", &orders).await,
    ));
    for (case, annotation) in [
        ("topic-paused", "tributary.io/paused"),
        ("topic-dry-run", "tributary.io/dry-run"),
    ] {
        let name = unique(case);
        let topic: KafkaTopic = serde_json::from_value(json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": name, "namespace": NAMESPACE, "annotations": {annotation: "true"}},
            "spec": spec("local", 1, &[]),
        }))
        .unwrap();
        env.topics()
            .create(&Default::default(), &topic)
            .await
            .unwrap();
        captured.push((case, settled(env, case, &name).await));
    }
    let copy = format!("{orders}-copy");
    let mut claim = spec("local", 2, &[]);
    claim.topic_name = Some(orders.clone());
    env.create_topic(&copy, claim).await;
    captured.push((
        "topic-conflict",
        settled(env, "topic-conflict", &copy).await,
    ));
    let lost = unique("lost");
    env.create_topic(&lost, spec("missing", 1, &[])).await;
    captured.push((
        "topic-cluster-not-found",
        settled(env, "topic-cluster-not-found", &lost).await,
    ));
    let stranded = unique("stranded");
    env.create_topic(&stranded, spec("nowhere", 1, &[])).await;
    captured.push((
        "topic-unreachable",
        settled(env, "topic-unreachable", &stranded).await,
    ));

    // Workloads: one reading a topic nobody declared, one waiting to write one, and a pair that
    // becomes Available once the emulator's Deployments are reported rolled out.
    apply(
        env,
        workload("KafkaConsumer", "orphan", &[&unique("absent")]),
    )
    .await;
    captured.push((
        "consumer-topic-not-ready",
        settled(env, "consumer-topic-not-ready", "orphan").await,
    ));
    apply(env, workload("KafkaProducer", "eager", &[&lost])).await;
    captured.push((
        "producer-waiting-for-topics",
        settled(env, "producer-waiting-for-topics", "eager").await,
    ));
    apply(env, workload("KafkaConsumer", "billing", &[&orders])).await;
    captured.push((
        "consumer-rolling-out",
        settled(env, "consumer-rolling-out", "billing").await,
    ));
    apply(env, workload("KafkaProducer", "checkout", &[&orders])).await;

    // A topology whose children are not rolled out yet, then are.
    let events = unique("events");
    apply(
        env,
        json!({
            "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
            "metadata": {"name": "shop", "namespace": NAMESPACE},
            "spec": {
                "clusterRef": "local",
                "defaults": {"partitions": 2, "replicationFactor": 1},
                "topics": [{"name": events}],
                "producers": [{"name": "web", "topics": [events], "replicas": 1,
                               "template": {"image": "ghcr.io/example/web:1.0.0"}}],
                "consumers": [{"name": "audit", "topics": [events], "replicas": 1,
                               "template": {"image": "ghcr.io/example/audit:1.0.0"}}],
            }
        }),
    )
    .await;
    captured.push((
        "topology-children-not-ready",
        settled(env, "topology-children-not-ready", "shop").await,
    ));
    // Deployments appear as their workloads are reconciled: roll out until all are Available.
    let start = std::time::Instant::now();
    loop {
        roll_out_all(env).await;
        let ready = |o: Option<Value>| {
            o.and_then(|o| ready_of(&o))
                .is_some_and(|(s, _)| s == "True")
        };
        if ready(read(env, "StreamTopology", "shop").await)
            && ready(read(env, "KafkaConsumer", "billing").await)
            && ready(read(env, "KafkaProducer", "checkout").await)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never rolled out"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    captured.push((
        "consumer-available",
        settled(env, "consumer-available", "billing").await,
    ));
    captured.push((
        "producer-available",
        settled(env, "producer-available", "checkout").await,
    ));
    captured.push((
        "topology-all-children-ready",
        settled(env, "topology-all-children-ready", "shop").await,
    ));

    let update = std::env::var("TRIBUTARY_UPDATE_FIXTURES").is_ok_and(|v| v == "1");
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        captured
            .iter()
            .map(|(c, _)| *c)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        CASES.len(),
        "every case captured once"
    );
    let mut drifted = Vec::new();
    for (case, object) in &captured {
        let path = dir.join(format!("{case}.json"));
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(object).unwrap() + "\n").unwrap();
            continue;
        }
        let stored: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| {
                panic!(
                    "{} is missing: run with TRIBUTARY_UPDATE_FIXTURES=1 and commit it",
                    path.display()
                )
            });
        if projection(&stored) != projection(object) {
            drifted.push(format!(
                "{case}: stored {:#}\n  written now {:#}",
                projection(&stored),
                projection(object)
            ));
        }
    }
    assert!(
        drifted.is_empty(),
        "the operator's statuses drifted from tests/fixtures/status (check the health checks, then \
         rerun with TRIBUTARY_UPDATE_FIXTURES=1):\n{}",
        drifted.join("\n")
    );
    r.stop().await;
}
