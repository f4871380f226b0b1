//! The StreamTopology reconciler: expands the topology (the same [`expand`] the CLI runs),
//! server-side applies the children it owns, deletes the children that left the spec (a
//! topic child's own `deletionPolicy` then decides whether the broker topic goes), and
//! aggregates the children's readiness and lag into the topology's status, with its graph.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;

use super::workloads::{finish, joined, verdict, Outcome};
use super::{Context, Error, FIELD_MANAGER, PAUSED_ANNOTATION};
use crate::api::{
    ChildStatus, Condition, ConditionStatus, KafkaConsumer, KafkaProducer, KafkaTopic,
    StreamTopology, StreamTopologyStatus,
};
use crate::model::FieldError;
use crate::topology::{expand, Expansion, TOPOLOGY_LABEL};

/// The caches of the kinds a topology owns (KafkaTopics are in [`Context::topics`]).
#[derive(Clone)]
pub struct Children {
    pub producers: Store<KafkaProducer>,
    pub consumers: Store<KafkaConsumer>,
}

pub async fn reconcile(
    topology: Arc<StreamTopology>,
    ctx: Arc<Context>,
    children: Children,
) -> Result<Action, Error> {
    if topology.metadata.deletion_timestamp.is_some() {
        // The children carry owner references: the garbage collector removes them, and each
        // topic child's finalizer honours its deletion policy.
        return Ok(Action::await_change());
    }
    let mut status = topology.status.clone().unwrap_or_default();
    status.observed_generation = topology.metadata.generation;
    let outcome = decide(&topology, &ctx, &children, &mut status).await?;
    finish(
        &ctx,
        &*topology,
        topology.status.as_ref(),
        status,
        |s| &mut s.conditions,
        outcome,
    )
    .await
}

async fn decide(
    topology: &StreamTopology,
    ctx: &Context,
    children: &Children,
    status: &mut StreamTopologyStatus,
) -> Result<Outcome, Error> {
    let expansion = match expand(topology) {
        Ok(e) => e,
        Err(errors) => {
            status.warnings.clear();
            return Ok((
                verdict(false, false, true, "InvalidSpec", joined(&errors)),
                Some(Action::await_change()),
            ));
        }
    };
    status.warnings = expansion.warnings.iter().map(ToString::to_string).collect();
    status.graph = Some(expansion.graph().mermaid());
    let uid = topology.metadata.uid.clone().unwrap_or_default();
    let ns = topology.namespace().unwrap_or_default();

    let conflicts = foreign_children(&expansion, ctx, children, &uid);
    if !conflicts.is_empty() {
        return Ok((
            verdict(false, false, true, "ChildConflict", joined(&conflicts)),
            Some(Action::requeue(ctx.options.resync)),
        ));
    }
    if topology
        .annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        aggregate(&expansion, ctx, children, status);
        let message = format!("{PAUSED_ANNOTATION} is \"true\": children are not changed");
        return Ok((
            verdict(false, false, false, "Paused", message),
            Some(Action::await_change()),
        ));
    }

    let mut rejected = Vec::new();
    let topics: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &ns);
    let producers: Api<KafkaProducer> = Api::namespaced(ctx.client.clone(), &ns);
    let consumers: Api<KafkaConsumer> = Api::namespaced(ctx.client.clone(), &ns);
    for (i, child) in expansion.topics.iter().enumerate() {
        let current = ctx.topics.get(&ObjectRef::from_obj(child));
        if current
            .as_deref()
            .is_none_or(|c| differs(c, child, |k| &k.spec))
        {
            apply(&topics, child, format!("spec.topics[{i}]"), &mut rejected).await?;
        }
    }
    for (i, child) in expansion.producers.iter().enumerate() {
        let current = children.producers.get(&ObjectRef::from_obj(child));
        if current
            .as_deref()
            .is_none_or(|c| differs(c, child, |k| &k.spec))
        {
            apply(
                &producers,
                child,
                format!("spec.producers[{i}]"),
                &mut rejected,
            )
            .await?;
        }
    }
    for (i, child) in expansion.consumers.iter().enumerate() {
        let current = children.consumers.get(&ObjectRef::from_obj(child));
        if current
            .as_deref()
            .is_none_or(|c| differs(c, child, |k| &k.spec))
        {
            apply(
                &consumers,
                child,
                format!("spec.consumers[{i}]"),
                &mut rejected,
            )
            .await?;
        }
    }

    let keep: BTreeSet<String> = expansion.children().into_iter().map(|(_, n)| n).collect();
    let mut removed = Vec::new();
    removed.extend(prune(&topics, &ctx.topics, topology, &uid, &keep).await?);
    removed.extend(prune(&producers, &children.producers, topology, &uid, &keep).await?);
    removed.extend(prune(&consumers, &children.consumers, topology, &uid, &keep).await?);
    for (kind, name) in &removed {
        let note = format!("{kind} '{name}' left spec: deleted");
        ctx.publish(topology, EventType::Normal, "ChildRemoved", note)
            .await;
    }

    if !rejected.is_empty() {
        aggregate(&expansion, ctx, children, status);
        return Ok((
            verdict(false, false, true, "ChildRejected", joined(&rejected)),
            None,
        ));
    }
    let (ready, pending) = aggregate(&expansion, ctx, children, status);
    Ok(if ready {
        (
            verdict(
                true,
                false,
                false,
                "AllChildrenReady",
                format!("{} children Ready", status.children.len()),
            ),
            Some(Action::requeue(ctx.options.resync)),
        )
    } else {
        (
            verdict(false, true, false, "ChildrenNotReady", pending),
            Some(Action::requeue(ctx.options.resync)),
        )
    })
}

