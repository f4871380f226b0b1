//! One watch per kind and scope, shared by every controller that needs it.
//!
//! Each kind a controller reconciles, owns or looks at is watched once per watched namespace
//! (or once cluster-wide): its objects go into one cache ([`Store`]) and every change — applied
//! or deleted — is fanned out to each subscriber's stream. Controllers read the caches and build
//! their triggers from the subscriptions ([`Shared::changes`]); nothing watches a kind a second
//! time. Owned children (Deployments, Services) are watched as metadata only: their owners need
//! only their owner references.
//!
//! An index over a cache ([`Index`], registered with [`Shared::index`] before the watches
//! start) sees every event of the watch, in order, before any subscriber hears of it: a
//! controller triggered by a change finds the index already up to date.
//!
//! What no controller reads is dropped from each object as it arrives, before the cache keeps
//! it ([`slim`]): `metadata.managedFields` and kubectl's last-applied-configuration annotation,
//! which together can be larger than the rest of an object (Tributary writes with server-side
//! apply and never reads them).
//!
//! Every watch has its own backoff ([`WatchBackoff`]: 0.5 s doubling to at most 5 s, reset on
//! the first success), so an API server that comes back is seen by every watch within seconds,
//! and one failing watch never delays another.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::checked::{valid_events, Checked, Refusals};

/// What a watched kind must be.
pub trait Watchable:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watchable for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// The watches of one scope: a namespace, or the whole cluster.
pub struct Watches {
    client: Client,
    namespace: Option<String>,
    health: WatchHealth,
    shared: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// The watch loops made so far and not yet started, with the kind each serves.
    unstarted: Mutex<Vec<(&'static str, BoxFuture<'static, ()>)>>,
    /// The kind of every watch made, in order.
    kinds: Mutex<Vec<&'static str>>,
    /// For readiness: one future per watch that resolves once its cache is filled.
    filled: Mutex<Vec<BoxFuture<'static, bool>>>,
}

impl Watches {
    /// `namespace: None` watches every namespace. Each watch reports how it is doing to
    /// `health`.
    pub fn new(client: Client, namespace: Option<String>, health: WatchHealth) -> Self {
        Self {
            client,
            namespace,
            health,
            shared: Mutex::new(HashMap::new()),
            unstarted: Mutex::new(Vec::new()),
            kinds: Mutex::new(Vec::new()),
            filled: Mutex::new(Vec::new()),
        }
    }

    /// The namespace watched, `None` for all.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// An `Api` of `K` in this scope.
    fn api<K: Watchable>(&self) -> Api<K> {
        match &self.namespace {
            None => Api::all(self.client.clone()),
            Some(ns) => Api::namespaced(self.client.clone(), ns),
        }
    }

    /// The one watch of whole `K` objects in this scope, made on first use. An object that is
    /// not what its kind's schema says is refused ([`super::checked`]), never fed to the
    /// controllers nor allowed to fail the watch.
    pub fn objects<K: Watchable>(&self) -> Arc<Shared<K>> {
        let api = self.api::<Checked<K>>();
        let health = (
            self.health.clone(),
            self.namespace.clone().unwrap_or_default(),
        );
        let refusals = Refusals {
            client: Some(self.client.clone()),
        };
        self.shared_or(|| {
            let cache = Arc::new(OnceLock::new());
            let events = watcher(api, watcher::Config::default());
            let stream = valid_events(events, cache.clone(), refusals).boxed();
            let (shared, run) = Shared::reporting(K::kind(&()).into_owned(), stream, Some(health));
            let _ = cache.set(shared.store());
            (shared, run)
        })
    }

    /// The one watch of `K`'s metadata in this scope (for owned children), made on first use.
    pub fn metadata<K: Watchable>(&self) -> Arc<Shared<PartialObjectMeta<K>>> {
        // An `Api` of `PartialObjectMeta<K>` asks the API server for metadata only.
        self.objects::<PartialObjectMeta<K>>()
    }

