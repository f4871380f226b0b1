//! What the KafkaConsumer and KafkaProducer reconcilers share: finding the cluster and the
//! topics a workload uses, checking the Secrets its pods will read, and applying the rendered
//! Deployment / Service server-side under the field manager `tributary`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde::Serialize;

use super::applied::contains;
use crate::api::Reason;
use crate::api::{Condition, ConditionStatus, KafkaCluster, KafkaTopic, SecretKeySelector};
use crate::model::FieldError;
use crate::runtime::status::{apply_verdict, now, Verdict};
use crate::runtime::{Context, Error, FIELD_MANAGER};
use crate::workloads::{ConnectionFacts, Credential, TopicNames, TopicRef};

/// Every Secret key a workload's pods read for their connection.
pub fn secret_refs(facts: &ConnectionFacts) -> Vec<&SecretKeySelector> {
    let mut refs = Vec::new();
    if let Some(tls) = &facts.tls {
        refs.extend(
            tls.ca_cert
                .iter()
                .chain(&tls.client_cert)
                .chain(&tls.client_key),
        );
    }
    if let Some(sasl) = &facts.sasl {
        if let Credential::Secret(s) = &sasl.username {
            refs.push(s);
        }
        refs.push(&sasl.password);
    }
    refs
}

/// The first referenced Secret (or key) that does not exist, said plainly.
pub async fn missing_secret(
    ctx: &Context,
    namespace: &str,
    refs: &[&SecretKeySelector],
) -> Result<Option<String>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    for r in refs {
        match api.get_opt(&r.name).await? {
            None => {
                return Ok(Some(format!(
                    "Secret {namespace}/{} does not exist",
                    r.name
                )))
            }
            Some(secret) => {
                let has_key = secret.data.as_ref().is_some_and(|d| d.contains_key(&r.key))
                    || secret
                        .string_data
                        .as_ref()
                        .is_some_and(|d| d.contains_key(&r.key));
                if !has_key {
                    return Ok(Some(format!(
                        "Secret {namespace}/{} has no key '{}'",
                        r.name, r.key
                    )));
                }
            }
        }
    }
    Ok(None)
}

/// The KafkaTopics of `namespace` that `refs` name, as workloads refer to them: one cache
/// lookup each, never a scan of every KafkaTopic (a reference that names no KafkaTopic is a
/// broker topic name).
pub fn referenced_topics(
    ctx: &Context,
    namespace: &str,
    refs: &[TopicRef],
) -> Vec<std::sync::Arc<KafkaTopic>> {
    refs.iter()
        .filter_map(|r| {
            ctx.topics
                .get(&ObjectRef::new(r.as_str()).within(namespace))
        })
        .collect()
}

/// Topics a workload uses that are not usable yet: a named KafkaTopic that is not Ready, or a
/// raw topic name absent from the broker (`on_broker` lists the broker's topics).
pub fn topics_not_ready(
    refs: &[TopicRef],
    topics: &[std::sync::Arc<KafkaTopic>],
    names: &TopicNames,
    on_broker: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    refs.iter()
        .filter_map(
            |r| match topics.iter().find(|t| t.name_any() == r.as_str()) {
                Some(t) => {
                    let ready = t.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
                    });
                    (!ready).then(|| format!("{} (KafkaTopic not Ready)", r.as_str()))
                }
                None => {
                    let broker_name = r.resolve(names);
                    (!on_broker.contains(broker_name.as_str())).then(|| {
                        format!("{} (no such KafkaTopic, and not on the broker)", r.as_str())
                    })
                }
            },
        )
        .collect()
}

/// Topics a workload uses whose KafkaTopic is Ready but which a look at the broker just found
/// missing (deleted under it): what the broker says wins over the KafkaTopic's last status,
/// which is re-checked only at its next reconcile. Returns `(reference, KafkaTopic)` pairs.
pub fn ready_but_missing<'a>(
    refs: &'a [TopicRef],
    topics: &'a [std::sync::Arc<KafkaTopic>],
    names: &TopicNames,
    on_broker: &std::collections::BTreeSet<String>,
) -> Vec<(&'a TopicRef, &'a std::sync::Arc<KafkaTopic>)> {
    refs.iter()
        .filter_map(|r| {
            let topic = topics.iter().find(|t| t.name_any() == r.as_str())?;
            let ready = topic.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
            });
            (ready && !on_broker.contains(r.resolve(names).as_str())).then_some((r, topic))
        })
        .collect()
}

