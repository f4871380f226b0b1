//! [`BrokerAdmin`] over librdkafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::ClientConfig;

use super::native::{self, Handle, NewTopicRequest};
use super::{BrokerAdmin, BrokerError, ClientSettings, ClusterInfo, NewTopic, TopicOutcome};
use super::{BrokerSnapshot, ObservedConfig, ObservedTopic};
use crate::topics::plan::ConfigChange;

/// A native admin call over a batch of items.
type NativeBatchCall<T> = fn(Handle, Duration, &[T]) -> Result<Vec<TopicOutcome>, BrokerError>;

/// Keys every Apache Kafka broker since 0.11 lists for every topic, defaults included.
const FULL_LISTING_MARKERS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "segment.bytes",
    "max.message.bytes",
    "min.insync.replicas",
    "unclean.leader.election.enable",
];

/// A librdkafka admin client for one cluster.
pub struct RdKafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    /// The last connection-level error librdkafka reported, for unreachable-cluster messages.
    last_error: Mutex<Option<String>>,
    bootstrap: String,
    timeout: Duration,
    requests: AtomicU64,
}

impl RdKafkaAdmin {
    /// Builds the client. Nothing is contacted until the first request.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        let mut config = ClientConfig::new();
        let timeout_ms = settings.timeout.as_millis().to_string();
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "tributary")
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("log.connection.close", "false")
            // Connection failures are logged at error level; they become the reason an
            // unreachable cluster is reported with (see `native::drain_main_queue`).
            .set_log_level(RDKafkaLogLevel::Error);
        for (k, v) in &settings.properties {
            config.set(k, v);
        }
        for (k, v) in &settings.secret_properties {
            config.set(k, v.expose());
        }
        let client: AdminClient<DefaultClientContext> = config
            .create()
            .map_err(|e| BrokerError::Client(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
            last_error: Mutex::new(None),
            bootstrap: settings.bootstrap_servers.clone(),
            timeout: settings.timeout,
            requests: AtomicU64::new(0),
        })
    }

    fn handle(&self) -> Handle {
        Handle(self.client.inner().native_ptr())
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.drain();
    }

    /// Services librdkafka's main queue, remembering the latest error.
    fn drain(&self) {
        if let Some(last) = native::drain_main_queue(self.handle()).pop() {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(last);
        }
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> BrokerError {
        self.drain();
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let why = last
            .map(|l| format!(" (last error: {l})"))
            .unwrap_or_default();
        BrokerError::Unreachable(format!(
            "{} did not answer within {:?}: {detail}{why}",
            self.bootstrap, self.timeout
        ))
    }

    /// Runs a blocking native call (one `api` request) off the async runtime, keeping the client
    /// alive meanwhile.
    async fn blocking<T: Send + 'static>(
        &self,
        api: &'static str,
        f: impl FnOnce(Handle, Duration) -> Result<T, BrokerError> + Send + 'static,
    ) -> Result<T, BrokerError> {
        self.count();
        let client = self.client.clone();
        let handle = self.handle();
        let timeout = self.timeout;
        let result = tokio::task::spawn_blocking(move || {
            let out = f(handle, timeout);
            drop(client);
            out
        })
        .await
        .map_err(|e| BrokerError::Client(format!("admin call panicked: {e}")))?;
        crate::runtime::metrics::broker_request(api, result.as_ref().map(|_| ()), 1);
        result.map_err(|e| match e {
            BrokerError::Unreachable(d) => self.unreachable(d),
            BrokerError::Timeout { api, .. } => self.unreachable(format!("{api} timed out")),
            other => other,
        })
    }

    /// One batched native call (`api`) over `items`; an empty batch makes no request.
    fn batch<T: Send + 'static>(
        &self,
        api: &'static str,
        items: Vec<T>,
        call: NativeBatchCall<T>,
    ) -> BoxFuture<'_, Result<Vec<TopicOutcome>, BrokerError>> {
        async move {
            if items.is_empty() {
                return Ok(Vec::new());
            }
            self.blocking(api, move |handle, timeout| call(handle, timeout, &items))
                .await
        }
        .boxed()
    }

    async fn metadata(&self) -> Result<rdkafka::metadata::Metadata, BrokerError> {
        self.count();
        let client = self.client.clone();
        let timeout = self.timeout;
        let result =
            tokio::task::spawn_blocking(move || client.inner().fetch_metadata(None, timeout))
                .await
                .map_err(|e| BrokerError::Client(format!("metadata call panicked: {e}")))?
                .map_err(|e| self.unreachable(e));
        crate::runtime::metrics::broker_request("Metadata", result.as_ref().map(|_| ()), 1);
        result
    }

    async fn describe_configs(
        &self,
        topics: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, ObservedConfig>>, BrokerError> {
        let mut out = BTreeMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        self.count();
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let options = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = tokio::time::timeout(
            self.timeout + Duration::from_secs(2),
            self.client.describe_configs(&specs, &options),
        )
        .await
        .map_err(|_| self.unreachable("DescribeConfigs timed out"))
        .and_then(|r| {
            r.map_err(|e| match e.rdkafka_error_code() {
                Some(code) => native::call_error("DescribeConfigs", code, e.to_string()),
                None => BrokerError::Client(e.to_string()),
            })
        });
        crate::runtime::metrics::broker_request("DescribeConfigs", results.as_ref().map(|_| ()), 1);
        let results = results?;
        for (topic, result) in topics.iter().zip(results) {
            let resource = result.map_err(|code| BrokerError::Rejected {
                api: "DescribeConfigs",
                code: format!("{code:?}"),
                message: format!("topic {topic}: {code}"),
            })?;
            let configs = resource
                .entries
                .into_iter()
                .map(|e| {
                    (
                        e.name,
                        ObservedConfig {
                            value: e.value,
                            dynamic: matches!(e.source, ConfigSource::DynamicTopic),
                            read_only: e.is_read_only,
                        },
                    )
                })
                .collect();
            out.insert(topic.clone(), configs);
        }
        Ok(out)
    }
}

