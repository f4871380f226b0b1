//! The KafkaOffsetReset reconciler: one step of [`super::machine`] per reconcile, the status
//! write its checkpoint. It observes (the KafkaConsumer and its hold, its Deployment's pods, in
//! `WaitingForEmptyGroup` the group), asks the machine for the next step, executes it, and
//! records the outcome; an Event marks every phase. The offsets are computed and recorded
//! before they are written; before writing, the group's committed offsets are read, and a write
//! already done (status lost to a restart or a stale cache) is recorded rather than repeated.
//! A finalizer holds the reset until the consumer it holds is released.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::declared::{self, Declared, Source};
use super::machine::{self, Consumer, Facts, Failure, Group, Phase, Step};
use super::observe::{prepare, Request};
use super::{write, ResetError};
use crate::api::{
    KafkaConsumer, KafkaOffsetReset, KafkaOffsetResetStatus, Reason, HOLD_ANNOTATION,
};
use crate::kafka::RequestTally;
use crate::runtime::status::now;
use crate::runtime::{Connection, Context, Error};
use crate::workloads::{
    broker_topics, finish, joined, topic_names, validate_consumer, verdict, Outcome,
};

/// The finalizer that holds a KafkaOffsetReset until the consumer it holds is released.
pub const RESET_FINALIZER: &str = "tributary.io/offset-reset";

/// The caches a reset reads: the other resets (one per group at a time) and the consumers.
pub struct Stores {
    pub resets: Store<KafkaOffsetReset>,
    pub consumers: Store<KafkaConsumer>,
}

/// What makes a reset worth reconciling again: its spec, metadata, and its own checkpoints
/// (each step's status write brings the next step, on a cache that has it).
pub fn trigger(reset: &KafkaOffsetReset) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::runtime::spec_trigger(reset).hash(&mut h);
    if let Some(s) = &reset.status {
        s.phase.hash(&mut h);
        s.partitions.is_some().hash(&mut h);
        s.written_at.hash(&mut h);
        s.replicas_to_restore.hash(&mut h);
    }
    Some(h.finish())
}

