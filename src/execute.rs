//! Executes a plan against a broker: one batched request per kind of action, in plan order.

use std::collections::BTreeMap;
use std::fmt;

use crate::kafka::{BrokerAdmin, BrokerError, NewTopic, TopicOutcome};
use crate::plan::{Action, Plan, Refusal};

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
        reason: &'static str,
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
    record(
        &mut outcomes,
        &idx,
        &batch.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        admin.create_topics(&batch).await,
    );
    let (idx, batch): (Vec<usize>, Vec<(String, i32)>) = grows.into_iter().unzip();
    record(
        &mut outcomes,
        &idx,
        &batch.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        admin.create_partitions(&batch).await,
    );
    let (idx, batch): (Vec<usize>, Vec<(String, _)>) = alters.into_iter().unzip();
    record(
        &mut outcomes,
        &idx,
        &batch.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        admin.alter_configs(&batch).await,
    );
    let (idx, batch): (Vec<usize>, Vec<String>) = deletes.into_iter().unzip();
    record(
        &mut outcomes,
        &idx,
        &batch,
        admin.delete_topics(&batch).await,
    );

    Report {
        results: plan
            .actions
            .iter()
            .enumerate()
            .map(|(i, action)| Executed {
                action: action.clone(),
                outcome: outcomes.remove(&i).unwrap_or(Outcome::Failed {
                    reason: "NoResponse",
                    message: "the broker's answer did not mention this topic".into(),
                }),
            })
            .collect(),
    }
}

/// Matches a batch's per-topic results back to the plan's action indices.
fn record(
    outcomes: &mut BTreeMap<usize, Outcome>,
    indices: &[usize],
    names: &[String],
    result: Result<Vec<TopicOutcome>, BrokerError>,
) {
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
                                "BrokerUnsupported"
                            } else {
                                "BrokerRejected"
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
