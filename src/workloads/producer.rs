//! The KafkaProducer reconciler: a Deployment (and Service) wired to the cluster, rolled out
//! only once every topic it writes is Ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use kube::ResourceExt;

use super::apply::{
    apply_if_changed, cluster_connection, current, finish, joined, referenced_topics, rollout,
    topics_not_ready, verdict, Outcome,
};
use crate::api::Reason;
use crate::api::{KafkaProducer, KafkaProducerStatus};
use crate::runtime::{Context, Error};
use crate::workloads::{producer_deployment, producer_service, topic_names, validate_producer};

pub async fn reconcile(producer: Arc<KafkaProducer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = producer.namespace().unwrap_or_default();
    let mut status = producer.status.clone().unwrap_or_default();
    status.observed_generation = producer.metadata.generation;
    status.waiting_for_topics.clear();
    let outcome = decide(&producer, &ctx, &ns, &mut status).await?;
    finish(
        &ctx,
        &*producer,
        producer.status.as_ref(),
        status,
        |s| &mut s.conditions,
        outcome,
    )
    .await
}

/// What the producer's status should say, and when to look again (`None`: with backoff).
async fn decide(
    producer: &KafkaProducer,
    ctx: &Context,
    ns: &str,
    status: &mut KafkaProducerStatus,
) -> Result<Outcome, Error> {
    let valid = match validate_producer(producer) {
        Ok(v) => v,
        Err(errors) => {
            return Ok((
                verdict(false, false, true, Reason::InvalidSpec, joined(&errors)),
                Some(Action::await_change()),
            ))
        }
    };
    let (cluster, facts) = match cluster_connection(ctx, ns, &valid.cluster_ref).await? {
        Ok(found) => found,
        Err(outcome) => return Ok(outcome),
    };
    let topics = referenced_topics(ctx, ns, &valid.topics);
    let names = topic_names(topics.iter().map(|t| &**t));
    let on_broker = broker_topic_set(ctx, &cluster, &valid.topics, &topics).await;
    let waiting = topics_not_ready(&valid.topics, &topics, &names, &on_broker);
    if !waiting.is_empty() {
        status.waiting_for_topics = waiting.clone();
        let message = format!("not rolled out: waiting for {}", waiting.join(", "));
        return Ok((
            verdict(false, true, false, Reason::WaitingForTopics, message),
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
    let existing: Option<Deployment> = current(ctx, ns, &deployment.name_any()).await?;
    let applied = apply_if_changed(ctx, ns, existing, &deployment).await?;
    if let Some(service) = producer_service(&valid).map_err(|e| Error::Render(e.to_string()))? {
        let existing: Option<Service> = current(ctx, ns, &service.name_any()).await?;
        apply_if_changed(ctx, ns, existing, &service).await?;
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
                Reason::Available,
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
                Reason::Progressing,
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
    refs: &[crate::workloads::TopicRef],
    topics: &[Arc<crate::api::KafkaTopic>],
) -> BTreeSet<String> {
    let raw = refs
        .iter()
        .any(|r| !topics.iter().any(|t| t.name_any() == r.as_str()));
    if !raw {
        return BTreeSet::new();
    }
    match ctx.connections.connection(cluster, &ctx.client).await {
        Ok(c) => c
            .admin
            .snapshot(&[])
            .await
            .map(|s| s.topics.into_keys().collect())
            .unwrap_or_default(),
        Err(_) => BTreeSet::new(),
    }
}