pub async fn reconcile(
    reset: Arc<KafkaOffsetReset>,
    ctx: Arc<Context>,
    stores: Arc<Stores>,
) -> Result<Action, Error> {
    let api: Api<KafkaOffsetReset> =
        Api::namespaced(ctx.client.clone(), &reset.namespace().unwrap_or_default());
    finalizer(&api, RESET_FINALIZER, reset, |event| async {
        match event {
            Finalizer::Apply(r) => apply(&r, &ctx, &stores).await,
            Finalizer::Cleanup(r) => cleanup(&r, &ctx, &stores).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Deleted: the consumer it holds gets its replicas back before the finalizer goes.
async fn cleanup(
    reset: &KafkaOffsetReset,
    ctx: &Context,
    stores: &Stores,
) -> Result<Action, Error> {
    let ns = reset.namespace().unwrap_or_default();
    synced(stores, ctx).await;
    if let Some(name) = reset.spec.consumer_ref.as_deref() {
        let held = stores
            .consumers
            .get(&ObjectRef::new(name).within(&ns))
            .is_some_and(|c| holds(reset, &c));
        if held {
            release(ctx, reset, &ns, name).await?;
        }
    }
    Ok(Action::await_change())
}

/// Waits until the caches a reset reads have been filled once (the watches are shared and
/// started after every controller subscribed: a reconcile can come first).
async fn synced(stores: &Stores, ctx: &Context) {
    let _ = stores.consumers.wait_until_ready().await;
    let _ = stores.resets.wait_until_ready().await;
    let _ = ctx.topics.wait_until_ready().await;
}

fn holds(reset: &KafkaOffsetReset, consumer: &KafkaConsumer) -> bool {
    consumer.annotations().get(HOLD_ANNOTATION) == Some(&reset.name_any())
}

async fn release(
    ctx: &Context,
    reset: &KafkaOffsetReset,
    ns: &str,
    consumer: &str,
) -> Result<(), Error> {
    set_hold(ctx, ns, consumer, None).await?;
    tracing::info!(reset = %reset.name_any(), namespace = ns, consumer, "consumer released");
    ctx.publish(
        reset,
        EventType::Normal,
        "Released",
        format!("KafkaConsumer {consumer} released: its replicas come back"),
    )
    .await;
    Ok(())
}

async fn set_hold(
    ctx: &Context,
    ns: &str,
    consumer: &str,
    hold: Option<&str>,
) -> Result<(), Error> {
    let consumers: Api<KafkaConsumer> = Api::namespaced(ctx.client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"annotations": {HOLD_ANNOTATION: hold}}});
    consumers
        .patch(consumer, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The group a reset names, resolved: `(cluster, group id, the consumer's topics)`; `None`
/// when its KafkaConsumer does not exist; `Err` an invalid KafkaConsumer.
type Resolved = Option<(String, String, Vec<String>)>;

fn resolve(
    ctx: &Context,
    stores: &Stores,
    ns: &str,
    source: &Source,
) -> Result<(Resolved, Option<Arc<KafkaConsumer>>), String> {
    match source {
        Source::Group { cluster, group } => {
            Ok((Some((cluster.clone(), group.clone(), Vec::new())), None))
        }
        Source::Consumer(name) => {
            let Some(consumer) = stores.consumers.get(&ObjectRef::new(name).within(ns)) else {
                return Ok((None, None));
            };
            let valid = validate_consumer(&consumer)
                .map_err(|e| format!("KafkaConsumer {name} is invalid: {}", joined(&e)))?;
            let topics: Vec<_> = ctx
                .topics
                .state()
                .into_iter()
                .filter(|t| t.namespace().as_deref() == Some(ns))
                .collect();
            let names = topic_names(topics.iter().map(|t| &**t));
            let topics = broker_topics(&valid.topics, &names)
                .iter()
                .map(ToString::to_string)
                .collect();
            Ok((
                Some((valid.cluster_ref.clone(), valid.group_id.clone(), topics)),
                Some(consumer),
            ))
        }
    }
}

/// An older reset of the same group (cluster and group id) that is not final.
fn older_reset(
    ctx: &Context,
    stores: &Stores,
    reset: &KafkaOffsetReset,
    key: (&str, &str),
) -> Option<String> {
    let ns = reset.namespace().unwrap_or_default();
    let age = |r: &KafkaOffsetReset| (r.metadata.creation_timestamp.clone(), r.name_any());
    stores
        .resets
        .state()
        .into_iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()) && r.uid() != reset.uid())
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .filter(|r| {
            !r.status
                .as_ref()
                .and_then(|s| s.phase)
                .is_some_and(Phase::is_final)
        })
        .filter(|r| age(r) < age(reset))
        .filter(|r| {
            let Ok(d) = declared::validate(&r.spec) else {
                return false;
            };
            matches!(resolve(ctx, stores, &ns, &d.source), Ok((Some((c, g, _)), _)) if (c.as_str(), g.as_str()) == key)
        })
        .map(|r| r.name_any())
        .min()
}

async fn apply(reset: &KafkaOffsetReset, ctx: &Context, stores: &Stores) -> Result<Action, Error> {
    let ns = reset.namespace().unwrap_or_default();
    // A restarted operator: a consumer not in the cache yet is not a missing consumer.
    synced(stores, ctx).await;
    let previous = reset.status.as_ref();
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = reset.metadata.generation;
    let outcome = step(reset, ctx, stores, &ns, &mut status).await?;
    finish(ctx, reset, previous, status, |s| &mut s.conditions, outcome).await
}

/// Observes, asks the machine, executes its step and records it in `status`.
async fn step(
    reset: &KafkaOffsetReset,
    ctx: &Context,
    stores: &Stores,
    ns: &str,
    status: &mut KafkaOffsetResetStatus,
) -> Result<Outcome, Error> {
    let declared = match declared::validate(&reset.spec) {
        Ok(d) => d,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, Reason::InvalidSpec, joined(&errors)),
                Some(Action::await_change()),
            ))
        }
    };
    let phase = status.phase.unwrap_or(Phase::Pending);
    if status.phase.is_none() {
        enter(ctx, reset, status, Phase::Pending, "accepted".into()).await;
    }
    let (resolved, consumer) = match resolve(ctx, stores, ns, &declared.source) {
        Ok(r) => r,
        Err(message) => {
            return Ok((
                verdict(false, true, false, Reason::InvalidSpec, message),
                Some(Action::requeue(Duration::from_secs(10))),
            ))
        }
    };
    let waited = status
        .phase_since
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|since| {
            Duration::try_from(Timestamp::now().duration_since(since)).unwrap_or(Duration::ZERO)
        })
        .unwrap_or(Duration::ZERO);
    let mut facts = Facts {
        phase,
        deleting: false,
        dry_run: declared.dry_run,
        force: declared.force,
        older_reset: None,
        consumer: None,
        group: None,
        waited,
        timeout: declared.timeout,
        foreign_grace: declared::foreign_grace(declared.timeout),
        planned: status.partitions.is_some(),
        written: status.written_at.is_some(),
    };
    let mut connection = None;
    // The consumer's Deployment's replicas, as read this round.
    let mut replicas = None;
    if let Some((cluster_ref, group, _)) = &resolved {
        status.group = Some(group.clone());
        if phase == Phase::Pending {
            facts.older_reset = older_reset(ctx, stores, reset, (cluster_ref, group));
        }
        facts.consumer = Some(match &consumer {
            Some(c) => {
                let (desired, pods) = deployment(ctx, ns, &c.name_any()).await?;
                replicas = desired;
                Consumer {
                    held: holds(reset, c),
                    pods,
                }
            }
            // A raw group has no consumer of ours: nothing to hold, nothing running.
            None => Consumer {
                held: !phase.is_final() && phase != Phase::ScalingUp,
                pods: 0,
            },
        });
        if !phase.is_final() {
            let Some(cluster) = ctx.cluster(Some(ns), cluster_ref) else {
                return Ok((
                    verdict(
                        false,
                        true,
                        false,
                        Reason::ClusterNotFound,
                        format!("KafkaCluster {cluster_ref} not found in namespace {ns}"),
                    ),
                    Some(Action::requeue(Duration::from_secs(10))),
                ));
            };
            match ctx.connections.connection(&cluster, &ctx.client).await {
                Ok(c) => connection = Some(c),
                Err(e) => return Ok(broker_trouble(&e)),
            }
        }
        if phase == Phase::WaitingForEmptyGroup {
            let conn = connection
                .as_ref()
                .expect("connected in a phase that is not final");
            let mut tally = RequestTally::default();
            match conn.groups.describe_group(group, &mut tally).await {
                Ok(g) => {
                    facts.group = Some(Group {
                        empty: g.is_empty(),
                        members: g.members.len(),
                        state: g.state,
                    })
                }
                Err(e) => return Ok(broker_trouble(&e)),
            }
        }
    }

    // What is wrong whatever the broker holds is refused before the consumer is touched.
    if phase == Phase::Pending {
        if let Err(e) = super::plan::check_target(&declared.target, Timestamp::now()) {
            fail(ctx, reset, status, Reason::ResetRefused, e.to_string()).await;
            return Ok((verdict_of(status), Some(Action::await_change())));
        }
    }
    let step = machine::next(&facts);
    tracing::debug!(reset = %reset.name_any(), namespace = ns, phase = phase.as_str(), ?step, "reset step");
    let soon = Some(Action::requeue(machine::POLL));
    let next = match step {
        Step::Hold => {
            let (Some(c), Some((_, group, _))) = (&consumer, &resolved) else {
                unreachable!("the machine holds only an existing consumer");
            };
            if status.replicas_to_restore.is_none() {
                // Recorded before the hold is put, so what is restored is never the zero of
                // the hold: what the consumer remembers from an earlier hold, else what its
                // Deployment runs now (read fresh; the cached status may lag).
                let held = c.status.as_ref().and_then(|s| s.held_replicas);
                let cached = c.status.as_ref().and_then(|s| s.replicas);
                status.replicas_to_restore = Some(held.or(replicas).or(cached).unwrap_or(0));
            } else {
                set_hold(ctx, ns, &c.name_any(), Some(&reset.name_any())).await?;
                let note = format!(
                    "KafkaConsumer {} held at 0 replicas ({} to restore); group {group}",
                    c.name_any(),
                    status.replicas_to_restore.unwrap_or(0)
                );
                enter(ctx, reset, status, Phase::ScalingDown, note).await;
            }
            soon
        }
        Step::Enter(p) => {
            let note = match p {
                Phase::WaitingForEmptyGroup => {
                    "the consumer's pods are gone; waiting for the group to empty".to_owned()
                }
                Phase::Resetting => "the group is empty; writing the recorded offsets".to_owned(),
                Phase::ScalingUp => {
                    "offsets written and read back; releasing the consumer".to_owned()
                }
                Phase::Succeeded => summary(status, declared.dry_run),
                _ => p.as_str().to_owned(),
            };
            enter(ctx, reset, status, p, note).await;
            soon
        }
        Step::Wait(d) => Some(Action::requeue(d.max(Duration::from_millis(200)))),
        Step::Plan => {
            let (Some((_, group, topics)), Some(conn)) = (&resolved, &connection) else {
                // The KafkaConsumer went away while the group was held.
                let (reason, message) = failure(&Failure::ConsumerNotFound, &declared, None);
                fail(ctx, reset, status, reason, message).await;
                return Ok((verdict_of(status), soon));
            };
            match plan(conn, &declared, group, topics).await {
                Ok(prepared) => {
                    status.partitions = Some(declared::to_status(&prepared.plan));
                    status.messages_re_read =
                        Some(i64::try_from(prepared.plan.reread()).unwrap_or(i64::MAX));
                    status.messages_skipped =
                        Some(i64::try_from(prepared.plan.skipped()).unwrap_or(i64::MAX));
                    ctx.publish(
                        reset,
                        EventType::Normal,
                        "Planned",
                        format!(
                            "group {group} to {}: {} partition(s), {} message(s) to re-read, {} to skip",
                            declared.target,
                            prepared.plan.changes.len(),
                            prepared.plan.reread(),
                            prepared.plan.skipped()
                        ),
                    )
                    .await;
                }
                Err(e) => fail_on(ctx, reset, status, e).await?,
            }
            soon
        }
        Step::Write => {
            let (Some((_, group, _)), Some(conn)) = (&resolved, &connection) else {
                // The KafkaConsumer went away while the group was held.
                let (reason, message) = failure(&Failure::ConsumerNotFound, &declared, None);
                fail(ctx, reset, status, reason, message).await;
                return Ok((verdict_of(status), soon));
            };
            let plan = declared::from_status(status.partitions.as_deref().unwrap_or_default());
            match write_once(conn, group, &plan).await {
                Ok(wrote) => {
                    status.written_at = Some(now());
                    let how = if wrote {
                        "written in one request"
                    } else {
                        "found already written (a write whose record was lost)"
                    };
                    ctx.publish(
                        reset,
                        EventType::Normal,
                        "OffsetsWritten",
                        format!(
                            "group {group}: {} partition(s) {how}, read back as recorded",
                            plan.changes.len()
                        ),
                    )
                    .await;
                }
                Err(e) => fail_on(ctx, reset, status, e).await?,
            }
            soon
        }
        Step::Release => {
            if let Some(c) = &consumer {
                release(ctx, reset, ns, &c.name_any()).await?;
            }
            soon
        }
        Step::Fail(f) => {
            let (reason, message) = failure(&f, &declared, status.group.as_deref());
            fail(ctx, reset, status, reason, message).await;
            soon
        }
        Step::Finalize | Step::Done => Some(Action::await_change()),
    };
    Ok((verdict_of(status), next))
}

