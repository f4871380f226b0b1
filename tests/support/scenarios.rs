//! End-to-end scenarios of the operator, written against any Kubernetes API server (the
//! in-process emulator, or a real cluster) and any Kafka-protocol broker. Each scenario uses
//! its own topic names, so they can share one operator, one namespace and one broker.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tributary::api::{
    ConditionStatus, DeletionPolicy, KafkaCluster, KafkaClusterSpec, KafkaTopic, KafkaTopicSpec,
    TopicDefaults,
};
use tributary::kafka::BrokerSnapshot;
use tributary::kafka::{BrokerAdmin, ClientSettings, RdKafkaAdmin};

use super::broker::unique;

/// Where the scenarios run.
pub struct Env {
    pub client: Client,
    pub namespace: String,
    /// The bootstrap the operator (and the checks) reach the broker at.
    pub bootstrap: String,
    /// How long to wait for the operator to converge.
    pub patience: Duration,
}

impl Env {
    pub fn topics(&self) -> Api<KafkaTopic> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn clusters(&self) -> Api<KafkaCluster> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn admin(&self) -> RdKafkaAdmin {
        RdKafkaAdmin::connect(&ClientSettings::plaintext(
            &self.bootstrap,
            Duration::from_secs(5),
        ))
        .unwrap()
    }

    pub async fn broker(&self, names: &[&str]) -> BrokerSnapshot {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.admin().snapshot(&names).await.unwrap()
    }

    /// Creates (or replaces) the KafkaCluster `name` pointing at `bootstrap`.
    pub async fn apply_cluster(&self, name: &str, bootstrap: &str) {
        let cluster = KafkaCluster::new(
            name,
            KafkaClusterSpec {
                bootstrap_servers: vec![bootstrap.to_owned()],
                tls: None,
                sasl: None,
                client_config: BTreeMap::new(),
                request_timeout_seconds: Some(3),
                topic_defaults: Some(TopicDefaults {
                    replication_factor: Some(1),
                    config: BTreeMap::new(),
                }),
            },
        );
        self.clusters()
            .patch(
                name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&cluster),
            )
            .await
            .unwrap();
    }

    pub async fn create_topic(&self, name: &str, spec: KafkaTopicSpec) -> KafkaTopic {
        self.topics()
            .create(&PostParams::default(), &KafkaTopic::new(name, spec))
            .await
            .unwrap()
    }

    /// Waits until `check` holds, polling; panics with `what` after the patience runs out.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let start = Instant::now();
        loop {
            if check().await {
                return;
            }
            assert!(
                start.elapsed() < self.patience,
                "timed out after {:?} waiting for: {what}",
                self.patience
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn ready(&self, name: &str) -> Option<(ConditionStatus, String, Option<i64>)> {
        let t = self.topics().get_opt(name).await.ok().flatten()?;
        let status = t.status?;
        let c = status.conditions.iter().find(|c| c.type_ == "Ready")?;
        Some((c.status, c.reason.clone(), status.observed_generation))
    }

    pub async fn event_reasons(&self, object: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
            .filter_map(|e| e.reason)
            .collect()
    }
}

pub fn spec(cluster: &str, partitions: i32, config: &[(&str, &str)]) -> KafkaTopicSpec {
    KafkaTopicSpec {
        cluster_ref: cluster.into(),
        topic_name: None,
        partitions,
        replication_factor: None,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        deletion_policy: DeletionPolicy::Retain,
    }
}

/// Apply a KafkaCluster and KafkaTopics: topics appear on the broker, status turns Ready with
/// the right observedGeneration; a config edit reaches the broker.
pub async fn create_and_edit(env: &Env, cluster: &str) {
    let name = unique("bookings");
    env.create_topic(&name, spec(cluster, 3, &[("retention.ms", "604800000")]))
        .await;
    env.eventually("the topic is Ready", || async {
        matches!(
            env.ready(&name).await,
            Some((ConditionStatus::True, _, Some(1)))
        )
    })
    .await;
    let seen = env.broker(&[&name]).await;
    assert_eq!(seen.topics[&name].partitions, 3);
    assert_eq!(
        seen.topics[&name].configs["retention.ms"].value.as_deref(),
        Some("604800000")
    );
    let t = env.topics().get(&name).await.unwrap();
    assert!(t.finalizers().iter().any(|f| f == "tributary.io/topic"));
    assert!(env
        .event_reasons(&name)
        .await
        .contains(&"Created".to_string()));
    env.eventually("the KafkaCluster is probed and Ready", || async {
        let Ok(c) = env.clusters().get(cluster).await else {
            return false;
        };
        c.status.is_some_and(|s| {
            s.brokers.unwrap_or(0) >= 1
                && s.cluster_id.is_some()
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
        })
    })
    .await;

    env.topics()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"retention.ms": "86400000"}}})),
        )
        .await
        .unwrap();
    env.eventually("the edit reaches the broker", || async {
        env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref()
            == Some("86400000")
    })
    .await;
    env.eventually("status observes generation 2", || async {
        matches!(
            env.ready(&name).await,
            Some((ConditionStatus::True, _, Some(2)))
        )
    })
    .await;
}

