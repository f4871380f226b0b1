//! The StreamTopology reconciler: expands the topology (the same [`expand`] the CLI runs),
//! server-side applies the children it owns, deletes the children that left the spec (a
//! topic child's own `deletionPolicy` then decides whether the broker topic goes), and
//! aggregates the children's readiness and lag into the topology's status, with its graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;

use crate::api::Reason;
use crate::api::{
    ChildStatus, Condition, ConditionStatus, KafkaConsumer, KafkaProducer, KafkaTopic,
    StreamTopology, StreamTopologyStatus,
};
use crate::model::FieldError;
use crate::runtime::{Context, Error, FIELD_MANAGER, PAUSED_ANNOTATION};
use crate::topologies::{expand, Expansion, TOPOLOGY_LABEL};
use crate::workloads::{finish, joined, verdict, Outcome};

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
                verdict(false, false, true, Reason::InvalidSpec, joined(&errors)),
                Some(Action::await_change()),
            ));
        }
    };
    status.warnings = expansion.warnings.iter().map(ToString::to_string).collect();
    status.graph = Some(expansion.graph().mermaid());
    let uid = topology.metadata.uid.clone().unwrap_or_default();
    let ns = topology.namespace().unwrap_or_default();
    let kinds = Kinds::new(ctx, children, &ns);

    let mut conflicts = Vec::new();
    kinds
        .topics
        .foreign(&expansion.topics, "spec.topics", &uid, &mut conflicts);
    kinds
        .producers
        .foreign(&expansion.producers, "spec.producers", &uid, &mut conflicts);
    kinds
        .consumers
        .foreign(&expansion.consumers, "spec.consumers", &uid, &mut conflicts);
    if !conflicts.is_empty() {
        return Ok((
            verdict(
                false,
                false,
                true,
                Reason::ChildConflict,
                joined(&conflicts),
            ),
            Some(Action::requeue(ctx.options.resync)),
        ));
    }
    if topology
        .annotations()
        .get(PAUSED_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        aggregate(&expansion, &kinds, status);
        let message = format!("{PAUSED_ANNOTATION} is \"true\": children are not changed");
        return Ok((
            verdict(false, false, false, Reason::Paused, message),
            Some(Action::await_change()),
        ));
    }

    let mut rejected = Vec::new();
    kinds
        .topics
        .apply_changed(&expansion.topics, "spec.topics", &mut rejected)
        .await?;
    kinds
        .producers
        .apply_changed(&expansion.producers, "spec.producers", &mut rejected)
        .await?;
    kinds
        .consumers
        .apply_changed(&expansion.consumers, "spec.consumers", &mut rejected)
        .await?;

    let keep: BTreeSet<String> = expansion.children().into_iter().map(|(_, n)| n).collect();
    let mut removed = kinds.topics.prune(topology, &uid, &keep).await?;
    removed.extend(kinds.producers.prune(topology, &uid, &keep).await?);
    removed.extend(kinds.consumers.prune(topology, &uid, &keep).await?);
    for (kind, name) in &removed {
        let note = format!("{kind} '{name}' left spec: deleted");
        ctx.publish(topology, EventType::Normal, "ChildRemoved", note)
            .await;
    }

    let (ready, pending) = aggregate(&expansion, &kinds, status);
    Ok(if !rejected.is_empty() {
        (
            verdict(false, false, true, Reason::ChildRejected, joined(&rejected)),
            None,
        )
    } else if ready {
        (
            verdict(
                true,
                false,
                false,
                Reason::AllChildrenReady,
                format!("{} children Ready", status.children.len()),
            ),
            Some(Action::requeue(ctx.options.resync)),
        )
    } else {
        (
            verdict(false, true, false, Reason::ChildrenNotReady, pending),
            Some(Action::requeue(ctx.options.resync)),
        )
    })
}

/// One kind of child: where it is written and where it is cached.
struct Kind<'a, K: Resource<DynamicType = ()> + Clone + 'static> {
    api: Api<K>,
    store: &'a Store<K>,
}

struct Kinds<'a> {
    topics: Kind<'a, KafkaTopic>,
    producers: Kind<'a, KafkaProducer>,
    consumers: Kind<'a, KafkaConsumer>,
}

impl<'a> Kinds<'a> {
    fn new(ctx: &'a Context, children: &'a Children, namespace: &str) -> Self {
        Self {
            topics: Kind {
                api: Api::namespaced(ctx.client.clone(), namespace),
                store: &ctx.topics,
            },
            producers: Kind {
                api: Api::namespaced(ctx.client.clone(), namespace),
                store: &children.producers,
            },
            consumers: Kind {
                api: Api::namespaced(ctx.client.clone(), namespace),
                store: &children.consumers,
            },
        }
    }
}

/// What the topology needs of a child kind: its spec, to tell whether a child changed, and
/// what its status says.
trait Child:
    Resource<DynamicType = ()>
    + Clone
    + Serialize
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + 'static
{
    type Spec: PartialEq;
    fn spec(&self) -> &Self::Spec;
    /// `(observedGeneration, conditions, lag)`.
    fn observed(&self) -> (Option<i64>, Vec<Condition>, Option<i64>);
}

impl Child for KafkaTopic {
    type Spec = crate::api::KafkaTopicSpec;
    fn spec(&self) -> &Self::Spec {
        &self.spec
    }
    fn observed(&self) -> (Option<i64>, Vec<Condition>, Option<i64>) {
        let s = self.status.clone().unwrap_or_default();
        (s.observed_generation, s.conditions, None)
    }
}