    fn shared_or<T>(
        &self,
        make: impl FnOnce() -> (Arc<Shared<T>>, BoxFuture<'static, ()>),
    ) -> Arc<Shared<T>>
    where
        T: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let mut shared = self.shared.lock().unwrap();
        if let Some(existing) = shared.get(&TypeId::of::<T>()) {
            if let Ok(s) = existing.clone().downcast::<Shared<T>>() {
                return s;
            }
        }
        let (made, run) = make();
        shared.insert(TypeId::of::<T>(), made.clone());
        let kind: &'static str = made.kind;
        self.kinds.lock().unwrap().push(kind);
        self.filled
            .lock()
            .unwrap()
            .push(super::telemetry::filled(made.store()));
        self.unstarted.lock().unwrap().push((kind, run));
        made
    }

    /// The kinds watched, one entry per watch (for logs and tests).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = self.kinds.lock().unwrap().clone();
        kinds.sort_unstable();
        kinds
    }

    /// One future per watch made so far (taken once), resolving when its cache is filled.
    pub fn filled(&self) -> Vec<BoxFuture<'static, bool>> {
        std::mem::take(&mut *self.filled.lock().unwrap())
    }

    /// Starts every watch made so far; each runs until `shutdown` resolves.
    pub fn start(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Clone + Send + 'static,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let unstarted = std::mem::take(&mut *self.unstarted.lock().unwrap());
        unstarted
            .into_iter()
            .map(|(kind, run)| {
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = run => tracing::debug!(kind, "watch ended"),
                        _ = shutdown => {}
                    }
                })
            })
            .collect()
    }
}

/// Something kept in step with one kind's watch, event by event: an index over its cache that
/// answers in O(1) what a scan of [`Store::state`] would.
///
/// It sees the events in the order the watch delivers them, each after the cache has taken it
/// and before any subscriber hears of the change. After a relist (`Init`, `InitApply`…,
/// `InitDone`, as after a 410 Gone) the cache is replaced at `InitDone` and objects deleted
/// while the watch was down vanish without a `Delete` event: an index must then be rebuilt
/// from the `InitApply` objects, not merely added to.
pub trait Index<K>: Send + Sync {
    fn observe(&self, event: &Event<K>);
}

/// Changes a subscriber may have queued before the watch waits for it.
const SUBSCRIBER_QUEUE: usize = 256;

/// One kind's watch: its cache, the indexes over it and the subscribers to its changes.
pub struct Shared<K: Resource<DynamicType = ()> + 'static> {
    kind: &'static str,
    store: Store<K>,
    indexes: Arc<Mutex<Vec<Arc<dyn Index<K>>>>>,
    subscribers: Arc<Mutex<Vec<mpsc::Sender<Arc<K>>>>>,
    /// Set once the watch runs: an index registered later would have missed events.
    started: Arc<AtomicBool>,
}