/// The consumer's Deployment, read fresh: `(desired replicas, pods)`, the pods being its desired
/// replicas until they are 0, then those still reported running (`status.replicas`).
async fn deployment(ctx: &Context, ns: &str, name: &str) -> Result<(Option<i32>, i32), Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api.get_opt(name).await?.map_or((None, 0), |d| {
        let desired = d.spec.replicas;
        let running = d.status.and_then(|s| s.replicas).unwrap_or(0);
        (desired, desired.unwrap_or(0).max(running))
    }))
}

async fn plan(
    conn: &Connection,
    declared: &Declared,
    group: &str,
    consumer_topics: &[String],
) -> Result<super::Prepared, ResetError> {
    let mut selection = declared.selection.clone();
    if selection.topics.is_empty() {
        selection.topics = consumer_topics.to_vec();
    }
    let request = Request {
        group: group.to_owned(),
        selection,
        target: declared.target.clone(),
        must_exist: matches!(declared.source, Source::Group { .. }),
    };
    let mut tally = RequestTally::default();
    prepare(&*conn.groups, &request, Timestamp::now(), &mut tally).await
}

/// Writes the plan unless the group already holds exactly its offsets (written before a
/// restart or a lost status write); `true` if it wrote.
async fn write_once(
    conn: &Connection,
    group: &str,
    plan: &super::Plan,
) -> Result<bool, ResetError> {
    let mut tally = RequestTally::default();
    let offsets = plan.offsets();
    let partitions: Vec<_> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
    let held = conn
        .groups
        .committed(group, Some(&partitions), &mut tally)
        .await?;
    let moved = plan.changes.iter().any(|c| c.before != Some(c.after));
    if moved && offsets.iter().all(|(tp, o)| held.get(tp) == Some(o)) {
        return Ok(false);
    }
    write(&*conn.groups, group, plan, &mut tally).await?;
    Ok(true)
}