impl Child for KafkaProducer {
    type Spec = crate::api::KafkaProducerSpec;
    fn spec(&self) -> &Self::Spec {
        &self.spec
    }
    fn observed(&self) -> (Option<i64>, Vec<Condition>, Option<i64>) {
        let s = self.status.clone().unwrap_or_default();
        (s.observed_generation, s.conditions, None)
    }
}

impl Child for KafkaConsumer {
    type Spec = crate::api::KafkaConsumerSpec;
    fn spec(&self) -> &Self::Spec {
        &self.spec
    }
    fn observed(&self) -> (Option<i64>, Vec<Condition>, Option<i64>) {
        let s = self.status.clone().unwrap_or_default();
        (s.observed_generation, s.conditions, s.total_lag)
    }
}

impl<K: Child> Kind<'_, K> {
    fn current(&self, child: &K) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::from_obj(child))
    }

    /// Children of the expansion that exist already but belong to someone else: the topology
    /// never takes over what it did not create.
    fn foreign(&self, children: &[K], list: &str, uid: &str, conflicts: &mut Vec<FieldError>) {
        let kind = K::kind(&());
        for (i, child) in children.iter().enumerate() {
            let Some(found) = self.current(child) else {
                continue;
            };
            let ours = found
                .meta()
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.kind == "StreamTopology");
            if !ours {
                conflicts.push(FieldError::new(
                    format!("{list}[{i}].name"),
                    format!(
                        "{kind} '{}' already exists and is not owned by this topology: rename the entry or remove that {kind}",
                        child.name_any()
                    ),
                ));
            }
        }
    }

    /// Server-side applies the children that differ from what is stored. A refusal by the
    /// API server (422: a rule of the child's CRD, e.g. partitions that would decrease) is
    /// recorded against the entry, not retried at once.
    async fn apply_changed(
        &self,
        children: &[K],
        list: &str,
        rejected: &mut Vec<FieldError>,
    ) -> Result<(), Error> {
        for (i, child) in children.iter().enumerate() {
            if self.current(child).is_some_and(|c| !differs(&*c, child)) {
                continue;
            }
            let result = self
                .api
                .patch(
                    &child.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(child),
                )
                .await;
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
                    rejected.push(FieldError::new(
                        format!("{list}[{i}]"),
                        format!(
                            "{} '{}' was refused by the API server: {}",
                            K::kind(&()),
                            child.name_any(),
                            s.message
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes this topology's children (by label and owner uid) that are no longer in
    /// `keep`; returns them as (kind, name).
    async fn prune(
        &self,
        topology: &StreamTopology,
        uid: &str,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<(String, String)>, Error> {
        let mut removed = Vec::new();
        for child in self.store.state() {
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
            match self.api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(kind = %K::kind(&()), child = %name, "child left the topology: deleted");
            removed.push((K::kind(&()).into_owned(), name));
        }
        Ok(removed)
    }

    /// The status of each child as cached.
    fn statuses(&self, children: &[K]) -> Vec<ChildStatus> {
        children
            .iter()
            .map(|child| {
                let (ready, reason, lag) = match self.current(child) {
                    None => (false, Reason::Pending.into(), None),
                    Some(found) => {
                        let (observed, conditions, lag) = found.observed();
                        let condition = conditions.iter().find(|c| c.type_ == "Ready");
                        let current = observed.is_some() && observed == found.meta().generation;
                        (
                            current && condition.is_some_and(|c| c.status == ConditionStatus::True),
                            condition.map_or_else(|| Reason::Pending.into(), |c| c.reason.clone()),
                            lag,
                        )
                    }
                };
                ChildStatus {
                    kind: K::kind(&()).into_owned(),
                    name: child.name_any(),
                    ready,
                    reason: Some(reason),
                    lag,
                }
            })
            .collect()
    }
}

/// Whether the stored child differs from the desired one in what the topology sets: spec,
/// its labels, annotations and owner reference.
fn differs<K: Child>(current: &K, desired: &K) -> bool {
    let (c, d) = (current.meta(), desired.meta());
    let subset = |have: &Option<BTreeMap<String, String>>,
                  want: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    current.spec() != desired.spec()
        || !subset(&c.labels, &d.labels)
        || !subset(&c.annotations, &d.annotations)
        || d.owner_references
            .iter()
            .flatten()
            .any(|o| !c.owner_references.iter().flatten().any(|h| h.uid == o.uid))
}

/// Fills the children, the ready count and the total lag in; returns whether every child is
/// Ready and, if not, which are not.
fn aggregate(
    expansion: &Expansion,
    kinds: &Kinds<'_>,
    status: &mut StreamTopologyStatus,
) -> (bool, String) {
    let mut list = kinds.topics.statuses(&expansion.topics);
    list.extend(kinds.producers.statuses(&expansion.producers));
    list.extend(kinds.consumers.statuses(&expansion.consumers));
    let ready = list.iter().filter(|c| c.ready).count();
    status.ready_children = Some(format!("{ready}/{}", list.len()));
    status.total_lag = list
        .iter()
        .filter_map(|c| c.lag)
        .fold(None, |sum, lag| Some(sum.unwrap_or(0) + lag));
    let pending: Vec<String> = list
        .iter()
        .filter(|c| !c.ready)
        .map(|c| {
            format!(
                "{} {} ({})",
                c.kind,
                c.name,
                c.reason.as_deref().unwrap_or(Reason::Pending.as_str())
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
