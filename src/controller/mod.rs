//! The operator: kube-runtime controllers for `KafkaCluster`, `KafkaTopic`, `KafkaProducer`
//! and `KafkaConsumer`, sharing the planner and the broker layer. Broker work of one cluster is
//! batched (topics: [`batcher`]; consumer lag: `lag_batcher`); one failing object or one
//! unreachable cluster never stalls the others.

pub mod batcher;
mod cluster;
mod consumer;
mod context;
mod lag_batcher;
mod producer;
pub mod status;
mod telemetry;
#[cfg(test)]
mod tests;
mod topic;
mod topology;
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
pub use telemetry::Synced;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use crate::api::{KafkaCluster, KafkaConsumer, KafkaProducer, KafkaTopic, StreamTopology};
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
    /// Set by [`run`] once every controller's cache has been filled (readiness).
    pub synced: Synced,
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
            synced: Synced::default(),
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

/// `Kind namespace/name`: how an object is named in logs and in the backoff table.
pub(crate) fn object_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The error policy of every controller: retry with this object's exponential backoff.
fn error_policy<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> kube::runtime::controller::Action {
    let key = object_key(&*object);
    if stale_finalizer_patch(error) {
        // The finalizer patch tests the object as cached; a cache a step behind the API server
        // makes that test fail. Nothing is wrong: look again shortly, without backing off.
        tracing::debug!(object = %key, "finalizer patch raced the cache; retrying");
        return kube::runtime::controller::Action::requeue(Duration::from_millis(200));
    }
    let delay = ctx.backoff.next(&key);
    tracing::warn!(object = %key, %error, retry_in = ?delay, "reconcile failed");
    kube::runtime::controller::Action::requeue(delay)
}

/// A finalizer add/remove refused because the cached object was stale (422 from the JSON
/// patch's `test`, or 409).
fn stale_finalizer_patch(error: &Error) -> bool {
    use kube::runtime::finalizer::Error as F;
    match error {
        Error::Finalizer(e) => matches!(
            &**e,
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s)) if s.code == 422 || s.code == 409
        ),
        _ => false,
    }
}

/// A cache of `K` and the stream of its changes that call for a reconcile: those that change
/// what `trigger` hashes (e.g. [`spec_trigger`]: spec and metadata, not status).
fn changes<K>(
    api: Api<K>,
    trigger: fn(&K) -> Option<u64>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger, Default::default());
    (store, stream)
}

/// What makes an object worth reconciling again by itself: its spec (generation), labels,
/// annotations, deletion and finalizers — not its status.
fn spec_trigger<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.uid.hash(&mut h);
    meta.generation.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    meta.finalizers.hash(&mut h);
    Some(h.finish())
}

/// The namespace (or all namespaces) one set of controllers watches.
struct Scope<'a> {
    client: &'a Client,
    namespace: Option<&'a str>,
}

impl Scope<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self.namespace {
            None => Api::all(self.client.clone()),
            Some(ns) => Api::namespaced(self.client.clone(), ns),
        }
    }
}

/// The objects in `store` of `object`'s namespace that `refers` says point at it.
fn referring<K, O>(
    store: &reflector::Store<K>,
    object: &O,
    refers: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    O: kube::Resource,
{
    store
        .state()
        .into_iter()
        .filter(|k| k.namespace() == object.namespace() && refers(k))
        .map(|k| ObjectRef::from_obj(&*k))
        .collect()
}

/// Runs one controller until shutdown, logging reconcile failures.
fn spawn_controller<K, Fut>(
    kind: &'static str,
    controller: Controller<K>,
    reconcile: impl FnMut(Arc<K>, Arc<Context>) -> Fut + Send + 'static,
    error_policy: impl Fn(Arc<K>, &Error, Arc<Context>) -> kube::runtime::controller::Action
        + Send
        + Sync
        + 'static,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = Result<kube::runtime::controller::Action, Error>>
        + Send
        + 'static,
{
    // Every reconcile (and its error policy) runs in a span naming the object, and is counted.
    let mut reconcile = reconcile;
    let reconcile = move |object: Arc<K>, ctx: Arc<Context>| {
        use tracing::Instrument;
        let span = telemetry::span(kind, &*object);
        telemetry::measured(kind, reconcile(object, ctx)).instrument(span)
    };
    let error_policy = move |object: Arc<K>, error: &Error, ctx: Arc<Context>| {
        let _entered = telemetry::span(kind, &*object).entered();
        error_policy(object, error, ctx)
    };
    tokio::spawn(async move {
        controller
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx)
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(kind, error = %e, "reconcile");
                }
            })
            .await
    })
}

