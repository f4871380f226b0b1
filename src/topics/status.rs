//! Pure status computation for a KafkaTopic: from what a reconcile found and did to the status
//! written back, in the kstatus form GitOps tools read (`Ready`, `Reconciling`, `Stalled`,
//! `observedGeneration`).

use crate::api::ConditionStatus;
use crate::api::KafkaTopicStatus;
use crate::api::Reason;
use crate::kafka::BrokerError;
use crate::model::FieldError;
use crate::runtime::status::{apply_verdict, set_condition, Verdict, READY, RECONCILING};

use super::batcher::Answer;
use super::desired::DesiredTopic;
use super::execute::Outcome;
use super::plan::Action;
/// Why no changes were executed for a planned topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// `tributary.io/paused: "true"`.
    Paused,
    /// `tributary.io/dry-run: "true"`.
    DryRun,
}

impl Hold {
    fn reason(self) -> Reason {
        match self {
            Hold::Paused => Reason::Paused,
            Hold::DryRun => Reason::DryRun,
        }
    }
}

/// What one reconcile of a KafkaTopic came to.
#[derive(Debug, Clone)]
pub enum TopicState<'a> {
    Invalid(&'a [FieldError]),
    ClusterNotFound(&'a str),
    Conflict {
        owner: &'a str,
    },
    Broker(&'a BrokerError),
    Planned {
        desired: &'a DesiredTopic,
        answer: &'a Answer,
        hold: Option<Hold>,
    },
}

/// The new status of a KafkaTopic. `previous` keeps condition transition times and the
/// observed facts a failed reconcile does not refresh.
pub fn topic_status(
    previous: Option<&KafkaTopicStatus>,
    generation: Option<i64>,
    topic_name: &str,
    state: &TopicState<'_>,
    now: &str,
) -> KafkaTopicStatus {
    if let TopicState::Broker(e @ BrokerError::Timeout { .. }) = state {
        if let Some(kept) = previous.and_then(|p| still_in_sync(p, generation, e, now)) {
            return kept;
        }
    }
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.topic_name = Some(topic_name.to_owned());
    status.pending_actions.clear();
    let verdict = match state {
        TopicState::Invalid(errors) => Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: Reason::InvalidSpec,
            message: crate::model::FieldError::join(errors),
        },
        TopicState::ClusterNotFound(cluster) => Verdict {
            ready: false,
            reconciling: true,
            stalled: false,
            reason: Reason::ClusterNotFound,
            message: format!("KafkaCluster '{cluster}' does not exist in this namespace"),
        },
        TopicState::Conflict { owner } => Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: Reason::ResourceConflict,
            message: format!("topic '{topic_name}' on this cluster is already managed by KafkaTopic '{owner}'; this resource changes nothing"),
        },
        TopicState::Broker(e) => Verdict {
            ready: false,
            reconciling: !e.needs_a_fix(),
            stalled: e.needs_a_fix(),
            reason: e.reason(),
            message: e.to_string(),
        },
        TopicState::Planned { answer, hold, .. } => planned(&mut status, answer, *hold),
    };
    apply_verdict(&mut status.conditions, &verdict, generation, now);
    status
}

/// A slow broker is not an unreachable one: a topic found in sync with this generation at the
/// last look stays `Ready` when a round trip times out (its neighbours' batch may have been the
/// slow part); `Reconciling` says the look is being retried. `None` when the topic was not.
fn still_in_sync(
    previous: &KafkaTopicStatus,
    generation: Option<i64>,
    e: &BrokerError,
    now: &str,
) -> Option<KafkaTopicStatus> {
    let ready = previous.conditions.iter().find(|c| c.type_ == READY)?;
    let in_sync = ready.status == ConditionStatus::True
        && ready.reason == Reason::InSync.to_string()
        && previous.observed_generation == generation;
    if !in_sync {
        return None;
    }
    let mut status = previous.clone();
    set_condition(
        &mut status.conditions,
        RECONCILING,
        ConditionStatus::True,
        e.reason(),
        format!("{e}; retrying (the topic was in sync at the last look)"),
        generation,
        now,
    );
    Some(status)
}

