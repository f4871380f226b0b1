//! What the controllers tell the outside: a tracing span around every reconcile (so every line
//! logged during it carries the object's kind, namespace and name), reconcile counts and
//! durations, gauges read from the caches, and when the caches are synced (readiness).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::ResourceExt;

use super::status::{READY, STALLED};
use super::{Error, WatchHealth};
use crate::api::{
    Condition, ConditionStatus, KafkaCluster, KafkaConsumer, KafkaOffsetReset, KafkaProducer,
    KafkaTopic, KafkaUser, StreamTopology,
};
use crate::runtime::metrics::{Collector, Metrics, ObjectGauges};

/// Set once every controller's cache has been filled by its first list.
#[derive(Clone, Default)]
pub struct Synced(Arc<AtomicBool>);

impl Synced {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Synced({})", self.is_set())
    }
}

/// The span every reconcile of `object` runs in (and its error policy): `kind`, `namespace`
/// and `object` (the name; `name` is taken by the span's own name in JSON logs).
pub fn span<K: kube::Resource>(kind: &'static str, object: &K) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        kind,
        namespace = %object.namespace().unwrap_or_default(),
        object = %object.name_any(),
    )
}

/// Runs one reconcile, counting it and timing it by kind in `metrics`.
pub async fn measured(
    kind: &'static str,
    metrics: Arc<Metrics>,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile.await;
    let took = start.elapsed();
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.metric_label(),
    };
    metrics.reconciled(kind, label, took);
    tracing::debug!(
        ok = result.is_ok(),
        took_ms = took.as_millis() as u64,
        "reconciled"
    );
    result
}

/// Managed topics, consumer lag and the watches' health, read at every scrape.
pub fn gauges(
    topics: Vec<Store<KafkaTopic>>,
    consumers: Vec<Store<KafkaConsumer>>,
    watches: WatchHealth,
) -> Collector {
    Box::new(move |g: &mut ObjectGauges| {
        for (kind, namespace, up) in watches.states() {
            g.watches_up.insert((kind.to_owned(), namespace), up);
        }
        for topic in topics.iter().flat_map(Store::state) {
            if topic.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ready = topic.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
            });
            *g.managed_topics
                .entry((
                    topic.namespace().unwrap_or_default(),
                    topic.spec.cluster_ref.clone(),
                    ready,
                ))
                .or_insert(0) += 1;
        }
        for consumer in consumers.iter().flat_map(Store::state) {
            let Some(status) = &consumer.status else {
                continue;
            };
            let Some(group) = &status.group_id else {
                continue;
            };
            let key = (
                consumer.namespace().unwrap_or_default(),
                consumer.name_any(),
                group.clone(),
            );
            if let Some(replicas) = status.replicas {
                g.consumer_replicas.insert(key.clone(), replicas.into());
            }
            if let Some(partitions) = status.partitions {
                g.consumer_partitions.insert(key.clone(), partitions.into());
            }
            if let Some(autoscaling) = &consumer.spec.autoscaling {
                g.consumer_lag_threshold
                    .insert(key.clone(), autoscaling.lag_threshold);
            }
            match status.total_lag {
                Some(lag) => {
                    g.consumer_lag.insert(key, lag);
                }
                None => {
                    g.consumer_lag_unknown.insert(key);
                }
            }
        }
    })
}

/// A kind whose status carries kstatus conditions, for `tributary_object_not_ready`. A new kind
/// is one `impl` here and one [`not_ready`] collector where the operator registers its gauges.
pub trait Conditioned: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static {
    /// The conditions of its status (none before its first status).
    fn conditions(&self) -> &[Condition];
}

macro_rules! conditioned {
    ($($kind:ty),+ $(,)?) => {$(
        impl Conditioned for $kind {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
            }
        }
    )+};
}

conditioned!(
    KafkaCluster,
    KafkaTopic,
    KafkaConsumer,
    KafkaProducer,
    KafkaUser,
    KafkaOffsetReset,
    StreamTopology
);

/// `(reason, stalled)` of an object whose `Ready` condition is there and not `True`.
pub fn not_ready_reason(conditions: &[Condition]) -> Option<(String, bool)> {
    let ready = conditions.iter().find(|c| c.type_ == READY)?;
    if ready.status == ConditionStatus::True {
        return None;
    }
    let stalled = conditions
        .iter()
        .any(|c| c.type_ == STALLED && c.status == ConditionStatus::True);
    Some((ready.reason.clone(), stalled))
}

/// The objects of one kind in one cache that are not Ready (objects being deleted aside), read
/// at every scrape.
pub fn not_ready<K: Conditioned>(store: Store<K>) -> Collector {
    let kind = K::kind(&()).into_owned();
    Box::new(move |g: &mut ObjectGauges| {
        for object in store.state() {
            if object.meta().deletion_timestamp.is_some() {
                continue;
            }
            if let Some(why) = not_ready_reason(object.conditions()) {
                g.not_ready.insert(
                    (
                        kind.clone(),
                        object.namespace().unwrap_or_default(),
                        object.name_any(),
                    ),
                    why,
                );
            }
        }
    })
}

/// Sets `synced` once every store has been filled by its first list.
pub async fn wait_synced(stores: Vec<futures::future::BoxFuture<'static, bool>>, synced: Synced) {
    let filled = futures::future::join_all(stores).await;
    if filled.into_iter().all(|ok| ok) {
        tracing::info!("caches synced");
        synced.set();
    }
}

/// A future that resolves (true) once `store` has been filled.
///
/// It asks again every 100 ms: a store's readiness is a one-waiter channel that the
/// controller's own runner waits on too, so a waiter may miss the wake-up (the controller's
/// task is woken by its next watch event anyway).
pub fn filled<K>(store: Store<K>) -> futures::future::BoxFuture<'static, bool>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync,
{
    Box::pin(async move {
        loop {
            let wait = store.wait_until_ready();
            if let Ok(ready) = tokio::time::timeout(Duration::from_millis(100), wait).await {
                return ready.is_ok();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;

    fn condition(type_: &str, status: ConditionStatus, reason: Reason) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: String::new(),
            last_transition_time: None,
            observed_generation: Some(1),
        }
    }

    #[test]
    fn an_object_is_not_ready_with_its_ready_reason_and_whether_it_is_stalled() {
        use ConditionStatus::{False, True};
        assert_eq!(not_ready_reason(&[]), None, "no status yet: not reported");
        assert_eq!(
            not_ready_reason(&[condition(READY, True, Reason::InSync)]),
            None
        );
        assert_eq!(
            not_ready_reason(&[
                condition(READY, False, Reason::PartitionDecrease),
                condition(STALLED, True, Reason::PartitionDecrease),
            ]),
            Some(("PartitionDecrease".into(), true))
        );
        assert_eq!(
            not_ready_reason(&[
                condition(READY, False, Reason::BrokerUnreachable),
                condition(STALLED, False, Reason::Progressing),
            ]),
            Some(("BrokerUnreachable".into(), false))
        );
    }
}
