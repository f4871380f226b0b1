//! Per-cluster batching of user reconciles, as [`crate::topics::batcher`] does for topics:
//! the reconciles of many KafkaUsers that arrive within a short window become one pass — one
//! DescribeAcls for every principal of the batch, one [`acl_plan`](super::acl_plan::plan), one
//! CreateAcls, one DeleteAcls, one DescribeUserScramCredentials and one
//! AlterUserScramCredentials — a constant number of requests per kind of change, not per user.
//!
//! A broker that lacks an API (Tansu has no DeleteAcls) fails the users whose change needs it,
//! with the broker's refusal; the other changes of the pass still go ahead.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::acl_plan::{plan, DesiredAcls};
use crate::api::Reason;
use crate::kafka::identity::{
    AclBinding, AclOutcome, IdentityAdmin, ScramDeletion, ScramMechanism, ScramUpsert, UserOutcome,
    SCRAM_MIN_ITERATIONS,
};
use crate::kafka::{BrokerError, Sensitive};
use crate::runtime::batch::gather;

/// Iterations of every SCRAM credential Tributary sets (Kafka's minimum for SHA-256/512 and
/// its tools' default).
pub const SCRAM_ITERATIONS: i32 = SCRAM_MIN_ITERATIONS;

/// A SCRAM credential a reconcile wants on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedScram {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub password: Sensitive,
    /// Set it even if the broker has a credential for the mechanism (the password changed
    /// since it was last set: the broker cannot tell).
    pub rotate: bool,
}

/// What a reconcile asks of the broker for one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Make the principal's ACLs exactly `bindings` and its credential `scram`.
    Ensure {
        principal: String,
        bindings: Vec<AclBinding>,
        scram: Option<WantedScram>,
    },
    /// Paused: what [`Intent::Ensure`] of these bindings would change, changing nothing.
    Preview {
        principal: String,
        bindings: Vec<AclBinding>,
    },
    /// The KafkaUser is being deleted: remove every ACL of the principal and the SCRAM
    /// credentials of `scram_user`.
    Remove {
        principal: String,
        scram_user: Option<String>,
    },
}

impl Intent {
    pub fn principal(&self) -> &str {
        match self {
            Intent::Ensure { principal, .. }
            | Intent::Preview { principal, .. }
            | Intent::Remove { principal, .. } => principal,
        }
    }

    fn scram_user(&self) -> Option<&str> {
        match self {
            Intent::Ensure { scram, .. } => scram.as_ref().map(|s| s.user.as_str()),
            Intent::Remove { scram_user, .. } => scram_user.as_deref(),
            Intent::Preview { .. } => None,
        }
    }
}

/// A change that did not happen, and why (the broker's own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

/// The broker's side of one intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The principal's bindings on the broker after the pass (sorted).
    pub in_force: Vec<AclBinding>,
    pub created: Vec<AclBinding>,
    pub deleted: Vec<AclBinding>,
    /// The SCRAM credential was set (or, for a removal, deleted) in this pass.
    pub credential_changed: bool,
    /// The SCRAM credential could not be read or changed (its failure is in `failures`).
    pub credential_failed: bool,
    /// The changes that failed; empty: the broker matches the intent.
    pub failures: Vec<Failure>,
    /// For a preview: what would be done (`+ acl ...`, `- acl ...`), nothing done.
    pub pending: Vec<String>,
}

struct Request {
    intent: Intent,
    reply: oneshot::Sender<Result<Answer, BrokerError>>,
}

/// The handle reconciles submit intents through; the task runs until every handle is dropped.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Request>,
}

impl Batcher {
    /// Starts the batching task for one cluster.
    pub fn spawn(identity: Arc<dyn IdentityAdmin>, window: Duration, max: usize) -> Self {
        let max = max.max(1);
        let (tx, rx) = mpsc::channel(max * 4);
        tokio::spawn(run(identity, rx, window, max));
        Self { tx }
    }

