//! What reconciles share: the Kubernetes client, the caches, one broker connection and
//! batcher per cluster, per-object backoff and the event recorder.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::events::Recorder;
use super::instrumented::{Instrumented, RequestCounter};
use super::metrics::Metrics;
use super::Options;
use crate::api::{KafkaCluster, KafkaTopic};
use crate::kafka::identity::IdentityAdmin;
use crate::kafka::lag::LagObserver;
use crate::kafka::offsets::GroupAdmin;
use crate::kafka::{BrokerAdmin, BrokerError, ClientSettings, KubeSecrets, RdKafkaAdmin};

/// The broker clients of one cluster: admin access, lag observation and identities (ACLs,
/// SCRAM credentials).
pub struct BrokerClients {
    pub admin: Arc<dyn BrokerAdmin>,
    pub lag: Arc<dyn LagObserver>,
    pub identity: Arc<dyn IdentityAdmin>,
    pub groups: Arc<dyn GroupAdmin>,
}

/// Opens the broker clients of a cluster (librdkafka in production, one client for both; in
/// tests, in-memory brokers).
pub type ConnectFn =
    Arc<dyn Fn(&ClientSettings) -> Result<BrokerClients, BrokerError> + Send + Sync>;

/// The production [`ConnectFn`]: one librdkafka client per cluster, behind the admin, the lag
/// observer (which reports group members), the identity admin and the group admin.
pub fn rdkafka_connect() -> ConnectFn {
    Arc::new(|settings| {
        let admin = RdKafkaAdmin::connect(settings)?;
        let lag = admin.lag_observer().describe_members(true);
        let identity = admin.identity_admin();
        let groups = admin.group_admin();
        Ok(BrokerClients {
            admin: Arc::new(admin),
            lag: Arc::new(lag),
            identity: Arc::new(identity),
            groups: Arc::new(groups),
        })
    })
}

/// Shared state of the reconcilers.
pub struct Context {
    pub client: Client,
    pub options: Options,
    /// The registry the reconciles record into (the one `/metrics` serves).
    pub metrics: Arc<Metrics>,
    pub connections: Arc<ClusterConnections>,
    pub clusters: Store<KafkaCluster>,
    pub topics: Store<KafkaTopic>,
    pub recorder: Recorder,
    pub backoff: Backoff,
    /// KafkaTopics another controller saw out of step with the broker (a consumer's lag pass
    /// found the topic missing): the KafkaTopic controller reconciles them now rather than at
    /// its next resync.
    pub topic_checks: tokio::sync::broadcast::Sender<ObjectRef<KafkaTopic>>,
}

