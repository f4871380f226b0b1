//! The in-process API server (this crate), driven only through the real kube
//! client and kube-runtime: every feature the controller tests rely on, one test each, a module
//! per feature. This file holds the helpers they share.

mod clients;
mod controller;
mod crud;
mod deletion;
mod discovery;
mod faults;
mod patches;
mod ssa;
mod validation;
mod watch;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta};
use kube::core::Status;
use kube::{Client, Resource};
use kube_emulator::ApiServer;
use serde_json::{json, Value};
use tributary::api::{crds, KafkaCluster, KafkaClusterSpec, KafkaTopic, KafkaTopicSpec};

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (ApiServer, Client) {
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    let client = api.client();
    (api, client)
}

fn topic(name: &str, partitions: i32) -> KafkaTopic {
    KafkaTopic::new(
        name,
        KafkaTopicSpec {
            cluster_ref: "main".into(),
            topic_name: None,
            partitions,
            replication_factor: None,
            config: BTreeMap::new(),
            deletion_policy: Default::default(),
        },
    )
}

fn cluster(name: &str) -> KafkaCluster {
    KafkaCluster::new(
        name,
        KafkaClusterSpec {
            bootstrap_servers: vec!["kafka-0:9092".into()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: None,
        },
    )
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn topics_api(client: &Client) -> Api<KafkaTopic> {
    Api::namespaced(client.clone(), "default")
}

/// The `Status` of a failed call.
fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn dynamic_topics(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<KafkaTopic>(&()),
    )
}

fn raw_topic(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_event<S, T>(stream: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, kube::Error>> + Unpin,
    T: std::fmt::Debug,
{
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a watch event in time")
        .expect("the watch stream goes on")
        .expect("a watch event, not an error")
}

fn managers(obj: &impl Resource) -> Vec<(String, String, String)> {
    obj.meta()
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn owned_fields(obj: &impl Resource, manager: &str) -> String {
    obj.meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(manager))
        .map(|m| serde_json::to_string(&m.fields_v1).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

fn applied_topic(partitions: i32, config: &[(&str, &str)]) -> Value {
    let config: BTreeMap<&str, &str> = config.iter().cloned().collect();
    json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"clusterRef": "main", "partitions": partitions, "config": config},
    })
}