impl BrokerAdmin for RdKafkaAdmin {
    fn snapshot<'a>(
        &'a self,
        describe: &'a [String],
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        async move {
            let metadata = self.metadata().await?;
            let mut topics = BTreeMap::new();
            for t in metadata.topics() {
                if t.error().is_some() {
                    continue;
                }
                let replication_factor = t
                    .partitions()
                    .iter()
                    .map(|p| p.replicas().len())
                    .max()
                    .unwrap_or(0);
                topics.insert(
                    t.name().to_owned(),
                    ObservedTopic {
                        topic_id: None,
                        partitions: t.partitions().len() as i32,
                        replication_factor: replication_factor as i32,
                        configs: BTreeMap::new(),
                    },
                );
            }
            let existing: Vec<String> = describe
                .iter()
                .filter(|t| topics.contains_key(t.as_str()))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let configs = self.describe_configs(&existing).await?;
            // A broker that lists every config with its default (Apache Kafka does) tells which
            // keys it knows; one that lists only the keys set on the topic (Tansu, which also
            // marks them all as defaults) gives no basis to call a key unknown. A full listing
            // is recognised by keys every Kafka version lists.
            let mut known = BTreeSet::new();
            let mut full_listing = false;
            for (name, entries) in configs {
                full_listing |= FULL_LISTING_MARKERS
                    .iter()
                    .all(|k| entries.contains_key(*k));
                known.extend(entries.keys().cloned());
                if let Some(t) = topics.get_mut(&name) {
                    t.configs = entries;
                }
            }
            Ok(BrokerSnapshot {
                topics,
                known_config_keys: full_listing.then_some(known),
            })
        }
        .boxed()
    }

    fn create_topics<'a>(
        &'a self,
        topics: &'a [NewTopic],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "CreateTopics",
            topics.to_vec(),
            |handle, timeout, topics| {
                let requests: Vec<NewTopicRequest<'_>> = topics
                    .iter()
                    .map(|n| NewTopicRequest {
                        name: &n.name,
                        partitions: n.partitions,
                        replication_factor: n.replication_factor.unwrap_or(-1),
                        config: n
                            .config
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect(),
                    })
                    .collect();
                native::create_topics(handle, timeout, &requests)
            },
        )
    }

    fn create_partitions<'a>(
        &'a self,
        topics: &'a [(String, i32)],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "CreatePartitions",
            topics.to_vec(),
            |handle, timeout, topics| {
                let requests: Vec<(&str, usize)> = topics
                    .iter()
                    .map(|(n, p)| (n.as_str(), (*p).max(0) as usize))
                    .collect();
                native::create_partitions(handle, timeout, &requests)
            },
        )
    }

    fn alter_configs<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "IncrementalAlterConfigs",
            topics.to_vec(),
            |handle, timeout, topics| {
                let requests: Vec<(&str, &[ConfigChange])> = topics
                    .iter()
                    .map(|(n, c)| (n.as_str(), c.as_slice()))
                    .collect();
                native::incremental_alter_configs(handle, timeout, &requests)
            },
        )
    }

    fn delete_topics<'a>(
        &'a self,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "DeleteTopics",
            topics.to_vec(),
            |handle, timeout, topics| {
                let requests: Vec<&str> = topics.iter().map(String::as_str).collect();
                native::delete_topics(handle, timeout, &requests)
            },
        )
    }

    fn cluster_info(&self) -> BoxFuture<'_, Result<ClusterInfo, BrokerError>> {
        async move {
            let metadata = self.metadata().await?;
            let client = self.client.clone();
            let handle = self.handle();
            let timeout = self.timeout;
            let (cluster_id, controller) = tokio::task::spawn_blocking(move || {
                let id = client.inner().fetch_cluster_id(timeout);
                let controller = native::controller_id(handle, timeout);
                drop(client);
                (id, controller)
            })
            .await
            .map_err(|e| BrokerError::Client(format!("probe panicked: {e}")))?;
            Ok(ClusterInfo {
                cluster_id,
                controller,
                brokers: metadata
                    .brokers()
                    .iter()
                    .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
                    .collect(),
                answered_by: metadata.orig_broker_id(),
            })
        }
        .boxed()
    }

    fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
