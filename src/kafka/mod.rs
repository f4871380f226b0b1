//! Broker access: the [`BrokerAdmin`] trait the planner's executor talks to, and its
//! librdkafka implementation. Every operation takes a batch and makes one broker request.
//! Every call tells the requests it made ([`RequestTally`]); the broker layer records no
//! metrics itself. [`RecordStore`]: keyed records in a compacted topic (the CLI's stacks).
//! [`identity`]: ACL bindings and SCRAM credentials ([`identity::IdentityAdmin`]).
//! [`offsets`]: a consumer group's members and offsets, read and reset.

pub mod api_versions;
mod connection;
mod ffi;
pub mod identity;
pub mod lag;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
mod native;
mod observed;
pub mod offsets;
mod rdkafka_admin;
mod record_store;
mod requests;
pub mod wire;

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use thiserror::Error;

use crate::api::Reason;

pub use connection::{
    ClientSettings, FileSecrets, KubeSecrets, SecretReader, Sensitive, DEFAULT_TIMEOUT,
};
pub use observed::{BrokerSnapshot, ObservedConfig, ObservedTopic};
pub use rdkafka_admin::RdKafkaAdmin;
pub use record_store::{RecordStore, Records};
pub use requests::{result_label, RequestTally};

/// One change to one config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set `key` to `to`; `from` is what the broker had (`None`: not set / unknown).
    Set {
        key: String,
        from: Option<String>,
        to: String,
    },
    /// Remove the topic-level override of `key`, so the broker default applies again.
    Reset { key: String, from: String },
}

impl ConfigChange {
    pub fn key(&self) -> &str {
        match self {
            ConfigChange::Set { key, .. } | ConfigChange::Reset { key, .. } => key,
        }
    }
}

/// A failure of a whole broker call (as opposed to one topic of a batch).
///
/// Whether a failure needs a person (a wrong setting: [`BrokerError::needs_a_fix`]) or may go
/// away by itself is the caller's to report as `Stalled` or `Reconciling`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BrokerError {
    #[error("cannot reach the Kafka cluster: {0}")]
    Unreachable(String),
    #[error("{api} did not complete within {after:?}")]
    Timeout { api: &'static str, after: Duration },
    #[error("the broker does not support {api}: {message}")]
    Unsupported { api: &'static str, message: String },
    #[error("the broker refused {api} ({code}): {message}")]
    Rejected {
        api: &'static str,
        code: String,
        message: String,
    },
    #[error("client configuration: {0}")]
    Client(String),
    #[error("credentials: {0}")]
    Credentials(String),
    /// The TLS handshake with a broker failed: what it means for `spec.tls`, then
    /// librdkafka's own words.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

impl BrokerError {
    /// The condition reason a controller reports for this failure.
    pub fn reason(&self) -> Reason {
        match self {
            BrokerError::Unreachable(_) | BrokerError::Timeout { .. } => Reason::BrokerUnreachable,
            BrokerError::Unsupported { .. } => Reason::BrokerUnsupported,
            BrokerError::Rejected { .. } => Reason::BrokerRejected,
            BrokerError::Client(_) => Reason::InvalidClientConfig,
            BrokerError::Credentials(_) => Reason::CredentialsUnavailable,
            BrokerError::Tls(_) => Reason::TlsHandshakeFailed,
        }
    }

    /// A failure that retrying will not cure: the spec, a certificate or the broker needs a
    /// change (unsupported APIs, a client configuration librdkafka refused, a TLS handshake
    /// that failed).
    pub fn needs_a_fix(&self) -> bool {
        matches!(
            self,
            BrokerError::Unsupported { .. } | BrokerError::Client(_) | BrokerError::Tls(_)
        )
    }

    /// The `result` label of a broker request that failed with this error.
    pub fn metric_label(&self) -> &'static str {
        match self {
            BrokerError::Unreachable(_) => "unreachable",
            BrokerError::Timeout { .. } => "timeout",
            BrokerError::Unsupported { .. } => "unsupported",
            BrokerError::Rejected { .. } => "rejected",
            BrokerError::Tls(_) => "tls",
            BrokerError::Client(_) | BrokerError::Credentials(_) => "error",
        }
    }
}

/// The broker's answer for one topic of a batch that it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The Kafka error code's name, e.g. `TopicAlreadyExists`, `InvalidConfig`.
    pub code: String,
    /// The broker's own error text.
    pub message: String,
    /// The broker does not implement this request at all.
    pub unsupported: bool,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// The result for one topic of a batched call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcome {
    pub topic: String,
    pub result: Result<(), Rejection>,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    /// `None`: the broker's default.
    pub replication_factor: Option<i32>,
    pub config: Vec<(String, String)>,
}