async fn fail_on(
    ctx: &Context,
    reset: &KafkaOffsetReset,
    status: &mut KafkaOffsetResetStatus,
    e: ResetError,
) -> Result<(), Error> {
    let reason = match &e {
        ResetError::Refused(_) => Reason::ResetRefused,
        ResetError::Write(_) => Reason::OffsetsNotWritten,
        ResetError::Broker(b) if b.needs_a_fix() => b.reason(),
        // Passing trouble: retried with backoff, in the same phase.
        ResetError::Broker(b) => return Err(Error::Broker(b.clone())),
    };
    fail(ctx, reset, status, reason, e.to_string()).await;
    Ok(())
}

fn failure(f: &Failure, declared: &Declared, group: Option<&str>) -> (Reason, String) {
    let group = group.unwrap_or_default();
    match f {
        Failure::ConsumerNotFound => (
            Reason::ConsumerNotFound,
            match &declared.source {
                Source::Consumer(c) => format!("KafkaConsumer {c} does not exist in this namespace: check consumerRef"),
                Source::Group { group, .. } => format!("group {group}: no consumer"),
            },
        ),
        Failure::ResourceConflict { other } => (
            Reason::ResourceConflict,
            format!("KafkaOffsetReset {other} of group {group} is older and not finished: delete this one, or wait for it and create this one again"),
        ),
        Failure::ForeignMembers { members, state } => (
            Reason::ForeignMembers,
            format!("group {group} still has members ({members} listed, state {state}) with none of the consumer's pods running: another application reads with this group id; stop it, or set force to wait for it to leave"),
        ),
        Failure::Timeout { phase, waited } => (
            Reason::ResetTimedOut,
            format!("{} did not finish within timeoutSeconds ({}s waited): {}", phase.as_str(), waited.as_secs(), match phase {
                Phase::ScalingDown => "the consumer's pods did not go",
                _ => "the group did not empty",
            }),
        ),
    }
}

