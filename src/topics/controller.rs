//! The KafkaTopic controller: reconciles a topic when its spec, steering annotations, deletion
//! or finalizers change ([`super::trigger_hash`]) or its KafkaCluster's spec changes (never on
//! a status write, the cluster's included), when a consumer's lag pass found its topic missing
//! on the broker ([`Context::check_topic`]), and every topic at once at each resync, so the
//! periodic drift check is a few large broker round trips instead of one per topic.
//!
//! The controller keeps the claims index ([`super::Claims`]) of its scope's KafkaTopic watch,
//! registered before the watch starts, and hands it to every reconcile.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::Controller;
use kube::ResourceExt;

use crate::api::{KafkaCluster, KafkaTopic};
use crate::runtime::{
    every, referring, run_controller, spec_trigger, Context, Kind, Shutdown, Watches,
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
    let controller =
        Controller::for_shared_stream(topics.changes(super::trigger_hash), topics.store())
            .watches_shared_stream(clusters.changes(spec_trigger), of_cluster)
            .reconcile_on(ctx.topic_checks())
            .reconcile_all_on(every(ctx.options.resync));
    let reconcile = move |topic, ctx| super::reconcile(topic, ctx, claims.clone());
    run_controller(KIND.name, controller, reconcile, ctx, shutdown)
}
