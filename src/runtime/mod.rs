//! What every controller shares, whatever its kind: the [`Context`] (Kubernetes client, caches,
//! one broker connection per cluster, per-object backoff, events), the error type and error
//! policy, the controller runner that measures and names every reconcile, kstatus conditions
//! and the metrics registry ([`metrics::Metrics`], held by the Context).

pub mod batch;
mod context;
pub mod instrumented;
pub mod metrics;
pub mod status;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};

pub use context::{
    rdkafka_connect, Backoff, BrokerClients, ClusterConnections, ConnectFn, Connection, Context,
};
pub use telemetry::Synced;

use crate::kafka::BrokerError;

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
    /// The registry the controllers record into and `/metrics` serves (the process shares it
    /// with its HTTP endpoint; each [`Context`] holds it).
    pub metrics: Arc<metrics::Metrics>,
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
            metrics: Arc::default(),
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

impl Error {
    /// The `result` label of a reconcile that failed with this error
    /// (`tributary_reconciles_total`). Every failure is `error`, as dashboards and alerts
    /// select it; a finer split would be decided here, per variant.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) | Error::Broker(_) | Error::Finalizer(_) | Error::Render(_) => "error",
        }
    }
}

/// `Kind namespace/name`: how an object is named in logs and in the backoff table.
pub fn object_key<K: kube::Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The error policy of every controller: retry with this object's exponential backoff.
pub fn error_policy<K: kube::Resource<DynamicType = ()>>(
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
pub fn changes<K>(
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
pub fn spec_trigger<K: kube::Resource>(object: &K) -> Option<u64> {
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
pub struct Scope<'a> {
    pub client: &'a Client,
    pub namespace: Option<&'a str>,
}

impl Scope<'_> {
    pub fn api<K>(&self) -> Api<K>
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
pub fn referring<K, O>(
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
pub fn spawn_controller<K, Fut>(
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
        let metrics = ctx.metrics.clone();
        telemetry::measured(kind, metrics, reconcile(object, ctx)).instrument(span)
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