async fn enter(
    ctx: &Context,
    reset: &KafkaOffsetReset,
    status: &mut KafkaOffsetResetStatus,
    phase: Phase,
    note: String,
) {
    status.phase = Some(phase);
    status.phase_since = Some(now());
    tracing::info!(reset = %reset.name_any(), namespace = ?reset.namespace(), phase = phase.as_str(), %note, "reset phase");
    ctx.publish(reset, EventType::Normal, phase.as_str(), note)
        .await;
}

async fn fail(
    ctx: &Context,
    reset: &KafkaOffsetReset,
    status: &mut KafkaOffsetResetStatus,
    reason: Reason,
    message: String,
) {
    status.phase = Some(Phase::Failed);
    status.phase_since = Some(now());
    status.failure = Some(reason.as_str().to_owned());
    status.failure_message = Some(message.clone());
    tracing::warn!(reset = %reset.name_any(), namespace = ?reset.namespace(), reason = reason.as_str(), %message, "reset failed");
    ctx.publish(reset, EventType::Warning, reason.as_str(), message)
        .await;
}

fn summary(status: &KafkaOffsetResetStatus, dry_run: bool) -> String {
    format!(
        "group {}: {} partition(s), {} message(s) to re-read, {} to skip{}",
        status.group.as_deref().unwrap_or_default(),
        status.partitions.as_ref().map_or(0, Vec::len),
        status.messages_re_read.unwrap_or(0),
        status.messages_skipped.unwrap_or(0),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            "; written and read back"
        }
    )
}

