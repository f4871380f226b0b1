//! The KafkaConsumer reconciler: a Deployment wired to the cluster (bootstrap, group, topics,
//! credentials as env), scaled on consumer lag — never beyond the partitions of its topics —
//! with lag per topic and the replica decision in status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::status::{apply_verdict, Verdict};
use super::workloads::{
    apply_deployment, missing_secret, namespace_topics, rollout, secret_refs, topics_not_ready,
};
use super::{Context, Error, FIELD_MANAGER};
use crate::api::{
    KafkaConsumer, KafkaConsumerStatus, OffsetResetPolicy, ReplicaDecision, TopicLag, API_VERSION,
};
use crate::autoscale::{decide, ScaleInput, ScalePolicy};
use crate::kafka::lag::{GroupQuery, OffsetReset};
use crate::workload::{
    broker_topics, consumer_deployment, topic_names, validate_consumer, ConnectionFacts, Scaling,
};

fn key(c: &KafkaConsumer) -> String {
    format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any())
}

fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub async fn reconcile(consumer: Arc<KafkaConsumer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let id = key(&consumer);
    let ns = consumer.namespace().unwrap_or_default();
    let mut status = consumer.status.clone().unwrap_or_default();
    status.observed_generation = consumer.metadata.generation;
    let (verdict, next) = decide_status(&consumer, &ctx, &ns, &mut status).await?;
    apply_verdict(
        &mut status.conditions,
        &verdict,
        consumer.metadata.generation,
        &now(),
    );
    if consumer.status.as_ref() != Some(&status) {
        let api: Api<KafkaConsumer> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({ "apiVersion": API_VERSION, "kind": "KafkaConsumer", "status": status });
        api.patch_status(
            &consumer.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    if verdict.ready {
        ctx.backoff.reset(&id);
    }
    Ok(next.unwrap_or_else(|| Action::requeue(ctx.backoff.next(&id))))
}

pub fn error_policy(consumer: Arc<KafkaConsumer>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.next(&key(&consumer));
    tracing::warn!(consumer = %key(&consumer), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn verdict(
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: &'static str,
    message: String,
) -> Verdict<'static> {
    Verdict {
        ready,
        reconciling,
        stalled,
        reason,
        message,
    }
}

async fn decide_status(
    consumer: &KafkaConsumer,
    ctx: &Context,
    ns: &str,
    status: &mut KafkaConsumerStatus,
) -> Result<(Verdict<'static>, Option<Action>), Error> {
    let join = |errors: &[crate::model::FieldError]| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let valid = match validate_consumer(consumer) {
        Ok(v) => v,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, "InvalidSpec", join(&errors)),
                Some(Action::await_change()),
            ))
        }
    };
    status.group_id = Some(valid.group_id.clone());
    let Some(cluster) = ctx.cluster(Some(ns), &valid.cluster_ref) else {
        let message = format!(
            "KafkaCluster '{}' does not exist in this namespace",
            valid.cluster_ref
        );
        return Ok((
            verdict(false, true, false, "ClusterNotFound", message),
            None,
        ));
    };
    let facts = match ConnectionFacts::from_cluster(&cluster) {
        Ok(f) => f,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, "InvalidCluster", join(&errors)),
                Some(Action::requeue(ctx.options.resync)),
            ))
        }
    };
    if let Some(missing) = missing_secret(ctx, ns, &secret_refs(&facts)).await? {
        return Ok((verdict(false, true, false, "SecretNotFound", missing), None));
    }
    let topics = namespace_topics(ctx, ns);
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
    let connection = match ctx.registry.connection(&cluster, &ctx.client).await {
        Ok(c) => c,
        Err(e) => return Ok((verdict(false, true, false, e.reason(), e.to_string()), None)),
    };
    let query = GroupQuery {
        group_id: valid.group_id.clone(),
        topics: broker_names.clone(),
        reset,
    };
    let lag = match connection.lag.observe(query).await {
        Ok(group) => match group.result {
            Ok(lag) => lag,
            Err(rejection) => {
                return Ok((
                    verdict(false, true, false, "LagUnavailable", rejection.to_string()),
                    None,
                ))
            }
        },
        Err(e) => return Ok((verdict(false, true, false, e.reason(), e.to_string()), None)),
    };
    status.total_lag = Some(i64::try_from(lag.total).unwrap_or(i64::MAX));
    status.partitions = Some(lag.partition_count);
    status.members = lag.members;
    status.topics = lag
        .topics
        .iter()
        .map(|t| TopicLag {
            name: t.topic.clone(),
            partitions: Some(t.partitions),
            partitions_with_lag: Some(t.partitions_with_lag),
            lag: Some(i64::try_from(t.lag).unwrap_or(i64::MAX)),
        })
        .collect();

    let on_broker = lag
        .topics
        .iter()
        .filter(|t| t.exists)
        .map(|t| t.topic.clone())
        .collect();
    let waiting = topics_not_ready(&valid.topics, &topics, &names, &on_broker);
    if !waiting.is_empty() {
        let message = format!("not rolled out: waiting for {}", waiting.join(", "));
        return Ok((
            verdict(false, true, false, "TopicNotReady", message),
            Some(Action::requeue(Duration::from_secs(5))),
        ));
    }

    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let current = deployments
        .get_opt(&consumer.name_any())
        .await?
        .and_then(|d| d.spec.replicas)
        .or(status.replicas);
    let decision = match (&valid.scaling, policy) {
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
            let d = decide(&ScaleInput {
                policy: &policy,
                current_replicas: current.unwrap_or(p.min_replicas),
                total_lag: lag.total,
                partitions: lag.partition_count,
                partitions_with_lag: lag.partitions_with_lag,
                now: SystemTime::now(),
                history: &history,
            });
            status.scale_history = Some(d.history.clone());
            let reason = match d.change {
                crate::autoscale::Change::Up => "ScaledUp",
                crate::autoscale::Change::Down => "ScaledDown",
                crate::autoscale::Change::None => "Steady",
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
    let previous_replicas = current.unwrap_or(0);
    if !same {
        status.replica_decision = Some(decision.clone());
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
        ctx.publish(
            consumer,
            kube::runtime::events::EventType::Normal,
            reason,
            note,
        )
        .await;
    }

    let deployment = consumer_deployment(&valid, &facts, &names, replicas)
        .map_err(|e| Error::Render(e.to_string()))?;
    let applied = apply_deployment(ctx, ns, &deployment).await?;
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
                "Available",
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
                "Progressing",
                format!("{ready}/{replicas} replicas ready; lag {}", lag.total),
            ),
            requeue,
        )
    })
}
