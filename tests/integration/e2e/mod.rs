//! The operator end to end: the real controllers (in process) against the in-process
//! Kubernetes API-server emulator and a real Kafka-protocol broker (Tansu from the harness, or
//! `TRIBUTARY_TEST_BOOTSTRAP`). This module is the harness (start, Running) and the helpers the
//! subjects share; a module per subject.

pub mod day2;
mod hostile;
mod offset_resets;
mod runtime_behaviour;
mod tls;
mod topics;
mod topologies;
mod users;
mod workloads;

use std::time::Duration;

use crate::support::broker::broker;
use crate::support::scenarios::Env;
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
    start_with_crds(&crds::all()).await
}

/// [`start`], with the API server serving `crds` (e.g. looser than Tributary's own).
async fn start_with_crds(
    crds: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition],
) -> Running {
    start_with(crds, options()).await
}

/// [`start`], with the API server serving `crds` and the operator running with `options`.
async fn start_with(
    crds: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition],
    options: Options,
) -> Running {
    start_connected(crds, options, runtime::rdkafka_connect()).await
}

/// [`start_with`], the operator opening its broker clients with `connect` (e.g. an in-memory
/// group admin beside the real broker's clients).
async fn start_connected(
    crds: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition],
    options: Options,
    connect: runtime::ConnectFn,
) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let api = ApiServer::start().await;
    api.register_crds(crds);
    api.create_namespace(NAMESPACE);
    let env = Env {
        client: api.client(),
        namespace: NAMESPACE.into(),
        bootstrap: broker().bootstrap.clone(),
        patience: Duration::from_secs(30),
    };
    let (stop, operator) = spawn_operator(&api, options, connect);
    env.apply_cluster("local", &env.bootstrap).await;
    Running {
        api,
        env,
        stop: Some(stop),
        operator: Some(operator),
    }
}

/// The operator's controllers against `api`, until the sender is used.
fn spawn_operator(
    api: &ApiServer,
    options: Options,
    connect: runtime::ConnectFn,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let operator = tokio::spawn(operator::run_controllers(
        api.client(),
        options,
        connect,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, operator)
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
