//! The KafkaConsumer reconciler: a Deployment wired to the cluster (bootstrap, group, topics,
//! credentials as env), scaled on consumer lag — never beyond the partitions of its topics —
//! with lag per topic and the replica decision in status. A KafkaOffsetReset's hold (annotation
//! [`HOLD_ANNOTATION`]) renders zero replicas and pauses the autoscaler, which resumes from the
//! replicas it had (`status.heldReplicas`). With `groupDeletionPolicy: Delete` a finalizer
//! ([`GROUP_FINALIZER`]) deletes the group, once empty, when the consumer is deleted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::apply::{
    apply_if_changed, cluster_connection, current, finish, joined, ready_but_missing,
    referenced_topics, rollout, topics_not_ready, verdict, Outcome,
};
use super::decisions::LastDecisions;
use super::lag_batcher::LagBatcher;
use crate::api::{
    GroupDeletionPolicy, KafkaConsumer, KafkaConsumerStatus, LastScaling, OffsetResetPolicy,
    ReplicaDecision, TopicLag,
};
use crate::api::{Reason, HOLD_ANNOTATION};
use crate::kafka::lag::{GroupQuery, OffsetReset};
use crate::runtime::status::now;
use crate::runtime::{Context, Error};
use crate::workloads::autoscale::{decide, usable_partitions, ScaleInput, ScalePolicy};
use crate::workloads::{
    broker_topics, consumer_deployment, topic_names, validate_consumer, Scaling,
};

/// The finalizer of a KafkaConsumer with `groupDeletionPolicy: Delete`: it holds the consumer
/// until its group is deleted.
pub const GROUP_FINALIZER: &str = "tributary.io/consumer-group";

pub async fn reconcile(consumer: Arc<KafkaConsumer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = consumer.namespace().unwrap_or_default();
    let has = consumer.finalizers().iter().any(|f| f == GROUP_FINALIZER);
    if consumer.metadata.deletion_timestamp.is_some() {
        return if has {
            delete_group(&consumer, &ctx, &ns).await
        } else {
            Ok(Action::await_change())
        };
    }
    let wants = consumer.spec.group_deletion_policy == Some(GroupDeletionPolicy::Delete);
    if wants != has {
        // The finalizer's patch is a change of metadata: the next reconcile goes on from there.
        set_finalizer(&consumer, &ctx, &ns, wants).await?;
        return Ok(Action::await_change());
    }
    let mut status = consumer.status.clone().unwrap_or_default();
    status.observed_generation = consumer.metadata.generation;
    let outcome = decide_status(&consumer, &ctx, &ns, &mut status).await?;
    finish(
        &ctx,
        &*consumer,
        consumer.status.as_ref(),
        status,
        |s| &mut s.conditions,
        outcome,
    )
    .await
}

