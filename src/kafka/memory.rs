//! An in-memory Kafka for tests of everything above the broker layer (batching, controllers):
//! it keeps topics, partitions and configs, answers each batched call as a broker would,
//! counts requests, and can be made unreachable, lacking CreatePartitions, refusing a topic's
//! whole call (in the client or the broker) or losing an answer half-way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{BrokerAdmin, BrokerError, ClusterInfo, NewTopic, Rejection, TopicOutcome};
use super::{BrokerSnapshot, ConfigChange, ObservedConfig, ObservedTopic, RequestTally};

/// A single-broker Kafka held in memory.
#[derive(Default)]
pub struct MemoryBroker {
    topics: Mutex<BTreeMap<String, ObservedTopic>>,
    requests: AtomicU64,
    down: AtomicBool,
    no_create_partitions: AtomicBool,
    calls: Mutex<Vec<(&'static str, usize)>>,
    faults: Mutex<Faults>,
}

/// Scripted failures of whole calls.
#[derive(Default)]
struct Faults {
    /// A call naming one of these topics fails in the client, before anything is sent (as
    /// librdkafka refuses a topic with too many partitions).
    client_refuses: Vec<String>,
    /// A request naming one of these topics is refused whole by the broker.
    broker_refuses: Vec<String>,
    /// The next change request applies this many of its topics, then its answer is lost.
    lose_answer_after: Option<usize>,
    /// ... and the broker is down from then on.
    down_after_loss: bool,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call fails as if the broker were unreachable, until set back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// CreatePartitions is refused as unsupported (as Tansu does).
    pub fn without_create_partitions(self) -> Self {
        self.no_create_partitions.store(true, Ordering::SeqCst);
        self
    }

    /// Every call naming `topic` fails in the client, whole, and sends nothing.
    pub fn refuse_in_client(&self, topic: &str) {
        self.faults
            .lock()
            .unwrap()
            .client_refuses
            .push(topic.into());
    }

    /// Every request naming `topic` is refused whole by the broker.
    pub fn refuse_whole_request(&self, topic: &str) {
        self.faults
            .lock()
            .unwrap()
            .broker_refuses
            .push(topic.into());
    }

    /// The next change request (create, grow, configure, delete) applies its first `applied`
    /// topics and then stops answering: the call times out. With `down`, every later call
    /// fails as unreachable too (a broker killed mid-request); without, the broker answers
    /// again at once (an answer lost on the way).
    pub fn lose_next_answer(&self, applied: usize, down: bool) {
        let mut faults = self.faults.lock().unwrap();
        faults.lose_answer_after = Some(applied);
        faults.down_after_loss = down;
    }

    /// The topics as they are now.
    pub fn topics(&self) -> BTreeMap<String, ObservedTopic> {
        self.topics.lock().unwrap().clone()
    }

    /// Changes a topic config behind the operator's back.
    pub fn set_config_by_hand(&self, topic: &str, key: &str, value: &str) {
        if let Some(t) = self.topics.lock().unwrap().get_mut(topic) {
            t.configs.insert(key.into(), dynamic(value));
        }
    }

    /// Deletes a topic behind the operator's back.
    pub fn delete_by_hand(&self, topic: &str) {
        self.topics.lock().unwrap().remove(topic);
    }

    /// `(api, topics in the call)` of every call so far, in order.
    pub fn calls(&self) -> Vec<(&'static str, usize)> {
        self.calls.lock().unwrap().clone()
    }

    /// Broker requests made so far, for batching checks.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// One request of `api` (about `topics` topics): fails if the broker is down.
    fn call(&self, api: &'static str, topics: usize) -> Result<(), BrokerError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push((api, topics));
        if self.down.load(Ordering::SeqCst) {
            return Err(BrokerError::Unreachable("memory broker is down".into()));
        }
        Ok(())
    }

    /// [`MemoryBroker::call`], tallied with its outcome.
    fn enter(
        &self,
        api: &'static str,
        topics: usize,
        requests: &mut RequestTally,
    ) -> Result<(), BrokerError> {
        let result = self.call(api, topics);
        requests.request(api, result.as_ref().map(|_| ()));
        result
    }

    fn each<T>(
        &self,
        api: &'static str,
        items: &[T],
        requests: &mut RequestTally,
        name: impl Fn(&T) -> &str,
        mut apply: impl FnMut(&mut BTreeMap<String, ObservedTopic>, &T) -> Result<(), Rejection>,
    ) -> Result<Vec<TopicOutcome>, BrokerError> {
        let (lose_after, down_after) = {
            let faults = self.faults.lock().unwrap();
            if let Some(t) = items
                .iter()
                .map(&name)
                .find(|t| faults.client_refuses.iter().any(|r| r == t))
            {
                return Err(BrokerError::Client(format!(
                    "topic {t}: refused by the client library"
                )));
            }
            (faults.lose_answer_after, faults.down_after_loss)
        };
        self.enter(api, items.len(), requests)?;
        {
            let faults = self.faults.lock().unwrap();
            if let Some(t) = items
                .iter()
                .map(&name)
                .find(|t| faults.broker_refuses.iter().any(|r| r == t))
            {
                return Err(BrokerError::Rejected {
                    api,
                    code: "InvalidRequest".into(),
                    message: format!("the request naming {t} is invalid"),
                });
            }
        }
        let mut topics = self.topics.lock().unwrap();
        if let Some(applied) = lose_after {
            for item in items.iter().take(applied) {
                let _ = apply(&mut topics, item);
            }
            self.faults.lock().unwrap().lose_answer_after = None;
            if down_after {
                self.set_down(true);
            }
            return Err(BrokerError::Timeout {
                api,
                after: std::time::Duration::from_secs(30),
            });
        }
        Ok(items
            .iter()
            .map(|item| TopicOutcome {
                topic: name(item).to_owned(),
                result: apply(&mut topics, item),
            })
            .collect())
    }
}

fn dynamic(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: true,
        read_only: false,
    }
}

