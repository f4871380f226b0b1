//! The KafkaTopic reconciler: finalizer, conflicts, pause and dry-run, batched broker work,
//! status and events.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::{Api, ResourceExt};

use super::batcher::{Answer, Batcher, Intent};
use super::claims::Claims;
use super::desired::resolve_topic;
use super::status::{topic_status, Hold, TopicState};
use crate::api::{ConditionStatus, DeletionPolicy, KafkaTopic, KafkaTopicStatus};
use crate::clusters::validate_cluster;
use crate::kafka::BrokerError;
use crate::model::TopicName;
use crate::runtime::status::{now, READY};
use crate::runtime::{write_status, Context, Error, DRY_RUN_ANNOTATION, PAUSED_ANNOTATION};
use crate::topics::execute::Outcome;
use crate::topics::plan;

/// The finalizer that holds a KafkaTopic until its broker topic is dealt with.
pub const TOPIC_FINALIZER: &str = "tributary.io/topic";

/// What makes a KafkaTopic worth reconciling again: its spec (generation), the annotations
/// that steer it, deletion and finalizers — not its own status writes.
pub fn trigger_hash(topic: &KafkaTopic) -> Option<u64> {
    let mut h = DefaultHasher::new();
    topic.metadata.generation.hash(&mut h);
    topic.metadata.uid.hash(&mut h);
    topic.metadata.deletion_timestamp.is_some().hash(&mut h);
    topic.metadata.finalizers.hash(&mut h);
    topic.annotations().get(PAUSED_ANNOTATION).hash(&mut h);
    topic.annotations().get(DRY_RUN_ANNOTATION).hash(&mut h);
    Some(h.finish())
}

