//! A keyed record store in a compacted topic: every key's latest value, read by consuming the
//! topic from its start to the end it had when the read began (its high watermarks), and
//! written as one record per key. Knows no kind: the keys and the values are the caller's.
//!
//! The topic is created on the first write (`cleanup.policy=compact`, one partition), so the
//! broker keeps the latest record of each key. A broker that ignores compaction keeps every
//! record; reading to the end and keeping the last one per key is correct either way. A record
//! without a value (a tombstone) removes its key.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::ffi::client_config;
use super::{BrokerAdmin, BrokerError, ClientSettings, NewTopic};

/// The `group.id` of the reader; librdkafka may look its coordinator up, but the group is never
/// joined and no offset is committed, so a refusal about the group is not an error here.
pub const READER_GROUP: &str = "tributary-store-reader";

/// The records of a store: each key's latest value.
pub type Records = BTreeMap<String, Vec<u8>>;

/// A compacted topic of keyed records on one cluster.
pub struct RecordStore {
    topic: String,
    settings: ClientSettings,
}

impl RecordStore {
    /// The store in `topic` of the cluster `settings` describe. Nothing is contacted yet.
    pub fn new(settings: &ClientSettings, topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            settings: settings.clone(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Every key's latest value; empty when the topic does not exist yet.
    pub async fn read(&self) -> Result<Records, BrokerError> {
        let topic = self.topic.clone();
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || read_to_end(&settings, &topic))
            .await
            .map_err(|e| BrokerError::Client(format!("reading {}: {e}", self.topic)))?
    }

    /// Writes `value` as the latest value of `key`, creating the topic (compacted) through
    /// `admin` when it does not exist; returns once the broker acknowledged the record.
    pub async fn write(
        &self,
        admin: &dyn BrokerAdmin,
        key: &str,
        value: &[u8],
    ) -> Result<(), BrokerError> {
        self.ensure_topic(admin).await?;
        let timeout_ms = self.settings.timeout.as_millis().to_string();
        let producer: FutureProducer = client_config(&self.settings, "tributary-store")
            .set("acks", "all")
            .set("message.timeout.ms", &timeout_ms)
            .create()
            .map_err(|e| BrokerError::Client(e.to_string()))?;
        let record = FutureRecord::to(&self.topic).key(key).payload(value);
        producer
            .send(record, self.settings.timeout)
            .await
            .map(|_| ())
            .map_err(|(e, _)| produce_error(&self.topic, e))
    }

    async fn ensure_topic(&self, admin: &dyn BrokerAdmin) -> Result<(), BrokerError> {
        let outcomes = admin
            .create_topics(&[NewTopic {
                name: self.topic.clone(),
                partitions: 1,
                replication_factor: None,
                config: vec![("cleanup.policy".to_owned(), "compact".to_owned())],
            }])
            .await?;
        match outcomes.into_iter().find(|o| o.topic == self.topic) {
            Some(o) => match o.result {
                Err(r) if r.code != "TopicAlreadyExists" => Err(BrokerError::Rejected {
                    api: "CreateTopics",
                    code: r.code,
                    message: format!("creating {}: {}", self.topic, r.message),
                }),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

fn produce_error(topic: &str, error: KafkaError) -> BrokerError {
    let message = format!("writing to {topic}: {error}");
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) => BrokerError::Unreachable(message),
        Some(code) => BrokerError::Rejected {
            api: "Produce",
            code: format!("{code:?}"),
            message,
        },
        None => BrokerError::Client(message),
    }
}

fn fetch_error(topic: &str, what: &str, error: KafkaError) -> BrokerError {
    let message = format!("reading {topic} ({what}): {error}");
    match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure,
        ) => BrokerError::Unreachable(message),
        Some(code) => BrokerError::Rejected {
            api: "Fetch",
            code: format!("{code:?}"),
            message,
        },
        None => BrokerError::Client(message),
    }
}

/// An error about the reader's consumer group (its coordinator, its authorization), which an
/// assigned, never committing reader does not use.
fn about_the_group(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
        )
    )
}

/// Consumes every partition of `topic` from its start to the high watermark it had when the
/// read began; the last record of each key wins.
fn read_to_end(settings: &ClientSettings, topic: &str) -> Result<Records, BrokerError> {
    let timeout = settings.timeout;
    let consumer: BaseConsumer = client_config(settings, "tributary-store")
        // Partitions are assigned by hand: no group is joined and no offset is committed
        // (librdkafka needs a `group.id` to assign all the same).
        .set("group.id", READER_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| BrokerError::Client(e.to_string()))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| fetch_error(topic, "Metadata", e))?;
    let Some(described) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Records::new());
    };
    match described.error().map(RDKafkaErrorCode::from) {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            return Ok(Records::new())
        }
        Some(code) => {
            return Err(BrokerError::Rejected {
                api: "Metadata",
                code: format!("{code:?}"),
                message: format!("reading {topic}: {code}"),
            })
        }
        None => {}
    }
    // The offset each partition must be read up to (exclusive), when it holds records.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in described.partitions() {
        let id = partition.id();
        let (low, high) = consumer
            .fetch_watermarks(topic, id, timeout)
            .map_err(|e| fetch_error(topic, "ListOffsets", e))?;
        if high > low {
            ends.insert(id, high);
            assignment
                .add_partition_offset(topic, id, Offset::Offset(low))
                .map_err(|e| BrokerError::Client(e.to_string()))?;
        }
    }
    let mut records = Records::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| BrokerError::Client(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BrokerError::Timeout {
                api: "Fetch",
                after: timeout,
            });
        }
        let Some(result) = consumer.poll(left.min(Duration::from_millis(200))) else {
            // Offsets the broker skips (compacted away, control records) yield no message:
            // the consumer's position tells the partition is read to its end all the same.
            if let Ok(positions) = consumer.position() {
                for element in positions.elements() {
                    if let Offset::Offset(at) = element.offset() {
                        if ends.get(&element.partition()).is_some_and(|end| at >= *end) {
                            ends.remove(&element.partition());
                        }
                    }
                }
            }
            continue;
        };
        let message = match result {
            Ok(message) => message,
            Err(e) if about_the_group(&e) => {
                tracing::debug!(%topic, error = %e, "store reader: a group error, ignored (no group is used)");
                continue;
            }
            Err(e) => return Err(fetch_error(topic, "Fetch", e)),
        };
        let partition = message.partition();
        if let Some(key) = message.key() {
            let key = String::from_utf8_lossy(key).into_owned();
            match message.payload() {
                Some(value) => records.insert(key, value.to_vec()),
                None => records.remove(&key),
            };
        }
        if ends
            .get(&partition)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&partition);
        }
    }
    Ok(records)
}
