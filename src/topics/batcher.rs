//! Per-cluster batching, the way Strimzi's batching topic controller works: reconciles of many
//! KafkaTopics that arrive within a short window become one broker round trip — one snapshot
//! (Metadata + DescribeConfigs), one plan, and one request per kind of change — instead of one
//! broker call per object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::runtime::batch::gather;
use crate::runtime::instrumented::RequestCounter;
use crate::runtime::metrics::{QueueDepth, TOPIC_QUEUE};
use crate::runtime::{Connection, Options};

use super::desired::DesiredTopic;
use crate::api::DeletionPolicy;
use crate::api::Reason;
use crate::kafka::ObservedTopic;
use crate::kafka::{BrokerAdmin, BrokerError};
use crate::model::TopicName;
use crate::topics::batch_size::BatchSizer;
use crate::topics::execute::{execute, Executed, Outcome};
use crate::topics::plan::{plan, Action, Removal};

/// What a reconcile asks of the broker for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Make the topic match `desired`. With `execute` false the plan is computed and
    /// returned, nothing is changed (dry-run, paused).
    Ensure {
        desired: DesiredTopic,
        execute: bool,
    },
    /// The resource is being deleted: delete the topic if the policy says so.
    Remove {
        name: TopicName,
        policy: DeletionPolicy,
    },
}

impl Intent {
    pub fn topic(&self) -> &TopicName {
        match self {
            Intent::Ensure { desired, .. } => &desired.name,
            Intent::Remove { name, .. } => name,
        }
    }
}

/// The broker's side of one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The topic as observed before anything was done (`None`: absent).
    pub observed: Option<ObservedTopic>,
    /// The actions planned for this topic.
    pub actions: Vec<Action>,
    /// What became of them; empty when nothing was executed.
    pub executed: Vec<Executed>,
}

struct Request {
    intent: Intent,
    reply: oneshot::Sender<Result<Answer, BrokerError>>,
}

/// The handle reconciles submit intents through; the batching task runs until every handle is
/// dropped.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Request>,
    /// Counts the submissions waiting for their round trip.
    queue: QueueDepth,
}

impl Batcher {
    /// The batcher of `connection`'s cluster, started on first use (one per connection).
    pub fn of(connection: &Connection, options: &Options) -> Arc<Batcher> {
        connection.attached(|c| {
            Batcher::spawn(
                c.admin.clone(),
                c.admin_requests(),
                options.batch_window,
                BatchSizer::new(options.max_batch, c.request_timeout()),
            )
            .with_queue_depth(options.metrics.queue(TOPIC_QUEUE))
        })
    }

    /// Starts the batching task for one cluster; `requests` counts what `admin` sends (each
    /// round trip logs its share and the total); `sizer` decides how many topics a round trip
    /// takes.
    pub fn spawn(
        admin: Arc<dyn BrokerAdmin>,
        requests: RequestCounter,
        window: Duration,
        sizer: BatchSizer,
    ) -> Self {
        let (tx, rx) = mpsc::channel(sizer.limit() * 4);
        tokio::spawn(run(admin, requests, rx, window, sizer));
        Self {
            tx,
            queue: QueueDepth::default(),
        }
    }

    /// Counts the submissions waiting for their round trip in `queue`.
    pub fn with_queue_depth(self, queue: QueueDepth) -> Self {
        Self { queue, ..self }
    }

    /// Submits one intent and waits for its batch to be done.
    pub async fn submit(&self, intent: Intent) -> Result<Answer, BrokerError> {
        let _queued = self.queue.pending();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { intent, reply })
            .await
            .map_err(|_| BrokerError::Client("the cluster's batcher has stopped".into()))?;
        answer
            .await
            .map_err(|_| BrokerError::Client("the cluster's batcher dropped the request".into()))?
    }
}