/// Children of the expansion that exist already but belong to someone else: the topology
/// never takes over what it did not create.
fn foreign_children(
    expansion: &Expansion,
    ctx: &Context,
    children: &Children,
    uid: &str,
) -> Vec<FieldError> {
    let owned_by_us = |meta: &kube::api::ObjectMeta| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.kind == "StreamTopology")
    };
    let mut conflicts = Vec::new();
    let mut check = |path: String, kind: &str, meta: Option<&kube::api::ObjectMeta>, name: &str| {
        if let Some(meta) = meta {
            if !owned_by_us(meta) {
                conflicts.push(FieldError::new(
                    path,
                    format!("{kind} '{name}' already exists and is not owned by this topology: rename the entry or remove that {kind}"),
                ));
            }
        }
    };
    for (i, t) in expansion.topics.iter().enumerate() {
        let found = ctx.topics.get(&ObjectRef::from_obj(t));
        check(
            format!("spec.topics[{i}].name"),
            "KafkaTopic",
            found.as_deref().map(|o| &o.metadata),
            &t.name_any(),
        );
    }
    for (i, p) in expansion.producers.iter().enumerate() {
        let found = children.producers.get(&ObjectRef::from_obj(p));
        check(
            format!("spec.producers[{i}].name"),
            "KafkaProducer",
            found.as_deref().map(|o| &o.metadata),
            &p.name_any(),
        );
    }
    for (i, c) in expansion.consumers.iter().enumerate() {
        let found = children.consumers.get(&ObjectRef::from_obj(c));
        check(
            format!("spec.consumers[{i}].name"),
            "KafkaConsumer",
            found.as_deref().map(|o| &o.metadata),
            &c.name_any(),
        );
    }
    conflicts
}

/// Whether the stored child differs from the desired one in what the topology sets: spec,
/// its labels, annotations and owner reference.
fn differs<K: Resource, S: PartialEq>(current: &K, desired: &K, spec: impl Fn(&K) -> &S) -> bool {
    let (c, d) = (current.meta(), desired.meta());
    let subset = |have: &Option<std::collections::BTreeMap<String, String>>,
                  want: &Option<std::collections::BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    spec(current) != spec(desired)
        || !subset(&c.labels, &d.labels)
        || !subset(&c.annotations, &d.annotations)
        || d.owner_references
            .iter()
            .flatten()
            .any(|o| !c.owner_references.iter().flatten().any(|h| h.uid == o.uid))
}