/// The annotation `kubectl apply` (client-side) keeps a full copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no controller reads from an object before it is cached: its managed fields and
/// kubectl's copy of the last applied configuration.
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// A watch over `events` that reports to no [`WatchHealth`].
    #[cfg(test)]
    fn new(
        kind: String,
        events: futures::stream::BoxStream<'static, watcher::Result<Event<K>>>,
    ) -> (Arc<Self>, BoxFuture<'static, ()>) {
        Self::reporting(kind, events, None)
    }

    /// A watch over `events`, telling `health` (with the watch's namespace) when the watch
    /// fails and when it answers again.
    fn reporting(
        kind: String,
        events: futures::stream::BoxStream<'static, watcher::Result<Event<K>>>,
        health: Option<(WatchHealth, String)>,
    ) -> (Arc<Self>, BoxFuture<'static, ()>) {
        let kind: &'static str = Box::leak(kind.into_boxed_str());
        let (store, writer) = reflector::store();
        let listed = store.clone();
        let indexes: Arc<Mutex<Vec<Arc<dyn Index<K>>>>> = Arc::default();
        let subscribers: Arc<Mutex<Vec<mpsc::Sender<Arc<K>>>>> = Arc::default();
        let started = Arc::new(AtomicBool::new(false));
        let (to_index, fan_out) = (indexes.clone(), subscribers.clone());
        let (starting, registered) = (started.clone(), indexes.clone());
        let mut answering: Option<bool> = None;
        let watch = events
            .backoff(WatchBackoff::default())
            .modify(slim)
            .reflect(writer)
            .for_each(move |event| {
                // Told only when the watch turns from answering to failing or back: the first
                // failure's time is kept, and the hot path takes no lock.
                if let Some((health, namespace)) = &health {
                    if answering.replace(event.is_ok()) != Some(event.is_ok()) {
                        health.report(kind, namespace, event.is_ok());
                    }
                }
                if let Ok(event) = &event {
                    for index in to_index.lock().unwrap().iter() {
                        index.observe(event);
                    }
                }
                let changed: Vec<Arc<K>> = match event {
                    Ok(Event::Apply(o) | Event::Delete(o)) => vec![Arc::new(o)],
                    // A (re)list is told once it is whole, from the cache it replaced: a relisted
                    // object told earlier would not be in the cache yet when its controller
                    // looked (an object created while the watch was down would be missed).
                    Ok(Event::InitDone) => listed.state(),
                    Ok(Event::Init | Event::InitApply(_)) => Vec::new(),
                    Err(e) => {
                        tracing::warn!(kind, error = %e, "watch failed; retrying with backoff");
                        Vec::new()
                    }
                };
                // Each subscriber's queue is bounded: a controller that falls behind holds the
                // watch back (as a watch of its own would be held) rather than letting old
                // versions of objects pile up in memory.
                let senders: Vec<mpsc::Sender<Arc<K>>> = {
                    let mut subscribers = fan_out.lock().unwrap();
                    subscribers.retain(|s| !s.is_closed());
                    subscribers.clone()
                };
                async move {
                    for object in changed {
                        for sender in &senders {
                            let _ = sender.send(object.clone()).await;
                        }
                    }
                }
            });
        let run = async move {
            {
                // Under the indexes' lock: an index is either registered before the first
                // event or refused, never half in.
                let _registering = registered.lock().unwrap();
                starting.store(true, Ordering::SeqCst);
            }
            watch.await;
        }
        .boxed();
        let shared = Arc::new(Self {
            kind,
            store,
            indexes,
            subscribers,
            started,
        });
        (shared, run)
    }

    /// Keeps `index` in step with this watch from its first event on.
    ///
    /// # Panics
    ///
    /// When the watch has already started ([`Watches::start`]): the index would have missed
    /// the events before it. Controllers register their indexes while they are built.
    pub fn index(&self, index: Arc<dyn Index<K>>) {
        let mut indexes = self.indexes.lock().unwrap();
        assert!(
            !self.started.load(Ordering::SeqCst),
            "an index over the {} watch registered after the watch started",
            self.kind
        );
        indexes.push(index);
    }

    /// The cache, filled by the one watch.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every change of an object of this kind from now on (applied or deleted; a deleted
    /// object is no longer in [`Shared::store`] when its change arrives).
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
        self.subscribers.lock().unwrap().push(tx);
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|object| (object, rx))
        })
    }

    /// The changes that call for a reconcile of the object itself: those that change what
    /// `trigger` hashes (e.g. [`super::spec_trigger`]: spec and metadata, not status), and
    /// every deletion.
    pub fn changes(
        &self,
        trigger: fn(&K) -> Option<u64>,
    ) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let store = self.store.clone();
        let mut seen: HashMap<ObjectRef<K>, u64> = HashMap::new();
        self.subscribe().filter(move |object| {
            let key = ObjectRef::from_obj(&**object);
            let pass = if store.get(&key).is_none() {
                // Deleted: forget it, and let the controller look (it finds nothing to do
                // unless a finalizer still holds the object).
                seen.remove(&key);
                true
            } else {
                match trigger(object) {
                    Some(hash) => seen.insert(key, hash) != Some(hash),
                    None => true,
                }
            };
            futures::future::ready(pass)
        })
    }
}

impl<K: Resource<DynamicType = ()>> Debug for Shared<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("kind", &self.kind).finish()
    }
}

/// How every watch is doing: for each kind and namespace (empty: all namespaces), since when
/// its requests have been failing, if they are. Shared by every scope's [`Watches`], read by
/// `/readyz` and the `tributary_watch_up` gauge.
#[derive(Debug, Clone, Default)]
pub struct WatchHealth(Arc<Mutex<BTreeMap<WatchKey, Option<Instant>>>>);

