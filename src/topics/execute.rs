//! Executes a plan against a broker: one batched request per kind of action, in plan order.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::Reason;
use crate::kafka::{BrokerAdmin, BrokerError, NewTopic, TopicOutcome};
use crate::topics::plan::{Action, Plan, Refusal};

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

/// Runs the plan. Refusals are reported, never sent; each group of like actions is one
/// broker request; a failed request fails every action in it with the broker's error.
pub async fn execute(plan: &Plan, admin: &dyn BrokerAdmin) -> Report {
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();

    let mut creates = Vec::new();
    let mut grows = Vec::new();
    let mut alters = Vec::new();
    let mut deletes = Vec::new();
    for (i, action) in plan.actions.iter().enumerate() {
        match action {
            Action::Refuse { reasons, .. } => {
                outcomes.insert(i, Outcome::Refused(reasons.clone()));
            }
            Action::Create {
                name,
                partitions,
                replication_factor,
                config,
            } => creates.push((
                i,
                NewTopic {
                    name: name.to_string(),
                    partitions: *partitions,
                    replication_factor: *replication_factor,
                    config: config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                },
            )),
            Action::IncreasePartitions { name, to, .. } => grows.push((i, (name.to_string(), *to))),
            Action::AlterConfigs { name, changes } => {
                alters.push((i, (name.to_string(), changes.clone())))
            }
            Action::Delete { name } => deletes.push((i, name.to_string())),
        }
    }

    let (idx, batch): (Vec<usize>, Vec<NewTopic>) = creates.into_iter().unzip();
    if !batch.is_empty() {
        let names: Vec<String> = batch.iter().map(|t| t.name.clone()).collect();
        let result = admin.create_topics(&batch).await;
        record(&mut outcomes, "CreateTopics", &idx, &names, result);
    }
    let (idx, batch): (Vec<usize>, Vec<(String, i32)>) = grows.into_iter().unzip();
    if !batch.is_empty() {
        let names: Vec<String> = batch.iter().map(|t| t.0.clone()).collect();
        let result = admin.create_partitions(&batch).await;
        record(&mut outcomes, "CreatePartitions", &idx, &names, result);
    }
    let (idx, batch): (Vec<usize>, Vec<(String, _)>) = alters.into_iter().unzip();
    if !batch.is_empty() {
        let names: Vec<String> = batch.iter().map(|t| t.0.clone()).collect();
        let result = admin.alter_configs(&batch).await;
        record(
            &mut outcomes,
            "IncrementalAlterConfigs",
            &idx,
            &names,
            result,
        );
    }
    let (idx, batch): (Vec<usize>, Vec<String>) = deletes.into_iter().unzip();
    if !batch.is_empty() {
        let result = admin.delete_topics(&batch).await;
        record(&mut outcomes, "DeleteTopics", &idx, &batch, result);
    }

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

/// Matches a batch's per-topic results back to the plan's action indices.
fn record(
    outcomes: &mut BTreeMap<usize, Outcome>,
    api: &'static str,
    indices: &[usize],
    names: &[String],
    result: Result<Vec<TopicOutcome>, BrokerError>,
) {
    match &result {
        Ok(results) => {
            let failed = results.iter().filter(|r| r.result.is_err()).count();
            tracing::info!(api, topics = names.len(), failed, "broker batch");
        }
        Err(e) => tracing::warn!(api, topics = names.len(), error = %e, "broker batch failed"),
    }
    match result {
        Err(e) => {
            for i in indices {
                outcomes.insert(
                    *i,
                    Outcome::Failed {
                        reason: e.reason(),
                        message: e.to_string(),
                    },
                );
            }
        }
        Ok(results) => {
            let by_topic: BTreeMap<&str, &TopicOutcome> =
                results.iter().map(|r| (r.topic.as_str(), r)).collect();
            for (i, name) in indices.iter().zip(names) {
                if let Some(r) = by_topic.get(name.as_str()) {
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
                    outcomes.insert(*i, outcome);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use futures::FutureExt;

    use super::*;
    use crate::kafka::BrokerSnapshot;
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

    #[tokio::test]
    async fn an_empty_plan_sends_nothing() {
        let admin = FakeAdmin::default();
        let report = execute(&Plan::default(), &admin).await;
        assert!(report.succeeded());
        assert!(admin.calls.lock().unwrap().is_empty());
    }
}