fn broker_trouble(e: &crate::kafka::BrokerError) -> Outcome {
    let fix = e.needs_a_fix();
    (verdict(false, !fix, fix, e.reason(), e.to_string()), None)
}

/// The kstatus conditions of a reset, from its status (pure).
pub fn verdict_of(status: &KafkaOffsetResetStatus) -> crate::runtime::status::Verdict {
    match status.phase.unwrap_or(Phase::Pending) {
        Phase::Succeeded => verdict(
            true,
            false,
            false,
            Reason::ResetSucceeded,
            summary(status, status.written_at.is_none()),
        ),
        Phase::Failed => verdict(
            false,
            false,
            true,
            status
                .failure
                .as_deref()
                .and_then(|f| serde_json::from_value(serde_json::Value::from(f)).ok())
                .unwrap_or(Reason::ResetRefused),
            status.failure_message.clone().unwrap_or_default(),
        ),
        p => verdict(
            false,
            true,
            false,
            Reason::ResetInProgress,
            format!("phase {}", p.as_str()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conditions_follow_the_phase_and_a_failure_keeps_its_reason_and_message() {
        let mut s = KafkaOffsetResetStatus::default();
        let v = verdict_of(&s);
        assert!(!v.ready && v.reconciling && !v.stalled);
        assert_eq!(v.reason, Reason::ResetInProgress);
        assert_eq!(v.message, "phase Pending");

        s.phase = Some(Phase::Failed);
        s.failure = Some("ForeignMembers".into());
        s.failure_message = Some("group g still has members".into());
        let v = verdict_of(&s);
        assert!(!v.ready && !v.reconciling && v.stalled);
        assert_eq!(v.reason, Reason::ForeignMembers);
        assert_eq!(v.message, "group g still has members");

        s.phase = Some(Phase::Succeeded);
        s.group = Some("g".into());
        s.messages_re_read = Some(20);
        s.messages_skipped = Some(0);
        let v = verdict_of(&s);
        assert!(v.ready && !v.reconciling && !v.stalled);
        assert_eq!(v.reason, Reason::ResetSucceeded);
        assert!(
            v.message.contains("20 message(s) to re-read"),
            "{}",
            v.message
        );
        assert!(
            v.message.contains("dry run"),
            "nothing written: {}",
            v.message
        );
        s.written_at = Some(now());
        assert!(verdict_of(&s).message.contains("written and read back"));
    }
}
