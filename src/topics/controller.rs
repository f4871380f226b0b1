//! The KafkaTopic controller: reconciles a topic when its spec, steering annotations, deletion
//! or finalizers change ([`super::trigger_hash`]) or its KafkaCluster's spec changes (never on
//! a status write, the cluster's included), when a consumer's lag pass found its topic missing
//! on the broker ([`Context::check_topic`]), and every topic at once at each resync, so the
//! periodic drift check is a few large broker round trips instead of one per topic. A resync
//! starts only once no topic reconcile runs, so one never overlaps the previous. At most
//! [`reconciles_at_once`] reconciles run at once (the rest wait in the controller's queue, a
//! few bytes each), so the memory of reconciles in flight does not grow with the topics.
//!
//! The controller keeps the claims index ([`super::Claims`]) of its scope's KafkaTopic watch,
//! registered before the watch starts, and hands it to every reconcile.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::controller::Config;
use kube::runtime::Controller;
use kube::ResourceExt;

use crate::api::{KafkaCluster, KafkaTopic};
use crate::runtime::{
    every, referring, run_controller, spec_trigger, Context, InFlight, Kind, Shutdown, Watches,
};

/// The registration of KafkaTopic with the operator.
pub const KIND: Kind = Kind {
    name: "KafkaTopic",
    controller,
};

fn controller(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let topics = watches.objects::<KafkaTopic>();
    let claims = Arc::new(super::Claims::default());
    topics.index(claims.clone());
    let clusters = watches.objects::<KafkaCluster>();
    let store = topics.store();
    let of_cluster = move |cluster: Arc<KafkaCluster>| {
        referring(&store, &*cluster, |t: &KafkaTopic| {
            t.spec.cluster_ref == cluster.name_any()
        })
    };
    // The resync waits for the reconciles in progress, so it never overlaps the previous one.
    let in_flight = InFlight::default();
    let controller =
        Controller::for_shared_stream(topics.changes(super::trigger_hash), topics.store())
            .watches_shared_stream(clusters.changes(spec_trigger), of_cluster)
            .reconcile_on(ctx.topic_checks())
            .reconcile_all_on(every(ctx.options.resync, in_flight.clone()))
            .with_config(Config::default().concurrency(reconciles_at_once(ctx.options.max_batch)));
    let reconcile = move |topic, ctx| {
        let running = in_flight.enter();
        let claims = claims.clone();
        async move {
            let _running = running;
            super::reconcile(topic, ctx, claims).await
        }
    };
    run_controller(KIND.name, controller, reconcile, ctx, shutdown)
}

/// How many topic reconciles run at once: two of the largest round trips (one gathering while
/// the other is at the broker), so batches stay full, and bounded whatever the topic count
/// (every reconcile waiting for its round trip holds its future and its intent in memory).
pub fn reconciles_at_once(max_batch: usize) -> u16 {
    max_batch.saturating_mul(2).clamp(64, usize::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_at_once_fill_two_round_trips_and_stay_bounded() {
        assert_eq!(reconciles_at_once(1000), 2000);
        assert_eq!(reconciles_at_once(1), 64);
        assert_eq!(reconciles_at_once(usize::MAX), u16::MAX);
    }
}