fn planned(status: &mut KafkaTopicStatus, answer: &Answer, hold: Option<Hold>) -> Verdict {
    if let Some(observed) = &answer.observed {
        status.partitions = Some(observed.partitions);
        status.replication_factor = Some(observed.replication_factor);
    }
    if let Some(hold) = hold {
        status.pending_actions = answer.actions.iter().map(ToString::to_string).collect();
        let n = answer.actions.len();
        return if n == 0 {
            Verdict {
                ready: true,
                reconciling: false,
                stalled: false,
                reason: hold.reason(),
                message: format!("{} is set; the topic matches the spec", annotation(hold)),
            }
        } else {
            Verdict {
                ready: false,
                reconciling: false,
                stalled: false,
                reason: hold.reason(),
                message: format!("{} is set: {n} change(s) pending, nothing executed (see status.pendingActions)", annotation(hold)),
            }
        };
    }

    let refusals: Vec<String> = answer
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Refuse { reasons, .. } => Some(
                reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        })
        .collect();
    // The planner never refuses without saying why: the first refusal names the reason.
    if let Some(first) = answer.actions.iter().find_map(|a| match a {
        Action::Refuse { reasons, .. } => reasons.first(),
        _ => None,
    }) {
        return Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: first.reason(),
            message: refusals.join("; "),
        };
    }

    let mut failed = None;
    for executed in &answer.executed {
        match (&executed.outcome, &executed.action) {
            (
                Outcome::Done,
                Action::Create {
                    partitions,
                    replication_factor,
                    ..
                },
            ) => {
                status.partitions = Some(*partitions);
                status.replication_factor = *replication_factor;
            }
            (Outcome::Done, Action::IncreasePartitions { to, .. }) => status.partitions = Some(*to),
            (Outcome::Failed { reason, message }, action) => {
                failed.get_or_insert((*reason, format!("{}: {message}", first_line(action))));
            }
            _ => {}
        }
    }
    match failed {
        Some((reason, message)) => {
            let stalled = reason == Reason::BrokerUnsupported;
            Verdict {
                ready: false,
                reconciling: !stalled,
                stalled,
                reason,
                message,
            }
        }
        None => {
            Verdict {
                ready: true,
                reconciling: false,
                stalled: false,
                reason: Reason::InSync,
                // The same words whether or not this pass changed anything (the Events
                // record the changes), so a resync of an in-sync topic writes nothing.
                message: "the topic matches the spec".into(),
            }
        }
    }
}

fn annotation(hold: Hold) -> &'static str {
    match hold {
        Hold::Paused => "tributary.io/paused",
        Hold::DryRun => "tributary.io/dry-run",
    }
}

