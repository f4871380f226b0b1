//! What every controller shares, whatever its kind: the [`Context`] (Kubernetes client, caches,
//! one broker connection per cluster, per-object backoff, events), the error type and error
//! policy, the controller runner that measures and names every reconcile, kstatus conditions
//! and the metrics registry ([`metrics::Metrics`], held by the Context).

pub mod api_limit;
pub mod batch;
pub mod checked;
mod context;
pub mod events;
pub mod instrumented;
pub mod metrics;
pub mod status;
pub mod telemetry;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::Controller;
use kube::ResourceExt;

pub use context::{
    rdkafka_connect, Backoff, BrokerClients, ClusterConnections, ConnectFn, Connection, Context,
};
pub use telemetry::Synced;
pub use watches::{Index, Shared, WatchBackoff, WatchHealth, Watchable, Watches};

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
    /// Where every watch reports whether it is answering (`/readyz`, `tributary_watch_up`).
    pub watch_health: WatchHealth,
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
            watch_health: WatchHealth::default(),
            metrics: Arc::default(),
        }
    }
}

/// Writes `status` to `object`'s status subresource (server-side apply, this operator's field
/// manager), unless `current` — the status the object was read with — is exactly it: a
/// reconcile that changes nothing writes nothing.
pub async fn write_status<K, S>(
    api: &kube::Api<K>,
    object: &K,
    current: Option<&S>,
    status: &S,
) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &kube::api::PatchParams::apply(FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await?;
    Ok(())
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

/// The error policy of every controller: retry with this object's exponential backoff (a
/// conflict on a shorter one of its own, counted in `tributary_conflicts_total`).
pub fn error_policy<K: kube::Resource<DynamicType = ()>>(
    kind: &'static str,
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> kube::runtime::controller::Action {
    let key = object_key(&*object);
    if conflict(error) {
        ctx.metrics.conflict(kind);
    }
    kube::runtime::controller::Action::requeue(retry_delay(&key, error, &ctx.backoff))
}

/// How long `key` waits before its next reconcile after `error`, logged.
fn retry_delay(key: &str, error: &Error, backoff: &Backoff) -> Duration {
    if conflict(error) {
        // A write based on a cached copy a step behind the API server (the finalizer patch's
        // `test`, or a 409). Nothing is wrong: give the cache time to catch up, on a short
        // backoff of its own that still grows, so conflicts never become a tight loop.
        let (delay, in_a_row) = backoff.next_conflict(key);
        if in_a_row >= CONFLICTS_BEFORE_WARNING {
            tracing::warn!(object = %key, %error, in_a_row, retry_in = ?delay, "conflicts persist: the cache lags the API server or another writer keeps changing the object");
        } else {
            tracing::debug!(object = %key, %error, in_a_row, retry_in = ?delay, "write raced the cache; retrying");
        }
        return delay;
    }
    let delay = backoff.next(key);
    tracing::warn!(object = %key, %error, retry_in = ?delay, "reconcile failed");
    delay
}

/// Conflicts in a row after which each one is logged at warn level.
pub const CONFLICTS_BEFORE_WARNING: u32 = 5;

/// A write refused because the copy it was based on was stale: a 409 Conflict, or a finalizer
/// add/remove whose JSON patch `test` failed against the cached object (422).
pub fn conflict(error: &Error) -> bool {
    use kube::runtime::finalizer::Error as F;
    match error {
        Error::Kube(kube::Error::Api(s)) => s.code == 409,
        Error::Finalizer(e) => match &**e {
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s)) => {
                s.code == 422 || s.code == 409
            }
            F::ApplyFailed(inner) | F::CleanupFailed(inner) => conflict(inner),
            _ => false,
        },
        _ => false,
    }
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

/// Resolves when the operator is asked to stop; every controller and watch holds a clone.
pub type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// A kind the operator runs a controller for: one line in the operator's list of kinds.
pub struct Kind {
    /// The kind's name, as in logs and metrics (`KafkaTopic`).
    pub name: &'static str,
    /// Builds the kind's controller on the shared watches of one scope; the future runs it
    /// until `shutdown`.
    pub controller: fn(&Watches, Arc<Context>, Shutdown) -> BoxFuture<'static, ()>,
}

/// A trigger that fires every `period` once `in_flight` is idle: the periodic resync of a
/// controller's objects, which never starts while the reconciles of the previous one (or any
/// other reconcile of the controller) still run — a resync slower than its period is followed
/// by the next one as soon as it is done, instead of piling onto it.
pub fn every(
    period: Duration,
    in_flight: InFlight,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(in_flight, move |in_flight| async move {
        tokio::time::sleep(period).await;
        in_flight.idle().await;
        Some(((), in_flight))
    })
}

/// Counts a controller's reconciles in progress (cloned handles share the count).
#[derive(Clone, Default)]
pub struct InFlight(Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

/// One reconcile in progress, until dropped.
pub struct Running(InFlight);

impl InFlight {
    /// Marks a reconcile as running until the returned guard is dropped.
    pub fn enter(&self) -> Running {
        self.0 .0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Running(self.clone())
    }

    /// Reconciles running now.
    pub fn count(&self) -> usize {
        self.0 .0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no reconcile runs.
    pub async fn idle(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self
            .0
             .0
             .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0 .0 .1.notify_waiters();
        }
    }
}

#[cfg(test)]
mod resync_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_resync_waits_for_the_previous_reconciles_to_finish() {
        let in_flight = InFlight::default();
        let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fired.clone();
        tokio::spawn(
            every(Duration::from_secs(10), in_flight.clone()).for_each(move |()| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {}
            }),
        );
        let fires = || fired.load(std::sync::atomic::Ordering::SeqCst);
        // A reconcile (say, of the previous resync) runs from 5 s to 25 s.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let running = in_flight.enter();
        tokio::time::sleep(Duration::from_secs(19)).await;
        assert_eq!(fires(), 0, "no resync while a reconcile runs (24 s)");
        drop(running);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(fires(), 1, "the resync fires as soon as it is done");
        // Idle from then on: the next one a period later.
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(fires(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fires(), 2);
    }
}

/// Runs one controller until shutdown with the common error policy, measuring and naming every
/// reconcile, logging reconcile failures.
pub fn run_controller<K, Fut>(
    kind: &'static str,
    controller: Controller<K>,
    reconcile: impl FnMut(Arc<K>, Arc<Context>) -> Fut + Send + 'static,
    ctx: Arc<Context>,
    shutdown: Shutdown,
) -> BoxFuture<'static, ()>
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
        error_policy(kind, object, error, ctx)
    };
    Box::pin(async move {
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

/// A pseudo-random duration below `max`, to spread apart retries that would otherwise fire
/// together.
pub fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    // Each RandomState is seeded afresh: a cheap source of randomness without a crate.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    Duration::from_nanos(h.finish() % nanos)
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
    fn conflicts_are_stale_writes_only() {
        let finalizer = |e| Error::Finalizer(Box::new(e));
        assert!(conflict(&finalizer(F::AddFinalizer(api_error(422)))));
        assert!(conflict(&finalizer(F::RemoveFinalizer(api_error(409)))));
        assert!(conflict(&Error::Kube(api_error(409))));
        assert!(conflict(&finalizer(F::ApplyFailed(Error::Kube(
            api_error(409)
        )))));
        assert!(!conflict(&finalizer(F::AddFinalizer(api_error(500)))));
        assert!(!conflict(&finalizer(F::CleanupFailed(Error::Kube(
            api_error(500)
        )))));
        assert!(!conflict(&Error::Kube(api_error(422))));
        assert!(!conflict(&Error::Render("x".into())));
    }

    /// 200 objects whose finalizer patches keep racing the cache, as when a new cluster's
    /// topics all reconcile at once: the retries spread out and slow down, where a fixed
    /// 200 ms would have made 50 requests a second each.
    #[test]
    fn conflicts_in_a_row_back_off_with_jitter_and_a_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let stale = Error::Finalizer(Box::new(F::AddFinalizer(api_error(422))));
        let mut retries_in_first_minute = 0;
        let mut first_delays = std::collections::BTreeSet::new();
        for object in 0..200 {
            let key = format!("KafkaTopic ns/t{object}");
            let mut elapsed = Duration::ZERO;
            for attempt in 0.. {
                let delay = retry_delay(&key, &stale, &backoff);
                assert!(delay <= Backoff::CONFLICT_MAX, "capped");
                if attempt == 0 {
                    first_delays.insert(delay);
                }
                elapsed += delay;
                if elapsed > Duration::from_secs(60) {
                    break;
                }
                retries_in_first_minute += 1;
            }
        }
        // Doubling from 0.2 s to 10 s: about a dozen retries in the first minute, not 300.
        assert!(
            retries_in_first_minute <= 200 * 15,
            "{retries_in_first_minute} retries in a minute"
        );
        assert!(
            first_delays.len() > 100,
            "jittered: the 200 do not retry together"
        );
    }
}