/// Server-side applies one child. A refusal by the API server (422: a rule of the child's
/// CRD, e.g. partitions that would decrease) is recorded against the entry, not retried.
async fn apply<K>(
    api: &Api<K>,
    child: &K,
    entry: String,
    rejected: &mut Vec<FieldError>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let result = api
        .patch(
            &child.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(child),
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
            rejected.push(FieldError::new(
                entry,
                format!(
                    "{} '{}' was refused by the API server: {}",
                    K::kind(&()),
                    child.name_any(),
                    s.message
                ),
            ));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes this topology's children (by label and owner uid) that are no longer in `keep`.
async fn prune<K>(
    api: &Api<K>,
    store: &Store<K>,
    topology: &StreamTopology,
    uid: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut removed = Vec::new();
    for child in store.state() {
        let meta = child.meta();
        let ours = meta.namespace == topology.metadata.namespace
            && meta.labels.as_ref().and_then(|l| l.get(TOPOLOGY_LABEL))
                == topology.metadata.name.as_ref()
            && meta
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true));
        let name = child.name_any();
        if !ours || keep.contains(&name) || meta.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(kind = %K::kind(&()), child = %name, "child left the topology: deleted");
        removed.push((K::kind(&()).into_owned(), name));
    }
    Ok(removed)
}

/// Fills the children, the ready count and the total lag in; returns whether every child is
/// Ready and, if not, which are not.
fn aggregate(
    expansion: &Expansion,
    ctx: &Context,
    children: &Children,
    status: &mut StreamTopologyStatus,
) -> (bool, String) {
    let ready_of = |generation: Option<i64>, observed: Option<i64>, conditions: &[Condition]| {
        let ready = conditions.iter().find(|c| c.type_ == "Ready");
        let current = observed.is_some() && observed == generation;
        (
            current && ready.is_some_and(|c| c.status == ConditionStatus::True),
            ready.map_or_else(|| "Pending".to_owned(), |c| c.reason.clone()),
        )
    };
    let mut list = Vec::new();
    for t in &expansion.topics {
        let found = ctx.topics.get(&ObjectRef::from_obj(t));
        let (ready, reason) = found.as_deref().map_or((false, "Pending".to_owned()), |f| {
            let s = f.status.clone().unwrap_or_default();
            ready_of(f.metadata.generation, s.observed_generation, &s.conditions)
        });
        list.push(child_status(
            "KafkaTopic",
            t.name_any(),
            ready,
            reason,
            None,
        ));
    }
    for p in &expansion.producers {
        let found = children.producers.get(&ObjectRef::from_obj(p));
        let (ready, reason) = found.as_deref().map_or((false, "Pending".to_owned()), |f| {
            let s = f.status.clone().unwrap_or_default();
            ready_of(f.metadata.generation, s.observed_generation, &s.conditions)
        });
        list.push(child_status(
            "KafkaProducer",
            p.name_any(),
            ready,
            reason,
            None,
        ));
    }
    let mut total_lag = None;
    for c in &expansion.consumers {
        let found = children.consumers.get(&ObjectRef::from_obj(c));
        let (ready, reason, lag) =
            found
                .as_deref()
                .map_or((false, "Pending".to_owned(), None), |f| {
                    let s = f.status.clone().unwrap_or_default();
                    let (ready, reason) =
                        ready_of(f.metadata.generation, s.observed_generation, &s.conditions);
                    (ready, reason, s.total_lag)
                });
        if let Some(lag) = lag {
            total_lag = Some(total_lag.unwrap_or(0) + lag);
        }
        list.push(child_status(
            "KafkaConsumer",
            c.name_any(),
            ready,
            reason,
            lag,
        ));
    }
    let ready = list.iter().filter(|c| c.ready).count();
    status.ready_children = Some(format!("{ready}/{}", list.len()));
    status.total_lag = total_lag;
    let pending: Vec<String> = list
        .iter()
        .filter(|c| !c.ready)
        .map(|c| {
            format!(
                "{} {} ({})",
                c.kind,
                c.name,
                c.reason.as_deref().unwrap_or("Pending")
            )
        })
        .collect();
    status.children = list;
    let message = if pending.len() > 5 {
        format!(
            "{} not Ready: {}, and {} more",
            pending.len(),
            pending[..5].join(", "),
            pending.len() - 5
        )
    } else {
        format!("not Ready: {}", pending.join(", "))
    };
    (pending.is_empty(), message)
}

fn child_status(
    kind: &str,
    name: String,
    ready: bool,
    reason: String,
    lag: Option<i64>,
) -> ChildStatus {
    ChildStatus {
        kind: kind.to_owned(),
        name,
        ready,
        reason: Some(reason),
        lag,
    }
}