/// What a probe of the cluster found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The cluster's id, when the broker reports one.
    pub cluster_id: Option<String>,
    /// `(id, host:port)` of every broker.
    pub brokers: Vec<(i32, String)>,
    /// The controller broker's id, when known.
    pub controller: Option<i32>,
    /// The broker that answered.
    pub answered_by: i32,
}

/// Admin access to one Kafka cluster. Each call is one batched broker request (two or three
/// for `snapshot`: Metadata for the topics of interest — and for every topic when one of them
/// is missing — then one DescribeConfigs for those that exist); a call with an empty batch
/// makes none.
///
/// Implementations provide the `*_tallied` methods, which add the requests they make, by API
/// and outcome, to `requests`; callers that need no count use the plain methods.
pub trait BrokerAdmin: Send + Sync {
    /// The partitions and replication of the topics of `describe` that exist, and their
    /// configs. Every other topic of the cluster is in the snapshot too when `describe` is
    /// empty or names a topic that does not exist (a topic about to be created is held against
    /// all the others: Kafka treats '.' and '_' alike); otherwise it may be left out.
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>>;
    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>>;
    /// Grows each topic to the given total partition count.
    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>>;
    /// Incremental: only the named keys change.
    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>>;
    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>>;
    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>>;

    /// [`BrokerAdmin::snapshot_tallied`], uncounted.
    fn snapshot<'a>(
        &'a self,
        describe: &'a [String],
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        Box::pin(async move {
            self.snapshot_tallied(describe, &mut RequestTally::default())
                .await
        })
    }
    /// [`BrokerAdmin::create_topics_tallied`], uncounted.
    fn create_topics<'a>(
        &'a self,
        topics: &'a [NewTopic],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        Box::pin(async move {
            self.create_topics_tallied(topics, &mut RequestTally::default())
                .await
        })
    }
    /// [`BrokerAdmin::create_partitions_tallied`], uncounted.
    fn create_partitions<'a>(
        &'a self,
        topics: &'a [(String, i32)],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        Box::pin(async move {
            self.create_partitions_tallied(topics, &mut RequestTally::default())
                .await
        })
    }
    /// [`BrokerAdmin::alter_configs_tallied`], uncounted.
    fn alter_configs<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        Box::pin(async move {
            self.alter_configs_tallied(topics, &mut RequestTally::default())
                .await
        })
    }
    /// [`BrokerAdmin::delete_topics_tallied`], uncounted.
    fn delete_topics<'a>(
        &'a self,
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        Box::pin(async move {
            self.delete_topics_tallied(topics, &mut RequestTally::default())
                .await
        })
    }
    /// [`BrokerAdmin::cluster_info_tallied`], uncounted.
    fn cluster_info(&self) -> BoxFuture<'_, Result<ClusterInfo, BrokerError>> {
        Box::pin(async move {
            self.cluster_info_tallied(&mut RequestTally::default())
                .await
        })
    }
}

impl<T: BrokerAdmin + ?Sized> BrokerAdmin for std::sync::Arc<T> {
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        (**self).snapshot_tallied(describe, requests)
    }
    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        (**self).create_topics_tallied(topics, requests)
    }
    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        (**self).create_partitions_tallied(topics, requests)
    }
    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        (**self).alter_configs_tallied(topics, requests)
    }
    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        (**self).delete_topics_tallied(topics, requests)
    }
    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
        (**self).cluster_info_tallied(requests)
    }
}