async fn run(
    admin: Arc<dyn BrokerAdmin>,
    requests: RequestCounter,
    mut rx: mpsc::Receiver<Request>,
    window: Duration,
    mut sizer: BatchSizer,
) {
    while let Some(first) = rx.recv().await {
        let batch = gather(&mut rx, first, window, sizer.limit()).await;
        let (intents, replies): (Vec<Intent>, Vec<_>) =
            batch.into_iter().map(|r| (r.intent, r.reply)).unzip();
        let (requests_before, started) = (requests.get(), std::time::Instant::now());
        let result = process(admin.as_ref(), &intents).await;
        let elapsed = started.elapsed();
        sizer.observe(intents.len(), elapsed, timed_out(&result));
        tracing::info!(
            intents = intents.len(),
            requests = requests.get() - requests_before,
            total_requests = requests.get(),
            elapsed_ms = elapsed.as_millis() as u64,
            ok = result.is_ok(),
            next_batch = sizer.limit(),
            "broker round trip"
        );
        match result {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Whether a round trip ran into the request timeout: the snapshot did, or a request of the
/// execution did (its topics failed for want of an answer).
fn timed_out(result: &Result<Vec<Answer>, BrokerError>) -> bool {
    match result {
        Err(e) => matches!(e, BrokerError::Timeout { .. }),
        Ok(answers) => answers.iter().flat_map(|a| &a.executed).any(|e| {
            matches!(&e.outcome, Outcome::Failed { reason, .. }
                if matches!(reason, Reason::BrokerUnreachable | Reason::NoResponse))
        }),
    }
}

/// One round trip for a batch of intents: snapshot all their topics at once, plan the
/// executable ones together, execute that plan (one request per kind of change), and plan the
/// dry ones without executing. Answers come back in the order of `intents`.
pub async fn process(
    admin: &dyn BrokerAdmin,
    intents: &[Intent],
) -> Result<Vec<Answer>, BrokerError> {
    let names: Vec<String> = intents
        .iter()
        .map(|i| i.topic().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let snapshot = admin.snapshot(&names).await?;

    // One intent per topic: a removal wins over an ensure, otherwise the last one counts.
    let mut latest: BTreeMap<&TopicName, &Intent> = BTreeMap::new();
    for intent in intents {
        let keep_removal = matches!(latest.get(intent.topic()), Some(Intent::Remove { .. }));
        if !keep_removal {
            latest.insert(intent.topic(), intent);
        }
    }
    let mut run_now = Vec::new();
    let mut dry = Vec::new();
    let mut removals = Vec::new();
    for intent in latest.values() {
        match intent {
            Intent::Ensure { desired, execute } => {
                if *execute {
                    run_now.push(desired.clone());
                } else {
                    dry.push(desired.clone());
                }
            }
            Intent::Remove { name, policy } => removals.push(Removal {
                name: name.clone(),
                policy: *policy,
            }),
        }
    }
    let run_plan = plan(&run_now, &removals, &snapshot);
    let dry_plan = plan(&dry, &[], &snapshot);
    let report = execute(&run_plan, admin).await;

    // Each topic's share of the plans and the report, grouped once (not searched per intent:
    // a batch of n topics stays linear).
    let actions = by_topic(&run_plan.actions, |a| a.topic());
    let dry_actions = by_topic(&dry_plan.actions, |a| a.topic());
    let executed = by_topic(&report.results, |r| r.action.topic());
    Ok(intents
        .iter()
        .map(|intent| {
            let name = intent.topic();
            let dry_run = matches!(intent, Intent::Ensure { execute: false, .. });
            let source = if dry_run { &dry_actions } else { &actions };
            Answer {
                observed: snapshot.topics.get(name.as_str()).cloned(),
                actions: source.get(name).cloned().unwrap_or_default(),
                executed: if dry_run {
                    Vec::new()
                } else {
                    executed.get(name).cloned().unwrap_or_default()
                },
            }
        })
        .collect())
}

/// `items` grouped by the topic `topic` names, each group in the order of `items`.
fn by_topic<'a, T: Clone>(
    items: &'a [T],
    topic: impl Fn(&'a T) -> &'a TopicName,
) -> BTreeMap<&'a TopicName, Vec<T>> {
    let mut grouped: BTreeMap<&TopicName, Vec<T>> = BTreeMap::new();
    for item in items {
        grouped.entry(topic(item)).or_default().push(item.clone());
    }
    grouped
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;
    use crate::kafka::memory::MemoryBroker;
    use crate::kafka::{BrokerSnapshot, ClusterInfo, NewTopic, RequestTally, TopicOutcome};
    use crate::topics::execute::Outcome;
    use crate::topics::plan::ConfigChange;

    fn desired(name: &str, partitions: i32) -> DesiredTopic {
        DesiredTopic {
            name: TopicName::parse(name).unwrap(),
            partitions,
            replication_factor: None,
            config: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn ensure(name: &str, partitions: i32) -> Intent {
        Intent::Ensure {
            desired: desired(name, partitions),
            execute: true,
        }
    }

    #[tokio::test]
    async fn many_submissions_in_one_window_are_one_round_trip() {
        let broker = Arc::new(MemoryBroker::new());
        let batcher = Batcher::spawn(
            broker.clone(),
            RequestCounter::default(),
            Duration::from_millis(50),
            BatchSizer::new(1000, Duration::from_secs(30)),
        );
        let answers = futures::future::join_all(
            (0..200).map(|i| batcher.submit(ensure(&format!("orders-{i}"), 3))),
        )
        .await;
        assert!(answers.iter().all(|a| matches!(a, Ok(Answer { executed, .. }) if executed.len() == 1 && executed[0].outcome == Outcome::Done)));
        assert_eq!(broker.topics().len(), 200);
        assert_eq!(
            broker.calls(),
            vec![("Metadata", 0), ("CreateTopics", 200)],
            "one snapshot, one CreateTopics"
        );
    }

    /// The size of every CreateTopics request `broker` received, in order.
    fn create_batches(broker: &MemoryBroker) -> Vec<usize> {
        broker
            .calls()
            .iter()
            .filter(|c| c.0 == "CreateTopics")
            .map(|c| c.1)
            .collect()
    }

    #[tokio::test]
    async fn batches_are_cut_at_the_maximum_size() {
        let broker = Arc::new(MemoryBroker::new());
        let batcher = Batcher::spawn(
            broker.clone(),
            RequestCounter::default(),
            Duration::from_millis(200),
            BatchSizer::new(50, Duration::from_secs(30)),
        );
        futures::future::join_all(
            (0..120).map(|i| batcher.submit(ensure(&format!("clicks-{i}"), 1))),
        )
        .await;
        let creates = create_batches(&broker);
        assert_eq!(creates, vec![50, 50, 20]);
    }

    /// The memory broker, with CreateTopics costing `per_topic` a topic.
    struct SlowCreates {
        broker: Arc<MemoryBroker>,
        per_topic: Duration,
    }

    impl BrokerAdmin for SlowCreates {
        fn snapshot_tallied<'a>(
            &'a self,
            describe: &'a [String],
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
            self.broker.snapshot_tallied(describe, requests)
        }
        fn create_topics_tallied<'a>(
            &'a self,
            topics: &'a [NewTopic],
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            Box::pin(async move {
                tokio::time::sleep(self.per_topic * topics.len() as u32).await;
                self.broker.create_topics_tallied(topics, requests).await
            })
        }
        fn create_partitions_tallied<'a>(
            &'a self,
            topics: &'a [(String, i32)],
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.broker.create_partitions_tallied(topics, requests)
        }
        fn alter_configs_tallied<'a>(
            &'a self,
            topics: &'a [(String, Vec<ConfigChange>)],
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.broker.alter_configs_tallied(topics, requests)
        }
        fn delete_topics_tallied<'a>(
            &'a self,
            topics: &'a [String],
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.broker.delete_topics_tallied(topics, requests)
        }
        fn cluster_info_tallied<'a>(
            &'a self,
            requests: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
            self.broker.cluster_info_tallied(requests)
        }
    }

    #[tokio::test]
    async fn a_slow_round_trip_makes_the_next_batches_smaller() {
        let broker = Arc::new(MemoryBroker::new());
        // 2 ms a topic; round trips should stay under a quarter of 400 ms: 100 topics (200 ms)
        // are too many, about 50 fit.
        let slow = Arc::new(SlowCreates {
            broker: broker.clone(),
            per_topic: Duration::from_millis(2),
        });
        let batcher = Batcher::spawn(
            slow,
            RequestCounter::default(),
            Duration::from_millis(200),
            BatchSizer::new(100, Duration::from_millis(400)),
        );
        futures::future::join_all(
            (0..200).map(|i| batcher.submit(ensure(&format!("rides-{i}"), 1))),
        )
        .await;
        let creates = create_batches(&broker);
        assert_eq!(creates[0], 100, "{creates:?}");
        assert!(
            creates[1..].iter().all(|&n| n <= 50) && creates[1] >= 10,
            "after 100 topics took 200 ms, batches of at most 50: {creates:?}"
        );
        assert_eq!(creates.iter().sum::<usize>(), 200);
        assert_eq!(broker.topics().len(), 200);
    }

    #[tokio::test]
    async fn dry_intents_are_planned_but_not_executed() {
        let broker = MemoryBroker::new();
        let intents = vec![
            Intent::Ensure {
                desired: desired("inventory", 3),
                execute: false,
            },
            ensure("orders", 3),
        ];
        let answers = process(&broker, &intents).await.unwrap();
        assert!(matches!(
            answers[0].actions.as_slice(),
            [Action::Create { .. }]
        ));
        assert!(answers[0].executed.is_empty());
        assert_eq!(answers[1].executed.len(), 1);
        assert_eq!(broker.topics().keys().collect::<Vec<_>>(), ["orders"]);
    }

    #[tokio::test]
    async fn removal_follows_the_policy() {
        let broker = MemoryBroker::new();
        process(&broker, &[ensure("a", 1), ensure("b", 1)])
            .await
            .unwrap();
        let answers = process(
            &broker,
            &[
                Intent::Remove {
                    name: TopicName::parse("a").unwrap(),
                    policy: DeletionPolicy::Retain,
                },
                Intent::Remove {
                    name: TopicName::parse("b").unwrap(),
                    policy: DeletionPolicy::Delete,
                },
            ],
        )
        .await
        .unwrap();
        assert!(answers[0].actions.is_empty());
        assert!(matches!(
            answers[1].actions.as_slice(),
            [Action::Delete { .. }]
        ));
        assert_eq!(broker.topics().keys().collect::<Vec<_>>(), ["a"]);
    }

    #[tokio::test]
    async fn an_unreachable_broker_fails_every_intent_of_the_batch() {
        let broker = Arc::new(MemoryBroker::new());
        broker.set_down(true);
        let batcher = Batcher::spawn(
            broker.clone(),
            RequestCounter::default(),
            Duration::from_millis(20),
            BatchSizer::new(100, Duration::from_secs(30)),
        );
        let answers =
            futures::future::join_all((0..3).map(|i| batcher.submit(ensure(&format!("t{i}"), 1))))
                .await;
        assert!(answers
            .iter()
            .all(|a| matches!(a, Err(BrokerError::Unreachable(_)))));
    }
}
