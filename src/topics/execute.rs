//! Executes a plan against a broker: one batched request per kind of action, in plan order.
//!
//! One topic never sinks the others of its batch: a request refused whole (by the client
//! library before sending, or by the broker) is split in halves and each half retried, down to
//! the topic at fault. A request whose answer is lost (the broker stopped answering or timed
//! out) is not guessed at: the broker is read again and each topic reported as it is found
//! there; if even that read fails, the rest of the plan is not sent.

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::api::Reason;
use crate::kafka::{BrokerAdmin, BrokerError, BrokerSnapshot, NewTopic, TopicOutcome};
use crate::model::topic_config;
use crate::topics::plan::{Action, ConfigChange, Plan, Refusal};

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The planner refused it; nothing was sent.
    Refused(Vec<Refusal>),
    /// The broker refused it or could not be asked; `reason` is the condition reason
    /// (`BrokerRejected`, `BrokerUnsupported`, `BrokerUnreachable`, ...), `message` the
    /// broker's own text.
    Failed {
        reason: Reason,
        message: String,
    },
}

/// One action and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub action: Action,
    pub outcome: Outcome,
}

/// Everything an execution did, in plan order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub results: Vec<Executed>,
}

impl Report {
    /// True when every action was done (nothing refused, nothing failed).
    pub fn succeeded(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Done)
    }
}

impl fmt::Display for Executed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Done => write!(f, "{}\n  done", self.action),
            Outcome::Refused(_) => write!(f, "{}", self.action),
            Outcome::Failed { reason, message } => {
                write!(f, "{}\n  FAILED ({reason}): {message}", self.action)
            }
        }
    }
}

/// The message of an action whose request went unanswered and which the broker, read again,
/// does not show done. The same for every topic of the request, so reports can group them.
pub fn lost_message(error: &BrokerError) -> String {
    format!("the broker stopped answering before this took effect ({error})")
}

/// The message of an action whose request went unanswered when the broker could not be read
/// again either.
pub fn unknown_message(error: &BrokerError) -> String {
    format!("the broker stopped answering ({error}) and could not be read again: whether this took effect is unknown (run plan to see)")
}

/// The message of an action not sent because the broker had stopped answering.
pub fn not_sent_message(error: &BrokerError) -> String {
    format!("not sent: the broker had stopped answering ({error})")
}

/// The kinds of change, each one batched request, in the order they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Api {
    CreateTopics,
    CreatePartitions,
    IncrementalAlterConfigs,
    DeleteTopics,
}

impl Api {
    fn of(action: &Action) -> Option<Api> {
        match action {
            Action::Refuse { .. } => None,
            Action::Create { .. } => Some(Api::CreateTopics),
            Action::IncreasePartitions { .. } => Some(Api::CreatePartitions),
            Action::AlterConfigs { .. } => Some(Api::IncrementalAlterConfigs),
            Action::Delete { .. } => Some(Api::DeleteTopics),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::CreateTopics => "CreateTopics",
            Api::CreatePartitions => "CreatePartitions",
            Api::IncrementalAlterConfigs => "IncrementalAlterConfigs",
            Api::DeleteTopics => "DeleteTopics",
        }
    }
}

/// The answer to a request was lost: whether it took effect can only be read from the broker.
fn lost(e: &BrokerError) -> bool {
    matches!(e, BrokerError::Unreachable(_) | BrokerError::Timeout { .. })
}

/// A request refused whole for what it carries (the client library's checks, or the broker
/// refusing the request): smaller requests may go through.
fn splittable(e: &BrokerError) -> bool {
    matches!(e, BrokerError::Client(_) | BrokerError::Rejected { .. })
}