/// A watch: its kind and namespace (empty: all namespaces).
type WatchKey = (&'static str, String);

impl WatchHealth {
    /// How long a watch may fail before the operator stops being ready: longer than a few
    /// backoff rounds ([`WatchBackoff::MAX`] is 5 s), shorter than anyone waits for an edit.
    pub const DOWN_BOUND: Duration = Duration::from_secs(30);

    /// One answer of the watch of `kind` in `namespace`: an event (`ok`) or an error.
    pub fn report(&self, kind: &'static str, namespace: &str, ok: bool) {
        let mut watches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let since = watches.entry((kind, namespace.to_owned())).or_default();
        if ok {
            *since = None;
        } else if since.is_none() {
            *since = Some(Instant::now());
        }
    }

    /// `(kind, namespace, up)` of every watch that has answered at least once.
    pub fn states(&self) -> Vec<(&'static str, String, bool)> {
        let watches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        watches
            .iter()
            .map(|((kind, namespace), since)| (*kind, namespace.clone(), since.is_none()))
            .collect()
    }

    /// The watches that have been failing for longer than `bound`, as `Kind in namespace for
    /// N s`, for the `/readyz` body.
    pub fn down_longer_than(&self, bound: Duration) -> Vec<String> {
        let watches = self.0.lock().unwrap_or_else(|e| e.into_inner());
        watches
            .iter()
            .filter_map(|((kind, namespace), since)| {
                let down = since.map(|s| s.elapsed()).filter(|d| *d > bound)?;
                let place = if namespace.is_empty() {
                    "all namespaces".to_owned()
                } else {
                    format!("namespace {namespace}")
                };
                Some(format!("{kind} in {place} for {} s", down.as_secs()))
            })
            .collect()
    }
}

/// The backoff of one watch: 0.5 s doubling to at most 5 s, with up to 25% jitter, back to
/// 0.5 s after the first event that arrives.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    pub const FIRST: Duration = Duration::from_millis(500);
    pub const MAX: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay + super::jitter(delay / 4))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    #[test]
    fn watch_health_tracks_since_when_each_watch_fails() {
        let health = WatchHealth::default();
        health.report("KafkaTopic", "booking", true);
        health.report("Deployment", "", false);
        assert_eq!(
            health.states(),
            [
                ("Deployment", String::new(), false),
                ("KafkaTopic", "booking".to_owned(), true)
            ]
        );
        std::thread::sleep(Duration::from_millis(20));
        // A second failure keeps the first one's time.
        health.report("Deployment", "", false);
        assert_eq!(
            health.down_longer_than(Duration::from_millis(10)),
            ["Deployment in all namespaces for 0 s"]
        );
        assert!(health.down_longer_than(Duration::from_secs(60)).is_empty());
        health.report("Deployment", "", true);
        assert!(health.down_longer_than(Duration::ZERO).is_empty());
    }

    #[tokio::test]
    async fn a_watch_reports_its_failures_and_recovery() {
        let health = WatchHealth::default();
        let events: Vec<watcher::Result<Event<ConfigMap>>> = vec![
            Ok(Event::Init),
            Ok(Event::InitDone),
            Err(watcher::Error::NoResourceVersion),
        ];
        let (_shared, run) = Shared::reporting(
            "ConfigMap".into(),
            futures::stream::iter(events).boxed(),
            Some((health.clone(), "ns".into())),
        );
        run.await;
        assert_eq!(health.states(), [("ConfigMap", "ns".to_owned(), false)]);
    }

    #[test]
    fn a_watch_backs_off_to_five_seconds_at_most_and_resets_on_success() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next().unwrap()).collect();
        for (delay, nominal_ms) in delays
            .iter()
            .zip([500u64, 1000, 2000, 4000, 5000, 5000, 5000])
        {
            let nominal = Duration::from_millis(nominal_ms);
            assert!(
                *delay >= nominal && *delay <= nominal + nominal / 4,
                "{delay:?} for {nominal:?}"
            );
        }
        assert!(delays
            .iter()
            .all(|d| *d <= WatchBackoff::MAX + WatchBackoff::MAX / 4));
        backoff.reset();
        assert!(backoff.next().unwrap() <= WatchBackoff::FIRST + WatchBackoff::FIRST / 4);
    }

    fn config_map(name: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some("ns".into());
        c
    }

    /// Records each event it observes, with what the cache held and what the subscriber had
    /// been told by then.
    struct Recorder {
        store: Mutex<Option<Store<ConfigMap>>>,
        told: Mutex<Option<futures::stream::BoxStream<'static, Arc<ConfigMap>>>>,
        seen: Mutex<Vec<String>>,
    }

    impl Index<ConfigMap> for Recorder {
        fn observe(&self, event: &Event<ConfigMap>) {
            let what = match event {
                Event::Apply(c) => format!("Apply {}", c.metadata.name.as_deref().unwrap()),
                Event::Delete(c) => format!("Delete {}", c.metadata.name.as_deref().unwrap()),
                Event::Init => "Init".to_owned(),
                Event::InitApply(c) => {
                    format!("InitApply {}", c.metadata.name.as_deref().unwrap())
                }
                Event::InitDone => "InitDone".to_owned(),
            };
            let store = self.store.lock().unwrap().clone().unwrap();
            let mut cached: Vec<String> = store
                .state()
                .iter()
                .map(|c| c.metadata.name.clone().unwrap())
                .collect();
            cached.sort();
            let mut told = Vec::new();
            if let Some(subscribed) = self.told.lock().unwrap().as_mut() {
                while let Some(Some(c)) = subscribed.next().now_or_never() {
                    told.push(c.metadata.name.clone().unwrap_or_default());
                }
            }
            self.seen.lock().unwrap().push(format!(
                "{what}: cached [{}], subscribers told of [{}]",
                cached.join(","),
                told.join(",")
            ));
        }
    }

    #[tokio::test]
    async fn an_index_sees_every_event_after_the_cache_and_before_the_subscribers() {
        let events = vec![
            Event::Init,
            Event::InitApply(config_map("a")),
            Event::InitDone,
            Event::Apply(config_map("b")),
            Event::Delete(config_map("a")),
        ];
        let stream = futures::stream::iter(events.into_iter().map(Ok)).boxed();
        let (shared, run) = Shared::new("ConfigMap".into(), stream);
        let recorder = Arc::new(Recorder {
            store: Mutex::new(Some(shared.store())),
            told: Mutex::new(Some(shared.subscribe().boxed())),
            seen: Mutex::default(),
        });
        shared.index(recorder.clone());
        run.await;
        assert_eq!(
            *recorder.seen.lock().unwrap(),
            [
                "Init: cached [], subscribers told of []",
                // A relisted object is cached at InitDone (the cache is swapped then), and told
                // then.
                "InitApply a: cached [], subscribers told of []",
                "InitDone: cached [a], subscribers told of []",
                "Apply b: cached [a,b], subscribers told of [a]",
                "Delete a: cached [b], subscribers told of [b]",
            ]
        );
    }

    #[tokio::test]
    async fn the_cache_keeps_no_managed_fields_nor_kubectls_last_applied_copy() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
        let mut fat = config_map("a");
        fat.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            ..Default::default()
        }]);
        fat.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED.to_owned(), "{\"a copy\": true}".to_owned()),
            ("tributary.io/paused".to_owned(), "true".to_owned()),
        ]));
        let stream = futures::stream::iter([Ok(Event::Apply(fat))]).boxed();
        let (shared, run) = Shared::new("ConfigMap".into(), stream);
        let told = shared.subscribe();
        run.await;
        let cached = shared.store().state();
        let told: Vec<Arc<ConfigMap>> = told.take(1).collect().await;
        for object in [&cached[0], &told[0]] {
            assert_eq!(object.metadata.managed_fields, None);
            assert_eq!(
                object.metadata.annotations,
                Some(BTreeMap::from([(
                    "tributary.io/paused".to_owned(),
                    "true".to_owned()
                )])),
                "other annotations are kept"
            );
        }
    }

    #[test]
    #[should_panic(expected = "registered after the watch started")]
    fn an_index_registered_after_the_watch_started_is_refused() {
        let (shared, mut run) =
            Shared::<ConfigMap>::new("ConfigMap".into(), futures::stream::pending().boxed());
        assert!((&mut run).now_or_never().is_none(), "the watch runs");
        let recorder = Arc::new(Recorder {
            store: Mutex::new(Some(shared.store())),
            told: Mutex::new(None),
            seen: Mutex::default(),
        });
        shared.index(recorder);
    }
}