    /// Submits one intent and waits for its batch to be done.
    pub async fn submit(&self, intent: Intent) -> Result<Answer, BrokerError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { intent, reply })
            .await
            .map_err(|_| BrokerError::Client("the cluster's user batcher has stopped".into()))?;
        answer.await.map_err(|_| {
            BrokerError::Client("the cluster's user batcher dropped the request".into())
        })?
    }
}

async fn run(
    identity: Arc<dyn IdentityAdmin>,
    mut rx: mpsc::Receiver<Request>,
    window: Duration,
    max: usize,
) {
    while let Some(first) = rx.recv().await {
        let batch = gather(&mut rx, first, window, max).await;
        let (intents, replies): (Vec<Intent>, Vec<_>) =
            batch.into_iter().map(|r| (r.intent, r.reply)).unzip();
        let started = std::time::Instant::now();
        let result = process(identity.as_ref(), &intents).await;
        tracing::info!(
            intents = intents.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "user round trip"
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

fn failure(e: &BrokerError) -> Failure {
    Failure {
        reason: e.reason(),
        message: e.to_string(),
    }
}

/// One pass for a batch of intents. Answers come back in the order of `intents`; for a
/// principal named by several intents the last counts (a removal wins over an ensure).
pub async fn process(
    identity: &dyn IdentityAdmin,
    intents: &[Intent],
) -> Result<Vec<Answer>, BrokerError> {
    let mut latest: BTreeMap<&str, &Intent> = BTreeMap::new();
    let mut previews = DesiredAcls::new();
    for intent in intents {
        if let Intent::Preview {
            principal,
            bindings,
        } = intent
        {
            previews.manage(principal);
            for b in bindings {
                previews.grant(b.clone());
            }
            continue;
        }
        if !matches!(latest.get(intent.principal()), Some(Intent::Remove { .. })) {
            latest.insert(intent.principal(), intent);
        }
    }

    // ACLs: one read, one plan, one request per kind of change.
    let listing = identity.describe_acls().await?;
    let mut desired = DesiredAcls::new();
    for intent in latest.values() {
        desired.manage(intent.principal());
        if let Intent::Ensure { bindings, .. } = intent {
            for b in bindings {
                desired.grant(b.clone());
            }
        }
    }
    let acl_plan = plan(&desired, &listing.bindings);
    let preview_plan = plan(&previews, &listing.bindings);
    let created = run_acls(&acl_plan.create, identity.create_acls(&acl_plan.create)).await;
    let deleted = run_acls(&acl_plan.delete, identity.delete_acls(&acl_plan.delete)).await;

    // SCRAM: one read of the batch's users, one change for all of them.
    let users: Vec<String> = latest
        .values()
        .filter_map(|i| i.scram_user())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut scram_failures: BTreeMap<String, Failure> = BTreeMap::new();
    let mut present: BTreeMap<String, Vec<ScramMechanism>> = BTreeMap::new();
    if !users.is_empty() {
        match identity.describe_scram(&users).await {
            Ok(described) => {
                for d in described {
                    match d.result {
                        Ok(infos) => {
                            present.insert(d.user, infos.iter().map(|i| i.mechanism).collect());
                        }
                        Err(r) => {
                            scram_failures.insert(
                                d.user,
                                Failure {
                                    reason: Reason::BrokerRejected,
                                    message: format!("DescribeUserScramCredentials: {r}"),
                                },
                            );
                        }
                    }
                }
            }
            Err(e) => {
                for u in &users {
                    scram_failures.insert(u.clone(), failure(&e));
                }
            }
        }
    }
    let (mut upserts, mut deletions) = (Vec::new(), Vec::new());
    for intent in latest.values() {
        let Some(user) = intent.scram_user() else {
            continue;
        };
        if scram_failures.contains_key(user) {
            continue;
        }
        let on_broker = present.get(user).cloned().unwrap_or_default();
        match intent {
            Intent::Ensure {
                scram: Some(wanted),
                ..
            } => {
                if wanted.rotate || !on_broker.contains(&wanted.mechanism) {
                    upserts.push(ScramUpsert {
                        user: wanted.user.clone(),
                        mechanism: wanted.mechanism,
                        iterations: SCRAM_ITERATIONS,
                        password: wanted.password.clone(),
                    });
                }
                // The other mechanism, left from a former spec, goes.
                for m in on_broker.iter().filter(|m| **m != wanted.mechanism) {
                    deletions.push(ScramDeletion {
                        user: user.to_owned(),
                        mechanism: *m,
                    });
                }
            }
            Intent::Remove { .. } => {
                for m in &on_broker {
                    deletions.push(ScramDeletion {
                        user: user.to_owned(),
                        mechanism: *m,
                    });
                }
            }
            Intent::Ensure { scram: None, .. } | Intent::Preview { .. } => {}
        }
    }
    let mut changed_users = BTreeSet::new();
    if !upserts.is_empty() || !deletions.is_empty() {
        match identity.alter_scram(&upserts, &deletions).await {
            Ok(outcomes) => {
                for UserOutcome { user, result } in outcomes {
                    match result {
                        Ok(()) => {
                            changed_users.insert(user);
                        }
                        Err(r) => {
                            scram_failures.insert(
                                user,
                                Failure {
                                    reason: Reason::BrokerRejected,
                                    message: format!("AlterUserScramCredentials: {r}"),
                                },
                            );
                        }
                    }
                }
            }
            Err(e) => {
                for u in upserts
                    .iter()
                    .map(|u| &u.user)
                    .chain(deletions.iter().map(|d| &d.user))
                {
                    scram_failures.insert(u.clone(), failure(&e));
                }
            }
        }
    }

    // Each principal's share, grouped once.
    let mut in_force: BTreeMap<&str, BTreeSet<AclBinding>> = BTreeMap::new();
    for b in listing
        .bindings
        .iter()
        .filter(|b| desired.is_managed(&b.principal) || previews.is_managed(&b.principal))
    {
        in_force.entry(&b.principal).or_default().insert(b.clone());
    }
    let mut answers: BTreeMap<&str, Answer> = BTreeMap::new();
    for (binding, result) in &created {
        let answer = answers.entry(&binding.principal).or_default();
        match result {
            Ok(()) => {
                answer.created.push(binding.clone());
                in_force
                    .entry(&binding.principal)
                    .or_default()
                    .insert(binding.clone());
            }
            // One refusal of a whole request is told once per principal.
            Err(f) if !answer.failures.contains(f) => answer.failures.push(f.clone()),
            Err(_) => {}
        }
    }
    for (binding, result) in &deleted {
        let answer = answers.entry(&binding.principal).or_default();
        match result {
            Ok(()) => {
                answer.deleted.push(binding.clone());
                if let Some(set) = in_force.get_mut(binding.principal.as_str()) {
                    set.remove(binding);
                }
            }
            Err(f) => {
                // One refusal of a whole request is told once per principal.
                if !answer.failures.contains(f) {
                    answer.failures.push(f.clone());
                }
            }
        }
    }
    for b in &preview_plan.create {
        let answer = answers.entry(&b.principal).or_default();
        answer.pending.push(format!("+ acl {b}"));
    }
    for b in &preview_plan.delete {
        let answer = answers.entry(&b.principal).or_default();
        answer.pending.push(format!("- acl {b}"));
    }
    Ok(intents
        .iter()
        .map(|intent| {
            let principal = intent.principal();
            let mut answer = answers.get(principal).cloned().unwrap_or_default();
            answer.in_force = in_force
                .get(principal)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            if let Some(user) = intent.scram_user() {
                answer.credential_changed = changed_users.contains(user);
                if let Some(f) = scram_failures.get(user) {
                    answer.credential_failed = true;
                    answer.failures.push(f.clone());
                }
            }
            answer
        })
        .collect())
}

/// The outcome of each of `bindings` from one batched request (nothing is sent for none): a
/// request failed whole fails each of its bindings with the broker's error.
async fn run_acls(
    bindings: &[AclBinding],
    request: futures::future::BoxFuture<'_, Result<Vec<AclOutcome>, BrokerError>>,
) -> Vec<(AclBinding, Result<(), Failure>)> {
    if bindings.is_empty() {
        return Vec::new();
    }
    match request.await {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|o| {
                let result = o.result.map_err(|r| Failure {
                    reason: if r.unsupported {
                        Reason::BrokerUnsupported
                    } else {
                        Reason::BrokerRejected
                    },
                    message: format!("{}: {r}", o.binding),
                });
                (o.binding, result)
            })
            .collect(),
        Err(e) => {
            let f = failure(&e);
            bindings
                .iter()
                .map(|b| (b.clone(), Err(f.clone())))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::identity::memory::MemoryIdentity;
    use crate::kafka::identity::{user_principal, AclOperation, AclResourceType};

    fn write(user: &str, topic: &str) -> AclBinding {
        AclBinding::allow(
            user_principal(user),
            AclOperation::Write,
            AclResourceType::Topic,
            topic,
        )
    }

    fn ensure(user: &str, topics: &[&str], password: &str) -> Intent {
        Intent::Ensure {
            principal: user_principal(user),
            bindings: topics.iter().map(|t| write(user, t)).collect(),
            scram: Some(WantedScram {
                user: user.into(),
                mechanism: ScramMechanism::Sha512,
                password: Sensitive::new(password),
                rotate: false,
            }),
        }
    }

    #[tokio::test]
    async fn many_users_are_a_constant_number_of_requests() {
        let broker = MemoryIdentity::new();
        let intents: Vec<Intent> = (0..300)
            .map(|i| ensure(&format!("u{i}"), &["a", "b"], "pw"))
            .collect();
        let answers = process(&broker, &intents).await.unwrap();
        assert!(answers
            .iter()
            .all(|a| a.failures.is_empty() && a.created.len() == 2));
        assert!(answers
            .iter()
            .all(|a| a.in_force.len() == 2 && a.credential_changed));
        assert_eq!(
            broker.calls(),
            vec![
                ("DescribeAcls", 0),
                ("CreateAcls", 600),
                ("DescribeUserScramCredentials", 300),
                ("AlterUserScramCredentials", 300),
            ]
        );
        assert!(broker.authenticates("u7", ScramMechanism::Sha512, "pw"));
        // Again: nothing to do but the two reads.
        let again = process(&broker, &intents).await.unwrap();
        assert!(again
            .iter()
            .all(|a| a.created.is_empty() && !a.credential_changed));
        assert_eq!(broker.calls().len(), 6, "{:?}", broker.calls());
    }

    #[tokio::test]
    async fn drift_is_repaired_and_other_principals_are_never_touched() {
        let broker = MemoryIdentity::new();
        process(&broker, &[ensure("orders", &["orders"], "pw")])
            .await
            .unwrap();
        broker.remove_by_hand(&write("orders", "orders"));
        broker.add_by_hand(write("orders", "payments"));
        broker.add_by_hand(write("someone-else", "orders"));
        let answer = process(&broker, &[ensure("orders", &["orders"], "pw")])
            .await
            .unwrap()
            .remove(0);
        assert_eq!(answer.created, vec![write("orders", "orders")]);
        assert_eq!(answer.deleted, vec![write("orders", "payments")]);
        assert_eq!(answer.in_force, vec![write("orders", "orders")]);
        assert!(broker.acls().contains(&write("someone-else", "orders")));
    }

    #[tokio::test]
    async fn without_delete_acls_the_removals_fail_by_name_and_the_rest_goes_ahead() {
        let broker = MemoryIdentity::like_tansu();
        broker.add_by_hand(write("orders", "payments"));
        let answer = process(&broker, &[ensure("orders", &["orders"], "pw")])
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            answer.created,
            vec![write("orders", "orders")],
            "created anyway"
        );
        assert!(answer.credential_changed, "credential set anyway");
        assert_eq!(answer.failures.len(), 1, "{:?}", answer.failures);
        assert_eq!(answer.failures[0].reason, Reason::BrokerUnsupported);
        assert!(
            answer.failures[0].message.contains("DeleteAcls"),
            "{:?}",
            answer.failures
        );
        assert_eq!(
            answer.in_force,
            vec![write("orders", "orders"), write("orders", "payments")]
        );
    }

    #[tokio::test]
    async fn a_removal_takes_every_acl_and_credential_of_its_principal_only() {
        let broker = MemoryIdentity::new();
        process(
            &broker,
            &[ensure("a", &["x", "y"], "pw"), ensure("b", &["x"], "pw")],
        )
        .await
        .unwrap();
        let answer = process(
            &broker,
            &[Intent::Remove {
                principal: user_principal("a"),
                scram_user: Some("a".into()),
            }],
        )
        .await
        .unwrap()
        .remove(0);
        assert_eq!(answer.deleted.len(), 2);
        assert!(answer.in_force.is_empty() && answer.credential_changed);
        assert_eq!(broker.acls(), vec![write("b", "x")]);
        assert!(broker.credentials("a").is_empty());
        assert_eq!(broker.credentials("b").len(), 1);
    }

    #[tokio::test]
    async fn a_rotated_password_is_set_again_and_a_former_mechanism_goes() {
        let broker = MemoryIdentity::new();
        process(&broker, &[ensure("a", &[], "old")]).await.unwrap();
        let Intent::Ensure {
            principal,
            bindings,
            scram: Some(mut scram),
        } = ensure("a", &[], "new")
        else {
            unreachable!()
        };
        scram.rotate = true;
        scram.mechanism = ScramMechanism::Sha256;
        process(
            &broker,
            &[Intent::Ensure {
                principal,
                bindings,
                scram: Some(scram),
            }],
        )
        .await
        .unwrap();
        assert!(broker.authenticates("a", ScramMechanism::Sha256, "new"));
        assert!(!broker.authenticates("a", ScramMechanism::Sha512, "old"));
        assert_eq!(broker.credentials("a").len(), 1);
    }

    #[tokio::test]
    async fn a_preview_changes_nothing_and_says_what_would_be_done() {
        let broker = MemoryIdentity::new();
        broker.add_by_hand(write("a", "old"));
        let answers = process(
            &broker,
            &[
                Intent::Preview {
                    principal: user_principal("a"),
                    bindings: vec![write("a", "new")],
                },
                ensure("b", &["x"], "pw"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            answers[0].pending,
            vec![
                "+ acl User:a WRITE topic new",
                "- acl User:a WRITE topic old"
            ]
        );
        assert_eq!(answers[0].in_force, vec![write("a", "old")]);
        assert!(answers[0].created.is_empty() && answers[0].deleted.is_empty());
        assert!(broker.credentials("a").is_empty());
        assert_eq!(broker.acls(), vec![write("a", "old"), write("b", "x")]);
        assert!(answers[1].pending.is_empty());
    }

    #[tokio::test]
    async fn submissions_of_one_window_are_one_pass() {
        let broker = Arc::new(MemoryIdentity::new());
        let batcher = Batcher::spawn(broker.clone(), Duration::from_millis(50), 1000);
        let answers = futures::future::join_all(
            (0..50).map(|i| batcher.submit(ensure(&format!("u{i}"), &["t"], "pw"))),
        )
        .await;
        assert!(answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| a.failures.is_empty())));
        assert_eq!(
            broker
                .calls()
                .iter()
                .filter(|c| c.0 == "DescribeAcls")
                .count(),
            1
        );
    }
}
