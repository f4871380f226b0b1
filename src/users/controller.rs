//! The KafkaUser controller: reconciles a user when its spec, deletion or finalizers change
//! ([`super::trigger_hash`]) or its KafkaCluster's spec changes (never on a status write), and
//! every user at each resync, so drift (an ACL added or removed by hand) is repaired in a few
//! large broker passes. The controller keeps the claims index ([`super::Claims`]) of its
//! scope's KafkaUser watch and hands it to every reconcile.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::controller::Config;
use kube::runtime::Controller;
use kube::ResourceExt;

use crate::api::{KafkaCluster, KafkaUser};
use crate::runtime::{
    every, referring, run_controller, spec_trigger, Context, InFlight, Kind, Shutdown, Watches,
};

/// The registration of KafkaUser with the operator.
pub const KIND: Kind = Kind {
    name: "KafkaUser",
    controller,
};

fn controller(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let users = watches.objects::<KafkaUser>();
    let claims = Arc::new(super::Claims::default());
    users.index(claims.clone());
    let clusters = watches.objects::<KafkaCluster>();
    let store = users.store();
    let of_cluster = move |cluster: Arc<KafkaCluster>| {
        referring(&store, &*cluster, |u: &KafkaUser| {
            u.spec.cluster_ref == cluster.name_any()
        })
    };
    let in_flight = InFlight::default();
    let concurrency = ctx
        .options
        .max_batch
        .saturating_mul(2)
        .clamp(64, usize::from(u16::MAX)) as u16;
    let controller =
        Controller::for_shared_stream(users.changes(super::trigger_hash), users.store())
            .watches_shared_stream(clusters.changes(spec_trigger), of_cluster)
            .reconcile_all_on(every(ctx.options.resync, in_flight.clone()))
            .with_config(Config::default().concurrency(concurrency));
    let reconcile = move |user, ctx| {
        let running = in_flight.enter();
        let claims = claims.clone();
        async move {
            let _running = running;
            super::reconcile(user, ctx, claims).await
        }
    };
    run_controller(KIND.name, controller, reconcile, ctx, shutdown)
}
