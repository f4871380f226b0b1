//! [`BrokerAdmin`] over librdkafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rdkafka::admin::{AdminOptions, ConfigSource, ResourceSpecifier};

use super::ffi::{self, call_error, Client, Handle};
use super::identity::RdKafkaIdentityAdmin;
use super::lag::RdKafkaLagObserver;
use super::native::{self, NewTopicRequest};
use super::{BrokerAdmin, BrokerError, ClientSettings, ClusterInfo, NewTopic, TopicOutcome};
use super::{BrokerSnapshot, ConfigChange, ObservedConfig, ObservedTopic, RequestTally};

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
    client: Arc<Client>,
    /// The first bootstrap server when the connection is not TLS (where ApiVersions can be
    /// asked directly, see [`super::api_versions`]).
    plaintext_bootstrap: Option<String>,
}

impl RdKafkaAdmin {
    /// Builds the client. Nothing is contacted until the first request.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        Ok(Self {
            client: Client::connect(settings, "tributary")?,
            plaintext_bootstrap: plaintext_bootstrap(settings),
        })
    }

    /// A lag observer of the same cluster over this admin's client: one librdkafka client
    /// (one set of connections, one main queue) for both.
    pub fn lag_observer(&self) -> RdKafkaLagObserver {
        RdKafkaLagObserver::with_client(self.client.clone())
    }

    /// The identity admin (ACLs, SCRAM credentials) of the same cluster over this admin's client.
    pub fn identity_admin(&self) -> RdKafkaIdentityAdmin {
        RdKafkaIdentityAdmin::with_client(self.client.clone(), self.plaintext_bootstrap.clone())
    }

    /// Runs a blocking native call (one `api` request) off the async runtime, keeping the client
    /// alive meanwhile.
    async fn blocking<T: Send + 'static>(
        &self,
        api: &'static str,
        requests: &mut RequestTally,
        f: impl FnOnce(Handle, Duration) -> Result<T, BrokerError> + Send + 'static,
    ) -> Result<T, BrokerError> {
        self.client.drain();
        requests.sent(api, 1);
        let result = self
            .client
            .blocking("admin call", move |c| f(c.handle(), c.timeout()))
            .await?;
        // Labelled as the native call ended (a timeout is `timeout`), reported as unreachable.
        requests.answered(api, 1, result.as_ref().map(|_| ()));
        result.map_err(|e| self.client.explain(e))
    }

    /// One batched native call (`api`) over `items`; an empty batch makes no request.
    fn batch<'a, T: Send + 'static>(
        &'a self,
        api: &'static str,
        items: Vec<T>,
        requests: &'a mut RequestTally,
        call: NativeBatchCall<T>,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        async move {
            if items.is_empty() {
                return Ok(Vec::new());
            }
            self.blocking(api, requests, move |handle, timeout| {
                call(handle, timeout, &items)
            })
            .await
        }
        .boxed()
    }

    async fn metadata(
        &self,
        requests: &mut RequestTally,
    ) -> Result<rdkafka::metadata::Metadata, BrokerError> {
        self.client.drain();
        requests.sent("Metadata", 1);
        let result = self
            .client
            .blocking("metadata call", |c| {
                c.admin().inner().fetch_metadata(None, c.timeout())
            })
            .await?
            .map_err(|e| self.client.unreachable(e));
        requests.answered("Metadata", 1, result.as_ref().map(|_| ()));
        result
    }

    async fn describe_configs(
        &self,
        topics: &[String],
        requests: &mut RequestTally,
    ) -> Result<BTreeMap<String, BTreeMap<String, ObservedConfig>>, BrokerError> {
        let mut out = BTreeMap::new();
        if topics.is_empty() {
            return Ok(out);
        }
        self.client.drain();
        requests.sent("DescribeConfigs", 1);
        let specs: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let timeout = self.client.timeout();
        let options = AdminOptions::new().request_timeout(Some(timeout));
        let results = tokio::time::timeout(
            timeout + Duration::from_secs(2),
            self.client.admin().describe_configs(&specs, &options),
        )
        .await
        .map_err(|_| self.client.unreachable("DescribeConfigs timed out"))
        .and_then(|r| {
            r.map_err(|e| match e.rdkafka_error_code() {
                Some(code) => call_error("DescribeConfigs", code, e.to_string()),
                None => BrokerError::Client(e.to_string()),
            })
        });
        requests.answered("DescribeConfigs", 1, results.as_ref().map(|_| ()));
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

/// The first bootstrap server, when the connection is not TLS (`plaintext`, the default, or
/// `sasl_plaintext`: Kafka answers ApiVersions before authentication).
fn plaintext_bootstrap(settings: &ClientSettings) -> Option<String> {
    let protocol = settings
        .properties
        .get("security.protocol")
        .map_or("plaintext".to_owned(), |p| p.to_ascii_lowercase());
    matches!(protocol.as_str(), "plaintext" | "sasl_plaintext")
        .then(|| settings.bootstrap_servers.split(',').next())
        .flatten()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl BrokerAdmin for RdKafkaAdmin {
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        async move {
            let metadata = self.metadata(requests).await?;
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
            let configs = self.describe_configs(&existing, requests).await?;
            // A broker that lists every config with its default (Apache Kafka does) tells which
            // keys it knows; one that lists only the keys set on the topic (Tansu, which also
            // marks them all as defaults) gives no basis to call a key unknown. A full listing
            // is recognised by keys every Kafka version lists.
            let mut known = BTreeSet::new();
            let mut full_listing = false;
            for (name, mut entries) in configs {
                let full = FULL_LISTING_MARKERS
                    .iter()
                    .all(|k| entries.contains_key(*k));
                if !full {
                    // A broker that lists only the keys set on the topic lists overrides,
                    // whatever source it names (Tansu names each a default): each is one.
                    for entry in entries.values_mut() {
                        entry.dynamic = !entry.read_only;
                    }
                }
                full_listing |= full;
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

    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "CreateTopics",
            topics.to_vec(),
            requests,
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

    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "CreatePartitions",
            topics.to_vec(),
            requests,
            |handle, timeout, topics| {
                let requests: Vec<(&str, usize)> = topics
                    .iter()
                    .map(|(n, p)| (n.as_str(), (*p).max(0) as usize))
                    .collect();
                native::create_partitions(handle, timeout, &requests)
            },
        )
    }

    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "IncrementalAlterConfigs",
            topics.to_vec(),
            requests,
            |handle, timeout, topics| {
                let requests: Vec<(&str, &[ConfigChange])> = topics
                    .iter()
                    .map(|(n, c)| (n.as_str(), c.as_slice()))
                    .collect();
                native::incremental_alter_configs(handle, timeout, &requests)
            },
        )
    }

    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        self.batch(
            "DeleteTopics",
            topics.to_vec(),
            requests,
            |handle, timeout, topics| {
                let requests: Vec<&str> = topics.iter().map(String::as_str).collect();
                native::delete_topics(handle, timeout, &requests)
            },
        )
    }

    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
        async move {
            let metadata = self.metadata(requests).await?;
            let (cluster_id, controller) = self
                .client
                .blocking("probe", |c| {
                    let id = c.admin().inner().fetch_cluster_id(c.timeout());
                    (id, ffi::controller_id(c.handle(), c.timeout()))
                })
                .await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_asked_of_the_first_bootstrap_server_only_without_tls() {
        let mut settings = ClientSettings::plaintext(" a:9092 ,b:9092", Duration::from_secs(1));
        assert_eq!(plaintext_bootstrap(&settings).as_deref(), Some("a:9092"));
        for (protocol, probed) in [
            ("SASL_PLAINTEXT", true),
            ("ssl", false),
            ("sasl_ssl", false),
        ] {
            settings
                .properties
                .insert("security.protocol".into(), protocol.into());
            assert_eq!(
                plaintext_bootstrap(&settings).is_some(),
                probed,
                "{protocol}"
            );
        }
        settings.properties.remove("security.protocol");
        assert!(
            plaintext_bootstrap(&settings).is_some(),
            "plaintext by default"
        );
        settings.bootstrap_servers = String::new();
        assert_eq!(plaintext_bootstrap(&settings), None);
    }
}
