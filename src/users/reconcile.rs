//! The KafkaUser reconciler: finalizer, conflicts, the user's Secret, the batched broker pass,
//! status (written only when it changed) and Events.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, ResourceExt};

use super::batcher::{Answer, Batcher, Intent, WantedScram};
use super::claims::Claims;
use super::desired::{claimed_principal, desired_user, DesiredUser};
use super::secret::{self, SecretError};
use super::status::{user_status, UserState};
use crate::api::{AuthenticationType, ConditionStatus, KafkaUser, KafkaUserStatus, Reason};
use crate::clusters::validate_cluster;
use crate::kafka::BrokerError;
use crate::runtime::status::{now, READY, RECONCILING};
use crate::runtime::{write_status, Connection, Context, Error, PAUSED_ANNOTATION};

fn paused(user: &KafkaUser) -> bool {
    user.annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The finalizer that holds a KafkaUser until its ACLs and credentials are removed.
pub const USER_FINALIZER: &str = "tributary.io/user";

/// What makes a KafkaUser worth reconciling again: its spec (generation), deletion and
/// finalizers — not its own status writes.
pub fn trigger_hash(user: &KafkaUser) -> Option<u64> {
    let mut h = DefaultHasher::new();
    user.metadata.generation.hash(&mut h);
    user.metadata.uid.hash(&mut h);
    user.metadata.deletion_timestamp.is_some().hash(&mut h);
    user.metadata.finalizers.hash(&mut h);
    user.annotations().get(PAUSED_ANNOTATION).hash(&mut h);
    Some(h.finish())
}

/// Reconciles one KafkaUser; `claims` is the claims index of the watch it came from.
pub async fn reconcile(
    user: Arc<KafkaUser>,
    ctx: Arc<Context>,
    claims: Arc<Claims>,
) -> Result<Action, Error> {
    let api: Api<KafkaUser> =
        Api::namespaced(ctx.client.clone(), &user.namespace().unwrap_or_default());
    finalizer(&api, USER_FINALIZER, user, |event| async {
        match event {
            Finalizer::Apply(u) => apply(&u, &api, &ctx, &claims).await,
            Finalizer::Cleanup(u) => cleanup(&u, &ctx, &claims).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The user batcher of `connection`'s cluster, started on first use (one per connection).
fn batcher(connection: &Connection, ctx: &Context) -> Arc<Batcher> {
    connection.attached(|c| {
        Batcher::spawn(
            c.identity.clone(),
            ctx.options.batch_window,
            ctx.options.max_batch,
        )
    })
}

async fn submit(user: &KafkaUser, ctx: &Context, intent: Intent) -> Result<Answer, BrokerError> {
    let Some(cluster) = ctx.cluster(user.namespace().as_deref(), &user.spec.cluster_ref) else {
        return Err(BrokerError::Client(format!(
            "KafkaCluster '{}' no longer exists",
            user.spec.cluster_ref
        )));
    };
    let connection = ctx.connections.connection(&cluster, &ctx.client).await?;
    batcher(&connection, ctx).submit(intent).await
}

async fn apply(
    user: &KafkaUser,
    api: &Api<KafkaUser>,
    ctx: &Context,
    claims: &Claims,
) -> Result<Action, Error> {
    let id = crate::runtime::object_key(user);
    let secret_name = user.secret_name();
    let secret_name = secret_name.as_deref();
    let Some(cluster) = ctx.cluster(user.namespace().as_deref(), &user.spec.cluster_ref) else {
        let state = UserState::ClusterNotFound(&user.spec.cluster_ref);
        report(api, user, secret_name, &state).await?;
        return Ok(Action::requeue(ctx.backoff.next(&id)));
    };
    let desired = match desired_user(user) {
        Ok(d) => d,
        Err(errors) => {
            report(api, user, secret_name, &UserState::Invalid(&errors)).await?;
            return Ok(Action::await_change());
        }
    };
    let cluster_errors = validate_cluster(&cluster);
    if !cluster_errors.is_empty() {
        let e = BrokerError::Client(format!(
            "KafkaCluster '{}' is invalid: {}",
            cluster.name_any(),
            crate::model::FieldError::join(&cluster_errors)
        ));
        report(api, user, secret_name, &UserState::Broker(&e)).await?;
        return Ok(Action::await_change());
    }
    if let Some(owner) = claims.owner(user) {
        let state = UserState::Conflict {
            owner: &owner,
            principal: &desired.principal,
        };
        report(api, user, secret_name, &state).await?;
        return Ok(Action::await_change());
    }

    if paused(user) {
        // Nothing is written, neither the Secret nor the broker: what would change is shown.
        let intent = Intent::Preview {
            principal: desired.principal.clone(),
            bindings: desired.bindings.clone(),
        };
        let answer = match submit(user, ctx, intent).await {
            Ok(a) => a,
            Err(e) => {
                report(api, user, secret_name, &UserState::Broker(&e)).await?;
                return Ok(Action::requeue(ctx.backoff.next(&id)));
            }
        };
        let state = UserState::Paused {
            desired: &desired,
            answer: &answer,
        };
        report(api, user, secret_name, &state).await?;
        return Ok(Action::await_change());
    }

    // The credential: its Secret written first, so the pods can read what the broker will take.
    let (scram, version) = match &desired.credential {
        None => (None, None),
        Some(credential) => match secret::credential(&ctx.client, user, credential).await {
            Ok(c) => {
                let applied = user
                    .status
                    .as_ref()
                    .and_then(|s| s.credential_version.as_ref());
                let wanted = WantedScram {
                    user: credential.user.clone(),
                    mechanism: credential.mechanism,
                    password: c.password,
                    // Set unless this very version was set: a credential on the broker that
                    // this user never set (a former owner's, one made by hand) is replaced.
                    rotate: applied != Some(&c.version),
                };
                (Some(wanted), Some(c.version))
            }
            Err(SecretError::Kube(e)) => return Err(Error::Kube(e)),
            Err(e) => {
                let reason = match e {
                    SecretError::Taken(_) => Reason::ResourceConflict,
                    _ => Reason::SecretNotFound,
                };
                let state = UserState::Secret {
                    reason,
                    message: e.to_string(),
                };
                report(api, user, secret_name, &state).await?;
                return Ok(Action::requeue(ctx.backoff.next(&id)));
            }
        },
    };
    let rotated = scram.as_ref().is_some_and(|s| s.rotate);
    let intent = Intent::Ensure {
        principal: desired.principal.clone(),
        bindings: desired.bindings.clone(),
        scram,
    };
    let answer = match submit(user, ctx, intent).await {
        Ok(a) => a,
        Err(e) => {
            report(api, user, secret_name, &UserState::Broker(&e)).await?;
            return Ok(Action::requeue(ctx.backoff.next(&id)));
        }
    };
    publish_events(user, &desired, &answer, rotated, ctx).await;
    let status = user_status(
        user.status.as_ref(),
        user.metadata.generation,
        secret_name,
        &UserState::Done {
            desired: &desired,
            answer: &answer,
            credential_version: version.as_deref(),
        },
        &now(),
    );
    // A failure is told once, when it appears (or changes), not at every resync it persists.
    if ready_of(Some(&status)) != ready_of(user.status.as_ref()) {
        for f in &answer.failures {
            ctx.publish(
                user,
                EventType::Warning,
                f.reason.as_str(),
                f.message.clone(),
            )
            .await;
        }
    }
    let retry = status
        .conditions
        .iter()
        .any(|c| c.type_ == RECONCILING && c.status == ConditionStatus::True);
    write_status(api, user, user.status.as_ref(), &status).await?;
    if retry {
        Ok(Action::requeue(ctx.backoff.next(&id)))
    } else {
        ctx.backoff.reset(&id);
        Ok(Action::await_change())
    }
}

/// An Event per kind of change made to the broker; a change to a user that was in sync at this
/// generation is drift made behind our back (an ACL added or removed by hand), and says so.
async fn publish_events(
    user: &KafkaUser,
    desired: &DesiredUser,
    answer: &Answer,
    rotated: bool,
    ctx: &Context,
) {
    let was_in_sync = user.status.as_ref().is_some_and(|s| {
        s.observed_generation == user.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
    });
    let lines = |bindings: &[crate::kafka::identity::AclBinding]| {
        bindings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !answer.created.is_empty() || !answer.deleted.is_empty() {
        let mut changes = Vec::new();
        if !answer.created.is_empty() {
            changes.push(format!("created {}", lines(&answer.created)));
        }
        if !answer.deleted.is_empty() {
            changes.push(format!("deleted {}", lines(&answer.deleted)));
        }
        let (type_, reason, note) = if was_in_sync {
            (
                EventType::Warning,
                "DriftRepaired",
                format!(
                    "the ACLs of {} had drifted from the spec (changed by hand?); {}",
                    desired.principal,
                    changes.join("; ")
                ),
            )
        } else {
            (EventType::Normal, "AclsUpdated", changes.join("; "))
        };
        ctx.publish(user, type_, reason, note).await;
    }
    if answer.credential_changed {
        let note = if rotated {
            format!(
                "the password of {} changed in its Secret: set on the broker again",
                desired.principal
            )
        } else {
            format!(
                "SCRAM credential of {} set on the broker",
                desired.principal
            )
        };
        ctx.publish(user, EventType::Normal, "CredentialSet", note)
            .await;
    }
}

/// The Ready condition's (reason, message) of a status.
fn ready_of(status: Option<&KafkaUserStatus>) -> Option<(&str, &str)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.reason.as_str(), c.message.as_str()))
}

async fn report(
    api: &Api<KafkaUser>,
    user: &KafkaUser,
    secret_name: Option<&str>,
    state: &UserState<'_>,
) -> Result<(), Error> {
    let status = user_status(
        user.status.as_ref(),
        user.metadata.generation,
        secret_name,
        state,
        &now(),
    );
    write_status(api, user, user.status.as_ref(), &status).await
}

/// Deletion: every ACL of the principal and its SCRAM credentials go from the broker, then the
/// finalizer is released (the Secret goes with its owner). A user that lost a conflict leaves
/// the owner's alone, and an owner leaves them to a KafkaUser that claims the principal too
/// (it takes over at its next reconcile). A broker that cannot remove them (an API it lacks)
/// releases at once with a Warning; one that cannot be reached holds the finalizer for the orphan grace period at most,
/// as topics do, so a finalizer never hangs a namespace.
async fn cleanup(user: &KafkaUser, ctx: &Context, claims: &Claims) -> Result<Action, Error> {
    let principal = user
        .status
        .as_ref()
        .and_then(|s| s.principal.clone())
        .or_else(|| claimed_principal(user))
        .unwrap_or_default();
    if let Some(other) = claims.other_claimant(user) {
        ctx.publish(
            user,
            EventType::Normal,
            "Retained",
            format!(
                "{principal} is claimed by KafkaUser '{other}' too: its ACLs and credentials stay"
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    if principal.is_empty() {
        return Ok(Action::await_change());
    }
    if paused(user) {
        ctx.publish(
            user,
            EventType::Normal,
            "Retained",
            format!("{PAUSED_ANNOTATION} is set: the ACLs and credentials of {principal} stay on the broker"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let scram_user = match user.spec.authentication.type_ {
        AuthenticationType::Tls => None,
        _ => principal.strip_prefix("User:").map(str::to_owned),
    };
    let failure = match submit(
        user,
        ctx,
        Intent::Remove {
            principal: principal.clone(),
            scram_user,
        },
    )
    .await
    {
        Ok(answer) if answer.failures.is_empty() => {
            ctx.publish(
                user,
                EventType::Normal,
                "Deleted",
                format!(
                    "{principal}: {} ACL(s) and its credentials removed from the broker",
                    answer.deleted.len()
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
        Ok(answer) => {
            let permanent = answer
                .failures
                .iter()
                .any(|f| f.reason == Reason::BrokerUnsupported);
            let message = answer
                .failures
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if permanent {
                ctx.publish(
                    user,
                    EventType::Warning,
                    "Orphaned",
                    format!("{principal}: the broker cannot remove what it holds ({message}); released and left on the broker: remove them by hand"),
                )
                .await;
                return Ok(Action::await_change());
            }
            BrokerError::Rejected {
                api: "DeleteAcls",
                code: "Failed".into(),
                message,
            }
        }
        Err(e) => e,
    };
    let since = user
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().duration_since(t.0).unsigned_abs())
        .unwrap_or_default();
    if since >= ctx.options.orphan_grace {
        ctx.publish(
            user,
            EventType::Warning,
            "Orphaned",
            format!(
                "{principal}: its ACLs and credentials could not be removed for {since:?} ({failure}); released after the {:?} grace period and left on the broker",
                ctx.options.orphan_grace
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    Err(Error::Broker(failure))
}