async fn decide_status(
    consumer: &KafkaConsumer,
    ctx: &Context,
    ns: &str,
    status: &mut KafkaConsumerStatus,
) -> Result<Outcome, Error> {
    let valid = match validate_consumer(consumer) {
        Ok(v) => v,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, Reason::InvalidSpec, joined(&errors)),
                Some(Action::await_change()),
            ))
        }
    };
    status.group_id = Some(valid.group_id.clone());
    let (cluster, facts) = match cluster_connection(ctx, ns, &valid.cluster_ref).await? {
        Ok(found) => found,
        Err(outcome) => return Ok(outcome),
    };
    let topics = referenced_topics(ctx, ns, &valid.topics);
    let names = topic_names(topics.iter().map(|t| &**t));
    let broker_names: Vec<String> = broker_topics(&valid.topics, &names)
        .iter()
        .map(ToString::to_string)
        .collect();

    let (policy, poll, reset) = match &valid.scaling {
        Scaling::Fixed(_) => (None, Duration::from_secs(30), OffsetReset::Latest),
        Scaling::Autoscaled(p) => {
            let reset = match p.offset_reset_policy {
                OffsetResetPolicy::Earliest => OffsetReset::Earliest,
                OffsetResetPolicy::Latest => OffsetReset::Latest,
            };
            (Some(p), p.poll_interval, reset)
        }
    };
    let autoscaled = policy.is_some();
    let connection = match ctx.connections.connection(&cluster, &ctx.client).await {
        Ok(c) => c,
        Err(e) => {
            let fix = e.needs_a_fix();
            lag_unknown(status, autoscaled, &e.to_string());
            return Ok((verdict(false, !fix, fix, e.reason(), e.to_string()), None));
        }
    };
    let query = GroupQuery {
        group_id: valid.group_id.clone(),
        topics: broker_names.clone(),
        reset,
    };
    let lag = match LagBatcher::of(&connection, &ctx.options)
        .observe(query)
        .await
    {
        Ok(group) => match group.result {
            Ok(lag) => lag,
            Err(rejection) => {
                lag_unknown(status, autoscaled, &rejection.to_string());
                return Ok((
                    verdict(
                        false,
                        true,
                        false,
                        Reason::LagUnavailable,
                        rejection.to_string(),
                    ),
                    None,
                ));
            }
        },
        Err(e) => {
            let fix = e.needs_a_fix();
            lag_unknown(status, autoscaled, &e.to_string());
            return Ok((verdict(false, !fix, fix, e.reason(), e.to_string()), None));
        }
    };
    status.total_lag = Some(i64::try_from(lag.total).unwrap_or(i64::MAX));
    status.partitions = Some(lag.partition_count);
    status.members = lag.members;
    status.topics = lag
        .topics
        .iter()
        .map(|t| TopicLag {
            name: t.topic.clone(),
            // A topic missing on the broker has no lag to speak of: unknown, not 0.
            partitions: t.exists.then_some(t.partitions),
            partitions_with_lag: t.exists.then_some(t.partitions_with_lag),
            lag: t.exists.then(|| i64::try_from(t.lag).unwrap_or(i64::MAX)),
        })
        .collect();
    if !lag.missing_topics.is_empty() {
        let why = format!("not on the broker: {}", lag.missing_topics.join(", "));
        lag_unknown(status, autoscaled, &why);
    }

    let on_broker = lag
        .topics
        .iter()
        .filter(|t| t.exists)
        .map(|t| t.topic.clone())
        .collect();
    let mut waiting = topics_not_ready(&valid.topics, &topics, &names, &on_broker);
    for (reference, topic) in ready_but_missing(&valid.topics, &topics, &names, &on_broker) {
        waiting.push(format!(
            "{} (KafkaTopic Ready, but the topic is not on the broker)",
            reference.as_str()
        ));
        ctx.check_topic(kube::runtime::reflector::ObjectRef::from_obj(&**topic));
    }
    if !waiting.is_empty() {
        let message = format!("not rolled out: waiting for {}", waiting.join(", "));
        return Ok((
            verdict(false, true, false, Reason::TopicNotReady, message),
            Some(Action::requeue(Duration::from_secs(5))),
        ));
    }

    let existing: Option<Deployment> = current(ctx, ns, &consumer.name_any()).await?;
    let current = existing
        .as_ref()
        .and_then(|d| d.spec.replicas)
        .or(status.replicas);
    // A KafkaOffsetReset holds the consumer at zero (its autoscaler paused); the replicas it
    // had are remembered and are where the autoscaler resumes once the hold is released.
    let hold = consumer
        .annotations()
        .get(HOLD_ANNOTATION)
        .filter(|r| !r.is_empty());
    let actual = current;
    let current = match (hold, status.held_replicas) {
        (Some(_), None) => {
            status.held_replicas = current;
            current
        }
        (Some(_), Some(_)) => current,
        (None, Some(held)) => {
            status.held_replicas = None;
            Some(held)
        }
        (None, None) => current,
    };
    let decision = match (&valid.scaling, policy) {
        _ if hold.is_some() => ReplicaDecision {
            replicas: 0,
            reason: "HeldForOffsetReset".into(),
            message: format!(
                "held at 0 by KafkaOffsetReset {}; {} replica(s) to restore",
                hold.map_or("", |h| h.as_str()),
                status.held_replicas.unwrap_or(0)
            ),
            time: Some(now()),
        },
        (Scaling::Fixed(n), _) => ReplicaDecision {
            replicas: *n,
            reason: "Fixed".into(),
            message: format!("spec.replicas is {n}"),
            time: Some(now()),
        },
        (_, Some(p)) => {
            let policy = ScalePolicy::new(
                p.min_replicas,
                p.max_replicas,
                p.lag_threshold.max(1) as u64,
                p.scale_down_stabilization,
            )
            .map_err(|e| Error::Render(e.to_string()))?
            .limit_to_partitions_with_lag(p.limit_to_partitions_with_lag);
            let history = status.scale_history.clone().unwrap_or_default();
            let decided_at = SystemTime::now();
            let key = consumer
                .metadata
                .uid
                .clone()
                .unwrap_or_else(|| format!("{ns}/{}", consumer.name_any()));
            let (partitions, partitions_with_lag) = usable_partitions(
                p.assignment_strategy,
                lag.topics
                    .iter()
                    .filter(|t| t.exists)
                    .map(|t| (t.partitions, t.partitions_with_lag)),
            );
            status.partitions = Some(partitions);
            let d = decide(&ScaleInput {
                policy: &policy,
                current_replicas: current.unwrap_or(p.min_replicas),
                total_lag: lag.total,
                partitions,
                partitions_with_lag,
                assignment: p.assignment_strategy,
                now: decided_at,
                history: &history,
                previous_decision: LastDecisions::of(&connection).record(&key, decided_at),
            });
            status.scale_history = Some(d.history.clone());
            let reason = match d.change {
                crate::workloads::autoscale::Change::Up => "ScaledUp",
                crate::workloads::autoscale::Change::Down => "ScaledDown",
                crate::workloads::autoscale::Change::None => "Steady",
            };
            ReplicaDecision {
                replicas: d.replicas,
                reason: reason.into(),
                message: d.reason,
                time: Some(now()),
            }
        }
        (Scaling::Autoscaled(_), None) => unreachable!("autoscaled consumers carry a policy"),
    };
    let replicas = decision.replicas;
    // The decision keeps its time while it stays the same.
    let same = status.replica_decision.as_ref().is_some_and(|r| {
        (r.replicas, &r.reason, &r.message)
            == (decision.replicas, &decision.reason, &decision.message)
    });
    let previous_replicas = actual.unwrap_or(0);
    if !same {
        status.replica_decision = Some(decision.clone());
    }
    // The last change stays until the next one. One whose status write was lost (a conflict)
    // is recorded by the next reconcile, which finds the Deployment already changed.
    let recorded = status.last_scaling.as_ref().map(|l| l.to);
    let from = if replicas != previous_replicas {
        Some(previous_replicas)
    } else {
        recorded.filter(|to| *to != replicas)
    };
    if let Some(from) = from {
        let reason = if replicas > from {
            "ScaledUp"
        } else {
            "ScaledDown"
        };
        status.last_scaling = Some(LastScaling {
            from,
            to: replicas,
            reason: reason.into(),
            message: decision.message.clone(),
            time: decision.time.clone(),
        });
    }
    if replicas != previous_replicas {
        let reason = if replicas > previous_replicas {
            "ScaledUp"
        } else {
            "ScaledDown"
        };
        let note = format!(
            "replicas {previous_replicas} -> {replicas}: {}",
            decision.message
        );
        // An action per transition: the recorder counts Events of the same reason and action
        // as one series with the first one's note.
        ctx.publish_action(
            consumer,
            kube::runtime::events::EventType::Normal,
            reason,
            &format!("Scale{previous_replicas}To{replicas}"),
            note,
        )
        .await;
    }

    let deployment = consumer_deployment(&valid, &facts, &names, replicas)
        .map_err(|e| Error::Render(e.to_string()))?;
    let applied = apply_if_changed(ctx, ns, existing, &deployment).await?;
    let (ready, available) = rollout(&applied, replicas);
    status.replicas = Some(replicas);
    status.ready_replicas = Some(ready);
    let requeue = Some(Action::requeue(poll.max(Duration::from_secs(1))));
    Ok(if available {
        (
            verdict(
                true,
                false,
                false,
                Reason::Available,
                format!("{ready}/{replicas} replicas ready; lag {}", lag.total),
            ),
            requeue,
        )
    } else {
        (
            verdict(
                false,
                true,
                false,
                Reason::Progressing,
                format!("{ready}/{replicas} replicas ready; lag {}", lag.total),
            ),
            requeue,
        )
    })
}

