//! The KafkaCluster controller: reconciles a cluster when its spec or metadata change (never on
//! its own status writes) and again at every probe interval the reconcile asks for.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::Controller;

use crate::api::KafkaCluster;
use crate::runtime::{run_controller, spec_trigger, Context, Kind, Shutdown, Watches};

/// The registration of KafkaCluster with the operator.
pub const KIND: Kind = Kind {
    name: "KafkaCluster",
    controller,
};

fn controller(watches: &Watches, ctx: Arc<Context>, shutdown: Shutdown) -> BoxFuture<'static, ()> {
    let clusters = watches.objects::<KafkaCluster>();
    let controller =
        Controller::for_shared_stream(clusters.changes(spec_trigger), clusters.store());
    run_controller(KIND.name, controller, super::reconcile, ctx, shutdown)
}
