//! Pure status computation for a KafkaUser: from what a reconcile found and did to the kstatus
//! status written back.

use crate::api::{KafkaUserStatus, Reason};
use crate::kafka::BrokerError;
use crate::model::FieldError;
use crate::runtime::status::{apply_verdict, Verdict};
use crate::runtime::PAUSED_ANNOTATION as PAUSED;

use super::batcher::Answer;
use super::desired::DesiredUser;

/// What one reconcile of a KafkaUser came to.
#[derive(Debug)]
pub enum UserState<'a> {
    Invalid(&'a [FieldError]),
    ClusterNotFound(&'a str),
    /// An older KafkaUser of the namespace claims the principal on the cluster.
    Conflict {
        owner: &'a str,
        principal: &'a str,
    },
    /// The password's Secret is missing, or the user's Secret is taken.
    Secret {
        reason: Reason,
        message: String,
    },
    Broker(&'a BrokerError),
    /// `tributary.io/paused`: previewed, nothing changed.
    Paused {
        desired: &'a DesiredUser,
        answer: &'a Answer,
    },
    Done {
        desired: &'a DesiredUser,
        answer: &'a Answer,
        /// The version of the Secret the credential was read from (SCRAM).
        credential_version: Option<&'a str>,
    },
}

/// The new status of a KafkaUser. `previous` keeps condition transition times and the facts a
/// failed reconcile does not refresh.
pub fn user_status(
    previous: Option<&KafkaUserStatus>,
    generation: Option<i64>,
    secret_name: Option<&str>,
    state: &UserState<'_>,
    now: &str,
) -> KafkaUserStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.secret_name = secret_name.map(str::to_owned);
    status.pending_actions.clear();
    let verdict = match state {
        UserState::Invalid(errors) => Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: Reason::InvalidSpec,
            message: FieldError::join(errors),
        },
        UserState::ClusterNotFound(cluster) => Verdict {
            ready: false,
            reconciling: true,
            stalled: false,
            reason: Reason::ClusterNotFound,
            message: format!("KafkaCluster '{cluster}' does not exist in this namespace"),
        },
        UserState::Conflict { owner, principal } => Verdict {
            ready: false,
            reconciling: false,
            stalled: true,
            reason: Reason::ResourceConflict,
            message: format!("KafkaUser '{owner}' is older and manages principal '{principal}' on this cluster; this one changes nothing"),
        },
        UserState::Secret { reason, message } => Verdict {
            ready: false,
            reconciling: true,
            stalled: false,
            reason: *reason,
            message: message.clone(),
        },
        UserState::Broker(e) => Verdict {
            ready: false,
            reconciling: !e.needs_a_fix(),
            stalled: e.needs_a_fix(),
            reason: e.reason(),
            message: e.to_string(),
        },
        UserState::Paused { desired, answer } => {
            status.principal = Some(desired.principal.clone());
            status.acls = answer.in_force.iter().map(ToString::to_string).collect();
            status.pending_actions = answer.pending.clone();
            let n = answer.pending.len();
            Verdict {
                ready: n == 0,
                reconciling: false,
                stalled: false,
                reason: Reason::Paused,
                message: if n == 0 {
                    format!("{PAUSED} is set; the ACLs on the broker match the spec")
                } else {
                    format!("{PAUSED} is set; {n} ACL change(s) pending (status.pendingActions)")
                },
            }
        }
        UserState::Done {
            desired,
            answer,
            credential_version,
        } => {
            status.principal = Some(desired.principal.clone());
            status.acls = answer.in_force.iter().map(ToString::to_string).collect();
            if !answer.credential_failed {
                if let Some(v) = credential_version {
                    status.credential_version = Some((*v).to_owned());
                }
            }
            match answer.failures.first() {
                None => Verdict {
                    ready: true,
                    reconciling: false,
                    stalled: false,
                    reason: Reason::InSync,
                    message: format!(
                        "{} with {} ACL(s) on the broker",
                        desired.principal,
                        answer.in_force.len()
                    ),
                },
                Some(first) => {
                    let stalled = first.reason == Reason::BrokerUnsupported;
                    Verdict {
                        ready: false,
                        reconciling: !stalled,
                        stalled,
                        reason: first.reason,
                        message: answer
                            .failures
                            .iter()
                            .map(|f| f.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                    }
                }
            }
        }
    };
    if !matches!(
        state,
        UserState::Done { .. } | UserState::Paused { .. } | UserState::Broker(_)
    ) {
        // Nothing was read from the broker: what it held is not known to be in force.
        status.acls.clear();
    }
    apply_verdict(&mut status.conditions, &verdict, generation, now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConditionStatus;
    use crate::kafka::identity::{user_principal, AclBinding, AclOperation, AclResourceType};
    use crate::users::batcher::Failure;

    fn ready(s: &KafkaUserStatus) -> (ConditionStatus, String, String) {
        let c = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        (c.status, c.reason.clone(), c.message.clone())
    }

    fn desired() -> DesiredUser {
        DesiredUser {
            principal: user_principal("orders"),
            credential: None,
            bindings: vec![],
        }
    }

    #[test]
    fn in_sync_lists_the_acls_in_force_and_the_credential_version() {
        let b = AclBinding::allow(
            user_principal("orders"),
            AclOperation::Write,
            AclResourceType::Topic,
            "orders",
        );
        let answer = Answer {
            in_force: vec![b],
            ..Default::default()
        };
        let d = desired();
        let s = user_status(
            None,
            Some(2),
            Some("orders-kafka"),
            &UserState::Done {
                desired: &d,
                answer: &answer,
                credential_version: Some("orders-kafka@7"),
            },
            "now",
        );
        assert_eq!(ready(&s).0, ConditionStatus::True);
        assert_eq!(ready(&s).1, "InSync");
        assert_eq!(s.acls, vec!["User:orders WRITE topic orders"]);
        assert_eq!(s.principal.as_deref(), Some("User:orders"));
        assert_eq!(s.secret_name.as_deref(), Some("orders-kafka"));
        assert_eq!(s.credential_version.as_deref(), Some("orders-kafka@7"));
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn an_unsupported_api_stalls_naming_it_and_a_failed_credential_keeps_the_old_version() {
        let answer = Answer {
            failures: vec![
                Failure {
                    reason: Reason::BrokerUnsupported,
                    message: "the broker does not support DeleteAcls: ...".into(),
                },
                Failure {
                    reason: Reason::BrokerRejected,
                    message: "AlterUserScramCredentials: no".into(),
                },
            ],
            credential_failed: true,
            ..Default::default()
        };
        let previous = KafkaUserStatus {
            credential_version: Some("s@1".into()),
            ..Default::default()
        };
        let d = desired();
        let s = user_status(
            Some(&previous),
            Some(1),
            None,
            &UserState::Done {
                desired: &d,
                answer: &answer,
                credential_version: Some("s@2"),
            },
            "now",
        );
        let (status, reason, message) = ready(&s);
        assert_eq!(
            (status, reason.as_str()),
            (ConditionStatus::False, "BrokerUnsupported")
        );
        assert!(message.contains("DeleteAcls") && message.contains("AlterUserScram"));
        assert_eq!(s.credential_version.as_deref(), Some("s@1"));
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(stalled.status, ConditionStatus::True);
    }

    #[test]
    fn a_conflict_names_the_owner_and_the_principal() {
        let s = user_status(
            None,
            Some(1),
            None,
            &UserState::Conflict {
                owner: "orders",
                principal: "User:orders",
            },
            "now",
        );
        let (status, reason, message) = ready(&s);
        assert_eq!(
            (status, reason.as_str()),
            (ConditionStatus::False, "ResourceConflict")
        );
        assert!(message.contains("KafkaUser 'orders' is older") && message.contains("User:orders"));
    }
}