impl Context {
    pub fn new(
        client: Client,
        options: Options,
        connections: Arc<ClusterConnections>,
        clusters: Store<KafkaCluster>,
        topics: Store<KafkaTopic>,
    ) -> Self {
        let reporter = Reporter {
            controller: "tributary".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let backoff = Backoff::new(options.backoff_base, options.backoff_max);
        // Every reconcile's API requests go through one bound (watches excepted).
        let client = super::api_limit::limited(client, super::api_limit::API_REQUESTS_AT_ONCE);
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: options.metrics.clone(),
            options,
            connections,
            clusters,
            topics,
            backoff,
            topic_checks: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Asks the KafkaTopic controller to reconcile `topic` now (nobody listening: nothing).
    pub fn check_topic(&self, topic: ObjectRef<KafkaTopic>) {
        let _ = self.topic_checks.send(topic);
    }

    /// The KafkaTopics to reconcile now ([`Context::check_topic`]), from the subscription on.
    pub fn topic_checks(
        &self,
    ) -> impl futures::Stream<Item = ObjectRef<KafkaTopic>> + Send + 'static {
        use tokio::sync::broadcast::error::RecvError;
        futures::stream::unfold(self.topic_checks.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(topic) => return Some((topic, rx)),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Publishes a Kubernetes Event about `object` (failures to publish are only logged).
    pub async fn publish<K: kube::Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        self.publish_action(object, type_, reason, "Reconcile", note)
            .await;
    }

    /// [`Context::publish`] with its own `action`. Events of one object with the same type,
    /// reason and action are counted as one series, which keeps its first note: an action per
    /// kind of change (e.g. `Scale1To3`) gives each its own Event and note.
    pub async fn publish_action<K: kube::Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: action.chars().take(128).collect(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::debug!(error = %e, "publishing an event failed");
        }
    }

    /// The KafkaCluster `name` in `namespace`, from the cache (one lookup, no scan).
    pub fn cluster(&self, namespace: Option<&str>, name: &str) -> Option<Arc<KafkaCluster>> {
        let key = ObjectRef::new(name);
        self.clusters.get(&match namespace {
            Some(ns) => key.within(ns),
            None => key,
        })
    }
}

/// A live connection to one cluster: its admin client, its lag observer, its identity admin
/// (all counted in the metrics), its group admin (consumer-group offsets, for resets), and
/// what the rooms attach to it (e.g. the topic batcher), which goes with the
/// connection when it is rebuilt.
pub struct Connection {
    fingerprint: String,
    pub admin: Arc<dyn BrokerAdmin>,
    pub lag: Arc<dyn LagObserver>,
    /// ACLs and SCRAM credentials; its requests are counted in the metrics, not in
    /// [`Connection::admin_requests`].
    pub identity: Arc<dyn IdentityAdmin>,
    pub groups: Arc<dyn GroupAdmin>,
    admin_requests: RequestCounter,
    request_timeout: Duration,
    attached: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Connection {
    /// The count of every request made through [`Connection::admin`] (for logs).
    pub fn admin_requests(&self) -> RequestCounter {
        self.admin_requests.clone()
    }

    /// How long the cluster's broker requests may take (`spec.requestTimeoutSeconds`).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The `T` attached to this connection, made by `make` on first use. A room keeps its
    /// per-cluster state here (one batcher per cluster connection), so the shared layer needs
    /// to know nothing of it.
    pub fn attached<T: Any + Send + Sync>(&self, make: impl FnOnce(&Connection) -> T) -> Arc<T> {
        let mut attached = self.attached.lock().unwrap();
        if let Some(existing) = attached.get(&TypeId::of::<T>()) {
            if let Ok(t) = existing.clone().downcast::<T>() {
                return t;
            }
        }
        let made = Arc::new(make(self));
        attached.insert(TypeId::of::<T>(), made.clone());
        made
    }
}

/// The pool of broker connections: one per KafkaCluster, rebuilt when its spec changes. Every
/// broker call made through a connection is counted in `metrics`.
pub struct ClusterConnections {
    connect: ConnectFn,
    metrics: Arc<Metrics>,
    connections: Mutex<HashMap<String, Arc<Connection>>>,
}

impl ClusterConnections {
    pub fn new(connect: ConnectFn, metrics: Arc<Metrics>) -> Self {
        Self {
            connect,
            metrics,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// The connection for `cluster`, opened (credentials resolved) when missing or stale.
    pub async fn connection(
        &self,
        cluster: &KafkaCluster,
        client: &Client,
    ) -> Result<Arc<Connection>, BrokerError> {
        let key = format!(
            "{}/{}",
            cluster.namespace().unwrap_or_default(),
            cluster.name_any()
        );
        let fingerprint = serde_json::to_string(&cluster.spec).unwrap_or_default();
        if let Some(c) = self.connections.lock().unwrap().get(&key) {
            if c.fingerprint == fingerprint {
                return Ok(c.clone());
            }
        }
        let settings = ClientSettings::for_cluster(cluster, &KubeSecrets(client.clone())).await?;
        let clients = (self.connect)(&settings)?;
        let admin_requests = RequestCounter::default();
        let connection = Arc::new(Connection {
            fingerprint,
            admin: Arc::new(Instrumented::new(
                clients.admin,
                (self.metrics.clone(), admin_requests.clone()),
            )),
            lag: Arc::new(Instrumented::new(clients.lag, self.metrics.clone())),
            identity: Arc::new(Instrumented::new(clients.identity, self.metrics.clone())),
            groups: clients.groups,
            admin_requests,
            request_timeout: settings.timeout,
            attached: Mutex::new(HashMap::new()),
        });
        self.connections
            .lock()
            .unwrap()
            .insert(key, connection.clone());
        Ok(connection)
    }
}

/// Per-object exponential backoff: about base, 2×base, 4×base, ... up to max, each delay
/// shortened by up to a quarter at random (so that objects that failed together do not retry
/// together); reset on success. Conflicts (a write refused because the cached copy it was based
/// on is stale) back off on a shorter schedule of their own ([`Backoff::next_conflict`]).
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

/// The failures in a row of one object.
#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    errors: u32,
    conflicts: u32,
}

impl Backoff {
    /// The first delay after a conflict; it doubles up to [`Backoff::CONFLICT_MAX`].
    pub const CONFLICT_BASE: Duration = Duration::from_millis(200);
    pub const CONFLICT_MAX: Duration = Duration::from_secs(10);

    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before retrying `key` after one more failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap();
        let f = failures.entry(key.to_owned()).or_default();
        let delay = doubled(self.base, f.errors, self.max);
        f.errors = f.errors.saturating_add(1);
        delay
    }