/// The lag could not be observed (`why`): the lag fields say nothing rather than 0, and an
/// autoscaled consumer's decision says the replicas are held because the lag is unknown (it
/// keeps its time while the reason stays the same).
fn lag_unknown(status: &mut KafkaConsumerStatus, autoscaled: bool, why: &str) {
    status.total_lag = None;
    status.partitions = None;
    for topic in &mut status.topics {
        topic.lag = None;
        topic.partitions_with_lag = None;
    }
    if !autoscaled {
        return;
    }
    let replicas = status.replicas.unwrap_or(0);
    let message = format!("lag unknown ({why}): holding {replicas} replicas");
    let same = status.replica_decision.as_ref().is_some_and(|d| {
        (d.replicas, d.reason.as_str(), &d.message) == (replicas, "LagUnknown", &message)
    });
    if !same {
        status.replica_decision = Some(ReplicaDecision {
            replicas,
            reason: "LagUnknown".into(),
            message,
            time: Some(now()),
        });
    }
}

/// Adds or removes [`GROUP_FINALIZER`], based on the copy read (a stale copy gets a conflict).
async fn set_finalizer(
    consumer: &KafkaConsumer,
    ctx: &Context,
    ns: &str,
    on: bool,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> = consumer
        .finalizers()
        .iter()
        .filter(|f| *f != GROUP_FINALIZER)
        .cloned()
        .collect();
    if on {
        finalizers.push(GROUP_FINALIZER.to_owned());
    }
    let api: kube::Api<KafkaConsumer> = kube::Api::namespaced(ctx.client.clone(), ns);
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": consumer.metadata.resource_version,
        "finalizers": finalizers,
    }});
    api.patch(
        &consumer.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// `groupDeletionPolicy: Delete`, the KafkaConsumer deleted: its Deployment to 0, then the
/// group deleted once it has no member (checked here: a broker may delete a group with
/// members, Tansu 0.6 does), then the finalizer removed. A KafkaCluster or group that cannot
/// be reached is retried; a KafkaCluster that no longer exists lets the consumer go.
async fn delete_group(consumer: &KafkaConsumer, ctx: &Context, ns: &str) -> Result<Action, Error> {
    use kube::runtime::events::EventType;
    let name = consumer.name_any();
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(ctx.client.clone(), ns);
    if let Some(d) = deployments.get_opt(&name).await? {
        if d.spec.replicas != Some(0) {
            let patch = serde_json::json!({"spec": {"replicas": 0}});
            deployments
                .patch(
                    &name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(&patch),
                )
                .await?;
        }
    }
    let group = consumer
        .spec
        .group_id
        .clone()
        .unwrap_or_else(|| name.clone());
    let Some(cluster) = ctx.cluster(Some(ns), &consumer.spec.cluster_ref) else {
        ctx.publish(
            consumer,
            EventType::Warning,
            "GroupRetained",
            format!(
                "KafkaCluster {} no longer exists: group {group} left as it is",
                consumer.spec.cluster_ref
            ),
        )
        .await;
        set_finalizer(consumer, ctx, ns, false).await?;
        return Ok(Action::await_change());
    };
    let connection = ctx.connections.connection(&cluster, &ctx.client).await?;
    let mut tally = crate::kafka::RequestTally::default();
    let described = connection.groups.describe_group(&group, &mut tally).await?;
    if !described.is_empty() {
        tracing::info!(consumer = %name, namespace = ns, %group, state = %described.state, members = described.members.len(), "waiting for the group to empty before deleting it");
        ctx.publish(
            consumer,
            EventType::Normal,
            "WaitingForEmptyGroup",
            format!(
                "group {group} is not empty (state {}, {} member(s)): deleted once it is",
                described.state,
                described.members.len()
            ),
        )
        .await;
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let outcome = connection.groups.delete_group(&group, &mut tally).await?;
    tracing::info!(consumer = %name, namespace = ns, %group, ?outcome, "consumer group deleted");
    ctx.publish(
        consumer,
        EventType::Normal,
        "GroupDeleted",
        format!("group {group} deleted (groupDeletionPolicy Delete)"),
    )
    .await;
    set_finalizer(consumer, ctx, ns, false).await?;
    Ok(Action::await_change())
}