/// Runs every controller until `shutdown` resolves; in-flight reconciles are allowed to finish.
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
    // For readiness (every cache filled) and the gauges read from the caches at each scrape.
    let (mut filled, mut topic_stores, mut consumer_stores) = (Vec::new(), Vec::new(), Vec::new());
    for scope in scopes {
        let scoped = Scope {
            client: &client,
            namespace: scope.as_deref(),
        };
        let config = watcher::Config::default;

        let cluster_controller = Controller::new(scoped.api::<KafkaCluster>(), config());
        let clusters = cluster_controller.store();
        filled.push(telemetry::filled(clusters.clone()));

        let (topics, trigger) = changes(scoped.api::<KafkaTopic>(), topic::trigger_hash);
        filled.push(telemetry::filled(topics.clone()));
        topic_stores.push(topics.clone());
        let topics_of_cluster = {
            let topics = topics.clone();
            move |cluster: KafkaCluster| {
                referring(&topics, &cluster, |t: &KafkaTopic| {
                    t.spec.cluster_ref == cluster.name_any()
                })
            }
        };
        // Resync: every topic of every cluster at once, so the periodic drift check is a few
        // large broker round trips instead of one per topic spread over the period.
        let resync = options.resync;
        let ticks = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(resync).await;
            Some(((), ()))
        });
        let topic_controller = Controller::for_stream(trigger, topics.clone())
            .watches(scoped.api::<KafkaCluster>(), config(), topics_of_cluster)
            .reconcile_all_on(ticks);

        // Producers, consumers and topologies reconcile on changes to their spec, metadata or
        // what they own or watch, never on their own status writes (a consumer's status changes
        // with every lag observation: reacting to it would observe again at once).
        let (producers, producer_trigger) = changes(scoped.api::<KafkaProducer>(), spec_trigger);
        let producer_controller = Controller::for_stream(producer_trigger, producers.clone());
        let producer_store = producers.clone();
        filled.push(telemetry::filled(producers.clone()));
        let producer_controller = producer_controller
            .owns(scoped.api::<Deployment>(), config())
            .owns(scoped.api::<Service>(), config())
            .watches(
                scoped.api::<KafkaTopic>(),
                config(),
                move |topic: KafkaTopic| {
                    referring(&producers, &topic, |p: &KafkaProducer| {
                        p.spec.topics.contains(&topic.name_any())
                    })
                },
            );

        let (consumers, consumer_trigger) = changes(scoped.api::<KafkaConsumer>(), spec_trigger);
        let consumer_controller = Controller::for_stream(consumer_trigger, consumers.clone());
        let consumer_store = consumers.clone();
        filled.push(telemetry::filled(consumers.clone()));
        consumer_stores.push(consumers.clone());
        let consumer_controller = consumer_controller
            .owns(scoped.api::<Deployment>(), config())
            .watches(
                scoped.api::<KafkaTopic>(),
                config(),
                move |topic: KafkaTopic| {
                    referring(&consumers, &topic, |c: &KafkaConsumer| {
                        c.spec.topics.contains(&topic.name_any())
                    })
                },
            );

        let ctx = Arc::new(Context::new(
            client.clone(),
            options.clone(),
            registry.clone(),
            clusters,
            topics,
        ));
        tasks.push(spawn_controller(
            "KafkaCluster",
            cluster_controller,
            cluster::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaTopic",
            topic_controller,
            topic::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaProducer",
            producer_controller,
            producer::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        tasks.push(spawn_controller(
            "KafkaConsumer",
            consumer_controller,
            consumer::reconcile,
            error_policy,
            ctx.clone(),
            shutdown.clone(),
        ));
        // A topology reconciles when it or any child it owns changes.
        let (topologies, topology_trigger) = changes(scoped.api::<StreamTopology>(), spec_trigger);
        filled.push(telemetry::filled(topologies.clone()));
        let topology_controller = Controller::for_stream(topology_trigger, topologies)
            .owns(scoped.api::<KafkaTopic>(), config())
            .owns(scoped.api::<KafkaProducer>(), config())
            .owns(scoped.api::<KafkaConsumer>(), config());
        let children = topology::Children {
            producers: producer_store,
            consumers: consumer_store,
        };
        tasks.push(spawn_controller(
            "StreamTopology",
            topology_controller,
            move |object, ctx| topology::reconcile(object, ctx, children.clone()),
            error_policy,
            ctx,
            shutdown.clone(),
        ));
    }
    let _gauges =
        crate::metrics::global().collect_from(telemetry::gauges(topic_stores, consumer_stores));
    let synced = tokio::spawn(telemetry::wait_synced(filled, options.synced.clone()));
    for task in tasks {
        let _ = task.await;
    }
    synced.abort();
    tracing::info!("controllers stopped");
}

#[cfg(test)]
mod error_policy_tests {
    use super::*;
    use kube::runtime::finalizer::Error as F;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..Default::default()
        }))
    }

    #[test]
    fn only_stale_finalizer_patches_skip_the_backoff() {
        assert!(stale_finalizer_patch(&Error::Finalizer(Box::new(
            F::AddFinalizer(api_error(422))
        ))));
        assert!(stale_finalizer_patch(&Error::Finalizer(Box::new(
            F::RemoveFinalizer(api_error(409))
        ))));
        assert!(!stale_finalizer_patch(&Error::Finalizer(Box::new(
            F::AddFinalizer(api_error(500))
        ))));
        assert!(!stale_finalizer_patch(&Error::Kube(api_error(422))));
        assert!(!stale_finalizer_patch(&Error::Render("x".into())));
    }
}