    /// The delay before retrying `key` after one more conflict, and how many conflicts in a
    /// row it has had: long enough for the cache to catch up with the API server, never a
    /// tight loop.
    pub fn next_conflict(&self, key: &str) -> (Duration, u32) {
        let mut failures = self.failures.lock().unwrap();
        let f = failures.entry(key.to_owned()).or_default();
        let delay = doubled(Self::CONFLICT_BASE, f.conflicts, Self::CONFLICT_MAX);
        f.conflicts = f.conflicts.saturating_add(1);
        (delay, f.conflicts)
    }

    pub fn reset(&self, key: &str) {
        self.failures.lock().unwrap().remove(key);
    }
}

/// `base` doubled `n` times, at most `max`, less up to a quarter at random.
fn doubled(base: Duration, n: u32, max: Duration) -> Duration {
    let delay = base.saturating_mul(2u32.saturating_pow(n)).min(max);
    delay - super::jitter(delay / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(namespace: &str, name: &str) -> KafkaCluster {
        let mut c = KafkaCluster::new(
            name,
            crate::api::KafkaClusterSpec {
                bootstrap_servers: vec![format!("{namespace}.{name}:9092")],
                tls: None,
                sasl: None,
                client_config: Default::default(),
                request_timeout_seconds: None,
                topic_defaults: None,
            },
        );
        c.metadata.namespace = Some(namespace.into());
        c
    }

    #[tokio::test]
    async fn a_cluster_is_looked_up_by_namespace_and_name() {
        use kube::runtime::{reflector::store::Writer, watcher::Event};
        let mut writer: Writer<KafkaCluster> = Writer::default();
        for c in [
            cluster("a", "local"),
            cluster("b", "local"),
            cluster("a", "dev"),
        ] {
            writer.apply_watcher_event(&Event::Apply(c));
        }
        let (service, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let client = Client::new(service, "default");
        let options = Options::default();
        let connections = ClusterConnections::new(rdkafka_connect(), options.metrics.clone());
        let ctx = Context::new(
            client,
            options,
            Arc::new(connections),
            writer.as_reader(),
            Writer::default().as_reader(),
        );
        let found = |ns, name| {
            ctx.cluster(ns, name)
                .map(|c| c.spec.bootstrap_servers[0].clone())
        };
        assert_eq!(found(Some("a"), "local").as_deref(), Some("a.local:9092"));
        assert_eq!(found(Some("b"), "local").as_deref(), Some("b.local:9092"));
        assert_eq!(found(Some("a"), "dev").as_deref(), Some("a.dev:9092"));
        assert_eq!(found(Some("b"), "dev"), None);
        assert_eq!(found(Some("c"), "local"), None);
        assert_eq!(found(None, "local"), None, "every cluster has a namespace");
    }

    /// `delay` is `nominal` less at most a quarter.
    fn about(delay: Duration, nominal: Duration) -> bool {
        delay <= nominal && delay >= nominal - nominal / 4
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        for nominal in [1, 2, 4, 8, 10, 10] {
            let delay = b.next("ns/a");
            assert!(
                about(delay, Duration::from_secs(nominal)),
                "{delay:?} for {nominal} s"
            );
        }
        assert!(
            about(b.next("ns/b"), Duration::from_secs(1)),
            "objects back off independently"
        );
        b.reset("ns/a");
        assert!(about(b.next("ns/a"), Duration::from_secs(1)));
    }

    #[test]
    fn backoff_is_jittered() {
        let b = Backoff::new(Duration::from_secs(8), Duration::from_secs(8));
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|i| b.next(&format!("ns/{i}"))).collect();
        assert!(
            delays.len() > 1,
            "twenty objects failing together retry apart"
        );
    }

    #[test]
    fn conflicts_back_off_on_their_own_schedule() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let mut last = Duration::ZERO;
        for n in 1..=10u32 {
            let (delay, count) = b.next_conflict("ns/a");
            assert_eq!(count, n);
            assert!(delay <= Backoff::CONFLICT_MAX);
            assert!(
                delay >= last.min(Backoff::CONFLICT_MAX * 3 / 4),
                "grows: {delay:?} after {last:?}"
            );
            last = delay;
        }
        assert!(
            last >= Backoff::CONFLICT_MAX * 3 / 4,
            "capped, not unbounded: {last:?}"
        );
        // A conflict does not lengthen the error backoff, and success resets both.
        assert!(about(b.next("ns/a"), Duration::from_secs(1)));
        b.reset("ns/a");
        assert_eq!(b.next_conflict("ns/a").1, 1);
    }
}
