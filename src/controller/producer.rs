//! The KafkaProducer reconciler: a Deployment (and Service) wired to the cluster, rolled out
//! only once every topic it writes is Ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use super::status::{apply_verdict, Verdict};
use super::workloads::{
    apply_deployment, apply_service, missing_secret, namespace_topics, rollout, secret_refs,
    topics_not_ready,
};
use super::{Context, Error, FIELD_MANAGER};
use crate::api::{KafkaProducer, KafkaProducerStatus, API_VERSION};
use crate::workload::{
    producer_deployment, producer_service, topic_names, validate_producer, ConnectionFacts,
};

fn key(p: &KafkaProducer) -> String {
    format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any())
}

pub async fn reconcile(producer: Arc<KafkaProducer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let id = key(&producer);
    let ns = producer.namespace().unwrap_or_default();
    let mut status = producer.status.clone().unwrap_or_default();
    status.observed_generation = producer.metadata.generation;
    status.waiting_for_topics.clear();
    let (verdict, next) = decide(&producer, &ctx, &ns, &mut status).await?;
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    apply_verdict(
        &mut status.conditions,
        &verdict,
        producer.metadata.generation,
        &now,
    );
    if producer.status.as_ref() != Some(&status) {
        let api: Api<KafkaProducer> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({ "apiVersion": API_VERSION, "kind": "KafkaProducer", "status": status });
        api.patch_status(
            &producer.name_any(),
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

pub fn error_policy(producer: Arc<KafkaProducer>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.next(&key(&producer));
    tracing::warn!(producer = %key(&producer), %error, retry_in = ?delay, "reconcile failed");
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

/// What the producer's status should say, and when to look again (`None`: with backoff).
async fn decide(
    producer: &KafkaProducer,
    ctx: &Context,
    ns: &str,
    status: &mut KafkaProducerStatus,
) -> Result<(Verdict<'static>, Option<Action>), Error> {
    let join = |errors: &[crate::model::FieldError]| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let valid = match validate_producer(producer) {
        Ok(v) => v,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, "InvalidSpec", join(&errors)),
                Some(Action::await_change()),
            ))
        }
    };
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
    let on_broker = broker_topic_set(ctx, &cluster, &valid.topics, &topics).await;
    let waiting = topics_not_ready(&valid.topics, &topics, &names, &on_broker);
    if !waiting.is_empty() {
        status.waiting_for_topics = waiting.clone();
        let message = format!("not rolled out: waiting for {}", waiting.join(", "));
        return Ok((
            verdict(false, true, false, "WaitingForTopics", message),
            Some(Action::requeue(
                ctx.options
                    .backoff_base
                    .max(std::time::Duration::from_secs(5)),
            )),
        ));
    }
    let deployment = producer_deployment(&valid, &facts, &names, valid.replicas)
        .map_err(|e| Error::Render(e.to_string()))?;
    let was_waiting = producer
        .status
        .as_ref()
        .is_none_or(|s| s.replicas.is_none() || !s.waiting_for_topics.is_empty());
    if was_waiting {
        let note = format!(
            "every topic is Ready: rolling out {} replica(s)",
            valid.replicas
        );
        ctx.publish(
            producer,
            kube::runtime::events::EventType::Normal,
            "RolledOut",
            note,
        )
        .await;
    }
    let applied = apply_deployment(ctx, ns, &deployment).await?;
    if let Some(service) = producer_service(&valid).map_err(|e| Error::Render(e.to_string()))? {
        apply_service(ctx, ns, &service).await?;
    }
    let (ready, available) = rollout(&applied, valid.replicas);
    status.replicas = Some(valid.replicas);
    status.ready_replicas = Some(ready);
    Ok(if available {
        (
            verdict(
                true,
                false,
                false,
                "Available",
                format!("{ready}/{} replicas ready", valid.replicas),
            ),
            Some(Action::requeue(ctx.options.resync)),
        )
    } else {
        (
            verdict(
                false,
                true,
                false,
                "Progressing",
                format!("{ready}/{} replicas ready", valid.replicas),
            ),
            Some(Action::requeue(std::time::Duration::from_secs(5))),
        )
    })
}

/// Broker topics among the workload's raw topic references (named KafkaTopics need no look).
async fn broker_topic_set(
    ctx: &Context,
    cluster: &crate::api::KafkaCluster,
    refs: &[crate::workload::TopicRef],
    topics: &[Arc<crate::api::KafkaTopic>],
) -> BTreeSet<String> {
    let raw = refs
        .iter()
        .any(|r| !topics.iter().any(|t| t.name_any() == r.as_str()));
    if !raw {
        return BTreeSet::new();
    }
    match ctx.registry.connection(cluster, &ctx.client).await {
        Ok(c) => c
            .admin
            .snapshot(&[])
            .await
            .map(|s| s.topics.into_keys().collect())
            .unwrap_or_default(),
        Err(_) => BTreeSet::new(),
    }
}