fn annotated(topic: &KafkaTopic, annotation: &str) -> bool {
    topic
        .annotations()
        .get(annotation)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Reconciles one KafkaTopic; `claims` is the claims index of the watch it came from.
pub async fn reconcile(
    topic: Arc<KafkaTopic>,
    ctx: Arc<Context>,
    claims: Arc<Claims>,
) -> Result<Action, Error> {
    let api: Api<KafkaTopic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    finalizer(&api, TOPIC_FINALIZER, topic, |event| async {
        match event {
            Finalizer::Apply(t) => apply(&t, &api, &ctx, &claims).await,
            Finalizer::Cleanup(t) => cleanup(&t, &ctx, &claims).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(
    topic: &KafkaTopic,
    api: &Api<KafkaTopic>,
    ctx: &Context,
    claims: &Claims,
) -> Result<Action, Error> {
    let id = crate::runtime::object_key(topic);
    let generation = topic.metadata.generation;
    let name = topic.broker_topic_name().unwrap_or_default().to_owned();
    let previous = topic.status.as_ref();

    let Some(cluster) = ctx.cluster(topic.namespace().as_deref(), &topic.spec.cluster_ref) else {
        report(
            api,
            topic,
            &name,
            &TopicState::ClusterNotFound(&topic.spec.cluster_ref),
        )
        .await?;
        return Ok(Action::requeue(ctx.backoff.next(&id)));
    };
    let desired = match resolve_topic(topic, cluster.spec.topic_defaults.as_ref()) {
        Ok(d) => d,
        Err(errors) => {
            report(api, topic, &name, &TopicState::Invalid(&errors)).await?;
            return Ok(Action::await_change());
        }
    };
    let cluster_errors = validate_cluster(&cluster);
    if !cluster_errors.is_empty() {
        let e = BrokerError::Client(format!(
            "KafkaCluster '{}' is invalid: {}",
            cluster.name_any(),
            cluster_errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ));
        report(api, topic, &name, &TopicState::Broker(&e)).await?;
        return Ok(Action::await_change());
    }
    if let Some(owner) = claims.owner(topic, desired.name.as_str()) {
        report(api, topic, &name, &TopicState::Conflict { owner: &owner }).await?;
        return Ok(Action::await_change());
    }

    let hold = if annotated(topic, PAUSED_ANNOTATION) {
        Some(Hold::Paused)
    } else if annotated(topic, DRY_RUN_ANNOTATION) {
        Some(Hold::DryRun)
    } else {
        None
    };
    let intent = Intent::Ensure {
        desired: desired.clone(),
        execute: hold.is_none(),
    };

    let answer = match ctx.connections.connection(&cluster, &ctx.client).await {
        Ok(connection) => Batcher::of(&connection, &ctx.options).submit(intent).await,
        Err(e) => Err(e),
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            report(api, topic, &name, &TopicState::Broker(&e)).await?;
            return Ok(Action::requeue(ctx.backoff.next(&id)));
        }
    };
    publish_events(topic, previous, generation, &answer, ctx).await;
    let status = topic_status(
        previous,
        generation,
        &name,
        &TopicState::Planned {
            desired: &desired,
            answer: &answer,
            hold,
        },
        &now(),
    );
    let retry = status.conditions.iter().any(|c| {
        c.type_ == crate::runtime::status::RECONCILING && c.status == ConditionStatus::True
    });
    write_status(api, topic, topic.status.as_ref(), &status).await?;
    if retry {
        Ok(Action::requeue(ctx.backoff.next(&id)))
    } else {
        ctx.backoff.reset(&id);
        Ok(Action::await_change())
    }
}

/// One Event per change made to the broker (and per failure); a change to a topic that was in
/// sync at this generation is drift made behind our back, and says so.
async fn publish_events(
    topic: &KafkaTopic,
    previous: Option<&KafkaTopicStatus>,
    generation: Option<i64>,
    answer: &Answer,
    ctx: &Context,
) {
    let was_in_sync = previous.is_some_and(|s| {
        s.observed_generation == generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
    });
    for executed in &answer.executed {
        let text = executed.action.to_string().replace('\n', " ");
        let (type_, reason) = match (&executed.outcome, &executed.action) {
            (Outcome::Done, plan::Action::Create { .. }) if was_in_sync => {
                (EventType::Warning, "Recreated")
            }
            (Outcome::Done, plan::Action::Create { .. }) => (EventType::Normal, "Created"),
            (Outcome::Done, plan::Action::IncreasePartitions { .. }) => {
                (EventType::Normal, "PartitionsIncreased")
            }
            (Outcome::Done, plan::Action::AlterConfigs { .. }) if was_in_sync => {
                (EventType::Warning, "DriftRepaired")
            }
            (Outcome::Done, plan::Action::AlterConfigs { .. }) => {
                (EventType::Normal, "ConfigUpdated")
            }
            (Outcome::Done, plan::Action::Delete { .. }) => (EventType::Normal, "Deleted"),
            (Outcome::Failed { reason, .. }, _) => (EventType::Warning, reason.as_str()),
            (Outcome::Refused(reasons), _) => (
                EventType::Warning,
                reasons.first().map_or("Refused", |r| r.reason().as_str()),
            ),
            (Outcome::Done, plan::Action::Refuse { .. }) => continue,
        };
        let note = match &executed.outcome {
            Outcome::Failed { message, .. } => format!("{text}: {message}"),
            _ if reason == "Recreated" => {
                format!("the topic was missing from the broker (deleted by hand?); {text}")
            }
            _ if reason == "DriftRepaired" => {
                format!("the topic had drifted from the spec (changed by hand?); {text}")
            }
            _ => text,
        };
        publish(ctx, topic, type_, reason, note).await;
    }
}

async fn publish(ctx: &Context, topic: &KafkaTopic, type_: EventType, reason: &str, note: String) {
    ctx.publish(topic, type_, reason, note).await;
}

/// Writes the status for `state`.
async fn report(
    api: &Api<KafkaTopic>,
    topic: &KafkaTopic,
    name: &str,
    state: &TopicState<'_>,
) -> Result<(), Error> {
    let status = topic_status(
        topic.status.as_ref(),
        topic.metadata.generation,
        name,
        state,
        &now(),
    );
    write_status(api, topic, topic.status.as_ref(), &status).await
}

/// Deletion: `Retain` (or paused, or a resource that lost a conflict) releases at once; `Delete`
/// deletes the broker topic first, or orphans it after the grace period when the cluster cannot
/// be reached, so a finalizer never hangs a namespace.
async fn cleanup(topic: &KafkaTopic, ctx: &Context, claims: &Claims) -> Result<Action, Error> {
    let name = topic
        .status
        .as_ref()
        .and_then(|s| s.topic_name.clone())
        .or_else(|| topic.broker_topic_name().map(str::to_owned))
        .unwrap_or_default();
    if topic.spec.deletion_policy == DeletionPolicy::Retain {
        publish(
            ctx,
            topic,
            EventType::Normal,
            "Retained",
            format!("deletionPolicy is Retain: topic '{name}' stays on the broker"),
        )
        .await;
        return Ok(Action::await_change());
    }
    if annotated(topic, PAUSED_ANNOTATION) {
        publish(
            ctx,
            topic,
            EventType::Normal,
            "Retained",
            format!("{PAUSED_ANNOTATION} is set: topic '{name}' stays on the broker"),
        )
        .await;
        return Ok(Action::await_change());
    }
    if let Some(owner) = claims.owner(topic, &name) {
        publish(
            ctx,
            topic,
            EventType::Normal,
            "Retained",
            format!("topic '{name}' belongs to KafkaTopic '{owner}': not deleted"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let Ok(topic_name) = TopicName::parse(&name) else {
        return Ok(Action::await_change());
    };
    let result = match ctx.cluster(topic.namespace().as_deref(), &topic.spec.cluster_ref) {
        None => Err(BrokerError::Client(format!(
            "KafkaCluster '{}' no longer exists",
            topic.spec.cluster_ref
        ))),
        Some(cluster) => match ctx.connections.connection(&cluster, &ctx.client).await {
            Ok(c) => {
                Batcher::of(&c, &ctx.options)
                    .submit(Intent::Remove {
                        name: topic_name,
                        policy: DeletionPolicy::Delete,
                    })
                    .await
            }
            Err(e) => Err(e),
        },
    };
    let failure = match result {
        Ok(answer) => match answer.executed.iter().find_map(|e| match &e.outcome {
            Outcome::Failed { message, .. } => Some(message.clone()),
            _ => None,
        }) {
            None => {
                publish(
                    ctx,
                    topic,
                    EventType::Normal,
                    "Deleted",
                    format!("deletionPolicy is Delete: topic '{name}' deleted from the broker"),
                )
                .await;
                return Ok(Action::await_change());
            }
            Some(message) => BrokerError::Rejected {
                api: "DeleteTopics",
                code: "Failed".into(),
                message,
            },
        },
        Err(e) => e,
    };
    let since = topic
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().duration_since(t.0).unsigned_abs())
        .unwrap_or_default();
    if since >= ctx.options.orphan_grace {
        publish(
            ctx,
            topic,
            EventType::Warning,
            "Orphaned",
            format!("topic '{name}' could not be deleted for {since:?} ({failure}); released after the {:?} grace period and left on the broker", ctx.options.orphan_grace),
        )
        .await;
        return Ok(Action::await_change());
    }
    Err(Error::Broker(failure))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::KafkaTopicSpec;

    fn topic(name: &str, topic_name: Option<&str>, created: i64) -> Arc<KafkaTopic> {
        let mut t = KafkaTopic::new(
            name,
            KafkaTopicSpec {
                cluster_ref: "prod".into(),
                topic_name: topic_name.map(Into::into),
                partitions: 3,
                replication_factor: None,
                config: BTreeMap::new(),
                deletion_policy: DeletionPolicy::Retain,
            },
        );
        t.metadata.namespace = Some("booking".into());
        t.metadata.uid = Some(format!("uid-{name}"));
        t.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        Arc::new(t)
    }

    #[test]
    fn status_writes_do_not_trigger_but_spec_and_annotations_do() {
        let t = (*topic("bookings", None, 1)).clone();
        let mut with_status = t.clone();
        with_status.status = Some(KafkaTopicStatus {
            partitions: Some(3),
            ..Default::default()
        });
        assert_eq!(trigger_hash(&t), trigger_hash(&with_status));
        let mut paused = t.clone();
        paused
            .annotations_mut()
            .insert(PAUSED_ANNOTATION.into(), "true".into());
        assert_ne!(trigger_hash(&t), trigger_hash(&paused));
        let mut edited = t.clone();
        edited.metadata.generation = Some(2);
        assert_ne!(trigger_hash(&t), trigger_hash(&edited));
    }
}