/// Server-side applies `desired` (a Deployment or Service), unless `current` — what the API
/// server holds, `None` when it holds nothing — already has every field of it: an idle
/// operator writes nothing. Returns what the API server holds afterwards.
pub async fn apply_if_changed<K>(
    ctx: &Context,
    namespace: &str,
    current: Option<K>,
    desired: &K,
) -> Result<K, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Serialize
        + serde::de::DeserializeOwned,
{
    if let Some(current) = current {
        let (have, want) = (
            serde_json::to_value(&current),
            serde_json::to_value(desired),
        );
        if let (Ok(have), Ok(want)) = (have, want) {
            if contains(&have, &want) {
                return Ok(current);
            }
        }
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api
        .patch(
            &desired.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?)
}

/// What the API server holds of the `K` named `name`, if anything.
pub async fn current<K>(ctx: &Context, namespace: &str, name: &str) -> Result<Option<K>, Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_opt(name).await?)
}

/// `(ready replicas, available)` of a Deployment as the API server reports it.
pub fn rollout(deployment: &Deployment, desired: i32) -> (i32, bool) {
    let status = deployment.status.as_ref();
    let ready = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    let observed = status.and_then(|s| s.observed_generation) >= deployment.metadata.generation;
    (ready, observed && available >= desired)
}

/// What a workload reconcile concluded: the status verdict, and when to look again (`None`:
/// after this object's backoff).
pub type Outcome = (Verdict, Option<Action>);

pub fn verdict(
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: Reason,
    message: String,
) -> Verdict {
    Verdict {
        ready,
        reconciling,
        stalled,
        reason,
        message,
    }
}

/// Problems as one bounded status message ([`FieldError::join`]).
pub fn joined(errors: &[FieldError]) -> String {
    FieldError::join(errors)
}

/// The workload's KafkaCluster and what its pods need to reach it, with every Secret they
/// will read present; `Err` is the outcome to report instead.
pub async fn cluster_connection(
    ctx: &Context,
    namespace: &str,
    cluster_ref: &str,
) -> Result<Result<(Arc<KafkaCluster>, ConnectionFacts), Outcome>, Error> {
    let Some(cluster) = ctx.cluster(Some(namespace), cluster_ref) else {
        let message = format!("KafkaCluster '{cluster_ref}' does not exist in this namespace");
        return Ok(Err((
            verdict(false, true, false, Reason::ClusterNotFound, message),
            None,
        )));
    };
    let facts = match ConnectionFacts::from_cluster(&cluster) {
        Ok(f) => f,
        Err(errors) => {
            return Ok(Err((
                verdict(false, false, true, Reason::InvalidCluster, joined(&errors)),
                Some(Action::requeue(ctx.options.resync)),
            )))
        }
    };
    if let Some(missing) = missing_secret(ctx, namespace, &secret_refs(&facts)).await? {
        return Ok(Err((
            verdict(false, true, false, Reason::SecretNotFound, missing),
            None,
        )));
    }
    Ok(Ok((cluster, facts)))
}

/// Writes a workload's status (server-side apply, only when it changed) with the outcome's
/// conditions, and says when to reconcile again.
pub async fn finish<K, S>(
    ctx: &Context,
    object: &K,
    previous: Option<&S>,
    mut status: S,
    conditions: impl FnOnce(&mut S) -> &mut Vec<Condition>,
    (verdict, next): Outcome,
) -> Result<Action, Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    apply_verdict(
        conditions(&mut status),
        &verdict,
        object.meta().generation,
        &now(),
    );
    if previous != Some(&status) {
        let api: Api<K> =
            Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
        // Based on the cached object: a precondition, so that a reconcile of a stale copy
        // (the cache behind our own last write) gets a conflict and runs again on a fresh one,
        // instead of writing back what it read (the last scaling, the scale history).
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": { "resourceVersion": object.meta().resource_version },
            "status": status,
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    let id = crate::runtime::object_key(object);
    if verdict.ready {
        ctx.backoff.reset(&id);
    }
    Ok(next.unwrap_or_else(|| Action::requeue(ctx.backoff.next(&id))))
}