/// A config changed by hand on the broker is repaired at the next resync, and an Event says so.
pub async fn drift_is_repaired(env: &Env, cluster: &str) {
    let name = unique("refunds");
    env.create_topic(&name, spec(cluster, 1, &[("retention.ms", "2592000000")]))
        .await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    let by_hand = vec![(
        name.clone(),
        vec![tributary::kafka::ConfigChange::Set {
            key: "retention.ms".into(),
            from: None,
            to: "1000".into(),
        }],
    )];
    env.admin().alter_configs(&by_hand).await.unwrap();
    env.eventually("the drift is repaired", || async {
        env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref()
            == Some("2592000000")
    })
    .await;
    env.eventually("an Event says so", || async {
        env.event_reasons(&name)
            .await
            .contains(&"DriftRepaired".to_string())
    })
    .await;
}

/// Deletion honours the policy and always releases the finalizer.
pub async fn delete_by_policy(env: &Env, cluster: &str) {
    let kept = unique("schedule-updates");
    let dropped = unique("fraud-alerts");
    env.create_topic(&kept, spec(cluster, 1, &[])).await;
    let mut s = spec(cluster, 1, &[]);
    s.deletion_policy = DeletionPolicy::Delete;
    env.create_topic(&dropped, s).await;
    for n in [&kept, &dropped] {
        env.eventually("Ready", || async {
            matches!(env.ready(n).await, Some((ConditionStatus::True, _, _)))
        })
        .await;
    }
    for n in [&kept, &dropped] {
        env.topics()
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
    for n in [&kept, &dropped] {
        env.eventually("the resource is gone", || async {
            env.topics().get_opt(n).await.unwrap().is_none()
        })
        .await;
    }
    env.eventually("Delete removed the topic", || async {
        !env.broker(&[]).await.topics.contains_key(&dropped)
    })
    .await;
    assert!(
        env.broker(&[]).await.topics.contains_key(&kept),
        "Retain kept the topic"
    );
}

/// `tributary.io/paused` stops changes and says so; `tributary.io/dry-run` lists pending actions.
pub async fn pause_and_dry_run(env: &Env, cluster: &str) {
    let name = unique("cancellations");
    env.create_topic(&name, spec(cluster, 2, &[("retention.ms", "1000")]))
        .await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;

    env.topics()
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"tributary.io/paused": "true"}}, "spec": {"config": {"retention.ms": "2000"}}})))
        .await
        .unwrap();
    env.eventually("status says Paused", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "Paused")
    })
    .await;
    let t = env.topics().get(&name).await.unwrap();
    assert!(t
        .status
        .unwrap()
        .pending_actions
        .iter()
        .any(|a| a.contains("retention.ms: 1000 -> 2000")));
    assert_eq!(
        env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref(),
        Some("1000"),
        "paused: nothing changed"
    );

    env.topics()
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"annotations": {"tributary.io/paused": null, "tributary.io/dry-run": "true"}}})))
        .await
        .unwrap();
    env.eventually("status says DryRun", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "DryRun")
    })
    .await;
    assert_eq!(
        env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref(),
        Some("1000"),
        "dry-run: nothing changed"
    );

    env.topics()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"tributary.io/dry-run": null}}})),
        )
        .await
        .unwrap();
    env.eventually("the change lands once released", || async {
        env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
            .value
            .as_deref()
            == Some("2000")
    })
    .await;
}