fn first_line(action: &Action) -> String {
    action
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{Condition, ConditionStatus, DeletionPolicy};
    use crate::kafka::ObservedTopic;
    use crate::model::TopicName;
    use crate::runtime::status::{READY, STALLED};
    use crate::topics::execute::Executed;
    use crate::topics::plan::Refusal;

    fn desired() -> DesiredTopic {
        DesiredTopic {
            name: TopicName::parse("bookings").unwrap(),
            partitions: 6,
            replication_factor: Some(1),
            config: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            deletion_policy: DeletionPolicy::Retain,
        }
    }

    fn condition<'a>(s: &'a KafkaTopicStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn create() -> Action {
        Action::Create {
            name: desired().name,
            partitions: 6,
            replication_factor: Some(1),
            config: desired().config,
        }
    }

    #[test]
    fn created_topic_is_ready_with_observed_generation() {
        let d = desired();
        let answer = Answer {
            observed: None,
            actions: vec![create()],
            executed: vec![Executed {
                action: create(),
                outcome: Outcome::Done,
            }],
        };
        let s = topic_status(
            None,
            Some(3),
            "bookings",
            &TopicState::Planned {
                desired: &d,
                answer: &answer,
                hold: None,
            },
            "t1",
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.partitions, Some(6));
        let ready = condition(&s, READY);
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::True, "InSync")
        );
        assert_eq!(condition(&s, STALLED).status, ConditionStatus::False);
        assert_eq!(ready.observed_generation, Some(3));
    }

    /// The broker's answer for a topic that matches [`desired`]: 6 partitions, nothing to do.
    fn found_in_sync() -> Answer {
        Answer {
            observed: Some(ObservedTopic {
                partitions: 6,
                replication_factor: 1,
                ..Default::default()
            }),
            actions: vec![],
            executed: vec![],
        }
    }

    #[test]
    fn transition_time_changes_only_with_the_status() {
        let d = desired();
        let answer = found_in_sync();
        let state = TopicState::Planned {
            desired: &d,
            answer: &answer,
            hold: None,
        };
        let first = topic_status(None, Some(1), "bookings", &state, "t1");
        let second = topic_status(Some(&first), Some(1), "bookings", &state, "t2");
        assert_eq!(
            condition(&second, READY).last_transition_time.as_deref(),
            Some("t1")
        );
        let e = BrokerError::Unreachable("down".into());
        let third = topic_status(
            Some(&second),
            Some(1),
            "bookings",
            &TopicState::Broker(&e),
            "t3",
        );
        assert_eq!(
            condition(&third, READY).last_transition_time.as_deref(),
            Some("t3")
        );
        assert_eq!(condition(&third, READY).reason, "BrokerUnreachable");
        assert_eq!(third.partitions, Some(6), "facts observed before are kept");
    }

    #[test]
    fn a_timeout_keeps_a_topic_in_sync_ready_and_says_it_is_retrying() {
        let d = desired();
        let answer = found_in_sync();
        let state = TopicState::Planned {
            desired: &d,
            answer: &answer,
            hold: None,
        };
        let in_sync = topic_status(None, Some(1), "bookings", &state, "t1");
        let slow = BrokerError::Timeout {
            api: "Metadata",
            after: std::time::Duration::from_secs(30),
        };
        let s = topic_status(
            Some(&in_sync),
            Some(1),
            "bookings",
            &TopicState::Broker(&slow),
            "t2",
        );
        let ready = condition(&s, READY);
        assert_eq!(ready.status, ConditionStatus::True);
        assert_eq!(ready.reason, "InSync");
        assert_eq!(ready.last_transition_time.as_deref(), Some("t1"));
        let reconciling = condition(&s, RECONCILING);
        assert_eq!(reconciling.status, ConditionStatus::True);
        assert_eq!(reconciling.reason, "BrokerUnreachable");
        assert!(
            reconciling.message.contains("retrying"),
            "{}",
            reconciling.message
        );

        // A new generation was never seen in sync: the timeout says so.
        let s = topic_status(
            Some(&in_sync),
            Some(2),
            "bookings",
            &TopicState::Broker(&slow),
            "t2",
        );
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
        // Nor was a topic that was not Ready.
        let s = topic_status(None, Some(1), "bookings", &TopicState::Broker(&slow), "t2");
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
        assert_eq!(condition(&s, READY).reason, "BrokerUnreachable");
        // Once the broker answers, Reconciling clears.
        let slow_then = topic_status(
            Some(&in_sync),
            Some(1),
            "bookings",
            &TopicState::Broker(&slow),
            "t2",
        );
        let back = topic_status(Some(&slow_then), Some(1), "bookings", &state, "t3");
        assert_eq!(condition(&back, RECONCILING).status, ConditionStatus::False);
        assert_eq!(
            condition(&back, READY).last_transition_time.as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn refusal_stalls_with_its_reason() {
        let d = desired();
        let refuse = Action::Refuse {
            name: d.name.clone(),
            reasons: vec![Refusal::PartitionDecrease {
                observed: 12,
                desired: 6,
            }],
        };
        let answer = Answer {
            observed: None,
            actions: vec![refuse.clone()],
            executed: vec![Executed {
                action: refuse,
                outcome: Outcome::Refused(vec![]),
            }],
        };
        let s = topic_status(
            None,
            Some(2),
            "bookings",
            &TopicState::Planned {
                desired: &d,
                answer: &answer,
                hold: None,
            },
            "t",
        );
        assert_eq!(condition(&s, READY).reason, "PartitionDecrease");
        assert_eq!(condition(&s, STALLED).status, ConditionStatus::True);
        assert!(condition(&s, READY)
            .message
            .contains("partitions cannot decrease"));
    }

    #[test]
    fn unsupported_broker_api_stalls_with_the_brokers_words() {
        let d = desired();
        let grow = Action::IncreasePartitions {
            name: d.name.clone(),
            from: 3,
            to: 6,
        };
        let answer = Answer {
            observed: None,
            actions: vec![grow.clone()],
            executed: vec![Executed {
                action: grow,
                outcome: Outcome::Failed {
                    reason: Reason::BrokerUnsupported,
                    message: "CreatePartitions (KIP-195) not supported".into(),
                },
            }],
        };
        let s = topic_status(
            None,
            Some(2),
            "bookings",
            &TopicState::Planned {
                desired: &d,
                answer: &answer,
                hold: None,
            },
            "t",
        );
        let ready = condition(&s, READY);
        assert_eq!(ready.reason, "BrokerUnsupported");
        assert!(ready.message.contains("KIP-195"), "{}", ready.message);
        assert_eq!(condition(&s, STALLED).status, ConditionStatus::True);
    }

    #[test]
    fn dry_run_lists_pending_actions() {
        let d = desired();
        let answer = Answer {
            observed: None,
            actions: vec![create()],
            executed: vec![],
        };
        let s = topic_status(
            None,
            Some(1),
            "bookings",
            &TopicState::Planned {
                desired: &d,
                answer: &answer,
                hold: Some(Hold::DryRun),
            },
            "t",
        );
        assert_eq!(s.pending_actions.len(), 1);
        assert!(s.pending_actions[0].starts_with("+ create bookings"));
        assert_eq!(condition(&s, READY).reason, "DryRun");
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
    }

    #[test]
    fn conflict_and_invalid_spec_stall() {
        let s = topic_status(
            None,
            Some(1),
            "bookings",
            &TopicState::Conflict {
                owner: "bookings-main",
            },
            "t",
        );
        assert_eq!(condition(&s, READY).reason, "ResourceConflict");
        assert_eq!(condition(&s, STALLED).status, ConditionStatus::True);
        let errors = [FieldError::new("spec.partitions", "must be >= 1, got 0")];
        let s = topic_status(
            None,
            Some(1),
            "bookings",
            &TopicState::Invalid(&errors),
            "t",
        );
        assert_eq!(
            condition(&s, READY).message,
            "spec.partitions: must be >= 1, got 0"
        );
    }
}
