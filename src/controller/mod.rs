//! The operator: kube-runtime controllers for `KafkaCluster` and `KafkaTopic`, sharing the
//! planner and the broker layer. Topic reconciles of one cluster are batched (see
//! [`batcher`]); one failing object or one unreachable cluster never stalls the others.

pub mod batcher;
mod cluster;
mod consumer;
mod context;
mod lag_batcher;
mod producer;
pub mod status;
#[cfg(test)]
mod tests;
mod topic;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};

pub use context::{
    rdkafka_connect, rdkafka_lag_connect, Backoff, ConnectFn, Context, LagConnectFn, Registry,
};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use crate::api::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic};
use crate::kafka::BrokerError;

/// The finalizer that holds a KafkaTopic until its broker topic is dealt with.
pub const TOPIC_FINALIZER: &str = "tributary.io/topic";
/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "tributary";
/// `"true"` stops all changes to the resource's topic; status says so.
pub const PAUSED_ANNOTATION: &str = "tributary.io/paused";
/// `"true"` plans and reports pending actions in status without executing them.
pub const DRY_RUN_ANNOTATION: &str = "tributary.io/dry-run";

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// How often every topic is compared with the broker, repairing drift.
    pub resync: Duration,
    /// How long a `Delete` topic whose cluster is unreachable or gone holds its finalizer
    /// before it is orphaned (released without deleting the broker topic).
    pub orphan_grace: Duration,
    /// How long topic reconciles are collected into one broker round trip.
    pub batch_window: Duration,
    /// Most topics in one batch.
    pub max_batch: usize,
    /// How often clusters are probed.
    pub probe_interval: Duration,
    /// First and longest retry delay after an error (doubling in between).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            resync: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(300),
            batch_window: Duration::from_millis(100),
            max_batch: 1000,
            probe_interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Reconcile failures that go back to the controller's error policy (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("rendering: {0}")]
    Render(String),
}

/// Runs both controllers until `shutdown` resolves; in-flight reconciles are allowed to finish.
pub async fn run(
    client: Client,
    options: Options,
    connect: ConnectFn,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let registry = Arc::new(Registry::new(
        connect,
        options.batch_window,
        options.max_batch,
    ));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    let mut tasks = Vec::new();
    for scope in scopes {
        let api = |c: &Client| -> (Api<KafkaCluster>, Api<KafkaTopic>) {
            match &scope {
                None => (Api::all(c.clone()), Api::all(c.clone())),
                Some(ns) => (
                    Api::namespaced(c.clone(), ns),
                    Api::namespaced(c.clone(), ns),
                ),
            }
        };
        let (clusters_api, topics_api) = api(&client);

        let cluster_controller = Controller::new(clusters_api.clone(), watcher::Config::default());
        let clusters = cluster_controller.store();

        let (topics, writer) = reflector::store();
        let trigger = watcher(topics_api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .predicate_filter(topic::trigger_hash, Default::default());
        let topics_of_cluster = {
            let topics = topics.clone();
            move |cluster: KafkaCluster| {
                let ns = cluster.namespace();
                let name = cluster.name_any();
                topics
                    .state()
                    .into_iter()
                    .filter(|t| t.namespace() == ns && t.spec.cluster_ref == name)
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            }
        };
        let topic_controller = Controller::for_stream(trigger, topics.clone()).watches(
            clusters_api,
            watcher::Config::default(),
            topics_of_cluster,
        );

        let (producers_api, deployments_api, services_api): (
            Api<KafkaProducer>,
            Api<Deployment>,
            Api<Service>,
        ) = match &scope {
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
        };
        let producer_controller = Controller::new(producers_api, watcher::Config::default());
        let producers = producer_controller.store();
        let producers_of_topic = move |topic: KafkaTopic| {
            let ns = topic.namespace();
            let name = topic.name_any();
            producers
                .state()
                .into_iter()
                .filter(|p| p.namespace() == ns && p.spec.topics.iter().any(|t| *t == name))
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        };
        let topics_api_for_producers = match &scope {
            None => Api::<KafkaTopic>::all(client.clone()),
            Some(ns) => Api::<KafkaTopic>::namespaced(client.clone(), ns),
        };
        let producer_controller = producer_controller
            .owns(deployments_api, watcher::Config::default())
            .owns(services_api, watcher::Config::default())
            .watches(
                topics_api_for_producers,
                watcher::Config::default(),
                producers_of_topic,
            );

        let (consumers_api, consumer_deployments): (Api<KafkaConsumer>, Api<Deployment>) =
            match &scope {
                None => (Api::all(client.clone()), Api::all(client.clone())),
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                ),
            };
        let consumer_controller = Controller::new(consumers_api, watcher::Config::default());
        let consumers = consumer_controller.store();
        let consumers_of_topic = move |topic: KafkaTopic| {
            let ns = topic.namespace();
            let name = topic.name_any();
            consumers
                .state()
                .into_iter()
                .filter(|c| c.namespace() == ns && c.spec.topics.iter().any(|t| *t == name))
                .map(|c| ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        };
        let topics_api_for_consumers = match &scope {
            None => Api::<KafkaTopic>::all(client.clone()),
            Some(ns) => Api::<KafkaTopic>::namespaced(client.clone(), ns),
        };
        let consumer_controller = consumer_controller
            .owns(consumer_deployments, watcher::Config::default())
            .watches(
                topics_api_for_consumers,
                watcher::Config::default(),
                consumers_of_topic,
            );

        let ctx = Arc::new(Context::new(
            client.clone(),
            options.clone(),
            registry.clone(),
            clusters,
            topics,
        ));
        let s1 = shutdown.clone();
        let s2 = shutdown.clone();
        let s3 = shutdown.clone();
        let c1 = ctx.clone();
        let c3 = ctx.clone();
        let c4 = ctx.clone();
        let s4 = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            consumer_controller
                .graceful_shutdown_on(s4)
                .run(consumer::reconcile, consumer::error_policy, c4)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "KafkaConsumer reconcile");
                    }
                })
                .await
        }));
        tasks.push(tokio::spawn(async move {
            producer_controller
                .graceful_shutdown_on(s3)
                .run(producer::reconcile, producer::error_policy, c3)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "KafkaProducer reconcile");
                    }
                })
                .await
        }));
        tasks.push(tokio::spawn(async move {
            cluster_controller
                .graceful_shutdown_on(s1)
                .run(cluster::reconcile, cluster::error_policy, c1)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "KafkaCluster reconcile");
                    }
                })
                .await
        }));
        tasks.push(tokio::spawn(async move {
            topic_controller
                .graceful_shutdown_on(s2)
                .run(topic::reconcile, topic::error_policy, ctx)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "KafkaTopic reconcile");
                    }
                })
                .await
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!("controllers stopped");
}