/// Runs the plan. Refusals are reported, never sent; each group of like actions is one
/// broker request (split only to isolate a topic the client or broker refuses whole).
pub async fn execute(plan: &Plan, admin: &dyn BrokerAdmin) -> Report {
    let mut run = Run {
        plan,
        admin,
        outcomes: BTreeMap::new(),
        stopped: None,
    };
    let mut groups: BTreeMap<Api, Vec<usize>> = BTreeMap::new();
    for (i, action) in plan.actions.iter().enumerate() {
        match (action, Api::of(action)) {
            (Action::Refuse { reasons, .. }, _) => {
                run.outcomes.insert(i, Outcome::Refused(reasons.clone()));
            }
            (_, Some(api)) => groups.entry(api).or_default().push(i),
            (_, None) => {}
        }
    }
    for (api, batch) in groups {
        run.batch(api, batch).await;
    }

    let mut outcomes = run.outcomes;
    Report {
        results: plan
            .actions
            .iter()
            .enumerate()
            .map(|(i, action)| Executed {
                action: action.clone(),
                outcome: outcomes.remove(&i).unwrap_or(Outcome::Failed {
                    reason: Reason::NoResponse,
                    message: "the broker's answer did not mention this topic".into(),
                }),
            })
            .collect(),
    }
}

/// One execution in progress.
struct Run<'a> {
    plan: &'a Plan,
    admin: &'a dyn BrokerAdmin,
    outcomes: BTreeMap<usize, Outcome>,
    /// Set once a request went unanswered and the broker could not be read again: nothing
    /// more is sent.
    stopped: Option<BrokerError>,
}