/// Two KafkaTopics claiming one topic: the newer one gets ResourceConflict and changes nothing.
pub async fn conflict(env: &Env, cluster: &str) {
    let name = unique("orders");
    env.create_topic(&name, spec(cluster, 3, &[])).await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    let copy = format!("{name}-copy");
    let mut s = spec(cluster, 3, &[("retention.ms", "5")]);
    s.topic_name = Some(name.clone());
    env.create_topic(&copy, s).await;
    env.eventually("the newer one is in conflict", || async {
        matches!(env.ready(&copy).await, Some((ConditionStatus::False, r, _)) if r == "ResourceConflict")
    })
    .await;
    assert!(
        !env.broker(&[&name]).await.topics[&name]
            .configs
            .contains_key("retention.ms"),
        "the loser changed nothing"
    );
    assert!(matches!(
        env.ready(&name).await,
        Some((ConditionStatus::True, _, _))
    ));
}

/// An invalid object is refused by the API server's schema validation.
pub async fn invalid_object_is_refused(env: &Env, cluster: &str) {
    let err = env
        .topics()
        .create(
            &PostParams::default(),
            &KafkaTopic::new(&unique("bad"), spec(cluster, 0, &[])),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 422, "{s:?}"),
        other => panic!("expected 422, got {other:?}"),
    }
    let name = unique("shrink");
    env.create_topic(&name, spec(cluster, 4, &[])).await;
    let err = env
        .topics()
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.message.contains("cannot decrease")),
        "{err:?}"
    );
}

/// Names of every KafkaTopic in the namespace (for cleanup).
pub async fn all_topics(env: &Env) -> Vec<String> {
    env.topics()
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|t| t.name_any()).collect())
        .unwrap_or_default()
}

/// A StreamTopology's children follow its spec: its topics reach the broker, its consumer gets
/// a Deployment; a consumer and a `Retain` topic removed from the spec go (the Deployment with
/// the consumer), and the topic stays on the broker. (Readiness of the whole needs pods that
/// run, which the emulator fakes elsewhere and a real cluster cannot pull here.)
pub async fn topology_follows_its_spec(env: &Env, cluster: &str) {
    use k8s_openapi::api::apps::v1::Deployment;
    use tributary::api::StreamTopology;
    let (rides, status) = (unique("ride-requests"), unique("driver-status"));
    let name = unique("rides");
    let consumer = |entry: &str, topics: &[&str]| json!({"name": entry, "topics": topics, "replicas": 1, "template": {"image": "ghcr.io/acme/dispatch:1.0.0"}});
    let spec = |topics: &[&str], consumers: Vec<serde_json::Value>| {
        json!({
            "clusterRef": cluster,
            "defaults": {"partitions": 2},
            "topics": topics.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
            "consumers": consumers,
        })
    };
    let topology: StreamTopology = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": name},
        "spec": spec(&[&rides, &status], vec![consumer("dispatch", &[&rides, &status]), consumer("audit", &[&status])]),
    }))
    .unwrap();
    let topologies: Api<StreamTopology> = Api::namespaced(env.client.clone(), &env.namespace);
    topologies
        .create(&PostParams::default(), &topology)
        .await
        .unwrap();

    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let (dispatch, audit) = (format!("{name}-dispatch"), format!("{name}-audit"));
    env.eventually("the topology's topics on the broker", || async {
        let on_broker = env.broker(&[]).await.topics;
        on_broker.contains_key(&rides) && on_broker.contains_key(&status)
    })
    .await;
    env.eventually("a Deployment per consumer", || async {
        deployments.get_opt(&dispatch).await.unwrap().is_some()
            && deployments.get_opt(&audit).await.unwrap().is_some()
    })
    .await;

    let edited = spec(&[&rides], vec![consumer("dispatch", &[&rides])]);
    topologies
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": edited})),
        )
        .await
        .unwrap();
    let status_child = format!("{name}-{status}");
    env.eventually(
        "the removed consumer's Deployment and the removed topic's KafkaTopic go",
        || async {
            deployments.get_opt(&audit).await.unwrap().is_none()
                && env.topics().get_opt(&status_child).await.unwrap().is_none()
        },
    )
    .await;
    assert!(
        deployments.get_opt(&dispatch).await.unwrap().is_some(),
        "the remaining consumer keeps its Deployment"
    );
    assert!(
        env.broker(&[]).await.topics.contains_key(&status),
        "a Retain topic removed from the topology stays on the broker"
    );
    topologies
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}