fn reject(code: &str, message: String) -> Rejection {
    Rejection {
        code: code.into(),
        message,
        unsupported: false,
    }
}

impl BrokerAdmin for MemoryBroker {
    fn snapshot_tallied<'a>(
        &'a self,
        describe: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
        let result = (|| {
            self.enter("Metadata", 0, requests)?;
            let mut topics = self.topics.lock().unwrap().clone();
            let described = describe.iter().filter(|d| topics.contains_key(*d)).count();
            if described > 0 {
                self.enter("DescribeConfigs", described, requests)?;
            }
            for (name, t) in topics.iter_mut() {
                if !describe.contains(name) {
                    t.configs.clear();
                }
            }
            Ok(BrokerSnapshot {
                topics,
                known_config_keys: None,
            })
        })();
        async move { result }.boxed()
    }

    fn create_topics_tallied<'a>(
        &'a self,
        topics: &'a [NewTopic],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        let result = self.each(
            "CreateTopics",
            topics,
            requests,
            |t| &t.name,
            |all, t| {
                if all.contains_key(&t.name) {
                    return Err(reject(
                        "TopicAlreadyExists",
                        format!("Topic '{}' already exists.", t.name),
                    ));
                }
                all.insert(
                    t.name.clone(),
                    ObservedTopic {
                        topic_id: None,
                        partitions: t.partitions,
                        replication_factor: t.replication_factor.unwrap_or(1),
                        configs: t
                            .config
                            .iter()
                            .map(|(k, v)| (k.clone(), dynamic(v)))
                            .collect(),
                    },
                );
                Ok(())
            },
        );
        async move { result }.boxed()
    }

    fn create_partitions_tallied<'a>(
        &'a self,
        topics: &'a [(String, i32)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        let unsupported = self.no_create_partitions.load(Ordering::SeqCst);
        let result = if unsupported {
            let result =
                self.call("CreatePartitions", topics.len())
                    .and(Err(BrokerError::Unsupported {
                        api: "CreatePartitions",
                        message: "CreatePartitions (KIP-195) not supported by broker".into(),
                    }));
            requests.request("CreatePartitions", result.as_ref().map(|_| ()));
            result
        } else {
            self.each("CreatePartitions", topics, requests, |t| &t.0, |all, (name, total)| match all.get_mut(name) {
                None => Err(reject("UnknownTopicOrPartition", format!("Topic '{name}' does not exist."))),
                Some(t) if *total <= t.partitions => Err(reject(
                    "InvalidPartitions",
                    format!("Topic currently has {} partitions, which is higher than the requested {total}.", t.partitions),
                )),
                Some(t) => {
                    t.partitions = *total;
                    Ok(())
                }
            })
        };
        async move { result }.boxed()
    }

    fn alter_configs_tallied<'a>(
        &'a self,
        topics: &'a [(String, Vec<ConfigChange>)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        let result = self.each(
            "IncrementalAlterConfigs",
            topics,
            requests,
            |t| &t.0,
            |all, (name, changes)| {
                let t = all.get_mut(name).ok_or_else(|| {
                    reject(
                        "UnknownTopicOrPartition",
                        format!("Topic '{name}' does not exist."),
                    )
                })?;
                for change in changes {
                    match change {
                        ConfigChange::Set { key, to, .. } => {
                            t.configs.insert(key.clone(), dynamic(to));
                        }
                        ConfigChange::Reset { key, .. } => {
                            t.configs.remove(key);
                        }
                    }
                }
                Ok(())
            },
        );
        async move { result }.boxed()
    }

    fn delete_topics_tallied<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
        let result = self.each(
            "DeleteTopics",
            topics,
            requests,
            |t| t,
            |all, name| {
                all.remove(name).map(|_| ()).ok_or_else(|| {
                    reject(
                        "UnknownTopicOrPartition",
                        format!("Topic '{name}' does not exist."),
                    )
                })
            },
        );
        async move { result }.boxed()
    }

    fn cluster_info_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
        let result = self.enter("Metadata", 0, requests).map(|()| ClusterInfo {
            cluster_id: Some("memory-cluster".into()),
            brokers: vec![(1, "memory:9092".into())],
            controller: Some(1),
            answered_by: 1,
        });
        async move { result }.boxed()
    }
}