impl Run<'_> {
    /// Sends one batch (plan indices of one kind) and settles each of its actions.
    async fn batch(&mut self, api: Api, batch: Vec<usize>) {
        if let Some(e) = &self.stopped {
            let message = not_sent_message(e);
            self.fail_all(&batch, e.reason(), &message);
            return;
        }
        let result = self.send(api, &batch).await;
        self.settle(api, batch, result).await;
    }

    /// One request carrying the actions at `batch`.
    async fn send(&self, api: Api, batch: &[usize]) -> Result<Vec<TopicOutcome>, BrokerError> {
        let actions = batch.iter().map(|i| &self.plan.actions[*i]);
        match api {
            Api::CreateTopics => {
                let topics: Vec<NewTopic> = actions
                    .filter_map(|a| match a {
                        Action::Create {
                            name,
                            partitions,
                            replication_factor,
                            config,
                        } => Some(NewTopic {
                            name: name.to_string(),
                            partitions: *partitions,
                            replication_factor: *replication_factor,
                            config: config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        }),
                        _ => None,
                    })
                    .collect();
                self.admin.create_topics(&topics).await
            }
            Api::CreatePartitions => {
                let topics: Vec<(String, i32)> = actions
                    .filter_map(|a| match a {
                        Action::IncreasePartitions { name, to, .. } => {
                            Some((name.to_string(), *to))
                        }
                        _ => None,
                    })
                    .collect();
                self.admin.create_partitions(&topics).await
            }
            Api::IncrementalAlterConfigs => {
                let topics: Vec<(String, Vec<ConfigChange>)> = actions
                    .filter_map(|a| match a {
                        Action::AlterConfigs { name, changes } => {
                            Some((name.to_string(), changes.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                self.admin.alter_configs(&topics).await
            }
            Api::DeleteTopics => {
                let topics: Vec<String> = actions.map(|a| a.topic().to_string()).collect();
                self.admin.delete_topics(&topics).await
            }
        }
    }

    /// Settles the actions of one request from its result: per-topic answers are recorded; a
    /// lost answer is checked against the broker; a request refused whole is split in halves
    /// until the topic at fault stands alone.
    fn settle(
        &mut self,
        api: Api,
        batch: Vec<usize>,
        result: Result<Vec<TopicOutcome>, BrokerError>,
    ) -> BoxFuture<'_, ()> {
        async move {
            match result {
                Ok(results) => self.record(api, &batch, results),
                Err(e) if lost(&e) => {
                    tracing::warn!(api = api.name(), topics = batch.len(), error = %e, "broker batch unanswered: reading the broker again");
                    self.verify(&batch, &e).await;
                }
                Err(e) if splittable(&e) && batch.len() > 1 => {
                    tracing::info!(api = api.name(), topics = batch.len(), error = %e, "broker batch refused whole: splitting it to isolate the topic at fault");
                    let mut first = batch.clone();
                    let second = first.split_off(batch.len() / 2);
                    let first_result = self.send(api, &first).await;
                    if first_result.as_ref().is_err_and(lost) {
                        self.settle(api, first, first_result).await;
                        self.batch(api, second).await;
                        return;
                    }
                    let second_result = self.send(api, &second).await;
                    if first_result.as_ref().err() == Some(&e)
                        && second_result.as_ref().err() == Some(&e)
                    {
                        // Both halves refused alike: the request's fault, not a topic's.
                        self.fail_all(&batch, e.reason(), &e.to_string());
                        return;
                    }
                    self.settle(api, first, first_result).await;
                    self.settle(api, second, second_result).await;
                }
                Err(e) => {
                    tracing::warn!(api = api.name(), topics = batch.len(), error = %e, "broker batch failed");
                    self.fail_all(&batch, e.reason(), &e.to_string());
                }
            }
        }
        .boxed()
    }

    /// After a lost answer: reads the broker again and reports each action as found there.
    async fn verify(&mut self, batch: &[usize], error: &BrokerError) {
        let names: Vec<String> = batch
            .iter()
            .map(|i| self.plan.actions[*i].topic().to_string())
            .collect();
        match self.admin.snapshot(&names).await {
            Ok(snapshot) => {
                let message = lost_message(error);
                for i in batch {
                    let outcome = if took_effect(&self.plan.actions[*i], &snapshot) {
                        Outcome::Done
                    } else {
                        Outcome::Failed {
                            reason: error.reason(),
                            message: message.clone(),
                        }
                    };
                    self.outcomes.insert(*i, outcome);
                }
            }
            Err(again) => {
                tracing::warn!(error = %again, "the broker could not be read again: sending nothing more");
                self.fail_all(batch, error.reason(), &unknown_message(error));
                self.stopped = Some(error.clone());
            }
        }
    }

    fn fail_all(&mut self, batch: &[usize], reason: Reason, message: &str) {
        for i in batch {
            self.outcomes.insert(
                *i,
                Outcome::Failed {
                    reason,
                    message: message.to_owned(),
                },
            );
        }
    }

    /// Matches a batch's per-topic results back to the plan's actions.
    fn record(&mut self, api: Api, batch: &[usize], results: Vec<TopicOutcome>) {
        let failed = results.iter().filter(|r| r.result.is_err()).count();
        tracing::info!(
            api = api.name(),
            topics = batch.len(),
            failed,
            "broker batch"
        );
        let by_topic: BTreeMap<&str, &TopicOutcome> =
            results.iter().map(|r| (r.topic.as_str(), r)).collect();
        for i in batch {
            if let Some(r) = by_topic.get(self.plan.actions[*i].topic().as_str()) {
                let outcome = match &r.result {
                    Ok(()) => Outcome::Done,
                    Err(rej) => Outcome::Failed {
                        reason: if rej.unsupported {
                            Reason::BrokerUnsupported
                        } else {
                            Reason::BrokerRejected
                        },
                        message: rej.to_string(),
                    },
                };
                self.outcomes.insert(*i, outcome);
            }
        }
    }
}

/// Whether the broker, as read in `snapshot`, shows `action` done.
fn took_effect(action: &Action, snapshot: &BrokerSnapshot) -> bool {
    let topic = snapshot.topics.get(action.topic().as_str());
    match action {
        Action::Create { .. } => topic.is_some(),
        Action::IncreasePartitions { to, .. } => topic.is_some_and(|t| t.partitions >= *to),
        Action::AlterConfigs { changes, .. } => topic.is_some_and(|t| {
            changes.iter().all(|c| match c {
                ConfigChange::Set { key, to, .. } => t
                    .configs
                    .get(key)
                    .and_then(|c| c.value.as_deref())
                    .is_some_and(|v| topic_config::same_value(key, v, to)),
                ConfigChange::Reset { key, .. } => !t.configs.get(key).is_some_and(|c| c.dynamic),
            })
        }),
        Action::Delete { .. } => topic.is_none(),
        Action::Refuse { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use futures::FutureExt;

    use super::*;
    use crate::kafka::memory::MemoryBroker;
    use crate::kafka::{ClusterInfo, Rejection, RequestTally};
    use crate::model::TopicName;
    use crate::topics::plan::{ConfigChange, Refusal};

    /// Records each call's API and topics; answers from a script.
    #[derive(Default)]
    struct FakeAdmin {
        calls: Mutex<Vec<(&'static str, Vec<String>)>>,
        reject: Vec<String>,
        partitions_unsupported: bool,
        omit: Vec<String>,
    }

    impl FakeAdmin {
        fn answer(
            &self,
            api: &'static str,
            topics: Vec<String>,
            requests: &mut RequestTally,
        ) -> BoxFuture<'_, Result<Vec<TopicOutcome>, BrokerError>> {
            self.calls.lock().unwrap().push((api, topics.clone()));
            let result = if api == "CreatePartitions" && self.partitions_unsupported {
                Err(BrokerError::Unsupported {
                    api,
                    message: "CreatePartitions (KIP-195) not supported by broker".into(),
                })
            } else {
                Ok(topics
                    .into_iter()
                    .filter(|t| !self.omit.contains(t))
                    .map(|t| TopicOutcome {
                        result: if self.reject.contains(&t) {
                            Err(Rejection {
                                code: "PolicyViolation".into(),
                                message: format!("{t} violates policy"),
                                unsupported: false,
                            })
                        } else {
                            Ok(())
                        },
                        topic: t,
                    })
                    .collect())
            };
            requests.request(api, result.as_ref().map(|_| ()));
            async move { result }.boxed()
        }
    }

    impl BrokerAdmin for FakeAdmin {
        fn snapshot_tallied<'a>(
            &'a self,
            _: &'a [String],
            _: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<BrokerSnapshot, BrokerError>> {
            async { Ok(BrokerSnapshot::default()) }.boxed()
        }
        fn create_topics_tallied<'a>(
            &'a self,
            t: &'a [NewTopic],
            r: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.answer(
                "CreateTopics",
                t.iter().map(|t| t.name.clone()).collect(),
                r,
            )
        }
        fn create_partitions_tallied<'a>(
            &'a self,
            t: &'a [(String, i32)],
            r: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.answer(
                "CreatePartitions",
                t.iter().map(|t| t.0.clone()).collect(),
                r,
            )
        }
        fn alter_configs_tallied<'a>(
            &'a self,
            t: &'a [(String, Vec<ConfigChange>)],
            r: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.answer(
                "IncrementalAlterConfigs",
                t.iter().map(|t| t.0.clone()).collect(),
                r,
            )
        }
        fn delete_topics_tallied<'a>(
            &'a self,
            t: &'a [String],
            r: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<Vec<TopicOutcome>, BrokerError>> {
            self.answer("DeleteTopics", t.to_vec(), r)
        }
        fn cluster_info_tallied<'a>(
            &'a self,
            _: &'a mut RequestTally,
        ) -> BoxFuture<'a, Result<ClusterInfo, BrokerError>> {
            async {
                Ok(ClusterInfo {
                    cluster_id: None,
                    brokers: vec![],
                    controller: None,
                    answered_by: 0,
                })
            }
            .boxed()
        }
    }

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).unwrap()
    }

    fn sample_plan() -> Plan {
        let create = |n: &str| Action::Create {
            name: name(n),
            partitions: 3,
            replication_factor: None,
            config: Default::default(),
        };
        Plan {
            actions: vec![
                Action::Refuse {
                    name: name("cancellations"),
                    reasons: vec![Refusal::PartitionDecrease {
                        observed: 6,
                        desired: 3,
                    }],
                },
                create("bookings"),
                create("refunds"),
                create("fraud-alerts"),
                Action::IncreasePartitions {
                    name: name("ride-requests"),
                    from: 2,
                    to: 6,
                },
                Action::AlterConfigs {
                    name: name("schedule-updates"),
                    changes: vec![ConfigChange::Set {
                        key: "retention.ms".into(),
                        from: None,
                        to: "1".into(),
                    }],
                },
                Action::Delete { name: name("old") },
            ],
            retained: vec![],
        }
    }

    #[tokio::test]
    async fn one_request_per_kind_and_refusals_are_never_sent() {
        let admin = FakeAdmin::default();
        let report = execute(&sample_plan(), &admin).await;
        let calls = admin.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                (
                    "CreateTopics",
                    vec![
                        "bookings".to_string(),
                        "refunds".into(),
                        "fraud-alerts".into()
                    ]
                ),
                ("CreatePartitions", vec!["ride-requests".to_string()]),
                (
                    "IncrementalAlterConfigs",
                    vec!["schedule-updates".to_string()]
                ),
                ("DeleteTopics", vec!["old".to_string()]),
            ]
        );
        assert!(!report.succeeded(), "a refusal makes the run unsuccessful");
        assert!(matches!(report.results[0].outcome, Outcome::Refused(_)));
        assert!(report.results[1..]
            .iter()
            .all(|r| r.outcome == Outcome::Done));
    }

    #[tokio::test]
    async fn per_topic_rejections_and_whole_call_failures_keep_the_brokers_words() {
        let admin = FakeAdmin {
            reject: vec!["refunds".into()],
            partitions_unsupported: true,
            omit: vec!["fraud-alerts".into()],
            ..Default::default()
        };
        let report = execute(&sample_plan(), &admin).await;
        let outcome = |topic: &str| {
            &report
                .results
                .iter()
                .find(|r| r.action.topic().as_str() == topic)
                .unwrap()
                .outcome
        };
        assert_eq!(*outcome("bookings"), Outcome::Done);
        assert_eq!(
            *outcome("refunds"),
            Outcome::Failed {
                reason: Reason::BrokerRejected,
                message: "refunds violates policy (PolicyViolation)".into()
            }
        );
        assert!(matches!(
            outcome("fraud-alerts"),
            Outcome::Failed {
                reason: Reason::NoResponse,
                ..
            }
        ));
        match outcome("ride-requests") {
            Outcome::Failed { reason, message } => {
                assert_eq!(*reason, Reason::BrokerUnsupported);
                assert!(message.contains("KIP-195"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            *outcome("schedule-updates"),
            Outcome::Done,
            "one failing batch does not stop the others"
        );
    }

    fn creates(names: &[&str]) -> Plan {
        Plan {
            actions: names
                .iter()
                .map(|n| Action::Create {
                    name: name(n),
                    partitions: 1,
                    replication_factor: None,
                    config: Default::default(),
                })
                .collect(),
            retained: vec![],
        }
    }

    fn failed(report: &Report) -> Vec<(&str, &str)> {
        report
            .results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed { message, .. } => {
                    Some((r.action.topic().as_str(), message.as_str()))
                }
                _ => None,
            })
            .collect()
    }

    const EIGHT: [&str; 8] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"];

    #[tokio::test]
    async fn a_topic_the_client_refuses_does_not_sink_its_batch() {
        let broker = MemoryBroker::new();
        broker.refuse_in_client("a5");
        let report = execute(&creates(&EIGHT), &broker).await;
        assert_eq!(
            failed(&report),
            [(
                "a5",
                "client configuration: topic a5: refused by the client library"
            )]
        );
        let created: Vec<String> = broker.topics().into_keys().collect();
        assert_eq!(created, ["a0", "a1", "a2", "a3", "a4", "a6", "a7"]);
        // Halves sent: 0-3 (ok), 4-7 (refused in the client: not sent), 4-5 (same), 4 (ok),
        // 5 (refused), 6-7 (ok): three requests reach the broker.
        assert_eq!(broker.requests_made(), 3);
    }

    #[tokio::test]
    async fn a_request_the_broker_refuses_whole_is_split_down_to_the_topic_at_fault() {
        let broker = MemoryBroker::new();
        broker.refuse_whole_request("a2");
        let report = execute(&creates(&EIGHT), &broker).await;
        let failures = failed(&report);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].0, "a2");
        assert!(failures[0].1.contains("the request naming a2 is invalid"));
        assert_eq!(broker.topics().len(), 7, "every other topic created");
        assert!(
            broker.requests_made() <= 1 + 2 * 3,
            "bisection, not one request per topic: {}",
            broker.requests_made()
        );
    }

    #[tokio::test]
    async fn a_lost_answer_is_settled_by_reading_the_broker_again() {
        let broker = MemoryBroker::new();
        let mut plan = creates(&EIGHT);
        plan.actions.push(Action::Delete { name: name("old") });
        broker
            .create_topics(&[NewTopic {
                name: "old".into(),
                partitions: 1,
                replication_factor: None,
                config: vec![],
            }])
            .await
            .unwrap();
        broker.lose_next_answer(3, false);
        let report = execute(&plan, &broker).await;
        let done: Vec<&str> = report
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Done)
            .map(|r| r.action.topic().as_str())
            .collect();
        assert_eq!(
            done,
            ["a0", "a1", "a2", "old"],
            "created as the broker shows, and the deletion still sent"
        );
        let failures = failed(&report);
        assert_eq!(failures.len(), 5);
        assert!(failures
            .iter()
            .all(|(_, m)| m.starts_with("the broker stopped answering before this took effect")));
    }

    #[tokio::test]
    async fn a_broker_gone_for_good_stops_the_run_and_says_what_is_unknown() {
        let broker = MemoryBroker::new();
        broker.lose_next_answer(3, true);
        let mut plan = creates(&EIGHT);
        plan.actions.push(Action::Delete { name: name("old") });
        let report = execute(&plan, &broker).await;
        let before = broker.requests_made();
        let failures = failed(&report);
        assert_eq!(failures.len(), 9);
        assert!(failures[..8]
            .iter()
            .all(|(_, m)| m.contains("could not be read again")));
        assert!(failures[8]
            .1
            .starts_with("not sent: the broker had stopped answering"));
        assert_eq!(
            broker.calls(),
            [("CreateTopics", 8), ("Metadata", 0)],
            "the deletion was not sent after the broker went away"
        );
        assert_eq!(before, 2);
    }

    proptest::proptest! {
        /// Whatever topics the client or the broker refuse whole, exactly those fail, every
        /// other topic is created, and the requests stay well below one per topic.
        #[test]
        fn splitting_isolates_exactly_the_refused_topics(
            n in 1..60usize,
            refused in proptest::collection::btree_set(0..60usize, 0..4),
            in_client in proptest::bool::ANY,
        ) {
            let names: Vec<String> = (0..n).map(|i| format!("t{i:02}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let broker = MemoryBroker::new();
            let bad: Vec<&str> = refused.iter().filter(|i| **i < n).map(|i| refs[*i]).collect();
            for b in &bad {
                if in_client {
                    broker.refuse_in_client(b);
                } else {
                    broker.refuse_whole_request(b);
                }
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let report = runtime.block_on(execute(&creates(&refs), &broker));
            let failed: Vec<&str> = failed(&report).into_iter().map(|(t, _)| t).collect();
            proptest::prop_assert_eq!(&failed, &bad);
            proptest::prop_assert_eq!(broker.topics().len(), n - bad.len());
            let bound = 1 + 2 * bad.len() as u64 * (usize::BITS - n.leading_zeros()) as u64;
            proptest::prop_assert!(broker.requests_made() <= bound, "{} requests", broker.requests_made());
        }
    }

    #[tokio::test]
    async fn an_empty_plan_sends_nothing() {
        let admin = FakeAdmin::default();
        let report = execute(&Plan::default(), &admin).await;
        assert!(report.succeeded());
        assert!(admin.calls.lock().unwrap().is_empty());
    }
}
